/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Schannel registry exports as policy: the .reg parser (both encodings, the
 * format as regedit writes it, errors with file:line), the mapping of each
 * value to OpenSSL settings, precedence with openssl.cnf and the API, and
 * the effect in real in-memory handshakes.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "emsguard.h"
#include "harness.h"
#include "harness_check.h"

#define REGDIR "test/reg/"

static char tmpdir[256];

static const char *text(const EMSGUARD_POLICY *p, const char *name)
{
    static char buf[2048];

    ck_assert_msg(EMSGUARD_POLICY_get_text(p, name, buf, sizeof(buf)) == 1,
        "get_text %s: %s", name, hs_last_error());
    return buf;
}

/* Writes |content| to a file in the scratch directory; returns its path. */
static const char *write_file(const char *name, const char *content)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    fclose(f);
    return path;
}

/* The ctx's cipher names, colon-joined: TLS 1.3 suites or the others. */
static const char *suite_names(SSL_CTX *ctx, int tls13)
{
    static char buf[4096];
    STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);
    int i;

    buf[0] = '\0';
    for (i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
        const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);

        if ((SSL_CIPHER_get_kx_nid(c) == NID_kx_any) != tls13)
            continue;
        if (buf[0] != '\0')
            strcat(buf, ":");
        strcat(buf, SSL_CIPHER_get_name(c));
    }
    return buf;
}

#define cipher_names(ctx) suite_names((ctx), 0)
#define tls13_names(ctx) suite_names((ctx), 1)

/*
 * The groups a client of |cctx| offers, as OpenSSL names: its ClientHello
 * is fed to a stock server, which reports the peer's list.
 */
static const char *client_groups(SSL_CTX *cctx)
{
    static char buf[256];
    SSL_CTX *sctx = hs_server_ctx(HS_MECH_SESSION_ID, HS_TLS13);
    SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
    BIO *c2s = BIO_new(BIO_s_mem()), *s2c = BIO_new(BIO_s_mem());
    int n, i, nids[16];

    ck_assert(sctx != NULL && c != NULL && s != NULL && c2s != NULL && s2c != NULL);
    BIO_up_ref(c2s);
    BIO_up_ref(s2c);
    SSL_set_bio(c, s2c, c2s);
    SSL_set_bio(s, c2s, s2c);
    ck_assert_int_le(SSL_connect(c), 0); /* ClientHello written */
    SSL_accept(s); /* ClientHello read */
    n = (int)SSL_get1_groups(s, NULL);
    ck_assert_int_le(n, 16);
    SSL_get1_groups(s, nids);
    buf[0] = '\0';
    for (i = 0; i < n; i++) {
        if (buf[0] != '\0')
            strcat(buf, ":");
        strcat(buf, SSL_group_to_name(s, nids[i]));
    }
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(sctx);
    return buf;
}

/* True if some suite of the colon-joined |names| starts with |prefix|. */
static int has_suite_prefix(const char *names, const char *prefix)
{
    char buf[4200];

    snprintf(buf, sizeof(buf), ":%s", names);
    return strstr(buf, prefix) != NULL;
}

static SSL_CTX *enabled_ctx(const SSL_METHOD *method, const EMSGUARD_POLICY *p)
{
    SSL_CTX *ctx = SSL_CTX_new(method);

    ck_assert_ptr_nonnull(ctx);
    if (EMSGUARD_enable_policy(ctx, p) != 1)
        ck_abort_msg("EMSGUARD_enable_policy: %s", hs_last_error());
    return ctx;
}

/* ---- the corpus: what each template means to OpenSSL ------------------- */

START_TEST(test_best_practices)
{
    EMSGUARD_POLICY *p = hs_load_reg(REGDIR "best-practices.reg");
    SSL_CTX *srv = enabled_ctx(TLS_server_method(), p);
    SSL_CTX *cli = enabled_ctx(TLS_client_method(), p);
    uint32_t v;

    ck_assert_str_eq(text(p, "Protocols\\TLS 1.0\\Server\\Enabled"), "0");
    ck_assert_str_eq(text(p, "Protocols.TLS_1.2.Client.Enabled"), "0xffffffff");
    ck_assert_str_eq(text(p, "Protocols\\TLS 1.3\\Server\\Enabled"), "");
    ck_assert_int_eq(EMSGUARD_POLICY_get_dword(p, "Protocols\\TLS 1.3\\Server\\Enabled", &v), 0);
    ck_assert_str_eq(hs_last_error(),
        "key 'Protocols\\TLS 1.3\\Server\\Enabled' is not set: OpenSSL's own default applies");
    ck_assert_str_eq(text(p, "KeyExchangeAlgorithms\\Diffie-Hellman\\ServerMinKeyBitLength"), "2048");
    ck_assert_str_eq(text(p, "EccCurves"), "curve25519,NistP256,NistP384");
    /* Winlogon is outside both subtrees: one informational line. */
    ck_assert_str_eq(EMSGUARD_POLICY_get0_warnings(p),
        REGDIR "best-practices.reg: info: 1 value(s) outside the SCHANNEL and "
        "cipher suite (SSL\\00010002) keys ignored\n");

    ck_assert_int_eq(SSL_CTX_get_min_proto_version(srv), TLS1_2_VERSION);
    ck_assert_int_eq(SSL_CTX_get_max_proto_version(srv), TLS1_3_VERSION);
    ck_assert_int_eq(SSL_CTX_get_min_proto_version(cli), TLS1_2_VERSION);
    ck_assert_str_eq(cipher_names(srv),
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:"
        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:"
        "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:"
        "ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256");
    ck_assert_str_eq(tls13_names(srv), "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256");
    ck_assert_str_eq(client_groups(cli), "x25519:secp256r1:secp384r1");
    ck_assert(SSL_CTX_get_options(srv) & SSL_OP_CIPHER_SERVER_PREFERENCE);
    ck_assert(!(SSL_CTX_get_options(cli) & SSL_OP_CIPHER_SERVER_PREFERENCE));
    SSL_CTX_free(srv);
    SSL_CTX_free(cli);
    EMSGUARD_POLICY_free(p);
}
END_TEST

