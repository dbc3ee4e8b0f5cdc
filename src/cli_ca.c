/*
 * cli_ca: `ca init` (create the local CA that intercepted TLS is signed
 * with) and `ca show` (where it is, its fingerprint, its PEM), both from
 * the paths a configuration names.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "key.h"
#include "mitm.h"
#include "util.h"

static void
cli_ca_usage(FILE *out)
{
	fprintf(out,
	        "usage: aauth-proxy ca init -c FILE [--force]\n"
	        "       aauth-proxy ca show -c FILE\n"
	        "\n"
	        "The local CA that the proxy signs intercepted TLS with "
	        "(ca.cert_file and\n"
	        "ca.key_file in the config; default ca.pem and ca-key.pem "
	        "beside the key file).\n"
	        "Agents must trust it: `aauth-proxy env -c FILE` prints the "
	        "variables.\n"
	        "\n"
	        "  init   create an ECDSA P-256 CA (key mode 0600); refuses "
	        "to replace one\n"
	        "  show   print the certificate's path, SHA-256 fingerprint "
	        "and PEM\n"
	        "\n"
	        "options:\n"
	        "  -c, --config FILE  configuration file (JSON)\n"
	        "  -f, --force        init: replace an existing CA\n"
	        "  -h, --help         show this help\n");
}

static int
cli_ca_show_file(const char *path)
{
	char fp[96], err[ERR_MAX], *pem = NULL;

	if (mitm_ca_describe(path, fp, &pem, err) == -1) {
		fprintf(stderr, "aauth-proxy ca: %s\n", err);
		return 1;
	}
	printf("path: %s\nsha256 fingerprint: %s\n%s", path, fp, pem);
	free(pem);
	return 0;
}

/* "aauth-proxy CA on HOST for key THUMBPRINT": which machine and which
 * agent identity a trusted CA belongs to, for whoever finds it in a trust
 * store. */
static void
cli_ca_name(const struct config *cfg, char *cn, size_t len)
{
	char host[64] = "localhost", err[ERR_MAX];
	struct key k;

	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	if (key_load(&k, cfg->key_file, err) == 0) {
		snprintf(cn, len, "aauth-proxy CA on %.20s for key %.12s", host,
		         k.thumbprint);
		key_free(&k);
	} else {
		snprintf(cn, len, "aauth-proxy CA on %.40s", host);
	}
}

int
cli_ca(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"force", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *cfgpath = NULL, *sub;
	char err[ERR_MAX], cn[128];
	struct config *cfg;
	int c, force = 0, rc;

	if (argc >= 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		cli_ca_usage(stdout);
		return 0;
	}
	if (argc < 2 ||
	    (strcmp(argv[1], "init") != 0 && strcmp(argv[1], "show") != 0)) {
		fprintf(stderr, "aauth-proxy ca: %s%s%s\n\n",
		        argc < 2 ? "which one: init or show?" : "unknown '",
		        argc < 2 ? "" : argv[1], argc < 2 ? "" : "'");
		cli_ca_usage(stderr);
		return 2;
	}
	sub = argv[1];
	argc--;
	argv++;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:fh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cfgpath = optarg;
			break;
		case 'f':
			force = 1;
			break;
		case 'h':
			cli_ca_usage(stdout);
			return 0;
		default:
			return cli_badopt("ca", c, argv, cli_ca_usage);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "aauth-proxy ca: unexpected argument '%s'\n\n",
		        argv[optind]);
		cli_ca_usage(stderr);
		return 2;
	}
	if (cfgpath == NULL) {
		fprintf(stderr, "aauth-proxy ca %s: -c FILE is required\n\n",
		        sub);
		cli_ca_usage(stderr);
		return 2;
	}
	if (force && strcmp(sub, "init") != 0) {
		fprintf(stderr, "aauth-proxy ca show: --force is for init\n");
		return 2;
	}
	if ((cfg = config_load(cfgpath, err)) == NULL) {
		fprintf(stderr, "aauth-proxy: %s\n", err);
		return 1;
	}
	if (strcmp(sub, "show") == 0) {
		if (access(cfg->ca_cert_file, F_OK) == -1) {
			fprintf(stderr,
			        "aauth-proxy ca show: no CA at %s yet; create "
			        "one with `aauth-proxy ca init -c %s`\n",
			        cfg->ca_cert_file, cfgpath);
			config_free(cfg);
			return 1;
		}
		rc = cli_ca_show_file(cfg->ca_cert_file);
		config_free(cfg);
		return rc;
	}
	cli_ca_name(cfg, cn, sizeof(cn));
	if (mitm_ca_create(cfg->ca_cert_file, cfg->ca_key_file, cn, force,
	                   err) == -1) {
		fprintf(stderr, "aauth-proxy ca init: %s\n", err);
		config_free(cfg);
		return 1;
	}
	printf("Created the local CA \"%s\"\nkey: %s (mode 0600)\n", cn,
	       cfg->ca_key_file);
	rc = cli_ca_show_file(cfg->ca_cert_file);
	if (rc == 0)
		printf("\nAgents must trust this CA; `eval \"$(aauth-proxy env "
		       "-c %s)\"` sets the\nproxy and the trust variables for "
		       "curl, Python, Node, git and OpenSSL.\n",
		       cfgpath);
	config_free(cfg);
	return rc;
}
