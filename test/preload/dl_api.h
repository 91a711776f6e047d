/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The libssl functions test/preload/dl_client.c drives a TLS client with,
 * as pointers: filled by dlsym()/dlvsym() on a libssl handle, or by
 * dl_plugin.c with its own (relocated) view of them.
 */
#ifndef EG_TEST_DL_API_H
#define EG_TEST_DL_API_H

#include <openssl/ssl.h>

struct eg_ssl_api {
    const SSL_METHOD *(*client_method)(void);
    SSL_CTX *(*ctx_new)(const SSL_METHOD *);
    SSL_CTX *(*ctx_new_ex)(OSSL_LIB_CTX *, const char *, const SSL_METHOD *);
    void (*ctx_free)(SSL_CTX *);
    long (*ctx_ctrl)(SSL_CTX *, int, long, void *);
    SSL *(*ssl_new)(SSL_CTX *);
    int (*set_fd)(SSL *, int);
    int (*connect)(SSL *);
    int (*shutdown)(SSL *);
    void (*ssl_free)(SSL *);
    SSL_SESSION *(*get1_session)(SSL *);
    int (*set_session)(SSL *, SSL_SESSION *);
    int (*session_reused)(const SSL *);
    void (*session_free)(SSL_SESSION *);
};

/* dl_plugin.c: fills |api| with the plugin's own bindings. */
typedef void eg_plugin_api_fn(struct eg_ssl_api *api);
/* dl_plugin.c: 1 if dlsym(RTLD_DEFAULT/RTLD_NEXT, "SSL_version") from the
 * plugin finds libssl in the plugin's own (local) scope. */
typedef int eg_plugin_lookup_fn(int next);

#endif
