/*
 * cli: the subcommands. Each takes the arguments after its name
 * (argv[0] is the subcommand) and returns the process exit status:
 * 0 success, 1 failure/invalid, 2 usage error.
 */
#ifndef AAUTH_CLI_H
#define AAUTH_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "httpsig.h"
#include "key.h"

int cli_keygen(int argc, char **argv);
int cli_pubkey(int argc, char **argv);
int cli_sign(int argc, char **argv);
int cli_verify(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_check_config(int argc, char **argv);
int cli_demo_resource(int argc, char **argv);

/* What `verify` and `demo-resource` check a request against: a built-in
 * profile, optionally a required component list and another label, and
 * a public key. */
struct cli_verifier {
	struct httpsig_profile profile;
	struct key key;
	const char *label; /* NULL: the profile's */
};

/* Set up v from the command's options. Returns 0; 2 for a usage error
 * (bad profile, label or components); 1 when the key cannot be loaded.
 * The reason is printed on stderr under "aauth-proxy CMD". Free v with
 * cli_verifier_free whatever the result. */
int cli_verifier_init(struct cli_verifier *v, const char *cmd,
                      const char *profile, const char *label,
                      const char *components, const char *keyfile);
/* httpsig_verify with v's profile, key and label; o may be NULL. */
int cli_verifier_check(const struct cli_verifier *v,
                       const struct http_request *req,
                       const struct httpsig_verify_opts *o, struct buf *base,
                       char *err);
const char *cli_verifier_label(const struct cli_verifier *v);
void cli_verifier_free(struct cli_verifier *v);

struct config;

/* What loads but would surprise whoever runs it: no rules, token files
 * that are missing, empty, unusable, readable by others or hold a
 * placeholder. emit gets one complete sentence per warning (never a
 * token); returns how many. `run` logs them, check-config prints them. */
size_t cli_config_warnings(const struct config *c,
                           void (*emit)(void *arg, const char *msg), void *arg);
int cli_ca(int argc, char **argv);
int cli_env(int argc, char **argv);
int cli_exec(int argc, char **argv);
int cli_token(int argc, char **argv);

/* Report an option getopt_long refused (c is its return value), naming
 * the option, then print usage to stderr; returns 2 (usage error). */
int cli_badopt(const char *cmd, int c, char **argv, void (*usage)(FILE *));

#endif
