/*
 * emsguard-bench -- what the policy costs per TLS 1.2 handshake.
 *
 * In-process handshakes over BIO pairs (no sockets, one thread): a client and
 * a server SSL are stepped alternately until both finish.  Every variant runs
 * in the same process and the variants are interleaved in short chunks inside
 * each round, so CPU frequency drift and noisy neighbours hit them alike; the
 * ratio to stock is taken per round and summarised as min/median/max.
 *
 *   BUILD=build bench/emsguard-bench [--quick] [--rounds N] [--wall]
 *       [--csv FILE] [--svg FILE] [--no-memory] [--no-scaling]
 *
 * Times are thread CPU time by default (robust against other processes on a
 * shared machine); --wall uses the monotonic clock instead.
 *
 * Exit status 1 when a gating target (the API policy) fails, 2 on error.
 */
#include <limits.h>
#include <malloc.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "emsguard.h"
#include "harness.h"
#include "bench.h"

/* ---- allocation accounting ----------------------------------------------- */

/*
 * Live bytes allocated through OpenSSL's allocator (which libemsguard also
 * uses), counted as glibc's usable size so free() can subtract exactly what
 * malloc() added without a header.  Installed before any OpenSSL call.
 */
static atomic_llong live_bytes;

static void *count_malloc(size_t n, const char *file, int line)
{
    void *p = malloc(n);

    (void)file;
    (void)line;
    if (p != NULL)
        atomic_fetch_add_explicit(&live_bytes, (long long)malloc_usable_size(p),
            memory_order_relaxed);
    return p;
}

static void count_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    if (p != NULL)
        atomic_fetch_sub_explicit(&live_bytes, (long long)malloc_usable_size(p),
            memory_order_relaxed);
    free(p);
}

static void *count_realloc(void *p, size_t n, const char *file, int line)
{
    long long before = p != NULL ? (long long)malloc_usable_size(p) : 0;
    void *q;

    if (n == 0) {
        count_free(p, file, line);
        return NULL;
    }
    if ((q = realloc(p, n)) != NULL)
        atomic_fetch_add_explicit(&live_bytes, (long long)malloc_usable_size(q) - before,
            memory_order_relaxed);
    return q;
}

static long long live_now(void)
{
    return atomic_load_explicit(&live_bytes, memory_order_relaxed);
}

/* ---- options --------------------------------------------------------------- */

struct options {
    int rounds;
    int chunks; /* interleaving slices per round and cell */
    int n_full, n_resumed; /* handshakes per variant, per round */
    int wall; /* time with CLOCK_MONOTONIC instead of thread CPU time */
    int memory, scaling;
    int memory_only; /* child process: counting allocator, memory report only */
    int mem_sessions;
    int scaling_max; /* largest cache size tried */
    const char *csv, *svg;
};

static void usage(void)
{
    fprintf(stderr, "usage: emsguard-bench [--quick] [--rounds N] [--wall] [--csv FILE] "
                    "[--svg FILE] [--no-memory] [--no-scaling]\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
    int i;

    /* About 1 to 2 minutes on one core of a 2-core VM; --quick about 10 s. */
    *o = (struct options){ 7, 4, 600, 3000, 0, 1, 1, 0, 1000, 100000,
        "bench/results.csv", "bench/results.svg" };
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            o->rounds = 5;
            o->n_full = 80;
            o->n_resumed = 600;
            o->mem_sessions = 300;
            o->scaling_max = 10000;
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            o->rounds = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--csv") == 0 && i + 1 < argc) {
            o->csv = argv[++i];
        } else if (strcmp(argv[i], "--svg") == 0 && i + 1 < argc) {
            o->svg = argv[++i];
        } else if (strcmp(argv[i], "--wall") == 0) {
            o->wall = 1;
        } else if (strcmp(argv[i], "--no-memory") == 0) {
            o->memory = 0;
        } else if (strcmp(argv[i], "--memory-only") == 0 && i + 1 < argc) {
            o->memory_only = 1;
            o->mem_sessions = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--no-scaling") == 0) {
            o->scaling = 0;
        } else {
            usage();
            return 0;
        }
    }
    if (o->mem_sessions < 1) {
        usage();
        return 0;
    }
    if (o->rounds < 1 || o->rounds > BENCH_MAX_ROUNDS) {
        fprintf(stderr, "emsguard-bench: --rounds must be 1..%d\n", BENCH_MAX_ROUNDS);
        return 0;
    }
    return 1;
}

