/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Translating the Schannel names of Functions (IANA cipher suite names) and
 * EccCurves (Windows curve names) into OpenSSL's, when a value is stored.
 * Part of the policy, below the code that applies it: the policy keeps both
 * the text as given and the translation, and a name OpenSSL lacks becomes a
 * warning of the source that named it.  Also the small ':'-list helpers the
 * Schannel mapping shares.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "internal.h"
#include "suite_names.h"

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
int emsguard_list_has(const char *list, const char *item)
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

int emsguard_list_append(char *buf, size_t len, const char *sep, const char *item)
{
    size_t used = strlen(buf);
    int n = snprintf(buf + used, len - used, "%s%s", used > 0 ? sep : "", item);

    return n >= 0 && (size_t)n < len - used;
}

int emsguard_policy_translate_functions(EMSGUARD_POLICY *policy,
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
        if (emsguard_list_has(s->tls13 ? tls13 : tls12, s->openssl))
            continue; /* listed twice (e.g. once per curve suffix) */
        if (!emsguard_list_append(s->tls13 ? tls13 : tls12,
                s->tls13 ? sizeof(tls13) : sizeof(tls12), s->tls13 ? ":" : ":", s->openssl)) {
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

int emsguard_policy_translate_curves(EMSGUARD_POLICY *policy,
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
        if (emsguard_list_has(groups, name))
            continue;
        if (!emsguard_list_append(groups, sizeof(groups), ":", name)) {
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

