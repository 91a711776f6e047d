/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the Schannel values mean in OpenSSL terms, per role: the protocol
 * range, options, cipher and TLS 1.3 suite lists and groups one role gets
 * (struct eg_role_cfg), computed from the policy without touching OpenSSL.
 * schannel_apply.c puts them on an SSL_CTX or SSL, schannel_hold.c keeps
 * them there.
 *
 * Every mapping is a restriction or a choice among what OpenSSL already
 * offers: emsguard never adds a cipher, protocol or curve that OpenSSL's own
 * configuration left out.  An unset value leaves OpenSSL's setting alone.
 * The table of what maps to what is in the README ("Schannel registry
 * values and their OpenSSL meaning").
 */
#include <stdio.h>
#include <string.h>
#include <openssl/ssl.h>
#include "internal.h"

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
    if (disabled(p, enabled) || (emsguard_policy_is_set(p, dbd) && p->values[dbd] != 0))
        return -1;
    if (emsguard_policy_is_set(p, enabled) || emsguard_policy_is_set(p, dbd))
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
        if (disabled(p, map[i].key) && !emsguard_list_has(buf, map[i].exclude))
            emsguard_list_append(buf, len, ":", map[i].exclude);
}

/* TLS 1.3 suites minus the ones a disabled AES size removes. */
static void tls13_suites(const EMSGUARD_POLICY *p, char *buf, size_t len,
    int *touched)
{
    const char *base = p->tls13_suites[0] != '\0' || emsguard_policy_is_set(p, EG_KEY_FUNCTIONS)
        ? p->tls13_suites
        : "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";
    char item[64];
    const char *s = base;

    *touched = emsguard_policy_is_set(p, EG_KEY_FUNCTIONS) || disabled(p, EG_KEY_C_AES128)
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
        emsguard_list_append(buf, len, ":", item);
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
        if (emsguard_policy_is_set(p, EG_KEY_FUNCTIONS))
            c->opts_set |= SSL_OP_CIPHER_SERVER_PREFERENCE;
        if (emsguard_policy_is_set(p, EG_KEY_INSECURE_RENEGO_CLIENTS)) {
            if (p->values[EG_KEY_INSECURE_RENEGO_CLIENTS])
                c->opts_set |= SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION;
            else
                c->opts_clear |= SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION;
        }
        if (emsguard_policy_is_set(p, EG_KEY_DISABLE_RENEGO_SERVER)) {
            if (p->values[EG_KEY_DISABLE_RENEGO_SERVER])
                c->opts_set |= SSL_OP_NO_RENEGOTIATION;
            else
                c->opts_clear |= SSL_OP_NO_RENEGOTIATION;
        }
    } else {
        if (emsguard_policy_is_set(p, EG_KEY_INSECURE_RENEGO_SERVERS)) {
            uint64_t o = SSL_OP_LEGACY_SERVER_CONNECT | SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION;

            if (p->values[EG_KEY_INSECURE_RENEGO_SERVERS])
                c->opts_set |= o;
            else
                c->opts_clear |= o;
        }
        if (emsguard_policy_is_set(p, EG_KEY_DISABLE_RENEGO_CLIENT)) {
            if (p->values[EG_KEY_DISABLE_RENEGO_CLIENT])
                c->opts_set |= SSL_OP_NO_RENEGOTIATION;
            else
                c->opts_clear |= SSL_OP_NO_RENEGOTIATION;
        }
    }
    exclusions(p, excl, sizeof(excl));
    if (emsguard_policy_is_set(p, EG_KEY_FUNCTIONS) || excl[0] != '\0') {
        snprintf(c->ciphers, sizeof(c->ciphers), "%s",
            emsguard_policy_is_set(p, EG_KEY_FUNCTIONS) ? p->tls12_ciphers : "DEFAULT");
        if (excl[0] != '\0')
            emsguard_list_append(c->ciphers, sizeof(c->ciphers), ":", excl);
    }
    tls13_suites(p, c->suites, sizeof(c->suites), &c->suites_touched);
    c->groups = emsguard_policy_is_set(p, EG_KEY_ECC_CURVES) ? p->groups : NULL;
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

uint32_t emsguard_schannel_min_bits(const EMSGUARD_POLICY *p, eg_key key)
{
    return p->set[key] ? p->values[key] : 0;
}


/* True when |role|'s version range leaves TLS 1.3 in (untouched: OpenSSL's own). */
static int tls13_in_range(const struct eg_role_cfg *c)
{
    return !c->versions_touched || (c->min_version != 0 && c->max_version == TLS1_3_VERSION);
}

void emsguard_schannel_tls13_off(const EMSGUARD_POLICY *p, char *buf, size_t len)
{
    struct eg_role_cfg s, c;
    int server, client;

    buf[0] = '\0';
    emsguard_schannel_role_config(p, EG_ROLE_SERVER, &s);
    emsguard_schannel_role_config(p, EG_ROLE_CLIENT, &c);
    /* The suites are the same for both roles; the ranges may differ. */
    if (!s.suites_touched || s.suites[0] != '\0')
        return;
    server = tls13_in_range(&s);
    client = tls13_in_range(&c);
    if (!server && !client)
        return;
    snprintf(buf, len,
        "TLS 1.3 is now off for the %s: %s, and OpenSSL negotiates no TLS 1.3 without "
        "one; list TLS_AES_256_GCM_SHA384 or TLS_AES_128_GCM_SHA256 in Functions, or "
        "switch TLS 1.3 off explicitly (Protocols\\TLS 1.3\\...\\Enabled=0)",
        server && client ? "server and client roles" : server ? "server role" : "client role",
        p->tls13_suites[0] == '\0'
            ? "the cipher suite order (Functions) lists no TLS 1.3 suite (TLS_AES_*, "
              "TLS_CHACHA20_*), as lists written before TLS 1.3 do"
            : "Ciphers\\AES 128/128 and AES 256/256 Enabled=0 remove every TLS 1.3 suite "
              "the cipher suite order (Functions) lists");
}