static void fail(const char *what)
{
    fprintf(stderr, "emsguard-bench: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(2);
}

/* ---- library contexts ------------------------------------------------------ */

/*
 * Every variant runs in a library context loaded from a generated
 * openssl.cnf, stock included, so the ratios compare emsguard and not
 * "default library context vs another one".
 */
enum { ENV_PLAIN, ENV_AUDIT, ENV_ENFORCE, ENV_COUNT };

struct env {
    OSSL_LIB_CTX *libctx;
    EVP_PKEY *key[SUITE_COUNT];
    X509 *cert[SUITE_COUNT];
};

static void write_config(FILE *f, int env, const char *module)
{
    fprintf(f, "openssl_conf = init\n[init]\nproviders = provs\n%s[provs]\ndefault = def\n%s"
               "[def]\nactivate = 1\n",
        env == ENV_PLAIN ? "" : "alg_section = algs\n", env == ENV_PLAIN ? "" : "emsguard = eg\n");
    if (env == ENV_PLAIN)
        return;
    fprintf(f, "[eg]\nmodule = %s\nactivate = 1\nEventLogging = 0\n"
               "RequireExtendedMasterSecret = %d\n"
               "[algs]\ndefault_properties = ?emsguard.guard=yes\n",
        module, env == ENV_ENFORCE);
}

static OSSL_LIB_CTX *configured_libctx(int env, const char *module)
{
    char path[PATH_MAX];
    const char *tmp = getenv("TMPDIR");
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
    FILE *f;
    int fd;

    snprintf(path, sizeof(path), "%s/emsguard-bench-XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (libctx == NULL || (fd = mkstemp(path)) < 0 || (f = fdopen(fd, "w")) == NULL)
        fail("cannot create a configuration file");
    write_config(f, env, module);
    fclose(f);
    if (OSSL_LIB_CTX_load_config(libctx, path) != 1)
        fail("cannot load the generated configuration");
    unlink(path);
    return libctx;
}

/* A self-signed certificate for |key|, made in the env's library context. */
static X509 *self_signed(OSSL_LIB_CTX *libctx, EVP_PKEY *key)
{
    X509 *cert = X509_new_ex(libctx, NULL);
    X509_NAME *name;

    if (cert == NULL)
        return NULL;
    name = X509_get_subject_name(cert);
    if (X509_set_version(cert, 2) && ASN1_INTEGER_set(X509_get_serialNumber(cert), 1)
        && X509_gmtime_adj(X509_getm_notBefore(cert), -3600)
        && X509_gmtime_adj(X509_getm_notAfter(cert), 86400)
        && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
            (const unsigned char *)"emsguard-bench", -1, -1, 0)
        && X509_set_issuer_name(cert, name) && X509_set_pubkey(cert, key)
        && X509_sign(cert, key, EVP_sha256()) > 0)
        return cert;
    X509_free(cert);
    return NULL;
}

static void make_env(struct env *e, int env, const char *module)
{
    int s;

    e->libctx = configured_libctx(env, module);
    e->key[SUITE_ECDSA] = EVP_PKEY_Q_keygen(e->libctx, NULL, "EC", "P-256");
    e->key[SUITE_RSA] = EVP_PKEY_Q_keygen(e->libctx, NULL, "RSA", (size_t)2048);
    for (s = 0; s < SUITE_COUNT; s++)
        if (e->key[s] == NULL || (e->cert[s] = self_signed(e->libctx, e->key[s])) == NULL)
            fail("cannot make the server credentials");
}

static void free_env(struct env *e)
{
    int s;

    for (s = 0; s < SUITE_COUNT; s++) {
        X509_free(e->cert[s]);
        EVP_PKEY_free(e->key[s]);
    }
    OSSL_LIB_CTX_free(e->libctx);
}

/* ---- SSL_CTXs ----------------------------------------------------------------- */

static const char *const cipher_of[SUITE_COUNT] = {
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"
};

/*
 * A TLS 1.2 server.  MODE_FULL uses OpenSSL's default server setup (internal
 * cache and tickets both on) so a full handshake pays for caching the session
 * and issuing a ticket, as a real server does; the resumption modes get one
 * mechanism each, as in the test harness.
 */
static SSL_CTX *server_ctx(const struct env *e, int suite, int mode)
{
    static const unsigned char ticket_keys[80] = "emsguard bench ticket keys";
    SSL_CTX *ctx = SSL_CTX_new_ex(e->libctx, NULL, TLS_server_method());

    if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)
        || !SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION)
        || SSL_CTX_use_certificate(ctx, e->cert[suite]) != 1
        || SSL_CTX_use_PrivateKey(ctx, e->key[suite]) != 1
        || SSL_CTX_set_cipher_list(ctx, cipher_of[suite]) != 1
        || !SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"eb", 2)
        || SSL_CTX_set_tlsext_ticket_keys(ctx, (void *)ticket_keys, sizeof(ticket_keys)) != 1)
        fail("cannot make a server SSL_CTX");
    if (mode == MODE_SESSION_ID)
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (mode == MODE_TICKET)
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    else
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    return ctx;
}

