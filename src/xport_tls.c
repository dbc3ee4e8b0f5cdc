/*
 * xport_tls: TLS (OpenSSL) layered over another transport, as curl stacks
 * a TLS filter on a tunnel. The record bytes move through the lower
 * transport's evbuffers by a small BIO, so the switch from plaintext to
 * TLS after CONNECT keeps whatever the client already sent, and the
 * connection above sees the same three callbacks as on a socket.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"
#include "xport.h"

/* Record bytes read ahead from below, and queued below before the
 * plaintext above waits (backpressure). */
#define XPORT_TLS_LOWER_IN_MAX  (64 * 1024)
#define XPORT_TLS_LOWER_OUT_HWM (256 * 1024)
/* One SSL_read / SSL_write: a full TLS record. */
#define XPORT_TLS_CHUNK (16 * 1024)

struct xport_tls {
	struct xport x; /* first: the ops get a struct xport * */
	struct xport *lower;
	SSL *ssl;
	struct event *ev_pump;  /* go on with input no new event will bring */
	struct event *ev_timer; /* the handshake deadline */
	unsigned handshake_ms;
	char label[200];
	int handshaken;
	int lower_eof; /* the peer's side below ended: 1 orderly, 2 error */
	int failed;
	int shut_pending; /* SHUT_WR below once the close_notify is out */
};

static BIO_METHOD *xport_tls_bio_meth;

/* --- the BIO over the lower transport's buffers ---------------------------
 */

static int
xport_tls_bio_read(BIO *b, char *p, int len)
{
	struct xport_tls *t = BIO_get_data(b);
	int n;

	BIO_clear_retry_flags(b);
	n = evbuffer_remove(t->lower->in, p, (size_t)len);
	if (n > 0)
		return n;
	if (t->lower_eof)
		return 0;
	BIO_set_retry_read(b);
	return -1;
}

static int
xport_tls_bio_write(BIO *b, const char *p, int len)
{
	struct xport_tls *t = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (evbuffer_add(t->lower->out, p, (size_t)len) == -1)
		return -1;
	return len;
}

static long
xport_tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct xport_tls *t = BIO_get_data(b);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_PENDING:
		return t ? (long)evbuffer_get_length(t->lower->in) : 0;
	case BIO_CTRL_EOF:
		return t ? t->lower_eof != 0 : 1;
	default:
		return 0;
	}
}

static int
xport_tls_bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *
xport_tls_bio_method(void)
{
	BIO_METHOD *m;

	if (xport_tls_bio_meth != NULL)
		return xport_tls_bio_meth;
	m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
	                 "aauth-xport");
	if (m == NULL)
		return NULL;
	BIO_meth_set_read(m, xport_tls_bio_read);
	BIO_meth_set_write(m, xport_tls_bio_write);
	BIO_meth_set_ctrl(m, xport_tls_bio_ctrl);
	BIO_meth_set_create(m, xport_tls_bio_create);
	xport_tls_bio_meth = m;
	return m;
}

/* --- helpers ----------------------------------------------------------------
 */

/* Why OpenSSL failed, in its words ("unsupported protocol", "wrong
 * version number"), or what else we know. */
static void
xport_tls_reason(struct xport_tls *t, int sslerr, char *out, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	const char *r;

	if (e != 0 && (r = ERR_reason_error_string(e)) != NULL)
		snprintf(out, len, "%s", r);
	else if (t->lower_eof)
		snprintf(out, len, "the peer closed the connection");
	else if (sslerr == SSL_ERROR_SYSCALL)
		snprintf(out, len, "transport error");
	else
		snprintf(out, len, "TLS error %d", sslerr);
	ERR_clear_error();
}

/* Hand queued record bytes to the lower transport's peer. 0 all gone, 1
 * some wait for writability, -1 error. */
static int
xport_tls_flush(struct xport_tls *t)
{
	struct xport *l = t->lower;
	int rc;

	if (evbuffer_get_length(l->out) == 0)
		return 0;
	if (l->write_wait)
		return 1;
	rc = l->ops->send(l, l->out);
	if (rc == 1) {
		l->ops->want_write(l, 1);
		l->write_wait = 1;
	}
	return rc;
}

/* A failure seen from an event of our own (not inside a call the
 * connection made): log it and tell the connection, which frees us. */
