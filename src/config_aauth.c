/*
 * config_aauth: resources.NAME.aauth — the issuer, where the agent token
 * and the resource token come from, scope, redirect_uri and state_file —
 * validated completely here, with JSON paths in every error, so the token
 * machinery never meets a value it has to question.
 */
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_int.h"
#include "netaddr.h"
#include "util.h"

#define CONFIG_AAUTH_LIFETIME_DEFAULT 300

static void
config_url_free(struct config_url *u)
{
	free(u->text);
	free(u->scheme);
	free(u->host);
	free(u->authority);
	free(u->path);
	free(u->query);
	memset(u, 0, sizeof(*u));
}

/* An absolute http(s) URL with a host we route like any other (the
 * canonical spelling), no user info and no fragment; the path and query
 * go on a request line as written, so only visible ASCII. plain_ok: an
 * http:// URL is allowed (the resource's allow_plaintext). */
static int
config_aauth_url(struct config_ctx *x, const char *field, const char *text,
                 int plain_ok, int query_ok, const char *plain_hint,
                 struct config_url *u)
{
	char host[NETADDR_HOST_MAX], canon[NETADDR_HOST_MAX], err[ERR_MAX];
	const char *p, *auth, *end, *colon = NULL;
	struct buf b;
	long port = -1;
	size_t i, hl;
	int tls;

	memset(u, 0, sizeof(*u));
	if (util_strncaseeq(text, "https://", 8))
		tls = 1;
	else if (util_strncaseeq(text, "http://", 7))
		tls = 0;
	else
		return config_fail(x, field, "'%s': an http:// or https:// URL",
		                   text);
	if (!tls && !plain_ok)
		return config_fail(
		    x, field,
		    "'%s': an http:// URL sends %s in "
		    "plaintext; use https, or set "
		    "allow_plaintext on the resource (local test "
		    "servers only)",
		    text, plain_hint);
	for (i = 0; text[i]; i++)
		if ((unsigned char)text[i] <= 0x20 ||
		    (unsigned char)text[i] >= 0x7f)
			return config_fail(x, field,
			                   "'%s': spaces, control bytes and "
			                   "non-ASCII are not allowed in a URL "
			                   "(percent-encode them)",
			                   text);
	auth = text + (tls ? 8 : 7);
	end = auth + strcspn(auth, "/?#");
	if (memchr(auth, '@', (size_t)(end - auth)) != NULL)
		return config_fail(x, field, "'%s': user info is not allowed",
		                   text);
	if (*auth == '[') {
		p = memchr(auth, ']', (size_t)(end - auth));
		if (p == NULL)
			return config_fail(x, field, "'%s': bad IPv6 literal",
			                   text);
		if (p + 1 < end && p[1] == ':')
			colon = p + 1;
		else if (p + 1 != end)
			return config_fail(x, field, "'%s': bad host", text);
		hl = (size_t)(p + 1 - auth);
	} else {
		colon = memchr(auth, ':', (size_t)(end - auth));
		hl = (size_t)((colon ? colon : end) - auth);
	}
	if (colon != NULL) {
		char *pe;

		port = strtol(colon + 1, &pe, 10);
		if (colon + 1 == end || pe != end || port < 1 || port > 65535 ||
		    !isdigit((unsigned char)colon[1]))
			return config_fail(x, field, "'%s': bad port", text);
	}
	if (hl == 0 || hl >= sizeof(host))
		return config_fail(x, field, "'%s': no host", text);
	memcpy(host, auth, hl);
	host[hl] = '\0';
	if (netaddr_canonical_host(host, canon, err) == -1)
		return config_fail(x, field, "'%s': %s", text, err);
	if (*end == '#' || strchr(end, '#') != NULL)
		return config_fail(x, field, "'%s': a fragment is not allowed",
		                   text);
	u->text = xstrdup(text);
	u->scheme = xstrdup(tls ? "https" : "http");
	u->host = xstrdup(canon);
	u->port = port != -1 ? (int)port : tls ? 443 : 80;
	buf_init(&b);
	buf_appends(&b, canon);
	if (u->port != (tls ? 443 : 80))
		buf_appendf(&b, ":%d", u->port);
	u->authority = buf_steal(&b);
	p = end + strcspn(end, "?");
	u->path = *end == '/' ? xstrndup(end, (size_t)(p - end)) : xstrdup("/");
	if (*p == '?') {
		if (!query_ok) {
			config_url_free(u);
			return config_fail(x, field,
			                   "'%s': a query is not allowed here",
			                   text);
		}
		u->query = xstrdup(p + 1);
	}
	return 0;
}

