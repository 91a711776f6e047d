/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The per-process stats file (issue 20): what a process running the policy
 * publishes under the stats directory (/run/emsguard, EMSGUARD_STATS_DIR),
 * and what `emsguard stats` reads.  One page, mapped shared: the process
 * adds to the counters with relaxed atomics, the reader loads them; no
 * system call per handshake.  Counts only: nothing of any peer.
 *
 * A file is live while its process holds an exclusive flock() on it (taken
 * before the file gets its name, dropped when the process exits or execs);
 * a file nobody holds is stale and whoever sees it may remove it.
 */
#ifndef EMSGUARD_STATS_FILE_H
#define EMSGUARD_STATS_FILE_H

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EG_STATS_MAGIC "EMSGSTAT"
#define EG_STATS_VERSION 1
#define EG_STATS_DEFAULT_DIR "/run/emsguard"
#define EG_STATS_DIR_ENV "EMSGUARD_STATS_DIR"
#define EG_STATS_SUFFIX ".stats" /* <pid>.stats */
#define EG_STATS_FILE_SIZE 4096

/* Room for counters added later: the header says how many are in use. */
#define EG_STATS_HOOK_SLOTS 32
#define EG_STATS_AUDIT_SLOTS 8

/* Which parts of emsguard run in the process (sources). */
#define EG_STATS_SRC_HOOKS 0x1 /* the SSL_CTX policy: preload or API */
#define EG_STATS_SRC_GUARD 0x2 /* the provider's TLS1-PRF guard */

struct eg_stats_file {
    char magic[8]; /* EG_STATS_MAGIC, written last */
    uint32_t version;
    uint32_t size; /* sizeof(struct eg_stats_file) */
    uint32_t hook_count; /* counters in use: EMSGUARD_CNT_MAX of the writer */
    uint32_t audit_count; /* EMSGUARD_AUDIT_MAX of the writer */
    int64_t pid;
    int64_t started; /* when the process began publishing, Unix time */
    char program[64]; /* its short name, NUL-terminated */
    _Atomic uint32_t sources; /* EG_STATS_SRC_* */
    uint32_t reserved;
    _Atomic uint64_t hooks[EG_STATS_HOOK_SLOTS]; /* EMSGUARD_COUNTER order */
    _Atomic uint64_t audit[EG_STATS_AUDIT_SLOTS]; /* EMSGUARD_AUDIT_COUNTER order */
};

_Static_assert(sizeof(struct eg_stats_file) <= EG_STATS_FILE_SIZE, "stats file fits a page");

/* 1 if |name| is a stats file's name, "<pid>.stats"; the pid in *pid. */
static inline int eg_stats_file_pid(const char *name, long *pid)
{
    char *end;
    long v;

    if (name[0] < '1' || name[0] > '9')
        return 0;
    errno = 0;
    v = strtol(name, &end, 10);
    if (errno != 0 || v <= 0 || v > INT_MAX || strcmp(end, EG_STATS_SUFFIX) != 0)
        return 0;
    *pid = v;
    return 1;
}

#endif
