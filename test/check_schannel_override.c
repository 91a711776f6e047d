/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Issue 15, "no silent weakening": the Schannel-mapped values of a policy
 * hold on every connection, whatever the application sets on the SSL_CTX
 * (or the SSL) after EMSGUARD_enable().  nginx, for one, sets its own
 * protocols, cipher list, session timeout and cache mode after
 * SSL_CTX_new(), which is where the preload enables the policy.
 *
 * The policy only restricts: where the application narrows further (fewer
 * protocol versions, fewer suites), its narrower setting is kept; where it
 * widens, the policy's limit applies.  A policy without Schannel values is
 * not touched at all.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "emsguard.h"
#include "harness.h"
#include "harness_check.h"

/* 1 if a handshake between new SSLs of the two ctxs completes. */
static int handshake_ok(SSL_CTX *srv, SSL_CTX *cli)
{
    hs_result r;
    int ok = hs_handshake(srv, cli, NULL, &r);

    hs_result_clear(&r);
    ERR_clear_error();
    return ok;
}

/* The same, keeping both SSLs for a closer look (the caller frees them). */
static int connect_pair(SSL_CTX *srv, SSL_CTX *cli, SSL **server, SSL **client)
{
    int ok;

    *server = SSL_new(srv);
    *client = SSL_new(cli);
    ck_assert(*server != NULL && *client != NULL);
    ok = hs_connect(*client, *server);
    ERR_clear_error();
    return ok;
}

/* The negotiated protocol version, or 0 if the handshake failed. */
static int negotiated_version(SSL_CTX *srv, SSL_CTX *cli)
{
    hs_result r;
    int v = hs_handshake(srv, cli, NULL, &r) ? r.version : 0;

    hs_result_clear(&r);
    ERR_clear_error();
    return v;
}

/* A TLS 1.3-only client offering only |suites|. */
static SSL_CTX *client13(const char *suites)
{
    SSL_CTX *ctx = hs_client_ctx(HS_TLS13);

    ck_assert_int_eq(SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION), 1);
    ck_assert_int_eq(SSL_CTX_set_ciphersuites(ctx, suites), 1);
    return ctx;
}

/* A TLS_method() ctx (both roles) with the harness's P-256 certificate. */
static SSL_CTX *both_roles_ctx(void)
{
    SSL_CTX *srv = hs_server_ctx(HS_MECH_TICKET, HS_TLS13);
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());

    ck_assert(srv != NULL && ctx != NULL);
    ck_assert_int_eq(SSL_CTX_use_certificate(ctx, SSL_CTX_get0_certificate(srv)), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, SSL_CTX_get0_privatekey(srv)), 1);
    SSL_CTX_free(srv);
    return ctx;
}

static const char *const tls12_server_off[] = {
    "Protocols\\TLS 1.2\\Server\\Enabled", "0", NULL
};
static const char *const aes128_off[] = {
    "Ciphers\\AES 128/128\\Enabled", "0", NULL
};
/*
 * Roles that differ (servers: TLS 1.1 to 1.3; clients: TLS 1.0 to 1.2), so
 * that a both-roles ctx gets its Schannel settings per connection; and no
 * AES-128.
 */
static const char *const split_roles_no_aes128[] = {
    "Protocols\\TLS 1.0\\Server\\Enabled", "0",
    "Protocols\\TLS 1.3\\Client\\Enabled", "0",
    "Ciphers\\AES 128/128\\Enabled", "0", NULL
};

/* ---- protocol versions ------------------------------------------------------ */

