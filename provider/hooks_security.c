/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard's security and verify callbacks, and the application's behind
 * them: the Schannel filter (suites, groups, versions, DH sizes), PKCS
 * MinKeyBitLength on the peer's certificate, and a RequireExtendedMasterSecret=1
 * client's check of the ServerHello at the ServerKeyExchange.  The
 * application's callbacks, per SSL_CTX or per SSL, are called first.
 */
#include <dlfcn.h>
#include <stdatomic.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "hooks.h"

/* The calls into the application's security and verify callbacks (struct app_call). */
static _Thread_local struct {
    const struct app_call *security, *verify;
} in_app_cb;

/* The application's per-SSL callbacks (struct eg_app_ssl_cbs, hooks.h): an ex_data record. */
static CRYPTO_ONCE app_ssl_cbs_once = CRYPTO_ONCE_STATIC_INIT;
static int app_ssl_cbs_idx = -1;
static atomic_int app_ssl_cbs_used;

static int dup_app_ssl_cbs(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from,
    void **from_d, int idx, long argl, void *argp)
{
    (void)to;
    (void)from;
    (void)idx;
    (void)argl;
    (void)argp;
    if (*from_d == NULL)
        return 1;
    return (*from_d = OPENSSL_memdup(*from_d, sizeof(struct eg_app_ssl_cbs))) != NULL;
}

static void free_app_ssl_cbs(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    OPENSSL_free(ptr);
}

static void init_app_ssl_cbs_index(void)
{
    app_ssl_cbs_idx = SSL_get_ex_new_index(0, "emsguard application callbacks", NULL,
        dup_app_ssl_cbs, free_app_ssl_cbs);
}

static const struct eg_app_ssl_cbs *app_ssl_cbs_of(const SSL *ssl)
{
    if (!atomic_load_explicit(&app_ssl_cbs_used, memory_order_acquire))
        return NULL;
    return SSL_get_ex_data(ssl, app_ssl_cbs_idx);
}

/* |ssl|'s record, made (zeroed) if it has none; NULL with the reason raised. */
struct eg_app_ssl_cbs *eg_app_ssl_cbs_need(SSL *ssl, const char *func)
{
    struct eg_app_ssl_cbs *cbs;

    if (!CRYPTO_THREAD_run_once(&app_ssl_cbs_once, init_app_ssl_cbs_index)
        || app_ssl_cbs_idx < 0) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "%s: cannot allocate an ex_data index", func);
        return NULL;
    }
    atomic_store_explicit(&app_ssl_cbs_used, 1, memory_order_release);
    if ((cbs = SSL_get_ex_data(ssl, app_ssl_cbs_idx)) != NULL)
        return cbs;
    if ((cbs = OPENSSL_zalloc(sizeof(*cbs))) == NULL || !SSL_set_ex_data(ssl, app_ssl_cbs_idx, cbs)) {
        OPENSSL_free(cbs);
        emsguard_raise(ERR_R_MALLOC_FAILURE, "%s: cannot store the callback", func);
        return NULL;
    }
    return cbs;
}

/*
 * The application's verify callback for |ssl|: its own
 * (EMSGUARD_set_verify()), else its ctx's, as libssl would use: the one
 * libssl holds, unless that is emsguard's (then the one emsguard chains);
 * a plain SSL_CTX_set_verify() after enable put it there, and
 * hold_verify_callback() put emsguard's back on the SSL.
 */
SSL_verify_cb eg_app_verify_cb_of(const SSL *ssl, const struct eg_ctx_state *st)
{
    const struct eg_app_ssl_cbs *cbs = app_ssl_cbs_of(ssl);
    SSL_verify_cb ctx_cb;

    if (cbs != NULL && cbs->verify != NULL)
        return cbs->verify;
    if ((ctx_cb = SSL_CTX_get_verify_callback(SSL_get_SSL_CTX(ssl))) != eg_verify_cb)
        return ctx_cb;
    return st != NULL ? st->app_verify_cb : NULL;
}