START_TEST(test_pci)
{
    EMSGUARD_POLICY *p = hs_load_reg(REGDIR "pci.reg");
    SSL_CTX *srv = enabled_ctx(TLS_server_method(), p);

    ck_assert_str_eq(EMSGUARD_POLICY_get0_warnings(p),
        REGDIR "pci.reg:12: warning: value 'CertificateMappingMethods' under "
        "[...\\SCHANNEL] has no OpenSSL meaning; ignored\n"
        REGDIR "pci.reg:35: warning: Functions: "
        "'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384_P384' read as "
        "'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384' (the curve suffix is not part "
        "of the suite in OpenSSL; use EccCurves)\n"
        REGDIR "pci.reg:35: warning: Functions: cipher suite 'TLS_RSA_WITH_RC4_128_SHA' "
        "is not implemented by OpenSSL; ignored\n"
        REGDIR "pci.reg:35: warning: Functions: cipher suite 'TLS_FAKE_WITH_NOTHING' "
        "is not implemented by OpenSSL; ignored\n");
    ck_assert_int_eq(SSL_CTX_get_min_proto_version(srv), TLS1_2_VERSION);
    ck_assert_int_eq(SSL_CTX_get_max_proto_version(srv), TLS1_2_VERSION);
    /* SHA disabled removes the SHA-1 CBC suite the list names. */
    ck_assert_str_eq(cipher_names(srv),
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
        "ECDHE-ECDSA-AES256-GCM-SHA384:AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA256");
    ck_assert_int_eq(SSL_CTX_get_timeout(srv), 3600);
    ck_assert_int_eq(SSL_CTX_sess_get_cache_size(srv), 1024);
    ck_assert(SSL_CTX_get_session_cache_mode(srv) & SSL_SESS_CACHE_SERVER);
    ck_assert(!(SSL_CTX_get_options(srv) & SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION));
    SSL_CTX_free(srv);
    EMSGUARD_POLICY_free(p);
}
END_TEST

START_TEST(test_strict)
{
    EMSGUARD_POLICY *p = hs_load_reg(REGDIR "strict.reg");
    SSL_CTX *srv = enabled_ctx(TLS_server_method(), p);
    SSL_CTX *cli = enabled_ctx(TLS_client_method(), p);

    ck_assert_str_eq(EMSGUARD_POLICY_get0_warnings(p),
        REGDIR "strict.reg:37: warning: value 'MessageLimitClient' under "
        "[...\\SCHANNEL\\Messaging] has no OpenSSL meaning; ignored\n");
    /* Servers: TLS 1.2 (untouched) and 1.3; clients: 1.2 only. */
    ck_assert_int_eq(SSL_CTX_get_min_proto_version(srv), TLS1_2_VERSION);
    ck_assert_int_eq(SSL_CTX_get_max_proto_version(srv), TLS1_3_VERSION);
    ck_assert_int_eq(SSL_CTX_get_min_proto_version(cli), TLS1_2_VERSION);
    ck_assert_int_eq(SSL_CTX_get_max_proto_version(cli), TLS1_2_VERSION);
    /* No DHE, no RSA key transport: only ECDHE suites are left. */
    ck_assert(!has_suite_prefix(cipher_names(srv), ":DHE-"));
    ck_assert(!has_suite_prefix(cipher_names(srv), ":AES"));
    ck_assert_ptr_nonnull(strstr(cipher_names(srv), "ECDHE-ECDSA-AES256-GCM-SHA384"));
    ck_assert_str_eq(client_groups(cli), "secp384r1:secp256r1:x25519");
    ck_assert(!(SSL_CTX_get_session_cache_mode(srv) & SSL_SESS_CACHE_SERVER));
    ck_assert(SSL_CTX_get_options(srv) & SSL_OP_NO_RENEGOTIATION);
    ck_assert(SSL_CTX_get_options(cli) & SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_free(srv);
    SSL_CTX_free(cli);
    EMSGUARD_POLICY_free(p);
}
END_TEST

/* Every key reads the same whichever encoding the template came in. */
static void assert_same_policy(const char *a, const char *b)
{
    static const char *const names[] = {
        "EventLogging", "Protocols\\TLS 1.0\\Server\\Enabled",
        "Protocols\\TLS 1.1\\Client\\DisabledByDefault", "Protocols\\TLS 1.2\\Server\\Enabled",
        "Ciphers\\RC4 128/128\\Enabled", "Ciphers\\AES 128/128\\Enabled",
        "Hashes\\MD5\\Enabled", "KeyExchangeAlgorithms\\Diffie-Hellman\\ClientMinKeyBitLength",
        "Functions", "EccCurves", "MaximumCacheSize",
    };
    EMSGUARD_POLICY *pa = hs_load_reg(a), *pb = hs_load_reg(b);
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char va[2048];

        snprintf(va, sizeof(va), "%s", text(pa, names[i]));
        ck_assert_msg(strcmp(va, text(pb, names[i])) == 0, "%s: '%s' vs '%s'", names[i],
            va, text(pb, names[i]));
    }
    EMSGUARD_POLICY_free(pa);
    EMSGUARD_POLICY_free(pb);
}

