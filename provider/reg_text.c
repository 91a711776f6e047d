/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The lowest layer of the .reg reader: the bytes of a registry export as
 * UTF-8 text (regedit writes version 5.00 files as UTF-16LE), split into
 * logical lines with '\' continuations joined.  Nothing here knows keys or
 * values.
 */
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include "internal.h"
#include "reg_parser.h"

size_t emsguard_reg_put_utf8(unsigned char *out, unsigned long cp)
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
unsigned char *emsguard_reg_utf16le_to_utf8(const unsigned char *in, size_t len,
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
        o += emsguard_reg_put_utf8(o, cp);
    }
    *o = '\0';
    *outlen = (size_t)(o - out);
    return out;
}

const char *emsguard_reg_skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Next logical line: joins '\' continuations, strips CR and whitespace. */
char *emsguard_reg_next_line(char **cursor, unsigned long *lineno, unsigned long *first,
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
