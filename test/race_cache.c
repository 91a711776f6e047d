/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Race in the server's internal session cache (issue 15, F10).
 *
 * libssl adds a new server session to the internal cache
 * (ssl_update_cache -> SSL_CTX_add_session) before it calls the new-session
 * callback, which is where emsguard used to take out a session the policy
 * refuses.  A connection that looked the session up in between resumed it.
 * The policy must leave no such window: no connection may ever find the new
 * session of a handshake without EMS.
 *
 * Victim threads run legacy (no EMS) full handshakes against one shared
 * server SSL_CTX with the policy and its internal session-ID cache.  As soon
 * as the victim's client has sent its Finished (it then knows the session ID
 * and the master secret), the session is published, and attacker threads
 * keep offering it to the same SSL_CTX while the victim's server finishes
 * the handshake (that is when libssl caches the session).  An attempt counts
 * as racing when it starts while its victim's server is still finishing.
 * Every racing attempt must end in a full handshake.
 *
 * The window is a few microseconds wide, and emsguard's callback allocates
 * inside it (it reads the session's EMS bit from its encoding).  To hit it
 * reliably on a small machine, the test (only the test) makes every
 * allocation of a victim's finishing server step sleep briefly.  An
 * application's own new-session callback cannot widen it: emsguard calls
 * that only for sessions the policy allows.
 *
 * Environment: EMSGUARD_RACE_THREADS (default 8, at least 2),
 * EMSGUARD_RACE_ATTEMPTS (racing attempts to reach, default 100000),
 * EMSGUARD_RACE_SECONDS (give up after, default 240),
 * EMSGUARD_RACE_SLOW_NS (the sleep per allocation, default 20000; 0 leaves
 * the window as it is).
 * Exit status 0 when the attempts were made and none resumed, 1 otherwise.
 *
 *   make race-cache-check
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "harness.h"

#define DEFAULT_THREADS 8
#define DEFAULT_ATTEMPTS 100000
#define DEFAULT_SECONDS 240
#define MAX_THREADS 64
#define VICTIMS 2 /* the other threads attack */
#define DEFAULT_SLOW_NS 20000 /* per allocation of a victim's finishing step */
#define MAX_STEPS 64

static SSL_CTX *server_ctx; /* policy enabled, internal session-ID cache */
static SSL_CTX *legacy_client; /* SSL_OP_NO_EXTENDED_MASTER_SECRET */

/* The session being raced: its victim's server is finishing while set. */
static struct {
    pthread_mutex_t lock;
    unsigned char *der; /* the victim client's session, DER */
    int der_len;
    unsigned long gen; /* bumped per published session */
    int finishing;
} target = { .lock = PTHREAD_MUTEX_INITIALIZER };

static atomic_long attempts, resumed, victim_handshakes, failures;
static atomic_int stop;
static long attempts_wanted;
static long slow_ns; /* 0: no widening */

/* ---- the only widening: allocations of a victim's finishing step sleep ---- */

static _Thread_local int slow_allocs;

static void *race_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    if (slow_allocs && slow_ns > 0) {
        struct timespec ts = { 0, slow_ns };

        nanosleep(&ts, NULL);
    }
    return malloc(n);
}

static void *race_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return realloc(p, n);
}

static void race_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    free(p);
}

/* ---- one connection's two ends, in memory ---------------------------------- */

struct pair {
    SSL *client, *server;
};

static int pair_new(struct pair *p, SSL_SESSION *offer)
{
    BIO *cbio = NULL, *sbio = NULL;

    p->client = SSL_new(legacy_client);
    p->server = SSL_new(server_ctx);
    if (p->client == NULL || p->server == NULL || !BIO_new_bio_pair(&cbio, 0, &sbio, 0))
        return 0;
    SSL_set_bio(p->client, cbio, cbio);
    SSL_set_bio(p->server, sbio, sbio);
    SSL_set_connect_state(p->client);
    SSL_set_accept_state(p->server);
    return offer == NULL || SSL_set_session(p->client, offer);
}

static void pair_free(struct pair *p)
{
    SSL_free(p->client);
    SSL_free(p->server);
}

