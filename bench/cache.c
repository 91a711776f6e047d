/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard-bench: the session cache -- memory held per cached session with
 * and without the policy, and the policy's cost per resumption as the cache
 * grows to 1k, 10k and 100k sessions.
 */
#include <limits.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include "bench_env.h"
#include "bench_time.h"
#include "report.h"
#include "cache.h"

/* ---- allocation accounting ----------------------------------------------- */

/*
 * Live bytes requested through OpenSSL's allocator (which libemsguard also
 * uses).  Each block carries a header with its requested size, so the count
 * is exact: glibc's usable size would also count the slack a split free
 * chunk happens to leave, which depends on the heap's history and differed
 * by a few bytes per session between two identical runs.  Installed before
 * any OpenSSL call.
 */
#define HDR 16 /* keeps the blocks 16-byte aligned, as malloc's are */

static atomic_llong live_bytes;

static void *count_malloc(size_t n, const char *file, int line)
{
    unsigned char *p = n <= SIZE_MAX - HDR ? malloc(n + HDR) : NULL;

    (void)file;
    (void)line;
    if (p == NULL)
        return NULL;
    memcpy(p, &n, sizeof(n));
    atomic_fetch_add_explicit(&live_bytes, (long long)n, memory_order_relaxed);
    return p + HDR;
}

static void count_free(void *ptr, const char *file, int line)
{
    unsigned char *p = ptr;
    size_t n;

    (void)file;
    (void)line;
    if (p == NULL)
        return;
    memcpy(&n, p - HDR, sizeof(n));
    atomic_fetch_sub_explicit(&live_bytes, (long long)n, memory_order_relaxed);
    free(p - HDR);
}

static void *count_realloc(void *ptr, size_t n, const char *file, int line)
{
    unsigned char *p = ptr, *q;
    size_t old;

    if (p == NULL)
        return count_malloc(n, file, line);
    if (n == 0) {
        count_free(p, file, line);
        return NULL;
    }
    memcpy(&old, p - HDR, sizeof(old));
    if (n > SIZE_MAX - HDR || (q = realloc(p - HDR, n + HDR)) == NULL)
        return NULL;
    memcpy(q, &n, sizeof(n));
    atomic_fetch_add_explicit(&live_bytes, (long long)n - (long long)old, memory_order_relaxed);
    return q + HDR;
}

static long long live_now(void)
{
    return atomic_load_explicit(&live_bytes, memory_order_relaxed);
}

/* ---- memory per cached session --------------------------------------------------- */

struct held {
    double openssl, heap; /* bytes per session */
    long long total; /* bytes requested through OpenSSL, whole batch */
};

/* Fills |n| more sessions into the server's cache through real full handshakes. */
static struct held fill_batch(SSL_CTX *sctx, SSL_CTX *cctx, int n)
{
    long long before = live_now();
    size_t heap_before = mallinfo2().uordblks;
    long cached = SSL_CTX_sess_number(sctx);
    struct held h;
    int i;

    for (i = 0; i < n; i++)
        if (bench_handshake(sctx, cctx, NULL) != 0)
            bench_fail("memory: a full handshake failed");
    if (SSL_CTX_sess_number(sctx) - cached != n)
        bench_fail("memory: the server did not cache every session");
    h.total = live_now() - before;
    h.openssl = (double)h.total / n;
    h.heap = ((double)mallinfo2().uordblks - (double)heap_before) / n;
    return h;
}

/*
 * Bytes that stay allocated per session held in a server's internal cache
 * (ECDSA, session-ID server).  Two equal batches of full handshakes: the
 * first also pays one-time allocations (fetched algorithms, error state,
 * the first growth steps of the cache's hash table); the second batch's
 * growth is what a session costs.
 */
static void bytes_per_session(const struct env *e, int with_policy, int n, struct held *first,
    struct held *second)
{
    SSL_CTX *sctx = bench_server_ctx(e, SUITE_ECDSA, MODE_SESSION_ID);
    SSL_CTX *cctx = bench_client_ctx(e, SUITE_ECDSA, 0);
    int i;

