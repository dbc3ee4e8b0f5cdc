/*
 * config: the JSON configuration file → one immutable struct config.
 * Validation is complete here so the data path never meets a bad value;
 * every error names the file, the field as a JSON path, and the reason.
 * Unknown fields are errors too: a typo must not silently drop a rule.
 * The file is JSON plus "//" comments, so it can explain itself.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_int.h"
#include "key.h"
#include "log.h"
#include "netaddr.h"
#include "util.h"

#define CONFIG_DEFAULT_LISTEN "127.0.0.1:8787"
#define CONFIG_DEFAULT_ADMIN  "127.0.0.1:8788"

int
config_fail(struct config_ctx *x, const char *field, const char *fmt, ...)
{
	char why[ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	err_set(x->err, "%s: %s: %s", x->file, field, why);
	return -1;
}

const char *
config_action_name(enum route_action a)
{
	switch (a) {
	case ROUTE_DENY:
		return "deny";
	case ROUTE_PASS:
		return "pass";
	case ROUTE_SIGN:
		return "sign";
	}
	return "?";
}

/* Edit distance between two field names, counting a swap of neighbours
 * as one edit (so "defualt_action" is one away from "default_action").
 * Names longer than CONFIG_NAME_MAX are simply "far". */
#define CONFIG_NAME_MAX 64

static size_t
config_distance(const char *a, const char *b)
{
	size_t d[CONFIG_NAME_MAX + 1][CONFIG_NAME_MAX + 1];
	size_t la = strlen(a), lb = strlen(b), i, j, v;

	if (la > CONFIG_NAME_MAX || lb > CONFIG_NAME_MAX)
		return SIZE_MAX;
	for (i = 0; i <= la; i++)
		d[i][0] = i;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++)
		for (j = 1; j <= lb; j++) {
			int same = (a[i - 1] | 0x20) == (b[j - 1] | 0x20);

			v = d[i - 1][j - 1] + !same;
			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	return d[la][lb];
}

/* Reject members other than the allowed ones (NULL-terminated list),
 * suggesting the allowed name a typo is closest to. */
int
config_check_keys(struct config_ctx *x, json_t *obj, const char *path,
                  const char *const *allowed)
{
	const char *k, *best;
	size_t i, d, best_d;
	json_t *v;

	json_object_foreach(obj, k, v)
	{
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(k, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL) {
			char field[256];

			snprintf(field, sizeof(field), "%s%s%s", path,
			         *path ? "." : "", k);
			best = NULL;
			best_d = SIZE_MAX;
			for (i = 0; allowed[i] != NULL; i++) {
				d = config_distance(k, allowed[i]);
				if (d < best_d) {
					best_d = d;
					best = allowed[i];
				}
			}
			/* Close enough to be the same word mistyped, not
			 * merely another short name. */
			if (best != NULL && best_d <= 2 &&
			    best_d * 3 <= strlen(best))
				return config_fail(
				    x, field,
				    "unknown field; did you mean \"%s\"?",
				    best);
			return config_fail(x, field, "unknown field");
		}
	}
	return 0;
}

static int
config_get_object(struct config_ctx *x, json_t *parent, const char *name,
                  const char *path, json_t **out)
{
	json_t *v = json_object_get(parent, name);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return config_fail(x, path, "must be an object");
	*out = v;
	return 0;
}

int
config_get_string(struct config_ctx *x, json_t *parent, const char *name,
                  const char *path, char **out)
{
	json_t *v = json_object_get(parent, name);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return config_fail(x, path, "must be a string");
	if (json_string_length(v) != strlen(json_string_value(v)))
		return config_fail(x, path, "must not contain NUL");
	free(*out);
	*out = xstrdup(json_string_value(v));
	return 0;
}

static int
config_get_bool(struct config_ctx *x, json_t *parent, const char *name,
                const char *path, int *out)
{
	json_t *v = json_object_get(parent, name);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return config_fail(x, path, "must be true or false");
	*out = json_is_true(v);
	return 0;
}

int
config_get_uint(struct config_ctx *x, json_t *parent, const char *name,
                const char *path, uint64_t min, uint64_t max, uint64_t *out)
{
	json_t *v = json_object_get(parent, name);
	json_int_t n;

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return config_fail(x, path, "must be an integer");
	n = json_integer_value(v);
	if (n < 0 || (uint64_t)n < min || (uint64_t)n > max)
		return config_fail(x, path,
		                   "%lld is out of range (%llu to %llu)",
		                   (long long)n, (unsigned long long)min,
		                   (unsigned long long)max);
	*out = (uint64_t)n;
	return 0;
}

/* A file path from the config, made absolute against the config's dir so
 * the daemon's working directory does not matter. */
char *
config_path(struct config_ctx *x, const char *p)
{
	struct buf b;

	if (p[0] == '/' || x->dir == NULL)
		return xstrdup(p);
	buf_init(&b);
	buf_appendf(&b, "%s/%s", x->dir, p);
	return buf_steal(&b);
}

static int
config_listen_is_loopback(const char *addr)
{
	char host[256];
	const char *colon;
	size_t n;
	struct in_addr a4;
	struct in6_addr a6;

	if (strncmp(addr, "unix:", 5) == 0)
		return 1;
	if (addr[0] == '[') {
		colon = strchr(addr, ']');
		if (colon == NULL)
			return 0;
		n = (size_t)(colon - addr - 1);
		if (n >= sizeof(host))
			return 0;
		memcpy(host, addr + 1, n);
		host[n] = '\0';
		return inet_pton(AF_INET6, host, &a6) == 1 &&
		       IN6_IS_ADDR_LOOPBACK(&a6);
	}
	colon = strrchr(addr, ':');
	if (colon == NULL)
		return 0;
	n = (size_t)(colon - addr);
	if (n >= sizeof(host))
		return 0;
	memcpy(host, addr, n);
	host[n] = '\0';
	if (strcmp(host, "localhost") == 0)
		return 1;
	return inet_pton(AF_INET, host, &a4) == 1 &&
	       (ntohl(a4.s_addr) >> 24) == 127;
}

