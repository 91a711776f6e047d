/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Finding at run time what this library calls: libc's dlsym, dlopen and
 * dlmopen behind our own, libssl's functions (in the global scope, or the
 * libssl.so.3 a program loaded RTLD_LOCAL), and libemsguard's, with the
 * address spans of both libraries.  We link nothing but libc (-z defs), so
 * a process without TLS never loads libssl or libemsguard because of us.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "preload_shared.h"

/* The next definitions of what we interpose: libssl's own. */
struct preload_libssl real;

/* libc's dlsym, dlopen and dlmopen: resolved on first use (libc_dl_fn()). */
struct preload_libc_dl libc_dl;

/* libssl's handle (found loaded, never loaded by us), for the lookups in it. */
void *libssl_handle;

/* What we use of libemsguard. */
struct preload_libemsguard eg;

/* Where libemsguard and libssl are mapped (see preload_shared.h). */
struct span eg_span, libssl_span;

/* Calls into libemsguard (and init()) on this thread (see preload_shared.h). */
_Thread_local unsigned int in_emsguard;

/*
 * libc's dlsym, the definition after ours.  dlvsym, which we leave alone,
 * finds it; the versions are glibc >= 2.34's (libdl merged into libc) and
 * the older libdl's base versions (x86_64, aarch64).
 */
NOT_BEFORE_ASAN dlsym_fn *next_dlsym(void)
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

dlopen_fn *next_dlopen(void)
{
    void *sym = libc_dl_fn(&libc_dl.dlopen, "dlopen");
    dlopen_fn *fn;

    memcpy(&fn, &sym, sizeof(fn));
    return fn;
}

dlmopen_fn *next_dlmopen(void)
{
    void *sym = libc_dl_fn(&libc_dl.dlmopen, "dlmopen");
    dlmopen_fn *fn;

    memcpy(&fn, &sym, sizeof(fn));
    return fn;
}

/* dlopen() by this library, for itself: never through our dlopen(). */
void *open_here(const char *file, int flags)
{
    dlopen_fn *fn = next_dlopen();

    return fn != NULL ? fn(file, flags) : NULL;
}

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

void resolve_libssl(void)
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
int libssl_is_openssl3(void)
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
int span_of(const void *addr, struct span *out)
{
    struct span_query q = { (uintptr_t)addr, { 0, 0 } };

    if (addr == NULL || dl_iterate_phdr(span_in_object, &q) == 0)
        return 0;
    *out = q.found;
    return 1;
}

/* libemsguard from our own directory first (a build tree), then the path. */
void *open_libemsguard(void)
{
    char path[PATH_MAX];
    Dl_info info;
    void *h;

    if (dladdr((void *)&eg, &info) != 0 && info.dli_fname != NULL) {
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

int resolve_libemsguard(void *h)
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

void print_errors(void)
{
    void (*print)(FILE *);

    RESOLVE(libssl_handle != NULL ? libssl_handle : RTLD_DEFAULT, print, "ERR_print_errors_fp");
    if (print != NULL)
        print(stderr);
}
