/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libemsguard-preload.so's face: the libssl and libc functions it puts in
 * front of the process's (PRELOAD_INTERPOSED), and nothing else, so that
 * this file defines exactly what provider/preload.map exports.  What each
 * does is decided in the files below it; the design is told in preload_shared.h.
 */
#include <string.h>
#include "preload_shared.h"

/*
 * Every function this library defines for the process: X(function, where
 * the next definition is kept).  provider/preload.map must export exactly
 * these, and test/preload_paths.sh checks the built library against this
 * list: a function interposed here but not exported is never reached.  Our
 * dlsym() also hands out these definitions in place of the next ones.
 */
#define PRELOAD_INTERPOSED(X)                                     \
    X(SSL_CTX_new, real.ctx_new)                                  \
    X(SSL_CTX_new_ex, real.ctx_new_ex)                            \
    X(SSL_CTX_sess_set_new_cb, real.sess_set_new_cb)              \
    X(SSL_CTX_sess_set_get_cb, real.sess_set_get_cb)              \
    X(SSL_CTX_set_info_callback, real.ctx_set_info_callback)      \
    X(SSL_set_info_callback, real.set_info_callback)              \
    X(SSL_CTX_set_session_ticket_cb, real.set_session_ticket_cb)  \
    X(SSL_CTX_set_client_hello_cb, real.set_client_hello_cb)      \
    X(SSL_CTX_sess_get_new_cb, real.sess_get_new_cb)              \
    X(SSL_CTX_sess_get_get_cb, real.sess_get_get_cb)              \
    X(SSL_CTX_get_info_callback, real.ctx_get_info_callback)      \
    X(SSL_get_info_callback, real.get_info_callback)              \
    X(SSL_CTX_set_verify, real.ctx_set_verify)                    \
    X(SSL_set_verify, real.set_verify)                            \
    X(SSL_CTX_set_cert_verify_callback, real.ctx_set_cert_verify) \
    X(SSL_CTX_set_security_callback, real.ctx_set_security_cb)    \
    X(SSL_set_security_callback, real.set_security_cb)            \
    X(SSL_CTX_get_verify_callback, real.ctx_get_verify_callback)  \
    X(SSL_get_verify_callback, real.get_verify_callback)          \
    X(SSL_CTX_get_security_callback, real.ctx_get_security_cb)    \
    X(SSL_get_security_callback, real.get_security_cb)            \
    X(dlsym, libc_dl.dlsym)                                       \
    X(dlopen, libc_dl.dlopen)                                     \
    X(dlmopen, libc_dl.dlmopen)

/*
 * glibc's dlsym(), dlopen() and dlmopen() act for the object their return
 * address is in (RTLD_DEFAULT and RTLD_NEXT search from it; a file name is
 * searched in its DT_RPATH/DT_RUNPATH).  Where ours only pass a call on,
 * they must do it as a tail call, so that glibc still sees the caller.
 */
#if defined(__has_attribute)
#if __has_attribute(musttail)
#define TAIL_CALL __attribute__((musttail))
#endif
#endif
#ifndef TAIL_CALL
#if !defined(__OPTIMIZE__)
#error "build libemsguard-preload.so with -O1 or more: its dlsym(), dlopen() and dlmopen() rely on tail calls"
#endif
#define TAIL_CALL
#endif

/* ---- interposed libssl functions ----------------------------------------- */

SSL_CTX *SSL_CTX_new_ex(OSSL_LIB_CTX *libctx, const char *propq,
    const SSL_METHOD *meth)
{
    SSL_CTX *ctx;

    if (in_emsguard > 0) /* libemsguard's scratch SSL_CTX */
        return real.ctx_new_ex != NULL ? real.ctx_new_ex(libctx, propq, meth) : NULL;
    ready();
    if (real.ctx_new_ex == NULL || !method_of_our_libssl(meth))
        return NULL;
    making_ctx++;
    ctx = real.ctx_new_ex(libctx, propq, meth);
    making_ctx--;
    return apply_policy(ctx);
}

