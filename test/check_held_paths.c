/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Paths into a TLS <= 1.2 handshake that held in the issue 15 review, pinned
 * so that they keep holding (docs/enforcement.md names these tests), in
 * memory (BIO pairs, no sockets):
 *
 *  - DTLS 1.2 and DTLS 1.0, TLS 1.0 and TLS 1.1: a policy server never
 *    resumes a session without EMS (internal session-ID cache, external
 *    cache, tickets), and a policy client never offers one; EMS peers still
 *    resume.  The versions below TLS 1.2 (and DTLS 1.0) need
 *    "@SECLEVEL=0" with OpenSSL 3: their signatures (MD5-SHA1, SHA-1) are
 *    below security level 1 (ssl/t1_lib.c), so at the default level no
 *    handshake of those versions completes at all.
 *  - Client sessions that reach an SSL without SSL_set_session() of the
 *    application's own handshake: SSL_copy_session_id(), SSL_SESSION_dup(),
 *    a session stored as PEM and read back (d2i), and the session an SSL
 *    keeps across SSL_clear().
 *
 * Every test has a stock-OpenSSL control in it, the same setup without the
 * policy, that resumes: the test could fail.  The ClientHello is read off
 * the wire (message callback), so "not offered" is what the peer saw.
 *
 * Not here because check_handshake already pins it exactly: an external
 * cache shared with a stock server (test_fleet_shared_keys, external-cache
 * iteration), the TLS 1.2 server and client tables, and a server SSL reused
 * after SSL_clear() (test_ssl_clear_starts_a_new_connection).
 *
 *   BUILD=build build/test/check_held_paths
 */
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include <openssl/x509.h>
#include "emsguard.h"
#include "harness.h"
#include "harness_check.h"

/* ---- protocol versions ---------------------------------------------------- */

typedef struct {
    const char *name;
    int dtls;
    int version;
    const char *ciphers; /* NULL: the default list and security level */
} proto;

/*
 * "@SECLEVEL=0": OpenSSL 3 rates SHA-1 and MD5-SHA1 signatures below level
 * 1, and TLS 1.0/1.1 and DTLS 1.0 have no others, so they need level 0
 * (as an application that still serves them sets it).
 */
static const proto protos[] = {
    { "DTLS 1.2", 1, DTLS1_2_VERSION, NULL },
    { "DTLS 1.0", 1, DTLS1_VERSION, "DEFAULT:@SECLEVEL=0" },
    { "TLS 1.0", 0, TLS1_VERSION, "DEFAULT:@SECLEVEL=0" },
    { "TLS 1.1", 0, TLS1_1_VERSION, "DEFAULT:@SECLEVEL=0" },
};
#define PROTOS (int)(sizeof(protos) / sizeof(protos[0]))
#define TLS12 (&tls12)
static const proto tls12 = { "TLS 1.2", 0, TLS1_2_VERSION, NULL };

/* ---- contexts ------------------------------------------------------------- */

/* Defaults, EventLogging off to keep the output clean. */
static void enable_defaults(SSL_CTX *ctx)
{
    EMSGUARD_POLICY *policy = EMSGUARD_POLICY_new();

    ck_assert_ptr_nonnull(policy);
    ck_assert_int_eq(EMSGUARD_POLICY_set(policy, EMSGUARD_EVENT_LOGGING, "0"), 1);
    ck_assert_int_eq(EMSGUARD_enable_policy(ctx, policy), 1);
    EMSGUARD_POLICY_free(policy);
}

static EVP_PKEY *own_key;
static X509 *own_cert;

static void make_credentials(void)
{
    X509_NAME *name;

    if (own_cert != NULL)
        return;
    ck_assert_ptr_nonnull(own_key = EVP_EC_gen("P-256"));
    ck_assert_ptr_nonnull(own_cert = X509_new());
    name = X509_get_subject_name(own_cert);
    ck_assert(X509_set_version(own_cert, 2)
        && ASN1_INTEGER_set(X509_get_serialNumber(own_cert), 15)
        && X509_gmtime_adj(X509_getm_notBefore(own_cert), -3600)
        && X509_gmtime_adj(X509_getm_notAfter(own_cert), 86400)
        && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
            (const unsigned char *)"emsguard-held-paths", -1, -1, 0)
        && X509_set_issuer_name(own_cert, name)
        && X509_set_pubkey(own_cert, own_key)
        && X509_sign(own_cert, own_key, EVP_sha256()) > 0);
}

