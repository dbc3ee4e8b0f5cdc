/*
 * cli_token: `aauth-proxy token -c FILE [--resource R]...` — one fetch per
 * resource now, with the daemon's own modules on a small event loop of its
 * own, and the outcome printed without a secret: state, expiry, scope, a
 * short hash of the token, or the consent URL. The first thing to run
 * after registering the agent.
 */
#include <curl/curl.h>
#include <event2/event.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "fetch.h"
#include "gen.h"
#include "log.h"
#include "token.h"
#include "token_src.h"
#include "upstream.h"
#include "util.h"

struct cli_token_res {
	const struct config_resource *r;
	struct token_waiter *w;
	int pending;
	int ok;
	char fail[600];
};

struct cli_token {
	struct event_base *base;
	size_t pending;
};

static struct cli_token cli_tok;

static void
cli_token_usage(FILE *out)
{
	fprintf(out,
	        "usage: aauth-proxy token -c FILE [--resource NAME]...\n\n"
	        "Fetch a token for each resource now (every resource, or each "
	        "--resource) and\nprint the outcome without secrets: state, "
	        "expiry, scope, a short hash of\nthe token, or the consent "
	        "URL. A state_file is written as the daemon would.\n"
	        "Exit 0 when every named resource holds a token.\n\n"
	        "  -c, --config FILE      configuration file (JSON)\n"
	        "  -r, --resource NAME    only this resource (repeatable)\n"
	        "  -L, --log-level LEVEL  error, warn, info or debug\n"
	        "  -h, --help             show this help\n");
}

static void
cli_token_ready(void *arg, struct token_value *v, const struct token_fail *f)
{
	struct cli_token_res *t = arg;

	t->w = NULL;
	t->pending = 0;
	t->ok = v != NULL;
	if (f != NULL)
		snprintf(t->fail, sizeof(t->fail), "%s", f->detail);
	token_value_unref(v);
	if (--cli_tok.pending == 0)
		event_base_loopexit(cli_tok.base, NULL);
}

static void
cli_token_print(struct token_store *ts, struct cli_token_res *t)
{
	struct token_status st;
	char when[64];
	time_t at;
	struct tm tm;

	if (token_status_get(ts, t->r->name, &st) == -1 || !st.has_token) {
		t->ok = 0;
		if (st.consent_url != NULL) {
			printf("%s: consent required: open %s in a browser and "
			       "approve. %s\n",
			       t->r->name, st.consent_url,
			       t->r->aauth && t->r->aauth->redirect_uri
			           ? "The running proxy receives the approval "
			             "on redirect_uri."
			           : "Set resources.NAME.aauth.redirect_uri so "
			             "the proxy can receive it.");
			return;
		}
		printf("%s: no token (%s): %s\n", t->r->name,
		       token_state_name(st.state),
		       t->fail[0]      ? t->fail
		       : st.last_error ? st.last_error
		                       : "no answer in time");
		return;
	}
	t->ok = 1;
	if (t->r->aauth == NULL) {
		printf("%s: valid, from token_file %s, token sha256 %s\n",
		       t->r->name, t->r->token_file, st.hash);
		return;
	}
	at = time(NULL) + (time_t)st.expires_in_s;
	gmtime_r(&at, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s: %s, expires in %lld s (%s), scope %s%s%s, token sha256 "
	       "%s, refresh token: %s\n",
	       t->r->name, token_state_name(st.state),
	       (long long)st.expires_in_s, when, st.scope ? "\"" : "",
	       st.scope ? st.scope : "(not given)", st.scope ? "\"" : "",
	       st.hash, st.has_refresh_token ? "yes" : "no");
}

