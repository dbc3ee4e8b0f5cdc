/* cli_sign: sign and verify (being written). */
#include <stdio.h>

#include "cli.h"

int
cli_sign(int argc, char **argv)
{
	fprintf(stderr, "aauth-proxy sign: not available in this build\n");
	return 1;
}

int
cli_verify(int argc, char **argv)
{
	fprintf(stderr, "aauth-proxy verify: not available in this build\n");
	return 1;
}
