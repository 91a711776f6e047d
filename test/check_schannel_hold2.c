/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Issue 15, Schannel values held on every connection, round 2:
 *  S1 a TLS 1.2 session another fleet member made (shared ticket keys, a
 *     shared external cache) or one from before a policy change resumes
 *     only if its suite, its protocol version and its age fit the policy;
 *  S3 after an SNI switch the target ctx's Schannel values apply;
 *  S4 on a both-roles ctx the policy never undoes an application's
 *     SSL_OP_NO_RENEGOTIATION (a value that only loosens);
 *  S5 ServerMinKeyBitLength never lowers the server's DH group below what
 *     the application (or libssl's automatic choice) would use.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "emsguard.h"
#include "harness.h"
#include "harness_check.h"

static const char *const no_values[] = { NULL };
static const char *const aes128_off[] = { "Ciphers\\AES 128/128\\Enabled", "0", NULL };
static const char *const aes128_off_short_cache[] = {
    "Ciphers\\AES 128/128\\Enabled", "0", "ServerCacheTime", "1000", NULL
};

/* A session |srv| gives |cli| (the caller frees it). */
static SSL_SESSION *session_from(SSL_CTX *srv, SSL_CTX *cli)
{
    hs_result r;
    SSL_SESSION *sess;

    ck_assert_int_eq(hs_handshake(srv, cli, NULL, &r), 1);
    sess = r.session;
    r.session = NULL;
    hs_result_clear(&r);
    ck_assert_ptr_nonnull(sess);
    return sess;
}

/* 1 if |srv| resumes |sess| (the handshake itself must complete). */
static int resumes(SSL_CTX *srv, SSL_CTX *cli, const SSL_SESSION *sess)
{
    hs_result r;
    int reused;

    ck_assert_int_eq(hs_handshake(srv, cli, sess, &r), 1);
    reused = r.reused || r.server_reused;
    hs_result_clear(&r);
    ERR_clear_error();
    return reused;
}

/* ---- S1: sessions from a fleet member or from before a policy change -------- */

START_TEST(test_fleet_ticket_outside_policy)
{
    /* A: a fleet member without the Schannel values; B: with them.  Same ticket keys. */
    SSL_CTX *a = hs_server_ctx(HS_MECH_TICKET, 0);
    SSL_CTX *b = hs_enabled(hs_server_ctx(HS_MECH_TICKET, 0), aes128_off_short_cache);
    SSL_CTX *cli = hs_client12("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384");
    SSL_CTX *cli256 = hs_client12("ECDHE-ECDSA-AES256-GCM-SHA384");
    SSL_SESSION *aes128, *fresh, *old;

    /* B widens its list after enable (nginx: ssl_ciphers). */
    ck_assert_int_eq(SSL_CTX_set_cipher_list(b, "ALL"), 1);
    aes128 = session_from(a, cli);
    ck_assert_str_eq(SSL_CIPHER_get_name(SSL_SESSION_get0_cipher(aes128)),
        "ECDHE-ECDSA-AES128-GCM-SHA256");
    ck_assert_int_eq(resumes(b, cli, aes128), 0);
    /* Control: a fresh AES-256 ticket of A resumes on B. */
    fresh = session_from(a, cli256);
    ck_assert_int_eq(resumes(b, cli256, fresh), 1);
    /* Older than ServerCacheTime (1 s), whatever the ticket's own lifetime. */
    old = session_from(a, cli256);
    sleep(3);
    ck_assert_int_eq(resumes(b, cli256, old), 0);
    SSL_SESSION_free(aes128);
    SSL_SESSION_free(fresh);
    SSL_SESSION_free(old);
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(cli);
    SSL_CTX_free(cli256);
}
END_TEST

/* TLS 1.3: a fleet member's ticket older than ServerCacheTime is not resumed either. */
START_TEST(test_fleet_tls13_ticket_too_old)
{
    const char *const short_cache[] = { "ServerCacheTime", "1000", NULL };
    SSL_CTX *a = hs_server_ctx(HS_MECH_TICKET, HS_TLS13);
    SSL_CTX *b = hs_enabled(hs_server_ctx(HS_MECH_TICKET, HS_TLS13), short_cache);
    SSL_CTX *cli = hs_client_ctx(HS_TLS13);
    SSL_SESSION *fresh, *old;

    fresh = session_from(a, cli);
    ck_assert_int_eq(SSL_SESSION_get_protocol_version(fresh), TLS1_3_VERSION);
    ck_assert_int_eq(resumes(b, cli, fresh), 1);
    old = session_from(a, cli);
    sleep(3);
    ck_assert_int_eq(resumes(b, cli, old), 0);
    SSL_SESSION_free(fresh);
    SSL_SESSION_free(old);
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(cli);
}
END_TEST

START_TEST(test_fleet_external_cache_outside_policy)
{
    SSL_CTX *a, *b, *cli, *cli256;
    SSL_SESSION *aes128, *fresh;

    hs_ext_cache_reset();
    a = hs_server_ctx(HS_MECH_EXT_CACHE, 0);
    b = hs_enabled(hs_server_ctx(HS_MECH_EXT_CACHE, 0), aes128_off);
    cli = hs_client12("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384");
    cli256 = hs_client12("ECDHE-ECDSA-AES256-GCM-SHA384");
    ck_assert_int_eq(SSL_CTX_set_cipher_list(b, "ALL"), 1);
    aes128 = session_from(a, cli);
    ck_assert_int_eq(resumes(b, cli, aes128), 0);
    fresh = session_from(a, cli256);
    ck_assert_int_eq(resumes(b, cli256, fresh), 1);
    SSL_SESSION_free(aes128);
    SSL_SESSION_free(fresh);
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(cli);
    SSL_CTX_free(cli256);
    hs_ext_cache_reset();
}
END_TEST

START_TEST(test_fleet_ticket_protocol_outside_policy)
{
    SSL_CTX *a = hs_server_ctx(HS_MECH_TICKET, 0);
    SSL_CTX *b = hs_enabled(hs_server_ctx(HS_MECH_TICKET, 0),
        (const char *const[]) { "Protocols\\TLS 1.1\\Server\\Enabled", "0", NULL });
    SSL_CTX *cli = hs_client_ctx(0);
    SSL_SESSION *tls11;

    /* A TLS 1.1 session (A allows it); B turns TLS 1.1 off, then the app widens. */
    ck_assert_int_eq(SSL_CTX_set_min_proto_version(a, TLS1_1_VERSION), 1);
    ck_assert_int_eq(SSL_CTX_set_max_proto_version(a, TLS1_1_VERSION), 1);
    ck_assert_int_eq(SSL_CTX_set_min_proto_version(cli, TLS1_1_VERSION), 1);
    ck_assert_int_eq(SSL_CTX_set_cipher_list(a, "DEFAULT:@SECLEVEL=0"), 1);
    ck_assert_int_eq(SSL_CTX_set_cipher_list(cli, "DEFAULT:@SECLEVEL=0"), 1);
    tls11 = session_from(a, cli);
    ck_assert_int_eq(SSL_SESSION_get_protocol_version(tls11), TLS1_1_VERSION);
    ck_assert_int_eq(SSL_CTX_set_cipher_list(b, "DEFAULT:@SECLEVEL=0"), 1);
    ck_assert_int_eq(SSL_CTX_set_min_proto_version(b, TLS1_1_VERSION), 1);
    ck_assert_int_eq(resumes(b, cli, tls11), 0);
    SSL_SESSION_free(tls11);
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(cli);
}
END_TEST

/* ---- S3: SNI switch into a ctx with Schannel values ---------------------------- */

static SSL_CTX *vhost;

static int switch_to_vhost(SSL *ssl, int *al, void *arg)
{
    (void)al;
    (void)arg;
    return SSL_set_SSL_CTX(ssl, vhost) == vhost ? SSL_TLSEXT_ERR_OK
                                                  : SSL_TLSEXT_ERR_ALERT_FATAL;
}

START_TEST(test_sni_switch_into_schannel_ctx)
{
    SSL_CTX *first = hs_enabled(hs_server_ctx(HS_MECH_SESSION_ID, 0), no_values);
    SSL_CTX *aes128 = hs_client12("ECDHE-ECDSA-AES128-GCM-SHA256");
    SSL_CTX *aes256 = hs_client12("ECDHE-ECDSA-AES256-GCM-SHA384");

    vhost = hs_enabled(hs_server_ctx(HS_MECH_SESSION_ID, 0), aes128_off);
    ck_assert_int_eq(SSL_CTX_set_cipher_list(vhost, "ALL"), 1);
    /* Direct to the vhost: refused; through the switch it must be too. */
    ck_assert_str_eq(hs_negotiated_suite(vhost, aes128), "");
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

/* ---- S4: both-roles ctx, options the policy only loosens ---------------------- */

static SSL_CTX *both_roles_ctx(void)
{
    SSL_CTX *srv = hs_server_ctx(HS_MECH_SESSION_ID, 0);
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());

    ck_assert(srv != NULL && ctx != NULL);
    ck_assert_int_eq(SSL_CTX_use_certificate(ctx, SSL_CTX_get0_certificate(srv)), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, SSL_CTX_get0_privatekey(srv)), 1);
    ck_assert_int_eq(SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION), 1);
    SSL_CTX_free(srv);
    return ctx;
}

