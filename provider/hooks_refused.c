/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Refusing a connection whose handshake completed although the policy
 * forbids it (a path around the other hooks): the error, the count, the
 * shutdown flags, and a filter on the write BIO so that nothing more
 * reaches the peer; a new connection on the same SSL gets its BIO back.
 */
#include <stdatomic.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include "hooks.h"

/*
 * The shutdown flags eg_refuse_completed() sets stop every SSL_write() that
 * starts after the handshake, but not the one that may be running it:
 * ssl_write_internal() tests SSL_SENT_SHUTDOWN before ssl3_write_bytes()
 * runs the handshake (ssl/record/rec_layer_s3.c), and then encrypts and
 * sends the application's record.  That is the usual case for a server that
 * speaks first (SMTP, IMAP, FTP banners), a client that writes first, and
 * BIO_f_ssl.  libssl offers no public way to fail a handshake from its
 * "done" callback, so the refused SSL's write BIO is put behind a filter
 * that fails every write: whatever call drove the handshake, nothing more
 * reaches the peer (records, alerts, a renegotiation's hello).  Reads and
 * controls pass to the application's BIO, so BIO_get_fd()/SSL_get_wfd(),
 * pending counts and flushes behave as before.
 *
 * By SSL_CB_HANDSHAKE_DONE the handshake's last flight is out: its
 * Finished is flushed before the state machine reaches TLS_ST_OK
 * (statem_srvr.c/statem_clnt.c post_work, statem_flush()), and
 * tls_finish_handshake() has removed the buffering BIO before it calls
 * the info callback.  So the filter holds back only what comes after.
 *
 * The BIO_METHOD is made once and kept for the life of the process: any
 * live SSL may still hold a filter.
 */
static CRYPTO_ONCE refused_bio_once = CRYPTO_ONCE_STATIC_INIT;
static BIO_METHOD *refused_bio_method;
static int refused_bio_type;
static atomic_int refused_bio_used; /* until then no SSL has a filter */

static int refused_bio_write(BIO *b, const char *data, int len)
{
    (void)data;
    (void)len;
    BIO_clear_retry_flags(b); /* a hard failure: the application must not retry */
    emsguard_raise(EMSGUARD_R_EMS_REQUIRED,
        "nothing is sent on a connection emsguard refused at the end of its handshake");
    return -1;
}

static int refused_bio_puts(BIO *b, const char *str)
{
    (void)str;
    return refused_bio_write(b, NULL, 0);
}

static int refused_bio_read(BIO *b, char *buf, int len)
{
    BIO *next = BIO_next(b);
    int r;

    if (next == NULL)
        return 0;
    r = BIO_read(next, buf, len);
    BIO_clear_retry_flags(b);
    BIO_copy_next_retry(b);
    return r;
}

static int refused_bio_gets(BIO *b, char *buf, int len)
{
    BIO *next = BIO_next(b);
    int r;

    if (next == NULL)
        return 0;
    r = BIO_gets(next, buf, len);
    BIO_clear_retry_flags(b);
    BIO_copy_next_retry(b);
    return r;
}

/* Everything goes to the application's BIO, as BIO_f_null() does. */
static long refused_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    BIO *next = BIO_next(b);
    long r;

    if (next == NULL || cmd == BIO_CTRL_DUP)
        return 0;
    BIO_clear_retry_flags(b);
    r = BIO_ctrl(next, cmd, num, ptr);
    BIO_copy_next_retry(b);
    return r;
}

static long refused_bio_callback_ctrl(BIO *b, int cmd, BIO_info_cb *fp)
{
    BIO *next = BIO_next(b);

    return next != NULL ? BIO_callback_ctrl(next, cmd, fp) : 0;
}

static int refused_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int refused_bio_destroy(BIO *b)
{
    (void)b; /* the next BIO is the chain's: BIO_free_all() releases it */
    return 1;
}

static void make_refused_bio_method(void)
{
    int type = BIO_get_new_index();
    BIO_METHOD *m;

    if (type == -1)
        return;
    type |= BIO_TYPE_FILTER;
    m = BIO_meth_new(type, "emsguard: refused connection");
    if (m == NULL)
        return;
    if (!BIO_meth_set_write(m, refused_bio_write) || !BIO_meth_set_puts(m, refused_bio_puts)
        || !BIO_meth_set_read(m, refused_bio_read) || !BIO_meth_set_gets(m, refused_bio_gets)
        || !BIO_meth_set_ctrl(m, refused_bio_ctrl)
        || !BIO_meth_set_callback_ctrl(m, refused_bio_callback_ctrl)
        || !BIO_meth_set_create(m, refused_bio_create)
        || !BIO_meth_set_destroy(m, refused_bio_destroy)) {
        BIO_meth_free(m);
        return;
    }
    refused_bio_type = type;
    refused_bio_method = m;
}