START_TEST(test_protocols_widened_after_enable)
{
    SSL_CTX *srv = hs_enabled(hs_server_ctx(HS_MECH_SESSION_ID, HS_TLS13), tls12_server_off);
    SSL_CTX *cli12 = hs_client_ctx(0);
    SSL_CTX *cli13 = hs_client_ctx(HS_TLS13);

    /* The application's own range, set after the policy (as nginx does). */
    ck_assert_int_eq(SSL_CTX_set_min_proto_version(srv, TLS1_2_VERSION), 1);
    ck_assert_int_eq(negotiated_version(srv, cli12), 0);
    ck_assert_int_eq(negotiated_version(srv, cli13), TLS1_3_VERSION);
    /* nginx: min 0, max TLS 1.3, protocols switched off by options. */
    ck_assert_int_eq(SSL_CTX_set_min_proto_version(srv, 0), 1);
    ck_assert_int_eq(SSL_CTX_set_max_proto_version(srv, 0), 1);
    ck_assert_int_eq(negotiated_version(srv, cli12), 0);
    ck_assert_int_eq(negotiated_version(srv, cli13), TLS1_3_VERSION);
    SSL_CTX_free(srv);
    SSL_CTX_free(cli12);
    SSL_CTX_free(cli13);
}
END_TEST

/* The application lowers the SSL's minimum in its ClientHello callback. */
static int lower_min_hello_cb(SSL *ssl, int *al, void *arg)
{
    (void)al;
    (void)arg;
    SSL_set_min_proto_version(ssl, TLS1_2_VERSION);
    return SSL_CLIENT_HELLO_SUCCESS;
}

START_TEST(test_protocols_widened_during_handshake)
{
    SSL_CTX *srv = hs_enabled(hs_server_ctx(HS_MECH_SESSION_ID, HS_TLS13), tls12_server_off);
    SSL_CTX *cli12 = hs_client_ctx(0);
    SSL_CTX *cli13 = hs_client_ctx(HS_TLS13);

    ck_assert_int_eq(EMSGUARD_CTX_set_client_hello_cb(srv, lower_min_hello_cb, NULL), 1);
    ck_assert_int_eq(negotiated_version(srv, cli12), 0);
    ck_assert_int_eq(negotiated_version(srv, cli13), TLS1_3_VERSION);
    SSL_CTX_free(srv);
    SSL_CTX_free(cli12);
    SSL_CTX_free(cli13);
}
END_TEST

START_TEST(test_protocols_app_narrower_kept)
{
    SSL_CTX *srv = hs_enabled(hs_server_ctx(HS_MECH_SESSION_ID, HS_TLS13),
        (const char *const[]) { "Protocols\\TLS 1.0\\Server\\Enabled", "0", NULL });
    SSL_CTX *both = hs_enabled(both_roles_ctx(), split_roles_no_aes128);
    SSL_CTX *cli12 = hs_client_ctx(0);
    SSL_CTX *cli13 = hs_client_ctx(HS_TLS13);

    /* The policy allows TLS 1.2 on both; the application wants 1.3 only. */
    ck_assert_int_eq(negotiated_version(srv, cli12), TLS1_2_VERSION);
    ck_assert_int_eq(SSL_CTX_set_min_proto_version(srv, TLS1_3_VERSION), 1);
    ck_assert_int_eq(SSL_CTX_set_min_proto_version(both, TLS1_3_VERSION), 1);
    ck_assert_int_eq(negotiated_version(srv, cli12), 0);
    ck_assert_int_eq(negotiated_version(both, cli12), 0);
    ck_assert_int_eq(negotiated_version(both, cli13), TLS1_3_VERSION);
    SSL_CTX_free(srv);
    SSL_CTX_free(both);
    SSL_CTX_free(cli12);
    SSL_CTX_free(cli13);
}
END_TEST