static SSL_CTX *proto_ctx(const proto *pr, int server, int flags)
{
    const SSL_METHOD *method = pr->dtls
        ? (server ? DTLS_server_method() : DTLS_client_method())
        : (server ? TLS_server_method() : TLS_client_method());
    SSL_CTX *ctx = SSL_CTX_new(method);

    ck_assert_ptr_nonnull(ctx);
    ck_assert(SSL_CTX_set_min_proto_version(ctx, pr->version)
        && SSL_CTX_set_max_proto_version(ctx, pr->version));
    if (pr->ciphers != NULL)
        ck_assert_int_eq(SSL_CTX_set_cipher_list(ctx, pr->ciphers), 1);
    if (flags & HS_NO_EMS)
        SSL_CTX_set_options(ctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    return ctx;
}

/*
 * A server of |pr| resuming by |mech| (as hs_server_ctx does for TLS 1.2):
 * fixed ticket keys and the harness's process-wide external cache, so a
 * stock and a policy server form a fleet.
 */
static SSL_CTX *server(const proto *pr, hs_mech mech, int flags)
{
    static const unsigned char ticket_keys[80] = "emsguard held-paths ticket keys, one fleet";
    SSL_CTX *ctx = proto_ctx(pr, 1, flags);

    make_credentials();
    ck_assert(SSL_CTX_use_certificate(ctx, own_cert) == 1
        && SSL_CTX_use_PrivateKey(ctx, own_key) == 1
        && SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"held", 4));
    switch (mech) {
    case HS_MECH_SESSION_ID:
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        break;
    case HS_MECH_EXT_CACHE:
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(ctx,
            SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
        hs_ext_cache_install(ctx);
        break;
    default:
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        ck_assert_int_eq(SSL_CTX_set_tlsext_ticket_keys(ctx, (void *)ticket_keys,
                             sizeof(ticket_keys)), 1);
        break;
    }
    return ctx;
}

static SSL_CTX *client(const proto *pr, int flags)
{
    return proto_ctx(pr, 0, flags);
}

/* ---- one connection, and what the wire showed ------------------------------ */

typedef struct {
    int ok; /* both ends completed, one byte went each way */
    int reused, server_reused; /* SSL_session_reused() of each end */
    int ems; /* client: SSL_get_extms_support() */
    int version; /* negotiated version */
    int hellos; /* ClientHellos the client wrote */
    int offered; /* the last one offered a session: an ID or a ticket */
    int hello_ems; /* the last one carried EMS */
    int server_alert, client_alert; /* fatal alert sent, or -1 */
    SSL_SESSION *session; /* client's session afterwards (owned) */
} outcome;

/* One more ClientHello seen: what it offered (hs_read_client_hello). */
static void read_client_hello(outcome *v, const unsigned char *p, size_t len, int dtls)
{
    v->hellos++;
    hs_read_client_hello(p, len, dtls, &v->offered, &v->hello_ems);
}

static void on_message(int write_p, int version, int content_type,
    const void *buf, size_t len, SSL *ssl, void *arg)
{
    outcome *o = arg;
    const unsigned char *p = buf;

    (void)version;
    if (!write_p || len < 2)
        return;
    if (content_type == SSL3_RT_ALERT && p[0] == SSL3_AL_FATAL) {
        if (SSL_is_server(ssl))
            o->server_alert = p[1];
        else
            o->client_alert = p[1];
    } else if (content_type == SSL3_RT_HANDSHAKE && !SSL_is_server(ssl)
        && p[0] == SSL3_MT_CLIENT_HELLO) {
        read_client_hello(o, p, len, SSL_is_dtls(ssl));
    }
}

static void watch(SSL *ssl, outcome *o)
{
    SSL_set_msg_callback(ssl, on_message);
    SSL_set_msg_callback_arg(ssl, o);
    if (SSL_is_dtls(ssl)) {
        /* A BIO pair has no MTU to ask for. */
        SSL_set_options(ssl, SSL_OP_NO_QUERY_MTU);
        ck_assert_int_eq(DTLS_set_link_mtu(ssl, 1400), 1);
    }
}

static int data_flows(SSL *client, SSL *server)
{
    unsigned char b = 0;

    return SSL_write(server, "s", 1) == 1 && SSL_read(client, &b, 1) == 1
        && b == 's' && SSL_write(client, "c", 1) == 1
        && SSL_read(server, &b, 1) == 1 && b == 'c';
}

/*
 * Connects the caller's |client| (its session, if any, already set) to a new
 * SSL of |sctx| and fills *o.  Both ends are shut down afterwards, so the
 * client's session stays resumable (SSL_free() or SSL_clear() of a
 * connection not shut down drops it).  The client stays the caller's.
 */
static int connect_client(SSL *client, SSL_CTX *sctx, outcome *o)
{
    SSL *server = SSL_new(sctx);

    memset(o, 0, sizeof(*o));
    o->server_alert = o->client_alert = -1;
    ck_assert_ptr_nonnull(server);
    watch(client, o);
    watch(server, o);
    if (hs_connect(client, server) && data_flows(client, server)) {
        o->ok = 1;
        o->reused = SSL_session_reused(client);
        o->server_reused = SSL_session_reused(server);
        o->ems = SSL_get_extms_support(client) == 1;
        o->version = SSL_version(client);
        o->session = SSL_get1_session(client);
        SSL_shutdown(client);
        SSL_shutdown(server);
    }
    SSL_set_msg_callback(client, NULL);
    SSL_free(server);
    ERR_clear_error(); /* a refused handshake leaves its reason here */
    return o->ok;
}

/*
 * A new client of |cctx| offering |offer| (through SSL_set_session) if not
 * NULL.  The caller decides how |offer| was copied.
 */
static int handshake(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *offer, outcome *o)
{
    SSL *c = SSL_new(cctx);
    int ok;

    ck_assert_ptr_nonnull(c);
    if (offer != NULL)
        ck_assert_int_eq(SSL_set_session(c, offer), 1);
    ok = connect_client(c, sctx, o);
    SSL_free(c);
    return ok;
}

/* Offers an independent DER copy: a failed attempt marks the offered session not resumable. */
static int handshake_offering_copy(SSL_CTX *sctx, SSL_CTX *cctx,
    const SSL_SESSION *sess, outcome *o)
{
    SSL_SESSION *copy = hs_session_copy(sess);
    int ok;

    ck_assert_ptr_nonnull(copy);
    ok = handshake(sctx, cctx, copy, o);
    SSL_SESSION_free(copy);
    return ok;
}

static void outcome_clear(outcome *o)
{
    SSL_SESSION_free(o->session);
    o->session = NULL;
}

static void assert_done(const outcome *o, const proto *pr)
{
    ck_assert_msg(o->ok, "%s handshake failed (server alert %d, client alert %d)",
        pr->name, o->server_alert, o->client_alert);
    ck_assert_msg(o->version == pr->version, "%s expected, negotiated 0x%x",
        pr->name, (unsigned)o->version);
    ck_assert_int_eq(o->hellos, 1);
}

static void assert_resumed(const outcome *o, const proto *pr)
{
    assert_done(o, pr);
    ck_assert_msg(o->reused && o->server_reused, "%s: expected a resumption, got a full handshake",
        pr->name);
}

static void assert_full(const outcome *o, const proto *pr)
{
    assert_done(o, pr);
    ck_assert_msg(!o->reused && !o->server_reused, "%s: expected a full handshake, got a resumption",
        pr->name);
    ck_assert_int_eq(o->server_alert, -1);
    ck_assert_int_eq(o->client_alert, -1);
}

/* A full handshake that must succeed; returns the client's session. */
static SSL_SESSION *new_session(SSL_CTX *sctx, SSL_CTX *cctx, const proto *pr)
{
    outcome o;
    SSL_SESSION *sess;

    handshake(sctx, cctx, NULL, &o);
    assert_full(&o, pr);
    ck_assert_ptr_nonnull(o.session);
    sess = o.session;
    o.session = NULL;
    return sess;
}

/* ---- 1, 3: server refusal, DTLS and TLS below 1.2 ------------------------- */

/*
 * A policy server (defaults) and a client without EMS: never resumed, a full
 * handshake without an alert; an EMS client resumes.  _i runs over
 * protos x mechanisms.  For tickets and the external cache the non-EMS
 * session also comes from a stock member of the fleet, so the client
 * demonstrably offers it to the policy server (wire) and the server refuses.
 */
START_TEST(test_server_refuses_nonems_below_tls12)
{
    const proto *pr = &protos[_i / HS_MECH_COUNT];
    hs_mech mech = (hs_mech)(_i % HS_MECH_COUNT);
    SSL_CTX *stock = server(pr, mech, 0), *pctx = server(pr, mech, 0);
    SSL_CTX *legacy = client(pr, HS_NO_EMS), *ems_client = client(pr, 0);
    SSL_SESSION *stock_sess, *own_sess, *ems_sess;
    outcome o;

    enable_defaults(pctx);
    /* Control: the same server without the policy resumes the legacy client. */
    stock_sess = new_session(stock, legacy, pr);
    ck_assert_int_eq(hs_session_ems(stock_sess), 0);
    handshake_offering_copy(stock, legacy, stock_sess, &o);
    ck_assert_int_eq(o.offered, 1);
    assert_resumed(&o, pr);
    outcome_clear(&o);

    /* The policy server's own non-EMS session: full handshake, no alert. */
    own_sess = new_session(pctx, legacy, pr);
    ck_assert_int_eq(hs_session_ems(own_sess), 0);
    handshake_offering_copy(pctx, legacy, own_sess, &o);
    assert_full(&o, pr);
    ck_assert_int_eq(o.ems, 0);
    outcome_clear(&o);

    /* A fleet member's non-EMS session, offered to the policy server. */
    if (mech != HS_MECH_SESSION_ID) {
        handshake_offering_copy(pctx, legacy, stock_sess, &o);
        ck_assert_int_eq(o.offered, 1);
        assert_full(&o, pr);
        outcome_clear(&o);
        ck_assert_uint_ge(hs_counter(pctx, EMSGUARD_CNT_REFUSED_NO_EMS), 1);
    }

    /* An EMS client resumes on the policy server. */
    ems_sess = new_session(pctx, ems_client, pr);
    ck_assert_int_eq(hs_session_ems(ems_sess), 1);
    handshake_offering_copy(pctx, ems_client, ems_sess, &o);
    ck_assert_int_eq(o.offered, 1);
    assert_resumed(&o, pr);
    ck_assert_int_eq(o.ems, 1);
    outcome_clear(&o);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_RESUMPTIONS), 1);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_POLICY_BYPASSED), 0);

    SSL_SESSION_free(ems_sess);
    SSL_SESSION_free(own_sess);
    SSL_SESSION_free(stock_sess);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(legacy);
    SSL_CTX_free(pctx);
    SSL_CTX_free(stock);
}
END_TEST

