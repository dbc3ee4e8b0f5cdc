/*
 * conn: one client connection. The transport (a socket with its own
 * events and buffers today; a CONNECT tunnel or a TLS filter later) is
 * kept apart from the HTTP exchange state machine: read head → read body →
 * route → finalise and sign → forward → stream the response → next request.
 * Requests on one connection are answered strictly in order: request N+1 is not
 * parsed until response N is complete, its bytes wait in the input buffer.
 */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "http1.h"
#include "httpsig.h"
#include "log.h"
#include "proxy.h"
#include "route.h"
#include "token.h"
#include "upstream.h"
#include "util.h"

/* Pause the upstream while more than this waits for a slow client. */
#define CONN_OUT_HWM (256 * 1024)
/* Pipelined bytes held while a response is in progress, beyond a head. */
#define CONN_IN_HOLD (64 * 1024)
/* At most this much is read from a client per readiness event. */
#define CONN_READ_MAX (16 * 1024)
/* After the last response: how long to read and discard before closing,
 * so a client still sending is not answered with a reset that destroys
 * the response it has not read yet. */
#define CONN_LINGER_MS 2000
/* Connections over max_connections being told 503 at once. */
#define CONN_REFUSING_MAX 64

enum conn_state {
	CONN_HEAD,     /* waiting for or reading a request head */
	CONN_BODY,     /* reading the request body */
	CONN_UPSTREAM, /* forwarded; response pending or streaming */
	CONN_CLOSING,  /* last response queued: flush it, then close */
	CONN_LINGER,   /* write side shut: discard input until EOF */
};

/* How the response body is delimited towards the client. */
enum conn_framing {
	CONN_FRAME_NONE,    /* HEAD, 204, 304: no body */
	CONN_FRAME_LENGTH,  /* the upstream's length, in our own field */
	CONN_FRAME_CHUNKED, /* re-framed for an HTTP/1.1 client */
	CONN_FRAME_CLOSE,   /* HTTP/1.0 client, no length: close ends it */
};

/* One request/response exchange; exists from the first byte of a head to
 * the end of its response, so idle connections stay small. */
struct conn_exchange {
	struct http_request req;
	struct buf body;
	struct http_chunked chunked;
	int has_body;
	uint64_t t_start; /* first byte of the head */
	int routed;       /* action is set */
	enum route_action action;
	const struct config_resource *res;
	int check_private;
	char up_scheme[8];
	int up_port;
	const char *up_host; /* to dial, IPv6 in brackets: req.host */
	struct upstream_req *ureq;
	int paused;
	int head_sent;
	int status;
	enum conn_framing framing;
	uint64_t length_left; /* CONN_FRAME_LENGTH: body bytes still due */
	int keep_alive; /* the connection stays open after this response */
	int is_head;
	uint64_t bytes_out;
	uint64_t upstream_ms;
	const char *error; /* static: why the exchange failed, for the log */
	char token_hash[13];
};

struct conn {
	struct proxy *px;
	struct conn *prev, *next;
	const struct proxy_listener *ls;
	char peer[INET6_ADDRSTRLEN + 8];

	/* Transport: the byte stream to the client. Only this part changes
	 * when a tunnel or a TLS filter is layered in. The read event stays
	 * registered; output is written from a manually activated write
	 * event once the current callback is done (so a response head and
	 * its body leave in one writev), and the write event is registered
	 * with the kernel only while the socket buffer is full. */
	int fd;
	struct evbuffer *in, *out;
	struct event *ev_read, *ev_write;
	size_t in_max;       /* stop reading at this much queued input */
	unsigned reading;    /* ev_read is registered */
	unsigned write_wait; /* ev_write is registered (socket was full) */
	unsigned rd_shut;    /* EOF or error seen: read no more */

	/* HTTP exchange. */
	enum conn_state state;
	struct event *timer; /* header, idle, body, flush or linger timeout */
	uint64_t deadline;   /* when the current timeout expires; 0: none */
	uint64_t timer_at;   /* when the timer event fires; 0: not armed */
	int counted;         /* against max_connections */
	int eof;             /* the client has finished sending */
	struct conn_exchange *ex;
};

static void conn_free(struct conn *c);
static void conn_advance(struct conn *c);
static void conn_event_eof(struct conn *c);
static void conn_write_done(struct conn *c);

/* --- transport ----------------------------------------------------------- */

static struct evbuffer *
conn_in(struct conn *c)
{
	return c->in;
}

static struct evbuffer *
conn_out(struct conn *c)
{
	return c->out;
}

/* Everything queued has gone to the kernel: end our direction. */
static void
conn_transport_shutdown(struct conn *c)
{
	shutdown(c->fd, SHUT_WR);
}

/* Read while there is room under the input bound, not after EOF. */
static void
conn_read_update(struct conn *c)
{
	int want = !c->rd_shut && evbuffer_get_length(c->in) < c->in_max;

	if (want && !c->reading) {
		event_add(c->ev_read, NULL);
		c->reading = 1;
	} else if (!want && c->reading) {
		event_del(c->ev_read);
		c->reading = 0;
	}
}

/* Output was queued: write it once the current callback returns. */
static void
conn_kick(struct conn *c)
{
	if (!c->write_wait && evbuffer_get_length(c->out) > 0)
		event_active(c->ev_write, EV_WRITE, 1);
}

static void
conn_on_write(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	int n;

	if (evbuffer_get_length(c->out) == 0)
		return;
	n = evbuffer_write(c->out, fd);
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR) {
		conn_free(c);
		return;
	}
	if (evbuffer_get_length(c->out) > 0) {
		if (!c->write_wait) {
			event_add(c->ev_write, NULL);
			c->write_wait = 1;
		}
		return;
	}
	if (c->write_wait) {
		event_del(c->ev_write);
		c->write_wait = 0;
	}
	conn_write_done(c);
}

static void
conn_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	size_t room = c->in_max - evbuffer_get_length(c->in);
	char tmp[CONN_READ_MAX];
	ssize_t n;

	/* Through a stack buffer, not evbuffer_read: that asks the kernel
	 * for FIONREAD first, one more syscall per request. */
	if (room == 0) { /* at the bound: wait for the exchange */
		conn_read_update(c);
		return;
	}
	if (room > sizeof(tmp))
		room = sizeof(tmp);
	n = recv(fd, tmp, room, 0);
	if (n > 0) {
		evbuffer_add(c->in, tmp, (size_t)n);
		conn_advance(c);
		return;
	}
	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	c->rd_shut = 1;
	conn_read_update(c);
	if (n < 0) {
		conn_free(c);
		return;
	}
	conn_event_eof(c);
}

/* --- small helpers ------------------------------------------------------- */

static void
conn_timer_arm(struct conn *c, uint64_t now, uint64_t ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	evtimer_add(c->timer, &tv);
	c->timer_at = now + ms;
}

