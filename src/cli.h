/*
 * cli: the subcommands. Each takes the arguments after its name
 * (argv[0] is the subcommand) and returns the process exit status:
 * 0 success, 1 failure/invalid, 2 usage error.
 */
#ifndef AAUTH_CLI_H
#define AAUTH_CLI_H

#include <stdio.h>

int cli_keygen(int argc, char **argv);
int cli_pubkey(int argc, char **argv);
int cli_sign(int argc, char **argv);
int cli_verify(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_check_config(int argc, char **argv);
int cli_token(int argc, char **argv);

/* Report an option getopt_long refused (c is its return value), naming
 * the option, then print usage to stderr; returns 2 (usage error). */
int cli_badopt(const char *cmd, int c, char **argv, void (*usage)(FILE *));

#endif
