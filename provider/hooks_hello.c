/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server's ClientHello callback, which sees every ClientHello before
 * libssl chooses a version or a session: EMS kept consistent across
 * renegotiation, DisableDHEWithoutExtendedMasterSecret, and
 * RequireExtendedMasterSecret=1 (a rejection, or TLS 1.3 only for the
 * handshake: the pin, given back when the handshake ends).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include "hooks.h"

/* What the ClientHello's supported_versions lists (TLS only). */
#define HELLO_LISTS_TLS13 0x1
#define HELLO_LISTS_TLS12_OR_LOWER 0x2 /* SSL 3.0 to TLS 1.2 */

static int hello_versions(SSL *ssl)
{
    const unsigned char *ext;
    size_t len, i;
    int lists = 0;

    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &ext, &len)
        || len < 1 || ext[0] != len - 1)
        return 0;
    for (i = 1; i + 1 < len; i += 2) {
        if (ext[i] == 0x03 && ext[i + 1] == 0x04)
            lists |= HELLO_LISTS_TLS13;
        else if (ext[i] == 0x03 && ext[i + 1] <= 0x03)
            lists |= HELLO_LISTS_TLS12_OR_LOWER;
    }
    return lists;
}

/* ---- TLS 1.3 only, for one handshake -------------------------------------- */

/*
 * The ClientHello callback runs before libssl chooses the version
 * (statem_srvr.c, tls_early_post_process_client_hello), and what it will
 * choose is not for us to predict: a ClientHello listing TLS 1.3 still ends
 * in TLS 1.2 on a method fixed to 1.2, with a certificate TLS 1.3 cannot
 * use (statem_lib.c, is_tls13_capable), or in DTLS.  So a ClientHello that
 * must not end in TLS <= 1.2 gets TLS 1.3 as its minimum version:
 * ssl_choose_server_version() then picks TLS 1.3 or fails with a
 * protocol_version alert, which on_alert_sent reports.
 *
 * The minimum the SSL had is kept in ex_data and given back as soon as the
 * pinned handshake ends: at its SSL_CB_HANDSHAKE_DONE (on_handshake_done;
 * TLS 1.3 has no renegotiation, so the lower minimum no longer matters to
 * the connection) or at the fatal alert that ends it (on_alert_sent).  Not
 * at the SSL's next ClientHello: by then the application may have set a
 * minimum of its own for the next connection (SSL_clear()), and TLS 1.3
 * set by the application cannot be told from the pin.  A pinned handshake
 * abandoned without either (the peer vanished) keeps TLS 1.3: the next
 * ClientHello only forgets the saved minimum (drop_abandoned_pin).  A
 * HelloRetryRequest's second ClientHello is the same handshake, still
 * pinned.
 */
/* SSL_version() of a QUIC connection: OSSL_QUIC1_VERSION from OpenSSL 3.2. */
#define EG_QUIC1_VERSION 0x0000001

static CRYPTO_ONCE pin_once = CRYPTO_ONCE_STATIC_INIT;
static int pin_idx = -1; /* SSL -> its minimum version before the pin, plus 1 */
static atomic_int pin_made; /* until then no SSL has a minimum to get back */

static void init_pin_index(void)
{
    pin_idx = SSL_get_ex_new_index(0, "emsguard: minimum version before a TLS 1.3 pin",
        NULL, NULL, NULL);
}

/* Gives |ssl| back the minimum version the pin of its ending handshake replaced. */
void eg_unpin_tls13(SSL *ssl)
{
    uintptr_t saved;

    if (!atomic_load_explicit(&pin_made, memory_order_acquire)
        || (saved = (uintptr_t)SSL_get_ex_data(ssl, pin_idx)) == 0)
        return;
    /* Unless the application has set a minimum of its own since. */
    if (SSL_get_min_proto_version(ssl) == TLS1_3_VERSION)
        SSL_set_min_proto_version(ssl, (int)(saved - 1));
    SSL_set_ex_data(ssl, pin_idx, NULL);
}

/*
 * A new handshake finds the minimum of a pinned handshake that ended
 * neither done nor with an alert of ours: keep whatever minimum the SSL
 * has now (TLS 1.3, or one the application set since), and forget the
 * saved one.  Never lowering is the safe direction.
 */
static void drop_abandoned_pin(SSL *ssl)
{
    if (atomic_load_explicit(&pin_made, memory_order_acquire)
        && SSL_get_ex_data(ssl, pin_idx) != NULL)
        SSL_set_ex_data(ssl, pin_idx, NULL);
}

