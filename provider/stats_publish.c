/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Publishing this process's live counters (issue 20) for `emsguard stats`:
 * the SSL_CTX policy's counters (EMSGUARD_CNT_*, summed over every ctx) and
 * the TLS1-PRF guard's audit counts, in a one-page file under the stats
 * directory (stats_file.h) that the process maps shared.
 *
 * The hot path is one relaxed atomic add through eg_stats_hooks or
 * eg_stats_audit: no system call, no allocation, no lock.  Those point at a
 * private page until the file is mapped, and stay there if it cannot be
 * (missing or unwritable directory: one log line, TLS unaffected).
 *
 * A forked child publishes its own file, counting from zero (pthread_atfork);
 * its copy of the parent's mapping is dropped.  At exit the process removes
 * its file; files of processes that died without exiting are removed by the
 * next process that publishes, and by `emsguard stats`.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "internal.h"
#include "stats_file.h"

_Static_assert(EMSGUARD_CNT_MAX <= EG_STATS_HOOK_SLOTS, "stats file has room for every counter");
_Static_assert(EG_AUDIT_COUNT <= EG_STATS_AUDIT_SLOTS, "stats file has room for the audit");

/* Where the counts go while nothing is mapped. */
static struct eg_stats_file private_page;

_Atomic(_Atomic uint64_t *) eg_stats_hooks = private_page.hooks;
_Atomic(_Atomic uint64_t *) eg_stats_audit = private_page.audit;

static pthread_mutex_t publish_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int started; /* publishing was asked for in this process */
static unsigned started_sources;
static struct eg_stats_file *mapped; /* this process's file, or NULL */
static int mapped_fd = -1; /* holds the flock that says "alive" */
static pid_t mapped_pid;
static char mapped_path[PATH_MAX];
static EMSGUARD_POLICY log_policy;

/* The directory, and whether the administrator chose it (the variable). */
static const char *stats_dir(int *chosen)
{
    const char *dir = secure_getenv(EG_STATS_DIR_ENV);

    *chosen = dir != NULL && *dir != '\0';
    return *chosen ? dir : EG_STATS_DEFAULT_DIR;
}

/*
 * The one line a process writes when it cannot publish.  A missing default
 * directory means stats were not set up: a debug line only.  A directory
 * the administrator made or named that does not work: a warning, shown
 * whatever EventLogging asks (but 0), like the audit summary.
 */
static void cannot_publish(const char *dir, int chosen, int err)
{
    EMSGUARD_POLICY p = log_policy;

    if (err == ENOENT && !chosen) {
        emsguard_log(&p, EG_LEVEL_DEBUG,
            "stats: %s does not exist; live counters are not published "
            "(create it, or set " EG_STATS_DIR_ENV ")", dir);
        return;
    }
    if (p.values[EG_KEY_EVENT_LOGGING] != 0)
        p.values[EG_KEY_EVENT_LOGGING] |= EMSGUARD_LOG_WARNINGS;
    emsguard_log(&p, EG_LEVEL_WARNING,
        "stats: cannot publish live counters in %s: %s; TLS is not affected",
        dir, strerror(err));
}

/* Removes the files of processes that no longer exist (best effort). */
static void sweep_dead(const char *dir)
{
    char path[PATH_MAX];
    struct dirent *e;
    DIR *d = opendir(dir);
    long pid;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL)
        if (eg_stats_file_pid(e->d_name, &pid) && kill((pid_t)pid, 0) != 0
            && errno == ESRCH
            && snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < (int)sizeof(path))
            unlink(path);
    closedir(d);
}

/*
 * Creates, locks and maps this process's file, then gives it its name: a
 * reader never sees a named file without its lock.  Caller holds the lock.
 */
