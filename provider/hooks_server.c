/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server's session paths: the external cache (get- and new-session
 * callbacks), tickets (decrypt and generate callbacks), keeping a refused
 * new session out of the internal cache (a not-resumable callback set from
 * the ClientHello callback), and, at handshake end, a handshake another
 * SSL_CTX decided before an SNI switch.  A refused session becomes a cache
 * miss, i.e. a full handshake without an alert; the verdict itself is
 * emsguard_resumption_verdict() (policy.c).
 */
#include <stdatomic.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include "hooks.h"

/* The calls into the application's session callbacks (see struct app_call). */
static _Thread_local struct {
    const struct app_call *new_session, *get_session;
} in_app_cb;

/* ---- the decision, shared by every server-side path --------------------- */

/*
 * Whether the session this handshake creates, if it does not resume, may be
 * resumed later: it gets EMS when this role uses it and the ClientHello
 * offered it.
 */
static int new_session_allowed(struct eg_ctx_state *st, SSL *ssl)
{
    int ems = emsguard_role_uses_ems(&st->policy, EG_ROLE_SERVER)
        && (SSL_get_options(ssl) & SSL_OP_NO_EXTENDED_MASTER_SECRET) == 0
        && hello_has_ems(ssl);

    return emsguard_resumption_verdict(&st->policy, EG_ROLE_SERVER, ems) == EG_ALLOW;
}

/*
 * Server: may a remembered "EMS" for a session's master secret stand in for
 * the session's own flag?  Only where acting on it cannot resume a session
 * whose flag lacks EMS: when libssl itself refuses such a session because
 * the ClientHello has EMS and this server did not switch it off
 * (extensions_srvr.c tls_parse_ctos_ems sets TLS1_FLAGS_RECEIVED_EXTMS, then
 * ssl_sess.c ssl_get_prev_session gives a flag-0 session a full handshake),
 * or when the policy refuses EMS sessions anyway.  A ClientHello without EMS
 * and a copy with its flag cleared would resume without EMS: its flag is
 * read instead (the legacy client's path, which is refused anyway).
 */
static int memo_ems_answer_safe(struct eg_ctx_state *st, SSL *ssl, const struct eg_conn *conn)
{
    return (hello_ems_of(ssl, conn)
               && (SSL_get_options(ssl) & SSL_OP_NO_EXTENDED_MASTER_SECRET) == 0)
        || emsguard_resumption_verdict(&st->policy, EG_ROLE_SERVER, 1) != EG_ALLOW;
}

/*
 * A ticket or external-cache session may come from another fleet member
 * (shared ticket keys, a shared cache) or from before a policy change:
 * libssl resumes a TLS <= 1.2 one with its own suite and version and its
 * own timeout, which the Schannel values (Ciphers, Protocols,
 * ServerCacheTime) never saw.  The internal cache only holds sessions this
 * server made under the hold.  Only for policies with Schannel values.
 */
static int schannel_session_fits(struct eg_ctx_state *st, SSL *ssl,
    const SSL_SESSION *sess, const char *via)
{
    if (is_tls13_session(sess) ? emsguard_schannel_hold_session_fresh(&st->hold, sess)
                               : emsguard_schannel_hold_session_ok(&st->hold, ssl, sess))
        return 1;
    count(st, EMSGUARD_CNT_REFUSED_SCHANNEL);
    eg_log_event(st, ssl, EG_LEVEL_WARNING, "refused resumption, full handshake instead:",
        "reason=schannel (cipher/protocol/age outside the policy)", via);
    return 0;
}

