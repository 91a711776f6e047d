/*
 * emsguard-bench: shared types of the handshake benchmark (bench.c runs it,
 * report.c turns the per-round measurements into a summary, CSV and SVG).
 */
#ifndef EMSGUARD_BENCH_H
#define EMSGUARD_BENCH_H

#include <stdio.h>

#define BENCH_MAX_ROUNDS 32

/* Certificate / cipher suite: ECDHE-ECDSA with P-256, ECDHE-RSA with RSA-2048. */
enum { SUITE_ECDSA, SUITE_RSA, SUITE_COUNT };

/* What kind of handshake is timed. */
enum { MODE_FULL, MODE_SESSION_ID, MODE_TICKET, MODE_COUNT };

/* What is installed; VAR_STOCK is the baseline of every ratio. */
enum { VAR_STOCK, VAR_POLICY, VAR_AUDIT, VAR_ENFORCE, VAR_ALL, VAR_COUNT };

/* One measurement: |handshakes| completed in |seconds| (CPU or wall). */
struct bench_cell {
    long handshakes;
    double seconds;
};

struct bench_results {
    int rounds;
    const char *clock_name; /* "thread-cpu" or "wall" */
    struct bench_cell cell[SUITE_COUNT][MODE_COUNT][VAR_COUNT][BENCH_MAX_ROUNDS];
};

/* min / median / max over the rounds. */
struct bench_stat {
    double min, median, max;
};

const char *bench_suite_name(int suite);
const char *bench_mode_name(int mode);
const char *bench_variant_name(int variant);

/* Median ratio to stock that |mode| must reach. */
double bench_target(int mode);

/* Handshakes per second of one cell (0 if nothing was timed). */
double bench_rate(const struct bench_cell *c);

/* Rate and per-round ratio (variant rate / stock rate of the same round). */
void bench_rate_stat(const struct bench_results *r, int suite, int mode,
    int variant, struct bench_stat *out);
void bench_ratio_stat(const struct bench_results *r, int suite, int mode,
    int variant, struct bench_stat *out);

/*
 * Prints the table and the PASS/FAIL lines; returns the number of failed
 * targets among the gating variants (the API policy).
 */
int bench_print_summary(FILE *out, const struct bench_results *r);

int bench_write_csv(const char *path, const struct bench_results *r);
int bench_write_svg(const char *path, const struct bench_results *r);

#endif
