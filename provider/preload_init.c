/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Start-up, at the first call that needs libssl (not at load: a process
 * without TLS must not load libssl because of us): is the libssl here
 * OpenSSL 3, can libemsguard be loaded, and so is this library active,
 * passive (forwarding only) or failing closed.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "preload_shared.h"

enum preload_mode mode = PRELOAD_PASSIVE;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
int init_done; /* atomic: init() has run */

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

static void init(void)
{
    in_emsguard++;
    init_policy();
    if (mode != PRELOAD_PASSIVE)
        watch_ctx_creation();
    in_emsguard--;
    __atomic_store_n(&init_done, 1, __ATOMIC_RELEASE);
}

int ready(void)
{
    pthread_once(&init_once, init);
    return mode;
}
