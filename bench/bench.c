/*
 * emsguard-bench -- what the policy costs per TLS 1.2 handshake.
 *
 * In-process handshakes over BIO pairs (no sockets): a client and a server
 * SSL are stepped alternately until both finish.  The in-process variants
 * are interleaved in short slices inside each round, so CPU frequency drift
 * and noisy neighbours hit them alike; the ratio to stock is taken per round
 * and summarised as min/median/max.  Each round is run with one thread and
 * then with N threads sharing the variant's SSL_CTXs.  Three child processes
 * (stock, the preload route and "all", see child.c) take their turns in the
 * same slices.
 *
 *   BUILD=build bench/emsguard-bench [--quick] [--rounds N] [--threads N]
 *       [--wall] [--csv FILE] [--svg FILE] [--no-memory] [--no-scaling]
 *       [--no-capacity] [--no-children]
 *
 * Single-threaded times are thread CPU time by default (robust against other
 * processes on a shared machine); --wall uses the monotonic clock instead.
 * The multi-threaded run counts the process's CPU time (--wall: wall time).
 *
 * Exit status 1 when a gating target fails, 2 on error.
 */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "emsguard.h"
#include "harness.h"
#include "bench.h"

/* ---- options --------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: emsguard-bench [--quick] [--rounds N] [--threads N] "
                    "[--threaded-rounds N] [--wall] [--calibrate]\n"
                    "    [--n-full N] [--n-resumed N] [--csv FILE] [--svg FILE]\n"
                    "    [--no-memory] [--no-scaling] [--no-capacity] [--no-children] [--no-pin]\n");
}

static int int_arg(int argc, char **argv, int *i, int *out)
{
    char *end;
    long v;

    if (*i + 1 >= argc)
        return 0;
    v = strtol(argv[++*i], &end, 10);
    if (*end != '\0' || v < 0 || v > INT_MAX)
        return 0;
    *out = (int)v;
    return 1;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    const char *last = "";
    int i, ok = 1;

    /*
     * About 4-5 minutes on a 2-core VM; --quick about 15 s.  21 rounds: the
     * child routes cost 1-1.5 % on resumptions against a 2 % allowance,
     * and at 11 rounds a median moved by about 0.3-0.5 % from run to run
     * (stock against stock), enough to fail a route that meets its target.
     * The N-thread run gates nothing, so it runs in only 7 of the rounds.
     */
    *o = (struct options){ .rounds = 21, .chunks = 8, .n_full = 400, .n_resumed = 2000,
        .threads = 2, .threaded_rounds = 7, .memory = 1, .scaling = 1, .capacity = 1, .children = 1,
        .mem_sessions = 1000, .scaling_max = 100000, .child_variant = -1, .cpu = -1 };
    for (i = 1; i < argc && ok; i++) {
        last = argv[i];
        if (strcmp(argv[i], "--quick") == 0) {
            o->rounds = 3;
            o->threaded_rounds = 3;
            o->chunks = 4;
            o->n_full = 60;
            o->n_resumed = 400;
            o->mem_sessions = 300;
            o->scaling_max = 10000;
        } else if (strcmp(argv[i], "--rounds") == 0) {
            ok = int_arg(argc, argv, &i, &o->rounds);
        } else if (strcmp(argv[i], "--threads") == 0) {
            ok = int_arg(argc, argv, &i, &o->threads);
        } else if (strcmp(argv[i], "--threaded-rounds") == 0) {
            ok = int_arg(argc, argv, &i, &o->threaded_rounds);
        } else if (strcmp(argv[i], "--n-full") == 0) {
            ok = int_arg(argc, argv, &i, &o->n_full);
        } else if (strcmp(argv[i], "--n-resumed") == 0) {
            ok = int_arg(argc, argv, &i, &o->n_resumed);
        } else if (strcmp(argv[i], "--chunks") == 0) {
            ok = int_arg(argc, argv, &i, &o->chunks);
        } else if (strcmp(argv[i], "--csv") == 0 && i + 1 < argc) {
            o->csv = argv[++i];
        } else if (strcmp(argv[i], "--svg") == 0 && i + 1 < argc) {
            o->svg = argv[++i];
        } else if (strcmp(argv[i], "--wall") == 0) {
            o->wall = 1;
        } else if (strcmp(argv[i], "--no-memory") == 0) {
            o->memory = 0;
        } else if (strcmp(argv[i], "--no-scaling") == 0) {
            o->scaling = 0;
        } else if (strcmp(argv[i], "--no-capacity") == 0) {
            o->capacity = 0;
        } else if (strcmp(argv[i], "--calibrate") == 0) {
            o->calibrate = 1;
        } else if (strcmp(argv[i], "--no-children") == 0) {
            o->children = 0;
        } else if (strcmp(argv[i], "--no-pin") == 0) {
            o->cpu = -2;
        } else if (strcmp(argv[i], "--cpu") == 0) { /* hidden: child.c */
            ok = int_arg(argc, argv, &i, &o->cpu);
        } else if (strcmp(argv[i], "--memory-only") == 0) { /* hidden: cache.c */
            o->memory_only = 1;
            ok = int_arg(argc, argv, &i, &o->mem_sessions);
        } else if (strcmp(argv[i], "--child") == 0 && i + 1 < argc) { /* hidden: child.c */
            ok = (o->child_variant = bench_variant_of_name(argv[++i])) >= VAR_CHILD_STOCK;
        } else if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc) {
            o->keys = argv[++i];
        } else {
            ok = 0;
        }
    }
    if (!ok) {
        fprintf(stderr, "emsguard-bench: %s: unknown option, or its value is missing or "
                        "not a whole number\n", last);
        usage();
        return 0;
    }
    if (o->mem_sessions < 1 || o->n_full < 1 || o->n_resumed < 1 || o->chunks < 1
        || o->threaded_rounds < 1) {
        fprintf(stderr, "emsguard-bench: --n-full, --n-resumed, --chunks and --threaded-rounds "
                        "must be at least 1 (--threads 0 skips the N-thread run)\n");
        usage();
        return 0;
    }
    if (o->calibrate && !o->children) {
        fprintf(stderr, "emsguard-bench: --calibrate replaces the preload and all children; it "
                        "cannot be used with --no-children\n");
        return 0;
    }
    if (o->rounds < 1 || o->rounds > BENCH_MAX_ROUNDS || o->threads > BENCH_MAX_THREADS) {
        fprintf(stderr, "emsguard-bench: --rounds must be 1..%d, --threads 0..%d\n",
            BENCH_MAX_ROUNDS, BENCH_MAX_THREADS);
        return 0;
    }
    return 1;
}