/* Set (ms > 0) or clear the connection's one timeout. Lazily: the timer
 * event is re-armed only when the new deadline comes before it fires;
 * when it fires early, conn_timer_cb re-arms it for the rest. Most
 * requests thus cost no timer-heap operation at all. */
static void
conn_timer(struct conn *c, unsigned ms)
{
	uint64_t now;

	if (ms == 0) {
		c->deadline = 0;
		return;
	}
	now = util_mono_ms();
	c->deadline = now + ms;
	if (c->timer_at == 0 || c->timer_at > c->deadline)
		conn_timer_arm(c, now, ms);
}

static int
conn_default_port(const char *scheme)
{
	return strcmp(scheme, "https") == 0 ? 443 : 80;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if the
 * bytes there are not one. */
static size_t
conn_utf8_len(const unsigned char *p, size_t n)
{
	size_t len, i;
	unsigned cp;

	if (p[0] < 0xc2 || p[0] > 0xf4)
		return 0;
	len = p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;
	if (n < len)
		return 0;
	cp = p[0] & (0x7f >> len);
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* A JSON string: quote, backslash and control characters escaped, bytes
 * that are not UTF-8 replaced by U+FFFD, so a hostile Host header or path
 * can never break the line. */
static void
conn_json_strn(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	size_t run;
	char esc[6];

	buf_appendc(b, '"');
	while (p < end) {
		for (run = 0; p + run < end && p[run] >= 0x20 &&
		              p[run] < 0x80 && p[run] != '"' && p[run] != '\\';
		     run++)
			;
		if (run > 0) {
			buf_append(b, p, run);
			p += run;
			continue;
		}
		if (*p >= 0x80) {
			run = conn_utf8_len(p, (size_t)(end - p));
			if (run == 0) {
				buf_append(b, "\\ufffd", 6);
				p++;
			} else {
				buf_append(b, p, run);
				p += run;
			}
			continue;
		}
		esc[0] = '\\';
		switch (*p) {
		case '"':
		case '\\':
			esc[1] = (char)*p;
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			buf_append(b, "\\u00", 4);
			esc[0] = hex[*p >> 4];
			esc[1] = hex[*p & 15];
			break;
		}
		buf_append(b, esc, 2);
		p++;
	}
	buf_appendc(b, '"');
}

static void
conn_json_str(struct buf *b, const char *key, const char *s)
{
	buf_appendc(b, ',');
	buf_appendc(b, '"');
	buf_appends(b, key);
	buf_append(b, "\":", 2);
	conn_json_strn(b, s, strlen(s));
}

static void
conn_json_int(struct buf *b, const char *key, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	buf_appendc(b, ',');
	buf_appendc(b, '"');
	buf_appends(b, key);
	buf_append(b, "\":", 2);
	buf_append(b, tmp + i, sizeof(tmp) - i);
}

/* The query's parameter names only: values may be credentials. */
static void
conn_query_names(struct buf *b, const char *q)
{
	const char *p = q, *end, *eq;
	size_t n = 0;

	buf_append(b, ",\"query_names\":[", 16);
	while (p && *p && n < 16) {
		end = strchr(p, '&');
		if (end == NULL)
			end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq == NULL)
			eq = end;
		if (eq > p) {
			if (n > 0)
				buf_appendc(b, ',');
			conn_json_strn(b, p, (size_t)(eq - p));
			n++;
		}
		p = *end ? end + 1 : end;
	}
	buf_appendc(b, ']');
}

/* One JSON line per exchange, written by hand (no JSON tree per
 * request); the escaping above keeps it one line. */
static void
conn_access_log(struct conn *c, struct conn_exchange *ex)
{
	struct http_request *r = &ex->req;
	struct buf *b = &c->px->scratch;

	if (c->px->access_log_off)
		return;
	buf_reset(b);
	buf_append(b, "{\"time\":\"", 9);
	log_timestamp(b);
	buf_appendc(b, '"');
	conn_json_str(b, "client", c->peer);
	if (r->method)
		conn_json_str(b, "method", r->method);
	if (r->host)
		conn_json_str(b, "host", r->host);
	if (r->path)
		conn_json_str(b, "path", r->path[0] ? r->path : "/");
	if (r->query && r->query[0])
		conn_query_names(b, r->query);
	if (ex->routed)
		conn_json_str(b, "action", config_action_name(ex->action));
	if (ex->res)
		conn_json_str(b, "resource", ex->res->name);
	conn_json_int(b, "status", (uint64_t)ex->status);
	if (ex->error)
		conn_json_str(b, "error", ex->error);
	conn_json_int(b, "bytes_in", r->body_len);
	conn_json_int(b, "bytes_out", ex->bytes_out);
	conn_json_int(b, "upstream_ms", ex->upstream_ms);
	conn_json_int(b, "total_ms", util_mono_ms() - ex->t_start);
	if (ex->token_hash[0]) {
		conn_json_str(b, "key", c->px->key.thumbprint);
		conn_json_str(b, "token", ex->token_hash);
	}
	buf_append(b, "}\n", 2);
	proxy_access_log(c->px, b->data, b->len);
}

/* --- exchange lifecycle --------------------------------------------------- */

static struct conn_exchange *
conn_exchange_new(void)
{
	struct conn_exchange *ex = xcalloc(1, sizeof(*ex));

	http_request_init(&ex->req);
	buf_init(&ex->body);
	http_chunked_init(&ex->chunked);
	ex->keep_alive = 1;
	ex->t_start = util_mono_ms();
	return ex;
}

static void
conn_exchange_free(struct conn_exchange *ex)
{
	if (ex == NULL)
		return;
	if (ex->ureq)
		upstream_cancel(ex->ureq);
	http_request_free(&ex->req);
	buf_free(&ex->body);
	free(ex);
}

/* An exchange cut short (client gone, shutdown): logged with 499, as nginx
 * does, unless a response head was already sent. */
static void
conn_abandon(struct conn *c)
{
	struct conn_exchange *ex = c->ex;

	if (ex == NULL)
		return;
	if (ex->req.method != NULL) {
		if (!ex->head_sent)
			ex->status = 499;
		conn_access_log(c, ex);
	}
	conn_exchange_free(ex);
	c->ex = NULL;
}

/* Enter CLOSING: the queued bytes go out, then the write side shuts. */
static void
conn_close_after_flush(struct conn *c)
{
	c->state = CONN_CLOSING;
	if (evbuffer_get_length(conn_out(c)) == 0) {
		conn_transport_shutdown(c);
		c->state = CONN_LINGER;
		/* Nothing more will come from a client that sent EOF. */
		conn_timer(c, c->eof ? 1 : CONN_LINGER_MS);
		return;
	}
	/* A client that never reads must not pin the connection. */
	conn_timer(c, c->px->cfg->idle_timeout_ms ? c->px->cfg->idle_timeout_ms
	                                          : 60000);
}

/* The current response is complete (or abandoned with close set): log
 * it, forget the exchange, and go on with the next request or close. */
static void
conn_end_exchange(struct conn *c, int close)
{
	struct conn_exchange *ex = c->ex;

	if (ex != NULL) {
		if (!ex->keep_alive)
			close = 1;
		conn_access_log(c, ex);
		conn_exchange_free(ex);
		c->ex = NULL;
	}
	if (close || c->px->draining) {
		conn_close_after_flush(c);
		return;
	}
	c->state = CONN_HEAD;
	conn_timer(c, c->px->cfg->idle_timeout_ms);
}

/* Write a response the proxy makes itself: JSON body, Content-Length, a
 * Proxy-Status header when ps_error is set. Steals obj. */
static void
conn_respond(struct conn *c, int status, const char *ps_error, json_t *obj,
             int close)
{
	struct conn_exchange *ex = c->ex;
	struct evbuffer *out = conn_out(c);
	const char *detail;
	char *body;
	size_t blen, i;

	body = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	blen = body ? strlen(body) : 0;
	if (ex && !ex->keep_alive)
		close = 1;
	if (c->px->draining)
		close = 1;
	evbuffer_add_printf(out,
	                    "HTTP/1.1 %d %s\r\n"
	                    "Content-Type: application/json\r\n"
	                    "Content-Length: %zu\r\n",
	                    status, http1_status_reason(status), blen + 1);
	if (ps_error != NULL) {
		detail = json_string_value(json_object_get(obj, "detail"));
		evbuffer_add_printf(out, "Proxy-Status: aauth-proxy; error=%s",
		                    ps_error);
		if (detail != NULL) {
			/* An sf-string: printable ASCII, quote and
			 * backslash escaped. */
			evbuffer_add(out, "; details=\"", 11);
			for (i = 0; detail[i] && i < 200; i++) {
				char ch = detail[i];

				if (ch == '"' || ch == '\\')
					evbuffer_add(out, "\\", 1);
				if (ch < 0x20 || ch > 0x7e)
					ch = '?';
				evbuffer_add(out, &ch, 1);
			}
			evbuffer_add(out, "\"", 1);
		}
		evbuffer_add(out, "\r\n", 2);
	}
	if (close)
		evbuffer_add(out, "Connection: close\r\n", 19);
	else if (ex && ex->req.version_minor == 0)
		evbuffer_add(out, "Connection: keep-alive\r\n", 24);
	evbuffer_add(out, "\r\n", 2);
	if (!(ex && ex->is_head)) {
		evbuffer_add(out, body ? body : "", blen);
		evbuffer_add(out, "\n", 1);
	}
	if (ex) {
		ex->status = status;
		if (ex->error == NULL)
			ex->error = ps_error;
		ex->bytes_out = ex->is_head ? 0 : blen + 1;
	}
	if (status >= 400)
		c->px->stats.local_errors++;
	free(body);
	json_decref(obj);
	conn_kick(c);
	conn_end_exchange(c, close);
}

static void
conn_error(struct conn *c, int status, const char *ps_error, const char *code,
           const char *detail, int close)
{
	if (c->ex != NULL && c->ex->error == NULL)
		c->ex->error = code; /* a string literal */
	conn_respond(c, status, ps_error,
	             json_pack("{s:s,s:s}", "error", code, "detail", detail),
	             close);
}

/* --- hop-by-hop fields ---------------------------------------------------- */

/* ASCII case-insensitive equality of n bytes (field names are tokens). */
static int
conn_caseeq(const char *a, const char *b, size_t n)
{
	size_t i;
	unsigned x, y;

	for (i = 0; i < n; i++) {
		x = (unsigned char)a[i];
		y = (unsigned char)b[i];
		if (x - 'A' < 26u)
			x += 32;
		if (y - 'A' < 26u)
			y += 32;
		if (x != y)
			return 0;
	}
	return 1;
}

#define CONN_IS(name, len, lit)                                                \
	((len) == sizeof(lit) - 1 && conn_caseeq((name), (lit), (len)))

/* The fixed hop-by-hop set (RFC 9110 §7.6.1), by length first. */
static int
conn_is_hop(const char *n, size_t len)
{
	switch (len) {
	case 2:
		return conn_caseeq(n, "TE", 2);
	case 7:
		return conn_caseeq(n, "Trailer", 7) ||
		       conn_caseeq(n, "Upgrade", 7);
	case 10:
		return conn_caseeq(n, "Connection", 10) ||
		       conn_caseeq(n, "Keep-Alive", 10);
	case 16:
		return conn_caseeq(n, "Proxy-Connection", 16);
	case 17:
		return conn_caseeq(n, "Transfer-Encoding", 17);
	default:
		return 0;
	}
}

/* Is name one of the options in a Connection field value? */
static int
conn_token_listed(const char *v, size_t vlen, const char *name, size_t len)
{
	const char *p = v, *end = v + vlen, *t;

	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
			p++;
		t = p;
		while (p < end && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		if ((size_t)(p - t) == len && len > 0 &&
		    conn_caseeq(t, name, len))
			return 1;
	}
	return 0;
}

/* What the request side removes before the fields go upstream. */
struct conn_strip {
	struct buf listed; /* the Connection values, comma-joined */
	int sign;          /* also the fields the signer owns */
};

static int
conn_req_drop(const char *name, void *arg)
{
	struct conn_strip *st = arg;
	size_t len = strlen(name);

	/* Hop-by-hop; Expect was answered here; Host goes first and
	 * Content-Length is recomputed, both re-added by the caller. */
	if (conn_is_hop(name, len) || CONN_IS(name, len, "Host") ||
	    CONN_IS(name, len, "Content-Length") ||
	    CONN_IS(name, len, "Expect") ||
	    CONN_IS(name, len, "Proxy-Authorization"))
		return 1;
	if (st->sign && (CONN_IS(name, len, "Authorization") ||
	                 CONN_IS(name, len, "Signature") ||
	                 CONN_IS(name, len, "Signature-Input") ||
	                 CONN_IS(name, len, "Signature-Key") ||
	                 CONN_IS(name, len, "Content-Digest") ||
	                 CONN_IS(name, len, "Agent-Auth")))
		return 1;
	return st->listed.len > 0 &&
	       conn_token_listed(st->listed.data, st->listed.len, name, len);
}

/* One pass over the request fields: the fields named by Connection, the
 * hop-by-hop set, and the fields the proxy sets itself. */
static void
conn_strip_request(struct http_fields *f, int sign)
{
	struct conn_strip st;
	size_t i;

	buf_init(&st.listed);
	st.sign = sign;
	for (i = 0; i < f->n; i++)
		if (util_strcaseeq(f->v[i].name, "Connection")) {
			buf_appends(&st.listed, f->v[i].value);
			buf_appendc(&st.listed, ',');
		}
	http_fields_del_if(f, conn_req_drop, &st);
	buf_free(&st.listed);
}

/* Put "Host: authority" first, where servers and humans expect it. */
static void
conn_set_host_first(struct http_fields *f, const char *authority)
{
	struct http_field h;

	http_fields_add(f, "Host", authority);
	h = f->v[f->n - 1];
	memmove(&f->v[1], &f->v[0], (f->n - 1) * sizeof(f->v[0]));
	f->v[0] = h;
}

/* "host:port" of the upstream, for messages. */
static const char *
conn_up_name(const struct conn_exchange *ex, char *out, size_t len)
{
	snprintf(out, len, "%s:%d", ex->up_host ? ex->up_host : "?",
	         ex->up_port);
	return out;
}

/* --- upstream callbacks --------------------------------------------------- */

static char *
conn_put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

static char *
conn_put_dec(char *p, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	return conn_put(p, tmp + i, sizeof(tmp) - i);
}

/* The options of the upstream's Connection fields, gathered once per
 * head (a handful at most in practice; beyond CONN_OPTS_MAX the fields
 * themselves are scanned again for each name). */
#define CONN_OPTS_MAX 16

struct conn_opts {
	const char *p[CONN_OPTS_MAX];
	size_t len[CONN_OPTS_MAX];
	size_t n;
	int overflow;
};

static void
conn_opts_gather(const struct upstream_head *h, struct conn_opts *o)
{
	const char *p, *end, *t;
	size_t i;

	o->n = 0;
	o->overflow = 0;
	for (i = 0; i < h->n; i++) {
		if (!CONN_IS(h->v[i].name, h->v[i].name_len, "Connection"))
			continue;
		p = h->v[i].value;
		end = p + h->v[i].value_len;
		while (p < end) {
			while (p < end &&
			       (*p == ' ' || *p == '\t' || *p == ','))
				p++;
			t = p;
			while (p < end && *p != ',' && *p != ' ' && *p != '\t')
				p++;
			if (p == t)
				continue;
			if (o->n == CONN_OPTS_MAX) {
				o->overflow = 1;
				return;
			}
			o->p[o->n] = t;
			o->len[o->n++] = (size_t)(p - t);
		}
	}
}

static int
conn_opts_has(const struct upstream_head *h, const struct conn_opts *o,
              const char *name, size_t len)
{
	size_t i;

	if (o->overflow) {
		for (i = 0; i < h->n; i++)
			if (CONN_IS(h->v[i].name, h->v[i].name_len,
			            "Connection") &&
			    conn_token_listed(h->v[i].value, h->v[i].value_len,
			                      name, len))
				return 1;
		return 0;
	}
	for (i = 0; i < o->n; i++)
		if (o->len[i] == len && conn_caseeq(o->p[i], name, len))
			return 1;
	return 0;
}

/* What each response field is for the relay. */
enum {
	CONN_F_DROP = 0, /* hop-by-hop, named by Connection, or framing */
	CONN_F_KEEP = 1, /* relayed as is */
};

static int
conn_up_head(void *arg, const struct upstream_head *h)
{
	struct conn *c = arg;
	struct conn_exchange *ex = c->ex;
	struct evbuffer *out = conn_out(c);
	struct evbuffer_iovec v;
	struct conn_opts opts;
	int status = h->status, has_conn = 0, send_len = 0;
	const char *reason = h->reason, *name;
	size_t i, total, rlen, nlen;
	unsigned char kbuf[64], *kind = kbuf;
	char *p;

	if (h->n > sizeof(kbuf))
		kind = xmalloc(h->n);
	for (i = 0; i < h->n; i++) {
		name = h->v[i].name;
		nlen = h->v[i].name_len;
		kind[i] = CONN_F_KEEP;
		/* The framing fields are never relayed as written: the
		 * client gets our one Content-Length (the number curl
		 * frames by) or our own chunking, so no second or odd
		 * spelling of a length can reach it. */
		if (CONN_IS(name, nlen, "Content-Length")) {
			kind[i] = CONN_F_DROP;
		} else if (conn_is_hop(name, nlen)) {
			kind[i] = CONN_F_DROP;
			if (CONN_IS(name, nlen, "Connection"))
				has_conn = 1;
		}
	}
	if (has_conn) {
		conn_opts_gather(h, &opts);
		for (i = 0; i < h->n; i++)
			if (kind[i] != CONN_F_DROP &&
			    conn_opts_has(h, &opts, h->v[i].name,
			                  h->v[i].name_len))
				kind[i] = CONN_F_DROP;
	}
	if (ex->is_head || status == 204 || status == 304 ||
	    (status >= 100 && status < 200)) {
		ex->framing = CONN_FRAME_NONE;
		/* HEAD and 304 may still say how long the body would be;
		 * 1xx and 204 must not (RFC 9110 §8.6). */
		send_len =
		    h->content_length >= 0 && status >= 200 && status != 204;
	} else if (h->content_length >= 0) {
		/* Set only without Transfer-Encoding (upstream.h): curl
		 * then delivers exactly this many bytes. */
		ex->framing = CONN_FRAME_LENGTH;
		ex->length_left = (uint64_t)h->content_length;
		send_len = 1;
	} else if (ex->req.version_minor >= 1) {
		ex->framing = CONN_FRAME_CHUNKED;
	} else {
		ex->framing = CONN_FRAME_CLOSE;
		ex->keep_alive = 0;
	}
	if (c->px->draining)
		ex->keep_alive = 0;

	/* Sized first, then written in place: one copy, no formatting. */
	if (reason[0] == '\0')
		reason = http1_status_reason(status);
	rlen = strlen(reason);
	total = 9 + 12 + 1 + rlen + 2 + 16 + 20 + 2 + 28 + 24 + 2;
	for (i = 0; i < h->n; i++)
		if (kind[i] != CONN_F_DROP)
			total += h->v[i].name_len + 2 + h->v[i].value_len + 2;
	if (evbuffer_reserve_space(out, (ssize_t)total, &v, 1) < 1) {
		if (kind != kbuf)
			free(kind);
		return -1;
	}
	p = v.iov_base;
	p = conn_put(p, "HTTP/1.1 ", 9);
	p = conn_put_dec(p, (unsigned)status);
	*p++ = ' ';
	p = conn_put(p, reason, rlen);
	p = conn_put(p, "\r\n", 2);
	for (i = 0; i < h->n; i++) {
		if (kind[i] == CONN_F_DROP)
			continue;
		p = conn_put(p, h->v[i].name, h->v[i].name_len);
		p = conn_put(p, ": ", 2);
		p = conn_put(p, h->v[i].value, h->v[i].value_len);
		p = conn_put(p, "\r\n", 2);
	}
	if (send_len) {
		p = conn_put(p, "Content-Length: ", 16);
		p = conn_put_dec(p, (uint64_t)h->content_length);
		p = conn_put(p, "\r\n", 2);
	}
	if (ex->framing == CONN_FRAME_CHUNKED)
		p = conn_put(p, "Transfer-Encoding: chunked\r\n", 28);
	if (!ex->keep_alive)
		p = conn_put(p, "Connection: close\r\n", 19);
	else if (ex->req.version_minor == 0)
		p = conn_put(p, "Connection: keep-alive\r\n", 24);
	p = conn_put(p, "\r\n", 2);
	v.iov_len = (size_t)(p - (char *)v.iov_base);
	evbuffer_commit_space(out, &v, 1);
	if (kind != kbuf)
		free(kind);
	ex->head_sent = 1;
	ex->status = status;
	conn_kick(c);
	return 0;
}

static int
conn_up_body(void *arg, const char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	struct conn *c = arg;
	struct conn_exchange *ex = c->ex;
	struct evbuffer *out = conn_out(c);
	char size[24];
	size_t i, x;

	if (evbuffer_get_length(out) > CONN_OUT_HWM) {
		/* The write callback resumes us once the client has taken
		 * what is queued; a client that takes nothing for
		 * idle_timeout_ms is dropped. */
		ex->paused = 1;
		conn_timer(c, c->px->cfg->idle_timeout_ms);
		return 1;
	}
	switch (ex->framing) {
	case CONN_FRAME_NONE:
		return 0;
	case CONN_FRAME_CHUNKED:
		i = sizeof(size);
		size[--i] = '\n';
		size[--i] = '\r';
		x = n;
		do {
			size[--i] = hex[x & 15];
			x >>= 4;
		} while (x != 0);
		evbuffer_add(out, size + i, sizeof(size) - i);
		evbuffer_add(out, p, n);
		evbuffer_add(out, "\r\n", 2);
		break;
	case CONN_FRAME_LENGTH:
		/* Never more than announced: a byte beyond would be taken
		 * for the start of the next response. */
		if (n > ex->length_left)
			return -1;
		ex->length_left -= n;
		evbuffer_add(out, p, n);
		break;
	default:
		evbuffer_add(out, p, n);
		break;
	}
	ex->bytes_out += n;
	conn_kick(c);
	return 0;
}

static void
conn_up_done(void *arg, const struct upstream_result *r)
{
	struct conn *c = arg;
	struct conn_exchange *ex = c->ex;
	char name[300];
	json_t *o;

	ex->ureq = NULL;
	ex->upstream_ms = r->head_ms;
	conn_timer(c, 0);
	if (r->ok) {
		if (ex->framing == CONN_FRAME_CHUNKED)
			evbuffer_add(conn_out(c), "0\r\n\r\n", 5);
		conn_kick(c);
		conn_end_exchange(c, ex->framing == CONN_FRAME_CLOSE ||
		                         (ex->framing == CONN_FRAME_LENGTH &&
		                          ex->length_left != 0));
		conn_advance(c);
		return;
	}
	c->px->stats.upstream_errors++;
	ex->error = r->error;
	conn_up_name(ex, name, sizeof(name));
	log_warn("upstream %s: %s: %s", name, r->error, r->detail);
	if (ex->head_sent) {
		/* The status is gone; only a broken-off body can tell the
		 * client (no last chunk, or fewer bytes than announced). */
		conn_end_exchange(c, 1);
		return;
	}
	o = json_pack("{s:s,s:s,s:s}", "error", r->error, "detail", r->detail,
	              "upstream", name);
	conn_respond(c, r->status, r->error, o, 0);
	conn_advance(c);
}

static const struct upstream_cbs conn_up_cbs = {
    conn_up_head,
    conn_up_body,
    conn_up_done,
};

/* --- request processing -------------------------------------------------- */

/* Decide where the request goes upstream and what its authority is. For
 * signing rules the scheme is https unless the resource allows plaintext
 * (an https request is never downgraded); the authority is normalised
 * because it is signed. */
static void
conn_target(struct conn_exchange *ex)
{
	struct http_request *r = &ex->req;
	const char *cs = r->scheme;
	const char *scheme = cs;
	int port = r->port;
	size_t plen, qlen;
	struct buf b;
	char *t;

	if (ex->action == ROUTE_SIGN) {
		scheme = (strcmp(cs, "https") == 0 || ex->res->upstream_tls)
		             ? "https"
		             : "http";
		/* http://host:80/ means "the default port"; upgraded to
		 * TLS that is 443. */
		if (port == 80 && strcmp(cs, "http") == 0 &&
		    strcmp(scheme, "https") == 0)
			port = -1;
	}
	if (port == -1)
		port = conn_default_port(scheme);
	snprintf(ex->up_scheme, sizeof(ex->up_scheme), "%s", scheme);
	ex->up_port = port;

	if (ex->action == ROUTE_SIGN) {
		/* r->host is canonical already (conn_host). */
		buf_init(&b);
		buf_appends(&b, r->host);
		if (port != conn_default_port(scheme))
			buf_appendf(&b, ":%d", port);
		free(r->authority);
		r->authority = buf_steal(&b);
		r->port = port == conn_default_port(scheme) ? -1 : port;
	}
	/* What is dialled is what is signed: the request's own host. */
	ex->up_host = r->host;
	/* From our copy: scheme may be r->scheme itself. */
	if (r->scheme == NULL || strcmp(r->scheme, ex->up_scheme) != 0)
		http_request_set_scheme(r, ex->up_scheme);
	if (r->path == NULL || r->path[0] == '\0') {
		free(r->path);
		r->path = xstrdup("/");
	}
	plen = strlen(r->path);
	qlen = r->query != NULL ? strlen(r->query) + 1 : 0;
	t = xmalloc(plen + qlen + 1);
	memcpy(t, r->path, plen);
	if (r->query != NULL) {
		t[plen] = '?';
		memcpy(t + plen + 1, r->query, qlen - 1);
	}
	t[plen + qlen] = '\0';
	free(r->target);
	r->target = t;
	r->form = HTTP_TARGET_ORIGIN;
}

static void
conn_token_forget_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *px = arg;
	size_t i;

	for (i = 0; i < px->cfg->nresources; i++)
		px->token_memo[i].token = NULL;
}

