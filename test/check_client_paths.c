/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Client-side paths into a TLS <= 1.2 handshake that the offer filter of the
 * first handshake does not see (issue 15), in memory:
 *
 *  F1  renegotiation.  A client answers a HelloRequest with an abbreviated
 *      handshake that offers the connection's session, and
 *      SSL_renegotiate_abbreviated() does the same on the client's own
 *      initiative.  A non-EMS session must not be offered again; an EMS one
 *      still is.
 *  F9  one SSL_CTX in both roles with SSL_SESS_CACHE_BOTH (a relay).  The
 *      sessions its client role gets from an upstream share the internal
 *      cache its server role resumes from; the server role must never
 *      resume them.
 *
 * Every test that shows a finding has a stock-OpenSSL control next to it
 * that shows the session was there to be resumed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include <openssl/x509.h>
#include "emsguard.h"
#include "harness.h"
#include "harness_check.h"

#define MAX_STEPS 200

/* ---- contexts ------------------------------------------------------------- */

static SSL_CTX *server(hs_mech mech, int flags)
{
    SSL_CTX *ctx = hs_server_ctx(mech, flags);

    ck_assert_ptr_nonnull(ctx);
    /* OpenSSL 3.0 refuses client-initiated renegotiation by default. */
    SSL_CTX_set_options(ctx, SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
    return ctx;
}

/* A throwaway self-signed P-256 certificate (client certificates, DTLS). */
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
        && ASN1_INTEGER_set(X509_get_serialNumber(own_cert), 7)
        && X509_gmtime_adj(X509_getm_notBefore(own_cert), -3600)
        && X509_gmtime_adj(X509_getm_notAfter(own_cert), 86400)
        && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
            (const unsigned char *)"emsguard-client-paths", -1, -1, 0)
        && X509_set_issuer_name(own_cert, name)
        && X509_set_pubkey(own_cert, own_key)
        && X509_sign(own_cert, own_key, EVP_sha256()) > 0);
}

/* ---- what the client writes ------------------------------------------------ */

struct hello_view {
    int hellos; /* ClientHellos the client wrote */
    int offered; /* the last one offered a session: an ID, or a ticket */
    int ems; /* the last one carried EMS */
};

/* One more ClientHello seen: what it offered (hs_read_client_hello). */
static void read_client_hello(struct hello_view *v, const unsigned char *p, size_t len,
    int dtls)
{
    v->hellos++;
    hs_read_client_hello(p, len, dtls, &v->offered, &v->ems);
}

static void on_message(int write_p, int version, int content_type,
    const void *buf, size_t len, SSL *ssl, void *arg)
{
    const unsigned char *p = buf;

    (void)version;
    if (write_p && !SSL_is_server(ssl) && content_type == SSL3_RT_HANDSHAKE
        && len > 0 && p[0] == SSL3_MT_CLIENT_HELLO)
        read_client_hello(arg, p, len, SSL_is_dtls(ssl));
}

/* ---- one connection, renegotiated --------------------------------------- */

typedef struct {
    SSL *client, *server;
    struct hello_view view;
} conn_pair;

/* Connects new SSLs of |sctx| and |cctx|; the client offers |offer| if set. */
static void pair_connect(conn_pair *p, SSL_CTX *sctx, SSL_CTX *cctx,
    const SSL_SESSION *offer)
{
    memset(p, 0, sizeof(*p));
    ck_assert_ptr_nonnull(p->client = SSL_new(cctx));
    ck_assert_ptr_nonnull(p->server = SSL_new(sctx));
    SSL_set_msg_callback(p->client, on_message);
    SSL_set_msg_callback_arg(p->client, &p->view);
    if (SSL_is_dtls(p->client)) {
        /* A BIO pair has no MTU to ask for. */
        SSL_set_options(p->client, SSL_OP_NO_QUERY_MTU);
        SSL_set_options(p->server, SSL_OP_NO_QUERY_MTU);
        ck_assert_int_eq(DTLS_set_link_mtu(p->client, 1400), 1);
        ck_assert_int_eq(DTLS_set_link_mtu(p->server, 1400), 1);
    }
    if (offer != NULL) {
        SSL_SESSION *copy = hs_session_copy(offer);

        ck_assert_ptr_nonnull(copy);
        ck_assert_int_eq(SSL_set_session(p->client, copy), 1);
        SSL_SESSION_free(copy);
    }
    ck_assert_msg(hs_connect(p->client, p->server) == 1, "first handshake failed");
    ck_assert_int_eq(p->view.hellos, 1);
}