/* HOST:PORT, [V6]:PORT or unix:/abs/path. Loopback only: binding
 * elsewhere would need proxy client credentials, which we don't have. */
static int
config_check_listen(struct config_ctx *x, const char *field, const char *a)
{
	const char *colon;
	char *end;
	long port;

	if (strncmp(a, "unix:", 5) == 0) {
		if (a[5] != '/')
			return config_fail(x, field,
			                   "'%s': a unix socket needs an "
			                   "absolute path (unix:/run/x.sock)",
			                   a);
		if (strlen(a + 5) >= 108)
			return config_fail(
			    x, field, "'%s': unix socket path too long", a);
		return 0;
	}
	colon = strrchr(a, ':');
	if (colon == NULL || colon == a)
		return config_fail(x, field,
		                   "'%s': expected HOST:PORT, [IPv6]:PORT or "
		                   "unix:/path",
		                   a);
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || colon[1] == '\0' || port < 0 || port > 65535)
		return config_fail(x, field, "'%s': invalid port", a);
	if (!config_listen_is_loopback(a))
		return config_fail(
		    x, field,
		    "'%s' is not a loopback address; aauth-proxy "
		    "listens on loopback or unix sockets only "
		    "(it has no proxy client authentication)",
		    a);
	return 0;
}

static int
config_parse_action(struct config_ctx *x, const char *field, const char *s,
                    enum route_action *out)
{
	if (strcmp(s, "deny") == 0)
		*out = ROUTE_DENY;
	else if (strcmp(s, "pass") == 0)
		*out = ROUTE_PASS;
	else if (strcmp(s, "sign") == 0)
		*out = ROUTE_SIGN;
	else
		return config_fail(
		    x, field, "'%s' is not an action (sign, pass, deny)", s);
	return 0;
}

/* A JSON array of strings → a C array (for components and params). */
static int
config_string_array(struct config_ctx *x, json_t *v, const char *field,
                    const char ***out, size_t *n)
{
	size_t i;
	json_t *e;

	if (!json_is_array(v))
		return config_fail(x, field, "must be an array of strings");
	*n = json_array_size(v);
	*out = xcalloc(*n ? *n : 1, sizeof(char *));
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e)) {
			free(*out);
			*out = NULL;
			return config_fail(x, field,
			                   "element %zu must be a string", i);
		}
		(*out)[i] = json_string_value(e);
	}
	return 0;
}

static int
config_parse_profile(struct config_ctx *x, json_t *v, const char *path,
                     struct httpsig_profile *p)
{
	static const char *const keys[] = {
	    "base",   "label",        "components",    "params",
	    "keyid",  "alg",          "tag",           "expires_in",
	    "digest", "content_type", "signature_key", "created_window",
	    NULL};
	char field[300], perr[ERR_MAX];
	const char *base = "lumoauth";
	const char **arr;
	size_t n;
	json_t *m;
	uint64_t u;
	int rc;

	if (v == NULL || json_is_string(v)) {
		if (v != NULL)
			base = json_string_value(v);
		if (httpsig_profile_builtin(p, base, perr) == -1)
			return config_fail(x, path, "%s", perr);
		return 0;
	}
	if (!json_is_object(v))
		return config_fail(x, path,
		                   "must be a profile name or an object");
	if (config_check_keys(x, v, path, keys) == -1)
		return -1;
	snprintf(field, sizeof(field), "%s.base", path);
	m = json_object_get(v, "base");
	if (m != NULL) {
		if (!json_is_string(m))
			return config_fail(x, field, "must be a string");
		base = json_string_value(m);
	}
	if (httpsig_profile_builtin(p, base, perr) == -1)
		return config_fail(x, field, "%s", perr);

	snprintf(field, sizeof(field), "%s.label", path);
	if (config_get_string(x, v, "label", field, &p->label) == -1)
		return -1;
	snprintf(field, sizeof(field), "%s.keyid", path);
	if (config_get_string(x, v, "keyid", field, &p->keyid) == -1)
		return -1;
	snprintf(field, sizeof(field), "%s.alg", path);
	if (config_get_string(x, v, "alg", field, &p->alg) == -1)
		return -1;
	snprintf(field, sizeof(field), "%s.tag", path);
	if (config_get_string(x, v, "tag", field, &p->tag) == -1)
		return -1;

	if ((m = json_object_get(v, "components")) != NULL) {
		snprintf(field, sizeof(field), "%s.components", path);
		if (config_string_array(x, m, field, &arr, &n) == -1)
			return -1;
		rc = httpsig_profile_set_components(p, arr, n, perr);
		free(arr);
		if (rc == -1)
			return config_fail(x, field, "%s", perr);
	}
	if ((m = json_object_get(v, "params")) != NULL) {
		snprintf(field, sizeof(field), "%s.params", path);
		if (config_string_array(x, m, field, &arr, &n) == -1)
			return -1;
		rc = httpsig_profile_set_params(p, arr, n, perr);
		free(arr);
		if (rc == -1)
			return config_fail(x, field, "%s", perr);
	}
	u = (uint64_t)p->expires_in;
	snprintf(field, sizeof(field), "%s.expires_in", path);
	if (config_get_uint(x, v, "expires_in", field, 1, 86400, &u) == -1)
		return -1;
	p->expires_in = (int64_t)u;
	u = (uint64_t)p->created_window;
	snprintf(field, sizeof(field), "%s.created_window", path);
	if (config_get_uint(x, v, "created_window", field, 1, 3600, &u) == -1)
		return -1;
	p->created_window = (int64_t)u;