/* The resource's token and its log hash. token_get checks the token file
 * each time (a stat); the requests of one batch of event callbacks — the
 * same instant as far as the proxy can tell — share one check: the memo
 * is cleared by an event activated here, which libevent runs after the
 * callbacks already queued in this loop iteration. */
static const char *
conn_token(struct conn *c, const struct config_resource *res, char hash[13],
           char *err)
{
	struct proxy *px = c->px;
	struct proxy_token_memo *m = &px->token_memo[res - px->cfg->resources];
	const char *token;

	if (m->token != NULL) {
		memcpy(hash, m->hash, 13);
		return m->token;
	}
	token = token_get(px->tokens, res, err);
	if (token == NULL)
		return NULL;
	if (px->ev_token_forget == NULL)
		px->ev_token_forget =
		    event_new(px->base, -1, 0, conn_token_forget_cb, px);
	log_token_hash(token, hash);
	if (px->ev_token_forget != NULL) {
		m->token = token;
		memcpy(m->hash, hash, 13);
		event_active(px->ev_token_forget, EV_TIMEOUT, 1);
	}
	return token;
}

/* The one place the outgoing request is finalised. After this (and the
 * signature) the fields and body are exactly what curl sends. */
static int
conn_finalise(struct conn *c)
{
	struct conn_exchange *ex = c->ex;
	struct http_request *r = &ex->req;
	struct httpsig_sign_opts so;
	char err[ERR_MAX], len[32], name[300];
	const char *token;
	struct buf auth;

	conn_strip_request(&r->fields, ex->action == ROUTE_SIGN);
	conn_set_host_first(&r->fields, r->authority);
	if (ex->has_body) {
		snprintf(len, sizeof(len), "%zu", r->body_len);
		http_fields_add(&r->fields, "Content-Length", len);
	}
	if (ex->action != ROUTE_SIGN)
		return 0;

	token = conn_token(c, ex->res, ex->token_hash, err);
	if (token == NULL) {
		ex->error = "token_unavailable";
		conn_respond(c, 503, "proxy_internal_error",
		             json_pack("{s:s,s:s,s:s}", "error",
		                       "token_unavailable", "resource",
		                       ex->res->name, "detail", err),
		             0);
		return -1;
	}
	buf_init(&auth);
	buf_append(&auth, "Bearer ", 7);
	buf_appends(&auth, token);
	http_fields_add(&r->fields, "Authorization", auth.data);
	buf_free(&auth);
	memset(&so, 0, sizeof(so));
	so.sigkey_jwt = token;
	if (httpsig_sign(&ex->res->profile, &c->px->key, r, &so, NULL, err) ==
	    -1) {
		log_error("signing a request to %s failed: %s",
		          conn_up_name(ex, name, sizeof(name)), err);
		conn_error(c, 500, "proxy_internal_error", "signing_failed",
		           err, 0);
		return -1;
	}
	c->px->stats.signed_requests++;
	return 0;
}

