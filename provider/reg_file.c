/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Windows Registry Editor exports (.reg files) as policy.
 *
 * Administrators already keep Schannel hardening as .reg files, so we read
 * them as regedit writes them: "REGEDIT4" (ANSI) or "Windows Registry Editor
 * Version 5.00" (UTF-16LE with a BOM, or UTF-8), CRLF, ';' comments, '\'
 * continuations of hex data, [-KEY] and "Value"=- deletions, and the value
 * forms "string", dword:, hex:, hex(N):.  Only three keys mean anything to
 * OpenSSL: SCHANNEL and the two cipher suite order lists (group policy and
 * local, reg_suites.c).  Values there that we cannot map become warnings
 * with file:line (reg_notes.c); syntax errors fail loading.
 *
 * This file reads the whole export: the header line, then each line handed
 * to reg_keys.c ([KEY]) or reg_values.c ("Value"=data), on a copy of the
 * policy so that a file that fails half-way changes nothing.  reg_text.c
 * turns the bytes into lines; reg_parser.h holds what the parts share.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include "internal.h"
#include "reg_parser.h"

#define REG_FILE_MAX (4 * 1024 * 1024)

static int parse_text(struct reg_parser *rp, char *text)
{
    char *cursor = text, *line;
    unsigned long lineno = 0, first = 0;
    int header = 0, seen_key = 0, dangling = 0;

    while ((line = emsguard_reg_next_line(&cursor, &lineno, &first, &dangling)) != NULL) {
        const char *p = emsguard_reg_skip_ws(line);

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
            if (!emsguard_reg_parse_key_line(rp, first, p))
                return 0;
            seen_key = 1;
        } else if (*p == '"' || *p == '@') {
            if (!seen_key) {
                emsguard_raise(EMSGUARD_R_REG_FILE,
                    "%s:%lu: syntax error: value before any [KEY] line", rp->name, first);
                return 0;
            }
            if (!emsguard_reg_parse_value_line(rp, first, p))
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
        if ((text = emsguard_reg_utf16le_to_utf8(buf + 2, len - 2, &tlen, rp.name)) == NULL)
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
    ok = parse_text(&rp, (char *)text) && emsguard_reg_settle_suite_lists(&rp);
    if (ok) {
        emsguard_reg_note_end(&rp);
        *policy = *work;
    }
    OPENSSL_cleanse(&rp, sizeof(rp));
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
