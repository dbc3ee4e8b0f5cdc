/*
 * conn: one client connection's state machine: read head → read body →
 * route → finalise and sign → forward → stream the response → next request.
 * The bytes come and go through a transport (xport) and nothing here knows
 * whether it is a socket, a tunnel or TLS.
 * Requests on one connection are answered strictly in order: request N+1 is not
 * parsed until response N is complete, its bytes wait in the input buffer.
 */
#include "conn.h"

#include <arpa/inet.h>
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

#include "aauth.h"
#include "accesslog.h"
#include "consent.h"
#include "fetch.h"
#include "gen.h"
#include "http1.h"
#include "ingress.h"
#include "log.h"
#include "metrics.h"
#include "mitm.h"
#include "netaddr.h"
#include "outreq.h"
#include "relay.h"
#include "route.h"
#include "token.h"
#include "token_src.h"
#include "tunnel.h"
#include "upstream.h"
#include "util.h"
#include "xport.h"

/* Output queued beyond this pauses the upstream transfer (backpressure). */
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
	CONN_TOKEN,    /* waiting for the resource's token */
	CONN_UPSTREAM, /* forwarded; response pending or streaming */
	CONN_CLOSING,  /* last response queued: flush it, then close */
	CONN_LINGER,   /* write side shut: discard input until EOF */
	CONN_SNIFF,    /* after CONNECT 200 (sign): TLS or plain HTTP? */
	CONN_TUNNEL,   /* the tunnel module dials or moves the bytes */
};

/* One request/response exchange; exists from the first byte of a head to
 * the end of its response, so idle connections stay small. */
struct conn_exchange {
	struct gen *gen; /* the config and key this exchange runs with */
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
	struct relay relay; /* the response's framing towards the client */
	int keep_alive;     /* the connection stays open after this response */
	int is_head;
	uint64_t bytes_out;
	uint64_t upstream_ms;
	const char *error; /* static: why the exchange failed, for the log */
	char token_hash[13];
	char *upgrade;         /* the Upgrade protocol to re-add, or NULL */
	uint64_t body_charged; /* bytes counted in proxy.body_bytes */
	unsigned retry_after;  /* seconds, sent with a proxy-made 503 */

	struct token_value *tok;     /* the token the request carries */
	struct token_waiter *waiter; /* CONN_TOKEN */
	int have_token;              /* tok is the one to send (may be NULL) */
	int retries;                 /* 401 retries done: at most one */
	int retry_pending;           /* a 401 was withheld: send again */
	int callback;                /* the consent callback, answered here */
};

struct conn {
	struct conn_ctx *ctx;
	struct conn *prev, *next;
	const struct conn_listener *ls;
	char peer[INET6_ADDRSTRLEN + 8];
	struct xport *x;

	enum conn_state state;
	struct event *timer; /* header, idle, body, flush or linger timeout */
	uint64_t deadline;   /* when the current timeout expires; 0: none */
	uint64_t timer_at;   /* when the timer event fires; 0: not armed */
	int counted;         /* against max_connections */
	int eof;             /* the client has finished sending */
	struct conn_exchange *ex;
	/* CONNECT to a sign host: every inner request names this. */
	int in_tunnel;
	struct ingress_tunnel bind; /* its host is ours (heap) */
	struct gen *sniff_gen;      /* the CA the CONNECT was answered with */
	struct tunnel *tun;         /* a splice (pass CONNECT, upgrade) */
};

static void conn_free(struct conn *c);
static void conn_advance(struct conn *c);
static void conn_event_eof(struct conn *c);
static void conn_write_done(struct conn *c);
static void conn_token(struct conn *c);
static void conn_forward(struct conn *c);

/* The configuration for what is not part of one exchange (idle time
 * between requests, input bounds): the current generation's. */
static const struct config *
conn_cfg(const struct conn *c)
{
	return c->ctx->gen->cfg;
}

static struct evbuffer *
conn_in(struct conn *c)
{
	return xport_in(c->x);
}

static struct evbuffer *
conn_out(struct conn *c)
{
	return xport_out(c->x);
}

static void
conn_read_update(struct conn *c)
{
	xport_read_update(c->x);
}