/* The harness's TLS 1.2 client (EMS on), restricted to the suite's cipher. */
static SSL_CTX *client_ctx(const struct env *e, int suite)
{
    SSL_CTX *ctx;

    hs_set_libctx(e->libctx);
    ctx = hs_client_ctx(0);
    hs_set_libctx(NULL);
    if (ctx == NULL || SSL_CTX_set_cipher_list(ctx, cipher_of[suite]) != 1)
        fail("cannot make a client SSL_CTX");
    return ctx;
}

/* The API policy with its defaults, quiet so logging is not what is timed. */
static void enable_default_policy(SSL_CTX *ctx)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();

    if (p == NULL || !EMSGUARD_POLICY_set(p, EMSGUARD_EVENT_LOGGING, "0")
        || !EMSGUARD_enable_policy(ctx, p))
        fail("cannot enable the policy");
    EMSGUARD_POLICY_free(p);
}

static int env_of(int variant)
{
    switch (variant) {
    case VAR_AUDIT:
        return ENV_AUDIT;
    case VAR_ENFORCE:
    case VAR_ALL:
        return ENV_ENFORCE;
    default:
        return ENV_PLAIN;
    }
}

/*
 * The variant's policy on one ctx.  "all" takes the policy of the provider
 * configured in its library context (EventLogging 0, RequireExtendedMasterSecret
 * 1), which adds the ClientHello check to the guard's.
 */
static void apply_variant(SSL_CTX *ctx, int variant, const struct env *e)
{
    if (variant == VAR_POLICY)
        enable_default_policy(ctx);
    else if (variant == VAR_ALL && !EMSGUARD_enable_ex(ctx, e->libctx))
        fail("cannot enable the provider's policy");
}

/* ---- one handshake ------------------------------------------------------------- */

