/*
 * upstream: outbound HTTP/1.1 exchanges through one libcurl multi handle
 * driven by the proxy's libevent loop. Connections, TLS sessions and DNS
 * answers are pooled; responses stream back through callbacks as curl
 * delivers them. Nothing here blocks and nothing here knows about clients.
 */
#ifndef AAUTH_UPSTREAM_H
#define AAUTH_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "http1.h"

struct event_base;
struct sockaddr;
struct upstream;
struct upstream_req;

/* One outgoing request. Every pointer must stay valid until done is
 * called or the request is cancelled (curl sends the body in place). */
struct upstream_spec {
	const char *method; /* sent exactly as given */
	const char *scheme; /* "http" or "https" */
	const char *host;   /* to dial; IPv6 literal in brackets */
	int port;
	const char *target; /* request-target, sent byte for byte */
	const struct http_fields *fields; /* every header line, in order */
	const unsigned char *body;
	size_t body_len;
	int has_body;      /* the request carries a body (maybe empty) */
	int check_private; /* refuse private/loopback/link-local addresses */
	/* Timeouts, trust store and limits: the generation the exchange
	 * started with (valid until done or cancel). */
	const struct config *cfg;
};

/* How an exchange ended. */
struct upstream_result {
	int ok;            /* the whole response arrived */
	int status;        /* on failure: the status to answer (502/504/403) */
	const char *error; /* RFC 9209 Proxy-Status error type */
	char detail[256];  /* what went wrong, for the client and the log */
	uint64_t head_ms;  /* start → response head (0 if none) */
	/* The trailer section as "Name: value\r\n" lines (checked like
	 * head fields; hop-by-hop and framing fields left out), valid
	 * during the done callback only; NULL when there was none. */
	const char *trailers;
	size_t trailers_len;
};

/* The final response head, as http1_response_line parsed it (see there
 * for what it guarantees; anything else ends the exchange with 502
 * http_protocol_error before the head callback runs). Everything points
 * into the request's own buffer: valid only during the head callback. */
struct upstream_head {
	int status;         /* 200..599 */
	const char *reason; /* possibly empty; HTAB, SP, VCHAR, obs-text */
	const struct http_response_field *v;
	size_t n;
	/* The body length from Content-Length; -1 when there is none or
	 * Transfer-Encoding overrides it (curl then removes the chunking and
	 * the body must be re-framed). Never relay the upstream's own
	 * Content-Length text: write this number instead. */
	int64_t content_length;
};

struct upstream_cbs {
	/* The final response head (1xx skipped). Return -1 to abort. */
	int (*head)(void *arg, const struct upstream_head *h);
	/* Response body bytes, transfer coding removed. Return 0 when
	 * consumed, 1 to pause (the bytes are delivered again after
	 * upstream_resume), -1 to abort. */
	int (*body)(void *arg, const char *p, size_t n);
	/* Always called exactly once unless the request is cancelled; the
	 * request is gone by then. */
	void (*done)(void *arg, const struct upstream_result *r);
};

struct upstream *upstream_new(struct event_base *base, char *err);
void upstream_free(struct upstream *u);

/* Start an exchange; NULL with err when curl refuses the request. */
struct upstream_req *upstream_start(struct upstream *u,
                                    const struct upstream_spec *s,
                                    const struct upstream_cbs *cbs, void *arg,
                                    char *err);
/* Continue a transfer paused by the body callback. */
void upstream_resume(struct upstream_req *r);
/* Abort and forget a request; done is not called. Not from inside one of
 * the request's own callbacks. */
void upstream_cancel(struct upstream_req *r);

/* Transfers in flight (for draining). */
size_t upstream_active(const struct upstream *u);

/* A descriptor was just returned by accept() or socket(): drop any event
 * still registered for an earlier socket with that number (libcurl closes
 * its resolver's socketpair without our close-socket callback). */
void upstream_fd_reused(struct upstream *u, int fd);

#endif
