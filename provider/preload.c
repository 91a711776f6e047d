/*
 * libemsguard-preload.so: the policy for applications that cannot call
 * EMSGUARD_enable() themselves.  Loaded with LD_PRELOAD, it interposes
 * SSL_CTX_new()/SSL_CTX_new_ex() and enables the policy on every SSL_CTX the
 * process creates, and redirects the session, info, ClientHello, verify,
 * certificate verify and security callback setters so that callbacks set
 * later are chained behind the policy's instead of replacing them; their
 * getters answer with the application's callbacks, so that an application
 * chaining its own reaches them.
 *
 * It links nothing but libc: a process that never calls libssl never loads
 * libemsguard or libssl because of us.  On the first interposed call we check
 * that the libssl answering is OpenSSL 3, then dlopen libemsguard.so.0 (it
 * binds to the libssl already loaded).  With another libssl we stay passive
 * and say so once.
 *
 * Programs that dlopen libssl (Python's ssl module, plugins): libssl loaded
 * RTLD_LOCAL is not in the global scope that RTLD_NEXT searches, so we find
 * it by its soname among the loaded objects.  dlsym() is interposed too: a
 * lookup on libssl's own handle of a function we interpose gets ours.  What
 * symbol interposition cannot reach (RTLD_DEEPBIND, dlvsym(), a dlmopen()
 * namespace) is never silent, on stderr and in syslog: an SSL_CTX made
 * behind our back is reported by an SSL_CTX ex_data "new" callback, and our
 * dlopen()/dlmopen() report an RTLD_DEEPBIND object that binds to libssl and
 * libssl in another namespace.
 *
 * A program that carries its own OpenSSL (linked into the executable and
 * exported, as Debian's node does, or in a library preloaded ahead of us)
 * never calls us: we say so at load, on stderr and in syslog.  A fully
 * static program ignores LD_PRELOAD: nothing of ours runs there.
 *
 * Policy: the emsguard section of the file named by EMSGUARD_CONF; without
 * it, the policy of the configuration the process's OpenSSL loaded (the
 * emsguard provider active in the default library context, whatever file
 * the program chose; else the process's openssl.cnf, OPENSSL_CONF or the
 * default), else the defaults.  Decided at the first SSL_CTX the process
 * makes, once OpenSSL has loaded that configuration (decide_policy()), and
 * read again at a later SSL_CTX_new() when an emsguard provider was loaded
 * or unloaded since (a configuration loaded after the first SSL_CTX:
 * policy_in_force(); a change of values is said loudly).  A
 * configuration that does not parse, or an emsguard provider configured but
 * not active, fails closed: every SSL_CTX_new() then returns NULL with the
 * reason on the error queue.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <openssl/ssl.h>
#include "emsguard.h"

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

#define LOG_PREFIX "emsguard-preload: "
#define EMSGUARD_SONAME "libemsguard.so.0"

typedef int (*new_session_fn)(SSL *, SSL_SESSION *);
typedef SSL_SESSION *(*get_session_fn)(SSL *, const unsigned char *, int, int *);
typedef void (*info_fn)(const SSL *, int, int);
typedef int (*security_fn)(const SSL *, const SSL_CTX *, int, int, int, void *, void *);
typedef int (*cert_verify_fn)(X509_STORE_CTX *, void *);
typedef void *dlsym_fn(void *, const char *);
typedef void *dlopen_fn(const char *, int);
typedef void *dlmopen_fn(Lmid_t, const char *, int);

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
    new_session_fn (*sess_get_new_cb)(SSL_CTX *);
    get_session_fn (*sess_get_get_cb)(SSL_CTX *);
    info_fn (*ctx_get_info_callback)(SSL_CTX *);
    info_fn (*get_info_callback)(const SSL *);
    void (*ctx_set_verify)(SSL_CTX *, int, SSL_verify_cb);
    void (*set_verify)(SSL *, int, SSL_verify_cb);
    void (*ctx_set_cert_verify)(SSL_CTX *, cert_verify_fn, void *);
    void (*ctx_set_security_cb)(SSL_CTX *, security_fn);
    void (*set_security_cb)(SSL *, security_fn);
    SSL_verify_cb (*ctx_get_verify_callback)(const SSL_CTX *);
    SSL_verify_cb (*get_verify_callback)(const SSL *);
    security_fn (*ctx_get_security_cb)(const SSL_CTX *);
    security_fn (*get_security_cb)(const SSL *);
    SSL_CTX *(*get_ssl_ctx)(const SSL *);
} real;

/* libc's dlsym, dlopen and dlmopen: resolved on first use (libc_dl_fn()). */
static struct {
    void *dlsym;
    void *dlopen;
    void *dlmopen;
} libc_dl;

/* libssl's handle (found loaded, never loaded by us), for the lookups in it. */
static void *libssl_handle;

