/*
 * conn: one client connection's HTTP exchange state machine — head, body,
 * route, finalise, upstream, stream the response, next request — over a
 * transport (xport) that carries the bytes. It reaches the rest of the
 * daemon only through a conn_ctx, and each exchange holds the generation
 * (config and key) it started with.
 */
#ifndef AAUTH_CONN_H
#define AAUTH_CONN_H

#include <stddef.h>

struct accesslog;
struct conn;
struct event_base;
struct evdns_base;
struct gen;
struct metrics;
struct sockaddr;
struct token_store;
struct upstream;

/* Where a connection came in, for messages ("HTTP_PROXY=http://…"). */
struct conn_listener {
	char name[160]; /* as bound: "127.0.0.1:8787", "unix:/run/a.sock" */
	int unix_sock;
};

/* What connections share, set up and owned by the process (proxy). */
struct conn_ctx {
	struct event_base *base;
	struct gen *gen; /* current: new exchanges take a reference */
	struct upstream *up;
	struct token_store *tokens;
	struct accesslog *alog;
	struct metrics *metrics;
	struct evdns_base *dns; /* the tunnel dialer's resolver */
	int draining; /* shutting down: no keep-alive, no new requests */
	/* Called after a connection is freed (the drain waits for none). */
	void (*gone)(void *arg);
	void *gone_arg;

	/* Kept by conn. */
	struct conn *conns; /* every client connection */
	size_t nconns;      /* counted against max_connections */
	size_t nrefusing;   /* over the limit, being told 503 */
};

/* Take over an accepted, non-blocking socket. Over max_connections the
 * client is told 503 and the socket is closed. */
void conn_accept(struct conn_ctx *ctx, const struct conn_listener *ls, int fd,
                 const struct sockaddr *sa, int salen);
/* Shutdown: close idle connections now, the others after their current
 * response. */
void conn_drain_all(struct conn_ctx *ctx);
/* Close every connection at once (end of the drain period, exit). */
void conn_free_all(struct conn_ctx *ctx);

#endif
