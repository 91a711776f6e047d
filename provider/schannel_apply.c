/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Putting one role's Schannel settings (schannel_map.c) on an SSL_CTX or an
 * SSL at EMSGUARD_enable(), the per-SSL_CTX server settings (session cache,
 * DH group), and the checks of minimum key sizes that the security and
 * verify callbacks ask.  Only OpenSSL's setters and getters: what the
 * values mean is decided in schannel_map.c.
 */
#include <stdio.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "internal.h"

int emsguard_schannel_refused(const char *what, const char *value)
{
    emsguard_raise(EMSGUARD_R_OPENSSL_SETTING,
        "OpenSSL refused %s '%s' mapped from the Schannel policy", what, value);
    return 0;
}

static int is_dtls_ctx(const SSL_CTX *ctx)
{
    const SSL_METHOD *m = SSL_CTX_get_ssl_method(ctx);

    return m == DTLS_method() || m == DTLS_server_method() || m == DTLS_client_method();
}

/* The DH group a server uses when it must be at least |bits| strong. */
EVP_PKEY *emsguard_schannel_ffdhe_at_least(uint32_t bits)
{
    static const struct {
        uint32_t bits;
        const char *name;
    } groups[] = { { 2048, "ffdhe2048" }, { 3072, "ffdhe3072" }, { 4096, "ffdhe4096" },
        { 6144, "ffdhe6144" }, { 8192, "ffdhe8192" } };
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM params[2];
    size_t i;

    for (i = 0; i < sizeof(groups) / sizeof(groups[0]) - 1 && groups[i].bits < bits; i++)
        ;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
        (char *)groups[i].name, 0);
    params[1] = OSSL_PARAM_construct_end();
    if ((pctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL)) == NULL
        || EVP_PKEY_paramgen_init(pctx) <= 0
        || EVP_PKEY_CTX_set_params(pctx, params) <= 0
        || EVP_PKEY_paramgen(pctx, &pkey) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(pctx);
    return pkey;
}

static int apply_cfg(const struct eg_role_cfg *c, SSL_CTX *ctx, SSL *ssl, int dtls)
{
    int touched = dtls ? c->dtls_touched : c->versions_touched;
    int min = dtls ? c->dtls_min : c->min_version, max = dtls ? c->dtls_max : c->max_version;

    if (touched) {
        if (min == 0) {
            /* Every version disabled: no handshake may succeed. */
            if (ssl != NULL)
                SSL_set_options(ssl, SSL_OP_NO_SSL_MASK | SSL_OP_NO_DTLS_MASK);
            else
                SSL_CTX_set_options(ctx, SSL_OP_NO_SSL_MASK | SSL_OP_NO_DTLS_MASK);
        } else if (ssl != NULL ? !SSL_set_min_proto_version(ssl, min)
                       || !SSL_set_max_proto_version(ssl, max)
                               : !SSL_CTX_set_min_proto_version(ctx, min)
                       || !SSL_CTX_set_max_proto_version(ctx, max)) {
            return emsguard_schannel_refused("the protocol range", "Protocols");
        }
    }
    if (ssl != NULL) {
        SSL_clear_options(ssl, c->opts_clear);
        SSL_set_options(ssl, c->opts_set);
    } else {
        SSL_CTX_clear_options(ctx, c->opts_clear);
        SSL_CTX_set_options(ctx, c->opts_set);
    }
    if (c->ciphers[0] != '\0'
        && !(ssl != NULL ? SSL_set_cipher_list(ssl, c->ciphers)
                         : SSL_CTX_set_cipher_list(ctx, c->ciphers)))
        return emsguard_schannel_refused("the cipher list", c->ciphers);
    if (c->suites_touched
        && !(ssl != NULL ? SSL_set_ciphersuites(ssl, c->suites)
                         : SSL_CTX_set_ciphersuites(ctx, c->suites)))
        return emsguard_schannel_refused("the TLS 1.3 cipher suites", c->suites);
    if (c->groups != NULL
        && !(ssl != NULL ? SSL_set1_groups_list(ssl, c->groups)
                         : SSL_CTX_set1_groups_list(ctx, c->groups)))
        return emsguard_schannel_refused("the groups", c->groups);
    return 1;
}