/* What we use of libemsguard. */
static struct {
    EMSGUARD_POLICY *(*policy_new)(void);
    void (*policy_free)(EMSGUARD_POLICY *);
    int (*policy_from_config)(EMSGUARD_POLICY *, const char *, int *);
    int (*policy_from_provider)(EMSGUARD_POLICY *, OSSL_LIB_CTX *, int *);
    int (*policy_equal)(const EMSGUARD_POLICY *, const EMSGUARD_POLICY *);
    int (*policy_get_dword)(const EMSGUARD_POLICY *, const char *, uint32_t *);
    uint64_t (*provider_generation)(void);
    int (*enable_policy)(SSL_CTX *, const EMSGUARD_POLICY *);
    int (*is_enabled)(const SSL_CTX *);
    int (*sess_set_new_cb)(SSL_CTX *, new_session_fn);
    int (*sess_set_get_cb)(SSL_CTX *, get_session_fn);
    int (*ctx_set_info_callback)(SSL_CTX *, info_fn);
    int (*set_info_callback)(SSL *, info_fn);
    int (*set_session_ticket_cb)(SSL_CTX *, SSL_CTX_generate_session_ticket_fn,
        SSL_CTX_decrypt_session_ticket_fn, void *);
    int (*set_client_hello_cb)(SSL_CTX *, SSL_client_hello_cb_fn, void *);
    new_session_fn (*sess_get_new_cb)(SSL_CTX *);
    get_session_fn (*sess_get_get_cb)(SSL_CTX *);
    info_fn (*ctx_get_info_callback)(SSL_CTX *);
    info_fn (*get_info_callback)(const SSL *);
    int (*ctx_set_verify)(SSL_CTX *, int, SSL_verify_cb);
    int (*set_verify)(SSL *, int, SSL_verify_cb);
    int (*ctx_set_cert_verify)(SSL_CTX *, cert_verify_fn, void *);
    int (*ctx_set_security_cb)(SSL_CTX *, security_fn);
    int (*set_security_cb)(SSL *, security_fn);
    SSL_verify_cb (*ctx_get_verify_callback)(const SSL_CTX *);
    SSL_verify_cb (*get_verify_callback)(const SSL *);
    security_fn (*ctx_get_security_cb)(const SSL_CTX *);
    security_fn (*get_security_cb)(const SSL *);
    void *base; /* load address of libemsguard, to recognise its callbacks */
} eg;

/*
 * The addresses libemsguard and libssl are mapped at: the getters tell
 * their calls from the application's by the return address, in a few
 * instructions (dladdr() takes the loader's lock and searches).
 */
struct span {
    uintptr_t lo, hi;
};

static struct span eg_span, libssl_span;

static enum {
    PRELOAD_PASSIVE, /* not OpenSSL 3, or libemsguard missing: forward only */
    PRELOAD_ACTIVE, /* libemsguard loaded: enable the policy on every SSL_CTX */
    PRELOAD_BAD_CONFIG /* libemsguard missing or incomplete: fail closed (a bad
                        * policy fails closed at the first SSL_CTX: have_policy()) */
} mode = PRELOAD_PASSIVE;

/*
 * The policy in force: replaced (policy_in_force()) when an emsguard
 * provider was loaded or unloaded since it was read, and never freed, so
 * that a thread enabling an SSL_CTX with the one before can finish (the
 * policies replaced stay on retired_policies: one per change of values).
 */
static EMSGUARD_POLICY *policy;
/* EMSGUARD_provider_generation() when |policy| was read. */
static uint64_t policy_generation;
static pthread_mutex_t redecide_lock = PTHREAD_MUTEX_INITIALIZER;
struct retired_policy {
    EMSGUARD_POLICY *policy;
    struct retired_policy *next;
};
static struct retired_policy *retired_policies;
/* SSL_CTXs this library enabled, for the message when the policy changes. */
static unsigned long ctxs_enabled;
static const char *config_file; /* NULL: the process's openssl.cnf */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_done; /* atomic: init() has run */
/* The policy is decided at the first SSL_CTX (decide_policy()). */
static pthread_once_t policy_once = PTHREAD_ONCE_INIT;
static int policy_decided; /* written once, inside policy_once */

/*
 * Calls into libemsguard (and init()) on this thread: the libssl functions
 * they call go straight to libssl.  libemsguard makes a scratch SSL_CTX to
 * try the Schannel settings; through our SSL_CTX_new it would be enabled in
 * turn, and so on until the stack ran out.
 */
static _Thread_local unsigned int in_emsguard;
/* Our SSL_CTX_new/_ex are running on this thread (see ctx_made()). */
static _Thread_local unsigned int making_ctx;

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

