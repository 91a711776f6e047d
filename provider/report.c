/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EMSGUARD_POLICY_print(): the effective policy as `emsguard policy` shows
 * it -- every value with where it came from and what it makes OpenSSL do,
 * the OpenSSL settings per role, and the warnings -- as text or JSON.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include "internal.h"

/* ---- output ---------------------------------------------------------------- */

struct out {
    BIO *bio;
    int json;
    int ok; /* every write succeeded */
    /*
     * Per eg_role: OpenSSL's own configuration switches EMS off (1), leaves
     * it on (0), or could not be read (-1).  See openssl_conf_ems_off().
     */
    int conf_ems_off[2];
};

static void put(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (BIO_vprintf(o->bio, fmt, ap) < 0)
        o->ok = 0;
    va_end(ap);
}

/* A JSON string literal: quotes, backslashes and control bytes escaped. */
static void put_json_string(struct out *o, const char *s)
{
    put(o, "\"");
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            put(o, "\\%c", c);
        else if (c == '\n')
            put(o, "\\n");
        else if (c < 0x20 || c == 0x7f)
            put(o, "\\u%04x", c);
        else
            put(o, "%c", c);
    }
    put(o, "\"");
}

/* ---- what the values mean -------------------------------------------------- */

static const char *version_name(int v)
{
    switch (v) {
    case TLS1_VERSION: return "TLSv1";
    case TLS1_1_VERSION: return "TLSv1.1";
    case TLS1_2_VERSION: return "TLSv1.2";
    case TLS1_3_VERSION: return "TLSv1.3";
    case DTLS1_VERSION: return "DTLSv1";
    case DTLS1_2_VERSION: return "DTLSv1.2";
    default: return "none";
    }
}

/* The openssl.cnf Options names of the bits the mapping touches. */
static void option_names(uint64_t opts, const char *sign, char *buf, size_t len)
{
    static const struct {
        uint64_t bit;
        const char *name;
    } names[] = {
        { SSL_OP_CIPHER_SERVER_PREFERENCE, "ServerPreference" },
        { SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION, "UnsafeLegacyRenegotiation" },
        { SSL_OP_LEGACY_SERVER_CONNECT, "UnsafeLegacyServerConnect" },
        { SSL_OP_NO_RENEGOTIATION, "NoRenegotiation" },
    };
    size_t i, n = strlen(buf);

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if ((opts & names[i].bit) != 0 && n < len) {
            snprintf(buf + n, len - n, "%s%s%s", n > 0 ? "," : "", sign, names[i].name);
            n = strlen(buf);
        }
}

/*
 * Whether OpenSSL's own configuration switches Extended Master Secret off
 * for SSL_CTXs of |role| in this process: SSL_CTX_new() applies openssl.cnf's
 * ssl_conf "system_default" section (e.g. Options = -ExtendedMasterSecret),
 * and emsguard never switches EMS back on.  So ask a fresh SSL_CTX.  1 off,
 * 0 on, -1 unknown (no SSL_CTX could be made).
 */
static int openssl_conf_ems_off(eg_role role)
{
    SSL_CTX *ctx;
    int off;

    ERR_set_mark();
    ctx = SSL_CTX_new(role == EG_ROLE_SERVER ? TLS_server_method() : TLS_client_method());
    ERR_pop_to_mark();
    if (ctx == NULL)
        return -1;
    off = (SSL_CTX_get_options(ctx) & SSL_OP_NO_EXTENDED_MASTER_SECRET) != 0;
    SSL_CTX_free(ctx);
    return off;
}

/* RequireExtendedMasterSecret=1 cannot be enabled on server SSL_CTXs. */
static int require_refused(const struct out *o, const EMSGUARD_POLICY *p)
{
    return emsguard_policy_requires_ems(p, EG_ROLE_SERVER)
        && o->conf_ems_off[EG_ROLE_SERVER] == 1;
}

