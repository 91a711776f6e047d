/*
 * The policy: its keys, how their values are parsed, and the one decision
 * function every hook asks.  Parsing is strict on purpose: a value we do not
 * understand fails loading instead of quietly meaning something else.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "internal.h"

struct key_info {
    const char *name;
    uint32_t def;
    uint32_t max; /* DWORD keys accept 0..max */
    const char *accepted; /* human-readable range, for error messages */
};

static const struct key_info keys[EG_KEY_COUNT] = {
    [EG_KEY_DISABLE_SERVER_EMS] = { EMSGUARD_DISABLE_SERVER_EMS, 0, 1, "0 or 1" },
    [EG_KEY_DISABLE_CLIENT_EMS] = { EMSGUARD_DISABLE_CLIENT_EMS, 0, 1, "0 or 1" },
    [EG_KEY_ALLOW_LEGACY_RESUMPTION] = { EMSGUARD_ALLOW_LEGACY_RESUMPTION, 0, 1, "0 or 1" },
    [EG_KEY_EVENT_LOGGING] = { EMSGUARD_EVENT_LOGGING, EMSGUARD_LOG_ERRORS, 7,
        "0 to 7 (bitmask: 1 errors, 2 warnings, 4 informational)" },
    [EG_KEY_LOG_TARGET] = { EMSGUARD_LOG_TARGET, EG_LOG_TO_STDERR, 1, "stderr or syslog" },
    [EG_KEY_REQUIRE_EMS] = { EMSGUARD_REQUIRE_EMS, 0, 1, "0 or 1" },
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

int emsguard_key_lookup(const char *name)
{
    int i;

    if (name == NULL)
        return -1;
    for (i = 0; i < EG_KEY_COUNT; i++)
        if (strcmp(keys[i].name, name) == 0)
            return i;
    return -1;
}

/* Case-insensitive edit distance, bounded so long junk costs little. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j;
    size_t row[64];

    if (la >= 64 || lb >= 64)
        return (size_t)-1;
    for (j = 0; j <= lb; j++)
        row[j] = j;
    for (i = 1; i <= la; i++) {
        size_t diag = row[0];

        row[0] = i;
        for (j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1])
                    == tolower((unsigned char)b[j - 1])
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
        "%sunknown key '%s'%s%s%s; known keys: %s, %s, %s, %s, %s, %s",
        where != NULL ? where : "", name,
        hint != NULL ? " (did you mean '" : "", hint != NULL ? hint : "",
        hint != NULL ? "'?)" : "",
        keys[0].name, keys[1].name, keys[2].name, keys[3].name, keys[4].name,
        keys[5].name);
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
    if (key == EG_KEY_LOG_TARGET) {
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
    if (v > k->max) {
        emsguard_raise(EMSGUARD_R_OUT_OF_RANGE,
            "%skey '%s': value '%s' is out of range; accepted: %s (" DWORD_FORMS ")",
            where, k->name, text, k->accepted);
        return 0;
    }
    *out = v;
    return 1;
}

void emsguard_policy_defaults(EMSGUARD_POLICY *policy)
{
    int i;

    for (i = 0; i < EG_KEY_COUNT; i++)
        policy->values[i] = keys[i].def;
}

void emsguard_policy_log_weakenings(const EMSGUARD_POLICY *policy,
    const char *source)
{
    if (policy->values[EG_KEY_ALLOW_LEGACY_RESUMPTION])
        emsguard_log(policy, EG_LEVEL_ERROR,
            "%s: AllowLegacyResumption=1: sessions without Extended Master "
            "Secret may be resumed (stock OpenSSL behaviour, CVE-2019-1318 "
            "exposure)", source);
    if (policy->values[EG_KEY_DISABLE_SERVER_EMS])
        emsguard_log(policy, EG_LEVEL_ERROR,
            "%s: DisableServerExtendedMasterSecret=1: the server role neither "
            "offers nor accepts Extended Master Secret", source);
    if (policy->values[EG_KEY_DISABLE_CLIENT_EMS])
        emsguard_log(policy, EG_LEVEL_ERROR,
            "%s: DisableClientExtendedMasterSecret=1: the client role neither "
            "offers nor accepts Extended Master Secret", source);
}

int emsguard_role_uses_ems(const EMSGUARD_POLICY *policy, eg_role role)
{
    eg_key k = role == EG_ROLE_SERVER ? EG_KEY_DISABLE_SERVER_EMS
                                      : EG_KEY_DISABLE_CLIENT_EMS;

    return policy->values[k] == 0;
}

eg_verdict emsguard_resumption_verdict(const EMSGUARD_POLICY *policy,
    eg_role role, int session_ems)
{
    if (session_ems < 0)
        return EG_REFUSE_UNREADABLE;
    if (!emsguard_role_uses_ems(policy, role))
        /*
         * Schannel's legacy mode: this role does no EMS, so an EMS session
         * cannot be resumed consistently; give it a full handshake rather
         * than the abort stock OpenSSL produces.
         */
        return session_ems ? EG_REFUSE_EMS_DISABLED : EG_ALLOW;
    if (!session_ems && !policy->values[EG_KEY_ALLOW_LEGACY_RESUMPTION])
        return EG_REFUSE_NO_EMS;
    return EG_ALLOW;
}

