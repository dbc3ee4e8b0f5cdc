/*
 * conn: one client connection. The transport (a bufferevent today; a
 * CONNECT tunnel or a TLS filter later) is kept apart from the HTTP
 * exchange state machine: read head → read body → route → finalise and
 * sign → forward → stream the response → next request. Requests on one
 * connection are answered strictly in order: request N+1 is not parsed
 * until response N is complete, its bytes wait in the input buffer.
 */
#include "conn.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
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
	CONN_FRAME_LENGTH,  /* upstream's Content-Length, relayed */
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
	char *up_host; /* to dial, IPv6 in brackets */
	char *up_name; /* "host:port" for messages */
	char *target;  /* origin-form request-target sent upstream */
	struct upstream_req *ureq;
	int paused;
	int head_sent;
	int status;
	enum conn_framing framing;
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
	 * when a tunnel or a TLS filter is layered in. */
	struct bufferevent *bev;
	int fd;

	/* HTTP exchange. */
	enum conn_state state;
	struct event *timer; /* header, idle, body, flush or linger timeout */
	int counted;         /* against max_connections */
	int eof;             /* the client has finished sending */
	struct conn_exchange *ex;
};

static void conn_free(struct conn *c);
static void conn_advance(struct conn *c);

/* --- transport ----------------------------------------------------------- */

static struct evbuffer *
conn_in(struct conn *c)
{
	return bufferevent_get_input(c->bev);
}

static struct evbuffer *
conn_out(struct conn *c)
{
	return bufferevent_get_output(c->bev);
}

/* Everything queued has gone to the kernel: end our direction. */
static void
conn_transport_shutdown(struct conn *c)
{
	shutdown(c->fd, SHUT_WR);
}

/* --- small helpers ------------------------------------------------------- */

static void
conn_timer(struct conn *c, unsigned ms)
{
	struct timeval tv;

	if (ms == 0) {
		evtimer_del(c->timer);
		return;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
}

static int
conn_default_port(const char *scheme)
{
	return strcmp(scheme, "https") == 0 ? 443 : 80;
}

/* RFC 3339 UTC with milliseconds, like the diagnostic log. */
static void
conn_time(char *out, size_t len)
{
	struct timeval tv;
	struct tm tm;
	char tmp[32];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, len, "%.24s.%03uZ", tmp,
	         (unsigned)(tv.tv_usec / 1000) % 1000u);
}

/* --- access log ---------------------------------------------------------- */

/* The query's parameter names only: values may be credentials. */
static json_t *
conn_query_names(const char *q)
{
	json_t *a = json_array();
	const char *p = q, *end, *eq;
	size_t n = 0;

	while (p && *p && n < 16) {
		end = strchr(p, '&');
		if (end == NULL)
			end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq == NULL)
			eq = end;
		if (eq > p) {
			json_array_append_new(
			    a, json_stringn(p, (size_t)(eq - p)));
			n++;
		}
		p = *end ? end + 1 : end;
	}
	return a;
}

