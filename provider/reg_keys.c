/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The [KEY] lines of a .reg file: which registry paths mean anything to
 * OpenSSL (the SCHANNEL subtree and the two cipher suite order lists, the
 * group-policy one and the local one), which policy key a value name under
 * the current key is, and [-KEY] deletions.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "internal.h"
#include "reg_parser.h"

#define SCHANNEL_ROOT \
    "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL"
#define SUITE_POLICY_ROOT \
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Cryptography\\Configuration\\SSL\\00010002"
/* Windows' own order, which Enable-TlsCipherSuite and Disable-TlsCipherSuite edit. */
#define SUITE_LOCAL_ROOT \
    "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Cryptography\\Configuration\\Local\\SSL\\00010002"

/* Normalises a key path: HKLM abbreviation, no trailing backslash. */
static void normalise_key(const char *in, char *out, size_t len)
{
    if (strncasecmp(in, "HKLM\\", 5) == 0)
        snprintf(out, len, "HKEY_LOCAL_MACHINE%s", in + 4);
    else
        snprintf(out, len, "%s", in);
    len = strlen(out);
    while (len > 0 && out[len - 1] == '\\')
        out[--len] = '\0';
}

/* If |path| is |root| or below it, returns what follows "root\" ("" at it). */
static const char *below(const char *path, const char *root)
{
    size_t rl = strlen(root);

    if (strncasecmp(path, root, rl) != 0)
        return NULL;
    if (path[rl] == '\0')
        return path + rl;
    return path[rl] == '\\' ? path + rl + 1 : NULL;
}

/* True when |path| is an ancestor of (or equal to) |root|. */
static int is_ancestor(const char *path, const char *root)
{
    size_t pl = strlen(path);

    return strncasecmp(path, root, pl) == 0 && (root[pl] == '\0' || root[pl] == '\\');
}

static tree key_tree(const char *path, const char **rel)
{
    if ((*rel = below(path, SCHANNEL_ROOT)) != NULL)
        return TREE_SCHANNEL;
    if ((*rel = below(path, SUITE_POLICY_ROOT)) != NULL)
        return TREE_SUITE_POLICY;
    if ((*rel = below(path, SUITE_LOCAL_ROOT)) != NULL)
        return TREE_SUITE_LOCAL;
    return TREE_NONE;
}

/* The policy key for value |value| under the current key, or -1. */
int emsguard_reg_value_key(const struct reg_parser *rp, const char *value)
{
    char full[1100];
    int key;

    if (rp->current == TREE_SUITE_POLICY) {
        if (rp->relative[0] != '\0')
            return -1;
        key = emsguard_key_lookup_nocase(value);
        return key == EG_KEY_FUNCTIONS || key == EG_KEY_ECC_CURVES ? key : -1;
    }
    if (rp->current == TREE_SUITE_LOCAL) {
        /* Only the suite order is read there; any other value is a warning. */
        if (rp->relative[0] != '\0')
            return -1;
        key = emsguard_key_lookup_nocase(value);
        return key == EG_KEY_FUNCTIONS ? key : -1;
    }
    if (rp->relative[0] != '\0')
        snprintf(full, sizeof(full), "%s\\%s", rp->relative, value);
    else
        snprintf(full, sizeof(full), "%s", value);
    key = emsguard_key_lookup_nocase(full);
    /* The cipher suite policy values do not live under SCHANNEL. */
    return key == EG_KEY_FUNCTIONS || key == EG_KEY_ECC_CURVES ? -1 : key;
}

/*
 * [-KEY]: forget every value we map at or below |path|.  Functions is
 * forgotten only with the list it came from: deleting the group-policy key
 * leaves a local list in force, and the reverse (reg_suites.c).
 */
static void delete_key(struct reg_parser *rp, const char *path)
{
    const char *rel;
    tree t = key_tree(path, &rel);
    int k;

    /* A subkey below a list's key holds none of its values. */
    if (is_ancestor(path, SUITE_POLICY_ROOT))
        emsguard_reg_suite_list_deleted(rp, 0);
    if (is_ancestor(path, SUITE_LOCAL_ROOT))
        emsguard_reg_suite_list_deleted(rp, 1);
    for (k = 0; k < EG_KEY_COUNT; k++) {
        int in_scope;

        if (k == EG_KEY_FUNCTIONS)
            continue;
        if (k == EG_KEY_ECC_CURVES)
            in_scope = is_ancestor(path, SUITE_POLICY_ROOT);
        else if (is_ancestor(path, SCHANNEL_ROOT))
            in_scope = 1;
        else if (t == TREE_SCHANNEL) {
            const char *name = emsguard_key_name((eg_key)k);
            size_t rl = strlen(rel);

            in_scope = strncasecmp(name, rel, rl) == 0 && name[rl] == '\\';
        } else
            in_scope = 0;
        if (in_scope)
            emsguard_policy_unset(rp->policy, (eg_key)k);
    }
}

int emsguard_reg_parse_key_line(struct reg_parser *rp, unsigned long lineno,
    const char *line)
{
    const char *end = strrchr(line, ']'), *rel;
    char path[800];
    int deletion = line[1] == '-';
    size_t len;

    if (end == NULL || *emsguard_reg_skip_ws(end + 1) != '\0') {
        emsguard_raise(EMSGUARD_R_REG_FILE,
            "%s:%lu: syntax error: key line must be [KEY] or [-KEY]", rp->name, lineno);
        return 0;
    }
    len = (size_t)(end - line) - 1 - (deletion ? 1 : 0);
    /* Room for the raw name, and for expanding HKLM in |path|. */
    if (len == 0 || len >= 768) {
        emsguard_raise(EMSGUARD_R_REG_FILE, "%s:%lu: syntax error: %s key name",
            rp->name, lineno, len == 0 ? "empty" : "overlong");
        return 0;
    }
    {
        char raw[768];

        memcpy(raw, line + 1 + (deletion ? 1 : 0), len);
        raw[len] = '\0';
        normalise_key(raw, path, sizeof(path));
    }
    if (deletion) {
        delete_key(rp, path);
        rp->current = TREE_NONE; /* values may not follow a deletion */
        rp->path[0] = '\0';
        return 1;
    }
    snprintf(rp->path, sizeof(rp->path), "%s", path);
    rp->current = key_tree(path, &rel);
    snprintf(rp->relative, sizeof(rp->relative), "%s", rp->current != TREE_NONE ? rel : "");
    return 1;
}
