/*
 * libemsguard-preload.so: the policy for applications that cannot call
 * EMSGUARD_enable() themselves.  Loaded with LD_PRELOAD, it interposes
 * SSL_CTX_new()/SSL_CTX_new_ex() and enables the policy on every SSL_CTX the
 * process creates, and redirects the session and info callback setters so
 * that callbacks set later are chained behind the policy's instead of
 * replacing them.
 *
 * It links nothing but libc: a process that never calls libssl never loads
 * libemsguard or libssl because of us.  On the first interposed call we check
 * that the libssl answering is OpenSSL 3, then dlopen libemsguard.so.0 (it
 * binds to the libssl already loaded).  With another libssl we stay passive
 * and say so once.
 *
 * Policy: the emsguard section of the file named by EMSGUARD_CONF, or of the
 * process's openssl.cnf (OPENSSL_CONF or the default), else the defaults.  A
 * configuration that does not parse fails closed: every SSL_CTX_new() then
 * returns NULL with the reason on the error queue.
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/ssl.h>
#include "emsguard.h"

/*
 * Every function this library defines for the process: X(function, where
 * the next definition is kept).  provider/preload.map must export exactly
 * these, and test/preload_paths.sh checks the built library against this
 * list: a function interposed here but not exported is never reached.
 */
#define PRELOAD_INTERPOSED(X)                                     \
    X(SSL_CTX_new, real.ctx_new)                                  \
    X(SSL_CTX_new_ex, real.ctx_new_ex)                            \
    X(SSL_CTX_sess_set_new_cb, real.sess_set_new_cb)              \
    X(SSL_CTX_sess_set_get_cb, real.sess_set_get_cb)              \
    X(SSL_CTX_set_info_callback, real.ctx_set_info_callback)      \
    X(SSL_set_info_callback, real.set_info_callback)              \
    X(SSL_CTX_set_session_ticket_cb, real.set_session_ticket_cb)  \
    X(SSL_CTX_set_client_hello_cb, real.set_client_hello_cb)

#define LOG_PREFIX "emsguard-preload: "
#define EMSGUARD_SONAME "libemsguard.so.0"

typedef int (*new_session_fn)(SSL *, SSL_SESSION *);
typedef SSL_SESSION *(*get_session_fn)(SSL *, const unsigned char *, int, int *);
typedef void (*info_fn)(const SSL *, int, int);

/* The next definitions of what we interpose: libssl's own. */
static struct {
    SSL_CTX *(*ctx_new)(const SSL_METHOD *);
    SSL_CTX *(*ctx_new_ex)(OSSL_LIB_CTX *, const char *, const SSL_METHOD *);
    void (*ctx_free)(SSL_CTX *);
    void (*sess_set_new_cb)(SSL_CTX *, new_session_fn);
    void (*sess_set_get_cb)(SSL_CTX *, get_session_fn);
    void (*ctx_set_info_callback)(SSL_CTX *, info_fn);
    void (*set_info_callback)(SSL *, info_fn);
    int (*set_session_ticket_cb)(SSL_CTX *, SSL_CTX_generate_session_ticket_fn,
        SSL_CTX_decrypt_session_ticket_fn, void *);
    void (*set_client_hello_cb)(SSL_CTX *, SSL_client_hello_cb_fn, void *);
    SSL_CTX *(*get_ssl_ctx)(const SSL *);
} real;

/* What we use of libemsguard. */
static struct {
    EMSGUARD_POLICY *(*policy_new)(void);
    void (*policy_free)(EMSGUARD_POLICY *);
    int (*policy_from_config)(EMSGUARD_POLICY *, const char *, int *);
    int (*enable_policy)(SSL_CTX *, const EMSGUARD_POLICY *);
    int (*is_enabled)(const SSL_CTX *);
    int (*sess_set_new_cb)(SSL_CTX *, new_session_fn);
    int (*sess_set_get_cb)(SSL_CTX *, get_session_fn);
    int (*ctx_set_info_callback)(SSL_CTX *, info_fn);
    int (*set_info_callback)(SSL *, info_fn);
    int (*set_session_ticket_cb)(SSL_CTX *, SSL_CTX_generate_session_ticket_fn,
        SSL_CTX_decrypt_session_ticket_fn, void *);
    int (*set_client_hello_cb)(SSL_CTX *, SSL_client_hello_cb_fn, void *);
    void *base; /* load address of libemsguard, to recognise its callbacks */
} eg;

static enum {
    PRELOAD_PASSIVE, /* not OpenSSL 3, or libemsguard missing: forward only */
    PRELOAD_ACTIVE, /* policy loaded: enable it on every SSL_CTX */
    PRELOAD_BAD_CONFIG /* the configuration is invalid: fail closed */
} mode = PRELOAD_PASSIVE;