static int is_refused_bio(BIO *b)
{
    return b != NULL && refused_bio_method != NULL && BIO_method_type(b) == refused_bio_type;
}

/*
 * Puts the filter in front of |ssl|'s write BIO.  Ownership stays exact:
 * the SSL owns the filter (SSL_set0_wbio() releases its reference on the
 * old BIO), the filter's link owns a new reference on the old BIO
 * (BIO_up_ref()), so BIO_free_all() at SSL_free() releases both and the
 * application's own pointer stays valid for the SSL's lifetime.  The read
 * BIO is left alone, also when it is the same BIO (SSL_set_fd(),
 * SSL_set_bio(ssl, b, b)): that reference is the SSL's rbio's.  Linked
 * after SSL_set0_wbio(), so that libssl's re-attachment of a buffering BIO
 * (none is expected here) cannot unlink it.
 */
static __attribute__((cold, noinline)) void block_writes(struct eg_ctx_state *st, SSL *ssl)
{
    BIO *wbio = SSL_get_wbio(ssl), *filter = NULL;

    if (wbio == NULL)
        return;
    if (CRYPTO_THREAD_run_once(&refused_bio_once, make_refused_bio_method)
        && refused_bio_method != NULL) {
        if (is_refused_bio(wbio))
            return; /* refused before (a renegotiation) */
        filter = BIO_new(refused_bio_method);
    }
    if (!BIO_up_ref(wbio)) {
        BIO_free(filter);
        filter = NULL;
        wbio = NULL;
    }
    if (filter == NULL) {
        /*
         * Out of memory: detach the write BIO instead (libssl fails a write
         * without one, SSL_R_BIO_NOT_SET).  The reference taken above is
         * left unreleased so that the application's pointer stays valid.
         */
        emsguard_log(&st->policy, EG_LEVEL_ERROR,
            "refused connection: out of memory for the write filter; write BIO detached");
        SSL_set0_wbio(ssl, NULL);
        return;
    }
    atomic_store_explicit(&refused_bio_used, 1, memory_order_release);
    SSL_set0_wbio(ssl, filter);
    BIO_push(filter, wbio);
}

/*
 * A new connection on an SSL refused before (SSL_clear(), or a new accept
 * or connect state): it is policed on its own, so the application's write
 * BIO comes back.  At its SSL_CB_HANDSHAKE_START libssl has just run
 * SSL_clear(), which removed any buffering BIO (ssl3_clear ->
 * ssl_free_wbio_buffer()), so the filter is the SSL's write BIO itself.
 * The filter's link reference on the old BIO passes to the SSL, and the
 * SSL's reference on the filter is released by SSL_set0_wbio().
 * Costs one relaxed load per handshake until some connection was refused.
 */
void eg_unblock_writes_of_new_connection(SSL *ssl)
{
    BIO *filter, *wbio;

    if (!atomic_load_explicit(&refused_bio_used, memory_order_acquire)
        || !SSL_in_before(ssl) || !is_refused_bio(filter = SSL_get_wbio(ssl)))
        return;
    wbio = BIO_pop(filter);
    SSL_set0_wbio(ssl, wbio);
}

/*
 * Refuses the connection whose handshake just completed: the handshake
 * was one the policy forbids, and nothing in libssl lets a callback fail a
 * handshake this late (the info callback returns nothing, and after an SNI
 * switch no callback of ours that could abort runs in a resumed TLS <= 1.2
 * handshake).  So no application data may follow: SSL_write() fails
 * (SSL_R_PROTOCOL_IS_SHUTDOWN), SSL_read() returns 0 at once (SSL_ERROR_SSL
 * while this reason is still queued; with the queue emptied libssl calls it
 * ZERO_RETURN), and SSL_shutdown() sends no close_notify, so the peer sees
 * an unclean end.  The write that drove the handshake, if one did, has
 * passed libssl's shutdown test already: block_writes() fails its record
 * too, and everything after.  The reason is raised on the error queue
 * (until the thread's next SSL_do_handshake() empties it), logged and
 * counted.
 */
__attribute__((cold, noinline)) void eg_refuse_completed(struct eg_ctx_state *st,
    SSL *ssl, EMSGUARD_COUNTER counter, const char *why, const char *via,
    const char *error)
{
    count(st, counter);
    eg_log_event(st, ssl, EG_LEVEL_ERROR, "refused connection:", why, via);
    emsguard_raise(EMSGUARD_R_EMS_REQUIRED, "connection refused after the handshake: %s",
        error);
    SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    block_writes(st, ssl);
}
