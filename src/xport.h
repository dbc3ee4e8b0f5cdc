/*
 * xport: the byte stream under one client connection. The HTTP state
 * machine (conn) sees two evbuffers of plaintext and three callbacks; it
 * never sees a descriptor. Each kind of transport (a plain socket today;
 * TLS and tunnels later) is one table of operations behind the same
 * interface, as HAProxy's xprt_ops or curl's connection filters.
 */
#ifndef AAUTH_XPORT_H
#define AAUTH_XPORT_H

#include <stddef.h>

struct event_base;
struct evbuffer;
struct xport;

/* What the connection hears from its transport. None is called from
 * inside an xport_* call the connection made itself. */
struct xport_cbs {
	/* New bytes were appended to xport_in(). */
	void (*readable)(void *arg);
	/* Everything queued in xport_out() has been handed to the peer. */
	void (*drained)(void *arg);
	/* The peer finished sending (orderly EOF), or failed (error set):
	 * after an error the connection must free the transport. */
	void (*eof)(void *arg, int error);
};

/* The operations one kind of transport provides (see xport_sock.c). */
struct xport_ops {
	const char *name;
	/* Move received bytes into in, at most max; 1 something read, 0
	 * nothing now, -1 error (errno), -2 orderly EOF. */
	int (*recv)(struct xport *x, struct evbuffer *in, size_t max);
	/* Hand queued bytes from out to the peer; 0 all gone, 1 some
	 * remain (wait for writability), -1 error. */
	int (*send)(struct xport *x, struct evbuffer *out);
	/* End our direction once everything queued is gone. */
	void (*shutdown)(struct xport *x);
	/* Watch (or stop watching) for readability / writability. */
	void (*want_read)(struct xport *x, int on);
	void (*want_write)(struct xport *x, int on);
	void (*free)(struct xport *x);
	/* Optional: bytes queued below out (TLS records not yet sent). */
	size_t (*pending)(const struct xport *x);
};

/* The part every transport shares; an implementation embeds it first and
 * calls xport_init, then xport_on_readable / xport_on_writable from its
 * readiness events. Connections use only the functions below. */
struct xport {
	const struct xport_ops *ops;
	struct evbuffer *in, *out;
	struct xport_cbs cbs;
	void *arg;
	struct event *ev_kick; /* flush after the current callback */
	size_t in_max;
	unsigned reading;    /* want_read is on */
	unsigned write_wait; /* want_write is on (the peer was full) */
	unsigned rd_shut;    /* EOF or error seen: read no more */
};

int xport_init(struct xport *x, const struct xport_ops *ops,
               struct event_base *base, const struct xport_cbs *cbs, void *arg);
void xport_on_readable(struct xport *x);
void xport_on_writable(struct xport *x);

/* A plain stream socket (TCP or unix), already accepted and non-blocking;
 * the transport owns and closes fd. NULL when events cannot be made. */
struct xport *xport_sock_new(struct event_base *base, int fd,
                             const struct xport_cbs *cbs, void *arg);

/* TLS over another transport (a socket, after CONNECT): the TLS record
 * bytes go through lower's buffers, lower's callbacks become the TLS
 * layer's, and lower is freed with the TLS transport. ssl (taken over)
 * is set up for the server or the client side; the handshake must end
 * within handshake_ms or the transport fails, logging why with label.
 * Bytes lower has already received are the start of the handshake. NULL
 * when it cannot be set up: ssl is freed, lower is still the caller's. */
typedef struct ssl_st SSL;
struct xport *xport_tls_new(struct event_base *base, struct xport *lower,
                            SSL *ssl, unsigned handshake_ms, const char *label,
                            const struct xport_cbs *cbs, void *arg);

struct evbuffer *xport_in(struct xport *x);
struct evbuffer *xport_out(struct xport *x);
/* Read only while fewer than max bytes wait in xport_in(). */
void xport_set_in_max(struct xport *x, size_t max);
/* Re-check whether to read (after the connection consumed input). */
void xport_read_update(struct xport *x);
/* Output was queued: write it once the current callback returns, so a
 * head and its body leave together. */
void xport_kick(struct xport *x);
/* End our direction now (everything queued must already be gone). */
void xport_shutdown(struct xport *x);
void xport_free(struct xport *x);
/* Hand the transport's events to another listener (a splice takes a
 * connection over). */
void xport_set_cbs(struct xport *x, const struct xport_cbs *cbs, void *arg);
/* The peer finished sending or failed: nothing more will be read. */
int xport_rd_shut(const struct xport *x);
/* Bytes queued for the peer, here and in any layer below. */
size_t xport_out_pending(const struct xport *x);

#endif
