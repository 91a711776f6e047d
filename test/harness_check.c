/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Check-asserting helpers shared by the Check suites (see harness_check.h).
 */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <check.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "emsguard.h"
#include "harness.h"
#include "harness_check.h"

void hs_enable_with(SSL_CTX *ctx, ...)
{
    EMSGUARD_POLICY *policy = EMSGUARD_POLICY_new();
    const char *name;
    va_list ap;

    ck_assert_ptr_nonnull(policy);
    ck_assert_int_eq(EMSGUARD_POLICY_set(policy, EMSGUARD_EVENT_LOGGING, "0"), 1);
    va_start(ap, ctx);
    while ((name = va_arg(ap, const char *)) != NULL)
        ck_assert_int_eq(EMSGUARD_POLICY_set(policy, name, va_arg(ap, const char *)), 1);
    va_end(ap);
    ck_assert_int_eq(EMSGUARD_enable_policy(ctx, policy), 1);
    EMSGUARD_POLICY_free(policy);
}

SSL_CTX *hs_server(hs_mech mech, int flags)
{
    SSL_CTX *ctx = hs_server_ctx(mech, flags);

    ck_assert_ptr_nonnull(ctx);
    return ctx;
}

SSL_CTX *hs_policy_server(hs_mech mech, int flags)
{
    SSL_CTX *ctx = hs_server(mech, flags);

    hs_enable_with(ctx, NULL);
    return ctx;
}

SSL_CTX *hs_client(int flags)
{
    SSL_CTX *ctx = hs_client_ctx(flags);

    ck_assert_ptr_nonnull(ctx);
    return ctx;
}

SSL_CTX *hs_policy_client(int flags)
{
    SSL_CTX *ctx = hs_client(flags);

    hs_enable_with(ctx, NULL);
    return ctx;
}

uint64_t hs_counter(const SSL_CTX *ctx, EMSGUARD_COUNTER which)
{
    uint64_t v = 0;

    ck_assert_int_eq(EMSGUARD_CTX_get_counter(ctx, which, &v), 1);
    return v;
}

int hs_session_ems(const SSL_SESSION *sess)
{
    int ems = -1;

    ck_assert_int_eq(EMSGUARD_SESSION_has_ems(sess, &ems), 1);
    return ems;
}

SSL_SESSION *hs_new_session(SSL_CTX *sctx, SSL_CTX *cctx)
{
    hs_result r;
    SSL_SESSION *sess;

    ck_assert_msg(hs_handshake(sctx, cctx, NULL, &r), "first handshake failed");
    ck_assert_int_eq(r.reused, 0);
    ck_assert_ptr_nonnull(r.session);
    sess = r.session;
    r.session = NULL;
    return sess;
}

void hs_assert_resumed(const hs_result *r)
{
    ck_assert_msg(r->ok, "handshake failed (server alert %d, client alert %d)",
        r->server_alert, r->client_alert);
    ck_assert_msg(r->reused && r->server_reused, "expected a resumption, got a full handshake");
}

void hs_assert_full(const hs_result *r)
{
    ck_assert_msg(r->ok, "handshake failed (server alert %d, client alert %d)",
        r->server_alert, r->client_alert);
    ck_assert_msg(!r->reused && !r->server_reused, "expected a full handshake, got a resumption");
    ck_assert_int_eq(r->server_alert, -1);
    ck_assert_int_eq(r->client_alert, -1);
}

const char *hs_last_error(void)
{
    static char buf[1024];
    const char *data = NULL;
    int flags = 0;
    unsigned long e = ERR_peek_last_error_data(&data, &flags);

    buf[0] = '\0';
    if (e != 0 && data != NULL && (flags & ERR_TXT_STRING))
        snprintf(buf, sizeof(buf), "%s", data);
    ERR_clear_error();
    return buf;
}

EMSGUARD_POLICY *hs_load_reg(const char *file)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();

    ck_assert_ptr_nonnull(p);
    if (EMSGUARD_POLICY_load_reg(p, file) != 1)
        ck_abort_msg("loading %s failed: %s", file, hs_last_error());
    return p;
}

SSL_CTX *hs_enabled(SSL_CTX *ctx, const char *const *kv)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();

    ck_assert(ctx != NULL && p != NULL);
    for (; kv[0] != NULL; kv += 2)
        if (EMSGUARD_POLICY_set(p, kv[0], kv[1]) != 1)
            ck_abort_msg("set %s=%s: %s", kv[0], kv[1], hs_last_error());
    if (EMSGUARD_enable_policy(ctx, p) != 1)
        ck_abort_msg("enable: %s", hs_last_error());
    EMSGUARD_POLICY_free(p);
    return ctx;
}

SSL_CTX *hs_client12(const char *ciphers)
{
    SSL_CTX *ctx = hs_client_ctx(0);

    ck_assert_int_eq(SSL_CTX_set_cipher_list(ctx, ciphers), 1);
    return ctx;
}

const char *hs_negotiated_suite(SSL_CTX *srv, SSL_CTX *cli)
{
    static char name[128];
    SSL *s = SSL_new(srv), *c = SSL_new(cli);

    ck_assert(s != NULL && c != NULL);
    name[0] = '\0';
    if (hs_connect(c, s))
        snprintf(name, sizeof(name), "%s", SSL_CIPHER_get_name(SSL_get_current_cipher(c)));
    ERR_clear_error();
    SSL_free(s);
    SSL_free(c);
    return name;
}

SSL_CTX *hs_rsa_dhe_server(int rsa_bits)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    EVP_PKEY *key = EVP_RSA_gen((unsigned)rsa_bits);
    X509 *cert = X509_new();
    X509_NAME *name;

    ck_assert(ctx != NULL && key != NULL && cert != NULL);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"dhe", -1, -1, 0);
    X509_set_issuer_name(cert, name);
    ck_assert_int_gt(X509_sign(cert, key, EVP_sha256()), 0);
    ck_assert_int_eq(SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION), 1);
    ck_assert_int_eq(SSL_CTX_set_cipher_list(ctx, "DHE-RSA-AES256-GCM-SHA384:@SECLEVEL=1"), 1);
    ck_assert_int_eq(SSL_CTX_use_certificate(ctx, cert), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, key), 1);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ctx;
}

int hs_accept_any_cert(int ok, X509_STORE_CTX *store)
{
    (void)ok;
    (void)store;
    return 1;
}

static int run_suite(Suite *(*make_suite)(void), int nofork)
{
    SRunner *sr = srunner_create(make_suite());
    int failed;

    if (nofork)
        srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    hs_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

int hs_run_suite(Suite *(*make_suite)(void))
{
    return run_suite(make_suite, 1);
}

int hs_run_suite_forked(Suite *(*make_suite)(void))
{
    return run_suite(make_suite, 0);
}

int hs_run_nofork(const char *prog, Suite *(*make_suite)(void), char *module_path,
    size_t module_path_size, char *tmpdir, size_t tmpdir_size)
{
    const char *build = getenv("BUILD");
    const char *tmp = getenv("TMPDIR");
    char absbuild[PATH_MAX];

    if (build == NULL || realpath(build, absbuild) == NULL) {
        fprintf(stderr, "%s: set BUILD to the build directory\n", prog);
        return 2;
    }
    snprintf(module_path, module_path_size, "%s/emsguard.so", absbuild);
    snprintf(tmpdir, tmpdir_size, "%s", tmp != NULL ? tmp : "/tmp");
    return hs_run_suite(make_suite);
}