SSL_CTX *SSL_CTX_new(const SSL_METHOD *meth)
{
    SSL_CTX *ctx;

    if (in_emsguard > 0)
        return real.ctx_new != NULL ? real.ctx_new(meth) : NULL;
    ready();
    if (real.ctx_new == NULL || !method_of_our_libssl(meth))
        return NULL;
    /* libssl's SSL_CTX_new may call ours for _ex; enabling twice is a no-op. */
    making_ctx++;
    ctx = real.ctx_new(meth);
    making_ctx--;
    return apply_policy(ctx);
}

void SSL_CTX_sess_set_new_cb(SSL_CTX *ctx, new_session_fn cb)
{
    if (ctx_has_policy(ctx) && !is_emsguard_callback(&cb, sizeof(cb))
        && eg.sess_set_new_cb(ctx, cb))
        return;
    if (real.sess_set_new_cb != NULL)
        real.sess_set_new_cb(ctx, cb);
}

void SSL_CTX_sess_set_get_cb(SSL_CTX *ctx, get_session_fn cb)
{
    if (ctx_has_policy(ctx) && !is_emsguard_callback(&cb, sizeof(cb))
        && eg.sess_set_get_cb(ctx, cb))
        return;
    if (real.sess_set_get_cb != NULL)
        real.sess_set_get_cb(ctx, cb);
}

void SSL_CTX_set_info_callback(SSL_CTX *ctx, info_fn cb)
{
    if (ctx_has_policy(ctx) && !is_emsguard_callback(&cb, sizeof(cb))
        && eg.ctx_set_info_callback(ctx, cb))
        return;
    if (real.ctx_set_info_callback != NULL)
        real.ctx_set_info_callback(ctx, cb);
}

void SSL_set_info_callback(SSL *ssl, info_fn cb)
{
    if (in_emsguard == 0 && ready() == PRELOAD_ACTIVE && ssl != NULL
        && real.get_ssl_ctx != NULL && ctx_has_policy(real.get_ssl_ctx(ssl))
        && !is_emsguard_callback(&cb, sizeof(cb))
        && eg.set_info_callback(ssl, cb))
        return;
    if (real.set_info_callback != NULL)
        real.set_info_callback(ssl, cb);
}

int SSL_CTX_set_session_ticket_cb(SSL_CTX *ctx,
    SSL_CTX_generate_session_ticket_fn gen_cb,
    SSL_CTX_decrypt_session_ticket_fn dec_cb, void *arg)
{
    if (ctx_has_policy(ctx) && !is_emsguard_callback(&dec_cb, sizeof(dec_cb)))
        return eg.set_session_ticket_cb(ctx, gen_cb, dec_cb, arg);
    return real.set_session_ticket_cb != NULL
        ? real.set_session_ticket_cb(ctx, gen_cb, dec_cb, arg)
        : 0;
}

void SSL_CTX_set_client_hello_cb(SSL_CTX *ctx, SSL_client_hello_cb_fn cb, void *arg)
{
    if (ctx_has_policy(ctx) && !is_emsguard_callback(&cb, sizeof(cb))
        && eg.set_client_hello_cb(ctx, cb, arg))
        return;
    if (real.set_client_hello_cb != NULL)
        real.set_client_hello_cb(ctx, cb, arg);
}

/*
 * The verify and security callback setters.  emsguard's verify callback
 * (KeyExchangeAlgorithms\PKCS MinKeyBitLength) and security callback
 * (Diffie-Hellman ClientMinKeyBitLength, a RequireExtendedMasterSecret=1
 * client's check of the ServerHello) are passed on to libemsguard, which
 * keeps them where they are and stores the application's behind them.
 * Only where libssl holds one of emsguard's (|current|): elsewhere these
 * are libssl's setters, and so are libemsguard's, which call them
 * (in_emsguard keeps those calls from coming back).  libssl's own calls
 * (SSL_dup() copying a callback) and libemsguard's pass emsguard's callback
 * itself: those go to libssl.
 */
void SSL_CTX_set_verify(SSL_CTX *ctx, int verify_mode, SSL_verify_cb cb)
{
    int ok;

    if (in_emsguard == 0 && ready() == PRELOAD_ACTIVE && ctx != NULL
        && real.ctx_get_verify_callback != NULL) {
        SSL_verify_cb current = real.ctx_get_verify_callback(ctx);
        void *cur;

        memcpy(&cur, &current, sizeof(cur));
        if (routes_to_emsguard(&cb, sizeof(cb), cur)) {
            in_emsguard++;
            ok = eg.ctx_set_verify(ctx, verify_mode, cb);
            in_emsguard--;
            if (!ok)
                callback_not_stored("SSL_CTX_set_verify");
            return;
        }
    }
    if (real.ctx_set_verify != NULL)
        real.ctx_set_verify(ctx, verify_mode, cb);
}

