/*
 * fetch: one request of the proxy's own (the token endpoint, a resource
 * token URL) over the upstream module, with the response buffered up to a
 * bound and an overall deadline. The data path streams; these exchanges
 * are small and are read whole. Secrets in the request and the response
 * are wiped when the exchange is freed.
 */
#ifndef AAUTH_FETCH_H
#define AAUTH_FETCH_H

#include <stddef.h>

#include "http1.h"

struct event_base;
struct fetch;
struct gen;
struct upstream;

struct fetch_result {
	int ok;               /* a complete response within the bounds */
	int status;           /* its status (also when oversized) */
	int oversized;        /* the body was longer than max_body */
	unsigned retry_after; /* seconds (Retry-After), 0: none */
	const char *body;     /* NUL-terminated; valid during the callback */
	size_t body_len;
	const char *error; /* !ok: RFC 9209 type ("connection_refused", …) */
	char detail[256];  /* !ok: what went wrong, no secret in it */
};

struct fetch_spec {
	struct gen *gen;          /* the config (timeouts, CA) and key */
	struct http_request *req; /* finalised; fetch takes it over */
	const char *scheme;       /* "https" or "http" */
	const char *host;         /* to dial, IPv6 in brackets */
	int port;
	size_t max_body;
	unsigned timeout_ms; /* the whole exchange */
};

typedef void (*fetch_cb)(void *arg, const struct fetch_result *res);

/* Start; cb runs exactly once, never before fetch_start returns, unless
 * the fetch is cancelled. NULL with err when it cannot start (the
 * request is freed then too). */
struct fetch *fetch_start(struct event_base *base, struct upstream *up,
                          const struct fetch_spec *s, fetch_cb cb, void *arg,
                          char *err);
void fetch_cancel(struct fetch *f);

/* The timeout for the proxy's own exchanges under a config: twice the
 * connect timeout, between 2 and 60 seconds. */
unsigned fetch_timeout_ms(const struct gen *g);

/* A new request (malloc'd, for fetch_spec.req) built through the strict
 * parser, so it is exactly what the data path would have made: method,
 * origin-form target, Host, and with a body Content-Type and
 * Content-Length. NULL with err. */
struct http_request *
fetch_request_new(const char *method, const char *scheme, const char *authority,
                  const char *target, const char *content_type,
                  const char *body, size_t body_len, char *err);

/* Zero every field value and the body, then free the request. */
void fetch_request_wipe(struct http_request *r);

#endif