/* The same for the security callback (SSL_set_security_callback()). */
/* True if |fn| is code of libssl itself (OpenSSL's default security callback). */
static int is_libssl_code(security_fn fn)
{
    int (*libssl_fn)(const SSL *) = SSL_version; /* no one interposes it */
    void *a, *b;
    Dl_info ia, ib;

    if (fn == NULL)
        return 0;
    memcpy(&a, &fn, sizeof(a));
    memcpy(&b, &libssl_fn, sizeof(b));
    return dladdr(a, &ia) != 0 && dladdr(b, &ib) != 0 && ia.dli_fbase == ib.dli_fbase;
}

/*
 * The ctx's application security callback; whether it is libssl's own is
 * settled once here, not per call.  The flag goes down before an
 * application's callback is stored and up only after libssl's, so a
 * callback of the application is never called without the re-entry guard.
 */
/*
 * libssl's own security callback (the security level), as the first ctx
 * showed it; eg_security_cb_plain() calls it for every ctx.
 */
static _Atomic(security_fn) libssl_security_cb;
/*
 * Set once any ctx holds a security callback other than that one: from then
 * on eg_security_cb_plain() asks eg_security_cb(), so that a callback set
 * on a ctx later also reaches its existing SSLs (docs/api.md), which hold
 * the callback their ctx had when they were made.
 */
static atomic_int app_security_cb_seen;
/*
 * Set once any ctx's policy has a Schannel filter: then an SSL holding the
 * plain callback may be on such a ctx (an application copied the callback
 * of another ctx with libssl's setter, or switched the SSL's ctx), whose
 * filter only eg_security_cb() applies.
 */
static atomic_int schannel_filter_seen;

void eg_set_app_security_cb(struct eg_ctx_state *st, security_fn cb)
{
    int plain = is_libssl_code(cb);
    security_fn first = NULL;

    /* Another function of libssl's than the first: no longer "the" one. */
    if (plain
        && !atomic_compare_exchange_strong_explicit(&libssl_security_cb, &first, cb,
            memory_order_acq_rel, memory_order_acquire)
        && first != cb)
        plain = 0;
    if (!plain) {
        atomic_store_explicit(&app_security_cb_seen, 1, memory_order_release);
        atomic_store_explicit(&st->app_security_is_libssl, 0, memory_order_release);
    }
    st->app_security_cb = cb;
    if (plain)
        atomic_store_explicit(&st->app_security_is_libssl, 1, memory_order_release);
}

security_fn eg_app_security_cb_of(const SSL *ssl, const struct eg_ctx_state *st)
{
    const struct eg_app_ssl_cbs *cbs = ssl != NULL ? app_ssl_cbs_of(ssl) : NULL;

    if (cbs != NULL && cbs->has_security)
        return cbs->security;
    return st != NULL ? st->app_security_cb : NULL;
}

/* Security-callback part: refuses what the policy leaves out, says so once. */
static int hold_allows(struct eg_ctx_state *st, const SSL *ssl, int op, int nid, void *other)
{
    unsigned what = 0;
    char detail[96];

    if (emsguard_schannel_hold_allows(&st->hold, ssl, op, nid, other, &what))
        return 1;
    if ((atomic_load_explicit(&st->hold_warned, memory_order_relaxed) & what) == 0) {
        switch (what) {
        case EG_HELD_SUITES:
            snprintf(detail, sizeof(detail), "first: %s", SSL_CIPHER_get_name(other));
            break;
        case EG_HELD_GROUPS:
            snprintf(detail, sizeof(detail), "first: %s", OBJ_nid2sn(nid));
            break;
        case EG_HELD_LATE_VERSION:
            snprintf(detail, sizeof(detail), "version 0x%04x", (unsigned)nid);
            break;
        case EG_HELD_DH:
            snprintf(detail, sizeof(detail), "%d bits", EVP_PKEY_get_bits(other));
            break;
        default:
            detail[0] = '\0';
        }
        eg_warn_held(st, what, detail[0] != '\0' ? detail : NULL);
    }
    return 0;
}