/* ---- 2, 3: client non-offer, DTLS and TLS below 1.2 ----------------------- */

/*
 * A policy client (defaults) and a legacy server that resumes non-EMS
 * sessions: the non-EMS session (a stock client's, or the policy client's
 * own) is never offered and the handshake is full; an EMS server's session
 * is offered and resumes.  _i runs over protos x mechanisms.
 */
START_TEST(test_client_withholds_nonems_below_tls12)
{
    const proto *pr = &protos[_i / HS_MECH_COUNT];
    hs_mech mech = (hs_mech)(_i % HS_MECH_COUNT);
    SSL_CTX *lsrv = server(pr, mech, HS_NO_EMS), *esrv = server(pr, mech, 0);
    SSL_CTX *stock = client(pr, 0), *pclient = client(pr, 0);
    SSL_SESSION *sess, *own, *ems_sess;
    outcome o;

    enable_defaults(pclient);
    sess = new_session(lsrv, stock, pr);
    ck_assert_int_eq(hs_session_ems(sess), 0);
    /* Control: a stock client offers it and the legacy server resumes. */
    handshake_offering_copy(lsrv, stock, sess, &o);
    ck_assert_int_eq(o.offered, 1);
    assert_resumed(&o, pr);
    outcome_clear(&o);

    handshake_offering_copy(lsrv, pclient, sess, &o);
    ck_assert_msg(!o.offered, "%s ClientHello offered the non-EMS session", pr->name);
    assert_full(&o, pr);
    ck_assert_int_eq(o.ems, 0);
    outcome_clear(&o);
    ck_assert_uint_eq(hs_counter(pclient, EMSGUARD_CNT_REFUSED_NO_EMS), 1);

    /* Its own session with the legacy server is not offered either. */
    own = new_session(lsrv, pclient, pr);
    handshake_offering_copy(lsrv, pclient, own, &o);
    ck_assert_msg(!o.offered, "%s ClientHello offered its own non-EMS session", pr->name);
    assert_full(&o, pr);
    outcome_clear(&o);

    /* An EMS session is offered and resumes. */
    ems_sess = new_session(esrv, pclient, pr);
    ck_assert_int_eq(hs_session_ems(ems_sess), 1);
    handshake_offering_copy(esrv, pclient, ems_sess, &o);
    ck_assert_int_eq(o.offered, 1);
    ck_assert_int_eq(o.hello_ems, 1);
    assert_resumed(&o, pr);
    ck_assert_int_eq(o.ems, 1);
    outcome_clear(&o);
    ck_assert_uint_eq(hs_counter(pclient, EMSGUARD_CNT_POLICY_BYPASSED), 0);

    SSL_SESSION_free(ems_sess);
    SSL_SESSION_free(own);
    SSL_SESSION_free(sess);
    SSL_CTX_free(pclient);
    SSL_CTX_free(stock);
    SSL_CTX_free(esrv);
    SSL_CTX_free(lsrv);
}
END_TEST