	if ((m = json_object_get(v, "digest")) != NULL) {
		snprintf(field, sizeof(field), "%s.digest", path);
		if (!json_is_string(m))
			return config_fail(x, field, "must be a string");
		if (strcmp(json_string_value(m), "none") == 0)
			p->digest = DIGEST_NONE;
		else if (digest_alg_parse(json_string_value(m), &p->digest) ==
		         -1)
			return config_fail(x, field,
			                   "'%s': use sha-256, sha-512 or none",
			                   json_string_value(m));
	}
	if ((m = json_object_get(v, "content_type")) != NULL) {
		snprintf(field, sizeof(field), "%s.content_type", path);
		free(p->default_content_type);
		p->default_content_type = NULL;
		if (!json_is_null(m) &&
		    config_get_string(x, v, "content_type", field,
		                      &p->default_content_type) == -1)
			return -1;
	}
	if ((m = json_object_get(v, "signature_key")) != NULL) {
		const char *s = json_is_string(m) ? json_string_value(m) : "";

		snprintf(field, sizeof(field), "%s.signature_key", path);
		if (strcmp(s, "none") == 0)
			p->sigkey = HTTPSIG_SIGKEY_NONE;
		else if (strcmp(s, "hwk") == 0)
			p->sigkey = HTTPSIG_SIGKEY_HWK;
		else if (strcmp(s, "jwt") == 0)
			p->sigkey = HTTPSIG_SIGKEY_JWT;
		else
			return config_fail(x, field, "use none, hwk or jwt");
	}
	return 0;
}

static int
config_parse_resource(struct config_ctx *x, const char *name, json_t *v,
                      struct config_resource *r,
                      const struct config_resource *prev, size_t nprev)
{
	static const char *const keys[] = {
	    "profile", "token_file", "upstream", "allow_plaintext",
	    "aauth",   "required",   NULL};
	json_t *aa;
	char path[200], field[256];
	char *tf = NULL, *up = NULL;

	snprintf(path, sizeof(path), "resources.%s", name);
	r->name = xstrdup(name);
	r->upstream_tls = 1;
	r->required = 1;
	if (!json_is_object(v))
		return config_fail(x, path, "must be an object");
	if (config_check_keys(x, v, path, keys) == -1)
		return -1;
	snprintf(field, sizeof(field), "%s.profile", path);
	if (config_parse_profile(x, json_object_get(v, "profile"), field,
	                         &r->profile) == -1)
		return -1;
	snprintf(field, sizeof(field), "%s.token_file", path);
	if (config_get_string(x, v, "token_file", field, &tf) == -1)
		return -1;
	aa = json_object_get(v, "aauth");
	if (aa != NULL && json_is_null(aa))
		aa = NULL;
	if (aa != NULL && tf != NULL) {
		free(tf);
		return config_fail(x, path,
		                   "token_file and aauth are alternatives: a "
		                   "static token, or tokens from the issuer; "
		                   "set one of them");
	}
	if (aa == NULL && (tf == NULL || *tf == '\0')) {
		free(tf);
		return config_fail(x, field,
		                   "required: the file holding this "
		                   "resource's access token (or an aauth "
		                   "object to fetch tokens from the issuer)");
	}
	if (tf != NULL)
		r->token_file = config_path(x, tf);
	free(tf);
	snprintf(field, sizeof(field), "%s.required", path);
	if (config_get_bool(x, v, "required", field, &r->required) == -1)
		return -1;
	snprintf(field, sizeof(field), "%s.allow_plaintext", path);
	if (config_get_bool(x, v, "allow_plaintext", field,
	                    &r->allow_plaintext) == -1)
		return -1;
	if (aa != NULL && config_aauth_parse(x, path, aa, r, prev, nprev) == -1)
		return -1;
	snprintf(field, sizeof(field), "%s.upstream", path);
	if (config_get_string(x, v, "upstream", field, &up) == -1)
		return -1;
	if (up != NULL) {
		if (strcmp(up, "https") == 0)
			r->upstream_tls = 1;
		else if (strcmp(up, "http") == 0)
			r->upstream_tls = 0;
		else {
			config_fail(x, field, "'%s': use https or http", up);
			free(up);
			return -1;
		}
		free(up);
	}
	if (!r->upstream_tls && !r->allow_plaintext)
		return config_fail(
		    x, field,
		    "\"http\" would send the token and signature "
		    "in plaintext; set %s.allow_plaintext to true "
		    "only for a loopback test server",
		    path);
	return 0;
}

static struct config_resource *
config_find_resource(struct config *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nresources; i++)
		if (strcmp(c->resources[i].name, name) == 0)
			return &c->resources[i];
	return NULL;
}

/* A rule host written as a URL or with a port: say where the parts go.
 * Returns -1 (after config_fail) when h is one, 0 otherwise. */
static int
config_host_with_port(struct config_ctx *x, const char *field, const char *h)
{
	const char *start = h, *end, *colon, *s;
	char host[128];
	size_t n;

	if ((s = strstr(h, "://")) != NULL)
		start = s + 3;
	for (end = start; *end && *end != '/' && *end != '?'; end++)
		;
	/* The port colon follows "]" for an IPv6 literal. */
	s = start[0] == '[' ? memchr(start, ']', (size_t)(end - start)) : start;
	colon = s ? memchr(s, ':', (size_t)(end - s)) : NULL;
	/* Two colons without brackets: an IPv6 address, not host:port. */
	if (colon != NULL && start[0] != '[' &&
	    memchr(colon + 1, ':', (size_t)(end - colon - 1)) != NULL)
		colon = NULL;
	if (start == h && colon == NULL)
		return 0;
	n = (size_t)((colon ? colon : end) - start);
	if (n >= sizeof(host))
		n = sizeof(host) - 1;
	memcpy(host, start, n);
	host[n] = '\0';
	if (colon != NULL)
		return config_fail(x, field,
		                   "'%s' has a port; a rule's host is the name "
		                   "alone: \"host\": \"%s\", \"port\": "
		                   "%.*s",
		                   h, host, (int)(end - colon - 1), colon + 1);
	return config_fail(x, field,
	                   "'%s' is a URL; a rule's host is the name alone: "
	                   "\"host\": \"%s\"",
	                   h, host);
}

