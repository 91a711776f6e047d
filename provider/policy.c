/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy object: storing a value with where it came from, comparing
 * and copying policies, and the public EMSGUARD_POLICY_* API.  The keys and
 * their parsing are policy_keys.c's, the translation of Functions and
 * EccCurves policy_names.c's, the rules that decide policy_rules.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "internal.h"

static uint8_t file_index(EMSGUARD_POLICY *policy, const char *file)
{
    uint8_t i;

    if (file == NULL)
        return 0;
    for (i = 0; i < EG_MAX_FILES; i++) {
        if (policy->files[i][0] == '\0') {
            snprintf(policy->files[i], sizeof(policy->files[i]), "%s", file);
            return i;
        }
        if (strncmp(policy->files[i], file, sizeof(policy->files[i]) - 1) == 0)
            return i;
    }
    return EG_MAX_FILES - 1; /* more files than we track: last slot */
}

static void record(EMSGUARD_POLICY *policy, eg_key key, eg_source_kind kind,
    const char *file, uint32_t line)
{
    policy->set[key] = 1;
    policy->source[key].kind = (uint8_t)kind;
    policy->source[key].file = file_index(policy, file);
    policy->source[key].line = line;
}

void emsguard_policy_note_section(EMSGUARD_POLICY *policy, eg_key key,
    const char *section)
{
    size_t i;

    for (i = 0; i < EG_MAX_SECTIONS; i++) {
        if (policy->sections[i][0] == '\0')
            snprintf(policy->sections[i], sizeof(policy->sections[i]), "%s", section);
        if (strncmp(policy->sections[i], section, sizeof(policy->sections[i]) - 1) == 0)
            break;
    }
    policy->source[key].section = (uint8_t)(i < EG_MAX_SECTIONS ? i : EG_MAX_SECTIONS - 1);
}

static char *text_slot(EMSGUARD_POLICY *policy, eg_key key)
{
    return key == EG_KEY_FUNCTIONS ? policy->functions
        : key == EG_KEY_ECC_CURVES ? policy->ecc_curves
                                   : NULL;
}

int emsguard_policy_store(EMSGUARD_POLICY *policy, eg_key key,
    const char *text, eg_source_kind kind, const char *file, uint32_t line,
    const char *where)
{
    uint32_t v;

    if (text == NULL)
        text = "";
    if (emsguard_key_is_text(key)) {
        char *slot = text_slot(policy, key);
        char saved[EG_STRING_MAX];
        int ok;

        if (strlen(text) >= EG_STRING_MAX) {
            emsguard_raise(EMSGUARD_R_OUT_OF_RANGE,
                "%skey '%s': value is longer than %d characters",
                where != NULL ? where : "", emsguard_key_name(key), EG_STRING_MAX - 1);
            return 0;
        }
        size_t warned = strlen(policy->warnings);

        memcpy(saved, slot, EG_STRING_MAX);
        snprintf(slot, EG_STRING_MAX, "%s", text);
        ok = key == EG_KEY_FUNCTIONS
            ? emsguard_policy_translate_functions(policy, where)
            : emsguard_policy_translate_curves(policy, where);
        if (!ok) {
            /* Unchanged on error: the text and any warnings it produced. */
            memcpy(slot, saved, EG_STRING_MAX);
            policy->warnings[warned] = '\0';
            return 0;
        }
        record(policy, key, kind, file, line);
        return 1;
    }
    if (!emsguard_parse_value(key, text, &v, where))
        return 0;
    policy->values[key] = v;
    record(policy, key, kind, file, line);
    return 1;
}

int emsguard_policy_store_dword(EMSGUARD_POLICY *policy, eg_key key,
    uint32_t value, eg_source_kind kind, const char *file, uint32_t line,
    const char *where)
{
    if (!emsguard_key_check_dword(key, value, where))
        return 0;
    policy->values[key] = value;
    record(policy, key, kind, file, line);
    return 1;
}