/* The whole request is here: finalise, sign, send. */
static void
conn_forward(struct conn *c)
{
	struct conn_exchange *ex = c->ex;
	struct http_request *r = &ex->req;
	struct upstream_spec s;
	char err[ERR_MAX], name[300];

	conn_timer(c, 0);
	if (ex->has_body) {
		r->body_len = ex->body.len;
		r->body = (unsigned char *)buf_steal(&ex->body);
	}
	if (conn_finalise(c) == -1)
		return;
	if (ex->action == ROUTE_PASS)
		c->px->stats.passed++;
	memset(&s, 0, sizeof(s));
	s.method = r->method;
	s.scheme = ex->up_scheme;
	s.host = ex->up_host;
	s.port = ex->up_port;
	s.target = r->target;
	s.fields = &r->fields;
	s.body = r->body;
	s.body_len = r->body_len;
	s.has_body = ex->has_body;
	s.check_private = ex->check_private;
	ex->ureq = upstream_start(c->px->up, &s, &conn_up_cbs, c, err);
	if (ex->ureq == NULL) {
		conn_up_name(ex, name, sizeof(name));
		log_error("cannot start upstream request to %s: %s", name, err);
		conn_respond(c, 502, "proxy_internal_error",
		             json_pack("{s:s,s:s,s:s}", "error",
		                       "upstream_start_failed", "detail", err,
		                       "upstream", name),
		             0);
		return;
	}
	c->state = CONN_UPSTREAM;
}

