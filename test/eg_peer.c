/* SPDX-License-Identifier: Apache-2.0 */
/*
 * eg_peer -- a small TLS peer over real TCP sockets on 127.0.0.1 that uses
 * libemsguard, for the integration tests (test/integration.sh) against stock
 * `openssl s_client` / `openssl s_server`.
 *
 *   eg_peer server --port P --cert C --key K [--no-ticket] [--ext-cache]
 *                  [--ext-cache-dir DIR] [--ticket-seed STR] [--tls13]
 *                  [--policy NAME=VALUE ...] [--stock] [--max-conns N]
 *
 *     Accepts connections one at a time.  Per connection one stdout line:
 *       conn N: New|Reused ems=yes|no proto=TLSv1.2
 *       conn N: failed <OpenSSL error>
 *     --port 0 picks a free port; the first stdout line is always
 *       listening 127.0.0.1:PORT
 *     --ext-cache installs an in-process external session cache
 *     (SSL_SESS_CACHE_NO_INTERNAL) before EMSGUARD_enable();
 *     --ext-cache-dir DIR keeps that cache in files, so that two server
 *     processes can share it.  --ticket-seed STR derives fixed ticket keys
 *     from STR, so that two server processes accept each other's tickets.
 *     Exits after --max-conns connections or on SIGTERM/SIGINT, printing
 *     `counter NAME VALUE` for every emsguard counter.
 *
 *   eg_peer client --connect HOST:PORT [--reconnect N] [--no-ticket]
 *                  [--sess-in FILE] [--sess-out FILE] [--tls13] [--sni NAME]
 *                  [--policy NAME=VALUE ...] [--stock] [--no-ems]
 *
 *     Like `s_client -reconnect`: one connection, then N more, each offering
 *     a fresh copy of the previous session.  Per connection one stdout line
 *     starting with `New,` or `Reused,` (the words s_client uses), e.g.
 *       Reused, TLSv1.2, Cipher is X, conn=1 ems=yes offered=yes hello_ems=yes
 *     or `conn N: failed <error>`.  Exit status 0 when every connection
 *     succeeded, 1 otherwise, 2 on usage or setup errors.
 *
 * Without --policy the policy comes from EMSGUARD_enable() (the provider's,
 * or the built-in defaults); --policy builds one with EMSGUARD_POLICY_set();
 * --stock leaves emsguard out entirely.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include "emsguard.h"

#define MAX_POLICY_ARGS 16
#define READ_TIMEOUT_MS 2000
#define IO_TIMEOUT_S 10

static volatile sig_atomic_t stop_requested;

struct options {
    int is_server;
    /* server */
    long port;
    const char *cert;
    const char *key;
    int ext_cache;
    const char *ext_cache_dir;
    const char *ticket_seed;
    long max_conns;
    /* client */
    const char *connect;
    long reconnect;
    const char *sess_in;
    const char *sess_out;
    const char *sni;
    int no_ems;
    /* both */
    int no_ticket;
    int tls13;
    int stock;
    const char *policy[MAX_POLICY_ARGS];
    int npolicy;
};

/* ---- small helpers ------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
        "usage: eg_peer server --port P --cert C --key K [--no-ticket]\n"
        "         [--ext-cache] [--ext-cache-dir DIR] [--ticket-seed STR]\n"
        "         [--tls13] [--policy NAME=VALUE ...] [--stock] [--max-conns N]\n"
        "       eg_peer client --connect HOST:PORT [--reconnect N] [--no-ticket]\n"
        "         [--sess-in FILE] [--sess-out FILE] [--tls13] [--sni NAME]\n"
        "         [--policy NAME=VALUE ...] [--stock] [--no-ems]\n");
}

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: accept() returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Drains OpenSSL's error queue into |buf| as "err1; err2". */
static const char *openssl_errors(char *buf, size_t len)
{
    unsigned long e;
    size_t used = 0;

    buf[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        char one[256];

        ERR_error_string_n(e, one, sizeof(one));
        if (used + strlen(one) + 3 < len) {
            used += (size_t)snprintf(buf + used, len - used, "%s%s",
                used ? "; " : "", one);
        }
    }
    return buf;
}

