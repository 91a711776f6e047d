/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry exports shaped as administrators really have them (test/reg/,
 * issue 22): a group-policy cipher-order export, the local list the
 * TLS cmdlets edit, both lists at once, a strict and a maximum
 * compatibility template, and an export with keys outside SCHANNEL; in
 * UTF-16LE (regedit's own), UTF-8 and ANSI REGEDIT4.  For each, the exact
 * OpenSSL settings per role that `emsguard policy` reports (and that
 * EMSGUARD_enable_policy() puts on a ctx) and the exact warnings; then the
 * log level each stored line is logged at under EventLogging.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "emsguard.h"
#include "harness_check.h"

#define REGDIR "test/reg/"

static char tmpdir[256];

/* What `emsguard policy` prints for |p| (text), NUL-terminated; caller frees. */
static char *report(const EMSGUARD_POLICY *p)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char *data, *copy;
    long n;

    ck_assert_ptr_nonnull(mem);
    ck_assert_int_eq(EMSGUARD_POLICY_print(mem, p, 0), 1);
    n = BIO_get_mem_data(mem, &data);
    copy = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, data, (size_t)n);
    copy[n] = '\0';
    BIO_free(mem);
    return copy;
}

/* The part of |text| from the line starting with |from| up to |to| (or the end). */
static const char *section(const char *text, const char *from, const char *to)
{
    static char buf[16384];
    const char *b = strstr(text, from), *e;

    ck_assert_msg(b != NULL, "no '%s' in the report:\n%s", from, text);
    b += strlen(from);
    e = to != NULL ? strstr(b, to) : NULL;
    if (e == NULL)
        e = b + strlen(b);
    snprintf(buf, sizeof(buf), "%.*s", (int)(e - b), b);
    return buf;
}

/* The value line "    NAME   VALUE" of a report section, or "". */
static const char *setting(const char *sect, const char *name)
{
    static char buf[4096];
    char pat[64];
    const char *b, *e;

    snprintf(pat, sizeof(pat), "    %-17s ", name);
    buf[0] = '\0';
    if ((b = strstr(sect, pat)) == NULL)
        return buf;
    b += strlen(pat);
    e = strchr(b, '\n');
    snprintf(buf, sizeof(buf), "%.*s", (int)(e != NULL ? e - b : (long)strlen(b)), b);
    return buf;
}

/* ---- the corpus -------------------------------------------------------------- */

struct corpus_case {
    const char *file;
    const char *server, *client; /* the report's "OpenSSL settings" lines per role */
    const char *warnings; /* EMSGUARD_POLICY_get0_warnings() */
    const char *report_warnings; /* the report's Warnings section */
    const char *functions; /* the Functions line's "-> ..." effect, or NULL */
};

#include "reg_corpus_cases.h"

/* Check's messages are short: the whole texts go to stderr, the first difference to Check. */
static void expect_lines(const char *what, const char *file, const char *got, const char *want)
{
    size_t i = 0;

    if (strcmp(got, want) == 0)
        return;
    fprintf(stderr, "%s of %s:\n--- got\n%s--- want\n%s", what, file, got, want);
    while (got[i] != '\0' && got[i] == want[i])
        i++;
    ck_abort_msg("%s of %s differs at byte %zu: got '%.80s', want '%.80s'", what, file, i,
        got + i, want + i);
}

