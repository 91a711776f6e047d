/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which of the callback setter and getter calls go to libemsguard and
 * which to libssl: on an SSL_CTX with the policy, the application's
 * callbacks are chained behind emsguard's, and its getters answer with the
 * application's; emsguard's own calls and libssl's go to libssl.
 */
#include <string.h>
#include "preload_shared.h"

/* True for a callback inside libemsguard: emsguard installing its own. */
int is_emsguard_callback(const void *fn_ptr, size_t size)
{
    void *fn = NULL;
    Dl_info info;

    memcpy(&fn, fn_ptr, size < sizeof(fn) ? size : sizeof(fn));
    return fn != NULL && eg.base != NULL && dladdr(fn, &info) != 0
        && info.dli_fbase == eg.base;
}

/* |ctx| has emsguard's policy: its setters go to libemsguard. */
int ctx_has_policy(const SSL_CTX *ctx)
{
    return in_emsguard == 0 && ready() == PRELOAD_ACTIVE && ctx != NULL
        && eg.is_enabled(ctx);
}

/*
 * A verify or security setter call for libemsguard to store: libssl holds
 * one of emsguard's callbacks (|current|) and |cb| is not emsguard's own.
 * See the setters in preload.c.
 */
int routes_to_emsguard(const void *cb_ptr, size_t cb_size, const void *current)
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
void callback_not_stored(const char *setter)
{
    say_loud("error: %s: out of memory storing the application's callback behind "
             "emsguard's; emsguard's check stays and the application's callback is NOT set",
        setter);
    print_errors();
}

/*
 * A getter's answer |cb| is emsguard's callback, asked for by neither
 * libemsguard nor libssl (|caller|): the application must get the
 * callback emsguard chains instead.  See the getters in preload.c.
 */
int hides_app_callback(const void *cb_ptr, size_t size, const void *caller)
{
    void *cb = NULL;

    memcpy(&cb, cb_ptr, size < sizeof(cb) ? size : sizeof(cb));
    return cb != NULL && in_emsguard == 0 && mode == PRELOAD_ACTIVE
        && in_span(&eg_span, cb) && !in_span(&eg_span, caller)
        && !in_span(&libssl_span, caller);
}