/* What EMS is for |role| when OpenSSL's configuration has its say; "" if on. */
static void conf_ems_text(const struct out *o, const EMSGUARD_POLICY *p, int role,
    char *buf, size_t len)
{
    buf[0] = '\0';
    if (!emsguard_role_uses_ems(p, (eg_role)role))
        return; /* off by the policy already */
    if (o->conf_ems_off[role] == 1)
        snprintf(buf, len, "off: OpenSSL's configuration (openssl.cnf ssl_conf system_default) "
                           "sets Options -ExtendedMasterSecret%s",
            role == EG_ROLE_SERVER && require_refused(o, p)
                ? "; with RequireExtendedMasterSecret=1 EMSGUARD_enable() refuses server "
                  "SSL_CTXs (the preload: SSL_CTX_new() fails)"
                : "; emsguard does not switch it back on");
    else if (o->conf_ems_off[role] < 0)
        snprintf(buf, len, "unknown: no SSL_CTX could be made to read OpenSSL's own settings");
}

/*
 * The warning for EMS switched off by OpenSSL's configuration ("" if not):
 * the policy's own warnings cannot know it, it depends on the process.
 */
static void conf_ems_warning(const struct out *o, const EMSGUARD_POLICY *p, char *buf,
    size_t len)
{
    int server = emsguard_role_uses_ems(p, EG_ROLE_SERVER) && o->conf_ems_off[EG_ROLE_SERVER] == 1;
    int client = emsguard_role_uses_ems(p, EG_ROLE_CLIENT) && o->conf_ems_off[EG_ROLE_CLIENT] == 1;

    buf[0] = '\0';
    if (!server && !client)
        return;
    snprintf(buf, len, "OpenSSL's configuration (openssl.cnf ssl_conf system_default) sets "
                       "Options -ExtendedMasterSecret: %s SSL_CTXs negotiate no Extended Master "
                       "Secret, %s%s",
        server && client ? "server and client" : server ? "server" : "client",
        p->values[EG_KEY_ALLOW_LEGACY_RESUMPTION] ? "and resume TLS 1.2 sessions without it"
                                                  : "so their TLS 1.2 sessions are never resumed",
        require_refused(o, p) ? "; and with RequireExtendedMasterSecret=1 EMSGUARD_enable() "
                                "refuses server SSL_CTXs (the preload: SSL_CTX_new() fails)"
                              : "");
}

/* One role's OpenSSL settings as name=value pairs, through |emit|. */
typedef void (*setting_fn)(struct out *o, const char *name, const char *value, int *first);