/*
 * Everything eg_security_cb() does, kept out of line: the application's (or
 * OpenSSL's) callback first, then ours.  |st| is the state found for |ssl|'s
 * current ctx (or for |ctx|), NULL if none was.
 */
static __attribute__((noinline)) int security_cb_full(const SSL *ssl, const SSL_CTX *ctx,
    int op, int bits, int nid, void *other, void *ex, struct eg_ctx_state *st)
{
    const void *obj = ssl != NULL ? (const void *)ssl : (const void *)ctx;
    security_fn app;

    if (st == NULL && ssl != NULL)
        st = state_of_ssl(ssl); /* a per-SSL callback on a ctx we never saw */
    if (st == NULL) /* cannot happen on a ctx we set up: refuse, unless re-entered */
        return is_call_back(in_app_cb.security, obj, other, op, bits, nid);
    app = eg_app_security_cb_of(ssl, st);
    /*
     * libssl's own callback (the security level) never calls back into
     * emsguard, so it needs no re-entry guard: libssl asks this callback
     * about every suite of every ClientHello, and the guard's thread-local
     * accesses would cost each of them.
     */
    if (app != NULL && app == st->app_security_cb
        && atomic_load_explicit(&st->app_security_is_libssl, memory_order_acquire)) {
        if (!app(ssl, ctx, op, bits, nid, other, ex))
            return 0;
    } else if (app != NULL) {
        const struct app_call *outer = in_app_cb.security;
        struct app_call call = { obj, other, op, bits, nid };
        int ok;

        /*
         * The application's callback calling emsguard's: this link has no
         * objection; the outer call applies emsguard's check when the
         * application's returns.  (OpenSSL's default callback, the security
         * level, is what the application's callback replaced on this ctx.)
         */
        if (is_call_back(outer, obj, other, op, bits, nid))
            return 1;
        in_app_cb.security = &call;
        ok = app(ssl, ctx, op, bits, nid, other, ex);
        in_app_cb.security = outer;
        if (!ok)
            return 0;
    }
    if (ssl == NULL) {
        /* SSL_CTX_set0_tmp_dh_pkey(): the group's size, which the per-SSL DH hold keeps. */
        if (op == SSL_SECOP_TMP_DH && other != NULL && st->hold.server_dh != NULL)
            atomic_store_explicit(&st->hold.app_dh_bits, (uint32_t)EVP_PKEY_get_bits(other),
                memory_order_relaxed);
        return 1;
    }
    if (st->hold.filter && !hold_allows(st, ssl, op, nid, other))
        return 0;
    /* Only the DH group has a check of its own here; skip the role lookup otherwise. */
    if ((op & ~SSL_SECOP_PEER) != SSL_SECOP_TMP_DH)
        return 1;
    return emsguard_schannel_security_ok(&st->policy,
        SSL_is_server((SSL *)ssl) ? EG_ROLE_SERVER : EG_ROLE_CLIENT, op, other);
}

/*
 * Security callback.  libssl asks it about every suite, group, signature
 * algorithm and version of each hello (about 66 questions per TLS 1.2
 * client handshake), and almost every answer is libssl's own security
 * level's: with OpenSSL's default callback behind ours, no Schannel filter
 * and no question about a DH group, emsguard adds nothing to that answer,
 * so the question goes straight to libssl's callback (a tail call).  Asking libssl's callback last instead of first changes nothing
 * there: our part has no side effect in that case.  Everything else takes
 * security_cb_full().  Measured (callgrind, "all" route, session-ID
 * resumption): 125 -> about 40 instructions per question.
 */