/* An error that must not go unnoticed: stderr and syslog. */
static void say_loud(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say_loud(const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    say("%s", msg);
    syslog(LOG_ERR, LOG_PREFIX "%s", msg);
}

static int debug_enabled(void)
{
    const char *v = getenv("EMSGUARD_DEBUG");

    return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

/*
 * The sanitizer runtime, preloaded in front of us in sanitizer builds, looks
 * up its interceptors' targets through our dlsym() before it has mapped its
 * shadow memory: that path must not be instrumented.
 */
#if defined(__SANITIZE_ADDRESS__)
#define NOT_BEFORE_ASAN __attribute__((no_sanitize_address))
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NOT_BEFORE_ASAN __attribute__((no_sanitize_address))
#endif
#endif
#ifndef NOT_BEFORE_ASAN
#define NOT_BEFORE_ASAN
#endif

/*
 * libc's dlsym, the definition after ours.  dlvsym, which we leave alone,
 * finds it; the versions are glibc >= 2.34's (libdl merged into libc) and
 * the older libdl's base versions (x86_64, aarch64).
 */
NOT_BEFORE_ASAN static dlsym_fn *next_dlsym(void)
{
    static const char *const versions[] = { "GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.17" };
    dlsym_fn *fn;
    void *sym = __atomic_load_n(&libc_dl.dlsym, __ATOMIC_ACQUIRE);
    size_t i;

    for (i = 0; sym == NULL && i < sizeof(versions) / sizeof(versions[0]); i++)
        sym = dlvsym(RTLD_NEXT, "dlsym", versions[i]);
    if (sym != NULL)
        __atomic_store_n(&libc_dl.dlsym, sym, __ATOMIC_RELEASE);
    memcpy(&fn, &sym, sizeof(fn));
    return fn;
}

/* libc's dlopen or dlmopen (|slot| in libc_dl), the definition after ours. */
static void *libc_dl_fn(void **slot, const char *name)
{
    void *sym = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    dlsym_fn *lookup;

    if (sym == NULL && (lookup = next_dlsym()) != NULL
        && (sym = lookup(RTLD_NEXT, name)) != NULL)
        __atomic_store_n(slot, sym, __ATOMIC_RELEASE);
    return sym;
}

static dlopen_fn *next_dlopen(void)
{
    void *sym = libc_dl_fn(&libc_dl.dlopen, "dlopen");
    dlopen_fn *fn;

    memcpy(&fn, &sym, sizeof(fn));
    return fn;
}

static dlmopen_fn *next_dlmopen(void)
{
    void *sym = libc_dl_fn(&libc_dl.dlmopen, "dlmopen");
    dlmopen_fn *fn;

    memcpy(&fn, &sym, sizeof(fn));
    return fn;
}

/* dlopen() by this library, for itself: never through our dlopen(). */
static void *open_here(const char *file, int flags)
{
    dlopen_fn *fn = next_dlopen();

    return fn != NULL ? fn(file, flags) : NULL;
}

/*
 * dlsym() returns void *; POSIX guarantees it converts to a function
 * pointer.  The memcpy keeps -Wpedantic-style checks quiet about it.  Our
 * own lookups go to libc's dlsym, never to ours.
 */
#define RESOLVE(handle, field, name)                                 \
    do {                                                             \
        dlsym_fn *dlsym_ = next_dlsym();                             \
        void *sym_ = dlsym_ != NULL ? dlsym_((handle), (name)) : NULL; \
        memcpy(&(field), &sym_, sizeof(field));                      \
    } while (0)

static void resolve_libssl_from(void *from)
{
    RESOLVE(from, real.ctx_new, "SSL_CTX_new");
    RESOLVE(from, real.ctx_new_ex, "SSL_CTX_new_ex");
    RESOLVE(from, real.ctx_free, "SSL_CTX_free");
    RESOLVE(from, real.sess_set_new_cb, "SSL_CTX_sess_set_new_cb");
    RESOLVE(from, real.sess_set_get_cb, "SSL_CTX_sess_set_get_cb");
    RESOLVE(from, real.ctx_set_info_callback, "SSL_CTX_set_info_callback");
    RESOLVE(from, real.set_info_callback, "SSL_set_info_callback");
    RESOLVE(from, real.set_session_ticket_cb, "SSL_CTX_set_session_ticket_cb");
    RESOLVE(from, real.set_client_hello_cb, "SSL_CTX_set_client_hello_cb");
    RESOLVE(from, real.sess_get_new_cb, "SSL_CTX_sess_get_new_cb");
    RESOLVE(from, real.sess_get_get_cb, "SSL_CTX_sess_get_get_cb");
    RESOLVE(from, real.ctx_get_info_callback, "SSL_CTX_get_info_callback");
    RESOLVE(from, real.get_info_callback, "SSL_get_info_callback");
    RESOLVE(from, real.ctx_set_verify, "SSL_CTX_set_verify");
    RESOLVE(from, real.set_verify, "SSL_set_verify");
    RESOLVE(from, real.ctx_set_cert_verify, "SSL_CTX_set_cert_verify_callback");
    RESOLVE(from, real.ctx_set_security_cb, "SSL_CTX_set_security_callback");
    RESOLVE(from, real.set_security_cb, "SSL_set_security_callback");
    RESOLVE(from, real.ctx_get_verify_callback, "SSL_CTX_get_verify_callback");
    RESOLVE(from, real.get_verify_callback, "SSL_get_verify_callback");
    RESOLVE(from, real.ctx_get_security_cb, "SSL_CTX_get_security_callback");
    RESOLVE(from, real.get_security_cb, "SSL_get_security_callback");
    RESOLVE(from, real.get_ssl_ctx, "SSL_get_SSL_CTX");
}

static void resolve_libssl(void)
{
    resolve_libssl_from(RTLD_NEXT);
    if (real.ctx_new != NULL)
        return;
    /*
     * A libssl loaded with RTLD_LOCAL (Python's _ssl module links it and is
     * dlopened RTLD_LOCAL) is outside the global scope: find the loaded one
     * by its soname.  RTLD_NOLOAD: never load a libssl the program did not.
     */
    if ((libssl_handle = open_here("libssl.so.3", RTLD_LAZY | RTLD_NOLOAD)) != NULL) {
        resolve_libssl_from(libssl_handle);
        if (debug_enabled())
            say("debug: libssl.so.3 found outside the global scope (loaded RTLD_LOCAL)");
    }
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
    /* Its libcrypto is in its scope, whether or not in the global one. */
    if (libssl_handle == NULL)
        libssl_handle = open_here(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    RESOLVE(libssl_handle != NULL ? libssl_handle : RTLD_DEFAULT, version_major,
        "OPENSSL_version_major");
    if (strstr(info.dli_fname, "libssl.so.3") == NULL || version_major == NULL
        || version_major() != 3) {
        say("%s is not OpenSSL 3; policy not applied", info.dli_fname);
        return 0;
    }
    return 1;
}

struct span_query {
    uintptr_t addr;
    struct span found;
};

static int span_in_object(struct dl_phdr_info *info, size_t size, void *data)
{
    struct span_query *q = data;
    struct span s = { UINTPTR_MAX, 0 };
    int hit = 0;
    ElfW(Half) i;

    (void)size;
    for (i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = (uintptr_t)info->dlpi_addr + ph->p_vaddr;

        if (ph->p_type != PT_LOAD)
            continue;
        if (start < s.lo)
            s.lo = start;
        if (start + ph->p_memsz > s.hi)
            s.hi = start + ph->p_memsz;
        if (q->addr >= start && q->addr < start + ph->p_memsz)
            hit = 1;
    }
    if (hit)
        q->found = s;
    return hit;
}

/* The span of the object that maps |addr|; 0 if none does. */
static int span_of(const void *addr, struct span *out)
{
    struct span_query q = { (uintptr_t)addr, { 0, 0 } };

    if (addr == NULL || dl_iterate_phdr(span_in_object, &q) == 0)
        return 0;
    *out = q.found;
    return 1;
}

static int in_span(const struct span *s, const void *addr)
{
    return (uintptr_t)addr >= s->lo && (uintptr_t)addr < s->hi;
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
            && (h = open_here(path, RTLD_NOW | RTLD_LOCAL)) != NULL)
            return h;
    }
    return open_here(EMSGUARD_SONAME, RTLD_NOW | RTLD_LOCAL);
}

static int resolve_libemsguard(void *h)
{
    Dl_info info;
    void *fn;

    RESOLVE(h, eg.policy_new, "EMSGUARD_POLICY_new");
    RESOLVE(h, eg.policy_free, "EMSGUARD_POLICY_free");
    RESOLVE(h, eg.policy_from_config, "EMSGUARD_POLICY_from_config");
    RESOLVE(h, eg.policy_from_provider, "EMSGUARD_POLICY_from_provider");
    RESOLVE(h, eg.policy_equal, "EMSGUARD_POLICY_equal");
    RESOLVE(h, eg.policy_get_dword, "EMSGUARD_POLICY_get_dword");
    RESOLVE(h, eg.provider_generation, "EMSGUARD_provider_generation");
    RESOLVE(h, eg.enable_policy, "EMSGUARD_enable_policy");
    RESOLVE(h, eg.is_enabled, "EMSGUARD_CTX_is_enabled");
    RESOLVE(h, eg.sess_set_new_cb, "EMSGUARD_CTX_sess_set_new_cb");
    RESOLVE(h, eg.sess_set_get_cb, "EMSGUARD_CTX_sess_set_get_cb");
    RESOLVE(h, eg.ctx_set_info_callback, "EMSGUARD_CTX_set_info_callback");
    RESOLVE(h, eg.set_info_callback, "EMSGUARD_set_info_callback");
    RESOLVE(h, eg.set_session_ticket_cb, "EMSGUARD_CTX_set_session_ticket_cb");
    RESOLVE(h, eg.set_client_hello_cb, "EMSGUARD_CTX_set_client_hello_cb");
    RESOLVE(h, eg.sess_get_new_cb, "EMSGUARD_CTX_sess_get_new_cb");
    RESOLVE(h, eg.sess_get_get_cb, "EMSGUARD_CTX_sess_get_get_cb");
    RESOLVE(h, eg.ctx_get_info_callback, "EMSGUARD_CTX_get_info_callback");
    RESOLVE(h, eg.get_info_callback, "EMSGUARD_get_info_callback");
    RESOLVE(h, eg.ctx_set_verify, "EMSGUARD_CTX_set_verify");
    RESOLVE(h, eg.set_verify, "EMSGUARD_set_verify");
    RESOLVE(h, eg.ctx_set_cert_verify, "EMSGUARD_CTX_set_cert_verify_callback");
    RESOLVE(h, eg.ctx_set_security_cb, "EMSGUARD_CTX_set_security_callback");
    RESOLVE(h, eg.set_security_cb, "EMSGUARD_set_security_callback");
    RESOLVE(h, eg.ctx_get_verify_callback, "EMSGUARD_CTX_get_verify_callback");
    RESOLVE(h, eg.get_verify_callback, "EMSGUARD_get_verify_callback");
    RESOLVE(h, eg.ctx_get_security_cb, "EMSGUARD_CTX_get_security_callback");
    RESOLVE(h, eg.get_security_cb, "EMSGUARD_get_security_callback");
    memcpy(&fn, &eg.enable_policy, sizeof(fn));
    if (eg.policy_new == NULL || eg.policy_free == NULL
        || eg.policy_from_config == NULL || eg.enable_policy == NULL
        || eg.is_enabled == NULL || eg.sess_set_new_cb == NULL
        || eg.sess_set_get_cb == NULL || eg.ctx_set_info_callback == NULL
        || eg.set_info_callback == NULL || eg.set_session_ticket_cb == NULL
        || eg.set_client_hello_cb == NULL || eg.sess_get_new_cb == NULL
        || eg.sess_get_get_cb == NULL || eg.ctx_get_info_callback == NULL
        || eg.get_info_callback == NULL || eg.policy_from_provider == NULL
        || eg.policy_equal == NULL || eg.policy_get_dword == NULL
        || eg.provider_generation == NULL
        || eg.ctx_set_verify == NULL || eg.set_verify == NULL || eg.ctx_set_cert_verify == NULL
        || eg.ctx_set_security_cb == NULL || eg.set_security_cb == NULL
        || eg.ctx_get_verify_callback == NULL || eg.get_verify_callback == NULL
        || eg.ctx_get_security_cb == NULL || eg.get_security_cb == NULL
        || dladdr(fn, &info) == 0
        || !span_of(fn, &eg_span))
        return 0;
    eg.base = info.dli_fbase;
    return 1;
}

static void print_errors(void)
{
    void (*print)(FILE *);

    RESOLVE(libssl_handle != NULL ? libssl_handle : RTLD_DEFAULT, print, "ERR_print_errors_fp");
    if (print != NULL)
        print(stderr);
}

static void init_policy(void)
{
    void *h;

    resolve_libssl();
    if (!libssl_is_openssl3())
        return;
    /* libssl's own calls of the getters get its own answers (SSL_dup()). */
    memcpy(&h, &real.ctx_new, sizeof(h));
    (void)span_of(h, &libssl_span);
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
    /* The policy itself: at the first SSL_CTX, see decide_policy(). */
    mode = PRELOAD_ACTIVE;
}

/*
 * Reads the policy into |into|: the file EMSGUARD_CONF names, else what
 * the process's OpenSSL loaded (the emsguard provider active in the default
 * library context; without one, the process's configuration file, where a
 * provider that is configured but failed to activate fails closed: see
 * EMSGUARD_POLICY_from_provider()).  0 with the reason on the error queue.
 */
static int read_policy(EMSGUARD_POLICY *into, int *found)
{
    int ok;

    in_emsguard++;
    ok = config_file != NULL ? eg.policy_from_config(into, config_file, found)
                             : eg.policy_from_provider(into, NULL, found);
    in_emsguard--;
    return ok;
}

/*
 * Once, after libssl made the process's first SSL_CTX: by then OpenSSL has
 * loaded the configuration the program chose (OPENSSL_INIT_set_config_filename()
 * or _appname() before its first SSL_CTX_new(), as Postfix's tls_config_file
 * and tls_config_name do), which need not be the default file.  Not in
 * init(), which can run at a dlopen() or dlsym() before the program's own
 * OpenSSL initialisation: asking OpenSSL for its providers there would make
 * it load the default file first, and ignore the program's choice for good.
 */
static void decide_policy(void)
{
    int found = 0;

    /* Read before the policy: a change while it is read is seen next time. */
    __atomic_store_n(&policy_generation, eg.provider_generation(), __ATOMIC_RELAXED);
    if ((policy = eg.policy_new()) == NULL || !read_policy(policy, &found)) {
        say("error: invalid configuration; every SSL_CTX_new() will fail:");
        print_errors();
        return;
    }
    policy_decided = 1;
    if (debug_enabled())
        say("debug: policy from %s", found ? (config_file != NULL ? config_file
                                                                  : "openssl.cnf")
                                           : "built-in defaults");
}

static int have_policy(void)
{
    pthread_once(&policy_once, decide_policy);
    return policy_decided;
}

/* The Require value of |p|, for the message below. */
static uint32_t require_of(const EMSGUARD_POLICY *p)
{
    uint32_t v = 0;

    return eg.policy_get_dword(p, "RequireExtendedMasterSecret", &v) ? v : 0;
}

/*
 * An emsguard provider was loaded or unloaded since |policy| was read (a
 * program that loads its configuration after a first SSL_CTX, with
 * CONF_modules_load_file() or OSSL_PROVIDER_load()): read it again, under
 * the lock.  The SSL_CTXs made before keep theirs (emsguard refuses to
 * enable an SSL_CTX a second time with other values): said once per
 * change, loudly.  Returns the policy in force, or NULL with the reason on
 * the error queue (every SSL_CTX_new() then fails until it can be read).
 */
static EMSGUARD_POLICY *redecide_policy(void)
{
    static int read_failure_said;
    EMSGUARD_POLICY *fresh, *old, *current;
    struct retired_policy *r;
    uint64_t generation;
    unsigned long earlier;
    int found = 0;

    pthread_mutex_lock(&redecide_lock);
    old = __atomic_load_n(&policy, __ATOMIC_ACQUIRE);
    generation = eg.provider_generation();
    if (generation == __atomic_load_n(&policy_generation, __ATOMIC_ACQUIRE)) {
        pthread_mutex_unlock(&redecide_lock); /* another thread did it */
        return old;
    }
    if ((fresh = eg.policy_new()) == NULL || !read_policy(fresh, &found)) {
        if (!read_failure_said) {
            read_failure_said = 1;
            say_loud("error: an emsguard provider was loaded or unloaded after this process "
                     "made its first SSL_CTX, and the policy cannot be read again; every "
                     "SSL_CTX_new() fails until it can:");
            print_errors();
            if (fresh != NULL) /* the reason again, on this caller's queue */
                (void)read_policy(fresh, &found);
        }
        pthread_mutex_unlock(&redecide_lock);
        eg.policy_free(fresh);
        return NULL;
    }
    if (eg.policy_equal(fresh, old)) {
        eg.policy_free(fresh);
        current = old;
    } else if ((r = malloc(sizeof(*r))) == NULL) {
        pthread_mutex_unlock(&redecide_lock);
        eg.policy_free(fresh);
        say_loud("error: the emsguard policy changed and there is no memory to keep the "
                 "new one; SSL_CTX_new() fails");
        return NULL;
    } else {
        r->policy = old;
        r->next = retired_policies;
        retired_policies = r;
        __atomic_store_n(&policy, fresh, __ATOMIC_RELEASE);
        current = fresh;
        earlier = __atomic_load_n(&ctxs_enabled, __ATOMIC_RELAXED);
        say_loud("warning: the emsguard policy changed after this process made SSL_CTXs "
                 "(an emsguard provider was loaded or unloaded; now from %s): SSL_CTXs made "
                 "from now on get it, the %lu made before keep the policy they got, which "
                 "is weaker if the new one is stricter%s",
            found ? "the emsguard provider active in the default library context"
                  : "the built-in defaults",
            earlier,
            require_of(old) < require_of(fresh)
                ? "; those earlier SSL_CTXs do NOT require Extended Master Secret "
                  "(RequireExtendedMasterSecret=1 now)"
                : "");
    }
    __atomic_store_n(&policy_generation, generation, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&redecide_lock);
    return current;
}

/*
 * The policy for an SSL_CTX made now.  EMSGUARD_CONF's is fixed; the
 * provider's is read again only when an emsguard provider was initialised
 * or torn down since: one atomic load in libemsguard per SSL_CTX_new().
 */
static EMSGUARD_POLICY *policy_in_force(void)
{
    if (config_file != NULL
        || eg.provider_generation() == __atomic_load_n(&policy_generation, __ATOMIC_ACQUIRE))
        return __atomic_load_n(&policy, __ATOMIC_ACQUIRE);
    return redecide_policy();
}

/* The policy could not be read: its reason again, on this caller's error queue. */
static void raise_policy_error(void)
{
    EMSGUARD_POLICY *scratch = eg.policy_new();
    int found;

    if (scratch != NULL)
        (void)read_policy(scratch, &found);
    eg.policy_free(scratch);
}

/*
 * The "new" callback of an SSL_CTX ex_data index: libssl runs it for every
 * SSL_CTX it makes, however it was called.  One made while neither our
 * SSL_CTX_new nor libemsguard is running on this thread went around us.
 */
static void ctx_made(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
    static int reported;

    (void)parent;
    (void)ptr;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (making_ctx > 0 || in_emsguard > 0
        || __atomic_exchange_n(&reported, 1, __ATOMIC_RELAXED) != 0)
        return;
    say_loud("error: an SSL_CTX was made without passing through this library "
             "(libssl reached through RTLD_DEEPBIND, dlvsym() or another way around "
             "symbol interposition); the emsguard policy is NOT applied to it");
}

static void watch_ctx_creation(void)
{
    int (*get_ex_new_index)(int, long, void *, CRYPTO_EX_new *, CRYPTO_EX_dup *,
        CRYPTO_EX_free *);

    RESOLVE(libssl_handle != NULL ? libssl_handle : RTLD_DEFAULT, get_ex_new_index,
        "CRYPTO_get_ex_new_index");
    if (get_ex_new_index == NULL
        || get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, ctx_made, NULL, NULL) < 0)
        say_loud("warning: cannot watch for SSL_CTXs made around this library");
}

