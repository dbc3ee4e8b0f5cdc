/*
 * admin: a deliberately small HTTP server. Requests are GET only, answered
 * with Connection: close, so there is no keep-alive, body or pipelining
 * state to get wrong; probes and scrapers open a connection per request
 * anyway. Nothing it writes is a secret: tokens appear only as states and
 * times, the key only as its thumbprint.
 */
#include "admin.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "gen.h"
#include "http1.h"
#include "log.h"
#include "metrics.h"
#include "mitm.h"
#include "token.h"
#include "version.h"

#define ADMIN_MAX_HEAD  8192
#define ADMIN_TIMEOUT_S 10
/* Probes and scrapers need a handful; a local client opening thousands
 * must not take descriptors from the proxy port. */
#define ADMIN_MAX_CONNS 64

struct admin_conn {
	struct admin *a;
	struct bufferevent *bev;
	struct buf in;
	struct http_request req;
	struct admin_conn *prev, *next;
};

struct admin {
	struct admin_state *st;
	struct admin_conn *conns;
	size_t nconns;
};

struct admin *
admin_new(struct admin_state *st)
{
	struct admin *a = xcalloc(1, sizeof(*a));

	a->st = st;
	return a;
}

static void
admin_conn_free(struct admin_conn *ac)
{
	struct admin *a = ac->a;

	if (ac->prev)
		ac->prev->next = ac->next;
	else
		a->conns = ac->next;
	if (ac->next)
		ac->next->prev = ac->prev;
	a->nconns--;
	bufferevent_free(ac->bev);
	buf_free(&ac->in);
	http_request_free(&ac->req);
	free(ac);
}

void
admin_free(struct admin *a)
{
	if (a == NULL)
		return;
	while (a->conns)
		admin_conn_free(a->conns);
	free(a);
}

/* --- what the endpoints report --------------------------------------------
 */

/* The token state of r, never the token. A static token file is read
 * when a request needs it: look at it now as a request would, so /readyz
 * follows the file before the first request. */
static int
admin_token_ready(struct admin *a, const struct config_resource *r,
                  struct token_status *ts)
{
	struct token_value *v = NULL;
	struct token_waiter *w = NULL;
	struct token_fail f;

	if (r->aauth == NULL &&
	    token_acquire(a->st->ctx->tokens, a->st->ctx->gen, r, &v, &f, NULL,
	                  NULL, &w) == 0)
		token_value_unref(v);
	if (token_status_get(a->st->ctx->tokens, r->name, ts) == -1)
		ts->state = TOKEN_EMPTY;
	return ts->has_token &&
	       (ts->state == TOKEN_VALID || ts->state == TOKEN_REFRESHING);
}

static json_t *
admin_resource_json(struct admin *a, const struct config_resource *r)
{
	struct token_status ts;
	json_t *o;

	admin_token_ready(a, r, &ts);
	o = json_pack("{s:s,s:s,s:b}", "name", r->name, "token_state",
	              token_state_name(ts.state), "required", r->required);
	json_object_set_new(o, "expires_in",
	                    ts.has_token && ts.expires_in_s >= 0
	                        ? json_integer(ts.expires_in_s)
	                        : json_null());
	json_object_set_new(o, "last_refresh",
	                    ts.last_refresh ? json_integer(ts.last_refresh)
	                                    : json_null());
	json_object_set_new(o, "last_error",
	                    ts.last_error ? json_string(ts.last_error)
	                                  : json_null());
	if (ts.consent_url)
		json_object_set_new(o, "consent_url",
		                    json_string(ts.consent_url));
	return o;
}

