/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-memory handshake tests (BIO pairs, no sockets) for the SSL_CTX policy.
 *
 * Every row of the server and client tables in the README runs three ways --
 * internal session-ID cache, external cache callbacks, RFC 5077 tickets --
 * next to a stock-OpenSSL control that shows what the policy changes.  Each
 * resumption attempt offers a fresh copy of the session (hs_handshake does
 * that), because OpenSSL marks an offered session not resumable once an
 * attempt fails.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <check.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "harness.h"
#include "harness_check.h"

#define ALERT_HANDSHAKE_FAILURE SSL_AD_HANDSHAKE_FAILURE /* 40 */

/* ---- helpers ------------------------------------------------------------ */

static void assert_aborted(const hs_result *r, int alert)
{
    ck_assert_msg(!r->ok, "expected an abort, the handshake succeeded");
    ck_assert_int_eq(r->server_alert, alert);
}

/*
 * A non-EMS session the policy server |pctx| may meet for |mech|: for
 * tickets and the external cache it comes from a stock server sharing the
 * ticket keys / cache (the rolling-upgrade fleet); a server's internal cache
 * is its own, so there it comes from |pctx| itself.
 */
static SSL_SESSION *legacy_session(hs_mech mech, SSL_CTX *pctx, SSL_CTX **stock_out)
{
    SSL_CTX *legacy = hs_client(HS_NO_EMS);
    SSL_CTX *donor = mech == HS_MECH_SESSION_ID ? pctx : hs_server(mech, 0);
    SSL_SESSION *sess = hs_new_session(donor, legacy);

    ck_assert_int_eq(hs_session_ems(sess), 0);
    if (stock_out != NULL && donor != pctx)
        *stock_out = donor;
    else if (donor != pctx)
        SSL_CTX_free(donor);
    SSL_CTX_free(legacy);
    return sess;
}

static void setup(void)
{
    hs_ext_cache_reset();
    hs_set_sni(NULL);
}

/* ---- server table --------------------------------------------------------- */

/* Row 1: non-EMS session, ClientHello with EMS -> full handshake. */
START_TEST(test_server_nonems_session_ems_hello)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *pctx = hs_policy_server(mech, 0);
    SSL_CTX *ems_client = hs_client(0);
    SSL_SESSION *sess = legacy_session(mech, pctx, NULL);
    hs_result r;

    hs_handshake(pctx, ems_client, sess, &r);
    hs_assert_full(&r);
    ck_assert_int_eq(r.hello_ems, 1);
    ck_assert_int_eq(r.ems, 1);
    ck_assert_int_eq(hs_session_ems(r.session), 1);
    hs_result_clear(&r);
    SSL_SESSION_free(sess);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(pctx);
}
END_TEST

/*
 * Row 2: non-EMS session, ClientHello without EMS -> full handshake, no
 * alert, and the new session is never resumable (not cached, no ticket).
 * Stock OpenSSL resumes it: the control shows the session is resumable.
 */
START_TEST(test_server_nonems_session_nonems_hello)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *pctx = hs_policy_server(mech, 0);
    SSL_CTX *legacy = hs_client(HS_NO_EMS);
    SSL_CTX *stock = NULL;
    SSL_SESSION *sess = legacy_session(mech, pctx, &stock);
    int new_calls;
    hs_result r, again;

    /* Control: where the session came from, stock OpenSSL resumes it. */
    if (stock != NULL) {
        hs_handshake(stock, legacy, sess, &r);
        hs_assert_resumed(&r);
        ck_assert_int_eq(r.ems, 0);
        hs_result_clear(&r);
    }
    new_calls = hs_ext_cache_new_calls();
    hs_handshake(pctx, legacy, sess, &r);
    if (mech != HS_MECH_SESSION_ID) /* an internal-cache session never got in */
        ck_assert_int_eq(r.hello_offered, 1);
    hs_assert_full(&r);
    ck_assert_int_eq(r.ems, 0);
    ck_assert_int_eq(r.server_sent_ticket, 0);
    ck_assert_int_eq(hs_ext_cache_new_calls(), new_calls);
    /* This handshake's session; for session IDs also the first one's. */
    ck_assert_int_eq(hs_counter(pctx, EMSGUARD_CNT_SESSIONS_NOT_CACHED)
            + hs_counter(pctx, EMSGUARD_CNT_TICKETS_WITHHELD),
        mech == HS_MECH_SESSION_ID ? 2 : 1);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_REFUSED_NO_EMS),
        mech == HS_MECH_SESSION_ID ? 0 : 1);

    /* The session this handshake made is not resumable either. */
    hs_handshake(pctx, legacy, r.session, &again);
    hs_assert_full(&again);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_RESUMPTIONS), 0);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_FULL_WITHOUT_EMS),
        mech == HS_MECH_SESSION_ID ? 3 : 2);
    hs_result_clear(&again);
    hs_result_clear(&r);
    SSL_SESSION_free(sess);
    SSL_CTX_free(stock);
    SSL_CTX_free(legacy);
    SSL_CTX_free(pctx);
}
END_TEST

/* Row 3: EMS session, ClientHello without EMS -> handshake_failure. */
START_TEST(test_server_ems_session_nonems_hello)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *pctx = hs_policy_server(mech, 0);
    SSL_CTX *ems_client = hs_client(0), *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *sess = hs_new_session(pctx, ems_client);
    hs_result r;

    ck_assert_int_eq(hs_session_ems(sess), 1);
    hs_handshake(pctx, legacy, sess, &r);
    ck_assert_int_eq(r.hello_offered, 1);
    ck_assert_int_eq(r.hello_ems, 0);
    assert_aborted(&r, ALERT_HANDSHAKE_FAILURE);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_ABORTED_INCONSISTENT), 1);
    hs_result_clear(&r);
    SSL_SESSION_free(sess);
    SSL_CTX_free(legacy);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(pctx);
}
END_TEST

/* Row 4: EMS session, ClientHello with EMS -> resumes. */
START_TEST(test_server_ems_session_ems_hello)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *pctx = hs_policy_server(mech, 0);
    SSL_CTX *ems_client = hs_client(0);
    SSL_SESSION *sess = hs_new_session(pctx, ems_client);
    hs_result r;
    int i;

    for (i = 0; i < 3; i++) {
        hs_handshake(pctx, ems_client, sess, &r);
        hs_assert_resumed(&r);
        ck_assert_int_eq(r.ems, 1);
        hs_result_clear(&r);
    }
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_RESUMPTIONS), 3);
    SSL_SESSION_free(sess);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(pctx);
}
END_TEST

/*
 * A fleet sharing ticket keys and an external cache, one server upgraded:
 * the decision rests only on the session, whoever issued it.
 */
START_TEST(test_fleet_shared_keys)
{
    hs_mech mech = (hs_mech)_i; /* tickets or external cache */
    SSL_CTX *stock = hs_server(mech, 0), *pctx = hs_policy_server(mech, 0);
    SSL_CTX *ems_client = hs_client(0), *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *from_stock_legacy = hs_new_session(stock, legacy);
    SSL_SESSION *from_stock_ems = hs_new_session(stock, ems_client);
    SSL_SESSION *from_policy_ems = hs_new_session(pctx, ems_client);
    hs_result r;

    hs_handshake(pctx, legacy, from_stock_legacy, &r); /* refused */
    hs_assert_full(&r);
    ck_assert_int_eq(r.server_sent_ticket, 0);
    hs_result_clear(&r);
    hs_handshake(stock, legacy, from_stock_legacy, &r); /* stock still resumes */
    hs_assert_resumed(&r);
    hs_result_clear(&r);
    hs_handshake(pctx, ems_client, from_stock_ems, &r);
    hs_assert_resumed(&r);
    hs_result_clear(&r);
    hs_handshake(stock, ems_client, from_policy_ems, &r);
    hs_assert_resumed(&r);
    hs_result_clear(&r);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_REFUSED_NO_EMS), 1);
    SSL_SESSION_free(from_policy_ems);
    SSL_SESSION_free(from_stock_ems);
    SSL_SESSION_free(from_stock_legacy);
    SSL_CTX_free(legacy);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(pctx);
    SSL_CTX_free(stock);
}
END_TEST

/* ---- client table --------------------------------------------------------- */

