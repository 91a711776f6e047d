/*
 * Schannel values with an OpenSSL meaning, applied to an SSL_CTX or SSL.
 *
 * Every mapping is a restriction or a choice among what OpenSSL already
 * offers: emsguard never adds a cipher, protocol or curve that OpenSSL's own
 * configuration left out.  An unset value leaves OpenSSL's setting alone.
 * The table of what maps to what is in the README ("Schannel registry
 * values and their OpenSSL meaning").
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "internal.h"
#include "suite_names.h"

/* ---- translating names -------------------------------------------------- */

static const struct suite_name *find_suite(const char *iana)
{
    size_t i;

    for (i = 0; i < sizeof(suite_names) / sizeof(suite_names[0]); i++)
        if (strcasecmp(suite_names[i].iana, iana) == 0)
            return &suite_names[i];
    return NULL;
}

/* Copies the next comma-separated item of *p, trimmed, into |item|. */
static int next_item(const char **p, char *item, size_t len)
{
    const char *s = *p, *e;
    size_t n;

    while (*s == ' ' || *s == '\t' || *s == ',')
        s++;
    if (*s == '\0')
        return 0;
    e = strchr(s, ',');
    if (e == NULL)
        e = s + strlen(s);
    *p = e;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    n = (size_t)(e - s) < len - 1 ? (size_t)(e - s) : len - 1;
    memcpy(item, s, n);
    item[n] = '\0';
    return 1;
}

/* True if |list| (':'-separated) holds exactly |item|. */
static int has_item(const char *list, const char *item)
{
    size_t n = strlen(item);
    const char *p = list;

    while ((p = strstr(p, item)) != NULL) {
        if ((p == list || p[-1] == ':') && (p[n] == '\0' || p[n] == ':'))
            return 1;
        p += n;
    }
    return 0;
}

static int append(char *buf, size_t len, const char *sep, const char *item)
{
    size_t used = strlen(buf);
    int n = snprintf(buf + used, len - used, "%s%s", used > 0 ? sep : "", item);

    return n >= 0 && (size_t)n < len - used;
}

int emsguard_schannel_translate_functions(EMSGUARD_POLICY *policy,
    const char *where)
{
    const char *p = policy->functions;
    char item[128], tls12[EG_STRING_MAX] = "", tls13[512] = "";
    int known = 0;

    if (where == NULL)
        where = "";
    while (next_item(&p, item, sizeof(item))) {
        const struct suite_name *s = find_suite(item);
        size_t len = strlen(item);

        /*
         * Windows 7 to 8.1 listed ECDHE suites once per curve, with a
         * _P256/_P384/_P521 suffix; the curve is EccCurves' business here.
         */
        if (s == NULL && len > 5 && item[len - 5] == '_' && item[len - 4] == 'P') {
            item[len - 5] = '\0';
            if ((s = find_suite(item)) != NULL)
                emsguard_policy_warn(policy,
                    "%swarning: Functions: '%s_%s' read as '%s' (the curve "
                    "suffix is not part of the suite in OpenSSL; use EccCurves)",
                    where, item, item + len - 4, item);
            else
                item[len - 5] = '_';
        }
        if (s == NULL) {
            emsguard_policy_warn(policy,
                "%swarning: Functions: cipher suite '%s' is not implemented "
                "by OpenSSL; ignored", where, item);
            continue;
        }
        if (has_item(s->tls13 ? tls13 : tls12, s->openssl))
            continue; /* listed twice (e.g. once per curve suffix) */
        if (!append(s->tls13 ? tls13 : tls12, s->tls13 ? sizeof(tls13) : sizeof(tls12),
                s->tls13 ? ":" : ":", s->openssl)) {
            emsguard_raise(EMSGUARD_R_OUT_OF_RANGE, "%skey 'Functions': list too long", where);
            return 0;
        }
        known++;
    }
    if (policy->functions[0] != '\0' && tls12[0] == '\0') {
        emsguard_raise(EMSGUARD_R_BAD_VALUE,
            "%skey 'Functions': no TLS 1.2 cipher suite that OpenSSL implements "
            "is listed (%d TLS 1.3 suites); the list would disable TLS 1.2 "
            "entirely; accepted: %s",
            where, known, emsguard_key_accepted(EG_KEY_FUNCTIONS));
        return 0;
    }
    snprintf(policy->tls12_ciphers, sizeof(policy->tls12_ciphers), "%s", tls12);
    snprintf(policy->tls13_suites, sizeof(policy->tls13_suites), "%s", tls13);
    return 1;
}

static const struct {
    const char *windows, *openssl;
} curve_names[] = {
    { "curve25519", "X25519" },
    { "curve448", "X448" },
    { "NistP256", "P-256" },
    { "NistP384", "P-384" },
    { "NistP521", "P-521" },
    { "secP256r1", "P-256" },
    { "secP384r1", "P-384" },
    { "secP521r1", "P-521" },
};

