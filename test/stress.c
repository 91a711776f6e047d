/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Thread stress for the SSL_CTX policy: THREADS threads run handshakes at
 * the same time against server SSL_CTXs that every thread shares, one per
 * resumption mechanism (internal session-ID cache, RFC 5077 tickets, an
 * external cache), each with the emsguard policy.  Afterwards the policy's
 * counters must add up exactly to what the threads did.  Built for
 * ThreadSanitizer (make stress-check), where any race fails the run.
 *
 * Each client does a full handshake, then a resumption attempt offering its
 * session (a fresh copy, see hs_handshake).  The kinds of client:
 *   ems     EMS client: must resume.
 *   legacy  SSL_OP_NO_EXTENDED_MASTER_SECRET: full handshake both times,
 *           its session never cached and no ticket issued.
 *   fleet   legacy client whose session comes from a stock server sharing
 *           the ticket keys or the external cache: the policy refuses it.
 *   abort   EMS session offered in a ClientHello without EMS: RFC 7627
 *           handshake_failure.
 *
 * Environment: EMSGUARD_STRESS_THREADS (default 8),
 * EMSGUARD_STRESS_HANDSHAKES per thread (default 2000, rounded up to even).
 * Exit status 0 when every check passed, 1 otherwise.
 * EMSGUARD_STRESS_CANARY=1 instead runs a deliberate data race and nothing
 * else: under TSan it must fail, which proves the sanitizer is live.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "harness.h"

#define DEFAULT_THREADS 8
#define DEFAULT_HANDSHAKES 2000
#define MAX_THREADS 64
#define MAX_REPORTED 10 /* failure lines printed; the rest are only counted */

typedef enum { M_SID = 0, M_TICKET, M_EXT, M_COUNT } mech;
typedef enum { K_EMS = 0, K_LEGACY, K_FLEET, K_ABORT, K_COUNT } kind;

static const char *const mech_names[M_COUNT] = { "session-id", "ticket", "ext-cache" };
static const char *const kind_names[K_COUNT] = { "ems", "legacy", "fleet", "abort" };

/* Every (mechanism, kind) pair but a fleet over the per-ctx internal cache. */
typedef struct {
    mech m;
    kind k;
} scenario;

static scenario scenarios[M_COUNT * K_COUNT];
static int n_scenarios;

/* Shared by all threads; made before any thread starts, freed after. */
static SSL_CTX *policy_srv[M_COUNT]; /* emsguard policy enabled */
static SSL_CTX *stock_srv[M_COUNT]; /* no policy; NULL for M_SID */
static SSL_CTX *ems_client; /* emsguard policy enabled (client role) */
static SSL_CTX *legacy_client; /* stock, SSL_OP_NO_EXTENDED_MASTER_SECRET */

static pthread_barrier_t start_line;
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static long reported;

/* ---- external cache, shared by policy_srv[M_EXT] and stock_srv[M_EXT] ----- */

/*
 * The harness's external cache is an unlocked global table, so the stress
 * test keeps its own: a chained hash table of DER copies under one mutex,
 * like a memcached in front of a fleet.
 */
#define EXT_BUCKETS 4096

struct ext_node {
    struct ext_node *next;
    unsigned int id_len;
    unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
    unsigned char *der;
    int der_len;
};

static struct {
    pthread_mutex_t lock;
    struct ext_node *buckets[EXT_BUCKETS];
} ext = { .lock = PTHREAD_MUTEX_INITIALIZER };

static size_t ext_hash(const unsigned char *id, unsigned int len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    unsigned int i;

    for (i = 0; i < len; i++)
        h = (h ^ id[i]) * 16777619u;
    return h % EXT_BUCKETS;
}

/* The link that points at the node for |id|, or at the chain's NULL end. */
static struct ext_node **ext_slot(const unsigned char *id, unsigned int len)
{
    struct ext_node **pp = &ext.buckets[ext_hash(id, len)];

    while (*pp != NULL && ((*pp)->id_len != len || memcmp((*pp)->id, id, len) != 0))
        pp = &(*pp)->next;
    return pp;
}

