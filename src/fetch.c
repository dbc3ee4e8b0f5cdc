/*
 * fetch: a bounded, buffered exchange on the upstream module for the
 * proxy's own requests. The body callback copies into one buffer and
 * aborts past max_body; a timer bounds the whole exchange even when
 * upstream.timeout_ms is 0 (the data path's default, for event streams).
 */
#define _GNU_SOURCE /* strptime, timegm */
#include "fetch.h"

#include <event2/event.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gen.h"
#include "upstream.h"
#include "util.h"

#define FETCH_RETRY_AFTER_MAX 3600

struct fetch {
	struct upstream_req *ureq;
	struct event *timer;
	struct gen *gen;
	struct http_request *req;
	char *host;
	struct buf body;
	size_t max_body;
	int status;
	int oversized;
	unsigned retry_after;
	unsigned timeout_ms;
	fetch_cb cb;
	void *arg;
};

unsigned
fetch_timeout_ms(const struct gen *g)
{
	unsigned t = g->cfg->upstream_connect_timeout_ms * 2;

	return t < 2000 ? 2000 : t > 60000 ? 60000 : t;
}

void
fetch_request_wipe(struct http_request *r)
{
	size_t i;

	for (i = 0; i < r->fields.n; i++)
		sodium_memzero(r->fields.v[i].value,
		               strlen(r->fields.v[i].value));
	if (r->body != NULL)
		sodium_memzero(r->body, r->body_len);
	http_request_free(r);
}

struct http_request *
fetch_request_new(const char *method, const char *scheme, const char *authority,
                  const char *target, const char *content_type,
                  const char *body, size_t body_len, char *err)
{
	struct http_request *r = xmalloc(sizeof(*r));
	struct buf b;
	int rc;

	buf_init(&b);
	buf_appendf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target,
	            authority);
	if (body != NULL)
		buf_appendf(&b, "Content-Type: %s\r\nContent-Length: %zu\r\n",
		            content_type, body_len);
	buf_append(&b, "\r\n", 2);
	if (body != NULL)
		buf_append(&b, body, body_len);
	http_request_init(r);
	rc = http1_parse_request(b.data, b.len, NULL, r, err);
	sodium_memzero(b.data, b.len);
	buf_free(&b);
	if (rc == -1) {
		fetch_request_wipe(r);
		free(r);
		return NULL;
	}
	http_request_set_scheme(r, scheme);
	return r;
}

static void
fetch_free(struct fetch *f)
{
	if (f->ureq != NULL)
		upstream_cancel(f->ureq);
	if (f->timer != NULL)
		event_free(f->timer);
	if (f->req != NULL) {
		fetch_request_wipe(f->req);
		free(f->req);
	}
	if (f->body.data != NULL)
		sodium_memzero(f->body.data, f->body.cap);
	buf_free(&f->body);
	free(f->host);
	gen_unref(f->gen);
	free(f);
}

void
fetch_cancel(struct fetch *f)
{
	if (f != NULL)
		fetch_free(f);
}

static void
fetch_finish(struct fetch *f, struct fetch_result *res)
{
	res->status = f->status;
	res->oversized = f->oversized;
	res->retry_after = f->retry_after;
	res->body = f->body.data ? f->body.data : "";
	res->body_len = f->body.len;
	f->cb(f->arg, res);
	fetch_free(f);
}

/* Retry-After: delta-seconds or an HTTP-date (RFC 9110 §10.2.3). */
static unsigned
fetch_retry_after(const char *v, size_t n)
{
	char tmp[64], *end;
	struct tm tm;
	long long s;
	time_t t, now;

	if (n == 0 || n >= sizeof(tmp))
		return 0;
	memcpy(tmp, v, n);
	tmp[n] = '\0';
	if (tmp[0] >= '0' && tmp[0] <= '9') {
		s = strtoll(tmp, &end, 10);
		if (*end != '\0' || s < 0)
			return 0;
	} else {
		memset(&tm, 0, sizeof(tm));
		end = strptime(tmp, "%a, %d %b %Y %H:%M:%S GMT", &tm);
		if (end == NULL || *end != '\0')
			return 0;
		t = timegm(&tm);
		now = time(NULL);
		s = t > now ? (long long)(t - now) : 0;
	}
	return (unsigned)(s > FETCH_RETRY_AFTER_MAX ? FETCH_RETRY_AFTER_MAX
	                                            : s);
}

