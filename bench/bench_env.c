/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard-bench helpers: what every part of the benchmark runs its
 * handshakes in -- the generated openssl.cnf and library contexts, the
 * server credentials, the SSL_CTXs of each variant with the sanity checks
 * that its policy is really there, and one lean in-memory handshake.  Kept
 * apart from main (bench.c) so the parts (child.c, capacity.c, cache.c)
 * depend on these helpers and never on the file that calls them.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "emsguard.h"
#include "harness.h"
#include "bench_env.h"

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
