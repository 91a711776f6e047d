/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of RequireExtendedMasterSecret: the provider's TLS1-PRF guard (audit
 * and enforcement, selected by configuration alone) and the SSL_CTX policy's
 * ClientHello check.  Each configuration lives in its own library context,
 * loaded from a generated openssl.cnf, and the handshakes run in memory.
 *
 *   BUILD=build build/test/check_guard
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <check.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "harness.h"

static char module_path[PATH_MAX + 32];
static char tmpdir[PATH_MAX];

/*
 * A library context configured like an administrator's openssl.cnf: default
 * provider, emsguard with |require|, and (if |select|) the guard selected by
 * default_properties.
 */
static OSSL_LIB_CTX *configured_libctx(int require, int select, int with_default)
{
    char path[PATH_MAX + 64];
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
    FILE *f;

    ck_assert_ptr_nonnull(libctx);
    snprintf(path, sizeof(path), "%s/guard-%d%d%d.cnf", tmpdir, require, select, with_default);
    ck_assert_ptr_nonnull(f = fopen(path, "w"));
    fprintf(f,
        "openssl_conf = init\n[init]\nproviders = provs\n%s"
        "[provs]\n%semsguard = eg\n"
        "[def]\nactivate = 1\n"
        "[eg]\nmodule = %s\nactivate = 1\nEventLogging = 0\n"
        "RequireExtendedMasterSecret = %d\n"
        "[algs]\ndefault_properties = ?emsguard.guard=yes\n",
        select ? "alg_section = algs\n" : "", with_default ? "default = def\n" : "",
        module_path, require);
    fclose(f);
    ck_assert_msg(OSSL_LIB_CTX_load_config(libctx, path) == 1, "cannot load %s", path);
    unlink(path);
    return libctx;
}

static uint64_t audit(EMSGUARD_AUDIT_COUNTER which)
{
    uint64_t v = 0;

    ck_assert_int_eq(EMSGUARD_audit_get(which, &v), 1);
    return v;
}

static void snapshot(uint64_t out[EMSGUARD_AUDIT_MAX])
{
    int i;

    for (i = 0; i < EMSGUARD_AUDIT_MAX; i++)
        out[i] = audit((EMSGUARD_AUDIT_COUNTER)i);
}

/* Checks the audit counters moved by exactly |delta| since |before|. */
static void assert_audit_delta(const uint64_t before[EMSGUARD_AUDIT_MAX],
    uint64_t ems, uint64_t non_ems, uint64_t resumed, uint64_t refused)
{
    const uint64_t want[EMSGUARD_AUDIT_MAX] = { ems, non_ems, resumed, refused };
    int i;

    for (i = 0; i < EMSGUARD_AUDIT_MAX; i++)
        ck_assert_msg(audit((EMSGUARD_AUDIT_COUNTER)i) - before[i] == want[i],
            "audit counter %d moved by %llu, expected %llu", i,
            (unsigned long long)(audit((EMSGUARD_AUDIT_COUNTER)i) - before[i]),
            (unsigned long long)want[i]);
}

/* Drains the error queue; 1 if it held emsguard's |reason|. */
static int error_queue_has(int reason)
{
    unsigned long e;
    int found = 0;

    while ((e = ERR_get_error()) != 0)
        if (ERR_GET_LIB(e) == EMSGUARD_get_error_lib() && ERR_GET_REASON(e) == reason)
            found = 1;
    return found;
}

static SSL_CTX *server(hs_mech mech, int flags)
{
    SSL_CTX *ctx = hs_server_ctx(mech, flags);

    ck_assert_ptr_nonnull(ctx);
    return ctx;
}

static SSL_CTX *client(int flags)
{
    SSL_CTX *ctx = hs_client_ctx(flags);

    ck_assert_ptr_nonnull(ctx);
    return ctx;
}

static void teardown(void)
{
    hs_set_libctx(NULL);
    ERR_clear_error();
}