/* A non-EMS session handed to the client is not offered: full handshake. */
START_TEST(test_client_does_not_offer_nonems)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *legacy_server = hs_server(mech, HS_NO_EMS);
    SSL_CTX *stock_client = hs_client(0), *pclient = hs_policy_client(0);
    SSL_SESSION *sess = hs_new_session(legacy_server, stock_client);
    hs_result r;
    int i;

    ck_assert_int_eq(hs_session_ems(sess), 0);
    /* Control: a stock client offers it and the legacy server resumes. */
    hs_handshake(legacy_server, stock_client, sess, &r);
    ck_assert_int_eq(r.hello_offered, 1);
    hs_assert_resumed(&r);
    hs_result_clear(&r);
    /* Against a legacy server every connection succeeds, fully. */
    for (i = 0; i < 3; i++) {
        hs_handshake(legacy_server, pclient, sess, &r);
        ck_assert_int_eq(r.hello_offered, 0);
        hs_assert_full(&r);
        ck_assert_int_eq(r.ems, 0);
        hs_result_clear(&r);
    }
    ck_assert_uint_eq(hs_counter(pclient, EMSGUARD_CNT_REFUSED_NO_EMS), 3);
    ck_assert_uint_eq(hs_counter(pclient, EMSGUARD_CNT_FULL_HANDSHAKES), 3);
    ck_assert_uint_eq(hs_counter(pclient, EMSGUARD_CNT_FULL_WITHOUT_EMS), 3);
    /* A session it made itself with the legacy server is not offered either. */
    {
        SSL_SESSION *own = hs_new_session(legacy_server, pclient);

        hs_handshake(legacy_server, pclient, own, &r);
        ck_assert_int_eq(r.hello_offered, 0);
        hs_assert_full(&r);
        hs_result_clear(&r);
        SSL_SESSION_free(own);
    }
    SSL_SESSION_free(sess);
    SSL_CTX_free(pclient);
    SSL_CTX_free(stock_client);
    SSL_CTX_free(legacy_server);
}
END_TEST

/* An EMS session is offered and resumes, on a policy or stock server. */
START_TEST(test_client_offers_ems)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *stock = hs_server(mech, 0), *pclient = hs_policy_client(0);
    SSL_SESSION *sess = hs_new_session(stock, pclient);
    hs_result r;

    ck_assert_int_eq(hs_session_ems(sess), 1);
    hs_handshake(stock, pclient, sess, &r);
    ck_assert_int_eq(r.hello_offered, 1);
    hs_assert_resumed(&r);
    ck_assert_int_eq(r.ems, 1);
    hs_result_clear(&r);
    ck_assert_uint_eq(hs_counter(pclient, EMSGUARD_CNT_RESUMPTIONS), 1);
    ck_assert_uint_eq(hs_counter(pclient, EMSGUARD_CNT_REFUSED_NO_EMS), 0);
    SSL_SESSION_free(sess);
    SSL_CTX_free(pclient);
    SSL_CTX_free(stock);
}
END_TEST

/*
 * A server that resumes an EMS session without EMS in its ServerHello: the
 * client must abort (RFC 7627 section 5.3), with or without the policy.  The
 * server here has EMS off and a forged cache record saying the session had
 * none, so it resumes.
 */
static void inconsistent_resumption(SSL_CTX *cctx, hs_result *r)
{
    SSL_CTX *sctx = hs_server(HS_MECH_EXT_CACHE, 0), *ems_client = hs_client(0);
    SSL_SESSION *sess = hs_new_session(sctx, ems_client);

    ck_assert_int_eq(hs_session_ems(sess), 1);
    ck_assert_int_eq(hs_ext_cache_forget_ems(), 1);
    SSL_CTX_set_options(sctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    hs_handshake(sctx, cctx, sess, r);
    SSL_SESSION_free(sess);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(sctx);
    hs_ext_cache_reset(); /* the failed attempt evicted the forged record */
}

START_TEST(test_client_inconsistent_resumption_aborts)
{
    SSL_CTX *stock_client = hs_client(0), *pclient = hs_policy_client(0);
    SSL_CTX *clients[2] = { stock_client, pclient };
    hs_result r;
    int i;

    for (i = 0; i < 2; i++) {
        inconsistent_resumption(clients[i], &r);
        ck_assert_int_eq(r.hello_offered, 1);
        ck_assert_msg(!r.ok, "client %d accepted an inconsistent resumption", i);
        ck_assert_int_eq(r.client_alert, ALERT_HANDSHAKE_FAILURE);
        hs_result_clear(&r);
    }
    SSL_CTX_free(pclient);
    SSL_CTX_free(stock_client);
}
END_TEST

/* ---- TLS 1.3 -------------------------------------------------------------- */

START_TEST(test_tls13_unaffected)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *pctx = hs_policy_server(mech, HS_TLS13);
    SSL_CTX *legacy = hs_policy_client(HS_TLS13 | HS_NO_EMS);
    SSL_CTX *ems_client = hs_policy_client(HS_TLS13);
    SSL_CTX *clients[2] = { legacy, ems_client };
    int i;

    for (i = 0; i < 2; i++) {
        SSL_SESSION *sess = hs_new_session(pctx, clients[i]);
        hs_result r;

        hs_handshake(pctx, clients[i], sess, &r);
        ck_assert_int_eq(r.version, TLS1_3_VERSION);
        ck_assert_int_eq(r.hello_ems, i == 1); /* extension 23 or not */
        hs_assert_resumed(&r);
        hs_result_clear(&r);
        SSL_SESSION_free(sess);
    }
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_RESUMPTIONS), 2);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_REFUSED_NO_EMS), 0);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_FULL_WITHOUT_EMS), 0);
    ck_assert_uint_eq(hs_counter(legacy, EMSGUARD_CNT_RESUMPTIONS), 1);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(legacy);
    SSL_CTX_free(pctx);
}
END_TEST

/* ---- Disable toggles ------------------------------------------------------ */

/*
 * DisableServerExtendedMasterSecret=1: the server neither offers nor accepts
 * EMS, and the non-EMS sessions it makes resume, as in Schannel.
 */
START_TEST(test_disable_server_ems)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *pctx = hs_server(mech, 0), *ems_client = hs_client(0);
    SSL_SESSION *sess;
    hs_result r;

    hs_enable_with(pctx, EMSGUARD_DISABLE_SERVER_EMS, "1", NULL);
    sess = hs_new_session(pctx, ems_client);
    ck_assert_int_eq(hs_session_ems(sess), 0);
    hs_handshake(pctx, ems_client, sess, &r);
    ck_assert_int_eq(r.hello_ems, 1);
    ck_assert_int_eq(r.ems, 0);
    ck_assert_int_eq(r.hello_offered, 1);
    /* The server ignores extension 23, as Schannel's does: it resumes. */
    hs_assert_resumed(&r);
    hs_result_clear(&r);
    {
        SSL_CTX *legacy = hs_client(HS_NO_EMS);
        SSL_SESSION *lsess = hs_new_session(pctx, legacy);

        hs_handshake(pctx, legacy, lsess, &r);
        hs_assert_resumed(&r); /* Schannel's legacy mode resumes legacy sessions */
        hs_result_clear(&r);
        SSL_SESSION_free(lsess);
        SSL_CTX_free(legacy);
    }
    SSL_SESSION_free(sess);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(pctx);
}
END_TEST

/*
 * Flipping DisableServerExtendedMasterSecret to 1 on a fleet with live EMS
 * tickets / externally cached sessions: the clients get a full handshake.
 * Stock OpenSSL with EMS turned off aborts them with alert 40.  (The internal
 * cache does not outlive its SSL_CTX, so it has no live sessions to flip.)
 */
