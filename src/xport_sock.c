/*
 * xport_sock: the transport over a plain stream socket. The read event
 * stays registered while reading is wanted; the write event is registered
 * with the kernel only while the socket buffer is full, so a request
 * normally costs no epoll_ctl at all.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "xport.h"

/* One recv per readiness event, through a stack buffer: evbuffer_read
 * asks the kernel for FIONREAD first, one more syscall per request. */
#define XPORT_SOCK_READ_MAX (16 * 1024)

struct xport_sock {
	struct xport x; /* first: the ops get a struct xport * */
	int fd;
	struct event *ev_read, *ev_write;
};

static int
xport_sock_recv(struct xport *x, struct evbuffer *in, size_t max)
{
	struct xport_sock *s = (struct xport_sock *)x;
	char tmp[XPORT_SOCK_READ_MAX];
	ssize_t n;

	if (max > sizeof(tmp))
		max = sizeof(tmp);
	n = recv(s->fd, tmp, max, 0);
	if (n > 0) {
		evbuffer_add(in, tmp, (size_t)n);
		return 1;
	}
	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	return n == 0 ? -2 : -1;
}

static int
xport_sock_send(struct xport *x, struct evbuffer *out)
{
	struct xport_sock *s = (struct xport_sock *)x;
	int n = evbuffer_write(out, s->fd);

	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		return -1;
	return evbuffer_get_length(out) > 0 ? 1 : 0;
}

static void
xport_sock_shutdown(struct xport *x)
{
	shutdown(((struct xport_sock *)x)->fd, SHUT_WR);
}

static void
xport_sock_want(struct event *ev, int on)
{
	if (on)
		event_add(ev, NULL);
	else
		event_del(ev);
}

static void
xport_sock_want_read(struct xport *x, int on)
{
	xport_sock_want(((struct xport_sock *)x)->ev_read, on);
}

static void
xport_sock_want_write(struct xport *x, int on)
{
	xport_sock_want(((struct xport_sock *)x)->ev_write, on);
}

static void
xport_sock_free(struct xport *x)
{
	struct xport_sock *s = (struct xport_sock *)x;

	if (s->ev_read)
		event_free(s->ev_read);
	if (s->ev_write)
		event_free(s->ev_write);
	close(s->fd);
	free(s);
}

static const struct xport_ops xport_sock_ops = {
    "socket",
    xport_sock_recv,
    xport_sock_send,
    xport_sock_shutdown,
    xport_sock_want_read,
    xport_sock_want_write,
    xport_sock_free,
    NULL,
};

static void
xport_sock_read_cb(evutil_socket_t fd, short what, void *arg)
{
	xport_on_readable(arg);
}

static void
xport_sock_write_cb(evutil_socket_t fd, short what, void *arg)
{
	xport_on_writable(arg);
}

struct xport *
xport_sock_new(struct event_base *base, int fd, const struct xport_cbs *cbs,
               void *arg)
{
	struct xport_sock *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		close(fd);
		return NULL;
	}
	s->fd = fd;
	s->ev_read = event_new(base, fd, EV_READ | EV_PERSIST,
	                       xport_sock_read_cb, &s->x);
	s->ev_write = event_new(base, fd, EV_WRITE | EV_PERSIST,
	                        xport_sock_write_cb, &s->x);
	if (xport_init(&s->x, &xport_sock_ops, base, cbs, arg) == -1 ||
	    s->ev_read == NULL || s->ev_write == NULL) {
		xport_free(&s->x);
		return NULL;
	}
	return &s->x;
}