static int ext_new_cb(SSL *ssl, SSL_SESSION *sess)
{
    unsigned int id_len;
    const unsigned char *id = SSL_SESSION_get_id(sess, &id_len);
    struct ext_node *n, **pp;

    (void)ssl;
    if (id_len == 0 || id_len > SSL_MAX_SSL_SESSION_ID_LENGTH
        || (n = calloc(1, sizeof(*n))) == NULL)
        return 0;
    if ((n->der_len = i2d_SSL_SESSION(sess, &n->der)) <= 0) {
        free(n);
        return 0;
    }
    memcpy(n->id, id, id_len);
    n->id_len = id_len;
    pthread_mutex_lock(&ext.lock);
    pp = ext_slot(id, id_len);
    if (*pp != NULL) { /* replace: same ID stored again */
        n->next = (*pp)->next;
        OPENSSL_free((*pp)->der);
        free(*pp);
    }
    *pp = n;
    pthread_mutex_unlock(&ext.lock);
    return 0; /* we kept a copy, not libssl's reference */
}

static SSL_SESSION *ext_get_cb(SSL *ssl, const unsigned char *id, int id_len,
    int *copy)
{
    SSL_SESSION *sess = NULL;
    struct ext_node *n;

    (void)ssl;
    *copy = 0; /* libssl takes the reference we return */
    if (id_len <= 0 || id_len > SSL_MAX_SSL_SESSION_ID_LENGTH)
        return NULL;
    pthread_mutex_lock(&ext.lock);
    if ((n = *ext_slot(id, (unsigned int)id_len)) != NULL) {
        const unsigned char *p = n->der;

        sess = d2i_SSL_SESSION(NULL, &p, n->der_len);
    }
    pthread_mutex_unlock(&ext.lock);
    return sess;
}

static void ext_remove_cb(SSL_CTX *ctx, SSL_SESSION *sess)
{
    unsigned int id_len;
    const unsigned char *id = SSL_SESSION_get_id(sess, &id_len);
    struct ext_node *n, **pp;

    (void)ctx;
    pthread_mutex_lock(&ext.lock);
    pp = ext_slot(id, id_len);
    if ((n = *pp) != NULL) {
        *pp = n->next;
        OPENSSL_free(n->der);
        free(n);
    }
    pthread_mutex_unlock(&ext.lock);
}

static void ext_free_all(void)
{
    size_t i;

    for (i = 0; i < EXT_BUCKETS; i++)
        while (ext.buckets[i] != NULL) {
            struct ext_node *n = ext.buckets[i];

            ext.buckets[i] = n->next;
            OPENSSL_free(n->der);
            free(n);
        }
}

/* ---- setup -------------------------------------------------------------- */

static int enable_policy(SSL_CTX *ctx)
{
    EMSGUARD_POLICY *policy = EMSGUARD_POLICY_new();
    /* EventLogging 0: thousands of aborts would otherwise log a line each. */
    int ok = policy != NULL
        && EMSGUARD_POLICY_set(policy, EMSGUARD_EVENT_LOGGING, "0")
        && EMSGUARD_enable_policy(ctx, policy);

    EMSGUARD_POLICY_free(policy);
    return ok;
}

