/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Publishing the live counters (issue 20, provider/stats_publish.c) and
 * reading them back with `emsguard stats`: the process's file appears on
 * the first policy, 0640 or stricter, holds exactly the SSL_CTX counters
 * and the guard's audit; a forked child publishes its own, from zero; the
 * files of processes that exited, were killed or exec'd are not counted and
 * are removed; a directory that cannot be used costs one log line and no
 * handshake; a link planted under a process's temporary name is not opened.
 *
 *   BUILD=build build/test/check_stats
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <check.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "harness.h"
#include "stats_file.h"

static char build_dir[PATH_MAX];
static char stats_dir[PATH_MAX];
static SSL_CTX *policy_server, *ems_client, *legacy_client;

static void stats_path(char *out, size_t len, long pid)
{
    snprintf(out, len, "%s/%ld" EG_STATS_SUFFIX, stats_dir, pid);
}

static int file_exists(long pid)
{
    char path[PATH_MAX + 32];

    stats_path(path, sizeof(path), pid);
    return access(path, F_OK) == 0;
}

/* Reads the file of |pid| directly (what `emsguard stats` maps). */
static int read_file(long pid, struct eg_stats_file *out)
{
    char path[PATH_MAX + 32];
    FILE *f;
    size_t n;

    stats_path(path, sizeof(path), pid);
    if ((f = fopen(path, "rb")) == NULL)
        return 0;
    n = fread(out, 1, sizeof(*out), f);
    fclose(f);
    return n == sizeof(*out) && memcmp(out->magic, EG_STATS_MAGIC, 8) == 0;
}

/* `emsguard stats --dir D ARG`'s output (static), or NULL. */
static const char *run_cli(const char *arg)
{
    static char out[262144];
    char cmd[2 * PATH_MAX + 64];
    size_t n = 0, got;
    FILE *p;

    snprintf(cmd, sizeof(cmd), "%s/tools/emsguard stats --dir %s %s", build_dir, stats_dir, arg);
    if ((p = popen(cmd, "r")) == NULL)
        return NULL;
    while (n < sizeof(out) - 1 && (got = fread(out + n, 1, sizeof(out) - 1 - n, p)) > 0)
        n += got;
    out[n] = '\0';
    return pclose(p) == 0 ? out : NULL;
}

/* The Prometheus sample of |counter| for |pid|, or -1 if not listed. */
static long long prom_value(const char *out, const char *counter, long pid)
{
    char key[160];
    const char *p;

    snprintf(key, sizeof(key), "emsguard_%s_total{pid=\"%ld\",", counter, pid);
    if ((p = strstr(out, key)) == NULL || (p = strstr(p, "} ")) == NULL)
        return -1;
    return atoll(p + 2);
}

static long long prom_live(const char *out, const char *counter)
{
    char key[160];
    const char *p;

    snprintf(key, sizeof(key), "\nemsguard_live_%s ", counter);
    if ((p = strstr(out, key)) == NULL)
        return -1;
    return atoll(p + strlen(key));
}

static uint64_t ctx_counter(SSL_CTX *ctx, EMSGUARD_COUNTER which)
{
    uint64_t v = 0;

    ck_assert_int_eq(EMSGUARD_CTX_get_counter(ctx, which, &v), 1);
    return v;
}

/* An EMS client: full handshake, then a resumption; a legacy client: two fulls. */
static void some_handshakes(void)
{
    hs_result full, again;

    ck_assert(hs_handshake(policy_server, ems_client, NULL, &full));
    ck_assert(hs_handshake(policy_server, ems_client, full.session, &again));
    ck_assert(again.server_reused);
    hs_result_clear(&full);
    hs_result_clear(&again);
    ck_assert(hs_handshake(policy_server, legacy_client, NULL, &full));
    ck_assert(hs_handshake(policy_server, legacy_client, full.session, &again));
    ck_assert(!again.server_reused);
    hs_result_clear(&full);
    hs_result_clear(&again);
}

static void setup(void)
{
    if (policy_server != NULL)
        return;
    ck_assert_ptr_nonnull(policy_server = hs_server_ctx(HS_MECH_TICKET, 0));
    ck_assert_int_eq(EMSGUARD_enable(policy_server), 1);
    ck_assert_ptr_nonnull(ems_client = hs_client_ctx(0));
    ck_assert_ptr_nonnull(legacy_client = hs_client_ctx(HS_NO_EMS));
}

