/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard-bench part (cache.c): memory per cached session, and the cost per
 * resumption as the session cache grows.
 */
#ifndef EMSGUARD_BENCH_CACHE_H
#define EMSGUARD_BENCH_CACHE_H

#include "bench_types.h"

int bench_memory_child(const struct options *o);
void bench_run_memory_child(const struct options *o);
void bench_report_scaling(const struct env *e, const struct options *o);

#endif
