/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a .reg value deserves beyond its mapping.  A load-time problem that
 * does not stop loading is a warning naming file:line; what is merely
 * ignored is counted and said once, as info.  Most values with no OpenSSL
 * meaning get the plain warning, but real exports carry a few known shapes
 * that deserve a precise one (a name Schannel does not read, such as
 * Hashes\SHA 256; Windows' FIPS mode; SSL 3.0 or PCT 1.0 switched on) or
 * none (PCT 1.0 switched off: OpenSSL 3 has no PCT either).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "internal.h"
#include "reg_parser.h"

#define LSA_ROOT "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Lsa"

/* Protocols Schannel knows and OpenSSL 3 has no code for. */
static const char *const absent_protocols[] = {
    "Multi-Protocol Unified Hello", "PCT 1.0", "SSL 2.0",
};

/* A DWORD as the exports write the common values: 0xffffffff, else decimal. */
static const char *dword_text(uint32_t v, char *buf, size_t len)
{
    snprintf(buf, len, v == UINT32_MAX ? "0x%08lx" : "%lu", (unsigned long)v);
    return buf;
}

/* |s| lower-cased without spaces and dashes: "Hashes\SHA 256" ~ "Hashes\SHA256". */
static void squeeze(const char *s, char *out, size_t len)
{
    size_t n = 0;

    for (; *s != '\0' && n + 1 < len; s++)
        if (*s != ' ' && *s != '-')
            out[n++] = (char)tolower((unsigned char)*s);
    out[n] = '\0';
}

/* The key Schannel reads that |name| (relative to SCHANNEL) misspells, or NULL. */
static const char *misspelt_key(const char *name)
{
    char want[800], have[800];
    int k;

    squeeze(name, have, sizeof(have));
    for (k = 0; k < EG_KEY_COUNT; k++) {
        squeeze(emsguard_key_name((eg_key)k), want, sizeof(want));
        if (strcmp(want, have) == 0)
            return emsguard_key_name((eg_key)k);
    }
    return NULL;
}

/* Protocols\<absent>\{Client,Server}: the protocol's name, or NULL. */
static const char *absent_protocol(const char *relative)
{
    size_t i, n;

    if (strncasecmp(relative, "Protocols\\", 10) != 0)
        return NULL;
    relative += 10;
    for (i = 0; i < sizeof(absent_protocols) / sizeof(absent_protocols[0]); i++) {
        n = strlen(absent_protocols[i]);
        if (strncasecmp(relative, absent_protocols[i], n) == 0
            && (strcasecmp(relative + n, "\\Client") == 0
                || strcasecmp(relative + n, "\\Server") == 0))
            return absent_protocols[i];
    }
    return NULL;
}

static void note_outside(struct reg_parser *rp, unsigned long lineno, const char *vname,
    long long dword)
{
    char num[16];

    /* Windows' FIPS mode: today's key, and the Lsa value of Windows XP and 2003. */
    int fips = (strcasecmp(rp->path, LSA_ROOT "\\FipsAlgorithmPolicy") == 0
                   && strcasecmp(vname, "Enabled") == 0)
        || (strcasecmp(rp->path, LSA_ROOT) == 0 && strcasecmp(vname, "FIPSAlgorithmPolicy") == 0);

    if (fips && dword > 0) {
        emsguard_policy_warn(rp->policy,
            "%s:%lu: warning: %s=%s: Windows' FIPS mode limits Schannel to FIPS-approved "
            "algorithms; emsguard does not map it (OpenSSL's FIPS provider is chosen in "
            "openssl.cnf); ignored", rp->name, lineno,
            vname[0] == 'E' || vname[0] == 'e' ? "Lsa\\FipsAlgorithmPolicy\\Enabled"
                                               : "Lsa\\FIPSAlgorithmPolicy",
            dword_text((uint32_t)dword, num, sizeof(num)));
        return;
    }
    rp->ignored++;
}

void emsguard_reg_note_unmapped(struct reg_parser *rp, unsigned long lineno,
    const char *vname, long long dword)
{
    const char *proto, *meant;
    char full[1100], num[16];

    if (rp->current == TREE_NONE) {
        note_outside(rp, lineno, vname, dword);
        return;
    }
    if ((proto = absent_protocol(rp->relative)) != NULL && dword >= 0
        && (strcasecmp(vname, "Enabled") == 0 || strcasecmp(vname, "DisabledByDefault") == 0)) {
        int off = (strcasecmp(vname, "Enabled") == 0) == (dword == 0);

        if (off) {
            rp->absent_off++;
            return;
        }
        emsguard_policy_warn(rp->policy,
            "%s:%lu: warning: %s\\%s=%s: OpenSSL 3 has no %s; it stays off",
            rp->name, lineno, rp->relative, vname, dword_text((uint32_t)dword, num, sizeof(num)),
            proto);
        return;
    }
    snprintf(full, sizeof(full), "%s%s%s", rp->relative, rp->relative[0] != '\0' ? "\\" : "",
        vname);
    if (vname[0] != '@' && (meant = misspelt_key(full)) != NULL) {
        emsguard_policy_warn(rp->policy,
            "%s:%lu: warning: '%s' is not a name Schannel reads (it reads '%s'): Windows "
            "ignores this value, and so does emsguard", rp->name, lineno, full, meant);
        return;
    }
    emsguard_policy_warn(rp->policy,
        "%s:%lu: warning: value '%s' under [...\\SCHANNEL%s%s] has no OpenSSL meaning; ignored",
        rp->name, lineno, vname, rp->relative[0] != '\0' ? "\\" : "", rp->relative);
}

void emsguard_reg_note_stored(struct reg_parser *rp, unsigned long lineno, int key)
{
    const EMSGUARD_POLICY *p = rp->policy;
    uint32_t v = p->values[key];
    char num[16];

    if (v == 0)
        return;
    if (key == EG_KEY_P_SSL30_CLIENT_ENABLED || key == EG_KEY_P_SSL30_SERVER_ENABLED)
        emsguard_policy_warn(rp->policy,
            "%s:%lu: warning: %s=%s: OpenSSL 3 has no SSL 3.0; it stays off", rp->name,
            lineno, emsguard_key_name((eg_key)key), dword_text(v, num, sizeof(num)));
    else if (key == EG_KEY_P_TLS10_CLIENT_ENABLED || key == EG_KEY_P_TLS10_SERVER_ENABLED
        || key == EG_KEY_P_TLS11_CLIENT_ENABLED || key == EG_KEY_P_TLS11_SERVER_ENABLED)
        emsguard_policy_warn(rp->policy,
            "%s:%lu: warning: %s=%s: OpenSSL 3 negotiates TLS 1.0 and 1.1 only at "
            "security level 0 (CipherString @SECLEVEL=0), except with RSA key exchange, "
            "and emsguard never lowers the level", rp->name, lineno,
            emsguard_key_name((eg_key)key), dword_text(v, num, sizeof(num)));
}

void emsguard_reg_note_end(struct reg_parser *rp)
{
    if (rp->absent_off > 0)
        emsguard_policy_warn(rp->policy,
            "%s: info: %lu value(s) switch off protocols OpenSSL 3 does not have "
            "(Multi-Protocol Unified Hello, PCT 1.0, SSL 2.0); nothing to do",
            rp->name, rp->absent_off);
    if (rp->ignored > 0)
        emsguard_policy_warn(rp->policy,
            "%s: info: %lu value(s) outside the SCHANNEL and cipher suite "
            "(SSL\\00010002) keys ignored", rp->name, rp->ignored);
}
