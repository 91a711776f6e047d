/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The public setters and getters that let an application chain its
 * callbacks behind emsguard's: libssl holds emsguard's callback, and these
 * store the application's where emsguard's calls it (the session, ticket,
 * ClientHello, info, verify, certificate-verify and security callbacks).
 * The getters answer what OpenSSL's would answer without emsguard.
 */
#include <stdatomic.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "hooks.h"

static struct eg_ctx_state *enabled_state(const SSL_CTX *ctx, const char *func)
{
    struct eg_ctx_state *st = state_of_ctx(ctx);

    if (st == NULL)
        emsguard_raise(EMSGUARD_R_NOT_ENABLED,
            "%s: emsguard is not enabled on this SSL_CTX; call EMSGUARD_enable() first",
            func);
    return st;
}

int EMSGUARD_CTX_set_session_ticket_cb(SSL_CTX *ctx,
    SSL_CTX_generate_session_ticket_fn gen_cb,
    SSL_CTX_decrypt_session_ticket_fn dec_cb, void *arg)
{
    struct eg_ctx_state *st = enabled_state(ctx, "EMSGUARD_CTX_set_session_ticket_cb");

    if (st == NULL)
        return 0;
    st->app_gen_cb = gen_cb;
    st->app_dec_cb = dec_cb;
    st->app_ticket_arg = arg;
    return 1;
}

int EMSGUARD_CTX_set_client_hello_cb(SSL_CTX *ctx, SSL_client_hello_cb_fn cb,
    void *arg)
{
    struct eg_ctx_state *st = ctx != NULL ? state_of_ctx(ctx) : NULL;

    if (ctx == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT,
            "EMSGUARD_CTX_set_client_hello_cb: ctx is NULL");
        return 0;
    }
    if (st == NULL) {
        SSL_CTX_set_client_hello_cb(ctx, cb, arg); /* nothing of ours to keep */
        return 1;
    }
    st->app_hello_cb = cb;
    st->app_hello_arg = arg;
    /*
     * Our wrapper calls it.  Installing the wrapper (recognised as emsguard's
     * by libemsguard-preload) rather than |cb| keeps a preloaded process
     * from routing this call back here.
     */
    SSL_CTX_set_client_hello_cb(ctx, eg_client_hello_cb, st);
    return 1;
}

int EMSGUARD_CTX_sess_set_new_cb(SSL_CTX *ctx, new_session_fn app_cb)
{
    struct eg_ctx_state *st = enabled_state(ctx, "EMSGUARD_CTX_sess_set_new_cb");

    if (st == NULL)
        return 0;
    atomic_store(&st->app_new_cb, app_cb);
    return 1;
}

int EMSGUARD_CTX_sess_set_get_cb(SSL_CTX *ctx, get_session_fn app_cb)
{
    struct eg_ctx_state *st = enabled_state(ctx, "EMSGUARD_CTX_sess_set_get_cb");

    if (st == NULL)
        return 0;
    atomic_store(&st->app_get_cb, app_cb);
    return 1;
}

int EMSGUARD_CTX_set_info_callback(SSL_CTX *ctx, info_fn cb)
{
    struct eg_ctx_state *st = enabled_state(ctx, "EMSGUARD_CTX_set_info_callback");

    if (st == NULL)
        return 0;
    eg_note_app_info_cb(cb);
    atomic_store(&st->app_info_cb, cb);
    return 1;
}

int EMSGUARD_set_info_callback(SSL *ssl, info_fn cb)
{
    struct eg_conn *conn;

    if (ssl == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_set_info_callback: ssl is NULL");
        return 0;
    }
    if (enabled_state(SSL_get_SSL_CTX(ssl), "EMSGUARD_set_info_callback") == NULL)
        return 0;
    eg_note_app_info_cb(cb);
    /* A record SSL_dup() copies: see emsguard_conn_get_durable(). */
    if (!eg_indices_ready() || (conn = emsguard_conn_get_durable(ssl)) == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "EMSGUARD_set_info_callback: cannot store the callback");
        return 0;
    }
    conn->app_info_cb = cb;
    /*
     * Always ours, even for NULL: eg_info_cb then falls back to the ctx's
     * application callback, which is what a NULL per-SSL callback means.
     */
    SSL_set_info_callback(ssl, eg_info_cb);
    return 1;
}