/* Returns 1 if the server may try to resume |sess|, 0 if it must not. */
static int server_may_resume(struct eg_ctx_state *st, SSL *ssl,
    const SSL_SESSION *sess, const char *via)
{
    int ems;
    eg_verdict v;
    uint64_t fp;
    struct eg_conn *conn;

    if (is_tls13_session(sess))
        return 1;
    conn = eg_conn_need(ssl);
    ems = emsguard_session_ems_lookup(sess, memo_ems_answer_safe(st, ssl, conn), &fp);
    v = emsguard_resumption_verdict(&st->policy, EG_ROLE_SERVER, ems);
    if (v != EG_ALLOW) {
        count_refusal(st, v);
        eg_log_event(st, ssl, EG_LEVEL_WARNING,
            "refused resumption, full handshake instead:", eg_reason_text(v), via);
        return 0;
    }
    if (st->hold.active && !schannel_session_fits(st, ssl, sess, via))
        return 0;
    /*
     * An EMS session in a ClientHello without EMS: libssl aborts with
     * handshake_failure, as RFC 7627 requires.  It is counted when the alert
     * goes out (on_alert_sent), which also covers the internal cache, where
     * no callback sees the session; here we only note where it came from.
     */
    if (conn != NULL) {
        conn->flags |= strcmp(via, "ticket") == 0 ? CONN_VIA_TICKET : CONN_VIA_EXTERNAL;
        /* Handshake end notes the session's EMS bit with this fingerprint. */
        conn->fp_sess = sess;
        conn->fp = fp;
    }
    return 1;
}

/* ---- callbacks ---------------------------------------------------------- */

int eg_new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct eg_ctx_state *st;

    /* The application's callback calling emsguard's: as if none were set. */
    if (is_call_back(in_app_cb.new_session, ssl, sess, 0, 0, 0))
        return 0; /* libssl keeps no reference for the application */
    if ((st = state_of_ssl(ssl)) == NULL)
        return 0;
    if (SSL_is_server(ssl) && !is_tls13_session(sess)) {
        int ems = emsguard_session_ems(sess);
        eg_verdict v = emsguard_resumption_verdict(&st->policy, EG_ROLE_SERVER, ems);

        if (v != EG_ALLOW) {
            /* Also marks the session not resumable, cached or not. */
            SSL_CTX_remove_session(st->ctx, sess);
            count(st, EMSGUARD_CNT_SESSIONS_NOT_CACHED);
            eg_log_event(st, ssl, EG_LEVEL_INFO, "session not cached:",
                eg_reason_text(v), "session-cache");
            return 0;
        }
    }
    if (st->hold.server_lifetime > 0 && SSL_is_server(ssl))
        eg_hold_session_lifetime(st, sess);
    {
        new_session_fn app_cb = atomic_load(&st->app_new_cb);
        struct app_call call = { ssl, sess, 0, 0, 0 };
        const struct app_call *outer = in_app_cb.new_session;
        int kept;

        if (app_cb == NULL)
            return 0;
        in_app_cb.new_session = &call;
        kept = app_cb(ssl, sess);
        in_app_cb.new_session = outer;
        return kept;
    }
}

/*
 * A session ID context no connection has: 16 random bytes per process and a
 * serial number, unique per refused session.
 */
static CRYPTO_ONCE isolation_once = CRYPTO_ONCE_STATIC_INIT;
static unsigned char isolation_prefix[16];
static _Atomic uint64_t isolation_serial;

static void init_isolation_prefix(void)
{
    /* Without randomness the serial alone still tells sessions apart. */
    if (RAND_bytes(isolation_prefix, sizeof(isolation_prefix)) != 1)
        memcpy(isolation_prefix, "emsguard-refused", sizeof(isolation_prefix));
}

static void isolate_session(SSL_SESSION *sess)
{
    unsigned char id[sizeof(isolation_prefix) + sizeof(uint64_t)];
    uint64_t n = atomic_fetch_add_explicit(&isolation_serial, 1, memory_order_relaxed);

    CRYPTO_THREAD_run_once(&isolation_once, init_isolation_prefix);
    memcpy(id, isolation_prefix, sizeof(isolation_prefix));
    memcpy(id + sizeof(isolation_prefix), &n, sizeof(n));
    SSL_SESSION_set1_id_context(sess, id, sizeof(id)); /* <= SSL_MAX_SID_CTX_LENGTH */
}

