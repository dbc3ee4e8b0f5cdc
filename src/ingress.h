/*
 * ingress: what a request that arrived at the proxy is, and where it goes —
 * the one classifier between parsing and forwarding. It refuses what the
 * proxy will not carry (CONNECT for now, origin-form requests, TRACE,
 * other schemes, bad hosts, denied hosts) with the status and words for
 * the client, and for the rest decides the rule, the upstream scheme,
 * host and port, and rewrites the request into the form that is sent
 * (canonical host, authority, origin-form target).
 */
#ifndef AAUTH_INGRESS_H
#define AAUTH_INGRESS_H

#include "config.h"
#include "http1.h"

enum ingress_kind {
	INGRESS_FORWARD,   /* action PASS or SIGN */
	INGRESS_REFUSE,    /* answer status with code and detail */
	INGRESS_INTERCEPT, /* CONNECT to a sign host: 200, then TLS or HTTP */
	INGRESS_SPLICE,    /* CONNECT to a pass host: dial, 200, bytes */
	INGRESS_CALLBACK,  /* the consent redirect of res (origin-form GET of
	                      its redirect_uri path on our own listener) */
};

/* The CONNECT tunnel an inner request arrived in: every inner request
 * must name this host and port (host binding). */
struct ingress_tunnel {
	const char *host; /* canonical */
	int port;
	int tls; /* intercepted TLS (https); 0: plain HTTP in the tunnel */
};

struct ingress {
	enum ingress_kind kind;
	enum route_action action;
	int routed; /* a rule (or default_action) was applied */
	const struct config_resource *res; /* SIGN */
	int check_private; /* no rule names the host: refuse private ranges */
	char up_scheme[8];
	int up_port;
	const char *up_host; /* to dial (IPv6 in brackets): r->host */
	const struct config_route *route; /* the routes entry applied */
	int upgrade; /* Upgrade requested: splice after 101 */

	/* INGRESS_REFUSE */
	int status;
	const char *ps_error; /* RFC 9209 type for Proxy-Status, or NULL */
	const char *code;     /* the JSON body's "error" */
	const char *host;     /* the JSON body's "host" (403), or NULL */
	int close;            /* close even when no body is left unread */
	char detail[512];
};

/* Where the request came in, for the words of a usage error. */
struct ingress_listener {
	const char *name;
	int unix_sock;
	const struct ingress_tunnel *tun; /* NULL: not inside a CONNECT */
	int have_ca; /* a local CA is loaded: sign hosts can be intercepted */
};

/* Classify r and rewrite it for forwarding. Never fails: a request that
 * cannot be carried comes back as INGRESS_REFUSE. */
void ingress_classify(const struct config *cfg,
                      const struct ingress_listener *ls, struct http_request *r,
                      struct ingress *in);

#endif
