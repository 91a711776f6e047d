/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard probe --targets FILE: an estate scan.  Admins check many servers
 * at once, so the targets of a file run concurrently (up to --parallel
 * threads, each probing one target at a time with the same checks as a
 * single run); a slow or silent host occupies one thread only, and its
 * deadline (PROBE_TARGET_DEADLINE_FACTOR x --timeout) bounds even that.
 *
 * Output: one report per target on stdout, whole and in the order the
 * targets finish (text, or with --json one JSON object per line); on a
 * terminal a progress line on stderr; at the end (or on Ctrl-C, for what
 * finished) a summary on stderr: compliant / findings / errors, and the
 * slowest targets.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "commands.h"
#include "probe.h"

#define SLOWEST_SHOWN 5
#define EXIT_INTERRUPTED 130

typedef struct {
    scan_target *t;
    int n; /* targets */
    int bad_lines;
    const char *file;
    int progress; /* stderr is a TTY */
    long long start_ms;
    /* under lock: */
    pthread_mutex_t lock; /* also serializes every write to stdout/stderr */
    pthread_cond_t changed; /* a target finished */
    int next; /* the next target to take */
    int done, compliant, findings, errors;
    long long *duration_ms; /* per target, -1 until finished */
} scan_state;

/* "1m05s", "12.3 s" or "450 ms" */
static void span_text(long long ms, char *buf, size_t len)
{
    if (ms < 1000)
        snprintf(buf, len, "%lld ms", ms);
    else if (ms >= 60000)
        snprintf(buf, len, "%lldm%02llds", ms / 60000, ms % 60000 / 1000);
    else
        snprintf(buf, len, "%.1f s", ms / 1000.0);
}

/* Under lock. */
static void clear_progress(const scan_state *s)
{
    if (s->progress)
        fputs("\r\033[K", stderr);
}

/* Under lock: [done/total], findings so far, ETA. */
static void draw_progress(const scan_state *s)
{
    long long elapsed = probe_now_ms() - s->start_ms;
    char eta[32] = "--";

    if (s->done > 0)
        span_text(elapsed * (s->n - s->done) / s->done, eta, sizeof(eta));
    fprintf(stderr, "\r\033[K[%d/%d] %d with findings, %d errors, ETA %s", s->done, s->n,
        s->findings, s->errors, eta);
    fflush(stderr);
}

/* One target: probe, render the report in memory, then write it whole. */
static void run_one(scan_state *s, int i)
{
    probe_opts o = s->t[i].o;
    probe_results res;
    probe_err e;
    char *buf = NULL;
    size_t len = 0;
    FILE *mem;
    long long t0 = probe_now_ms();
    int ok, rc;

    o.scan = 1;
    o.progress = 0;
    o.target_deadline = t0 + (long long)o.timeout_ms * PROBE_TARGET_DEADLINE_FACTOR;
    memset(&e, 0, sizeof(e));
    ok = probe_run(&o, &res, &e);
    o.duration_ms = probe_now_ms() - t0;
    if ((mem = open_memstream(&buf, &len)) != NULL) {
        rc = ok ? probe_report(mem, &o, &res) : probe_report_error(mem, &o, &e);
        if (!o.json)
            fputc('\n', mem); /* a blank line between text reports */
        if (fclose(mem) != 0)
            len = 0;
    } else {
        rc = EG_EXIT_ERROR;
    }
    pthread_mutex_lock(&s->lock);
    clear_progress(s);
    if (mem == NULL)
        fprintf(stderr, "emsguard probe: %s: out of memory for its report\n", o.target);
    if (len > 0)
        fwrite(buf, 1, len, stdout);
    fflush(stdout);
    s->duration_ms[i] = o.duration_ms;
    s->done++;
    if (rc == EG_EXIT_OK)
        s->compliant++;
    else if (rc == EG_EXIT_FINDINGS)
        s->findings++;
    else
        s->errors++;
    pthread_cond_signal(&s->changed);
    pthread_mutex_unlock(&s->lock);
    free(buf);
}

static void *worker(void *arg)
{
    scan_state *s = arg;
    int i;

    for (;;) {
        pthread_mutex_lock(&s->lock);
        i = s->next < s->n ? s->next++ : -1;
        pthread_mutex_unlock(&s->lock);
        if (i < 0)
            return NULL;
        run_one(s, i);
    }
}

static const scan_state *sort_state;

static int slower_first(const void *a, const void *b)
{
    long long da = sort_state->duration_ms[*(const int *)a];
    long long db = sort_state->duration_ms[*(const int *)b];

    return da < db ? 1 : da > db ? -1 : 0;
}