/*
 * libssl's per-SSL "not resumable" callback, installed by
 * eg_isolate_refused_new_session() and asked in tls_post_process_client_hello
 * once the cipher of a new TLS <= 1.2 session is chosen: before the
 * ServerHello, any ticket and ssl_update_cache.  Returning 1 marks the
 * session not resumable: libssl then never caches it, calls no new-session
 * callback for it and sends no ticket.  Its own session ID context makes it
 * a miss for every other connection (ssl_get_prev_session compares it) even
 * if an application adds it to a cache itself.
 */
static int refuse_new_session_cb(SSL *ssl, int is_forward_secure)
{
    struct eg_conn *conn = conn_of(ssl);
    SSL_SESSION *sess = SSL_get_session(ssl);

    (void)is_forward_secure;
    /* A later handshake of the SSL may allow its session; no record: refuse. */
    if (sess == NULL || SSL_version(ssl) == TLS1_3_VERSION
        || (conn != NULL && (conn->flags & CONN_ISOLATE_NEW) == 0))
        return 0;
    isolate_session(sess);
    return 1; /* counted when the handshake completes: count_isolated_session */
}

/*
 * Handshake end of a session refuse_new_session_cb kept out of the cache:
 * counted and logged as eg_new_session_cb did, on a server that caches.
 */
static void count_isolated_session(SSL *ssl, struct eg_conn *conn)
{
    struct eg_ctx_state *st = state_of_ssl(ssl);

    conn->flags &= ~(uintptr_t)CONN_ISOLATE_NEW;
    if (st == NULL || SSL_session_reused(ssl) || SSL_version(ssl) == TLS1_3_VERSION
        || (SSL_CTX_get_session_cache_mode(st->ctx) & SSL_SESS_CACHE_SERVER) == 0)
        return;
    count(st, EMSGUARD_CNT_SESSIONS_NOT_CACHED);
    eg_log_event(st, ssl, EG_LEVEL_INFO, "session not cached:",
        eg_reason_text(EG_REFUSE_NO_EMS), "session-cache");
}

/*
 * Server, from the ClientHello callback: the session this handshake makes
 * if it does not resume lacks EMS and the policy refuses it.  libssl would
 * put it into the internal cache before eg_new_session_cb can take it out
 * again (ssl_update_cache: SSL_CTX_add_session, then the callback), and a
 * connection looking it up in between resumed it (F10).  So libssl is asked
 * to mark it not resumable as soon as it exists (refuse_new_session_cb).
 * The SSL's own session ID context is left alone: an EMS session offered in
 * a ClientHello without EMS must still abort (RFC 7627), not miss.
 * The callback replaces a not-resumable callback the application set, for
 * this SSL (OpenSSL has no getter to chain it); it answers "resumable" for
 * a later handshake of the SSL whose session the policy allows.
 */
void eg_isolate_refused_new_session(struct eg_ctx_state *st, SSL *ssl,
    struct eg_conn *conn, int hello_ems)
{
    int ems = hello_ems && emsguard_role_uses_ems(&st->policy, EG_ROLE_SERVER)
        && (SSL_get_options(ssl) & SSL_OP_NO_EXTENDED_MASTER_SECRET) == 0;

    if (emsguard_resumption_verdict(&st->policy, EG_ROLE_SERVER, ems) == EG_ALLOW) {
        if (conn != NULL)
            conn->flags &= ~(uintptr_t)CONN_ISOLATE_NEW;
        return;
    }
    if (conn != NULL)
        conn->flags |= CONN_ISOLATE_NEW;
    SSL_set_not_resumable_session_callback(ssl, refuse_new_session_cb);
}