/* Host patterns: a DNS name or IP literal, or "*." + DNS suffix. */
static int
config_check_host(struct config_ctx *x, const char *field, const char *h)
{
	const char *p = h;

	if (config_host_with_port(x, field, h) == -1)
		return -1;
	if (strncmp(p, "*.", 2) == 0)
		p += 2;
	if (*p == '\0')
		return config_fail(x, field, "empty host");
	if (*p == '[') { /* IPv6 literal */
		size_t n = strlen(p);
		char tmp[64];
		struct in6_addr a6;

		if (p != h || n < 3 || p[n - 1] != ']' || n - 2 >= sizeof(tmp))
			return config_fail(x, field, "'%s': bad IPv6 literal",
			                   h);
		memcpy(tmp, p + 1, n - 2);
		tmp[n - 2] = '\0';
		if (inet_pton(AF_INET6, tmp, &a6) != 1)
			return config_fail(x, field, "'%s': bad IPv6 literal",
			                   h);
		return 0;
	}
	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		      *p == '_'))
			return config_fail(x, field,
			                   "'%s': only letters, digits, '-', "
			                   "'.', '_' and a leading '*.' are "
			                   "allowed",
			                   h);
	return 0;
}

/* Rule hosts are matched in the spelling requests are routed in
 * (netaddr_canonical_host): a deny rule written "2130706434" or
 * "[::ffff:7f00:2]" must name 127.0.0.2, or it never matches anything. */
static int
config_canonical_rule_host(struct config_ctx *x, const char *field, char **host)
{
	char canon[NETADDR_HOST_MAX], err[ERR_MAX];
	size_t n = strlen(*host);

	if (netaddr_canonical_host(*host, canon, err) == -1)
		return config_fail(x, field, "%s", err);
	if (strcmp(canon, *host) == 0)
		return 0;
	/* Only a trailing dot or the case of an IPv6 literal: not worth a
	 * word. */
	if (!(n > 1 && (*host)[n - 1] == '.' &&
	      strncmp(canon, *host, n - 1) == 0 && canon[n - 1] == '\0') &&
	    (*host)[0] != '[')
		log_warn("%s: '%s' is the address %s; the rule matches it "
		         "however a request writes it",
		         field, *host, canon);
	else if ((*host)[0] == '[' && canon[0] != '[')
		log_warn("%s: '%s' is the IPv4 address %s; the rule matches "
		         "it however a request writes it",
		         field, *host, canon);
	free(*host);
	*host = xstrdup(canon);
	return 0;
}

static int
config_parse_rule(struct config_ctx *x, size_t i, json_t *v, struct config *c,
                  struct config_rule *r)
{
	static const char *const keys[] = {"host", "port", "action", "resource",
	                                   NULL};
	char path[64], field[96];
	char *s = NULL;
	uint64_t port = 0;

	snprintf(path, sizeof(path), "rules[%zu]", i);
	r->port = -1;
	if (!json_is_object(v))
		return config_fail(x, path, "must be an object");
	if (config_check_keys(x, v, path, keys) == -1)
		return -1;
	snprintf(field, sizeof(field), "%s.host", path);
	if (config_get_string(x, v, "host", field, &r->host) == -1)
		return -1;
	if (r->host == NULL)
		return config_fail(x, field, "required");
	if (config_check_host(x, field, r->host) == -1)
		return -1;
	util_lower(r->host);
	if (strncmp(r->host, "*.", 2) == 0)
		r->wildcard = 1;
	else if (config_canonical_rule_host(x, field, &r->host) == -1)
		return -1;
	snprintf(field, sizeof(field), "%s.port", path);
	if (json_object_get(v, "port") != NULL) {
		if (config_get_uint(x, v, "port", field, 1, 65535, &port) == -1)
			return -1;
		r->port = (int)port;
	}
	snprintf(field, sizeof(field), "%s.action", path);
	if (config_get_string(x, v, "action", field, &s) == -1)
		return -1;
	if (s == NULL)
		return config_fail(x, field, "required (sign, pass or deny)");
	if (config_parse_action(x, field, s, &r->action) == -1) {
		free(s);
		return -1;
	}
	free(s);
	s = NULL;
	snprintf(field, sizeof(field), "%s.resource", path);
	if (config_get_string(x, v, "resource", field, &s) == -1)
		return -1;
	if (r->action == ROUTE_SIGN) {
		if (s == NULL)
			return config_fail(x, field,
			                   "required for a sign rule: a key of "
			                   "\"resources\"");
		r->resource = config_find_resource(c, s);
		if (r->resource == NULL) {
			config_fail(x, field,
			            "'%s' is not defined in resources", s);
			free(s);
			return -1;
		}
	} else if (s != NULL) {
		free(s);
		return config_fail(x, field, "only a sign rule has a resource");
	}
	free(s);
	return 0;
}

/* ca: {"cert_file", "key_file"}; both default beside key.file so the CA
 * lives with the agent key it belongs to. */
static int
config_parse_ca(struct config_ctx *x, json_t *root, struct config *c)
{
	static const char *const keys[] = {"cert_file", "key_file", NULL};
	char *cert = NULL, *key = NULL, *tmp, *dir;
	struct buf b;
	json_t *o;

	if (config_get_object(x, root, "ca", "ca", &o) == -1)
		return -1;
	if (o != NULL &&
	    (config_check_keys(x, o, "ca", keys) == -1 ||
	     config_get_string(x, o, "cert_file", "ca.cert_file", &cert) ==
	         -1 ||
	     config_get_string(x, o, "key_file", "ca.key_file", &key) == -1)) {
		free(cert);
		free(key);
		return -1;
	}
	tmp = xstrdup(c->key_file);
	dir = dirname(tmp);
	buf_init(&b);
	if (cert != NULL && *cert != '\0')
		c->ca_cert_file = config_path(x, cert);
	else {
		buf_appendf(&b, "%s/ca.pem", dir);
		c->ca_cert_file = buf_steal(&b);
	}
	if (key != NULL && *key != '\0')
		c->ca_key_file = config_path(x, key);
	else {
		buf_appendf(&b, "%s/ca-key.pem", dir);
		c->ca_key_file = buf_steal(&b);
	}
	free(tmp);
	free(cert);
	free(key);
	return 0;
}