START_TEST(test_encodings_agree)
{
    assert_same_policy(REGDIR "best-practices.reg", REGDIR "best-practices.utf8.reg");
    assert_same_policy(REGDIR "best-practices.reg", REGDIR "best-practices.regedit4.reg");
    assert_same_policy(REGDIR "strict.reg", REGDIR "strict.utf8.reg");
}
END_TEST

/* ---- the format as regedit writes it ----------------------------------- */

START_TEST(test_format_details)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    const char *f = write_file("fmt.reg",
        "Windows Registry Editor Version 5.00\r\n"
        "\r\n"
        "   ; an indented comment\r\n"
        "[hkey_local_machine\\system\\currentcontrolset\\control\\securityproviders\\schannel\\protocols\\tls 1.0\\server]\r\n"
        "\"enabled\"=dword:0\r\n"
        "\"DisabledByDefault\"=hex(b):01,00,00,00,00,00,00,00\r\n"
        "[HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL]\r\n"
        "\"ServerCacheTime\"=hex:e8,03,\\\r\n"
        "  00,00\r\n"
        "\"LogTarget\"=\"syslog\"\r\n"
        "\"LogTarget\"=-\r\n"
        "\"EventLogging\"=dword:00000007\r\n"
        "@=\"default values have no meaning\"\r\n"
        "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Cryptography\\Configuration\\SSL\\00010002]\r\n"
        "\"Functions\"=\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256\"\r\n"
        "[HKEY_CURRENT_USER\\Software\\Escaped]\r\n"
        "\"Path\"=\"C:\\\\Program Files\\\\\\\"x\\\"\"\r\n"
        "[-HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.0]\r\n");

    ck_assert_int_eq(EMSGUARD_POLICY_load_reg(p, f), 1);
    /* [-...\TLS 1.0] forgot both TLS 1.0 values again. */
    ck_assert_str_eq(text(p, "Protocols\\TLS 1.0\\Server\\Enabled"), "");
    ck_assert_str_eq(text(p, "Protocols\\TLS 1.0\\Server\\DisabledByDefault"), "");
    ck_assert_str_eq(text(p, "ServerCacheTime"), "1000");
    ck_assert_str_eq(text(p, "LogTarget"), "stderr");
    ck_assert_str_eq(text(p, "EventLogging"), "7");
    ck_assert_str_eq(text(p, "Functions"),
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256");
    {
        char want[2048];

        snprintf(want, sizeof(want),
            "%s:6: warning: value 'DisabledByDefault' is a QWORD (hex(b):), not dword:; read as the little-endian number 1\n"
            "%s:8: warning: value 'ServerCacheTime' is REG_BINARY (hex:), not dword:; read as the little-endian number 1000\n"
            "%s:13: warning: value '@' under [...\\SCHANNEL] has no OpenSSL meaning; ignored\n"
            "%s: info: 1 value(s) outside the SCHANNEL and cipher suite (SSL\\00010002) keys ignored\n",
            f, f, f, f);
        ck_assert_str_eq(EMSGUARD_POLICY_get0_warnings(p), want);
    }
    EMSGUARD_POLICY_free(p);
}
END_TEST

/* ---- errors: file:line and what is accepted; the policy unchanged ------- */