/* A NULL callback changes only the mode: libssl's setter, always. */
void SSL_set_verify(SSL *ssl, int verify_mode, SSL_verify_cb cb)
{
    int ok;

    if (cb != NULL && in_emsguard == 0 && ready() == PRELOAD_ACTIVE && ssl != NULL
        && real.get_verify_callback != NULL) {
        SSL_verify_cb current = real.get_verify_callback(ssl);
        void *cur;

        memcpy(&cur, &current, sizeof(cur));
        if (routes_to_emsguard(&cb, sizeof(cb), cur)) {
            in_emsguard++;
            ok = eg.set_verify(ssl, verify_mode, cb);
            in_emsguard--;
            if (!ok)
                callback_not_stored("SSL_set_verify");
            return;
        }
    }
    if (real.set_verify != NULL)
        real.set_verify(ssl, verify_mode, cb);
}

/*
 * The application's certificate check replaces X509_verify_cert(), and with
 * it emsguard's verify callback: on a ctx with the policy, libemsguard runs
 * it from its own check (or passes it to libssl where it checks nothing).
 * OpenSSL has no getter for it, so every call on such a ctx goes there.
 */
void SSL_CTX_set_cert_verify_callback(SSL_CTX *ctx, cert_verify_fn cb, void *arg)
{
    void *fn;
    int ok;

    memcpy(&fn, &cb, sizeof(fn));
    if (ctx_has_policy(ctx) && !in_span(&eg_span, fn)) {
        in_emsguard++;
        ok = eg.ctx_set_cert_verify(ctx, cb, arg);
        in_emsguard--;
        if (!ok)
            callback_not_stored("SSL_CTX_set_cert_verify_callback");
        return;
    }
    if (real.ctx_set_cert_verify != NULL)
        real.ctx_set_cert_verify(ctx, cb, arg);
}

void SSL_CTX_set_security_callback(SSL_CTX *ctx, security_fn cb)
{
    int ok;

    if (in_emsguard == 0 && ready() == PRELOAD_ACTIVE && ctx != NULL
        && real.ctx_get_security_cb != NULL) {
        security_fn current = real.ctx_get_security_cb(ctx);
        void *cur;

        memcpy(&cur, &current, sizeof(cur));
        if (routes_to_emsguard(&cb, sizeof(cb), cur)) {
            in_emsguard++;
            ok = eg.ctx_set_security_cb(ctx, cb);
            in_emsguard--;
            if (!ok)
                callback_not_stored("SSL_CTX_set_security_callback");
            return;
        }
    }
    if (real.ctx_set_security_cb != NULL)
        real.ctx_set_security_cb(ctx, cb);
}

void SSL_set_security_callback(SSL *ssl, security_fn cb)
{
    int ok;

    if (in_emsguard == 0 && ready() == PRELOAD_ACTIVE && ssl != NULL
        && real.get_security_cb != NULL) {
        security_fn current = real.get_security_cb(ssl);
        void *cur;

        memcpy(&cur, &current, sizeof(cur));
        if (routes_to_emsguard(&cb, sizeof(cb), cur)) {
            in_emsguard++;
            ok = eg.set_security_cb(ssl, cb);
            in_emsguard--;
            if (!ok)
                callback_not_stored("SSL_set_security_callback");
            return;
        }
    }
    if (real.set_security_cb != NULL)
        real.set_security_cb(ssl, cb);
}

/*
 * The getters.  libssl holds emsguard's callbacks, and the setters above
 * store the application's where emsguard calls them; OpenSSL's getters
 * would hand the application emsguard's.  An application that chains
 * (prev = get(); set(mine); mine calls prev) would then never reach its
 * previous callback.  So the application gets what it would get without
 * emsguard: the callback emsguard chains, from libemsguard's getters.
 *
 * libemsguard and libssl get libssl's own answer: emsguard reads libssl's
 * callbacks on its info path, and SSL_dup() copies the per-SSL callback
 * through SSL_get_info_callback() (the connection's record, with the
 * application's callback in it, follows through ex_data).
 */
