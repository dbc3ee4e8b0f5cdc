/*
 * tunnel: dial an upstream without blocking (evdns for names, one address
 * after another, the private-range policy after resolution), then move
 * bytes both ways between two transports with backpressure, half-closes
 * and an idle timeout. In upgrade mode the signed request goes first and
 * the upstream's response head is checked before anything is spliced.
 */
#include "tunnel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http1.h"
#include "log.h"
#include "netaddr.h"
#include "util.h"
#include "xport.h"

/* Queued towards one side before the other side stops being read. */
#define TUNNEL_HWM (256 * 1024)
/* Read ahead from each side. */
#define TUNNEL_IN_MAX (64 * 1024)

enum tunnel_state {
	TUNNEL_RESOLVING,
	TUNNEL_CONNECTING,
	TUNNEL_PROXY, /* upstream.proxy: waiting for its answer to CONNECT */
	TUNNEL_HEAD,  /* upgrade: waiting for the upstream's response head */
	TUNNEL_SPLICE,
	TUNNEL_DONE,
};

/* The evdns request outlives a tunnel freed while resolving: the
 * callback then only frees this. */
struct tunnel_dns {
	struct tunnel *t;
	struct evdns_getaddrinfo_request *req;
};

struct tunnel {
	struct event_base *base;
	struct tunnel_spec spec;
	char host[NETADDR_HOST_MAX];
	char label[200];
	char via_host[NETADDR_HOST_MAX];
	char *via_auth; /* wiped on free */
	struct buf request;
	char *ca_file;
	struct tunnel_cbs cbs;
	void *arg;
	enum tunnel_state state;

	struct tunnel_dns *dns;
	struct event *ev_start;
	int resolving;   /* inside evdns_getaddrinfo: answers are kept */
	int sync_result; /* ... and this is what it answered at once */
	int sync_answered;
	struct evutil_addrinfo *ai, *ai_next;
	int fd;
	struct event *ev_connect;
	char blocked[INET6_ADDRSTRLEN];
	int last_errno;

	struct xport *client, *up;
	int eof_client, eof_up;   /* that side finished sending */
	int shut_client, shut_up; /* we ended our direction towards it */
	uint64_t bytes_up, bytes_down;
	uint64_t last_active;
	struct event *ev_idle;
	struct event *ev_done;
	const char *why;
};

static void tunnel_try_next(struct tunnel *t);
static void tunnel_proxy_step(struct tunnel *t);
static void tunnel_pump(struct tunnel *t);

/* --- ending -----------------------------------------------------------------
 */

static void
tunnel_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tunnel *t = arg;

	t->cbs.done(t->arg, t->why);
}

/* End the splice; the owner hears of it from an event of its own. */
static void
tunnel_finish(struct tunnel *t, const char *why)
{
	if (t->state == TUNNEL_DONE)
		return;
	t->state = TUNNEL_DONE;
	t->why = why;
	event_active(t->ev_done, EV_TIMEOUT, 1);
}