static void
conn_access_log(struct conn *c, struct conn_exchange *ex)
{
	struct http_request *r = &ex->req;
	char ts[40];
	json_t *o;
	char *s;

	if (c->px->access_log_off)
		return;
	conn_time(ts, sizeof(ts));
	o = json_object();
	json_object_set_new(o, "time", json_string(ts));
	json_object_set_new(o, "client", json_string(c->peer));
	if (r->method)
		json_object_set_new(o, "method", json_string(r->method));
	if (r->host)
		json_object_set_new(o, "host", json_string(r->host));
	if (r->path)
		json_object_set_new(o, "path",
		                    json_string(r->path[0] ? r->path : "/"));
	if (r->query && r->query[0])
		json_object_set_new(o, "query_names",
		                    conn_query_names(r->query));
	if (ex->routed)
		json_object_set_new(
		    o, "action", json_string(config_action_name(ex->action)));
	if (ex->res)
		json_object_set_new(o, "resource", json_string(ex->res->name));
	json_object_set_new(o, "status", json_integer(ex->status));
	if (ex->error)
		json_object_set_new(o, "error", json_string(ex->error));
	json_object_set_new(o, "bytes_in",
	                    json_integer((json_int_t)r->body_len));
	json_object_set_new(o, "bytes_out",
	                    json_integer((json_int_t)ex->bytes_out));
	json_object_set_new(o, "upstream_ms",
	                    json_integer((json_int_t)ex->upstream_ms));
	json_object_set_new(
	    o, "total_ms",
	    json_integer((json_int_t)(util_mono_ms() - ex->t_start)));
	if (ex->token_hash[0]) {
		json_object_set_new(o, "key",
		                    json_string(c->px->key.thumbprint));
		json_object_set_new(o, "token", json_string(ex->token_hash));
	}
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (s) {
		proxy_access_log(c->px, s);
		free(s);
	}
	json_decref(o);
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
	free(ex->up_host);
	free(ex->up_name);
	free(ex->target);
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

/* Remove the fields named by Connection, then the fixed hop-by-hop set
 * (RFC 9110 §7.6.1). Both directions use this. */
static void
conn_strip_hop(struct http_fields *f)
{
	static const char *const hop[] = {
	    "Connection", "Proxy-Connection",  "Keep-Alive", "TE",
	    "Trailer",    "Transfer-Encoding", "Upgrade"};
	struct buf names;
	const char *p, *end;
	size_t i;

	buf_init(&names);
	for (i = 0; i < f->n; i++) {
		if (!util_strcaseeq(f->v[i].name, "Connection"))
			continue;
		for (p = f->v[i].value; *p;) {
			while (*p == ' ' || *p == '\t' || *p == ',')
				p++;
			end = p;
			while (*end && *end != ',' && *end != ' ' &&
			       *end != '\t')
				end++;
			if (end > p) {
				buf_append(&names, p, (size_t)(end - p));
				buf_appendc(&names, '\0');
			}
			p = end;
		}
	}
	for (p = names.data; p && p < names.data + names.len;
	     p += strlen(p) + 1)
		http_fields_del(f, p);
	buf_free(&names);
	for (i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		http_fields_del(f, hop[i]);
}

/* Put "Host: authority" first, where servers and humans expect it. */
static void
conn_set_host_first(struct http_fields *f, const char *authority)
{
	struct http_field h;

	http_fields_del(f, "Host");
	http_fields_add(f, "Host", authority);
	h = f->v[f->n - 1];
	memmove(&f->v[1], &f->v[0], (f->n - 1) * sizeof(f->v[0]));
	f->v[0] = h;
}

/* --- upstream callbacks --------------------------------------------------- */

static int
conn_up_head(void *arg, int status, const char *reason, struct http_fields *f)
{
	struct conn *c = arg;
	struct conn_exchange *ex = c->ex;
	struct evbuffer *out = conn_out(c);
	int chunked_up = http_fields_count(f, "Transfer-Encoding") > 0;
	size_t i;

	conn_strip_hop(f);
	if (ex->is_head || status == 204 || status == 304 ||
	    (status >= 100 && status < 200)) {
		ex->framing = CONN_FRAME_NONE;
	} else if (!chunked_up && http_fields_get(f, "Content-Length")) {
		ex->framing = CONN_FRAME_LENGTH;
	} else {
		http_fields_del(f, "Content-Length");
		if (ex->req.version_minor >= 1) {
			ex->framing = CONN_FRAME_CHUNKED;
			http_fields_add(f, "Transfer-Encoding", "chunked");
		} else {
			ex->framing = CONN_FRAME_CLOSE;
			ex->keep_alive = 0;
		}
	}
	if (c->px->draining)
		ex->keep_alive = 0;
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status,
	                    reason[0] ? reason : http1_status_reason(status));
	for (i = 0; i < f->n; i++)
		evbuffer_add_printf(out, "%s: %s\r\n", f->v[i].name,
		                    f->v[i].value);
	if (!ex->keep_alive)
		evbuffer_add(out, "Connection: close\r\n", 19);
	else if (ex->req.version_minor == 0)
		evbuffer_add(out, "Connection: keep-alive\r\n", 24);
	evbuffer_add(out, "\r\n", 2);
	ex->head_sent = 1;
	ex->status = status;
	return 0;
}

static int
conn_up_body(void *arg, const char *p, size_t n)
{
	struct conn *c = arg;
	struct conn_exchange *ex = c->ex;
	struct evbuffer *out = conn_out(c);

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
		evbuffer_add_printf(out, "%zx\r\n", n);
		evbuffer_add(out, p, n);
		evbuffer_add(out, "\r\n", 2);
		break;
	default:
		evbuffer_add(out, p, n);
		break;
	}
	ex->bytes_out += n;
	return 0;
}