/* A route's base URL: http(s)://host[:port]/path/ — no user info, query
 * or fragment, and a path ending in '/' so a prefix maps onto it
 * segment for segment. */
static int
config_parse_route_url(struct config_ctx *x, const char *field, const char *u,
                       struct config_route *rt)
{
	char host[NETADDR_HOST_MAX], canon[NETADDR_HOST_MAX], err[ERR_MAX];
	const char *a, *slash, *colon, *end;
	size_t hl;
	long port;

	if (strncmp(u, "https://", 8) == 0) {
		rt->scheme = xstrdup("https");
		a = u + 8;
	} else if (strncmp(u, "http://", 7) == 0) {
		rt->scheme = xstrdup("http");
		a = u + 7;
	} else {
		return config_fail(x, field,
		                   "'%s': must start with https:// (or "
		                   "http://)",
		                   u);
	}
	if (strpbrk(u, "?#@ \t") != NULL)
		return config_fail(x, field,
		                   "'%s': a base URL without user info, query "
		                   "or fragment",
		                   u);
	slash = strchr(a, '/');
	end = slash ? slash : a + strlen(a);
	colon = NULL;
	if (*a == '[') {
		const char *rb = memchr(a, ']', (size_t)(end - a));

		if (rb == NULL)
			return config_fail(x, field, "'%s': bad IPv6 literal",
			                   u);
		if (rb + 1 < end && rb[1] == ':')
			colon = rb + 1;
	} else {
		colon = memchr(a, ':', (size_t)(end - a));
	}
	hl = (size_t)((colon ? colon : end) - a);
	if (hl == 0 || hl >= sizeof(host))
		return config_fail(x, field, "'%s': no host", u);
	memcpy(host, a, hl);
	host[hl] = '\0';
	if (netaddr_canonical_host(host, canon, err) == -1)
		return config_fail(x, field, "'%s': %s", u, err);
	rt->host = xstrdup(canon);
	rt->port = -1;
	if (colon != NULL) {
		char *pe;

		port = strtol(colon + 1, &pe, 10);
		if (pe != end || colon + 1 == end || port < 1 || port > 65535)
			return config_fail(x, field, "'%s': bad port", u);
		rt->port = (int)port;
	}
	if (slash == NULL || slash[strlen(slash) - 1] != '/')
		return config_fail(x, field,
		                   "'%s': the base URL's path must end with "
		                   "'/' (e.g. https://api.example.com/v1/)",
		                   u);
	rt->path = xstrdup(slash);
	return 0;
}

/* routes: [{"prefix": "/docs/", "upstream": "https://host/v1/"}] */
static int
config_parse_routes(struct config_ctx *x, json_t *root, struct config *c)
{
	static const char *const keys[] = {"prefix", "upstream", NULL};
	char path[64], field[96];
	struct config_route *rt;
	json_t *v, *e;
	size_t i, j, n;

	v = json_object_get(root, "routes");
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return config_fail(x, "routes", "must be an array");
	c->routes = xcalloc(json_array_size(v) + 1, sizeof(*c->routes));
	json_array_foreach(v, i, e)
	{
		rt = &c->routes[c->nroutes++];
		snprintf(path, sizeof(path), "routes[%zu]", i);
		if (!json_is_object(e))
			return config_fail(x, path, "must be an object");
		if (config_check_keys(x, e, path, keys) == -1)
			return -1;
		snprintf(field, sizeof(field), "%s.prefix", path);
		if (config_get_string(x, e, "prefix", field, &rt->prefix) == -1)
			return -1;
		n = rt->prefix ? strlen(rt->prefix) : 0;
		if (n < 2 || rt->prefix[0] != '/' || rt->prefix[n - 1] != '/' ||
		    strpbrk(rt->prefix, "?#% ") != NULL ||
		    strstr(rt->prefix, "/./") || strstr(rt->prefix, "/../"))
			return config_fail(
			    x, field,
			    "required: a path that starts and ends with '/' "
			    "(e.g. \"/docs/\"), without '?', '#', '%%' or "
			    "dot segments");
		for (j = 0; j + 1 < c->nroutes; j++)
			if (strcmp(c->routes[j].prefix, rt->prefix) == 0)
				return config_fail(x, field,
				                   "'%s' is also routes[%zu]'s "
				                   "prefix",
				                   rt->prefix, j);
		snprintf(field, sizeof(field), "%s.upstream", path);
		if (config_get_string(x, e, "upstream", field, &rt->upstream) ==
		    -1)
			return -1;
		if (rt->upstream == NULL)
			return config_fail(x, field,
			                   "required: the base URL, e.g. "
			                   "https://api.example.com/v1/");
		if (config_parse_route_url(x, field, rt->upstream, rt) == -1)
			return -1;
	}
	return 0;
}

static int
config_parse_admin(struct config_ctx *x, json_t *root, struct config *c)
{
	static const char *const keys[] = {"listen", NULL};
	char field[64];
	json_t *o, *v, *e;
	size_t i;

	if (config_get_object(x, root, "admin", "admin", &o) == -1)
		return -1;
	v = o ? json_object_get(o, "listen") : NULL;
	if (o != NULL && config_check_keys(x, o, "admin", keys) == -1)
		return -1;
	if (v == NULL) {
		c->admin_listen = xcalloc(1, sizeof(char *));
		c->admin_listen[c->nadmin_listen++] =
		    xstrdup(CONFIG_DEFAULT_ADMIN);
		return 0;
	}
	if (!json_is_array(v))
		return config_fail(x, "admin.listen",
		                   "must be an array of addresses ([] turns "
		                   "the admin port off)");
	c->admin_listen = xcalloc(json_array_size(v) + 1, sizeof(char *));
	json_array_foreach(v, i, e)
	{
		snprintf(field, sizeof(field), "admin.listen[%zu]", i);
		if (!json_is_string(e))
			return config_fail(x, field, "must be a string");
		c->admin_listen[c->nadmin_listen++] =
		    xstrdup(json_string_value(e));
		if (config_check_listen(x, field, json_string_value(e)) == -1)
			return -1;
	}
	return 0;
}