/* Before anything reached the client: it gets an error response. */
static void tunnel_fail(struct tunnel *t, int status, const char *error,
                        const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
tunnel_fail(struct tunnel *t, int status, const char *error, const char *fmt,
            ...)
{
	char detail[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	t->state = TUNNEL_DONE;
	log_warn("tunnel for %s to %s:%d: %s", t->label, t->host, t->spec.port,
	         detail);
	t->cbs.failed(t->arg, status, error, detail); /* last: may free t */
}

/* --- splice
 * -------------------------------------------------------------------
 */

static void
tunnel_touch(struct tunnel *t)
{
	t->last_active = util_mono_ms();
}

/* Move what src has read to dst, while dst's queue is short; end dst's
 * direction once src has finished and everything has gone. */
static void
tunnel_move(struct tunnel *t, struct xport *src, struct xport *dst,
            uint64_t *count, int src_eof, int *dst_shut)
{
	struct evbuffer *in = xport_in(src);
	size_t n = evbuffer_get_length(in);

	if (n > 0 && xport_out_pending(dst) < TUNNEL_HWM) {
		evbuffer_add_buffer(xport_out(dst), in);
		*count += n;
		tunnel_touch(t);
		xport_kick(dst);
	}
	xport_read_update(src);
	if (src_eof && !*dst_shut && evbuffer_get_length(in) == 0 &&
	    xport_out_pending(dst) == 0) {
		*dst_shut = 1;
		xport_shutdown(dst);
	}
}

static void
tunnel_pump(struct tunnel *t)
{
	if (t->state != TUNNEL_SPLICE)
		return;
	tunnel_move(t, t->client, t->up, &t->bytes_up, t->eof_client,
	            &t->shut_up);
	tunnel_move(t, t->up, t->client, &t->bytes_down, t->eof_up,
	            &t->shut_client);
	if (t->shut_up && t->shut_client)
		tunnel_finish(t, "closed");
}

static void
tunnel_client_readable(void *arg)
{
	tunnel_pump(arg);
}

static void
tunnel_client_drained(void *arg)
{
	tunnel_pump(arg);
}

static void
tunnel_client_eof(void *arg, int error)
{
	struct tunnel *t = arg;

	if (error) {
		tunnel_finish(t, "client connection error");
		return;
	}
	t->eof_client = 1;
	tunnel_pump(t);
}

static const struct xport_cbs tunnel_client_cbs = {
    tunnel_client_readable,
    tunnel_client_drained,
    tunnel_client_eof,
};

static void
tunnel_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tunnel *t = arg;
	uint64_t now = util_mono_ms(), idle = t->spec.idle_timeout_ms;
	struct timeval tv;

	if (t->state == TUNNEL_DONE)
		return;
	if (now - t->last_active >= idle && t->state == TUNNEL_PROXY) {
		tunnel_fail(t, 504, "proxy_connect_timeout",
		            "no answer to CONNECT from upstream.proxy within "
		            "limits.idle_timeout_ms (%u)",
		            t->spec.idle_timeout_ms);
		return;
	}
	if (now - t->last_active >= idle && t->state == TUNNEL_HEAD) {
		tunnel_fail(t, 504, "http_response_timeout",
		            "no response head to the upgrade within "
		            "limits.idle_timeout_ms (%u)",
		            t->spec.idle_timeout_ms);
		return;
	}
	if (now - t->last_active >= idle) {
		log_info("tunnel for %s to %s:%d idle for %u ms; closing",
		         t->label, t->host, t->spec.port,
		         t->spec.idle_timeout_ms);
		tunnel_finish(t, "idle timeout");
		return;
	}
	idle -= now - t->last_active;
	tv.tv_sec = (time_t)(idle / 1000);
	tv.tv_usec = (suseconds_t)((idle % 1000) * 1000);
	evtimer_add(t->ev_idle, &tv);
}

static void
tunnel_idle_arm(struct tunnel *t, unsigned ms)
{
	struct timeval tv = {(time_t)(ms / 1000),
	                     (suseconds_t)((ms % 1000) * 1000)};

	tunnel_touch(t);
	evtimer_add(t->ev_idle, &tv);
}

/* Both sides are there: take the client's events and start moving. */
static void
tunnel_splice(struct tunnel *t, int status)
{
	t->state = TUNNEL_SPLICE;
	xport_set_cbs(t->client, &tunnel_client_cbs, t);
	xport_set_in_max(t->client, TUNNEL_IN_MAX);
	xport_set_in_max(t->up, TUNNEL_IN_MAX);
	tunnel_idle_arm(t, t->spec.idle_timeout_ms);
	xport_kick(t->client);
	tunnel_pump(t);
	t->cbs.ready(t->arg, status); /* last: may free t */
}

/* --- upgrade: the upstream's response head ----------------------------------
 */

/* Check the response head in p[0..n) (RFC 9112 §4, §5: status line,
 * token field names, no control bytes, no obs-fold) and write what the
 * client gets into out: for 101 every field (Upgrade, Connection and the
 * protocol's own belong to the switch); otherwise the fields without
 * Connection and Keep-Alive, and Connection: close, since after it the
 * bytes are passed through as they come. Returns the status or -1. */
static int
tunnel_head_check(const char *p, size_t n, struct buf *out, char *err)
{
	const char *line = p, *end = p + n, *eol, *colon, *q;
	int status = -1, first = 1;

	while (line < end) {
		eol = memchr(line, '\n', (size_t)(end - line));
		if (eol == NULL || eol == line || eol[-1] != '\r') {
			err_set(err, "a line not ended by CRLF");
			return -1;
		}
		if (eol - 1 == line)
			break; /* the empty line */
		for (q = line; q < eol - 1; q++)
			if ((unsigned char)*q < 0x20 && *q != '\t') {
				err_set(err, "a control byte in the head");
				return -1;
			}
		if (first) {
			if (eol - line < 14 ||
			    memcmp(line, "HTTP/1.", 7) != 0 ||
			    (line[7] != '0' && line[7] != '1') ||
			    line[8] != ' ' || line[9] < '1' || line[9] > '5' ||
			    line[10] < '0' || line[10] > '9' ||
			    line[11] < '0' || line[11] > '9' ||
			    line[12] != ' ') {
				err_set(err, "not an HTTP/1.x status line");
				return -1;
			}
			status = (line[9] - '0') * 100 + (line[10] - '0') * 10 +
			         (line[11] - '0');
			buf_append(out, "HTTP/1.1", 8);
			buf_append(out, line + 8, (size_t)(eol + 1 - line - 8));
			first = 0;
		} else {
			for (colon = line;
			     colon < eol - 1 && *colon != ':' &&
			     http1_is_tchar((unsigned char)*colon);
			     colon++)
				;
			if (colon == line || *colon != ':') {
				err_set(err, "a field line without a token "
				             "name right before ':'");
				return -1;
			}
			if (status != 101 &&
			    ((colon - line == 10 &&
			      util_strncaseeq(line, "Connection", 10)) ||
			     (colon - line == 10 &&
			      util_strncaseeq(line, "Keep-Alive", 10)))) {
				line = eol + 1;
				continue;
			}
			buf_append(out, line, (size_t)(eol + 1 - line));
		}
		line = eol + 1;
	}
	if (first) {
		err_set(err, "no status line");
		return -1;
	}
	if (status != 101)
		buf_appends(out, "Connection: close\r\n");
	buf_append(out, "\r\n", 2);
	return status;
}

static void
tunnel_head_step(struct tunnel *t)
{
	struct evbuffer *in = xport_in(t->up);
	struct evbuffer_ptr at;
	size_t n = evbuffer_get_length(in), hl;
	char err[ERR_MAX];
	struct buf out;
	int status;

	at = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (at.pos < 0) {
		if (n > t->spec.max_head_bytes)
			tunnel_fail(t, 502, "http_response_header_section_size",
			            "the upstream's response head exceeds "
			            "limits.max_header_bytes (%zu bytes)",
			            t->spec.max_head_bytes);
		return;
	}
	hl = (size_t)at.pos + 4;
	buf_init(&out);
	status = tunnel_head_check(
	    (const char *)evbuffer_pullup(in, (ssize_t)hl), hl, &out, err);
	if (status < 0 || (status >= 100 && status < 200 && status != 101)) {
		buf_free(&out);
		if (status < 0)
			tunnel_fail(
			    t, 502, "http_protocol_error",
			    "the upstream sent an invalid response head: "
			    "%s",
			    err);
		else
			tunnel_fail(t, 502, "http_protocol_error",
			            "an interim %d response to an upgrade",
			            status);
		return;
	}
	evbuffer_drain(in, hl);
	evbuffer_add(xport_out(t->client), out.data, out.len);
	buf_free(&out);
	if (status != 101) {
		/* No switch: the response and its body pass through and the
		 * connection ends with it. */
		t->shut_client = 0;
	}
	tunnel_splice(t, status);
}

static void
tunnel_up_readable(void *arg)
{
	struct tunnel *t = arg;

	if (t->state == TUNNEL_PROXY)
		tunnel_proxy_step(t);
	else if (t->state == TUNNEL_HEAD)
		tunnel_head_step(t);
	else
		tunnel_pump(t);
}

static void
tunnel_up_drained(void *arg)
{
	tunnel_pump(arg);
}

static void
tunnel_up_eof(void *arg, int error)
{
	struct tunnel *t = arg;

	if (t->state == TUNNEL_PROXY) {
		tunnel_fail(t, 502, "proxy_connect_failed",
		            "upstream.proxy %s:%d closed the connection before "
		            "answering CONNECT",
		            t->via_host, t->spec.via_port);
		return;
	}
	if (t->state == TUNNEL_HEAD) {
		tunnel_fail(t, 502,
		            error ? "connection_terminated"
		                  : "http_response_incomplete",
		            "the upstream closed the connection before a "
		            "response head%s",
		            error ? " (TLS or connection error, see the log)"
		                  : "");
		return;
	}
	if (error) {
		tunnel_finish(t, "upstream connection error");
		return;
	}
	t->eof_up = 1;
	tunnel_pump(t);
}

static const struct xport_cbs tunnel_up_cbs = {
    tunnel_up_readable,
    tunnel_up_drained,
    tunnel_up_eof,
};

/* --- dialling
 * -----------------------------------------------------------------
 */

/* The TLS client side for an upgrade to an https upstream: verified like
 * curl verifies (system store or upstream.ca_file, host name or IP). */
static SSL *
tunnel_tls_client(struct tunnel *t, char *err)
{
	char bare[NETADDR_HOST_MAX];
	size_t n = strlen(t->host);
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = NULL;
	int ip = 0;
	unsigned char a[16];

	if (ctx == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((t->ca_file ? SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL)
	                : SSL_CTX_set_default_verify_paths(ctx)) != 1)
		goto fail;
	SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x08http/1.1", 9);
	if ((ssl = SSL_new(ctx)) == NULL)
		goto fail;
	if (t->host[0] == '[' && n >= 2) {
		memcpy(bare, t->host + 1, n - 2);
		bare[n - 2] = '\0';
	} else {
		memcpy(bare, t->host, n + 1);
	}
	ip = inet_pton(AF_INET, bare, a) == 1 ||
	     inet_pton(AF_INET6, bare, a) == 1;
	if (ip) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), bare) !=
		    1)
			goto fail;
	} else if (SSL_set1_host(ssl, bare) != 1 ||
	           SSL_set_tlsext_host_name(ssl, bare) != 1) {
		goto fail;
	}
	SSL_set_connect_state(ssl);
	SSL_CTX_free(ctx); /* the SSL holds a reference */
	return ssl;