START_TEST(test_disable_server_ems_live_flip)
{
    hs_mech mech = (hs_mech)_i; /* tickets or external cache */
    SSL_CTX *before = hs_policy_server(mech, 0), *ems_client = hs_client(0);
    SSL_CTX *after = hs_server(mech, 0), *stock_after = hs_server(mech, HS_NO_EMS);
    SSL_SESSION *sess = hs_new_session(before, ems_client);
    hs_result r;

    hs_enable_with(after, EMSGUARD_DISABLE_SERVER_EMS, "1", NULL);
    ck_assert_int_eq(hs_session_ems(sess), 1);
    hs_handshake(stock_after, ems_client, sess, &r);
    assert_aborted(&r, ALERT_HANDSHAKE_FAILURE);
    hs_result_clear(&r);
    hs_handshake(after, ems_client, sess, &r);
    ck_assert_int_eq(r.hello_offered, 1);
    hs_assert_full(&r);
    ck_assert_int_eq(r.ems, 0);
    hs_result_clear(&r);
    ck_assert_uint_eq(hs_counter(after, EMSGUARD_CNT_REFUSED_EMS_DISABLED), 1);
    SSL_SESSION_free(sess);
    SSL_CTX_free(stock_after);
    SSL_CTX_free(after);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(before);
}
END_TEST

/* DisableClientExtendedMasterSecret=1: no EMS offered, EMS sessions dropped. */
START_TEST(test_disable_client_ems)
{
    hs_mech mech = (hs_mech)_i;
    SSL_CTX *stock = hs_server(mech, 0), *ems_client = hs_client(0);
    SSL_CTX *pclient = hs_client(0), *stock_noems = hs_client(HS_NO_EMS);
    SSL_SESSION *ems_sess = hs_new_session(stock, ems_client);
    SSL_SESSION *own;
    hs_result r;

    hs_enable_with(pclient, EMSGUARD_DISABLE_CLIENT_EMS, "1", NULL);
    /* Control: stock OpenSSL without EMS offers it and the server aborts. */
    hs_handshake(stock, stock_noems, ems_sess, &r);
    assert_aborted(&r, ALERT_HANDSHAKE_FAILURE);
    hs_result_clear(&r);
    hs_handshake(stock, pclient, ems_sess, &r);
    ck_assert_int_eq(r.hello_ems, 0);
    ck_assert_int_eq(r.hello_offered, 0);
    hs_assert_full(&r);
    ck_assert_int_eq(r.ems, 0);
    own = r.session;
    r.session = NULL;
    hs_result_clear(&r);
    ck_assert_uint_eq(hs_counter(pclient, EMSGUARD_CNT_REFUSED_EMS_DISABLED), 1);
    /* Its own non-EMS sessions are consistent with its policy: they resume. */
    hs_handshake(stock, pclient, own, &r);
    hs_assert_resumed(&r);
    hs_result_clear(&r);
    SSL_SESSION_free(own);
    SSL_SESSION_free(ems_sess);
    SSL_CTX_free(stock_noems);
    SSL_CTX_free(pclient);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(stock);
}
END_TEST

/* AllowLegacyResumption=1 restores stock behaviour for legacy clients. */
START_TEST(test_allow_legacy_resumption)
{
    SSL_CTX *pctx = hs_server(HS_MECH_TICKET, 0), *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *sess;
    hs_result r;

    hs_enable_with(pctx, EMSGUARD_ALLOW_LEGACY_RESUMPTION, "1", NULL);
    sess = hs_new_session(pctx, legacy);
    hs_handshake(pctx, legacy, sess, &r);
    hs_assert_resumed(&r);
    hs_result_clear(&r);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_REFUSED_NO_EMS), 0);
    SSL_SESSION_free(sess);
    SSL_CTX_free(legacy);
    SSL_CTX_free(pctx);
}
END_TEST

/* ---- callbacks ------------------------------------------------------------ */

static int app_new_calls, app_get_calls, app_info_calls, app_gen_calls, app_dec_calls;

static int app_new_cb(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl;
    (void)sess;
    app_new_calls++;
    return 0;
}

static SSL_SESSION *app_get_cb(SSL *ssl, const unsigned char *id, int len, int *copy)
{
    (void)ssl;
    (void)id;
    (void)len;
    app_get_calls++;
    *copy = 0;
    return NULL;
}

static void app_info_cb(const SSL *ssl, int where, int ret)
{
    (void)ssl;
    (void)ret;
    if (where & SSL_CB_HANDSHAKE_DONE)
        app_info_calls++;
}

static int app_gen_cb(SSL *ssl, void *arg)
{
    (void)ssl;
    ck_assert_ptr_eq(arg, &app_gen_calls);
    app_gen_calls++;
    return 1;
}

/* A careless application callback that accepts every ticket. */
static SSL_TICKET_RETURN app_dec_cb(SSL *ssl, SSL_SESSION *sess,
    const unsigned char *keyname, size_t keyname_len, SSL_TICKET_STATUS status,
    void *arg)
{
    (void)ssl;
    (void)sess;
    (void)keyname;
    (void)keyname_len;
    ck_assert_ptr_eq(arg, &app_gen_calls);
    app_dec_calls++;
    return status == SSL_TICKET_SUCCESS || status == SSL_TICKET_SUCCESS_RENEW
        ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_IGNORE_RENEW;
}

static void reset_app_calls(void)
{
    app_new_calls = app_get_calls = app_info_calls = app_gen_calls = app_dec_calls = 0;
}

/* The application's cache and info callbacks, set before EMSGUARD_enable. */
START_TEST(test_chain_callbacks_set_before)
{
    SSL_CTX *pctx = hs_server(HS_MECH_EXT_CACHE, 0); /* harness's cache callbacks */
    SSL_CTX *ems_client = hs_client(0), *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *sess, *lsess;
    hs_result r;

    reset_app_calls();
    SSL_CTX_set_info_callback(pctx, app_info_cb);
    hs_enable_with(pctx, NULL);
    sess = hs_new_session(pctx, ems_client);
    ck_assert_int_eq(hs_ext_cache_new_calls(), 1);
    ck_assert_uint_eq(hs_ext_cache_size(), 1);
    hs_handshake(pctx, ems_client, sess, &r);
    hs_assert_resumed(&r);
    hs_result_clear(&r);
    ck_assert_int_ge(hs_ext_cache_get_calls(), 1);
    lsess = hs_new_session(pctx, legacy);
    ck_assert_int_eq(hs_ext_cache_new_calls(), 1); /* not handed to the app */
    ck_assert_int_eq(app_info_calls, 3);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_FULL_HANDSHAKES), 2);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_RESUMPTIONS), 1);
    SSL_SESSION_free(lsess);
    SSL_SESSION_free(sess);
    SSL_CTX_free(legacy);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(pctx);
}
END_TEST

/*
 * The per-SSL application callback (EMSGUARD_set_info_callback) lives in
 * emsguard's per-connection record; SSL_dup() of a fresh SSL must give the
 * copy a record of its own (the sanitizer pass catches a shared one once
 * the original is freed first).
 */
START_TEST(test_per_ssl_info_callback_survives_dup)
{
    SSL_CTX *pctx = hs_policy_server(HS_MECH_SESSION_ID, 0), *cctx = hs_client(0);
    SSL *orig, *copy, *cssl;

    reset_app_calls();
    ck_assert_ptr_nonnull(orig = SSL_new(pctx));
    ck_assert_int_eq(EMSGUARD_set_info_callback(orig, app_info_cb), 1);
    ck_assert_ptr_nonnull(copy = SSL_dup(orig));
    ck_assert_ptr_ne(copy, orig);
    SSL_free(orig);
    ck_assert_ptr_nonnull(cssl = SSL_new(cctx));
    ck_assert_int_eq(hs_connect(cssl, copy), 1);
    ck_assert_int_eq(app_info_calls, 1);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_FULL_HANDSHAKES), 1);
    SSL_free(cssl);
    SSL_free(copy);
    SSL_CTX_free(cctx);
    SSL_CTX_free(pctx);
}
END_TEST

/*
 * More connections open at once than emsguard's table of per-connection
 * records has slots (1024): the rest keep theirs in ex_data.  Every
 * handshake must still be seen from start to end on both sides, which the
 * counters only show if each connection found its own record each time.
 */