/* A description of why an SSL call failed, for the one-line report. */
static const char *failure_text(SSL *ssl, int ret, int saved_errno, char *buf,
    size_t len)
{
    int code = SSL_get_error(ssl, ret);

    openssl_errors(buf, len);
    if (buf[0] == '\0') {
        if (code == SSL_ERROR_SYSCALL)
            snprintf(buf, len, "SSL_ERROR_SYSCALL (%s)",
                saved_errno ? strerror(saved_errno) : "unexpected EOF");
        else
            snprintf(buf, len, "SSL_get_error=%d", code);
    }
    return buf;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return 0;
    *out = v;
    return 1;
}

static void set_io_timeouts(int fd, long ms)
{
    struct timeval tv;

    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * len] = '\0';
}

static void print_counters(const SSL_CTX *ctx)
{
    int i;

    if (!EMSGUARD_CTX_is_enabled(ctx))
        return;
    for (i = 0; i < EMSGUARD_CNT_MAX; i++) {
        uint64_t v = 0;
        const char *name = EMSGUARD_counter_name((EMSGUARD_COUNTER)i);

        if (name == NULL || !EMSGUARD_CTX_get_counter(ctx, (EMSGUARD_COUNTER)i, &v)) {
            char errbuf[512];

            fprintf(stderr, "eg_peer: counter %d: %s\n", i,
                openssl_errors(errbuf, sizeof(errbuf)));
            continue;
        }
        printf("counter %s %llu\n", name, (unsigned long long)v);
    }
    fflush(stdout);
}

/* Applies the policy (or none, with --stock).  Returns 1 on success. */
static int apply_policy(SSL_CTX *ctx, const struct options *o)
{
    EMSGUARD_POLICY *p;
    int i, ok;

    if (o->stock)
        return 1;
    if (o->npolicy == 0)
        return EMSGUARD_enable(ctx);
    if ((p = EMSGUARD_POLICY_new()) == NULL)
        return 0;
    for (i = 0; i < o->npolicy; i++) {
        char name[128];
        const char *eq = strchr(o->policy[i], '=');
        size_t nlen;

        if (eq == NULL || (nlen = (size_t)(eq - o->policy[i])) >= sizeof(name)) {
            fprintf(stderr, "eg_peer: --policy wants NAME=VALUE, got '%s'\n",
                o->policy[i]);
            EMSGUARD_POLICY_free(p);
            return 0;
        }
        memcpy(name, o->policy[i], nlen);
        name[nlen] = '\0';
        if (!EMSGUARD_POLICY_set(p, name, eq + 1)) {
            EMSGUARD_POLICY_free(p);
            return 0;
        }
    }
    ok = EMSGUARD_enable_policy(ctx, p);
    EMSGUARD_POLICY_free(p);
    return ok;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    int i;

    memset(o, 0, sizeof(*o));
    o->port = -1;
    o->sni = "localhost";
    if (argc < 2)
        return 0;
    if (strcmp(argv[1], "server") == 0)
        o->is_server = 1;
    else if (strcmp(argv[1], "client") != 0)
        return 0;
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes_value = 1;

        if (strcmp(a, "--no-ticket") == 0) {
            o->no_ticket = 1;
            takes_value = 0;
        } else if (strcmp(a, "--tls13") == 0) {
            o->tls13 = 1;
            takes_value = 0;
        } else if (strcmp(a, "--stock") == 0) {
            o->stock = 1;
            takes_value = 0;
        } else if (o->is_server && strcmp(a, "--ext-cache") == 0) {
            o->ext_cache = 1;
            takes_value = 0;
        } else if (!o->is_server && strcmp(a, "--no-ems") == 0) {
            o->no_ems = 1;
            takes_value = 0;
        } else if (v == NULL) {
            fprintf(stderr, "eg_peer: %s: missing value or unknown option\n", a);
            return 0;
        } else if (strcmp(a, "--policy") == 0) {
            if (o->npolicy == MAX_POLICY_ARGS)
                return 0;
            o->policy[o->npolicy++] = v;
        } else if (o->is_server && strcmp(a, "--port") == 0) {
            if (!parse_long(v, 0, 65535, &o->port))
                return 0;
        } else if (o->is_server && strcmp(a, "--cert") == 0) {
            o->cert = v;
        } else if (o->is_server && strcmp(a, "--key") == 0) {
            o->key = v;
        } else if (o->is_server && strcmp(a, "--ext-cache-dir") == 0) {
            o->ext_cache = 1;
            o->ext_cache_dir = v;
        } else if (o->is_server && strcmp(a, "--ticket-seed") == 0) {
            o->ticket_seed = v;
        } else if (o->is_server && strcmp(a, "--max-conns") == 0) {
            if (!parse_long(v, 0, LONG_MAX, &o->max_conns))
                return 0;
        } else if (!o->is_server && strcmp(a, "--connect") == 0) {
            o->connect = v;
        } else if (!o->is_server && strcmp(a, "--reconnect") == 0) {
            if (!parse_long(v, 0, 1000, &o->reconnect))
                return 0;
        } else if (!o->is_server && strcmp(a, "--sess-in") == 0) {
            o->sess_in = v;
        } else if (!o->is_server && strcmp(a, "--sess-out") == 0) {
            o->sess_out = v;
        } else if (!o->is_server && strcmp(a, "--sni") == 0) {
            o->sni = v;
        } else {
            fprintf(stderr, "eg_peer: unknown option %s\n", a);
            return 0;
        }
        if (takes_value)
            i++;
    }
    if (o->stock && o->npolicy > 0) {
        fprintf(stderr, "eg_peer: --stock and --policy exclude each other\n");
        return 0;
    }
    if (o->is_server)
        return o->port >= 0 && o->cert != NULL && o->key != NULL;
    return o->connect != NULL;
}