static void role_settings(const EMSGUARD_POLICY *p, int role, struct out *o,
    setting_fn emit)
{
    struct eg_role_cfg c;
    char buf[96], ems_text[300];
    int first = 1;
    int ems = emsguard_role_uses_ems(p, (eg_role)role) && o->conf_ems_off[role] != 1;

    emsguard_schannel_role_config(p, role, &c);
    snprintf(buf, sizeof(buf), "%s", ems ? "ExtendedMasterSecret" : "-ExtendedMasterSecret");
    option_names(c.opts_set, "", buf, sizeof(buf));
    option_names(c.opts_clear, "-", buf, sizeof(buf));
    emit(o, "Options", buf, &first);
    conf_ems_text(o, p, role, ems_text, sizeof(ems_text));
    if (ems_text[0] != '\0')
        emit(o, "ExtendedMasterSecret", ems_text, &first);
    if (c.versions_touched) {
        emit(o, "MinProtocol", version_name(c.min_version), &first);
        emit(o, "MaxProtocol", version_name(c.max_version), &first);
    }
    if (c.dtls_touched) {
        emit(o, "DTLS MinProtocol", version_name(c.dtls_min), &first);
        emit(o, "DTLS MaxProtocol", version_name(c.dtls_max), &first);
    }
    if (c.ciphers[0] != '\0')
        emit(o, "CipherString", c.ciphers, &first);
    if (c.suites_touched)
        emit(o, "Ciphersuites", c.suites[0] != '\0' ? c.suites : "(none: no TLS 1.3 suite left)", &first);
    if (c.groups != NULL)
        emit(o, "Groups", c.groups, &first);
    if (role == EG_ROLE_SERVER) {
        if (p->set[EG_KEY_SERVER_CACHE_TIME] && p->values[EG_KEY_SERVER_CACHE_TIME] == 0)
            emit(o, "Resumption", "off (no session cache, Options NoTicket)", &first);
        else if (p->set[EG_KEY_SERVER_CACHE_TIME]) {
            snprintf(buf, sizeof(buf), "%lu s",
                (unsigned long)((p->values[EG_KEY_SERVER_CACHE_TIME] + 999) / 1000));
            emit(o, "SessionTimeout", buf, &first);
        }
        if (p->set[EG_KEY_MAX_CACHE_SIZE]) {
            snprintf(buf, sizeof(buf), "%lu", (unsigned long)p->values[EG_KEY_MAX_CACHE_SIZE]);
            emit(o, "SessionCacheSize",
                p->values[EG_KEY_MAX_CACHE_SIZE] == 0 ? "0 (no session cache)" : buf, &first);
        }
        if (emsguard_schannel_min_bits(p, EG_KEY_K_DH_SERVER_MIN) > 0) {
            snprintf(buf, sizeof(buf), "smallest ffdhe group of at least %lu bits",
                (unsigned long)emsguard_schannel_min_bits(p, EG_KEY_K_DH_SERVER_MIN));
            emit(o, "DHParameters", buf, &first);
        }
    } else {
        if (p->set[EG_KEY_CLIENT_CACHE_TIME]) {
            snprintf(buf, sizeof(buf), "sessions older than %lu ms are not offered",
                (unsigned long)p->values[EG_KEY_CLIENT_CACHE_TIME]);
            emit(o, "ClientCacheTime", buf, &first);
        }
        if (emsguard_schannel_min_bits(p, EG_KEY_K_DH_CLIENT_MIN) > 0) {
            snprintf(buf, sizeof(buf), "refuse server DH groups under %lu bits",
                (unsigned long)emsguard_schannel_min_bits(p, EG_KEY_K_DH_CLIENT_MIN));
            emit(o, "SecurityCallback", buf, &first);
        }
    }
    {
        eg_key k = role == EG_ROLE_SERVER ? EG_KEY_K_PKCS_SERVER_MIN : EG_KEY_K_PKCS_CLIENT_MIN;

        if (emsguard_schannel_min_bits(p, k) > 0) {
            snprintf(buf, sizeof(buf), "refuse peer RSA certificate keys under %lu bits",
                (unsigned long)emsguard_schannel_min_bits(p, k));
            emit(o, "VerifyCallback", buf, &first);
        }
    }
}

/*
 * Functions: its effect, and which registry list it is and why.  Schannel
 * uses the group-policy list whenever it is present, else its local one.
 */
static void suite_list_text(const EMSGUARD_POLICY *p, char *buf, size_t len)
{
    const char *effect = "CipherString, Ciphersuites, Options ServerPreference (server)";
    const char *local = p->local_list_at;

    if (p->source[EG_KEY_FUNCTIONS].kind != EG_SRC_REG || p->functions_list == EG_LIST_NONE)
        snprintf(buf, len, "%s%s%s%s", effect,
            local[0] != '\0' ? "; set after the registry's cipher suite lists, so it replaces "
                               "them (the local list at " : "",
            local, local[0] != '\0' ? " is not used)" : "");
    else if (p->functions_list == EG_LIST_POLICY)
        snprintf(buf, len, "%s; the group-policy list (SOFTWARE\\Policies\\Microsoft\\"
            "Cryptography\\Configuration\\SSL\\00010002): Schannel uses it whenever it is "
            "present%s%s%s", effect,
            local[0] != '\0' ? ", so the local list at " : "", local,
            local[0] != '\0' ? " is not used" : "");
    else
        snprintf(buf, len, "%s; the local list (SYSTEM\\CurrentControlSet\\Control\\"
            "Cryptography\\Configuration\\Local\\SSL\\00010002, which "
            "Enable-TlsCipherSuite edits): no group-policy list is present", effect);
}