START_TEST(test_more_open_connections_than_slots)
{
    enum { PAIRS = 700 }; /* 1400 SSLs */
    SSL_CTX *pctx = hs_policy_server(HS_MECH_SESSION_ID, 0), *cctx = hs_policy_client(0);
    SSL **ssl = calloc(2 * PAIRS, sizeof(*ssl));
    int i;

    ck_assert_ptr_nonnull(ssl);
    for (i = 0; i < PAIRS; i++) {
        ck_assert_ptr_nonnull(ssl[2 * i] = SSL_new(cctx));
        ck_assert_ptr_nonnull(ssl[2 * i + 1] = SSL_new(pctx));
        ck_assert_msg(hs_connect(ssl[2 * i], ssl[2 * i + 1]) == 1, "pair %d", i);
    }
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_FULL_HANDSHAKES), PAIRS);
    ck_assert_uint_eq(hs_counter(cctx, EMSGUARD_CNT_FULL_HANDSHAKES), PAIRS);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_FULL_WITHOUT_EMS), 0);
    for (i = 0; i < 2 * PAIRS; i++)
        SSL_free(ssl[i]);
    free(ssl);
    SSL_CTX_free(cctx);
    SSL_CTX_free(pctx);
}
END_TEST

/*
 * A freed connection's record goes with it.  malloc hands the next SSL the
 * same address again and again; a record left behind would give the new
 * connection the last one's EMS state, and a ClientHello that differs from
 * it would be rejected as an inconsistent renegotiation.
 */
START_TEST(test_freed_connection_leaves_no_state)
{
    SSL_CTX *pctx = hs_policy_server(HS_MECH_SESSION_ID, 0);
    SSL_CTX *ems_client = hs_client(0), *legacy = hs_client(HS_NO_EMS);
    int i;

    for (i = 0; i < 64; i++) {
        SSL *sssl = SSL_new(pctx), *cssl = SSL_new(i % 2 ? legacy : ems_client);

        ck_assert_ptr_nonnull(sssl);
        ck_assert_ptr_nonnull(cssl);
        ck_assert_msg(hs_connect(cssl, sssl) == 1, "connection %d (%s)", i,
            i % 2 ? "legacy" : "EMS");
        SSL_free(cssl);
        SSL_free(sssl);
    }
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_FULL_HANDSHAKES), 64);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_ABORTED_INCONSISTENT), 0);
    SSL_CTX_free(legacy);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(pctx);
}
END_TEST

/*
 * SSL_clear() makes an SSL ready for a new connection; its first handshake
 * is not a renegotiation of the last one, whatever that one's EMS state.
 */
START_TEST(test_ssl_clear_starts_a_new_connection)
{
    SSL_CTX *pctx = hs_policy_server(HS_MECH_SESSION_ID, 0);
    SSL_CTX *ems_client = hs_client(0), *legacy = hs_client(HS_NO_EMS);
    SSL *sssl = SSL_new(pctx), *cssl;

    ck_assert_ptr_nonnull(sssl);
    ck_assert_ptr_nonnull(cssl = SSL_new(ems_client));
    ck_assert_int_eq(hs_connect(cssl, sssl), 1);
    SSL_free(cssl);
    ck_assert_int_eq(SSL_clear(sssl), 1);
    ck_assert_ptr_nonnull(cssl = SSL_new(legacy));
    ck_assert_msg(hs_connect(cssl, sssl) == 1, "legacy client after SSL_clear refused");
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_ABORTED_INCONSISTENT), 0);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_FULL_HANDSHAKES), 2);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_FULL_WITHOUT_EMS), 1);
    SSL_free(cssl);
    SSL_free(sssl);
    SSL_CTX_free(legacy);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(pctx);
}
END_TEST

/*
 * More SSL_CTXs with a policy than the table of ctx states has slots (64):
 * the rest are found through ex_data.  Then all are freed and as many made
 * again, which only works if freeing a ctx gave its slot back.
 */
START_TEST(test_more_policy_ctxs_than_slots)
{
    enum { CTXS = 80 };
    SSL_CTX *ctx[CTXS], *cctx = hs_client(0);
    int round, i;

    for (round = 0; round < 2; round++) {
        for (i = 0; i < CTXS; i++) {
            SSL *sssl, *cssl;

            ctx[i] = hs_policy_server(HS_MECH_SESSION_ID, 0);
            ck_assert_ptr_nonnull(sssl = SSL_new(ctx[i]));
            ck_assert_ptr_nonnull(cssl = SSL_new(cctx));
            ck_assert_msg(hs_connect(cssl, sssl) == 1, "round %d ctx %d", round, i);
            SSL_free(cssl);
            SSL_free(sssl);
        }
        for (i = 0; i < CTXS; i++) {
            ck_assert_int_eq(EMSGUARD_CTX_is_enabled(ctx[i]), 1);
            ck_assert_msg(hs_counter(ctx[i], EMSGUARD_CNT_FULL_HANDSHAKES) == 1,
                "round %d ctx %d counted another ctx's handshake", round, i);
        }
        for (i = 0; i < CTXS; i++)
            SSL_CTX_free(ctx[i]);
    }
    SSL_CTX_free(cctx);
}
END_TEST

/* The same callbacks set after EMSGUARD_enable, through emsguard's setters. */
START_TEST(test_chain_callbacks_set_after)
{
    SSL_CTX *pctx = hs_policy_server(HS_MECH_SESSION_ID, 0);
    SSL_CTX *ems_client = hs_client(0), *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *sess, *lsess;
    hs_result r;

    reset_app_calls();
    ck_assert_int_eq(EMSGUARD_CTX_sess_set_new_cb(pctx, app_new_cb), 1);
    ck_assert_int_eq(EMSGUARD_CTX_sess_set_get_cb(pctx, app_get_cb), 1);
    ck_assert_int_eq(EMSGUARD_CTX_set_info_callback(pctx, app_info_cb), 1);
    sess = hs_new_session(pctx, ems_client);
    lsess = hs_new_session(pctx, legacy);
    ck_assert_int_eq(app_new_calls, 1); /* only the EMS session */
    hs_handshake(pctx, ems_client, sess, &r); /* internal cache hit */
    hs_assert_resumed(&r);
    hs_result_clear(&r);
    hs_handshake(pctx, legacy, lsess, &r); /* internal miss -> app's get cb */
    hs_assert_full(&r);
    hs_result_clear(&r);
    ck_assert_int_eq(app_get_calls, 1);
    ck_assert_int_eq(app_info_calls, 4);
    /* NULL removes the application's callback, not the policy. */
    ck_assert_int_eq(EMSGUARD_CTX_sess_set_new_cb(pctx, NULL), 1);
    SSL_SESSION_free(hs_new_session(pctx, ems_client));
    ck_assert_int_eq(app_new_calls, 1);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_FULL_HANDSHAKES), 4);
    SSL_SESSION_free(lsess);
    SSL_SESSION_free(sess);
    SSL_CTX_free(legacy);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(pctx);
}
END_TEST

/* Ticket callbacks chain; the policy overrides an application's "use it". */
START_TEST(test_chain_ticket_callbacks)
{
    SSL_CTX *pctx = hs_policy_server(HS_MECH_TICKET, 0), *stock = hs_server(HS_MECH_TICKET, 0);
    SSL_CTX *ems_client = hs_client(0), *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *sess, *lsess = hs_new_session(stock, legacy);
    hs_result r;

    reset_app_calls();
    ck_assert_int_eq(EMSGUARD_CTX_set_session_ticket_cb(pctx, app_gen_cb, app_dec_cb,
                         &app_gen_calls), 1);
    sess = hs_new_session(pctx, ems_client);
    ck_assert_int_eq(app_gen_calls, 1);
    hs_handshake(pctx, ems_client, sess, &r);
    hs_assert_resumed(&r);
    hs_result_clear(&r);
    /* Also asked about the first ClientHello's empty ticket extension. */
    ck_assert_int_eq(app_dec_calls, 2);
    hs_handshake(pctx, legacy, lsess, &r);
    ck_assert_int_eq(app_dec_calls, 3);
    ck_assert_int_eq(app_gen_calls, 1);
    hs_assert_full(&r);
    ck_assert_int_eq(r.server_sent_ticket, 0);
    hs_result_clear(&r);
    SSL_SESSION_free(lsess);
    SSL_SESSION_free(sess);
    SSL_CTX_free(legacy);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(stock);
    SSL_CTX_free(pctx);
}
END_TEST