static void
conn_kick(struct conn *c)
{
	xport_kick(c->x);
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

/* One line per exchange, in the access log module's format. */
static void
conn_access_log(struct conn *c, struct conn_exchange *ex)
{
	const struct http_request *r = &ex->req;
	struct accesslog_entry e;

	memset(&e, 0, sizeof(e));
	e.client = c->peer;
	e.method = r->method;
	e.host = r->host;
	e.path = r->path;
	e.query = r->query;
	if (ex->routed)
		e.action = config_action_name(ex->action);
	if (ex->res)
		e.resource = ex->res->name;
	e.status = ex->status;
	e.error = ex->error;
	e.bytes_in = r->body_len;
	e.bytes_out = ex->bytes_out;
	e.upstream_ms = ex->upstream_ms;
	e.total_ms = util_mono_ms() - ex->t_start;
	if (ex->token_hash[0]) {
		e.key = ex->gen->key.thumbprint;
		e.token = ex->token_hash;
	}
	accesslog_write(c->ctx->alog, &e);
	metrics_request(c->ctx->metrics, e.action, e.resource, e.status,
	                e.bytes_in, e.bytes_out);
}

/* --- exchange lifecycle --------------------------------------------------- */

static struct conn_exchange *
conn_exchange_new(struct conn *c)
{
	struct conn_exchange *ex = xcalloc(1, sizeof(*ex));

	ex->gen = gen_ref(c->ctx->gen);
	http_request_init(&ex->req);
	buf_init(&ex->body);
	http_chunked_init(&ex->chunked);
	ex->keep_alive = 1;
	ex->t_start = util_mono_ms();
	return ex;
}

static void
conn_exchange_free(struct conn *c, struct conn_exchange *ex)
{
	if (ex == NULL)
		return;
	if (ex->ureq)
		upstream_cancel(ex->ureq);
	token_cancel(ex->waiter);
	token_value_unref(ex->tok);
	c->ctx->metrics->body_bytes -= ex->body_charged;
	free(ex->upgrade);
	http_request_free(&ex->req);
	buf_free(&ex->body);
	gen_unref(ex->gen);
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
	conn_exchange_free(c, ex);
	c->ex = NULL;
}

/* Enter CLOSING: the queued bytes go out, then the write side shuts. */
static void
conn_close_after_flush(struct conn *c)
{
	c->state = CONN_CLOSING;
	if (evbuffer_get_length(conn_out(c)) == 0) {
		xport_shutdown(c->x);
		c->state = CONN_LINGER;
		/* Nothing more will come from a client that sent EOF. */
		conn_timer(c, c->eof ? 1 : CONN_LINGER_MS);
		return;
	}
	/* A client that never reads must not pin the connection. */
	conn_timer(c, conn_cfg(c)->idle_timeout_ms);
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
		conn_exchange_free(c, ex);
		c->ex = NULL;
	}
	if (close || c->ctx->draining) {
		conn_close_after_flush(c);
		return;
	}
	c->state = CONN_HEAD;
	conn_timer(c, conn_cfg(c)->idle_timeout_ms);
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
	if (c->ctx->draining)
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
	if (ex && ex->retry_after)
		evbuffer_add_printf(out, "Retry-After: %u\r\n",
		                    ex->retry_after);
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
		c->ctx->metrics->local_errors++;
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

/* "host:port" of the upstream, for messages. */
static const char *
conn_up_name(const struct conn_exchange *ex, char *out, size_t len)
{
	snprintf(out, len, "%s:%d", ex->up_host ? ex->up_host : "?",
	         ex->up_port);
	return out;
}

/* --- upstream callbacks --------------------------------------------------- */

/* A 401 from an aauth resource, before anything reaches the client: the
 * token is withdrawn (one forced refresh, single flight) and, the first
 * time, the request is sent again with a fresh signature. 1: withheld. */
static int
conn_up_401(struct conn *c, const struct upstream_head *h)
{
	struct conn_exchange *ex = c->ex;
	char *challenge = NULL;
	int challenged;
	size_t i;

	for (i = 0; i < h->n && challenge == NULL; i++)
		if (h->v[i].name_len == 17 &&
		    util_strncaseeq(h->v[i].name, "AAuth-Requirement", 17))
			challenge = aauth_challenge_parse(h->v[i].value,
			                                  h->v[i].value_len);
	if (ex->retries == 0)
		token_invalidate(c->ctx->tokens, ex->gen, ex->res, ex->tok,
		                 challenge);
	challenged = challenge != NULL;
	token_src_wipe(challenge);
	if (ex->retries > 0 || (ex->tok == NULL && !challenged))
		return 0; /* the client gets it as it is */
	ex->retry_pending = 1;
	return 1;
}

static int
conn_up_head(void *arg, const struct upstream_head *h)
{
	struct conn *c = arg;
	struct conn_exchange *ex = c->ex;

	if (h->status == 401 && ex->action == ROUTE_SIGN &&
	    ex->res->aauth != NULL && conn_up_401(c, h) == 1)
		return -1; /* the transfer stops; conn_up_done retries */
	ex->relay.is_head = ex->is_head;
	ex->relay.version_minor = ex->req.version_minor;
	ex->relay.keep_alive = ex->keep_alive && !c->ctx->draining;
	if (relay_head(&ex->relay, h, conn_out(c)) == -1)
		return -1;
	ex->keep_alive = ex->relay.keep_alive;
	ex->head_sent = 1;
	ex->status = h->status;
	conn_kick(c);
	return 0;
}

static int
conn_up_body(void *arg, const char *p, size_t n)
{
	struct conn *c = arg;
	struct conn_exchange *ex = c->ex;

	if (evbuffer_get_length(conn_out(c)) > CONN_OUT_HWM) {
		/* The drained callback resumes us once the client has taken
		 * what is queued; a client that takes nothing for
		 * idle_timeout_ms is dropped. */
		ex->paused = 1;
		conn_timer(c, ex->gen->cfg->idle_timeout_ms);
		return 1;
	}
	if (relay_body(&ex->relay, p, n, conn_out(c)) == -1)
		return -1;
	ex->bytes_out = ex->relay.bytes;
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
	if (r->head_ms > 0 || r->ok)
		metrics_observe(&c->ctx->metrics->upstream,
		                (double)r->head_ms / 1000.0);
	conn_timer(c, 0);
	if (ex->retry_pending) {
		/* The withheld 401: once more with the token that replaces
		 * the refused one (waiting for it if need be). */
		ex->retry_pending = 0;
		ex->retries++;
		token_value_unref(ex->tok);
		ex->tok = NULL;
		ex->have_token = 0;
		ex->token_hash[0] = '\0';
		conn_token(c);
		conn_advance(c);
		return;
	}
	if (r->ok) {
		relay_end_trailers(&ex->relay, conn_out(c), r->trailers,
		                   r->trailers_len);
		conn_kick(c);
		conn_end_exchange(
		    c, ex->relay.framing == RELAY_FRAME_CLOSE ||
		           (ex->relay.framing == RELAY_FRAME_LENGTH &&
		            ex->relay.length_left != 0));
		conn_advance(c);
		return;
	}
	c->ctx->metrics->upstream_errors++;
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

/* --- tunnels: CONNECT and upgrades ---------------------------------------- */

static const struct xport_cbs conn_x_cbs;

static void
conn_tun_ready(void *arg, int status)
{
	struct conn *c = arg;

	c->ex->status = status;
	c->ex->head_sent = 1;
}

static void
conn_tun_failed(void *arg, int status, const char *error, const char *detail)
{
	struct conn *c = arg;
	char name[300];

	tunnel_free(c->tun);
	c->tun = NULL;
	c->ctx->metrics->upstream_errors++;
	c->ex->error = error;
	conn_respond(c, status, error,
	             json_pack("{s:s,s:s,s:s}", "error", error, "detail",
	                       detail, "upstream",
	                       conn_up_name(c->ex, name, sizeof(name))),
	             1);
}

static void
conn_tun_done(void *arg, const char *why)
{
	struct conn *c = arg;
	uint64_t up, down;

	tunnel_bytes(c->tun, &up, &down);
	c->ex->req.body_len = (size_t)up;
	c->ex->bytes_out = down;
	if (strcmp(why, "closed") != 0)
		c->ex->error = why;
	conn_free(c);
}

static const struct tunnel_cbs conn_tun_cbs = {
    conn_tun_ready,
    conn_tun_failed,
    conn_tun_done,
};

static void
conn_tunnel_start(struct conn *c, struct tunnel_spec *s)
{
	struct conn_exchange *ex = c->ex;
	const struct config *cfg = ex->gen->cfg;
	char err[ERR_MAX];

	s->dns = c->ctx->dns;
	s->host = ex->up_host;
	s->port = ex->up_port;
	s->check_private = ex->check_private;
	s->connect_timeout_ms = cfg->upstream_connect_timeout_ms;
	s->idle_timeout_ms = cfg->idle_timeout_ms;
	s->label = c->peer;
	s->via_host = cfg->upstream_proxy_host;
	s->via_port = cfg->upstream_proxy_port;
	s->via_auth = cfg->upstream_proxy_userpwd;
	c->tun = tunnel_start(c->ctx->base, s, c->x, &conn_tun_cbs, c, err);
	if (c->tun == NULL) {
		conn_error(c, 502, "proxy_internal_error", "tunnel_failed", err,
		           1);
		return;
	}
	c->state = CONN_TUNNEL;
	conn_timer(c, 0);
}

/* An Upgrade request (WebSocket...), finalised and signed like any other:
 * libcurl cannot hand over a connection after 101, so the tunnel module
 * sends it and splices both ways after the switch. */
static void
conn_upgrade(struct conn *c)
{
	struct conn_exchange *ex = c->ex;
	const struct config *cfg = ex->gen->cfg;
	struct tunnel_spec s;
	struct buf b;

	/* Hop-by-hop, so outreq removed them; the upgrade is this hop's. */
	http_fields_add(&ex->req.fields, "Connection", "Upgrade");
	http_fields_add(&ex->req.fields, "Upgrade", ex->upgrade);
	buf_init(&b);
	http1_write_request(&ex->req, &b);
	memset(&s, 0, sizeof(s));
	s.request = b.data;
	s.request_len = b.len;
	s.tls = strcmp(ex->up_scheme, "https") == 0;
	s.ca_file = cfg->upstream_ca_file;
	s.max_head_bytes = cfg->max_head_bytes;
	s.handshake_ms = cfg->upstream_connect_timeout_ms;
	conn_tunnel_start(c, &s);
	buf_free(&b);
}

/* CONNECT: a sign host is answered 200 at once and its bytes are read
 * (TLS or plain HTTP, see conn_step_sniff); a pass host is dialled first
 * and spliced. */
static void
conn_connect(struct conn *c, const struct ingress *in)
{
	struct conn_exchange *ex = c->ex;
	struct tunnel_spec s;

	ex->up_host = in->up_host;
	ex->up_port = in->up_port;
	ex->check_private = in->check_private;
	ex->keep_alive = 0;
	if (in->kind == INGRESS_SPLICE) {
		c->ctx->metrics->passed++;
		memset(&s, 0, sizeof(s));
		conn_tunnel_start(c, &s);
		return;
	}
	/* Allocated only here: idle connections stay small. */
	c->bind.host = xstrdup(in->up_host);
	c->bind.port = in->up_port;
	c->in_tunnel = 1;
	c->sniff_gen = gen_ref(ex->gen);
	evbuffer_add(conn_out(c), "HTTP/1.1 200 Connection established\r\n\r\n",
	             39);
	conn_kick(c);
	ex->status = 200;
	ex->head_sent = 1;
	conn_access_log(c, ex);
	conn_exchange_free(c, ex);
	c->ex = NULL;
	c->state = CONN_SNIFF;
	conn_timer(c, conn_cfg(c)->header_timeout_ms);
}

/* The first byte inside a tunnel to a sign host: a TLS handshake record
 * (0x16) means https, anything else plain HTTP/1.1 (Node's undici tunnels
 * http:// too). */
static void
conn_step_sniff(struct conn *c)
{
	const struct config *cfg = c->sniff_gen->cfg;
	struct evbuffer *in = conn_in(c);
	unsigned char first;
	struct xport *x;
	char err[ERR_MAX], label[300];

	if (evbuffer_get_length(in) == 0)
		return;
	evbuffer_copyout(in, &first, 1);
	if (first == 0x16) {
		snprintf(label, sizeof(label), "client %s, CONNECT %s:%d",
		         c->peer, c->bind.host, c->bind.port);
		x = mitm_xport_new(c->sniff_gen->ca, c->ctx->base, c->x,
		                   c->bind.host, c->bind.port, label,
		                   cfg->header_timeout_ms, &conn_x_cbs, c, err);
		if (x == NULL) {
			log_error("%s: %s", label, err);
			evbuffer_drain(in, evbuffer_get_length(in));
			conn_close_after_flush(c);
			return;
		}
		c->x = x;
		c->bind.tls = 1;
		xport_set_in_max(c->x, cfg->max_head_bytes + CONN_IN_HOLD);
	}
	gen_unref(c->sniff_gen);
	c->sniff_gen = NULL;
	c->state = CONN_HEAD;
	conn_timer(c, conn_cfg(c)->idle_timeout_ms);
}

/* --- request processing -------------------------------------------------- */

/* The one place the outgoing request is finalised (outreq), with the
 * token for a protected resource. After this the fields and body are
 * exactly what curl sends; called again for a retry it signs afresh (new
 * nonce and created). */
static int
conn_finalise(struct conn *c)
{
	struct conn_exchange *ex = c->ex;
	struct outreq_sign sign;
	char err[ERR_MAX], name[300];
	uint64_t t0;

	if (ex->action != ROUTE_SIGN)
		return outreq_finalise(&ex->req, ex->has_body, NULL, err);
	sign.token = ex->tok != NULL ? ex->tok->value : NULL;
	sign.profile = &ex->res->profile;
	sign.key = &ex->gen->key;
	t0 = metrics_now_us();
	if (outreq_finalise(&ex->req, ex->has_body, &sign, err) == -1) {
		log_error("signing a request to %s failed: %s",
		          conn_up_name(ex, name, sizeof(name)), err);
		conn_error(c, 500, "proxy_internal_error", "signing_failed",
		           err, 0);
		return -1;
	}
	metrics_observe(&c->ctx->metrics->signing,
	                (double)(metrics_now_us() - t0) / 1e6);
	c->ctx->metrics->signed_requests++;
	return 0;
}

/* The whole request is here: finalise, sign, send. A signed request
 * gets its token first (conn_token), which may mean waiting for it. */
static void
conn_forward(struct conn *c)
{
	struct conn_exchange *ex = c->ex;
	struct http_request *r = &ex->req;
	struct upstream_spec s;
	char err[ERR_MAX], name[300];

	conn_timer(c, 0);
	if (ex->has_body && r->body == NULL) {
		r->body_len = ex->body.len;
		r->body = (unsigned char *)buf_steal(&ex->body);
	}
	if (ex->action == ROUTE_SIGN && !ex->have_token) {
		conn_token(c);
		return;
	}
	if (conn_finalise(c) == -1)
		return;
	if (ex->action == ROUTE_PASS)
		c->ctx->metrics->passed++;
	if (ex->upgrade != NULL) {
		conn_upgrade(c);
		return;
	}
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
	s.cfg = ex->gen->cfg;
	ex->ureq = upstream_start(c->ctx->up, &s, &conn_up_cbs, c, err);
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

/* No token for the request: 503 (unavailable, with the last error) or
 * 403 (a person's consent is needed, with the URL). */
static void
conn_token_refused(struct conn *c, const struct token_fail *f)
{
	struct conn_exchange *ex = c->ex;
	json_t *o;

	o = json_pack("{s:s,s:s,s:s,s:s}", "error", f->code, "resource",
	              ex->res->name, "state", f->state, "detail", f->detail);
	if (f->url != NULL)
		json_object_set_new(o, "authorization_uri",
		                    json_string(f->url));
	if (f->last_error != NULL)
		json_object_set_new(o, "last_error",
		                    json_string(f->last_error));
	ex->retry_after = f->retry_after;
	ex->error = f->code; /* static strings of token.c */
	conn_respond(c, f->status,
	             f->status == 403 ? "http_request_denied"
	                              : "proxy_internal_error",
	             o, 0);
}

/* A page for the person's browser (the consent callback). */
static void
conn_page(struct conn *c, const struct consent_page *page)
{
	struct conn_exchange *ex = c->ex;
	int close = !ex->keep_alive || c->ctx->draining;

	consent_write(page, ex->is_head, close, conn_out(c));
	ex->status = page->status;
	ex->bytes_out = ex->is_head ? 0 : strlen(page->text);
	conn_kick(c);
	conn_end_exchange(c, close);
}

/* Send with v (a reference we now own; NULL: without a token). */
static void
conn_token_use(struct conn *c, struct token_value *v)
{
	struct conn_exchange *ex = c->ex;

	ex->tok = v;
	ex->have_token = 1;
	if (v != NULL)
		memcpy(ex->token_hash, v->hash, sizeof(ex->token_hash));
	conn_forward(c);
}

static void
conn_token_ready(void *arg, struct token_value *v, const struct token_fail *f)
{
	struct conn *c = arg;
	struct conn_exchange *ex = c->ex;
	struct consent_page page;

	ex->waiter = NULL;
	conn_timer(c, 0);
	if (ex->callback) {
		consent_end(ex->res, v, f, &page);
		conn_page(c, &page);
	} else if (f != NULL)
		conn_token_refused(c, f);
	else
		conn_token_use(c, v);
	conn_advance(c);
}

/* The token for a signed request: at hand, or wait for it (bounded by
 * upstream.connect_timeout_ms), or the reason there is none. */
static void
conn_token(struct conn *c)
{
	struct conn_exchange *ex = c->ex;
	struct token_value *v;
	struct token_fail f;
	int rc;

	rc = token_acquire(c->ctx->tokens, ex->gen, ex->res, &v, &f,
	                   conn_token_ready, c, &ex->waiter);
	if (rc == 1) {
		c->state = CONN_TOKEN;
		conn_timer(c, ex->gen->cfg->upstream_connect_timeout_ms);
		return;
	}
	if (rc == -1) {
		conn_token_refused(c, &f);
		return;
	}
	conn_token_use(c, v);
}

/* The person's browser is back from the issuer with a code: exchange it,
 * and tell the person how that went. */
static void
conn_callback(struct conn *c)
{
	struct conn_exchange *ex = c->ex;
	struct consent_page page;

	ex->callback = 1;
	if (consent_begin(c->ctx->tokens, ex->gen, ex->res, ex->req.query,
	                  conn_token_ready, c, &ex->waiter, &page) == 0) {
		conn_page(c, &page);
		return;
	}
	c->state = CONN_TOKEN;
	conn_timer(c, fetch_timeout_ms(ex->gen) + 1000);
}

/* Count n more request-body bytes against limits.max_buffered_bytes, the
 * budget for every body held at once (max_connections × max_body_bytes
 * would be 16 GiB with the defaults). Past it, answer 503 with
 * Retry-After and close (the rest of the body is not read) and return
 * -1: the client may try again once other bodies have gone upstream. */
static int
conn_body_charge(struct conn *c, uint64_t n)
{
	struct metrics *m = c->ctx->metrics;
	struct conn_exchange *ex = c->ex;
	uint64_t max = ex->gen->cfg->max_buffered_bytes;
	char msg[ERR_MAX];

	if (m->body_bytes + n <= max) {
		m->body_bytes += n;
		ex->body_charged += n;
		return 0;
	}
	log_warn("refusing a request body: %llu bytes already buffered, "
	         "limits.max_buffered_bytes is %llu",
	         (unsigned long long)m->body_bytes, (unsigned long long)max);
	snprintf(msg, sizeof(msg),
	         "the proxy is holding as many request bodies as "
	         "limits.max_buffered_bytes (%llu bytes) allows; retry shortly",
	         (unsigned long long)max);
	ex->retry_after = 1;
	conn_error(c, 503, "proxy_internal_error", "too_many_buffered_bytes",
	           msg, 1);
	return -1;
}

/* A complete head: check the form, route, then read the body (or not). */
static void
conn_begin(struct conn *c)
{
	struct conn_exchange *ex = c->ex;
	const struct config *cfg = ex->gen->cfg;
	struct http_request *r = &ex->req;
	struct ingress_listener lsi;
	struct ingress in;
	struct buf b;

	c->ctx->metrics->requests++;
	ex->is_head = strcmp(r->method, "HEAD") == 0;
	if (r->conn_close || c->ctx->draining)
		ex->keep_alive = 0;
	ex->has_body = r->chunked || r->content_length >= 0;
	lsi.name = c->ls->name;
	lsi.unix_sock = c->ls->unix_sock;
	lsi.tun = c->in_tunnel ? &c->bind : NULL;
	lsi.have_ca = ex->gen->ca != NULL;
	ingress_classify(cfg, &lsi, r, &in);
	ex->routed = in.routed;
	ex->action = in.action;
	if (in.kind == INGRESS_REFUSE && in.status == 421)
		log_warn("client %s: %s", c->peer, in.detail);
	if (in.kind == INGRESS_INTERCEPT || in.kind == INGRESS_SPLICE) {
		conn_connect(c, &in);
		return;
	}
	if (in.upgrade && (r->chunked || r->content_length > 0)) {
		conn_error(c, 400, NULL, "bad_request",
		           "an Upgrade request with a body is not taken", 1);
		return;
	}
	if (in.upgrade)
		ex->upgrade = xstrdup(http_fields_get(&r->fields, "Upgrade"));
	if (in.kind == INGRESS_REFUSE) {
		if (in.status == 403)
			c->ctx->metrics->denied++;
		/* Answered before the body is read: close unless there is
		 * none, or the unread body would be taken for the next
		 * request. */
		if (in.code != NULL && ex->error == NULL)
			ex->error = in.code;
		conn_respond(c, in.status, in.ps_error,
		             in.host ? json_pack("{s:s,s:s,s:s}", "error",
		                                 in.code, "host", in.host,
		                                 "detail", in.detail)
		                     : json_pack("{s:s,s:s}", "error", in.code,
		                                 "detail", in.detail),
		             in.close || r->chunked || r->content_length > 0);
		return;
	}
	ex->res = in.res;
	if (in.kind == INGRESS_CALLBACK) {
		if (r->chunked || r->content_length > 0)
			ex->keep_alive = 0; /* its body is never read */
		conn_callback(c);
		return;
	}
	ex->check_private = in.check_private;
	memcpy(ex->up_scheme, in.up_scheme, sizeof(ex->up_scheme));
	ex->up_port = in.up_port;
	ex->up_host = in.up_host;
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
	/* The whole length at once: a client holding a body one byte short
	 * holds all of it. */
	if (r->content_length > 0 &&
	    conn_body_charge(c, (uint64_t)r->content_length) == -1)
		return;
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
	const struct config *cfg;
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
		c->ex = conn_exchange_new(c);
		conn_timer(c, c->ex->gen->cfg->header_timeout_ms);
	}
	cfg = c->ex->gen->cfg;
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
	struct conn_exchange *ex = c->ex;
	const struct config *cfg = ex->gen->cfg;
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
	if (ex->body.len > ex->body_charged &&
	    conn_body_charge(c, ex->body.len - ex->body_charged) == -1)
		return;
	if (rc == 1)
		conn_forward(c);
}

/* Run the state machine until it waits for bytes, for the upstream, or
 * for the client to read. */
static void
conn_run(struct conn *c)
{
	struct evbuffer *in;
	enum conn_state before;
	size_t len;

	for (;;) {
		/* Each round: the sniff may have put TLS under us. */
		in = conn_in(c);
		before = c->state;
		len = evbuffer_get_length(in);
		switch (c->state) {
		case CONN_HEAD:
			conn_step_head(c);
			break;
		case CONN_BODY:
			conn_step_body(c);
			break;
		case CONN_TOKEN:
		case CONN_UPSTREAM:
		case CONN_TUNNEL:
			/* Pipelined bytes wait; the input bound limits
			 * them. */
			return;
		case CONN_SNIFF:
			conn_step_sniff(c);
			break;
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
		xport_shutdown(c->x);
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
		conn_timer(c, conn_cfg(c)->idle_timeout_ms);
		return;
	}
	conn_free(c);
}

/* The token did not come within upstream.connect_timeout_ms. */
static void
conn_token_timeout(struct conn *c)
{
	struct conn_exchange *ex = c->ex;
	struct consent_page page;
	struct token_fail f;

	token_cancel(ex->waiter);
	ex->waiter = NULL;
	if (ex->callback) {
		consent_timeout(&page);
		conn_page(c, &page);
		return;
	}
	token_fail_timeout(c->ctx->tokens, ex->res,
	                   ex->gen->cfg->upstream_connect_timeout_ms, &f);
	conn_token_refused(c, &f);
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
		         c->ex->gen->cfg->header_timeout_ms);
		conn_error(c, 408, NULL, "request_timeout", msg, 1);
		conn_read_update(c);
		return;
	case CONN_BODY:
		snprintf(msg, sizeof(msg),
		         "no request body bytes for idle_timeout_ms (%u)",
		         c->ex->gen->cfg->idle_timeout_ms);
		conn_error(c, 408, NULL, "request_timeout", msg, 1);
		conn_read_update(c);
		return;
	case CONN_TOKEN:
		conn_token_timeout(c);
		conn_read_update(c);
		return;
	case CONN_UPSTREAM:
		/* Paused for a client that stopped reading. */
		log_info("client %s stopped reading; dropping the response "
		         "from %s",
		         c->peer, conn_up_name(c->ex, name, sizeof(name)));
		conn_free(c);
		return;
	case CONN_SNIFF:
		log_info("client %s sent nothing within header_timeout_ms "
		         "after CONNECT %s:%d; closing",
		         c->peer, c->bind.host, c->bind.port);
		conn_free(c);
		return;
	case CONN_TUNNEL:
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

/* --- transport callbacks -----------------------------------------------------
 */

static void
conn_x_readable(void *arg)
{
	conn_advance(arg);
}

static void
conn_x_drained(void *arg)
{
	conn_write_done(arg);
}

static void
conn_x_eof(void *arg, int error)
{
	if (error)
		conn_free(arg);
	else
		conn_event_eof(arg);
}

static const struct xport_cbs conn_x_cbs = {
    conn_x_readable,
    conn_x_drained,
    conn_x_eof,
};

void
conn_accept(struct conn_ctx *ctx, const struct conn_listener *ls, int fd,
            const struct sockaddr *sa, int salen)
{
	const struct config *cfg = ctx->gen->cfg;
	int refuse = ctx->nconns >= cfg->max_connections;
	struct conn *c;
	int one = 1;

	if (refuse && ctx->nrefusing >= CONN_REFUSING_MAX) {
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->ctx = ctx;
	c->ls = ls;
	conn_peer_name(c, sa);
	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->x = xport_sock_new(ctx->base, fd, &conn_x_cbs, c);
	c->timer = evtimer_new(ctx->base, conn_timer_cb, c);
	if (c->x == NULL || c->timer == NULL) {
		log_error("cannot set up a connection from %s", c->peer);
		xport_free(c->x);
		if (c->timer)
			event_free(c->timer);
		free(c);
		return;
	}
	/* Bounds what a client can queue while its response is in flight. */
	xport_set_in_max(c->x, cfg->max_head_bytes + CONN_IN_HOLD);
	conn_read_update(c);
	c->next = ctx->conns;
	if (ctx->conns)
		ctx->conns->prev = c;
	ctx->conns = c;
	ctx->metrics->open_conns++;
	if (refuse) {
		struct buf b;

		ctx->nrefusing++;
		ctx->metrics->refused++;
		log_warn("refusing connection from %s: max_connections (%zu) "
		         "reached",
		         c->peer, cfg->max_connections);
		buf_init(&b);
		buf_appendf(&b,
		            "the proxy already has max_connections (%zu) "
		            "client connections",
		            cfg->max_connections);
		conn_error(c, 503, "connection_limit_reached",
		           "too_many_connections", b.data, 1);
		buf_free(&b);
		return;
	}
	c->counted = 1;
	ctx->nconns++;
	ctx->metrics->accepted++;
	c->state = CONN_HEAD;
	conn_timer(c, cfg->idle_timeout_ms);
}

static void
conn_free(struct conn *c)
{
	struct conn_ctx *ctx = c->ctx;

	conn_abandon(c);
	tunnel_free(c->tun);
	free((char *)c->bind.host);
	if (c->sniff_gen)
		gen_unref(c->sniff_gen);
	if (c->prev)
		c->prev->next = c->next;
	else
		ctx->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->counted)
		ctx->nconns--;
	else
		ctx->nrefusing--;
	ctx->metrics->open_conns--;
	xport_free(c->x);
	event_free(c->timer);
	free(c);
	if (ctx->gone)
		ctx->gone(ctx->gone_arg);
}

void
conn_drain_all(struct conn_ctx *ctx)
{
	struct conn *c, *next;

	for (c = ctx->conns; c != NULL; c = next) {
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
conn_free_all(struct conn_ctx *ctx)
{
	while (ctx->conns != NULL) {
		if (ctx->conns->ex != NULL)
			ctx->conns->ex->error = "proxy_shutdown";
		conn_free(ctx->conns);
	}
}