/*
 * Frees both ends.  Shut down first: SSL_free() of a connection not shut
 * down drops its session from the cache and marks it not resumable.
 */
static void pair_free(conn_pair *p)
{
    if (SSL_is_init_finished(p->client) && SSL_is_init_finished(p->server)) {
        SSL_shutdown(p->client);
        SSL_shutdown(p->server);
    }
    SSL_free(p->client);
    SSL_free(p->server);
    ERR_clear_error();
}

static int quiet(const conn_pair *p)
{
    return !SSL_in_init(p->client) && !SSL_in_init(p->server)
        && !SSL_renegotiate_pending(p->client) && !SSL_renegotiate_pending(p->server)
        && BIO_ctrl_pending(SSL_get_rbio(p->client)) == 0
        && BIO_ctrl_pending(SSL_get_rbio(p->server)) == 0;
}

typedef enum {
    BY_SERVER, /* HelloRequest: server SSL_renegotiate, the client reads it */
    BY_CLIENT_ABBREVIATED, /* client SSL_renegotiate_abbreviated */
    BY_CLIENT_FULL /* client SSL_renegotiate */
} reneg_trigger;

/* Renegotiates; 1 when both ends completed a handshake on a new ClientHello. */
static int renegotiate(conn_pair *p, reneg_trigger who)
{
    SSL *initiator = who == BY_SERVER ? p->server : p->client;
    int hellos = p->view.hellos, c = 0, s = 0, i, r;

    if (who == BY_CLIENT_ABBREVIATED)
        ck_assert_int_eq(SSL_renegotiate_abbreviated(p->client), 1);
    else
        ck_assert_int_eq(SSL_renegotiate(initiator), 1);
    /* Sends the HelloRequest or the ClientHello. */
    r = SSL_do_handshake(initiator);
    ck_assert_msg(r == 1 || SSL_get_error(initiator, r) == SSL_ERROR_WANT_READ,
        "cannot start the renegotiation");
    for (i = 0; i < MAX_STEPS; i++) {
        c = hs_io_step(p->client);
        s = hs_io_step(p->server);
        if (c < 0 || s < 0 || quiet(p))
            break;
    }
    ERR_clear_error();
    return c >= 0 && s >= 0 && quiet(p) && p->view.hellos == hellos + 1;
}

/* One byte each way: the keys of the new handshake agree. */
static int data_flows(conn_pair *p)
{
    unsigned char b = 0;

    return SSL_write(p->server, "s", 1) == 1 && SSL_read(p->client, &b, 1) == 1
        && b == 's' && SSL_write(p->client, "c", 1) == 1
        && SSL_read(p->server, &b, 1) == 1 && b == 'c';
}

/* ---- F1: renegotiation ------------------------------------------------------ */

/*
 * A renegotiation of a connection to a legacy server.  With |cctx| under the
 * default policy it must be a full handshake whose ClientHello offers
 * nothing; returns whether the client resumed.
 */
static int reneg_with_legacy(SSL_CTX *lsrv, SSL_CTX *cctx, reneg_trigger who,
    int *offered)
{
    conn_pair p;
    int reused;

    pair_connect(&p, lsrv, cctx, NULL);
    ck_assert_int_eq(SSL_get_extms_support(p.client), 0);
    ck_assert_int_eq(SSL_session_reused(p.client), 0);
    ck_assert_msg(renegotiate(&p, who) == 1, "renegotiation did not complete");
    reused = SSL_session_reused(p.client);
    ck_assert_int_eq(reused, SSL_session_reused(p.server));
    ck_assert_int_eq(SSL_get_extms_support(p.client), 0);
    ck_assert_msg(data_flows(&p), "no data after the renegotiation");
    *offered = p.view.offered;
    pair_free(&p);
    return reused;
}

static void assert_reneg_refused(SSL_CTX *cctx, SSL_CTX *lsrv, reneg_trigger who)
{
    int offered, reused;

    reused = reneg_with_legacy(lsrv, cctx, who, &offered);
    ck_assert_msg(!offered, "the renegotiation ClientHello offered the non-EMS session");
    ck_assert_msg(!reused, "the renegotiation resumed the non-EMS session");
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_REFUSED_NO_EMS), 1);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_RESUMPTIONS), 0);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_FULL_HANDSHAKES), 2);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_FULL_WITHOUT_EMS), 2);
}