static void init(void)
{
    in_emsguard++;
    init_policy();
    if (mode != PRELOAD_PASSIVE)
        watch_ctx_creation();
    in_emsguard--;
    __atomic_store_n(&init_done, 1, __ATOMIC_RELEASE);
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
    EMSGUARD_POLICY *in_force;
    int ok;

    if (ctx == NULL)
        return NULL;
    switch (mode) {
    case PRELOAD_ACTIVE:
        if (!have_policy()) {
            raise_policy_error();
            break;
        }
        in_emsguard++;
        in_force = policy_in_force();
        ok = in_force != NULL && eg.enable_policy(ctx, in_force);
        in_emsguard--;
        if (ok) {
            if (making_ctx == 0) /* not libssl's SSL_CTX_new calling our _ex */
                __atomic_add_fetch(&ctxs_enabled, 1, __ATOMIC_RELAXED);
            return ctx;
        }
        break;
    case PRELOAD_BAD_CONFIG: /* libemsguard is missing: said at init() */
        break;
    default:
        return ctx;
    }
    real.ctx_free(ctx);
    return NULL;
}

/*
 * A method of another libssl than the one we hand calls to: a second copy
 * (a vendored libssl whose users bind to our SSL_CTX_new).  Its SSL_CTX
 * cannot get the policy, and our libssl would build it around the other
 * copy's method: refuse, and say why.
 */