/* ---- 4: sessions that reach a client SSL by other routes ------------------ */

/*
 * A live connection of |cctx| to the legacy server |lsrv| whose session
 * lacks EMS, shut down, its SSL kept (the source of SSL_copy_session_id).
 */
static SSL *nonems_connection(SSL_CTX *lsrv, SSL_CTX *cctx)
{
    SSL *src = SSL_new(cctx);
    outcome o;

    ck_assert_ptr_nonnull(src);
    connect_client(src, lsrv, &o);
    assert_full(&o, TLS12);
    ck_assert_int_eq(hs_session_ems(o.session), 0);
    outcome_clear(&o);
    return src;
}

/* A new SSL of |cctx| given |src|'s session by SSL_copy_session_id(). */
static int handshake_copy_session_id(SSL_CTX *lsrv, SSL_CTX *cctx, const SSL *src,
    outcome *o)
{
    SSL *dst = SSL_new(cctx);
    int ok;

    ck_assert_ptr_nonnull(dst);
    ck_assert_int_eq(SSL_copy_session_id(dst, src), 1);
    ck_assert_ptr_eq(SSL_get_session(dst), SSL_get_session(src));
    ok = connect_client(dst, lsrv, o);
    SSL_free(dst);
    return ok;
}

/*
 * SSL_copy_session_id(dst, src) with |src| a connection that had a non-EMS
 * session (a stock client's, and the policy client's own): never offered,
 * full handshake.  Control: a stock dst resumes it.
 */