/* ---- server: external session cache ------------------------------------ */

struct cache_entry {
    struct cache_entry *next;
    unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
    unsigned int idlen;
    unsigned char *der;
    long derlen;
};

static struct cache_entry *mem_cache;
static const char *cache_dir;

static void cache_path(const unsigned char *id, unsigned int idlen, char *buf,
    size_t len)
{
    char hex[2 * SSL_MAX_SSL_SESSION_ID_LENGTH + 1];

    hex_encode(id, idlen, hex);
    snprintf(buf, len, "%s/%s.der", cache_dir, hex);
}

static void cache_remove_id(const unsigned char *id, unsigned int idlen)
{
    struct cache_entry **pp = &mem_cache;

    if (cache_dir != NULL) {
        char path[4096];

        cache_path(id, idlen, path, sizeof(path));
        unlink(path);
        return;
    }
    while (*pp != NULL) {
        struct cache_entry *e = *pp;

        if (e->idlen == idlen && memcmp(e->id, id, idlen) == 0) {
            *pp = e->next;
            OPENSSL_free(e->der);
            free(e);
            return;
        }
        pp = &e->next;
    }
}

static int ext_new_cb(SSL *ssl, SSL_SESSION *sess)
{
    unsigned int idlen;
    const unsigned char *id = SSL_SESSION_get_id(sess, &idlen);
    unsigned char *der = NULL;
    int derlen;

    (void)ssl;
    if (idlen == 0 || idlen > SSL_MAX_SSL_SESSION_ID_LENGTH)
        return 0;
    if ((derlen = i2d_SSL_SESSION(sess, &der)) <= 0)
        return 0;
    cache_remove_id(id, idlen);
    if (cache_dir != NULL) {
        char path[4096];
        FILE *f;

        cache_path(id, idlen, path, sizeof(path));
        if ((f = fopen(path, "wb")) != NULL) {
            fwrite(der, 1, (size_t)derlen, f);
            fclose(f);
        }
        OPENSSL_free(der);
    } else {
        struct cache_entry *e = calloc(1, sizeof(*e));

        if (e == NULL) {
            OPENSSL_free(der);
            return 0;
        }
        memcpy(e->id, id, idlen);
        e->idlen = idlen;
        e->der = der;
        e->derlen = derlen;
        e->next = mem_cache;
        mem_cache = e;
    }
    fprintf(stderr, "eg_peer: ext-cache: stored a session\n");
    return 0; /* we keep a DER copy, not the reference */
}