static int method_of_our_libssl(const SSL_METHOD *meth)
{
    Dl_info mi, ri;
    void *fn;

    memcpy(&fn, &real.ctx_new, sizeof(fn));
    if (meth == NULL || mode == PRELOAD_PASSIVE || dladdr(meth, &mi) == 0
        || dladdr(fn, &ri) == 0 || mi.dli_fbase == ri.dli_fbase)
        return 1;
    say_loud("error: SSL_CTX_new() called with a method of %s, another libssl than %s: "
             "refused (its SSL_CTX could not get the emsguard policy)",
        mi.dli_fname, ri.dli_fname);
    return 0;
}

/* ---- programs that carry their own OpenSSL --------------------------------- */

/*
 * |found|, what symbol lookup gives for |name|, is a definition in another
 * object than this library: fills |where| with that object's name.  A
 * program that only takes the function's address (non-PIE) has an
 * undefined entry with a value there (a canonical PLT entry): that is
 * libssl's, not a definition of its own.
 */
static int defined_elsewhere(void *found, char *where, size_t where_size)
{
    const ElfW(Sym) *sym = NULL;
    struct link_map *lm = NULL;
    Dl_info info, self;
    char exe[PATH_MAX];
    ssize_t n;

    if (found == NULL || dladdr((void *)&init_once, &self) == 0
        || dladdr1(found, &info, (void **)&sym, RTLD_DL_SYMENT) == 0 || sym == NULL
        || sym->st_shndx == SHN_UNDEF || info.dli_fbase == self.dli_fbase)
        return 0;
    if (dladdr1(found, &info, (void **)&lm, RTLD_DL_LINKMAP) != 0 && lm != NULL
        && lm->l_prev == NULL) { /* the first object: the program */
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        exe[n > 0 ? n : 0] = '\0';
        snprintf(where, where_size, "the program %s",
            n > 0 ? exe : program_invocation_name);
    } else {
        snprintf(where, where_size, "%s",
            info.dli_fname != NULL && *info.dli_fname != '\0' ? info.dli_fname : "?");
    }
    return 1;
}