static const struct bad_file {
    const char *content;
    int line;
    const char *message; /* after "<file>:<line>: " */
} bad_files[] = {
    { "[HKLM\\X]\r\n", 1,
        "not a registry export: the first line must be \"Windows Registry Editor "
        "Version 5.00\" or \"REGEDIT4\"" },
    { "REGEDIT4\r\n\"Enabled\"=dword:0\r\n", 2, "syntax error: value before any [KEY] line" },
    { "REGEDIT4\r\n[HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\r\n", 2,
        "syntax error: key line must be [KEY] or [-KEY]" },
    { "REGEDIT4\r\n[HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL]\r\n"
      "\"EventLogging=dword:1\r\n", 3, "syntax error: unterminated string (missing closing '\"')" },
    { "REGEDIT4\r\n[HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL]\r\n"
      "\"EventLogging\"=dword:xyz\r\n", 3, "syntax error: dword: needs 1 to 8 hex digits" },
    { "REGEDIT4\r\n[HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL]\r\n"
      "\"EventLogging\"=dword:000000001\r\n", 3, "syntax error: dword: needs 1 to 8 hex digits" },
    { "REGEDIT4\r\n[HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL]\r\n"
      "\"EventLogging\"=dword:1 junk\r\n", 3, "syntax error: unexpected characters after the value" },
    { "REGEDIT4\r\n[HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL]\r\n"
      "\"EventLogging\"=hex:1,2\r\n", 3,
        "syntax error: invalid hex data (expected two hex digits per byte, separated by commas)" },
    { "REGEDIT4\r\n[HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL]\r\n"
      "\"EventLogging\"=1\r\n", 3,
        "syntax error: unknown value data (expected \"string\", dword:, hex:, hex(N): or -)" },
    { "REGEDIT4\r\n[HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL]\r\n"
      "\"Path\"=\"a\\b\"\r\n", 3,
        "syntax error: invalid escape in string (only \\\\ and \\\" are valid)" },
    { "REGEDIT4\r\n[HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.0\\Server]\r\n"
      "\"Enabled\"=\"0\"\r\n", 3,
        "value 'Enabled' must be a DWORD (dword:XXXXXXXX), not a string; accepted: "
        "0 (disabled), 1 or 0xffffffff (enabled)" },
    { "REGEDIT4\r\n[HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.0\\Server]\r\n"
      "\"Enabled\"=dword:00000002\r\n", 3,
        "key 'Protocols\\TLS 1.0\\Server\\Enabled': value 0x00000002 is out of range; "
        "accepted: 0 (disabled), 1 or 0xffffffff (enabled)" },
    { "REGEDIT4\r\n[HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL]\r\n"
      "\"EventLogging\"=dword:00000008\r\n", 3,
        "key 'EventLogging': value 0x00000008 is out of range; accepted: 0 to 7 "
        "(bitmask: 1 errors, 2 warnings, 4 informational)" },
    { "REGEDIT4\r\n[HKLM\\SOFTWARE\\Policies\\Microsoft\\Cryptography\\Configuration\\SSL\\00010002]\r\n"
      "\"Functions\"=\"TLS_AES_128_GCM_SHA256\"\r\n", 3,
        "key 'Functions': no TLS 1.2 cipher suite that OpenSSL implements is listed "
        "(1 TLS 1.3 suites); the list would disable TLS 1.2 entirely; accepted: a "
        "comma-separated list of IANA cipher suite names" },
    { "REGEDIT4\r\n[HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL]\r\n"
      "\"ServerCacheTime\"=hex:00,01\\\r\n", 3,
        "syntax error: '\\' continuation at the end of the file" },
    { "REGEDIT4\r\n[HKLM\\SOFTWARE\\Policies\\Microsoft\\Cryptography\\Configuration\\SSL\\00010002]\r\n"
      "\"EccCurves\"=hex(100000001):4e,69,73,74,50,32,35,36,00\r\n", 3,
        "syntax error: hex(N): needs a hex type number of at most 8 digits" },
};

START_TEST(test_bad_file)
{
    const struct bad_file *b = &bad_files[_i];
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    char name[32], want[1024];
    const char *path;

    ck_assert_int_eq(EMSGUARD_POLICY_set(p, "ClientCacheTime", "5000"), 1);
    snprintf(name, sizeof(name), "bad%d.reg", _i);
    path = write_file(name, b->content);
    ck_assert_int_eq(EMSGUARD_POLICY_load_reg(p, path), 0);
    snprintf(want, sizeof(want), "%s:%d: %s", path, b->line, b->message);
    ck_assert_str_eq(hs_last_error(), want);
    /* Nothing of a failed file sticks. */
    ck_assert_str_eq(text(p, "ClientCacheTime"), "5000");
    ck_assert_str_eq(text(p, "EventLogging"), "1");
    ck_assert_str_eq(EMSGUARD_POLICY_get0_warnings(p), "");
    EMSGUARD_POLICY_free(p);
}
END_TEST