static json_t *
admin_readyz(struct admin *a, int *status)
{
	const struct config *cfg = a->st->ctx->gen->cfg;
	json_t *waiting = json_array();
	struct token_status ts;
	const char *reason = NULL;
	size_t i;

	if (a->st->ctx->draining)
		reason = "shutting down";
	else if (!a->st->listening)
		reason = "listeners are not up yet";
	for (i = 0; i < cfg->nresources; i++) {
		const struct config_resource *r = &cfg->resources[i];

		if (r->required && !admin_token_ready(a, r, &ts))
			json_array_append_new(
			    waiting,
			    json_pack("{s:s,s:s,s:s}", "resource", r->name,
			              "token_state", token_state_name(ts.state),
			              "error",
			              ts.last_error ? ts.last_error : ""));
	}
	if (reason == NULL && json_array_size(waiting) > 0)
		reason = "a required resource has no valid token";
	*status = reason ? 503 : 200;
	if (reason == NULL) {
		json_decref(waiting);
		return json_pack("{s:b}", "ready", 1);
	}
	return json_pack("{s:b,s:s,s:o}", "ready", 0, "reason", reason,
	                 "waiting", waiting);
}

static json_t *
admin_status(struct admin *a)
{
	const struct gen *g = a->st->ctx->gen;
	const struct config *cfg = g->cfg;
	const struct metrics *m = a->st->ctx->metrics;
	json_t *o, *res = json_array(), *rl;
	size_t i;

	o = json_pack("{s:s,s:I,s:I,s:s,s:s,s:s?,s:b,s:I,s:I}", "version",
	              AAUTH_VERSION, "pid", (json_int_t)getpid(),
	              "uptime_seconds",
	              (json_int_t)(util_now() - m->start_time),
	              "key_thumbprint", g->key.thumbprint, "kid", g->key.kid,
	              "config", cfg->path, "draining", a->st->ctx->draining,
	              "open_connections", (json_int_t)m->open_conns,
	              "listeners", (json_int_t)a->st->nlisteners);
	if (g->ca != NULL && g->ca_pem != NULL)
		json_object_set_new(o, "ca_fingerprint",
		                    json_string(g->ca_fingerprint));
	else
		json_object_set_new(o, "ca_fingerprint", json_null());
	for (i = 0; i < cfg->nresources; i++)
		json_array_append_new(
		    res, admin_resource_json(a, &cfg->resources[i]));
	json_object_set_new(o, "resources", res);
	rl = json_pack("{s:I,s:I}", "reloads", (json_int_t)m->reloads,
	               "failures", (json_int_t)m->reload_failures);
	if (a->st->last_reload) {
		json_object_set_new(rl, "last_at",
		                    json_integer(a->st->last_reload));
		json_object_set_new(rl, "last_ok",
		                    json_boolean(a->st->last_reload_ok));
	}
	json_object_set_new(rl, "last_error",
	                    a->st->last_reload_error[0]
	                        ? json_string(a->st->last_reload_error)
	                        : json_null());
	json_object_set_new(o, "reload", rl);
	return o;
}

static void
admin_metrics(struct admin *a, struct buf *out)
{
	const struct config *cfg = a->st->ctx->gen->cfg;
	struct metrics_resource *mr;
	struct token_status *ts;
	size_t i;

	mr = xcalloc(cfg->nresources + 1, sizeof(*mr));
	ts = xcalloc(cfg->nresources + 1, sizeof(*ts));
	for (i = 0; i < cfg->nresources; i++) {
		admin_token_ready(a, &cfg->resources[i], &ts[i]);
		mr[i].name = cfg->resources[i].name;
		mr[i].state = token_state_name(ts[i].state);
		mr[i].expires_in = ts[i].has_token ? ts[i].expires_in_s : -1;
	}
	metrics_write(a->st->ctx->metrics, mr, cfg->nresources, out);
	free(mr);
	free(ts);
}

/* --- the exchange ----------------------------------------------------------
 */

static void
admin_write_cb(struct bufferevent *bev, void *arg)
{
	admin_conn_free(arg);
}

static void
admin_event_cb(struct bufferevent *bev, short what, void *arg)
{
	admin_conn_free(arg);
}

static void
admin_respond(struct admin_conn *ac, int status, const char *ctype,
              const char *body, size_t len)
{
	struct http_fields f;
	struct buf out;
	char n[32];

	http_fields_init(&f);
	http_fields_add(&f, "Content-Type", ctype);
	snprintf(n, sizeof(n), "%zu", len);
	http_fields_add(&f, "Content-Length", n);
	http_fields_add(&f, "Cache-Control", "no-store");
	http_fields_add(&f, "Connection", "close");
	if (status == 405)
		http_fields_add(&f, "Allow", "GET");
	buf_init(&out);
	http1_write_response_head(&out, status, &f);
	buf_append(&out, body, len);
	http_fields_free(&f);
	bufferevent_disable(ac->bev, EV_READ);
	bufferevent_setcb(ac->bev, NULL, admin_write_cb, admin_event_cb, ac);
	bufferevent_write(ac->bev, out.data, out.len);
	buf_free(&out);
}