/* The file says exactly what the counters say, and nothing else. */
START_TEST(test_publishes_the_counters)
{
    struct eg_stats_file f;
    char path[PATH_MAX + 32];
    struct stat st;
    const char *out;
    int k;

    setup();
    some_handshakes();
    stats_path(path, sizeof(path), (long)getpid());
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_msg((st.st_mode & 0137) == 0, "mode %o is wider than 0640", st.st_mode & 0777);
    ck_assert_int_eq(st.st_size, EG_STATS_FILE_SIZE);
    ck_assert(read_file((long)getpid(), &f));
    ck_assert_int_eq(f.pid, getpid());
    ck_assert_str_eq(f.program, "check_stats");
    ck_assert(f.sources & EG_STATS_SRC_HOOKS);
    for (k = 0; k < EMSGUARD_CNT_MAX; k++)
        ck_assert_msg(f.hooks[k] == ctx_counter(policy_server, (EMSGUARD_COUNTER)k),
            "%s: file %llu, SSL_CTX %llu", EMSGUARD_counter_name((EMSGUARD_COUNTER)k),
            (unsigned long long)f.hooks[k],
            (unsigned long long)ctx_counter(policy_server, (EMSGUARD_COUNTER)k));
    ck_assert_uint_eq(f.hooks[EMSGUARD_CNT_FULL_HANDSHAKES], 3);
    ck_assert_uint_eq(f.hooks[EMSGUARD_CNT_RESUMPTIONS], 1);
    ck_assert_uint_eq(f.hooks[EMSGUARD_CNT_FULL_WITHOUT_EMS], 2);

    ck_assert_ptr_nonnull(out = run_cli("--prometheus"));
    ck_assert_int_eq(prom_value(out, "full_handshakes", (long)getpid()), 3);
    ck_assert_int_eq(prom_value(out, "resumptions", (long)getpid()), 1);
    ck_assert_int_eq(prom_live(out, "full_handshakes"), 3);
    ck_assert_ptr_nonnull(strstr(out, "# TYPE emsguard_full_handshakes_total counter\n"));
    ck_assert_ptr_nonnull(strstr(out, "\nemsguard_live_processes 1\n"));
    ck_assert_ptr_nonnull(out = run_cli("--json"));
    ck_assert_ptr_nonnull(strstr(out, "\"program\": \"check_stats\""));
    ck_assert_ptr_nonnull(out = run_cli(""));
    ck_assert_ptr_nonnull(strstr(out, "check_stats (policy"));
}
END_TEST

/*
 * A forked child counts from zero in its own file; the parent's stays as
 * it was.  The child's file goes when it exits.
 */
START_TEST(test_forked_child_publishes_its_own)
{
    struct eg_stats_file before, after, child;
    int to_child[2], from_child[2], status;
    char c = 0;
    pid_t pid;

    setup();
    some_handshakes();
    ck_assert(read_file((long)getpid(), &before));
    ck_assert_int_eq(pipe(to_child), 0);
    ck_assert_int_eq(pipe(from_child), 0);
    ck_assert_int_ge(pid = fork(), 0);
    if (pid == 0) {
        some_handshakes();
        some_handshakes();
        if (write(from_child[1], "d", 1) != 1 || read(to_child[0], &c, 1) != 1)
            _exit(2);
        exit(0); /* atexit: the file goes */
    }
    ck_assert_int_eq(read(from_child[0], &c, 1), 1);
    ck_assert(read_file((long)pid, &child));
    ck_assert_int_eq(child.pid, pid);
    ck_assert_uint_eq(child.hooks[EMSGUARD_CNT_FULL_HANDSHAKES], 6);
    ck_assert_uint_eq(child.hooks[EMSGUARD_CNT_RESUMPTIONS], 2);
    ck_assert(read_file((long)getpid(), &after));
    ck_assert_uint_eq(after.hooks[EMSGUARD_CNT_FULL_HANDSHAKES],
        before.hooks[EMSGUARD_CNT_FULL_HANDSHAKES]);
    ck_assert_int_eq(write(to_child[1], "x", 1), 1);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_msg(!file_exists((long)pid), "the exited child's file is still there");
    close(to_child[0]);
    close(to_child[1]);
    close(from_child[0]);
    close(from_child[1]);
}
END_TEST

