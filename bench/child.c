/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard-bench: the variants that need a process of their own.
 *
 * libemsguard-preload.so acts only when LD_PRELOADed at process start, so
 * the preload route cannot run next to stock in one process.  The benchmark
 * starts three children of itself: a stock child (the baseline of the other
 * two, so a ratio compares like with like), a preload child and an "all"
 * child.  Each builds its ctxs once and then runs batches on command, so the
 * parent interleaves them slice by slice with its in-process variants
 * (A B C D ... A B C D).
 *
 * Two identical stock children, started together and interleaved, differ
 * by up to 2 % in handshake rate for as long as they live (where the
 * loader, the heap and the physical pages happen to put things), while
 * their fastest slices agree within about 0.5 %.  So each variant runs in
 * CHILD_COPIES processes, its slices taking turns between them, and all
 * are replaced by new ones every round: a round's fastest slice is the
 * best of several process draws, for the baseline and the variants alike,
 * and the median over the rounds covers rounds x CHILD_COPIES processes.
 *
 * Each child also starts from a random heap history (randomize_heap()).
 *
 * Protocol, one line each way, over the child's stdin and stdout:
 *
 *   parent: run <threads> <suite> <mode> <handshakes>     child: cell <handshakes> <seconds>
 *   parent: quit                                          child exits 0
 *
 * A child writes "ready" once its ctxs passed the sanity checks.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include "harness.h"
#include "bench_env.h"
#include "bench_time.h"
#include "report.h"
#include "child.h"

static const int child_variants[] = { VAR_CHILD_STOCK, VAR_PRELOAD, VAR_ALL };
#define CHILD_COUNT (int)(sizeof(child_variants) / sizeof(child_variants[0]))

static struct {
    char preload[2 * PATH_MAX + 64]; /* LD_PRELOAD value */
    char policy_conf[PATH_MAX]; /* EMSGUARD_CONF of the preload child */
    char all_conf[PATH_MAX]; /* EMSGUARD_CONF of the "all" child */
    char keys[PATH_MAX];
    struct {
        pid_t pid;
        FILE *to, *from;
    } proc[VAR_COUNT][CHILD_COPIES];
} children;

/* ---- in the child ----------------------------------------------------------------- */

/*
 * A random heap history for this process.  Which of a handshake's mallocs
 * hit glibc's per-thread cache and which take its slower paths depends on
 * everything the process allocated before, and without this that history
 * was the same in every process of a variant: one draw per variant for the
 * whole run.  Under callgrind the history alone moved a stock child by
 * 0.5 % per RSA resumption (4 seeds), the size of what is measured.  New
 * processes every round redraw the address-space layout; this redraws the
 * heap: a random number of blocks of random sizes, about half freed again,
 * before OpenSSL allocates anything.  EMSGUARD_BENCH_HEAP_SEED=N repeats a
 * draw (e.g. under callgrind).
 */
static void randomize_heap(void)
{
    static void *kept[256]; /* still reachable at exit: not a leak */
    const char *fixed = getenv("EMSGUARD_BENCH_HEAP_SEED");
    unsigned int seed, i, n;

    if (fixed != NULL) {
        unsigned long v;
        char *end;

        /* strtoul() would take "-1" and wrap, and "" as 0: neither is a seed. */
        errno = 0;
        v = strtoul(fixed, &end, 10);
        if (*fixed < '0' || *fixed > '9' || *end != '\0' || errno != 0 || v > UINT_MAX)
            bench_fail("EMSGUARD_BENCH_HEAP_SEED must be a decimal number from 0 to 4294967295");
        seed = (unsigned int)v;
    } else if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        seed = (unsigned int)getpid() * 2654435761u;
    n = 16 + (unsigned int)rand_r(&seed) % 240;
    for (i = 0; i < n; i++)
        kept[i] = malloc(16 + (size_t)(rand_r(&seed) % 1024));
    for (i = 0; i < n; i++)
        if (rand_r(&seed) & 1) {
            free(kept[i]);
            kept[i] = NULL;
        }
}