START_TEST(test_client_role_widened_after_enable)
{
    SSL_CTX *srv = hs_server_ctx(HS_MECH_SESSION_ID, HS_TLS13);
    SSL_CTX *srv12 = hs_server_ctx(HS_MECH_SESSION_ID, 0);
    SSL_CTX *cli = hs_enabled(hs_client_ctx(HS_TLS13),
        (const char *const[]) { "Protocols\\TLS 1.2\\Client\\Enabled", "0",
            "Ciphers\\AES 128/128\\Enabled", "0", NULL });

    /* Versions: the client stays at TLS 1.3 whatever its minimum says. */
    ck_assert_int_eq(SSL_CTX_set_min_proto_version(cli, TLS1_2_VERSION), 1);
    ck_assert_int_eq(negotiated_version(srv12, cli), 0);
    /* Suites: a client list of AES-128 suites only offers nothing usable. */
    ck_assert_int_eq(SSL_CTX_set_ciphersuites(cli, "TLS_AES_128_GCM_SHA256"), 1);
    ck_assert_str_eq(hs_negotiated_suite(srv, cli), "");
    ck_assert_int_eq(SSL_CTX_set_ciphersuites(cli,
                         "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"), 1);
    ck_assert_str_eq(hs_negotiated_suite(srv, cli), "TLS_AES_256_GCM_SHA384");
    SSL_CTX_free(srv);
    SSL_CTX_free(srv12);
    SSL_CTX_free(cli);
}
END_TEST

/* ---- cipher suites ------------------------------------------------------------ */

START_TEST(test_ciphers_widened_after_enable)
{
    SSL_CTX *srv = hs_enabled(hs_server_ctx(HS_MECH_SESSION_ID, HS_TLS13), aes128_off);
    SSL_CTX *aes128 = hs_client12("ECDHE-ECDSA-AES128-GCM-SHA256");
    SSL_CTX *both_sizes = hs_client12("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384");
    SSL_CTX *aes128_13 = client13("TLS_AES_128_GCM_SHA256");

    ck_assert_int_eq(SSL_CTX_set_cipher_list(srv, "ALL"), 1);
    ck_assert_int_eq(SSL_CTX_set_ciphersuites(srv,
                         "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"), 1);
    ck_assert_str_eq(hs_negotiated_suite(srv, aes128), "");
    ck_assert_str_eq(hs_negotiated_suite(srv, both_sizes), "ECDHE-ECDSA-AES256-GCM-SHA384");
    ck_assert_str_eq(hs_negotiated_suite(srv, aes128_13), "");
    /* The SSL's own list, set by the application, is held the same way. */
    {
        SSL *s = SSL_new(srv), *c = SSL_new(aes128);

        ck_assert_int_eq(SSL_set_cipher_list(s, "AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256"), 1);
        ck_assert_int_eq(hs_connect(c, s), 0);
        ERR_clear_error();
        SSL_free(s);
        SSL_free(c);
    }
    SSL_CTX_free(srv);
    SSL_CTX_free(aes128);
    SSL_CTX_free(both_sizes);
    SSL_CTX_free(aes128_13);
}
END_TEST

START_TEST(test_ciphers_app_narrower_kept)
{
    SSL_CTX *srv = hs_enabled(hs_server_ctx(HS_MECH_SESSION_ID, HS_TLS13), aes128_off);
    SSL_CTX *both = hs_enabled(both_roles_ctx(), split_roles_no_aes128);
    SSL_CTX *offer = hs_client12("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305");
    SSL_CTX *aes256 = hs_client12("ECDHE-ECDSA-AES256-GCM-SHA384");

    ck_assert_int_eq(SSL_CTX_set_cipher_list(srv, "ECDHE-ECDSA-CHACHA20-POLY1305"), 1);
    ck_assert_int_eq(SSL_CTX_set_cipher_list(both, "ECDHE-ECDSA-CHACHA20-POLY1305"), 1);
    ck_assert_str_eq(hs_negotiated_suite(srv, offer), "ECDHE-ECDSA-CHACHA20-POLY1305");
    ck_assert_str_eq(hs_negotiated_suite(both, offer), "ECDHE-ECDSA-CHACHA20-POLY1305");
    ck_assert_str_eq(hs_negotiated_suite(srv, aes256), "");
    ck_assert_str_eq(hs_negotiated_suite(both, aes256), "");
    SSL_CTX_free(srv);
    SSL_CTX_free(both);
    SSL_CTX_free(offer);
    SSL_CTX_free(aes256);
}
END_TEST

/* An SNI switch into a ctx whose list the application widened after enable. */
static SSL_CTX *vhost;