START_TEST(test_failed_set_changes_nothing)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();

    /* Only a TLS 1.3 suite and an unknown one: refused, and no warning kept. */
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, "Functions", "TLS_AES_128_GCM_SHA256,NO_SUCH_SUITE"), 0);
    ck_assert_ptr_nonnull(strstr(hs_last_error(), "no TLS 1.2 cipher suite"));
    ck_assert_str_eq(EMSGUARD_POLICY_get0_warnings(p), "");
    ck_assert_str_eq(text(p, "Functions"), "");
    EMSGUARD_POLICY_free(p);
}
END_TEST

START_TEST(test_unreadable_file)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    static const unsigned char odd[] = { 0xff, 0xfe, 'R', 0, 'E' };
    char path[512];
    FILE *f;

    ck_assert_int_eq(EMSGUARD_POLICY_load_reg(p, "/nonexistent/x.reg"), 0);
    ck_assert_str_eq(hs_last_error(), "/nonexistent/x.reg: cannot open (No such file or directory)");
    snprintf(path, sizeof(path), "%s/odd.reg", tmpdir);
    f = fopen(path, "wb");
    fwrite(odd, 1, sizeof(odd), f);
    fclose(f);
    ck_assert_int_eq(EMSGUARD_POLICY_load_reg(p, path), 0);
    {
        char want[600];

        snprintf(want, sizeof(want), "%s: UTF-16 file has an odd number of bytes (truncated?)", path);
        ck_assert_str_eq(hs_last_error(), want);
    }
    EMSGUARD_POLICY_free(p);
}
END_TEST

/* ---- precedence: defaults < PolicyFile < openssl.cnf < API -------------- */

START_TEST(test_precedence_and_nested_conf)
{
    char cwd[512], conf[2048];
    const char *path;
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    int found = 0;

    ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
    snprintf(conf, sizeof(conf),
        "openssl_conf = init\n[init]\nproviders = provs\n[provs]\nemsguard = eg\n"
        "[eg]\nactivate = 0\nPolicyFile = %s/" REGDIR "pci.reg\n"
        "ServerCacheTime = 60000\n"
        "Protocols = eg_protocols\n"
        "Ciphers.AES_256/256.Enabled = 0\n"
        "[eg_protocols]\nTLS_1.3 = eg_tls13\n"
        "[eg_tls13]\nServer = eg_tls13_server\n"
        "[eg_tls13_server]\nEnabled = 1\n",
        cwd);
    path = write_file("nested.cnf", conf);
    ck_assert_int_eq(EMSGUARD_POLICY_from_config(p, path, &found), 1);
    ck_assert_int_eq(found, 1);
    ck_assert_str_eq(text(p, "ServerCacheTime"), "60000"); /* cnf over .reg */
    ck_assert_str_eq(text(p, "MaximumCacheSize"), "1024"); /* from the .reg */
    ck_assert_str_eq(text(p, "Protocols\\TLS 1.3\\Server\\Enabled"), "1"); /* nested */
    ck_assert_str_eq(text(p, "Protocols\\TLS 1.3\\Client\\Enabled"), "0"); /* .reg */
    ck_assert_str_eq(text(p, "Ciphers\\AES 256/256\\Enabled"), "0");
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, "ServerCacheTime", "1000"), 1); /* API last */
    ck_assert_str_eq(text(p, "ServerCacheTime"), "1000");
    EMSGUARD_POLICY_free(p);
}
END_TEST

START_TEST(test_nested_conf_errors)
{
    static const struct {
        const char *body, *message;
    } cases[] = {
        { "Protocols = 1\n",
            "key 'Protocols': value '1' must name a section holding its subkeys "
            "(e.g. Protocols = my_Protocols_section)" },
        { "Protocols = eg_p\n[eg_p]\nTLS_1.9 = eg_x\n[eg_x]\nServer.Enabled = 0\n",
            "unknown key 'Protocols.TLS_1.9'" },
        { "Protocols = eg_p\n[eg_p]\nTLS_1.2 = eg_x\n[eg_x]\nServer = eg_y\n[eg_y]\nEnabeld = 0\n",
            "unknown key 'Protocols.TLS_1.2.Server.Enabeld' (did you mean "
            "'Protocols\\TLS 1.2\\Server\\Enabled'?)" },
        { "PolicyFile = /nonexistent.reg\n", "/nonexistent.reg: cannot open (No such file or directory)" },
        { "Ciphers.RC4_128/128.Enabled = 5\n",
            "key 'Ciphers\\RC4 128/128\\Enabled': value '5' is out of range; accepted: "
            "0 (disabled), 1 or 0xffffffff (enabled) (decimal, 0x hex, or dword:XXXXXXXX)" },
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char conf[1024];
        const char *path, *err;
        EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
        int found = 0;

        snprintf(conf, sizeof(conf),
            "openssl_conf = init\n[init]\nproviders = provs\n[provs]\nemsguard = eg\n"
            "[eg]\nactivate = 0\n%s", cases[i].body);
        path = write_file("bad.cnf", conf);
        ck_assert_int_eq(EMSGUARD_POLICY_from_config(p, path, &found), 0);
        err = hs_last_error();
        ck_assert_msg(strstr(err, cases[i].message) != NULL, "case %zu: got '%s'", i, err);
        EMSGUARD_POLICY_free(p);
    }
}
END_TEST