/* The server SSL's SSL_OP_NO_RENEGOTIATION after a handshake on |srv|. */
static int server_keeps_no_reneg(SSL_CTX *srv, SSL_CTX *cli)
{
    SSL *s = SSL_new(srv), *c = SSL_new(cli);
    int kept;

    ck_assert(s != NULL && c != NULL);
    ck_assert_int_eq(hs_connect(c, s), 1);
    kept = (SSL_get_options(s) & SSL_OP_NO_RENEGOTIATION) != 0;
    SSL_free(s);
    SSL_free(c);
    return kept;
}

START_TEST(test_both_roles_keeps_app_no_renegotiation)
{
    const char *const reneg_on[] = { "DisableRenegoOnServer", "0", NULL };
    SSL_CTX *app_after = hs_enabled(both_roles_ctx(), reneg_on);
    SSL_CTX *app_before = both_roles_ctx();
    SSL_CTX *cli = hs_client_ctx(0);

    /* The application's own hardening after enable (nginx): kept. */
    SSL_CTX_set_options(app_after, SSL_OP_NO_RENEGOTIATION);
    ck_assert_int_eq(server_keeps_no_reneg(app_after, cli), 1);
    /* Before enable the policy's value applies, as on a one-role ctx. */
    SSL_CTX_set_options(app_before, SSL_OP_NO_RENEGOTIATION);
    hs_enabled(app_before, reneg_on);
    ck_assert_int_eq(server_keeps_no_reneg(app_before, cli), 0);
    SSL_CTX_free(app_after);
    SSL_CTX_free(app_before);
    SSL_CTX_free(cli);
}
END_TEST