fail:
	err_set(err, "cannot set up TLS to the upstream: %s",
	        ERR_reason_error_string(ERR_get_error())
	            ? ERR_reason_error_string(ERR_get_error())
	            : "OpenSSL error");
	ERR_clear_error();
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return NULL;
}

/* The byte stream to host:port is there (directly, or through the
 * upstream proxy's tunnel): answer CONNECT, or send the upgrade. */
static void
tunnel_up_ready(struct tunnel *t)
{
	char err[ERR_MAX];
	SSL *ssl;

	if (t->spec.request == NULL) {
		evbuffer_add(xport_out(t->client),
		             "HTTP/1.1 200 Connection established\r\n\r\n", 39);
		tunnel_splice(t, 200);
		return;
	}
	if (t->spec.tls) {
		if ((ssl = tunnel_tls_client(t, err)) == NULL) {
			tunnel_fail(t, 502, "proxy_internal_error", "%s", err);
			return;
		}
		t->up = xport_tls_new(t->base, t->up, ssl, t->spec.handshake_ms,
		                      t->label, &tunnel_up_cbs, t);
		if (t->up == NULL) {
			tunnel_fail(t, 502, "proxy_internal_error",
			            "cannot set up TLS to the upstream");
			return;
		}
	}
	t->state = TUNNEL_HEAD;
	evbuffer_add(xport_out(t->up), t->request.data, t->request.len);
	xport_kick(t->up);
	xport_set_in_max(t->up, t->spec.max_head_bytes + 1);
	xport_read_update(t->up);
	tunnel_idle_arm(t, t->spec.idle_timeout_ms);
}

