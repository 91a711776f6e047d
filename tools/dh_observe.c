/* SPDX-License-Identifier: Apache-2.0 */
/* Counting DH shared secrets with a leading zero byte (see dh_observe.h). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include "dh_observe.h"

typedef int (*derive_fn)(EVP_PKEY_CTX *ctx, unsigned char *key, size_t *keylen);

static derive_fn real_derive;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;
static _Thread_local dh_observe_stats tls_stats;
static dh_observe_hook _Atomic hook_fn;
static void *_Atomic hook_arg;

static void find_real_derive(void)
{
    /* POSIX allows this conversion for dlsym results. */
    real_derive = (derive_fn)dlsym(RTLD_NEXT, "EVP_PKEY_derive");
}

int EVP_PKEY_derive(EVP_PKEY_CTX *ctx, unsigned char *key, size_t *keylen)
{
    dh_observe_hook hook;
    EVP_PKEY *pkey;
    int ret;

    pthread_once(&real_once, find_real_derive);
    if (real_derive == NULL)
        return -2; /* "not supported": the caller fails cleanly */
    /* key == NULL only asks for the length. */
    if (key == NULL || ctx == NULL || !EVP_PKEY_CTX_is_a(ctx, "DH"))
        return real_derive(ctx, key, keylen);
    hook = atomic_load(&hook_fn);
    if (hook != NULL && !hook(ctx, atomic_load(&hook_arg)))
        return 0;
    if ((ret = real_derive(ctx, key, keylen)) <= 0)
        return ret;
    tls_stats.derivations++;
    /* Stripped, a leading zero shows as a secret shorter than the prime;
     * padded (a hook's doing), as a visible zero byte. */
    pkey = EVP_PKEY_CTX_get0_pkey(ctx);
    if (*keylen > 0 && (key[0] == 0
            || (pkey != NULL && *keylen < (size_t)EVP_PKEY_get_size(pkey))))
        tls_stats.leading_zero++;
    return ret;
}

int dh_observe_active(void)
{
    void *in_use;

    pthread_once(&real_once, find_real_derive);
    in_use = dlsym(RTLD_DEFAULT, "EVP_PKEY_derive");
    return real_derive != NULL && in_use == (void *)EVP_PKEY_derive
        && (void *)real_derive != in_use;
}

void dh_observe_get(dh_observe_stats *stats)
{
    *stats = tls_stats;
}

void dh_observe_set_hook(dh_observe_hook hook, void *arg)
{
    atomic_store(&hook_arg, arg);
    atomic_store(&hook_fn, hook);
}