/*
 * At load, before the program runs: symbol lookup searches the program
 * first, then the LD_PRELOAD libraries in order, then the rest.  A program
 * that carries its own OpenSSL (linked in and exported, as Debian's
 * /usr/bin/node does), or a library ahead of this one that defines
 * SSL_CTX_new, answers every call of it: none reaches us, and the policy
 * would be missing without a word.  So say it now.  Only symbol tables are
 * read: nothing is loaded, and in a process without TLS the only
 * SSL_CTX_new is ours, so nothing is said.  A fully static program (no
 * dynamic symbols) ignores LD_PRELOAD and runs none of this: undetectable.
 */
__attribute__((constructor)) static void check_own_openssl(void)
{
    static const char *const names[] = { "SSL_CTX_new", "SSL_CTX_new_ex" };
    dlsym_fn *lookup = next_dlsym();
    char where[PATH_MAX + 16];
    size_t i;

    for (i = 0; lookup != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
        if (!defined_elsewhere(lookup(RTLD_DEFAULT, names[i]), where, sizeof(where)))
            continue;
        say_loud("error: this program carries its own OpenSSL: %s is defined in %s, "
                 "ahead of this library, so the emsguard policy cannot be applied to it "
                 "and is NOT applied",
            names[i], where);
        break;
    }
    (void)dlerror();
}

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
static int routes_to_emsguard(const void *cb_ptr, size_t cb_size, const void *current)
{
    void *cb = NULL;

    memcpy(&cb, cb_ptr, cb_size < sizeof(cb) ? cb_size : sizeof(cb));
    return current != NULL && in_span(&eg_span, current) && !in_span(&eg_span, cb);
}

