/*
 * aauth: one token-endpoint exchange — agent token (token_src), resource
 * token (token_src, or the challenge we were given), the JSON body, the
 * request finalised and signed by outreq with the lumoauth profile, the
 * Agent-Auth field, the bounded POST (fetch), and the answer sorted. The
 * issuer is hostile input like any upstream: every value taken from its
 * answer is checked before it can reach a header, a log or a body.
 */
#include "aauth.h"

#include <event2/event.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "gen.h"
#include "httpsig.h"
#include "log.h"
#include "outreq.h"
#include "sfv.h"
#include "token_src.h"

#define AAUTH_URL_MAX 4096

struct aauth {
	struct event_base *base;
	struct upstream *up;
	struct token_src *src;
	struct httpsig_profile lumo; /* token requests: always lumoauth */
};

enum aauth_step { AAUTH_STEP_AGENT, AAUTH_STEP_RESOURCE, AAUTH_STEP_POST };

struct aauth_op {
	struct aauth *a;
	struct gen *gen;
	const struct config_resource *res;
	enum aauth_type type;
	enum aauth_step step;
	char *refresh_token, *code, *resource_token, *agent_token;
	struct token_src_req *sreq;
	struct fetch *fetch;
	struct event *ev; /* a failure before any I/O, delivered later */
	struct aauth_result result;
	aauth_cb cb;
	void *arg;
};

const char *
aauth_type_name(enum aauth_type t)
{
	switch (t) {
	case AAUTH_AUTH:
		return "auth";
	case AAUTH_REFRESH:
		return "refresh";
	case AAUTH_CODE:
		return "code";
	}
	return "?";
}

char *
aauth_challenge_parse(const char *v, size_t len)
{
	const struct sfv_member *m;
	const struct sfv_bare *rt = NULL;
	struct sfv_list d;
	char *out = NULL;

	memset(&d, 0, sizeof(d));
	if (sfv_parse_dict(v, len, 0, &d, NULL) == -1)
		return NULL;
	m = sfv_dict_get(&d, "requirement");
	if (m != NULL && !m->is_inner && m->bare.type == SFV_TOKEN &&
	    strcmp(m->bare.str, "auth-token") == 0) {
		/* A parameter of the requirement, or (as some write it) a
		 * member of its own. */
		rt = sfv_params_get(&m->params, "resource-token");
		if (rt == NULL && (m = sfv_dict_get(&d, "resource-token")) &&
		    !m->is_inner)
			rt = &m->bare;
	}
	if (rt != NULL && rt->type == SFV_STRING &&
	    token_src_check(rt->str, strlen(rt->str), "resource-token", NULL) ==
	        0)
		out = xstrdup(rt->str);
	sfv_list_free(&d);
	return out;
}

struct aauth *
aauth_new(struct event_base *base, struct upstream *up)
{
	struct aauth *a = xcalloc(1, sizeof(*a));

	a->base = base;
	a->up = up;
	a->src = token_src_new(base, up);
	if (httpsig_profile_builtin(&a->lumo, "lumoauth", NULL) == -1)
		abort(); /* built in: cannot fail */
	return a;
}

void
aauth_free(struct aauth *a)
{
	if (a == NULL)
		return;
	token_src_free(a->src);
	httpsig_profile_free(&a->lumo);
	free(a);
}

void
aauth_result_clear(struct aauth_result *r)
{
	token_src_wipe(r->token);
	token_src_wipe(r->refresh_token);
	free(r->scope);
	free(r->consent_url);
	memset(r, 0, sizeof(*r));
	r->expires_in = -1;
	r->consent_expires_in = -1;
}

/* --- the answer ----------------------------------------------------------- */

/* Printable ASCII only and at most 200 bytes: the issuer's words go into
 * our log and our JSON bodies. */
