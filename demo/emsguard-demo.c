/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard-demo -- stock OpenSSL 3.0 next to emsguard, measured.
 *
 * Starts TLS 1.2 servers on 127.0.0.1 (one listening socket; a server
 * thread with its own SSL_CTX per cell) and, for each scenario, connects
 * once, keeps the session and reconnects RECONNECTS times offering a fresh
 * copy of it.  It prints one
 * table row per scenario: what stock OpenSSL did, what emsguard did (the
 * same setup with the policy enabled on one side), and why.
 *
 * Every cell is a measurement.  Each also has the outcome the project
 * requires; a cell that differs is marked UNEXPECTED.
 *
 * Exit status: 0 all cells as expected, 1 some cell unexpected, 2 setup
 * failure.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "emsguard.h"

#define RECONNECTS 3
#define CONNS_PER_CELL (1 + RECONNECTS)
#define IO_TIMEOUT_S 10

/* Table layout: four columns and a two-space gutter, 98 columns in all. */
#define W_SCEN 16
#define W_STOCK 21
#define W_GUARD 23
#define W_WHY 32
#define MAX_LINES 12
#define LINE_MAX_W 40

/* ---- scenarios ----------------------------------------------------------- */

/* The required outcome of one cell; -1: not checked and not shown. */
struct expect {
    int resumed; /* 1: every reconnect resumes, 0: every one is a full handshake */
    int ems; /* EMS negotiated on the reconnects */
    int ticket; /* the client holds a session ticket after each connection */
    int offered; /* the client offered the session in its ClientHello */
};

enum guarded_side { GUARD_SERVER, GUARD_CLIENT };

struct scenario {
    const char *name;
    const char *setup; /* shown under the name */
    uint64_t server_opts; /* SSL_OP_* for the server */
    int server_cache_off; /* SSL_SESS_CACHE_OFF: only tickets can resume */
    uint64_t client_opts;
    enum guarded_side guarded; /* where the emsguard column enables it */
    struct expect stock, emsguard;
    const char *why;
};

#define NO_EMS SSL_OP_NO_EXTENDED_MASTER_SECRET

static const struct scenario scenarios[] = {
    { "legacy client", "(no-EMS client, emsguard on the server)",
        0, 0, NO_EMS, GUARD_SERVER,
        { 1, 0, -1, -1 }, { 0, 0, -1, -1 },
        "The session has no EMS: resuming it is what CVE-2019-1318 "
        "(RFC 7627, section 5.3) forbids. emsguard does a full handshake "
        "instead, no alert, like Schannel." },
    { "EMS client", "(EMS client, emsguard on the server)",
        0, 0, 0, GUARD_SERVER,
        { 1, 1, -1, -1 }, { 1, 1, -1, -1 },
        "The session was made with EMS, so its master secret is bound to "
        "its handshake: safe to resume. emsguard changes nothing." },
    { "legacy server", "(no-EMS server, emsguard on the client)",
        NO_EMS, 0, 0, GUARD_CLIENT,
        { 1, 0, -1, 1 }, { 0, 0, -1, 0 },
        "The server never does EMS, so its sessions lack it. The emsguard "
        "client does not offer them and still connects, with a full "
        "handshake." },
    { "tickets", "(no-EMS client, server with RFC 5077 tickets only)",
        0, 1, NO_EMS, GUARD_SERVER,
        { 1, 0, 1, -1 }, { 0, 0, 0, -1 },
        "Same rule for tickets: a non-EMS session is not resumed from a "
        "ticket, and emsguard issues no ticket for it." },
    { "session IDs", "(no-EMS client, server with session-ID cache only)",
        SSL_OP_NO_TICKET, 0, NO_EMS, GUARD_SERVER,
        { 1, 0, -1, -1 }, { 0, 0, -1, -1 },
        "Same rule for the session-ID cache: emsguard does not cache a "
        "non-EMS session, so the client's session ID finds nothing." },
};

#define NSCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

/* What one cell measured. */
struct tally {
    int first_ok; /* the first (full) handshake succeeded */
    int tried, ok, reused, ems, offered; /* over the reconnects */
    int conns_ok, tickets; /* over all connections */
    int alert; /* first fatal alert seen, -1 if none */
    int alert_sent; /* ... and whether the client sent it */
    char err[96]; /* first failure without an alert */
};