void emsguard_policy_unset(EMSGUARD_POLICY *policy, eg_key key)
{
    char *slot = text_slot(policy, key);

    policy->values[key] = emsguard_key_default(key);
    policy->set[key] = 0;
    memset(&policy->source[key], 0, sizeof(policy->source[key]));
    if (slot != NULL) {
        slot[0] = '\0';
        if (key == EG_KEY_FUNCTIONS) {
            policy->tls12_ciphers[0] = '\0';
            policy->tls13_suites[0] = '\0';
        } else {
            policy->groups[0] = '\0';
        }
    }
}

int emsguard_policy_equal(const EMSGUARD_POLICY *a, const EMSGUARD_POLICY *b)
{
    int k;

    /* For the non-optional keys "set" is only provenance. */
    for (k = 0; k < EG_KEY_COUNT; k++)
        if (a->values[k] != b->values[k]
            || (emsguard_key_is_optional((eg_key)k) && a->set[k] != b->set[k]))
            return 0;
    return strcmp(a->functions, b->functions) == 0
        && strcmp(a->ecc_curves, b->ecc_curves) == 0;
}

void emsguard_policy_defaults(EMSGUARD_POLICY *policy)
{
    int i;

    memset(policy, 0, sizeof(*policy));
    for (i = 0; i < EG_KEY_COUNT; i++)
        policy->values[i] = emsguard_key_default((eg_key)i);
}


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

    if (key < 0)
        return 0;
    if (value == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_POLICY_set: value for '%s' is NULL", name);
        return 0;
    }
    return emsguard_policy_store(policy, (eg_key)key, value, EG_SRC_API, NULL, 0, NULL);
}

int EMSGUARD_POLICY_set_dword(EMSGUARD_POLICY *policy, const char *name,
    uint32_t value)
{
    int key = lookup_or_raise(policy, name, "EMSGUARD_POLICY_set_dword");

    if (key < 0)
        return 0;
    if (!emsguard_key_is_dword((eg_key)key)) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT,
            "key '%s' is not a DWORD; use EMSGUARD_POLICY_set() with %s",
            name, emsguard_key_accepted((eg_key)key));
        return 0;
    }
    if (!emsguard_key_value_ok((eg_key)key, value)) {
        emsguard_raise(EMSGUARD_R_OUT_OF_RANGE,
            "key '%s': value '%lu' is out of range; accepted: %s", name,
            (unsigned long)value, emsguard_key_accepted((eg_key)key));
        return 0;
    }
    policy->values[key] = value;
    record(policy, (eg_key)key, EG_SRC_API, NULL, 0);
    return 1;
}

int EMSGUARD_POLICY_get_dword(const EMSGUARD_POLICY *policy, const char *name,
    uint32_t *value)
{
    int key = lookup_or_raise(policy, name, "EMSGUARD_POLICY_get_dword");

    if (key < 0)
        return 0;
    if (!emsguard_key_is_dword((eg_key)key)) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT,
            "key '%s' is not a DWORD; use EMSGUARD_POLICY_get_text()", name);
        return 0;
    }
    if (value == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_POLICY_get_dword: value is NULL");
        return 0;
    }
    if (emsguard_key_is_optional((eg_key)key) && !policy->set[key]) {
        emsguard_raise(EMSGUARD_R_NOT_SET,
            "key '%s' is not set: OpenSSL's own default applies", name);
        return 0;
    }
    *value = policy->values[key];
    return 1;
}

int EMSGUARD_POLICY_get_text(const EMSGUARD_POLICY *policy, const char *name,
    char *buf, size_t buflen)
{
    int key = lookup_or_raise(policy, name, "EMSGUARD_POLICY_get_text");

    if (key < 0)
        return 0;
    if (buf == NULL || buflen == 0) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_POLICY_get_text: no buffer");
        return 0;
    }
    if (!emsguard_policy_value_text(policy, (eg_key)key, buf, buflen)) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_POLICY_get_text: buffer too small");
        return 0;
    }
    return 1;
}

const char *EMSGUARD_POLICY_get0_warnings(const EMSGUARD_POLICY *policy)
{
    return policy != NULL ? policy->warnings : "";
}