/* What one value makes emsguard or OpenSSL do, in a few words. */
static void maps_to(const struct out *o, const EMSGUARD_POLICY *p, eg_key k, char *buf,
    size_t len)
{
    uint32_t v = p->values[k];

    if (emsguard_key_is_optional(k) && !p->set[k]) {
        snprintf(buf, len, "unset: OpenSSL's own setting");
        return;
    }
    switch (k) {
    case EG_KEY_DISABLE_SERVER_EMS:
    case EG_KEY_DISABLE_CLIENT_EMS: {
        int role = k == EG_KEY_DISABLE_SERVER_EMS ? EG_ROLE_SERVER : EG_ROLE_CLIENT;
        const char *who = role == EG_ROLE_SERVER ? "server" : "client";

        if (v)
            snprintf(buf, len, "%s SSLs: Options -ExtendedMasterSecret", who);
        else if (o->conf_ems_off[role] == 1)
            snprintf(buf, len, "%s SSLs: EMS stays off (OpenSSL's configuration sets "
                               "Options -ExtendedMasterSecret)", who);
        else
            snprintf(buf, len, "%s SSLs: Options ExtendedMasterSecret", who);
        return;
    }
    case EG_KEY_ALLOW_LEGACY_RESUMPTION:
        snprintf(buf, len, v ? "sessions without EMS are cached and resumed (stock OpenSSL)"
                             : "sessions without EMS: not offered, not cached, no ticket, never resumed");
        return;
    case EG_KEY_EVENT_LOGGING:
        snprintf(buf, len, "log: %s%s%s%s", v == 0 ? "nothing" : "",
            (v & EMSGUARD_LOG_ERRORS) ? "errors" : "",
            (v & EMSGUARD_LOG_WARNINGS) ? ((v & EMSGUARD_LOG_ERRORS) ? ", warnings" : "warnings") : "",
            (v & EMSGUARD_LOG_INFO) ? ((v & 3) ? ", info" : "info") : "");
        return;
    case EG_KEY_LOG_TARGET:
        snprintf(buf, len, "log lines go to %s", v == EG_LOG_TO_SYSLOG ? "syslog" : "stderr");
        return;
    case EG_KEY_REQUIRE_EMS:
        snprintf(buf, len, !v ? "peers without EMS connect, with full handshakes"
                : require_refused(o, p)
                ? "EMSGUARD_enable() refuses server SSL_CTXs: OpenSSL's configuration "
                  "switches EMS off (Options -ExtendedMasterSecret); the TLS1-PRF guard "
                  "refuses master secrets without EMS"
                /* The guard-only limit (issue 15, F6): it sees master secrets, not sessions. */
                : "API/preload: servers reject a ClientHello, clients a ServerHello, "
                  "without EMS unless TLS 1.3 is negotiated; "
                  "TLS1-PRF guard: refuses master secrets without EMS, but "
                  "alone cannot refuse the resumption of a non-EMS session created elsewhere "
                  "(shared cache or ticket keys)");
        return;
    case EG_KEY_DISABLE_DHE_WITHOUT_EMS:
        snprintf(buf, len, v ? "no TLS_DHE_* suite is negotiated without EMS"
                             : "TLS_DHE_* suites may be negotiated without EMS");
        return;
    case EG_KEY_FUNCTIONS:
        suite_list_text(p, buf, len);
        return;
    case EG_KEY_ECC_CURVES:
        snprintf(buf, len, "Groups (both roles): %.200s", p->groups);
        return;
    case EG_KEY_CLIENT_CACHE_TIME:
        snprintf(buf, len, "client: sessions older than %lu ms are not offered", (unsigned long)v);
        return;
    case EG_KEY_SERVER_CACHE_TIME:
        snprintf(buf, len, v == 0 ? "server: no session cache, Options NoTicket"
                                  : "server: SSL_CTX_set_timeout");
        return;
    case EG_KEY_MAX_CACHE_SIZE:
        snprintf(buf, len, v == 0 ? "server: no session cache" : "server: SSL_CTX_sess_set_cache_size");
        return;
    case EG_KEY_INSECURE_RENEGO_CLIENTS:
        snprintf(buf, len, "server: Options %sUnsafeLegacyRenegotiation", v ? "" : "-");
        return;
    case EG_KEY_INSECURE_RENEGO_SERVERS:
        snprintf(buf, len, "client: Options %sUnsafeLegacyServerConnect,%sUnsafeLegacyRenegotiation",
            v ? "" : "-", v ? "" : "-");
        return;
    case EG_KEY_DISABLE_RENEGO_SERVER:
        snprintf(buf, len, "server: Options %sNoRenegotiation", v ? "" : "-");
        return;
    case EG_KEY_DISABLE_RENEGO_CLIENT:
        snprintf(buf, len, "client: Options %sNoRenegotiation", v ? "" : "-");
        return;
    default:
        break;
    }
    if (k >= EG_KEY_FIRST_PROTO && k < EG_KEY_FIRST_CIPHER) {
        int role = ((k - EG_KEY_FIRST_PROTO) % 4) >= 2 ? EG_ROLE_SERVER : EG_ROLE_CLIENT;
        int dtls = (k - EG_KEY_FIRST_PROTO) / 4 >= 5;
        struct eg_role_cfg c;

        emsguard_schannel_role_config(p, role, &c);
        snprintf(buf, len, "%s %s range: %s..%s", role == EG_ROLE_SERVER ? "server" : "client",
            dtls ? "DTLS" : "TLS", version_name(dtls ? c.dtls_min : c.min_version),
            version_name(dtls ? c.dtls_max : c.max_version));
    } else if (k >= EG_KEY_FIRST_CIPHER && k < EG_KEY_FIRST_KEX) {
        snprintf(buf, len, v == 0 ? "excluded from CipherString (both roles)"
                                  : "allowed: no change to CipherString");
    } else if (k == EG_KEY_K_DH_ENABLED || k == EG_KEY_K_PKCS_ENABLED || k == EG_KEY_K_ECDH_ENABLED) {
        snprintf(buf, len, v == 0 ? "key exchange excluded from CipherString (both roles)"
                                  : "allowed: no change to CipherString");
    } else if (k == EG_KEY_K_DH_SERVER_MIN) {
        snprintf(buf, len, "server: smallest ffdhe group of at least %lu bits", (unsigned long)v);
    } else if (k == EG_KEY_K_DH_CLIENT_MIN) {
        snprintf(buf, len, "client: security callback refuses smaller DH groups");
    } else if (k == EG_KEY_K_PKCS_SERVER_MIN || k == EG_KEY_K_PKCS_CLIENT_MIN) {
        snprintf(buf, len, "%s: verify callback refuses smaller RSA peer keys (with SSL_VERIFY_PEER)",
            k == EG_KEY_K_PKCS_SERVER_MIN ? "server" : "client");
    } else {
        snprintf(buf, len, "see the README's Schannel table");
    }
}

