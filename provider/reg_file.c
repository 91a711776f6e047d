/*
 * Windows Registry Editor exports (.reg files) as policy.
 *
 * Administrators already keep Schannel hardening as .reg files, so we read
 * them as regedit writes them: "REGEDIT4" (ANSI) or "Windows Registry Editor
 * Version 5.00" (UTF-16LE with a BOM, or UTF-8), CRLF, ';' comments, '\'
 * continuations of hex data, [-KEY] and "Value"=- deletions, and the value
 * forms "string", dword:, hex:, hex(N):.  Only two subtrees mean anything to
 * OpenSSL: SCHANNEL and the cipher suite order policy.  Values there that we
 * cannot map become warnings with file:line; syntax errors fail loading.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include "internal.h"

#define SCHANNEL_ROOT \
    "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL"
#define SUITE_POLICY_ROOT \
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Cryptography\\Configuration\\SSL\\00010002"
#define REG_FILE_MAX (4 * 1024 * 1024)

/* Registry value types, as hex(N) numbers them. */
enum { REG_SZ = 1, REG_EXPAND_SZ = 2, REG_BINARY = 3, REG_DWORD = 4,
    REG_MULTI_SZ = 7, REG_QWORD = 11 };

typedef enum { TREE_NONE = 0, TREE_SCHANNEL, TREE_SUITE_POLICY } tree;

struct reg_parser {
    EMSGUARD_POLICY *policy;
    const char *name; /* file name for messages */
    int unicode; /* version 5.00: hex(7)/hex(2) data are UTF-16LE */
    tree current; /* subtree of the current [key], or none */
    char relative[800]; /* the current key below its subtree root */
    unsigned long ignored; /* values outside both subtrees */
};

/* ---- decoding the file to UTF-8 lines ----------------------------------- */

static size_t put_utf8(unsigned char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xc0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xe0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * UTF-16LE to UTF-8 (NUL-terminated).  An unpaired surrogate is an error:
 * regedit never writes one, so the file is damaged.
 */
static unsigned char *utf16le_to_utf8(const unsigned char *in, size_t len,
    size_t *outlen, const char *name)
{
    unsigned char *out, *o;
    size_t i;

    if (len % 2 != 0) {
        emsguard_raise(EMSGUARD_R_REG_FILE,
            "%s: UTF-16 file has an odd number of bytes (truncated?)", name);
        return NULL;
    }
    if ((out = OPENSSL_malloc(len / 2 * 3 + 1)) == NULL) {
        emsguard_raise(ERR_R_MALLOC_FAILURE, "%s: cannot allocate", name);
        return NULL;
    }
    for (o = out, i = 0; i + 1 < len; i += 2) {
        unsigned long cp = in[i] | ((unsigned long)in[i + 1] << 8);

        if (cp >= 0xd800 && cp <= 0xdbff && i + 3 < len) {
            unsigned long lo = in[i + 2] | ((unsigned long)in[i + 3] << 8);

            if (lo >= 0xdc00 && lo <= 0xdfff) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 2;
            }
        }
        if (cp >= 0xd800 && cp <= 0xdfff) {
            emsguard_raise(EMSGUARD_R_REG_FILE,
                "%s: invalid UTF-16 (unpaired surrogate at byte %zu)", name, i);
            OPENSSL_free(out);
            return NULL;
        }
        if (cp == 0) {
            emsguard_raise(EMSGUARD_R_REG_FILE, "%s: NUL character at byte %zu", name, i);
            OPENSSL_free(out);
            return NULL;
        }
        o += put_utf8(o, cp);
    }
    *o = '\0';
    *outlen = (size_t)(o - out);
    return out;
}