/* ---- public API -------------------------------------------------------- */

EMSGUARD_POLICY *EMSGUARD_POLICY_new(void)
{
    EMSGUARD_POLICY *p = OPENSSL_zalloc(sizeof(*p));

    if (p == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "cannot allocate a policy");
        return NULL;
    }
    emsguard_policy_defaults(p);
    return p;
}

EMSGUARD_POLICY *EMSGUARD_POLICY_dup(const EMSGUARD_POLICY *policy)
{
    EMSGUARD_POLICY *p;

    if (policy == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_POLICY_dup: policy is NULL");
        return NULL;
    }
    if ((p = EMSGUARD_POLICY_new()) != NULL)
        *p = *policy;
    return p;
}

void EMSGUARD_POLICY_free(EMSGUARD_POLICY *policy)
{
    OPENSSL_free(policy);
}

static int lookup_or_raise(const EMSGUARD_POLICY *policy, const char *name,
    const char *func)
{
    int key;

    if (policy == NULL || name == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT, "%s: policy or name is NULL", func);
        return -1;
    }
    if ((key = emsguard_key_lookup(name)) < 0)
        emsguard_raise_unknown_key(NULL, name);
    return key;
}

int EMSGUARD_POLICY_set(EMSGUARD_POLICY *policy, const char *name,
    const char *value)
{
    int key = lookup_or_raise(policy, name, "EMSGUARD_POLICY_set");
    uint32_t v;

    if (key < 0)
        return 0;
    if (value == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_POLICY_set: value for '%s' is NULL", name);
        return 0;
    }
    if (!emsguard_parse_value((eg_key)key, value, &v, NULL))
        return 0;
    policy->values[key] = v;
    return 1;
}

int EMSGUARD_POLICY_set_dword(EMSGUARD_POLICY *policy, const char *name,
    uint32_t value)
{
    int key = lookup_or_raise(policy, name, "EMSGUARD_POLICY_set_dword");

    if (key < 0)
        return 0;
    if (key == EG_KEY_LOG_TARGET) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT,
            "key '%s' is not a DWORD; use EMSGUARD_POLICY_set() with %s",
            name, keys[key].accepted);
        return 0;
    }
    if (value > keys[key].max) {
        emsguard_raise(EMSGUARD_R_OUT_OF_RANGE,
            "key '%s': value '%lu' is out of range; accepted: %s", name,
            (unsigned long)value, keys[key].accepted);
        return 0;
    }
    policy->values[key] = value;
    return 1;
}

int EMSGUARD_POLICY_get_dword(const EMSGUARD_POLICY *policy, const char *name,
    uint32_t *value)
{
    int key = lookup_or_raise(policy, name, "EMSGUARD_POLICY_get_dword");

    if (key < 0)
        return 0;
    if (key == EG_KEY_LOG_TARGET) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT,
            "key '%s' is not a DWORD; use EMSGUARD_POLICY_get_text()", name);
        return 0;
    }
    if (value == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_POLICY_get_dword: value is NULL");
        return 0;
    }
    *value = policy->values[key];
    return 1;
}

int EMSGUARD_POLICY_get_text(const EMSGUARD_POLICY *policy, const char *name,
    char *buf, size_t buflen)
{
    int key = lookup_or_raise(policy, name, "EMSGUARD_POLICY_get_text");
    int n;

    if (key < 0)
        return 0;
    if (buf == NULL || buflen == 0) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_POLICY_get_text: no buffer");
        return 0;
    }
    if (key == EG_KEY_LOG_TARGET)
        n = snprintf(buf, buflen, "%s",
            policy->values[key] == EG_LOG_TO_SYSLOG ? "syslog" : "stderr");
    else
        n = snprintf(buf, buflen, "%lu", (unsigned long)policy->values[key]);
    if (n < 0 || (size_t)n >= buflen) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_POLICY_get_text: buffer too small");
        return 0;
    }
    return 1;
}