/* Control: a stock client resumes the session when it renegotiates. */
static void assert_stock_resumes(SSL_CTX *lsrv, reneg_trigger who)
{
    SSL_CTX *stock = hs_client(0);
    int offered;

    ck_assert_msg(reneg_with_legacy(lsrv, stock, who, &offered) == 1,
        "control: a stock client did not resume at renegotiation");
    ck_assert_int_eq(offered, 1);
    SSL_CTX_free(stock);
}

/* F1: the legacy server sends HelloRequest (session ID, external cache, ticket). */
START_TEST(test_hello_request_from_legacy_server)
{
    SSL_CTX *lsrv = server((hs_mech)_i, HS_NO_EMS), *cctx = hs_policy_client(0);

    assert_stock_resumes(lsrv, BY_SERVER);
    assert_reneg_refused(cctx, lsrv, BY_SERVER);
    SSL_CTX_free(cctx);
    SSL_CTX_free(lsrv);
}
END_TEST

/* F1: the client application asks for an abbreviated renegotiation. */
START_TEST(test_abbreviated_renegotiation_by_client)
{
    SSL_CTX *lsrv = server((hs_mech)_i, HS_NO_EMS), *cctx = hs_policy_client(0);

    assert_stock_resumes(lsrv, BY_CLIENT_ABBREVIATED);
    assert_reneg_refused(cctx, lsrv, BY_CLIENT_ABBREVIATED);
    SSL_CTX_free(cctx);
    SSL_CTX_free(lsrv);
}
END_TEST

/* SSL_renegotiate() on the client offers nothing, with or without the policy. */
START_TEST(test_full_renegotiation_by_client)
{
    SSL_CTX *lsrv = server(HS_MECH_TICKET, HS_NO_EMS), *cctx = hs_policy_client(0);
    int offered;

    ck_assert_int_eq(reneg_with_legacy(lsrv, cctx, BY_CLIENT_FULL, &offered), 0);
    ck_assert_int_eq(offered, 0);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    SSL_CTX_free(cctx);
    SSL_CTX_free(lsrv);
}
END_TEST

/* Several renegotiations in a row: none offers the session. */
START_TEST(test_repeated_renegotiation)
{
    SSL_CTX *lsrv = server(HS_MECH_SESSION_ID, HS_NO_EMS), *cctx = hs_policy_client(0);
    conn_pair p;
    int i;

    pair_connect(&p, lsrv, cctx, NULL);
    for (i = 0; i < 4; i++) {
        ck_assert_msg(renegotiate(&p, i % 2 ? BY_SERVER : BY_CLIENT_ABBREVIATED) == 1,
            "renegotiation %d did not complete", i);
        ck_assert_msg(!p.view.offered && !SSL_session_reused(p.client),
            "renegotiation %d offered or resumed the non-EMS session", i);
    }
    ck_assert(data_flows(&p));
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_FULL_HANDSHAKES), 5);
    pair_free(&p);
    SSL_CTX_free(cctx);
    SSL_CTX_free(lsrv);
}
END_TEST

/*
 * A session with a ticket but no session ID (an application may make one
 * with SSL_SESSION_set1_id).  Removing a session from a cache marks only one
 * with an ID not resumable, so this one needs another way out.  Stock libssl
 * offers the bare ticket; the server resumes, the client, which recognises
 * a resumption only by an echoed ID, expects a full handshake, and the
 * renegotiation fails.  Under ASan this also shows that libssl does not
 * reuse the old session object for the new handshake (it would leak the
 * old certificate chain).
 */
START_TEST(test_renegotiation_ticket_without_session_id)
{
    SSL_CTX *lsrv = server(HS_MECH_TICKET, HS_NO_EMS), *cctx = hs_policy_client(0);
    static const unsigned char none[1] = { 0 };
    conn_pair p;

    pair_connect(&p, lsrv, cctx, NULL);
    ck_assert_int_eq(SSL_SESSION_set1_id(SSL_get_session(p.client), none, 0), 1);
    ck_assert_int_eq(SSL_SESSION_is_resumable(SSL_get_session(p.client)), 1);
    ck_assert_msg(renegotiate(&p, BY_SERVER) == 1, "renegotiation did not complete");
    ck_assert_msg(!p.view.offered, "the renegotiation ClientHello offered the ticket");
    ck_assert_int_eq(SSL_session_reused(p.client), 0);
    ck_assert(data_flows(&p));
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_REFUSED_NO_EMS), 1);
    pair_free(&p);
    SSL_CTX_free(cctx);
    SSL_CTX_free(lsrv);
}
END_TEST