/* One step of one end: 1 done, 0 waiting for the peer, -1 failed. */
static int step(SSL *ssl)
{
    int r = SSL_do_handshake(ssl), e;

    if (r == 1)
        return 1;
    e = SSL_get_error(ssl, r);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

static int drive(SSL *client, SSL *server)
{
    int c = 0, s = 0, i;

    for (i = 0; i < 64 && (c == 0 || s == 0); i++) {
        if (c == 0)
            c = step(client);
        if (s == 0)
            s = step(server);
        if (c < 0 || s < 0)
            return 0;
    }
    return c == 1 && s == 1;
}

/*
 * A lean handshake for timing: unlike hs_handshake() no message callback, no
 * session copy and no data exchange, so the fixed cost around the handshake
 * does not dilute the ratios.  Returns 1 resumed, 0 full, -1 failed.
 */
static int timed_handshake(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer)
{
    SSL *client = SSL_new(cctx), *server = SSL_new(sctx);
    BIO *cbio = NULL, *sbio = NULL;
    int result = -1;

    if (client != NULL && server != NULL && BIO_new_bio_pair(&cbio, 0, &sbio, 0)) {
        SSL_set_bio(client, cbio, cbio);
        SSL_set_bio(server, sbio, sbio);
        SSL_set_connect_state(client);
        SSL_set_accept_state(server);
        if ((offer == NULL || SSL_set_session(client, offer)) && drive(client, server)) {
            result = SSL_session_reused(server);
            /* A clean close keeps the session cached (SSL_free evicts otherwise). */
            SSL_set_shutdown(client, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
            SSL_set_shutdown(server, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        }
    }
    SSL_free(client);
    SSL_free(server);
    if (result < 0)
        ERR_clear_error();
    return result;
}

/* ---- the variants under test ---------------------------------------------------- */

struct setup {
    SSL_CTX *server[SUITE_COUNT][MODE_COUNT];
    SSL_CTX *client[SUITE_COUNT];
    SSL_SESSION *offer[SUITE_COUNT][MODE_COUNT]; /* NULL for MODE_FULL */
};

/*
 * Checks with the harness, which watches the wire, that the variant really
 * negotiates EMS and resumes, and returns the session to offer.
 */
static SSL_SESSION *checked_session(SSL_CTX *sctx, SSL_CTX *cctx, int mode)
{
    hs_result full, again;
    SSL_SESSION *sess;

    if (!hs_handshake(sctx, cctx, NULL, &full) || !full.ems || !full.hello_ems)
        fail("sanity: full handshake without EMS");
    if (mode == MODE_FULL) {
        hs_result_clear(&full);
        return NULL;
    }
    if (!hs_handshake(sctx, cctx, full.session, &again) || !again.server_reused)
        fail("sanity: the session did not resume");
    sess = full.session;
    full.session = NULL;
    hs_result_clear(&again);
    return sess;
}

static void make_setup(struct setup *st, int variant, struct env envs[ENV_COUNT])
{
    const struct env *e = &envs[env_of(variant)];
    int s, m;

    for (s = 0; s < SUITE_COUNT; s++) {
        st->client[s] = client_ctx(e, s);
        apply_variant(st->client[s], variant, e);
        for (m = 0; m < MODE_COUNT; m++) {
            st->server[s][m] = server_ctx(e, s, m);
            apply_variant(st->server[s][m], variant, e);
            st->offer[s][m] = checked_session(st->server[s][m], st->client[s], m);
        }
    }
}

static void free_setup(struct setup *st)
{
    int s, m;

    for (s = 0; s < SUITE_COUNT; s++) {
        for (m = 0; m < MODE_COUNT; m++) {
            SSL_SESSION_free(st->offer[s][m]);
            SSL_CTX_free(st->server[s][m]);
        }
        SSL_CTX_free(st->client[s]);
    }
}

/* Proves the guard is in libssl's path: its EMS derivation counter moves. */
static void check_guard_used(struct setup *st)
{
    uint64_t before = 0, after = 0;

    if (!EMSGUARD_audit_get(EMSGUARD_AUDIT_EMS_DERIVATIONS, &before)
        || timed_handshake(st->server[SUITE_ECDSA][MODE_FULL], st->client[SUITE_ECDSA], NULL) != 0
        || !EMSGUARD_audit_get(EMSGUARD_AUDIT_EMS_DERIVATIONS, &after) || after != before + 2)
        fail("sanity: the TLS1-PRF guard is not used by the guard variants");
}

/* ---- timing ------------------------------------------------------------------- */

static clockid_t bench_clock = CLOCK_THREAD_CPUTIME_ID;

static double now(void)
{
    struct timespec ts;

    clock_gettime(bench_clock, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* |n| handshakes of one kind into |cell|; each must resume exactly when offered. */
static void time_batch(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer, int n,
    struct bench_cell *cell)
{
    double t0 = now();
    int i;

    for (i = 0; i < n; i++)
        if (timed_handshake(sctx, cctx, offer) != (offer != NULL))
            fail("a timed handshake failed or did not (not) resume as expected");
    cell->seconds += now() - t0;
    cell->handshakes += n;
}

/*
 * One round of one suite and mode: every variant runs n handshakes, in
 * |chunks| slices, and the order of the variants rotates from slice to slice
 * so no variant always runs first (warm caches) or last.
 */
static void run_cell(struct setup st[VAR_COUNT], const struct options *o, int s, int m,
    int round, struct bench_results *r)
{
    int n = (m == MODE_FULL ? o->n_full : o->n_resumed) / o->chunks, c, k;

    for (c = 0; c < o->chunks; c++)
        for (k = 0; k < VAR_COUNT; k++) {
            int v = (k + c + round) % VAR_COUNT;

            time_batch(st[v].server[s][m], st[v].client[s], st[v].offer[s][m], n,
                &r->cell[s][m][v][round]);
        }
}

static void run_rounds(struct setup st[VAR_COUNT], const struct options *o,
    struct bench_results *r)
{
    int round, s, m;

    r->rounds = o->rounds;
    r->clock_name = o->wall ? "wall" : "thread-cpu";
    for (round = 0; round < o->rounds; round++) {
        for (s = 0; s < SUITE_COUNT; s++)
            for (m = 0; m < MODE_COUNT; m++)
                run_cell(st, o, s, m, round, r);
        fprintf(stderr, "  round %d/%d done\n", round + 1, o->rounds);
    }
}

/* ---- memory per cached session --------------------------------------------------- */

/*
 * Bytes that stay allocated per session held in a server's internal cache,
 * after |n| full handshakes (ECDSA, session-ID server).  A few handshakes
 * first let one-time allocations (error state, fetched algorithms) happen
 * outside the measurement.
 */
static double bytes_per_session(const struct env *e, int with_policy, int n, double *heap)
{
    SSL_CTX *sctx = server_ctx(e, SUITE_ECDSA, MODE_SESSION_ID), *cctx = client_ctx(e, SUITE_ECDSA);
    long long before;
    size_t heap_before;
    double per;
    long cached;
    int i;

    if (with_policy) {
        enable_default_policy(sctx);
        enable_default_policy(cctx);
    }
    SSL_CTX_sess_set_cache_size(sctx, n + 100);
    for (i = 0; i < 20; i++)
        timed_handshake(sctx, cctx, NULL);
    before = live_now();
    heap_before = mallinfo2().uordblks;
    cached = SSL_CTX_sess_number(sctx);
    for (i = 0; i < n; i++)
        if (timed_handshake(sctx, cctx, NULL) != 0)
            fail("memory: a full handshake failed");
    if (SSL_CTX_sess_number(sctx) - cached != n)
        fail("memory: the server did not cache every session");
    *heap = ((double)mallinfo2().uordblks - (double)heap_before) / n;
    per = (double)(live_now() - before) / n;
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    return per;
}

static void report_memory(const struct env *e, int n)
{
    double heap_stock, heap_policy;
    double stock = bytes_per_session(e, 0, n, &heap_stock);
    double policy = bytes_per_session(e, 1, n, &heap_policy);

    printf("\nmemory per cached session (%d sessions, server internal cache)\n", n);
    printf("  OpenSSL allocator (usable bytes): stock %.0f, api-policy %.0f\n", stock, policy);
    printf("  glibc heap in use (mallinfo2):    stock %.0f, api-policy %.0f\n", heap_stock,
        heap_policy);
    printf("policy extra bytes per session: %.0f\n", policy - stock);
}

/* ---- scaling with the size of the session cache ------------------------------------- */

/*
 * Synthetic sessions, as a busy server's cache holds: random IDs and master
 * keys.  They never resume; they only make the cache (hash table and the
 * periodic expiry sweep) as large as a real one.
 */
static void fill_cache(SSL_CTX *ctx, int count)
{
    unsigned char id[32], mk[48];
    int i;

    SSL_CTX_sess_set_cache_size(ctx, count + 1000);
    for (i = 0; i < count; i++) {
        SSL_SESSION *sess = SSL_SESSION_new();

        if (sess == NULL || RAND_bytes(id, sizeof(id)) != 1 || RAND_bytes(mk, sizeof(mk)) != 1
            || !SSL_SESSION_set1_id(sess, id, sizeof(id))
            || !SSL_SESSION_set1_master_key(sess, mk, sizeof(mk))
            || !SSL_SESSION_set_protocol_version(sess, TLS1_2_VERSION)
            || !SSL_SESSION_set_timeout(sess, 3600) || !SSL_CTX_add_session(ctx, sess))
            fail("scaling: cannot fill the session cache");
        SSL_SESSION_free(sess);
    }
}

/* Session-ID resumption rate, stock vs policy, with |count| cached sessions. */
static void scaling_point(const struct env *e, int count, int n, int rounds)
{
    SSL_CTX *sctx[2], *cctx[2];
    SSL_SESSION *offer[2];
    struct bench_cell cell[2] = { { 0, 0 }, { 0, 0 } };
    int v, i;

    for (v = 0; v < 2; v++) {
        sctx[v] = server_ctx(e, SUITE_ECDSA, MODE_SESSION_ID);
        cctx[v] = client_ctx(e, SUITE_ECDSA);
        if (v == 1) {
            /* Before filling: enabling the policy empties the internal cache. */
            enable_default_policy(sctx[v]);
            enable_default_policy(cctx[v]);
        }
        fill_cache(sctx[v], count);
        offer[v] = checked_session(sctx[v], cctx[v], MODE_SESSION_ID);
    }
    for (i = 0; i < rounds * 2; i++)
        time_batch(sctx[i % 2], cctx[i % 2], offer[i % 2], n, &cell[i % 2]);
    printf("  %7d sessions  stock %8.0f hs/s  api-policy %8.0f hs/s  ratio %.3f\n",
        (int)SSL_CTX_sess_number(sctx[0]), bench_rate(&cell[0]), bench_rate(&cell[1]),
        bench_rate(&cell[1]) / bench_rate(&cell[0]));
    for (v = 0; v < 2; v++) {
        SSL_SESSION_free(offer[v]);
        SSL_CTX_free(cctx[v]);
        SSL_CTX_free(sctx[v]);
    }
}

static void report_scaling(const struct env *e, const struct options *o)
{
    int count;

    printf("\nresume-session-id (ECDSA P-256) vs server cache size\n");
    for (count = 1000; count <= o->scaling_max; count *= 10)
        scaling_point(e, count, o->n_resumed / 4, 6);
}

/* ---- main ------------------------------------------------------------------------ */

static void module_path(char *out, size_t len)
{
    const char *build = getenv("BUILD");
    char abs[PATH_MAX];

    if (realpath(build != NULL ? build : "build", abs) == NULL)
        fail("set BUILD to the build directory (with emsguard.so)");
    snprintf(out, len, "%s/emsguard.so", abs);
}

static void print_header(const struct options *o)
{
    printf("emsguard-bench %s, %s, TLS 1.2, in-memory BIO pairs, 1 thread\n",
        EMSGUARD_VERSION_STR, OpenSSL_version(OPENSSL_VERSION));
    printf("%d rounds; per round and variant: %d full / %d resumed handshakes in %d interleaved "
           "slices; %s clock\n",
        o->rounds, o->n_full, o->n_resumed, o->chunks, o->wall ? "wall" : "thread-CPU");
    printf("variants: stock; api-policy (EMSGUARD_enable_policy, defaults, both ends); "
           "guard-audit (TLS1-PRF guard, Require=0); guard-enforce (Require=1); "
           "all (guard enforce + provider policy on both ends). preload: not measured\n");
}

/*
 * The memory report runs in a child process of its own: the counting
 * allocator must be installed before OpenSSL's first allocation, and it
 * would otherwise also be timed in every handshake of the benchmark.
 */
static int memory_child(const struct options *o)
{
    struct env plain;
    char module[PATH_MAX + 16];

    if (!CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free))
        fail("cannot install the counting allocator");
    OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
    module_path(module, sizeof(module));
    make_env(&plain, ENV_PLAIN, module);
    report_memory(&plain, o->mem_sessions);
    free_env(&plain);
    return 0;
}

static void run_memory_child(const struct options *o)
{
    char n[16];
    pid_t pid;
    int status;

    snprintf(n, sizeof(n), "%d", o->mem_sessions);
    fflush(stdout);
    if ((pid = fork()) == 0) {
        execl("/proc/self/exe", "emsguard-bench", "--memory-only", n, (char *)NULL);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)
        || WEXITSTATUS(status) != 0)
        fail("the memory measurement failed");
}

int main(int argc, char **argv)
{
    static struct bench_results results;
    struct env envs[ENV_COUNT];
    struct setup st[VAR_COUNT];
    struct options o;
    char module[PATH_MAX + 16];
    int e, v, failed;

    if (!parse_options(argc, argv, &o))
        return 2;
    if (o.memory_only)
        return memory_child(&o);
    bench_clock = o.wall ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID;
    /* No system openssl.cnf: it might load emsguard into "stock". */
    OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
    module_path(module, sizeof(module));
    for (e = 0; e < ENV_COUNT; e++)
        make_env(&envs[e], e, module);
    for (v = 0; v < VAR_COUNT; v++)
        make_setup(&st[v], v, envs);
    check_guard_used(&st[VAR_AUDIT]);
    print_header(&o);
    run_rounds(st, &o, &results);
    failed = bench_print_summary(stdout, &results);
    if (!bench_write_csv(o.csv, &results) || !bench_write_svg(o.svg, &results))
        fail("cannot write the CSV or the SVG");
    printf("wrote %s and %s\n", o.csv, o.svg);
    if (o.memory)
        run_memory_child(&o);
    if (o.scaling)
        report_scaling(&envs[ENV_PLAIN], &o);
    for (v = 0; v < VAR_COUNT; v++)
        free_setup(&st[v]);
    for (e = 0; e < ENV_COUNT; e++)
        free_env(&envs[e]);
    hs_cleanup();
    return failed ? 1 : 0;
}