int emsguard_schannel_translate_curves(EMSGUARD_POLICY *policy,
    const char *where)
{
    const char *p = policy->ecc_curves;
    char item[64], groups[512] = "";
    size_t i;

    if (where == NULL)
        where = "";
    while (next_item(&p, item, sizeof(item))) {
        const char *name = NULL;

        for (i = 0; i < sizeof(curve_names) / sizeof(curve_names[0]); i++)
            if (strcasecmp(curve_names[i].windows, item) == 0)
                name = curve_names[i].openssl;
        if (name == NULL) {
            emsguard_policy_warn(policy,
                "%swarning: EccCurves: curve '%s' has no OpenSSL TLS group; ignored",
                where, item);
            continue;
        }
        if (has_item(groups, name))
            continue;
        if (!append(groups, sizeof(groups), ":", name)) {
            emsguard_raise(EMSGUARD_R_OUT_OF_RANGE, "%skey 'EccCurves': list too long", where);
            return 0;
        }
    }
    if (policy->ecc_curves[0] != '\0' && groups[0] == '\0') {
        emsguard_raise(EMSGUARD_R_BAD_VALUE,
            "%skey 'EccCurves': no curve OpenSSL supports is listed; accepted: %s",
            where, emsguard_key_accepted(EG_KEY_ECC_CURVES));
        return 0;
    }
    snprintf(policy->groups, sizeof(policy->groups), "%s", groups);
    return 1;
}

/* ---- what one role gets ------------------------------------------------- */


static int is_set(const EMSGUARD_POLICY *p, eg_key k)
{
    return p->set[k];
}

/* Off when set to 0 ("Enabled"=0). */
static int disabled(const EMSGUARD_POLICY *p, eg_key k)
{
    return p->set[k] && p->values[k] == 0;
}

/* Version state for |role|: -1 disabled, 1 enabled, 0 untouched. */
static int version_state(const EMSGUARD_POLICY *p, int proto_index, int role)
{
    eg_key base = (eg_key)(EG_KEY_FIRST_PROTO + proto_index * 4 + (role == EG_ROLE_SERVER ? 2 : 0));
    eg_key enabled = base, dbd = (eg_key)(base + 1);

    /*
     * DisabledByDefault=1 means "only if the application asks for it"; an
     * OpenSSL application cannot ask Schannel-style, so it means off.
     */
    if (disabled(p, enabled) || (is_set(p, dbd) && p->values[dbd] != 0))
        return -1;
    if (is_set(p, enabled) || is_set(p, dbd))
        return 1;
    return 0;
}

/*
 * OpenSSL takes a range min..max: the highest run of allowed versions.
 * Untouched versions count as allowed (OpenSSL's own configuration decides
 * about them).
 */
static void version_range(const EMSGUARD_POLICY *p, int role, const int *protos,
    const int *versions, int n, int *touched, int *min, int *max)
{
    int i, top = -1, bottom = -1;

    *touched = 0;
    for (i = 0; i < n; i++)
        if (version_state(p, protos[i], role) != 0)
            *touched = 1;
    if (!*touched)
        return;
    for (i = n - 1; i >= 0; i--) {
        int allowed = version_state(p, protos[i], role) >= 0;

        if (allowed && top < 0)
            top = i;
        if (allowed && top >= 0)
            bottom = i;
        if (!allowed && top >= 0)
            break;
    }
    *min = top >= 0 ? versions[bottom] : 0;
    *max = top >= 0 ? versions[top] : 0;
}

enum { P_SSL30, P_TLS10, P_TLS11, P_TLS12, P_TLS13, P_DTLS10, P_DTLS12 };

static void exclusions(const EMSGUARD_POLICY *p, char *buf, size_t len)
{
    static const struct {
        eg_key key;
        const char *exclude;
    } map[] = {
        { EG_KEY_C_NULL_, "!eNULL" },
        { EG_KEY_C_DES56, "!DES" },
        { EG_KEY_C_RC2_40, "!RC2" }, { EG_KEY_C_RC2_56, "!RC2" }, { EG_KEY_C_RC2_128, "!RC2" },
        { EG_KEY_C_RC4_40, "!RC4" }, { EG_KEY_C_RC4_56, "!RC4" }, { EG_KEY_C_RC4_64, "!RC4" },
        { EG_KEY_C_RC4_128, "!RC4" },
        { EG_KEY_C_TDES, "!3DES" }, { EG_KEY_C_TDES168, "!3DES" },
        { EG_KEY_C_AES128, "!AES128" }, { EG_KEY_C_AES256, "!AES256" },
        { EG_KEY_H_MD5, "!MD5" }, { EG_KEY_H_SHA, "!SHA1" },
        { EG_KEY_H_SHA256, "!SHA256" }, { EG_KEY_H_SHA384, "!SHA384" },
        { EG_KEY_K_DH_ENABLED, "!kDHE" }, { EG_KEY_K_DH_ENABLED, "!kDHEPSK" },
        { EG_KEY_K_PKCS_ENABLED, "!kRSA" }, { EG_KEY_K_PKCS_ENABLED, "!kRSAPSK" },
        { EG_KEY_K_ECDH_ENABLED, "!kECDHE" }, { EG_KEY_K_ECDH_ENABLED, "!kECDHEPSK" },
    };
    size_t i;

    buf[0] = '\0';
    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (disabled(p, map[i].key) && !has_item(buf, map[i].exclude))
            append(buf, len, ":", map[i].exclude);
}