/* AllowLegacyResumption=1: stock behaviour, the renegotiation resumes. */
START_TEST(test_allow_legacy_resumption_renegotiation)
{
    SSL_CTX *lsrv = server(HS_MECH_SESSION_ID, HS_NO_EMS), *cctx = hs_client(0);
    int offered;

    hs_enable_with(cctx, EMSGUARD_ALLOW_LEGACY_RESUMPTION, "1", NULL);
    ck_assert_int_eq(reneg_with_legacy(lsrv, cctx, BY_SERVER, &offered), 1);
    ck_assert_int_eq(offered, 1);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_REFUSED_NO_EMS), 0);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_RESUMPTIONS), 1);
    SSL_CTX_free(cctx);
    SSL_CTX_free(lsrv);
}
END_TEST

/*
 * An EMS connection that itself began with a resumption keeps renegotiating
 * abbreviated: on the server's HelloRequest and on the client's own request.
 */
START_TEST(test_ems_renegotiation_stays_abbreviated)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *srv = server(mech, 0), *cctx = hs_policy_client(0);
    SSL_SESSION *sess;
    conn_pair p;

    pair_connect(&p, srv, cctx, NULL);
    ck_assert_int_eq(SSL_get_extms_support(p.client), 1);
    ck_assert_ptr_nonnull(sess = SSL_get1_session(p.client));
    pair_free(&p);
    ck_assert_int_eq(hs_session_ems(sess), 1);
    pair_connect(&p, srv, cctx, sess);
    ck_assert_msg(SSL_session_reused(p.client), "the EMS session was not resumed");
    ck_assert_msg(renegotiate(&p, BY_SERVER) == 1, "HelloRequest renegotiation failed");
    ck_assert_int_eq(p.view.offered, 1);
    ck_assert_msg(SSL_session_reused(p.client) && SSL_session_reused(p.server),
        "HelloRequest: the EMS session was not resumed");
    ck_assert_msg(renegotiate(&p, BY_CLIENT_ABBREVIATED) == 1, "client renegotiation failed");
    ck_assert_int_eq(p.view.offered, 1);
    ck_assert_msg(SSL_session_reused(p.client) && SSL_session_reused(p.server),
        "abbreviated: the EMS session was not resumed");
    ck_assert_int_eq(SSL_get_extms_support(p.client), 1);
    ck_assert(data_flows(&p));
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_REFUSED_NO_EMS), 0);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_RESUMPTIONS), 3);
    pair_free(&p);
    SSL_SESSION_free(sess);
    SSL_CTX_free(cctx);
    SSL_CTX_free(srv);
}
END_TEST

static int accept_any_certificate(int ok, X509_STORE_CTX *store)
{
    (void)ok;
    (void)store;
    return 1;
}

/*
 * After an EMS resumption the server asks for a client certificate: it
 * renegotiates with SSL_VERIFY_PEER and without resumption, and the client
 * sends its certificate in a full handshake.
 */