/* A CONNECT-mode spec carries no head limit: the proxy's answer is small. */
static size_t
tunnel_proxy_head_max(const struct tunnel *t)
{
	return t->spec.max_head_bytes ? t->spec.max_head_bytes : 16384;
}

static void
tunnel_connected(struct tunnel *t)
{
	struct evbuffer *out;
	int one = 1;

	setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	t->up = xport_sock_new(t->base, t->fd, &tunnel_up_cbs, t);
	t->fd = -1; /* the transport owns it, even on failure */
	if (t->up == NULL) {
		tunnel_fail(t, 502, "proxy_internal_error",
		            "cannot set up the upstream connection");
		return;
	}
	if (t->via_host[0] == '\0') {
		tunnel_up_ready(t);
		return;
	}
	out = xport_out(t->up);
	evbuffer_add_printf(out, "CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n",
	                    t->host, t->spec.port, t->host, t->spec.port);
	if (t->via_auth != NULL) {
		char *b = b64_encode(t->via_auth, strlen(t->via_auth), B64_STD);

		evbuffer_add_printf(out, "Proxy-Authorization: Basic %s\r\n",
		                    b);
		sodium_memzero(b, strlen(b));
		free(b);
	}
	evbuffer_add(out, "\r\n", 2);
	t->state = TUNNEL_PROXY;
	xport_kick(t->up);
	xport_set_in_max(t->up, tunnel_proxy_head_max(t) + 1);
	xport_read_update(t->up);
	tunnel_idle_arm(t, t->spec.idle_timeout_ms);
}

