/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard-bench -- what the policy costs per TLS 1.2 handshake.
 *
 * In-process handshakes over BIO pairs (no sockets): a client and a server
 * SSL are stepped alternately until both finish.  The in-process variants
 * are interleaved in short slices inside each round, so CPU frequency drift
 * and noisy neighbours hit them alike; the ratio to stock is taken per round
 * and summarised as min/median/max.  Each round is run with one thread and
 * then with N threads sharing the variant's SSL_CTXs.  Three child processes
 * (stock, the preload route and "all", see child.c) take their turns in the
 * same slices.
 *
 *   BUILD=build bench/emsguard-bench [--quick] [--rounds N] [--threads N]
 *       [--wall] [--csv FILE] [--svg FILE] [--no-memory] [--no-scaling]
 *       [--no-capacity] [--no-children]
 *
 * Single-threaded times are thread CPU time by default (robust against other
 * processes on a shared machine); --wall uses the monotonic clock instead.
 * The multi-threaded run counts the process's CPU time (--wall: wall time).
 *
 * Exit status 1 when a gating target fails, 2 on error.
 *
 * This file is main: the options, the interleaved rounds and the run's
 * order.  It calls the parts (child.c, capacity.c, cache.c, report.c),
 * which use the helpers of bench_env.c and bench_time.c; see bench_types.h.
 */
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "emsguard.h"
#include "harness.h"
#include "bench_types.h"
#include "bench_env.h"
#include "bench_time.h"
#include "report.h"
#include "child.h"
#include "capacity.h"
#include "cache.h"