    if (with_policy) {
        bench_enable_default_policy(sctx);
        bench_enable_default_policy(cctx);
    }
    SSL_CTX_sess_set_cache_size(sctx, 2 * n + 100);
    for (i = 0; i < 20; i++)
        bench_handshake(sctx, cctx, NULL);
    *first = fill_batch(sctx, cctx, n);
    *second = fill_batch(sctx, cctx, n);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}

static void report_memory(const struct env *e, int n)
{
    struct held s1, s2, p1, p2;

    bytes_per_session(e, 0, n, &s1, &s2);
    bytes_per_session(e, 1, n, &p1, &p2);
    printf("\nmemory held per cached session (server internal cache, 2 x %d full handshakes; "
           "bytes requested through OpenSSL's allocator, which libemsguard uses too)\n", n);
    printf("  %-46s %10s %10s %10s\n", "bytes per session", "stock", "api-policy", "difference");
    printf("  %-46s %10.1f %10.1f %+10.1f\n", "OpenSSL allocator, batch 2 (measured)",
        s2.openssl, p2.openssl, p2.openssl - s2.openssl);
    printf("  %-46s %10.1f %10.1f %+10.1f\n", "OpenSSL allocator, batch 1 (with one-offs)",
        s1.openssl, p1.openssl, p1.openssl - s1.openssl);
    printf("  %-46s %10.1f %10.1f %+10.1f\n", "glibc heap (mallinfo2; + chunk slack), batch 2",
        s2.heap, p2.heap, p2.heap - s2.heap);
    /*
     * The policy keeps no per-session state of its own (it reads the EMS
     * flag from the session); under one byte per session over n sessions is
     * a one-time allocation spread over them, not a per-session one.
     */
    printf("policy extra bytes per cached session: %.2f (%lld bytes in total for %d sessions; "
           "%s: under 1 byte per session)\n",
        p2.openssl - s2.openssl, p2.total - s2.total, n,
        llabs(p2.total - s2.total) < n ? "PASS" : "FAIL");
}

/*
 * The memory report runs in a child process of its own: the counting
 * allocator must be installed before OpenSSL's first allocation, and it
 * would otherwise also be timed in every handshake of the benchmark.
 */
int bench_memory_child(const struct options *o)
{
    struct env plain;
    char module[PATH_MAX + 16];

    if (!CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free))
        bench_fail("cannot install the counting allocator");
    OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
    bench_module_path(module, sizeof(module));
    bench_make_env(&plain, ENV_PLAIN, module, NULL);
    report_memory(&plain, o->mem_sessions);
    bench_free_env(&plain);
    return fflush(stdout) == 0 ? 0 : 2;
}

void bench_run_memory_child(const struct options *o)
{
    char n[16];
    pid_t pid;
    int status;

    snprintf(n, sizeof(n), "%d", o->mem_sessions);
    fflush(stdout);
    if ((pid = fork()) == 0) {
        execl("/proc/self/exe", "emsguard-bench", "--memory-only", n, (char *)NULL);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)
        || WEXITSTATUS(status) != 0)
        bench_fail("the memory measurement failed");
}

/* ---- scaling with the size of the session cache ------------------------------------- */

/*
 * Synthetic sessions, as a busy server's cache holds: random IDs and master
 * keys.  They never resume; they only make the cache (hash table and the
 * periodic expiry sweep) as large as a real one.
 */
static void fill_cache(SSL_CTX *ctx, int count)
{
    unsigned char id[32], mk[48];
    int i;

    SSL_CTX_sess_set_cache_size(ctx, count + 1000);
    for (i = 0; i < count; i++) {
        SSL_SESSION *sess = SSL_SESSION_new();

        if (sess == NULL || RAND_bytes(id, sizeof(id)) != 1 || RAND_bytes(mk, sizeof(mk)) != 1
            || !SSL_SESSION_set1_id(sess, id, sizeof(id))
            || !SSL_SESSION_set1_master_key(sess, mk, sizeof(mk))
            || !SSL_SESSION_set_protocol_version(sess, TLS1_2_VERSION)
            || !SSL_SESSION_set_timeout(sess, 3600) || !SSL_CTX_add_session(ctx, sess))
            bench_fail("scaling: cannot fill the session cache");
        SSL_SESSION_free(sess);
    }
}