static int switch_to_vhost(SSL *ssl, int *al, void *arg)
{
    (void)al;
    (void)arg;
    return SSL_set_SSL_CTX(ssl, vhost) == vhost ? SSL_TLSEXT_ERR_OK
                                                  : SSL_TLSEXT_ERR_ALERT_FATAL;
}

START_TEST(test_ciphers_after_sni_switch)
{
    SSL_CTX *first = hs_enabled(hs_server_ctx(HS_MECH_SESSION_ID, HS_TLS13), aes128_off);
    SSL_CTX *aes128 = hs_client12("ECDHE-ECDSA-AES128-GCM-SHA256");
    SSL_CTX *aes256 = hs_client12("ECDHE-ECDSA-AES256-GCM-SHA384");

    vhost = hs_enabled(hs_server_ctx(HS_MECH_SESSION_ID, HS_TLS13), aes128_off);
    ck_assert_int_eq(SSL_CTX_set_cipher_list(vhost, "ALL"), 1);
    SSL_CTX_set_tlsext_servername_callback(first, switch_to_vhost);
    hs_set_sni("vhost.example");
    ck_assert_str_eq(hs_negotiated_suite(first, aes128), "");
    ck_assert_str_eq(hs_negotiated_suite(first, aes256), "ECDHE-ECDSA-AES256-GCM-SHA384");
    hs_set_sni(NULL);
    SSL_CTX_free(first);
    SSL_CTX_free(vhost);
    vhost = NULL;
    SSL_CTX_free(aes128);
    SSL_CTX_free(aes256);
}
END_TEST

/* An application security callback that allows everything. */
static int allow_all_security_cb(const SSL *s, const SSL_CTX *ctx, int op, int bits,
    int nid, void *other, void *ex)
{
    (void)s;
    (void)ctx;
    (void)op;
    (void)bits;
    (void)nid;
    (void)other;
    (void)ex;
    return 1;
}

START_TEST(test_ciphers_security_callback_replaced)
{
    SSL_CTX *srv = hs_enabled(hs_server_ctx(HS_MECH_SESSION_ID, HS_TLS13), aes128_off);
    SSL_CTX *aes128 = hs_client12("ECDHE-ECDSA-AES128-GCM-SHA256");
    SSL_CTX *aes256 = hs_client12("ECDHE-ECDSA-AES256-GCM-SHA384");

    SSL_CTX *offer = hs_client12("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305");

    SSL_CTX_set_security_callback(srv, allow_all_security_cb);
    ck_assert_int_eq(SSL_CTX_set_cipher_list(srv, "ALL"), 1);
    ck_assert_str_eq(hs_negotiated_suite(srv, aes128), "");
    ck_assert_str_eq(hs_negotiated_suite(srv, aes256), "ECDHE-ECDSA-AES256-GCM-SHA384");
    /* Narrower than the policy: kept on this path too. */
    ck_assert_int_eq(SSL_CTX_set_cipher_list(srv, "ECDHE-ECDSA-CHACHA20-POLY1305"), 1);
    ck_assert_str_eq(hs_negotiated_suite(srv, offer), "ECDHE-ECDSA-CHACHA20-POLY1305");
    SSL_CTX_free(srv);
    SSL_CTX_free(aes128);
    SSL_CTX_free(aes256);
    SSL_CTX_free(offer);
}
END_TEST

/* ---- groups, DH, options --------------------------------------------------- */

START_TEST(test_groups_widened_after_enable)
{
    SSL_CTX *srv = hs_enabled(hs_server_ctx(HS_MECH_SESSION_ID, HS_TLS13),
        (const char *const[]) { "EccCurves", "NistP384", NULL });
    SSL_CTX *p256_12 = hs_client_ctx(0);
    SSL_CTX *p256_13 = client13("TLS_AES_256_GCM_SHA384");
    SSL_CTX *both = hs_client_ctx(0);
    SSL *s, *c;

    ck_assert_int_eq(SSL_CTX_set1_groups_list(srv, "P-256:P-384"), 1);
    ck_assert_int_eq(SSL_CTX_set1_groups_list(p256_12, "P-256"), 1);
    ck_assert_int_eq(SSL_CTX_set1_groups_list(p256_13, "P-256"), 1);
    ck_assert_int_eq(SSL_CTX_set1_groups_list(both, "P-256:P-384"), 1);
    ck_assert_int_eq(handshake_ok(srv, p256_12), 0);
    ck_assert_int_eq(handshake_ok(srv, p256_13), 0);
    /* The certificate's own curve (P-256) is not a key exchange: still usable. */
    ck_assert_int_eq(connect_pair(srv, both, &s, &c), 1);
    ck_assert_int_eq(SSL_get_negotiated_group(c), NID_secp384r1);
    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(srv);
    SSL_CTX_free(p256_12);
    SSL_CTX_free(p256_13);
    SSL_CTX_free(both);
}
END_TEST

