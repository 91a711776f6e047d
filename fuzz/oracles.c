/* SPDX-License-Identifier: Apache-2.0 */
/* Checks shared by the fuzz targets (see oracles.h). */
#include <string.h>
#include <strings.h>
#include <openssl/err.h>
#include "oracles.h"
#include "suite_names.h"

int fuzz_verbose(void)
{
    static int v = -1;

    if (v < 0)
        v = getenv("FUZZ_VERBOSE") != NULL;
    return v;
}

int fuzz_same_values(const EMSGUARD_POLICY *a, const EMSGUARD_POLICY *b)
{
    return memcmp(a->values, b->values, sizeof(a->values)) == 0
        && memcmp(a->set, b->set, sizeof(a->set)) == 0
        && memcmp(a->source, b->source, sizeof(a->source)) == 0
        && strcmp(a->functions, b->functions) == 0
        && strcmp(a->ecc_curves, b->ecc_curves) == 0
        && strcmp(a->tls12_ciphers, b->tls12_ciphers) == 0
        && strcmp(a->tls13_suites, b->tls13_suites) == 0
        && strcmp(a->groups, b->groups) == 0;
}

/* True if |list| (':'-separated) has |item| as a whole element. */
static int has_element(const char *list, const char *item)
{
    size_t n = strlen(item);
    const char *p = list;

    while ((p = strstr(p, item)) != NULL) {
        if ((p == list || p[-1] == ':') && (p[n] == '\0' || p[n] == ':'))
            return 1;
        p++;
    }
    return 0;
}

/*
 * The next item of a comma list, trimmed of blanks (the documented list
 * syntax).  Returns 0 at the end; *skip is set for items too long to be a
 * name, which the library may cut.
 */
static int next_item(const char **p, char *item, size_t len, int *skip)
{
    const char *s = *p, *e;

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
    *skip = (size_t)(e - s) >= len;
    if (!*skip) {
        memcpy(item, s, (size_t)(e - s));
        item[e - s] = '\0';
    }
    return 1;
}

static const struct suite_name *find_suite(const char *iana)
{
    size_t i;

    for (i = 0; i < sizeof(suite_names) / sizeof(suite_names[0]); i++)
        if (strcasecmp(suite_names[i].iana, iana) == 0)
            return &suite_names[i];
    return NULL;
}

static void check_functions(const EMSGUARD_POLICY *p)
{
    const char *s = p->functions;
    char item[100];
    int skip;

    while (next_item(&s, item, sizeof(item), &skip)) {
        const struct suite_name *sn;
        size_t len = strlen(item);

        if (skip)
            continue;
        /* Windows 7's per-curve names: TLS_ECDHE_..._P256. */
        if ((sn = find_suite(item)) == NULL && len > 5 && item[len - 5] == '_'
            && item[len - 4] == 'P') {
            item[len - 5] = '\0';
            sn = find_suite(item);
        }
        if (sn == NULL)
            continue;
        FUZZ_CHECK(has_element(sn->tls13 ? p->tls13_suites : p->tls12_ciphers, sn->openssl),
            "Functions '%s' lists %s, but the %s list '%s' lacks %s", p->functions,
            sn->iana, sn->tls13 ? "TLS 1.3" : "TLS 1.2",
            sn->tls13 ? p->tls13_suites : p->tls12_ciphers, sn->openssl);
    }
}

static void check_curves(const EMSGUARD_POLICY *p)
{
    static const char *const known[][2] = {
        { "curve25519", "X25519" }, { "curve448", "X448" }, { "NistP256", "P-256" },
        { "NistP384", "P-384" }, { "NistP521", "P-521" }, { "secP256r1", "P-256" },
        { "secP384r1", "P-384" }, { "secP521r1", "P-521" },
    };
    const char *s = p->ecc_curves;
    char item[64];
    size_t i;
    int skip;

    while (next_item(&s, item, sizeof(item), &skip)) {
        if (skip)
            continue;
        for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            if (strcasecmp(item, known[i][0]) == 0)
                FUZZ_CHECK(has_element(p->groups, known[i][1]),
                    "EccCurves '%s' names %s, but the groups '%s' lack %s",
                    p->ecc_curves, item, p->groups, known[i][1]);
    }
}

void fuzz_check_lists(const EMSGUARD_POLICY *policy)
{
    check_functions(policy);
    check_curves(policy);
}

const EMSGUARD_POLICY *fuzz_base_policy(void)
{
    static EMSGUARD_POLICY base;
    static int made;
    static const char *const settings[][2] = {
        { "AllowLegacyResumption", "1" },
        { "EventLogging", "0" },
        { "Functions", "TLS_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" },
        { "EccCurves", "NistP256,curve25519" },
        { "Protocols\\TLS 1.0\\Server\\Enabled", "0" },
        { "Protocols\\TLS 1.2\\Client\\DisabledByDefault", "0" },
        { "Ciphers\\RC4 128/128\\Enabled", "0" },
        { "Hashes\\MD5\\Enabled", "0" },
        { "KeyExchangeAlgorithms\\Diffie-Hellman\\ServerMinKeyBitLength", "2048" },
        { "ServerCacheTime", "36000000" },
    };
    size_t i;

    if (!made) {
        emsguard_policy_defaults(&base);
        for (i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
            if (!EMSGUARD_POLICY_set(&base, settings[i][0], settings[i][1]))
                FUZZ_CHECK(0, "base policy: cannot set %s", settings[i][0]);
        made = 1;
    }
    return &base;
}

int fuzz_reg_apply_checked(const unsigned char *buf, size_t len,
    EMSGUARD_POLICY *out)
{
    EMSGUARD_POLICY again;
    int ok, raised;

    *out = *fuzz_base_policy();
    ERR_clear_error();
    ok = emsguard_reg_apply(out, buf, len, "fuzz.reg");
    raised = ERR_peek_error() != 0;
    if (fuzz_verbose()) {
        fprintf(stderr, "emsguard_reg_apply: %s\n%s", ok ? "ok" : "failed",
            ok ? EMSGUARD_POLICY_get0_warnings(out) : "");
        ERR_print_errors_fp(stderr);
    }
    if (!ok) {
        FUZZ_CHECK(raised, "emsguard_reg_apply failed without an error");
        FUZZ_CHECK(memcmp(out, fuzz_base_policy(), sizeof(*out)) == 0,
            "a failed emsguard_reg_apply changed the policy");
        ERR_clear_error();
        return 0;
    }
    fuzz_check_lists(out);
    /* Each key ends as the file's last word on it: a second pass agrees. */
    again = *out;
    FUZZ_CHECK(emsguard_reg_apply(&again, buf, len, "fuzz.reg"),
        "the file applies once but not twice");
    FUZZ_CHECK(emsguard_policy_equal(out, &again) && fuzz_same_values(out, &again),
        "applying the file twice gives another policy than once");
    ERR_clear_error();
    return 1;
}
