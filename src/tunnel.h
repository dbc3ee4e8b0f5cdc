/*
 * tunnel: the opaque two-way splice between a client connection and an
 * upstream connection — for CONNECT to a pass host, and after a 101
 * Switching Protocols — and its non-blocking dialer (evdns, then each
 * address in turn, holding to the private-range policy exactly as the
 * upstream client does). Idle tunnels are closed.
 */
#ifndef AAUTH_TUNNEL_H
#define AAUTH_TUNNEL_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evdns_base;
struct xport;
struct tunnel;

struct tunnel_cbs {
	/* The splice runs: the client transport's events are the
	 * tunnel's now. status: 200 (CONNECT) or the upstream's (upgrade). */
	void (*ready)(void *arg, int status);
	/* Nothing reached the client yet: answer status with the RFC 9209
	 * error type and detail, then close. */
	void (*failed)(void *arg, int status, const char *error,
	               const char *detail);
	/* The splice is over (closed both ways, idle, error); why is for the
	 * log. Called from an event of its own: the callee may free. */
	void (*done)(void *arg, const char *why);
};

struct tunnel_spec {
	struct evdns_base *dns;
	const char *host; /* canonical: IPv6 literal in brackets */
	int port;
	int check_private; /* no rule names the host: refuse private ranges */
	unsigned connect_timeout_ms;
	unsigned idle_timeout_ms;
	/* Upgrade mode (request != NULL): send request (head and body) to
	 * the upstream — over TLS when tls, verified against ca_file or the
	 * system store — relay its response head, then splice. CONNECT
	 * mode: tell the client "200 Connection established", then splice. */
	const char *request;
	size_t request_len;
	int tls;
	const char *ca_file;
	size_t max_head_bytes; /* of the upstream's response head */
	unsigned handshake_ms;
	const char *label; /* the client, for log lines */
	/* upstream.proxy: dial via_host:via_port instead and ask it for a
	 * CONNECT tunnel to host:port (Basic via_auth "user:password" when
	 * set); the proxy resolves host, so check_private does not apply. */
	const char *via_host;
	int via_port;
	const char *via_auth;
};

/* Start dialling. The client transport stays the caller's until ready;
 * afterwards the tunnel moves its bytes (the caller still frees it, after
 * tunnel_free). NULL with err when nothing could be started. */
struct tunnel *tunnel_start(struct event_base *base,
                            const struct tunnel_spec *s, struct xport *client,
                            const struct tunnel_cbs *cbs, void *arg, char *err);
/* Bytes carried so far: client → upstream, upstream → client. */
void tunnel_bytes(const struct tunnel *t, uint64_t *up, uint64_t *down);
/* Stop and free (no callback); safe from inside the tunnel's callbacks. */
void tunnel_free(struct tunnel *t);

#endif