#define SCALING_PAIRS 12

/*
 * Session-ID resumption, stock vs policy, with |count| cached sessions:
 * SCALING_PAIRS interleaved pairs of batches (order alternating).  Like the
 * ratio table, the cost is each side's fastest batch (the least disturbed);
 * the range is that of the per-pair ratios.  Returns the fastest-batch ratio.
 */
static double scaling_point(const struct env *e, int count, int n)
{
    SSL_CTX *sctx[2], *cctx[2];
    SSL_SESSION *offer[2];
    double ratio[SCALING_PAIRS], best[2] = { 0, 0 }, result;
    struct bench_stat st;
    int v, i;

    for (v = 0; v < 2; v++) {
        sctx[v] = bench_server_ctx(e, SUITE_ECDSA, MODE_SESSION_ID);
        cctx[v] = bench_client_ctx(e, SUITE_ECDSA, 0);
        if (v == 1) {
            /* Before filling: enabling the policy empties the internal cache. */
            bench_enable_default_policy(sctx[v]);
            bench_enable_default_policy(cctx[v]);
        }
        fill_cache(sctx[v], count);
        offer[v] = bench_checked_session(sctx[v], cctx[v], MODE_SESSION_ID);
    }
    for (i = 0; i < SCALING_PAIRS; i++) {
        struct bench_cell c[2] = { { 0, 0, 0 }, { 0, 0, 0 } };

        for (v = 0; v < 2; v++) {
            int w = (v + i) % 2;

            bench_time_batch(sctx[w], cctx[w], offer[w], n, &c[w]);
            if (bench_rate(&c[w]) > best[w])
                best[w] = bench_rate(&c[w]);
        }
        ratio[i] = bench_rate(&c[1]) / bench_rate(&c[0]);
    }
    bench_stat_of(ratio, SCALING_PAIRS, &st);
    result = best[1] / best[0];
    printf("  %8d %8.1f %8.1f %+8.2f   %6.3f   %6.3f-%.3f\n", count, 1e6 / best[0],
        1e6 / best[1], 1e6 / best[1] - 1e6 / best[0], result, st.min, st.max);
    for (v = 0; v < 2; v++) {
        SSL_SESSION_free(offer[v]);
        SSL_CTX_free(cctx[v]);
        SSL_CTX_free(sctx[v]);
    }
    return result;
}

/* Flat: the median ratio at the largest size within this of the smallest's. */
#define FLAT_TOLERANCE 0.05

void bench_report_scaling(const struct env *e, const struct options *o)
{
    double first = 0, last = 0;
    int count;

    printf("\nscaling: resume-session-id (ECDSA P-256) with the server cache pre-filled; "
           "%d interleaved pairs of %d handshakes;\nus/hs of the fastest batch, ratio = "
           "policy rate / stock rate, with the range of the per-pair ratios\n",
        SCALING_PAIRS, o->n_resumed / 6);
    printf("  %8s %8s %8s %8s   %6s   %s\n", "cached", "stock", "policy", "extra", "ratio",
        "per-pair");
    printf("  %8s %8s %8s %8s\n", "sessions", "us/hs", "us/hs", "us/hs");
    for (count = 1000; count <= o->scaling_max; count *= 10) {
        last = scaling_point(e, count, o->n_resumed / 6);
        if (count == 1000)
            first = last;
    }
    printf("scaling flat: %s (ratio %.3f at the largest cache vs %.3f at 1000 sessions; "
           "tolerance %.2f; informational, the gate is the ratio table)\n",
        last >= first - FLAT_TOLERANCE ? "PASS" : "FAIL", last, first, FLAT_TOLERANCE);
}
