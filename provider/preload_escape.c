/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What symbol interposition cannot reach, said loudly (stderr and syslog)
 * rather than left silent: an SSL_CTX libssl makes without passing through
 * us (RTLD_DEEPBIND, dlvsym()), a program that carries its own OpenSSL
 * ahead of this library, libssl in another link-map namespace (dlmopen).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "preload_shared.h"

/* Our SSL_CTX_new/_ex are running on this thread (see ctx_made()). */
_Thread_local unsigned int making_ctx;

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

void watch_ctx_creation(void)
{
    int (*get_ex_new_index)(int, long, void *, CRYPTO_EX_new *, CRYPTO_EX_dup *,
        CRYPTO_EX_free *);

    RESOLVE(libssl_handle != NULL ? libssl_handle : RTLD_DEFAULT, get_ex_new_index,
        "CRYPTO_get_ex_new_index");
    if (get_ex_new_index == NULL
        || get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, ctx_made, NULL, NULL) < 0)
        say_loud("warning: cannot watch for SSL_CTXs made around this library");
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

    if (found == NULL || dladdr((void *)&eg, &self) == 0
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

/*
 * libssl in another link-map namespace (dlmopen) has no preloaded library in
 * front of it: say so once per namespace.  Returns 1 for a handle of
 * another namespace.
 */
int check_namespace(void *handle)
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