/* Route, dial and sign one spelling of the host (route_canonical_host):
 * a deny rule for 127.0.0.2 must hold for 2130706434, 0x7f.0.0.2 or
 * [::ffff:127.0.0.2] too, and a name curl would percent-decode before
 * dialling is refused. When the spelling changes, the outgoing authority
 * (Host, and @authority when signed) is rebuilt from the canonical host,
 * keeping an explicit non-default port. Answers 400 and returns -1 for a
 * host that cannot be made canonical. */
static int
conn_host(struct conn *c)
{
	struct http_request *r = &c->ex->req;
	char host[ROUTE_HOST_MAX], err[ERR_MAX];
	struct buf b;

	if (route_canonical_host(r->host, host, err) == -1) {
		/* Before the body is read: close unless there is none. */
		conn_error(c, 400, NULL, "invalid_host", err,
		           r->chunked || r->content_length > 0);
		return -1;
	}
	if (strcmp(host, r->host) == 0)
		return 0; /* the usual case: nothing to copy */
	free(r->host);
	r->host = xstrdup(host);
	buf_init(&b);
	buf_appends(&b, host);
	if (r->port != -1 && r->port != conn_default_port(r->scheme))
		buf_appendf(&b, ":%d", r->port);
	free(r->authority);
	r->authority = buf_steal(&b);
	return 0;
}