START_TEST(test_server_dh_after_enable)
{
    SSL_CTX *srv = hs_enabled(hs_rsa_dhe_server(1024),
        (const char *const[]) {
            "KeyExchangeAlgorithms\\Diffie-Hellman\\ServerMinKeyBitLength", "3072", NULL });
    SSL_CTX *cli = hs_client12("DHE-RSA-AES256-GCM-SHA384:@SECLEVEL=1");
    SSL *s, *c;
    EVP_PKEY *dh = NULL;

    SSL_CTX_set_verify(cli, SSL_VERIFY_PEER, hs_accept_any_cert);
    /* s_server does this after SSL_CTX_new: a 1024-bit group for this key. */
    SSL_CTX_set_dh_auto(srv, 1);
    ck_assert_int_eq(connect_pair(srv, cli, &s, &c), 1);
    ck_assert_int_eq(SSL_get_peer_tmp_key(c, &dh), 1);
    ck_assert_int_ge(EVP_PKEY_get_bits(dh), 3072);
    EVP_PKEY_free(dh);
    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(srv);
    SSL_CTX_free(cli);
}
END_TEST

/* The application's own verify callbacks, set after enable. */
static int verify_calls;

static int accept_and_count(int ok, X509_STORE_CTX *store)
{
    (void)ok;
    (void)store;
    verify_calls++;
    return 1;
}

START_TEST(test_peer_key_verify_callback_replaced)
{
    const char *const pkcs2048[] = {
        "KeyExchangeAlgorithms\\PKCS\\ClientMinKeyBitLength", "2048", NULL };
    const char *const pkcs1024[] = {
        "KeyExchangeAlgorithms\\PKCS\\ClientMinKeyBitLength", "1024", NULL };
    SSL_CTX *srv = hs_rsa_dhe_server(1024);
    SSL_CTX *same = hs_client12("DHE-RSA-AES256-GCM-SHA384:@SECLEVEL=1");
    SSL_CTX *other = hs_client12("DHE-RSA-AES256-GCM-SHA384:@SECLEVEL=1");
    SSL_CTX *weaker = hs_client12("DHE-RSA-AES256-GCM-SHA384:@SECLEVEL=1");

    SSL_CTX_set_dh_auto(srv, 1);
    SSL_CTX_set_verify(same, SSL_VERIFY_PEER, hs_accept_any_cert);
    SSL_CTX_set_verify(other, SSL_VERIFY_PEER, hs_accept_any_cert);
    SSL_CTX_set_verify(weaker, SSL_VERIFY_PEER, hs_accept_any_cert);
    hs_enabled(same, pkcs2048);
    hs_enabled(other, pkcs2048);
    hs_enabled(weaker, pkcs1024);
    /* As curl does after SSL_CTX_new: the callback emsguard chains, set again. */
    SSL_CTX_set_verify(same, SSL_VERIFY_PEER, hs_accept_any_cert);
    ck_assert_int_eq(handshake_ok(srv, same), 0);
    /* Another callback of the application: chained, and the key still refused. */
    SSL_CTX_set_verify(other, SSL_VERIFY_PEER, accept_and_count);
    verify_calls = 0;
    ck_assert_int_eq(handshake_ok(srv, other), 0);
    ck_assert_int_gt(verify_calls, 0);
    /* A 1024-bit minimum: the RSA-1024 server passes, through the application's callback. */
    SSL_CTX_set_verify(weaker, SSL_VERIFY_PEER, accept_and_count);
    verify_calls = 0;
    ck_assert_int_eq(handshake_ok(srv, weaker), 1);
    ck_assert_int_gt(verify_calls, 0);
    /* A callback on one SSL only cannot be chained: that connection is refused. */
    {
        SSL *s = SSL_new(srv), *c = SSL_new(weaker);

        SSL_set_verify(c, SSL_VERIFY_PEER, hs_accept_any_cert);
        ck_assert_int_eq(hs_connect(c, s), 0);
        ERR_clear_error();
        SSL_free(s);
        SSL_free(c);
    }
    SSL_CTX_free(srv);
    SSL_CTX_free(same);
    SSL_CTX_free(other);
    SSL_CTX_free(weaker);
}
END_TEST