/*
 * Restricts this handshake to TLS 1.3, which its ClientHello lists.
 * Returns PIN_NOT_NEEDED when it cannot end in TLS <= 1.2 anyway: a QUIC
 * connection, or a version-flexible TLS SSL and a ClientHello that lists no
 * version below TLS 1.3 (libssl then chooses from that list only; most
 * TLS 1.3-only clients send no EMS, and they cost nothing here).
 * Returns PIN_SET when the minimum version is now TLS 1.3.
 * Returns 0 when the restriction cannot be made, and the ClientHello must
 * be rejected:
 *  - DTLS: OpenSSL 3.0 to 3.5 have no DTLS 1.3, and libssl never reads
 *    supported_versions in DTLS;
 *  - a method fixed to one version (TLSv1_2_server_method(), and every
 *    renegotiation, which runs on the negotiated version's method): libssl
 *    ignores version bounds there, and SSL_version() already names that
 *    version rather than TLS 1.3;
 *  - TLS 1.3 switched off by the maximum version or SSL_OP_NO_TLSv1_3.
 * Before version negotiation a version-flexible TLS SSL reports TLS 1.3
 * (TLS_MAX_VERSION_INTERNAL), and so does a second ClientHello after a
 * HelloRetryRequest, where TLS 1.3 is already chosen.
 */
#define PIN_SET 1
#define PIN_NOT_NEEDED 2

static int pin_tls13(SSL *ssl)
{
    long before = SSL_get_min_proto_version(ssl), max = SSL_get_max_proto_version(ssl);
    int lists;

    /* A QUIC connection (OpenSSL 3.5 servers) is TLS 1.3 only (RFC 9001). */
    if (SSL_version(ssl) == EG_QUIC1_VERSION)
        return PIN_NOT_NEEDED;
    if (SSL_is_dtls(ssl) || SSL_version(ssl) != TLS1_3_VERSION
        || !((lists = hello_versions(ssl)) & HELLO_LISTS_TLS13)
        || (max != 0 && max < TLS1_3_VERSION)
        || (SSL_get_options(ssl) & SSL_OP_NO_TLSv1_3) != 0)
        return 0;
    if (!(lists & HELLO_LISTS_TLS12_OR_LOWER))
        return PIN_NOT_NEEDED;
    if (before == TLS1_3_VERSION)
        return PIN_SET;
    if (!CRYPTO_THREAD_run_once(&pin_once, init_pin_index) || pin_idx < 0)
        return 0;
    if (!SSL_set_min_proto_version(ssl, TLS1_3_VERSION)
        || SSL_get_min_proto_version(ssl) != TLS1_3_VERSION)
        return 0;
    if (!SSL_set_ex_data(ssl, pin_idx, (void *)(uintptr_t)(before + 1))) {
        SSL_set_min_proto_version(ssl, (int)before);
        return 0;
    }
    atomic_store_explicit(&pin_made, 1, memory_order_release);
    return PIN_SET;
}

/* ---- the ClientHello callback ---------------------------------------------- */

/*
 * RequireExtendedMasterSecret=1: counts, logs and queues the rejection of a
 * ClientHello that would have ended in TLS <= 1.2 without EMS.  |hello_ems|:
 * the client offered EMS, but this server has it switched off.
 * |no_tls13|: the ClientHello was restricted to TLS 1.3, which this server
 * could not negotiate with it.
 */
__attribute__((cold, noinline)) void eg_report_ems_required(struct eg_ctx_state *st,
    SSL *ssl, int hello_ems, int no_tls13)
{
    count(st, EMSGUARD_CNT_REJECTED_NO_EMS);
    if (hello_ems) {
        eg_log_event(st, ssl, EG_LEVEL_ERROR, "rejected ClientHello:",
            "reason=ems-required (Extended Master Secret is switched off on this server: "
            "SSL_OP_NO_EXTENDED_MASTER_SECRET, Options -ExtendedMasterSecret; "
            "RequireExtendedMasterSecret=1)",
            "client-hello");
        ERR_raise_data(EMSGUARD_get_error_lib(), EMSGUARD_R_EMS_REQUIRED,
            "RequireExtendedMasterSecret=1, but Extended Master Secret is switched off on "
            "this server (SSL_OP_NO_EXTENDED_MASTER_SECRET on the SSL or its SSL_CTX, or "
            "'Options = -ExtendedMasterSecret' in openssl.cnf)%s",
            no_tls13 ? "; and TLS 1.3, which needs none, could not be negotiated" : "");
        return;
    }
    eg_log_event(st, ssl, EG_LEVEL_ERROR, "rejected ClientHello:",
        no_tls13 ? "reason=ems-required (no Extended Master Secret, and TLS 1.3 could not be "
                   "negotiated; RequireExtendedMasterSecret=1)"
                 : "reason=ems-required (no Extended Master Secret, RequireExtendedMasterSecret=1)",
        "client-hello");
    ERR_raise_data(EMSGUARD_get_error_lib(), EMSGUARD_R_EMS_REQUIRED,
        "ClientHello without Extended Master Secret (RequireExtendedMasterSecret=1)%s",
        no_tls13 ? "; and TLS 1.3, which needs none, could not be negotiated with this client"
                 : "");
}

