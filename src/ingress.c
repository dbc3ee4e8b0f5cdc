/*
 * ingress: classify a parsed request — refuse it with a reason, or route it
 * (rule, upstream scheme, host and port) and rewrite it into the form that
 * is forwarded and signed. No I/O: conn acts on the result.
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
		ingress_refuse(in, 400, NULL, "not_a_proxy_request", 1,
		               "%s: this is a forward proxy, it takes "
		               "absolute-form requests (GET http://host/path "
		               "HTTP/1.1). Point your client at it: "
		               "HTTP_PROXY=http://%s, or curl -x http://%s "
		               "http://api.example.com/",
		               why, ls->name, ls->name);
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
		ingress_refuse(in, 501, NULL, "connect_not_supported", 1,
		               "CONNECT tunnels (HTTPS_PROXY) are not "
		               "implemented in this version; send http:// URLs "
		               "through HTTP_PROXY instead");
		return;
	}
	if (r->form == HTTP_TARGET_ORIGIN) {
		if (ingress_callback(cfg, r, in) == 0)
			return;
		ingress_usage(in, ls, "origin-form request");
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
	ingress_target(in, r);
}