SSL_SESSION *eg_get_session_cb(SSL *ssl, const unsigned char *id, int idlen,
    int *copy)
{
    struct eg_ctx_state *st;
    get_session_fn app_cb;
    SSL_SESSION *sess;
    struct app_call call = { ssl, id, idlen, 0, 0 };
    const struct app_call *outer = in_app_cb.get_session;

    /* The application's callback calling emsguard's: no cache behind it. */
    if (is_call_back(outer, ssl, id, idlen, 0, 0))
        return NULL;
    st = state_of_ssl(ssl);
    app_cb = st != NULL ? atomic_load(&st->app_get_cb) : NULL;
    /* The policy has no server cache (libssl asks this callback anyway). */
    if (app_cb == NULL || st->hold.server_cache_off)
        return NULL;
    in_app_cb.get_session = &call;
    sess = app_cb(ssl, id, idlen, copy);
    in_app_cb.get_session = outer;
    if (sess == NULL)
        return NULL;
    if (!server_may_resume(st, ssl, sess, "external-cache")) {
        if (!*copy) /* the application handed us its reference */
            SSL_SESSION_free(sess);
        return NULL;
    }
    return sess;
}

/* What libssl does with a ticket when no decrypt callback is set. */
static SSL_TICKET_RETURN default_ticket_return(SSL_TICKET_STATUS status)
{
    switch (status) {
    case SSL_TICKET_SUCCESS:
        return SSL_TICKET_RETURN_USE;
    case SSL_TICKET_SUCCESS_RENEW:
        return SSL_TICKET_RETURN_USE_RENEW;
    default:
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    }
}

SSL_TICKET_RETURN eg_decrypt_ticket_cb(SSL *ssl, SSL_SESSION *sess,
    const unsigned char *keyname, size_t keyname_len, SSL_TICKET_STATUS status,
    void *arg)
{
    struct eg_ctx_state *st = arg;
    SSL_TICKET_RETURN r = st->app_dec_cb != NULL
        ? st->app_dec_cb(ssl, sess, keyname, keyname_len, status, st->app_ticket_arg)
        : default_ticket_return(status);

    if (SSL_version(ssl) == TLS1_3_VERSION) {
        /* A fleet member's ticket may outlive ServerCacheTime: full handshake, new ticket. */
        if ((r == SSL_TICKET_RETURN_USE || r == SSL_TICKET_RETURN_USE_RENEW) && sess != NULL
            && st->hold.server_lifetime > 0 && !schannel_session_fits(st, ssl, sess, "ticket"))
            return SSL_TICKET_RETURN_IGNORE_RENEW;
        return r;
    }
    switch (r) {
    case SSL_TICKET_RETURN_USE:
    case SSL_TICKET_RETURN_USE_RENEW:
        if (sess == NULL || server_may_resume(st, ssl, sess, "ticket"))
            return r;
        /* Refused: full handshake; a new ticket only for a resumable session. */
        r = SSL_TICKET_RETURN_IGNORE_RENEW;
        /* fall through */
    case SSL_TICKET_RETURN_IGNORE_RENEW:
        if (!new_session_allowed(st, ssl)) {
            count(st, EMSGUARD_CNT_TICKETS_WITHHELD);
            eg_log_event(st, ssl, EG_LEVEL_INFO, "ticket withheld:",
                "reason=no-ems (the new session will lack Extended Master Secret)",
                "ticket");
            return SSL_TICKET_RETURN_IGNORE;
        }
        return r;
    default:
        return r;
    }
}

int eg_generate_ticket_cb(SSL *ssl, void *arg)
{
    struct eg_ctx_state *st = arg;

    if (st->hold.server_lifetime > 0 && SSL_get0_session(ssl) != NULL)
        eg_hold_session_lifetime(st, SSL_get0_session(ssl));
    return st->app_gen_cb != NULL ? st->app_gen_cb(ssl, st->app_ticket_arg) : 1;
}

/* ---- handshake end: a handshake another SSL_CTX decided ------------------- */