static void
admin_respond_json(struct admin_conn *ac, int status, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	struct buf b;

	buf_init(&b);
	buf_appends(&b, s ? s : "{}");
	buf_appendc(&b, '\n');
	admin_respond(ac, status, "application/json", b.data, b.len);
	buf_free(&b);
	free(s);
	json_decref(o);
}

static void
admin_route(struct admin_conn *ac)
{
	struct admin *a = ac->a;
	const char *path = ac->req.path;
	const struct gen *g = a->st->ctx->gen;
	struct buf b;
	int status;
	json_t *o;

	if (strcmp(ac->req.method, "GET") != 0) {
		admin_respond_json(
		    ac, 405, json_pack("{s:s}", "error", "method_not_allowed"));
		return;
	}
	if (strcmp(path, "/healthz") == 0) {
		admin_respond_json(ac, 200, json_pack("{s:s}", "status", "ok"));
	} else if (strcmp(path, "/readyz") == 0) {
		o = admin_readyz(a, &status);
		admin_respond_json(ac, status, o);
	} else if (strcmp(path, "/status") == 0) {
		admin_respond_json(ac, 200, admin_status(a));
	} else if (strcmp(path, "/metrics") == 0) {
		buf_init(&b);
		admin_metrics(a, &b);
		admin_respond(ac, 200,
		              "text/plain; version=0.0.4; charset=utf-8",
		              b.data, b.len);
		buf_free(&b);
	} else if (strcmp(path, "/ca.pem") == 0 && g->ca != NULL &&
	           g->ca_pem != NULL) {
		admin_respond(ac, 200, "application/x-pem-file", g->ca_pem,
		              strlen(g->ca_pem));
	} else {
		admin_respond_json(ac, 404,
		                   json_pack("{s:s}", "error", "not_found"));
	}
}

static void
admin_read_cb(struct bufferevent *bev, void *arg)
{
	struct admin_conn *ac = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct http_limits lim = {ADMIN_MAX_HEAD, 50, 0};
	size_t len = evbuffer_get_length(in), used;
	char err[ERR_MAX];
	int rc, status;

	buf_reserve(&ac->in, len);
	evbuffer_remove(in, ac->in.data + ac->in.len, len);
	ac->in.len += len;
	ac->in.data[ac->in.len] = '\0';
	rc = http1_parse_request_head(ac->in.data, ac->in.len, &lim, &ac->req,
	                              &used, &status, err);
	if (rc == 0)
		return;
	if (rc < 0) {
		admin_respond_json(ac, status,
		                   json_pack("{s:s,s:s}", "error",
		                             "bad_request", "detail", err));
		return;
	}
	admin_route(ac);
}

void
admin_accept(void *arg, const struct conn_listener *ls, int fd,
             const struct sockaddr *sa, int salen)
{
	struct admin *a = arg;
	struct admin_conn *ac;
	struct timeval tv = {ADMIN_TIMEOUT_S, 0};

	if (a->nconns >= ADMIN_MAX_CONNS) {
		close(fd);
		return;
	}
	ac = xcalloc(1, sizeof(*ac));
	ac->a = a;
	buf_init(&ac->in);
	http_request_init(&ac->req);
	ac->bev =
	    bufferevent_socket_new(a->st->ctx->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (ac->bev == NULL) {
		close(fd);
		buf_free(&ac->in);
		free(ac);
		return;
	}
	ac->next = a->conns;
	if (a->conns)
		a->conns->prev = ac;
	a->conns = ac;
	a->nconns++;
	bufferevent_setcb(ac->bev, admin_read_cb, NULL, admin_event_cb, ac);
	bufferevent_set_timeouts(ac->bev, &tv, &tv);
	bufferevent_enable(ac->bev, EV_READ);
}