new_session_fn SSL_CTX_sess_get_new_cb(SSL_CTX *ctx)
{
    const void *caller = __builtin_return_address(0);
    new_session_fn cb;

    if (in_emsguard == 0)
        ready();
    if (real.sess_get_new_cb == NULL)
        return NULL;
    cb = real.sess_get_new_cb(ctx);
    if (!hides_app_callback(&cb, sizeof(cb), caller))
        return cb;
    in_emsguard++; /* its call of this getter gets libssl's answer */
    cb = eg.sess_get_new_cb(ctx);
    in_emsguard--;
    return cb;
}

get_session_fn SSL_CTX_sess_get_get_cb(SSL_CTX *ctx)
{
    const void *caller = __builtin_return_address(0);
    get_session_fn cb;

    if (in_emsguard == 0)
        ready();
    if (real.sess_get_get_cb == NULL)
        return NULL;
    cb = real.sess_get_get_cb(ctx);
    if (!hides_app_callback(&cb, sizeof(cb), caller))
        return cb;
    in_emsguard++;
    cb = eg.sess_get_get_cb(ctx);
    in_emsguard--;
    return cb;
}

info_fn SSL_CTX_get_info_callback(SSL_CTX *ctx)
{
    const void *caller = __builtin_return_address(0);
    info_fn cb;

    if (in_emsguard == 0)
        ready();
    if (real.ctx_get_info_callback == NULL)
        return NULL;
    cb = real.ctx_get_info_callback(ctx);
    if (!hides_app_callback(&cb, sizeof(cb), caller))
        return cb;
    in_emsguard++;
    cb = eg.ctx_get_info_callback(ctx);
    in_emsguard--;
    return cb;
}

info_fn SSL_get_info_callback(const SSL *ssl)
{
    const void *caller = __builtin_return_address(0);
    info_fn cb;

    if (in_emsguard == 0)
        ready();
    if (real.get_info_callback == NULL)
        return NULL;
    cb = real.get_info_callback(ssl);
    if (!hides_app_callback(&cb, sizeof(cb), caller))
        return cb;
    in_emsguard++;
    cb = eg.get_info_callback(ssl);
    in_emsguard--;
    return cb;
}

SSL_verify_cb SSL_CTX_get_verify_callback(const SSL_CTX *ctx)
{
    const void *caller = __builtin_return_address(0);
    SSL_verify_cb cb;

    if (in_emsguard == 0)
        ready();
    if (real.ctx_get_verify_callback == NULL)
        return NULL;
    cb = real.ctx_get_verify_callback(ctx);
    if (!hides_app_callback(&cb, sizeof(cb), caller))
        return cb;
    in_emsguard++;
    cb = eg.ctx_get_verify_callback(ctx);
    in_emsguard--;
    return cb;
}

SSL_verify_cb SSL_get_verify_callback(const SSL *ssl)
{
    const void *caller = __builtin_return_address(0);
    SSL_verify_cb cb;

    if (in_emsguard == 0)
        ready();
    if (real.get_verify_callback == NULL)
        return NULL;
    cb = real.get_verify_callback(ssl);
    if (!hides_app_callback(&cb, sizeof(cb), caller))
        return cb;
    in_emsguard++;
    cb = eg.get_verify_callback(ssl);
    in_emsguard--;
    return cb;
}

security_fn SSL_CTX_get_security_callback(const SSL_CTX *ctx)
{
    const void *caller = __builtin_return_address(0);
    security_fn cb;

    if (in_emsguard == 0)
        ready();
    if (real.ctx_get_security_cb == NULL)
        return NULL;
    cb = real.ctx_get_security_cb(ctx);
    if (!hides_app_callback(&cb, sizeof(cb), caller))
        return cb;
    in_emsguard++;
    cb = eg.ctx_get_security_cb(ctx);
    in_emsguard--;
    return cb;
}

security_fn SSL_get_security_callback(const SSL *ssl)
{
    const void *caller = __builtin_return_address(0);
    security_fn cb;

    if (in_emsguard == 0)
        ready();
    if (real.get_security_cb == NULL)
        return NULL;
    cb = real.get_security_cb(ssl);
    if (!hides_app_callback(&cb, sizeof(cb), caller))
        return cb;
    in_emsguard++;
    cb = eg.get_security_cb(ssl);
    in_emsguard--;
    return cb;
}

