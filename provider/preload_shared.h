/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private header of libemsguard-preload.so, shared by provider/preload*.c
 * and by nothing else (libemsguard has its own, internal.h).
 *
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
 *
 * The files, each calling only those below it:
 *
 *   preload.c           the functions this library exports: exactly the
 *                       interposed libssl and libc functions (preload.map)
 *   preload_dlopen.c    what our dlopen()/dlmopen()/dlsym() do around a load
 *   preload_route.c     which setter and getter calls go to libemsguard
 *   preload_ctx.c       the policy onto each new SSL_CTX, or fail closed
 *   preload_init.c      start-up at the first call: active, passive or closed
 *   preload_escape.c    what interposition cannot reach, said loudly
 *   preload_policy.c    where the policy comes from, and reading it again
 *   preload_resolve.c   libc's dl functions, libssl and libemsguard at run time
 *   preload_log.c       messages on stderr and syslog
 *
 * Everything declared here is hidden: only preload.c's functions are
 * exported, and calls between the files stay direct.
 */
#ifndef EMSGUARD_PRELOAD_SHARED_H
#define EMSGUARD_PRELOAD_SHARED_H

#include <dlfcn.h>
#include <link.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include "emsguard.h"

#pragma GCC visibility push(hidden)

#define EMSGUARD_SONAME "libemsguard.so.0"

typedef int (*new_session_fn)(SSL *, SSL_SESSION *);
typedef SSL_SESSION *(*get_session_fn)(SSL *, const unsigned char *, int, int *);
typedef void (*info_fn)(const SSL *, int, int);
typedef int (*security_fn)(const SSL *, const SSL_CTX *, int, int, int, void *, void *);
typedef int (*cert_verify_fn)(X509_STORE_CTX *, void *);
typedef void *dlsym_fn(void *, const char *);
typedef void *dlopen_fn(const char *, int);
typedef void *dlmopen_fn(Lmid_t, const char *, int);

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

/* ---- preload_log.c ------------------------------------------------------- */