/*
 * The getters answer what OpenSSL's would without emsguard.  Where libssl
 * holds emsguard's callback, that is the application's callback emsguard
 * calls from it: an application that chains (prev = get(); set(mine); mine
 * calls prev) must reach its previous callback, not emsguard's (which, as
 * the outer call's, returns at once: see struct app_call).  Anywhere else
 * -- no policy, or a plain libssl setter replaced emsguard's -- libssl's
 * own answer is the truth.  Never one of emsguard's own callbacks.
 */
new_session_fn EMSGUARD_CTX_sess_get_new_cb(SSL_CTX *ctx)
{
    struct eg_ctx_state *st;
    new_session_fn cb;

    if (ctx == NULL || (cb = SSL_CTX_sess_get_new_cb(ctx)) != eg_new_session_cb)
        return ctx != NULL ? cb : NULL;
    return (st = state_of_ctx(ctx)) != NULL ? atomic_load(&st->app_new_cb) : NULL;
}

get_session_fn EMSGUARD_CTX_sess_get_get_cb(SSL_CTX *ctx)
{
    struct eg_ctx_state *st;
    get_session_fn cb;

    if (ctx == NULL || (cb = SSL_CTX_sess_get_get_cb(ctx)) != eg_get_session_cb)
        return ctx != NULL ? cb : NULL;
    return (st = state_of_ctx(ctx)) != NULL ? atomic_load(&st->app_get_cb) : NULL;
}

info_fn EMSGUARD_CTX_get_info_callback(SSL_CTX *ctx)
{
    struct eg_ctx_state *st;
    info_fn cb;

    if (ctx == NULL || (cb = SSL_CTX_get_info_callback(ctx)) != eg_info_cb)
        return ctx != NULL ? cb : NULL;
    return (st = state_of_ctx(ctx)) != NULL ? atomic_load(&st->app_info_cb) : NULL;
}

/*
 * Per SSL, libssl's answer is the SSL's own callback (NULL: the ctx's is
 * used).  emsguard's there stands for the one EMSGUARD_set_info_callback()
 * stored in the connection's record; NULL there too means the ctx's.
 */
info_fn EMSGUARD_get_info_callback(const SSL *ssl)
{
    struct eg_conn *conn;
    info_fn cb;

    if (ssl == NULL || (cb = SSL_get_info_callback(ssl)) != eg_info_cb)
        return ssl != NULL ? cb : NULL;
    return (conn = conn_of(ssl)) != NULL ? conn->app_info_cb : NULL;
}

/* ---- the application's verify and security callbacks ------------------------ */
/*
 * emsguard's verify callback (PKCS MinKeyBitLength) and security callback
 * (Diffie-Hellman ClientMinKeyBitLength, a Require=1 client's check of the
 * ServerHello) call the application's.  A plain libssl setter would replace
 * them; these store the application's callback where emsguard's calls it.
 * Where emsguard installed no such callback (no policy, the policy needs
 * none, or a plain setter replaced it), they are the plain setters.
 */

static int is_our_security_cb(security_fn cb)
{
    return eg_is_our_security_cb(cb, NULL);
}

static int null_argument(const void *p, const char *func, const char *what)
{
    if (p != NULL)
        return 0;
    emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT, "%s: %s is NULL", func, what);
    return 1;
}

int EMSGUARD_CTX_set_verify(SSL_CTX *ctx, int mode, SSL_verify_cb cb)
{
    struct eg_ctx_state *st;

    if (null_argument(ctx, "EMSGUARD_CTX_set_verify", "ctx"))
        return 0;
    if ((st = state_of_ctx(ctx)) == NULL || SSL_CTX_get_verify_callback(ctx) != eg_verify_cb) {
        SSL_CTX_set_verify(ctx, mode, cb); /* nothing of ours to keep */
        return 1;
    }
    st->app_verify_cb = cb;
    /* The mode; emsguard's callback stays (the preload passes it on as is). */
    SSL_CTX_set_verify(ctx, mode, eg_verify_cb);
    return 1;
}

/*
 * As SSL_set_verify(): a NULL callback changes only the mode, and the SSL
 * keeps the callback it has.
 */
int EMSGUARD_set_verify(SSL *ssl, int mode, SSL_verify_cb cb)
{
    struct eg_app_ssl_cbs *cbs;

    if (null_argument(ssl, "EMSGUARD_set_verify", "ssl"))
        return 0;
    if (cb == NULL || SSL_get_verify_callback(ssl) != eg_verify_cb) {
        SSL_set_verify(ssl, mode, cb);
        return 1;
    }
    if ((cbs = eg_app_ssl_cbs_need(ssl, "EMSGUARD_set_verify")) == NULL)
        return 0;
    cbs->verify = cb;
    SSL_set_verify(ssl, mode, NULL); /* the mode only: emsguard's callback stays */
    return 1;
}