/* |want| with every "{file}" replaced by the file name. */
static char *with_file(const char *want, const char *file)
{
    size_t n = 1;
    const char *s;
    char *out, *o;

    for (s = want; *s != '\0'; s++)
        n += strncmp(s, "{file}", 6) == 0 ? strlen(file) : 1;
    out = o = malloc(n);
    ck_assert_ptr_nonnull(out);
    for (s = want; *s != '\0'; s++) {
        if (strncmp(s, "{file}", 6) == 0) {
            strcpy(o, file);
            o += strlen(file);
            s += 5;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

START_TEST(test_corpus)
{
    const struct corpus_case *c = &corpus_cases[_i];
    EMSGUARD_POLICY *p = hs_load_reg(c->file);
    char *text = report(p), *want;
    const char *server = section(text, "OpenSSL settings, server role:\n", "OpenSSL settings, client role:");
    char server_copy[16384];

    /* CORPUS_DUMP=1: print what an export gives, to write its expectations from. */
    if (getenv("CORPUS_DUMP") != NULL) {
        fprintf(stderr, "=== %s\n%s\n=== warnings\n%s", c->file, text,
            EMSGUARD_POLICY_get0_warnings(p));
        free(text);
        EMSGUARD_POLICY_free(p);
        return;
    }
    snprintf(server_copy, sizeof(server_copy), "%s", server);
    expect_lines("server settings", c->file, server_copy, c->server);
    expect_lines("client settings", c->file,
        section(text, "OpenSSL settings, client role:\n", "\nWarnings:"), c->client);
    want = with_file(c->warnings, c->file);
    expect_lines("warnings", c->file, EMSGUARD_POLICY_get0_warnings(p), want);
    free(want);
    want = with_file(c->report_warnings, c->file);
    expect_lines("report warnings", c->file, section(text, "\nWarnings:", NULL), want);
    free(want);
    if (c->functions != NULL) {
        want = with_file(c->functions, c->file);
        expect_lines("Functions effect", c->file,
            section(section(text, "  Functions = ", "\n  EccCurves"), "-> ", "\n"), want);
        free(want);
    }
    {
        /* What the report says is what an enabled ctx gets. */
        SSL_CTX *srv = SSL_CTX_new(TLS_server_method()), *cli = SSL_CTX_new(TLS_client_method());
        static const struct {
            int v;
            const char *name;
        } names[] = { { TLS1_VERSION, "TLSv1" }, { TLS1_1_VERSION, "TLSv1.1" },
            { TLS1_2_VERSION, "TLSv1.2" }, { TLS1_3_VERSION, "TLSv1.3" }, { 0, "" } };
        size_t i;

        ck_assert(srv != NULL && cli != NULL);
        ck_assert_msg(EMSGUARD_enable_policy(srv, p) == 1, "%s: %s", c->file, hs_last_error());
        ck_assert_msg(EMSGUARD_enable_policy(cli, p) == 1, "%s: %s", c->file, hs_last_error());
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            if (names[i].v == SSL_CTX_get_min_proto_version(srv))
                ck_assert_str_eq(setting(server_copy, "MinProtocol"), names[i].name);
            if (names[i].v == SSL_CTX_get_max_proto_version(srv))
                ck_assert_str_eq(setting(server_copy, "MaxProtocol"), names[i].name);
        }
        ck_assert_int_eq((SSL_CTX_get_options(srv) & SSL_OP_CIPHER_SERVER_PREFERENCE) != 0,
            strstr(setting(server_copy, "Options"), "ServerPreference") != NULL);
        SSL_CTX_free(srv);
        SSL_CTX_free(cli);
    }
    free(text);
    EMSGUARD_POLICY_free(p);
}
END_TEST

/* ---- the two cipher-suite lists across files --------------------------------- */

/* Writes |content| to a scratch file; returns its path (valid for 4 calls). */
static const char *write_file(const char *name, const char *content)
{
    static char paths[4][512];
    static int next;
    char *path = paths[next++ % 4];
    FILE *f;

    snprintf(path, sizeof(paths[0]), "%s/%s", tmpdir, name);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    fclose(f);
    return path;
}

static const char *functions_effect(const EMSGUARD_POLICY *p)
{
    static char buf[2048];
    char *text = report(p);

    snprintf(buf, sizeof(buf), "%s", section(section(text, "  Functions = ", "\n  EccCurves"),
        "-> ", "\n"));
    free(text);
    return buf;
}

static const char *get_text(const EMSGUARD_POLICY *p, const char *name)
{
    static char buf[2048];

    ck_assert_int_eq(EMSGUARD_POLICY_get_text(p, name, buf, sizeof(buf)), 1);
    return buf;
}

#define POLICY_EFFECT \
    "CipherString, Ciphersuites, Options ServerPreference (server); the group-policy list " \
    "(SOFTWARE\\Policies\\Microsoft\\Cryptography\\Configuration\\SSL\\00010002): Schannel " \
    "uses it whenever it is present"
#define LOCAL_EFFECT \
    "CipherString, Ciphersuites, Options ServerPreference (server); the local list " \
    "(SYSTEM\\CurrentControlSet\\Control\\Cryptography\\Configuration\\Local\\SSL\\00010002, " \
    "which Enable-TlsCipherSuite edits): no group-policy list is present"
#define LOCAL_KEY "[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Cryptography\\Configuration\\Local\\SSL\\00010002]\r\n"
#define POLICY_KEY "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Cryptography\\Configuration\\SSL\\00010002]\r\n"

/* A group-policy list read after a local one overrides it, as in Schannel. */
START_TEST(test_policy_list_in_a_later_file)
{
    EMSGUARD_POLICY *p = hs_load_reg(REGDIR "cmdlet-local.reg");

    ck_assert_str_eq(functions_effect(p), LOCAL_EFFECT);
    ck_assert_int_eq(EMSGUARD_POLICY_load_reg(p, REGDIR "gpo-cipher-order.reg"), 1);
    ck_assert_str_eq(functions_effect(p),
        POLICY_EFFECT ", so the local list at " REGDIR "cmdlet-local.reg:4 is not used");
    ck_assert_ptr_nonnull(strstr(get_text(p, "Functions"), "_P384"));
    EMSGUARD_POLICY_free(p);
}
END_TEST

/* A local list read after a group-policy one does not replace it. */
START_TEST(test_local_list_in_a_later_file)
{
    EMSGUARD_POLICY *p = hs_load_reg(REGDIR "gpo-cipher-order.reg");

    ck_assert_int_eq(EMSGUARD_POLICY_load_reg(p, REGDIR "cmdlet-local.reg"), 1);
    ck_assert_str_eq(functions_effect(p),
        POLICY_EFFECT ", so the local list at " REGDIR "cmdlet-local.reg:4 is not used");
    ck_assert_ptr_nonnull(strstr(get_text(p, "Functions"), "_P384"));
    ck_assert_ptr_nonnull(strstr(EMSGUARD_POLICY_get0_warnings(p),
        REGDIR "cmdlet-local.reg:4: info: Functions under [...\\Local\\SSL\\00010002] not used: "
        "the group-policy list (" REGDIR "gpo-cipher-order.reg:4) overrides it, as in Schannel\n"));
    EMSGUARD_POLICY_free(p);
}
END_TEST

/* Deleting a key forgets only the list it holds. */
START_TEST(test_list_deletions)
{
    EMSGUARD_POLICY *p = hs_load_reg(REGDIR "cmdlet-local.reg");
    const char *del_policy = write_file("del-policy.reg",
        "Windows Registry Editor Version 5.00\r\n\r\n[-HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Cryptography]\r\n");
    const char *del_local = write_file("del-local.reg",
        "REGEDIT4\r\n\r\n[-HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Cryptography\\Configuration\\Local]\r\n");

    ck_assert_int_eq(EMSGUARD_POLICY_load_reg(p, del_policy), 1);
    ck_assert_str_eq(functions_effect(p), LOCAL_EFFECT); /* the local list stays */
    ck_assert_int_eq(EMSGUARD_POLICY_load_reg(p, del_local), 1);
    ck_assert_str_eq(get_text(p, "Functions"), "");
    EMSGUARD_POLICY_free(p);
    /* The group-policy list survives the local key's deletion. */
    p = hs_load_reg(REGDIR "gpo-over-local.utf8.reg");
    ck_assert_int_eq(EMSGUARD_POLICY_load_reg(p, del_local), 1);
    ck_assert_str_eq(functions_effect(p), POLICY_EFFECT);
    ck_assert_int_eq(EMSGUARD_POLICY_load_reg(p, del_policy), 1);
    ck_assert_str_eq(get_text(p, "Functions"), "");
    EMSGUARD_POLICY_free(p);
    /* "Functions"=- under the local key drops the list held so far. */
    p = hs_load_reg(write_file("value-del.reg", "REGEDIT4\r\n" LOCAL_KEY
        "\"Functions\"=\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"\r\n\"Functions\"=-\r\n"));
    ck_assert_str_eq(get_text(p, "Functions"), "");
    ck_assert_str_eq(EMSGUARD_POLICY_get0_warnings(p), "");
    EMSGUARD_POLICY_free(p);
}
END_TEST

/* An unusable local list fails loading only when it is the list in force. */
START_TEST(test_unusable_local_list)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();
    const char *alone = write_file("local-13.reg", "REGEDIT4\r\n" LOCAL_KEY
        "\"Functions\"=\"TLS_AES_128_GCM_SHA256\"\r\n");
    const char *both = write_file("local-13-gpo.reg", "REGEDIT4\r\n" LOCAL_KEY
        "\"Functions\"=\"TLS_AES_128_GCM_SHA256\"\r\n" POLICY_KEY
        "\"Functions\"=\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"\r\n");
    char want[1024];

    ck_assert_int_eq(EMSGUARD_POLICY_load_reg(p, alone), 0);
    snprintf(want, sizeof(want), "%s:3: key 'Functions': no TLS 1.2 cipher suite that OpenSSL "
        "implements is listed (1 TLS 1.3 suites); the list would disable TLS 1.2 entirely; "
        "accepted: a comma-separated list of IANA cipher suite names", alone);
    ck_assert_str_eq(hs_last_error(), want);
    ck_assert_str_eq(get_text(p, "Functions"), "");
    ck_assert_int_eq(EMSGUARD_POLICY_load_reg(p, both), 1);
    ck_assert_str_eq(get_text(p, "Functions"), "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
    EMSGUARD_POLICY_free(p);
}
END_TEST

/* openssl.cnf or the API come later than every .reg, and replace both lists. */
START_TEST(test_api_list_replaces_the_registry_lists)
{
    EMSGUARD_POLICY *p = hs_load_reg(REGDIR "gpo-over-local.utf8.reg");

    ck_assert_int_eq(EMSGUARD_POLICY_set(p, "Functions", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"), 1);
    ck_assert_str_eq(functions_effect(p),
        "CipherString, Ciphersuites, Options ServerPreference (server); set after the "
        "registry's cipher suite lists, so it replaces them (the local list at "
        REGDIR "gpo-over-local.utf8.reg:9 is not used)");
    EMSGUARD_POLICY_free(p);
}
END_TEST

/* ---- log levels ---------------------------------------------------------------- */

static int saved_stderr = -1, capture_fd = -1;

static void capture_stderr(void)
{
    char path[600];

    snprintf(path, sizeof(path), "%s/stderr.XXXXXX", tmpdir);
    fflush(stderr);
    capture_fd = mkstemp(path);
    ck_assert_int_ge(capture_fd, 0);
    unlink(path);
    saved_stderr = dup(STDERR_FILENO);
    ck_assert_int_ge(saved_stderr, 0);
    ck_assert_int_ge(dup2(capture_fd, STDERR_FILENO), 0);
}

/* Restores stderr; returns what was written to it. */
static const char *captured_stderr(void)
{
    static char buf[8192];
    ssize_t n;

    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    saved_stderr = -1;
    lseek(capture_fd, 0, SEEK_SET);
    n = read(capture_fd, buf, sizeof(buf) - 1);
    close(capture_fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* What enabling |p| with EventLogging |mask| logs (NULL: the file's own). */
static const char *logged(const char *file, const char *mask)
{
    EMSGUARD_POLICY *p = hs_load_reg(file);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    const char *out;
    int ok;

    ck_assert_ptr_nonnull(ctx);
    if (mask != NULL)
        ck_assert_int_eq(EMSGUARD_POLICY_set(p, "EventLogging", mask), 1);
    capture_stderr();
    ok = EMSGUARD_enable_policy(ctx, p);
    out = captured_stderr();
    ck_assert_int_eq(ok, 1);
    SSL_CTX_free(ctx);
    EMSGUARD_POLICY_free(p);
    return out;
}

#define MIXED REGDIR "mixed-keys.utf8.reg"
#define FIPS_LOG "emsguard: warning: " MIXED ":13: Lsa\\FipsAlgorithmPolicy\\Enabled=1: " \
    "Windows' FIPS mode limits Schannel to FIPS-approved algorithms; emsguard does not map " \
    "it (OpenSSL's FIPS provider is chosen in openssl.cnf); ignored\n"
#define IGNORED_LOG "emsguard: info: " MIXED ": 10 value(s) outside the SCHANNEL and cipher " \
    "suite (SSL\\00010002) keys ignored\n"

/*
 * Each stored line is logged once, at the level it names, and only when
 * EventLogging has that level's bit: warnings 2, info 4.  Errors (1) alone,
 * Schannel's default, print neither.
 */
START_TEST(test_log_levels)
{
    ck_assert_str_eq(logged(MIXED, "1"), "");
    ck_assert_str_eq(logged(MIXED, "0"), "");
    ck_assert_str_eq(logged(MIXED, NULL), FIPS_LOG); /* the file's own EventLogging=3 */
    ck_assert_str_eq(logged(MIXED, "2"), FIPS_LOG);
    ck_assert_str_eq(logged(MIXED, "4"), IGNORED_LOG);
    ck_assert_str_eq(logged(MIXED, "7"), FIPS_LOG IGNORED_LOG);
    /* The example: a curve-suffixed suite is a warning, said once as one. */
    ck_assert_str_eq(logged(REGDIR "gpo-cipher-order.reg", "3"),
        "emsguard: warning: " REGDIR "gpo-cipher-order.reg:4: Functions: "
        "'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384_P384' read as "
        "'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384' (the curve suffix is not part of the "
        "suite in OpenSSL; use EccCurves)\n");
}
END_TEST

/* ---- main ---------------------------------------------------------------- */

static Suite *corpus_suite(void)
{
    Suite *s = suite_create("reg_corpus");
    TCase *tc = tcase_create("corpus");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_corpus, 0, (int)(sizeof(corpus_cases) / sizeof(corpus_cases[0])));
    suite_add_tcase(s, tc);
    tc = tcase_create("lists");
    tcase_add_test(tc, test_policy_list_in_a_later_file);
    tcase_add_test(tc, test_local_list_in_a_later_file);
    tcase_add_test(tc, test_list_deletions);
    tcase_add_test(tc, test_unusable_local_list);
    tcase_add_test(tc, test_api_list_replaces_the_registry_lists);
    suite_add_tcase(s, tc);
    tc = tcase_create("log_levels");
    tcase_add_test(tc, test_log_levels);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;
    char conf[300];

    snprintf(tmpdir, sizeof(tmpdir), "/tmp/eg-regcorpus-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 2;
    /* The report reads OpenSSL's own settings: an empty openssl.cnf keeps them stock. */
    snprintf(conf, sizeof(conf), "%s/empty.cnf", tmpdir);
    {
        FILE *f = fopen(conf, "w");

        if (f == NULL)
            return 2;
        fclose(f);
    }
    setenv("OPENSSL_CONF", conf, 1);
    setenv("EMSGUARD_DEBUG", "0", 1);
    sr = srunner_create(corpus_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    {
        char cmd[300];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            failed++;
    }
    return failed == 0 ? 0 : 1;
}
