/*
 * listener: listening sockets on the loop — TCP on loopback, unix sockets
 * (stale ones replaced, modes set without a window), and sockets handed
 * over by systemd (LISTEN_FDS). Used by the proxy port and the admin port
 * alike; what a connection means is the callback's business.
 */
#ifndef AAUTH_LISTENER_H
#define AAUTH_LISTENER_H

#include <stddef.h>

#include "conn.h"

struct event_base;
struct evconnlistener;
struct event;
struct sockaddr;

typedef void (*listener_accept_fn)(void *arg, const struct conn_listener *ls,
                                   int fd, const struct sockaddr *sa,
                                   int salen);

struct listener {
	struct conn_listener info; /* connections keep a pointer to it */
	char *addr;                /* as configured: the key for reloads */
	struct evconnlistener *lev;
	struct event *ev_retry; /* out of descriptors: accept again later */
	char *unix_path;        /* ours to unlink on close */
	listener_accept_fn cb;
	void *arg;
	struct listener *next;
};

/* Bind addr ("HOST:PORT", "[IPv6]:PORT" or "unix:/path"), loopback only,
 * and append one listener per bound address to *list. -1 with err. */
int listener_open(struct event_base *base, const char *addr, int unix_mode,
                  listener_accept_fn cb, void *arg, struct listener **list,
                  char *err);

/* The sockets systemd passed (LISTEN_PID/LISTEN_FDS, names from
 * LISTEN_FDNAMES): those named "admin" go to *admin, the others to *proxy.
 * Returns how many were taken (0: not socket-activated), -1 with err. The
 * variables are removed so nothing inherits them. */
int listener_from_systemd(struct event_base *base, listener_accept_fn cb,
                          void *arg, struct listener **proxy,
                          listener_accept_fn admin_cb, void *admin_arg,
                          struct listener **admin, char *err);

/* Stop accepting and unlink a unix socket; the struct stays (connections
 * name their listener in messages) until listener_free_list. */
void listener_close(struct listener *l);
void listener_close_list(struct listener *list);
void listener_free_list(struct listener *list);
size_t listener_count(const struct listener *list);

#endif