START_TEST(test_setters_need_policy)
{
    SSL_CTX *ctx = hs_client(0);

    ERR_clear_error();
    ck_assert_int_eq(EMSGUARD_CTX_sess_set_new_cb(ctx, app_new_cb), 0);
    ck_assert_int_eq(ERR_GET_REASON(ERR_peek_last_error()), EMSGUARD_R_NOT_ENABLED);
    ck_assert_int_eq(EMSGUARD_CTX_set_session_ticket_cb(ctx, NULL, NULL, NULL), 0);
    ck_assert_int_eq(EMSGUARD_CTX_is_enabled(ctx), 0);
    ERR_clear_error();
    SSL_CTX_free(ctx);
}
END_TEST

/* ---- enabling ------------------------------------------------------------- */

START_TEST(test_enable_twice)
{
    SSL_CTX *pctx = hs_server(HS_MECH_TICKET, 0), *ems_client = hs_client(0);
    EMSGUARD_POLICY *other = EMSGUARD_POLICY_new();

    ck_assert_int_eq(EMSGUARD_enable(pctx), 1);
    SSL_SESSION_free(hs_new_session(pctx, ems_client));
    ck_assert_int_eq(EMSGUARD_enable(pctx), 1); /* changes nothing */
    ck_assert_int_eq(EMSGUARD_CTX_is_enabled(pctx), 1);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_FULL_HANDSHAKES), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set(other, EMSGUARD_ALLOW_LEGACY_RESUMPTION, "1"), 1);
    ERR_clear_error();
    ck_assert_int_eq(EMSGUARD_enable_policy(pctx, other), 0);
    ck_assert_int_eq(ERR_GET_LIB(ERR_peek_last_error()), EMSGUARD_get_error_lib());
    ck_assert_int_eq(ERR_GET_REASON(ERR_peek_last_error()), EMSGUARD_R_ALREADY_ENABLED);
    ERR_clear_error();
    SSL_SESSION_free(hs_new_session(pctx, ems_client));
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_FULL_HANDSHAKES), 2);
    EMSGUARD_POLICY_free(other);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(pctx);
}
END_TEST

/* A non-EMS session cached before EMSGUARD_enable cannot slip through. */
START_TEST(test_enable_flushes_internal_cache)
{
    SSL_CTX *ctx = hs_server(HS_MECH_SESSION_ID, 0), *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *sess = hs_new_session(ctx, legacy);
    hs_result r;

    hs_handshake(ctx, legacy, sess, &r); /* stock: cached and resumable */
    hs_assert_resumed(&r);
    hs_result_clear(&r);
    ck_assert_int_eq(SSL_CTX_sess_number(ctx), 1);
    hs_enable_with(ctx, NULL);
    ck_assert_int_eq(SSL_CTX_sess_number(ctx), 0);
    hs_handshake(ctx, legacy, sess, &r);
    hs_assert_full(&r);
    hs_result_clear(&r);
    ck_assert_uint_eq(hs_counter(ctx, EMSGUARD_CNT_POLICY_BYPASSED), 0);
    SSL_SESSION_free(sess);
    SSL_CTX_free(legacy);
    SSL_CTX_free(ctx);
}
END_TEST

/*
 * SSL_CTX_add_session() puts a session in the internal cache, where libssl
 * resumes it without asking any callback.  emsguard cannot stop that
 * resumption; it counts it, logs it and evicts the session.
 */
/*
 * Handshake of fresh SSLs of |sctx| and |cctx| offering |offer|: 1 if both
 * ends completed it.  *server_reused and *data_ok tell whether the server
 * resumed and whether one byte then went each way.
 */
static int handshake_then_data(SSL_CTX *sctx, SSL_CTX *cctx, const SSL_SESSION *offer,
    int *server_reused, int *data_ok)
{
    SSL *c = SSL_new(cctx), *sv = SSL_new(sctx);
    SSL_SESSION *copy = offer != NULL ? hs_session_copy(offer) : NULL;
    unsigned char b = 0;
    int ok;

    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(sv);
    if (copy != NULL)
        ck_assert_int_eq(SSL_set_session(c, copy), 1);
    ok = hs_connect(c, sv);
    *server_reused = SSL_session_reused(sv);
    *data_ok = ok && SSL_write(sv, "s", 1) == 1 && SSL_read(c, &b, 1) == 1
        && SSL_write(c, "c", 1) == 1 && SSL_read(sv, &b, 1) == 1;
    SSL_SESSION_free(copy);
    SSL_free(c);
    SSL_free(sv);
    ERR_clear_error();
    return ok;
}

/*
 * A session the application put into the internal cache itself reaches
 * libssl past every hook: the resumption is detected at its end, counted,
 * the session evicted, and the connection refused (no application data).
 */
START_TEST(test_bypass_is_detected)
{
    SSL_CTX *pctx = hs_policy_server(HS_MECH_SESSION_ID, 0);
    SSL_CTX *stock = hs_server(HS_MECH_SESSION_ID, 0);
    SSL_CTX *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *sess = hs_new_session(stock, legacy);
    SSL_SESSION *server_copy = hs_session_copy(sess);
    int reused, data_ok;
    hs_result r;

    /* A client-side session carries no session-ID context; the server's does. */
    ck_assert_int_eq(SSL_SESSION_set1_id_context(server_copy, (const unsigned char *)"eg", 2), 1);
    ck_assert_int_eq(SSL_CTX_add_session(pctx, server_copy), 1);
    ck_assert_int_eq(handshake_then_data(pctx, legacy, sess, &reused, &data_ok), 1);
    ck_assert_msg(reused, "the added session was not resumed: the test proves nothing");
    ck_assert_msg(!data_ok, "application data flowed over a bypassing resumption");
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_POLICY_BYPASSED), 1);
    hs_handshake(pctx, legacy, sess, &r); /* evicted */
    hs_assert_full(&r);
    hs_result_clear(&r);
    SSL_SESSION_free(server_copy);
    SSL_SESSION_free(sess);
    SSL_CTX_free(legacy);
    SSL_CTX_free(stock);
    SSL_CTX_free(pctx);
}
END_TEST

static int accept_any_hello(SSL *ssl, int *al, void *arg)
{
    (void)ssl;
    (void)al;
    (void)arg;
    return SSL_CLIENT_HELLO_SUCCESS;
}

/*
 * RequireExtendedMasterSecret=1, and the application replaced emsguard's
 * ClientHello callback with the plain setter after EMSGUARD_enable(): the
 * ClientHello check never runs, so the legacy handshake completes; it is
 * caught at its end, and the connection refused.
 */
START_TEST(test_require_bypass_refused_at_end)
{
    SSL_CTX *pctx = hs_server(HS_MECH_SESSION_ID, 0), *legacy = hs_client(HS_NO_EMS);
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    int reused, data_ok;

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, EMSGUARD_REQUIRE_EMS, "1"), 1);
    ck_assert_int_eq(EMSGUARD_enable_policy(pctx, p), 1);
    SSL_CTX_set_client_hello_cb(pctx, accept_any_hello, NULL);
    ck_assert_int_eq(handshake_then_data(pctx, legacy, NULL, &reused, &data_ok), 1);
    ck_assert_msg(!data_ok, "application data flowed over a TLS 1.2 handshake without EMS "
                            "(RequireExtendedMasterSecret=1)");
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_POLICY_BYPASSED), 1);
    EMSGUARD_POLICY_free(p);
    SSL_CTX_free(legacy);
    SSL_CTX_free(pctx);
}
END_TEST

/* SSL_SESSION_print's "Extended master secret: yes|no": an independent oracle. */
static int printed_ems(const SSL_SESSION *sess)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char *text = NULL;
    long len;
    int ems;

    ck_assert_ptr_nonnull(mem);
    ck_assert_int_eq(SSL_SESSION_print(mem, sess), 1);
    ck_assert_int_eq(BIO_write(mem, "", 1), 1);
    len = BIO_get_mem_data(mem, &text);
    ck_assert_int_gt(len, 0);
    ck_assert_ptr_nonnull(strstr(text, "Extended master secret:"));
    ems = strstr(text, "Extended master secret: yes") != NULL;
    BIO_free(mem);
    return ems;
}

/*
 * emsguard remembers a session's EMS bit by a fingerprint of its master
 * secret.  First answers (read from the encoding or noted at handshake end),
 * repeated answers (from the memo) and answers for decoded copies must all
 * agree with what OpenSSL prints, for sessions with and without EMS.
 */