/* Steps both ends until both finished; 1 on success. */
static int drive(struct pair *p)
{
    int c = 0, s = 0, i;

    for (i = 0; i < MAX_STEPS && (c == 0 || s == 0); i++) {
        if (c == 0)
            c = hs_step(p->client);
        if (s == 0)
            s = hs_step(p->server);
        if (c < 0 || s < 0)
            return 0;
    }
    return c == 1 && s == 1;
}

static void fail(const char *what)
{
    if (atomic_fetch_add(&failures, 1) < 5)
        fprintf(stderr, "race_cache: %s\n", what);
    ERR_clear_error();
}

/* ---- victims ------------------------------------------------------------------ */

static void victim_round(void)
{
    struct pair p;
    unsigned char *der = NULL;
    int der_len, c, s, ok;

    if (!pair_new(&p, NULL)) {
        fail("victim: cannot set up a connection");
        pair_free(&p);
        return;
    }
    /* ClientHello; server flight; client key exchange, CCS and Finished. */
    if (hs_step(p.client) != 0 || hs_step(p.server) != 0 || hs_step(p.client) != 0
        || (der_len = i2d_SSL_SESSION(SSL_get_session(p.client), &der)) <= 0) {
        fail("victim: handshake did not reach the client's Finished");
        OPENSSL_free(der);
        pair_free(&p);
        return;
    }
    pthread_mutex_lock(&target.lock);
    OPENSSL_free(target.der);
    target.der = der;
    target.der_len = der_len;
    target.gen++;
    target.finishing = 1;
    pthread_mutex_unlock(&target.lock);

    /* The server reads the client's Finished, answers and caches the session. */
    slow_allocs = 1;
    s = hs_step(p.server);
    slow_allocs = 0;

    pthread_mutex_lock(&target.lock);
    target.finishing = 0;
    pthread_mutex_unlock(&target.lock);

    c = hs_step(p.client);
    ok = s == 1 && (c == 1 || (c == 0 && drive(&p)));
    if (!ok || SSL_session_reused(p.server))
        fail("victim: the legacy full handshake failed");
    atomic_fetch_add(&victim_handshakes, 1);
    pair_free(&p);
}

static void *victim(void *arg)
{
    (void)arg;
    /* Sleeps of tens of microseconds, not the default 50 us of slack. */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    while (!atomic_load(&stop))
        victim_round();
    return NULL;
}

/* ---- attackers ------------------------------------------------------------ */

/* A fresh copy of the session being raced, or NULL when none is racing. */
static SSL_SESSION *racing_session(void)
{
    SSL_SESSION *sess = NULL;
    const unsigned char *p;

    pthread_mutex_lock(&target.lock);
    if (target.finishing && target.der != NULL) {
        p = target.der;
        sess = d2i_SSL_SESSION(NULL, &p, target.der_len);
    }
    pthread_mutex_unlock(&target.lock);
    return sess;
}

static void *attacker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        SSL_SESSION *sess = racing_session();
        struct pair p;

        if (sess == NULL) {
            sched_yield();
            continue;
        }
        if (!pair_new(&p, sess)) {
            fail("attacker: cannot set up a connection");
        } else if (hs_step(p.client) != 0 || hs_step(p.server) < 0) {
            fail("attacker: ClientHello not answered");
        } else if (SSL_session_reused(p.server)) {
            /* The server found the session: finish, to prove it resumes. */
            if (drive(&p) && SSL_session_reused(p.client)) {
                if (atomic_fetch_add(&resumed, 1) < 5)
                    fprintf(stderr, "race_cache: a racing connection resumed a non-EMS session\n");
            } else {
                fail("attacker: the server found the session but the resumption failed");
            }
        }
        SSL_SESSION_free(sess);
        pair_free(&p);
        ERR_clear_error();
        if (atomic_fetch_add(&attempts, 1) + 1 >= attempts_wanted)
            atomic_store(&stop, 1);
    }
    return NULL;
}

/* ---- main -------------------------------------------------------------------- */