/* TLS 1.3 suites minus the ones a disabled AES size removes. */
static void tls13_suites(const EMSGUARD_POLICY *p, char *buf, size_t len,
    int *touched)
{
    const char *base = p->tls13_suites[0] != '\0' || is_set(p, EG_KEY_FUNCTIONS)
        ? p->tls13_suites
        : "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";
    char item[64];
    const char *s = base;

    *touched = is_set(p, EG_KEY_FUNCTIONS) || disabled(p, EG_KEY_C_AES128)
        || disabled(p, EG_KEY_C_AES256);
    buf[0] = '\0';
    if (!*touched)
        return;
    while (*s != '\0') {
        const char *e = strchr(s, ':');
        size_t n = e != NULL ? (size_t)(e - s) : strlen(s);

        if (n >= sizeof(item))
            n = sizeof(item) - 1;
        memcpy(item, s, n);
        item[n] = '\0';
        s += n + (e != NULL ? 1 : 0);
        if ((disabled(p, EG_KEY_C_AES128) && strncmp(item, "TLS_AES_128_", 12) == 0)
            || (disabled(p, EG_KEY_C_AES256) && strncmp(item, "TLS_AES_256_", 12) == 0))
            continue;
        append(buf, len, ":", item);
    }
}

void emsguard_schannel_role_config(const EMSGUARD_POLICY *p, int role, struct eg_role_cfg *c)
{
    static const int tls_protos[] = { P_TLS10, P_TLS11, P_TLS12, P_TLS13 };
    static const int tls_versions[] = { TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION,
        TLS1_3_VERSION };
    static const int dtls_protos[] = { P_DTLS10, P_DTLS12 };
    static const int dtls_versions[] = { DTLS1_VERSION, DTLS1_2_VERSION };
    char excl[256];

    memset(c, 0, sizeof(*c));
    version_range(p, role, tls_protos, tls_versions, 4, &c->versions_touched,
        &c->min_version, &c->max_version);
    version_range(p, role, dtls_protos, dtls_versions, 2, &c->dtls_touched,
        &c->dtls_min, &c->dtls_max);
    if (role == EG_ROLE_SERVER) {
        /* Functions is the server's preference order, as in Schannel. */
        if (is_set(p, EG_KEY_FUNCTIONS))
            c->opts_set |= SSL_OP_CIPHER_SERVER_PREFERENCE;
        if (is_set(p, EG_KEY_INSECURE_RENEGO_CLIENTS)) {
            if (p->values[EG_KEY_INSECURE_RENEGO_CLIENTS])
                c->opts_set |= SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION;
            else
                c->opts_clear |= SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION;
        }
        if (is_set(p, EG_KEY_DISABLE_RENEGO_SERVER)) {
            if (p->values[EG_KEY_DISABLE_RENEGO_SERVER])
                c->opts_set |= SSL_OP_NO_RENEGOTIATION;
            else
                c->opts_clear |= SSL_OP_NO_RENEGOTIATION;
        }
    } else {
        if (is_set(p, EG_KEY_INSECURE_RENEGO_SERVERS)) {
            uint64_t o = SSL_OP_LEGACY_SERVER_CONNECT | SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION;

            if (p->values[EG_KEY_INSECURE_RENEGO_SERVERS])
                c->opts_set |= o;
            else
                c->opts_clear |= o;
        }
        if (is_set(p, EG_KEY_DISABLE_RENEGO_CLIENT)) {
            if (p->values[EG_KEY_DISABLE_RENEGO_CLIENT])
                c->opts_set |= SSL_OP_NO_RENEGOTIATION;
            else
                c->opts_clear |= SSL_OP_NO_RENEGOTIATION;
        }
    }
    exclusions(p, excl, sizeof(excl));
    if (is_set(p, EG_KEY_FUNCTIONS) || excl[0] != '\0') {
        snprintf(c->ciphers, sizeof(c->ciphers), "%s",
            is_set(p, EG_KEY_FUNCTIONS) ? p->tls12_ciphers : "DEFAULT");
        if (excl[0] != '\0')
            append(c->ciphers, sizeof(c->ciphers), ":", excl);
    }
    tls13_suites(p, c->suites, sizeof(c->suites), &c->suites_touched);
    c->groups = is_set(p, EG_KEY_ECC_CURVES) ? p->groups : NULL;
}

static int role_configs_equal(const struct eg_role_cfg *a, const struct eg_role_cfg *b)
{
    return a->versions_touched == b->versions_touched && a->min_version == b->min_version
        && a->max_version == b->max_version && a->dtls_touched == b->dtls_touched
        && a->dtls_min == b->dtls_min && a->dtls_max == b->dtls_max
        && a->opts_set == b->opts_set && a->opts_clear == b->opts_clear
        && strcmp(a->ciphers, b->ciphers) == 0 && a->suites_touched == b->suites_touched
        && strcmp(a->suites, b->suites) == 0 && a->groups == b->groups;
}

int emsguard_schannel_roles_differ(const EMSGUARD_POLICY *policy)
{
    struct eg_role_cfg c, s;

    emsguard_schannel_role_config(policy, EG_ROLE_CLIENT, &c);
    emsguard_schannel_role_config(policy, EG_ROLE_SERVER, &s);
    return !role_configs_equal(&c, &s);
}