static void
conn_up_done(void *arg, const struct upstream_result *r)
{
	struct conn *c = arg;
	struct conn_exchange *ex = c->ex;
	json_t *o;

	ex->ureq = NULL;
	ex->upstream_ms = r->head_ms;
	conn_timer(c, 0);
	if (r->ok) {
		if (ex->framing == CONN_FRAME_CHUNKED)
			evbuffer_add(conn_out(c), "0\r\n\r\n", 5);
		conn_end_exchange(c, ex->framing == CONN_FRAME_CLOSE);
		conn_advance(c);
		return;
	}
	c->px->stats.upstream_errors++;
	ex->error = r->error;
	log_warn("upstream %s: %s: %s", ex->up_name, r->error, r->detail);
	if (ex->head_sent) {
		/* The status is gone; only a broken-off body can tell the
		 * client (no last chunk, or fewer bytes than announced). */
		conn_end_exchange(c, 1);
		return;
	}
	o = json_pack("{s:s,s:s,s:s}", "error", r->error, "detail", r->detail,
	              "upstream", ex->up_name);
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
	struct buf b;
	char *host;

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
	host = xstrdup(r->host);
	if (ex->action == ROUTE_SIGN) {
		size_t n = strlen(host);

		util_lower(host);
		if (n > 1 && host[n - 1] == '.' && host[0] != '[')
			host[n - 1] = '\0';
	}
	ex->up_host = host;
	buf_init(&b);
	buf_appendf(&b, "%s:%d", host, port);
	ex->up_name = buf_steal(&b);

	if (ex->action == ROUTE_SIGN) {
		buf_init(&b);
		buf_appends(&b, host);
		if (port != conn_default_port(scheme))
			buf_appendf(&b, ":%d", port);
		free(r->authority);
		r->authority = buf_steal(&b);
		free(r->host);
		r->host = xstrdup(host);
		r->port = port == conn_default_port(scheme) ? -1 : port;
	}
	/* From our copy: scheme may be r->scheme itself. */
	http_request_set_scheme(r, ex->up_scheme);
	if (r->path == NULL || r->path[0] == '\0') {
		free(r->path);
		r->path = xstrdup("/");
	}
	buf_init(&b);
	buf_appends(&b, r->path);
	if (r->query != NULL) {
		buf_appendc(&b, '?');
		buf_appends(&b, r->query);
	}
	ex->target = buf_steal(&b);
	free(r->target);
	r->target = xstrdup(ex->target);
	r->form = HTTP_TARGET_ORIGIN;
}

/* The one place the outgoing request is finalised. After this (and the
 * signature) the fields and body are exactly what curl sends. */