/* Settings that exist only per SSL_CTX and only matter to a server. */
int emsguard_schannel_apply_server_ctx(const EMSGUARD_POLICY *p, SSL_CTX *ctx)
{
    if (emsguard_policy_is_set(p, EG_KEY_SERVER_CACHE_TIME)) {
        uint32_t ms = p->values[EG_KEY_SERVER_CACHE_TIME];

        if (ms == 0) {
            SSL_CTX_set_session_cache_mode(ctx,
                SSL_CTX_get_session_cache_mode(ctx) & ~(long)SSL_SESS_CACHE_SERVER);
            SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        } else {
            SSL_CTX_set_timeout(ctx, (long)((ms + 999) / 1000));
        }
    }
    if (emsguard_policy_is_set(p, EG_KEY_MAX_CACHE_SIZE)) {
        uint32_t n = p->values[EG_KEY_MAX_CACHE_SIZE];

        /* OpenSSL reads 0 as "unlimited"; Schannel means "no cache". */
        if (n == 0)
            SSL_CTX_set_session_cache_mode(ctx,
                SSL_CTX_get_session_cache_mode(ctx) & ~(long)SSL_SESS_CACHE_SERVER);
        else
            SSL_CTX_sess_set_cache_size(ctx, (long)n);
    }
    if (emsguard_policy_is_set(p, EG_KEY_K_DH_SERVER_MIN)
        && p->values[EG_KEY_K_DH_SERVER_MIN] > 0) {
        EVP_PKEY *dh = emsguard_schannel_ffdhe_at_least(p->values[EG_KEY_K_DH_SERVER_MIN]);

        if (dh == NULL)
            return emsguard_schannel_refused("the DH group for ServerMinKeyBitLength", "ffdhe");
        if (!SSL_CTX_set0_tmp_dh_pkey(ctx, dh)) {
            EVP_PKEY_free(dh);
            return emsguard_schannel_refused("the DH group for ServerMinKeyBitLength", "ffdhe");
        }
        /* libssl prefers its automatic choice over an explicit group. */
        SSL_CTX_set_dh_auto(ctx, 0);
    }
    return 1;
}

int emsguard_schannel_apply(const EMSGUARD_POLICY *policy, int role,
    SSL_CTX *ctx, SSL *ssl)
{
    struct eg_role_cfg c;
    int dtls = ssl != NULL ? SSL_is_dtls(ssl) : is_dtls_ctx(ctx);

    emsguard_schannel_role_config(policy, role, &c);
    if (!apply_cfg(&c, ctx, ssl, dtls))
        return 0;
    if (ssl == NULL && role == EG_ROLE_SERVER)
        return emsguard_schannel_apply_server_ctx(policy, ctx);
    return 1;
}

/* ---- minimum key sizes --------------------------------------------------- */

/*
 * Security callback check for a role: the DH group a client accepts from
 * the server (ClientMinKeyBitLength).  Returns 0 to refuse.
 */
int emsguard_schannel_security_ok(const EMSGUARD_POLICY *p, int role, int op,
    void *other)
{
    if ((op & ~SSL_SECOP_PEER) == SSL_SECOP_TMP_DH && role == EG_ROLE_CLIENT
        && other != NULL) {
        uint32_t min = emsguard_schannel_min_bits(p, EG_KEY_K_DH_CLIENT_MIN);

        if (min > 0 && (uint32_t)EVP_PKEY_get_bits((EVP_PKEY *)other) < min)
            return 0;
    }
    return 1;
}

/* The peer certificate's RSA key against PKCS's MinKeyBitLength. */
int emsguard_schannel_peer_key_ok(const EMSGUARD_POLICY *p, int role, X509 *cert)
{
    EVP_PKEY *key = cert != NULL ? X509_get0_pubkey(cert) : NULL;
    uint32_t min = emsguard_schannel_min_bits(p,
        role == EG_ROLE_CLIENT ? EG_KEY_K_PKCS_CLIENT_MIN : EG_KEY_K_PKCS_SERVER_MIN);

    if (min == 0 || key == NULL || !EVP_PKEY_is_a(key, "RSA"))
        return 1;
    return (uint32_t)EVP_PKEY_get_bits(key) >= min;
}

/* ---- the settings both roles share, on a both-roles ctx -------------------- */

int emsguard_schannel_apply_shared(const EMSGUARD_POLICY *policy, SSL_CTX *ctx)
{
    struct eg_role_cfg c;

    /* Suites and groups do not depend on the role (role_config). */
    emsguard_schannel_role_config(policy, EG_ROLE_SERVER, &c);
    c.versions_touched = c.dtls_touched = 0;
    c.opts_set = c.opts_clear = 0;
    return apply_cfg(&c, ctx, NULL, 0);
}