START_TEST(test_ems_renegotiation_for_client_certificate)
{
    SSL_CTX *srv = server(HS_MECH_SESSION_ID, 0), *cctx = hs_client(0);
    SSL_SESSION *sess;
    conn_pair p;

    make_credentials();
    ck_assert_int_eq(SSL_CTX_use_certificate(cctx, own_cert), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(cctx, own_key), 1);
    hs_enable_with(cctx, NULL);
    pair_connect(&p, srv, cctx, NULL);
    ck_assert_ptr_nonnull(sess = SSL_get1_session(p.client));
    pair_free(&p);
    pair_connect(&p, srv, cctx, sess);
    ck_assert_int_eq(SSL_session_reused(p.client), 1);
    ck_assert_ptr_null(SSL_get0_peer_certificate(p.server));
    SSL_set_verify(p.server, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
        accept_any_certificate);
    SSL_set_options(p.server, SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
    ck_assert_msg(renegotiate(&p, BY_SERVER) == 1, "certificate renegotiation failed");
    ck_assert_int_eq(SSL_session_reused(p.client), 0);
    ck_assert_ptr_nonnull(SSL_get0_peer_certificate(p.server));
    ck_assert_int_eq(SSL_get_extms_support(p.client), 1);
    ck_assert(data_flows(&p));
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    pair_free(&p);
    SSL_SESSION_free(sess);
    SSL_CTX_free(cctx);
    SSL_CTX_free(srv);
}
END_TEST

/* Renegotiation refusals are logged: the role, the reason, and where. */
static void hello_request_logged(void)
{
    SSL_CTX *lsrv = server(HS_MECH_SESSION_ID, HS_NO_EMS), *cctx = hs_client(0);
    int offered;

    hs_enable_with(cctx, EMSGUARD_EVENT_LOGGING, "2", NULL);
    reneg_with_legacy(lsrv, cctx, BY_SERVER, &offered);
    SSL_CTX_free(cctx);
    SSL_CTX_free(lsrv);
}

START_TEST(test_renegotiation_refusal_logged)
{
    const char *out = hs_capture_stderr(hello_request_logged);

    ck_assert_ptr_nonnull(out);
    ck_assert_msg(strstr(out, "role=client") != NULL && strstr(out, "reason=no-ems") != NULL
            && strstr(out, "via=renegotiation") != NULL,
        "no renegotiation log line: %s", out);
}
END_TEST

/* ---- F1 for DTLS ------------------------------------------------------------ */

static SSL_CTX *dtls_ctx(const SSL_METHOD *method, int flags)
{
    SSL_CTX *ctx = SSL_CTX_new(method);

    ck_assert_ptr_nonnull(ctx);
    ck_assert(SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION)
        && SSL_CTX_set_max_proto_version(ctx, DTLS1_2_VERSION));
    if (flags & HS_NO_EMS)
        SSL_CTX_set_options(ctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    return ctx;
}

static SSL_CTX *dtls_legacy_server(void)
{
    SSL_CTX *ctx = dtls_ctx(DTLS_server_method(), HS_NO_EMS);

    make_credentials();
    ck_assert(SSL_CTX_use_certificate(ctx, own_cert) == 1
        && SSL_CTX_use_PrivateKey(ctx, own_key) == 1
        && SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"dtls", 4));
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    return ctx;
}

/*
 * A DTLS client answers HelloRequest with a full handshake anyway
 * (statem_clnt.c tls_process_hello_req); SSL_renegotiate_abbreviated() on a
 * DTLS client still offers the session.
 */
START_TEST(test_dtls_renegotiation)
{
    SSL_CTX *lsrv = dtls_legacy_server();
    SSL_CTX *stock = dtls_ctx(DTLS_client_method(), 0);
    SSL_CTX *cctx = dtls_ctx(DTLS_client_method(), 0);
    int offered;

    hs_enable_with(cctx, NULL);
    ck_assert_msg(reneg_with_legacy(lsrv, stock, BY_CLIENT_ABBREVIATED, &offered) == 1,
        "control: a stock DTLS client did not resume at renegotiation");
    ck_assert_int_eq(offered, 1);
    ck_assert_int_eq(reneg_with_legacy(lsrv, stock, BY_SERVER, &offered), 0);
    ck_assert_int_eq(offered, 0);
    ck_assert_int_eq(reneg_with_legacy(lsrv, cctx, BY_SERVER, &offered), 0);
    ck_assert_int_eq(offered, 0);
    ck_assert_int_eq(reneg_with_legacy(lsrv, cctx, BY_CLIENT_ABBREVIATED, &offered), 0);
    ck_assert_msg(!offered, "the DTLS renegotiation ClientHello offered the non-EMS session");
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    SSL_CTX_free(cctx);
    SSL_CTX_free(stock);
    SSL_CTX_free(lsrv);
}
END_TEST

/* ---- F9: one context in both roles ------------------------------------------ */

/*
 * A relay's context: TLS_method, a certificate, a session ID context, and
 * both roles caching in one internal cache.
 */
static SSL_CTX *dual_role_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());

    make_credentials();
    ck_assert_ptr_nonnull(ctx);
    ck_assert(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)
        && SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION)
        && SSL_CTX_use_certificate(ctx, own_cert) == 1
        && SSL_CTX_use_PrivateKey(ctx, own_key) == 1
        && SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"relay", 5));
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_BOTH);
    return ctx;
}

/*
 * What a downstream attacker who knows the session (the legacy upstream
 * itself knows its master secret) offers the relay's server role: the
 * session ID only, no ticket, and no session ID context of its own to trip
 * over in its own libssl.
 */