/* ---- options --------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: emsguard-bench [--quick] [--rounds N] [--threads N] "
                    "[--threaded-rounds N] [--wall] [--calibrate]\n"
                    "    [--n-full N] [--n-resumed N] [--csv FILE] [--svg FILE]\n"
                    "    [--no-memory] [--no-scaling] [--no-capacity] [--no-children] [--no-pin]\n");
}

static int int_arg(int argc, char **argv, int *i, int *out)
{
    char *end;
    long v;

    if (*i + 1 >= argc)
        return 0;
    v = strtol(argv[++*i], &end, 10);
    if (*end != '\0' || v < 0 || v > INT_MAX)
        return 0;
    *out = (int)v;
    return 1;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    const char *last = "";
    int i, ok = 1;

    /*
     * About 4-5 minutes on a 2-core VM; --quick about 15 s.  21 rounds: the
     * child routes cost 1-1.5 % on resumptions against a 2 % allowance,
     * and at 11 rounds a median moved by about 0.3-0.5 % from run to run
     * (stock against stock), enough to fail a route that meets its target.
     * The N-thread run gates nothing, so it runs in only 7 of the rounds.
     */
    *o = (struct options){ .rounds = 21, .chunks = 8, .n_full = 400, .n_resumed = 2000,
        .threads = 2, .threaded_rounds = 7, .memory = 1, .scaling = 1, .capacity = 1, .children = 1,
        .mem_sessions = 1000, .scaling_max = 100000, .child_variant = -1, .cpu = -1 };
    for (i = 1; i < argc && ok; i++) {
        last = argv[i];
        if (strcmp(argv[i], "--quick") == 0) {
            o->rounds = 3;
            o->threaded_rounds = 3;
            o->chunks = 4;
            o->n_full = 60;
            o->n_resumed = 400;
            o->mem_sessions = 300;
            o->scaling_max = 10000;
        } else if (strcmp(argv[i], "--rounds") == 0) {
            ok = int_arg(argc, argv, &i, &o->rounds);
        } else if (strcmp(argv[i], "--threads") == 0) {
            ok = int_arg(argc, argv, &i, &o->threads);
        } else if (strcmp(argv[i], "--threaded-rounds") == 0) {
            ok = int_arg(argc, argv, &i, &o->threaded_rounds);
        } else if (strcmp(argv[i], "--n-full") == 0) {
            ok = int_arg(argc, argv, &i, &o->n_full);
        } else if (strcmp(argv[i], "--n-resumed") == 0) {
            ok = int_arg(argc, argv, &i, &o->n_resumed);
        } else if (strcmp(argv[i], "--chunks") == 0) {
            ok = int_arg(argc, argv, &i, &o->chunks);
        } else if (strcmp(argv[i], "--csv") == 0 && i + 1 < argc) {
            o->csv = argv[++i];
        } else if (strcmp(argv[i], "--svg") == 0 && i + 1 < argc) {
            o->svg = argv[++i];
        } else if (strcmp(argv[i], "--wall") == 0) {
            o->wall = 1;
        } else if (strcmp(argv[i], "--no-memory") == 0) {
            o->memory = 0;
        } else if (strcmp(argv[i], "--no-scaling") == 0) {
            o->scaling = 0;
        } else if (strcmp(argv[i], "--no-capacity") == 0) {
            o->capacity = 0;
        } else if (strcmp(argv[i], "--calibrate") == 0) {
            o->calibrate = 1;
        } else if (strcmp(argv[i], "--no-children") == 0) {
            o->children = 0;
        } else if (strcmp(argv[i], "--no-pin") == 0) {
            o->cpu = -2;
        } else if (strcmp(argv[i], "--cpu") == 0) { /* hidden: child.c */
            ok = int_arg(argc, argv, &i, &o->cpu);
        } else if (strcmp(argv[i], "--memory-only") == 0) { /* hidden: cache.c */
            o->memory_only = 1;
            ok = int_arg(argc, argv, &i, &o->mem_sessions);
        } else if (strcmp(argv[i], "--child") == 0 && i + 1 < argc) { /* hidden: child.c */
            ok = (o->child_variant = bench_variant_of_name(argv[++i])) >= 0; /* any: bench/profile.sh */
        } else if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc) {
            o->keys = argv[++i];
        } else {
            ok = 0;
        }
    }
    if (!ok) {
        fprintf(stderr, "emsguard-bench: %s: unknown option, or its value is missing or "
                        "not a whole number\n", last);
        usage();
        return 0;
    }
    if (o->mem_sessions < 1 || o->n_full < 1 || o->n_resumed < 1 || o->chunks < 1
        || o->threaded_rounds < 1) {
        fprintf(stderr, "emsguard-bench: --n-full, --n-resumed, --chunks and --threaded-rounds "
                        "must be at least 1 (--threads 0 skips the N-thread run)\n");
        usage();
        return 0;
    }
    if (o->calibrate && !o->children) {
        fprintf(stderr, "emsguard-bench: --calibrate replaces the preload and all children; it "
                        "cannot be used with --no-children\n");
        return 0;
    }
    if (o->rounds < 1 || o->rounds > BENCH_MAX_ROUNDS || o->threads > BENCH_MAX_THREADS) {
        fprintf(stderr, "emsguard-bench: --rounds must be 1..%d, --threads 0..%d\n",
            BENCH_MAX_ROUNDS, BENCH_MAX_THREADS);
        return 0;
    }
    return 1;
}

/* ---- rounds ------------------------------------------------------------------ */

/*
 * One round of one suite and mode: every variant runs n handshakes, in
 * |chunks| slices, and the order of the variants rotates from slice to slice
 * so no variant always runs first (warm caches) or last.  The child-process
 * variants take their turn in the same rotation.
 */
static void run_cell(struct setup *st, int count, const struct options *o, int s, int m,
    int round, int threads, struct bench_results *r)
{
    int n = (m == MODE_FULL ? o->n_full : o->n_resumed) / o->chunks, c, k;

    if (n < (threads > 0 ? threads : 1))
        n = threads > 0 ? threads : 1; /* at least one handshake per thread */
    for (c = 0; c < o->chunks; c++)
        for (k = 0; k < count; k++) {
            int v = (k + c + round) % count;
            struct bench_cell *cell = &r->cell[s][m][v][round], slice = { 0, 0, 0 };

            if (v >= VAR_CHILD_STOCK)
                bench_child_batch(v, c, threads, s, m, n, &slice);
            else if (threads == 0)
                bench_time_batch(st[v].server[s][m], st[v].client[s], st[v].offer[s][m], n,
                    &slice);
            else
                bench_time_batch_threads(st[v].server[s][m], st[v].client[s], st[v].offer[s][m],
                    n, threads, &slice);
            cell->handshakes += slice.handshakes;
            cell->seconds += slice.seconds;
            if (bench_rate(&slice) > cell->best)
                cell->best = bench_rate(&slice);
        }
}