static void publish(void)
{
    int chosen, fd;
    const char *dir = stats_dir(&chosen);
    pid_t pid = getpid();
    char tmp[PATH_MAX], path[PATH_MAX];
    struct eg_stats_file *f;
    int err;

    if (snprintf(tmp, sizeof(tmp), "%s/.%ld.tmp", dir, (long)pid) >= (int)sizeof(tmp)
        || snprintf(path, sizeof(path), "%s/%ld" EG_STATS_SUFFIX, dir, (long)pid)
            >= (int)sizeof(path)) {
        cannot_publish(dir, chosen, ENAMETOOLONG);
        return;
    }
    sweep_dead(dir);
    /*
     * Only a file made here: whatever already has that name (one left by a
     * process of this pid that died while publishing, or a link someone
     * with write access to the directory put there) is unlinked, never
     * opened, so a hard link to another file cannot have it truncated.
     */
    fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)
        fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0) {
        cannot_publish(dir, chosen, errno);
        return;
    }
    f = MAP_FAILED;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 || ftruncate(fd, EG_STATS_FILE_SIZE) != 0
        || (f = mmap(NULL, EG_STATS_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0))
            == MAP_FAILED) {
        err = errno;
        unlink(tmp);
        close(fd);
        cannot_publish(dir, chosen, err);
        return;
    }
    f->version = EG_STATS_VERSION;
    f->size = sizeof(*f);
    f->hook_count = EMSGUARD_CNT_MAX;
    f->audit_count = EG_AUDIT_COUNT;
    f->pid = pid;
    f->started = (int64_t)time(NULL);
    snprintf(f->program, sizeof(f->program), "%s", program_invocation_short_name);
    atomic_store_explicit(&f->sources, started_sources, memory_order_relaxed);
    memcpy(f->magic, EG_STATS_MAGIC, sizeof(f->magic));
    if (rename(tmp, path) != 0) {
        err = errno;
        unlink(tmp);
        munmap(f, EG_STATS_FILE_SIZE);
        close(fd);
        cannot_publish(dir, chosen, err);
        return;
    }
    mapped = f;
    mapped_fd = fd;
    mapped_pid = pid;
    memcpy(mapped_path, path, sizeof(mapped_path));
    atomic_store_explicit(&eg_stats_hooks, f->hooks, memory_order_release);
    atomic_store_explicit(&eg_stats_audit, f->audit, memory_order_release);
}

/* At exit the file goes with the process (an exec or a kill leave it stale). */
static void unpublish_at_exit(void)
{
    if (mapped != NULL && mapped_pid == getpid())
        unlink(mapped_path);
}

/*
 * In a forked child (one thread): the parent's file is the parent's.  Count
 * from zero in a file of our own.  The mapping is not unmapped at exit, when
 * other threads may still count into it; here no other thread exists.
 */
static void publish_in_child(void)
{
    pthread_mutex_init(&publish_lock, NULL);
    if (!atomic_load_explicit(&started, memory_order_relaxed))
        return;
    atomic_store_explicit(&eg_stats_hooks, private_page.hooks, memory_order_release);
    atomic_store_explicit(&eg_stats_audit, private_page.audit, memory_order_release);
    if (mapped != NULL) {
        munmap(mapped, EG_STATS_FILE_SIZE);
        close(mapped_fd); /* the parent still holds its lock */
        mapped = NULL;
        mapped_fd = -1;
    }
    publish();
}

void emsguard_stats_start(const EMSGUARD_POLICY *policy, unsigned source)
{
    pthread_mutex_lock(&publish_lock);
    if (!atomic_load_explicit(&started, memory_order_relaxed)) {
        if (policy != NULL)
            log_policy = *policy;
        else
            emsguard_policy_defaults(&log_policy);
        started_sources = source;
        if (pthread_atfork(NULL, NULL, publish_in_child) == 0 && atexit(unpublish_at_exit) == 0)
            publish();
        else
            cannot_publish(EG_STATS_DEFAULT_DIR, 1, ENOMEM);
        atomic_store_explicit(&started, 1, memory_order_release);
    } else {
        started_sources |= source;
        if (mapped != NULL)
            atomic_fetch_or_explicit(&mapped->sources, source, memory_order_relaxed);
    }
    pthread_mutex_unlock(&publish_lock);
}
