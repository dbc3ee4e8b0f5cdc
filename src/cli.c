/*
 * cli: helpers shared by the subcommands (option errors), so every
 * command reports a bad option the same way.
 */
#include "cli.h"

#include <getopt.h>
#include <string.h>

int
cli_badopt(const char *cmd, int c, char **argv, void (*usage)(FILE *))
{
	const char *opt = argv[optind - 1];
	char shortopt[3] = {'-', (char)optopt, '\0'};

	/* Inside a cluster like -xz, argv[optind - 1] is not the option. */
	if (optopt != 0 && strncmp(opt, "--", 2) != 0)
		opt = shortopt;
	if (c == ':')
		fprintf(stderr, "aauth-proxy %s: option '%s' needs a value\n",
		        cmd, opt);
	else
		fprintf(stderr, "aauth-proxy %s: unknown option '%s'\n", cmd,
		        opt);
	fprintf(stderr, "\n");
	usage(stderr);
	return 2;
}
