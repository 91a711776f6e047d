/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A TLS 1.2 client that reaches libssl the ways programs that dlopen it do,
 * for test/preload_paths.sh (issue 15, F5).  It is linked against no libssl:
 *
 *   dl_client MODE PORT [PLUGIN]
 *
 *   plugin-local     dlopen(PLUGIN, RTLD_LOCAL): a plugin linked against
 *                    libssl (Python's _ssl module is loaded this way)
 *   plugin-bare      the same, PLUGIN being a bare file name that only the
 *                    program's DT_RUNPATH finds (dl_client_rp is linked so)
 *   plugin-deepbind  the same with RTLD_DEEPBIND: the plugin's references
 *                    bind to libssl before any preloaded library
 *   handle-local     dlopen("libssl.so.3", RTLD_LOCAL), dlsym() on it
 *   handle-global-ex dlopen("libssl.so.3", RTLD_GLOBAL), SSL_CTX_new_ex
 *                    from dlsym() on the handle
 *   handle-deepbind  dlopen("libssl.so.3", RTLD_DEEPBIND), dlsym(), _ex
 *   dlvsym           dlopen("libssl.so.3", RTLD_LOCAL), dlvsym(...,
 *                    "OPENSSL_3.0.0")
 *   dlmopen          dlmopen(LM_ID_NEWLM, "libssl.so.3"), dlsym()
 *   mixed-libssl     libssl.so.3 and a second copy of it (PLUGIN: its path)
 *                    both loaded; SSL_CTX_new from the global scope (the
 *                    preloaded one) called with the copy's TLS_client_method,
 *                    as a library linked against a vendored libssl does
 *
 * It connects to 127.0.0.1:PORT twice, the second time offering the first
 * connection's session, and prints `ctx=ok|NULL`, `reused=0|1`, for the
 * plugin modes `lookup default=D next=N` (does dlsym() with RTLD_DEFAULT /
 * RTLD_NEXT from the plugin still see the plugin's own scope?), and at the
 * end `libssl_copies=N libemsguard=M`: how many copies of libssl.so.3 and
 * libemsguard.so.0 are mapped (one libssl, shared by libemsguard, unless a
 * namespace of its own was asked for).
 *
 * It defines syslog() (and the fortified forms) and exports them: the
 * preloaded library's syslog() calls then land here and are echoed to stderr
 * as `syslog: ...`, so the test can see what would reach the system log.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>
#include "dl_api.h"

void __syslog_chk(int pri, int flag, const char *fmt, ...);
void __vsyslog_chk(int pri, int flag, const char *fmt, va_list ap);

void vsyslog(int pri, const char *fmt, va_list ap)
{
    fprintf(stderr, "syslog: <%d> ", pri);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void syslog(int pri, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsyslog(pri, fmt, ap);
    va_end(ap);
}

void __vsyslog_chk(int pri, int flag, const char *fmt, va_list ap)
{
    (void)flag;
    vsyslog(pri, fmt, ap);
}

void __syslog_chk(int pri, int flag, const char *fmt, ...)
{
    va_list ap;

    (void)flag;
    va_start(ap, fmt);
    vsyslog(pri, fmt, ap);
    va_end(ap);
}

static const struct {
    const char *name;
    size_t offset;
} api_names[] = {
    { "TLS_client_method", offsetof(struct eg_ssl_api, client_method) },
    { "SSL_CTX_new", offsetof(struct eg_ssl_api, ctx_new) },
    { "SSL_CTX_new_ex", offsetof(struct eg_ssl_api, ctx_new_ex) },
    { "SSL_CTX_free", offsetof(struct eg_ssl_api, ctx_free) },
    { "SSL_CTX_ctrl", offsetof(struct eg_ssl_api, ctx_ctrl) },
    { "SSL_new", offsetof(struct eg_ssl_api, ssl_new) },
    { "SSL_set_fd", offsetof(struct eg_ssl_api, set_fd) },
    { "SSL_connect", offsetof(struct eg_ssl_api, connect) },
    { "SSL_shutdown", offsetof(struct eg_ssl_api, shutdown) },
    { "SSL_free", offsetof(struct eg_ssl_api, ssl_free) },
    { "SSL_get1_session", offsetof(struct eg_ssl_api, get1_session) },
    { "SSL_set_session", offsetof(struct eg_ssl_api, set_session) },
    { "SSL_session_reused", offsetof(struct eg_ssl_api, session_reused) },
    { "SSL_SESSION_free", offsetof(struct eg_ssl_api, session_free) },
};

/* Every entry from |h|, by dlsym() or (version != NULL) dlvsym(). */
static int load_api(void *h, const char *version, struct eg_ssl_api *api)
{
    size_t i;

    for (i = 0; i < sizeof(api_names) / sizeof(api_names[0]); i++) {
        void *sym = version != NULL ? dlvsym(h, api_names[i].name, version)
                                    : dlsym(h, api_names[i].name);

        if (sym == NULL) {
            fprintf(stderr, "dl_client: %s: %s\n", api_names[i].name, dlerror());
            return 0;
        }
        memcpy((char *)api + api_names[i].offset, &sym, sizeof(sym));
    }
    return 1;
}

static int tcp_connect(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        perror("dl_client: connect");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* One connection; offers |offer| if not NULL; returns the session (or NULL). */
static SSL_SESSION *connect_once(const struct eg_ssl_api *api, SSL_CTX *ctx, int port,
    SSL_SESSION *offer, int *reused)
{
    SSL_SESSION *sess = NULL;
    SSL *ssl;
    int fd = tcp_connect(port);

    if (fd < 0 || (ssl = api->ssl_new(ctx)) == NULL) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    api->set_fd(ssl, fd);
    if (offer != NULL)
        api->set_session(ssl, offer);
    if (api->connect(ssl) == 1) {
        *reused = api->session_reused(ssl);
        sess = api->get1_session(ssl);
        api->shutdown(ssl);
    } else {
        fprintf(stderr, "dl_client: handshake failed\n");
    }
    api->ssl_free(ssl);
    close(fd);
    return sess;
}

/* Objects mapped from offset 0 whose path contains |name|: loaded copies. */
static int mapped_copies(const char *name)
{
    char line[4096];
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long offset;

        if (strstr(line, name) != NULL && sscanf(line, "%*s %*s %lx", &offset) == 1
            && offset == 0)
            n++;
    }
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    struct eg_ssl_api api;
    const char *mode;
    void *h = NULL, *sym, *sym2;
    int port, use_ex = 0, reused = -1, first = -1;
    SSL_CTX *ctx;
    SSL_SESSION *s1, *s2;

    if (argc < 3) {
        fprintf(stderr, "usage: dl_client MODE PORT [PLUGIN]\n");
        return 2;
    }
    mode = argv[1];
    port = atoi(argv[2]);
    memset(&api, 0, sizeof(api));
    if (strncmp(mode, "plugin-", 7) == 0) {
        int flags = RTLD_NOW | RTLD_LOCAL;
        eg_plugin_api_fn *fill;
        eg_plugin_lookup_fn *lookup;

        if (argc < 4) {
            fprintf(stderr, "dl_client: %s needs the plugin path\n", mode);
            return 2;
        }
        if (strcmp(mode, "plugin-deepbind") == 0)
            flags |= RTLD_DEEPBIND;
        else if (strcmp(mode, "plugin-local") != 0 && strcmp(mode, "plugin-bare") != 0) {
            fprintf(stderr, "dl_client: unknown mode %s\n", mode);
            return 2;
        }
        if ((h = dlopen(argv[3], flags)) == NULL
            || (sym = dlsym(h, "eg_plugin_api")) == NULL) {
            fprintf(stderr, "dl_client: %s\n", dlerror());
            return 2;
        }
        memcpy(&fill, &sym, sizeof(fill));
        if ((sym = dlsym(h, "eg_plugin_lookup")) == NULL) {
            fprintf(stderr, "dl_client: %s\n", dlerror());
            return 2;
        }
        memcpy(&lookup, &sym, sizeof(lookup));
        fill(&api);
        printf("lookup default=%d next=%d\n", lookup(0), lookup(1));
    } else {
        int flags = RTLD_NOW | RTLD_LOCAL;
        const char *version = NULL;

        if (strcmp(mode, "handle-global-ex") == 0) {
            flags = RTLD_NOW | RTLD_GLOBAL;
            use_ex = 1;
        } else if (strcmp(mode, "handle-deepbind") == 0) {
            flags |= RTLD_DEEPBIND;
            use_ex = 1;
        } else if (strcmp(mode, "dlvsym") == 0) {
            version = "OPENSSL_3.0.0";
            use_ex = 1;
        } else if (strcmp(mode, "mixed-libssl") == 0) {
            if (argc < 4) {
                fprintf(stderr, "dl_client: %s needs the path of a libssl copy\n", mode);
                return 2;
            }
        } else if (strcmp(mode, "dlmopen") != 0 && strcmp(mode, "handle-local") != 0) {
            fprintf(stderr, "dl_client: unknown mode %s\n", mode);
            return 2;
        }
        h = strcmp(mode, "dlmopen") == 0 ? dlmopen(LM_ID_NEWLM, "libssl.so.3", RTLD_NOW)
                                         : dlopen("libssl.so.3", flags);
        if (h == NULL || !load_api(h, version, &api)) {
            fprintf(stderr, "dl_client: %s\n", h == NULL ? dlerror() : "symbols missing");
            return 2;
        }
        if (strcmp(mode, "mixed-libssl") == 0) {
            void *copy = dlopen(argv[3], RTLD_NOW | RTLD_LOCAL);

            if (copy == NULL || (sym = dlsym(copy, "TLS_client_method")) == NULL
                || (sym2 = dlsym(RTLD_DEFAULT, "SSL_CTX_new")) == NULL) {
                fprintf(stderr, "dl_client: %s\n", dlerror());
                return 2;
            }
            memcpy(&api.client_method, &sym, sizeof(sym));
            memcpy(&api.ctx_new, &sym2, sizeof(sym2));
        }
    }
    ctx = use_ex ? api.ctx_new_ex(NULL, NULL, api.client_method())
                 : api.ctx_new(api.client_method());
    printf("ctx=%s\n", ctx != NULL ? "ok" : "NULL");
    fflush(stdout);
    if (ctx == NULL)
        return 3;
    api.ctx_ctrl(ctx, SSL_CTRL_SET_MAX_PROTO_VERSION, TLS1_2_VERSION, NULL);
    s1 = connect_once(&api, ctx, port, NULL, &first);
    s2 = s1 != NULL ? connect_once(&api, ctx, port, s1, &reused) : NULL;
    printf("first=%s\nreused=%d\n", s1 != NULL ? "ok" : "failed", reused);
    printf("libssl_copies=%d libemsguard=%d\n", mapped_copies("/libssl.so.3"),
        mapped_copies("/libemsguard.so.0"));
    if (s1 != NULL)
        api.session_free(s1);
    if (s2 != NULL)
        api.session_free(s2);
    api.ctx_free(ctx);
    return s1 != NULL && s2 != NULL ? 0 : 4;
}
