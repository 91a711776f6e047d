/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard policy [--config FILE] [--json]
 *
 * The policy the emsguard provider would enforce with this openssl.cnf:
 * every value with its source and its OpenSSL effect (EMSGUARD_POLICY_print),
 * after the same checks the provider makes when it loads.  Like `reg query`
 * for the Schannel keys, but showing what OpenSSL will do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include "commands.h"
#include "json.h"
#include "emsguard.h"

static void usage(FILE *out)
{
    fputs("usage: emsguard policy [--config FILE] [--json]\n"
          "  --config FILE  the openssl.cnf to read (default: OPENSSL_CONF, else\n"
          "                 OpenSSL's default file)\n"
          "  --json         one JSON object instead of text\n"
          "Exit status: 0 the configuration is valid, 2 it is not (the provider\n"
          "would refuse to load, or OpenSSL's own settings in it make\n"
          "EMSGUARD_enable() refuse server SSL_CTXs) or it cannot be read.\n", out);
}

/* Every queued error on one line each, with the text the provider gives. */
static void print_errors(const char *what)
{
    unsigned long e;
    const char *data;
    int flags;
    char buf[256];

    fprintf(stderr, "emsguard policy: %s\n", what);
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        if ((flags & ERR_TXT_STRING) && data != NULL && *data != '\0'
            && ERR_GET_LIB(e) == EMSGUARD_get_error_lib())
            fprintf(stderr, "  %s\n", data);
        else {
            ERR_error_string_n(e, buf, sizeof(buf));
            fprintf(stderr, "  %s%s%s\n", buf, (flags & ERR_TXT_STRING) && data != NULL
                && *data != '\0' ? ": " : "", (flags & ERR_TXT_STRING) && data != NULL ? data : "");
        }
    }
}

/*
 * Loads |file| into a fresh library context, as an application would, so
 * that everything the provider checks at load time is checked.  Returns 1
 * if the emsguard provider is then active.
 */
static int provider_loads(const char *file, int *active)
{
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
    EMSGUARD_POLICY *loaded = EMSGUARD_POLICY_new();
    int ok = 0;

    *active = 0;
    if (libctx != NULL && loaded != NULL && OSSL_LIB_CTX_load_config(libctx, file) == 1
        && EMSGUARD_POLICY_from_provider(loaded, libctx, active) == 1)
        ok = 1;
    EMSGUARD_POLICY_free(loaded);
    OSSL_LIB_CTX_free(libctx);
    return ok;
}

/*
 * What RequireExtendedMasterSecret=1 cannot do on the guard-only route
 * (issue 15, F6): the TLS1-PRF guard sees master secrets, and a resumption
 * derives none.  Said wherever the value is shown as 1.
 */
static void print_require_note(BIO *out, const EMSGUARD_POLICY *policy)
{
    uint32_t require = 0;

    if (EMSGUARD_POLICY_get_dword(policy, EMSGUARD_REQUIRE_EMS, &require) != 1 || require == 0)
        return;
    BIO_printf(out,
        "\nRequireExtendedMasterSecret = 1, by route:\n"
        "  EMSGUARD_enable() or the preload library: a server rejects every ClientHello\n"
        "    without EMS (TLS <= 1.2), a client every ServerHello without EMS, so no\n"
        "    session without EMS is resumed either.  A client offers no TLS <= 1.2\n"
        "    suite without a ServerKeyExchange (RSA key exchange, PSK): only the\n"
        "    ServerKeyExchange gives it a point to refuse a server without EMS.\n"
        "  TLS1-PRF guard alone (this file with default_properties = ?emsguard.guard=yes,\n"
        "    no EMSGUARD_enable() or preload): every full TLS <= 1.2 handshake without EMS\n"
        "    in this process fails, but the guard sees master secrets, not sessions, and\n"
        "    a resumption derives none: it cannot refuse the resumption of a non-EMS session\n"
        "    created elsewhere (another process or fleet member sharing a session cache or\n"
        "    the ticket keys).  The SSL_CTX routes above refuse those.\n");
}

/*
 * Makes |file| this process's openssl.cnf, before anything loads the
 * default one: the report then shows what OpenSSL's own settings from it
 * (ssl_conf system_default, applied by every SSL_CTX_new()) do to the
 * policy, as in an application started with OPENSSL_CONF=|file|.  Errors
 * are left to the checks that follow, which report them precisely.
 */
static void use_as_process_config(const char *file)
{
    OPENSSL_INIT_SETTINGS *settings = OPENSSL_INIT_new();

    if (settings != NULL && OPENSSL_INIT_set_config_filename(settings, file) == 1)
        (void)OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, settings);
    OPENSSL_INIT_free(settings);
    ERR_clear_error();
}

