/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard-bench helpers (bench_time.c): CPU pinning, the clocks, and timed
 * batches of handshakes.
 */
#ifndef EMSGUARD_BENCH_TIME_H
#define EMSGUARD_BENCH_TIME_H

#include <openssl/ssl.h>
#include "bench_types.h"

/*
 * Pins the calling thread to |cpu| (if >= 0), remembering the mask it had:
 * the worker threads of the multi-threaded run get that mask back.
 */
void bench_pin(int cpu);

/* CPU time of the calling thread (or wall time after bench_use_wall_clock). */
double bench_now(void);
void bench_use_wall_clock(int wall);
double bench_wall_now(void);

/* |n| handshakes of one kind into |cell|; each must resume exactly when offered. */
void bench_time_batch(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer, int n,
    struct bench_cell *cell);
/* The same spread over |threads| threads, timed by the wall clock. */
void bench_time_batch_threads(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer,
    int n, int threads, struct bench_cell *cell);

#endif