int bench_child_main(const struct options *o)
{
    static struct setup st;
    struct env envs[ENV_COUNT];
    char module[PATH_MAX + 16], line[128];
    int v = o->child_variant;
    int e = v == VAR_ALL || v == VAR_ENFORCE ? ENV_ENFORCE : v == VAR_AUDIT ? ENV_AUDIT : ENV_PLAIN;

    if (o->keys == NULL)
        bench_fail("child: --keys is required");
    bench_pin(o->cpu);
    randomize_heap();
    OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
    bench_module_path(module, sizeof(module));
    bench_make_env(&envs[e], e, module, o->keys);
    bench_make_setup(&st, v, envs); /* checks the preload's policy is there */
    if (v == VAR_ALL || v == VAR_AUDIT || v == VAR_ENFORCE)
        bench_check_guard_used(&st);
    printf("ready\n");
    fflush(stdout);
    while (fgets(line, sizeof(line), stdin) != NULL && strncmp(line, "quit", 4) != 0) {
        struct bench_cell c = { 0, 0, 0 };
        int t, s, m, n;

        if (sscanf(line, "run %d %d %d %d", &t, &s, &m, &n) != 4 || t < 0
            || t > BENCH_MAX_THREADS || s < 0 || s >= SUITE_COUNT || m < 0 || m >= MODE_COUNT
            || n < 1)
            bench_fail("child: bad command");
        if (t == 0)
            bench_time_batch(st.server[s][m], st.client[s], st.offer[s][m], n, &c);
        else
            bench_time_batch_threads(st.server[s][m], st.client[s], st.offer[s][m], n, t, &c);
        printf("cell %ld %.9f\n", c.handshakes, c.seconds);
        fflush(stdout);
    }
    bench_free_setup(&st);
    bench_free_env(&envs[e]);
    hs_cleanup();
    return 0;
}

/* ---- in the parent ------------------------------------------------------------------ */

/*
 * libasan's path if this process is a sanitizer build: it must come first in
 * LD_PRELOAD, in front of the instrumented preload library.
 */
static int asan_runtime(char *out, size_t len)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[PATH_MAX + 128];
    int found = 0;

    while (maps != NULL && !found && fgets(line, sizeof(line), maps) != NULL) {
        char *path = strchr(line, '/');

        if (path != NULL && strstr(path, "/libasan.so") != NULL) {
            path[strcspn(path, "\n")] = '\0';
            found = snprintf(out, len, "%s", path) < (int)len;
        }
    }
    if (maps != NULL)
        fclose(maps);
    return found;
}

static void remove_configs(void)
{
    if (children.policy_conf[0] != '\0')
        unlink(children.policy_conf);
    if (children.all_conf[0] != '\0')
        unlink(children.all_conf);
    children.policy_conf[0] = children.all_conf[0] = '\0';
}

static void children_init(const char *module, const char *keys)
{
    char dir[PATH_MAX], lib[PATH_MAX + 32], asan[PATH_MAX];
    const char *slash = strrchr(module, '/');

    snprintf(dir, sizeof(dir), "%.*s", slash != NULL ? (int)(slash - module) : 1,
        slash != NULL ? module : ".");
    snprintf(lib, sizeof(lib), "%s/libemsguard-preload.so", dir);
    if (access(lib, R_OK) != 0) {
        fprintf(stderr, "emsguard-bench: %s is missing: build it (make all) or pass "
                        "--no-children\n", lib);
        exit(2);
    }
    if (asan_runtime(asan, sizeof(asan)))
        snprintf(children.preload, sizeof(children.preload), "%s:%s", asan, lib);
    else
        snprintf(children.preload, sizeof(children.preload), "%s", lib);
    snprintf(children.keys, sizeof(children.keys), "%s", keys);
    /* The preload's policy: defaults with EventLogging 0, like api-policy. */
    bench_write_config_file(ENV_AUDIT, module, children.policy_conf, sizeof(children.policy_conf));
    bench_write_config_file(ENV_ENFORCE, module, children.all_conf, sizeof(children.all_conf));
    atexit(remove_configs);
}

