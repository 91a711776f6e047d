/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client role at handshake start, before the ClientHello is written:
 * which session it may offer (ClientCacheTime, the resumption verdict, a
 * renegotiation's session, RequireExtendedMasterSecret=1), and a session
 * ID context of its own on an SSL_CTX that can also serve.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <openssl/ssl.h>
#include "hooks.h"

/* ClientCacheTime: is |sess| older than the client may reuse? */
static int client_cache_expired(const struct eg_ctx_state *st, const SSL_SESSION *sess)
{
    uint32_t ms;
    time_t now, born;

    if (!st->policy.set[EG_KEY_CLIENT_CACHE_TIME])
        return 0;
    now = time(NULL);
    born = emsguard_session_time(sess);
    ms = st->policy.values[EG_KEY_CLIENT_CACHE_TIME];
    return ms == 0 || now < born || (uint64_t)(now - born) * 1000 >= ms;
}

/* Client: drop a session the policy forbids offering, before ClientHello. */
void eg_filter_offered_session(struct eg_ctx_state *st, SSL *ssl,
    struct eg_conn *conn)
{
    SSL_SESSION *sess = SSL_get_session(ssl);
    eg_verdict v;
    int ems;

    if (sess == NULL || !SSL_in_before(ssl) || !SSL_SESSION_is_resumable(sess))
        return;
    if (client_cache_expired(st, sess)) {
        eg_log_event(st, ssl, EG_LEVEL_INFO, "did not offer session:",
            "reason=client-cache-time (older than ClientCacheTime)", "set-session");
        SSL_set_session(ssl, NULL);
        return;
    }
    if (is_tls13_session(sess))
        return;
    /* The session's own flag: nothing stops a flag-0 copy at a legacy server. */
    ems = emsguard_session_ems_offered(sess);
    v = emsguard_resumption_verdict(&st->policy, EG_ROLE_CLIENT, ems);
    if (v == EG_ALLOW) {
        if (conn != NULL)
            conn->flags |= CONN_OFFER_READ | (ems == 1 ? CONN_OFFER_EMS : 0);
        return;
    }
    count_refusal(st, v);
    eg_log_event(st, ssl, EG_LEVEL_WARNING,
        "did not offer session, full handshake instead:", eg_reason_text(v),
        "set-session");
    SSL_set_session(ssl, NULL);
    if (v == EG_REFUSE_NO_EMS && conn != NULL)
        conn->flags |= CONN_WITHHELD;
}

/*
 * Client, renegotiation of a connection: libssl offers its current session
 * again (statem_clnt.c tls_construct_client_hello keeps s->session while
 * SSL_SESSION_is_resumable()), on the application's
 * SSL_renegotiate_abbreviated() and on a HelloRequest, which a TLS client
 * answers that way (tls_process_hello_req).  This runs at
 * SSL_CB_HANDSHAKE_START, before the ClientHello is built; for a HelloRequest
 * even before it is read, which is fine: after a TLS <= 1.2 handshake a
 * server has no other handshake message to send.
 *
 * A live connection's session cannot be swapped (SSL_set_session() resets
 * the method), so it is made not resumable: SSL_CTX_remove_session() marks
 * any session with an ID, and libssl then starts a new session with neither
 * ID nor ticket.  A session with a ticket but no ID (only an application
 * makes one: libssl names every ticket session by the ticket's SHA-256)
 * stays resumable; it gets a protocol version no connection has, which also
 * makes libssl start a new session.  (Keeping only its ticket off the wire
 * would not do: libssl would then reuse the very session object for the new
 * handshake, overwriting what the application holds.)
 */
void eg_withhold_session_at_renegotiation(struct eg_ctx_state *st, SSL *ssl,
    struct eg_conn *conn)
{
    SSL_SESSION *sess = SSL_get_session(ssl);
    eg_verdict v;
    int ems;

    /* SSL_OP_NO_RENEGOTIATION: libssl refuses either trigger. */
    if (SSL_in_before(ssl) || sess == NULL || !SSL_SESSION_is_resumable(sess)
        || is_tls13_session(sess)
        || (SSL_get_options(ssl) & SSL_OP_NO_RENEGOTIATION) != 0)
        return;
    ems = emsguard_session_ems_offered(sess);
    v = emsguard_resumption_verdict(&st->policy, EG_ROLE_CLIENT, ems);
    if (v == EG_ALLOW) {
        if (conn != NULL)
            conn->flags |= CONN_OFFER_READ | (ems == 1 ? CONN_OFFER_EMS : 0);
        return;
    }
    SSL_CTX_remove_session(st->ctx, sess);
    if (SSL_SESSION_is_resumable(sess))
        SSL_SESSION_set_protocol_version(sess, 0);
    count_refusal(st, v);
    eg_log_event(st, ssl, EG_LEVEL_WARNING,
        "did not offer session at renegotiation, full handshake instead:",
        eg_reason_text(v), "renegotiation");
}

/*
 * The session ID context of every client connection on an SSL_CTX that can
 * also be a server: 32 bytes (the maximum) no server connection is given.
 */
static const unsigned char client_role_sid_ctx[SSL_MAX_SID_CTX_LENGTH] =
    "emsguard client-role session ID";

/*
 * Client, on an SSL_CTX that can also be a server (TLS_method, as a relay
 * uses): with SSL_SESS_CACHE_BOTH the sessions this role gets from its peers
 * land in the internal cache the server role resumes from (ssl_update_cache),
 * and their IDs are on the wire (or are the SHA-256 of a ticket that is).
 * libssl resumes only a session whose session ID context is the server
 * connection's (ssl_sess.c ssl_get_prev_session: a mismatch is a cache miss),
 * so a context of their own, set before libssl creates the session, makes
 * every client-role session a miss for the server role: no window, and any
 * cache the two roles share (an application's too).
 *
 * The client in turn fails a resumption of a session whose context is not
 * the connection's (statem_clnt.c tls_process_server_hello), so a session
 * from before the policy, or from another SSL_CTX, is not offered: one full
 * handshake instead of a failed one.
 */
void eg_keep_client_sessions_from_server_role(struct eg_ctx_state *st, SSL *ssl)
{
    const unsigned char *sid_ctx;
    unsigned int sid_ctx_len;
    SSL_SESSION *sess;
    int server, client;

    ctx_roles(SSL_get_SSL_CTX(ssl), &server, &client);
    if (!server)
        return;
    /* Cannot fail: libssl refuses only a context longer than 32 bytes. */
    if (!SSL_set_session_id_context(ssl, client_role_sid_ctx, sizeof(client_role_sid_ctx)))
        emsguard_log(&st->policy, EG_LEVEL_ERROR,
            "client: cannot set the client-role session ID context; this "
            "connection's session may be resumable by the server role");
    if (!SSL_in_before(ssl) || (sess = SSL_get_session(ssl)) == NULL
        || !SSL_SESSION_is_resumable(sess))
        return;
    sid_ctx = SSL_SESSION_get0_id_context(sess, &sid_ctx_len);
    if (sid_ctx_len == sizeof(client_role_sid_ctx)
        && memcmp(sid_ctx, client_role_sid_ctx, sid_ctx_len) == 0)
        return;
    eg_log_event(st, ssl, EG_LEVEL_INFO, "did not offer session, full handshake instead:",
        "reason=other-context (session from before the policy or from another "
        "SSL_CTX; this SSL_CTX's client sessions have their own session ID context)",
        "set-session");
    SSL_set_session(ssl, NULL);
}

/*
 * Client, Require=1, at handshake start: what the check at the
 * ServerKeyExchange cannot see.
 *  - The check lives in the SSL's security callback.  One replaced after
 *    EMSGUARD_enable() (SSL_CTX_set_security_callback(),
 *    SSL_set_security_callback()), or an SSL made before it, never runs the
 *    check: the connection is held to TLS 1.3 (EMS in its key schedule),
 *    with an error line, rather than let TLS <= 1.2 through unchecked.
 *    (A renegotiation keeps its version: its first handshake was held.)
 *  - A resumption has no ServerKeyExchange, and libssl resumes a session
 *    without EMS without EMS.  The offer filters already keep such a
 *    session back unless AllowLegacyResumption=1; with Require=1 it is kept
 *    back anyway, as the server role rejects any ClientHello without EMS.
 */
void eg_require_ems_at_handshake_start(struct eg_ctx_state *st, SSL *ssl,
    struct eg_conn *conn)
{
    SSL_SESSION *sess;
    int ems, requires = 0;

    if (!client_role_requires_ems(&st->policy))
        return;
    if (!eg_is_our_security_cb(SSL_get_security_callback(ssl), &requires) || !requires) {
        SSL_set_options(ssl, SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1
                | SSL_OP_NO_TLSv1_2 | SSL_OP_NO_DTLSv1 | SSL_OP_NO_DTLSv1_2);
        eg_log_event(st, ssl, EG_LEVEL_ERROR, "TLS 1.3 only for this connection:",
            "reason=ems-required (the SSL's security callback is not emsguard's: set "
            "after EMSGUARD_enable() or on an SSL made before it, so "
            "RequireExtendedMasterSecret=1 cannot be checked for TLS <= 1.2)",
            "security-callback");
        return;
    }
    /* The client role uses EMS here: the verdict allows a non-EMS session
     * only when legacy resumption is allowed. */
    if (emsguard_resumption_verdict(&st->policy, EG_ROLE_CLIENT, 0) != EG_ALLOW
        || (sess = SSL_get_session(ssl)) == NULL || !SSL_SESSION_is_resumable(sess)
        || is_tls13_session(sess))
        return;
    /* The session's own flag; the peer memo the offer filter filled makes it cheap. */
    ems = emsguard_session_ems(sess);
    if (ems == 1)
        return;
    count(st, EMSGUARD_CNT_REFUSED_NO_EMS);
    eg_log_event(st, ssl, EG_LEVEL_WARNING, "did not offer session, full handshake instead:",
        "reason=ems-required (session without Extended Master Secret; "
        "RequireExtendedMasterSecret=1 overrides AllowLegacyResumption=1)",
        SSL_in_before(ssl) ? "set-session" : "renegotiation");
    if (conn != NULL)
        conn->flags &= ~(uintptr_t)(CONN_OFFER_READ | CONN_OFFER_EMS);
    if (SSL_in_before(ssl)) {
        SSL_set_session(ssl, NULL);
        return;
    }
    /* A live connection's session: see eg_withhold_session_at_renegotiation(). */
    SSL_CTX_remove_session(st->ctx, sess);
    if (SSL_SESSION_is_resumable(sess))
        SSL_SESSION_set_protocol_version(sess, 0);
}
