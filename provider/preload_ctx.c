/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Each SSL_CTX the process makes through us: the policy enabled on it, or
 * the SSL_CTX freed and NULL returned (fail closed); and a method of
 * another libssl than ours refused, since its SSL_CTX could not get the
 * policy.
 */
#include <string.h>
#include "preload_shared.h"

/* Enables the policy on a fresh ctx, or frees it and fails closed. */
SSL_CTX *apply_policy(SSL_CTX *ctx)
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
int method_of_our_libssl(const SSL_METHOD *meth)
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
