/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the ClientHello parsing that emsguard does itself, which
 * lives in provider/hooks_hello.c and hooks_server.c (internal to the
 * library) and so is reached the way a peer reaches it: a server SSL with
 * the policy enabled reads the input as the client's byte stream.  That
 * covers the raw server_name reader (emsguard_sni_name, for log lines),
 * the supported_versions and cipher list scans of the ClientHello callback,
 * and the ticket / session-cache decisions (tickets in the corpus are sealed
 * with the harness's fixed ticket keys, so they decrypt here).
 *
 * Input: one byte choosing the server's setup, then the client's records.
 *   bits 0-1  resumption: 0, 3 tickets; 1 session-ID cache; 2 external cache
 *   bit 2     RequireExtendedMasterSecret=1
 *   bit 3     DisableServerExtendedMasterSecret=1
 *   bit 4     AllowLegacyResumption=1
 *   bit 5     DisableDHEWithoutExtendedMasterSecret=0
 *   bit 6     TLS 1.3 allowed (else TLS 1.2 only)
 *   bit 7     Schannel values: Functions, EccCurves, ServerCacheTime
 */
#include <stdint.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "harness.h"
#include "oracles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static SSL_CTX *server_ctx(unsigned setup)
{
    static SSL_CTX *ctxs[256];
    static const hs_mech mechs[4] = {
        HS_MECH_TICKET, HS_MECH_SESSION_ID, HS_MECH_EXT_CACHE, HS_MECH_TICKET
    };
    EMSGUARD_POLICY *policy;
    SSL_CTX *ctx;
    int ok = 1;

    if (ctxs[setup] != NULL)
        return ctxs[setup];
    ctx = hs_server_ctx(mechs[setup & 3], (setup & 0x40) ? HS_TLS13 : 0);
    policy = EMSGUARD_POLICY_new();
    FUZZ_CHECK(ctx != NULL && policy != NULL, "cannot make the server ctx");
    /* Nothing on stderr per input; the log line is still composed. */
    ok &= EMSGUARD_POLICY_set(policy, "EventLogging", "0");
    if (setup & 0x04)
        ok &= EMSGUARD_POLICY_set(policy, "RequireExtendedMasterSecret", "1");
    if (setup & 0x08)
        ok &= EMSGUARD_POLICY_set(policy, "DisableServerExtendedMasterSecret", "1");
    if (setup & 0x10)
        ok &= EMSGUARD_POLICY_set(policy, "AllowLegacyResumption", "1");
    if (setup & 0x20)
        ok &= EMSGUARD_POLICY_set(policy, "DisableDHEWithoutExtendedMasterSecret", "0");
    if (setup & 0x80) {
        ok &= EMSGUARD_POLICY_set(policy, "Functions",
            "TLS_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,"
            "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA");
        ok &= EMSGUARD_POLICY_set(policy, "EccCurves", "NistP256,curve25519");
        ok &= EMSGUARD_POLICY_set(policy, "ServerCacheTime", "600000");
    }
    if (!ok || !EMSGUARD_enable_policy(ctx, policy)) {
        ERR_print_errors_fp(stderr);
        FUZZ_CHECK(0, "cannot enable the policy for setup 0x%02x", setup);
    }
    EMSGUARD_POLICY_free(policy);
    return ctxs[setup] = ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *in, *out;
    int i;

    if (size < 1 || size > INT32_MAX)
        return 0;
    ctx = server_ctx(data[0]);
    ssl = SSL_new(ctx);
    in = BIO_new_mem_buf(data + 1, (int)(size - 1));
    out = BIO_new(BIO_s_null());
    FUZZ_CHECK(ssl != NULL && in != NULL && out != NULL, "out of memory");
    /* End of input: "try again later", as a socket with nothing yet. */
    BIO_set_mem_eof_return(in, -1);
    SSL_set_bio(ssl, in, out);
    SSL_set_accept_state(ssl);
    for (i = 0; i < 8; i++) {
        int r = SSL_do_handshake(ssl);

        if (r == 1 || SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ)
            break;
        if (BIO_pending(in) == 0)
            break;
    }
    if (fuzz_verbose())
        fprintf(stderr, "setup 0x%02x: state %s, version %s\n", data[0],
            SSL_state_string_long(ssl), SSL_get_version(ssl));
    SSL_free(ssl);
    ERR_clear_error();
    return 0;
}