/* ---- real handshakes ----------------------------------------------------- */

/*
 * A full handshake, then a reconnection offering its session; *r describes
 * the reconnection (release it with hs_result_clear()).
 */
static void connect_twice(SSL_CTX *srv, SSL_CTX *cli, hs_result *r)
{
    SSL_SESSION *s;

    ck_assert_int_eq(hs_handshake(srv, cli, NULL, r), 1);
    s = r->session;
    r->session = NULL;
    hs_result_clear(r);
    ck_assert_int_eq(hs_handshake(srv, cli, s, r), 1);
    SSL_SESSION_free(s);
}

START_TEST(test_handshake_protocols_and_order)
{
    EMSGUARD_POLICY *pci = hs_load_reg(REGDIR "pci.reg");
    SSL_CTX *srv = hs_server_ctx(HS_MECH_SESSION_ID, HS_TLS13);
    SSL_CTX *cli = hs_client_ctx(HS_TLS13);
    SSL_CTX *old = hs_client_ctx(0);
    SSL_CTX *weak = hs_client_ctx(0);
    hs_result r;

    ck_assert_int_eq(EMSGUARD_enable_policy(srv, pci), 1);
    /* A TLS 1.3 client gets TLS 1.2 and the server's first usable suite. */
    ck_assert_int_eq(hs_handshake(srv, cli, NULL, &r), 1);
    ck_assert_int_eq(r.version, TLS1_2_VERSION);
    ck_assert_str_eq(SSL_CIPHER_get_name(SSL_SESSION_get0_cipher(r.session)),
        "ECDHE-ECDSA-AES128-GCM-SHA256");
    hs_result_clear(&r);
    /* The cache works and its size came from the .reg: EMS resumes. */
    connect_twice(srv, cli, &r);
    ck_assert_int_eq(r.reused, 1);
    hs_result_clear(&r);
    /* A client limited to TLS 1.1 is refused. */
    SSL_CTX_set_min_proto_version(old, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(old, TLS1_1_VERSION);
    SSL_CTX_set_cipher_list(old, "DEFAULT:@SECLEVEL=0");
    ck_assert_int_eq(hs_handshake(srv, old, NULL, &r), 0);
    hs_result_clear(&r);
    /* A client offering only a suite the policy removed (SHA-1 MAC) fails. */
    ck_assert_int_eq(SSL_CTX_set_cipher_list(weak, "ECDHE-ECDSA-AES128-SHA"), 1);
    ck_assert_int_eq(hs_handshake(srv, weak, NULL, &r), 0);
    hs_result_clear(&r);
    SSL_CTX_free(srv);
    SSL_CTX_free(cli);
    SSL_CTX_free(old);
    SSL_CTX_free(weak);
    EMSGUARD_POLICY_free(pci);
}
END_TEST

START_TEST(test_handshake_strict_roles)
{
    EMSGUARD_POLICY *strict = hs_load_reg(REGDIR "strict.reg");
    SSL_CTX *srv = hs_server_ctx(HS_MECH_SESSION_ID, HS_TLS13);
    SSL_CTX *cli = hs_client_ctx(HS_TLS13);
    SSL_CTX *psrv = hs_server_ctx(HS_MECH_TICKET, HS_TLS13);
    SSL_CTX *pcli = hs_client_ctx(HS_TLS13);
    hs_result r;

    ck_assert_int_eq(EMSGUARD_enable_policy(psrv, strict), 1);
    ck_assert_int_eq(EMSGUARD_enable_policy(pcli, strict), 1);
    /* Server role: TLS 1.3 allowed. */
    ck_assert_int_eq(hs_handshake(psrv, cli, NULL, &r), 1);
    ck_assert_int_eq(r.version, TLS1_3_VERSION);
    hs_result_clear(&r);
    /* Client role: TLS 1.2 only, even against a TLS 1.3 server. */
    ck_assert_int_eq(hs_handshake(srv, pcli, NULL, &r), 1);
    ck_assert_int_eq(r.version, TLS1_2_VERSION);
    hs_result_clear(&r);
    /* MaximumCacheSize=0: no server cache, so a session ID never resumes... */
    ck_assert_int_eq(EMSGUARD_enable_policy(srv, strict), 1);
    {
        SSL_CTX *cli12 = hs_client_ctx(0);

        connect_twice(srv, cli12, &r);
        ck_assert_int_eq(r.reused, 0);
        hs_result_clear(&r);
        SSL_CTX_free(cli12);
    }
    SSL_CTX_free(srv);
    SSL_CTX_free(cli);
    SSL_CTX_free(psrv);
    SSL_CTX_free(pcli);
    EMSGUARD_POLICY_free(strict);
}
END_TEST

START_TEST(test_client_cache_time)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    SSL_CTX *srv = hs_server_ctx(HS_MECH_SESSION_ID, 0);
    SSL_CTX *cli = hs_client_ctx(0);
    hs_result r;

    /* 0 ms: the client never reuses a session. */
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, "ClientCacheTime", "0"), 1);
    ck_assert_int_eq(EMSGUARD_enable_policy(cli, p), 1);
    connect_twice(srv, cli, &r);
    ck_assert_int_eq(r.hello_offered, 0);
    ck_assert_int_eq(r.reused, 0);
    hs_result_clear(&r);
    SSL_CTX_free(cli);
    /* An hour: the same session is offered and resumed. */
    cli = hs_client_ctx(0);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, "ClientCacheTime", "3600000"), 1);
    ck_assert_int_eq(EMSGUARD_enable_policy(cli, p), 1);
    connect_twice(srv, cli, &r);
    ck_assert_int_eq(r.reused, 1);
    hs_result_clear(&r);
    SSL_CTX_free(cli);
    SSL_CTX_free(srv);
    EMSGUARD_POLICY_free(p);
}
END_TEST