START_TEST(test_session_ems_memo_agrees)
{
    SSL_CTX *stock = hs_server(HS_MECH_SESSION_ID, 0);
    SSL_CTX *pserver = hs_policy_server(HS_MECH_TICKET, 0);
    SSL_CTX *legacy = hs_client(HS_NO_EMS), *plain = hs_client(0), *pclient = hs_policy_client(0);
    SSL_SESSION *sessions[4], *copy;
    size_t i;
    int round;

    sessions[0] = hs_new_session(stock, legacy); /* never seen by emsguard */
    sessions[1] = hs_new_session(stock, plain);
    sessions[2] = hs_new_session(pserver, pclient); /* noted at handshake end */
    sessions[3] = hs_new_session(pserver, legacy);
    ck_assert_int_eq(printed_ems(sessions[0]), 0);
    ck_assert_int_eq(printed_ems(sessions[1]), 1);
    ck_assert_int_eq(printed_ems(sessions[2]), 1);
    ck_assert_int_eq(printed_ems(sessions[3]), 0);
    for (round = 0; round < 2; round++)
        for (i = 0; i < 4; i++) {
            ck_assert_int_eq(hs_session_ems(sessions[i]), printed_ems(sessions[i]));
            copy = hs_session_copy(sessions[i]);
            ck_assert_int_eq(hs_session_ems(copy), printed_ems(sessions[i]));
            SSL_SESSION_free(copy);
        }
    for (i = 0; i < 4; i++)
        SSL_SESSION_free(sessions[i]);
    SSL_CTX_free(pclient);
    SSL_CTX_free(plain);
    SSL_CTX_free(legacy);
    SSL_CTX_free(pserver);
    SSL_CTX_free(stock);
}
END_TEST

/*
 * |sess| re-encoded with the EMS flag set ([13] flags = 1 inserted in its
 * place among the SEQUENCE's fields): what someone who can write an
 * application's session store could forge from a real non-EMS session.
 */
static SSL_SESSION *forge_ems_flag(const SSL_SESSION *sess)
{
    static const unsigned char flags_ems[] = { 0xAD, 0x03, 0x02, 0x01, 0x01 };
    unsigned char *der = NULL, *out, *q;
    const unsigned char *p, *body, *end, *cp;
    int len = i2d_SSL_SESSION(sess, &der);
    size_t body_len, hdr, field, insert_at;
    SSL_SESSION *forged;

    ck_assert_int_gt(len, 4);
    /* i2d uses a two-byte long-form length for sessions of this size. */
    ck_assert_uint_eq(der[0], 0x30);
    ck_assert_uint_eq(der[1], 0x82);
    body_len = ((size_t)der[2] << 8) | der[3];
    body = der + 4;
    end = body + body_len;
    ck_assert_ptr_eq(end, der + len);
    for (p = body; p < end; p += field) {
        size_t l = p[1], n = 0;

        if ((*p & 0xE0) == 0xA0 && (*p & 0x1F) > 13) /* first field after [13] */
            break;
        ck_assert_uint_ne(*p, 0xAD); /* no flags yet: not an EMS session */
        hdr = 2;
        if (l & 0x80)
            for (n = l & 0x7F, l = 0, hdr += n; n > 0; n--)
                l = (l << 8) | p[hdr - n];
        field = hdr + l;
    }
    insert_at = (size_t)(p - der);
    ck_assert_ptr_nonnull(out = OPENSSL_malloc((size_t)len + sizeof(flags_ems)));
    memcpy(out, der, insert_at);
    memcpy(out + insert_at, flags_ems, sizeof(flags_ems));
    memcpy(out + insert_at + sizeof(flags_ems), der + insert_at, (size_t)len - insert_at);
    body_len += sizeof(flags_ems);
    out[2] = (unsigned char)(body_len >> 8);
    out[3] = (unsigned char)body_len;
    cp = out;
    forged = d2i_SSL_SESSION(NULL, &cp, len + (long)sizeof(flags_ems));
    ck_assert_ptr_nonnull(forged);
    OPENSSL_clear_free(out, (size_t)len + sizeof(flags_ems));
    q = der;
    OPENSSL_clear_free(q, (size_t)len);
    return forged;
}

/*
 * A forged session with a real non-EMS session's master secret and the EMS
 * flag must not make the real one look like EMS: offering the forgery first
 * (the memo is keyed by the secret) must not let the client offer, and a
 * non-EMS server resume, the real session.
 */
START_TEST(test_session_ems_memo_not_poisoned)
{
    SSL_CTX *legacy_server = hs_server(HS_MECH_SESSION_ID, HS_NO_EMS);
    SSL_CTX *pclient = hs_policy_client(0), *plain = hs_client(0);
    SSL_SESSION *real = hs_new_session(legacy_server, plain), *forged;
    hs_result r;

    ck_assert_int_eq(printed_ems(real), 0);
    forged = forge_ems_flag(real);
    ck_assert_int_eq(printed_ems(forged), 1); /* libssl believes the forgery */
    ck_assert_int_eq(hs_session_ems(forged), 1);
    hs_handshake(legacy_server, pclient, forged, &r); /* offered, then refused by libssl */
    hs_result_clear(&r);
    ck_assert_int_eq(hs_session_ems(real), 0);
    hs_handshake(legacy_server, pclient, real, &r);
    hs_assert_full(&r);
    hs_result_clear(&r);
    SSL_SESSION_free(forged);
    SSL_SESSION_free(real);
    SSL_CTX_free(plain);
    SSL_CTX_free(pclient);
    SSL_CTX_free(legacy_server);
}
END_TEST

/* ---- counters and logging ------------------------------------------------- */

/* A scripted mix of clients; every counter must match exactly. */
START_TEST(test_counters_exact)
{
    SSL_CTX *pctx = hs_policy_server(HS_MECH_TICKET, 0), *stock = hs_server(HS_MECH_TICKET, 0);
    SSL_CTX *ems_client = hs_client(0), *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *ems_sess = hs_new_session(pctx, ems_client); /* full 1 */
    SSL_SESSION *legacy_sess = hs_new_session(stock, legacy);
    SSL_SESSION *own_legacy = hs_new_session(pctx, legacy); /* full 2, withheld 1 */
    static const uint64_t expected[EMSGUARD_CNT_MAX] = {
        [EMSGUARD_CNT_FULL_HANDSHAKES] = 3,
        [EMSGUARD_CNT_RESUMPTIONS] = 2,
        [EMSGUARD_CNT_REFUSED_NO_EMS] = 1,
        [EMSGUARD_CNT_FULL_WITHOUT_EMS] = 2,
        [EMSGUARD_CNT_ABORTED_INCONSISTENT] = 1,
        [EMSGUARD_CNT_TICKETS_WITHHELD] = 2,
    };
    hs_result r;
    int i;

    for (i = 0; i < 2; i++) { /* resumptions 2 */
        hs_handshake(pctx, ems_client, ems_sess, &r);
        hs_assert_resumed(&r);
        hs_result_clear(&r);
    }
    hs_handshake(pctx, legacy, legacy_sess, &r); /* refused 1, full 3, withheld 2 */
    hs_assert_full(&r);
    hs_result_clear(&r);
    hs_handshake(pctx, legacy, ems_sess, &r); /* aborted 1 */
    assert_aborted(&r, ALERT_HANDSHAKE_FAILURE);
    hs_result_clear(&r);
    for (i = 0; i < EMSGUARD_CNT_MAX; i++)
        ck_assert_msg(hs_counter(pctx, (EMSGUARD_COUNTER)i) == expected[i],
            "counter %s is %llu, expected %llu", EMSGUARD_counter_name((EMSGUARD_COUNTER)i),
            (unsigned long long)hs_counter(pctx, (EMSGUARD_COUNTER)i),
            (unsigned long long)expected[i]);
    SSL_SESSION_free(own_legacy);
    SSL_SESSION_free(legacy_sess);
    SSL_SESSION_free(ems_sess);
    SSL_CTX_free(legacy);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(stock);
    SSL_CTX_free(pctx);
}
END_TEST