static SSL_SESSION *ext_get_cb(SSL *ssl, const unsigned char *id, int idlen,
    int *copy)
{
    SSL_SESSION *sess = NULL;
    const unsigned char *p;

    (void)ssl;
    *copy = 0; /* libssl takes the reference we return */
    if (idlen <= 0 || idlen > SSL_MAX_SSL_SESSION_ID_LENGTH)
        return NULL;
    if (cache_dir != NULL) {
        char path[4096];
        unsigned char buf[16384];
        size_t n;
        FILE *f;

        cache_path(id, (unsigned int)idlen, path, sizeof(path));
        if ((f = fopen(path, "rb")) == NULL)
            return NULL;
        n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        p = buf;
        sess = d2i_SSL_SESSION(NULL, &p, (long)n);
    } else {
        struct cache_entry *e;

        for (e = mem_cache; e != NULL; e = e->next) {
            if (e->idlen == (unsigned int)idlen && memcmp(e->id, id, e->idlen) == 0) {
                p = e->der;
                sess = d2i_SSL_SESSION(NULL, &p, e->derlen);
                break;
            }
        }
    }
    fprintf(stderr, "eg_peer: ext-cache: lookup %s\n", sess ? "hit" : "miss");
    return sess;
}

static void ext_remove_cb(SSL_CTX *ctx, SSL_SESSION *sess)
{
    unsigned int idlen;
    const unsigned char *id = SSL_SESSION_get_id(sess, &idlen);

    (void)ctx;
    if (idlen > 0 && idlen <= SSL_MAX_SSL_SESSION_ID_LENGTH)
        cache_remove_id(id, idlen);
}

static void free_mem_cache(void)
{
    while (mem_cache != NULL) {
        struct cache_entry *e = mem_cache;

        mem_cache = e->next;
        OPENSSL_free(e->der);
        free(e);
    }
}

/* Fixed ticket keys (name 16, HMAC 32, AES 32) derived from a seed. */
static int set_ticket_seed(SSL_CTX *ctx, const char *seed)
{
    unsigned char keys[80], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen;
    size_t slen = strlen(seed);
    char *buf = malloc(slen + 2);
    int ok = 0;

    if (buf == NULL)
        return 0;
    memcpy(buf, seed, slen);
    buf[slen + 1] = '\0';
    buf[slen] = '1';
    if (!EVP_Digest(buf, slen + 1, md, &mdlen, EVP_sha512(), NULL) || mdlen != 64)
        goto end;
    memcpy(keys, md, 64);
    buf[slen] = '2';
    if (!EVP_Digest(buf, slen + 1, md, &mdlen, EVP_sha512(), NULL) || mdlen != 64)
        goto end;
    memcpy(keys + 64, md, 16);
    ok = SSL_CTX_set_tlsext_ticket_keys(ctx, keys, sizeof(keys)) > 0;
end:
    free(buf);
    return ok;
}

/* ---- server ------------------------------------------------------------- */

static void serve_one(SSL_CTX *ctx, int fd, long n)
{
    SSL *ssl = SSL_new(ctx);
    char errbuf[1024];
    int r;

    if (ssl == NULL || !SSL_set_fd(ssl, fd)) {
        printf("conn %ld: failed %s\n", n, openssl_errors(errbuf, sizeof(errbuf)));
        fflush(stdout);
        SSL_free(ssl);
        return;
    }
    set_io_timeouts(fd, IO_TIMEOUT_S * 1000L);
    ERR_clear_error();
    errno = 0;
    r = SSL_accept(ssl);
    if (r <= 0) {
        int saved = errno;

        printf("conn %ld: failed %s\n", n,
            failure_text(ssl, r, saved, errbuf, sizeof(errbuf)));
        fflush(stdout);
        SSL_free(ssl); /* no shutdown after a failed handshake */
        return;
    }
    printf("conn %ld: %s ems=%s proto=%s cipher=%s\n", n,
        SSL_session_reused(ssl) ? "Reused" : "New",
        SSL_get_extms_support(ssl) == 1 ? "yes" : "no",
        SSL_get_version(ssl), SSL_get_cipher_name(ssl));
    fflush(stdout);

    /* A bounded read: answer a line if the client sends one. */
    {
        char buf[4096];

        set_io_timeouts(fd, READ_TIMEOUT_MS);
        r = SSL_read(ssl, buf, sizeof(buf));
        if (r > 0) {
            char reply[128];
            int len = snprintf(reply, sizeof(reply),
                "eg_peer server: conn %ld: got %d bytes\n", n, r);

            SSL_write(ssl, reply, len);
        }
        ERR_clear_error();
    }
    SSL_shutdown(ssl);
    ERR_clear_error();
    SSL_free(ssl);
}