/* Killed, or gone to exec: not live, and `emsguard stats` removes the file. */
START_TEST(test_dead_processes_are_cleaned)
{
    const char *out;
    int status, fds[2];
    char c;
    pid_t killed, execd;

    setup();
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_ge(killed = fork(), 0);
    if (killed == 0) {
        some_handshakes();
        if (write(fds[1], "r", 1) != 1)
            _exit(2);
        pause();
        _exit(0);
    }
    ck_assert_int_eq(read(fds[0], &c, 1), 1);
    ck_assert(file_exists((long)killed));
    ck_assert_int_eq(kill(killed, SIGKILL), 0);
    ck_assert_int_eq(waitpid(killed, &status, 0), killed);
    ck_assert_msg(file_exists((long)killed), "a killed process cannot remove its file");

    /* A program exec'd in a child of a publishing process publishes nothing. */
    ck_assert_int_ge(execd = fork(), 0);
    if (execd == 0) {
        execl("/bin/sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    /* The file the fork made is released by the exec. */
    usleep(200000);

    ck_assert_ptr_nonnull(out = run_cli("--prometheus"));
    ck_assert_int_eq(prom_value(out, "full_handshakes", (long)killed), -1);
    ck_assert_int_eq(prom_value(out, "full_handshakes", (long)execd), -1);
    ck_assert_int_ge(prom_value(out, "full_handshakes", (long)getpid()), 0);
    ck_assert_msg(!file_exists((long)killed), "the killed process's file is still there");
    ck_assert_msg(!file_exists((long)execd), "the exec'd process's file is still there");
    kill(execd, SIGKILL);
    waitpid(execd, &status, 0);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* The next process to publish removes the files of dead ones too. */
START_TEST(test_next_publisher_sweeps)
{
    char src[PATH_MAX + 32], dst[PATH_MAX + 32];
    int status;
    pid_t dead, next;
    FILE *f;

    setup();
    ck_assert_int_ge(dead = fork(), 0);
    if (dead == 0)
        _exit(0); /* its file stays: _exit runs no atexit */
    ck_assert_int_eq(waitpid(dead, &status, 0), dead);
    stats_path(src, sizeof(src), (long)dead);
    ck_assert(file_exists((long)dead));
    /* ... and one more, made up, of a pid that cannot exist. */
    snprintf(dst, sizeof(dst), "%s/%d" EG_STATS_SUFFIX, stats_dir, INT_MAX);
    ck_assert_ptr_nonnull(f = fopen(dst, "w"));
    fclose(f);
    ck_assert_int_ge(next = fork(), 0);
    if (next == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(next, &status, 0), next);
    ck_assert_msg(!file_exists((long)dead), "the dead process's file was not swept");
    ck_assert_int_ne(access(dst, F_OK), 0);
    unlink(src);
    stats_path(src, sizeof(src), (long)next);
    unlink(src);
}
END_TEST

/*
 * A directory that cannot be used: one log line per process, every
 * handshake still works.  Forked with the variable pointing at a path
 * below a regular file (root writes anywhere else).
 */
static void unusable_dir_case(const char *dir, const char *want_line)
{
    char *saved = strdup(stats_dir), buf[8192];
    int fds[2], status, lines = 0, saved_err;
    size_t n = 0;
    ssize_t got;
    const char *p;
    pid_t pid;

    setup();
    ck_assert_int_eq(pipe(fds), 0);
    setenv(EG_STATS_DIR_ENV, dir, 1);
    fflush(NULL);
    /* The child's line is written at the fork: stderr must be the pipe then. */
    saved_err = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    pid = fork();
    if (pid == 0) {
        some_handshakes();
        some_handshakes();
        fputs("child: handshakes done\n", stderr);
        _exit(0);
    }
    dup2(saved_err, STDERR_FILENO);
    close(saved_err);
    setenv(EG_STATS_DIR_ENV, saved, 1);
    free(saved);
    ck_assert_int_ge(pid, 0);
    close(fds[1]);
    while (n < sizeof(buf) - 1 && (got = read(fds[0], buf + n, sizeof(buf) - 1 - n)) > 0)
        n += (size_t)got;
    buf[n] = '\0';
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed:\n%s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "child: handshakes done\n"));
    for (p = buf; (p = strstr(p, "emsguard: warning: stats: ")) != NULL; p++)
        lines++;
    ck_assert_msg(lines == 1, "%d stats lines in:\n%s", lines, buf);
    ck_assert_msg(strstr(buf, want_line) != NULL, "no '%s' in:\n%s", want_line, buf);
}

/*
 * A hard link planted under the name of a process's temporary file, to a
 * file of the same owner: publishing must not open it (O_TRUNC would have
 * emptied the other file).  The pid must be known before the process
 * publishes, so the child execs this program afresh (--publish-once).
 */
START_TEST(test_planted_link_not_opened)
{
    char victim[PATH_MAX + 16], link_path[PATH_MAX + 32], self[PATH_MAX], got[32] = { 0 };
    int go[2], status;
    ssize_t n;
    FILE *f;
    pid_t pid;
    char c = 0;

    snprintf(victim, sizeof(victim), "%s/victim", stats_dir);
    ck_assert_ptr_nonnull(f = fopen(victim, "w"));
    fputs("keep me\n", f);
    fclose(f);
    ck_assert_int_gt((int)(n = readlink("/proc/self/exe", self, sizeof(self) - 1)), 0);
    self[n] = '\0';
    ck_assert_int_eq(pipe(go), 0);
    fflush(NULL);
    ck_assert_int_ge(pid = fork(), 0);
    if (pid == 0) {
        close(go[1]);
        if (read(go[0], &c, 1) != 1)
            _exit(2);
        execl(self, self, "--publish-once", (char *)NULL);
        _exit(3);
    }
    close(go[0]);
    snprintf(link_path, sizeof(link_path), "%s/.%ld.tmp", stats_dir, (long)pid);
    ck_assert_int_eq(link(victim, link_path), 0);
    ck_assert_int_eq(write(go[1], "g", 1), 1);
    close(go[1]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child failed (status 0x%x)", status);
    ck_assert_ptr_nonnull(f = fopen(victim, "r"));
    ck_assert_ptr_nonnull(fgets(got, sizeof(got), f));
    fclose(f);
    ck_assert_str_eq(got, "keep me\n");
    ck_assert_msg(access(link_path, F_OK) != 0, "the planted link is still there");
    unlink(victim);
}
END_TEST

START_TEST(test_unwritable_dir)
{
    char file[PATH_MAX + 32], dir[PATH_MAX + 64], line[PATH_MAX + 256];
    FILE *f;

    snprintf(file, sizeof(file), "%s/plain-file", stats_dir);
    ck_assert_ptr_nonnull(f = fopen(file, "w"));
    fclose(f);
    snprintf(dir, sizeof(dir), "%s/sub", file);
    snprintf(line, sizeof(line),
        "emsguard: warning: stats: cannot publish live counters in %s: Not a directory; "
        "TLS is not affected\n", dir);
    unusable_dir_case(dir, line);
    unlink(file);
}
END_TEST

START_TEST(test_missing_dir)
{
    char dir[PATH_MAX + 32], line[PATH_MAX + 256];

    snprintf(dir, sizeof(dir), "%s/no-such-dir", stats_dir);
    snprintf(line, sizeof(line),
        "emsguard: warning: stats: cannot publish live counters in %s: No such file or "
        "directory; TLS is not affected\n", dir);
    unusable_dir_case(dir, line);
}
END_TEST

static Suite *stats_suite(void)
{
    Suite *s = suite_create("emsguard-stats");
    TCase *tc = tcase_create("publish");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_publishes_the_counters);
    tcase_add_test(tc, test_forked_child_publishes_its_own);
    tcase_add_test(tc, test_dead_processes_are_cleaned);
    tcase_add_test(tc, test_next_publisher_sweeps);
    tcase_add_test(tc, test_planted_link_not_opened);
    tcase_add_test(tc, test_unwritable_dir);
    tcase_add_test(tc, test_missing_dir);
    suite_add_tcase(s, tc);
    return s;
}

static void remove_stats_dir(void)
{
    rmdir(stats_dir); /* after the library removed our file: registered first */
}

/* test_planted_link_not_opened's child: one policy, so one publish, then exit. */
static int publish_once(void)
{
    SSL_CTX *ctx = hs_server_ctx(HS_MECH_TICKET, 0);
    int ok = ctx != NULL && EMSGUARD_enable(ctx) == 1;

    SSL_CTX_free(ctx);
    hs_cleanup();
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}

int main(int argc, char **argv)
{
    const char *build = getenv("BUILD");
    const char *tmp = getenv("TMPDIR");
    char tmpl[PATH_MAX];
    SRunner *sr;
    int failed;

    if (argc == 2 && strcmp(argv[1], "--publish-once") == 0)
        return publish_once();
    if (build == NULL || realpath(build, build_dir) == NULL) {
        fprintf(stderr, "check_stats: set BUILD to the build directory\n");
        return 2;
    }
    snprintf(tmpl, sizeof(tmpl), "%s/emsguard-stats-XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(tmpl) == NULL) {
        perror("check_stats: mkdtemp");
        return 2;
    }
    snprintf(stats_dir, sizeof(stats_dir), "%s", tmpl);
    /* Before the first policy: that is when the process starts publishing. */
    setenv(EG_STATS_DIR_ENV, stats_dir, 1);
    atexit(remove_stats_dir);
    sr = srunner_create(stats_suite());
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    SSL_CTX_free(policy_server);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(legacy_client);
    hs_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
