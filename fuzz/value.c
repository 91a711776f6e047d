/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the policy value parser.  openssl.cnf keys, provider
 * parameters and EMSGUARD_POLICY_set() all end in emsguard_parse_value() /
 * emsguard_policy_store(), which for Functions and EccCurves also runs the
 * name translation of policy_names.c.
 *
 * Input: lines, each one operation on the same policy.
 *   first byte < 0x80: key index (mod EG_KEY_COUNT); the rest is the value
 *   first byte >= 0x80: "name=value" through EMSGUARD_POLICY_set() (name
 *                       lookup, unknown-key suggestion)
 *
 * Besides memory safety it checks what the API promises: a failure raises an
 * error, a failed store leaves the values alone, a stored DWORD prints and
 * parses back to itself, and every suite or curve OpenSSL knows that a list
 * names is in the translated list.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include "oracles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void by_index(EMSGUARD_POLICY *policy, eg_key key, const char *text,
    uint32_t line)
{
    EMSGUARD_POLICY before = *policy;
    uint32_t v = 0, back = 0;
    int parsed, stored;
    char buf[EG_STRING_MAX];

    ERR_clear_error();
    parsed = emsguard_parse_value(key, text, &v, "fuzz.cnf: ");
    FUZZ_CHECK(parsed || ERR_peek_error() != 0, "parse_value failed without an error");
    ERR_clear_error();
    stored = emsguard_policy_store(policy, key, text, EG_SRC_CONF, "fuzz.cnf", line,
        "fuzz.cnf: ");
    if (!stored) {
        FUZZ_CHECK(ERR_peek_error() != 0, "policy_store failed without an error");
        FUZZ_CHECK(fuzz_same_values(policy, &before), "a failed store of key %d changed the policy",
            (int)key);
        FUZZ_CHECK(emsguard_key_is_text(key) || !parsed,
            "key %d: value '%s' parses but does not store", (int)key, text);
        return;
    }
    if (emsguard_key_is_text(key))
        return;
    FUZZ_CHECK(parsed, "key %d: value '%s' stores but does not parse", (int)key, text);
    FUZZ_CHECK(policy->values[key] == v, "key %d: stored %lu, parsed %lu", (int)key,
        (unsigned long)policy->values[key], (unsigned long)v);
    /* The text form a report prints must read back as the same value. */
    FUZZ_CHECK(emsguard_policy_value_text(policy, key, buf, sizeof(buf)), "value_text failed");
    FUZZ_CHECK(emsguard_parse_value(key, buf, &back, NULL) && back == v,
        "key %d: '%s' stored as %lu prints as '%s', which reads back as %lu",
        (int)key, text, (unsigned long)v, buf, (unsigned long)back);
}

static void by_name(EMSGUARD_POLICY *policy, char *rec)
{
    EMSGUARD_POLICY before = *policy;
    char *eq = strchr(rec, '=');
    const char *value = "";
    int key, ok;

    if (eq != NULL) {
        *eq = '\0';
        value = eq + 1;
    }
    key = emsguard_key_lookup(rec);
    if (key >= 0)
        FUZZ_CHECK(emsguard_key_lookup_nocase(rec) >= 0, "'%s' found exactly, not ignoring case", rec);
    (void)emsguard_key_is_group(rec);
    ERR_clear_error();
    ok = EMSGUARD_POLICY_set(policy, rec, value);
    if (!ok) {
        FUZZ_CHECK(ERR_peek_error() != 0, "EMSGUARD_POLICY_set failed without an error");
        FUZZ_CHECK(fuzz_same_values(policy, &before), "a failed EMSGUARD_POLICY_set changed the policy");
    } else {
        char buf[EG_STRING_MAX];

        FUZZ_CHECK(key >= 0, "EMSGUARD_POLICY_set accepted unknown key '%s'", rec);
        FUZZ_CHECK(EMSGUARD_POLICY_get_text(policy, rec, buf, sizeof(buf)), "get_text failed");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    EMSGUARD_POLICY *policy = EMSGUARD_POLICY_new();
    char *copy = malloc(size + 1), *rec, *next;
    uint32_t line = 0;

    if (policy == NULL || copy == NULL)
        abort();
    memcpy(copy, data, size);
    copy[size] = '\0';
    for (rec = copy; rec != NULL && rec < copy + size; rec = next) {
        unsigned char op = (unsigned char)rec[0];

        next = strchr(rec, '\n');
        if (next != NULL)
            *next++ = '\0';
        line++;
        if (op == '\0')
            continue;
        if (op < 0x80)
            by_index(policy, (eg_key)(op % EG_KEY_COUNT), rec + 1, line);
        else
            by_name(policy, rec + 1);
        fuzz_check_lists(policy);
    }
    /* The report paths over whatever the policy now holds. */
    {
        char buf[EG_STRING_MAX];
        int k;

        for (k = 0; k < EG_KEY_COUNT; k++)
            FUZZ_CHECK(emsguard_policy_value_text(policy, (eg_key)k, buf, sizeof(buf)),
                "value_text of key %d does not fit", k);
        (void)emsguard_schannel_any(policy);
        (void)emsguard_schannel_roles_differ(policy);
        (void)strlen(EMSGUARD_POLICY_get0_warnings(policy));
    }
    ERR_clear_error();
    free(copy);
    EMSGUARD_POLICY_free(policy);
    return 0;
}
