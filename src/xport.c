/*
 * xport: what every transport shares — the input and output buffers, the
 * input bound, "write once the callback is over", and the mapping of a
 * transport's results to the connection's three callbacks.
 */
#include "xport.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdlib.h>

static void
xport_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	xport_on_writable(arg);
}

int
xport_init(struct xport *x, const struct xport_ops *ops,
           struct event_base *base, const struct xport_cbs *cbs, void *arg)
{
	x->ops = ops;
	x->cbs = *cbs;
	x->arg = arg;
	x->in_max = (size_t)-1;
	x->in = evbuffer_new();
	x->out = evbuffer_new();
	x->ev_kick = event_new(base, -1, 0, xport_kick_cb, x);
	if (x->in == NULL || x->out == NULL || x->ev_kick == NULL)
		return -1;
	return 0;
}

struct evbuffer *
xport_in(struct xport *x)
{
	return x->in;
}

struct evbuffer *
xport_out(struct xport *x)
{
	return x->out;
}

void
xport_set_in_max(struct xport *x, size_t max)
{
	x->in_max = max;
}

void
xport_read_update(struct xport *x)
{
	int want = !x->rd_shut && evbuffer_get_length(x->in) < x->in_max;

	if (want != (int)x->reading) {
		x->ops->want_read(x, want);
		x->reading = (unsigned)want;
	}
}

void
xport_on_readable(struct xport *x)
{
	size_t len = evbuffer_get_length(x->in);
	int rc;

	if (len >= x->in_max) { /* at the bound: wait for the exchange */
		xport_read_update(x);
		return;
	}
	rc = x->ops->recv(x, x->in, x->in_max - len);
	if (rc == 1) {
		x->cbs.readable(x->arg);
		return;
	}
	if (rc == 0)
		return;
	x->rd_shut = 1;
	xport_read_update(x);
	x->cbs.eof(x->arg, rc == -1);
}

void
xport_on_writable(struct xport *x)
{
	int rc;

	if (evbuffer_get_length(x->out) == 0)
		return;
	rc = x->ops->send(x, x->out);
	if (rc == -1) {
		x->cbs.eof(x->arg, 1);
		return;
	}
	if (rc == 1) {
		if (!x->write_wait) {
			x->ops->want_write(x, 1);
			x->write_wait = 1;
		}
		return;
	}
	if (x->write_wait) {
		x->ops->want_write(x, 0);
		x->write_wait = 0;
	}
	x->cbs.drained(x->arg);
}

void
xport_kick(struct xport *x)
{
	if (!x->write_wait && evbuffer_get_length(x->out) > 0)
		event_active(x->ev_kick, EV_TIMEOUT, 1);
}

void
xport_shutdown(struct xport *x)
{
	x->ops->shutdown(x);
}

void
xport_free(struct xport *x)
{
	struct evbuffer *in, *out;
	struct event *kick;

	if (x == NULL)
		return;
	in = x->in;
	out = x->out;
	kick = x->ev_kick;
	x->ops->free(x);
	if (kick)
		event_free(kick);
	if (in)
		evbuffer_free(in);
	if (out)
		evbuffer_free(out);
}

void
xport_set_cbs(struct xport *x, const struct xport_cbs *cbs, void *arg)
{
	x->cbs = *cbs;
	x->arg = arg;
}

int
xport_rd_shut(const struct xport *x)
{
	return (int)x->rd_shut;
}

size_t
xport_out_pending(const struct xport *x)
{
	return evbuffer_get_length(x->out) +
	       (x->ops->pending ? x->ops->pending(x) : 0);
}