static int run_server(const struct options *o)
{
    SSL_CTX *ctx = NULL;
    struct sockaddr_in sa;
    socklen_t salen = sizeof(sa);
    int lfd = -1, one = 1, rc = 2;
    long n = 0;
    char errbuf[1024];
    static const unsigned char sid_ctx[] = "eg_peer";

    if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
        goto ssl_err;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)
        || !SSL_CTX_set_max_proto_version(ctx, o->tls13 ? TLS1_3_VERSION : TLS1_2_VERSION))
        goto ssl_err;
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) <= 0
        || SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) <= 0
        || !SSL_CTX_check_private_key(ctx))
        goto ssl_err;
    if (!SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1))
        goto ssl_err;
    if (o->no_ticket)
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (o->ticket_seed != NULL && !set_ticket_seed(ctx, o->ticket_seed))
        goto ssl_err;
    if (o->ext_cache) {
        cache_dir = o->ext_cache_dir;
        if (cache_dir != NULL)
            mkdir(cache_dir, 0700);
        SSL_CTX_set_session_cache_mode(ctx,
            SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
        SSL_CTX_sess_set_new_cb(ctx, ext_new_cb);
        SSL_CTX_sess_set_get_cb(ctx, ext_get_cb);
        SSL_CTX_sess_set_remove_cb(ctx, ext_remove_cb);
    }
    if (!apply_policy(ctx, o))
        goto ssl_err;

    if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
        perror("eg_peer: socket");
        goto end;
    }
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)o->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0
        || listen(lfd, 16) != 0
        || getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0) {
        fprintf(stderr, "eg_peer: cannot listen on 127.0.0.1:%ld: %s\n", o->port,
            strerror(errno));
        goto end;
    }
    printf("listening 127.0.0.1:%u\n", ntohs(sa.sin_port));
    fflush(stdout);

    while (!stop_requested && (o->max_conns == 0 || n < o->max_conns)) {
        int fd = accept(lfd, NULL, NULL);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            perror("eg_peer: accept");
            break;
        }
        serve_one(ctx, fd, n++);
        close(fd);
    }
    rc = 0;
    goto end;
ssl_err:
    fprintf(stderr, "eg_peer: setup failed: %s\n",
        openssl_errors(errbuf, sizeof(errbuf)));
end:
    if (ctx != NULL && rc == 0)
        print_counters(ctx);
    if (lfd >= 0)
        close(lfd);
    SSL_CTX_free(ctx);
    free_mem_cache();
    return rc;
}

/* ---- client ------------------------------------------------------------- */

/* What the ClientHello we wrote contained, seen from the message callback. */
struct hello_info {
    int seen;
    unsigned char sid[SSL_MAX_SSL_SESSION_ID_LENGTH];
    size_t sidlen;
    long ticket_len; /* -1: no session_ticket extension */
    int psk;
    int ems;
};

static void parse_client_hello(const unsigned char *p, size_t len,
    struct hello_info *h)
{
    size_t pos = 4 + 2 + 32, n, end;

