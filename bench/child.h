/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard-bench part (child.c): the child-process variants (VAR_CHILD_STOCK
 * and after), each in CHILD_COPIES processes started anew for every round,
 * and driven batch by batch like the in-process ones.
 */
#ifndef EMSGUARD_BENCH_CHILD_H
#define EMSGUARD_BENCH_CHILD_H

#include "bench_types.h"

#define CHILD_COPIES 3
int bench_child_main(const struct options *o);
void bench_children_start(const struct options *o, const char *module, const char *keys);
/* Replaces the children by new processes: new draws of process layout. */
void bench_children_restart(const struct options *o);
/* Slice |slice| of a cell runs in copy slice % CHILD_COPIES of the variant. */
void bench_child_batch(int variant, int slice, int threads, int suite, int mode, int n,
    struct bench_cell *cell);
void bench_children_stop(void);

#endif