struct cell {
    struct tally t;
    int as_expected;
    int have_counters;
    uint64_t counters[EMSGUARD_CNT_MAX]; /* of the emsguard side's SSL_CTX */
};

/* Key, certificate, policy and listening socket shared by every cell. */
struct demo {
    EVP_PKEY *key;
    X509 *cert;
    EMSGUARD_POLICY *policy;
    int lfd;
    unsigned short port;
};

/* ---- credentials --------------------------------------------------------- */

/* A throwaway P-256 key and self-signed certificate; nothing on disk. */
static X509 *make_cert(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_NAME *name;

    if (x == NULL)
        return NULL;
    name = X509_get_subject_name(x);
    if (!X509_set_version(x, X509_VERSION_3)
        || !ASN1_INTEGER_set(X509_get_serialNumber(x), 1)
        || X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL
        || X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600) == NULL
        || !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
            (const unsigned char *)"127.0.0.1", -1, -1, 0)
        || !X509_set_issuer_name(x, name)
        || !X509_set_pubkey(x, key)
        || X509_sign(x, key, EVP_sha256()) <= 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* ---- sockets -------------------------------------------------------------- */

/* Blocking I/O that gives up after IO_TIMEOUT_S, so nothing can hang. */
static void set_timeouts(int fd)
{
    struct timeval tv = { IO_TIMEOUT_S, 0 };

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Listens on 127.0.0.1, port chosen by the kernel.  Returns the fd or -1. */
static int listen_loopback(unsigned short *port)
{
    struct sockaddr_in sa;
    socklen_t salen = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0
        || listen(fd, 16) != 0
        || getsockname(fd, (struct sockaddr *)&sa, &salen) != 0) {
        close(fd);
        return -1;
    }
    set_timeouts(fd); /* accept() too gives up after IO_TIMEOUT_S */
    *port = ntohs(sa.sin_port);
    return fd;
}