/* ---- S5: the server's DH group is never lowered --------------------------------- */

static EVP_PKEY *ffdhe(const char *group)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM params[2];

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
    params[1] = OSSL_PARAM_construct_end();
    ck_assert(pctx != NULL && EVP_PKEY_paramgen_init(pctx) > 0
        && EVP_PKEY_CTX_set_params(pctx, params) > 0 && EVP_PKEY_paramgen(pctx, &pkey) > 0);
    EVP_PKEY_CTX_free(pctx);
    return pkey;
}

/* The DH group size the client got from |srv|. */
static int server_dh_bits(SSL_CTX *srv)
{
    SSL_CTX *cli = hs_client12("DHE-RSA-AES256-GCM-SHA384:@SECLEVEL=1");
    SSL *s = SSL_new(srv), *c = SSL_new(cli);
    EVP_PKEY *dh = NULL;
    int bits;

    ck_assert(s != NULL && c != NULL);
    SSL_CTX_set_verify(cli, SSL_VERIFY_PEER, hs_accept_any_cert);
    SSL_set_verify(c, SSL_VERIFY_PEER, hs_accept_any_cert);
    ck_assert_int_eq(hs_connect(c, s), 1);
    ck_assert_int_eq(SSL_get_peer_tmp_key(c, &dh), 1);
    bits = EVP_PKEY_get_bits(dh);
    EVP_PKEY_free(dh);
    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(cli);
    return bits;
}

START_TEST(test_server_dh_not_lowered)
{
    const char *const min2048[] = {
        "KeyExchangeAlgorithms\\Diffie-Hellman\\ServerMinKeyBitLength", "2048", NULL
    };
    SSL_CTX *auto3072 = hs_enabled(hs_rsa_dhe_server(3072), min2048);
    SSL_CTX *explicit4096 = hs_enabled(hs_rsa_dhe_server(1024), min2048);
    SSL_CTX *weak = hs_enabled(hs_rsa_dhe_server(1024), min2048);

    /* dh_auto for a 128-bit certificate: libssl picks a 3072-bit group. */
    SSL_CTX_set_dh_auto(auto3072, 1);
    ck_assert_int_ge(server_dh_bits(auto3072), 3072);
    /* The application's own ffdhe4096, set after enable. */
    ck_assert_int_eq(SSL_CTX_set0_tmp_dh_pkey(explicit4096, ffdhe("ffdhe4096")), 1);
    ck_assert_int_ge(server_dh_bits(explicit4096), 4096);
    /* Control: dh_auto for a 1024-bit certificate is raised to the policy's. */
    SSL_CTX_set_dh_auto(weak, 1);
    ck_assert_int_ge(server_dh_bits(weak), 2048);
    SSL_CTX_free(auto3072);
    SSL_CTX_free(explicit4096);
    SSL_CTX_free(weak);
}
END_TEST

static Suite *hold2_suite(void)
{
    Suite *s = suite_create("schannel_hold2");
    TCase *tc = tcase_create("hold2");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_fleet_ticket_outside_policy);
    tcase_add_test(tc, test_fleet_tls13_ticket_too_old);
    tcase_add_test(tc, test_fleet_external_cache_outside_policy);
    tcase_add_test(tc, test_fleet_ticket_protocol_outside_policy);
    tcase_add_test(tc, test_sni_switch_into_schannel_ctx);
    tcase_add_test(tc, test_both_roles_keeps_app_no_renegotiation);
    tcase_add_test(tc, test_server_dh_not_lowered);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return hs_run_suite_forked(hold2_suite);
}