static void xport_tls_fail(struct xport_tls *t, int quiet, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
xport_tls_fail(struct xport_tls *t, int quiet, const char *fmt, ...)
{
	char why[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (quiet)
		log_info("TLS %s: %s; closing", t->label, why);
	else
		log_warn("TLS %s: %s; closing", t->label, why);
	t->failed = 1;
	t->x.rd_shut = 1;
	evtimer_del(t->ev_timer);
	t->x.cbs.eof(t->x.arg, 1);
}

/* Drive the handshake: 1 done, 0 waiting for bytes, -1 failed (already
 * reported: t may be gone). */
static int
xport_tls_handshake(struct xport_tls *t)
{
	char why[200];
	int rc, e;

	ERR_clear_error();
	rc = SSL_do_handshake(t->ssl);
	xport_tls_flush(t);
	if (rc == 1) {
		t->handshaken = 1;
		evtimer_del(t->ev_timer);
		log_debug("TLS %s: %s %s", t->label, SSL_get_version(t->ssl),
		          SSL_get_cipher_name(t->ssl));
		/* Output the connection queued while we were shaking
		 * hands goes out now. */
		if (evbuffer_get_length(t->x.out) > 0)
			event_active(t->x.ev_kick, EV_TIMEOUT, 1);
		return 1;
	}
	e = SSL_get_error(t->ssl, rc);
	if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
	    !t->lower_eof) {
		xport_read_update(t->lower);
		return 0;
	}
	if (t->lower_eof && ERR_peek_last_error() == 0) {
		ERR_clear_error();
		xport_tls_fail(t, 1,
		               "the peer closed the connection during the "
		               "handshake");
		return -1;
	}
	xport_tls_reason(t, e, why, sizeof(why));
	xport_tls_fail(t, 0, "handshake failed: %s", why);
	return -1;
}

/* Process what has arrived below (or was left over). May free t. */
static void
xport_tls_pump(struct xport_tls *t)
{
	if (t->failed)
		return;
	if (!t->handshaken && xport_tls_handshake(t) != 1)
		return;
	if (t->x.reading)
		xport_on_readable(&t->x); /* last: may free t */
}

static void
xport_tls_pump_cb(evutil_socket_t fd, short what, void *arg)
{
	xport_tls_pump(arg);
}

static void
xport_tls_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xport_tls *t = arg;

	if (t->handshaken || t->failed)
		return;
	xport_tls_fail(t, 0, "the handshake did not complete within %u ms",
	               t->handshake_ms);
}

/* --- the lower transport's callbacks --------------------------------------
 */

static void
xport_tls_lower_readable(void *arg)
{
	xport_tls_pump(arg);
}

static void
xport_tls_lower_drained(void *arg)
{
	struct xport_tls *t = arg;

	if (t->shut_pending && evbuffer_get_length(t->lower->out) == 0) {
		t->shut_pending = 0;
		xport_shutdown(t->lower);
	}
	if (!t->handshaken || t->failed)
		return;
	if (evbuffer_get_length(t->x.out) > 0) {
		xport_on_writable(&t->x); /* last: may free t */
		return;
	}
	if (t->x.write_wait) {
		t->x.write_wait = 0;
		t->x.cbs.drained(t->x.arg); /* last: may free t */
	}
}

static void
xport_tls_lower_eof(void *arg, int error)
{
	struct xport_tls *t = arg;

	t->lower_eof = error ? 2 : 1;
	if (error && !t->handshaken) {
		xport_tls_fail(t, 1, "connection error during the handshake");
		return;
	}
	if (error) {
		t->x.rd_shut = 1;
		t->x.cbs.eof(t->x.arg, 1);
		return;
	}
	xport_tls_pump(t);
}

static const struct xport_cbs xport_tls_lower_cbs = {
    xport_tls_lower_readable,
    xport_tls_lower_drained,
    xport_tls_lower_eof,
};

/* --- the operations -------------------------------------------------------
 */

static int
xport_tls_recv(struct xport *x, struct evbuffer *in, size_t max)
{
	struct xport_tls *t = (struct xport_tls *)x;
	struct evbuffer_iovec v;
	size_t got = 0, want;
	char why[200];
	int n, e = SSL_ERROR_WANT_READ;

	if (t->failed)
		return -1;
	if (!t->handshaken)
		return 0;
	while (got < max) {
		want =
		    max - got < XPORT_TLS_CHUNK ? max - got : XPORT_TLS_CHUNK;
		if (evbuffer_reserve_space(in, (ssize_t)want, &v, 1) < 1)
			return -1;
		ERR_clear_error();
		n = SSL_read(t->ssl, v.iov_base, (int)want);
		if (n <= 0) {
			e = SSL_get_error(t->ssl, n);
			break;
		}
		v.iov_len = (size_t)n;
		evbuffer_commit_space(in, &v, 1);
		got += (size_t)n;
	}
	/* Reading can write (a key update, a session ticket). */
	xport_tls_flush(t);
	xport_read_update(t->lower);
	if (got > 0) {
		/* What no new event will announce: records already
		 * buffered, or the end behind them. */
		if (got == max || SSL_pending(t->ssl) > 0 ||
		    evbuffer_get_length(t->lower->in) > 0 || t->lower_eof ||
		    e != SSL_ERROR_WANT_READ)
			event_active(t->ev_pump, EV_TIMEOUT, 1);
		return 1;
	}
	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return t->lower_eof ? -2 : 0;
	case SSL_ERROR_ZERO_RETURN:
		return -2;
	default:
		if (t->lower_eof && ERR_peek_last_error() == 0)
			return -2;
		xport_tls_reason(t, e, why, sizeof(why));
		log_info("TLS %s: %s; closing", t->label, why);
		t->failed = 1;
		return -1;
	}
}

