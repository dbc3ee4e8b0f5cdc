/*
 * cli_run: `aauth-proxy run` — parse the options, load the configuration
 * and hand it to the daemon (proxy_run).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "config.h"
#include "log.h"
#include "proxy.h"
#include "util.h"

/* cli_config_warnings' sink for `run`: the log, at start. */
static void
cli_run_warn(void *arg, const char *msg)
{
	log_warn("%s", msg);
}

static void
cli_run_usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: aauth-proxy run -c FILE [--listen ADDR]... "
	    "[--log-level LEVEL]\n\n"
	    "  -c, --config FILE   configuration file (JSON)\n"
	    "  -l, --listen ADDR   HOST:PORT, [IPv6]:PORT or unix:/path; "
	    "replaces the\n"
	    "                      config's listen list (repeatable, "
	    "loopback only)\n"
	    "  -L, --log-level LEVEL  error, warn, info or debug\n"
	    "  -h, --help          show this help\n\n"
	    "SIGHUP reloads the config, key and CA (a bad one is rejected "
	    "and the\n"
	    "old one keeps serving); SIGTERM drains (limits.drain_timeout_ms)"
	    " and\n"
	    "exits. Health, status and metrics: admin.listen "
	    "(127.0.0.1:8788).\n");
}

int
cli_run(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"listen", required_argument, NULL, 'l'},
	    {"log-level", required_argument, NULL, 'L'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *cfgpath = NULL, *level = NULL;
	char **listen, err[ERR_MAX];
	size_t nlisten = 0;
	struct config *cfg;
	enum log_level lv = LOG_INFO;
	int c, rc;

	listen = xcalloc((size_t)argc + 1, sizeof(char *));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:l:L:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cfgpath = optarg;
			break;
		case 'l':
			listen[nlisten++] = optarg;
			break;
		case 'L':
			level = optarg;
			break;
		case 'h':
			cli_run_usage(stdout);
			free(listen);
			return 0;
		default:
			free(listen);
			return cli_badopt("run", c, argv, cli_run_usage);
		}
	}
	rc = 2;
	if (optind < argc) {
		fprintf(stderr, "aauth-proxy run: unexpected argument '%s'\n\n",
		        argv[optind]);
		cli_run_usage(stderr);
		goto out;
	}
	if (cfgpath == NULL) {
		fprintf(stderr, "aauth-proxy run: -c FILE is required\n\n");
		cli_run_usage(stderr);
		goto out;
	}
	if (level != NULL && log_level_parse(level, &lv) == -1) {
		fprintf(stderr,
		        "aauth-proxy run: --log-level '%s': expected error, "
		        "warn, info or debug\n",
		        level);
		goto out;
	}
	rc = 1;
	cfg = config_load(cfgpath, err);
	if (cfg == NULL) {
		fprintf(stderr, "aauth-proxy: %s\n", err);
		goto out;
	}
	log_init(level ? lv : cfg->log_level, stderr);
	cli_config_warnings(cfg, cli_run_warn, NULL);
	{
		struct proxy_opts po = {listen, nlisten, level != NULL};

		rc = proxy_run(cfg, &po);
	}
out:
	free(listen);
	return rc;
}
