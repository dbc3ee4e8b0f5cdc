/*
 * cli_env: `env` (the shell exports that point common runtimes at the
 * proxy and make them trust its CA) and `exec` (run a program with them,
 * against a proxy that must already be listening).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "netaddr.h"
#include "util.h"

/* Where Debian (and most distributions) keep the system trust bundle. */
#define CLI_ENV_SYSTEM_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define CLI_ENV_MAX           16

struct cli_env {
	const char *name[CLI_ENV_MAX];
	char *value[CLI_ENV_MAX];
	size_t n;
	char listen[160]; /* host:port the proxy listens on */
};

static void
cli_env_usage(FILE *out)
{
	fprintf(out,
	        "usage: aauth-proxy env -c FILE\n"
	        "       aauth-proxy exec -c FILE -- COMMAND [ARGS...]\n"
	        "\n"
	        "env prints the exports that make curl, Python (requests, "
	        "httpx), Node,\ngit and OpenSSL-based programs send their "
	        "requests through the proxy\nand trust its local CA:\n"
	        "  eval \"$(aauth-proxy env -c FILE)\"\n"
	        "exec runs COMMAND with that environment, against the proxy "
	        "already\nlistening for FILE.\n"
	        "\n"
	        "options:\n"
	        "  -c, --config FILE  configuration file (JSON)\n"
	        "  -h, --help         show this help\n");
}

static void
cli_env_add(struct cli_env *e, const char *name, const char *value)
{
	e->name[e->n] = name;
	e->value[e->n++] = xstrdup(value);
}

static void
cli_env_free(struct cli_env *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		free(e->value[i]);
	e->n = 0;
}

/* The system bundle and our CA in one file beside the CA, for runtimes
 * that take one file only (OpenSSL's SSL_CERT_FILE, requests, curl).
 * Rewritten only when it would change. */
static int
cli_env_bundle(const struct config *cfg, char *out, size_t outlen, char *err)
{
	struct buf sys, ca, want, have;
	char *tmp = xstrdup(cfg->ca_cert_file), tmpf[4200];
	const char *sysfile = getenv("AAUTH_SYSTEM_CA_BUNDLE");
	int fd, rc = -1;

	snprintf(out, outlen, "%s/ca-bundle.pem", dirname(tmp));
	free(tmp);
	buf_init(&sys);
	buf_init(&ca);
	buf_init(&want);
	buf_init(&have);
	if (util_read_file(cfg->ca_cert_file, &ca, 1 << 20, err) == -1)
		goto out;
	if (sysfile == NULL)
		sysfile = CLI_ENV_SYSTEM_BUNDLE;
	if (util_read_file(sysfile, &sys, 16 << 20, NULL) == -1)
		fprintf(stderr,
		        "aauth-proxy: warning: no system trust bundle at %s; "
		        "the bundle holds the proxy CA only\n",
		        sysfile);
	buf_append(&want, sys.data ? sys.data : "", sys.len);
	if (want.len > 0 && want.data[want.len - 1] != '\n')
		buf_appendc(&want, '\n');
	buf_appends(&want, "# aauth-proxy local CA\n");
	buf_append(&want, ca.data, ca.len);
	if (util_read_file(out, &have, 32 << 20, NULL) == 0 &&
	    have.len == want.len &&
	    memcmp(have.data, want.data, want.len) == 0) {
		rc = 0;
		goto out;
	}
	snprintf(tmpf, sizeof(tmpf), "%s.tmp.%ld", out, (long)getpid());
	fd = open(tmpf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1 || write(fd, want.data, want.len) != (ssize_t)want.len ||
	    close(fd) == -1 || rename(tmpf, out) == -1) {
		err_set(err, "cannot write %s: %s", out, strerror(errno));
		unlink(tmpf);
		goto out;
	}
	rc = 0;
out:
	buf_free(&sys);
	buf_free(&ca);
	buf_free(&want);
	buf_free(&have);
	return rc;
}

/* Loopback names go to the proxy only when a rule names them (a local
 * test resource); otherwise local servers are reached directly, since
 * the proxy would refuse them (block_private_addresses). */
static void
cli_env_no_proxy(const struct config *cfg, struct buf *b)
{
	static const char *const names[] = {"localhost", "127.0.0.1", "::1"};
	static const char *const canon[] = {"localhost", "127.0.0.1", "[::1]"};
	size_t i, j;
	int named;

	for (i = 0; i < 3; i++) {
		named = 0;
		for (j = 0; j < cfg->nrules; j++)
			if (cfg->rules[j].action != ROUTE_DENY &&
			    strcmp(cfg->rules[j].host, canon[i]) == 0)
				named = 1;
		if (named)
			continue;
		if (b->len)
			buf_appendc(b, ',');
		buf_appends(b, names[i]);
	}
}