/* Server: the handshake was decided by the SSL's initial ctx (SNI switch). */
static __attribute__((cold, noinline)) void refuse_connection(struct eg_ctx_state *st,
    SSL *ssl, const char *why)
{
    eg_refuse_completed(st, ssl, EMSGUARD_CNT_REFUSED_SNI_SWITCH, why, "sni-switch",
        "another SSL_CTX (the SSL's initial one, before the SNI switch) accepted a "
        "handshake this SSL_CTX's emsguard policy refuses; enable emsguard on the "
        "initial SSL_CTX");
}

/*
 * Server, a TLS <= 1.2 handshake that ends on this ctx but was decided by
 * another: libssl looks the session up (cache, tickets, external cache) in
 * the SSL's initial ctx and runs that ctx's ClientHello callback, both
 * before the servername callback can move the connection here.  If that
 * ctx has no policy, or a weaker one, the handshake may be one this ctx's
 * policy refuses: a resumed session without EMS, or (RequireEMS=1) a full
 * handshake without it.  Then the connection is refused.
 * The EMS bit comes from the ClientHello when our ClientHello callback saw
 * this handshake (a switch between two enabled ctxs, the usual SNI setup
 * under the preload): libssl resumes only a session that agrees with the
 * hello.  Otherwise it is read from the session (memo or DER encoding).
 */
static __attribute__((noinline)) void check_handshake_from_other_ctx(struct eg_ctx_state *st,
    SSL *ssl, const struct eg_conn *conn)
{
    SSL_SESSION *sess = SSL_get_session(ssl);
    int resumed = SSL_session_reused(ssl), ems;
    eg_verdict v;

    if (sess == NULL || SSL_version(ssl) == TLS1_3_VERSION)
        return;
    if (!resumed && !emsguard_policy_requires_ems(&st->policy, EG_ROLE_SERVER))
        return;
    if (conn != NULL && (conn->flags & (CONN_IN_HANDSHAKE | CONN_HELLO_SEEN))
            == (CONN_IN_HANDSHAKE | CONN_HELLO_SEEN))
        ems = (conn->flags & CONN_HELLO_EMS) != 0
            && (SSL_get_options(ssl) & SSL_OP_NO_EXTENDED_MASTER_SECRET) == 0;
    else
        ems = emsguard_session_ems(sess);
    if (resumed) {
        if ((v = emsguard_resumption_verdict(&st->policy, EG_ROLE_SERVER, ems)) == EG_ALLOW)
            return;
        refuse_connection(st, ssl,
            v == EG_REFUSE_NO_EMS
                ? "reason=sni-switch (the SSL's initial SSL_CTX resumed a session without "
                  "Extended Master Secret; enable emsguard on that SSL_CTX)"
                : v == EG_REFUSE_EMS_DISABLED
                ? "reason=sni-switch (the SSL's initial SSL_CTX resumed a session with "
                  "Extended Master Secret, this role has it disabled)"
                : "reason=sni-switch (the SSL's initial SSL_CTX resumed a session whose "
                  "flags could not be read)");
    } else if (ems != 1) {
        refuse_connection(st, ssl,
            "reason=sni-switch (the SSL's initial SSL_CTX accepted a handshake without "
            "Extended Master Secret, RequireExtendedMasterSecret=1)");
    }
}

/*
 * Server, handshake done, before on_handshake_done(): the cache side of the
 * handshake.  The common case (the handshake started on this ctx: its
 * ClientHello and session callbacks decided) costs a record lookup and a
 * few flag tests.  Otherwise another ctx decided: an SNI switch into this
 * ctx (our info callback saw no handshake start, or one on another ctx).
 */
void eg_server_session_at_done(struct eg_ctx_state *st, SSL *ssl)
{
    struct eg_conn *conn;

    if (!SSL_is_server(ssl))
        return;
    if ((conn = conn_of(ssl)) != NULL) {
        if (conn->flags & CONN_ISOLATE_NEW)
            count_isolated_session(ssl, conn);
        if ((conn->flags & CONN_IN_HANDSHAKE) && (conn->st == NULL || conn->st == st))
            return;
    }
    check_handshake_from_other_ctx(st, ssl, conn);
}