/* A server ctx for |m|; the external cache is ours, not the harness's. */
static SSL_CTX *make_server(mech m)
{
    SSL_CTX *ctx;

    if (m == M_TICKET)
        return hs_server_ctx(HS_MECH_TICKET, 0);
    if ((ctx = hs_server_ctx(HS_MECH_SESSION_ID, 0)) == NULL)
        return NULL;
    /* Room for every session of the run: an eviction would fail a resumption. */
    SSL_CTX_sess_set_cache_size(ctx, 0);
    if (m == M_EXT) {
        SSL_CTX_set_session_cache_mode(ctx,
            SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
        SSL_CTX_sess_set_new_cb(ctx, ext_new_cb);
        SSL_CTX_sess_set_get_cb(ctx, ext_get_cb);
        SSL_CTX_sess_set_remove_cb(ctx, ext_remove_cb);
    }
    return ctx;
}

static int setup(void)
{
    int m;

    for (m = 0; m < M_COUNT; m++) {
        /* Policy enabled after the callbacks: emsguard chains ours. */
        if ((policy_srv[m] = make_server((mech)m)) == NULL
            || !enable_policy(policy_srv[m]))
            return 0;
        if (m != M_SID && (stock_srv[m] = make_server((mech)m)) == NULL)
            return 0;
    }
    return (ems_client = hs_client_ctx(0)) != NULL && enable_policy(ems_client)
        && (legacy_client = hs_client_ctx(HS_NO_EMS)) != NULL;
}

static void teardown(void)
{
    int m;

    for (m = 0; m < M_COUNT; m++) {
        SSL_CTX_free(policy_srv[m]);
        SSL_CTX_free(stock_srv[m]);
    }
    SSL_CTX_free(ems_client);
    SSL_CTX_free(legacy_client);
    ext_free_all();
    hs_cleanup();
}

/* ---- one client --------------------------------------------------------- */

struct worker {
    pthread_t tid;
    int index;
    long clients;
    /* Filled by the thread, read by main after pthread_join. */
    long done[M_COUNT][K_COUNT]; /* clients run */
    long handshakes; /* handshakes attempted, stock servers included */
    long policy_completed; /* completed on policy_srv[] */
    long policy_aborted; /* failed on policy_srv[], as expected for abort */
    long legacy_resumed; /* a legacy client that resumed (must stay 0) */
    long ems_not_resumed; /* an ems client that did not (must stay 0) */
    long failures; /* any check below that failed */
};

static void fail(struct worker *w, long client, scenario sc, const char *what,
    const hs_result *r)
{
    w->failures++;
    pthread_mutex_lock(&report_lock);
    if (++reported <= MAX_REPORTED)
        printf("FAIL thread %d client %ld %s/%s: %s (ok=%d reused=%d/%d ems=%d "
               "offered=%d hello_ems=%d ticket=%d alerts=%d/%d)\n",
            w->index, client, mech_names[sc.m], kind_names[sc.k], what, r->ok,
            r->reused, r->server_reused, r->ems, r->hello_offered, r->hello_ems,
            r->server_sent_ticket, r->server_alert, r->client_alert);
    pthread_mutex_unlock(&report_lock);
}

#define CHECK(cond, res) \
    do { \
        if (!(cond)) { \
            fail(w, client, sc, #cond, (res)); \
            goto out; \
        } \
    } while (0)

static void run_client(struct worker *w, long client, scenario sc)
{
    SSL_CTX *first_srv = sc.k == K_FLEET ? stock_srv[sc.m] : policy_srv[sc.m];
    SSL_CTX *first_cli = (sc.k == K_EMS || sc.k == K_ABORT) ? ems_client : legacy_client;
    SSL_CTX *second_cli = sc.k == K_EMS ? ems_client : legacy_client;
    int want_ems = first_cli == ems_client;
    hs_result r1, r2;

    memset(&r2, 0, sizeof(r2));
    w->done[sc.m][sc.k]++;
    w->handshakes += 2;

    /* Full handshake. */
    hs_handshake(first_srv, first_cli, NULL, &r1);
    if (r1.ok && first_srv == policy_srv[sc.m])
        w->policy_completed++;
    CHECK(r1.ok && r1.session != NULL, &r1);
    CHECK(!r1.reused && !r1.server_reused, &r1);
    CHECK(r1.ems == want_ems && r1.hello_ems == want_ems, &r1);
    /* The policy withholds tickets for non-EMS sessions; stock servers don't. */
    if (sc.m == M_TICKET)
        CHECK(r1.server_sent_ticket == (want_ems || sc.k == K_FLEET), &r1);
    else
        CHECK(!r1.server_sent_ticket, &r1);

    /* Resumption attempt offering that session, always on the policy ctx. */
    hs_handshake(policy_srv[sc.m], second_cli, r1.session, &r2);
    if (r2.ok)
        w->policy_completed++;
    else
        w->policy_aborted++;
    if (sc.k != K_EMS && r2.reused)
        w->legacy_resumed++;
    if (sc.k == K_EMS && !(r2.reused && r2.server_reused))
        w->ems_not_resumed++;
    switch (sc.k) {
    case K_EMS:
        CHECK(r2.ok && r2.reused && r2.server_reused && r2.ems, &r2);
        CHECK(r2.hello_offered, &r2);
        break;
    case K_LEGACY:
    case K_FLEET:
        CHECK(r2.ok && !r2.reused && !r2.server_reused && !r2.ems, &r2);
        CHECK(!r2.server_sent_ticket, &r2);
        /* With no ID and no ticket a legacy ticket client has nothing to offer. */
        CHECK(r2.hello_offered == (sc.m != M_TICKET || sc.k == K_FLEET), &r2);
        break;
    case K_ABORT:
        CHECK(!r2.ok && r2.hello_offered && !r2.hello_ems, &r2);
        CHECK(r2.server_alert == SSL_AD_HANDSHAKE_FAILURE, &r2);
        break;
    default:
        break;
    }
out:
    hs_result_clear(&r1);
    hs_result_clear(&r2);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    long i;

    pthread_barrier_wait(&start_line);
    /* Threads start at different scenarios, so all kinds run concurrently. */
    for (i = 0; i < w->clients; i++)
        run_client(w, i, scenarios[(i + w->index) % n_scenarios]);
    OPENSSL_thread_stop();
    return NULL;
}

/* ---- expected counters -------------------------------------------------- */

/*
 * What the policy ctx of |m| must have counted for |n| clients of kind |k|
 * (see provider/hooks_server.c and emsguard.h): a non-EMS session on the session-ID or
 * external cache is "not cached" at each full handshake; on the ticket ctx
 * each full handshake of a non-EMS ClientHello gets its ticket withheld.
 */
static void expect_server(uint64_t exp[EMSGUARD_CNT_MAX], mech m, kind k, uint64_t n)
{
    uint64_t *not_resumable = &exp[m == M_TICKET ? EMSGUARD_CNT_TICKETS_WITHHELD
                                                 : EMSGUARD_CNT_SESSIONS_NOT_CACHED];

    switch (k) {
    case K_EMS:
        exp[EMSGUARD_CNT_FULL_HANDSHAKES] += n;
        exp[EMSGUARD_CNT_RESUMPTIONS] += n;
        break;
    case K_LEGACY: /* both handshakes on the policy ctx, both full */
        exp[EMSGUARD_CNT_FULL_HANDSHAKES] += 2 * n;
        exp[EMSGUARD_CNT_FULL_WITHOUT_EMS] += 2 * n;
        *not_resumable += 2 * n;
        break;
    case K_FLEET: /* first handshake on the stock ctx */
        exp[EMSGUARD_CNT_REFUSED_NO_EMS] += n;
        exp[EMSGUARD_CNT_FULL_HANDSHAKES] += n;
        exp[EMSGUARD_CNT_FULL_WITHOUT_EMS] += n;
        *not_resumable += n;
        break;
    case K_ABORT:
        exp[EMSGUARD_CNT_FULL_HANDSHAKES] += n;
        exp[EMSGUARD_CNT_ABORTED_INCONSISTENT] += n;
        break;
    default:
        break;
    }
}

/* Compares every counter of |ctx| with |exp|; prints them; returns 1 if equal. */
static int check_counters(const char *label, const SSL_CTX *ctx,
    const uint64_t exp[EMSGUARD_CNT_MAX], uint64_t *full_plus_res)
{
    int i, ok = 1;
    uint64_t got[EMSGUARD_CNT_MAX];

    printf("  %-18s", label);
    for (i = 0; i < EMSGUARD_CNT_MAX; i++) {
        if (!EMSGUARD_CTX_get_counter(ctx, (EMSGUARD_COUNTER)i, &got[i])) {
            printf(" [cannot read %s]", EMSGUARD_counter_name((EMSGUARD_COUNTER)i));
            ok = 0;
            continue;
        }
        if (got[i] != 0 || exp[i] != 0)
            printf(" %s=%" PRIu64, EMSGUARD_counter_name((EMSGUARD_COUNTER)i), got[i]);
        if (got[i] != exp[i]) {
            printf("(expected %" PRIu64 ")", exp[i]);
            ok = 0;
        }
    }
    printf("%s\n", ok ? "" : "  MISMATCH");
    *full_plus_res = got[EMSGUARD_CNT_FULL_HANDSHAKES] + got[EMSGUARD_CNT_RESUMPTIONS];
    return ok;
}

/* ---- canary ------------------------------------------------------------- */

static volatile long canary_value; /* deliberately unsynchronised */

static void *canary_main(void *arg)
{
    int i;

    (void)arg;
    pthread_barrier_wait(&start_line);
    for (i = 0; i < 1000; i++)
        canary_value = canary_value + 1;
    return NULL;
}

/* Two threads race on one variable; a live TSan reports it. */
static int run_canary(void)
{
    pthread_t a, b;

    if (pthread_barrier_init(&start_line, NULL, 2) != 0
        || pthread_create(&a, NULL, canary_main, NULL) != 0
        || pthread_create(&b, NULL, canary_main, NULL) != 0)
        return 1;
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    pthread_barrier_destroy(&start_line);
    printf("canary: race ran (value %ld), no sanitizer stopped it\n", canary_value);
    return 0;
}

/* ---- main --------------------------------------------------------------- */

static long env_long(const char *name, long def, long min, long max)
{
    const char *v = getenv(name);
    char *end;
    long n;

    if (v == NULL || *v == '\0')
        return def;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < min || n > max) {
        fprintf(stderr, "stress: %s=%s: want an integer from %ld to %ld\n",
            name, v, min, max);
        exit(2);
    }
    return n;
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
    long threads = env_long("EMSGUARD_STRESS_THREADS", DEFAULT_THREADS, 1, MAX_THREADS);
    long per_thread = env_long("EMSGUARD_STRESS_HANDSHAKES", DEFAULT_HANDSHAKES, 2, 10000000);
    static struct worker workers[MAX_THREADS];
    uint64_t srv_exp[M_COUNT][EMSGUARD_CNT_MAX], cli_exp[EMSGUARD_CNT_MAX];
    long done[M_COUNT][K_COUNT], handshakes = 0, completed = 0, aborted = 0;
    long failures = 0, legacy_resumed = 0, ems_not_resumed = 0, started = 0;
    long legacy_clients = 0, ems_clients = 0;
    uint64_t counted = 0, fpr;
    double t0, elapsed;
    int m, k, ok = 1;
    long t;

    if (env_long("EMSGUARD_STRESS_CANARY", 0, 0, 1))
        return run_canary();
    for (m = 0; m < M_COUNT; m++)
        for (k = 0; k < K_COUNT; k++)
            if (!(k == K_FLEET && m == M_SID))
                scenarios[n_scenarios++] = (scenario){ (mech)m, (kind)k };
    if (!setup()) {
        printf("FAIL: cannot set up the SSL_CTXs\n");
        ERR_print_errors_fp(stdout);
        teardown();
        return 1;
    }
    if (pthread_barrier_init(&start_line, NULL, (unsigned)threads + 1) != 0) {
        printf("FAIL: pthread_barrier_init\n");
        teardown();
        return 1;
    }
    printf("stress: %ld threads x %ld handshakes, %d scenarios, shared server "
           "ctxs: session-id, ticket, ext-cache (policy) + ticket, ext-cache (stock)\n",
        threads, per_thread + (per_thread & 1), n_scenarios);
    fflush(stdout);
    for (t = 0; t < threads; t++) {
        workers[t].index = (int)t;
        workers[t].clients = (per_thread + 1) / 2;
        if (pthread_create(&workers[t].tid, NULL, worker_main, &workers[t]) != 0) {
            printf("FAIL: pthread_create for thread %ld\n", t);
            break;
        }
        started++;
    }
    if (started < threads)
        return 1; /* the started ones wait at the barrier; exit ends them */
    t0 = now_seconds();
    pthread_barrier_wait(&start_line);
    for (t = 0; t < threads; t++)
        pthread_join(workers[t].tid, NULL);
    elapsed = now_seconds() - t0;
    pthread_barrier_destroy(&start_line);

    memset(done, 0, sizeof(done));
    for (t = 0; t < threads; t++) {
        const struct worker *w = &workers[t];

        for (m = 0; m < M_COUNT; m++)
            for (k = 0; k < K_COUNT; k++)
                done[m][k] += w->done[m][k];
        handshakes += w->handshakes;
        completed += w->policy_completed;
        aborted += w->policy_aborted;
        failures += w->failures;
        legacy_resumed += w->legacy_resumed;
        ems_not_resumed += w->ems_not_resumed;
    }

    memset(srv_exp, 0, sizeof(srv_exp));
    memset(cli_exp, 0, sizeof(cli_exp));
    printf("clients per scenario (each: full handshake + resumption attempt):\n");
    for (m = 0; m < M_COUNT; m++) {
        printf("  %-10s", mech_names[m]);
        for (k = 0; k < K_COUNT; k++) {
            if (k == K_FLEET && m == M_SID)
                continue;
            printf(" %s=%ld", kind_names[k], done[m][k]);
            expect_server(srv_exp[m], (mech)m, (kind)k, (uint64_t)done[m][k]);
            if (k == K_EMS || k == K_ABORT) /* full handshakes of ems_client */
                cli_exp[EMSGUARD_CNT_FULL_HANDSHAKES] += (uint64_t)done[m][k];
            if (k == K_EMS) {
                cli_exp[EMSGUARD_CNT_RESUMPTIONS] += (uint64_t)done[m][k];
                ems_clients += done[m][k];
            } else {
                legacy_clients += done[m][k];
            }
        }
        printf("\n");
    }
    printf("policy counters:\n");
    for (m = 0; m < M_COUNT; m++) {
        char label[32];

        snprintf(label, sizeof(label), "server %s", mech_names[m]);
        ok &= check_counters(label, policy_srv[m], srv_exp[m], &fpr);
        counted += fpr;
    }
    ok &= check_counters("client ems", ems_client, cli_exp, &fpr);

    printf("handshakes performed: %ld (%ld threads x %ld) in %.1f s, %.0f/s\n",
        handshakes, threads, handshakes / threads, elapsed,
        elapsed > 0 ? (double)handshakes / elapsed : 0.0);
    printf("on the policy server ctxs: %ld completed, %ld aborted (RFC 7627); "
           "full+resumptions counted: %" PRIu64 "\n", completed, aborted, counted);
    printf("ems clients resumed: %ld of %ld; legacy/fleet/abort clients resumed: %ld of %ld\n",
        ems_clients - ems_not_resumed, ems_clients, legacy_resumed, legacy_clients);
    if (counted != (uint64_t)completed) {
        printf("FAIL: counters say %" PRIu64 " completed handshakes, threads saw %ld\n",
            counted, completed);
        ok = 0;
    }
    if (handshakes != threads * (per_thread + (per_thread & 1))) {
        printf("FAIL: %ld handshakes run, %ld planned\n", handshakes,
            threads * (per_thread + (per_thread & 1)));
        ok = 0;
    }
    if (legacy_resumed != 0 || ems_not_resumed != 0 || failures != 0) {
        printf("FAIL: %ld failed checks (%ld legacy resumed, %ld ems not resumed)\n",
            failures, legacy_resumed, ems_not_resumed);
        ok = 0;
    }
    teardown();
    printf("%s\n", ok ? "PASS: stress" : "FAIL: stress");
    return ok ? 0 : 1;
}
