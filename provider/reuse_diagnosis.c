/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one-line diagnosis for a client whose refused resumption cost it the
 * connection: the policy withheld a non-EMS session, the full handshake
 * succeeded, and then the peer sent nothing (at most one short record, a
 * close_notify) before the end.  That is what a server requiring session
 * reuse does (FTPS require_ssl_reuse drops a data connection that did not
 * resume).  Not when this side sent close_notify first: then the
 * application ended the connection (a health check, a handshake-only
 * client), not the peer.
 *
 * The count of bytes the peer sent lives in the connection's read BIO, and
 * the verdict comes when the SSL is freed.  libssl frees the BIOs before
 * the SSL's ex_data since OpenSSL 3.2 and after it in 3.0, so a watched
 * connection keeps a reference on its read BIO of its own until then.  Only
 * connections whose session was withheld, with error logging on, are
 * watched; their record lives under an ex_data index of its own, registered
 * by the first of them, so no other connection pays for it.
 */
#include <stdatomic.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include "internal.h"

/* A close_notify record is 31 bytes or less; anything else is data. */
#define QUIET_PEER_BYTES 64

struct reuse_watch {
    BIO *rbio; /* our reference */
    uint64_t bytes_at_done;
    SSL_CTX *ctx; /* our reference: keeps |policy| alive */
    const EMSGUARD_POLICY *policy;
    int closed_first;
};

static CRYPTO_ONCE watch_once = CRYPTO_ONCE_STATIC_INIT;
static int watch_idx = -1;
static atomic_int watch_registered;

static void release(struct reuse_watch *w)
{
    /* BIO_free_all: on 3.2+ libssl already dropped its reference and left
     * the rest of the chain to whoever holds the last one. */
    BIO_free_all(w->rbio);
    SSL_CTX_free(w->ctx);
    OPENSSL_free(w);
}

static void diagnose(struct reuse_watch *w)
{
    char peer[80];

    if (w->closed_first
        || BIO_number_read(w->rbio) - w->bytes_at_done > QUIET_PEER_BYTES)
        return;
    emsguard_peer_address(w->rbio, peer, sizeof(peer));
    /* The connection is lost to the policy: an error, not a warning. */
    emsguard_log(w->policy, EG_LEVEL_ERROR,
        "role=client resumption of a non-EMS session was refused (full handshake "
        "instead) and peer=%s closed the connection without sending data: the peer "
        "requires session reuse (e.g. FTPS require_ssl_reuse); enable Extended "
        "Master Secret on the peer", peer);
}

static void free_watch(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (ptr != NULL) {
        diagnose(ptr);
        release(ptr);
    }
}

/* SSL_dup(): the copy is a new connection, with nothing to watch yet. */
static int dup_watch(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from,
    void **from_d, int idx, long argl, void *argp)
{
    (void)to;
    (void)from;
    (void)idx;
    (void)argl;
    (void)argp;
    *from_d = NULL;
    return 1;
}

static void register_index(void)
{
    watch_idx = SSL_get_ex_new_index(0, NULL, NULL, dup_watch, free_watch);
    if (watch_idx >= 0)
        atomic_store(&watch_registered, 1);
}

static struct reuse_watch *watch_of(const SSL *ssl)
{
    if (!atomic_load_explicit(&watch_registered, memory_order_acquire))
        return NULL;
    return SSL_get_ex_data(ssl, watch_idx);
}

void emsguard_reuse_watch(SSL *ssl, SSL_CTX *policy_ctx, const EMSGUARD_POLICY *policy)
{
    struct reuse_watch *w;
    BIO *rbio = SSL_get_rbio(ssl);

    /* Watched since the first handshake: a renegotiation changes nothing. */
    if (watch_of(ssl) != NULL || rbio == NULL || !emsguard_log_wanted(policy, EG_LEVEL_ERROR)
        || !CRYPTO_THREAD_run_once(&watch_once, register_index) || watch_idx < 0
        || (w = OPENSSL_zalloc(sizeof(*w))) == NULL)
        return; /* a diagnosis only: no watch, no line */
    if (!BIO_up_ref(rbio)) {
        OPENSSL_free(w);
        return;
    }
    w->rbio = rbio;
    w->bytes_at_done = BIO_number_read(rbio);
    if (!SSL_CTX_up_ref(policy_ctx)) {
        BIO_free_all(rbio);
        OPENSSL_free(w);
        return;
    }
    w->ctx = policy_ctx;
    w->policy = policy;
    if (!SSL_set_ex_data(ssl, watch_idx, w))
        release(w);
}

void emsguard_reuse_end(SSL *ssl)
{
    struct reuse_watch *w = watch_of(ssl);

    if (w != NULL) {
        SSL_set_ex_data(ssl, watch_idx, NULL);
        diagnose(w);
        release(w);
    }
}

void emsguard_reuse_close_sent(SSL *ssl)
{
    struct reuse_watch *w = watch_of(ssl);

    if (w != NULL && !(SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN))
        w->closed_first = 1;
}