static long env_long(const char *name, long dflt, long min, long max)
{
    const char *v = getenv(name);
    char *end;
    long n;

    if (v == NULL || *v == '\0')
        return dflt;
    n = strtol(v, &end, 10);
    if (*end != '\0' || n < min || n > max) {
        fprintf(stderr, "race_cache: %s must be %ld..%ld\n", name, min, max);
        exit(2);
    }
    return n;
}

static int setup(void)
{
    EMSGUARD_POLICY *policy = EMSGUARD_POLICY_new();
    int ok;

    server_ctx = hs_server_ctx(HS_MECH_SESSION_ID, 0);
    legacy_client = hs_client_ctx(HS_NO_EMS);
    ok = policy != NULL && server_ctx != NULL && legacy_client != NULL
        && EMSGUARD_POLICY_set(policy, EMSGUARD_EVENT_LOGGING, "0")
        && EMSGUARD_enable_policy(server_ctx, policy);
    EMSGUARD_POLICY_free(policy);
    if (ok) /* the cache must be able to hold every session of the run */
        SSL_CTX_sess_set_cache_size(server_ctx, 0);
    return ok;
}

int main(void)
{
    pthread_t tid[MAX_THREADS];
    long threads, seconds, i;
    time_t start;
    uint64_t not_cached = 0;
    int rc;

    /* Before OpenSSL allocates anything. */
    if (!CRYPTO_set_mem_functions(race_malloc, race_realloc, race_free)) {
        fprintf(stderr, "race_cache: cannot install the allocation hooks\n");
        return 2;
    }
    threads = env_long("EMSGUARD_RACE_THREADS", DEFAULT_THREADS, VICTIMS + 1, MAX_THREADS);
    attempts_wanted = env_long("EMSGUARD_RACE_ATTEMPTS", DEFAULT_ATTEMPTS, 1, 100000000);
    seconds = env_long("EMSGUARD_RACE_SECONDS", DEFAULT_SECONDS, 1, 86400);
    slow_ns = env_long("EMSGUARD_RACE_SLOW_NS", DEFAULT_SLOW_NS, 0, 999999999);
    if (!setup()) {
        fprintf(stderr, "race_cache: setup failed\n");
        ERR_print_errors_fp(stderr);
        return 2;
    }
    start = time(NULL);
    for (i = 0; i < threads; i++)
        if (pthread_create(&tid[i], NULL, i < VICTIMS ? victim : attacker, NULL) != 0) {
            fprintf(stderr, "race_cache: cannot start thread %ld\n", i);
            return 2;
        }
    while (!atomic_load(&stop)) {
        struct timespec ts = { 0, 100000000 };

        nanosleep(&ts, NULL);
        if (time(NULL) - start >= seconds)
            atomic_store(&stop, 1);
    }
    for (i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    EMSGUARD_CTX_get_counter(server_ctx, EMSGUARD_CNT_SESSIONS_NOT_CACHED, &not_cached);
    printf("race_cache: %ld racing attempts on %ld threads (%d victims) in %lds: "
           "%ld victim handshakes, %llu sessions not cached, %ld resumed, %ld failures\n",
        atomic_load(&attempts), threads, VICTIMS, (long)(time(NULL) - start),
        atomic_load(&victim_handshakes), (unsigned long long)not_cached,
        atomic_load(&resumed), atomic_load(&failures));
    rc = 0;
    if (atomic_load(&resumed) > 0) {
        printf("FAIL: a connection resumed a non-EMS session while its first server was "
               "still finishing\n");
        fflush(stdout);
        rc = 1;
    }
    if (atomic_load(&attempts) < attempts_wanted) {
        printf("FAIL: only %ld of %ld racing attempts within %lds\n",
            atomic_load(&attempts), attempts_wanted, seconds);
        rc = 1;
    }
    if (atomic_load(&failures) > 0) {
        printf("FAIL: %ld connections failed\n", atomic_load(&failures));
        rc = 1;
    }
    OPENSSL_free(target.der);
    SSL_CTX_free(server_ctx);
    SSL_CTX_free(legacy_client);
    hs_cleanup();
    return rc;
}