_Noreturn void bench_fail(const char *what)
{
    fprintf(stderr, "emsguard-bench: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(2);
}

void bench_module_path(char *out, size_t len)
{
    const char *build = getenv("BUILD");
    char abs[PATH_MAX];

    if (realpath(build != NULL ? build : "build", abs) == NULL)
        bench_fail("set BUILD to the build directory (with emsguard.so)");
    snprintf(out, len, "%s/emsguard.so", abs);
}

/* ---- library contexts ------------------------------------------------------ */

/*
 * Every variant runs in a library context loaded from a generated
 * openssl.cnf, stock included, so the ratios compare emsguard and not
 * "default library context vs another one".  The same file is the policy
 * the preload library reads (EMSGUARD_CONF) in the child processes.
 */
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

void bench_write_config_file(int env, const char *module, char *path, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    FILE *f;
    int fd;

    snprintf(path, len, "%s/emsguard-bench-XXXXXX", tmp != NULL ? tmp : "/tmp");
    if ((fd = mkstemp(path)) < 0 || (f = fdopen(fd, "w")) == NULL)
        bench_fail("cannot create a configuration file");
    write_config(f, env, module);
    if (fclose(f) != 0)
        bench_fail("cannot write a configuration file");
}

static OSSL_LIB_CTX *configured_libctx(int env, const char *module)
{
    char path[PATH_MAX];
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();

    if (libctx == NULL)
        bench_fail("cannot make a library context");
    bench_write_config_file(env, module, path, sizeof(path));
    if (OSSL_LIB_CTX_load_config(libctx, path) != 1)
        bench_fail("cannot load the generated configuration");
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

/* The keys in suite order, so every env and child uses the same ones. */
static void load_keys(struct env *e, const char *path)
{
    BIO *in = BIO_new_file(path, "r");
    int s;

    for (s = 0; s < SUITE_COUNT && in != NULL; s++)
        e->key[s] = PEM_read_bio_PrivateKey_ex(in, NULL, NULL, NULL, e->libctx, NULL);
    BIO_free(in);
}

int bench_save_keys(const struct env *e, const char *path)
{
    BIO *out = BIO_new_file(path, "w");
    int s, ok = out != NULL;

    for (s = 0; s < SUITE_COUNT && ok; s++)
        ok = PEM_write_bio_PrivateKey(out, e->key[s], NULL, NULL, 0, NULL, NULL);
    return BIO_free(out) && ok;
}

void bench_make_env(struct env *e, int env, const char *module, const char *keys)
{
    int s;

    memset(e, 0, sizeof(*e));
    e->libctx = configured_libctx(env, module);
    if (keys != NULL) {
        load_keys(e, keys);
    } else {
        e->key[SUITE_ECDSA] = EVP_PKEY_Q_keygen(e->libctx, NULL, "EC", "P-256");
        e->key[SUITE_RSA] = EVP_PKEY_Q_keygen(e->libctx, NULL, "RSA", (size_t)2048);
    }
    for (s = 0; s < SUITE_COUNT; s++)
        if (e->key[s] == NULL || (e->cert[s] = self_signed(e->libctx, e->key[s])) == NULL)
            bench_fail("cannot make the server credentials");
}

void bench_free_env(struct env *e)
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
 * mechanism each, as in the test harness.  The ticket keys are fixed, so
 * every ticket server of a suite accepts the others' tickets.
 */
SSL_CTX *bench_server_ctx(const struct env *e, int suite, int mode)
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
        bench_fail("cannot make a server SSL_CTX");
    if (mode == MODE_SESSION_ID)
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (mode == MODE_TICKET)
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    else
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    return ctx;
}

/* The harness's TLS 1.2 client (HS_* flags), restricted to the suite's cipher. */
SSL_CTX *bench_client_ctx(const struct env *e, int suite, int flags)
{
    SSL_CTX *ctx;

    hs_set_libctx(e->libctx);
    ctx = hs_client_ctx(flags);
    hs_set_libctx(NULL);
    if (ctx == NULL || SSL_CTX_set_cipher_list(ctx, cipher_of[suite]) != 1)
        bench_fail("cannot make a client SSL_CTX");
    return ctx;
}

/* The API policy with its defaults, quiet so logging is not what is timed. */
void bench_enable_default_policy(SSL_CTX *ctx)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();

    if (p == NULL || !EMSGUARD_POLICY_set(p, EMSGUARD_EVENT_LOGGING, "0")
        || !EMSGUARD_enable_policy(ctx, p))
        bench_fail("cannot enable the policy");
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
 * The variant's policy on one ctx.  The preload variants got theirs from
 * libemsguard-preload.so when the ctx was made; "all" then also enables the
 * policy of the provider configured in its library context, the same values
 * (EventLogging 0, RequireExtendedMasterSecret 1), so that call must succeed
 * as a no-op.  Afterwards the ctx must have a policy exactly when the
 * variant installs one: that proves the preload route is active.
 */
static void apply_variant(SSL_CTX *ctx, int variant, const struct env *e)
{
    int want = variant == VAR_POLICY || variant == VAR_PRELOAD || variant == VAR_ALL;

    if (variant == VAR_POLICY)
        bench_enable_default_policy(ctx);
    else if (variant == VAR_ALL && !EMSGUARD_enable_ex(ctx, e->libctx))
        bench_fail("cannot enable the provider's policy on top of the preload's");
    if (EMSGUARD_CTX_is_enabled(ctx) != want)
        bench_fail(want ? "sanity: the variant's ctx has no emsguard policy (preload not active?)"
                        : "sanity: a stock ctx has an emsguard policy");
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
int bench_handshake(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer)
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

/*
 * Checks with the harness, which watches the wire, that the variant really
 * negotiates EMS and resumes, and returns the session to offer.
 */
SSL_SESSION *bench_checked_session(SSL_CTX *sctx, SSL_CTX *cctx, int mode)
{
    hs_result full, again;
    SSL_SESSION *sess;

    if (!hs_handshake(sctx, cctx, NULL, &full) || !full.ems || !full.hello_ems)
        bench_fail("sanity: full handshake without EMS");
    if (mode == MODE_FULL) {
        hs_result_clear(&full);
        return NULL;
    }
    if (!hs_handshake(sctx, cctx, full.session, &again) || !again.server_reused)
        bench_fail("sanity: the session did not resume");
    sess = full.session;
    full.session = NULL;
    hs_result_clear(&again);
    return sess;
}

void bench_make_setup(struct setup *st, int variant, struct env envs[ENV_COUNT])
{
    const struct env *e = &envs[env_of(variant)];
    int s, m;

    for (s = 0; s < SUITE_COUNT; s++) {
        st->client[s] = bench_client_ctx(e, s, 0);
        apply_variant(st->client[s], variant, e);
        for (m = 0; m < MODE_COUNT; m++) {
            st->server[s][m] = bench_server_ctx(e, s, m);
            apply_variant(st->server[s][m], variant, e);
            st->offer[s][m] = bench_checked_session(st->server[s][m], st->client[s], m);
        }
    }
}

void bench_free_setup(struct setup *st)
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
void bench_check_guard_used(struct setup *st)
{
    uint64_t before = 0, after = 0;

    if (!EMSGUARD_audit_get(EMSGUARD_AUDIT_EMS_DERIVATIONS, &before)
        || bench_handshake(st->server[SUITE_ECDSA][MODE_FULL], st->client[SUITE_ECDSA], NULL) != 0
        || !EMSGUARD_audit_get(EMSGUARD_AUDIT_EMS_DERIVATIONS, &after) || after != before + 2)
        bench_fail("sanity: the TLS1-PRF guard is not used by the guard variants");
}

/* ---- timing ------------------------------------------------------------------- */

/*
 * The single-threaded work of every process -- the parent and the three
 * children, which never run at the same time -- is pinned to one CPU.  On a
 * shared machine the two cores are not equally disturbed (another job on a
 * core, or on its SMT sibling, slows every instruction without showing in
 * CPU time); pinned, the in-process and the child variants are measured on
 * the same core, so that cancels out in the ratios as the interleaving does.
 */
static cpu_set_t unpinned;
static int pinned;

void bench_pin(int cpu)
{
    cpu_set_t one;

    if (cpu < 0 || sched_getaffinity(0, sizeof(unpinned), &unpinned) != 0)
        return;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pinned = sched_setaffinity(0, sizeof(one), &one) == 0;
}

static clockid_t bench_clock = CLOCK_THREAD_CPUTIME_ID;
static int threads_wall; /* see threads_now() */

void bench_use_wall_clock(int wall)
{
    bench_clock = wall ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID;
    threads_wall = wall;
}

static double clock_now(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double bench_now(void)
{
    return clock_now(bench_clock);
}

double bench_wall_now(void)
{
    return clock_now(CLOCK_MONOTONIC);
}

static void run_batch(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer, int n)
{
    int i;

    for (i = 0; i < n; i++)
        if (bench_handshake(sctx, cctx, offer) != (offer != NULL))
            bench_fail("a timed handshake failed or did not (not) resume as expected");
}

void bench_time_batch(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer, int n,
    struct bench_cell *cell)
{
    double t0 = bench_now();

    run_batch(sctx, cctx, offer, n);
    cell->seconds += bench_now() - t0;
    cell->handshakes += n;
}

/*
 * The multi-threaded run counts the CPU time of the whole process (all its
 * threads; the waiting main thread uses none), which a noisy neighbour does
 * not inflate the way it inflates wall time; --wall gives wall time, i.e.
 * throughput.  Cache-line bouncing and lock spinning between the threads
 * cost CPU time and show up either way.
 */
static double threads_now(void)
{
    return clock_now(threads_wall ? CLOCK_MONOTONIC : CLOCK_PROCESS_CPUTIME_ID);
}

struct worker {
    SSL_CTX *sctx, *cctx;
    SSL_SESSION *offer; /* the thread's own copy */
    int n;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    run_batch(w->sctx, w->cctx, w->offer, w->n);
    return NULL;
}

/*
 * Every thread shares the two SSL_CTXs (and with them the session cache,
 * the ticket keys and emsguard's per-ctx state) but offers its own copy of
 * the session, as separate client connections do.
 */
void bench_time_batch_threads(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer,
    int n, int threads, struct bench_cell *cell)
{
    struct worker w[BENCH_MAX_THREADS];
    pthread_t tid[BENCH_MAX_THREADS];
    pthread_attr_t attr;
    double t0;
    int i;

    /* The workers run on every CPU the process had before pinning. */
    if (pthread_attr_init(&attr) != 0
        || (pinned && pthread_attr_setaffinity_np(&attr, sizeof(unpinned), &unpinned) != 0))
        bench_fail("cannot set up the worker threads");
    for (i = 0; i < threads; i++) {
        w[i] = (struct worker){ sctx, cctx, NULL, n / threads };
        if (offer != NULL && (w[i].offer = hs_session_copy(offer)) == NULL)
            bench_fail("cannot copy the session for a thread");
    }
    t0 = threads_now();
    for (i = 0; i < threads; i++)
        if (pthread_create(&tid[i], &attr, worker_main, &w[i]) != 0)
            bench_fail("cannot start a thread");
    for (i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    pthread_attr_destroy(&attr);
    cell->seconds += threads_now() - t0;
    for (i = 0; i < threads; i++) {
        cell->handshakes += w[i].n;
        SSL_SESSION_free(w[i].offer);
    }
}

/*
 * One round of one suite and mode: every variant runs n handshakes, in
 * |chunks| slices, and the order of the variants rotates from slice to slice
 * so no variant always runs first (warm caches) or last.  The child-process
 * variants take their turn in the same rotation.
 */
static void run_cell(struct setup *st, int count, const struct options *o, int s, int m,
    int round, int threads, struct bench_results *r)
{
    int n = (m == MODE_FULL ? o->n_full : o->n_resumed) / o->chunks, c, k;

    if (n < (threads > 0 ? threads : 1))
        n = threads > 0 ? threads : 1; /* at least one handshake per thread */
    for (c = 0; c < o->chunks; c++)
        for (k = 0; k < count; k++) {
            int v = (k + c + round) % count;
            struct bench_cell *cell = &r->cell[s][m][v][round], slice = { 0, 0, 0 };

            if (v >= VAR_CHILD_STOCK)
                bench_child_batch(v, c, threads, s, m, n, &slice);
            else if (threads == 0)
                bench_time_batch(st[v].server[s][m], st[v].client[s], st[v].offer[s][m], n,
                    &slice);
            else
                bench_time_batch_threads(st[v].server[s][m], st[v].client[s], st[v].offer[s][m],
                    n, threads, &slice);
            cell->handshakes += slice.handshakes;
            cell->seconds += slice.seconds;
            if (bench_rate(&slice) > cell->best)
                cell->best = bench_rate(&slice);
        }
}

/*
 * Every suite and mode, single-threaded; then, if |threaded_round| >= 0,
 * again with o->threads threads, stored as that threaded round.
 */
static void run_round(struct setup *st, int count, const struct options *o, int round,
    int threaded_round, struct bench_results *single, struct bench_results *threaded)
{
    int s, m;

    for (s = 0; s < SUITE_COUNT; s++)
        for (m = 0; m < MODE_COUNT; m++)
            run_cell(st, count, o, s, m, round, 0, single);
    if (threaded_round >= 0)
        for (s = 0; s < SUITE_COUNT; s++)
            for (m = 0; m < MODE_COUNT; m++)
                run_cell(st, count, o, s, m, threaded_round, o->threads, threaded);
}

/* ---- main ------------------------------------------------------------------------ */

static void print_header(const struct options *o)
{
    printf("emsguard-bench %s, %s, TLS 1.2, in-memory BIO pairs\n", EMSGUARD_VERSION_STR,
        OpenSSL_version(OPENSSL_VERSION));
    printf("%d rounds; per round and variant: %d full / %d resumed handshakes in %d interleaved "
           "slices, with 1 thread (%s clock)",
        o->rounds, o->n_full, o->n_resumed, o->chunks, o->wall ? "wall" : "thread-CPU");
    if (o->threads > 0)
        printf(" and, in %d of the rounds, again with %d threads sharing the ctxs (%s)",
            o->threaded_rounds < o->rounds ? o->threaded_rounds : o->rounds, o->threads,
            o->wall ? "wall clock" : "process-CPU clock: hs/s = handshakes per CPU-second");
    if (o->cpu >= 0)
        printf("; single-threaded work of all processes pinned to CPU %d", o->cpu);
    printf("\nvariants, in process: stock; api-policy (EMSGUARD_enable_policy, defaults, "
           "EventLogging 0, both ends); guard-audit (TLS1-PRF guard, Require=0); "
           "guard-enforce (Require=1)\n");
    if (o->children)
        printf("variants, in child processes (%d copies each, taking turns by slice; all started "
               "anew each round, each from a random heap history), interleaved in the same slices: "
               "stock-child (the baseline of the next two); "
               "preload (LD_PRELOAD libemsguard-preload.so, "
               "EventLogging 0); all (preload + provider policy via EMSGUARD_enable_ex + "
               "guard with Require=1, same policy values)\n",
            CHILD_COPIES);
    else
        printf("child-process variants (stock-child, preload, all): skipped (--no-children)\n");
    if (o->calibrate)
        printf("CALIBRATION RUN (--calibrate): the preload and all children run stock OpenSSL, "
               "like stock-child; their ratios measure this machine's noise, not emsguard, and "
               "no target is checked\n");
}

static char keys_file[PATH_MAX];

/* Also on an error exit: no private keys left behind in $TMPDIR. */
static void remove_keys_file(void)
{
    if (keys_file[0] != '\0')
        unlink(keys_file);
    keys_file[0] = '\0';
}

static void make_keys_file(const struct env *plain, char *path, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    int fd;

    snprintf(path, len, "%s/emsguard-bench-keys-XXXXXX", tmp != NULL ? tmp : "/tmp");
    if ((fd = mkstemp(path)) < 0)
        bench_fail("cannot create the key file");
    close(fd);
    snprintf(keys_file, sizeof(keys_file), "%s", path);
    atexit(remove_keys_file);
    if (!bench_save_keys(plain, path))
        bench_fail("cannot write the key file");
}

int main(int argc, char **argv)
{
    static struct bench_results single, threaded;
    struct env envs[ENV_COUNT];
    struct setup st[VAR_COUNT];
    struct options o;
    char module[PATH_MAX + 16], keys[PATH_MAX], csv[PATH_MAX + 32], svg[PATH_MAX + 32];
    int e, v, round, done_threaded = 0, failed;

    if (!parse_options(argc, argv, &o))
        return 2;
    if (o.memory_only)
        return bench_memory_child(&o);
    bench_use_wall_clock(o.wall);
    if (o.child_variant >= 0)
        return bench_child_main(&o);
    if (o.cpu == -1)
        o.cpu = sched_getcpu();
    bench_pin(o.cpu);
    /* No system openssl.cnf: it might load emsguard into "stock". */
    OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
    bench_module_path(module, sizeof(module));
    bench_make_env(&envs[ENV_PLAIN], ENV_PLAIN, module, NULL);
    make_keys_file(&envs[ENV_PLAIN], keys, sizeof(keys));
    for (e = ENV_PLAIN + 1; e < ENV_COUNT; e++)
        bench_make_env(&envs[e], e, module, keys);
    for (v = VAR_STOCK; v < VAR_IN_PROCESS; v++)
        bench_make_setup(&st[v], v, envs);
    bench_check_guard_used(&st[VAR_AUDIT]);
    /* Default outputs: next to the binaries, never into the source tree. */
    if (o.csv == NULL || o.svg == NULL) {
        const char *b = getenv("BUILD") != NULL ? getenv("BUILD") : "build";

        snprintf(csv, sizeof(csv), "%s/bench/results.csv", b);
        snprintf(svg, sizeof(svg), "%s/bench/results.svg", b);
        o.csv = o.csv != NULL ? o.csv : csv;
        o.svg = o.svg != NULL ? o.svg : svg;
    }
    if (o.children)
        bench_children_start(&o, module, keys);
    print_header(&o);
    fflush(stdout);
    single.rounds = o.rounds;
    single.calibrate = threaded.calibrate = o.calibrate;
    threaded.rounds = o.threaded_rounds < o.rounds ? o.threaded_rounds : o.rounds;
    single.threads = 1;
    threaded.threads = o.threads;
    single.clock_name = o.wall ? "wall" : "thread-cpu";
    threaded.clock_name = o.wall ? "wall" : "process-cpu";
    for (round = 0; round < o.rounds; round++) {
        if (o.children && round > 0)
            bench_children_restart(&o);
        /* The threaded rounds spread evenly: rounds 0, 3, 6, ... of 21. */
        int threaded_round = o.threads > 0 && done_threaded < threaded.rounds
                && round * threaded.rounds >= done_threaded * o.rounds
            ? done_threaded++
            : -1;

        run_round(st, o.children ? VAR_COUNT : VAR_IN_PROCESS, &o, round, threaded_round, &single,
            &threaded);
        fprintf(stderr, "  round %d/%d done\n", round + 1, o.rounds);
    }
    failed = bench_print_summary(stdout, &single, !o.calibrate);
    if (o.threads > 0)
        bench_print_summary(stdout, &threaded, 0);
    printf("\ngate: the median ratios of every variant in the 1-thread run (%s)",
        o.children ? "api-policy, guard-audit, guard-enforce, preload, all"
                   : "api-policy, guard-audit, guard-enforce; preload and all not run");
    if (o.threads > 0)
        printf("; the %d-thread run (%d of the rounds) is informational", o.threads,
            threaded.rounds);
    printf("\n");
    if (o.calibrate) {
        printf("bench targets: not checked (calibration run: preload and all are stock children; "
               "how far their medians are from 1.000 is the noise of this run)\n");
    } else {
        printf("bench targets: %s\n", failed ? "FAIL" : "PASS");
    }
    if (!bench_write_csv(o.csv, &single, o.threads > 0 ? &threaded : NULL)
        || !bench_write_svg(o.svg, &single, o.threads > 0 ? &threaded : NULL))
        bench_fail("cannot write the CSV or the SVG");
    printf("wrote %s and %s\n", o.csv, o.svg);
    fflush(stdout);
    if (o.children)
        bench_children_stop();
    remove_keys_file();
    if (o.capacity)
        bench_report_capacity(&envs[ENV_PLAIN], &o);
    if (o.memory)
        bench_run_memory_child(&o);
    if (o.scaling)
        bench_report_scaling(&envs[ENV_PLAIN], &o);
    for (v = VAR_STOCK; v < VAR_IN_PROCESS; v++)
        bench_free_setup(&st[v]);
    for (e = 0; e < ENV_COUNT; e++)
        bench_free_env(&envs[e]);
    hs_cleanup();
    return failed ? 1 : 0;
}