/*
 * libemsguard could not store the application's callback (out of memory):
 * emsguard's stays, the application's is not installed.  libssl's setter
 * would have removed the policy's check instead.
 */
static void callback_not_stored(const char *setter)
{
    say_loud("error: %s: out of memory storing the application's callback behind "
             "emsguard's; emsguard's check stays and the application's callback is NOT set",
        setter);
    print_errors();
}

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
static int hides_app_callback(const void *cb_ptr, size_t size, const void *caller)
{
    void *cb = NULL;

    memcpy(&cb, cb_ptr, size < sizeof(cb) ? size : sizeof(cb));
    return cb != NULL && in_emsguard == 0 && mode == PRELOAD_ACTIVE
        && in_span(&eg_span, cb) && !in_span(&eg_span, caller)
        && !in_span(&libssl_span, caller);
}

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

/*
 * libssl in another link-map namespace (dlmopen) has no preloaded library in
 * front of it: say so once per namespace.  Returns 1 for a handle of
 * another namespace.
 */
static int check_namespace(void *handle)
{
    static unsigned long reported; /* a bit per namespace */
    dlmopen_fn *open_in = next_dlmopen();
    Lmid_t lmid;
    void *h;

    if (dlinfo(handle, RTLD_DI_LMID, &lmid) != 0 || lmid == LM_ID_BASE)
        return 0;
    if (open_in == NULL || lmid < 0 || lmid >= (Lmid_t)(8 * sizeof(reported))
        || (__atomic_load_n(&reported, __ATOMIC_RELAXED) & (1UL << lmid)) != 0
        || (h = open_in(lmid, "libssl.so.3", RTLD_LAZY | RTLD_NOLOAD)) == NULL)
        return 1;
    dlclose(h);
    if ((__atomic_fetch_or(&reported, 1UL << lmid, __ATOMIC_RELAXED) & (1UL << lmid)) == 0)
        say_loud("error: libssl.so.3 in link-map namespace %ld (dlmopen) is out of this "
                 "library's reach; SSL_CTXs made there get no emsguard policy", (long)lmid);
    return 1;
}