START_TEST(test_counter_arguments)
{
    SSL_CTX *ctx = hs_policy_client(0);
    uint64_t v = 7;

    ck_assert_int_eq(EMSGUARD_CTX_get_counter(ctx, EMSGUARD_CNT_MAX, &v), 0);
    ck_assert_int_eq(EMSGUARD_CTX_get_counter(ctx, EMSGUARD_CNT_RESUMPTIONS, NULL), 0);
    ck_assert_ptr_null(EMSGUARD_counter_name(EMSGUARD_CNT_MAX));
    ck_assert_str_eq(EMSGUARD_counter_name(EMSGUARD_CNT_FULL_HANDSHAKES), "full_handshakes");
    ERR_clear_error();
    SSL_CTX_free(ctx);
}
END_TEST

static void refuse_one_legacy_ticket(void)
{
    SSL_CTX *pctx = hs_server(HS_MECH_TICKET, 0), *stock = hs_server(HS_MECH_TICKET, 0);
    SSL_CTX *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *sess = hs_new_session(stock, legacy);
    hs_result r;

    hs_enable_with(pctx, EMSGUARD_EVENT_LOGGING, "7", NULL);
    hs_set_sni("www.example.test");
    hs_handshake(pctx, legacy, sess, &r);
    hs_set_sni(NULL);
    hs_assert_full(&r);
    hs_result_clear(&r);
    SSL_SESSION_free(sess);
    SSL_CTX_free(legacy);
    SSL_CTX_free(stock);
    SSL_CTX_free(pctx);
}

/* One line per refusal: role, reason, where from, peer, SNI. */
START_TEST(test_log_lines)
{
    const char *out = hs_capture_stderr(refuse_one_legacy_ticket);
    const char *line;

    ck_assert_ptr_nonnull(out);
    line = strstr(out, "emsguard: warning: role=server refused resumption");
    ck_assert_msg(line != NULL, "no refusal line in: %s", out);
    ck_assert_ptr_nonnull(strstr(line, "reason=no-ems"));
    ck_assert_ptr_nonnull(strstr(line, "via=ticket"));
    ck_assert_ptr_nonnull(strstr(line, "peer="));
    ck_assert_ptr_nonnull(strstr(line, "sni=www.example.test"));
    ck_assert_msg(strstr(strstr(line, "refused") + 1, "refused") == NULL, "two lines: %s", out);
    ck_assert_ptr_nonnull(strstr(out, "emsguard: info: role=server ticket withheld"));
}
END_TEST

static void refuse_quietly(void)
{
    SSL_CTX *pctx = hs_server(HS_MECH_TICKET, 0), *stock = hs_server(HS_MECH_TICKET, 0);
    SSL_CTX *legacy = hs_client(HS_NO_EMS);
    SSL_SESSION *sess = hs_new_session(stock, legacy);
    hs_result r;

    hs_enable_with(pctx, EMSGUARD_EVENT_LOGGING, "1", NULL); /* errors only */
    hs_handshake(pctx, legacy, sess, &r);
    hs_assert_full(&r);
    hs_result_clear(&r);
    ck_assert_uint_eq(hs_counter(pctx, EMSGUARD_CNT_REFUSED_NO_EMS), 1);
    SSL_SESSION_free(sess);
    SSL_CTX_free(legacy);
    SSL_CTX_free(stock);
    SSL_CTX_free(pctx);
}

START_TEST(test_log_filtered_by_event_logging)
{
    const char *out = hs_capture_stderr(refuse_quietly);

    ck_assert_ptr_nonnull(out);
    ck_assert_msg(strstr(out, "refused resumption") == NULL, "unexpected: %s", out);
}
END_TEST

/*
 * A policy client withholds a legacy session, completes a full handshake,
 * then the connection ends.  Only a peer that ends it first without data
 * looks like a server requiring session reuse (FTPS require_ssl_reuse).
 * The diagnosis must not need libssl's BIO at SSL_free(): OpenSSL 3.2+
 * frees the BIOs before the SSL's ex_data.
 */
enum how_it_ends {
    PEER_CLOSE_NOTIFY, /* the peer sends close_notify, then its FIN */
    PEER_EOF, /* the peer's FIN without close_notify (vsftpd's SSL_free + close) */
    PEER_DATA_THEN_CLOSE, /* the peer sends a reply, then close_notify */
    SELF_CLOSE_NOTIFY /* this side ends it: a handshake-only client */
};
static enum how_it_ends how_it_ends;
static int client_bio_chain; /* the client reads through a filter BIO */
static long client_options; /* extra SSL options of the client */

static void connect_through_chain(SSL *cssl, SSL *sssl)
{
    BIO *cbio = NULL, *sbio = NULL, *filter;
    int c = 0, s = 0, i;

    ck_assert_int_eq(BIO_new_bio_pair(&cbio, 0, &sbio, 0), 1);
    ck_assert_ptr_nonnull(filter = BIO_new(BIO_f_null()));
    BIO_push(filter, cbio);
    SSL_set_bio(cssl, filter, filter);
    SSL_set_bio(sssl, sbio, sbio);
    SSL_set_connect_state(cssl);
    SSL_set_accept_state(sssl);
    for (i = 0; i < 100 && (c != 1 || s != 1); i++) {
        if (c != 1)
            ck_assert_int_ge(c = hs_step(cssl), 0);
        if (s != 1)
            ck_assert_int_ge(s = hs_step(sssl), 0);
    }
    ck_assert_int_eq(c, 1);
    ck_assert_int_eq(s, 1);
}

static void withhold_then_close(void)
{
    SSL_CTX *legacy_server = hs_server(HS_MECH_SESSION_ID, HS_NO_EMS);
    SSL_CTX *stock_client = hs_client(0), *pclient = hs_client(0);
    SSL_SESSION *sess = hs_new_session(legacy_server, stock_client);
    SSL *cssl, *sssl;
    char buf[8];

    hs_enable_with(pclient, EMSGUARD_EVENT_LOGGING, "1", NULL); /* errors only */
    ck_assert_ptr_nonnull(cssl = SSL_new(pclient));
    ck_assert_ptr_nonnull(sssl = SSL_new(legacy_server));
    SSL_set_options(cssl, client_options);
    ck_assert_int_eq(SSL_set_session(cssl, sess), 1);
    if (client_bio_chain)
        connect_through_chain(cssl, sssl);
    else
        ck_assert_int_eq(hs_connect(cssl, sssl), 1);
    ck_assert_int_eq(SSL_session_reused(cssl), 0);
    ck_assert_uint_eq(hs_counter(pclient, EMSGUARD_CNT_REFUSED_NO_EMS), 1);
    switch (how_it_ends) {
    case PEER_DATA_THEN_CLOSE:
        ck_assert_int_eq(SSL_write(sssl, "226 done", 8), 8);
        ck_assert_int_eq(SSL_read(cssl, buf, sizeof(buf)), 8);
        /* fall through */
    case PEER_CLOSE_NOTIFY:
        ck_assert_int_eq(SSL_shutdown(sssl), 0);
        ck_assert_int_eq(SSL_read(cssl, buf, 1), 0);
        ck_assert_int_eq(SSL_get_error(cssl, 0), SSL_ERROR_ZERO_RETURN);
        SSL_shutdown(cssl); /* answers the peer's close_notify */
        break;
    case PEER_EOF:
        ck_assert_int_eq(BIO_shutdown_wr(SSL_get_wbio(sssl)), 1);
        ck_assert_int_le(SSL_read(cssl, buf, 1), 0);
        ERR_clear_error();
        break;
    case SELF_CLOSE_NOTIFY:
        ck_assert_int_eq(SSL_shutdown(cssl), 0);
        break;
    }
    SSL_free(cssl);
    SSL_free(sssl);
    SSL_SESSION_free(sess);
    SSL_CTX_free(pclient);
    SSL_CTX_free(stock_client);
    SSL_CTX_free(legacy_server);
}

static const char reuse_diagnosis[] = "the peer requires session reuse";

static const char *ends(enum how_it_ends how, int chain, long options)
{
    how_it_ends = how;
    client_bio_chain = chain;
    client_options = options;
    return hs_capture_stderr(withhold_then_close);
}

