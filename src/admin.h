/*
 * admin: the operator's HTTP port — /healthz, /readyz, /status, /metrics
 * and /ca.pem — on the shared HTTP/1.1 parser, one request per
 * connection, beside (never through) the proxy's connection path. It only
 * reads what the process shares with it.
 */
#ifndef AAUTH_ADMIN_H
#define AAUTH_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "util.h"

struct sockaddr;
struct admin;

/* What the process tells the admin port, kept current by the process. */
struct admin_state {
	struct conn_ctx *ctx; /* generation, tokens, metrics, draining */
	int listening;        /* the proxy listeners are up */
	size_t nlisteners;
	int64_t last_reload; /* unix seconds of the last SIGHUP, 0: none */
	int last_reload_ok;
	char last_reload_error[ERR_MAX]; /* why the last one was rejected */
};

struct admin *admin_new(struct admin_state *st);
/* A listener_accept_fn: arg is the struct admin. */
void admin_accept(void *arg, const struct conn_listener *ls, int fd,
                  const struct sockaddr *sa, int salen);
/* Closes the connections still open. */
void admin_free(struct admin *a);

#endif