/*
 * Every suite and mode, single-threaded; then, if |threaded_round| >= 0,
 * again with o->threads threads, stored as that threaded round.
 */
static void run_round(struct setup *st, int count, const struct options *o, int round,
    int threaded_round, struct bench_results *single, struct bench_results *threaded)
{
    int s, m;

    for (s = 0; s < SUITE_COUNT; s++)
        for (m = 0; m < MODE_COUNT; m++)
            run_cell(st, count, o, s, m, round, 0, single);
    if (threaded_round >= 0)
        for (s = 0; s < SUITE_COUNT; s++)
            for (m = 0; m < MODE_COUNT; m++)
                run_cell(st, count, o, s, m, threaded_round, o->threads, threaded);
}

/* ---- main ------------------------------------------------------------------------ */

static void print_header(const struct options *o)
{
    printf("emsguard-bench %s, %s, TLS 1.2, in-memory BIO pairs\n", EMSGUARD_VERSION_STR,
        OpenSSL_version(OPENSSL_VERSION));
    printf("%d rounds; per round and variant: %d full / %d resumed handshakes in %d interleaved "
           "slices, with 1 thread (%s clock)",
        o->rounds, o->n_full, o->n_resumed, o->chunks, o->wall ? "wall" : "thread-CPU");
    if (o->threads > 0)
        printf(" and, in %d of the rounds, again with %d threads sharing the ctxs (%s)",
            o->threaded_rounds < o->rounds ? o->threaded_rounds : o->rounds, o->threads,
            o->wall ? "wall clock" : "process-CPU clock: hs/s = handshakes per CPU-second");
    if (o->cpu >= 0)
        printf("; single-threaded work of all processes pinned to CPU %d", o->cpu);
    printf("\nvariants, in process: stock; api-policy (EMSGUARD_enable_policy, defaults, "
           "EventLogging 0, both ends); guard-audit (TLS1-PRF guard, Require=0); "
           "guard-enforce (Require=1)\n");
    if (o->children)
        printf("variants, in child processes (%d copies each, taking turns by slice; all started "
               "anew each round, each from a random heap history), interleaved in the same slices: "
               "stock-child (the baseline of the next two); "
               "preload (LD_PRELOAD libemsguard-preload.so, "
               "EventLogging 0); all (preload + provider policy via EMSGUARD_enable_ex + "
               "guard with Require=1, same policy values)\n",
            CHILD_COPIES);
    else
        printf("child-process variants (stock-child, preload, all): skipped (--no-children)\n");
    if (o->calibrate)
        printf("CALIBRATION RUN (--calibrate): the preload and all children run stock OpenSSL, "
               "like stock-child; their ratios measure this machine's noise, not emsguard, and "
               "no target is checked\n");
}

static char keys_file[PATH_MAX];

/* Also on an error exit: no private keys left behind in $TMPDIR. */
static void remove_keys_file(void)
{
    if (keys_file[0] != '\0')
        unlink(keys_file);
    keys_file[0] = '\0';
}

static void make_keys_file(const struct env *plain, char *path, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    int fd;

    snprintf(path, len, "%s/emsguard-bench-keys-XXXXXX", tmp != NULL ? tmp : "/tmp");
    if ((fd = mkstemp(path)) < 0)
        bench_fail("cannot create the key file");
    close(fd);
    snprintf(keys_file, sizeof(keys_file), "%s", path);
    atexit(remove_keys_file);
    if (!bench_save_keys(plain, path))
        bench_fail("cannot write the key file");
}

