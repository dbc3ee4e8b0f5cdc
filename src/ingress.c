/*
 * ingress: classify a parsed request — refuse it with a reason, or route it
 * (rule, upstream scheme, host and port) and rewrite it into the form that
 * is forwarded and signed; decide what a CONNECT is (intercept, splice,
 * refuse) and hold every request inside a tunnel to the tunnel's host and
 * port. No I/O: conn acts on the result.
 */
#include "ingress.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"
#include "route.h"
#include "util.h"

static int
ingress_default_port(const char *scheme)
{
	return strcmp(scheme, "https") == 0 ? 443 : 80;
}

static void ingress_refuse(struct ingress *in, int status, const char *ps_error,
                           const char *code, int close, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void
ingress_refuse(struct ingress *in, int status, const char *ps_error,
               const char *code, int close, const char *fmt, ...)
{
	va_list ap;

	in->kind = INGRESS_REFUSE;
	in->status = status;
	in->ps_error = ps_error;
	in->code = code;
	in->close = close;
	va_start(ap, fmt);
	vsnprintf(in->detail, sizeof(in->detail), fmt, ap);
	va_end(ap);
}

static void
ingress_usage(struct ingress *in, const struct ingress_listener *ls,
              const char *why)
{
	if (ls->unix_sock)
		ingress_refuse(in, 400, NULL, "not_a_proxy_request", 1,
		               "%s: this is a forward proxy, it takes "
		               "absolute-form requests (GET http://host/path "
		               "HTTP/1.1). Send them on %s.",
		               why, ls->name);
	else
		ingress_refuse(
		    in, 400, NULL, "not_a_proxy_request", 1,
		    "%s: this is a forward proxy, it takes "
		    "absolute-form requests (GET http://host/path "
		    "HTTP/1.1). Point your client at it: "
		    "http_proxy=http://%s HTTP_PROXY=http://%s (curl, "
		    "wget and git read only the lower-case one), or "
		    "curl -x http://%s http://api.example.com/",
		    why, ls->name, ls->name, ls->name);
}

/* TRACE (and IIS's TRACK) makes the upstream echo the request it got: on
 * a sign rule that is the Bearer token and a valid signature, handed to
 * the agent (RFC 9110 §9.3.8: no credentials in TRACE). Refused on every
 * rule, in any spelling (servers that upper-case methods exist). */
static int
ingress_method_reflects(const char *m)
{
	return util_strcaseeq(m, "TRACE") || util_strcaseeq(m, "TRACK");
}

/* Route, dial and sign one spelling of the host (netaddr_canonical_host):
 * a deny rule for 127.0.0.2 must hold for 2130706434, 0x7f.0.0.2 or
 * [::ffff:127.0.0.2] too, and a name curl would percent-decode before
 * dialling is refused. When the spelling changes, the outgoing authority
 * (Host, and @authority when signed) is rebuilt from the canonical host,
 * keeping an explicit non-default port. */
static int
ingress_host(struct http_request *r, struct ingress *in)
{
	char host[NETADDR_HOST_MAX], err[ERR_MAX];
	struct buf b;

	if (netaddr_canonical_host(r->host, host, err) == -1) {
		ingress_refuse(in, 400, NULL, "invalid_host", 0, "%s", err);
		return -1;
	}
	if (strcmp(host, r->host) == 0)
		return 0; /* the usual case: nothing to copy */
	free(r->host);
	r->host = xstrdup(host);
	buf_init(&b);
	buf_appends(&b, host);
	if (r->port != -1 && r->port != ingress_default_port(r->scheme))
		buf_appendf(&b, ":%d", r->port);
	free(r->authority);
	r->authority = buf_steal(&b);
	return 0;
}

/* Decide where the request goes upstream and what its authority is. For
 * signing rules the scheme is https unless the resource allows plaintext
 * (an https request is never downgraded); the authority is normalised
 * because it is signed. */
static void
ingress_target(struct ingress *in, struct http_request *r)
{
	const char *cs = r->scheme;
	const char *scheme = cs;
	int port = r->port;
	size_t plen, qlen;
	struct buf b;
	char *t;

	if (in->action == ROUTE_SIGN) {
		scheme = (strcmp(cs, "https") == 0 || in->res->upstream_tls)
		             ? "https"
		             : "http";
		/* http://host:80/ means "the default port"; upgraded to
		 * TLS that is 443. */
		if (port == 80 && strcmp(cs, "http") == 0 &&
		    strcmp(scheme, "https") == 0)
			port = -1;
	}
	if (port == -1)
		port = ingress_default_port(scheme);
	snprintf(in->up_scheme, sizeof(in->up_scheme), "%s", scheme);
	in->up_port = port;

	if (in->action == ROUTE_SIGN) {
		/* r->host is canonical already (ingress_host). */
		buf_init(&b);
		buf_appends(&b, r->host);
		if (port != ingress_default_port(scheme))
			buf_appendf(&b, ":%d", port);
		free(r->authority);
		r->authority = buf_steal(&b);
		r->port = port == ingress_default_port(scheme) ? -1 : port;
	}
	/* What is dialled is what is signed: the request's own host. */
	in->up_host = r->host;
	/* From our copy: scheme may be r->scheme itself. */
	if (r->scheme == NULL || strcmp(r->scheme, in->up_scheme) != 0)
		http_request_set_scheme(r, in->up_scheme);
	if (r->path == NULL || r->path[0] == '\0') {
		free(r->path);
		r->path = xstrdup("/");
	}
	plen = strlen(r->path);
	qlen = r->query != NULL ? strlen(r->query) + 1 : 0;
	t = xmalloc(plen + qlen + 1);
	memcpy(t, r->path, plen);
	if (r->query != NULL) {
		t[plen] = '?';
		memcpy(t + plen + 1, r->query, qlen - 1);
	}
	t[plen + qlen] = '\0';
	free(r->target);
	r->target = t;
	r->form = HTTP_TARGET_ORIGIN;
}

/* Host and port of an authority ("h", "h:p", "[v6]:p") in canonical
 * form; port -1 when none is written. */
static int
ingress_split_authority(const char *a, char *host, int *port)
{
	char tmp[NETADDR_HOST_MAX], err[ERR_MAX];
	const char *colon = NULL, *rb;
	size_t n;
	char *end;
	long p;

	if (a[0] == '[') {
		rb = strchr(a, ']');
		if (rb == NULL)
			return -1;
		if (rb[1] == ':')
			colon = rb + 1;
		else if (rb[1] != '\0')
			return -1;
	} else {
		colon = strchr(a, ':');
	}
	n = colon ? (size_t)(colon - a) : strlen(a);
	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, a, n);
	tmp[n] = '\0';
	*port = -1;
	if (colon != NULL) {
		p = strtol(colon + 1, &end, 10);
		if (*end != '\0' || colon[1] == '\0' || p < 1 || p > 65535)
			return -1;
		*port = (int)p;
	}
	return netaddr_canonical_host(tmp, host, err);
}