static const char *kind_name(int kind)
{
    switch (kind) {
    case EG_SRC_REG: return "reg";
    case EG_SRC_CONF: return "conf";
    case EG_SRC_PROVIDER: return "provider";
    case EG_SRC_API: return "api";
    default: return "default";
    }
}

static void source_text(const EMSGUARD_POLICY *p, eg_key k, char *buf, size_t len)
{
    const eg_source *s = &p->source[k];
    char conf_name[256];

    if (!p->set[k]) {
        snprintf(buf, len, "built-in default");
        return;
    }
    switch (s->kind) {
    case EG_SRC_REG:
        snprintf(buf, len, "%s:%lu", p->files[s->file], (unsigned long)s->line);
        return;
    case EG_SRC_CONF:
        emsguard_key_conf_name(k, conf_name, sizeof(conf_name));
        snprintf(buf, len, "%s [%s] %s", p->files[s->file], p->sections[s->section], conf_name);
        return;
    case EG_SRC_PROVIDER:
        snprintf(buf, len, "provider parameters (openssl.cnf)");
        return;
    case EG_SRC_API:
        snprintf(buf, len, "API (EMSGUARD_POLICY_set)");
        return;
    default:
        snprintf(buf, len, "built-in default");
    }
}

/* ---- text ------------------------------------------------------------------ */

