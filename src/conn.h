/*
 * conn: one client connection — a transport (the bufferevent carrying the
 * bytes) and the HTTP exchange state machine on top of it (head, body,
 * route, forward, stream the response, next request).
 */
#ifndef AAUTH_CONN_H
#define AAUTH_CONN_H

struct proxy;
struct proxy_listener;
struct sockaddr;

/* Take over an accepted, non-blocking socket. With refuse set the client
 * is told 503 (too many connections) and the socket is closed. */
void conn_accept(struct proxy *px, const struct proxy_listener *ls, int fd,
                 const struct sockaddr *sa, int salen, int refuse);
/* Shutdown: close idle connections now, the others after their current
 * response. */
void conn_drain_all(struct proxy *px);
/* Close every connection at once (end of the drain period, exit). */
void conn_free_all(struct proxy *px);

#endif