static void
conn_usage_error(struct conn *c, const char *why)
{
	struct buf b;

	buf_init(&b);
	buf_appendf(&b,
	            "%s: this is a forward proxy, it takes absolute-form "
	            "requests (GET http://host/path HTTP/1.1). ",
	            why);
	if (c->ls->unix_sock)
		buf_appendf(&b, "Send them on %s.", c->ls->name);
	else
		buf_appendf(&b,
		            "Point your client at it: http_proxy=http://%s "
		            "HTTP_PROXY=http://%s (curl, wget and git read "
		            "only the lower-case one), or curl -x http://%s "
		            "http://api.example.com/",
		            c->ls->name, c->ls->name, c->ls->name);
	conn_error(c, 400, NULL, "not_a_proxy_request", b.data, 1);
	buf_free(&b);
}

/* A complete head: check the form, route, then read the body (or not). */
static void
conn_begin(struct conn *c)
{
	const struct config *cfg = c->px->cfg;
	struct conn_exchange *ex = c->ex;
	struct http_request *r = &ex->req;
	const struct config_rule *rule;
	struct buf b;
	int port;

	c->px->stats.requests++;
	ex->is_head = strcmp(r->method, "HEAD") == 0;
	if (r->conn_close || c->px->draining)
		ex->keep_alive = 0;
	ex->has_body = r->chunked || r->content_length >= 0;
	/* Anything that answers before the body is read must close, or the
	 * unread body would be taken for the next request. */
	if (strcmp(r->method, "CONNECT") == 0 ||
	    r->form == HTTP_TARGET_AUTHORITY) {
		conn_error(c, 501, NULL, "connect_not_supported",
		           "CONNECT tunnels (HTTPS_PROXY) are not implemented "
		           "in this version; send http:// URLs through "
		           "HTTP_PROXY instead",
		           1);
		return;
	}
	if (r->form == HTTP_TARGET_ORIGIN) {
		conn_usage_error(c, "origin-form request");
		return;
	}
	if (r->form != HTTP_TARGET_ABSOLUTE || r->scheme == NULL ||
	    r->host == NULL || r->host[0] == '\0') {
		conn_usage_error(c, "unsupported request-target");
		return;
	}
	if (strcmp(r->scheme, "http") != 0 && strcmp(r->scheme, "https") != 0) {
		conn_error(c, 400, NULL, "unsupported_scheme",
		           "only http:// and https:// targets can be proxied",
		           1);
		return;
	}
	if (conn_host(c) == -1)
		return;
	port = r->port != -1 ? r->port : conn_default_port(r->scheme);
	rule = route_match(cfg, r->host, port);
	ex->action = rule ? rule->action : cfg->default_action;
	ex->routed = 1;
	if (ex->action == ROUTE_SIGN)
		ex->res = rule->resource;
	ex->check_private = rule == NULL && cfg->block_private;
	if (ex->action == ROUTE_DENY) {
		c->px->stats.denied++;
		buf_init(&b);
		if (rule)
			buf_appendf(&b, "rule '%s' denies requests to %s:%d",
			            rule->host, r->host, port);
		else
			buf_appendf(&b,
			            "no rule names %s:%d and default_action "
			            "is deny",
			            r->host, port);
		if (!rule &&
		    (rule = route_match_other_port(cfg, r->host, port)) != NULL)
			buf_appendf(&b,
			            "; rule '%s' names port %d only. A rule's "
			            "port is the port in the URL the agent "
			            "uses, and http:// URLs without one use "
			            "port 80: drop \"port\" from the rule or "
			            "give it %d",
			            rule->host, rule->port, port);
		conn_respond(c, 403, "http_request_denied",
		             json_pack("{s:s,s:s,s:s}", "error", "denied",
		                       "host", r->host, "detail", b.data),
		             r->chunked || r->content_length > 0);
		buf_free(&b);
		return;
	}
	conn_target(ex);
	if (!ex->has_body) {
		conn_forward(c);
		return;
	}
	if (r->content_length >= 0 &&
	    (uint64_t)r->content_length > cfg->max_body_bytes) {
		buf_init(&b);
		buf_appendf(&b,
		            "request body of %lld bytes exceeds max_body_bytes "
		            "(%llu)",
		            (long long)r->content_length,
		            (unsigned long long)cfg->max_body_bytes);
		conn_error(c, 413, NULL, "content_too_large", b.data, 1);
		buf_free(&b);
		return;
	}
	if (r->content_length > 0)
		buf_reserve(&ex->body, (size_t)(r->content_length < 262144
		                                    ? r->content_length
		                                    : 262144));
	if (r->expect_continue && r->version_minor >= 1) {
		evbuffer_add(conn_out(c), "HTTP/1.1 100 Continue\r\n\r\n", 25);
		conn_kick(c);
	}
	c->state = CONN_BODY;
	conn_timer(c, cfg->idle_timeout_ms);
}