/* The upstream proxy's answer to CONNECT: 2xx and the tunnel is ours;
 * anything else (407, 403, 502…) fails the exchange as a 502 of ours —
 * never relayed, a 407 would ask the agent for credentials it lacks. */
static void
tunnel_proxy_step(struct tunnel *t)
{
	struct evbuffer *in = xport_in(t->up);
	struct evbuffer_ptr at;
	size_t n = evbuffer_get_length(in), hl;
	const char *p;

	at = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (at.pos < 0) {
		if (n > tunnel_proxy_head_max(t))
			tunnel_fail(t, 502, "http_response_header_section_size",
			            "upstream.proxy's answer to CONNECT is too "
			            "long");
		return;
	}
	hl = (size_t)at.pos + 4;
	p = (const char *)evbuffer_pullup(in, (ssize_t)hl);
	if (hl < 13 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ' ||
	    p[9] != '2') {
		tunnel_fail(t, 502, "proxy_connect_failed",
		            "upstream.proxy %s:%d refused CONNECT %s:%d: %.*s",
		            t->via_host, t->spec.via_port, t->host,
		            t->spec.port, (int)strcspn(p, "\r\n"), p);
		return;
	}
	/* Bytes after the head are the upstream's: they stay for the pump. */
	evbuffer_drain(in, hl);
	tunnel_up_ready(t);
}

static void
tunnel_connect_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tunnel *t = arg;
	socklen_t len = sizeof(int);
	int e = 0;

	if (what & EV_TIMEOUT) {
		e = ETIMEDOUT;
	} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == -1) {
		e = errno;
	}
	event_free(t->ev_connect);
	t->ev_connect = NULL;
	if (e == 0) {
		tunnel_connected(t);
		return;
	}
	t->last_errno = e;
	close(t->fd);
	t->fd = -1;
	tunnel_try_next(t);
}