static SSL_SESSION *as_downstream_offer(const SSL_SESSION *sess)
{
    static const unsigned char none[1] = { 0 };
    SSL_SESSION *copy = hs_session_copy(sess);

    ck_assert_ptr_nonnull(copy);
    ck_assert_int_eq(SSL_SESSION_set1_id_context(copy, none, 0), 1);
    return copy;
}

/* The server role of |dual| with a downstream client offering |sess|. */
static int downstream_resumes(SSL_CTX *dual, const SSL_SESSION *sess, int flags)
{
    SSL_CTX *down = hs_client(flags);
    SSL_SESSION *offer = as_downstream_offer(sess);
    hs_result r;
    int resumed;

    SSL_CTX_set_options(down, SSL_OP_NO_TICKET); /* offer the session ID alone */
    hs_handshake(dual, down, offer, &r);
    ck_assert_msg(r.ok, "downstream handshake failed (server alert %d, client alert %d)",
        r.server_alert, r.client_alert);
    ck_assert_int_eq(r.hello_offered, 1);
    resumed = r.server_reused;
    hs_result_clear(&r);
    SSL_SESSION_free(offer);
    SSL_CTX_free(down);
    return resumed;
}

/* The client role of |dual| connects to |upstream|, offering |offer| if set. */
static SSL_SESSION *upstream_session(SSL_CTX *upstream, SSL_CTX *dual,
    const SSL_SESSION *offer, int *reused)
{
    hs_result r;
    SSL_SESSION *sess;

    ck_assert_msg(hs_handshake(upstream, dual, offer, &r),
        "upstream handshake failed (server alert %d, client alert %d)",
        r.server_alert, r.client_alert);
    if (reused != NULL)
        *reused = r.reused;
    sess = r.session;
    r.session = NULL;
    ck_assert_ptr_nonnull(sess);
    return sess;
}

/*
 * F9: a session the relay's client role got from a legacy upstream (by
 * session ID, external cache or ticket: then its ID is the ticket's SHA-256,
 * computable by anyone who saw the ticket) sits in the shared internal
 * cache.  A downstream client offering its ID to the server role must get a
 * full handshake.  The stock control resumes it.
 */