static void
conn_step_head(struct conn *c)
{
	const struct config *cfg = c->px->cfg;
	struct evbuffer *in = conn_in(c);
	struct http_limits lim;
	size_t len = evbuffer_get_length(in), n, consumed = 0;
	const char *code;
	unsigned char *p;
	char err[ERR_MAX];
	int rc, status = 400;

	if (len == 0)
		return;
	/* Backpressure on pipelining: answer N+1 only when the client has
	 * taken most of answer N. */
	if (evbuffer_get_length(conn_out(c)) > CONN_OUT_HWM)
		return;
	if (c->ex == NULL) {
		c->ex = conn_exchange_new();
		conn_timer(c, cfg->header_timeout_ms);
	}
	/* The parser resumes where it stopped, so handing it the same
	 * bytes again costs only the new ones; beyond max_head_bytes it
	 * answers 431 by itself. */
	n = len < cfg->max_head_bytes ? len : cfg->max_head_bytes;
	p = evbuffer_pullup(in, (ssize_t)n);
	memset(&lim, 0, sizeof(lim));
	lim.max_head_bytes = cfg->max_head_bytes;
	lim.max_fields = cfg->max_fields;
	err[0] = '\0';
	rc = http1_parse_request_head((const char *)p, n, &lim, &c->ex->req,
	                              &consumed, &status, err);
	if (rc == 0)
		return;
	if (rc < 0) {
		code = status == 431   ? "request_header_fields_too_large"
		       : status == 413 ? "content_too_large"
		       : status == 417 ? "expectation_failed"
		       : status == 501 ? "not_implemented"
		       : status == 505 ? "http_version_not_supported"
		                       : "bad_request";
		conn_error(c, status, NULL, code,
		           err[0] ? err : "malformed request", 1);
		return;
	}
	evbuffer_drain(in, consumed);
	conn_begin(c);
}

static void
conn_step_body(struct conn *c)
{
	const struct config *cfg = c->px->cfg;
	struct conn_exchange *ex = c->ex;
	struct evbuffer *in = conn_in(c);
	struct evbuffer_iovec v[4];
	size_t used, total = 0;
	char err[ERR_MAX], msg[ERR_MAX + 64];
	int i, nv, rc = 0;

	if (!ex->req.chunked) {
		size_t want = (size_t)ex->req.content_length - ex->body.len;
		size_t n = evbuffer_get_length(in);

		if (n > want)
			n = want;
		if (n > 0) {
			buf_reserve(&ex->body, n);
			evbuffer_remove(in, ex->body.data + ex->body.len, n);
			ex->body.len += n;
			ex->body.data[ex->body.len] = '\0';
			conn_timer(c, cfg->idle_timeout_ms);
		}
		if (ex->body.len == (size_t)ex->req.content_length)
			conn_forward(c);
		return;
	}
	nv = evbuffer_peek(in, -1, NULL, v, 4);
	if (nv > 4)
		nv = 4;
	for (i = 0; i < nv && rc == 0; i++) {
		used = 0;
		err[0] = '\0';
		rc = http_chunked_decode(&ex->chunked, v[i].iov_base,
		                         v[i].iov_len, &ex->body, &used, err);
		total += used;
		if (rc == 0 && used < v[i].iov_len)
			break;
	}
	evbuffer_drain(in, total);
	if (total > 0)
		conn_timer(c, cfg->idle_timeout_ms);
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "bad chunked request body: %s",
		         err[0] ? err : "framing error");
		conn_error(c, 400, NULL, "bad_request", msg, 1);
		return;
	}
	if (ex->body.len > cfg->max_body_bytes) {
		snprintf(msg, sizeof(msg),
		         "chunked request body exceeds max_body_bytes (%llu)",
		         (unsigned long long)cfg->max_body_bytes);
		conn_error(c, 413, NULL, "content_too_large", msg, 1);
		return;
	}
	if (rc == 1)
		conn_forward(c);
}

/* Run the state machine until it waits for bytes, for the upstream, or
 * for the client to read. */
static void
conn_run(struct conn *c)
{
	struct evbuffer *in = conn_in(c);
	enum conn_state before;
	size_t len;

	for (;;) {
		before = c->state;
		len = evbuffer_get_length(in);
		switch (c->state) {
		case CONN_HEAD:
			conn_step_head(c);
			break;
		case CONN_BODY:
			conn_step_body(c);
			break;
		case CONN_UPSTREAM:
			/* Pipelined bytes wait; the input bound limits
			 * them. */
			return;
		case CONN_CLOSING:
		case CONN_LINGER:
			evbuffer_drain(in, len);
			return;
		}
		if (c->state == before && evbuffer_get_length(in) == len)
			return;
	}
}