static void
tunnel_try_next(struct tunnel *t)
{
	struct evutil_addrinfo *ai;
	struct timeval tv;
	const void *src;

	t->state = TUNNEL_CONNECTING;
	while ((ai = t->ai_next) != NULL) {
		t->ai_next = ai->ai_next;
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		/* After resolution, for every address: DNS answers cannot
		 * route around the policy. */
		if (t->spec.check_private && t->via_host[0] == '\0' &&
		    netaddr_is_private(ai->ai_addr)) {
			if (t->blocked[0] == '\0') {
				src = ai->ai_family == AF_INET
				          ? (const void *)&(
				                (struct sockaddr_in *)(void *)
				                    ai->ai_addr)
				                ->sin_addr
				          : (const void *)&(
				                (struct sockaddr_in6 *)(void *)
				                    ai->ai_addr)
				                ->sin6_addr;
				inet_ntop(ai->ai_family, src, t->blocked,
				          sizeof(t->blocked));
			}
			continue;
		}
		t->fd = socket(ai->ai_family,
		               SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (t->fd == -1) {
			t->last_errno = errno;
			continue;
		}
		if (connect(t->fd, ai->ai_addr, ai->ai_addrlen) == -1 &&
		    errno != EINPROGRESS) {
			t->last_errno = errno;
			close(t->fd);
			t->fd = -1;
			continue;
		}
		t->ev_connect =
		    event_new(t->base, t->fd, EV_WRITE, tunnel_connect_cb, t);
		if (t->ev_connect == NULL) {
			close(t->fd);
			t->fd = -1;
			continue;
		}
		tv.tv_sec = (time_t)(t->spec.connect_timeout_ms / 1000);
		tv.tv_usec =
		    (suseconds_t)((t->spec.connect_timeout_ms % 1000) * 1000);
		event_add(t->ev_connect, &tv);
		return;
	}
	if (t->blocked[0] != '\0' && t->last_errno == 0)
		tunnel_fail(t, 403, "destination_ip_prohibited",
		            "the host resolves to %s, a loopback, private or "
		            "link-local address, and no rule names it "
		            "(block_private_addresses)",
		            t->blocked);
	else if (t->last_errno == ETIMEDOUT)
		tunnel_fail(t, 504, "connection_timeout",
		            "no connection within upstream.connect_timeout_ms "
		            "(%u)",
		            t->spec.connect_timeout_ms);
	else
		tunnel_fail(t, 502, "connection_refused", "cannot connect: %s",
		            t->last_errno ? strerror(t->last_errno)
		                          : "no address");
}

/* What the resolver said: dial the addresses, or fail. */
static void
tunnel_resolved(struct tunnel *t, int result, struct evutil_addrinfo *res)
{
	if (result != 0 || res == NULL) {
		if (res)
			evutil_freeaddrinfo(res);
		tunnel_fail(t, 502, "dns_error", "cannot resolve %s: %s",
		            t->host, evutil_gai_strerror(result));
		return;
	}
	t->ai = t->ai_next = res;
	tunnel_try_next(t);
}

static void
tunnel_dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct tunnel_dns *d = arg;
	struct tunnel *t = d->t;

	free(d);
	if (t == NULL) { /* freed while resolving */
		if (res)
			evutil_freeaddrinfo(res);
		return;
	}
	t->dns = NULL;
	if (t->resolving) { /* answered at once: tunnel_resolve goes on */
		t->sync_answered = 1;
		t->sync_result = result;
		t->ai = res;
		return;
	}
	tunnel_resolved(t, result, res);
}