static int
cli_env_build(const struct config *cfg, struct cli_env *e, char *err)
{
	char url[200], bundle[4096];
	struct buf np;
	size_t i;

	e->listen[0] = '\0';
	for (i = 0; i < cfg->nlisten; i++)
		if (strncmp(cfg->listen[i], "unix:", 5) != 0) {
			snprintf(e->listen, sizeof(e->listen), "%s",
			         cfg->listen[i]);
			break;
		}
	if (e->listen[0] == '\0') {
		err_set(err,
		        "%s listens on unix sockets only; HTTP_PROXY "
		        "needs a TCP listener (listen: \"127.0.0.1:8787\")",
		        cfg->path);
		return -1;
	}
	if (access(cfg->ca_cert_file, R_OK) == -1) {
		err_set(err,
		        "no local CA at %s (%s); create it with `aauth-proxy "
		        "ca init -c %s`",
		        cfg->ca_cert_file, strerror(errno), cfg->path);
		return -1;
	}
	if (cli_env_bundle(cfg, bundle, sizeof(bundle), err) == -1)
		return -1;
	snprintf(url, sizeof(url), "http://%s", e->listen);
	cli_env_add(e, "HTTP_PROXY", url);
	cli_env_add(e, "http_proxy", url);
	cli_env_add(e, "HTTPS_PROXY", url);
	cli_env_add(e, "https_proxy", url);
	buf_init(&np);
	cli_env_no_proxy(cfg, &np);
	cli_env_add(e, "NO_PROXY", np.data ? np.data : "");
	cli_env_add(e, "no_proxy", np.data ? np.data : "");
	buf_free(&np);
	cli_env_add(e, "NODE_USE_ENV_PROXY", "1");
	cli_env_add(e, "SSL_CERT_FILE", bundle);
	cli_env_add(e, "REQUESTS_CA_BUNDLE", bundle);
	cli_env_add(e, "CURL_CA_BUNDLE", bundle);
	cli_env_add(e, "GIT_SSL_CAINFO", bundle);
	cli_env_add(e, "NODE_EXTRA_CA_CERTS", cfg->ca_cert_file);
	return 0;
}

/* A value in single quotes, for sh/bash/zsh. */
static void
cli_env_quote(const char *v)
{
	putchar('\'');
	for (; *v; v++) {
		if (*v == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*v);
	}
	putchar('\'');
}

/* Is something accepting on host:port? 0 yes; -1 with err. */
static int
cli_env_probe(const char *listen, char *err)
{
	char host[256];
	const char *colon = strrchr(listen, ':'), *h = listen;
	struct addrinfo hints, *res = NULL;
	struct pollfd pfd;
	socklen_t sl = sizeof(int);
	size_t hl;
	int fd, e = 0, rc;

	hl = colon ? (size_t)(colon - listen) : 0;
	if (hl >= 2 && listen[0] == '[') {
		h++;
		hl -= 2;
	}
	if (colon == NULL || hl == 0 || hl >= sizeof(host)) {
		err_set(err, "bad listen address '%s'", listen);
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
		err_set(err, "%s: %s", listen, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            0);
	if (fd == -1) {
		err_set(err, "socket: %s", strerror(errno));
		freeaddrinfo(res);
		return -1;
	}
	if (connect(fd, res->ai_addr, res->ai_addrlen) == -1) {
		e = errno;
		if (e == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			e = poll(&pfd, 1, 2000) == 1 ? 0 : ETIMEDOUT;
			if (e == 0 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) == -1)
				e = errno;
		}
	}
	close(fd);
	freeaddrinfo(res);
	if (e != 0) {
		err_set(err, "%s", strerror(e));
		return -1;
	}
	return 0;
}

static int
cli_env_main(int argc, char **argv, int exec_mode)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *cmd = exec_mode ? "exec" : "env", *cfgpath = NULL;
	struct cli_env e;
	struct config *cfg;
	char err[ERR_MAX];
	size_t i;
	int c;

	memset(&e, 0, sizeof(e));
	optind = 1;
	opterr = 0;
	/* '+': stop at the command, its options are its own. */
	while ((c = getopt_long(argc, argv, "+:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cfgpath = optarg;
			break;
		case 'h':
			cli_env_usage(stdout);
			return 0;
		default:
			return cli_badopt(cmd, c, argv, cli_env_usage);
		}
	}
	if (cfgpath == NULL) {
		fprintf(stderr, "aauth-proxy %s: -c FILE is required\n\n", cmd);
		cli_env_usage(stderr);
		return 2;
	}
	if (exec_mode && optind >= argc) {
		fprintf(stderr,
		        "aauth-proxy exec: which command? "
		        "aauth-proxy exec -c FILE -- COMMAND [ARGS...]\n");
		return 2;
	}
	if (!exec_mode && optind < argc) {
		fprintf(stderr, "aauth-proxy env: unexpected argument '%s'\n\n",
		        argv[optind]);
		cli_env_usage(stderr);
		return 2;
	}
	if ((cfg = config_load(cfgpath, err)) == NULL) {
		fprintf(stderr, "aauth-proxy: %s\n", err);
		return 1;
	}
	if (cli_env_build(cfg, &e, err) == -1) {
		fprintf(stderr, "aauth-proxy %s: %s\n", cmd, err);
		config_free(cfg);
		return 1;
	}
	if (!exec_mode) {
		printf("# aauth-proxy on %s signs for the rules in %s\n",
		       e.listen, cfgpath);
		for (i = 0; i < e.n; i++) {
			printf("export %s=", e.name[i]);
			cli_env_quote(e.value[i]);
			putchar('\n');
		}
		cli_env_free(&e);
		config_free(cfg);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	if (cli_env_probe(e.listen, err) == -1) {
		fprintf(stderr,
		        "aauth-proxy exec: no proxy is listening on %s (%s); "
		        "start it first: aauth-proxy run -c %s\n",
		        e.listen, err, cfgpath);
		cli_env_free(&e);
		config_free(cfg);
		return 1;
	}
	for (i = 0; i < e.n; i++)
		setenv(e.name[i], e.value[i], 1);
	cli_env_free(&e);
	config_free(cfg);
	execvp(argv[optind], argv + optind);
	fprintf(stderr, "aauth-proxy exec: %s: %s\n", argv[optind],
	        strerror(errno));
	return errno == ENOENT ? 127 : 126;
}

int
cli_env(int argc, char **argv)
{
	return cli_env_main(argc, argv, 0);
}

int
cli_exec(int argc, char **argv)
{
	return cli_env_main(argc, argv, 1);
}
