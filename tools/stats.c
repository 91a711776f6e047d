/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard stats [--dir DIR] [--json | --prometheus]
 *
 * The live counters of every process on this host that runs the emsguard
 * policy (issue 20): each publishes a one-page file under the stats
 * directory (provider/stats_file.h, written by provider/stats_publish.c).
 * Per process (pid, program) and in total; --prometheus writes the text
 * exposition format for node_exporter's textfile collector.  Files of
 * processes that are gone are not counted, and are removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include "commands.h"
#include "json.h"
#include "emsguard.h"
#include "stats_file.h"

#define MAX_PROCESSES 4096

typedef enum { OUT_TEXT, OUT_JSON, OUT_PROMETHEUS } out_format;

/* One live process, as its file said when read. */
typedef struct {
    long pid;
    char program[64];
    int64_t started;
    unsigned sources;
    uint64_t hooks[EMSGUARD_CNT_MAX];
    uint64_t audit[EMSGUARD_AUDIT_MAX];
} proc_stats;

typedef struct {
    proc_stats *procs;
    size_t n;
    proc_stats total;
    int cleaned; /* stale files removed */
    int unreadable; /* files this user may not read */
} stats_view;

static const char *audit_name(int i)
{
    static const char *const names[EMSGUARD_AUDIT_MAX] = {
        [EMSGUARD_AUDIT_EMS_DERIVATIONS] = "ems_derivations",
        [EMSGUARD_AUDIT_NON_EMS_DERIVATIONS] = "non_ems_derivations",
        [EMSGUARD_AUDIT_RESUMPTIONS] = "resumptions",
        [EMSGUARD_AUDIT_REFUSED] = "refused",
        [EMSGUARD_AUDIT_LOST_FINGERPRINTS] = "lost_fingerprints",
    };

    return names[i];
}

static void usage(FILE *out)
{
    fputs("usage: emsguard stats [--dir DIR] [--json | --prometheus]\n"
          "  --dir DIR       the stats directory (default: " EG_STATS_DIR_ENV ",\n"
          "                  else " EG_STATS_DEFAULT_DIR ")\n"
          "  --json          one JSON object instead of text\n"
          "  --prometheus    Prometheus text format (node_exporter textfile collector)\n"
          "The live counters of every process running the emsguard policy: the\n"
          "SSL_CTX policy's (preload or API) and the TLS1-PRF guard's audit, per\n"
          "process and in total.  Files of processes that are gone are removed.\n"
          "Exit status: 0 read, 2 the directory cannot be read.\n", out);
}

/* 1 if the process that wrote |fd| (named for |pid|) still holds it. */
static int still_held(int fd, long pid)
{
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        return 0;
    /* The writer holds LOCK_EX for its life; a lock we can take is free. */
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
        flock(fd, LOCK_UN);
        return 0;
    }
    return 1; /* EWOULDBLOCK: held; anything else: do not guess "gone" */
}

/* Removes |path| if it still is the file |fd| (not a new process's). */
static int remove_stale(const char *path, int fd)
{
    struct stat a, b;

    return fstat(fd, &a) == 0 && lstat(path, &b) == 0 && a.st_dev == b.st_dev
        && a.st_ino == b.st_ino && unlink(path) == 0;
}

/* Copies the counts of a mapped file; 0 if it is not a stats file. */
static int read_page(const struct eg_stats_file *f, long pid, proc_stats *p)
{
    uint32_t i, n;

    if (memcmp(f->magic, EG_STATS_MAGIC, sizeof(f->magic)) != 0
        || f->version != EG_STATS_VERSION || f->pid != pid)
        return 0;
    memset(p, 0, sizeof(*p));
    p->pid = pid;
    memcpy(p->program, f->program, sizeof(p->program) - 1);
    p->started = f->started;
    p->sources = atomic_load_explicit(&f->sources, memory_order_relaxed);
    n = f->hook_count < EMSGUARD_CNT_MAX ? f->hook_count : EMSGUARD_CNT_MAX;
    for (i = 0; i < n; i++)
        p->hooks[i] = atomic_load_explicit(&f->hooks[i], memory_order_relaxed);
    n = f->audit_count < EMSGUARD_AUDIT_MAX ? f->audit_count : EMSGUARD_AUDIT_MAX;
    for (i = 0; i < n; i++)
        p->audit[i] = atomic_load_explicit(&f->audit[i], memory_order_relaxed);
    return 1;
}