START_TEST(test_dual_role_client_session_not_resumed_by_server_role)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *upstream = server(mech, HS_NO_EMS);
    SSL_CTX *stock = dual_role_ctx(), *dual = dual_role_ctx();
    SSL_SESSION *sess;

    /* Control: stock OpenSSL, same setup. */
    sess = upstream_session(upstream, stock, NULL, NULL);
    ck_assert_int_eq(hs_session_ems(sess), 0);
    ck_assert_int_eq(SSL_CTX_sess_number(stock), 1);
    ck_assert_msg(downstream_resumes(stock, sess, HS_NO_EMS),
        "control: the stock relay did not resume its client role's session");
    SSL_SESSION_free(sess);

    hs_enable_with(dual, NULL);
    sess = upstream_session(upstream, dual, NULL, NULL);
    ck_assert_int_eq(hs_session_ems(sess), 0);
    ck_assert_msg(!downstream_resumes(dual, sess, HS_NO_EMS),
        "the server role resumed a non-EMS session of the client role");
    ck_assert_uint_eq(hs_counter(dual, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    ck_assert_uint_eq(hs_counter(dual, EMSGUARD_CNT_RESUMPTIONS), 0);
    SSL_SESSION_free(sess);
    SSL_CTX_free(dual);
    SSL_CTX_free(stock);
    SSL_CTX_free(upstream);
}
END_TEST

static SSL_SESSION *app_client_session;
static int app_new_calls;

/* An application's new-session callback that keeps its client sessions. */
static int app_keep_client_session(SSL *ssl, SSL_SESSION *sess)
{
    app_new_calls++;
    if (SSL_is_server(ssl))
        return 0;
    SSL_SESSION_free(app_client_session);
    app_client_session = sess;
    return 1; /* we keep the reference */
}

/*
 * The relay keeps what it had: its client role resumes its own EMS sessions
 * with the upstream (from the application's new-session callback), and its
 * server role resumes its own EMS sessions with downstream clients.  An EMS
 * session of the client role is no more the server role's than a non-EMS
 * one: it carries the upstream's certificate as its "peer".
 */
START_TEST(test_dual_role_keeps_own_resumptions)
{
    SSL_CTX *upstream = server(HS_MECH_SESSION_ID, 0), *dual = dual_role_ctx();
    SSL_CTX *down = hs_client(0);
    SSL_SESSION *sess, *again, *down_sess;
    hs_result r;
    int reused = 0;

    app_client_session = NULL;
    app_new_calls = 0;
    SSL_CTX_sess_set_new_cb(dual, app_keep_client_session);
    hs_enable_with(dual, NULL);
    sess = upstream_session(upstream, dual, NULL, NULL);
    ck_assert_int_eq(hs_session_ems(sess), 1);
    ck_assert_ptr_nonnull(app_client_session);
    again = upstream_session(upstream, dual, app_client_session, &reused);
    ck_assert_msg(reused, "the client role did not resume its own EMS session");
    SSL_SESSION_free(again);
    ck_assert_msg(!downstream_resumes(dual, sess, 0),
        "the server role resumed an EMS session of the client role");
    /* The server role's own sessions. */
    ck_assert(hs_handshake(dual, down, NULL, &r));
    down_sess = r.session;
    r.session = NULL;
    hs_handshake(dual, down, down_sess, &r);
    ck_assert_msg(r.ok && r.reused && r.server_reused,
        "the server role did not resume its own EMS session");
    hs_result_clear(&r);
    ck_assert_uint_eq(hs_counter(dual, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    SSL_SESSION_free(down_sess);
    SSL_SESSION_free(sess);
    SSL_SESSION_free(app_client_session);
    app_client_session = NULL;
    SSL_CTX_free(down);
    SSL_CTX_free(dual);
    SSL_CTX_free(upstream);
}
END_TEST

/*
 * A session the client role got before the policy was enabled, or one from
 * another SSL_CTX, is offered after: whatever emsguard does to keep the
 * roles apart must not turn it into a failed handshake.  It costs a full
 * handshake.  (Stock libssl fails the second one with illegal_parameter:
 * "attempt to reuse session in different context".)
 */
START_TEST(test_dual_role_session_from_before_enable)
{
    SSL_CTX *upstream = server(HS_MECH_SESSION_ID, 0), *dual = dual_role_ctx();
    SSL_CTX *other = hs_client(0);
    SSL_SESSION *before, *foreign, *sess;
    int reused;

    before = upstream_session(upstream, dual, NULL, NULL);
    foreign = upstream_session(upstream, other, NULL, NULL);
    hs_enable_with(dual, NULL);
    sess = upstream_session(upstream, dual, before, &reused);
    ck_assert_int_eq(reused, 0);
    SSL_SESSION_free(sess);
    sess = upstream_session(upstream, dual, foreign, &reused);
    ck_assert_int_eq(reused, 0);
    SSL_SESSION_free(sess);
    ck_assert_uint_eq(hs_counter(dual, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    SSL_SESSION_free(foreign);
    SSL_SESSION_free(before);
    SSL_CTX_free(other);
    SSL_CTX_free(dual);
    SSL_CTX_free(upstream);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static void setup(void)
{
    hs_ext_cache_reset();
    hs_set_sni(NULL);
}

static Suite *client_paths_suite(void)
{
    Suite *s = suite_create("emsguard-client-paths");
    TCase *tc;

    tc = tcase_create("renegotiation");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_hello_request_from_legacy_server, 0, HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_abbreviated_renegotiation_by_client, 0, HS_MECH_COUNT);
    tcase_add_test(tc, test_full_renegotiation_by_client);
    tcase_add_test(tc, test_repeated_renegotiation);
    tcase_add_test(tc, test_renegotiation_ticket_without_session_id);
    tcase_add_test(tc, test_allow_legacy_resumption_renegotiation);
    tcase_add_loop_test(tc, test_ems_renegotiation_stays_abbreviated, 0, HS_MECH_COUNT);
    tcase_add_test(tc, test_ems_renegotiation_for_client_certificate);
    tcase_add_test(tc, test_renegotiation_refusal_logged);
    tcase_add_test(tc, test_dtls_renegotiation);
    suite_add_tcase(s, tc);

    tc = tcase_create("dual-role");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_dual_role_client_session_not_resumed_by_server_role,
        0, HS_MECH_COUNT);
    tcase_add_test(tc, test_dual_role_keeps_own_resumptions);
    tcase_add_test(tc, test_dual_role_session_from_before_enable);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(client_paths_suite());
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