/* conn_run, then read again if that made room. Never frees c. */
static void
conn_advance(struct conn *c)
{
	conn_run(c);
	conn_read_update(c);
}

/* --- transport events ----------------------------------------------------- */

/* Everything queued has been written. */
static void
conn_write_done(struct conn *c)
{
	switch (c->state) {
	case CONN_UPSTREAM:
		if (c->ex->paused) {
			c->ex->paused = 0;
			conn_timer(c, 0);
			upstream_resume(c->ex->ureq);
		}
		break;
	case CONN_HEAD:
		conn_advance(c);
		break;
	case CONN_CLOSING:
		conn_transport_shutdown(c);
		if (c->eof) {
			conn_free(c);
			return;
		}
		c->state = CONN_LINGER;
		conn_timer(c, CONN_LINGER_MS);
		break;
	default:
		break;
	}
}

/* The client has finished sending. A response still queued is delivered
 * (half-close); an exchange in progress is abandoned — for a proxy an EOF
 * almost always means the client went away. */
static void
conn_event_eof(struct conn *c)
{
	c->eof = 1;
	if (c->state == CONN_CLOSING)
		return;
	if ((c->state == CONN_HEAD || c->state == CONN_BODY) &&
	    evbuffer_get_length(conn_out(c)) > 0) {
		conn_abandon(c);
		c->state = CONN_CLOSING;
		conn_timer(c, c->px->cfg->idle_timeout_ms);
		return;
	}
	conn_free(c);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	char msg[128], name[300];
	uint64_t now;

	c->timer_at = 0;
	if (c->deadline == 0)
		return;
	now = util_mono_ms();
	if (now < c->deadline) {
		conn_timer_arm(c, now, c->deadline - now);
		return;
	}
	c->deadline = 0;
	switch (c->state) {
	case CONN_HEAD:
		if (c->ex == NULL) { /* idle keep-alive connection */
			conn_free(c);
			return;
		}
		snprintf(msg, sizeof(msg),
		         "the request head did not arrive within "
		         "header_timeout_ms (%u)",
		         c->px->cfg->header_timeout_ms);
		conn_error(c, 408, NULL, "request_timeout", msg, 1);
		conn_read_update(c);
		return;
	case CONN_BODY:
		snprintf(msg, sizeof(msg),
		         "no request body bytes for idle_timeout_ms (%u)",
		         c->px->cfg->idle_timeout_ms);
		conn_error(c, 408, NULL, "request_timeout", msg, 1);
		conn_read_update(c);
		return;
	case CONN_UPSTREAM:
		/* Paused for a client that stopped reading. */
		log_info("client %s stopped reading; dropping the response "
		         "from %s",
		         c->peer, conn_up_name(c->ex, name, sizeof(name)));
		conn_free(c);
		return;
	case CONN_CLOSING:
	case CONN_LINGER:
		conn_free(c);
		return;
	}
}

/* --- connection lifecycle ------------------------------------------------- */

static void
conn_peer_name(struct conn *c, const struct sockaddr *sa)
{
	char a[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(c->peer, sizeof(c->peer), "%s:%u", a,
		         ntohs(s4->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(c->peer, sizeof(c->peer), "[%s]:%u", a,
		         ntohs(s6->sin6_port));
	} else {
		snprintf(c->peer, sizeof(c->peer), "unix");
	}
}

static void
conn_transport_free(struct conn *c)
{
	if (c->ev_read)
		event_free(c->ev_read);
	if (c->ev_write)
		event_free(c->ev_write);
	if (c->timer)
		event_free(c->timer);
	if (c->in)
		evbuffer_free(c->in);
	if (c->out)
		evbuffer_free(c->out);
	close(c->fd);
}

void
conn_accept(struct proxy *px, const struct proxy_listener *ls, int fd,
            const struct sockaddr *sa, int salen, int refuse)
{
	struct conn *c;
	int one = 1;

	if (refuse && px->nrefusing >= CONN_REFUSING_MAX) {
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->px = px;
	c->ls = ls;
	c->fd = fd;
	conn_peer_name(c, sa);
	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	upstream_fd_reused(px->up, fd);
	/* Bounds what a client can queue while its response is in flight. */
	c->in_max = px->cfg->max_head_bytes + CONN_IN_HOLD;
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	c->ev_read =
	    event_new(px->base, fd, EV_READ | EV_PERSIST, conn_on_read, c);
	c->ev_write =
	    event_new(px->base, fd, EV_WRITE | EV_PERSIST, conn_on_write, c);
	c->timer = evtimer_new(px->base, conn_timer_cb, c);
	if (c->in == NULL || c->out == NULL || c->ev_read == NULL ||
	    c->ev_write == NULL || c->timer == NULL) {
		log_error("cannot set up a connection from %s", c->peer);
		conn_transport_free(c);
		free(c);
		return;
	}
	conn_read_update(c);
	c->next = px->conns;
	if (px->conns)
		px->conns->prev = c;
	px->conns = c;
	if (refuse) {
		struct buf b;

		px->nrefusing++;
		px->stats.refused++;
		log_warn("refusing connection from %s: max_connections (%zu) "
		         "reached",
		         c->peer, px->cfg->max_connections);
		buf_init(&b);
		buf_appendf(&b,
		            "the proxy already has max_connections (%zu) "
		            "client connections",
		            px->cfg->max_connections);
		conn_error(c, 503, "connection_limit_reached",
		           "too_many_connections", b.data, 1);
		buf_free(&b);
		return;
	}
	c->counted = 1;
	px->nconns++;
	px->stats.accepted++;
	c->state = CONN_HEAD;
	conn_timer(c, px->cfg->idle_timeout_ms);
}

static void
conn_free(struct conn *c)
{
	struct proxy *px = c->px;

	conn_abandon(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		px->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->counted)
		px->nconns--;
	else
		px->nrefusing--;
	conn_transport_free(c);
	free(c);
	proxy_conn_gone(px);
}

void
conn_drain_all(struct proxy *px)
{
	struct conn *c, *next;

	for (c = px->conns; c != NULL; c = next) {
		next = c->next;
		if (c->state == CONN_HEAD && c->ex == NULL) {
			if (evbuffer_get_length(conn_out(c)) == 0)
				conn_free(c);
			else
				conn_close_after_flush(c);
			continue;
		}
		if (c->ex != NULL && !c->ex->head_sent)
			c->ex->keep_alive = 0;
	}
}

void
conn_free_all(struct proxy *px)
{
	while (px->conns != NULL) {
		if (px->conns->ex != NULL)
			px->conns->ex->error = "proxy_shutdown";
		conn_free(px->conns);
	}
}