static int
conn_finalise(struct conn *c)
{
	static const char *const owned[] = {"Authorization",   "Signature",
	                                    "Signature-Input", "Signature-Key",
	                                    "Content-Digest",  "Agent-Auth"};
	struct conn_exchange *ex = c->ex;
	struct http_request *r = &ex->req;
	struct httpsig_sign_opts so;
	char err[ERR_MAX], len[32];
	const char *token;
	struct buf auth;
	size_t i;

	conn_strip_hop(&r->fields);
	http_fields_del(&r->fields, "Proxy-Authorization");
	/* Expect was answered here; Content-Length is recomputed. */
	http_fields_del(&r->fields, "Expect");
	http_fields_del(&r->fields, "Content-Length");
	conn_set_host_first(&r->fields, r->authority);
	if (ex->has_body) {
		snprintf(len, sizeof(len), "%zu", r->body_len);
		http_fields_add(&r->fields, "Content-Length", len);
	}
	if (ex->action != ROUTE_SIGN)
		return 0;

	for (i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
		http_fields_del(&r->fields, owned[i]);
	token = token_get(c->px->tokens, ex->res, err);
	if (token == NULL) {
		ex->error = "token_unavailable";
		conn_respond(c, 503, "proxy_internal_error",
		             json_pack("{s:s,s:s,s:s}", "error",
		                       "token_unavailable", "resource",
		                       ex->res->name, "detail", err),
		             0);
		return -1;
	}
	log_token_hash(token, ex->token_hash);
	buf_init(&auth);
	buf_appendf(&auth, "Bearer %s", token);
	http_fields_add(&r->fields, "Authorization", auth.data);
	buf_free(&auth);
	memset(&so, 0, sizeof(so));
	so.sigkey_jwt = token;
	if (httpsig_sign(&ex->res->profile, &c->px->key, r, &so, NULL, err) ==
	    -1) {
		log_error("signing a request to %s failed: %s", ex->up_name,
		          err);
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
	char err[ERR_MAX];

	conn_timer(c, 0);
	r->body_len = ex->body.len;
	r->body = (unsigned char *)buf_steal(&ex->body);
	if (conn_finalise(c) == -1)
		return;
	if (ex->action == ROUTE_PASS)
		c->px->stats.passed++;
	memset(&s, 0, sizeof(s));
	s.method = r->method;
	s.scheme = ex->up_scheme;
	s.host = ex->up_host;
	s.port = ex->up_port;
	s.target = ex->target;
	s.fields = &r->fields;
	s.body = r->body;
	s.body_len = r->body_len;
	s.has_body = ex->has_body;
	s.check_private = ex->check_private;
	ex->ureq = upstream_start(c->px->up, &s, &conn_up_cbs, c, err);
	if (ex->ureq == NULL) {
		log_error("cannot start upstream request to %s: %s",
		          ex->up_name, err);
		conn_respond(c, 502, "proxy_internal_error",
		             json_pack("{s:s,s:s,s:s}", "error",
		                       "upstream_start_failed", "detail", err,
		                       "upstream", ex->up_name),
		             0);
		return;
	}
	c->state = CONN_UPSTREAM;
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
		            "Point your client at it: "
		            "HTTP_PROXY=http://%s, or curl -x http://%s "
		            "http://api.example.com/",
		            c->ls->name, c->ls->name);
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
	if (r->expect_continue && r->version_minor >= 1)
		evbuffer_add(conn_out(c), "HTTP/1.1 100 Continue\r\n\r\n", 25);
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
 * for the client to read. Never frees c. */
static void
conn_advance(struct conn *c)
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
			/* Pipelined bytes wait; the read watermark bounds
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

/* --- transport callbacks -------------------------------------------------- */

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	conn_advance(arg);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	/* Meant for "the output has drained completely", but a deferred
	 * call can arrive after more bytes were queued: check. */
	if (evbuffer_get_length(conn_out(c)) > 0)
		return;
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

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_ERROR) {
		conn_free(c);
		return;
	}
	if (!(what & BEV_EVENT_EOF))
		return;
	/* The client has finished sending. A response still queued is
	 * delivered (half-close); an exchange in progress is abandoned —
	 * for a proxy an EOF almost always means the client went away. */
	c->eof = 1;
	if (c->state == CONN_CLOSING) {
		bufferevent_disable(c->bev, EV_READ);
		return;
	}
	if ((c->state == CONN_HEAD || c->state == CONN_BODY) &&
	    evbuffer_get_length(conn_out(c)) > 0) {
		conn_abandon(c);
		bufferevent_disable(c->bev, EV_READ);
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
	char msg[128];

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
		return;
	case CONN_BODY:
		snprintf(msg, sizeof(msg),
		         "no request body bytes for idle_timeout_ms (%u)",
		         c->px->cfg->idle_timeout_ms);
		conn_error(c, 408, NULL, "request_timeout", msg, 1);
		return;
	case CONN_UPSTREAM:
		/* Paused for a client that stopped reading. */
		log_info("client %s stopped reading; dropping the response "
		         "from %s",
		         c->peer, c->ex->up_name);
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
	c->bev = bufferevent_socket_new(
	    px->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	c->timer = evtimer_new(px->base, conn_timer_cb, c);
	if (c->bev == NULL || c->timer == NULL) {
		log_error("cannot set up a connection from %s", c->peer);
		if (c->bev)
			bufferevent_free(c->bev);
		else
			close(fd);
		if (c->timer)
			event_free(c->timer);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
	                  c);
	/* Bounds what a client can queue while its response is in flight. */
	bufferevent_setwatermark(c->bev, EV_READ, 0,
	                         px->cfg->max_head_bytes + CONN_IN_HOLD);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
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
	event_free(c->timer);
	bufferevent_free(c->bev);
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
