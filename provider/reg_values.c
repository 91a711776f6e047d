/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The value lines of a .reg file ("Name"=data, @=data): the data forms
 * regedit writes ("string", dword:, hex:, hex(N):, -) and how each becomes
 * a policy value, with file:line in every message.  Values under keys we
 * do not map are still syntax-checked; unmappable ones become warnings.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include "internal.h"
#include "reg_parser.h"

/* Registry value types, as hex(N) numbers them. */
enum { REG_SZ = 1, REG_EXPAND_SZ = 2, REG_BINARY = 3, REG_DWORD = 4,
    REG_MULTI_SZ = 7, REG_QWORD = 11 };

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
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
    p = emsguard_reg_skip_ws(p);
    while (*p != '\0') {
        int hi = hexval((unsigned char)p[0]), lo = hi >= 0 ? hexval((unsigned char)p[1]) : -1;

        if (hi < 0 || lo < 0) {
            *err = "invalid hex data (expected two hex digits per byte, separated by commas)";
            OPENSSL_free(buf);
            return 0;
        }
        buf[n++] = (unsigned char)(hi * 16 + lo);
        p = emsguard_reg_skip_ws(p + 2);
        if (*p == ',')
            p = emsguard_reg_skip_ws(p + 1);
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
        elen = rp->unicode ? emsguard_reg_put_utf8(enc, cp) : (enc[0] = (unsigned char)cp, 1);
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
        const char *value = text;

        if (type == REG_MULTI_SZ && key != EG_KEY_LOG_TARGET) {
            if (!multi_sz_to_list(rp, data, datalen, list, sizeof(list), &err)) {
                emsguard_raise(EMSGUARD_R_REG_FILE, "%svalue '%s': %s", where, vname, err);
                return 0;
            }
            value = list;
        } else if (type != REG_SZ && type != REG_EXPAND_SZ) {
            value = NULL;
        }
        if (value != NULL && rp->current == TREE_SUITE_LOCAL) {
            /* Schannel's precedence is settled when the file ends. */
            emsguard_reg_hold_local_list(rp, lineno, value);
            return 1;
        }
        if (value != NULL) {
            if (!emsguard_policy_store(rp->policy, (eg_key)key, value, EG_SRC_REG, rp->name,
                    (uint32_t)lineno, where))
                return 0;
            if (key == EG_KEY_FUNCTIONS)
                emsguard_reg_policy_list_stored(rp);
            return 1;
        }
        emsguard_raise(EMSGUARD_R_REG_FILE,
            "%svalue '%s' must be a string (\"...\"%s); accepted: %s", where, vname,
            key == EG_KEY_LOG_TARGET ? "" : " or hex(7):", emsguard_key_accepted((eg_key)key));
        return 0;
    }
    /* A DWORD key. */
    if (type == REG_DWORD && datalen == 4) {
        if (!emsguard_policy_store_dword(rp->policy, (eg_key)key,
                (uint32_t)le_number(data, 4), EG_SRC_REG, rp->name, (uint32_t)lineno, where))
            return 0;
        emsguard_reg_note_stored(rp, lineno, key);
        return 1;
    }
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
        if (!emsguard_policy_store_dword(rp->policy, (eg_key)key, (uint32_t)v,
                EG_SRC_REG, rp->name, (uint32_t)lineno, where))
            return 0;
        emsguard_reg_note_stored(rp, lineno, key);
        return 1;
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
int emsguard_reg_parse_value_line(struct reg_parser *rp, unsigned long lineno,
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
    p = emsguard_reg_skip_ws(p);
    if (*p != '=') {
        err = "expected '=' after the value name";
        goto syntax;
    }
    p = emsguard_reg_skip_ws(p + 1);
    /* Outside the subtrees: still a syntax check of the data below, but no meaning. */
    key = rp->current == TREE_NONE || vname[0] == '@' ? -1 : emsguard_reg_value_key(rp, vname);
    if (*p == '-') {
        if (*emsguard_reg_skip_ws(p + 1) != '\0') {
            err = "unexpected characters after '-'";
            goto syntax;
        }
        if (key == EG_KEY_FUNCTIONS)
            emsguard_reg_suite_list_deleted(rp, rp->current == TREE_SUITE_LOCAL);
        else if (key >= 0)
            emsguard_policy_unset(rp->policy, (eg_key)key);
        else if (rp->current == TREE_NONE)
            rp->ignored++;
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
    p = emsguard_reg_skip_ws(p);
    if (*p != '\0' && *p != ';') {
        err = "unexpected characters after the value";
        goto syntax;
    }
    if (rp->current == TREE_NONE || (key < 0 && rp->current == TREE_SCHANNEL)) {
        emsguard_reg_note_unmapped(rp, lineno, vname,
            type == REG_DWORD && datalen == 4 ? (long long)le_number(data, 4) : -1);
        ok = 1;
        goto done;
    }
    if (key < 0) {
        emsguard_policy_warn(rp->policy,
            "%s:%lu: warning: value '%s' under [%s%s%s] has no OpenSSL meaning; ignored",
            rp->name, lineno, vname,
            rp->current == TREE_SUITE_LOCAL ? "...\\Local\\SSL\\00010002" : "...\\SSL\\00010002",
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