void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An error that must not go unnoticed: stderr and syslog. */
void say_loud(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int debug_enabled(void);

/* ---- preload_resolve.c --------------------------------------------------- */

/* The next definitions of what we interpose: libssl's own. */
struct preload_libssl {
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
};
extern struct preload_libssl real;

/* libc's dlsym, dlopen and dlmopen: resolved on first use (libc_dl_fn()). */
struct preload_libc_dl {
    void *dlsym;
    void *dlopen;
    void *dlmopen;
};
extern struct preload_libc_dl libc_dl;

/* libssl's handle (found loaded, never loaded by us), for the lookups in it. */
extern void *libssl_handle;

/* What we use of libemsguard. */
struct preload_libemsguard {
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
};
extern struct preload_libemsguard eg;

/*
 * The addresses libemsguard and libssl are mapped at: the getters tell
 * their calls from the application's by the return address, in a few
 * instructions (dladdr() takes the loader's lock and searches).
 */
struct span {
    uintptr_t lo, hi;
};

extern struct span eg_span, libssl_span;

/* Inline: the getters run it on libemsguard's info path, per handshake. */
static inline int in_span(const struct span *s, const void *addr)
{
    return (uintptr_t)addr >= s->lo && (uintptr_t)addr < s->hi;
}

/*
 * Calls into libemsguard (and init()) on this thread: the libssl functions
 * they call go straight to libssl.  libemsguard makes a scratch SSL_CTX to
 * try the Schannel settings; through our SSL_CTX_new it would be enabled in
 * turn, and so on until the stack ran out.
 */
extern _Thread_local unsigned int in_emsguard;

/* libc's dlsym, dlopen and dlmopen, the definitions after ours. */
dlsym_fn *next_dlsym(void);
dlopen_fn *next_dlopen(void);
dlmopen_fn *next_dlmopen(void);
/* dlopen() by this library, for itself: never through our dlopen(). */
void *open_here(const char *file, int flags);
/* libssl's functions, from the global scope or the libssl.so.3 loaded. */
void resolve_libssl(void);
/* The libssl serving this process is OpenSSL 3 (the ABI we were built for). */
int libssl_is_openssl3(void);
/* The span of the object that maps |addr|; 0 if none does. */
int span_of(const void *addr, struct span *out);
/* libemsguard from our own directory first (a build tree), then the path. */
void *open_libemsguard(void);
/* Fills |eg| and |eg_span| from libemsguard's handle |h|; 0 if incomplete. */
int resolve_libemsguard(void *h);
/* The error queue of this thread onto stderr. */
void print_errors(void);

/* ---- preload_policy.c ---------------------------------------------------- */

extern const char *config_file; /* NULL: the process's openssl.cnf */
/* SSL_CTXs this library enabled, for the message when the policy changes. */
extern unsigned long ctxs_enabled;

/* The policy is decided once, at the first SSL_CTX; 0 if it cannot be read. */
int have_policy(void);
/* The policy for an SSL_CTX made now; NULL with the reason on the error queue. */
EMSGUARD_POLICY *policy_in_force(void);
/* The policy could not be read: its reason again, on this caller's error queue. */
void raise_policy_error(void);

/* ---- preload_escape.c ---------------------------------------------------- */

/* Our SSL_CTX_new/_ex are running on this thread (see ctx_made()). */
extern _Thread_local unsigned int making_ctx;

/* Reports, once, an SSL_CTX that libssl makes without us (ctx_made()). */
void watch_ctx_creation(void);
/* 1 for a handle of another link-map namespace; libssl there is said once. */
int check_namespace(void *handle);

/* ---- preload_init.c ------------------------------------------------------ */

enum preload_mode {
    PRELOAD_PASSIVE, /* not OpenSSL 3, or libemsguard missing: forward only */
    PRELOAD_ACTIVE, /* libemsguard loaded: enable the policy on every SSL_CTX */
    PRELOAD_BAD_CONFIG /* libemsguard missing or incomplete: fail closed (a bad
                        * policy fails closed at the first SSL_CTX: have_policy()) */
};
extern enum preload_mode mode;
extern int init_done; /* atomic: init() has run */

/* Runs init() once, on the first call that needs libssl; returns |mode|. */
int ready(void);

/* ---- preload_ctx.c ------------------------------------------------------- */

/* Enables the policy on a fresh ctx, or frees it and fails closed. */
SSL_CTX *apply_policy(SSL_CTX *ctx);
/* 0 (said loudly) for a method of another libssl than the one we call. */
int method_of_our_libssl(const SSL_METHOD *meth);

/* ---- preload_route.c ----------------------------------------------------- */

/* True for a callback inside libemsguard: emsguard installing its own. */
int is_emsguard_callback(const void *fn_ptr, size_t size);
/* |ctx| has emsguard's policy: its setters go to libemsguard. */
int ctx_has_policy(const SSL_CTX *ctx);
/* A verify or security setter call that libemsguard must store. */
int routes_to_emsguard(const void *cb_ptr, size_t cb_size, const void *current);
/* libemsguard could not store the application's callback: said loudly. */
void callback_not_stored(const char *setter);
/* A getter's answer is emsguard's callback, asked for by the application. */
int hides_app_callback(const void *cb_ptr, size_t size, const void *caller);

/* ---- preload_dlopen.c ---------------------------------------------------- */

/* Runs init() once libssl is in the process (the SSL_CTX watch with it). */
void init_if_libssl_loaded(void);
/* glibc would find the same file for |file| from here as from |caller|. */
int same_file_from_here(const char *file, const void *caller);
/* After a dlopen()/dlmopen() we could look at: libssl, DEEPBIND, namespace. */
void after_load(void *h, int flags);

#pragma GCC visibility pop

#endif