/*
 * Where emsguard checks the peer's certificate (its verify callback is
 * installed), the application's certificate verification runs from ours,
 * which checks the key after it.  NULL restores libssl's
 * X509_verify_cert(), which calls emsguard's verify callback.
 */
int EMSGUARD_CTX_set_cert_verify_callback(SSL_CTX *ctx,
    int (*cb)(X509_STORE_CTX *store, void *arg), void *arg)
{
    struct eg_ctx_state *st;

    if (null_argument(ctx, "EMSGUARD_CTX_set_cert_verify_callback", "ctx"))
        return 0;
    if ((st = state_of_ctx(ctx)) == NULL || SSL_CTX_get_verify_callback(ctx) != eg_verify_cb
        || cb == NULL) {
        SSL_CTX_set_cert_verify_callback(ctx, cb, arg);
        if (st != NULL)
            st->app_cert_verify_cb = NULL;
        return 1;
    }
    st->app_cert_verify_cb = cb;
    st->app_cert_verify_arg = arg;
    SSL_CTX_set_cert_verify_callback(ctx, eg_cert_verify_cb, st);
    return 1;
}

/* NULL: no callback of the application's (emsguard's checks only). */
int EMSGUARD_CTX_set_security_callback(SSL_CTX *ctx, security_fn cb)
{
    struct eg_ctx_state *st;

    if (null_argument(ctx, "EMSGUARD_CTX_set_security_callback", "ctx"))
        return 0;
    if ((st = state_of_ctx(ctx)) == NULL
        || !is_our_security_cb(SSL_CTX_get_security_callback(ctx))) {
        SSL_CTX_set_security_callback(ctx, cb);
        return 1;
    }
    eg_set_app_security_cb(st, cb);
    return 1;
}

int EMSGUARD_set_security_callback(SSL *ssl, security_fn cb)
{
    struct eg_app_ssl_cbs *cbs;

    if (null_argument(ssl, "EMSGUARD_set_security_callback", "ssl"))
        return 0;
    if (!is_our_security_cb(SSL_get_security_callback(ssl))) {
        SSL_set_security_callback(ssl, cb);
        return 1;
    }
    if ((cbs = eg_app_ssl_cbs_need(ssl, "EMSGUARD_set_security_callback")) == NULL)
        return 0;
    cbs->security = cb;
    cbs->has_security = 1;
    return 1;
}

/*
 * The getters: where libssl holds emsguard's callback, the application's
 * that emsguard calls from it (see EMSGUARD_CTX_get_info_callback()); per
 * SSL, the SSL's own, else its ctx's.  OpenSSL's default security callback
 * (the security level) counts as the application's: it is what emsguard
 * calls when the application set none.
 */
SSL_verify_cb EMSGUARD_CTX_get_verify_callback(const SSL_CTX *ctx)
{
    struct eg_ctx_state *st;
    SSL_verify_cb cb;

    if (ctx == NULL || (cb = SSL_CTX_get_verify_callback(ctx)) != eg_verify_cb)
        return ctx != NULL ? cb : NULL;
    return (st = state_of_ctx(ctx)) != NULL ? st->app_verify_cb : NULL;
}

SSL_verify_cb EMSGUARD_get_verify_callback(const SSL *ssl)
{
    SSL_verify_cb cb;

    if (ssl == NULL || (cb = SSL_get_verify_callback(ssl)) != eg_verify_cb)
        return ssl != NULL ? cb : NULL;
    return eg_app_verify_cb_of(ssl, state_of_ssl(ssl));
}

security_fn EMSGUARD_CTX_get_security_callback(const SSL_CTX *ctx)
{
    struct eg_ctx_state *st;
    security_fn cb;

    if (ctx == NULL || !is_our_security_cb(cb = SSL_CTX_get_security_callback(ctx)))
        return ctx != NULL ? cb : NULL;
    return (st = state_of_ctx(ctx)) != NULL ? st->app_security_cb : NULL;
}

security_fn EMSGUARD_get_security_callback(const SSL *ssl)
{
    security_fn cb;

    if (ssl == NULL || !is_our_security_cb(cb = SSL_get_security_callback(ssl)))
        return ssl != NULL ? cb : NULL;
    return eg_app_security_cb_of(ssl, state_of_ssl(ssl));
}