int eg_security_cb(const SSL *ssl, const SSL_CTX *ctx, int op, int bits,
    int nid, void *other, void *ex)
{
    /*
     * The SSL's current ctx: after an SNI switch libssl asks the target's
     * callback with the target's lists, and the target's policy and
     * application callback answer (not the state recorded at handshake
     * start, which the session callbacks and counters keep).
     */
    struct eg_ctx_state *st = state_of_ctx(ssl != NULL ? SSL_get_SSL_CTX(ssl) : ctx);
    security_fn app;

    /* The callback read before the flag, as security_cb_full() does. */
    if (st != NULL && ssl != NULL && !st->hold.filter
        && (op & ~SSL_SECOP_PEER) != SSL_SECOP_TMP_DH
        && !atomic_load_explicit(&app_ssl_cbs_used, memory_order_acquire)
        && (app = st->app_security_cb) != NULL
        && atomic_load_explicit(&st->app_security_is_libssl, memory_order_acquire))
        return app(ssl, ctx, op, bits, nid, other, ex); /* libssl's: 0 or 1 */
    return security_cb_full(ssl, ctx, op, bits, nid, other, ex, st);
}

/* Verify callback: PKCS MinKeyBitLength for the peer's RSA certificate. */
int eg_verify_cb(int ok, X509_STORE_CTX *store)
{
    SSL *ssl;
    struct eg_ctx_state *st;
    const struct app_call *outer = in_app_cb.verify;
    SSL_verify_cb app;

    /* The application's callback calling emsguard's: OpenSSL's default keeps |ok|. */
    if (is_call_back(outer, store, NULL, 0, 0, 0))
        return ok;
    ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    /* The SSL's current ctx's policy (after an SNI switch, the target's). */
    st = ssl != NULL ? state_of_ctx(SSL_get_SSL_CTX(ssl)) : NULL;
    if (st == NULL && ssl != NULL)
        st = state_of_ssl(ssl);
    if (st == NULL)
        return 0;
    if ((app = eg_app_verify_cb_of(ssl, st)) != NULL) {
        struct app_call call = { store, NULL, 0, 0, 0 };

        in_app_cb.verify = &call;
        ok = app(ok, store);
        in_app_cb.verify = outer;
    }
    if (ok && X509_STORE_CTX_get_error_depth(store) == 0
        && !emsguard_schannel_peer_key_ok(&st->policy,
            SSL_is_server(ssl) ? EG_ROLE_SERVER : EG_ROLE_CLIENT,
            X509_STORE_CTX_get_current_cert(store))) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_EE_KEY_TOO_SMALL);
        eg_log_event(st, ssl, EG_LEVEL_ERROR, "peer certificate refused:",
            "reason=key-too-small (RSA key below KeyExchangeAlgorithms\\PKCS MinKeyBitLength)",
            "certificate");
        return 0;
    }
    return ok;
}

/*
 * The application's certificate verification (SSL_CTX_set_cert_verify_callback())
 * runs in place of X509_verify_cert(), and so in place of the verify
 * callback, unless it calls X509_verify_cert() itself (then eg_verify_cb has
 * refused already).  One that does its own checking (pinning, say) would
 * skip PKCS MinKeyBitLength: the peer's certificate is checked after it.
 */
int eg_cert_verify_cb(X509_STORE_CTX *store, void *arg)
{
    struct eg_ctx_state *st = arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    int ok;

    if (st == NULL || ssl == NULL || st->app_cert_verify_cb == NULL)
        return 0; /* not set up by us; refuse, not allow */
    ok = st->app_cert_verify_cb(store, st->app_cert_verify_arg);
    if (ok > 0
        && !emsguard_schannel_peer_key_ok(&st->policy,
            SSL_is_server(ssl) ? EG_ROLE_SERVER : EG_ROLE_CLIENT,
            X509_STORE_CTX_get0_cert(store))) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_EE_KEY_TOO_SMALL);
        eg_log_event(st, ssl, EG_LEVEL_ERROR, "peer certificate refused:",
            "reason=key-too-small (RSA key below KeyExchangeAlgorithms\\PKCS MinKeyBitLength)",
            "cert-verify-callback");
        return 0;
    }
    return ok;
}

/* ---- RequireExtendedMasterSecret=1, client role ------------------------------ */