static int connect_loopback(unsigned short port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    set_timeouts(fd);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- server thread ------------------------------------------------------- */

struct server {
    SSL_CTX *ctx;
    int lfd;
    int conns; /* connections to serve, then the thread ends */
    pthread_t thread;
};

static void serve_connection(SSL_CTX *ctx, int fd)
{
    SSL *ssl = SSL_new(ctx);
    char buf[256];

    if (ssl != NULL && SSL_set_fd(ssl, fd) && SSL_accept(ssl) == 1) {
        /* Wait for the client's close_notify, then answer it. */
        while (SSL_read(ssl, buf, sizeof(buf)) > 0)
            ;
        SSL_shutdown(ssl);
    }
    /* A failed handshake is the client's to report. */
    SSL_free(ssl);
    ERR_clear_error();
}

/*
 * Serves exactly the connections the client makes, one at a time, so that
 * every session is cached before the next ClientHello is read.
 */
static void *server_main(void *arg)
{
    struct server *s = arg;
    int served = 0;

    while (served < s->conns) {
        int fd = accept(s->lfd, NULL, NULL);

        if (fd < 0 && errno == EINTR)
            continue;
        if (fd < 0)
            break; /* timeout, or the listener was shut down */
        set_timeouts(fd);
        serve_connection(s->ctx, fd);
        close(fd);
        served++;
    }
    return NULL;
}

/* ---- client ---------------------------------------------------------------- */

/* What the message callback saw on one connection. */
struct wire {
    int offered; /* ClientHello carried a session ID */
    int alert; /* fatal alert description, -1 if none */
    int alert_sent;
};

static void client_msg_cb(int write_p, int version, int content_type,
    const void *buf, size_t len, SSL *ssl, void *arg)
{
    const unsigned char *p = buf;
    struct wire *w = arg;

    (void)version;
    (void)ssl;
    /*
     * OpenSSL's TLS 1.2 client sends a session ID only when it offers a
     * session: a ticket session carries the ticket's hash as its ID.  The
     * ID length sits after type(1) length(3) version(2) random(32).
     */
    if (write_p && content_type == SSL3_RT_HANDSHAKE && len > 38
        && p[0] == SSL3_MT_CLIENT_HELLO)
        w->offered = p[38] > 0;
    if (content_type == SSL3_RT_ALERT && len >= 2 && p[0] == SSL3_AL_FATAL
        && w->alert < 0) {
        w->alert = p[1];
        w->alert_sent = write_p;
    }
}

static void record_failure(struct tally *t, const struct wire *w)
{
    if (w->alert >= 0 && t->alert < 0) {
        t->alert = w->alert;
        t->alert_sent = w->alert_sent;
    } else if (w->alert < 0 && t->err[0] == '\0') {
        const char *reason = ERR_reason_error_string(ERR_peek_error());

        snprintf(t->err, sizeof(t->err), "%s",
            reason != NULL ? reason : "connection failed, no alert");
    }
}

/*
 * One TLS connection, offering a copy of |offer| if not NULL: a copy,
 * because a failed handshake marks the offered session not resumable.
 * Records the outcome in |t|.  Returns the connection's session (NULL on
 * failure); sets *setup_failed on a local failure (socket, SSL object).
 */
static SSL_SESSION *connect_once(SSL_CTX *ctx, unsigned short port,
    const SSL_SESSION *offer, int is_reconnect, struct tally *t,
    int *setup_failed)
{
    struct wire w = { 0, -1, 0 };
    SSL_SESSION *copy = NULL, *got = NULL;
    SSL *ssl = NULL;
    int fd = connect_loopback(port);

    if (fd < 0) {
        *setup_failed = 1;
        return NULL;
    }
    ERR_clear_error();
    if ((ssl = SSL_new(ctx)) == NULL || !SSL_set_fd(ssl, fd)
        || (offer != NULL && ((copy = SSL_SESSION_dup(offer)) == NULL
            || !SSL_set_session(ssl, copy)))) {
        *setup_failed = 1;
        goto done;
    }
    SSL_set_msg_callback(ssl, client_msg_cb);
    SSL_set_msg_callback_arg(ssl, &w);
    if (is_reconnect)
        t->tried++;
    if (SSL_connect(ssl) != 1) {
        record_failure(t, &w);
        goto done; /* no SSL_shutdown after a failed handshake */
    }
    if ((got = SSL_get1_session(ssl)) == NULL) {
        *setup_failed = 1;
        goto done;
    }
    t->conns_ok++;
    t->tickets += SSL_SESSION_has_ticket(got);
    if (is_reconnect) {
        t->ok++;
        t->reused += SSL_session_reused(ssl);
        t->ems += SSL_get_extms_support(ssl) == 1;
        t->offered += w.offered;
    }
    SSL_shutdown(ssl); /* a clean close keeps the session resumable */
done:
    SSL_SESSION_free(copy);
    SSL_free(ssl);
    close(fd);
    ERR_clear_error();
    return got;
}

/* The first connection, then RECONNECTS more offering its session. */
static int run_client(SSL_CTX *ctx, unsigned short port, struct tally *t)
{
    SSL_SESSION *first;
    int i, setup_failed = 0;

    first = connect_once(ctx, port, NULL, 0, t, &setup_failed);
    t->first_ok = first != NULL;
    /* Always make every connection: the server thread counts them. */
    for (i = 0; i < RECONNECTS && !setup_failed; i++)
        SSL_SESSION_free(connect_once(ctx, port, first, 1, t, &setup_failed));
    SSL_SESSION_free(first);
    return !setup_failed;
}

/* ---- one cell --------------------------------------------------------------- */

static SSL_CTX *new_ctx(const SSL_METHOD *method, uint64_t opts)
{
    SSL_CTX *ctx = SSL_CTX_new(method);

    if (ctx == NULL || !SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, opts);
    return ctx;
}

static SSL_CTX *server_ctx(const struct demo *d, const struct scenario *sc,
    int guard)
{
    SSL_CTX *ctx = new_ctx(TLS_server_method(), sc->server_opts);

    if (ctx == NULL)
        return NULL;
    if (sc->server_cache_off)
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_use_certificate(ctx, d->cert) != 1
        || SSL_CTX_use_PrivateKey(ctx, d->key) != 1
        || (guard && !EMSGUARD_enable_policy(ctx, d->policy))) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static SSL_CTX *client_ctx(const struct demo *d, const struct scenario *sc,
    int guard)
{
    SSL_CTX *ctx = new_ctx(TLS_client_method(), sc->client_opts);

    /* The certificate is throwaway: SSL_VERIFY_NONE, the client default. */
    if (ctx != NULL && guard && !EMSGUARD_enable_policy(ctx, d->policy)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static void read_counters(const SSL_CTX *ctx, struct cell *c)
{
    int i;

    c->have_counters = 1;
    for (i = 0; i < EMSGUARD_CNT_MAX; i++)
        if (!EMSGUARD_CTX_get_counter(ctx, (EMSGUARD_COUNTER)i, &c->counters[i]))
            c->have_counters = 0;
}

static int all_or_none(int count, int total, int want_all)
{
    return count == (want_all ? total : 0);
}

static int matches(const struct tally *t, const struct expect *e)
{
    if (!t->first_ok || t->tried != RECONNECTS || t->ok != t->tried
        || t->alert >= 0)
        return 0;
    return all_or_none(t->reused, t->ok, e->resumed)
        && all_or_none(t->ems, t->ok, e->ems)
        && (e->ticket < 0 || all_or_none(t->tickets, t->conns_ok, e->ticket))
        && (e->offered < 0 || all_or_none(t->offered, t->ok, e->offered));
}

/*
 * Measures one cell: a server thread with its own SSL_CTX, and the client in
 * this thread.  Returns 0 on a setup failure.
 */
static int measure_cell(const struct demo *d, const struct scenario *sc,
    int guarded, struct cell *c)
{
    struct server s = { .lfd = d->lfd, .conns = CONNS_PER_CELL };
    SSL_CTX *cctx;
    int ok;

    memset(c, 0, sizeof(*c));
    c->t.alert = -1;
    s.ctx = server_ctx(d, sc, guarded && sc->guarded == GUARD_SERVER);
    cctx = client_ctx(d, sc, guarded && sc->guarded == GUARD_CLIENT);
    if (s.ctx == NULL || cctx == NULL
        || pthread_create(&s.thread, NULL, server_main, &s) != 0) {
        SSL_CTX_free(s.ctx);
        SSL_CTX_free(cctx);
        return 0;
    }
    ok = run_client(cctx, d->port, &c->t);
    if (!ok)
        shutdown(d->lfd, SHUT_RDWR); /* wake the server: the demo stops */
    pthread_join(s.thread, NULL);
    if (guarded)
        read_counters(sc->guarded == GUARD_SERVER ? s.ctx : cctx, c);
    c->as_expected = matches(&c->t, guarded ? &sc->emsguard : &sc->stock);
    SSL_CTX_free(s.ctx);
    SSL_CTX_free(cctx);
    return ok;
}


/* ---- describing a cell ------------------------------------------------------ */

static void appendf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void appendf(char *buf, size_t len, const char *fmt, ...)
{
    size_t used = strlen(buf);
    va_list ap;

    if (used + 1 >= len)
        return;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

static void describe_failure(const struct tally *t, char *buf, size_t len)
{
    if (t->alert >= 0)
        appendf(buf, len, "%s alert %d, %s", t->alert_sent ? "sent" : "got",
            t->alert, SSL_alert_desc_string_long(t->alert));
    else
        appendf(buf, len, "%s", t->err);
}

/*
 * "resumed 3/3, EMS no", "full handshake 3/3, no alert, EMS no", ...; the
 * ticket and offered counts only where the scenario checks them.
 */
static void describe(const struct tally *t, const struct expect *e, char *buf,
    size_t len)
{
    int failed = t->tried - t->ok;

    buf[0] = '\0';
    if (!t->first_ok) {
        appendf(buf, len, "first handshake failed: ");
        describe_failure(t, buf, len);
        return;
    }
    if (failed == 0 && t->reused == t->ok)
        appendf(buf, len, "resumed %d/%d", t->reused, t->tried);
    else if (failed == 0 && t->reused == 0)
        appendf(buf, len, "full handshake %d/%d", t->ok, t->tried);
    else if (t->ok > 0)
        appendf(buf, len, "resumed %d/%d, full %d/%d", t->reused, t->tried,
            t->ok - t->reused, t->tried);
    if (failed > 0) {
        appendf(buf, len, "%saborted %d/%d: ", t->ok > 0 ? ", " : "", failed,
            t->tried);
        describe_failure(t, buf, len);
    } else if (t->reused < t->ok && t->alert < 0) {
        appendf(buf, len, ", no alert");
    }
    if (t->ok > 0 && (t->ems == 0 || t->ems == t->ok))
        appendf(buf, len, ", EMS %s", t->ems ? "yes" : "no");
    else if (t->ok > 0)
        appendf(buf, len, ", EMS %d/%d", t->ems, t->ok);
    if (e->ticket >= 0)
        appendf(buf, len, ", client has a ticket %d/%d", t->tickets, t->conns_ok);
    if (e->offered >= 0)
        appendf(buf, len, ", session offered %d/%d", t->offered, t->ok);
}

/* The tally a cell would have if it met |e|, to describe the expectation. */
static struct tally expected_tally(const struct expect *e)
{
    struct tally t;

    memset(&t, 0, sizeof(t));
    t.first_ok = 1;
    t.tried = t.ok = RECONNECTS;
    t.reused = e->resumed ? RECONNECTS : 0;
    t.ems = e->ems ? RECONNECTS : 0;
    t.offered = e->offered > 0 ? RECONNECTS : 0;
    t.conns_ok = CONNS_PER_CELL;
    t.tickets = e->ticket > 0 ? CONNS_PER_CELL : 0;
    t.alert = -1;
    return t;
}

/* ---- the table ---------------------------------------------------------------- */

static const int col_width[4] = { W_SCEN, W_STOCK, W_GUARD, W_WHY };

/*
 * Word-wraps |text| to |width| columns ('\n' forces a break; a word longer
 * than the column is cut).  Returns the number of lines.
 */
static int wrap(const char *text, int width, char lines[MAX_LINES][LINE_MAX_W + 1])
{
    const char *p = text;
    int n = 0;

    while (*p != '\0' && n < MAX_LINES) {
        size_t i, take, space = 0;

        for (i = 0; p[i] != '\0' && p[i] != '\n' && i < (size_t)width; i++)
            if (p[i] == ' ')
                space = i;
        if (p[i] == '\0' || p[i] == '\n' || p[i] == ' ' || space == 0)
            take = i;
        else
            take = space;
        memcpy(lines[n], p, take);
        lines[n++][take] = '\0';
        p += take;
        while (*p == ' ')
            p++;
        if (*p == '\n')
            p++;
    }
    return n;
}

static void print_row(const char *const cols[4])
{
    char lines[4][MAX_LINES][LINE_MAX_W + 1];
    int nlines[4], i, c, rows = 0;

    for (c = 0; c < 4; c++) {
        nlines[c] = wrap(cols[c], col_width[c], lines[c]);
        if (nlines[c] > rows)
            rows = nlines[c];
    }
    for (i = 0; i < rows; i++) {
        char out[4 * (LINE_MAX_W + 2) + 1];
        size_t used = 0;

        for (c = 0; c < 4; c++)
            used += (size_t)snprintf(out + used, sizeof(out) - used, "%-*s  ",
                col_width[c], i < nlines[c] ? lines[c][i] : "");
        while (used > 0 && out[used - 1] == ' ')
            out[--used] = '\0';
        printf("%s\n", out);
    }
}

static void print_rule(void)
{
    int c, i;

    for (c = 0; c < 4; c++) {
        for (i = 0; i < col_width[c]; i++)
            putchar('-');
        fputs(c < 3 ? "  " : "\n", stdout);
    }
}

static void print_header(const struct demo *d)
{
    printf("emsguard %s demo: TLS 1.2 resumption without Extended Master "
           "Secret (RFC 7627)\n",
        EMSGUARD_VERSION_STR);
    printf("%s, openssl.cnf not loaded\n", OpenSSL_version(OPENSSL_VERSION));
    printf("TLS 1.2 servers on 127.0.0.1:%u, one thread and SSL_CTX per "
           "cell\n",
        d->port);
    printf("Each cell, measured: one full handshake, then %d reconnects "
           "offering its session.\n",
        RECONNECTS);
    printf("stock: plain OpenSSL on both sides. emsguard: the same, plus "
           "EMSGUARD_enable_policy()\n(built-in defaults) on the side named "
           "under the scenario.\n\n");
}

static void print_table(struct cell cells[][2])
{
    static const char *const head[4] = { "Scenario", "stock OpenSSL 3.0",
        "emsguard", "why" };
    size_t i;

    print_row(head);
    print_rule();
    for (i = 0; i < NSCENARIOS; i++) {
        const struct scenario *sc = &scenarios[i];
        char scen[160], stock[200], guard[200];
        const char *cols[4] = { scen, stock, guard, sc->why };
        int bad = !cells[i][0].as_expected || !cells[i][1].as_expected;

        snprintf(scen, sizeof(scen), "%s\n%s%s", sc->name,
            bad ? "** UNEXPECTED **\n" : "", sc->setup);
        describe(&cells[i][0].t, &sc->stock, stock, sizeof(stock));
        describe(&cells[i][1].t, &sc->emsguard, guard, sizeof(guard));
        print_row(cols);
        if (i + 1 < NSCENARIOS)
            putchar('\n');
    }
}

/* Says, for each unexpected cell, what was required.  Returns their count. */
static int print_unexpected(struct cell cells[][2])
{
    size_t i;
    int g, n = 0;

    for (i = 0; i < NSCENARIOS; i++) {
        for (g = 0; g < 2; g++) {
            const struct expect *e = g ? &scenarios[i].emsguard : &scenarios[i].stock;
            struct tally want = expected_tally(e);
            char got[200], exp[200];

            if (cells[i][g].as_expected)
                continue;
            describe(&cells[i][g].t, e, got, sizeof(got));
            describe(&want, e, exp, sizeof(exp));
            printf("%sUNEXPECTED: %s, %s column\n  measured: %s\n  expected: %s\n",
                n++ == 0 ? "\n" : "", scenarios[i].name,
                g ? "emsguard" : "stock OpenSSL", got, exp);
        }
    }
    return n;
}

/* name=value for every counter, wrapped to the table's width. */
static void print_counters(const struct cell *c, const char *what)
{
    int i, col;

    printf("\n%s:\n", what);
    if (!c->have_counters) {
        printf("  (could not be read)\n");
        return;
    }
    col = 0;
    for (i = 0; i < EMSGUARD_CNT_MAX; i++) {
        char item[64];
        int len = snprintf(item, sizeof(item), "%s=%llu",
            EMSGUARD_counter_name((EMSGUARD_COUNTER)i),
            (unsigned long long)c->counters[i]);

        if (col > 0 && col + 1 + len > W_SCEN + W_STOCK + W_GUARD + W_WHY + 6) {
            putchar('\n');
            col = 0;
        }
        col += printf("%s%s", col == 0 ? "  " : " ", item);
    }
    putchar('\n');
}

/* ---- main ------------------------------------------------------------------------ */

static int demo_setup(struct demo *d)
{
    d->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (d->key == NULL || (d->cert = make_cert(d->key)) == NULL)
        return 0;
    /*
     * An explicit policy with the built-in defaults, so that no emsguard
     * provider configured elsewhere changes what is shown.  EventLogging 1
     * (errors only, the default): refusals are counted, not logged.
     */
    if ((d->policy = EMSGUARD_POLICY_new()) == NULL
        || !EMSGUARD_POLICY_set(d->policy, EMSGUARD_EVENT_LOGGING, "1"))
        return 0;
    if ((d->lfd = listen_loopback(&d->port)) < 0) {
        perror("emsguard-demo: listen on 127.0.0.1");
        return 0;
    }
    return 1;
}

static void demo_cleanup(struct demo *d)
{
    if (d->lfd >= 0)
        close(d->lfd);
    EMSGUARD_POLICY_free(d->policy);
    X509_free(d->cert);
    EVP_PKEY_free(d->key);
}

static int measure_all(const struct demo *d, struct cell cells[][2])
{
    size_t i;
    int g;

    for (i = 0; i < NSCENARIOS; i++)
        for (g = 0; g < 2; g++)
            if (!measure_cell(d, &scenarios[i], g, &cells[i][g])) {
                fprintf(stderr, "emsguard-demo: setup failed in '%s', %s\n",
                    scenarios[i].name, g ? "emsguard" : "stock");
                return 0;
            }
    return 1;
}

int main(void)
{
    struct demo d = { NULL, NULL, NULL, -1, 0 };
    struct cell cells[NSCENARIOS][2];
    int rc = 2;

    /* A peer that hangs up must not kill the demo with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    /* Measure OpenSSL's own defaults, whatever OPENSSL_CONF says. */
    if (!OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL)
        || !demo_setup(&d) || !measure_all(&d, cells)) {
        fprintf(stderr, "emsguard-demo: setup failed\n");
        ERR_print_errors_fp(stderr);
        goto end;
    }
    print_header(&d);
    print_table(cells);
    rc = print_unexpected(cells) > 0 ? 1 : 0;
    print_counters(&cells[0][1],
        "Counters of the emsguard server in row 1 (legacy client), after its "
        "4 connections");
    printf("\n%s\n", rc == 0 ? "All cells as expected."
                             : "Some cells differ from the expected outcome.");
end:
    demo_cleanup(&d);
    return rc;
}