/* A non-empty string of visible ASCII and spaces (scope). */
static int
config_aauth_text(struct config_ctx *x, const char *field, const char *s)
{
	const char *p;

	if (*s == '\0')
		return config_fail(x, field, "must not be empty");
	for (p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			return config_fail(x, field,
			                   "only printable ASCII is allowed");
	return 0;
}

static int
config_aauth_mint(struct config_ctx *x, const char *path, json_t *v,
                  struct config_tsrc *t)
{
	static const char *const keys[] = {"iss", "sub", "lifetime_s", NULL};
	char field[400];
	struct config_url u;
	uint64_t life = CONFIG_AAUTH_LIFETIME_DEFAULT;

	if (!json_is_object(v))
		return config_fail(x, path,
		                   "must be an object: {\"iss\": "
		                   "\"https://my-agent.example\", \"sub\": …, "
		                   "\"lifetime_s\": 300}");
	if (config_check_keys(x, v, path, keys) == -1)
		return -1;
	snprintf(field, sizeof(field), "%s.iss", path);
	if (config_get_string(x, v, "iss", field, &t->mint_iss) == -1)
		return -1;
	if (t->mint_iss == NULL)
		return config_fail(x, field,
		                   "required: the agent identifier, the "
		                   "https:// URL registered with its JWKS");
	if (config_aauth_url(x, field, t->mint_iss, 0, 0, "nothing", &u) == -1)
		return -1;
	config_url_free(&u);
	snprintf(field, sizeof(field), "%s.sub", path);
	if (config_get_string(x, v, "sub", field, &t->mint_sub) == -1)
		return -1;
	if (t->mint_sub != NULL &&
	    config_aauth_text(x, field, t->mint_sub) == -1)
		return -1;
	if (t->mint_sub == NULL)
		t->mint_sub = xstrdup(t->mint_iss);
	snprintf(field, sizeof(field), "%s.lifetime_s", path);
	if (config_get_uint(x, v, "lifetime_s", field, 10, 86400, &life) == -1)
		return -1;
	t->mint_lifetime_s = (unsigned)life;
	return 0;
}

/* {"file": F}, {"command": [argv…]}, {"url": U}, {"mint": {…}}, or the
 * string "challenge" — exactly one, and only the kinds allowed here. */
static int
config_aauth_tsrc(struct config_ctx *x, const char *path, json_t *v, int agent,
                  int plain_ok, struct config_tsrc *t)
{
	static const char *const akeys[] = {"file", "command", "mint", NULL};
	static const char *const rkeys[] = {"file", "command", "url", NULL};
	const char *kinds = agent ? "{\"file\": F}, {\"command\": [argv…]} or "
	                            "{\"mint\": {…}}"
	                          : "{\"file\": F}, {\"command\": [argv…]}, "
	                            "{\"url\": U} or \"challenge\"";
	char field[320], *s = NULL;
	const char *k;
	json_t *m, *e;
	size_t i;

	if (v == NULL || json_is_null(v))
		return config_fail(x, path, "required: %s", kinds);
	if (json_is_string(v)) {
		if (!agent && strcmp(json_string_value(v), "challenge") == 0) {
			t->kind = CONFIG_TSRC_CHALLENGE;
			return 0;
		}
		return config_fail(x, path, "'%s': use %s",
		                   json_string_value(v), kinds);
	}
	if (!json_is_object(v))
		return config_fail(x, path, "must be %s", kinds);
	if (config_check_keys(x, v, path, agent ? akeys : rkeys) == -1)
		return -1;
	if (json_object_size(v) != 1)
		return config_fail(x, path, "exactly one of %s", kinds);
	k = json_object_iter_key(json_object_iter(v));
	m = json_object_get(v, k);
	snprintf(field, sizeof(field), "%s.%s", path, k);
	if (strcmp(k, "file") == 0) {
		t->kind = CONFIG_TSRC_FILE;
		if (config_get_string(x, v, "file", field, &s) == -1)
			return -1;
		if (s == NULL || *s == '\0') {
			free(s);
			return config_fail(x, field, "a file path");
		}
		t->file = config_path(x, s);
		free(s);
		return 0;
	}
	if (strcmp(k, "command") == 0) {
		t->kind = CONFIG_TSRC_COMMAND;
		if (!json_is_array(m) || json_array_size(m) == 0 ||
		    json_array_size(m) > 64)
			return config_fail(x, field,
			                   "a non-empty array of strings: the "
			                   "program and its arguments");
		t->argv = xcalloc(json_array_size(m) + 1, sizeof(char *));
		json_array_foreach(m, i, e)
		{
			if (!json_is_string(e) ||
			    strlen(json_string_value(e)) !=
			        json_string_length(e)) {
				snprintf(field, sizeof(field),
				         "%s.command[%zu]", path, i);
				return config_fail(
				    x, field, "must be a string without NUL");
			}
			t->argv[i] = xstrdup(json_string_value(e));
		}
		if (t->argv[0][0] == '\0')
			return config_fail(x, field, "the program is empty");
		/* A relative program with a slash is relative to the
		 * config, like every other path; a bare name is looked up
		 * in PATH. */
		if (strchr(t->argv[0], '/') != NULL && t->argv[0][0] != '/') {
			s = config_path(x, t->argv[0]);
			free(t->argv[0]);
			t->argv[0] = s;
		}
		return 0;
	}
	if (strcmp(k, "url") == 0) {
		t->kind = CONFIG_TSRC_URL;
		if (config_get_string(x, v, "url", field, &s) == -1)
			return -1;
		if (s == NULL)
			return config_fail(x, field, "a URL");
		if (config_aauth_url(x, field, s, plain_ok, 1,
		                     "a signed request", &t->url) == -1) {
			free(s);
			return -1;
		}
		free(s);
		return 0;
	}
	t->kind = CONFIG_TSRC_MINT;
	return config_aauth_mint(x, field, m, t);
}

static void
config_aauth_tsrc_print(struct buf *b, const struct config_tsrc *t)
{
	size_t i;

	switch (t->kind) {
	case CONFIG_TSRC_FILE:
		buf_appendf(b, "file:%s", t->file);
		break;
	case CONFIG_TSRC_COMMAND:
		buf_appends(b, "command");
		for (i = 0; t->argv[i]; i++)
			buf_appendf(b, ":%s", t->argv[i]);
		break;
	case CONFIG_TSRC_URL:
		buf_appendf(b, "url:%s", t->url.text);
		break;
	case CONFIG_TSRC_CHALLENGE:
		buf_appends(b, "challenge");
		break;
	case CONFIG_TSRC_MINT:
		buf_appendf(b, "mint:%s:%s:%u", t->mint_iss, t->mint_sub,
		            t->mint_lifetime_s);
		break;
	}
	buf_appendc(b, '\n');
}

int
config_aauth_parse(struct config_ctx *x, const char *path, json_t *v,
                   struct config_resource *r,
                   const struct config_resource *prev, size_t nprev)
{
	static const char *const keys[] = {
	    "issuer", "agent_token",  "resource_token",
	    "scope",  "redirect_uri", "state_file",
	    NULL};
	char apath[240], field[320], *s = NULL;
	struct config_aauth *a;
	struct config_url ru;
	struct buf b;
	size_t i, n;

	snprintf(apath, sizeof(apath), "%s.aauth", path);
	if (!json_is_object(v))
		return config_fail(
		    x, apath,
		    "must be an object: {\"issuer\": …, "
		    "\"agent_token\": …, \"resource_token\": …}");
	if (config_check_keys(x, v, apath, keys) == -1)
		return -1;
	a = r->aauth = xcalloc(1, sizeof(*a));

	snprintf(field, sizeof(field), "%s.issuer", apath);
	if (config_get_string(x, v, "issuer", field, &s) == -1)
		return -1;
	if (s == NULL)
		return config_fail(x, field,
		                   "required: the issuer URL, e.g. "
		                   "https://app.lumoauth.dev/orgs/acme/api/v1");
	if (config_aauth_url(x, field, s, r->allow_plaintext, 0,
	                     "the agent token and the resource's tokens",
	                     &a->issuer) == -1) {
		free(s);
		return -1;
	}
	free(s);
	s = NULL;
	/* {issuer}/aauth/agent/token, without a doubled slash. */
	n = strlen(a->issuer.path);
	while (n > 0 && a->issuer.path[n - 1] == '/')
		n--;
	buf_init(&b);
	buf_append(&b, a->issuer.path, n);
	buf_appends(&b, "/aauth/agent/token");
	a->token_target = buf_steal(&b);

	snprintf(field, sizeof(field), "%s.agent_token", apath);
	if (config_aauth_tsrc(x, field, json_object_get(v, "agent_token"), 1,
	                      r->allow_plaintext, &a->agent_token) == -1)
		return -1;
	snprintf(field, sizeof(field), "%s.resource_token", apath);
	if (config_aauth_tsrc(x, field, json_object_get(v, "resource_token"), 0,
	                      r->allow_plaintext, &a->resource_token) == -1)
		return -1;

	snprintf(field, sizeof(field), "%s.scope", apath);
	if (config_get_string(x, v, "scope", field, &a->scope) == -1)
		return -1;
	if (a->scope != NULL && config_aauth_text(x, field, a->scope) == -1)
		return -1;

	snprintf(field, sizeof(field), "%s.redirect_uri", apath);
	if (config_get_string(x, v, "redirect_uri", field, &a->redirect_uri) ==
	    -1)
		return -1;
	if (a->redirect_uri != NULL) {
		/* The browser comes back to us, never carrying a credential
		 * of ours: plain http on loopback is what the listener is. */
		if (config_aauth_url(x, field, a->redirect_uri, 1, 0, "",
		                     &ru) == -1)
			return -1;
		a->redirect_path = xstrdup(ru.path);
		config_url_free(&ru);
		if (strcmp(a->redirect_path, "/") == 0)
			return config_fail(
			    x, field,
			    "'%s': needs a path of its own, e.g. "
			    "http://127.0.0.1:8787/.aauth/callback",
			    a->redirect_uri);
		/* A code names no resource: the path has to. */
		for (i = 0; i < nprev; i++)
			if (prev[i].aauth != NULL &&
			    prev[i].aauth->redirect_path != NULL &&
			    strcmp(prev[i].aauth->redirect_path,
			           a->redirect_path) == 0)
				return config_fail(
				    x, field,
				    "'%s': resources.%s uses the same path; "
				    "give each resource its own (e.g. "
				    "%s/%s) and register both",
				    a->redirect_uri, prev[i].name,
				    a->redirect_path, r->name);
	}

	snprintf(field, sizeof(field), "%s.state_file", apath);
	if (config_get_string(x, v, "state_file", field, &s) == -1)
		return -1;
	if (s != NULL) {
		if (*s == '\0') {
			free(s);
			return config_fail(x, field, "a file path, or null");
		}
		a->state_file = config_path(x, s);
		free(s);
	}

	buf_init(&b);
	buf_appendf(&b, "%s\n", a->issuer.text);
	config_aauth_tsrc_print(&b, &a->agent_token);
	config_aauth_tsrc_print(&b, &a->resource_token);
	buf_appendf(&b, "%s\n%s\n%s\n", a->scope ? a->scope : "",
	            a->redirect_uri ? a->redirect_uri : "",
	            a->state_file ? a->state_file : "");
	a->fingerprint = buf_steal(&b);
	return 0;
}

static void
config_tsrc_free(struct config_tsrc *t)
{
	size_t i;

	free(t->file);
	if (t->argv != NULL)
		for (i = 0; t->argv[i]; i++)
			free(t->argv[i]);
	free(t->argv);
	config_url_free(&t->url);
	free(t->mint_iss);
	free(t->mint_sub);
}

void
config_aauth_free(struct config_aauth *a)
{
	if (a == NULL)
		return;
	config_url_free(&a->issuer);
	free(a->token_target);
	config_tsrc_free(&a->agent_token);
	config_tsrc_free(&a->resource_token);
	free(a->scope);
	free(a->redirect_uri);
	free(a->redirect_path);
	free(a->state_file);
	free(a->fingerprint);
	free(a);
}

static void
config_aauth_warn_file(const char *res, const char *field, const char *path)
{
	if (access(path, R_OK) == -1)
		fprintf(stderr,
		        "aauth-proxy: warning: resources.%s.aauth.%s: %s: %s "
		        "(token requests fail until it exists)\n",
		        res, field, path, strerror(errno));
}

void
config_aauth_warn(const struct config_resource *r)
{
	const struct config_aauth *a = r->aauth;
	char *tmp, *dir;

	if (a == NULL)
		return;
	if (a->agent_token.kind == CONFIG_TSRC_FILE)
		config_aauth_warn_file(r->name, "agent_token.file",
		                       a->agent_token.file);
	if (a->resource_token.kind == CONFIG_TSRC_FILE)
		config_aauth_warn_file(r->name, "resource_token.file",
		                       a->resource_token.file);
	if (a->state_file != NULL) {
		tmp = xstrdup(a->state_file);
		dir = dirname(tmp);
		if (access(dir, W_OK | X_OK) == -1)
			fprintf(
			    stderr,
			    "aauth-proxy: warning: resources.%s.aauth."
			    "state_file: cannot write in %s: %s (tokens will "
			    "not survive a restart)\n",
			    r->name, dir, strerror(errno));
		free(tmp);
	}
}