/* Under lock (or after the threads ended): the summary on stderr. */
static void summary(const scan_state *s, int interrupted)
{
    long long elapsed = probe_now_ms() - s->start_ms;
    int *order = malloc(sizeof(int) * (size_t)(s->n > 0 ? s->n : 1));
    int i, k = 0;
    char took[32], d[32];

    span_text(elapsed, took, sizeof(took));
    fprintf(stderr, "summary%s: %d of %d targets in %s: %d compliant, %d with findings, "
        "%d errors", interrupted ? " (interrupted)" : "", s->done, s->n, took, s->compliant,
        s->findings, s->errors);
    if (s->bad_lines > 0)
        fprintf(stderr, "; %d malformed line%s skipped", s->bad_lines,
            s->bad_lines == 1 ? "" : "s");
    fputc('\n', stderr);
    if (order != NULL) {
        for (i = 0; i < s->n; i++)
            if (s->duration_ms[i] >= 0)
                order[k++] = i;
        sort_state = s;
        qsort(order, (size_t)k, sizeof(int), slower_first);
        for (i = 0; i < k && i < SLOWEST_SHOWN; i++) {
            const probe_opts *o = &s->t[order[i]].o;

            span_text(s->duration_ms[order[i]], d, sizeof(d));
            fprintf(stderr, "%s %8s  %s%s%s (%s:%d)\n", i == 0 ? "slowest:" : "        ", d,
                o->target, o->starttls != ST_NONE ? " --starttls " : "",
                o->starttls != ST_NONE ? starttls_name(o->starttls) : "", s->file, o->line);
        }
        free(order);
    }
    fflush(stderr);
}

static int exit_status(const scan_state *s)
{
    if (s->findings > 0)
        return EG_EXIT_FINDINGS;
    if (s->errors > 0 || s->bad_lines > 0)
        return EG_EXIT_ERROR;
    return EG_EXIT_OK;
}

int scan_main(const char *file, const probe_opts *defaults, int parallel)
{
    scan_state s;
    pthread_t *threads;
    sigset_t stop_sigs, old;
    struct timespec ts, zero = { 0, 0 };
    int nthreads = 0, i, rc, finished;

    memset(&s, 0, sizeof(s));
    s.file = file;
    s.t = targets_load(file, defaults, &s.n, &s.bad_lines);
    if (s.n < 0)
        return EG_EXIT_ERROR;
    s.duration_ms = malloc(sizeof(long long) * (size_t)(s.n > 0 ? s.n : 1));
    threads = malloc(sizeof(pthread_t) * (size_t)parallel);
    if (s.duration_ms == NULL || threads == NULL) {
        fprintf(stderr, "emsguard probe: out of memory\n");
        free(s.t);
        free(s.duration_ms);
        free(threads);
        return EG_EXIT_ERROR;
    }
    for (i = 0; i < s.n; i++)
        s.duration_ms[i] = -1;
    s.progress = isatty(STDERR_FILENO);
    s.start_ms = probe_now_ms();
    pthread_mutex_init(&s.lock, NULL);
    pthread_cond_init(&s.changed, NULL);
    /* Ctrl-C (and TERM, HUP) come to this thread only, via sigtimedwait:
     * the workers inherit the blocked mask. */
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGINT);
    sigaddset(&stop_sigs, SIGTERM);
    sigaddset(&stop_sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_sigs, &old);
    for (i = 0; i < parallel && i < s.n; i++) {
        if ((rc = pthread_create(&threads[nthreads], NULL, worker, &s)) != 0) {
            if (nthreads == 0) {
                fprintf(stderr, "emsguard probe: cannot start a thread: %s\n", strerror(rc));
                s.next = s.n; /* nothing will run them */
                s.errors = s.n;
            }
            break;
        }
        nthreads++;
    }
    for (;;) {
        pthread_mutex_lock(&s.lock);
        finished = s.done == s.n || nthreads == 0;
        if (!finished) {
            if (s.progress)
                draw_progress(&s);
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s.changed, &s.lock, &ts);
        }
        pthread_mutex_unlock(&s.lock);
        if (finished)
            break;
        if (sigtimedwait(&stop_sigs, NULL, &zero) > 0) {
            /* The lock is kept: no report is half written, none follows. */
            pthread_mutex_lock(&s.lock);
            clear_progress(&s);
            fflush(stdout);
            summary(&s, 1);
            _exit(EXIT_INTERRUPTED);
        }
    }
    for (i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    clear_progress(&s);
    summary(&s, 0);
    rc = exit_status(&s);
    pthread_cond_destroy(&s.changed);
    pthread_mutex_destroy(&s.lock);
    free(threads);
    free(s.duration_ms);
    free(s.t);
    return rc;
}