static void
aauth_words(const char *s, char *out, size_t cap)
{
	size_t i, n = 0;

	for (i = 0; s[i] && n + 1 < cap && i < 200; i++)
		out[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	out[n] = '\0';
}

static int64_t
aauth_seconds(json_t *v)
{
	if (json_is_integer(v) && json_integer_value(v) > 0)
		return (int64_t)json_integer_value(v);
	if (json_is_real(v) && json_real_value(v) >= 1 &&
	    json_real_value(v) < 1e9)
		return (int64_t)json_real_value(v);
	return -1;
}

/* A consent URL we will show: http(s), printable, bounded. */
static char *
aauth_url(json_t *v)
{
	const char *s = json_string_value(v);
	size_t i, n;

	if (s == NULL)
		return NULL;
	n = json_string_length(v);
	if (n > AAUTH_URL_MAX || n != strlen(s) ||
	    !(util_strncaseeq(s, "https://", 8) ||
	      util_strncaseeq(s, "http://", 7)))
		return NULL;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return NULL;
	return xstrdup(s);
}

static void aauth_fail(struct aauth_result *out, enum aauth_outcome o,
                       const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* kind: the failure without its varying details (curl's timings, an
 * issuer's description), so a repeat is recognised as one. */
static void
aauth_fail(struct aauth_result *out, enum aauth_outcome o, const char *kind,
           const char *fmt, ...)
{
	va_list ap;

	out->outcome = o;
	snprintf(out->kind, sizeof(out->kind), "%s", kind);
	va_start(ap, fmt);
	vsnprintf(out->error, sizeof(out->error), fmt, ap);
	va_end(ap);
}

/* A 200 answer: a token, a consent prompt, or garbage. */
static void
aauth_parse_ok(json_t *o, struct aauth_result *out)
{
	json_t *t = json_object_get(o, "auth_token"), *m;
	char why[ERR_MAX];

	if (t == NULL || json_is_null(t))
		t = json_object_get(o, "access_token");
	if (t == NULL || json_is_null(t)) {
		m = json_object_get(o, "authorization_uri");
		if (json_is_string(json_object_get(o, "request_token")) &&
		    (out->consent_url = aauth_url(m)) != NULL) {
			out->outcome = AAUTH_CONSENT;
			out->consent_expires_in =
			    aauth_seconds(json_object_get(o, "expires_in"));
			snprintf(out->error, sizeof(out->error),
			         "the issuer asks for a person's consent");
			return;
		}
		aauth_fail(out, AAUTH_TRANSIENT, "notoken",
		           "the issuer answered 200 with JSON that holds "
		           "neither auth_token nor access_token%s",
		           m != NULL ? " (and no usable authorization_uri)"
		                     : "");
		return;
	}
	if (!json_is_string(t) ||
	    token_src_check(json_string_value(t), json_string_length(t),
	                    "the token in the answer", why) == -1) {
		aauth_fail(out, AAUTH_TRANSIENT, "badtoken",
		           "the issuer answered 200: %s",
		           json_is_string(t) ? why
		                             : "the token is not a string");
		return;
	}
	m = json_object_get(o, "refresh_token");
	if (m != NULL && !json_is_null(m)) {
		if (!json_is_string(m) ||
		    token_src_check(json_string_value(m), json_string_length(m),
		                    "the refresh token in the answer",
		                    why) == -1) {
			aauth_fail(out, AAUTH_TRANSIENT, "badrefresh",
			           "the issuer answered 200: %s",
			           json_is_string(m)
			               ? why
			               : "the refresh token is not a string");
			return;
		}
		out->refresh_token = xstrdup(json_string_value(m));
	}
	out->token = xstrdup(json_string_value(t));
	out->expires_in = aauth_seconds(json_object_get(o, "expires_in"));
	m = json_object_get(o, "scope");
	if (json_is_string(m)) {
		aauth_words(json_string_value(m), why, 201);
		out->scope = xstrdup(why);
	}
	out->outcome = AAUTH_OK;
}

void
aauth_parse_response(int status, const char *body, size_t len,
                     unsigned retry_after, struct aauth_result *out)
{
	char code[64], desc[210], kind[96];
	json_error_t je;
	json_t *o = NULL, *e;

	aauth_result_clear(out);
	out->status = status;
	out->retry_after = retry_after;
	if (len > 0)
		o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (status == 200) {
		if (len == 0)
			aauth_fail(
			    out, AAUTH_TRANSIENT, "empty",
			    "the issuer answered 200 with an empty body");
		else if (!json_is_object(o))
			aauth_fail(out, AAUTH_TRANSIENT, "nonjson",
			           "the issuer answered 200 with a body that "
			           "is not a JSON object");
		else
			aauth_parse_ok(o, out);
		json_decref(o);
		return;
	}
	code[0] = desc[0] = '\0';
	if (json_is_object(o)) {
		e = json_object_get(o, "error");
		if (json_is_string(e))
			aauth_words(json_string_value(e), code, sizeof(code));
		e = json_object_get(o, "error_description");
		if (json_is_string(e))
			aauth_words(json_string_value(e), desc, sizeof(desc));
	}
	/* Older servers ask for consent with a 401. */
	if (status == 401 && strcmp(code, "authorization_required") == 0 &&
	    (out->consent_url = aauth_url(json_object_get(o, "auth_url"))) !=
	        NULL) {
		out->outcome = AAUTH_CONSENT;
		out->consent_expires_in =
		    aauth_seconds(json_object_get(o, "expires_in"));
		snprintf(out->error, sizeof(out->error),
		         "the issuer asks for a person's consent");
		json_decref(o);
		return;
	}
	json_decref(o);
	if (status == 429 || status == 503 || status == 408 || status >= 500) {
		snprintf(kind, sizeof(kind), "status %d", status);
		aauth_fail(out, AAUTH_TRANSIENT, kind,
		           "the issuer answered %d%s%s%s", status,
		           code[0] ? " " : "", code,
		           retry_after ? " with Retry-After" : "");
		return;
	}
	if (strcmp(code, "invalid_grant") == 0) {
		aauth_fail(out, AAUTH_INVALID_GRANT, "invalid_grant",
		           "the issuer answered %d invalid_grant%s%s", status,
		           desc[0] ? ": " : "", desc);
		return;
	}
	snprintf(kind, sizeof(kind), "status %d %s", status, code);
	aauth_fail(out, AAUTH_PERMANENT, kind, "the issuer answered %d %s%s%s",
	           status, code[0] ? code : "without an error code",
	           desc[0] ? ": " : "", desc);
}

/* --- the exchange --------------------------------------------------------- */

static void
aauth_op_free(struct aauth_op *op)
{
	token_src_cancel(op->sreq);
	fetch_cancel(op->fetch);
	if (op->ev != NULL)
		event_free(op->ev);
	token_src_wipe(op->refresh_token);
	token_src_wipe(op->code);
	token_src_wipe(op->resource_token);
	token_src_wipe(op->agent_token);
	aauth_result_clear(&op->result);
	gen_unref(op->gen);
	free(op);
}

void
aauth_cancel(struct aauth_op *op)
{
	if (op != NULL)
		aauth_op_free(op);
}

/* An issuer's words may quote what we sent: none of it reaches a log. */
static void
aauth_redact(char *text, size_t cap, const char *secret)
{
	const char *p = text, *q;
	struct buf b;
	size_t n;

	if (secret == NULL || (n = strlen(secret)) == 0 ||
	    strstr(text, secret) == NULL)
		return;
	buf_init(&b);
	while ((q = strstr(p, secret)) != NULL) {
		buf_append(&b, p, (size_t)(q - p));
		buf_appends(&b, "[redacted]");
		p = q + n;
	}
	buf_appends(&b, p);
	snprintf(text, cap, "%s", b.data);
	buf_free(&b);
}

static void
aauth_finish(struct aauth_op *op)
{
	struct aauth_result *r = &op->result;

	aauth_redact(r->error, sizeof(r->error), op->refresh_token);
	aauth_redact(r->error, sizeof(r->error), op->code);
	aauth_redact(r->error, sizeof(r->error), op->resource_token);
	aauth_redact(r->error, sizeof(r->error), op->agent_token);
	aauth_redact(r->error, sizeof(r->error), r->token);
	aauth_redact(r->error, sizeof(r->error), r->refresh_token);
	op->cb(op->arg, r);
	aauth_op_free(op);
}

static void
aauth_later_cb(evutil_socket_t fd, short what, void *arg)
{
	aauth_finish(arg);
}

/* Fail before (or instead of) talking to the issuer: from the loop. */
static void
aauth_fail_later(struct aauth_op *op, enum aauth_outcome o, const char *what,
                 const char *why)
{
	aauth_fail(&op->result, o, what, "%s: %s", what, why);
	if (op->ev == NULL)
		op->ev = evtimer_new(op->a->base, aauth_later_cb, op);
	event_active(op->ev, EV_TIMEOUT, 1);
}

static void
aauth_post_done(void *arg, const struct fetch_result *res)
{
	struct aauth_op *op = arg;
	struct aauth_result *r = &op->result;

	op->fetch = NULL;
	if (res->oversized) {
		aauth_result_clear(r);
		r->status = res->status;
		aauth_fail(r, AAUTH_TRANSIENT, "oversized",
		           "the issuer answered %d with a body larger than %d "
		           "bytes",
		           res->status, AAUTH_BODY_MAX);
	} else if (!res->ok) {
		aauth_result_clear(r);
		aauth_fail(r, AAUTH_TRANSIENT, res->error,
		           "token endpoint %s: %s", res->error, res->detail);
	} else {
		aauth_parse_response(res->status, res->body, res->body_len,
		                     res->retry_after, r);
	}
	aauth_finish(op);
}

static void
aauth_post(struct aauth_op *op)
{
	const struct config_aauth *ca = op->res->aauth;
	struct http_request *req = NULL;
	struct outreq_sign sign;
	struct fetch_spec fs;
	char err[ERR_MAX], *body;
	struct buf aa;
	json_t *o;

	op->step = AAUTH_STEP_POST;
	switch (op->type) {
	case AAUTH_AUTH:
		o = json_pack("{s:s,s:s,s:s*,s:s*}", "request_type", "auth",
		              "resource_token", op->resource_token, "scope",
		              ca->scope, "redirect_uri", ca->redirect_uri);
		break;
	case AAUTH_REFRESH:
		o = json_pack("{s:s,s:s,s:s,s:s*}", "request_type", "refresh",
		              "refresh_token", op->refresh_token,
		              "resource_token", op->resource_token, "scope",
		              ca->scope);
		break;
	default:
		o = json_pack("{s:s,s:s,s:s*}", "request_type", "code", "code",
		              op->code, "redirect_uri", ca->redirect_uri);
		break;
	}
	body = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (body == NULL) {
		aauth_fail_later(op, AAUTH_PERMANENT, "token request",
		                 "cannot encode the request body");
		return;
	}
	req = fetch_request_new("POST", ca->issuer.scheme, ca->issuer.authority,
	                        ca->token_target, "application/json", body,
	                        strlen(body), err);
	sodium_memzero(body, strlen(body));
	free(body);
	if (req == NULL) {
		aauth_fail_later(op, AAUTH_PERMANENT, "token request", err);
		return;
	}
	/* The lumoauth profile with authorization covered empty, a fresh
	 * nonce and created, exactly the bytes that go out. */
	sign.profile = &op->a->lumo;
	sign.key = &op->gen->key;
	sign.token = NULL;
	if (outreq_finalise(req, 1, &sign, err) == -1) {
		fetch_request_wipe(req);
		free(req);
		aauth_fail_later(op, AAUTH_PERMANENT,
		                 "signing the token request", err);
		return;
	}
	/* Not covered (the SDKs' layout): added after the signature. */
	buf_init(&aa);
	buf_appendf(&aa, "agent_token=%s", op->agent_token);
	http_fields_add(&req->fields, "Agent-Auth", aa.data);
	sodium_memzero(aa.data, aa.len);
	buf_free(&aa);
	memset(&fs, 0, sizeof(fs));
	fs.gen = op->gen;
	fs.req = req;
	fs.scheme = ca->issuer.scheme;
	fs.host = ca->issuer.host;
	fs.port = ca->issuer.port;
	fs.max_body = AAUTH_BODY_MAX;
	fs.timeout_ms = fetch_timeout_ms(op->gen);
	op->fetch =
	    fetch_start(op->a->base, op->a->up, &fs, aauth_post_done, op, err);
	if (op->fetch == NULL)
		aauth_fail_later(op, AAUTH_TRANSIENT, "token endpoint", err);
}

static void aauth_next(struct aauth_op *op);

static void
aauth_src_done(void *arg, char *value, const char *err)
{
	struct aauth_op *op = arg;

	op->sreq = NULL;
	if (value == NULL) {
		/* A source that cannot deliver is usually a passing thing (a
		 * file being rewritten, a helper's network): retried with
		 * backoff, and the reason is shown. */
		aauth_fail_later(op, AAUTH_TRANSIENT,
		                 op->step == AAUTH_STEP_AGENT
		                     ? "agent_token"
		                     : "resource_token",
		                 err);
		return;
	}
	if (op->step == AAUTH_STEP_AGENT) {
		op->agent_token = value;
		op->step = AAUTH_STEP_RESOURCE;
	} else {
		op->resource_token = value;
		op->step = AAUTH_STEP_POST;
	}
	aauth_next(op);
}

static void
aauth_next(struct aauth_op *op)
{
	const struct config_aauth *ca = op->res->aauth;

	if (op->step == AAUTH_STEP_AGENT) {
		op->sreq = token_src_get(op->a->src, op->gen, op->res,
		                         &ca->agent_token, aauth_src_done, op);
		return;
	}
	if (op->step == AAUTH_STEP_RESOURCE && op->type != AAUTH_CODE &&
	    op->resource_token == NULL) {
		op->sreq =
		    token_src_get(op->a->src, op->gen, op->res,
		                  &ca->resource_token, aauth_src_done, op);
		return;
	}
	aauth_post(op);
}

struct aauth_op *
aauth_fetch(struct aauth *a, const struct aauth_req *req, aauth_cb cb,
            void *arg)
{
	struct aauth_op *op = xcalloc(1, sizeof(*op));

	op->a = a;
	op->gen = gen_ref(req->gen);
	op->res = req->res;
	op->type = req->type;
	op->cb = cb;
	op->arg = arg;
	op->result.expires_in = -1;
	op->result.consent_expires_in = -1;
	if (req->refresh_token)
		op->refresh_token = xstrdup(req->refresh_token);
	if (req->code)
		op->code = xstrdup(req->code);
	if (req->resource_token)
		op->resource_token = xstrdup(req->resource_token);
	op->step = AAUTH_STEP_AGENT;
	/* The sources deliver from the loop, so cb cannot run before we
	 * return. */
	aauth_next(op);
	return op;
}