/* ---- the guard ------------------------------------------------------------ */

/* The guard's and the default provider's TLS1-PRF derive the same bytes. */
static void assert_same_bytes(EVP_KDF *guard, EVP_KDF *plain, const OSSL_PARAM params[])
{
    unsigned char a[48], b[48];
    EVP_KDF_CTX *ka, *kb;

    ck_assert_ptr_nonnull(ka = EVP_KDF_CTX_new(guard));
    ck_assert_ptr_nonnull(kb = EVP_KDF_CTX_new(plain));
    ck_assert_int_eq(EVP_KDF_derive(ka, a, sizeof(a), params), 1);
    ck_assert_int_eq(EVP_KDF_derive(kb, b, sizeof(b), params), 1);
    ck_assert_mem_eq(a, b, sizeof(a));
    EVP_KDF_CTX_free(ka);
    EVP_KDF_CTX_free(kb);
}

/* Same bytes as the default provider's TLS1-PRF: it really delegates. */
START_TEST(test_guard_delegates)
{
    OSSL_LIB_CTX *libctx = configured_libctx(0, 1, 1);
    EVP_KDF *guard = EVP_KDF_fetch(libctx, "TLS1-PRF", "emsguard.guard=yes");
    EVP_KDF *plain = EVP_KDF_fetch(libctx, "TLS1-PRF", "provider=default");
    OSSL_PARAM params[4];

    ck_assert_ptr_nonnull(guard);
    ck_assert_ptr_nonnull(plain);
    ck_assert_str_eq(OSSL_PROVIDER_get0_name(EVP_KDF_get0_provider(guard)), "emsguard");
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, "secret", 6);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, "client finished", 15);
    params[3] = OSSL_PARAM_construct_end();
    assert_same_bytes(guard, plain, params);
    EVP_KDF_free(guard);
    EVP_KDF_free(plain);
    OSSL_LIB_CTX_free(libctx);
}
END_TEST

/*
 * The guard reuses the contexts libssl frees (a pool).  A reused context must
 * start empty: no secret, seed or label from the derivation before.
 */
START_TEST(test_guard_reused_context_starts_clean)
{
    OSSL_LIB_CTX *libctx = configured_libctx(1, 1, 1); /* RequireExtendedMasterSecret=1 */
    EVP_KDF *guard = EVP_KDF_fetch(libctx, "TLS1-PRF", "emsguard.guard=yes");
    EVP_KDF *plain = EVP_KDF_fetch(libctx, "TLS1-PRF", "provider=default");
    static const char *const secrets[] = { "first secret", "second", "third secret!" };
    unsigned char a[12];
    OSSL_PARAM params[4];
    EVP_KDF_CTX *ka;
    size_t i;

    ck_assert_ptr_nonnull(guard);
    ck_assert_ptr_nonnull(plain);
    for (i = 0; i < 3; i++) {
        /* A refused master secret leaves its label behind in a dirty context. */
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET,
            (void *)secrets[i], strlen(secrets[i]));
        params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED,
            TLS_MD_MASTER_SECRET_CONST, TLS_MD_MASTER_SECRET_CONST_SIZE);
        params[3] = OSSL_PARAM_construct_end();
        ck_assert_ptr_nonnull(ka = EVP_KDF_CTX_new(guard));
        ck_assert_int_eq(EVP_KDF_derive(ka, a, sizeof(a), params), 0);
        ERR_clear_error();
        EVP_KDF_CTX_free(ka);

        /* No secret given: a context that kept the last one would derive. */
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED,
            TLS_MD_CLIENT_FINISH_CONST, TLS_MD_CLIENT_FINISH_CONST_SIZE);
        params[2] = OSSL_PARAM_construct_end();
        ck_assert_ptr_nonnull(ka = EVP_KDF_CTX_new(guard));
        ck_assert_int_eq(EVP_KDF_derive(ka, a, sizeof(a), params), 0);
        ERR_clear_error();
        EVP_KDF_CTX_free(ka);

        /* A Finished derivation: allowed, and the default provider's bytes. */
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET,
            (void *)secrets[i], strlen(secrets[i]));
        params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED,
            TLS_MD_CLIENT_FINISH_CONST, TLS_MD_CLIENT_FINISH_CONST_SIZE);
        params[3] = OSSL_PARAM_construct_end();
        assert_same_bytes(guard, plain, params);
    }
    EVP_KDF_free(guard);
    EVP_KDF_free(plain);
    OSSL_LIB_CTX_free(libctx);
}
END_TEST