int main(int argc, char **argv)
{
    static struct bench_results single, threaded;
    struct env envs[ENV_COUNT];
    struct setup st[VAR_COUNT];
    struct options o;
    char module[PATH_MAX + 16], keys[PATH_MAX], csv[PATH_MAX + 32], svg[PATH_MAX + 32];
    int e, v, round, done_threaded = 0, failed;

    if (!parse_options(argc, argv, &o))
        return 2;
    if (o.memory_only)
        return bench_memory_child(&o);
    bench_use_wall_clock(o.wall);
    if (o.child_variant >= 0)
        return bench_child_main(&o);
    if (o.cpu == -1)
        o.cpu = sched_getcpu();
    bench_pin(o.cpu);
    /* No system openssl.cnf: it might load emsguard into "stock". */
    OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
    bench_module_path(module, sizeof(module));
    bench_make_env(&envs[ENV_PLAIN], ENV_PLAIN, module, NULL);
    make_keys_file(&envs[ENV_PLAIN], keys, sizeof(keys));
    for (e = ENV_PLAIN + 1; e < ENV_COUNT; e++)
        bench_make_env(&envs[e], e, module, keys);
    for (v = VAR_STOCK; v < VAR_IN_PROCESS; v++)
        bench_make_setup(&st[v], v, envs);
    bench_check_guard_used(&st[VAR_AUDIT]);
    /* Default outputs: next to the binaries, never into the source tree. */
    if (o.csv == NULL || o.svg == NULL) {
        const char *b = getenv("BUILD") != NULL ? getenv("BUILD") : "build";

        snprintf(csv, sizeof(csv), "%s/bench/results.csv", b);
        snprintf(svg, sizeof(svg), "%s/bench/results.svg", b);
        o.csv = o.csv != NULL ? o.csv : csv;
        o.svg = o.svg != NULL ? o.svg : svg;
    }
    if (o.children)
        bench_children_start(&o, module, keys);
    print_header(&o);
    fflush(stdout);
    single.rounds = o.rounds;
    single.calibrate = threaded.calibrate = o.calibrate;
    threaded.rounds = o.threaded_rounds < o.rounds ? o.threaded_rounds : o.rounds;
    single.threads = 1;
    threaded.threads = o.threads;
    single.clock_name = o.wall ? "wall" : "thread-cpu";
    threaded.clock_name = o.wall ? "wall" : "process-cpu";
    for (round = 0; round < o.rounds; round++) {
        if (o.children && round > 0)
            bench_children_restart(&o);
        /* The threaded rounds spread evenly: rounds 0, 3, 6, ... of 21. */
        int threaded_round = o.threads > 0 && done_threaded < threaded.rounds
                && round * threaded.rounds >= done_threaded * o.rounds
            ? done_threaded++
            : -1;

        run_round(st, o.children ? VAR_COUNT : VAR_IN_PROCESS, &o, round, threaded_round, &single,
            &threaded);
        fprintf(stderr, "  round %d/%d done\n", round + 1, o.rounds);
    }
    failed = bench_print_summary(stdout, &single, !o.calibrate);
    if (o.threads > 0)
        bench_print_summary(stdout, &threaded, 0);
    printf("\ngate: the median ratios of every variant in the 1-thread run (%s)",
        o.children ? "api-policy, guard-audit, guard-enforce, preload, all"
                   : "api-policy, guard-audit, guard-enforce; preload and all not run");
    if (o.threads > 0)
        printf("; the %d-thread run (%d of the rounds) is informational", o.threads,
            threaded.rounds);
    printf("\n");
    if (o.calibrate) {
        printf("bench targets: not checked (calibration run: preload and all are stock children; "
               "how far their medians are from 1.000 is the noise of this run)\n");
    } else {
        printf("bench targets: %s\n", failed ? "FAIL" : "PASS");
    }
    if (!bench_write_csv(o.csv, &single, o.threads > 0 ? &threaded : NULL)
        || !bench_write_svg(o.svg, &single, o.threads > 0 ? &threaded : NULL))
        bench_fail("cannot write the CSV or the SVG");
    printf("wrote %s and %s\n", o.csv, o.svg);
    fflush(stdout);
    if (o.children)
        bench_children_stop();
    remove_keys_file();
    if (o.capacity)
        bench_report_capacity(&envs[ENV_PLAIN], &o);
    if (o.memory)
        bench_run_memory_child(&o);
    if (o.scaling)
        bench_report_scaling(&envs[ENV_PLAIN], &o);
    for (v = VAR_STOCK; v < VAR_IN_PROCESS; v++)
        bench_free_setup(&st[v]);
    for (e = 0; e < ENV_COUNT; e++)
        bench_free_env(&envs[e]);
    hs_cleanup();
    return failed ? 1 : 0;
}
