/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Interoperability under the policy (issue 4, parts 3 and 5), in memory.
 *
 * Ticket renewal: a TLS 1.2 server may send a NewSessionTicket inside an
 * abbreviated handshake (RFC 5077 section 3.3); Schannel once failed on that
 * (advisory 3109853).  A server whose ticket key callback answers "valid, but
 * renew" does it on every resumption; chains of renewals must keep working,
 * and keep EMS, with the policy on either end or both, while a client without
 * EMS is never resumed and never handed a ticket.
 *
 * Renegotiation after resumption: a server resumes an EMS session, then
 * renegotiates to ask for a client certificate (the KB4528489 case "client
 * certificates after resumption").  The certificate must arrive and EMS must
 * hold on both ends, with the policy on the server, the client or both.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "harness.h"
#include "interop_util.h"

#define RENEWALS 6 /* consecutive renewals per chain (the brief asks >= 5) */

/* Where the policy is enabled. */
enum { ON_NONE = 0, ON_SERVER = 1, ON_CLIENT = 2, ON_BOTH = 3, PLACEMENTS };

static const char *placement_name(int where)
{
    static const char *const names[PLACEMENTS] = {
        "stock", "policy-server", "policy-client", "policy-both"
    };

    return names[where];
}

/* ---- helpers ---------------------------------------------------------------- */

/* Default policy; EventLogging 0 keeps refusals of case (d) off stderr. */
static void enable_policy(SSL_CTX *ctx)
{
    EMSGUARD_POLICY *policy = EMSGUARD_POLICY_new();

    ck_assert_ptr_nonnull(policy);
    ck_assert_int_eq(EMSGUARD_POLICY_set(policy, EMSGUARD_EVENT_LOGGING, "0"), 1);
    ck_assert_int_eq(EMSGUARD_enable_policy(ctx, policy), 1);
    EMSGUARD_POLICY_free(policy);
}

static uint64_t counter(const SSL_CTX *ctx, EMSGUARD_COUNTER which)
{
    uint64_t v = 0;

    ck_assert_int_eq(EMSGUARD_CTX_get_counter(ctx, which, &v), 1);
    return v;
}

/*
 * Every counter of |ctx| must be 0 except those named in the
 * EMSGUARD_CNT_MAX-terminated (counter, value) list.
 */
static void assert_counters(const SSL_CTX *ctx, const char *who, ...)
{
    uint64_t want[EMSGUARD_CNT_MAX] = { 0 };
    va_list ap;
    int which;

    va_start(ap, who);
    while ((which = va_arg(ap, int)) != EMSGUARD_CNT_MAX)
        want[which] = va_arg(ap, uint64_t);
    va_end(ap);
    for (which = 0; which < EMSGUARD_CNT_MAX; which++) {
        uint64_t got = counter(ctx, (EMSGUARD_COUNTER)which);

        ck_assert_msg(got == want[which], "%s: counter %s is %llu, expected %llu",
            who, EMSGUARD_counter_name((EMSGUARD_COUNTER)which),
            (unsigned long long)got, (unsigned long long)want[which]);
    }
}

static int session_ems(const SSL_SESSION *sess)
{
    int ems = -1;

    ck_assert_int_eq(EMSGUARD_SESSION_has_ems(sess, &ems), 1);
    return ems;
}

/* A harness ticket server whose ticket keys come from the test's callback. */
static SSL_CTX *ticket_server(int policy, int renew)
{
    SSL_CTX *ctx = hs_server_ctx(HS_MECH_TICKET, 0);

    ck_assert_ptr_nonnull(ctx);
    /* Both orders: emsguard must leave the key callback alone either way. */
    if (policy && renew)
        enable_policy(ctx);
    ck_assert_int_eq(io_ticket_keys_install(ctx, renew), 1);
    if (policy && !renew)
        enable_policy(ctx);
    return ctx;
}

static SSL_CTX *client_ctx(int flags, int policy)
{
    SSL_CTX *ctx = hs_client_ctx(flags);

    ck_assert_ptr_nonnull(ctx);
    if (policy)
        enable_policy(ctx);
    return ctx;
}

static void assert_no_alert(const hs_result *r)
{
    ck_assert_msg(r->server_alert == -1 && r->client_alert == -1,
        "alert: server sent %d, client sent %d", r->server_alert, r->client_alert);
}

/* 1 if the two sessions carry byte-identical tickets. */
static int same_ticket(const SSL_SESSION *a, const SSL_SESSION *b)
{
    const unsigned char *ta, *tb;
    size_t la, lb;

    SSL_SESSION_get0_ticket(a, &ta, &la);
    SSL_SESSION_get0_ticket(b, &tb, &lb);
    return la == lb && (la == 0 || memcmp(ta, tb, la) == 0);
}

static int same_master_key(const SSL_SESSION *a, const SSL_SESSION *b)
{
    unsigned char ka[SSL_MAX_MASTER_KEY_LENGTH], kb[SSL_MAX_MASTER_KEY_LENGTH];
    size_t la = SSL_SESSION_get_master_key(a, ka, sizeof(ka));
    size_t lb = SSL_SESSION_get_master_key(b, kb, sizeof(kb));

    return la > 0 && la == lb && memcmp(ka, kb, la) == 0;
}

static void setup(void)
{
    hs_ext_cache_reset();
    hs_set_sni(NULL);
    io_ticket_stats_reset();
}

/* ---- part 3: ticket renewal inside the abbreviated handshake ---------------- */

/* A full handshake that issues a ticket, then |rounds| renewals in a row. */
static void renewal_chain(SSL_CTX *sctx, SSL_CTX *cctx, int rounds,
    const char *label)
{
    hs_result r;
    SSL_SESSION *sess;
    io_ticket_stats ts;
    int i;

    ck_assert_msg(hs_handshake(sctx, cctx, NULL, &r), "%s: first handshake failed", label);
    assert_no_alert(&r);
    ck_assert_int_eq(r.reused, 0);
    ck_assert_int_eq(r.ems, 1);
    ck_assert_int_eq(r.server_sent_ticket, 1);
    ck_assert_ptr_nonnull(r.session);
    ck_assert_int_eq(SSL_SESSION_has_ticket(r.session), 1);
    ck_assert_int_eq(session_ems(r.session), 1);
    sess = r.session;
    r.session = NULL;
    for (i = 1; i <= rounds; i++) {
        hs_handshake(sctx, cctx, sess, &r);
        ck_assert_msg(r.ok, "%s: renewal %d failed (server alert %d, client alert %d)",
            label, i, r.server_alert, r.client_alert);
        assert_no_alert(&r);
        ck_assert_msg(r.hello_offered && r.hello_ems,
            "%s: renewal %d: ClientHello offered %d, EMS %d", label, i,
            r.hello_offered, r.hello_ems);
        ck_assert_msg(r.reused && r.server_reused,
            "%s: renewal %d was a full handshake", label, i);
        ck_assert_msg(r.server_sent_ticket,
            "%s: renewal %d: no NewSessionTicket in the abbreviated handshake", label, i);
        ck_assert_int_eq(r.ems, 1);
        ck_assert_ptr_nonnull(r.session);
        ck_assert_int_eq(session_ems(r.session), 1);
        ck_assert_int_eq(SSL_SESSION_is_resumable(r.session), 1);
        /* A new ticket for the same session: same master secret. */
        ck_assert_msg(!same_ticket(sess, r.session), "%s: renewal %d kept the old ticket",
            label, i);
        ck_assert_msg(same_master_key(sess, r.session),
            "%s: renewal %d changed the master secret", label, i);
        SSL_SESSION_free(sess);
        sess = r.session; /* the next round resumes from the renewed ticket */
        r.session = NULL;
    }
    SSL_SESSION_free(sess);
    ts = io_ticket_stats_get();
    printf("  %-28s %d renewals: tickets issued %d, decrypted %d, renewed %d\n",
        label, rounds, ts.encrypts, ts.decrypts, ts.renewals);
    ck_assert_int_eq(ts.encrypts, rounds + 1);
    ck_assert_int_eq(ts.decrypts, rounds);
    ck_assert_int_eq(ts.renewals, rounds);
    ck_assert_int_eq(ts.unknown, 0);
}

/* (a) policy on the server, EMS client; (b) client; (c) both; and stock. */
START_TEST(test_renewal_chain)
{
    int where = _i;
    SSL_CTX *sctx = ticket_server(where & ON_SERVER, 1);
    SSL_CTX *cctx = client_ctx(0, where & ON_CLIENT);

    renewal_chain(sctx, cctx, RENEWALS, placement_name(where));
    if (where & ON_SERVER)
        assert_counters(sctx, "server", EMSGUARD_CNT_FULL_HANDSHAKES, (uint64_t)1,
            EMSGUARD_CNT_RESUMPTIONS, (uint64_t)RENEWALS, EMSGUARD_CNT_MAX);
    if (where & ON_CLIENT)
        assert_counters(cctx, "client", EMSGUARD_CNT_FULL_HANDSHAKES, (uint64_t)1,
            EMSGUARD_CNT_RESUMPTIONS, (uint64_t)RENEWALS, EMSGUARD_CNT_MAX);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
END_TEST

/*
 * Control: the same server with a key callback that answers 1 resumes without
 * a NewSessionTicket, so server_sent_ticket above really tells renewal apart.
 */
START_TEST(test_no_renewal_control)
{
    SSL_CTX *sctx = ticket_server(1, 0);
    SSL_CTX *cctx = client_ctx(0, 1);
    hs_result r;
    SSL_SESSION *sess;

    ck_assert(hs_handshake(sctx, cctx, NULL, &r));
    ck_assert_int_eq(r.server_sent_ticket, 1);
    sess = r.session;
    r.session = NULL;
    hs_handshake(sctx, cctx, sess, &r);
    ck_assert(r.ok && r.reused && r.server_reused);
    assert_no_alert(&r);
    ck_assert_int_eq(r.server_sent_ticket, 0);
    ck_assert(same_ticket(sess, r.session));
    hs_result_clear(&r);
    ck_assert_int_eq(io_ticket_stats_get().renewals, 0);
    ck_assert_int_eq(io_ticket_stats_get().decrypts, 1);
    assert_counters(sctx, "server", EMSGUARD_CNT_FULL_HANDSHAKES, (uint64_t)1,
        EMSGUARD_CNT_RESUMPTIONS, (uint64_t)1, EMSGUARD_CNT_MAX);
    SSL_SESSION_free(sess);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
END_TEST

/* A full handshake of the legacy client: no resumption, no ticket, no alert. */
static void assert_legacy_full(const hs_result *r, int offered, const char *what)
{
    ck_assert_msg(r->ok, "%s: handshake failed (server alert %d, client alert %d)",
        what, r->server_alert, r->client_alert);
    assert_no_alert(r);
    ck_assert_msg(!r->reused && !r->server_reused, "%s: resumed", what);
    ck_assert_msg(!r->server_sent_ticket, "%s: the server sent a ticket", what);
    ck_assert_int_eq(r->ems, 0);
    ck_assert_int_eq(r->hello_ems, 0);
    ck_assert_int_eq(r->hello_offered, offered);
}

/*
 * (d) A client without EMS against the renewing policy server.  Its own
 * first handshake gets no ticket; a non-EMS ticket it got from a stock
 * server sharing the keys (which resumes and renews it: the control) is
 * refused every time, with a full handshake and again no ticket.
 */
START_TEST(test_renewal_legacy_client)
{
    SSL_CTX *pctx = ticket_server(1, 1), *stock = ticket_server(0, 1);
    SSL_CTX *legacy = client_ctx(HS_NO_EMS, 0);
    SSL_SESSION *own, *lsess;
    io_ticket_stats ts;
    hs_result r;
    int i;

    /* Control: the stock renewing server resumes and renews a non-EMS ticket. */
    ck_assert(hs_handshake(stock, legacy, NULL, &r));
    ck_assert_int_eq(r.server_sent_ticket, 1);
    lsess = r.session;
    r.session = NULL;
    ck_assert_int_eq(session_ems(lsess), 0);
    hs_handshake(stock, legacy, lsess, &r);
    ck_assert(r.ok && r.reused && r.server_reused && r.server_sent_ticket);
    hs_result_clear(&r);

    io_ticket_stats_reset();
    hs_handshake(pctx, legacy, NULL, &r);
    assert_legacy_full(&r, 0, "first handshake");
    own = r.session;
    r.session = NULL;
    ck_assert_ptr_nonnull(own);
    ck_assert_int_eq(SSL_SESSION_has_ticket(own), 0);
    /* Nothing to offer: no ticket, and no session ID with the cache off. */
    hs_handshake(pctx, legacy, own, &r);
    assert_legacy_full(&r, 0, "own session");
    hs_result_clear(&r);
    for (i = 1; i <= RENEWALS; i++) {
        hs_handshake(pctx, legacy, lsess, &r);
        assert_legacy_full(&r, 1, "stock server's ticket");
        hs_result_clear(&r);
    }
    ts = io_ticket_stats_get();
    printf("  %-28s %d offers: resumed 0, tickets issued %d, decrypted %d\n",
        "legacy-client", RENEWALS, ts.encrypts, ts.decrypts);
    /* The ticket was valid and asked for renewal; the policy said no. */
    ck_assert_int_eq(ts.decrypts, RENEWALS);
    ck_assert_int_eq(ts.renewals, RENEWALS);
    ck_assert_int_eq(ts.encrypts, 0);
    assert_counters(pctx, "server",
        EMSGUARD_CNT_FULL_HANDSHAKES, (uint64_t)(2 + RENEWALS),
        EMSGUARD_CNT_FULL_WITHOUT_EMS, (uint64_t)(2 + RENEWALS),
        EMSGUARD_CNT_REFUSED_NO_EMS, (uint64_t)RENEWALS,
        EMSGUARD_CNT_TICKETS_WITHHELD, (uint64_t)(2 + RENEWALS),
        EMSGUARD_CNT_MAX);
    SSL_SESSION_free(own);
    SSL_SESSION_free(lsess);
    SSL_CTX_free(legacy);
    SSL_CTX_free(stock);
    SSL_CTX_free(pctx);
}
END_TEST

/* ---- part 5: renegotiation after resumption --------------------------------- */

/* How the server makes sure the renegotiation is a full handshake. */
enum {
    FORCE_OPTION = 0, /* SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION */
    FORCE_SID_CTX, /* a new session ID context, as mod_ssl does */
    FORCE_NONE, /* nothing: the client's abbreviated renegotiation resumes */
    FORCE_COUNT
};

static const char *force_name(int force)
{
    static const char *const names[FORCE_COUNT] = { "no-resume-option", "new-sid-ctx", "none" };

    return names[force];
}

typedef struct {
    SSL_CTX *sctx;
    SSL_CTX *cctx;
    io_conn conn;
    char label[96];
} reneg_case;

/*
 * Gets an EMS session from a full handshake, resumes it on a new connection
 * (the client holds a certificate it has not been asked for yet) and leaves
 * that connection open, resumed, with no peer certificate at the server.
 */
static void resume_and_hold(reneg_case *rc, int where, hs_mech mech, int force)
{
    hs_result r;
    SSL_SESSION *sess;

    snprintf(rc->label, sizeof(rc->label), "%s/%s/%s", placement_name(where),
        hs_mech_name(mech), force_name(force));
    rc->sctx = hs_server_ctx(mech, 0);
    ck_assert_ptr_nonnull(rc->sctx);
    if (where & ON_SERVER)
        enable_policy(rc->sctx);
    rc->cctx = client_ctx(0, 0);
    ck_assert_int_eq(io_use_client_cert(rc->cctx), 1);
    if (where & ON_CLIENT)
        enable_policy(rc->cctx);

    ck_assert_msg(hs_handshake(rc->sctx, rc->cctx, NULL, &r), "%s: first handshake", rc->label);
    sess = r.session;
    ck_assert_ptr_nonnull(sess);
    ck_assert_int_eq(session_ems(sess), 1);

    ck_assert_int_eq(io_conn_open(&rc->conn, rc->sctx, rc->cctx, sess), 1);
    SSL_SESSION_free(sess);
    ck_assert_msg(io_conn_handshake(&rc->conn), "%s: resumption failed (alerts %d/%d)",
        rc->label, rc->conn.wire.server_alert, rc->conn.wire.client_alert);
    ck_assert_msg(SSL_session_reused(rc->conn.client) && SSL_session_reused(rc->conn.server),
        "%s: not resumed", rc->label);
    ck_assert_int_eq(SSL_version(rc->conn.server), TLS1_2_VERSION);
    ck_assert_int_eq(SSL_get_extms_support(rc->conn.server), 1);
    ck_assert_int_eq(SSL_get_extms_support(rc->conn.client), 1);
    ck_assert_ptr_null(SSL_get0_peer_certificate(rc->conn.server));
    ck_assert_int_eq(io_conn_exchange(&rc->conn), 1);
}

/* The server asks for a client certificate and renegotiates. */
static int renegotiate_for_cert(reneg_case *rc, int force, SSL_verify_cb verify)
{
    SSL *s = rc->conn.server;

    SSL_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify);
    if (force == FORCE_OPTION)
        SSL_set_options(s, SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
    else if (force == FORCE_SID_CTX)
        ck_assert_int_eq(SSL_set_session_id_context(s,
                             (const unsigned char *)"eg-client-auth", 14), 1);
    return io_conn_server_renegotiate(&rc->conn);
}

static void reneg_case_free(reneg_case *rc)
{
    io_conn_close(&rc->conn);
    SSL_CTX_free(rc->cctx);
    SSL_CTX_free(rc->sctx);
}

/*
 * Loop index: placement (4) x mechanism (session-ID, ticket) x the two ways
 * of forcing a full renegotiation.
 */
START_TEST(test_reneg_client_cert)
{
    int where = _i % PLACEMENTS;
    hs_mech mech = (_i / PLACEMENTS) % 2 ? HS_MECH_TICKET : HS_MECH_SESSION_ID;
    int force = _i / (PLACEMENTS * 2) ? FORCE_SID_CTX : FORCE_OPTION;
    reneg_case rc;
    const io_wire *w = &rc.conn.wire;
    X509 *peer;
    int ok, verified = io_verify_calls();

    resume_and_hold(&rc, where, mech, force);
    ok = renegotiate_for_cert(&rc, force, io_verify_accept_ours);
    ck_assert_msg(ok, "%s: renegotiation failed (server alert %d, client alert %d)",
        rc.label, w->server_alert, w->client_alert);
    ck_assert_msg(w->server_alert == -1 && w->client_alert == -1 && w->warning_alerts == 0,
        "%s: alerts: server %d, client %d, warnings %d", rc.label, w->server_alert,
        w->client_alert, w->warning_alerts);
    ck_assert_int_eq(w->hello_requests, 1);
    ck_assert_int_eq(w->client_hellos, 2);
    ck_assert_msg(w->cert_requests == 1 && w->client_certs == 1,
        "%s: CertificateRequest %d, client Certificate %d", rc.label,
        w->cert_requests, w->client_certs);
    ck_assert_msg(!SSL_session_reused(rc.conn.server) && !SSL_session_reused(rc.conn.client),
        "%s: the renegotiation resumed", rc.label);
    peer = SSL_get0_peer_certificate(rc.conn.server);
    ck_assert_msg(peer != NULL, "%s: no client certificate at the server", rc.label);
    ck_assert_int_eq(X509_cmp(peer, io_client_cert()), 0);
    ck_assert_int_gt(io_verify_calls(), verified);
    ck_assert_int_eq(SSL_get_verify_result(rc.conn.server), X509_V_OK);
    ck_assert_int_eq(SSL_get_extms_support(rc.conn.server), 1);
    ck_assert_int_eq(SSL_get_extms_support(rc.conn.client), 1);
    ck_assert_int_eq(session_ems(SSL_get_session(rc.conn.server)), 1);
    ck_assert_int_eq(session_ems(SSL_get_session(rc.conn.client)), 1);
    ck_assert_int_eq(io_conn_exchange(&rc.conn), 1);
    printf("  %-42s renegotiated: client cert %s, EMS %ld/%ld\n", rc.label,
        peer != NULL ? "received" : "missing", SSL_get_extms_support(rc.conn.server),
        SSL_get_extms_support(rc.conn.client));
    /* First full handshake, the resumption, the full renegotiation. */
    if (where & ON_CLIENT)
        assert_counters(rc.cctx, "client", EMSGUARD_CNT_FULL_HANDSHAKES, (uint64_t)2,
            EMSGUARD_CNT_RESUMPTIONS, (uint64_t)1, EMSGUARD_CNT_MAX);
    if (where & ON_SERVER)
        assert_counters(rc.sctx, "server", EMSGUARD_CNT_FULL_HANDSHAKES, (uint64_t)2,
            EMSGUARD_CNT_RESUMPTIONS, (uint64_t)1, EMSGUARD_CNT_MAX);
    reneg_case_free(&rc);
}
END_TEST

/* Negative control: the verify callback rejects the certificate. */
START_TEST(test_reneg_cert_rejected)
{
    int where = _i;
    reneg_case rc;
    const io_wire *w = &rc.conn.wire;
    int ok;

    resume_and_hold(&rc, where, HS_MECH_TICKET, FORCE_OPTION);
    ok = renegotiate_for_cert(&rc, FORCE_OPTION, io_verify_reject_all);
    ck_assert_msg(!ok, "%s: renegotiation with a rejected certificate succeeded", rc.label);
    ck_assert_int_eq(w->client_certs, 1);
    ck_assert_msg(w->server_alert > 0, "%s: the server sent no alert", rc.label);
    printf("  %-42s rejected certificate: server alert %d\n", rc.label, w->server_alert);
    reneg_case_free(&rc);
}
END_TEST

/*
 * Control: without forcing a full handshake the client's abbreviated
 * renegotiation resumes the EMS session, so no certificate is requested --
 * the certificate assertions above are not met by accident.
 */
START_TEST(test_reneg_abbreviated_control)
{
    int where = _i;
    reneg_case rc;
    const io_wire *w = &rc.conn.wire;

    resume_and_hold(&rc, where, HS_MECH_TICKET, FORCE_NONE);
    ck_assert_msg(renegotiate_for_cert(&rc, FORCE_NONE, io_verify_accept_ours),
        "%s: abbreviated renegotiation failed (alerts %d/%d)", rc.label,
        w->server_alert, w->client_alert);
    ck_assert(SSL_session_reused(rc.conn.server) && SSL_session_reused(rc.conn.client));
    ck_assert_int_eq(w->cert_requests, 0);
    ck_assert_ptr_null(SSL_get0_peer_certificate(rc.conn.server));
    ck_assert_int_eq(SSL_get_extms_support(rc.conn.server), 1);
    ck_assert_int_eq(SSL_get_extms_support(rc.conn.client), 1);
    reneg_case_free(&rc);
}
END_TEST

/*
 * libssl reports a lone HelloRequest to the info callback as a handshake
 * that started and finished (tls_finish_handshake without a Finished).  It
 * completes no handshake, so no counter may move: loop 0 after a full EMS
 * handshake, loop 1 after a full handshake without EMS.
 */
START_TEST(test_hello_request_not_counted)
{
    int legacy = _i;
    SSL_CTX *sctx = hs_server_ctx(HS_MECH_SESSION_ID, 0);
    SSL_CTX *cctx = client_ctx(legacy ? HS_NO_EMS : 0, 0);
    io_conn c;

    ck_assert_ptr_nonnull(sctx);
    enable_policy(sctx);
    ck_assert_int_eq(io_conn_open(&c, sctx, cctx, NULL), 1);
    ck_assert(io_conn_handshake(&c));
    ck_assert_int_eq(counter(sctx, EMSGUARD_CNT_FULL_HANDSHAKES), 1);
    ck_assert_int_eq(SSL_renegotiate(c.server), 1);
    ck_assert_int_eq(SSL_do_handshake(c.server), 1); /* writes the HelloRequest */
    ck_assert_int_eq(c.wire.hello_requests, 1);
    ck_assert_int_eq(c.wire.server_finished, 1);
    ck_assert_int_eq(SSL_renegotiate_pending(c.server), 1);
    printf("  HelloRequest only (%s): full_handshakes %llu, full_without_ems %llu\n",
        legacy ? "no EMS" : "EMS",
        (unsigned long long)counter(sctx, EMSGUARD_CNT_FULL_HANDSHAKES),
        (unsigned long long)counter(sctx, EMSGUARD_CNT_FULL_WITHOUT_EMS));
    assert_counters(sctx, "server", EMSGUARD_CNT_FULL_HANDSHAKES, (uint64_t)1,
        EMSGUARD_CNT_FULL_WITHOUT_EMS, (uint64_t)legacy,
        EMSGUARD_CNT_SESSIONS_NOT_CACHED, (uint64_t)legacy, EMSGUARD_CNT_MAX);
    io_conn_close(&c);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}
END_TEST

/* ---- suite ------------------------------------------------------------------ */

static Suite *interop_suite(void)
{
    Suite *s = suite_create("emsguard-interop");
    TCase *tc;

    tc = tcase_create("ticket-renewal");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_renewal_chain, ON_NONE, PLACEMENTS);
    tcase_add_test(tc, test_no_renewal_control);
    tcase_add_test(tc, test_renewal_legacy_client);
    suite_add_tcase(s, tc);

    tc = tcase_create("renegotiation");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_reneg_client_cert, 0, PLACEMENTS * 2 * 2);
    tcase_add_loop_test(tc, test_reneg_cert_rejected, ON_NONE, PLACEMENTS);
    tcase_add_loop_test(tc, test_reneg_abbreviated_control, ON_NONE, PLACEMENTS);
    tcase_add_loop_test(tc, test_hello_request_not_counted, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(interop_suite());
    int failed;

    /* One process: leak checking sees everything, and failures stay readable. */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    io_cleanup();
    hs_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