/* Does an authority name the tunnel's host and port? */
static int
ingress_names_tunnel(const struct ingress_tunnel *t, const char *authority)
{
	char host[NETADDR_HOST_MAX];
	int port;

	if (authority == NULL ||
	    ingress_split_authority(authority, host, &port) == -1)
		return 0;
	if (port == -1)
		port = t->tls ? 443 : 80;
	return port == t->port && strcmp(host, t->host) == 0;
}

/* A request inside a CONNECT tunnel: its target and its Host must name
 * the CONNECT authority, or it is refused (421) before any rule is
 * applied; then it becomes the absolute-form request it stands for, so it
 * is routed, signed and forwarded exactly as one. */
static int
ingress_bind(const struct ingress_listener *ls, struct http_request *r,
             struct ingress *in)
{
	const struct ingress_tunnel *t = ls->tun;
	const char *scheme = t->tls ? "https" : "http";
	const char *hosthdr = http_fields_get(&r->fields, "Host");
	const char *named = NULL;
	struct buf b;

	if (r->form == HTTP_TARGET_ABSOLUTE) {
		if (strcmp(r->scheme, scheme) != 0 ||
		    !ingress_names_tunnel(t, r->authority))
			named = r->authority;
	} else if (r->form != HTTP_TARGET_ORIGIN) {
		ingress_refuse(in, 400, NULL, "bad_request", 1,
		               "inside a tunnel only origin-form (/path) and "
		               "absolute-form requests are taken");
		return -1;
	}
	/* HTTP/1.0 may leave Host out: the tunnel names the host then. */
	if (named == NULL && hosthdr != NULL &&
	    !ingress_names_tunnel(t, hosthdr))
		named = hosthdr;
	if (named != NULL) {
		ingress_refuse(in, 421, "http_request_denied",
		               "misdirected_request", 1,
		               "the request names %.200s but this tunnel was "
		               "opened (CONNECT) to %s:%d; one host per tunnel "
		               "(host binding)",
		               named, t->host, t->port);
		return -1;
	}
	http_request_set_scheme(r, scheme);
	free(r->host);
	r->host = xstrdup(t->host);
	r->port = t->port;
	buf_init(&b);
	buf_appendf(&b, "%s:%d", t->host, t->port);
	free(r->authority);
	r->authority = buf_steal(&b);
	r->form = HTTP_TARGET_ABSOLUTE;
	return 0;
}