/* Without another TLS1-PRF the guard fails cleanly; it never calls itself. */
START_TEST(test_guard_without_default_provider)
{
    OSSL_LIB_CTX *libctx = configured_libctx(0, 1, 0);
    EVP_KDF *guard = EVP_KDF_fetch(libctx, "TLS1-PRF", NULL);
    EVP_KDF_CTX *kctx;

    ck_assert_ptr_nonnull(guard);
    ERR_clear_error();
    kctx = EVP_KDF_CTX_new(guard);
    ck_assert_ptr_null(kctx);
    ck_assert_msg(error_queue_has(EMSGUARD_R_GUARD), "no EMSGUARD_R_GUARD error");
    EVP_KDF_free(guard);
    OSSL_LIB_CTX_free(libctx);
}
END_TEST

/*
 * Audit mode: every handshake completes; the counters say which lacked EMS.
 * Client and server share this process, so each full handshake derives two
 * master secrets and each resumption expands two key blocks.
 */
START_TEST(test_guard_audit)
{
    hs_mech mech = (hs_mech)_i;
    OSSL_LIB_CTX *libctx = configured_libctx(0, 1, 1);
    SSL_CTX *sctx, *ems_client, *legacy;
    uint64_t before[EMSGUARD_AUDIT_MAX];
    hs_result r, again;

    hs_set_libctx(libctx);
    sctx = server(mech, 0);
    ems_client = client(0);
    legacy = client(HS_NO_EMS);
    snapshot(before);
    ck_assert(hs_handshake(sctx, legacy, NULL, &r));
    ck_assert(hs_handshake(sctx, legacy, r.session, &again));
    ck_assert_int_eq(again.reused, 1); /* audit only: stock behaviour */
    hs_result_clear(&again);
    hs_result_clear(&r);
    ck_assert(hs_handshake(sctx, ems_client, NULL, &r));
    ck_assert(hs_handshake(sctx, ems_client, r.session, &again));
    ck_assert_int_eq(again.reused, 1);
    hs_result_clear(&again);
    hs_result_clear(&r);
    assert_audit_delta(before, 2, 2, 4, 0);
    SSL_CTX_free(legacy);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(sctx);
    hs_set_libctx(NULL);
    OSSL_LIB_CTX_free(libctx);
}
END_TEST

/* Enforcement by configuration alone: no EMS, no handshake. */
START_TEST(test_guard_enforce)
{
    OSSL_LIB_CTX *libctx = configured_libctx(1, 1, 1);
    SSL_CTX *sctx, *ems_client, *legacy;
    uint64_t before[EMSGUARD_AUDIT_MAX];
    hs_result r;

    hs_set_libctx(libctx);
    sctx = server(HS_MECH_SESSION_ID, 0);
    ems_client = client(0);
    legacy = client(HS_NO_EMS);
    snapshot(before);
    ck_assert(!hs_handshake(sctx, legacy, NULL, &r));
    /*
     * Both ends run in this process with the guard: the client's
     * ClientKeyExchange is already on the wire when its own derivation is
     * refused, so the server refuses its derivation too.
     */
    ck_assert_int_eq(r.client_alert, SSL_AD_INTERNAL_ERROR);
    ck_assert_int_eq(r.server_alert, SSL_AD_INTERNAL_ERROR);
    hs_result_clear(&r);
    ck_assert(hs_handshake(sctx, ems_client, NULL, &r));
    ck_assert_int_eq(r.ems, 1);
    hs_result_clear(&r);
    assert_audit_delta(before, 2, 0, 0, 2);
    SSL_CTX_free(legacy);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(sctx);
    hs_set_libctx(NULL);
    OSSL_LIB_CTX_free(libctx);
}
END_TEST

