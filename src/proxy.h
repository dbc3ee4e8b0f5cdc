/*
 * proxy: the daemon — one struct proxy holding the event base, the
 * configuration, the key, the token store, the upstream multi, the
 * listeners and the client connections. No other mutable global state.
 */
#ifndef AAUTH_PROXY_H
#define AAUTH_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "key.h"
#include "token.h"
#include "upstream.h"
#include "util.h"

struct event;
struct event_base;
struct evconnlistener;
struct conn;

struct proxy_listener {
	struct proxy *px;
	struct evconnlistener *lev;
	char name[160];  /* as bound: "127.0.0.1:8787", "unix:/run/a.sock" */
	char *unix_path; /* unlinked on exit */
	int unix_sock;
	struct proxy_listener *next;
};

/* Counters for the log today and /metrics later. */
struct proxy_stats {
	uint64_t accepted;
	uint64_t refused; /* over max_connections */
	uint64_t requests;
	uint64_t signed_requests;
	uint64_t passed;
	uint64_t denied;
	uint64_t local_errors;    /* answered by the proxy with >= 400 */
	uint64_t upstream_errors; /* 502/504 from the upstream side */
};

/* A token as looked up during one batch of callbacks (see conn.c). */
struct proxy_token_memo {
	const char *token;
	char hash[13];
};

struct proxy {
	struct event_base *base;
	const struct config *cfg;
	struct key key;
	struct token_store *tokens;
	struct upstream *up;
	struct proxy_listener *listeners;
	struct conn *conns; /* every client connection */
	size_t nconns;      /* counted against max_connections */
	size_t nrefusing;   /* over the limit, being told 503 */
	FILE *access_log;   /* NULL: stderr via log_json_line */
	int access_log_off;
	int draining;
	struct event *ev_sigterm, *ev_sigint, *ev_sighup;
	struct event *ev_drain, *ev_accept_retry;
	struct proxy_stats stats;
	uint64_t body_bytes; /* request bodies held now (max_buffered_bytes) */
	struct buf scratch;  /* per-request text (access-log line) */
	/* Per resource (config order): the token looked up in the current
	 * batch of event callbacks, so a batch of signed requests costs one
	 * token-file check. ev_token_forget, activated when one is stored,
	 * runs after the batch and clears them all. */
	struct proxy_token_memo *token_memo;
	struct event *ev_token_forget;
};

/* Called by conn when a connection is freed; ends the drain when it was
 * the last one. */
void proxy_conn_gone(struct proxy *px);
/* One access-log line: a JSON object ending in a newline, len bytes. */
void proxy_access_log(struct proxy *px, const char *line, size_t len);

#endif