int emsguard_schannel_any(const EMSGUARD_POLICY *policy)
{
    int k;

    for (k = EG_KEY_CLIENT_CACHE_TIME; k < EG_KEY_COUNT; k++)
        if (policy->set[k])
            return 1;
    return 0;
}

/* ---- applying ------------------------------------------------------------ */

static int refused(const char *what, const char *value)
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
static EVP_PKEY *ffdhe_at_least(uint32_t bits)
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
            return refused("the protocol range", "Protocols");
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
        return refused("the cipher list", c->ciphers);
    if (c->suites_touched
        && !(ssl != NULL ? SSL_set_ciphersuites(ssl, c->suites)
                         : SSL_CTX_set_ciphersuites(ctx, c->suites)))
        return refused("the TLS 1.3 cipher suites", c->suites);
    if (c->groups != NULL
        && !(ssl != NULL ? SSL_set1_groups_list(ssl, c->groups)
                         : SSL_CTX_set1_groups_list(ctx, c->groups)))
        return refused("the groups", c->groups);
    return 1;
}

/* Settings that exist only per SSL_CTX and only matter to a server. */
int emsguard_schannel_apply_server_ctx(const EMSGUARD_POLICY *p, SSL_CTX *ctx)
{
    if (is_set(p, EG_KEY_SERVER_CACHE_TIME)) {
        uint32_t ms = p->values[EG_KEY_SERVER_CACHE_TIME];

        if (ms == 0) {
            SSL_CTX_set_session_cache_mode(ctx,
                SSL_CTX_get_session_cache_mode(ctx) & ~(long)SSL_SESS_CACHE_SERVER);
            SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        } else {
            SSL_CTX_set_timeout(ctx, (long)((ms + 999) / 1000));
        }
    }
    if (is_set(p, EG_KEY_MAX_CACHE_SIZE)) {
        uint32_t n = p->values[EG_KEY_MAX_CACHE_SIZE];

        /* OpenSSL reads 0 as "unlimited"; Schannel means "no cache". */
        if (n == 0)
            SSL_CTX_set_session_cache_mode(ctx,
                SSL_CTX_get_session_cache_mode(ctx) & ~(long)SSL_SESS_CACHE_SERVER);
        else
            SSL_CTX_sess_set_cache_size(ctx, (long)n);
    }
    if (is_set(p, EG_KEY_K_DH_SERVER_MIN) && p->values[EG_KEY_K_DH_SERVER_MIN] > 0) {
        EVP_PKEY *dh = ffdhe_at_least(p->values[EG_KEY_K_DH_SERVER_MIN]);

        if (dh == NULL)
            return refused("the DH group for ServerMinKeyBitLength", "ffdhe");
        if (!SSL_CTX_set0_tmp_dh_pkey(ctx, dh)) {
            EVP_PKEY_free(dh);
            return refused("the DH group for ServerMinKeyBitLength", "ffdhe");
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

uint32_t emsguard_schannel_min_bits(const EMSGUARD_POLICY *p, eg_key key)
{
    return p->set[key] ? p->values[key] : 0;
}

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

/* ---- holding the values on every connection ------------------------------- */

/*
 * Options the policy sets (clears) as a restriction: put back on a
 * connection whatever the application did.  The others (AllowInsecureRenego*
 * = 1, DisableRenego* = 0) loosen OpenSSL's default; an application that
 * changes them back only restricts, and keeps its choice.
 */
#define HOLD_SET_MASK (SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE \
    | SSL_OP_NO_TICKET | SSL_OP_NO_SSL_MASK | SSL_OP_NO_DTLS_MASK)
#define HOLD_CLEAR_MASK (SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION | SSL_OP_LEGACY_SERVER_CONNECT)

/* TLS IDs of the curves EccCurves can name (curve_names). */
static const struct {
    const char *name;
    uint16_t id;
} group_ids[] = {
    { "X25519", 0x001d }, { "X448", 0x001e }, { "P-256", 0x0017 },
    { "P-384", 0x0018 }, { "P-521", 0x0019 },
};

static int cmp_u16(const void *a, const void *b)
{
    uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;

    return (x > y) - (x < y);
}

static int has_u16(const uint16_t *set, size_t n, uint16_t v)
{
    return bsearch(&v, set, n, sizeof(v), cmp_u16) != NULL;
}

static int is_tls13_suite(const SSL_CIPHER *c)
{
    return SSL_CIPHER_get_kx_nid(c) == NID_kx_any;
}

/* The suites the policy's lists give on |ctx|: what an SSL of it gets. */
static int hold_suites(const struct eg_role_cfg *c, SSL_CTX *ctx, struct eg_schannel_hold *h)
{
    SSL *ssl = SSL_new(ctx);
    STACK_OF(SSL_CIPHER) *sk;
    int i, ok = 0;

    if (ssl == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot allocate an SSL to read the policy's suites");
        return 0;
    }
    if (c->ciphers[0] != '\0' && !SSL_set_cipher_list(ssl, c->ciphers)) {
        refused("the cipher list", c->ciphers);
        goto end;
    }
    if (c->suites_touched && !SSL_set_ciphersuites(ssl, c->suites)) {
        refused("the TLS 1.3 cipher suites", c->suites);
        goto end;
    }
    sk = SSL_get_ciphers(ssl);
    for (i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
        const SSL_CIPHER *s = sk_SSL_CIPHER_value(sk, i);

        if (is_tls13_suite(s) ? !h->tls13_held : !h->tls12_held)
            continue;
        if (h->n_ciphers == EG_HOLD_MAX_CIPHERS) {
            emsguard_raise(EMSGUARD_R_OUT_OF_RANGE, "the policy's cipher lists give more "
                "than %d suites", EG_HOLD_MAX_CIPHERS);
            goto end;
        }
        h->ciphers[h->n_ciphers++] = SSL_CIPHER_get_protocol_id(s);
    }
    qsort(h->ciphers, h->n_ciphers, sizeof(h->ciphers[0]), cmp_u16);
    ok = 1;
end:
    SSL_free(ssl);
    return ok;
}

static void hold_groups(const char *groups, struct eg_schannel_hold *h)
{
    size_t i;

    for (i = 0; i < sizeof(group_ids) / sizeof(group_ids[0]); i++)
        if (has_item(groups, group_ids[i].name) && h->n_groups < EG_HOLD_MAX_GROUPS)
            h->groups[h->n_groups++] = group_ids[i].id;
    qsort(h->groups, h->n_groups, sizeof(h->groups[0]), cmp_u16);
}

/*
 * The ffdhe groups larger than the policy's, so that a connection whose
 * application (or libssl's automatic choice) would use a larger group than
 * ServerMinKeyBitLength keeps one at least as large: made once at enable,
 * a reference count per handshake.
 */
static int hold_larger_dh(struct eg_schannel_hold *h)
{
    uint32_t bits = (uint32_t)EVP_PKEY_get_bits(h->server_dh);
    size_t n = 0;

    while (bits < 8192 && n < sizeof(h->server_dh_larger) / sizeof(h->server_dh_larger[0])) {
        EVP_PKEY *dh = ffdhe_at_least(bits + 1);

        if (dh == NULL)
            return 0;
        h->server_dh_larger[n++] = dh;
        bits = (uint32_t)EVP_PKEY_get_bits(dh);
    }
    return 1;
}

/*
 * The DH group size libssl's automatic choice gives |ssl| (t1_lib.c
 * ssl_get_auto_dh, dh_tmp_auto 1: the certificate key's security bits, at
 * least the security level's).  The SSL's current key stands for the
 * certificate libssl will pick (DHE needs RSA or DSA; a larger guess only
 * makes the group larger).  libssl gives no getter for dh_auto itself, so
 * this is what the server may have been going to use.
 */
static uint32_t auto_dh_bits(const SSL *ssl)
{
    static const int level_bits[] = { 0, 80, 112, 128, 192, 256 };
    EVP_PKEY *key = SSL_get_privatekey(ssl);
    int secbits = key != NULL ? EVP_PKEY_get_security_bits(key) : 80;
    int level = SSL_get_security_level(ssl);

    if (level > 5)
        level = 5;
    if (level > 0 && secbits < level_bits[level])
        secbits = level_bits[level];
    return secbits >= 192 ? 8192 : secbits >= 152 ? 4096 : secbits >= 128 ? 3072
        : secbits >= 112 ? 2048 : 1024;
}

/* The held ffdhe group of at least |bits| (the largest if none is). */
static EVP_PKEY *held_dh_at_least(const struct eg_schannel_hold *h, uint32_t bits)
{
    EVP_PKEY *dh = h->server_dh;
    size_t i;

    for (i = 0; i < sizeof(h->server_dh_larger) / sizeof(h->server_dh_larger[0])
         && (uint32_t)EVP_PKEY_get_bits(dh) < bits && h->server_dh_larger[i] != NULL; i++)
        dh = h->server_dh_larger[i];
    return dh;
}

int emsguard_schannel_hold_init(const EMSGUARD_POLICY *p, SSL_CTX *ctx, int per_ssl,
    struct eg_schannel_hold *h)
{
    struct eg_role_cfg c;
    int role;

    memset(h, 0, sizeof(*h));
    if (!emsguard_schannel_any(p))
        return 1;
    for (role = EG_ROLE_CLIENT; role <= EG_ROLE_SERVER; role++) {
        uint64_t set, clear;

        emsguard_schannel_role_config(p, role, &c);
        h->role[role].tls = (struct eg_hold_range) { c.versions_touched, c.min_version,
            c.max_version };
        h->role[role].dtls = (struct eg_hold_range) { c.dtls_touched, c.dtls_min, c.dtls_max };
        set = c.opts_set;
        clear = c.opts_clear;
        if (c.versions_touched && c.min_version == 0)
            set |= SSL_OP_NO_SSL_MASK;
        if (c.dtls_touched && c.dtls_min == 0)
            set |= SSL_OP_NO_DTLS_MASK;
        if (role == EG_ROLE_SERVER && is_set(p, EG_KEY_SERVER_CACHE_TIME)
            && p->values[EG_KEY_SERVER_CACHE_TIME] == 0)
            set |= SSL_OP_NO_TICKET;
        /*
         * Only restrictions are put back on every connection.  A both-roles
         * ctx got none of the role's options at enable: the loosening ones
         * go on a connection only while the application has not chosen
         * (emsguard_schannel_hold_ssl), never over its own restriction.
         */
        h->role[role].opts_set = set & HOLD_SET_MASK;
        h->role[role].opts_clear = clear & HOLD_CLEAR_MASK;
        if (per_ssl) {
            h->role[role].loosen_set = set & ~(uint64_t)HOLD_SET_MASK;
            h->role[role].loosen_clear = clear & ~(uint64_t)HOLD_CLEAR_MASK;
        }
        if (c.versions_touched || c.dtls_touched)
            h->filter = 1; /* versions changed during the handshake */
        if (c.versions_touched || c.dtls_touched || h->role[role].opts_set
            || h->role[role].opts_clear || h->role[role].loosen_set
            || h->role[role].loosen_clear)
            h->active = 1;
    }
    h->opts_at_enable = SSL_CTX_get_options(ctx);
    /* Suites and groups: the same for both roles (c is the server's now). */
    h->tls12_held = c.ciphers[0] != '\0';
    h->tls13_held = c.suites_touched;
    if ((h->tls12_held || h->tls13_held) && !hold_suites(&c, ctx, h))
        return 0;
    if (c.groups != NULL)
        hold_groups(c.groups, h);
    if (h->tls12_held || h->tls13_held || h->n_groups > 0)
        h->active = h->filter = 1;
    if (is_set(p, EG_KEY_K_DH_SERVER_MIN) && p->values[EG_KEY_K_DH_SERVER_MIN] > 0) {
        h->server_dh_min = p->values[EG_KEY_K_DH_SERVER_MIN];
        if ((h->server_dh = ffdhe_at_least(h->server_dh_min)) == NULL)
            return refused("the DH group for ServerMinKeyBitLength", "ffdhe");
        if (!hold_larger_dh(h))
            return refused("the DH groups above ServerMinKeyBitLength", "ffdhe");
        h->active = h->filter = 1;
    }
    /* PKCS MinKeyBitLength: emsguard's verify callback must stay the SSL's. */
    if (emsguard_schannel_min_bits(p, EG_KEY_K_PKCS_CLIENT_MIN) > 0
        || emsguard_schannel_min_bits(p, EG_KEY_K_PKCS_SERVER_MIN) > 0)
        h->active = 1;
    if (is_set(p, EG_KEY_SERVER_CACHE_TIME)) {
        uint32_t ms = p->values[EG_KEY_SERVER_CACHE_TIME];

        if (ms == 0)
            h->server_cache_off = 1;
        else
            h->server_lifetime = (long)((ms + 999) / 1000);
        h->active = 1;
    }
    if (is_set(p, EG_KEY_MAX_CACHE_SIZE)) {
        if (p->values[EG_KEY_MAX_CACHE_SIZE] == 0)
            h->server_cache_off = 1;
        else
            h->server_cache_max = (long)p->values[EG_KEY_MAX_CACHE_SIZE];
        h->active = 1;
    }
    return 1;
}

void emsguard_schannel_hold_clear(struct eg_schannel_hold *h)
{
    size_t i;

    EVP_PKEY_free(h->server_dh);
    h->server_dh = NULL;
    for (i = 0; i < sizeof(h->server_dh_larger) / sizeof(h->server_dh_larger[0]); i++) {
        EVP_PKEY_free(h->server_dh_larger[i]);
        h->server_dh_larger[i] = NULL;
    }
}

/* Order of versions: DTLS numbers decrease, DTLS1_BAD_VER is the oldest. */
static int version_rank(int v, int dtls)
{
    if (!dtls)
        return v;
    return v == DTLS1_BAD_VER ? 0 : 0x10000 - v;
}

void emsguard_schannel_no_version(SSL *ssl)
{
    int dtls = SSL_is_dtls(ssl);

    /* A minimum above the maximum: libssl finds no version to offer or accept. */
    SSL_set_min_proto_version(ssl, dtls ? DTLS1_2_VERSION : TLS1_3_VERSION);
    SSL_set_max_proto_version(ssl, dtls ? DTLS1_VERSION : SSL3_VERSION);
    SSL_set_options(ssl, SSL_OP_NO_SSL_MASK | SSL_OP_NO_DTLS_MASK);
}

/* The SSL's range intersected with the policy's. */
static unsigned hold_versions(SSL *ssl, const struct eg_hold_range *r, int dtls)
{
    int min = (int)SSL_get_min_proto_version(ssl), max = (int)SSL_get_max_proto_version(ssl);
    int want_min, want_max;

    if (r->min == 0) {
        /* Every version disabled; the options (HOLD_SET_MASK) say so too. */
        want_min = dtls ? DTLS1_2_VERSION : TLS1_3_VERSION;
        want_max = dtls ? DTLS1_VERSION : SSL3_VERSION;
    } else {
        want_min = min == 0 || version_rank(min, dtls) < version_rank(r->min, dtls) ? r->min : min;
        want_max = max == 0 || version_rank(max, dtls) > version_rank(r->max, dtls) ? r->max : max;
    }
    if (want_min == min && want_max == max)
        return 0;
    /* An application minimum above the policy's maximum: nothing left, fails. */
    SSL_set_min_proto_version(ssl, want_min);
    SSL_set_max_proto_version(ssl, want_max);
    return EG_HELD_VERSIONS;
}

unsigned emsguard_schannel_hold_ssl(const struct eg_schannel_hold *h, int role, SSL *ssl)
{
    int dtls = SSL_is_dtls(ssl);
    const struct eg_hold_range *r = dtls ? &h->role[role].dtls : &h->role[role].tls;
    uint64_t set = h->role[role].opts_set, clear = h->role[role].opts_clear;
    unsigned fixed = 0;

    if (r->touched)
        fixed |= hold_versions(ssl, r, dtls);
    if ((set | clear) != 0) {
        uint64_t o = SSL_get_options(ssl);

        if ((o & set) != set || (o & clear) != 0) {
            SSL_clear_options(ssl, clear);
            SSL_set_options(ssl, set);
            fixed |= EG_HELD_OPTIONS;
        }
    }
    if ((h->role[role].loosen_set | h->role[role].loosen_clear) != 0) {
        uint64_t o = SSL_get_options(ssl);
        /* Bits still as at enable: the application (ctx or SSL) has not chosen. */
        uint64_t untouched = ~(o ^ h->opts_at_enable);

        SSL_clear_options(ssl, h->role[role].loosen_clear & untouched);
        SSL_set_options(ssl, h->role[role].loosen_set & untouched);
    }
    /*
     * The server's DH group: no getter tells what the application set
     * (s_server turns SSL_CTX_set_dh_auto on after SSL_CTX_new), so the
     * policy's group goes on every server connection: an atomic reference
     * count, no allocation.
     */
    if (role == EG_ROLE_SERVER && h->server_dh != NULL) {
        /*
         * Never smaller than what the server may have used: the group the
         * application set on the ctx after enable (security_cb notes its
         * size), or libssl's automatic choice.
         */
        uint32_t want = auto_dh_bits(ssl),
            app = atomic_load_explicit(&h->app_dh_bits, memory_order_relaxed);
        EVP_PKEY *dh = held_dh_at_least(h, want > app ? want : app);

        ERR_set_mark();
        SSL_set_dh_auto(ssl, 0);
        if (EVP_PKEY_up_ref(dh) && !SSL_set0_tmp_dh_pkey(ssl, dh))
            EVP_PKEY_free(dh);
        ERR_pop_to_mark();
    }
    return fixed;
}

/*
 * Called for every security check of a connection (about 80 per handshake
 * and side): the common answers come first and cheaply.
 */
int emsguard_schannel_hold_allows(const struct eg_schannel_hold *h, const SSL *ssl,
    int op, int nid, void *other, unsigned *what)
{
    int role;

    switch (op & SSL_SECOP_OTHER_TYPE) {
    case SSL_SECOP_OTHER_CIPHER: {
        const SSL_CIPHER *c = other;

        /* In the policy's lists, or of a kind (TLS 1.3 or not) it leaves alone. */
        if (c == NULL || (!h->tls12_held && !h->tls13_held)
            || has_u16(h->ciphers, h->n_ciphers, SSL_CIPHER_get_protocol_id(c))
            || (is_tls13_suite(c) ? !h->tls13_held : !h->tls12_held))
            return 1;
        *what = EG_HELD_SUITES;
        return 0;
    }
    case SSL_SECOP_OTHER_CURVE: {
        const unsigned char *g = other;

        if (h->n_groups == 0 || g == NULL)
            return 1;
        role = SSL_is_server(ssl) ? EG_ROLE_SERVER : EG_ROLE_CLIENT;

        /*
         * CURVE_CHECK also vets a certificate's curve.  libssl compares that
         * with the configured groups on the client side only (t1_lib.c
         * tls1_check_group_id, check_own_groups = !s->server), so only the
         * client's check is held to the policy's groups, as at enable.
         */
        if (((op & ~SSL_SECOP_PEER) == SSL_SECOP_CURVE_CHECK && role == EG_ROLE_SERVER)
            || has_u16(h->groups, h->n_groups, (uint16_t)(g[0] << 8 | g[1])))
            return 1;
        *what = EG_HELD_GROUPS;
        return 0;
    }
    case SSL_SECOP_OTHER_PKEY:
        /* The server's own DH group (statem_srvr.c, ServerKeyExchange). */
        if (op == SSL_SECOP_TMP_DH && h->server_dh_min > 0 && SSL_is_server(ssl)
            && other != NULL && (uint32_t)EVP_PKEY_get_bits(other) < h->server_dh_min) {
            *what = EG_HELD_DH;
            return 0;
        }
        return 1;
    case SSL_SECOP_OTHER_NONE:
        if (op == SSL_SECOP_VERSION) {
            int dtls = SSL_is_dtls(ssl);
            const struct eg_hold_range *r;

            role = SSL_is_server(ssl) ? EG_ROLE_SERVER : EG_ROLE_CLIENT;
            r = dtls ? &h->role[role].dtls : &h->role[role].tls;

            /*
             * libssl's check at state machine start is of the method's
             * nominal version, before any is negotiated (statem.c).
             */
            if (!r->touched || SSL_get_state(ssl) == TLS_ST_BEFORE)
                return 1;
            if (r->min != 0 && version_rank(nid, dtls) >= version_rank(r->min, dtls)
                && version_rank(nid, dtls) <= version_rank(r->max, dtls))
                return 1;
            *what = EG_HELD_LATE_VERSION;
            return 0;
        }
        return 1;
    default:
        return 1;
    }
}

int emsguard_schannel_hold_session_fresh(const struct eg_schannel_hold *h,
    const SSL_SESSION *sess)
{
    time_t now, made;

    if (h->server_lifetime <= 0)
        return 1;
    made = emsguard_session_time(sess);
    now = time(NULL);
    /* A session from the future (clock skew between fleet members) is judged as new. */
    return now <= made || now - made <= (time_t)h->server_lifetime;
}

int emsguard_schannel_hold_session_ok(const struct eg_schannel_hold *h, const SSL *ssl,
    const SSL_SESSION *sess)
{
    const SSL_CIPHER *c = SSL_SESSION_get0_cipher(sess);
    int dtls = SSL_is_dtls(ssl), v = SSL_SESSION_get_protocol_version(sess);
    const struct eg_hold_range *r = dtls ? &h->role[EG_ROLE_SERVER].dtls
                                         : &h->role[EG_ROLE_SERVER].tls;
    unsigned what = 0;

    /*
     * libssl resumes a TLS <= 1.2 session with its own suite, checked only
     * against the client's list (statem_srvr.c tls_early_post_process_client_hello):
     * no security callback question, so the policy's suites are asked here.
     * A suite libssl could not name is not one the policy allows.
     */
    if (h->tls12_held && (c == NULL
            || !emsguard_schannel_hold_allows(h, ssl, SSL_SECOP_CIPHER_SHARED, 0,
                (void *)c, &what)))
        return 0;
    if (r->touched && (r->min == 0 || version_rank(v, dtls) < version_rank(r->min, dtls)
            || version_rank(v, dtls) > version_rank(r->max, dtls)))
        return 0;
    return emsguard_schannel_hold_session_fresh(h, sess);
}

/* Appends |name| to the growing ':'-list in |buf|; 0 if it does not fit. */
static int append_name(char *buf, size_t len, size_t *used, const char *name)
{
    int n = snprintf(buf + *used, len - *used, "%s%s", *used > 0 ? ":" : "", name);

    if (n < 0 || (size_t)n >= len - *used)
        return 0;
    *used += (size_t)n;
    return 1;
}

int emsguard_schannel_hold_suites(const struct eg_schannel_hold *h,
    const EMSGUARD_POLICY *policy, SSL *ssl)
{
    STACK_OF(SSL_CIPHER) *sk = SSL_get_ciphers(ssl);
    size_t len = 64 * (size_t)sk_SSL_CIPHER_num(sk) + 1, used12 = 0, used13 = 0;
    char *tls12 = OPENSSL_zalloc(len), *tls13 = OPENSSL_zalloc(len);
    struct eg_role_cfg c;
    int i, ok = 0;

    if (tls12 == NULL || tls13 == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot allocate the connection's suite lists");
        goto end;
    }
    /* The SSL's list (the application's), in its order, minus what the policy leaves out. */
    for (i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
        const SSL_CIPHER *s = sk_SSL_CIPHER_value(sk, i);
        int tls13_suite = is_tls13_suite(s);

        if ((tls13_suite ? h->tls13_held : h->tls12_held)
            && !has_u16(h->ciphers, h->n_ciphers, SSL_CIPHER_get_protocol_id(s)))
            continue;
        if (!append_name(tls13_suite ? tls13 : tls12, len, tls13_suite ? &used13 : &used12,
                SSL_CIPHER_get_name(s))) {
            emsguard_raise(EMSGUARD_R_OUT_OF_RANGE, "the connection's suite list is too long");
            goto end;
        }
    }
    if (h->tls12_held) {
        if (used12 > 0) {
            if (!SSL_set_cipher_list(ssl, tls12)) {
                refused("the connection's cipher list", tls12);
                goto end;
            }
        } else if (SSL_is_dtls(ssl)) {
            emsguard_schannel_no_version(ssl);
        } else {
            /* No TLS <= 1.2 suite left: TLS 1.3 or nothing. */
            SSL_set_min_proto_version(ssl, TLS1_3_VERSION);
        }
    }
    /* An empty TLS 1.3 list is allowed: TLS 1.3 then has no suite. */
    if (h->tls13_held && !SSL_set_ciphersuites(ssl, tls13)) {
        refused("the connection's TLS 1.3 cipher suites", tls13);
        goto end;
    }
    /* Groups: the policy's (no cheap way to read the SSL's back in 3.0). */
    emsguard_schannel_role_config(policy, EG_ROLE_SERVER, &c);
    if (c.groups != NULL && !SSL_set1_groups_list(ssl, c.groups)) {
        refused("the groups", c.groups);
        goto end;
    }
    ok = 1;
end:
    OPENSSL_free(tls12);
    OPENSSL_free(tls13);
    return ok;
}