/* ---- the SSL_CTX policy with RequireExtendedMasterSecret=1 ---------------- */

static void enable_require(SSL_CTX *ctx)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();

    ck_assert_int_eq(EMSGUARD_POLICY_set(p, EMSGUARD_REQUIRE_EMS, "1"), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, EMSGUARD_EVENT_LOGGING, "0"), 1);
    ck_assert_int_eq(EMSGUARD_enable_policy(ctx, p), 1);
    EMSGUARD_POLICY_free(p);
}

/* The cleaner refusal: handshake_failure before any key exchange. */
START_TEST(test_ctx_require_rejects_hello)
{
    SSL_CTX *sctx = server(HS_MECH_TICKET, HS_TLS13);
    SSL_CTX *legacy12 = client(HS_NO_EMS), *legacy13 = client(HS_NO_EMS | HS_TLS13);
    SSL_CTX *ems_client = client(0);
    uint64_t rejected = 0;
    hs_result r;

    enable_require(sctx);
    ck_assert(!hs_handshake(sctx, legacy12, NULL, &r));
    ck_assert_int_eq(r.server_alert, SSL_AD_HANDSHAKE_FAILURE);
    hs_result_clear(&r);
    ck_assert(hs_handshake(sctx, ems_client, NULL, &r)); /* TLS 1.2 with EMS */
    ck_assert_int_eq(r.version, TLS1_2_VERSION);
    hs_result_clear(&r);
    ck_assert(hs_handshake(sctx, legacy13, NULL, &r)); /* TLS 1.3: not affected */
    ck_assert_int_eq(r.version, TLS1_3_VERSION);
    hs_result_clear(&r);
    ck_assert_int_eq(EMSGUARD_CTX_get_counter(sctx, EMSGUARD_CNT_REJECTED_NO_EMS, &rejected), 1);
    ck_assert_uint_eq(rejected, 1);
    SSL_CTX_free(ems_client);
    SSL_CTX_free(legacy13);
    SSL_CTX_free(legacy12);
    SSL_CTX_free(sctx);
}
END_TEST

static int hello_calls;

static int app_hello_cb(SSL *ssl, int *al, void *arg)
{
    (void)ssl;
    (void)al;
    ck_assert_ptr_eq(arg, &hello_calls);
    hello_calls++;
    return SSL_CLIENT_HELLO_SUCCESS;
}

START_TEST(test_ctx_require_chains_hello_cb)
{
    SSL_CTX *sctx = server(HS_MECH_TICKET, 0), *legacy = client(HS_NO_EMS);
    hs_result r;

    hello_calls = 0;
    enable_require(sctx);
    ck_assert_int_eq(EMSGUARD_CTX_set_client_hello_cb(sctx, app_hello_cb, &hello_calls), 1);
    ck_assert(!hs_handshake(sctx, legacy, NULL, &r));
    ck_assert_int_eq(r.server_alert, SSL_AD_HANDSHAKE_FAILURE);
    ck_assert_int_eq(hello_calls, 1);
    hs_result_clear(&r);
    SSL_CTX_free(legacy);
    SSL_CTX_free(sctx);
}
END_TEST