START_TEST(test_session_reuse_diagnosis_needs_peer_close)
{
    const char *out;

    out = ends(PEER_CLOSE_NOTIFY, 0, 0);
    ck_assert_ptr_nonnull(out);
    ck_assert_msg(strstr(out, reuse_diagnosis) != NULL, "no diagnosis when the peer closed: %s", out);
    ck_assert_ptr_nonnull(strstr(out, "emsguard: error: role=client resumption of a non-EMS"));
    /* This side closing first is an ordinary end (a handshake-only client). */
    out = ends(SELF_CLOSE_NOTIFY, 0, 0);
    ck_assert_ptr_nonnull(out);
    ck_assert_msg(strstr(out, reuse_diagnosis) == NULL, "diagnosis after our own close: %s", out);
    /* A peer that answered before closing did not drop the connection. */
    out = ends(PEER_DATA_THEN_CLOSE, 0, 0);
    ck_assert_ptr_nonnull(out);
    ck_assert_msg(strstr(out, reuse_diagnosis) == NULL, "diagnosis after the peer's data: %s", out);
}
END_TEST

/*
 * The peer's FIN without close_notify, also with SSL_OP_IGNORE_UNEXPECTED_EOF
 * (curl sets it), where libssl reports no alert at all; and a read BIO that
 * is a chain, which SSL_free() must still free whole (ASan checks leaks).
 */
START_TEST(test_session_reuse_diagnosis_on_eof_and_chains)
{
    static const long options[] = { 0, SSL_OP_IGNORE_UNEXPECTED_EOF };
    const char *out;
    int chain;
    size_t i;

    for (chain = 0; chain <= 1; chain++) {
        for (i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
            out = ends(PEER_EOF, chain, options[i]);
            ck_assert_ptr_nonnull(out);
            ck_assert_msg(strstr(out, reuse_diagnosis) != NULL,
                "no diagnosis on EOF (chain %d, options %#lx): %s", chain, options[i], out);
        }
        out = ends(PEER_CLOSE_NOTIFY, chain, 0);
        ck_assert_ptr_nonnull(out);
        ck_assert_msg(strstr(out, reuse_diagnosis) != NULL, "no diagnosis (chain %d): %s", chain, out);
        out = ends(SELF_CLOSE_NOTIFY, chain, 0);
        ck_assert_ptr_nonnull(out);
        ck_assert_msg(strstr(out, reuse_diagnosis) == NULL, "diagnosis (chain %d): %s", chain, out);
    }
}
END_TEST

/*
 * SSL_clear() and a new connection on the same SSL: the withheld
 * connection is over when the next one starts, so its diagnosis comes then,
 * and says nothing about the next connection.
 */
static SSL_CTX *clear_ctxs[4];
static SSL *clear_ssls[3];
static SSL_SESSION *clear_sess;

static void withhold_end_clear_and_reconnect(void)
{
    SSL_CTX *legacy_server, *ems_server, *stock_client, *pclient;
    SSL *cssl, *sssl, *sssl2;
    char byte;

    clear_ctxs[0] = legacy_server = hs_server(HS_MECH_SESSION_ID, HS_NO_EMS);
    clear_ctxs[1] = ems_server = hs_server(HS_MECH_SESSION_ID, 0);
    clear_ctxs[2] = stock_client = hs_client(0);
    clear_ctxs[3] = pclient = hs_client(0);
    clear_sess = hs_new_session(legacy_server, stock_client);
    hs_enable_with(pclient, EMSGUARD_EVENT_LOGGING, "1", NULL);
    ck_assert_ptr_nonnull(clear_ssls[0] = cssl = SSL_new(pclient));
    ck_assert_ptr_nonnull(clear_ssls[1] = sssl = SSL_new(legacy_server));
    ck_assert_int_eq(SSL_set_session(cssl, clear_sess), 1);
    ck_assert_int_eq(hs_connect(cssl, sssl), 1);
    ck_assert_uint_eq(hs_counter(pclient, EMSGUARD_CNT_REFUSED_NO_EMS), 1);
    ck_assert_int_eq(SSL_shutdown(sssl), 0); /* the peer ends the first one */
    ck_assert_int_eq(SSL_read(cssl, &byte, 1), 0);
    ck_assert_int_eq(SSL_clear(cssl), 1);
    ck_assert_int_eq(SSL_set_session(cssl, NULL), 1);
    ck_assert_ptr_nonnull(clear_ssls[2] = sssl2 = SSL_new(ems_server));
    ck_assert_int_eq(hs_connect(cssl, sssl2), 1);
    ck_assert_uint_eq(hs_counter(pclient, EMSGUARD_CNT_REFUSED_NO_EMS), 1);
    ck_assert_int_eq(SSL_shutdown(sssl2), 0); /* and the second */
    ck_assert_int_eq(SSL_read(cssl, &byte, 1), 0);
}

static void free_cleared(void)
{
    size_t i;

    for (i = 0; i < 3; i++)
        SSL_free(clear_ssls[i]);
    SSL_SESSION_free(clear_sess);
    for (i = 0; i < 4; i++)
        SSL_CTX_free(clear_ctxs[i]);
}

START_TEST(test_session_reuse_watch_ends_with_ssl_clear)
{
    const char *out = hs_capture_stderr(withhold_end_clear_and_reconnect), *first;

    ck_assert_ptr_nonnull(out);
    ck_assert_msg((first = strstr(out, reuse_diagnosis)) != NULL,
        "no diagnosis when the next connection started: %s", out);
    ck_assert_msg(strstr(first + 1, reuse_diagnosis) == NULL, "two diagnoses: %s", out);
    out = hs_capture_stderr(free_cleared);
    ck_assert_ptr_nonnull(out);
    ck_assert_msg(strstr(out, reuse_diagnosis) == NULL, "diagnosis for the second connection: %s", out);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static Suite *handshake_suite(void)
{
    Suite *s = suite_create("emsguard-handshake");
    TCase *tc;

    tc = tcase_create("server-table");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_server_nonems_session_ems_hello, 0, HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_server_nonems_session_nonems_hello, 0, HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_server_ems_session_nonems_hello, 0, HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_server_ems_session_ems_hello, 0, HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_fleet_shared_keys, HS_MECH_EXT_CACHE, HS_MECH_COUNT);
    suite_add_tcase(s, tc);

    tc = tcase_create("client-table");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_client_does_not_offer_nonems, 0, HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_client_offers_ems, 0, HS_MECH_COUNT);
    tcase_add_test(tc, test_client_inconsistent_resumption_aborts);
    suite_add_tcase(s, tc);

    tc = tcase_create("tls13-and-toggles");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_tls13_unaffected, 0, HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_disable_server_ems, 0, HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_disable_server_ems_live_flip, HS_MECH_EXT_CACHE, HS_MECH_COUNT);
    tcase_add_loop_test(tc, test_disable_client_ems, 0, HS_MECH_COUNT);
    tcase_add_test(tc, test_allow_legacy_resumption);
    suite_add_tcase(s, tc);

    tc = tcase_create("callbacks-and-enable");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_chain_callbacks_set_before);
    tcase_add_test(tc, test_chain_callbacks_set_after);
    tcase_add_test(tc, test_per_ssl_info_callback_survives_dup);
    tcase_add_test(tc, test_more_open_connections_than_slots);
    tcase_add_test(tc, test_more_policy_ctxs_than_slots);
    tcase_add_test(tc, test_freed_connection_leaves_no_state);
    tcase_add_test(tc, test_ssl_clear_starts_a_new_connection);
    tcase_add_test(tc, test_chain_ticket_callbacks);
    tcase_add_test(tc, test_setters_need_policy);
    tcase_add_test(tc, test_enable_twice);
    tcase_add_test(tc, test_enable_flushes_internal_cache);
    tcase_add_test(tc, test_bypass_is_detected);
    tcase_add_test(tc, test_require_bypass_refused_at_end);
    tcase_add_test(tc, test_session_ems_memo_agrees);
    tcase_add_test(tc, test_session_ems_memo_not_poisoned);
    suite_add_tcase(s, tc);

    tc = tcase_create("counters-and-log");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_counters_exact);
    tcase_add_test(tc, test_counter_arguments);
    tcase_add_test(tc, test_log_lines);
    tcase_add_test(tc, test_log_filtered_by_event_logging);
    tcase_add_test(tc, test_session_reuse_diagnosis_needs_peer_close);
    tcase_add_test(tc, test_session_reuse_diagnosis_on_eof_and_chains);
    tcase_add_test(tc, test_session_reuse_watch_ends_with_ssl_clear);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return hs_run_suite(handshake_suite);
}