static int
xport_tls_send(struct xport *x, struct evbuffer *out)
{
	struct xport_tls *t = (struct xport_tls *)x;
	unsigned char *p;
	char why[200];
	size_t n;
	int rc, e, moved;

	if (t->failed)
		return -1;
	if (!t->handshaken)
		return 1; /* sent once the handshake is done */
	for (;;) {
		moved = 0;
		while (evbuffer_get_length(out) > 0 &&
		       evbuffer_get_length(t->lower->out) <
		           XPORT_TLS_LOWER_OUT_HWM) {
			n = evbuffer_get_length(out);
			if (n > XPORT_TLS_CHUNK)
				n = XPORT_TLS_CHUNK;
			p = evbuffer_pullup(out, (ssize_t)n);
			ERR_clear_error();
			rc = SSL_write(t->ssl, p, (int)n);
			if (rc > 0) {
				evbuffer_drain(out, (size_t)rc);
				moved = 1;
				continue;
			}
			e = SSL_get_error(t->ssl, rc);
			if (e == SSL_ERROR_WANT_READ ||
			    e == SSL_ERROR_WANT_WRITE)
				break;
			xport_tls_reason(t, e, why, sizeof(why));
			log_info("TLS %s: write failed: %s", t->label, why);
			t->failed = 1;
			return -1;
		}
		rc = xport_tls_flush(t);
		if (rc == -1)
			return -1;
		/* The socket took everything: encrypt more now, since no
		 * writability event will come to ask for it. */
		if (rc == 1 || !moved || evbuffer_get_length(out) == 0)
			break;
	}
	return evbuffer_get_length(out) > 0 ||
	               evbuffer_get_length(t->lower->out) > 0
	           ? 1
	           : 0;
}

static void
xport_tls_shutdown(struct xport *x)
{
	struct xport_tls *t = (struct xport_tls *)x;

	if (t->handshaken && !t->failed) {
		ERR_clear_error();
		SSL_shutdown(t->ssl); /* our close_notify */
		ERR_clear_error();
	}
	if (xport_tls_flush(t) == 1)
		t->shut_pending = 1;
	else
		xport_shutdown(t->lower);
}

static void
xport_tls_want_read(struct xport *x, int on)
{
	struct xport_tls *t = (struct xport_tls *)x;

	/* Plaintext may already wait inside OpenSSL or below: no socket
	 * event would say so. */
	if (on)
		event_active(t->ev_pump, EV_TIMEOUT, 1);
}

static void
xport_tls_want_write(struct xport *x, int on)
{
	/* The lower transport's drained callback does the waking. */
}

static size_t
xport_tls_pending(const struct xport *x)
{
	const struct xport_tls *t = (const struct xport_tls *)x;

	return xport_out_pending(t->lower);
}

static void
xport_tls_free(struct xport *x)
{
	struct xport_tls *t = (struct xport_tls *)x;

	if (t->ssl)
		SSL_free(t->ssl);
	if (t->ev_pump)
		event_free(t->ev_pump);
	if (t->ev_timer)
		event_free(t->ev_timer);
	if (t->lower)
		xport_free(t->lower);
	free(t);
}

static const struct xport_ops xport_tls_ops = {
    "tls",
    xport_tls_recv,
    xport_tls_send,
    xport_tls_shutdown,
    xport_tls_want_read,
    xport_tls_want_write,
    xport_tls_free,
    xport_tls_pending,
};

struct xport *
xport_tls_new(struct event_base *base, struct xport *lower, SSL *ssl,
              unsigned handshake_ms, const char *label,
              const struct xport_cbs *cbs, void *arg)
{
	struct xport_tls *t = xcalloc(1, sizeof(*t));
	struct timeval tv;
	BIO_METHOD *m = xport_tls_bio_method();
	BIO *bio;

	t->lower = lower;
	t->ssl = ssl;
	t->handshake_ms = handshake_ms;
	snprintf(t->label, sizeof(t->label), "%s", label);
	t->ev_pump = event_new(base, -1, 0, xport_tls_pump_cb, t);
	t->ev_timer = evtimer_new(base, xport_tls_timer_cb, t);
	bio = m ? BIO_new(m) : NULL;
	if (xport_init(&t->x, &xport_tls_ops, base, cbs, arg) == -1 ||
	    t->ev_pump == NULL || t->ev_timer == NULL || bio == NULL) {
		if (bio)
			BIO_free(bio);
		t->lower = NULL;   /* still the caller's */
		xport_free(&t->x); /* frees ssl */
		return NULL;
	}
	BIO_set_data(bio, t);
	SSL_set_bio(ssl, bio, bio);
	xport_set_cbs(lower, &xport_tls_lower_cbs, t);
	xport_set_in_max(lower, XPORT_TLS_LOWER_IN_MAX);
	xport_read_update(lower);
	tv.tv_sec = (time_t)(handshake_ms / 1000);
	tv.tv_usec = (suseconds_t)((handshake_ms % 1000) * 1000);
	evtimer_add(t->ev_timer, &tv);
	/* The bytes that told us this is TLS are already below. */
	event_active(t->ev_pump, EV_TIMEOUT, 1);
	return &t->x;
}
