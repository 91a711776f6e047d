/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy's keys: their registry and openssl.cnf spellings, the values
 * each accepts, and parsing and printing one value.  One table, so that a
 * key's name, default and range are written once; every configuration
 * source (openssl.cnf, .reg, the API, the provider's parameters) parses
 * through it.  Parsing is strict on purpose: a value we do not understand
 * fails loading instead of quietly meaning something else.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "internal.h"


typedef enum {
    EG_T_DWORD = 0, /* 0..max */
    EG_T_ENABLED, /* Schannel "Enabled": 0, or 1 / 0xffffffff */
    EG_T_LOG_TARGET,
    EG_T_TEXT /* free text, translated by policy_names.c */
} eg_type;

struct key_info {
    const char *name; /* registry spelling, relative to its subtree */
    uint32_t def;
    uint32_t max; /* DWORD keys accept 0..max */
    const char *accepted; /* human-readable range, for error messages */
    uint8_t type; /* eg_type */
    uint8_t optional; /* unset means OpenSSL's own default */
};

#define BOOL01 "0 or 1"
#define ENABLED_FORMS "0 (disabled), 1 or 0xffffffff (enabled)"
#define KEY_BOOL(n) { n, 0, 1, BOOL01, EG_T_DWORD, 1 }
#define KEY_ENABLED(n) { n, 1, UINT32_MAX, ENABLED_FORMS, EG_T_ENABLED, 1 }
#define KEY_BITS(n) { n, 0, 16384, "0 to 16384 (bits)", EG_T_DWORD, 1 }

static const struct key_info keys[EG_KEY_COUNT] = {
    [EG_KEY_DISABLE_SERVER_EMS] = { EMSGUARD_DISABLE_SERVER_EMS, 0, 1, BOOL01, EG_T_DWORD, 0 },
    [EG_KEY_DISABLE_CLIENT_EMS] = { EMSGUARD_DISABLE_CLIENT_EMS, 0, 1, BOOL01, EG_T_DWORD, 0 },
    [EG_KEY_ALLOW_LEGACY_RESUMPTION] = { EMSGUARD_ALLOW_LEGACY_RESUMPTION, 0, 1, BOOL01, EG_T_DWORD, 0 },
    [EG_KEY_EVENT_LOGGING] = { EMSGUARD_EVENT_LOGGING, EMSGUARD_LOG_ERRORS, 7,
        "0 to 7 (bitmask: 1 errors, 2 warnings, 4 informational)", EG_T_DWORD, 0 },
    [EG_KEY_LOG_TARGET] = { EMSGUARD_LOG_TARGET, EG_LOG_TO_STDERR, 1, "stderr or syslog",
        EG_T_LOG_TARGET, 0 },
    [EG_KEY_REQUIRE_EMS] = { EMSGUARD_REQUIRE_EMS, 0, 1, BOOL01, EG_T_DWORD, 0 },
    [EG_KEY_DISABLE_DHE_WITHOUT_EMS] = { EMSGUARD_DISABLE_DHE_WITHOUT_EMS, 1, 1, BOOL01,
        EG_T_DWORD, 0 },
    [EG_KEY_CLIENT_CACHE_TIME] = { "ClientCacheTime", 0, UINT32_MAX,
        "0 to 4294967295 (milliseconds; 0 = no client-side session reuse)", EG_T_DWORD, 1 },
    [EG_KEY_SERVER_CACHE_TIME] = { "ServerCacheTime", 0, UINT32_MAX,
        "0 to 4294967295 (milliseconds; 0 = no server-side session reuse)", EG_T_DWORD, 1 },
    [EG_KEY_MAX_CACHE_SIZE] = { "MaximumCacheSize", 0, INT32_MAX,
        "0 to 2147483647 (sessions; 0 = no server session cache)", EG_T_DWORD, 1 },
    [EG_KEY_INSECURE_RENEGO_CLIENTS] = KEY_BOOL("AllowInsecureRenegoClients"),
    [EG_KEY_INSECURE_RENEGO_SERVERS] = KEY_BOOL("AllowInsecureRenegoServers"),
    [EG_KEY_DISABLE_RENEGO_SERVER] = KEY_BOOL("DisableRenegoOnServer"),
    [EG_KEY_DISABLE_RENEGO_CLIENT] = KEY_BOOL("DisableRenegoOnClient"),
    [EG_KEY_FUNCTIONS] = { "Functions", 0, 0,
        "a comma-separated list of IANA cipher suite names", EG_T_TEXT, 1 },
    [EG_KEY_ECC_CURVES] = { "EccCurves", 0, 0,
        "a comma-separated list of curve names (curve25519, NistP256, NistP384, NistP521)",
        EG_T_TEXT, 1 },
#define EG_X_PROTO(id, reg) \
    [EG_KEY_P_##id##_CLIENT_ENABLED] = KEY_ENABLED("Protocols\\" reg "\\Client\\Enabled"), \
    [EG_KEY_P_##id##_CLIENT_DBD] = KEY_BOOL("Protocols\\" reg "\\Client\\DisabledByDefault"), \
    [EG_KEY_P_##id##_SERVER_ENABLED] = KEY_ENABLED("Protocols\\" reg "\\Server\\Enabled"), \
    [EG_KEY_P_##id##_SERVER_DBD] = KEY_BOOL("Protocols\\" reg "\\Server\\DisabledByDefault"),
    EG_PROTOCOLS(EG_X_PROTO)
#undef EG_X_PROTO
#define EG_X_CIPHER(id, reg) [EG_KEY_C_##id] = KEY_ENABLED("Ciphers\\" reg "\\Enabled"),
    EG_CIPHERS(EG_X_CIPHER)
#undef EG_X_CIPHER
#define EG_X_HASH(id, reg) [EG_KEY_H_##id] = KEY_ENABLED("Hashes\\" reg "\\Enabled"),
    EG_HASHES(EG_X_HASH)
#undef EG_X_HASH
#define EG_X_KEX(id, reg) \
    [EG_KEY_K_##id##_ENABLED] = KEY_ENABLED("KeyExchangeAlgorithms\\" reg "\\Enabled"), \
    [EG_KEY_K_##id##_CLIENT_MIN] = KEY_BITS("KeyExchangeAlgorithms\\" reg "\\ClientMinKeyBitLength"), \
    [EG_KEY_K_##id##_SERVER_MIN] = KEY_BITS("KeyExchangeAlgorithms\\" reg "\\ServerMinKeyBitLength"),
    EG_KEXES(EG_X_KEX)
#undef EG_X_KEX
};

#define DWORD_FORMS "decimal, 0x hex, or dword:XXXXXXXX"

const char *emsguard_key_name(eg_key key)
{
    return key < EG_KEY_COUNT ? keys[key].name : NULL;
}

const char *emsguard_key_accepted(eg_key key)
{
    return key < EG_KEY_COUNT ? keys[key].accepted : NULL;
}

int emsguard_key_is_text(eg_key key)
{
    return key < EG_KEY_COUNT && keys[key].type == EG_T_TEXT;
}

int emsguard_key_is_optional(eg_key key)
{
    return key < EG_KEY_COUNT && keys[key].optional;
}


uint32_t emsguard_key_default(eg_key key)
{
    return key < EG_KEY_COUNT ? keys[key].def : 0;
}

int emsguard_key_is_dword(eg_key key)
{
    return key < EG_KEY_COUNT && keys[key].type != EG_T_TEXT
        && keys[key].type != EG_T_LOG_TARGET;
}

int emsguard_key_value_ok(eg_key key, uint32_t v)
{
    return key < EG_KEY_COUNT && v <= keys[key].max
        && !(keys[key].type == EG_T_ENABLED && v > 1 && v != UINT32_MAX);
}

/* openssl.cnf cannot spell '\' or ' ' in a name: '.' and '_' stand in. */
static int conf_char(int c)
{
    return c == '\\' ? '.' : c == ' ' ? '_' : c;
}

static int names_match(const char *key, const char *name, int nocase)
{
    for (; *key != '\0' && *name != '\0'; key++, name++) {
        int a = conf_char((unsigned char)*key), b = conf_char((unsigned char)*name);

        if (nocase) {
            a = tolower(a);
            b = tolower(b);
        }
        if (a != b)
            return 0;
    }
    return *key == '\0' && *name == '\0';
}

static int lookup(const char *name, int nocase)
{
    int i;

    if (name == NULL)
        return -1;
    for (i = 0; i < EG_KEY_COUNT; i++)
        if (names_match(keys[i].name, name, nocase))
            return i;
    return -1;
}

int emsguard_key_lookup(const char *name)
{
    return lookup(name, 0);
}

int emsguard_key_lookup_nocase(const char *name)
{
    return lookup(name, 1);
}

void emsguard_key_conf_name(eg_key key, char *buf, size_t len)
{
    size_t i;
    const char *n = emsguard_key_name(key);

    if (len == 0)
        return;
    for (i = 0; n != NULL && n[i] != '\0' && i + 1 < len; i++)
        buf[i] = (char)conf_char((unsigned char)n[i]);
    buf[i] = '\0';
}

int emsguard_key_is_group(const char *prefix)
{
    size_t plen = strlen(prefix);
    int i;

    for (i = 0; i < EG_KEY_COUNT; i++) {
        char cn[128];

        emsguard_key_conf_name((eg_key)i, cn, sizeof(cn));
        if (strncmp(cn, prefix, plen) == 0 && cn[plen] == '.')
            return 1;
    }
    return 0;
}

/* Case-insensitive edit distance, bounded so long junk costs little. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j;
    size_t row[72];

    if (la >= 72 || lb >= 72)
        return (size_t)-1;
    for (j = 0; j <= lb; j++)
        row[j] = j;
    for (i = 1; i <= la; i++) {
        size_t diag = row[0];

        row[0] = i;
        for (j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower(conf_char((unsigned char)a[i - 1]))
                    == tolower(conf_char((unsigned char)b[j - 1]))
                ? 0
                : 1;
            size_t best = diag + cost;

            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const char *closest_key(const char *name)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    int i;

    for (i = 0; i < EG_KEY_COUNT; i++) {
        size_t d = edit_distance(name, keys[i].name);

        if (d < best_d) {
            best_d = d;
            best = keys[i].name;
        }
    }
    /* Suggest only what is plausibly a typo of a known key. */
    return best_d <= 6 ? best : NULL;
}

void emsguard_raise_unknown_key(const char *where, const char *name)
{
    const char *hint = closest_key(name);

    emsguard_raise(EMSGUARD_R_UNKNOWN_KEY,
        "%sunknown key '%s'%s%s%s; known keys: %s, %s, %s, %s, %s, %s, %s, "
        "and the Schannel values of the README's registry table",
        where != NULL ? where : "", name,
        hint != NULL ? " (did you mean '" : "", hint != NULL ? hint : "",
        hint != NULL ? "'?)" : "",
        keys[0].name, keys[1].name, keys[2].name, keys[3].name, keys[4].name,
        keys[5].name, keys[6].name);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/*
 * Parses a registry DWORD: decimal, 0x hex or dword:hex, 1..8 hex digits.
 * Returns 1, or 0 with *reason set to the EMSGUARD_R_* that explains why.
 */
static int parse_dword(const char *s, uint32_t *out, int *reason)
{
    uint64_t v = 0;
    const char *p = s;
    size_t digits = 0;

    if (*s == '\0') {
        *reason = EMSGUARD_R_EMPTY_VALUE;
        return 0;
    }
    if (strncasecmp(p, "dword:", 6) == 0 || strncasecmp(p, "0x", 2) == 0) {
        p += (tolower((unsigned char)p[0]) == 'd') ? 6 : 2;
        for (; hexval((unsigned char)*p) >= 0; p++, digits++)
            if (digits < 8)
                v = v * 16 + (uint64_t)hexval((unsigned char)*p);
        if (digits == 0) {
            *reason = EMSGUARD_R_BAD_VALUE;
            return 0;
        }
        if (digits > 8) {
            *reason = EMSGUARD_R_OUT_OF_RANGE;
            return 0;
        }
    } else {
        if (!isdigit((unsigned char)*p)) {
            *reason = EMSGUARD_R_BAD_VALUE;
            return 0;
        }
        for (; isdigit((unsigned char)*p); p++) {
            v = v * 10 + (uint64_t)(*p - '0');
            if (v > UINT32_MAX) {
                *reason = EMSGUARD_R_OUT_OF_RANGE;
                return 0;
            }
        }
    }
    if (*p != '\0') {
        *reason = EMSGUARD_R_TRAILING_GARBAGE;
        return 0;
    }
    *out = (uint32_t)v;
    return 1;
}

int emsguard_parse_value(eg_key key, const char *text, uint32_t *out,
    const char *where)
{
    const struct key_info *k = &keys[key];
    uint32_t v;
    int reason = 0;

    if (where == NULL)
        where = "";
    if (text == NULL)
        text = "";
    if (k->type == EG_T_TEXT) {
        *out = 0;
        return 1; /* the text itself is stored by emsguard_policy_store */
    }
    if (k->type == EG_T_LOG_TARGET) {
        if (strcmp(text, "stderr") == 0) {
            *out = EG_LOG_TO_STDERR;
            return 1;
        }
        if (strcmp(text, "syslog") == 0) {
            *out = EG_LOG_TO_SYSLOG;
            return 1;
        }
        emsguard_raise(*text == '\0' ? EMSGUARD_R_EMPTY_VALUE : EMSGUARD_R_BAD_VALUE,
            "%skey '%s': value '%s' is not accepted; accepted: %s",
            where, k->name, text, k->accepted);
        return 0;
    }
    if (!parse_dword(text, &v, &reason)) {
        const char *why = reason == EMSGUARD_R_EMPTY_VALUE ? "is empty"
            : reason == EMSGUARD_R_TRAILING_GARBAGE
            ? "has trailing characters after the number"
            : reason == EMSGUARD_R_OUT_OF_RANGE ? "does not fit in a DWORD"
                                                : "is not a number";

        emsguard_raise(reason, "%skey '%s': value '%s' %s; accepted: %s (" DWORD_FORMS ")",
            where, k->name, text, why, k->accepted);
        return 0;
    }
    if (v > k->max || (k->type == EG_T_ENABLED && v > 1 && v != UINT32_MAX)) {
        emsguard_raise(EMSGUARD_R_OUT_OF_RANGE,
            "%skey '%s': value '%s' is out of range; accepted: %s (" DWORD_FORMS ")",
            where, k->name, text, k->accepted);
        return 0;
    }
    *out = v;
    return 1;
}

int emsguard_key_check_dword(eg_key key, uint32_t v, const char *where)
{
    const struct key_info *k = &keys[key];

    if (k->type == EG_T_TEXT || k->type == EG_T_LOG_TARGET) {
        emsguard_raise(EMSGUARD_R_BAD_VALUE,
            "%skey '%s' takes a string, not a DWORD; accepted: %s",
            where != NULL ? where : "", k->name, k->accepted);
        return 0;
    }
    if (v > k->max || (k->type == EG_T_ENABLED && v > 1 && v != UINT32_MAX)) {
        emsguard_raise(EMSGUARD_R_OUT_OF_RANGE,
            "%skey '%s': value 0x%08lx is out of range; accepted: %s",
            where != NULL ? where : "", k->name, (unsigned long)v, k->accepted);
        return 0;
    }
    return 1;
}

int emsguard_policy_value_text(const EMSGUARD_POLICY *policy, eg_key key,
    char *buf, size_t len)
{
    int n;

    if (keys[key].optional && !policy->set[key])
        n = snprintf(buf, len, "%s", "");
    else if (keys[key].type == EG_T_TEXT)
        n = snprintf(buf, len, "%s", key == EG_KEY_FUNCTIONS ? policy->functions
                                                            : policy->ecc_curves);
    else if (keys[key].type == EG_T_LOG_TARGET)
        n = snprintf(buf, len, "%s",
            policy->values[key] == EG_LOG_TO_SYSLOG ? "syslog" : "stderr");
    else if (keys[key].type == EG_T_ENABLED && policy->values[key] == UINT32_MAX)
        n = snprintf(buf, len, "0xffffffff");
    else
        n = snprintf(buf, len, "%lu", (unsigned long)policy->values[key]);
    return n >= 0 && (size_t)n < len;
}
