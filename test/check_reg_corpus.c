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

#define REGDIR "test/reg/"

static char tmpdir[256];

/* The text of the newest error, or "" (and the queue cleared). */
static const char *last_error(void)
{
    static char buf[1024];
    const char *data = NULL;
    int flags = 0;
    unsigned long e = ERR_peek_last_error_data(&data, &flags);

    buf[0] = '\0';
    if (e != 0 && data != NULL && (flags & ERR_TXT_STRING))
        snprintf(buf, sizeof(buf), "%s", data);
    ERR_clear_error();
    return buf;
}

static EMSGUARD_POLICY *load(const char *file)
{
    EMSGUARD_POLICY *p = EMSGUARD_POLICY_new();

    ck_assert_ptr_nonnull(p);
    if (EMSGUARD_POLICY_load_reg(p, file) != 1)
        ck_abort_msg("loading %s failed: %s", file, last_error());
    return p;
}

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
    EMSGUARD_POLICY *p = load(c->file);
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
        ck_assert_msg(EMSGUARD_enable_policy(srv, p) == 1, "%s: %s", c->file, last_error());
        ck_assert_msg(EMSGUARD_enable_policy(cli, p) == 1, "%s: %s", c->file, last_error());
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

/* ---- main ---------------------------------------------------------------- */

static Suite *corpus_suite(void)
{
    Suite *s = suite_create("reg_corpus");
    TCase *tc = tcase_create("corpus");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_corpus, 0, (int)(sizeof(corpus_cases) / sizeof(corpus_cases[0])));
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