static int
cli_token_run(struct config *cfg, char **names, size_t nnames)
{
	struct cli_token_res *res = NULL;
	struct token_store *ts = NULL;
	struct upstream *up = NULL;
	struct token_value *v;
	struct token_fail f;
	struct timeval tv;
	struct gen *g;
	char err[ERR_MAX];
	size_t i, j, n = 0;
	int rc = 1;

	if ((g = gen_new(cfg, err)) == NULL) {
		fprintf(stderr, "aauth-proxy: %s\n", err);
		return 1;
	}
	res = xcalloc(cfg->nresources + 1, sizeof(*res));
	for (i = 0; i < cfg->nresources; i++) {
		if (nnames > 0) {
			for (j = 0; j < nnames; j++)
				if (strcmp(names[j], cfg->resources[i].name) ==
				    0)
					break;
			if (j == nnames)
				continue;
		}
		res[n++].r = &cfg->resources[i];
	}
	if (n == 0) {
		fprintf(stderr, "aauth-proxy token: no resources to fetch\n");
		goto out;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	memset(&cli_tok, 0, sizeof(cli_tok));
	cli_tok.base = event_base_new();
	if (cli_tok.base == NULL ||
	    (up = upstream_new(cli_tok.base, err)) == NULL) {
		fprintf(stderr, "aauth-proxy: %s\n",
		        cli_tok.base ? err : "cannot create an event loop");
		goto out;
	}
	ts = token_store_new(cli_tok.base, up);
	for (i = 0; i < n; i++) {
		switch (token_fetch_now(ts, g, res[i].r, &v, &f,
		                        cli_token_ready, &res[i], &res[i].w)) {
		case 1:
			res[i].pending = 1;
			cli_tok.pending++;
			break;
		case 0:
			res[i].ok = 1;
			token_value_unref(v);
			break;
		default:
			snprintf(res[i].fail, sizeof(res[i].fail), "%s",
			         f.detail);
			break;
		}
	}
	if (cli_tok.pending > 0) {
		/* An auth that turns into a refresh fallback is two
		 * exchanges, each with a source and a POST. */
		tv.tv_sec = (time_t)(fetch_timeout_ms(g) * 4 / 1000 +
		                     TOKEN_SRC_CMD_TIMEOUT_MS / 1000);
		tv.tv_usec = 0;
		event_base_loopexit(cli_tok.base, &tv);
		event_base_dispatch(cli_tok.base);
	}
	rc = 0;
	for (i = 0; i < n; i++) {
		if (res[i].pending) {
			token_cancel(res[i].w);
			res[i].w = NULL;
		}
		cli_token_print(ts, &res[i]);
		if (!res[i].ok)
			rc = 1;
	}
out:
	token_store_free(ts);
	upstream_free(up);
	if (cli_tok.base != NULL)
		event_base_free(cli_tok.base);
	curl_global_cleanup();
	free(res);
	gen_unref(g);
	return rc;
}

int
cli_token(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"resource", required_argument, NULL, 'r'},
	    {"log-level", required_argument, NULL, 'L'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *cfgpath = NULL, *level = NULL;
	char **names, err[ERR_MAX];
	size_t nnames = 0, i, j;
	enum log_level lv = LOG_INFO;
	struct config *cfg;
	int c, rc = 2;

	names = xcalloc((size_t)argc + 1, sizeof(char *));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:r:L:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cfgpath = optarg;
			break;
		case 'r':
			names[nnames++] = optarg;
			break;
		case 'L':
			level = optarg;
			break;
		case 'h':
			cli_token_usage(stdout);
			free(names);
			return 0;
		default:
			free(names);
			return cli_badopt("token", c, argv, cli_token_usage);
		}
	}
	if (optind < argc) {
		fprintf(stderr,
		        "aauth-proxy token: unexpected argument '%s'\n\n",
		        argv[optind]);
		cli_token_usage(stderr);
		goto out;
	}
	if (cfgpath == NULL) {
		fprintf(stderr, "aauth-proxy token: -c FILE is required\n\n");
		cli_token_usage(stderr);
		goto out;
	}
	if (level != NULL && log_level_parse(level, &lv) == -1) {
		fprintf(stderr,
		        "aauth-proxy token: --log-level '%s': expected error, "
		        "warn, info or debug\n",
		        level);
		goto out;
	}
	rc = 1;
	if ((cfg = config_load(cfgpath, err)) == NULL) {
		fprintf(stderr, "aauth-proxy: %s\n", err);
		goto out;
	}
	for (i = 0; i < nnames; i++) {
		for (j = 0; j < cfg->nresources; j++)
			if (strcmp(names[i], cfg->resources[j].name) == 0)
				break;
		if (j == cfg->nresources) {
			fprintf(stderr,
			        "aauth-proxy token: --resource '%s': %s has no "
			        "such resource\n",
			        names[i], cfgpath);
			config_free(cfg);
			rc = 2;
			goto out;
		}
	}
	log_init(level ? lv : cfg->log_level, stderr);
	/* gen_new takes the config over. */
	rc = cli_token_run(cfg, names, nnames);
out:
	free(names);
	return rc;
}