/* Guard and policy together: the policy's handshake_failure comes first. */
START_TEST(test_ctx_require_before_guard)
{
    OSSL_LIB_CTX *libctx = configured_libctx(1, 1, 1);
    SSL_CTX *sctx, *legacy;
    uint64_t before[EMSGUARD_AUDIT_MAX];
    hs_result r;

    hs_set_libctx(libctx);
    sctx = server(HS_MECH_TICKET, 0);
    legacy = client(HS_NO_EMS);
    ck_assert_int_eq(EMSGUARD_enable_ex(sctx, libctx), 1);
    snapshot(before);
    ck_assert(!hs_handshake(sctx, legacy, NULL, &r));
    ck_assert_int_eq(r.server_alert, SSL_AD_HANDSHAKE_FAILURE);
    hs_result_clear(&r);
    assert_audit_delta(before, 0, 0, 0, 0);
    SSL_CTX_free(legacy);
    SSL_CTX_free(sctx);
    hs_set_libctx(NULL);
    OSSL_LIB_CTX_free(libctx);
}
END_TEST

START_TEST(test_audit_arguments)
{
    uint64_t v;

    ck_assert_int_eq(EMSGUARD_audit_get(EMSGUARD_AUDIT_MAX, &v), 0);
    ck_assert_int_eq(EMSGUARD_audit_get(EMSGUARD_AUDIT_REFUSED, NULL), 0);
    ERR_clear_error();
}
END_TEST

static int audit_log_ret;

static void log_audit(void)
{
    audit_log_ret = EMSGUARD_audit_log();
}

/* On demand, the summary line carries the same numbers as the API. */
START_TEST(test_audit_log_line)
{
    uint64_t c[EMSGUARD_AUDIT_MAX];
    char want[256];
    const char *out;

    snapshot(c);
    out = hs_capture_stderr(log_audit);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(audit_log_ret, 1);
    snprintf(want, sizeof(want),
        "emsguard: info: TLS1-PRF audit (on demand): ems_derivations=%llu "
        "non_ems_derivations=%llu resumptions=%llu refused=%llu; %llu of %llu full "
        "TLS<=1.2 handshakes lacked Extended Master Secret\n",
        (unsigned long long)c[EMSGUARD_AUDIT_EMS_DERIVATIONS],
        (unsigned long long)c[EMSGUARD_AUDIT_NON_EMS_DERIVATIONS],
        (unsigned long long)c[EMSGUARD_AUDIT_RESUMPTIONS],
        (unsigned long long)c[EMSGUARD_AUDIT_REFUSED],
        (unsigned long long)c[EMSGUARD_AUDIT_NON_EMS_DERIVATIONS],
        (unsigned long long)(c[EMSGUARD_AUDIT_EMS_DERIVATIONS]
            + c[EMSGUARD_AUDIT_NON_EMS_DERIVATIONS]));
    ck_assert_str_eq(out, want);
}
END_TEST

static Suite *guard_suite(void)
{
    Suite *s = suite_create("emsguard-guard");
    TCase *tc = tcase_create("tls1-prf-guard");

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_guard_delegates);
    tcase_add_test(tc, test_guard_reused_context_starts_clean);
    tcase_add_test(tc, test_guard_without_default_provider);
    tcase_add_loop_test(tc, test_guard_audit, 0, HS_MECH_COUNT);
    tcase_add_test(tc, test_guard_enforce);
    tcase_add_test(tc, test_audit_arguments);
    tcase_add_test(tc, test_audit_log_line);
    suite_add_tcase(s, tc);
    tc = tcase_create("ctx-require");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_ctx_require_rejects_hello);
    tcase_add_test(tc, test_ctx_require_chains_hello_cb);
    tcase_add_test(tc, test_ctx_require_before_guard);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    const char *build = getenv("BUILD");
    const char *tmp = getenv("TMPDIR");
    char absbuild[PATH_MAX];
    SRunner *sr;
    int failed;

    if (build == NULL || realpath(build, absbuild) == NULL) {
        fprintf(stderr, "check_guard: set BUILD to the build directory\n");
        return 2;
    }
    snprintf(module_path, sizeof(module_path), "%s/emsguard.so", absbuild);
    snprintf(tmpdir, sizeof(tmpdir), "%s", tmp != NULL ? tmp : "/tmp");
    sr = srunner_create(guard_suite());
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    hs_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