static int
config_parse_limits(struct config_ctx *x, json_t *root, struct config *c)
{
	static const char *const keys[] = {
	    "max_connections", "max_header_bytes",   "max_headers",
	    "max_body_bytes",  "max_buffered_bytes", "header_timeout_ms",
	    "idle_timeout_ms", "drain_timeout_ms",   NULL};
	json_t *l;
	uint64_t u;

	if (config_get_object(x, root, "limits", "limits", &l) == -1)
		return -1;
	if (l == NULL)
		return 0;
	if (config_check_keys(x, l, "limits", keys) == -1)
		return -1;
#define CONFIG_U(obj, name, path, min, max, dst)                               \
	do {                                                                   \
		u = (uint64_t)(dst);                                           \
		if (config_get_uint(x, obj, name, path, min, max, &u) == -1)   \
			return -1;                                             \
		(dst) = u;                                                     \
	} while (0)
	CONFIG_U(l, "max_connections", "limits.max_connections", 1, 1000000,
	         c->max_connections);
	CONFIG_U(l, "max_header_bytes", "limits.max_header_bytes", 1024,
	         1 << 24, c->max_head_bytes);
	CONFIG_U(l, "max_headers", "limits.max_headers", 8, 10000,
	         c->max_fields);
	CONFIG_U(l, "max_body_bytes", "limits.max_body_bytes", 0,
	         (uint64_t)1 << 40, c->max_body_bytes);
	if (json_object_get(l, "max_buffered_bytes") != NULL) {
		CONFIG_U(l, "max_buffered_bytes", "limits.max_buffered_bytes",
		         0, (uint64_t)1 << 42, c->max_buffered_bytes);
		if (c->max_buffered_bytes < c->max_body_bytes)
			return config_fail(
			    x, "limits.max_buffered_bytes",
			    "%llu is less than limits.max_body_bytes (%llu): "
			    "a body of the largest allowed size could never "
			    "be buffered",
			    (unsigned long long)c->max_buffered_bytes,
			    (unsigned long long)c->max_body_bytes);
	} else if (c->max_buffered_bytes < c->max_body_bytes) {
		c->max_buffered_bytes = c->max_body_bytes;
	}
	CONFIG_U(l, "header_timeout_ms", "limits.header_timeout_ms", 10,
	         3600000, c->header_timeout_ms);
	CONFIG_U(l, "idle_timeout_ms", "limits.idle_timeout_ms", 10, 86400000,
	         c->idle_timeout_ms);
	CONFIG_U(l, "drain_timeout_ms", "limits.drain_timeout_ms", 0, 3600000,
	         c->drain_timeout_ms);
	return 0;
}

/* upstream.proxy: "http://host:port" and nothing more. Credentials in the
 * URL would sit in a config file anyone may be shown; they go in
 * upstream.proxy_auth_file. */
static int
config_check_proxy(struct config_ctx *x, struct config *c, const char *u)
{
	const char *hp = u + 7, *colon, *end;
	char *pe;
	long port;

	if (strncmp(u, "http://", 7) != 0)
		return config_fail(x, "upstream.proxy",
		                   "'%s': expected http://HOST:PORT", u);
	if (strchr(hp, '@') != NULL)
		return config_fail(x, "upstream.proxy",
		                   "'%s': no credentials in the URL; put "
		                   "user:password in upstream.proxy_auth_file",
		                   u);
	end = hp + strlen(hp);
	if (end > hp && end[-1] == '/')
		end--;
	colon = NULL;
	for (const char *p = hp; p < end; p++)
		if (*p == ':')
			colon = p;
		else if (*p == '/' || *p == '?' || *p == '#')
			return config_fail(x, "upstream.proxy",
			                   "'%s': expected http://HOST:PORT, "
			                   "without a path",
			                   u);
	if (colon == NULL || colon == hp || (hp[0] == '[' && colon[-1] != ']'))
		return config_fail(x, "upstream.proxy",
		                   "'%s': expected http://HOST:PORT (the port "
		                   "is required)",
		                   u);
	port = strtol(colon + 1, &pe, 10);
	if (pe != end || port < 1 || port > 65535)
		return config_fail(x, "upstream.proxy", "'%s': invalid port",
		                   u);
	/* For the tunnel dialer, which speaks CONNECT itself. */
	c->upstream_proxy_host = xstrndup(hp, (size_t)(colon - hp));
	c->upstream_proxy_port = (int)port;
	return 0;
}

