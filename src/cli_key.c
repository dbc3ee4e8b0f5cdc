/* cli_key: keygen and pubkey (being written). */
#include <stdio.h>

#include "cli.h"

int
cli_keygen(int argc, char **argv)
{
	fprintf(stderr, "aauth-proxy keygen: not available in this build\n");
	return 1;
}

int
cli_pubkey(int argc, char **argv)
{
	fprintf(stderr, "aauth-proxy pubkey: not available in this build\n");
	return 1;
}