    memset(h, 0, sizeof(*h));
    h->seen = 1;
    h->ticket_len = -1;
    if (len < pos + 1)
        return;
    n = p[pos++];
    if (n > SSL_MAX_SSL_SESSION_ID_LENGTH || pos + n > len)
        return;
    memcpy(h->sid, p + pos, n);
    h->sidlen = n;
    pos += n;
    if (pos + 2 > len)
        return;
    pos += 2 + (((size_t)p[pos] << 8) | p[pos + 1]); /* cipher suites */
    if (pos + 1 > len)
        return;
    pos += 1 + p[pos]; /* compression methods */
    if (pos + 2 > len)
        return;
    end = pos + 2 + (((size_t)p[pos] << 8) | p[pos + 1]);
    pos += 2;
    if (end > len)
        return;
    while (pos + 4 <= end) {
        unsigned int type = ((unsigned int)p[pos] << 8) | p[pos + 1];
        size_t elen = ((size_t)p[pos + 2] << 8) | p[pos + 3];

        pos += 4;
        if (pos + elen > end)
            return;
        if (type == TLSEXT_TYPE_session_ticket)
            h->ticket_len = (long)elen;
        else if (type == TLSEXT_TYPE_psk)
            h->psk = 1;
        else if (type == TLSEXT_TYPE_extended_master_secret)
            h->ems = 1;
        pos += elen;
    }
}

static void msg_cb(int write_p, int version, int content_type, const void *buf,
    size_t len, SSL *ssl, void *arg)
{
    const unsigned char *p = buf;

    (void)version;
    (void)ssl;
    if (write_p && content_type == SSL3_RT_HANDSHAKE && len >= 4
        && p[0] == SSL3_MT_CLIENT_HELLO)
        parse_client_hello(p, len, arg);
}

static int tickets_this_conn;

static int client_new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl;
    (void)sess;
    tickets_this_conn++;
    return 0; /* we take sessions with SSL_get1_session() */
}

static int tcp_connect(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, rc;

    if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host)) {
        fprintf(stderr, "eg_peer: --connect wants HOST:PORT\n");
        return -1;
    }
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
        fprintf(stderr, "eg_peer: %s: %s\n", hostport, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if ((fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol)) < 0)
            continue;
        set_io_timeouts(fd, IO_TIMEOUT_S * 1000L);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    if (fd < 0)
        fprintf(stderr, "eg_peer: connect %s: %s\n", hostport, strerror(errno));
    freeaddrinfo(res);
    return fd;
}

/* TLS 1.3: read the NewSessionTicket messages that follow the handshake. */
static void collect_tls13_tickets(SSL *ssl, int fd)
{
    long deadline = now_ms() + 1000;
    char buf[1024];
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return;
    while (tickets_this_conn == 0) {
        long left = deadline - now_ms();
        int r = SSL_read(ssl, buf, sizeof(buf));
        struct pollfd pfd;

        if (r > 0)
            continue;
        if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ || left <= 0)
            break;
        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, (int)left) <= 0)
            break;
    }
    ERR_clear_error();
    fcntl(fd, F_SETFL, fl);
}

/*
 * One connection, offering a fresh copy of *sess (if any); on success *sess
 * becomes the connection's session.  Returns 1 on success.
 */
