/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard-bench helpers: timing -- CPU pinning, the clocks, and batches of
 * handshakes timed on one thread or spread over several.  Used by main
 * (bench.c) and its parts; it calls only the handshake of bench_env.c.
 */
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <openssl/ssl.h>
#include "harness.h"
#include "bench_env.h"
#include "bench_time.h"

/* ---- timing ------------------------------------------------------------------- */

/*
 * The single-threaded work of every process -- the parent and the three
 * children, which never run at the same time -- is pinned to one CPU.  On a
 * shared machine the two cores are not equally disturbed (another job on a
 * core, or on its SMT sibling, slows every instruction without showing in
 * CPU time); pinned, the in-process and the child variants are measured on
 * the same core, so that cancels out in the ratios as the interleaving does.
 */
static cpu_set_t unpinned;
static int pinned;

void bench_pin(int cpu)
{
    cpu_set_t one;

    if (cpu < 0 || sched_getaffinity(0, sizeof(unpinned), &unpinned) != 0)
        return;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pinned = sched_setaffinity(0, sizeof(one), &one) == 0;
}

static clockid_t bench_clock = CLOCK_THREAD_CPUTIME_ID;
static int threads_wall; /* see threads_now() */

void bench_use_wall_clock(int wall)
{
    bench_clock = wall ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID;
    threads_wall = wall;
}

static double clock_now(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double bench_now(void)
{
    return clock_now(bench_clock);
}

double bench_wall_now(void)
{
    return clock_now(CLOCK_MONOTONIC);
}

static void run_batch(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer, int n)
{
    int i;

    for (i = 0; i < n; i++)
        if (bench_handshake(sctx, cctx, offer) != (offer != NULL))
            bench_fail("a timed handshake failed or did not (not) resume as expected");
}

void bench_time_batch(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer, int n,
    struct bench_cell *cell)
{
    double t0 = bench_now();

    run_batch(sctx, cctx, offer, n);
    cell->seconds += bench_now() - t0;
    cell->handshakes += n;
}

/*
 * The multi-threaded run counts the CPU time of the whole process (all its
 * threads; the waiting main thread uses none), which a noisy neighbour does
 * not inflate the way it inflates wall time; --wall gives wall time, i.e.
 * throughput.  Cache-line bouncing and lock spinning between the threads
 * cost CPU time and show up either way.
 */
static double threads_now(void)
{
    return clock_now(threads_wall ? CLOCK_MONOTONIC : CLOCK_PROCESS_CPUTIME_ID);
}

struct worker {
    SSL_CTX *sctx, *cctx;
    SSL_SESSION *offer; /* the thread's own copy */
    int n;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    run_batch(w->sctx, w->cctx, w->offer, w->n);
    return NULL;
}

/*
 * Every thread shares the two SSL_CTXs (and with them the session cache,
 * the ticket keys and emsguard's per-ctx state) but offers its own copy of
 * the session, as separate client connections do.
 */
void bench_time_batch_threads(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer,
    int n, int threads, struct bench_cell *cell)
{
    struct worker w[BENCH_MAX_THREADS];
    pthread_t tid[BENCH_MAX_THREADS];
    pthread_attr_t attr;
    double t0;
    int i;

    /* The workers run on every CPU the process had before pinning. */
    if (pthread_attr_init(&attr) != 0
        || (pinned && pthread_attr_setaffinity_np(&attr, sizeof(unpinned), &unpinned) != 0))
        bench_fail("cannot set up the worker threads");
    for (i = 0; i < threads; i++) {
        w[i] = (struct worker){ sctx, cctx, NULL, n / threads };
        if (offer != NULL && (w[i].offer = hs_session_copy(offer)) == NULL)
            bench_fail("cannot copy the session for a thread");
    }
    t0 = threads_now();
    for (i = 0; i < threads; i++)
        if (pthread_create(&tid[i], &attr, worker_main, &w[i]) != 0)
            bench_fail("cannot start a thread");
    for (i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    pthread_attr_destroy(&attr);
    cell->seconds += threads_now() - t0;
    for (i = 0; i < threads; i++) {
        cell->handshakes += w[i].n;
        SSL_SESSION_free(w[i].offer);
    }
}
