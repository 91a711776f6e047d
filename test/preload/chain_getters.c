/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Callbacks chained the way applications and libraries chain them, for
 * test/preload_static.sh (issue 15, attack finding N3).  Linked against
 * libssl only (no libemsguard): the policy reaches it through LD_PRELOAD.
 *
 *   chain_getters CERT KEY
 *
 * For each callback it sets two in turn, the usual way:
 *     prev = SSL_CTX_get_info_callback(ctx);  SSL_CTX_set_info_callback(ctx, mine);
 *     mine(...) { ...; if (prev != NULL) prev(...); }
 * first an inner one (which gets libssl's previous callback: none), then an
 * outer one whose |prev| is the inner one.  The chains: the server ctx's
 * info, new-session and get-session callbacks; the client ctx's info and
 * new-session callbacks; and a per-SSL info callback (SSL_get_info_callback)
 * on the server SSL of the second connection.
 *
 * Two TLS 1.2 connections in memory (BIO pair): a full handshake, then the
 * client offers the session it stored from its new-session callback, and
 * the server finds it only through its get-session callback (no internal
 * cache, no tickets).  Both peers use Extended Master Secret, so the policy
 * lets the session resume.
 *
 * Under the preload the getters must return what the application set, not
 * emsguard's own callback: otherwise the outer callback's |prev| is
 * emsguard's, which (since the re-entry guard) returns at once, and the
 * inner callback never runs -- nor does the application's session store,
 * so the second connection does not resume.
 *
 * Prints `SSL_CTX_new from NAME` (the object answering the program's
 * SSL_CTX_new: the preload or libssl), `conn N: ok=O reused=R`, then for each
 * chain `CHAIN: outer=N inner=M` (with the info chains also counting
 * handshake starts and ends), and `recursion=N unchained=M`: calls of a
 * callback from inside itself, calls of an inner callback not through its
 * outer one.  Exit status 0 when every inner callback saw exactly the calls
 * its outer one saw, each chain saw calls, there was no recursion, and the
 * second connection resumed; test/preload_static.sh also compares the
 * counts with a run without the preload (stock OpenSSL semantics).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

enum { SRV_INFO, SRV_SSL_INFO, SRV_NEW, SRV_GET, CLI_INFO, CLI_NEW, NCHAINS };

static const char *const chain_names[NCHAINS] = {
    "server-ctx-info", "server-ssl-info", "server-new", "server-get",
    "client-ctx-info", "client-new",
};

static struct {
    int outer, inner; /* calls */
    int outer_active; /* an outer call is running */
    int inner_active;
    int starts, dones; /* info chains: SSL_CB_HANDSHAKE_START / _DONE (outer) */
    int inner_starts, inner_dones;
} chain[NCHAINS];

static int recursion, unchained;

static void (*prev_info[NCHAINS])(const SSL *, int, int);
static int (*prev_new[NCHAINS])(SSL *, SSL_SESSION *);
static SSL_SESSION *(*prev_get)(SSL *, const unsigned char *, int, int *);

/* The application's session stores: one session each. */
static SSL_SESSION *server_store, *client_store;

static void enter_outer(int c)
{
    if (chain[c].outer_active++ > 0)
        recursion++;
    chain[c].outer++;
}

static void enter_inner(int c)
{
    if (chain[c].inner_active++ > 0)
        recursion++;
    if (chain[c].outer_active != 1)
        unchained++;
    chain[c].inner++;
}

static void count_info(int c, int where, int outer)
{
    if (where & SSL_CB_HANDSHAKE_START)
        ++*(outer ? &chain[c].starts : &chain[c].inner_starts);
    if (where & SSL_CB_HANDSHAKE_DONE)
        ++*(outer ? &chain[c].dones : &chain[c].inner_dones);
}

#define INFO_PAIR(c)                                                   \
    static void inner_info_##c(const SSL *s, int where, int ret)       \
    {                                                                  \
        enter_inner(c);                                                \
        count_info(c, where, 0);                                       \
        if (prev_info[c] != NULL)                                      \
            prev_info[c](s, where, ret);                               \
        chain[c].inner_active--;                                       \
    }                                                                  \
    static void (*inner_prev_info_##c)(const SSL *, int, int);         \
    static void outer_info_##c(const SSL *s, int where, int ret)       \
    {                                                                  \
        enter_outer(c);                                                \
        count_info(c, where, 1);                                       \
        if (inner_prev_info_##c != NULL)                               \
            inner_prev_info_##c(s, where, ret);                        \
        chain[c].outer_active--;                                       \
    }
INFO_PAIR(SRV_INFO)
INFO_PAIR(SRV_SSL_INFO)
INFO_PAIR(CLI_INFO)

/* The inner new-session callbacks are the application's session stores. */
static int inner_new_server(SSL *s, SSL_SESSION *sess)
{
    int kept = 0;

    enter_inner(SRV_NEW);
    if (prev_new[SRV_NEW] != NULL)
        (void)prev_new[SRV_NEW](s, sess);
    if (server_store == NULL) {
        server_store = sess; /* returning 1 hands us libssl's reference */
        kept = 1;
    }
    chain[SRV_NEW].inner_active--;
    return kept;
}

static int inner_new_client(SSL *s, SSL_SESSION *sess)
{
    int kept = 0;

    enter_inner(CLI_NEW);
    if (prev_new[CLI_NEW] != NULL)
        (void)prev_new[CLI_NEW](s, sess);
    if (client_store == NULL) {
        client_store = sess;
        kept = 1;
    }
    chain[CLI_NEW].inner_active--;
    return kept;
}

static int (*outer_prev_new[NCHAINS])(SSL *, SSL_SESSION *);

static int outer_new_server(SSL *s, SSL_SESSION *sess)
{
    int kept = 0;

    enter_outer(SRV_NEW);
    if (outer_prev_new[SRV_NEW] != NULL)
        kept = outer_prev_new[SRV_NEW](s, sess);
    chain[SRV_NEW].outer_active--;
    return kept;
}

static int outer_new_client(SSL *s, SSL_SESSION *sess)
{
    int kept = 0;

    enter_outer(CLI_NEW);
    if (outer_prev_new[CLI_NEW] != NULL)
        kept = outer_prev_new[CLI_NEW](s, sess);
    chain[CLI_NEW].outer_active--;
    return kept;
}

static SSL_SESSION *inner_get(SSL *s, const unsigned char *id, int idlen, int *copy)
{
    SSL_SESSION *found = NULL;
    unsigned int len = 0;
    const unsigned char *stored;

    enter_inner(SRV_GET);
    if (prev_get != NULL)
        found = prev_get(s, id, idlen, copy);
    if (found == NULL && server_store != NULL) {
        stored = SSL_SESSION_get_id(server_store, &len);
        if ((int)len == idlen && memcmp(stored, id, len) == 0) {
            found = server_store;
            *copy = 1; /* libssl takes its own reference */
        }
    }
    chain[SRV_GET].inner_active--;
    return found;
}

static SSL_SESSION *(*outer_prev_get)(SSL *, const unsigned char *, int, int *);

static SSL_SESSION *outer_get(SSL *s, const unsigned char *id, int idlen, int *copy)
{
    SSL_SESSION *found = NULL;

    enter_outer(SRV_GET);
    if (outer_prev_get != NULL)
        found = outer_prev_get(s, id, idlen, copy);
    chain[SRV_GET].outer_active--;
    return found;
}

static SSL_CTX *make_ctx(const SSL_METHOD *meth)
{
    SSL_CTX *ctx = SSL_CTX_new(meth);

    if (ctx == NULL || !SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION)) {
        ERR_print_errors_fp(stderr);
        exit(3);
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    return ctx;
}

/* Drives both ends through a BIO pair; 1 when both completed. */
static int handshake(SSL *c, SSL *s)
{
    BIO *bc, *bs;
    int i, rc = 0, rs = 0;

    if (!BIO_new_bio_pair(&bc, 0, &bs, 0))
        return 0;
    SSL_set_bio(c, bc, bc);
    SSL_set_bio(s, bs, bs);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    for (i = 0; i < 100 && (rc != 1 || rs != 1); i++) {
        if (rc != 1 && (rc = SSL_do_handshake(c)) != 1
            && SSL_get_error(c, rc) != SSL_ERROR_WANT_READ)
            return 0;
        if (rs != 1 && (rs = SSL_do_handshake(s)) != 1
            && SSL_get_error(s, rs) != SSL_ERROR_WANT_READ)
            return 0;
    }
    return rc == 1 && rs == 1;
}

static const char *ctx_new_from(void)
{
    SSL_CTX *(*fn)(const SSL_METHOD *) = SSL_CTX_new;
    const char *slash;
    void *addr;
    Dl_info info;

    memcpy(&addr, &fn, sizeof(addr));
    if (dladdr(addr, &info) == 0 || info.dli_fname == NULL)
        return "?";
    slash = strrchr(info.dli_fname, '/');
    return slash != NULL ? slash + 1 : info.dli_fname;
}

int main(int argc, char **argv)
{
    SSL_CTX *sctx, *cctx;
    int conn, ok = 1, c;

    if (argc != 3) {
        fprintf(stderr, "usage: chain_getters CERT KEY\n");
        return 2;
    }
    printf("SSL_CTX_new from %s\n", ctx_new_from());
    sctx = make_ctx(TLS_server_method());
    cctx = make_ctx(TLS_client_method());
    if (SSL_CTX_use_certificate_chain_file(sctx, argv[1]) != 1
        || SSL_CTX_use_PrivateKey_file(sctx, argv[2], SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 3;
    }
    /* Every store and lookup goes through the callbacks. */
    SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);

    /* Chained after SSL_CTX_new, as applications do: the preload's are in place. */
    prev_info[SRV_INFO] = SSL_CTX_get_info_callback(sctx);
    SSL_CTX_set_info_callback(sctx, inner_info_SRV_INFO);
    inner_prev_info_SRV_INFO = SSL_CTX_get_info_callback(sctx);
    SSL_CTX_set_info_callback(sctx, outer_info_SRV_INFO);

    prev_new[SRV_NEW] = SSL_CTX_sess_get_new_cb(sctx);
    SSL_CTX_sess_set_new_cb(sctx, inner_new_server);
    outer_prev_new[SRV_NEW] = SSL_CTX_sess_get_new_cb(sctx);
    SSL_CTX_sess_set_new_cb(sctx, outer_new_server);

    prev_get = SSL_CTX_sess_get_get_cb(sctx);
    SSL_CTX_sess_set_get_cb(sctx, inner_get);
    outer_prev_get = SSL_CTX_sess_get_get_cb(sctx);
    SSL_CTX_sess_set_get_cb(sctx, outer_get);

    prev_info[CLI_INFO] = SSL_CTX_get_info_callback(cctx);
    SSL_CTX_set_info_callback(cctx, inner_info_CLI_INFO);
    inner_prev_info_CLI_INFO = SSL_CTX_get_info_callback(cctx);
    SSL_CTX_set_info_callback(cctx, outer_info_CLI_INFO);

    prev_new[CLI_NEW] = SSL_CTX_sess_get_new_cb(cctx);
    SSL_CTX_sess_set_new_cb(cctx, inner_new_client);
    outer_prev_new[CLI_NEW] = SSL_CTX_sess_get_new_cb(cctx);
    SSL_CTX_sess_set_new_cb(cctx, outer_new_client);

    for (conn = 1; conn <= 2; conn++) {
        SSL *cs = SSL_new(cctx), *ss = SSL_new(sctx);
        int done;

        if (cs == NULL || ss == NULL) {
            ERR_print_errors_fp(stderr);
            return 3;
        }
        if (conn == 2) {
            if (client_store != NULL)
                SSL_set_session(cs, client_store);
            prev_info[SRV_SSL_INFO] = SSL_get_info_callback(ss);
            SSL_set_info_callback(ss, inner_info_SRV_SSL_INFO);
            inner_prev_info_SRV_SSL_INFO = SSL_get_info_callback(ss);
            SSL_set_info_callback(ss, outer_info_SRV_SSL_INFO);
        }
        done = handshake(cs, ss);
        printf("conn %d: ok=%d reused=%d\n", conn, done, done && SSL_session_reused(cs));
        if (!done || (conn == 2 && !SSL_session_reused(cs))) {
            ERR_print_errors_fp(stderr);
            ok = 0;
        }
        SSL_shutdown(cs);
        SSL_shutdown(ss);
        SSL_free(cs);
        SSL_free(ss);
    }
    for (c = 0; c < NCHAINS; c++) {
        printf("%s: outer=%d inner=%d", chain_names[c], chain[c].outer, chain[c].inner);
        if (c == SRV_INFO || c == SRV_SSL_INFO || c == CLI_INFO)
            printf(" starts=%d/%d dones=%d/%d", chain[c].starts, chain[c].inner_starts,
                chain[c].dones, chain[c].inner_dones);
        printf("\n");
        if (chain[c].outer == 0 || chain[c].inner != chain[c].outer)
            ok = 0;
    }
    printf("recursion=%d unchained=%d\n", recursion, unchained);
    if (recursion != 0 || unchained != 0)
        ok = 0;
    SSL_SESSION_free(server_store);
    SSL_SESSION_free(client_store);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    printf("%s\n", ok ? "chains ok" : "chains BROKEN");
    return ok ? 0 : 1;
}