START_TEST(test_client_copy_session_id_nonems)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *lsrv = server(TLS12, mech, HS_NO_EMS);
    SSL_CTX *stock = client(TLS12, 0), *pclient = client(TLS12, 0);
    SSL *stock_src, *own_src;
    outcome o;

    enable_defaults(pclient);
    stock_src = nonems_connection(lsrv, stock);
    handshake_copy_session_id(lsrv, stock, stock_src, &o);
    ck_assert_int_eq(o.offered, 1);
    assert_resumed(&o, TLS12);
    outcome_clear(&o);

    handshake_copy_session_id(lsrv, pclient, stock_src, &o);
    ck_assert_msg(!o.offered, "SSL_copy_session_id: the non-EMS session was offered");
    assert_full(&o, TLS12);
    outcome_clear(&o);

    own_src = nonems_connection(lsrv, pclient);
    handshake_copy_session_id(lsrv, pclient, own_src, &o);
    ck_assert_msg(!o.offered, "SSL_copy_session_id: its own non-EMS session was offered");
    assert_full(&o, TLS12);
    outcome_clear(&o);
    /* The source connection's session is the stock client's still. */
    ck_assert_int_eq(SSL_SESSION_is_resumable(SSL_get_session(stock_src)), 1);
    ck_assert_uint_eq(hs_counter(pclient, EMSGUARD_CNT_POLICY_BYPASSED), 0);

    SSL_free(own_src);
    SSL_free(stock_src);
    SSL_CTX_free(pclient);
    SSL_CTX_free(stock);
    SSL_CTX_free(lsrv);
}
END_TEST