static int
config_parse_upstream(struct config_ctx *x, json_t *root, struct config *c)
{
	static const char *const keys[] = {"connect_timeout_ms",
	                                   "timeout_ms",
	                                   "idle_timeout_ms",
	                                   "ca_file",
	                                   "proxy",
	                                   "proxy_auth_file",
	                                   NULL};
	char *ca = NULL, *px = NULL, *pa = NULL;
	json_t *o;
	uint64_t u;

	if (config_get_object(x, root, "upstream", "upstream", &o) == -1)
		return -1;
	if (o == NULL)
		return 0;
	if (config_check_keys(x, o, "upstream", keys) == -1)
		return -1;
	CONFIG_U(o, "connect_timeout_ms", "upstream.connect_timeout_ms", 10,
	         600000, c->upstream_connect_timeout_ms);
	CONFIG_U(o, "timeout_ms", "upstream.timeout_ms", 0, 86400000,
	         c->upstream_timeout_ms);
	CONFIG_U(o, "idle_timeout_ms", "upstream.idle_timeout_ms", 1000,
	         86400000, c->upstream_idle_timeout_ms);
#undef CONFIG_U
	if (config_get_string(x, o, "ca_file", "upstream.ca_file", &ca) == -1)
		return -1;
	if (ca != NULL) {
		struct stat st;

		c->upstream_ca_file = config_path(x, ca);
		free(ca);
		if (stat(c->upstream_ca_file, &st) == -1)
			return config_fail(x, "upstream.ca_file", "%s: %s",
			                   c->upstream_ca_file,
			                   strerror(errno));
	}
	if (config_get_string(x, o, "proxy", "upstream.proxy", &px) == -1)
		return -1;
	if (px != NULL) {
		c->upstream_proxy = px;
		if (config_check_proxy(x, c, px) == -1)
			return -1;
	}
	if (config_get_string(x, o, "proxy_auth_file",
	                      "upstream.proxy_auth_file", &pa) == -1)
		return -1;
	if (pa != NULL) {
		struct stat st;

		c->upstream_proxy_auth_file = config_path(x, pa);
		free(pa);
		if (c->upstream_proxy == NULL)
			return config_fail(x, "upstream.proxy_auth_file",
			                   "set upstream.proxy too: the "
			                   "credentials are for that proxy");
		if (stat(c->upstream_proxy_auth_file, &st) == -1)
			return config_fail(
			    x, "upstream.proxy_auth_file", "%s: %s",
			    c->upstream_proxy_auth_file, strerror(errno));
	}
	return 0;
}

static int
config_parse_log(struct config_ctx *x, json_t *root, struct config *c)
{
	static const char *const keys[] = {"level", "access_log", NULL};
	char *level = NULL, *al = NULL;
	json_t *o;

	if (config_get_object(x, root, "log", "log", &o) == -1)
		return -1;
	if (o == NULL)
		return 0;
	if (config_check_keys(x, o, "log", keys) == -1)
		return -1;
	if (config_get_string(x, o, "level", "log.level", &level) == -1)
		return -1;
	if (level != NULL && log_level_parse(level, &c->log_level) == -1) {
		config_fail(x, "log.level",
		            "'%s': use error, warn, info or debug", level);
		free(level);
		return -1;
	}
	free(level);
	json_t *a = json_object_get(o, "access_log");
	if (a != NULL && json_is_false(a)) {
		free(c->access_log);
		c->access_log = xstrdup("off");
		return 0;
	}
	if (config_get_string(x, o, "access_log", "log.access_log", &al) == -1)
		return -1;
	if (al != NULL) {
		free(c->access_log);
		if (strcmp(al, "stderr") == 0 || strcmp(al, "off") == 0)
			c->access_log = xstrdup(al);
		else
			c->access_log = config_path(x, al);
		free(al);
	}
	return 0;
}

static void
config_defaults(struct config *c)
{
	c->unix_mode = 0660;
	c->default_action = ROUTE_DENY;
	c->block_private = 1;
	c->max_connections = 1024;
	c->max_head_bytes = 65536;
	c->max_fields = 100;
	c->max_body_bytes = 16 << 20;
	c->max_buffered_bytes = 256 << 20;
	c->header_timeout_ms = 10000;
	c->idle_timeout_ms = 60000;
	c->drain_timeout_ms = 10000;
	c->upstream_connect_timeout_ms = 10000;
	c->upstream_timeout_ms = 0;
	c->upstream_idle_timeout_ms = 120000;
	c->log_level = LOG_INFO;
	c->access_log = xstrdup("stderr");
	c->kid = xstrdup(KEY_DEFAULT_KID);
}