/* Reads one file; 1 if it is a live process's (into *p). */
static int read_one(stats_view *v, const char *dir, const char *name, long pid, proc_stats *p)
{
    char path[4096];
    struct stat st;
    void *map;
    int fd, ok;

    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        if (errno == EACCES) {
            fprintf(stderr, "emsguard stats: cannot read %s: %s\n", path, strerror(errno));
            v->unreadable++;
        }
        return 0;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)
        || st.st_size < (off_t)sizeof(struct eg_stats_file)) {
        close(fd);
        return 0;
    }
    if (!still_held(fd, pid)) {
        v->cleaned += remove_stale(path, fd);
        close(fd);
        return 0;
    }
    map = mmap(NULL, sizeof(struct eg_stats_file), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return 0;
    ok = read_page(map, pid, p);
    munmap(map, sizeof(struct eg_stats_file));
    return ok;
}

static int by_pid(const void *a, const void *b)
{
    long x = ((const proc_stats *)a)->pid, y = ((const proc_stats *)b)->pid;

    return (x > y) - (x < y);
}

/* Every live process of |dir|; 0 if the directory cannot be read. */
static int read_dir(const char *dir, stats_view *v)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t i;
    long pid;
    int k;

    memset(v, 0, sizeof(*v));
    if (d == NULL) {
        fprintf(stderr, "emsguard stats: cannot read %s: %s\n", dir, strerror(errno));
        return 0;
    }
    if ((v->procs = calloc(MAX_PROCESSES, sizeof(*v->procs))) == NULL) {
        closedir(d);
        fputs("emsguard stats: out of memory\n", stderr);
        return 0;
    }
    while ((e = readdir(d)) != NULL && v->n < MAX_PROCESSES)
        if (eg_stats_file_pid(e->d_name, &pid) && read_one(v, dir, e->d_name, pid, &v->procs[v->n]))
            v->n++;
    closedir(d);
    qsort(v->procs, v->n, sizeof(*v->procs), by_pid);
    for (i = 0; i < v->n; i++) {
        for (k = 0; k < EMSGUARD_CNT_MAX; k++)
            v->total.hooks[k] += v->procs[i].hooks[k];
        for (k = 0; k < EMSGUARD_AUDIT_MAX; k++)
            v->total.audit[k] += v->procs[i].audit[k];
        v->total.sources |= v->procs[i].sources;
    }
    return 1;
}

/* ---- output --------------------------------------------------------------- */

static const char *sources_text(unsigned s)
{
    return (s & EG_STATS_SRC_HOOKS) && (s & EG_STATS_SRC_GUARD) ? "policy, guard"
        : (s & EG_STATS_SRC_GUARD)                              ? "guard"
                                                                : "policy";
}

static void print_counts_text(const proc_stats *p)
{
    int k;

    for (k = 0; k < EMSGUARD_CNT_MAX; k++)
        printf("  %-28s %llu\n", EMSGUARD_counter_name((EMSGUARD_COUNTER)k),
            (unsigned long long)p->hooks[k]);
    for (k = 0; k < EMSGUARD_AUDIT_MAX; k++)
        printf("  audit_%-22s %llu\n", audit_name(k), (unsigned long long)p->audit[k]);
}

static void print_text(const char *dir, const stats_view *v)
{
    char when[32];
    size_t i;

    printf("emsguard stats: %s: %zu live process%s\n", dir, v->n, v->n == 1 ? "" : "es");
    for (i = 0; i < v->n; i++) {
        const proc_stats *p = &v->procs[i];
        time_t t = (time_t)p->started;
        struct tm tm;

        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&t, &tm));
        printf("\npid %ld %s (%s), since %s\n", p->pid, p->program, sources_text(p->sources), when);
        print_counts_text(p);
    }
    printf("\ntotal over %zu process%s\n", v->n, v->n == 1 ? "" : "es");
    print_counts_text(&v->total);
}

static void json_counts(json_writer *w, const proc_stats *p)
{
    int k;

    json_key(w, "counters");
    json_begin_object(w);
    for (k = 0; k < EMSGUARD_CNT_MAX; k++) {
        json_key(w, EMSGUARD_counter_name((EMSGUARD_COUNTER)k));
        json_int(w, (long long)p->hooks[k]);
    }
    json_end_object(w);
    json_key(w, "audit");
    json_begin_object(w);
    for (k = 0; k < EMSGUARD_AUDIT_MAX; k++) {
        json_key(w, audit_name(k));
        json_int(w, (long long)p->audit[k]);
    }
    json_end_object(w);
}

