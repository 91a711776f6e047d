/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard-bench: the types every file of the handshake benchmark shares
 * (types only; each .c file declares its functions in its own header).
 *
 *   bench.c      main: the options and the interleaved rounds
 *   child.c      the preload routes, in child processes
 *   capacity.c   the capacity table
 *   cache.c      the memory and cache-size checks
 *   report.c     the per-round measurements as a summary, CSV and SVG
 *   bench_env.c  helpers: library contexts, SSL_CTXs, one handshake
 *   bench_time.c helpers: pinning, clocks, timed batches
 *
 * main calls the parts, the parts call the helpers and report.c; nothing
 * calls back up.
 */
#ifndef EMSGUARD_BENCH_TYPES_H
#define EMSGUARD_BENCH_TYPES_H

#include <openssl/ssl.h>

#define BENCH_MAX_ROUNDS 32
#define BENCH_MAX_THREADS 64

/* Certificate / cipher suite: ECDHE-ECDSA with P-256, ECDHE-RSA with RSA-2048. */
enum { SUITE_ECDSA, SUITE_RSA, SUITE_COUNT };

/* What kind of handshake is timed. */
enum { MODE_FULL, MODE_SESSION_ID, MODE_TICKET, MODE_COUNT };

/*
 * What is installed.  The first four run in the benchmark's own process and
 * are compared with VAR_STOCK; the last three run in child processes (the
 * preload library must be there from process start) and are compared with
 * VAR_CHILD_STOCK, a child that runs stock OpenSSL the same way.
 */
enum {
    VAR_STOCK,
    VAR_POLICY,
    VAR_AUDIT,
    VAR_ENFORCE,
    VAR_CHILD_STOCK,
    VAR_PRELOAD,
    VAR_ALL,
    VAR_COUNT
};
#define VAR_IN_PROCESS 4 /* VAR_STOCK .. VAR_ENFORCE */

/*
 * One measurement: |handshakes| completed in |seconds| (CPU or wall), and
 * the rate of the fastest of the slices that made it up.
 */
struct bench_cell {
    long handshakes;
    double seconds;
    double best; /* handshakes per second of the fastest slice */
};

struct bench_results {
    int rounds;
    int threads;
    int calibrate; /* preload and all ran stock: ratios are noise, nothing gates */
    const char *clock_name; /* "thread-cpu" or "wall" */
    struct bench_cell cell[SUITE_COUNT][MODE_COUNT][VAR_COUNT][BENCH_MAX_ROUNDS];
};

/* min / median / max over the rounds. */
struct bench_stat {
    double min, median, max;
};

/* ---- the run: options, library contexts, SSL_CTXs ----------------------- */

struct options {
    int rounds;
    int chunks; /* interleaving slices per round and cell */
    int n_full, n_resumed; /* handshakes per variant, per round */
    int threads; /* threads of the multi-threaded run (0: none) */
    int threaded_rounds; /* rounds that also run it, spread over the run */
    int wall; /* single thread: CLOCK_MONOTONIC instead of thread CPU time */
    int memory, scaling, capacity, children;
    /*
     * --calibrate: the preload and "all" children run without emsguard, as
     * stock children, so their ratios show the noise of the measurement.
     */
    int calibrate;
    int mem_sessions;
    int scaling_max; /* largest cache size tried */
    const char *csv, *svg;
    /* hidden options of the child processes */
    int memory_only;
    int child_variant; /* -1: not a child */
    int cpu; /* the CPU every process's single-threaded work is pinned to, -1: none */
    const char *keys; /* PEM file with the parent's server keys */
};

/* Library contexts, each loaded from a generated openssl.cnf. */
enum { ENV_PLAIN, ENV_AUDIT, ENV_ENFORCE, ENV_COUNT };

struct env {
    OSSL_LIB_CTX *libctx;
    EVP_PKEY *key[SUITE_COUNT];
    X509 *cert[SUITE_COUNT];
};

/* The SSL_CTXs of one variant: one client and one server per suite/mode. */
struct setup {
    SSL_CTX *server[SUITE_COUNT][MODE_COUNT];
    SSL_CTX *client[SUITE_COUNT];
    SSL_SESSION *offer[SUITE_COUNT][MODE_COUNT]; /* NULL for MODE_FULL */
};

#endif