/* ---- interposed dl functions ---------------------------------------------- */
/*
 * Programs that dlopen libssl reach it in ways symbol interposition does not
 * see.  dlsym() on libssl's handle is covered: it gets our definitions.
 * What stays out of reach is never silent: an SSL_CTX made around us is
 * reported by ctx_made() once init() has run, and dlopen() makes init() run
 * as soon as libssl is in the process (and warns about RTLD_DEEPBIND), as
 * does dlsym() on a handle when dlopen() could not look (see dlopen()).
 */

/* Our definition of |name| if |found| is the next one, which ours calls. */
static void *interposed_definition(const char *name, void *found)
{
    void *next, *ours;

#define X(fn, next_def)                                                   \
    if (strcmp(name, #fn) == 0) {                                         \
        __typeof__(&fn) ours_ = fn;                                       \
                                                                          \
        memcpy(&next, &(next_def), sizeof(next));                         \
        memcpy(&ours, &ours_, sizeof(ours));                              \
        return found == next ? ours : found;                              \
    }
    PRELOAD_INTERPOSED(X)
#undef X
    return found;
}

static int is_interposed(const char *name, int *libssl_function)
{
#define X(fn, next_def)                                                   \
    if (strcmp(name, #fn) == 0) {                                         \
        *libssl_function = strncmp(#fn, "SSL_", 4) == 0;                  \
        return 1;                                                         \
    }
    PRELOAD_INTERPOSED(X)
#undef X
    return 0;
}

/* Our dlopen()/dlmopen() passed a load on without looking at it. */
static int unexamined_load;

NOT_BEFORE_ASAN void *dlsym(void *handle, const char *name)
{
    dlsym_fn *next = next_dlsym();
    int libssl_function = 0;
    void *found;

    if (next == NULL)
        return NULL;
    if (handle == RTLD_DEFAULT || handle == RTLD_NEXT || in_emsguard > 0)
        TAIL_CALL return next(handle, name);
    /*
     * Before the lookup, which resets dlerror() whatever we did here: a
     * handle from dlmopen() (nothing of ours there), a load our dlopen()
     * could not look at.
     */
    if (check_namespace(handle))
        return next(handle, name);
    if (__atomic_load_n(&unexamined_load, __ATOMIC_RELAXED))
        init_if_libssl_loaded();
    found = next(handle, name);
    if (found == NULL || !is_interposed(name, &libssl_function))
        return found;
    /* What ours call must be known to compare. */
    if (libssl_function) {
        ready();
    } else {
        (void)next_dlopen();
        (void)next_dlmopen();
    }
    found = interposed_definition(name, found);
    /* Our lookups must not leave an error behind a lookup that succeeded. */
    (void)dlerror();
    return found;
}

void *dlopen(const char *file, int flags)
{
    dlopen_fn *next = next_dlopen();
    void *h;

    if (next == NULL)
        return NULL;
    if (in_emsguard > 0)
        TAIL_CALL return next(file, flags);
    if (!same_file_from_here(file, __builtin_return_address(0))) {
        if (file != NULL)
            __atomic_store_n(&unexamined_load, 1, __ATOMIC_RELAXED);
        TAIL_CALL return next(file, flags);
    }
    if ((h = next(file, flags)) != NULL) {
        after_load(h, flags);
        (void)dlerror(); /* a successful dlopen() leaves no error */
    }
    return h;
}

void *dlmopen(Lmid_t lmid, const char *file, int flags)
{
    dlmopen_fn *next = next_dlmopen();
    void *h;

    if (next == NULL)
        return NULL;
    if (in_emsguard > 0)
        TAIL_CALL return next(lmid, file, flags);
    if (!same_file_from_here(file, __builtin_return_address(0))) {
        __atomic_store_n(&unexamined_load, 1, __ATOMIC_RELAXED);
        TAIL_CALL return next(lmid, file, flags);
    }
    if ((h = next(lmid, file, flags)) != NULL) {
        after_load(h, flags);
        (void)dlerror();
    }
    return h;
}