static int
config_parse_root(struct config_ctx *x, json_t *root, struct config *c)
{
	static const char *const keys[] = {"listen",
	                                   "unix_socket_mode",
	                                   "key",
	                                   "default_action",
	                                   "block_private_addresses",
	                                   "resources",
	                                   "rules",
	                                   "limits",
	                                   "upstream",
	                                   "log",
	                                   "ca",
	                                   "routes",
	                                   "admin",
	                                   NULL};
	char field[300];
	const char *name;
	json_t *v, *e;
	char *s = NULL;
	size_t i;

	if (!json_is_object(root))
		return config_fail(x, "(top level)", "must be a JSON object");
	if (config_check_keys(x, root, "", keys) == -1)
		return -1;

	v = json_object_get(root, "listen");
	if (v == NULL) {
		c->listen = xcalloc(1, sizeof(char *));
		c->listen[0] = xstrdup(CONFIG_DEFAULT_LISTEN);
		c->nlisten = 1;
	} else {
		if (json_is_string(v)) {
			c->listen = xcalloc(1, sizeof(char *));
			c->listen[c->nlisten++] = xstrdup(json_string_value(v));
		} else if (json_is_array(v) && json_array_size(v) > 0) {
			c->listen = xcalloc(json_array_size(v), sizeof(char *));
			json_array_foreach(v, i, e)
			{
				snprintf(field, sizeof(field), "listen[%zu]",
				         i);
				if (!json_is_string(e))
					return config_fail(x, field,
					                   "must be a string");
				c->listen[c->nlisten++] =
				    xstrdup(json_string_value(e));
			}
		} else
			return config_fail(x, "listen",
			                   "must be an address or a non-empty "
			                   "array of addresses");
		for (i = 0; i < c->nlisten; i++) {
			snprintf(field, sizeof(field), "listen[%zu]", i);
			if (config_check_listen(x, field, c->listen[i]) == -1)
				return -1;
		}
	}
	if (config_get_string(x, root, "unix_socket_mode", "unix_socket_mode",
	                      &s) == -1)
		return -1;
	if (s != NULL) {
		char *end;
		long m = strtol(s, &end, 8);

		if (*s == '\0' || *end != '\0' || m < 0 || m > 0777) {
			config_fail(x, "unix_socket_mode",
			            "'%s': an octal mode such as \"0660\"", s);
			free(s);
			return -1;
		}
		c->unix_mode = (int)m;
		free(s);
		s = NULL;
	}

	if (config_get_object(x, root, "key", "key", &v) == -1)
		return -1;
	if (v == NULL)
		return config_fail(x, "key",
		                   "required: {\"file\": \"agent-key.pem\"} "
		                   "(make one with `aauth-proxy keygen`)");
	{
		static const char *const kkeys[] = {"file", "kid", NULL};

		if (config_check_keys(x, v, "key", kkeys) == -1)
			return -1;
	}
	if (config_get_string(x, v, "file", "key.file", &s) == -1)
		return -1;
	if (s == NULL)
		return config_fail(x, "key.file", "required");
	c->key_file = config_path(x, s);
	free(s);
	s = NULL;
	if (config_get_string(x, v, "kid", "key.kid", &c->kid) == -1)
		return -1;

	if (config_get_string(x, root, "default_action", "default_action",
	                      &s) == -1)
		return -1;
	if (s != NULL) {
		int rc = config_parse_action(x, "default_action", s,
		                             &c->default_action);

		free(s);
		s = NULL;
		if (rc == -1)
			return -1;
		if (c->default_action == ROUTE_SIGN)
			return config_fail(
			    x, "default_action",
			    "must be deny or pass: credentials go "
			    "only to hosts a rule names");
	}
	if (config_get_bool(x, root, "block_private_addresses",
	                    "block_private_addresses", &c->block_private) == -1)
		return -1;

	if (config_get_object(x, root, "resources", "resources", &v) == -1)
		return -1;
	if (v != NULL) {
		c->resources =
		    xcalloc(json_object_size(v), sizeof(*c->resources));
		json_object_foreach(v, name, e)
		{
			struct config_resource *r =
			    &c->resources[c->nresources++];

			if (config_parse_resource(x, name, e, r, c->resources,
			                          c->nresources - 1) == -1)
				return -1;
		}
	}

	v = json_object_get(root, "rules");
	if (v != NULL) {
		if (!json_is_array(v))
			return config_fail(x, "rules", "must be an array");
		c->rules = xcalloc(json_array_size(v), sizeof(*c->rules));
		json_array_foreach(v, i, e)
		{
			if (config_parse_rule(x, i, e, c,
			                      &c->rules[c->nrules++]) == -1)
				return -1;
		}
	}
	if (config_parse_admin(x, root, c) == -1 ||
	    config_parse_limits(x, root, c) == -1 ||
	    config_parse_upstream(x, root, c) == -1 ||
	    config_parse_log(x, root, c) == -1 ||
	    config_parse_ca(x, root, c) == -1 ||
	    config_parse_routes(x, root, c) == -1)
		return -1;
	return 0;
}

static struct config *
config_parse_ctx(struct config_ctx *x, const char *json, const char *name)
{
	struct config *c = xcalloc(1, sizeof(*c));
	char *text = xstrdup(json);
	json_error_t je;
	json_t *root;

	config_defaults(c);
	c->path = xstrdup(name);
	util_json_strip_comments(text);
	root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	free(text);
	if (root == NULL) {
		err_set(x->err, "%s:%d:%d: invalid JSON: %s", name, je.line,
		        je.column, je.text);
		config_free(c);
		return NULL;
	}
	if (config_parse_root(x, root, c) == -1) {
		json_decref(root);
		config_free(c);
		return NULL;
	}
	json_decref(root);
	return c;
}

struct config *
config_parse(const char *json, const char *name, char *err)
{
	struct config_ctx x = {name, NULL, err};

	return config_parse_ctx(&x, json, name);
}

struct config *
config_load(const char *path, char *err)
{
	struct config_ctx x = {path, NULL, err};
	struct config *c;
	struct buf b;
	char *tmp, real[PATH_MAX];

	buf_init(&b);
	if (util_read_file(path, &b, 4 << 20, err) == -1) {
		buf_free(&b);
		return NULL;
	}
	/* Resolve relative paths against the config file's real directory. */
	if (realpath(path, real) != NULL) {
		tmp = xstrdup(real);
		x.dir = xstrdup(dirname(tmp));
		free(tmp);
	}
	c = config_parse_ctx(&x, b.data ? b.data : "", path);
	free(x.dir);
	buf_free(&b);
	return c;
}

void
config_free(struct config *c)
{
	size_t i;

	if (c == NULL)
		return;
	free(c->path);
	for (i = 0; i < c->nlisten; i++)
		free(c->listen[i]);
	free(c->listen);
	free(c->key_file);
	free(c->kid);
	for (i = 0; i < c->nresources; i++) {
		free(c->resources[i].name);
		free(c->resources[i].token_file);
		config_aauth_free(c->resources[i].aauth);
		httpsig_profile_free(&c->resources[i].profile);
	}
	free(c->resources);
	for (i = 0; i < c->nrules; i++)
		free(c->rules[i].host);
	free(c->rules);
	free(c->upstream_ca_file);
	free(c->upstream_proxy);
	free(c->upstream_proxy_host);
	free(c->upstream_proxy_auth_file);
	if (c->upstream_proxy_userpwd != NULL) {
		sodium_memzero(c->upstream_proxy_userpwd,
		               strlen(c->upstream_proxy_userpwd));
		free(c->upstream_proxy_userpwd);
	}
	for (i = 0; i < c->nadmin_listen; i++)
		free(c->admin_listen[i]);
	free(c->admin_listen);
	free(c->access_log);
	free(c->ca_cert_file);
	free(c->ca_key_file);
	for (i = 0; i < c->nroutes; i++) {
		free(c->routes[i].prefix);
		free(c->routes[i].upstream);
		free(c->routes[i].scheme);
		free(c->routes[i].host);
		free(c->routes[i].path);
	}
	free(c->routes);
	free(c);
}