static int print_json(const char *dir, const stats_view *v)
{
    json_writer w;
    size_t i;

    json_init(&w, stdout, 1);
    json_begin_object(&w);
    json_key(&w, "dir");
    json_string(&w, dir);
    json_key(&w, "processes");
    json_begin_array(&w);
    for (i = 0; i < v->n; i++) {
        const proc_stats *p = &v->procs[i];

        json_begin_object(&w);
        json_key(&w, "pid");
        json_int(&w, p->pid);
        json_key(&w, "program");
        json_string(&w, p->program);
        json_key(&w, "started");
        json_int(&w, (long long)p->started);
        json_key(&w, "policy");
        json_bool(&w, (p->sources & EG_STATS_SRC_HOOKS) != 0);
        json_key(&w, "guard");
        json_bool(&w, (p->sources & EG_STATS_SRC_GUARD) != 0);
        json_counts(&w, p);
        json_end_object(&w);
    }
    json_end_array(&w);
    json_key(&w, "total");
    json_begin_object(&w);
    json_key(&w, "processes");
    json_int(&w, (long long)v->n);
    json_counts(&w, &v->total);
    json_end_object(&w);
    json_key(&w, "stale_files_removed");
    json_int(&w, v->cleaned);
    json_key(&w, "unreadable_files");
    json_int(&w, v->unreadable);
    json_end_object(&w);
    return json_finish(&w);
}

/* A label value: backslash, quote and newline escaped, as the format asks. */
static void prom_label(const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            printf("\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", stdout);
        else
            putchar(*s);
    }
}

/* One counter family: per process, and its live total as a gauge. */
static void prom_family(const char *name, const char *help, const stats_view *v,
    int audit, int k)
{
    size_t i;

    printf("# HELP emsguard_%s_total %s, per process since it began publishing.\n"
           "# TYPE emsguard_%s_total counter\n", name, help, name);
    for (i = 0; i < v->n; i++) {
        const proc_stats *p = &v->procs[i];

        printf("emsguard_%s_total{pid=\"%ld\",program=\"", name, p->pid);
        prom_label(p->program);
        printf("\"} %llu\n", (unsigned long long)(audit ? p->audit[k] : p->hooks[k]));
    }
    printf("# HELP emsguard_live_%s %s, summed over the live processes.\n"
           "# TYPE emsguard_live_%s gauge\nemsguard_live_%s %llu\n", name, help, name, name,
        (unsigned long long)(audit ? v->total.audit[k] : v->total.hooks[k]));
}

static void print_prometheus(const stats_view *v)
{
    char name[64], help[96];
    int k;

    printf("# HELP emsguard_live_processes Processes running the emsguard policy.\n"
           "# TYPE emsguard_live_processes gauge\nemsguard_live_processes %zu\n", v->n);
    for (k = 0; k < EMSGUARD_CNT_MAX; k++) {
        snprintf(help, sizeof(help), "emsguard SSL_CTX policy counter %s",
            EMSGUARD_counter_name((EMSGUARD_COUNTER)k));
        prom_family(EMSGUARD_counter_name((EMSGUARD_COUNTER)k), help, v, 0, k);
    }
    for (k = 0; k < EMSGUARD_AUDIT_MAX; k++) {
        snprintf(name, sizeof(name), "audit_%s", audit_name(k));
        snprintf(help, sizeof(help), "emsguard TLS1-PRF guard audit count %s", audit_name(k));
        prom_family(name, help, v, 1, k);
    }
}

int stats_main(int argc, char **argv)
{
    const char *dir = NULL;
    out_format format = OUT_TEXT;
    stats_view v;
    int i, ok = 1;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--json") == 0 && format == OUT_TEXT)
            format = OUT_JSON;
        else if (strcmp(argv[i], "--prometheus") == 0 && format == OUT_TEXT)
            format = OUT_PROMETHEUS;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return EG_EXIT_OK;
        } else {
            usage(stderr);
            return EG_EXIT_ERROR;
        }
    }
    if (dir == NULL && ((dir = getenv(EG_STATS_DIR_ENV)) == NULL || *dir == '\0'))
        dir = EG_STATS_DEFAULT_DIR;
    if (!read_dir(dir, &v))
        return EG_EXIT_ERROR;
    if (format == OUT_JSON)
        ok = print_json(dir, &v);
    else if (format == OUT_PROMETHEUS)
        print_prometheus(&v);
    else
        print_text(dir, &v);
    free(v.procs);
    if (fflush(stdout) != 0)
        ok = 0;
    return ok ? EG_EXIT_OK : EG_EXIT_ERROR;
}