/* A CONNECT: decide from the rule for host:port before any byte of the
 * tunnel is read. */
static void
ingress_connect(const struct config *cfg, const struct ingress_listener *ls,
                struct http_request *r, struct ingress *in)
{
	char host[NETADDR_HOST_MAX], err[ERR_MAX];
	const struct config_rule *rule;

	if (ls->tun != NULL) {
		ingress_refuse(in, 400, NULL, "bad_request", 1,
		               "CONNECT inside a tunnel is not taken");
		return;
	}
	if (strcmp(r->method, "CONNECT") != 0 ||
	    r->form != HTTP_TARGET_AUTHORITY || r->host == NULL ||
	    r->port < 1) {
		ingress_refuse(in, 400, NULL, "bad_request", 1,
		               "CONNECT takes host:port, and host:port is "
		               "only taken with CONNECT");
		return;
	}
	if (netaddr_canonical_host(r->host, host, err) == -1) {
		ingress_refuse(in, 400, NULL, "invalid_host", 1, "%s", err);
		return;
	}
	free(r->host);
	r->host = xstrdup(host);
	rule = route_match(cfg, r->host, r->port);
	in->action = rule ? rule->action : cfg->default_action;
	in->routed = 1;
	in->up_host = r->host;
	in->up_port = r->port;
	if (in->action == ROUTE_DENY) {
		in->host = r->host;
		if (rule)
			ingress_refuse(in, 403, "http_request_denied", "denied",
			               1, "rule '%s' denies tunnels to %s:%d",
			               rule->host, r->host, r->port);
		else
			ingress_refuse(in, 403, "http_request_denied", "denied",
			               1,
			               "no rule names %s:%d and default_action "
			               "is deny",
			               r->host, r->port);
		return;
	}
	snprintf(in->up_scheme, sizeof(in->up_scheme), "tcp");
	if (in->action == ROUTE_PASS) {
		in->kind = INGRESS_SPLICE;
		in->check_private = rule == NULL && cfg->block_private;
		return;
	}
	in->res = rule->resource;
	if (!ls->have_ca) {
		ingress_refuse(
		    in, 503, "proxy_configuration_error", "no_local_ca", 1,
		    "%s:%d is signed for, so its TLS must be "
		    "intercepted, and there is no local CA yet: run "
		    "`aauth-proxy ca init -c %s` and trust the CA it "
		    "prints",
		    r->host, r->port, cfg->path ? cfg->path : "CONFIG");
		return;
	}
	in->kind = INGRESS_INTERCEPT;
}

/* The routes entry whose prefix starts path (the longest), or NULL. */
static const struct config_route *
ingress_route_find(const struct config *cfg, const char *path)
{
	const struct config_route *best = NULL;
	size_t i, n, bn = 0;

	for (i = 0; i < cfg->nroutes; i++) {
		n = strlen(cfg->routes[i].prefix);
		if (n > bn && strncmp(path, cfg->routes[i].prefix, n) == 0) {
			best = &cfg->routes[i];
			bn = n;
		}
	}
	return best;
}

