/*
 * cli_config: `aauth-proxy check-config`, and the warnings about a
 * configuration that loads but would surprise whoever runs it (shared with
 * `run`, which logs them at start).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "key.h"
#include "token.h"
#include "util.h"

size_t
cli_config_warnings(const struct config *c,
                    void (*emit)(void *arg, const char *msg), void *arg)
{
	char err[ERR_MAX], msg[ERR_MAX + 160];
	size_t i, n = 0;

	if (c->nrules == 0) {
		snprintf(msg, sizeof(msg),
		         "%s: no rules: nothing will be signed and every "
		         "request gets default_action (%s); add a rule naming "
		         "your API's host",
		         c->path, config_action_name(c->default_action));
		emit(arg, msg);
		n++;
	}
	for (i = 0; i < c->nresources; i++) {
		int rc;

		if (c->resources[i].token_file == NULL)
			continue; /* tokens from the issuer (aauth) */
		rc = token_file_check(c->resources[i].token_file, err);

		if (rc == 0)
			continue;
		snprintf(msg, sizeof(msg), "%s: resources.%s.token_file: %s%s",
		         c->path, c->resources[i].name, err,
		         rc == -1 ? " (requests to it get 503 until it holds "
		                    "the access token)"
		                  : "");
		emit(arg, msg);
		n++;
	}
	return n;
}

static void
cli_config_warn_stderr(void *arg, const char *msg)
{
	fprintf(stderr, "aauth-proxy: warning: %s\n", msg);
}

/* check-config without -c: the config `./dev.sh run` uses when run from
 * the repository, else the one the systemd unit names. */
static const char *const cli_config_default_paths[] = {
    CONFIG_DEFAULT_PATH,
    CONFIG_SYSTEM_PATH,
};

static void
cli_check_config_usage(FILE *out)
{
	fprintf(out,
	        "usage: aauth-proxy check-config [-c FILE]\n\n"
	        "Parse and validate a configuration file and the key it "
	        "names; prints a\n"
	        "summary, or the field at fault, and warns about token files "
	        "that are\n"
	        "missing, empty or hold a placeholder. Without -c: %s, else "
	        "%s.\n\n"
	        "  -c, --config FILE   configuration file (JSON); may also be "
	        "given as the\n"
	        "                      only argument\n"
	        "  -h, --help          show this help\n",
	        CONFIG_DEFAULT_PATH, CONFIG_SYSTEM_PATH);
}

int
cli_check_config(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char err[ERR_MAX];
	const char *path = NULL;
	struct config *c;
	struct key k;
	size_t j;
	int ch;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'h':
			cli_check_config_usage(stdout);
			return 0;
		default:
			return cli_badopt("check-config", ch, argv,
			                  cli_check_config_usage);
		}
	}
	if (optind < argc && path == NULL)
		path = argv[optind++];
	if (optind < argc) {
		fprintf(
		    stderr,
		    "aauth-proxy check-config: unexpected argument '%s'\n\n",
		    argv[optind]);
		cli_check_config_usage(stderr);
		return 2;
	}
	if (path == NULL) {
		for (j = 0; j < sizeof(cli_config_default_paths) /
		                    sizeof(cli_config_default_paths[0]);
		     j++)
			if (access(cli_config_default_paths[j], F_OK) == 0) {
				path = cli_config_default_paths[j];
				break;
			}
		if (path == NULL) {
			fprintf(stderr,
			        "aauth-proxy check-config: no -c FILE given, "
			        "and neither %s nor %s exists\n"
			        "usage: aauth-proxy check-config [-c FILE]\n",
			        CONFIG_DEFAULT_PATH, CONFIG_SYSTEM_PATH);
			return 2;
		}
		fprintf(stderr,
		        "aauth-proxy check-config: no -c FILE given; checking "
		        "%s\n",
		        path);
	}
	if ((c = config_load(path, err)) == NULL) {
		fprintf(stderr, "aauth-proxy: %s\n", err);
		return 1;
	}
	/* The key is part of a working configuration: check it the same way
	 * `run` will, so a bad path or mode shows up here and not at start. */
	if (key_load(&k, c->key_file, err) == -1) {
		fprintf(stderr, "aauth-proxy: %s: key.file: %s\n", path, err);
		config_free(c);
		return 1;
	}
	key_free(&k);
	for (j = 0; j < c->nresources; j++)
		config_aauth_warn(&c->resources[j]);
	cli_config_warnings(c, cli_config_warn_stderr, NULL);
	printf("%s: ok: %zu listener(s), %zu resource(s), %zu rule(s), "
	       "unmatched hosts: %s\n",
	       path, c->nlisten, c->nresources, c->nrules,
	       config_action_name(c->default_action));
	config_free(c);
	return 0;
}