START_TEST(test_refused_mapping_leaves_ctx_alone)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    /*
     * The order lists one suite and Ciphers removes it: OpenSSL refuses the
     * empty list, and nothing at all is applied.
     */
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, "Functions", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, "Ciphers.AES_128/128.Enabled", "0"), 1);
    ck_assert_int_eq(EMSGUARD_POLICY_set(p, "Protocols.TLS_1.3.Server.Enabled", "0"), 1);
    ck_assert_int_eq(EMSGUARD_enable_policy(ctx, p), 0);
    ck_assert_ptr_nonnull(strstr(hs_last_error(), "OpenSSL refused the cipher list"));
    ck_assert_int_eq(EMSGUARD_CTX_is_enabled(ctx), 0);
    ck_assert_int_eq(SSL_CTX_get_max_proto_version(ctx), 0);
    SSL_CTX_free(ctx);
    EMSGUARD_POLICY_free(p);
}
END_TEST

/* ---- minimum key sizes ---------------------------------------------------- */

/* A throwaway RSA-1024 key and self-signed certificate, made once. */
static EVP_PKEY *rsa_key;
static X509 *rsa_cert;

static void use_rsa1024(SSL_CTX *ctx)
{
    if (rsa_key == NULL) {
        X509_NAME *name;

        rsa_key = EVP_RSA_gen(1024);
        rsa_cert = X509_new();
        ck_assert(rsa_key != NULL && rsa_cert != NULL);
        ASN1_INTEGER_set(X509_get_serialNumber(rsa_cert), 1);
        X509_gmtime_adj(X509_getm_notBefore(rsa_cert), 0);
        X509_gmtime_adj(X509_getm_notAfter(rsa_cert), 3600);
        X509_set_pubkey(rsa_cert, rsa_key);
        name = X509_get_subject_name(rsa_cert);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"rsa1024", -1, -1, 0);
        X509_set_issuer_name(rsa_cert, name);
        ck_assert_int_gt(X509_sign(rsa_cert, rsa_key, EVP_sha256()), 0);
    }
    ck_assert_int_eq(SSL_CTX_use_certificate(ctx, rsa_cert), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, rsa_key), 1);
}

/* An RSA-1024 server ctx offering only DHE-RSA, with a 1024-bit DH group. */
static SSL_CTX *rsa1024_dhe_server(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION), 1);
    ck_assert_int_eq(SSL_CTX_set_cipher_list(ctx, "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=1"), 1);
    use_rsa1024(ctx);
    SSL_CTX_set_dh_auto(ctx, 1); /* 1024-bit group for a 1024-bit key */
    return ctx;
}

static int accept_any_cert(int ok, X509_STORE_CTX *store)
{
    (void)ok;
    (void)store;
    return 1;
}

/* A TLS 1.2 client that offers DHE-RSA and verifies (accepting anything). */
static SSL_CTX *dhe_client(void)
{
    SSL_CTX *ctx = hs_client_ctx(0);

    ck_assert_int_eq(SSL_CTX_set_cipher_list(ctx, "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=1"), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_cert);
    return ctx;
}

static int handshake_ok(SSL_CTX *srv, SSL_CTX *cli)
{
    hs_result r;
    int ok = hs_handshake(srv, cli, NULL, &r);

    hs_result_clear(&r);
    ERR_clear_error();
    return ok;
}

static SSL_CTX *policy_ctx(SSL_CTX *ctx, const char *name, const char *value)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();

    ck_assert_int_eq(EMSGUARD_POLICY_set(p, name, value), 1);
    if (EMSGUARD_enable_policy(ctx, p) != 1)
        ck_abort_msg("enable: %s", hs_last_error());
    EMSGUARD_POLICY_free(p);
    return ctx;
}

