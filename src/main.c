/*
 * main: the aauth-proxy command line. Dispatches to the subcommands; the
 * daemon itself is `aauth-proxy run`.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "version.h"

struct main_cmd {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
};

static const struct main_cmd main_cmds[] = {
    {"run", cli_run, "run the signing proxy (-c FILE)"},
    {"check-config", cli_check_config, "validate a configuration file"},
    {"token", cli_token,
     "fetch each resource's token now and show the outcome"},
    {"keygen", cli_keygen, "generate an Ed25519 agent key and print its JWK"},
    {"pubkey", cli_pubkey,
     "print the public JWK, JWKS and thumbprint of a key"},
    {"sign", cli_sign, "sign an HTTP request read from a file or stdin"},
    {"verify", cli_verify, "verify a signed HTTP request"},
    {"demo-resource", cli_demo_resource,
     "serve a resource that verifies signed requests (for trying)"},
    {"ca", cli_ca, "create (init) or show the local CA for HTTPS"},
    {"env", cli_env,
     "print the exports that point agents at the proxy and its CA"},
    {"exec", cli_exec, "run a program with those exports (-- CMD ARGS)"},
};

static void
main_usage(FILE *out)
{
	size_t i;

	fprintf(out, "usage: aauth-proxy <command> [options]\n\n"
	             "A local signing forward proxy that gives AI agents an "
	             "AAuth identity.\n\ncommands:\n");
	for (i = 0; i < sizeof(main_cmds) / sizeof(main_cmds[0]); i++)
		fprintf(out, "  %-14s %s\n", main_cmds[i].name,
		        main_cmds[i].summary);
	fprintf(out, "\n`aauth-proxy <command> --help` shows a command's "
	             "options.\n");
}

int
main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		main_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		main_usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 ||
	    strcmp(argv[1], "version") == 0) {
		printf("aauth-proxy %s\n", AAUTH_VERSION);
		return 0;
	}
	if (sodium_init() < 0) {
		fprintf(stderr,
		        "aauth-proxy: libsodium failed to initialise\n");
		return 1;
	}
	for (i = 0; i < sizeof(main_cmds) / sizeof(main_cmds[0]); i++)
		if (strcmp(argv[1], main_cmds[i].name) == 0)
			return main_cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "aauth-proxy: unknown command '%s'\n\n", argv[1]);
	main_usage(stderr);
	return 2;
}