static void text_setting(struct out *o, const char *name, const char *value, int *first)
{
    (void)first;
    put(o, "    %-17s %s\n", name, value);
}

static void print_text(struct out *o, const EMSGUARD_POLICY *p)
{
    char value[EG_STRING_MAX], src[600], map[700], conf_warning[400], tls13[600];
    const char *w = p->warnings;
    int k, unset = 0;

    put(o, "Values (KEY = VALUE  [source]  -> effect):\n");
    for (k = 0; k < EG_KEY_COUNT; k++) {
        if (emsguard_key_is_optional((eg_key)k) && !p->set[k]) {
            unset++;
            continue;
        }
        emsguard_policy_value_text(p, (eg_key)k, value, sizeof(value));
        source_text(p, (eg_key)k, src, sizeof(src));
        maps_to(o, p, (eg_key)k, map, sizeof(map));
        put(o, "  %s = %s\n      [%s]\n      -> %s\n", emsguard_key_name((eg_key)k), value, src, map);
    }
    if (unset > 0)
        put(o, "  (%d Schannel values unset: OpenSSL's own settings apply to them)\n", unset);
    put(o, "\nOpenSSL settings, server role:\n");
    role_settings(p, EG_ROLE_SERVER, o, text_setting);
    put(o, "OpenSSL settings, client role:\n");
    role_settings(p, EG_ROLE_CLIENT, o, text_setting);
    conf_ems_warning(o, p, conf_warning, sizeof(conf_warning));
    emsguard_schannel_tls13_off(p, tls13, sizeof(tls13));
    put(o, "\nWarnings:%s\n",
        *w == '\0' && conf_warning[0] == '\0' && tls13[0] == '\0' ? " none" : "");
    if (conf_warning[0] != '\0')
        put(o, "  %s\n", conf_warning);
    if (tls13[0] != '\0')
        put(o, "  warning: %s\n", tls13);
    while (*w != '\0') {
        const char *nl = strchr(w, '\n');
        int n = nl != NULL ? (int)(nl - w) : (int)strlen(w);

        put(o, "  %.*s\n", n, w);
        w += n + (nl != NULL ? 1 : 0);
    }
}

/* ---- JSON ------------------------------------------------------------------ */

static void json_setting(struct out *o, const char *name, const char *value, int *first)
{
    put(o, "%s\n      ", *first ? "" : ",");
    put_json_string(o, name);
    put(o, ": ");
    put_json_string(o, value);
    *first = 0;
}