static EMSGUARD_POLICY *policy;
static const char *config_file; /* NULL: the process's openssl.cnf */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/*
 * Calls into libemsguard on this thread: the libssl functions they call go
 * straight to libssl.  libemsguard makes a scratch SSL_CTX to try the
 * Schannel settings; through our SSL_CTX_new it would be enabled in turn,
 * and so on until the stack ran out.
 */
static _Thread_local unsigned int in_emsguard;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;

    fputs(LOG_PREFIX, stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int debug_enabled(void)
{
    const char *v = getenv("EMSGUARD_DEBUG");

    return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

/*
 * dlsym() returns void *; POSIX guarantees it converts to a function
 * pointer.  The memcpy keeps -Wpedantic-style checks quiet about it.
 */
#define RESOLVE(handle, field, name)                                 \
    do {                                                             \
        void *sym_ = dlsym((handle), (name));                        \
        memcpy(&(field), &sym_, sizeof(field));                      \
    } while (0)

static void resolve_libssl(void)
{
    RESOLVE(RTLD_NEXT, real.ctx_new, "SSL_CTX_new");
    RESOLVE(RTLD_NEXT, real.ctx_new_ex, "SSL_CTX_new_ex");
    RESOLVE(RTLD_NEXT, real.ctx_free, "SSL_CTX_free");
    RESOLVE(RTLD_NEXT, real.sess_set_new_cb, "SSL_CTX_sess_set_new_cb");
    RESOLVE(RTLD_NEXT, real.sess_set_get_cb, "SSL_CTX_sess_set_get_cb");
    RESOLVE(RTLD_NEXT, real.ctx_set_info_callback, "SSL_CTX_set_info_callback");
    RESOLVE(RTLD_NEXT, real.set_info_callback, "SSL_set_info_callback");
    RESOLVE(RTLD_NEXT, real.set_session_ticket_cb, "SSL_CTX_set_session_ticket_cb");
    RESOLVE(RTLD_NEXT, real.set_client_hello_cb, "SSL_CTX_set_client_hello_cb");
    RESOLVE(RTLD_NEXT, real.get_ssl_ctx, "SSL_get_SSL_CTX");
}

/* The libssl serving this process is OpenSSL 3 (the ABI we were built for). */
static int libssl_is_openssl3(void)
{
    unsigned int (*version_major)(void);
    Dl_info info;
    void *fn;

    memcpy(&fn, &real.ctx_new, sizeof(fn));
    if (real.ctx_new == NULL || real.ctx_new_ex == NULL
        || dladdr(fn, &info) == 0 || info.dli_fname == NULL) {
        say("no OpenSSL 3 libssl in this process; policy not applied");
        return 0;
    }
    RESOLVE(RTLD_DEFAULT, version_major, "OPENSSL_version_major");
    if (strstr(info.dli_fname, "libssl.so.3") == NULL || version_major == NULL
        || version_major() != 3) {
        say("%s is not OpenSSL 3; policy not applied", info.dli_fname);
        return 0;
    }
    return 1;
}

/* libemsguard from our own directory first (a build tree), then the path. */
static void *open_libemsguard(void)
{
    char path[PATH_MAX];
    Dl_info info;
    void *h;

    if (dladdr((void *)&init_once, &info) != 0 && info.dli_fname != NULL) {
        const char *slash = strrchr(info.dli_fname, '/');

        if (slash != NULL
            && snprintf(path, sizeof(path), "%.*s/" EMSGUARD_SONAME,
                   (int)(slash - info.dli_fname), info.dli_fname)
                < (int)sizeof(path)
            && (h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) != NULL)
            return h;
    }
    return dlopen(EMSGUARD_SONAME, RTLD_NOW | RTLD_LOCAL);
}

static int resolve_libemsguard(void *h)
{
    Dl_info info;
    void *fn;

    RESOLVE(h, eg.policy_new, "EMSGUARD_POLICY_new");
    RESOLVE(h, eg.policy_free, "EMSGUARD_POLICY_free");
    RESOLVE(h, eg.policy_from_config, "EMSGUARD_POLICY_from_config");
    RESOLVE(h, eg.enable_policy, "EMSGUARD_enable_policy");
    RESOLVE(h, eg.is_enabled, "EMSGUARD_CTX_is_enabled");
    RESOLVE(h, eg.sess_set_new_cb, "EMSGUARD_CTX_sess_set_new_cb");
    RESOLVE(h, eg.sess_set_get_cb, "EMSGUARD_CTX_sess_set_get_cb");
    RESOLVE(h, eg.ctx_set_info_callback, "EMSGUARD_CTX_set_info_callback");
    RESOLVE(h, eg.set_info_callback, "EMSGUARD_set_info_callback");
    RESOLVE(h, eg.set_session_ticket_cb, "EMSGUARD_CTX_set_session_ticket_cb");
    RESOLVE(h, eg.set_client_hello_cb, "EMSGUARD_CTX_set_client_hello_cb");
    memcpy(&fn, &eg.enable_policy, sizeof(fn));
    if (eg.policy_new == NULL || eg.policy_free == NULL
        || eg.policy_from_config == NULL || eg.enable_policy == NULL
        || eg.is_enabled == NULL || eg.sess_set_new_cb == NULL
        || eg.sess_set_get_cb == NULL || eg.ctx_set_info_callback == NULL
        || eg.set_info_callback == NULL || eg.set_session_ticket_cb == NULL
        || eg.set_client_hello_cb == NULL || dladdr(fn, &info) == 0)
        return 0;
    eg.base = info.dli_fbase;
    return 1;
}

static void print_errors(void)
{
    void (*print)(FILE *);

    RESOLVE(RTLD_DEFAULT, print, "ERR_print_errors_fp");
    if (print != NULL)
        print(stderr);
}

static void init(void)
{
    void *h;
    int found = 0;

    resolve_libssl();
    if (!libssl_is_openssl3())
        return;
    if ((h = open_libemsguard()) == NULL || !resolve_libemsguard(h)) {
        /* Installed without its library: refuse rather than run unguarded. */
        say("cannot load " EMSGUARD_SONAME " (%s); every SSL_CTX_new() will fail",
            h == NULL ? dlerror() : "symbols missing");
        mode = PRELOAD_BAD_CONFIG;
        return;
    }
    config_file = getenv("EMSGUARD_CONF");
    if (config_file != NULL && *config_file == '\0')
        config_file = NULL;
    if ((policy = eg.policy_new()) == NULL
        || !eg.policy_from_config(policy, config_file, &found)) {
        say("error: invalid configuration; every SSL_CTX_new() will fail:");
        print_errors();
        mode = PRELOAD_BAD_CONFIG;
        return;
    }
    mode = PRELOAD_ACTIVE;
    if (debug_enabled())
        say("debug: policy from %s", found ? (config_file != NULL ? config_file
                                                                  : "openssl.cnf")
                                           : "built-in defaults");
}

static int ready(void)
{
    pthread_once(&init_once, init);
    return mode;
}

/* True for a callback inside libemsguard: emsguard installing its own. */
static int is_emsguard_callback(const void *fn_ptr, size_t size)
{
    void *fn = NULL;
    Dl_info info;

    memcpy(&fn, fn_ptr, size < sizeof(fn) ? size : sizeof(fn));
    return fn != NULL && eg.base != NULL && dladdr(fn, &info) != 0
        && info.dli_fbase == eg.base;
}

static int ctx_has_policy(const SSL_CTX *ctx)
{
    return in_emsguard == 0 && ready() == PRELOAD_ACTIVE && ctx != NULL
        && eg.is_enabled(ctx);
}

/* Enables the policy on a fresh ctx, or frees it and fails closed. */
static SSL_CTX *apply_policy(SSL_CTX *ctx)
{
    int ok;

    if (ctx == NULL)
        return NULL;
    switch (mode) {
    case PRELOAD_ACTIVE:
        in_emsguard++;
        ok = eg.enable_policy(ctx, policy);
        in_emsguard--;
        if (ok)
            return ctx;
        break;
    case PRELOAD_BAD_CONFIG:
        if (eg.policy_from_config != NULL && policy != NULL) {
            int found;

            /* Again, to put the reason on this caller's error queue. */
            in_emsguard++;
            (void)eg.policy_from_config(policy, config_file, &found);
            in_emsguard--;
        }
        break;
    default:
        return ctx;
    }
    real.ctx_free(ctx);
    return NULL;
}

/* ---- interposed libssl functions ----------------------------------------- */

SSL_CTX *SSL_CTX_new_ex(OSSL_LIB_CTX *libctx, const char *propq,
    const SSL_METHOD *meth)
{
    if (in_emsguard > 0) /* libemsguard's scratch SSL_CTX */
        return real.ctx_new_ex != NULL ? real.ctx_new_ex(libctx, propq, meth) : NULL;
    ready();
    if (real.ctx_new_ex == NULL)
        return NULL;
    return apply_policy(real.ctx_new_ex(libctx, propq, meth));
}

SSL_CTX *SSL_CTX_new(const SSL_METHOD *meth)
{
    if (in_emsguard > 0)
        return real.ctx_new != NULL ? real.ctx_new(meth) : NULL;
    ready();
    if (real.ctx_new == NULL)
        return NULL;
    /* libssl's SSL_CTX_new may call ours for _ex; enabling twice is a no-op. */
    return apply_policy(real.ctx_new(meth));
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
