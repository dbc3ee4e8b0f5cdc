/* proxy: the daemon (being written). */
#include <stdio.h>

#include "cli.h"

int
cli_run(int argc, char **argv)
{
	fprintf(stderr, "aauth-proxy run: not available in this build\n");
	return 1;
}