START_TEST(test_min_key_sizes)
{
    SSL_CTX *srv = rsa1024_dhe_server();
    SSL_CTX *stock = dhe_client();
    SSL_CTX *rsa2048 = policy_ctx(dhe_client(),
        "KeyExchangeAlgorithms\\PKCS\\ClientMinKeyBitLength", "2048");
    SSL_CTX *rsa1024 = policy_ctx(dhe_client(),
        "KeyExchangeAlgorithms\\PKCS\\ClientMinKeyBitLength", "1024");
    SSL_CTX *dh3072 = policy_ctx(dhe_client(),
        "KeyExchangeAlgorithms\\Diffie-Hellman\\ClientMinKeyBitLength", "3072");
    SSL_CTX *strong_srv = policy_ctx(rsa1024_dhe_server(),
        "KeyExchangeAlgorithms\\Diffie-Hellman\\ServerMinKeyBitLength", "3072");

    ck_assert_int_eq(handshake_ok(srv, stock), 1); /* control */
    /* PKCS: the server's RSA-1024 certificate is below 2048, not below 1024. */
    ck_assert_int_eq(handshake_ok(srv, rsa2048), 0);
    ck_assert_int_eq(handshake_ok(srv, rsa1024), 1);
    /* Diffie-Hellman: a 1024-bit group is refused by a client wanting 3072... */
    ck_assert_int_eq(handshake_ok(srv, dh3072), 0);
    /* ...and a server told to use at least 3072 bits satisfies it. */
    ck_assert_int_eq(handshake_ok(strong_srv, dh3072), 1);
    SSL_CTX_free(srv);
    SSL_CTX_free(stock);
    SSL_CTX_free(rsa2048);
    SSL_CTX_free(rsa1024);
    SSL_CTX_free(dh3072);
    SSL_CTX_free(strong_srv);
}
END_TEST

/*
 * One TLS_method() ctx playing both roles, with roles that differ (strict:
 * servers allow TLS 1.3, clients stop at 1.2): the settings are applied per
 * connection, so each role gets its own.
 */
START_TEST(test_both_roles_ctx)
{
    EMSGUARD_POLICY *strict = hs_load_reg(REGDIR "strict.reg");
    SSL_CTX *both = SSL_CTX_new(TLS_method());
    SSL_CTX *cli13 = hs_client_ctx(HS_TLS13);
    SSL_CTX *srv13 = hs_server_ctx(HS_MECH_TICKET, HS_TLS13);
    hs_result r;

    ck_assert_ptr_nonnull(both);
    ck_assert_int_eq(SSL_CTX_set_cipher_list(both, "DEFAULT:@SECLEVEL=1"), 1);
    use_rsa1024(both);
    ck_assert_int_eq(EMSGUARD_enable_policy(both, strict), 1);
    /* Nothing role-specific was put on the ctx itself. */
    ck_assert_int_eq(SSL_CTX_get_max_proto_version(both), 0);
    ck_assert_int_eq(hs_handshake(both, cli13, NULL, &r), 1);
    ck_assert_int_eq(r.version, TLS1_3_VERSION);
    hs_result_clear(&r);
    ck_assert_int_eq(hs_handshake(srv13, both, NULL, &r), 1);
    ck_assert_int_eq(r.version, TLS1_2_VERSION);
    hs_result_clear(&r);
    SSL_CTX_free(both);
    SSL_CTX_free(cli13);
    SSL_CTX_free(srv13);
    EMSGUARD_POLICY_free(strict);
}
END_TEST

static Suite *schannel_suite(void)
{
    Suite *s = suite_create("schannel");
    TCase *tc = tcase_create("reg");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_best_practices);
    tcase_add_test(tc, test_pci);
    tcase_add_test(tc, test_strict);
    tcase_add_test(tc, test_encodings_agree);
    tcase_add_test(tc, test_format_details);
    tcase_add_loop_test(tc, test_bad_file, 0, (int)(sizeof(bad_files) / sizeof(bad_files[0])));
    tcase_add_test(tc, test_unreadable_file);
    tcase_add_test(tc, test_failed_set_changes_nothing);
    tcase_add_test(tc, test_precedence_and_nested_conf);
    tcase_add_test(tc, test_nested_conf_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("handshake");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_handshake_protocols_and_order);
    tcase_add_test(tc, test_handshake_strict_roles);
    tcase_add_test(tc, test_client_cache_time);
    tcase_add_test(tc, test_refused_mapping_leaves_ctx_alone);
    tcase_add_test(tc, test_min_key_sizes);
    tcase_add_test(tc, test_both_roles_ctx);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/eg-schannel-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 2;
    /* EMSGUARD_POLICY_from_config must not see the system's openssl.cnf. */
    setenv("EMSGUARD_DEBUG", "0", 1);
    sr = srunner_create(schannel_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    hs_cleanup();
    EVP_PKEY_free(rsa_key);
    X509_free(rsa_cert);
    {
        char cmd[300];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            failed++;
    }
    return failed == 0 ? 0 : 1;
}
