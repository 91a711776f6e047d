/*
 * emsguard-bench: shared types of the handshake benchmark.  bench.c runs the
 * interleaved rounds, child.c the preload routes in child processes,
 * capacity.c the capacity table, cache.c the memory and cache-size checks,
 * report.c turns the per-round measurements into a summary, CSV and SVG.
 */
#ifndef EMSGUARD_BENCH_H
#define EMSGUARD_BENCH_H

#include <stdio.h>
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

const char *bench_suite_name(int suite);
const char *bench_suite_short(int suite);
const char *bench_mode_name(int mode);
const char *bench_variant_name(int variant);
int bench_variant_of_name(const char *name); /* -1 if unknown */

/* The variant a ratio is taken against (itself for the two baselines). */
int bench_baseline(int variant);
int bench_is_baseline(int variant);

/* Median ratio to stock that |mode| must reach. */
double bench_target(int mode);

/* Handshakes per second of one cell (0 if nothing was timed). */
double bench_rate(const struct bench_cell *c);

/* min/median/max of |n| values (sorts |v|). */
void bench_stat_of(double *v, int n, struct bench_stat *out);

/*
 * Mean rate, and the per-round ratio: the variant's fastest slice over its
 * baseline's fastest slice in the same round (a noisy neighbour can only
 * slow a slice down, so the fastest slice is the least disturbed one).  The
 * child stock baseline is itself compared with the in-process stock.
 */
void bench_rate_stat(const struct bench_results *r, int suite, int mode,
    int variant, struct bench_stat *out);
void bench_ratio_stat(const struct bench_results *r, int suite, int mode,
    int variant, struct bench_stat *out);

/*
 * Prints the table and the PASS/FAIL lines; with |gating|, returns the
 * number of failed targets (every non-baseline variant), else 0.
 */
int bench_print_summary(FILE *out, const struct bench_results *r, int gating);

int bench_write_csv(const char *path, const struct bench_results *single,
    const struct bench_results *threaded);
int bench_write_svg(const char *path, const struct bench_results *single,
    const struct bench_results *threaded);

/* ---- shared by bench.c, child.c, capacity.c and cache.c ------------------- */

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

_Noreturn void bench_fail(const char *what);
void bench_module_path(char *out, size_t len);
/* Writes the configuration of |env| to a new temporary file (caller unlinks). */
void bench_write_config_file(int env, const char *module, char *path, size_t len);
/* |keys|: NULL generates new keys, else loads them from that PEM file. */
void bench_make_env(struct env *e, int env, const char *module, const char *keys);
void bench_free_env(struct env *e);
int bench_save_keys(const struct env *e, const char *path);

SSL_CTX *bench_server_ctx(const struct env *e, int suite, int mode);
SSL_CTX *bench_client_ctx(const struct env *e, int suite, int flags);
void bench_enable_default_policy(SSL_CTX *ctx);
/* The session to offer, after checking through the harness that it has EMS and resumes. */
SSL_SESSION *bench_checked_session(SSL_CTX *sctx, SSL_CTX *cctx, int mode);

/* Returns 1 resumed, 0 full, -1 failed. */
int bench_handshake(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer);

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

/* Builds and frees the ctxs of |variant| (envs indexed by ENV_*). */
void bench_make_setup(struct setup *st, int variant, struct env envs[ENV_COUNT]);
void bench_free_setup(struct setup *st);
void bench_check_guard_used(struct setup *st);

/*
 * child.c: the child-process variants (VAR_CHILD_STOCK and after), each in
 * CHILD_COPIES processes started anew for every round, and driven batch by
 * batch like the in-process ones.
 */
#define CHILD_COPIES 3
int bench_child_main(const struct options *o);
void bench_children_start(const struct options *o, const char *module, const char *keys);
/* Replaces the children by new processes: new draws of process layout. */
void bench_children_restart(const struct options *o);
/* Slice |slice| of a cell runs in copy slice % CHILD_COPIES of the variant. */
void bench_child_batch(int variant, int slice, int threads, int suite, int mode, int n,
    struct bench_cell *cell);
void bench_children_stop(void);

/* capacity.c, cache.c */
void bench_report_capacity(const struct env *e, const struct options *o);
int bench_memory_child(const struct options *o);
void bench_run_memory_child(const struct options *o);
void bench_report_scaling(const struct env *e, const struct options *o);

#endif