static void print_json(struct out *o, const EMSGUARD_POLICY *p)
{
    char value[EG_STRING_MAX], map[700], conf_name[256], conf_warning[400], tls13[600];
    const char *w = p->warnings;
    int k, first = 1;

    put(o, "{\n  \"values\": [");
    for (k = 0; k < EG_KEY_COUNT; k++) {
        const eg_source *s = &p->source[k];
        int set = p->set[k] != 0;

        emsguard_policy_value_text(p, (eg_key)k, value, sizeof(value));
        emsguard_key_conf_name((eg_key)k, conf_name, sizeof(conf_name));
        maps_to(o, p, (eg_key)k, map, sizeof(map));
        put(o, "%s\n    {\"key\": ", k == 0 ? "" : ",");
        put_json_string(o, emsguard_key_name((eg_key)k));
        put(o, ", \"conf_key\": ");
        put_json_string(o, conf_name);
        put(o, ", \"value\": ");
        if (emsguard_key_is_optional((eg_key)k) && !set)
            put(o, "null");
        else
            put_json_string(o, value);
        put(o, ", \"source\": {\"kind\": \"%s\"", set ? kind_name(s->kind) : "default");
        if (set && (s->kind == EG_SRC_REG || s->kind == EG_SRC_CONF)) {
            put(o, ", \"file\": ");
            put_json_string(o, p->files[s->file]);
        }
        if (set && s->kind == EG_SRC_REG)
            put(o, ", \"line\": %lu", (unsigned long)s->line);
        if (set && s->kind == EG_SRC_CONF) {
            put(o, ", \"section\": ");
            put_json_string(o, p->sections[s->section]);
        }
        put(o, "}, \"maps_to\": ");
        put_json_string(o, map);
        put(o, "}");
    }
    put(o, "\n  ],\n  \"openssl\": {\n    \"server\": {");
    role_settings(p, EG_ROLE_SERVER, o, json_setting);
    put(o, "\n    },\n    \"client\": {");
    role_settings(p, EG_ROLE_CLIENT, o, json_setting);
    put(o, "\n    }\n  },\n  \"warnings\": [");
    conf_ems_warning(o, p, conf_warning, sizeof(conf_warning));
    if (conf_warning[0] != '\0') {
        put(o, "\n    ");
        put_json_string(o, conf_warning);
        first = 0;
    }
    emsguard_schannel_tls13_off(p, tls13, sizeof(tls13));
    if (tls13[0] != '\0') {
        char line[700];

        snprintf(line, sizeof(line), "warning: %s", tls13);
        put(o, "%s\n    ", first ? "" : ",");
        put_json_string(o, line);
        first = 0;
    }
    while (*w != '\0') {
        const char *nl = strchr(w, '\n');
        size_t n = nl != NULL ? (size_t)(nl - w) : strlen(w);
        char line[EG_WARNINGS_MAX];

        memcpy(line, w, n);
        line[n] = '\0';
        put(o, "%s\n    ", first ? "" : ",");
        put_json_string(o, line);
        first = 0;
        w += n + (nl != NULL ? 1 : 0);
    }
    put(o, "%s]\n}\n", first ? "" : "\n  ");
}

int EMSGUARD_POLICY_print(BIO *out, const EMSGUARD_POLICY *policy,
    unsigned int flags)
{
    struct out o;

    if (out == NULL || policy == NULL || (flags & ~(unsigned int)EMSGUARD_PRINT_JSON) != 0) {
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT,
            "EMSGUARD_POLICY_print: NULL BIO or policy, or unknown flags");
        return 0;
    }
    o.bio = out;
    o.json = (flags & EMSGUARD_PRINT_JSON) != 0;
    o.ok = 1;
    o.conf_ems_off[EG_ROLE_SERVER] = openssl_conf_ems_off(EG_ROLE_SERVER);
    o.conf_ems_off[EG_ROLE_CLIENT] = openssl_conf_ems_off(EG_ROLE_CLIENT);
    if (o.json)
        print_json(&o, policy);
    else
        print_text(&o, policy);
    if (!o.ok)
        emsguard_raise(EMSGUARD_R_INVALID_ARGUMENT, "EMSGUARD_POLICY_print: cannot write to the BIO");
    return o.ok;
}