static int
fetch_head(void *arg, const struct upstream_head *h)
{
	struct fetch *f = arg;
	size_t i;

	f->status = h->status;
	for (i = 0; i < h->n; i++)
		if (h->v[i].name_len == 11 &&
		    util_strncaseeq(h->v[i].name, "Retry-After", 11))
			f->retry_after =
			    fetch_retry_after(h->v[i].value, h->v[i].value_len);
	if (h->content_length > 0 &&
	    (uint64_t)h->content_length > f->max_body) {
		f->oversized = 1;
		return -1;
	}
	return 0;
}

static int
fetch_body(void *arg, const char *p, size_t n)
{
	struct fetch *f = arg;

	if (f->body.len + n > f->max_body) {
		f->oversized = 1;
		return -1;
	}
	buf_append(&f->body, p, n);
	return 0;
}

static void
fetch_done(void *arg, const struct upstream_result *r)
{
	struct fetch *f = arg;
	struct fetch_result res;

	f->ureq = NULL;
	memset(&res, 0, sizeof(res));
	if (f->oversized) {
		res.error = "http_response_content_length";
		snprintf(res.detail, sizeof(res.detail),
		         "the response body is larger than %zu bytes",
		         f->max_body);
	} else if (!r->ok) {
		res.error = r->error;
		snprintf(res.detail, sizeof(res.detail), "%s", r->detail);
	} else {
		res.ok = 1;
	}
	fetch_finish(f, &res);
}

static void
fetch_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *f = arg;
	struct fetch_result res;

	upstream_cancel(f->ureq);
	f->ureq = NULL;
	memset(&res, 0, sizeof(res));
	res.error = f->status ? "http_response_timeout" : "connection_timeout";
	snprintf(res.detail, sizeof(res.detail),
	         "no complete answer within %u ms", f->timeout_ms);
	fetch_finish(f, &res);
}

static const struct upstream_cbs fetch_cbs = {fetch_head, fetch_body,
                                              fetch_done};

struct fetch *
fetch_start(struct event_base *base, struct upstream *up,
            const struct fetch_spec *s, fetch_cb cb, void *arg, char *err)
{
	struct fetch *f = xcalloc(1, sizeof(*f));
	struct upstream_spec us;
	struct timeval tv;

	f->gen = gen_ref(s->gen);
	f->req = s->req;
	f->host = xstrdup(s->host);
	f->max_body = s->max_body;
	f->timeout_ms = s->timeout_ms;
	f->cb = cb;
	f->arg = arg;
	buf_init(&f->body);
	f->timer = evtimer_new(base, fetch_timer_cb, f);
	if (f->timer == NULL) {
		err_set(err, "cannot create a timer");
		fetch_free(f);
		return NULL;
	}
	memset(&us, 0, sizeof(us));
	us.method = f->req->method;
	us.scheme = s->scheme;
	us.host = f->host;
	us.port = s->port;
	us.target = f->req->target;
	us.fields = &f->req->fields;
	us.body = f->req->body;
	us.body_len = f->req->body_len;
	us.has_body = f->req->body != NULL;
	/* The issuer and a token URL are named by the configuration, like
	 * a rule's host: a loopback or private address is meant. */
	us.check_private = 0;
	us.cfg = f->gen->cfg;
	f->ureq = upstream_start(up, &us, &fetch_cbs, f, err);
	if (f->ureq == NULL) {
		fetch_free(f);
		return NULL;
	}
	tv.tv_sec = (time_t)(s->timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)((s->timeout_ms % 1000) * 1000);
	evtimer_add(f->timer, &tv);
	return f;
}
