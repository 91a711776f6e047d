/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard-bench reporting (report.c): names of the suites, modes and
 * variants, the targets, statistics over rounds, and the outputs.
 */
#ifndef EMSGUARD_BENCH_REPORT_H
#define EMSGUARD_BENCH_REPORT_H

#include <stdio.h>
#include "bench_types.h"

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

#endif