/* SSL_SESSION_dup() of a non-EMS session: never offered.  Control resumes. */
START_TEST(test_client_session_dup_nonems)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *lsrv = server(TLS12, mech, HS_NO_EMS);
    SSL_CTX *stock = client(TLS12, 0), *pclient = client(TLS12, 0);
    SSL_SESSION *sess, *dup;
    outcome o;

    enable_defaults(pclient);
    sess = new_session(lsrv, stock, TLS12);
    ck_assert_int_eq(hs_session_ems(sess), 0);
    ck_assert_ptr_nonnull(dup = SSL_SESSION_dup(sess));
    handshake(lsrv, stock, dup, &o);
    ck_assert_int_eq(o.offered, 1);
    assert_resumed(&o, TLS12);
    outcome_clear(&o);
    SSL_SESSION_free(dup);

    ck_assert_ptr_nonnull(dup = SSL_SESSION_dup(sess));
    ck_assert_int_eq(hs_session_ems(dup), 0);
    handshake(lsrv, pclient, dup, &o);
    ck_assert_msg(!o.offered, "SSL_SESSION_dup: the non-EMS session was offered");
    assert_full(&o, TLS12);
    outcome_clear(&o);
    SSL_SESSION_free(dup);
    ck_assert_uint_eq(hs_counter(pclient, EMSGUARD_CNT_REFUSED_NO_EMS), 1);

    SSL_SESSION_free(sess);
    SSL_CTX_free(pclient);
    SSL_CTX_free(stock);
    SSL_CTX_free(lsrv);
}
END_TEST

/* A session as an application stores it: PEM out, PEM (d2i) back in. */
static SSL_SESSION *stored_and_read_back(SSL_SESSION *sess)
{
    BIO *mem = BIO_new(BIO_s_mem());
    SSL_SESSION *back;

    ck_assert_ptr_nonnull(mem);
    ck_assert_int_eq(PEM_write_bio_SSL_SESSION(mem, sess), 1);
    back = PEM_read_bio_SSL_SESSION(mem, NULL, NULL, NULL);
    BIO_free(mem);
    ck_assert_ptr_nonnull(back);
    return back;
}

/*
 * A non-EMS session stored (PEM, i2d) and read back (d2i) by the policy
 * client: never offered.  Control: a stock client resumes the same copy.
 */
START_TEST(test_client_stored_session_nonems)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *lsrv = server(TLS12, mech, HS_NO_EMS);
    SSL_CTX *stock = client(TLS12, 0), *pclient = client(TLS12, 0);
    SSL_SESSION *sess, *back;
    outcome o;

    enable_defaults(pclient);
    sess = new_session(lsrv, stock, TLS12);
    back = stored_and_read_back(sess);
    handshake(lsrv, stock, back, &o);
    ck_assert_int_eq(o.offered, 1);
    assert_resumed(&o, TLS12);
    outcome_clear(&o);
    SSL_SESSION_free(back);

    back = stored_and_read_back(sess);
    ck_assert_int_eq(hs_session_ems(back), 0);
    handshake(lsrv, pclient, back, &o);
    ck_assert_msg(!o.offered, "stored session: the non-EMS session was offered");
    assert_full(&o, TLS12);
    outcome_clear(&o);
    SSL_SESSION_free(back);

    SSL_SESSION_free(sess);
    SSL_CTX_free(pclient);
    SSL_CTX_free(stock);
    SSL_CTX_free(lsrv);
}
END_TEST

