/* SPDX-License-Identifier: Apache-2.0 */
/* The subcommands of the emsguard tool; each returns the exit status. */
#ifndef EMSGUARD_TOOLS_COMMANDS_H
#define EMSGUARD_TOOLS_COMMANDS_H

/* Exit statuses shared by every subcommand. */
#define EG_EXIT_OK 0 /* compliant / valid */
#define EG_EXIT_FINDINGS 1 /* the probe found something */
#define EG_EXIT_ERROR 2 /* could not run, or invalid configuration */

/* argv[0] is the subcommand name ("policy", "probe"). */
int policy_main(int argc, char **argv);
int probe_main(int argc, char **argv);
int stats_main(int argc, char **argv);

#endif