static int client_connect_once(SSL_CTX *ctx, const struct options *o, long n,
    SSL_SESSION **sess)
{
    struct hello_info hello;
    unsigned char offered_id[SSL_MAX_SSL_SESSION_ID_LENGTH];
    unsigned int offered_len = 0;
    char errbuf[1024];
    SSL *ssl = NULL;
    int fd, r, ok = 0, offered;

    memset(&hello, 0, sizeof(hello));
    tickets_this_conn = 0;
    if ((fd = tcp_connect(o->connect)) < 0) {
        printf("conn %ld: failed cannot connect to %s\n", n, o->connect);
        fflush(stdout);
        return 0;
    }
    if ((ssl = SSL_new(ctx)) == NULL || !SSL_set_fd(ssl, fd)
        || (o->sni[0] != '\0' && !SSL_set_tlsext_host_name(ssl, o->sni)))
        goto fail_setup;
    SSL_set_msg_callback(ssl, msg_cb);
    SSL_set_msg_callback_arg(ssl, &hello);
    if (*sess != NULL) {
        SSL_SESSION *copy = SSL_SESSION_dup(*sess);
        const unsigned char *id;

        if (copy == NULL)
            goto fail_setup;
        id = SSL_SESSION_get_id(copy, &offered_len);
        if (offered_len > sizeof(offered_id))
            offered_len = 0;
        memcpy(offered_id, id, offered_len);
        r = SSL_set_session(ssl, copy);
        SSL_SESSION_free(copy); /* the SSL holds its own reference */
        if (!r)
            goto fail_setup;
    }
    ERR_clear_error();
    errno = 0;
    r = SSL_connect(ssl);
    if (r <= 0) {
        int saved = errno;

        printf("conn %ld: failed %s\n", n,
            failure_text(ssl, r, saved, errbuf, sizeof(errbuf)));
        fflush(stdout);
        fprintf(stderr, "eg_peer: conn %ld: handshake failed: %s\n", n, errbuf);
        goto done;
    }
    if (SSL_version(ssl) == TLS1_3_VERSION)
        collect_tls13_tickets(ssl, fd);
    offered = hello.ticket_len > 0 || hello.psk
        || (offered_len > 0 && hello.sidlen == offered_len
            && memcmp(hello.sid, offered_id, offered_len) == 0);
    printf("%s, %s, Cipher is %s, conn=%ld ems=%s offered=%s hello_ems=%s\n",
        SSL_session_reused(ssl) ? "Reused" : "New", SSL_get_version(ssl),
        SSL_get_cipher_name(ssl), n,
        SSL_get_extms_support(ssl) == 1 ? "yes" : "no",
        offered ? "yes" : "no", hello.ems ? "yes" : "no");
    fflush(stdout);
    {
        SSL_SESSION *got = SSL_get1_session(ssl);

        if (got != NULL) {
            SSL_SESSION_free(*sess);
            *sess = got;
        }
    }
    SSL_shutdown(ssl);
    ERR_clear_error();
    ok = 1;
    goto done;
fail_setup:
    printf("conn %ld: failed %s\n", n, openssl_errors(errbuf, sizeof(errbuf)));
    fflush(stdout);
done:
    SSL_free(ssl);
    close(fd);
    return ok;
}

static int run_client(const struct options *o)
{
    SSL_CTX *ctx = NULL;
    SSL_SESSION *sess = NULL;
    char errbuf[1024];
    int rc = 2, all_ok = 1;
    long i;

    if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
        goto ssl_err;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)
        || !SSL_CTX_set_max_proto_version(ctx, o->tls13 ? TLS1_3_VERSION : TLS1_2_VERSION))
        goto ssl_err;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (o->no_ticket)
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (o->no_ems)
        SSL_CTX_set_options(ctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    SSL_CTX_set_session_cache_mode(ctx,
        SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, client_new_session_cb);
    if (!apply_policy(ctx, o))
        goto ssl_err;

    if (o->sess_in != NULL) {
        FILE *f = fopen(o->sess_in, "r");
        int has_ems = -1;

        if (f == NULL) {
            fprintf(stderr, "eg_peer: %s: %s\n", o->sess_in, strerror(errno));
            goto end;
        }
        sess = PEM_read_SSL_SESSION(f, NULL, NULL, NULL);
        fclose(f);
        if (sess == NULL)
            goto ssl_err;
        if (!EMSGUARD_SESSION_has_ems(sess, &has_ems))
            ERR_clear_error();
        printf("sess-in: %s ems=%s\n", o->sess_in,
            has_ems == 1 ? "yes" : has_ems == 0 ? "no" : "unknown");
        fflush(stdout);
    }

    for (i = 0; i <= o->reconnect && !stop_requested; i++) {
        if (!client_connect_once(ctx, o, i, &sess))
            all_ok = 0;
    }
    if (stop_requested)
        all_ok = 0;

    if (o->sess_out != NULL) {
        FILE *f = fopen(o->sess_out, "w");

        if (f == NULL || sess == NULL || !PEM_write_SSL_SESSION(f, sess)) {
            fprintf(stderr, "eg_peer: cannot write session to %s\n", o->sess_out);
            all_ok = 0;
        }
        if (f != NULL)
            fclose(f);
    }
    print_counters(ctx);
    rc = all_ok ? 0 : 1;
    goto end;
ssl_err:
    fprintf(stderr, "eg_peer: setup failed: %s\n",
        openssl_errors(errbuf, sizeof(errbuf)));
end:
    SSL_SESSION_free(sess);
    SSL_CTX_free(ctx);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o;

    if (!parse_options(argc, argv, &o)) {
        usage();
        return 2;
    }
    install_signals();
    return o.is_server ? run_server(&o) : run_client(&o);
}
