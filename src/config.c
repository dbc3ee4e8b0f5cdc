/* config (being written). */
#include <stdio.h>

#include "cli.h"

int
cli_check_config(int argc, char **argv)
{
	return 1;
}