/* ---- small lexers -------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Parses a quoted string at |p| (at the opening quote) into |out|. */
static const char *parse_quoted(const char *p, char *out, size_t outlen,
    const char **err)
{
    size_t n = 0;

    p++; /* opening quote */
    for (;;) {
        char c = *p++;

        if (c == '\0') {
            *err = "unterminated string (missing closing '\"')";
            return NULL;
        }
        if (c == '"')
            break;
        if (c == '\\') {
            c = *p++;
            /* regedit escapes only \ and "; anything else is damage. */
            if (c != '\\' && c != '"') {
                *err = c == '\0' ? "unterminated string (ends with '\\')"
                                 : "invalid escape in string (only \\\\ and \\\" are valid)";
                return NULL;
            }
        }
        if (n + 1 >= outlen) {
            *err = "string too long";
            return NULL;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    return p;
}

/* Parses comma-separated hex bytes (continuations already joined). */
static int parse_hex_bytes(const char *p, unsigned char **out, size_t *outlen,
    const char **err)
{
    size_t cap = strlen(p) / 2 + 1, n = 0;
    unsigned char *buf = OPENSSL_malloc(cap);

    if (buf == NULL) {
        *err = "out of memory";
        return 0;
    }
    p = skip_ws(p);
    while (*p != '\0') {
        int hi = hexval((unsigned char)p[0]), lo = hi >= 0 ? hexval((unsigned char)p[1]) : -1;

        if (hi < 0 || lo < 0) {
            *err = "invalid hex data (expected two hex digits per byte, separated by commas)";
            OPENSSL_free(buf);
            return 0;
        }
        buf[n++] = (unsigned char)(hi * 16 + lo);
        p = skip_ws(p + 2);
        if (*p == ',')
            p = skip_ws(p + 1);
        else if (*p != '\0') {
            *err = "invalid hex data (expected ',' between bytes)";
            OPENSSL_free(buf);
            return 0;
        }
    }
    *out = buf;
    *outlen = n;
    return 1;
}

/* ---- keys ---------------------------------------------------------------- */

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
    return TREE_NONE;
}

/* The policy key for value |value| under the current key, or -1. */
static int value_key(const struct reg_parser *rp, const char *value)
{
    char full[1100];
    int key;

    if (rp->current == TREE_SUITE_POLICY) {
        if (rp->relative[0] != '\0')
            return -1;
        key = emsguard_key_lookup_nocase(value);
        return key == EG_KEY_FUNCTIONS || key == EG_KEY_ECC_CURVES ? key : -1;
    }
    if (rp->relative[0] != '\0')
        snprintf(full, sizeof(full), "%s\\%s", rp->relative, value);
    else
        snprintf(full, sizeof(full), "%s", value);
    key = emsguard_key_lookup_nocase(full);
    /* The cipher suite policy values do not live under SCHANNEL. */
    return key == EG_KEY_FUNCTIONS || key == EG_KEY_ECC_CURVES ? -1 : key;
}

/* [-KEY]: forget every value we map at or below |path|. */
static void delete_key(struct reg_parser *rp, const char *path)
{
    const char *rel;
    tree t = key_tree(path, &rel);
    int k;

    for (k = 0; k < EG_KEY_COUNT; k++) {
        int in_scope;

        if (k == EG_KEY_FUNCTIONS || k == EG_KEY_ECC_CURVES)
            in_scope = is_ancestor(path, SUITE_POLICY_ROOT) || t == TREE_SUITE_POLICY;
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

/* ---- values -------------------------------------------------------------- */

/*
 * Joins REG_MULTI_SZ strings (NUL-separated; UTF-16LE in version 5.00
 * files, ANSI in REGEDIT4) with commas, as our list keys spell them.
 */
static int multi_sz_to_list(const struct reg_parser *rp, const unsigned char *data,
    size_t len, char *out, size_t outlen, const char **err)
{
    size_t i, n = 0, step = rp->unicode ? 2 : 1;
    int pending_sep = 0;

    if (rp->unicode && len % 2 != 0) {
        *err = "UTF-16LE string data has an odd number of bytes";
        return 0;
    }
    for (i = 0; i + step <= len; i += step) {
        unsigned long cp = rp->unicode ? data[i] | ((unsigned long)data[i + 1] << 8)
                                       : data[i];
        unsigned char enc[4];
        size_t elen;

        if (cp == 0 || cp == ',') {
            pending_sep = n > 0;
            continue;
        }
        if (cp >= 0xd800 && cp <= 0xdfff) {
            *err = "string data contains a surrogate (not a cipher or curve name)";
            return 0;
        }
        elen = rp->unicode ? put_utf8(enc, cp) : (enc[0] = (unsigned char)cp, 1);
        if (n + elen + (pending_sep ? 1 : 0) + 1 > outlen) {
            *err = "string list too long";
            return 0;
        }
        if (pending_sep) {
            out[n++] = ',';
            pending_sep = 0;
        }
        memcpy(out + n, enc, elen);
        n += elen;
    }
    out[n] = '\0';
    return 1;
}

static uint64_t le_number(const unsigned char *b, size_t n)
{
    uint64_t v = 0;

    while (n-- > 0)
        v = (v << 8) | b[n];
    return v;
}

/*
 * Applies one parsed value.  |type| is the registry type, with the data as
 * text (REG_SZ) or bytes.
 */
static int apply_value(struct reg_parser *rp, unsigned long lineno,
    const char *vname, int key, int type, const char *text,
    const unsigned char *data, size_t datalen)
{
    char where[600], list[EG_STRING_MAX];
    const char *err = NULL;

    snprintf(where, sizeof(where), "%s:%lu: ", rp->name, lineno);
    if (emsguard_key_is_text((eg_key)key) || key == EG_KEY_LOG_TARGET) {
        if (type == REG_SZ || type == REG_EXPAND_SZ)
            return emsguard_policy_store(rp->policy, (eg_key)key, text,
                EG_SRC_REG, rp->name, (uint32_t)lineno, where);
        if (type == REG_MULTI_SZ && key != EG_KEY_LOG_TARGET) {
            if (!multi_sz_to_list(rp, data, datalen, list, sizeof(list), &err)) {
                emsguard_raise(EMSGUARD_R_REG_FILE, "%svalue '%s': %s", where, vname, err);
                return 0;
            }
            return emsguard_policy_store(rp->policy, (eg_key)key, list,
                EG_SRC_REG, rp->name, (uint32_t)lineno, where);
        }
        emsguard_raise(EMSGUARD_R_REG_FILE,
            "%svalue '%s' must be a string (\"...\"%s); accepted: %s", where, vname,
            key == EG_KEY_LOG_TARGET ? "" : " or hex(7):", emsguard_key_accepted((eg_key)key));
        return 0;
    }
    /* A DWORD key. */
    if (type == REG_DWORD && datalen == 4)
        return emsguard_policy_store_dword(rp->policy, (eg_key)key,
            (uint32_t)le_number(data, 4), EG_SRC_REG, rp->name, (uint32_t)lineno, where);
    if ((type == REG_BINARY && datalen == 4) || (type == REG_QWORD && datalen == 8)) {
        uint64_t v = le_number(data, datalen);

        if (v > UINT32_MAX) {
            emsguard_raise(EMSGUARD_R_OUT_OF_RANGE,
                "%svalue '%s': %s value does not fit in a DWORD; accepted: %s", where,
                vname, type == REG_QWORD ? "hex(b) (QWORD)" : "hex", emsguard_key_accepted((eg_key)key));
            return 0;
        }
        emsguard_policy_warn(rp->policy,
            "%swarning: value '%s' is %s, not dword:; read as the little-endian number %lu",
            where, vname, type == REG_QWORD ? "a QWORD (hex(b):)" : "REG_BINARY (hex:)",
            (unsigned long)v);
        return emsguard_policy_store_dword(rp->policy, (eg_key)key, (uint32_t)v,
            EG_SRC_REG, rp->name, (uint32_t)lineno, where);
    }
    emsguard_raise(EMSGUARD_R_REG_FILE,
        "%svalue '%s' must be a DWORD (dword:XXXXXXXX)%s; accepted: %s", where, vname,
        type == REG_SZ ? ", not a string" : "", emsguard_key_accepted((eg_key)key));
    return 0;
}

/*
 * One value line: "Name"=data or @=data.  Returns 1, or 0 with an error
 * raised.
 */
static int parse_value_line(struct reg_parser *rp, unsigned long lineno,
    const char *line)
{
    char vname[256], text[EG_STRING_MAX];
    const char *p = line, *err = NULL;
    unsigned char *data = NULL;
    size_t datalen = 0;
    int key, type, ok = 0;

    if (*p == '@') {
        snprintf(vname, sizeof(vname), "@");
        p++;
    } else if ((p = parse_quoted(p, vname, sizeof(vname), &err)) == NULL) {
        goto syntax;
    }
    p = skip_ws(p);
    if (*p != '=') {
        err = "expected '=' after the value name";
        goto syntax;
    }
    p = skip_ws(p + 1);
    if (rp->current == TREE_NONE) {
        rp->ignored++;
        /* Still a syntax check of the data below, but no meaning. */
    }
    key = rp->current == TREE_NONE || vname[0] == '@' ? -1 : value_key(rp, vname);
    if (*p == '-') {
        if (*skip_ws(p + 1) != '\0') {
            err = "unexpected characters after '-'";
            goto syntax;
        }
        if (key >= 0)
            emsguard_policy_unset(rp->policy, (eg_key)key);
        return 1;
    }
    if (*p == '"') {
        if ((p = parse_quoted(p, text, sizeof(text), &err)) == NULL)
            goto syntax;
        type = REG_SZ;
    } else if (strncasecmp(p, "dword:", 6) == 0) {
        const char *h = p + 6;
        uint32_t v = 0;
        size_t digits = 0;

        for (; hexval((unsigned char)*h) >= 0; h++, digits++)
            v = v * 16 + (uint32_t)hexval((unsigned char)*h);
        if (digits == 0 || digits > 8) {
            err = "dword: needs 1 to 8 hex digits";
            goto syntax;
        }
        p = h;
        type = REG_DWORD;
        if ((data = OPENSSL_malloc(4)) == NULL) {
            err = "out of memory";
            goto syntax;
        }
        data[0] = (unsigned char)v;
        data[1] = (unsigned char)(v >> 8);
        data[2] = (unsigned char)(v >> 16);
        data[3] = (unsigned char)(v >> 24);
        datalen = 4;
    } else if (strncasecmp(p, "hex", 3) == 0) {
        const char *h = p + 3;

        type = REG_BINARY;
        if (*h == '(') {
            char *end;

            unsigned long t;

            errno = 0;
            t = strtoul(h + 1, &end, 16);
            /* Registry types are DWORDs; anything wider is damage. */
            if (end == h + 1 || *end != ')' || errno != 0 || t > 0xffffffffUL
                || !isxdigit((unsigned char)h[1])) {
                err = "hex(N): needs a hex type number of at most 8 digits";
                goto syntax;
            }
            type = t <= 0xff ? (int)t : -1; /* no type we read is that large */
            h = end + 1;
        }
        if (*h != ':') {
            err = "expected ':' after hex";
            goto syntax;
        }
        if (!parse_hex_bytes(h + 1, &data, &datalen, &err))
            goto syntax;
        p = h + strlen(h);
        if (type == REG_SZ || type == REG_EXPAND_SZ) {
            /* A string stored as bytes: decode it like hex(7), one item. */
            if (!multi_sz_to_list(rp, data, datalen, text, sizeof(text), &err))
                goto syntax;
        }
    } else {
        err = "unknown value data (expected \"string\", dword:, hex:, hex(N): or -)";
        goto syntax;
    }
    p = skip_ws(p);
    if (*p != '\0' && *p != ';') {
        err = "unexpected characters after the value";
        goto syntax;
    }
    if (rp->current == TREE_NONE) {
        ok = 1;
        goto done;
    }
    if (key < 0) {
        emsguard_policy_warn(rp->policy,
            "%s:%lu: warning: value '%s' under [%s%s%s] has no OpenSSL meaning; ignored",
            rp->name, lineno, vname,
            rp->current == TREE_SCHANNEL ? "...\\SCHANNEL" : "...\\SSL\\00010002",
            rp->relative[0] != '\0' ? "\\" : "", rp->relative);
        ok = 1;
        goto done;
    }
    ok = apply_value(rp, lineno, vname, key, type, text, data, datalen);
    goto done;
syntax:
    emsguard_raise(EMSGUARD_R_REG_FILE, "%s:%lu: syntax error: %s", rp->name, lineno, err);
    ok = 0;
done:
    OPENSSL_free(data);
    return ok;
}

static int parse_key_line(struct reg_parser *rp, unsigned long lineno,
    const char *line)
{
    const char *end = strrchr(line, ']'), *rel;
    char path[800];
    int deletion = line[1] == '-';
    size_t len;

    if (end == NULL || *skip_ws(end + 1) != '\0') {
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
        return 1;
    }
    rp->current = key_tree(path, &rel);
    snprintf(rp->relative, sizeof(rp->relative), "%s", rp->current != TREE_NONE ? rel : "");
    return 1;
}

/* Next logical line: joins '\' continuations, strips CR and whitespace. */
static char *next_line(char **cursor, unsigned long *lineno, unsigned long *first,
    int *dangling)
{
    char *p = *cursor, *out, *w;

    if (p == NULL || *p == '\0')
        return NULL;
    *first = ++*lineno;
    out = w = p;
    for (;;) {
        char *nl = strchr(p, '\n');
        char *end = nl != NULL ? nl : p + strlen(p);
        char *e = end;

        while (e > p && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            e--;
        /* A trailing '\' continues hex data on the next line. */
        if (e > p && e[-1] == '\\' && out[0] != '[') {
            if (nl == NULL || nl[1] == '\0') {
                /* Continued into nothing: the file was cut short. */
                *dangling = 1;
                e--;
                memmove(w, p, (size_t)(e - p));
                w += e - p;
                *w = '\0';
                *cursor = p + strlen(p);
                return out;
            }
            memmove(w, p, (size_t)(e - 1 - p));
            w += e - 1 - p;
            p = nl + 1;
            ++*lineno;
            while (*p == ' ' || *p == '\t')
                p++;
            continue;
        }
        memmove(w, p, (size_t)(e - p));
        w += e - p;
        *w = '\0';
        *cursor = nl != NULL ? nl + 1 : end;
        return out;
    }
}

static int parse_text(struct reg_parser *rp, char *text)
{
    char *cursor = text, *line;
    unsigned long lineno = 0, first = 0;
    int header = 0, seen_key = 0, dangling = 0;

    while ((line = next_line(&cursor, &lineno, &first, &dangling)) != NULL) {
        const char *p = skip_ws(line);

        if (dangling) {
            emsguard_raise(EMSGUARD_R_REG_FILE,
                "%s:%lu: syntax error: '\\' continuation at the end of the file",
                rp->name, lineno);
            return 0;
        }
        if (*p == '\0' || *p == ';')
            continue;
        if (!header) {
            if (strcmp(p, "REGEDIT4") == 0) {
                rp->unicode = 0;
            } else if (strcmp(p, "Windows Registry Editor Version 5.00") == 0) {
                rp->unicode = 1;
            } else {
                emsguard_raise(EMSGUARD_R_REG_FILE,
                    "%s:%lu: not a registry export: the first line must be "
                    "\"Windows Registry Editor Version 5.00\" or \"REGEDIT4\"",
                    rp->name, first);
                return 0;
            }
            header = 1;
            continue;
        }
        if (*p == '[') {
            if (!parse_key_line(rp, first, p))
                return 0;
            seen_key = 1;
        } else if (*p == '"' || *p == '@') {
            if (!seen_key) {
                emsguard_raise(EMSGUARD_R_REG_FILE,
                    "%s:%lu: syntax error: value before any [KEY] line", rp->name, first);
                return 0;
            }
            if (!parse_value_line(rp, first, p))
                return 0;
        } else {
            emsguard_raise(EMSGUARD_R_REG_FILE,
                "%s:%lu: syntax error: expected [KEY], \"Value\"=data or a ';' comment",
                rp->name, first);
            return 0;
        }
    }
    if (!header) {
        emsguard_raise(EMSGUARD_R_REG_FILE, "%s: empty file, not a registry export", rp->name);
        return 0;
    }
    return 1;
}

int emsguard_reg_apply(EMSGUARD_POLICY *policy, const unsigned char *buf,
    size_t len, const char *name)
{
    struct reg_parser rp;
    EMSGUARD_POLICY *work;
    unsigned char *text;
    size_t tlen = 0;
    int ok;

    memset(&rp, 0, sizeof(rp));
    rp.name = name != NULL ? name : "(registry data)";
    if (len >= 2 && buf[0] == 0xff && buf[1] == 0xfe) {
        if ((text = utf16le_to_utf8(buf + 2, len - 2, &tlen, rp.name)) == NULL)
            return 0;
    } else {
        if (len >= 3 && buf[0] == 0xef && buf[1] == 0xbb && buf[2] == 0xbf) {
            buf += 3;
            len -= 3;
        }
        if (memchr(buf, '\0', len) != NULL) {
            emsguard_raise(EMSGUARD_R_REG_FILE,
                "%s: contains NUL bytes but no UTF-16LE byte-order mark", rp.name);
            return 0;
        }
        if ((text = OPENSSL_malloc(len + 1)) == NULL) {
            emsguard_raise(ERR_R_MALLOC_FAILURE, "%s: cannot allocate", rp.name);
            return 0;
        }
        memcpy(text, buf, len);
        text[len] = '\0';
    }
    /* Work on a copy: a file that fails half-way changes nothing. */
    if ((work = OPENSSL_malloc(sizeof(*work))) == NULL) {
        OPENSSL_free(text);
        emsguard_raise(ERR_R_MALLOC_FAILURE, "%s: cannot allocate", rp.name);
        return 0;
    }
    *work = *policy;
    rp.policy = work;
    ok = parse_text(&rp, (char *)text);
    if (ok && rp.ignored > 0)
        emsguard_policy_warn(work,
            "%s: info: %lu value(s) outside the SCHANNEL and cipher suite "
            "policy (SSL\\00010002) keys ignored", rp.name, rp.ignored);
    if (ok)
        *policy = *work;
    OPENSSL_cleanse(work, sizeof(*work));
    OPENSSL_free(work);
    OPENSSL_free(text);
    return ok;
}

int EMSGUARD_POLICY_load_reg(EMSGUARD_POLICY *policy, const char *file)
{
    FILE *f;
    unsigned char *buf;
    size_t n;
    int ok;

    if (policy == NULL || file == NULL) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT,
            "EMSGUARD_POLICY_load_reg: policy or file is NULL");
        return 0;
    }
    if ((f = fopen(file, "rb")) == NULL) {
        emsguard_raise(EMSGUARD_R_REG_FILE, "%s: cannot open (%s)", file, strerror(errno));
        return 0;
    }
    if ((buf = OPENSSL_malloc(REG_FILE_MAX + 1)) == NULL) {
        fclose(f);
        emsguard_raise(ERR_R_MALLOC_FAILURE, "%s: cannot allocate", file);
        return 0;
    }
    n = fread(buf, 1, REG_FILE_MAX + 1, f);
    if (ferror(f) || n > REG_FILE_MAX) {
        emsguard_raise(EMSGUARD_R_REG_FILE, "%s: %s", file,
            ferror(f) ? "read error" : "larger than 4 MiB, not a policy export");
        fclose(f);
        OPENSSL_free(buf);
        return 0;
    }
    fclose(f);
    ok = emsguard_reg_apply(policy, buf, n, file);
    OPENSSL_free(buf);
    return ok;
}