/* A segment that a server would take for "." or ".." (in any escaping),
 * or an escaped slash: either could climb out of the base path. */
static int
ingress_path_climbs(const char *p)
{
	const char *seg = p, *q;
	size_t dots, other;

	for (;;) {
		dots = other = 0;
		for (q = seg; *q && *q != '/'; q++) {
			if (*q == '.') {
				dots++;
			} else if (q[0] == '%' && q[1] == '2' &&
			           (q[2] == 'e' || q[2] == 'E')) {
				dots++;
				q += 2;
			} else if (q[0] == '%' &&
			           ((q[1] == '2' &&
			             (q[2] == 'f' || q[2] == 'F')) ||
			            (q[1] == '5' &&
			             (q[2] == 'c' || q[2] == 'C')))) {
				return 1;
			} else if (*q == '\\') {
				return 1;
			} else {
				other++;
			}
		}
		if (other == 0 && (dots == 1 || dots == 2))
			return 1;
		if (*q == '\0')
			return 0;
		seg = q + 1;
	}
}

/* Is the absolute-form target the proxy's own listener (an agent under
 * `exec` calling a route's base URL through HTTP_PROXY)? */
static int
ingress_is_self(const struct ingress_listener *ls, const struct http_request *r)
{
	char h1[NETADDR_HOST_MAX], h2[NETADDR_HOST_MAX];
	int p1, p2;

	if (ls->unix_sock || r->authority == NULL ||
	    strcmp(r->scheme, "http") != 0)
		return 0;
	if (ingress_split_authority(ls->name, h1, &p1) == -1 ||
	    ingress_split_authority(r->authority, h2, &p2) == -1)
		return 0;
	return p1 == (p2 == -1 ? 80 : p2) && strcmp(h1, h2) == 0;
}

/* An origin-form request under a routes prefix becomes the absolute-form
 * request to the base URL; everything after the prefix is kept byte for
 * byte (it is signed), so nothing that could climb out of the base path
 * is taken. */
static int
ingress_route(const struct config *cfg, const struct ingress_listener *ls,
              struct http_request *r, struct ingress *in)
{
	const struct config_route *rt = ingress_route_find(cfg, r->path);
	const char *rest;
	struct buf b;

	if (rt == NULL) {
		ingress_usage(in, ls,
		              cfg->nroutes ? "no route's prefix starts this "
		                             "path"
		                           : "origin-form request");
		return -1;
	}
	rest = r->path + strlen(rt->prefix);
	if (ingress_path_climbs(rest)) {
		ingress_refuse(in, 400, NULL, "bad_request", 0,
		               "a path under a route may not have '.' or '..' "
		               "segments or escaped slashes: they could leave "
		               "%s",
		               rt->upstream);
		return -1;
	}
	in->route = rt;
	buf_init(&b);
	buf_appends(&b, rt->path);
	buf_appends(&b, rest);
	free(r->path);
	r->path = buf_steal(&b);
	http_request_set_scheme(r, rt->scheme);
	free(r->host);
	r->host = xstrdup(rt->host);
	r->port = rt->port;
	buf_appends(&b, rt->host);
	if (rt->port != -1)
		buf_appendf(&b, ":%d", rt->port);
	free(r->authority);
	r->authority = buf_steal(&b);
	r->form = HTTP_TARGET_ABSOLUTE;
	return 0;
}

/* Upgrade (WebSocket and others): the request names the protocol and
 * lists "upgrade" in Connection. */
static int
ingress_wants_upgrade(const struct http_request *r)
{
	const struct http_fields *f = &r->fields;
	size_t i;
	int conn = 0;

	if (http_fields_get(f, "Upgrade") == NULL)
		return 0;
	for (i = 0; i < f->n; i++)
		if (util_strcaseeq(f->v[i].name, "Connection") &&
		    http1_list_has(f->v[i].value, strlen(f->v[i].value),
		                   "upgrade", 7))
			conn = 1;
	return conn;
}