START_TEST(test_options_after_enable)
{
    SSL_CTX *srv = hs_enabled(hs_server_ctx(HS_MECH_SESSION_ID, 0),
        (const char *const[]) { "DisableRenegoOnServer", "1",
            "AllowInsecureRenegoClients", "0", NULL });
    SSL_CTX *cli = hs_client_ctx(0);
    SSL *s, *c;

    SSL_CTX_clear_options(srv, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_options(srv, SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION);
    ck_assert_int_eq(connect_pair(srv, cli, &s, &c), 1);
    ck_assert_uint_ne(SSL_get_options(s) & SSL_OP_NO_RENEGOTIATION, 0);
    ck_assert_uint_eq(SSL_get_options(s) & SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION, 0);
    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(srv);
    SSL_CTX_free(cli);
}
END_TEST

/* ---- session cache ----------------------------------------------------------- */

static int reused_second_time(SSL_CTX *srv, SSL_CTX *cli)
{
    hs_result r;
    SSL_SESSION *sess;
    int reused;

    ck_assert_int_eq(hs_handshake(srv, cli, NULL, &r), 1);
    sess = r.session;
    r.session = NULL;
    hs_result_clear(&r);
    ck_assert_ptr_nonnull(sess);
    ck_assert_int_eq(hs_handshake(srv, cli, sess, &r), 1);
    reused = r.reused;
    hs_result_clear(&r);
    SSL_SESSION_free(sess);
    return reused;
}

/* The lifetime hint of the ticket a client gets. */
static unsigned long ticket_hint(SSL_CTX *srv, SSL_CTX *cli)
{
    hs_result r;
    unsigned long hint;

    ck_assert_int_eq(hs_handshake(srv, cli, NULL, &r), 1);
    ck_assert_ptr_nonnull(r.session);
    hint = SSL_SESSION_get_ticket_lifetime_hint(r.session);
    hs_result_clear(&r);
    return hint;
}

START_TEST(test_cache_lifetime_after_enable)
{
    const char *const one_minute[] = { "ServerCacheTime", "60000", NULL };
    SSL_CTX *tickets = hs_enabled(hs_server_ctx(HS_MECH_TICKET, HS_TLS13), one_minute);
    SSL_CTX *ids = hs_enabled(hs_server_ctx(HS_MECH_SESSION_ID, 0), one_minute);
    SSL_CTX *cli12 = hs_client_ctx(0);
    SSL_CTX *cli13 = hs_client_ctx(HS_TLS13);
    SSL *s, *c;

    SSL_CTX_set_timeout(tickets, 86400);
    SSL_CTX_set_timeout(ids, 86400);
    ck_assert_uint_le(ticket_hint(tickets, cli12), 60);
    ck_assert_uint_le(ticket_hint(tickets, cli13), 60);
    ck_assert_int_eq(connect_pair(ids, cli12, &s, &c), 1);
    ck_assert_int_le(SSL_SESSION_get_timeout(SSL_get_session(s)), 60);
    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(tickets);
    SSL_CTX_free(ids);
    SSL_CTX_free(cli12);
    SSL_CTX_free(cli13);
}
END_TEST

START_TEST(test_cache_off_after_enable)
{
    const char *const no_cache[] = { "MaximumCacheSize", "0", NULL };
    const char *const no_resumption[] = { "ServerCacheTime", "0", NULL };
    SSL_CTX *ids = hs_enabled(hs_server_ctx(HS_MECH_SESSION_ID, 0), no_cache);
    SSL_CTX *tickets = hs_enabled(hs_server_ctx(HS_MECH_TICKET, 0), no_cache);
    SSL_CTX *none = hs_enabled(hs_server_ctx(HS_MECH_TICKET, 0), no_resumption);
    SSL_CTX *cli = hs_client_ctx(0);

    /* The application turns the server cache (back) on. */
    SSL_CTX_set_session_cache_mode(ids, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_session_cache_mode(tickets, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_session_cache_mode(none, SSL_SESS_CACHE_SERVER);
    SSL_CTX_clear_options(none, SSL_OP_NO_TICKET);
    ck_assert_int_eq(reused_second_time(ids, cli), 0);
    /* MaximumCacheSize=0 is about the cache: tickets still resume. */
    ck_assert_int_eq(reused_second_time(tickets, cli), 1);
    /* TLS 1.3: stateless tickets still resume; stateful ones are cache entries. */
    {
        SSL_CTX *t13 = hs_enabled(hs_server_ctx(HS_MECH_TICKET, HS_TLS13), no_cache);
        SSL_CTX *stateful = hs_enabled(hs_server_ctx(HS_MECH_TICKET, HS_TLS13), no_cache);
        SSL_CTX *cli13 = hs_client_ctx(HS_TLS13);

        SSL_CTX_set_session_cache_mode(t13, SSL_SESS_CACHE_SERVER);
        SSL_CTX_set_session_cache_mode(stateful, SSL_SESS_CACHE_SERVER);
        SSL_CTX_set_options(stateful, SSL_OP_NO_TICKET);
        ck_assert_int_eq(reused_second_time(t13, cli13), 1);
        ck_assert_int_eq(reused_second_time(stateful, cli13), 0);
        SSL_CTX_free(t13);
        SSL_CTX_free(stateful);
        SSL_CTX_free(cli13);
    }
    /* ServerCacheTime=0: nothing resumes, TLS 1.3 included. */
    ck_assert_int_eq(reused_second_time(none, cli), 0);
    {
        SSL_CTX *none13 = hs_enabled(hs_server_ctx(HS_MECH_TICKET, HS_TLS13), no_resumption);
        SSL_CTX *cli13 = hs_client_ctx(HS_TLS13);

        SSL_CTX_set_session_cache_mode(none13, SSL_SESS_CACHE_SERVER);
        SSL_CTX_clear_options(none13, SSL_OP_NO_TICKET);
        ck_assert_int_eq(reused_second_time(none13, cli13), 0);
        SSL_CTX_free(none13);
        SSL_CTX_free(cli13);
    }
    SSL_CTX_free(ids);
    SSL_CTX_free(tickets);
    SSL_CTX_free(none);
    SSL_CTX_free(cli);
}
END_TEST

START_TEST(test_cache_size_after_enable)
{
    SSL_CTX *big = hs_enabled(hs_server_ctx(HS_MECH_SESSION_ID, 0),
        (const char *const[]) { "MaximumCacheSize", "10", NULL });
    SSL_CTX *small = hs_enabled(hs_server_ctx(HS_MECH_SESSION_ID, 0),
        (const char *const[]) { "MaximumCacheSize", "10", NULL });
    SSL_CTX *cli = hs_client_ctx(0);

    /* Larger than the policy's: cannot be shrunk while serving, so no cache. */
    SSL_CTX_sess_set_cache_size(big, 1000);
    ck_assert_int_eq(reused_second_time(big, cli), 0);
    /* Smaller: the application's, and sessions resume. */
    SSL_CTX_sess_set_cache_size(small, 5);
    ck_assert_int_eq(reused_second_time(small, cli), 1);
    SSL_CTX_free(big);
    SSL_CTX_free(small);
    SSL_CTX_free(cli);
}
END_TEST

/* ---- no Schannel values: nothing changes; the warning ------------------------- */

START_TEST(test_no_schannel_values_unaffected)
{
    SSL_CTX *srv = hs_server_ctx(HS_MECH_SESSION_ID, HS_TLS13);
    SSL_CTX *aes128 = hs_client12("ECDHE-ECDSA-AES128-GCM-SHA256");
    SSL_CTX *cli12 = hs_client_ctx(0);
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    void *security_cb = (void *)SSL_CTX_get_security_callback(srv);

    ck_assert_int_eq(EMSGUARD_enable_policy(srv, p), 1);
    ck_assert_ptr_eq((void *)SSL_CTX_get_security_callback(srv), security_cb);
    ck_assert_int_eq(SSL_CTX_set_cipher_list(srv, "ECDHE-ECDSA-AES128-GCM-SHA256"), 1);
    ck_assert_int_eq(SSL_CTX_set_min_proto_version(srv, TLS1_2_VERSION), 1);
    ck_assert_str_eq(hs_negotiated_suite(srv, aes128), "ECDHE-ECDSA-AES128-GCM-SHA256");
    ck_assert_int_eq(negotiated_version(srv, cli12), TLS1_2_VERSION);
    EMSGUARD_POLICY_free(p);
    SSL_CTX_free(srv);
    SSL_CTX_free(aes128);
    SSL_CTX_free(cli12);
}
END_TEST

static SSL_CTX *warn_srv, *warn_cli13;

static void widen_and_connect_twice(void)
{
    SSL_CTX_set_min_proto_version(warn_srv, TLS1_2_VERSION);
    negotiated_version(warn_srv, warn_cli13);
    negotiated_version(warn_srv, warn_cli13);
}

START_TEST(test_warning_once_per_ctx)
{
    const char *out, *first;

    warn_srv = hs_enabled(hs_server_ctx(HS_MECH_SESSION_ID, HS_TLS13),
        (const char *const[]) { "Protocols\\TLS 1.2\\Server\\Enabled", "0",
            "EventLogging", "3", NULL });
    warn_cli13 = hs_client_ctx(HS_TLS13);
    out = hs_capture_stderr(widen_and_connect_twice);
    ck_assert_ptr_nonnull(out);
    first = strstr(out, "protocol range");
    ck_assert_msg(first != NULL, "no warning in: %s", out);
    ck_assert_ptr_nonnull(strstr(out, "warning"));
    ck_assert_msg(strstr(first + 1, "protocol range") == NULL, "warned twice: %s", out);
    SSL_CTX_free(warn_srv);
    SSL_CTX_free(warn_cli13);
}
END_TEST

static Suite *override_suite(void)
{
    Suite *s = suite_create("schannel_override");
    TCase *tc = tcase_create("after_enable");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_protocols_widened_after_enable);
    tcase_add_test(tc, test_protocols_widened_during_handshake);
    tcase_add_test(tc, test_protocols_app_narrower_kept);
    tcase_add_test(tc, test_client_role_widened_after_enable);
    tcase_add_test(tc, test_ciphers_widened_after_enable);
    tcase_add_test(tc, test_ciphers_app_narrower_kept);
    tcase_add_test(tc, test_ciphers_after_sni_switch);
    tcase_add_test(tc, test_ciphers_security_callback_replaced);
    tcase_add_test(tc, test_groups_widened_after_enable);
    tcase_add_test(tc, test_server_dh_after_enable);
    tcase_add_test(tc, test_peer_key_verify_callback_replaced);
    tcase_add_test(tc, test_options_after_enable);
    tcase_add_test(tc, test_cache_lifetime_after_enable);
    tcase_add_test(tc, test_cache_off_after_enable);
    tcase_add_test(tc, test_cache_size_after_enable);
    tcase_add_test(tc, test_no_schannel_values_unaffected);
    tcase_add_test(tc, test_warning_once_per_ctx);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return hs_run_suite_forked(override_suite);
}