/*
 * Server, every ClientHello:
 *  - a renegotiation must offer EMS exactly when the connection's previous
 *    ClientHello did (libssl refuses only dropping EMS that was in use);
 *  - DisableDHEWithoutExtendedMasterSecret: no TLS_DHE_* without EMS;
 *  - RequireExtendedMasterSecret=1: no TLS <= 1.2 handshake without EMS.  A
 *    ClientHello without usable EMS is rejected with handshake_failure
 *    before any key exchange, or, if it lists TLS 1.3, restricted to TLS 1.3
 *    (pin_tls13): which version it ends in is decided by libssl after this
 *    callback, and only that counts.
 * None of this depends on a guess of the version: a renegotiation is always
 * TLS <= 1.2, and the other two hold whatever the version becomes.
 */
int eg_client_hello_cb(SSL *ssl, int *al, void *arg)
{
    struct eg_ctx_state *st = arg;
    struct eg_conn *conn = eg_conn_need(ssl);
    uintptr_t prev = conn != NULL ? conn->flags : 0, flags;
    int hello_ems, ems_used, pin;

    /* A new handshake (not the second ClientHello after a HelloRetryRequest). */
    if ((prev & CONN_PINNED_TLS13) == 0)
        drop_abandoned_pin(ssl);
    if (st->app_hello_cb != NULL) {
        int r = st->app_hello_cb(ssl, al, st->app_hello_arg);

        if (r != SSL_CLIENT_HELLO_SUCCESS)
            return r;
    }
    hello_ems = hello_has_ems(ssl);
    flags = (prev & ~(uintptr_t)(CONN_HELLO_EMS | CONN_PREV_HELLO_EMS)) | CONN_HELLO_SEEN
        | (hello_ems ? CONN_HELLO_EMS | CONN_PREV_HELLO_EMS : 0);
    if (conn != NULL)
        conn->flags = flags;
    eg_isolate_refused_new_session(st, ssl, conn, hello_ems);
    /*
     * A renegotiation must keep what the client offered: compared with the
     * previous ClientHello, not with the established state, which lacks EMS
     * whenever this server has it switched off.
     */
    if ((prev & CONN_ESTABLISHED) != 0
        && !hello_ems != !(prev & CONN_PREV_HELLO_EMS)) {
        count(st, EMSGUARD_CNT_ABORTED_INCONSISTENT);
        if (conn != NULL)
            conn->flags = flags | CONN_ABORT_REPORTED;
        eg_log_event(st, ssl, EG_LEVEL_ERROR, "rejected renegotiation:",
            hello_ems ? "reason=inconsistent (ClientHello adds Extended Master Secret, "
                        "which the connection's previous ClientHello did not offer)"
                      : "reason=inconsistent (ClientHello drops Extended Master Secret, "
                        "which the connection's previous ClientHello offered)",
            "renegotiation");
        *al = SSL_AD_HANDSHAKE_FAILURE;
        ERR_raise_data(EMSGUARD_get_error_lib(), EMSGUARD_R_EMS_REQUIRED,
            "renegotiation ClientHello changes Extended Master Secret");
        return SSL_CLIENT_HELLO_ERROR;
    }
    /* What libssl will do: EMS when offered, unless switched off here. */
    ems_used = hello_ems && emsguard_role_uses_ems(&st->policy, EG_ROLE_SERVER)
        && (SSL_get_options(ssl) & SSL_OP_NO_EXTENDED_MASTER_SECRET) == 0;
    if (emsguard_policy_drops_dhe(&st->policy, EG_ROLE_SERVER, !ems_used))
        eg_avoid_dhe_for_hello(st, ssl);
    if (!emsguard_policy_requires_ems(&st->policy, EG_ROLE_SERVER) || ems_used)
        return SSL_CLIENT_HELLO_SUCCESS;
    if ((prev & CONN_ESTABLISHED) == 0 && (pin = pin_tls13(ssl)) != 0) {
        if (conn != NULL && pin == PIN_SET)
            conn->flags = flags | CONN_PINNED_TLS13;
        return SSL_CLIENT_HELLO_SUCCESS;
    }
    if (conn != NULL)
        conn->flags = flags | CONN_ABORT_REPORTED;
    eg_report_ems_required(st, ssl, hello_ems, 0);
    *al = SSL_AD_HANDSHAKE_FAILURE;
    return SSL_CLIENT_HELLO_ERROR;
}