/* A browser sent back to a resource's redirect_uri (aauth consent): the
 * only origin-form request the proxy answers itself. */
static int
ingress_callback(const struct config *cfg, const struct http_request *r,
                 struct ingress *in)
{
	size_t i;

	for (i = 0; i < cfg->nresources; i++) {
		const struct config_aauth *a = cfg->resources[i].aauth;

		if (a == NULL || a->redirect_path == NULL || r->path == NULL ||
		    strcmp(r->path, a->redirect_path) != 0)
			continue;
		if (strcmp(r->method, "GET") != 0 &&
		    strcmp(r->method, "HEAD") != 0) {
			ingress_refuse(in, 405, NULL, "method_not_allowed", 0,
			               "the consent callback takes GET");
			return 0;
		}
		in->kind = INGRESS_CALLBACK;
		in->res = &cfg->resources[i];
		return 0;
	}
	return -1;
}

void
ingress_classify(const struct config *cfg, const struct ingress_listener *ls,
                 struct http_request *r, struct ingress *in)
{
	const struct config_rule *rule;
	int port;

	memset(in, 0, sizeof(*in));
	if (strcmp(r->method, "CONNECT") == 0 ||
	    r->form == HTTP_TARGET_AUTHORITY) {
		ingress_connect(cfg, ls, r, in);
		return;
	}
	if (ls->tun != NULL) {
		if (ingress_bind(ls, r, in) == -1)
			return;
	} else if (r->form == HTTP_TARGET_ORIGIN &&
	           ingress_callback(cfg, r, in) == 0) {
		return;
	} else if (r->form == HTTP_TARGET_ORIGIN ||
	           (r->form == HTTP_TARGET_ABSOLUTE && cfg->nroutes > 0 &&
	            ingress_is_self(ls, r))) {
		if (ingress_route(cfg, ls, r, in) == -1)
			return;
	}
	if (ingress_method_reflects(r->method)) {
		ingress_refuse(in, 405, "http_request_denied",
		               "method_not_allowed", 0,
		               "%s makes the server echo the request, "
		               "credentials included; the proxy does not "
		               "forward it",
		               r->method);
		return;
	}
	if (r->form != HTTP_TARGET_ABSOLUTE || r->scheme == NULL ||
	    r->host == NULL || r->host[0] == '\0') {
		ingress_usage(in, ls, "unsupported request-target");
		return;
	}
	if (strcmp(r->scheme, "http") != 0 && strcmp(r->scheme, "https") != 0) {
		ingress_refuse(in, 400, NULL, "unsupported_scheme", 1,
		               "only http:// and https:// targets can be "
		               "proxied");
		return;
	}
	if (ingress_host(r, in) == -1)
		return;
	port = r->port != -1 ? r->port : ingress_default_port(r->scheme);
	rule = route_match(cfg, r->host, port);
	in->action = rule ? rule->action : cfg->default_action;
	in->routed = 1;
	if (in->action == ROUTE_DENY) {
		in->host = r->host;
		if (rule)
			ingress_refuse(in, 403, "http_request_denied", "denied",
			               0, "rule '%s' denies requests to %s:%d",
			               rule->host, r->host, port);
		else if ((rule = route_match_other_port(cfg, r->host, port)) !=
		         NULL)
			ingress_refuse(
			    in, 403, "http_request_denied", "denied", 0,
			    "no rule names %s:%d and default_action "
			    "is deny; rule '%s' names port %d only. A "
			    "rule's port is the port in the URL the "
			    "agent uses, and http:// URLs without one "
			    "use port 80: drop \"port\" from the rule "
			    "or give it %d",
			    r->host, port, rule->host, rule->port, port);
		else
			ingress_refuse(in, 403, "http_request_denied", "denied",
			               0,
			               "no rule names %s:%d and default_action "
			               "is deny",
			               r->host, port);
		return;
	}
	in->kind = INGRESS_FORWARD;
	if (in->action == ROUTE_SIGN)
		in->res = rule->resource;
	in->check_private = rule == NULL && cfg->block_private;
	in->upgrade = ingress_wants_upgrade(r);
	ingress_target(in, r);
}