/*
 * TLS <= 1.2 suites after whose ServerHello a client asks the security
 * callback something, with the ServerHello's extensions parsed and before
 * it writes anything: the ServerKeyExchange of (EC)DHE (statem_clnt.c
 * tls_process_ske_ecdhe: tls1_check_group_id -> SSL_SECOP_CURVE_CHECK;
 * tls_process_ske_dhe: SSL_SECOP_TMP_DH), also in their PSK forms.
 * RSA key exchange, plain PSK, RSA-PSK and SRP have no ServerKeyExchange
 * to ask about (the CIPHER_CHECK in set_client_ciphersuite() comes before
 * the extensions are parsed), and no other callback that can stop the
 * handshake runs for them after the ServerHello whatever the verify mode:
 * the verify callback counts only under SSL_VERIFY_PEER, and the
 * servername callback (final_server_name, which libssl also runs on a
 * client) cannot be read back to chain an application's, such as an SNI
 * server's on a TLS_method SSL_CTX.  So the client would have no point at
 * which to refuse their ServerHello.  TLS 1.3 suites (NID_kx_any) have EMS
 * in their key schedule.
 */
static int suite_lets_client_check_ems(const SSL_CIPHER *c)
{
    switch (SSL_CIPHER_get_kx_nid(c)) {
    case NID_kx_ecdhe:
    case NID_kx_dhe:
    case NID_kx_ecdhe_psk:
    case NID_kx_dhe_psk:
    case NID_kx_any:
        return 1;
    default:
        return 0;
    }
}

/*
 * Client, after the ServerHello of a full handshake: did the server agree to
 * EMS?  SSL_get_extms_support() says -1 until the handshake ends, so read
 * the flags of the session libssl is building, which got its EMS bit from
 * the ServerHello.  It has no cipher yet (libssl sets it when the client
 * writes ChangeCipherSpec), and i2d_SSL_SESSION() encodes no session
 * without one: lend it the negotiated suite for the encoding.  The session
 * is this connection's alone until the handshake ends.  It has no master
 * secret yet either, so emsguard_session_ems() finds no memo entry and
 * encodes it: one DER encoding, once per handshake.
 */
static int server_hello_ems(const SSL *ssl)
{
    SSL_SESSION *sess = SSL_get_session(ssl);
    const SSL_CIPHER *pending = SSL_get_pending_cipher(ssl);
    int ems;

    if (sess == NULL || pending == NULL)
        return -1;
    if (SSL_SESSION_get0_cipher(sess) != NULL)
        return emsguard_session_ems(sess);
    if (!SSL_SESSION_set_cipher(sess, pending))
        return -1;
    ems = emsguard_session_ems(sess);
    SSL_SESSION_set_cipher(sess, NULL);
    return ems;
}

/*
 * server_hello_ems() once per handshake: libssl asks the ServerKeyExchange
 * question more than once, and each read encodes the session.  The answer
 * is kept with the session it was read from (CONN_SKE_READ), which
 * on_handshake_done also uses for that session.  The bit is the one libssl
 * gave the session from the ServerHello; nothing changes it afterwards.
 */
static int server_hello_ems_once(const SSL *ssl)
{
    struct eg_conn *conn = conn_of(ssl);
    const SSL_SESSION *sess = SSL_get_session(ssl);
    int ems;

    if (conn != NULL && sess != NULL && (conn->flags & CONN_SKE_READ) && conn->fp_sess == sess)
        return (conn->flags & CONN_SKE_EMS) != 0;
    ems = server_hello_ems(ssl);
    if (conn != NULL && sess != NULL && ems >= 0) {
        conn->flags = (conn->flags & ~(uintptr_t)CONN_SKE_EMS) | CONN_SKE_READ
            | (ems == 1 ? CONN_SKE_EMS : 0);
        conn->fp_sess = sess;
    }
    return ems;
}

