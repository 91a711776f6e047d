/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A plugin linked against libssl, as Python's _ssl module is: test/
 * preload_paths.sh has dl_client.c dlopen it with RTLD_LOCAL (libssl then
 * is not in the global scope) or with RTLD_DEEPBIND (the plugin's own
 * references bind to libssl before anything preloaded).  It hands its
 * relocated libssl entry points to the caller, so the caller's calls are
 * exactly the plugin's.
 */
#include <dlfcn.h>
#include "dl_api.h"

void eg_plugin_api(struct eg_ssl_api *api);
int eg_plugin_lookup(int next);

void eg_plugin_api(struct eg_ssl_api *api)
{
    api->client_method = TLS_client_method;
    api->ctx_new = SSL_CTX_new;
    api->ctx_new_ex = SSL_CTX_new_ex;
    api->ctx_free = SSL_CTX_free;
    api->ctx_ctrl = SSL_CTX_ctrl;
    api->ssl_new = SSL_new;
    api->set_fd = SSL_set_fd;
    api->connect = SSL_connect;
    api->shutdown = SSL_shutdown;
    api->ssl_free = SSL_free;
    api->get1_session = SSL_get1_session;
    api->set_session = SSL_set_session;
    api->session_reused = SSL_session_reused;
    api->session_free = SSL_SESSION_free;
}

/*
 * dlsym() with a pseudo-handle answers for its caller: RTLD_DEFAULT searches
 * the caller's scope (for an RTLD_LOCAL plugin: the global scope, then the
 * plugin and its libssl), RTLD_NEXT the objects after the caller.  A dlsym()
 * wrapper that does not hand the call on with the caller's return address
 * makes both come back NULL here.
 */
int eg_plugin_lookup(int next)
{
    return dlsym(next ? RTLD_NEXT : RTLD_DEFAULT, "SSL_version") != NULL;
}
