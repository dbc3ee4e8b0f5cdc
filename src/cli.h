/*
 * cli: the subcommands. Each takes the arguments after its name
 * (argv[0] is the subcommand) and returns the process exit status:
 * 0 success, 1 failure/invalid, 2 usage error.
 */
#ifndef AAUTH_CLI_H
#define AAUTH_CLI_H

int cli_keygen(int argc, char **argv);
int cli_pubkey(int argc, char **argv);
int cli_sign(int argc, char **argv);
int cli_verify(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_check_config(int argc, char **argv);

#endif