/*
 * RequireExtendedMasterSecret=1 (server role using EMS) while this
 * openssl.cnf switches EMS off for server SSL_CTXs: EMSGUARD_enable() would
 * refuse every server SSL_CTX.  Returns 1 and says so if that is the case.
 */
static int require_refused_by_openssl(const EMSGUARD_POLICY *policy)
{
    uint32_t require = 0, server_off = 0;
    SSL_CTX *ctx;
    int off;

    if (!EMSGUARD_POLICY_get_dword(policy, EMSGUARD_REQUIRE_EMS, &require)
        || !EMSGUARD_POLICY_get_dword(policy, EMSGUARD_DISABLE_SERVER_EMS, &server_off)) {
        ERR_clear_error();
        return 0;
    }
    if (!require || server_off)
        return 0;
    ERR_set_mark();
    ctx = SSL_CTX_new(TLS_server_method());
    ERR_pop_to_mark();
    off = ctx != NULL && (SSL_CTX_get_options(ctx) & SSL_OP_NO_EXTENDED_MASTER_SECRET) != 0;
    SSL_CTX_free(ctx);
    if (off)
        fputs("emsguard policy: RequireExtendedMasterSecret=1, but this openssl.cnf also sets "
              "Options = -ExtendedMasterSecret (ssl_conf system_default): EMSGUARD_enable() "
              "refuses every server SSL_CTX (the preload: SSL_CTX_new() fails); remove that "
              "option or set RequireExtendedMasterSecret=0\n", stderr);
    return off;
}

int policy_main(int argc, char **argv)
{
    const char *config = NULL;
    char *default_file = NULL;
    int json = 0, found = 0, active = 0, i, rc = EG_EXIT_ERROR;
    EMSGUARD_POLICY *policy = NULL;
    BIO *out = NULL;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return EG_EXIT_OK;
        } else {
            fprintf(stderr, "emsguard policy: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return EG_EXIT_ERROR;
        }
    }
    /*
     * --config FILE makes FILE this process's openssl.cnf before OpenSSL
     * reads any: the provider checks the keys of the file it is loaded
     * from as the process's own, so with OPENSSL_CONF left pointing at
     * another file it would hold FILE's section against that one.
     */
    if (config != NULL && setenv("OPENSSL_CONF", config, 1) != 0) {
        fprintf(stderr, "emsguard policy: cannot set OPENSSL_CONF to %s\n", config);
        return EG_EXIT_ERROR;
    }
    if (config == NULL && (config = default_file = CONF_get1_default_config_file()) == NULL) {
        fputs("emsguard policy: cannot tell which openssl.cnf OpenSSL would read\n", stderr);
        return EG_EXIT_ERROR;
    }
    use_as_process_config(config);
    if ((policy = EMSGUARD_POLICY_new()) == NULL
        || (out = BIO_new_fp(stdout, BIO_NOCLOSE)) == NULL) {
        print_errors("out of memory");
        goto done;
    }
    /* The provider's own parser: same keys, same messages, file:line. */
    if (!EMSGUARD_POLICY_from_config(policy, config, &found)) {
        print_errors("invalid configuration; the emsguard provider would refuse to load:");
        goto done;
    }
    if (found && !provider_loads(config, &active)) {
        print_errors("OpenSSL cannot load this configuration with the emsguard provider:");
        goto done;
    }
    if (found && !active) {
        char what[1200];

        snprintf(what, sizeof(what), "%s configures the emsguard provider, but it is not active "
                 "after OpenSSL loaded the file (its module could not be loaded, or its section "
                 "lacks activate = 1); the provider and its TLS1-PRF guard are not in force", config);
        print_errors(what);
        goto done;
    }
    if (json) {
        /* The library writes the policy object; the tool wraps it. */
        json_writer w;

        BIO_printf(out, "{\"config\": ");
        (void)BIO_flush(out);
        json_init(&w, stdout, 0);
        json_string(&w, config);
        BIO_printf(out, ", \"provider_configured\": %s, \"policy\": ", found ? "true" : "false");
    } else if (found) {
        BIO_printf(out, "emsguard policy from %s (the emsguard provider loads and is active)\n\n",
            config);
    } else {
        BIO_printf(out, "%s configures no emsguard provider: EMSGUARD_enable() and the preload\n"
                        "library use the built-in defaults below.\n\n", config);
    }
    if (!EMSGUARD_POLICY_print(out, policy, json ? EMSGUARD_PRINT_JSON : 0)) {
        print_errors("cannot write the report");
        goto done;
    }
    if (json)
        BIO_printf(out, "}\n");
    else
        print_require_note(out, policy);
    (void)BIO_flush(out);
    rc = require_refused_by_openssl(policy) ? EG_EXIT_ERROR : EG_EXIT_OK;
done:
    BIO_free(out);
    EMSGUARD_POLICY_free(policy);
    OPENSSL_free(default_file);
    return rc;
}