static void
tunnel_resolve(struct tunnel *t)
{
	char bare[NETADDR_HOST_MAX], port[8];
	struct evdns_getaddrinfo_request *req;
	struct evutil_addrinfo hints, *res;
	const char *host = t->via_host[0] ? t->via_host : t->host;
	size_t n = strlen(host);
	struct tunnel_dns *d;

	if (host[0] == '[' && n >= 2) {
		memcpy(bare, host + 1, n - 2);
		bare[n - 2] = '\0';
	} else {
		memcpy(bare, host, n + 1);
	}
	snprintf(port, sizeof(port), "%d",
	         t->via_host[0] ? t->spec.via_port : t->spec.port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	d = xcalloc(1, sizeof(*d));
	d->t = t;
	t->dns = d;
	t->state = TUNNEL_RESOLVING;
	/* May answer at once (an address, /etc/hosts) and return NULL. */
	t->resolving = 1;
	req = evdns_getaddrinfo(t->spec.dns, bare, port, &hints, tunnel_dns_cb,
	                        d);
	t->resolving = 0;
	if (t->dns == d) {
		d->req = req;
		return;
	}
	res = t->ai;
	t->ai = NULL;
	tunnel_resolved(t, t->sync_result, res);
}

static void
tunnel_start_cb(evutil_socket_t fd, short what, void *arg)
{
	tunnel_resolve(arg);
}

/* --- lifecycle
 * ----------------------------------------------------------------
 */

struct tunnel *
tunnel_start(struct event_base *base, const struct tunnel_spec *s,
             struct xport *client, const struct tunnel_cbs *cbs, void *arg,
             char *err)
{
	struct tunnel *t = xcalloc(1, sizeof(*t));

	t->base = base;
	t->spec = *s;
	t->client = client;
	t->cbs = *cbs;
	t->arg = arg;
	t->fd = -1;
	snprintf(t->host, sizeof(t->host), "%s", s->host);
	snprintf(t->label, sizeof(t->label), "%s", s->label ? s->label : "?");
	t->spec.host = t->host;
	t->spec.label = t->label;
	buf_init(&t->request);
	if (s->request != NULL) {
		buf_append(&t->request, s->request, s->request_len);
		t->spec.request = t->request.data;
	}
	if (s->ca_file != NULL)
		t->ca_file = xstrdup(s->ca_file);
	if (s->via_host != NULL)
		snprintf(t->via_host, sizeof(t->via_host), "%s", s->via_host);
	if (s->via_auth != NULL)
		t->via_auth = xstrdup(s->via_auth);
	t->spec.via_host = NULL; /* the copies above are what counts */
	t->spec.via_auth = NULL;
	t->ev_idle = evtimer_new(base, tunnel_idle_cb, t);
	t->ev_done = event_new(base, -1, 0, tunnel_done_cb, t);
	t->ev_start = event_new(base, -1, 0, tunnel_start_cb, t);
	if (t->ev_idle == NULL || t->ev_done == NULL || t->ev_start == NULL) {
		err_set(err, "cannot create events");
		tunnel_free(t);
		return NULL;
	}
	/* Resolve from an event of our own: a failure may then free the
	 * caller's state, which an answer inside this call could not. */
	event_active(t->ev_start, EV_TIMEOUT, 1);
	return t;
}

void
tunnel_bytes(const struct tunnel *t, uint64_t *up, uint64_t *down)
{
	*up = t->bytes_up;
	*down = t->bytes_down;
}

void
tunnel_free(struct tunnel *t)
{
	if (t == NULL)
		return;
	if (t->dns != NULL) {
		struct evdns_getaddrinfo_request *req = t->dns->req;

		t->dns->t = NULL;
		if (req != NULL)
			evdns_getaddrinfo_cancel(req);
	}
	if (t->ai)
		evutil_freeaddrinfo(t->ai);
	if (t->ev_connect)
		event_free(t->ev_connect);
	if (t->fd != -1)
		close(t->fd);
	if (t->up) {
		/* The client transport goes back to its owner. */
		xport_free(t->up);
	}
	if (t->ev_idle)
		event_free(t->ev_idle);
	if (t->ev_done)
		event_free(t->ev_done);
	if (t->ev_start)
		event_free(t->ev_start);
	buf_free(&t->request);
	free(t->ca_file);
	if (t->via_auth != NULL) {
		sodium_memzero(t->via_auth, strlen(t->via_auth));
		free(t->via_auth);
	}
	free(t);
}
