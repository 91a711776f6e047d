/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The info callback and the bookkeeping of each handshake it drives: at
 * handshake start, the per-connection policy (Disable toggles, held
 * Schannel values, the client's offer); at handshake done, the session's
 * EMS bit noted, the counters, and a handshake that got past the other
 * hooks refused (refuse_completed); on a fatal alert, the aborts to count.
 * The CONN_* flags these share with the other hooks are tabled in hooks.h.
 * info_cb() is on every state change of every handshake and stays a tiny
 * filter in front of info_event().
 */
#include <stdatomic.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include "hooks.h"

/* The call into the application's info callback (see struct app_call). */
static _Thread_local struct {
    const struct app_call *info;
} in_app_cb;

/*
 * Set once any application info callback is chained through emsguard.
 * libssl reports every state change (a dozen per handshake and side); until
 * then, the ones emsguard ignores return at once.
 */
static atomic_int app_info_cb_seen;

void eg_note_app_info_cb(info_fn cb)
{
    if (cb != NULL)
        atomic_store_explicit(&app_info_cb_seen, 1, memory_order_relaxed);
}

static void settle_ems_at_exit(struct eg_ctx_state *st, SSL *ssl, struct eg_conn *conn);

static void on_handshake_start(struct eg_ctx_state *st, SSL *ssl)
{
    eg_role role = SSL_is_server(ssl) ? EG_ROLE_SERVER : EG_ROLE_CLIENT;
    struct eg_conn *conn = eg_conn_need(ssl);

    eg_unblock_writes_of_new_connection(ssl);
    /*
     * Forget the last handshake, but not that the connection had one --
     * unless this is a new connection on an SSL that SSL_clear() reset.
     * Without a record (out of memory) the policy still applies below; only
     * counting and logging lose track of this handshake.
     */
    if (conn != NULL) {
        /* The last handshake's call never returned through its exit. */
        if (conn->flags & CONN_EMS_AT_EXIT)
            settle_ems_at_exit(st, ssl, conn);
        conn->flags = CONN_IN_HANDSHAKE
            | (SSL_in_before(ssl) ? 0 : conn->flags & (CONN_KEPT | CONN_PREV_HELLO_EMS));
        conn->fp_sess = NULL;
        if (conn->st == NULL)
            keep_state(conn, st);
    }
    if (st->hold.active)
        eg_hold_schannel_settings(st, ssl, role);
    if (!emsguard_role_uses_ems(&st->policy, role))
        SSL_set_options(ssl, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    if (role == EG_ROLE_CLIENT) {
        if (SSL_in_before(ssl))
            emsguard_reuse_end(ssl);
        eg_keep_client_sessions_from_server_role(st, ssl);
        eg_filter_offered_session(st, ssl, conn);
        eg_withhold_session_at_renegotiation(st, ssl, conn);
        /* The knowledge base's advice: a client without EMS drops DHE. */
        if (emsguard_policy_drops_dhe(&st->policy, EG_ROLE_CLIENT,
                (SSL_get_options(ssl) & SSL_OP_NO_EXTENDED_MASTER_SECRET) != 0))
            eg_drop_dhe(ssl);
        eg_require_ems_at_handshake_start(st, ssl, conn);
    }
}

/*
 * The EMS bit of the session a TLS <= 1.2 handshake ended with; *fp gets
 * the session's fingerprint when this had to compute it, else 0.
 */
static int session_ems_at_end(SSL *ssl, const struct eg_conn *conn, const SSL_SESSION *sess,
    uintptr_t flags, int server, int resumed, uint64_t *fp)
{
    *fp = 0;
    if (server && (flags & CONN_HELLO_SEEN))
        return (flags & CONN_HELLO_EMS)
            && (SSL_get_options(ssl) & SSL_OP_NO_EXTENDED_MASTER_SECRET) == 0;
    if (!server && (flags & CONN_OFFER_READ) && resumed)
        return (flags & CONN_OFFER_EMS) != 0;
    /* Read at the ServerKeyExchange (Require=1), from this very session. */
    if (!server && !resumed && (flags & CONN_SKE_READ) && conn->fp_sess == sess)
        return (flags & CONN_SKE_EMS) != 0;
    /* A new session, or one no callback of ours looked at: its encoding. */
    return server ? emsguard_session_ems_fp(sess, fp) : emsguard_session_ems(sess);
}

/*
 * The session's later offers and tickets are then answered cheaply.  What is
 * noted is only what libssl established or checked:
 *  - a full handshake derived a new master secret, with EMS exactly when
 *    the session's flag says so: both memos;
 *  - a resumption: libssl completed it only because the session's flag
 *    matched the ClientHello (server, ssl_get_prev_session) or the server's
 *    echo (client, final_ems) -- a fact about this session object, not
 *    about how its secret was derived, which a copy with a changed flag
 *    shares.  So the client notes its session object, and the server only
 *    puts back an "EMS" its memo lost (a copy with the flag cleared never
 *    turns a genuine EMS session's secret into "non-EMS").
 */
static void note_session_ems(const struct eg_conn *conn, const SSL_SESSION *sess,
    uintptr_t flags, int server, int resumed, uint64_t fp, int ems)
{
    /*
     * A client notes its session object only: the secret memo answers the
     * server role, which in a real process never holds the master secret
     * of a session this process made as the client.  (One keyed hash of the
     * master secret less per full handshake.)
     */
    if (!server) {
        emsguard_session_ems_note_peer(sess, ems);
        return;
    }
    if (resumed) {
        /*
         * Server, resumed from the internal cache: no callback of ours ever
         * looks that session up (the cache only holds sessions the policy
         * allows), so there is nothing to speed up.
         */
        if ((flags & (CONN_VIA_TICKET | CONN_VIA_EXTERNAL)) == 0)
            return;
        /*
         * A resumed handshake ends with the very session it looked up in the
         * ticket or application cache: libssl never swaps the session of a
         * resumption.
         */
        if (fp == 0 && conn->fp_sess == sess)
            fp = conn->fp;
        emsguard_session_ems_note_resumed(sess, fp, ems);
        return;
    }
    /* A full handshake's session is new, even if it sits where a refused one was. */
    if (fp != 0)
        emsguard_session_ems_note_fp(fp, ems);
    else
        emsguard_session_ems_note(sess, ems);
}

/*
 * A client's full handshake, whose role does not require EMS (so nothing
 * is refused on the answer): its new session's EMS bit is only noted and
 * counted, and that can wait until the handshake call returns.  At "done"
 * libssl is still in its state machine and SSL_get_extms_support() says -1,
 * so the bit would have to come from the session's DER encoding (about
 * 30,000 instructions, 0.5 % of a full handshake); at the
 * SSL_CB_CONNECT_EXIT right after, it reads the session's own flag.
 */
static int ems_can_wait_for_exit(const struct eg_ctx_state *st, uintptr_t flags, int server,
    int resumed)
{
    return !server && !resumed && (flags & CONN_SKE_READ) == 0
        && !client_role_requires_ems(&st->policy);
}

/*
 * The deferred part of on_handshake_done (CONN_EMS_AT_EXIT): at the exit
 * that follows "done", or at the next handshake start if that exit never
 * came (then only while the SSL still holds the same session, read from
 * its encoding).
 */
static void settle_ems_at_exit(struct eg_ctx_state *st, SSL *ssl, struct eg_conn *conn)
{
    const SSL_SESSION *sess = ems_exit_take(conn, ssl);
    int ems;

    if (sess == NULL)
        return;
    if ((ems = SSL_get_extms_support(ssl)) < 0)
        ems = emsguard_session_ems(sess);
    note_session_ems(conn, sess, conn->flags, 0, 0, 0, ems);
    if (ems == 0)
        count(st, EMSGUARD_CNT_FULL_WITHOUT_EMS);
}

/*
 * RequireExtendedMasterSecret=1 covers this role, yet a TLS <= 1.2 handshake
 * without EMS got to its end: the ClientHello (server) or ServerKeyExchange
 * (client) check was bypassed, so the connection must not be used.
 */
static int require_ems_missed(const struct eg_ctx_state *st, int server)
{
    return emsguard_policy_requires_ems(&st->policy, server ? EG_ROLE_SERVER : EG_ROLE_CLIENT);
}

static void on_handshake_done(struct eg_ctx_state *st, SSL *ssl)
{
    struct eg_conn *conn = conn_of(ssl);
    uintptr_t flags = conn != NULL ? conn->flags : 0;
    SSL_SESSION *sess = SSL_get_session(ssl);
    int tls13 = SSL_version(ssl) == TLS1_3_VERSION;
    int server = SSL_is_server(ssl), resumed;
    int ems;

    /*
     * TLS 1.3 post-handshake messages report "done" without a start; and
     * without a record (out of memory at the start) there is nothing to end.
     */
    if ((flags & CONN_IN_HANDSHAKE) == 0)
        return;
    if (flags & CONN_PINNED_TLS13)
        eg_unpin_tls13(ssl);
    /*
     * A server that only wrote a HelloRequest: libssl reports it as a
     * finished handshake but clears the renegotiate flag only before a real
     * handshake's "done"; the real one is still to come.
     */
    if (server && SSL_renegotiate_pending(ssl))
        return;
    /*
     * A refused renegotiation (no_renegotiation warning) is also reported as
     * done, without a new Finished: only a new Finished is a new handshake.
     */
    {
        unsigned char fin[EVP_MAX_MD_SIZE] = { 0 };
        uintptr_t tag = 0;

        SSL_get_finished(ssl, fin, sizeof(fin));
        memcpy(&tag, fin, sizeof(tag));
        if ((flags & CONN_ESTABLISHED) && tag == conn->finished_tag) {
            conn->flags = flags & ~(uintptr_t)CONN_IN_HANDSHAKE;
            return;
        }
        conn->finished_tag = tag;
    }
    flags &= ~(uintptr_t)(CONN_IN_HANDSHAKE | CONN_KEPT);
    resumed = SSL_session_reused(ssl);
    if (flags & CONN_WITHHELD)
        emsguard_reuse_watch(ssl, st->ctx, &st->policy);
    ems = 1;
    if (sess != NULL && !tls13 && ems_can_wait_for_exit(st, flags, server, resumed)) {
        conn->flags = flags | CONN_ESTABLISHED;
        ems_exit_wait(conn, sess);
        count(st, EMSGUARD_CNT_FULL_HANDSHAKES);
        return;
    }
    if (sess != NULL && !tls13) {
        uint64_t fp;

        ems = session_ems_at_end(ssl, conn, sess, flags, server, resumed, &fp);
        note_session_ems(conn, sess, flags, server, resumed, fp, ems);
    }
    conn->flags = flags | (tls13 ? 0 : CONN_ESTABLISHED);
    if (!resumed) {
        count(st, EMSGUARD_CNT_FULL_HANDSHAKES);
        if (ems == 0) {
            count(st, EMSGUARD_CNT_FULL_WITHOUT_EMS);
            if (!tls13 && require_ems_missed(st, server))
                eg_refuse_completed(st, ssl, EMSGUARD_CNT_POLICY_BYPASSED,
                    "reason=bypass (a TLS <= 1.2 handshake without Extended Master Secret "
                    "completed, RequireExtendedMasterSecret=1)", "unknown",
                    "a TLS <= 1.2 handshake without Extended Master Secret completed "
                    "although RequireExtendedMasterSecret=1 (a callback of emsguard's "
                    "replaced after EMSGUARD_enable()?)");
        }
        return;
    }
    count(st, EMSGUARD_CNT_RESUMPTIONS);
    /* Unreadable here (e.g. out of memory) is not evidence of a bypass. */
    if (!tls13 && ems >= 0
        && emsguard_resumption_verdict(&st->policy,
               server ? EG_ROLE_SERVER : EG_ROLE_CLIENT, ems)
            != EG_ALLOW) {
        /*
         * A path we do not hook (e.g. SSL_CTX_add_session by the app, or a
         * callback of ours replaced by a plain setter): fail closed.
         */
        if (server)
            SSL_CTX_remove_session(st->ctx, sess);
        eg_refuse_completed(st, ssl, EMSGUARD_CNT_POLICY_BYPASSED,
            "reason=bypass (resumed a session the policy forbids; it reached libssl "
            "outside emsguard's hooks)", "unknown",
            "a session the emsguard policy forbids was resumed through a path emsguard "
            "does not hook (SSL_CTX_add_session(), or a callback replaced after "
            "EMSGUARD_enable())");
    }
}

/*
 * Server: libssl has just sent a fatal alert.  If it is the RFC 7627 abort of
 * an EMS session offered without EMS, count and log it.  The reason is on
 * this thread's error queue: SSLfatal() raises it right before the alert.
 */
static void on_alert_sent(struct eg_ctx_state *st, SSL *ssl, int alert)
{
    struct eg_conn *conn = conn_of(ssl);
    uintptr_t flags = conn != NULL ? conn->flags : 0;
    unsigned long err = ERR_peek_last_error();
    const char *via;

    /* The fatal alert ends a pinned handshake: its minimum version is back. */
    if (flags & CONN_PINNED_TLS13)
        eg_unpin_tls13(ssl);
    /*
     * A ClientHello restricted to TLS 1.3 (pin_tls13) that libssl could not
     * answer in TLS 1.3: ssl_choose_server_version() failed, which is the
     * RequireExtendedMasterSecret=1 rejection of a TLS <= 1.2 handshake.
     */
    if ((flags & (CONN_PINNED_TLS13 | CONN_ABORT_REPORTED)) == CONN_PINNED_TLS13
        && (alert & 0xff) == SSL_AD_PROTOCOL_VERSION) {
        conn->flags = flags | CONN_ABORT_REPORTED;
        eg_report_ems_required(st, ssl, (flags & CONN_HELLO_EMS) != 0, 1);
        return;
    }
    /* RFC 7627 5.3 says handshake_failure; later OpenSSL sends illegal_parameter. */
    if (!SSL_is_server(ssl)
        || ((alert & 0xff) != SSL_AD_HANDSHAKE_FAILURE
            && (alert & 0xff) != SSL_AD_ILLEGAL_PARAMETER)
        || (flags & CONN_ABORT_REPORTED) != 0
        || ERR_GET_LIB(err) != ERR_LIB_SSL
        || ERR_GET_REASON(err) != SSL_R_INCONSISTENT_EXTMS)
        return;
    if (conn != NULL)
        conn->flags = flags | CONN_ABORT_REPORTED;
    via = (flags & CONN_VIA_TICKET) ? "ticket"
        : (flags & CONN_VIA_EXTERNAL) ? "external-cache" : "session-cache";
    count(st, EMSGUARD_CNT_ABORTED_INCONSISTENT);
    eg_log_event(st, ssl, EG_LEVEL_ERROR, "aborted resumption:",
        "reason=inconsistent (EMS session offered in a ClientHello without "
        "Extended Master Secret, RFC 7627 section 5.3)",
        via);
}

/* Everything but the filter of eg_info_cb(), kept out of line: see there. */
static __attribute__((noinline)) void info_event(const SSL *cssl, int where, int ret)
{
    SSL *ssl = (SSL *)cssl; /* libssl hands out const; ex_data needs it */
    struct eg_ctx_state *st;
    struct eg_conn *conn;
    info_fn app_cb;
    const struct app_call *outer;

    /*
     * The application's callback calling emsguard's for the event emsguard
     * is handing it: done already, and OpenSSL's default does nothing.  No
     * application callback anywhere, no call back.
     */
    if (atomic_load_explicit(&app_info_cb_seen, memory_order_relaxed)
        && is_call_back(outer = in_app_cb.info, cssl, NULL, where, ret, 0))
        return;
    st = state_of_ctx(SSL_get_SSL_CTX(ssl));
    if (st == NULL)
        st = state_of_ssl(ssl); /* per-SSL callback on a ctx we never saw */
    if (st == NULL)
        return;
    if (where & SSL_CB_HANDSHAKE_START)
        on_handshake_start(st, ssl);
    if (where & SSL_CB_HANDSHAKE_DONE) {
        eg_server_session_at_done(st, ssl);
        on_handshake_done(st, ssl);
    }
    /* A handshake call returned complete: what on_handshake_done left for now. */
    if (where == SSL_CB_CONNECT_EXIT && ret == 1 && (conn = conn_of(ssl)) != NULL
        && (conn->flags & CONN_EMS_AT_EXIT))
        settle_ems_at_exit(st, ssl, conn);
    /* SSL_CB_READ_ALERT and SSL_CB_WRITE_ALERT share the SSL_CB_ALERT bit. */
    if ((where & SSL_CB_WRITE_ALERT) == SSL_CB_WRITE_ALERT) {
        if ((ret >> 8) == SSL3_AL_FATAL)
            on_alert_sent(st, ssl, ret);
        else if ((ret & 0xff) == SSL_AD_CLOSE_NOTIFY)
            emsguard_reuse_close_sent(ssl);
    }
    /* Until an application callback is chained anywhere, none is here. */
    if (!atomic_load_explicit(&app_info_cb_seen, memory_order_relaxed))
        return;
    /* libssl calls a per-SSL info callback instead of the ctx's, not both. */
    if (!(SSL_get_info_callback(ssl) == eg_info_cb
            && (conn = conn_of(ssl)) != NULL && (app_cb = conn->app_info_cb) != NULL))
        app_cb = atomic_load(&st->app_info_cb);
    if (app_cb != NULL) {
        struct app_call call = { cssl, NULL, where, ret, 0 };

        outer = in_app_cb.info;
        in_app_cb.info = &call;
        app_cb(cssl, where, ret);
        in_app_cb.info = outer;
    }
}

/*
 * libssl calls this on every state change, about 12 times per handshake and
 * side, and we act on two to four of them.  The filter stays a few
 * instructions with no stack frame, so the ignored calls cost no more than
 * the call itself (measured: the whole callback inline cost 4 instruction
 * cache misses per call).
 */
void eg_info_cb(const SSL *cssl, int where, int ret)
{
    if ((where & (SSL_CB_HANDSHAKE_START | SSL_CB_HANDSHAKE_DONE | SSL_CB_WRITE_ALERT
             | SSL_CB_EXIT)) == 0
        && !atomic_load_explicit(&app_info_cb_seen, memory_order_relaxed))
        return;
    /* An exit (a few per handshake): only one that ends a client's handshake call may matter. */
    if ((where & (SSL_CB_HANDSHAKE_START | SSL_CB_HANDSHAKE_DONE | SSL_CB_WRITE_ALERT)) == 0
        && (where != SSL_CB_CONNECT_EXIT || ret != 1
            || atomic_load_explicit(&eg_ems_exits_pending, memory_order_relaxed) == 0)
        && !atomic_load_explicit(&app_info_cb_seen, memory_order_relaxed))
        return;
    info_event(cssl, where, ret);
}
