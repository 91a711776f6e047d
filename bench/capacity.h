/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard-bench part (capacity.c): the capacity table.
 */
#ifndef EMSGUARD_BENCH_CAPACITY_H
#define EMSGUARD_BENCH_CAPACITY_H

#include "bench_types.h"

void bench_report_capacity(const struct env *e, const struct options *o);

#endif