/* ---- 6: a client SSL reused after SSL_clear() ---------------------------- */

/*
 * Two connections on one client SSL of |cctx| with SSL_clear() between: the
 * first connection was shut down, so SSL_clear() keeps its session
 * (ssl_lib.c SSL_clear, ssl_clear_bad_session) and the second ClientHello
 * offers it unless something stops it.  Fills *second.
 */
static void reuse_after_clear(SSL_CTX *sctx, SSL_CTX *cctx, outcome *second)
{
    SSL *c = SSL_new(cctx);
    outcome first;

    ck_assert_ptr_nonnull(c);
    connect_client(c, sctx, &first);
    assert_full(&first, TLS12);
    outcome_clear(&first);
    ck_assert_int_eq(SSL_clear(c), 1);
    ck_assert_ptr_nonnull(SSL_get_session(c));
    connect_client(c, sctx, second);
    SSL_free(c);
}

/*
 * A non-EMS session kept by SSL_clear() is not offered on the SSL's next
 * connection: full handshake.  Control: a stock client resumes it.  An EMS
 * session kept the same way still resumes.
 */
START_TEST(test_client_ssl_clear_keeps_nonems_session)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *lsrv = server(TLS12, mech, HS_NO_EMS), *esrv = server(TLS12, mech, 0);
    SSL_CTX *stock = client(TLS12, 0), *pclient = client(TLS12, 0);
    outcome o;

    enable_defaults(pclient);
    reuse_after_clear(lsrv, stock, &o);
    ck_assert_int_eq(o.offered, 1);
    assert_resumed(&o, TLS12);
    ck_assert_int_eq(o.ems, 0);
    outcome_clear(&o);

    reuse_after_clear(lsrv, pclient, &o);
    ck_assert_msg(!o.offered, "after SSL_clear the non-EMS session was offered");
    assert_full(&o, TLS12);
    outcome_clear(&o);
    ck_assert_uint_eq(hs_counter(pclient, EMSGUARD_CNT_REFUSED_NO_EMS), 1);

    reuse_after_clear(esrv, pclient, &o);
    ck_assert_int_eq(o.offered, 1);
    assert_resumed(&o, TLS12);
    ck_assert_int_eq(o.ems, 1);
    outcome_clear(&o);
    ck_assert_uint_eq(hs_counter(pclient, EMSGUARD_CNT_RESUMPTIONS), 1);
    ck_assert_uint_eq(hs_counter(pclient, EMSGUARD_CNT_POLICY_BYPASSED), 0);

    SSL_CTX_free(pclient);
    SSL_CTX_free(stock);
    SSL_CTX_free(esrv);
    SSL_CTX_free(lsrv);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static void setup(void)
{
    hs_ext_cache_reset();
    hs_set_sni(NULL);
}

static Suite *held_paths_suite(void)
{
    Suite *s = suite_create("emsguard-held-paths");
    TCase *tc;

    tc = tcase_create("dtls-and-old-tls");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_server_refuses_nonems_below_tls12, 0, PROTOS * HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_client_withholds_nonems_below_tls12, 0, PROTOS * HS_MECH_COUNT);
    suite_add_tcase(s, tc);

    tc = tcase_create("client-session-routes");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_client_copy_session_id_nonems, 0, HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_client_session_dup_nonems, 0, HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_client_stored_session_nonems, 0, HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_client_ssl_clear_keeps_nonems_session, 0, HS_MECH_COUNT);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(held_paths_suite());
    int failed;

    /* One process: leak checking sees everything, and failures stay readable. */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    X509_free(own_cert);
    EVP_PKEY_free(own_key);
    hs_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
