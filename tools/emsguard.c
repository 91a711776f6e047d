/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard -- what Extended Master Secret policy is in force here, and does
 * a remote TLS 1.2 server handle EMS on resumption the way Windows clients
 * require, and what do the processes running the policy count right now.
 * Dispatches to the subcommands.
 */
#include <stdio.h>
#include <string.h>
#include "commands.h"
#include "emsguard.h"

static void usage(FILE *out)
{
    fputs("usage: emsguard policy [--config FILE] [--json]\n"
          "       emsguard probe HOST[:PORT] [--sni NAME] [--starttls PROTO] [--json]\n"
          "                      [--timeout S] [--max-handshakes N]\n"
          "       emsguard probe --targets FILE [--parallel N] [--json] ...\n"
          "       emsguard stats [--dir DIR] [--json | --prometheus]\n"
          "       emsguard --version\n"
          "Exit status: 0 valid/compliant, 1 findings, 2 invalid configuration or\n"
          "the probe could not run.  See `emsguard COMMAND --help`.\n", out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EG_EXIT_ERROR;
    }
    if (strcmp(argv[1], "policy") == 0)
        return policy_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "probe") == 0)
        return probe_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "stats") == 0)
        return stats_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "--version") == 0) {
        printf("emsguard %s\n", EMSGUARD_VERSION_STR);
        return EG_EXIT_OK;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return EG_EXIT_OK;
    }
    fprintf(stderr, "emsguard: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EG_EXIT_ERROR;
}