static __attribute__((cold, noinline)) int refuse_server_hello(struct eg_ctx_state *st,
    SSL *ssl, int ems)
{
    int option_off = (SSL_get_options(ssl) & SSL_OP_NO_EXTENDED_MASTER_SECRET) != 0;

    count(st, EMSGUARD_CNT_REJECTED_NO_EMS);
    if (ems < 0) {
        eg_log_event(st, ssl, EG_LEVEL_ERROR, "rejected ServerHello:",
            "reason=ems-required (cannot read whether the server agreed to Extended "
            "Master Secret, RequireExtendedMasterSecret=1)",
            "server-hello");
        emsguard_raise(EMSGUARD_R_EMS_REQUIRED, "cannot read whether the ServerHello "
                                                "agreed to Extended Master Secret "
                                                "(RequireExtendedMasterSecret=1)");
    } else if (option_off) {
        eg_log_event(st, ssl, EG_LEVEL_ERROR, "rejected ServerHello:",
            "reason=ems-required (this connection has SSL_OP_NO_EXTENDED_MASTER_SECRET "
            "set and cannot get Extended Master Secret, RequireExtendedMasterSecret=1)",
            "server-hello");
        emsguard_raise(EMSGUARD_R_EMS_REQUIRED,
            "TLS <= 1.2 without Extended Master Secret: the connection has "
            "SSL_OP_NO_EXTENDED_MASTER_SECRET set (RequireExtendedMasterSecret=1)");
    } else {
        eg_log_event(st, ssl, EG_LEVEL_ERROR, "rejected ServerHello:",
            "reason=ems-required (no Extended Master Secret, RequireExtendedMasterSecret=1)",
            "server-hello");
        emsguard_raise(EMSGUARD_R_EMS_REQUIRED,
            "ServerHello without Extended Master Secret (RequireExtendedMasterSecret=1)");
    }
    return 0;
}

/*
 * The security callback of an SSL_CTX whose client role has Require=1: the
 * application's (or OpenSSL's default) and the Schannel checks first
 * (eg_security_cb), then, client role only:
 *  - TLS <= 1.2 suites that give the client no later check are not offered
 *    (SSL_SECOP_CIPHER_SUPPORTED builds the ClientHello's list) nor accepted
 *    (SSL_SECOP_CIPHER_CHECK, the ServerHello's);
 *  - at the ServerKeyExchange, its first question (the group or the DH
 *    key) decides: the session libssl is building got its EMS bit from the
 *    ServerHello
 *    (extensions_clnt.c tls_parse_stoc_ems); without it the callback says
 *    no, and libssl sends a fatal alert (illegal_parameter for ECDHE,
 *    handshake_failure for DHE) whatever the verify mode, before the client
 *    writes its key exchange or Finished.
 * A resumption has no ServerKeyExchange: libssl itself fails a ServerHello
 * whose EMS differs from the resumed session's (extensions.c final_ems), and
 * eg_require_ems_at_handshake_start() offers only sessions with EMS.
 */
/* The four questions eg_client_require_security_cb() adds to, out of line. */
static __attribute__((noinline)) int client_require_check(const SSL *ssl, const SSL_CTX *ctx,
    int op, int bits, int nid, void *other, void *ex, security_fn first)
{
    struct eg_ctx_state *st;
    int ems;

    if (!first(ssl, ctx, op, bits, nid, other, ex))
        return 0;
    if (op == SSL_SECOP_CIPHER_SUPPORTED || op == SSL_SECOP_CIPHER_CHECK)
        return ssl == NULL || other == NULL || SSL_is_server(ssl)
            || suite_lets_client_check_ems(other);
    /* SSL_SECOP_CURVE_CHECK (ECDHE) or SSL_SECOP_TMP_DH (DHE): asked once, first, in every ServerKeyExchange */
    if (ssl == NULL || SSL_is_server(ssl))
        return 1;
    /* Both are asked elsewhere too (ClientHello, TLS 1.3 key share). */
    if (SSL_get_state(ssl) != TLS_ST_CR_KEY_EXCH)
        return 1;
    /* Not NULL: eg_security_cb() said yes. */
    st = state_of_ssl(ssl);
    if (!client_role_requires_ems(&st->policy))
        return 1;
    ems = server_hello_ems_once(ssl);
    return ems == 1 ? 1 : refuse_server_hello(st, (SSL *)ssl, ems);
}