static int count_adds(struct dl_phdr_info *info, size_t size, void *data)
{
    if (size >= offsetof(struct dl_phdr_info, dlpi_adds) + sizeof(info->dlpi_adds))
        *(unsigned long long *)data = info->dlpi_adds;
    return 1; /* the first object is enough */
}

/* Our dlopen()/dlmopen() passed a load on without looking at it. */
static int unexamined_load;

/*
 * Runs init() once libssl is in the process, so that ctx_made() watches
 * from then on, even if no call ever reaches our libssl functions.  Looks
 * only when objects were loaded since it last did.
 */
static void init_if_libssl_loaded(void)
{
    static unsigned long long seen_adds;
    unsigned long long adds = 0;
    void *h;

    if (__atomic_load_n(&init_done, __ATOMIC_ACQUIRE) || in_emsguard > 0)
        return;
    dl_iterate_phdr(count_adds, &adds);
    if (adds == __atomic_load_n(&seen_adds, __ATOMIC_RELAXED))
        return;
    __atomic_store_n(&seen_adds, adds, __ATOMIC_RELAXED);
    if ((h = open_here("libssl.so.3", RTLD_LAZY | RTLD_NOLOAD)) == NULL)
        return;
    dlclose(h);
    ready();
}

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

/*
 * True when an object whose dynamic section is |dyn| has a library search
 * path of its own (DT_RPATH, DT_RUNPATH) or skips the default directories.
 */
static int own_search_path(const ElfW(Dyn) *dyn)
{
    for (; dyn != NULL && dyn->d_tag != DT_NULL; dyn++)
        if (dyn->d_tag == DT_RPATH || dyn->d_tag == DT_RUNPATH
            || (dyn->d_tag == DT_FLAGS_1 && (dyn->d_un.d_val & DF_1_NODEFLIB) != 0))
            return 1;
    return 0;
}

static int rpath_in_object(struct dl_phdr_info *info, size_t size, void *data)
{
    ElfW(Half) i;

    (void)size;
    (void)data;
    if (info->dlpi_name == NULL || info->dlpi_name[0] == '\0')
        return 0; /* the program: its DT_RPATH applies from anywhere */
    for (i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Dyn) *dyn;

        if (info->dlpi_phdr[i].p_type != PT_DYNAMIC)
            continue;
        for (dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
             dyn->d_tag != DT_NULL; dyn++)
            if (dyn->d_tag == DT_RPATH)
                return 1;
    }
    return 0;
}

/*
 * Would glibc find the same file for |file| if we called dlopen() on behalf
 * of |caller|?  A path with '/' is not searched; $ORIGIN is expanded against
 * the caller.  A bare name is searched in the caller's DT_RPATH (and that of
 * the objects that loaded it), the program's DT_RPATH, LD_LIBRARY_PATH, the
 * caller's DT_RUNPATH, then the cache and default directories.  This
 * library has no search path of its own and was loaded by the program, so
 * the answer is the same when neither the caller nor any loaded library has
 * one.
 */
static int same_file_from_here(const char *file, const void *caller)
{
    struct link_map *lm = NULL;
    Dl_info info;

    if (file == NULL || strchr(file, '$') != NULL)
        return 0;
    if (strchr(file, '/') != NULL)
        return 1;
    if (dladdr1(caller, &info, (void **)&lm, RTLD_DL_LINKMAP) == 0 || lm == NULL
        || own_search_path(lm->l_ld))
        return 0;
    return dl_iterate_phdr(rpath_in_object, NULL) == 0;
}

/*
 * After a dlopen()/dlmopen() we could look at: libssl arrived (init() and
 * the SSL_CTX watch), an RTLD_DEEPBIND object that binds to libssl itself
 * (its calls never reach us), libssl in another namespace.
 */
static void after_load(void *h, int flags)
{
    struct link_map *opened = NULL, *definer = NULL;
    Lmid_t lmid = LM_ID_BASE;
    void *ctx_new;
    Dl_info info;

    if (dlinfo(h, RTLD_DI_LMID, &lmid) == 0 && lmid != LM_ID_BASE) {
        check_namespace(h);
        return;
    }
    init_if_libssl_loaded();
    /*
     * RTLD_DEEPBIND on libssl itself changes only whom libssl's own calls
     * bind to; the program reaches it through dlsym(), which is ours.  On
     * any other object that has libssl in its scope, it binds that object's
     * libssl calls past us.
     */
    if ((flags & RTLD_DEEPBIND) == 0
        || (ctx_new = next_dlsym()(h, "SSL_CTX_new")) == NULL
        || dlinfo(h, RTLD_DI_LINKMAP, &opened) != 0
        || dladdr1(ctx_new, &info, (void **)&definer, RTLD_DL_LINKMAP) == 0
        || definer == opened || ready() == PRELOAD_PASSIVE)
        return;
    say_loud("error: %s was loaded with RTLD_DEEPBIND and binds to %s directly: "
             "SSL_CTXs it makes escape this library and get no emsguard policy",
        opened->l_name, info.dli_fname);
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