static void exec_child(const struct options *o, int v)
{
    char th[16], cpu[16];
    const char *argv[14];
    int a = 0;

    /*
     * --calibrate: the preload and "all" slots get stock children, which the
     * parent still files under their routes, so their ratios are stock
     * against stock through the same machinery.  (Before 2026-12-07 the
     * option only relabelled the rows: the children were emsguard's.)
     */
    if (o->calibrate)
        v = VAR_CHILD_STOCK;
    if (v == VAR_CHILD_STOCK) {
        unsetenv("LD_PRELOAD");
        unsetenv("EMSGUARD_CONF");
    } else {
        setenv("LD_PRELOAD", children.preload, 1);
        setenv("EMSGUARD_CONF", v == VAR_ALL ? children.all_conf : children.policy_conf, 1);
    }
    snprintf(th, sizeof(th), "%d", o->threads);
    argv[a++] = "emsguard-bench";
    argv[a++] = "--child";
    argv[a++] = bench_variant_name(v);
    argv[a++] = "--keys";
    argv[a++] = children.keys;
    if (o->wall)
        argv[a++] = "--wall";
    if (o->cpu >= 0) {
        snprintf(cpu, sizeof(cpu), "%d", o->cpu);
        argv[a++] = "--cpu";
        argv[a++] = cpu;
    }
    argv[a] = NULL;
    execv("/proc/self/exe", (char *const *)argv);
    _exit(127);
}

static void child_failed(int v, const char *what)
{
    fprintf(stderr, "emsguard-bench: the %s child process %s\n", bench_variant_name(v), what);
    exit(2);
}

static void start_child(const struct options *o, int v, int copy)
{
    int in[2], out[2];
    char line[64];
    pid_t pid;

    fflush(stdout);
    if (pipe(in) != 0 || pipe(out) != 0 || (pid = fork()) < 0)
        bench_fail("cannot start a child process");
    if (pid == 0) {
        if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0)
            _exit(127);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        exec_child(o, v);
    }
    close(in[0]);
    close(out[1]);
    children.proc[v][copy].pid = pid;
    if ((children.proc[v][copy].to = fdopen(in[1], "w")) == NULL
        || (children.proc[v][copy].from = fdopen(out[0], "r")) == NULL)
        bench_fail("cannot talk to a child process");
    if (fgets(line, sizeof(line), children.proc[v][copy].from) == NULL
        || strcmp(line, "ready\n") != 0)
        child_failed(v, "did not start (see its error above)");
}

static void start_children(const struct options *o)
{
    int k, copy;

    for (copy = 0; copy < CHILD_COPIES; copy++)
        for (k = 0; k < CHILD_COUNT; k++)
            start_child(o, child_variants[k], copy);
}

static void stop_children(void)
{
    int k, copy, status;

    for (copy = 0; copy < CHILD_COPIES; copy++)
        for (k = 0; k < CHILD_COUNT; k++) {
            int v = child_variants[k];

            if (children.proc[v][copy].to == NULL)
                continue;
            fprintf(children.proc[v][copy].to, "quit\n");
            fclose(children.proc[v][copy].to);
            fclose(children.proc[v][copy].from);
            children.proc[v][copy].to = children.proc[v][copy].from = NULL;
            if (waitpid(children.proc[v][copy].pid, &status, 0) != children.proc[v][copy].pid
                || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                child_failed(v, "did not exit cleanly");
        }
}

void bench_children_start(const struct options *o, const char *module, const char *keys)
{
    children_init(module, keys);
    /* A child that dies must show up as an error here, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    start_children(o);
}

void bench_children_restart(const struct options *o)
{
    stop_children();
    start_children(o);
}

void bench_child_batch(int v, int slice, int threads, int s, int m, int n,
    struct bench_cell *cell)
{
    char line[128];
    long hs, want = threads > 0 ? n / threads * threads : n;
    double sec;
    int copy = slice % CHILD_COPIES;

    if (fprintf(children.proc[v][copy].to, "run %d %d %d %d\n", threads, s, m, n) < 0
        || fflush(children.proc[v][copy].to) != 0
        || fgets(line, sizeof(line), children.proc[v][copy].from) == NULL
        || sscanf(line, "cell %ld %lf", &hs, &sec) != 2 || hs != want)
        child_failed(v, "failed a batch");
    cell->handshakes += hs;
    cell->seconds += sec;
}

void bench_children_stop(void)
{
    stop_children();
    remove_configs();
}