/*
 * Most questions (every group, signature and version of each hello) are
 * |base|'s alone: a tail call, with no frame of the callback.  Inlined into
 * both Require=1 callbacks, with |base| known, so both calls are direct.
 */
static inline __attribute__((always_inline)) int client_require_dispatch(const SSL *ssl,
    const SSL_CTX *ctx, int op, int bits, int nid, void *other, void *ex, security_fn base)
{
    switch (op) {
    case SSL_SECOP_CIPHER_SUPPORTED:
    case SSL_SECOP_CIPHER_CHECK:
    case SSL_SECOP_CURVE_CHECK:
    case SSL_SECOP_TMP_DH:
        return client_require_check(ssl, ctx, op, bits, nid, other, ex, base);
    default:
        return base(ssl, ctx, op, bits, nid, other, ex);
    }
}

int eg_client_require_security_cb(const SSL *ssl, const SSL_CTX *ctx, int op,
    int bits, int nid, void *other, void *ex)
{
    return client_require_dispatch(ssl, ctx, op, bits, nid, other, ex, eg_security_cb);
}

/* ---- ctxs with nothing to add to libssl's own answers ---------------------- */

/*
 * The same two callbacks for a ctx whose application callback is libssl's
 * own and which holds no Schannel filter (eg_security_cb_for): there
 * eg_security_cb() would find the ctx's state only to learn that, once per
 * question (about 66 per TLS 1.2 handshake pair, half of them on the
 * client's suites).  These know it from which function libssl calls, and
 * ask libssl's callback straight away; a DH group question, or an
 * application's callback anywhere in the process, per SSL or per ctx, or
 * a Schannel filter on any ctx, still takes eg_security_cb(): the plain
 * callbacks may be called for an SSL on another ctx than the one they were
 * installed on (copied by the application, or an SNI switch).
 */
static int passes_to_libssl(const SSL *ssl, int op)
{
    return ssl != NULL && (op & ~SSL_SECOP_PEER) != SSL_SECOP_TMP_DH
        && !atomic_load_explicit(&app_ssl_cbs_used, memory_order_acquire)
        && !atomic_load_explicit(&app_security_cb_seen, memory_order_acquire)
        && !atomic_load_explicit(&schannel_filter_seen, memory_order_acquire);
}

int eg_security_cb_plain(const SSL *ssl, const SSL_CTX *ctx, int op, int bits,
    int nid, void *other, void *ex)
{
    security_fn libssl_cb = atomic_load_explicit(&libssl_security_cb, memory_order_acquire);

    if (libssl_cb != NULL && passes_to_libssl(ssl, op))
        return libssl_cb(ssl, ctx, op, bits, nid, other, ex);
    return eg_security_cb(ssl, ctx, op, bits, nid, other, ex);
}

int eg_client_require_security_cb_plain(const SSL *ssl, const SSL_CTX *ctx, int op,
    int bits, int nid, void *other, void *ex)
{
    return client_require_dispatch(ssl, ctx, op, bits, nid, other, ex, eg_security_cb_plain);
}

security_fn eg_security_cb_for(const struct eg_ctx_state *st, int client_requires_ems)
{
    int plain = atomic_load_explicit(&st->app_security_is_libssl, memory_order_acquire)
        && !st->hold.filter;

    if (st->hold.filter)
        atomic_store_explicit(&schannel_filter_seen, 1, memory_order_release);
    if (client_requires_ems)
        return plain ? eg_client_require_security_cb_plain : eg_client_require_security_cb;
    return plain ? eg_security_cb_plain : eg_security_cb;
}

int eg_is_our_security_cb(security_fn cb, int *requires)
{
    int req = cb == eg_client_require_security_cb || cb == eg_client_require_security_cb_plain;

    if (requires != NULL)
        *requires = req;
    return req || cb == eg_security_cb || cb == eg_security_cb_plain;
}
