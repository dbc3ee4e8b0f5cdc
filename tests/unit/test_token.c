/*
 * test_token: the per-resource token state machine under a fake clock and
 * a fake fetcher (no loop, no network): first fetch, refresh at 80%,
 * single flight, backoff (doubling, capped before the expiry, Retry-After,
 * permanent), expiry, invalid_grant fallback, consent and the code,
 * the 401 invalidation, the challenge resource, a changed config. Also
 * the pure protocol pieces: sorting token-endpoint answers, the
 * challenge header, the callback query.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "aauth.h"
#include "check.h"
#include "config.h"
#include "consent.h"
#include "gen.h"
#include "token.h"
#include "util.h"

#define KEY "\"key\": {\"file\": \"/k.pem\"}"

/* --- the fakes ------------------------------------------------------------ */

static uint64_t fake_now = 1000000; /* monotonic ms */

struct fake_fetch {
	int used, cancelled, done;
	enum aauth_type type;
	char refresh[64], resource[64], code[64];
	aauth_cb cb;
	void *cbarg;
};

static struct fake_fetch fetches[64];
static int nfetches;

static uint64_t
fake_mono(void *arg)
{
	return fake_now;
}

static int64_t
fake_unix(void *arg)
{
	return 1800000000 + (int64_t)(fake_now / 1000);
}

static int fake_rand = -1; /* -1: the middle of the range */

static uint32_t
fake_random(void *arg, uint32_t n)
{
	/* The middle gives a jitter factor of exactly 1.0. */
	return fake_rand < 0 ? n / 2 : (uint32_t)fake_rand % n;
}

static struct aauth_op *
fake_fetch(void *arg, const struct aauth_req *req, aauth_cb cb, void *cbarg)
{
	struct fake_fetch *f = &fetches[nfetches++];

	memset(f, 0, sizeof(*f));
	f->used = 1;
	f->type = req->type;
	snprintf(f->refresh, sizeof(f->refresh), "%s",
	         req->refresh_token ? req->refresh_token : "");
	snprintf(f->resource, sizeof(f->resource), "%s",
	         req->resource_token ? req->resource_token : "");
	snprintf(f->code, sizeof(f->code), "%s", req->code ? req->code : "");
	f->cb = cb;
	f->cbarg = cbarg;
	return (struct aauth_op *)f;
}

static void
fake_cancel(void *arg, struct aauth_op *op)
{
	((struct fake_fetch *)op)->cancelled = 1;
}

static struct fake_fetch *
last_fetch(void)
{
	return nfetches ? &fetches[nfetches - 1] : NULL;
}

/* Complete the last fetch. */
static void
finish(enum aauth_outcome o, const char *token, const char *refresh,
       int64_t expires_in, unsigned retry_after)
{
	struct fake_fetch *f = last_fetch();
	struct aauth_result r;

	memset(&r, 0, sizeof(r));
	r.outcome = o;
	r.token = token ? xstrdup(token) : NULL;
	r.refresh_token = refresh ? xstrdup(refresh) : NULL;
	r.expires_in = expires_in;
	r.consent_expires_in = -1;
	r.retry_after = retry_after;
	if (o == AAUTH_CONSENT)
		r.consent_url = xstrdup("https://issuer.test/authorize?rq=1");
	snprintf(r.error, sizeof(r.error), "%s",
	         o == AAUTH_OK        ? ""
	         : o == AAUTH_CONSENT ? "consent"
	                              : "the issuer answered 503");
	f->done = 1;
	f->cb(f->cbarg, &r);
	aauth_result_clear(&r);
}

struct waited {
	int called;
	struct token_value *v;
	int status;
	char url[128];
};

static void
waited_cb(void *arg, struct token_value *v, const struct token_fail *f)
{
	struct waited *w = arg;

	w->called++;
	token_value_unref(w->v);
	w->v = v;
	w->status = f ? f->status : 0;
	if (f && f->url)
		snprintf(w->url, sizeof(w->url), "%s", f->url);
}

static struct token_store *
store(void)
{
	struct token_env env;

	memset(&env, 0, sizeof(env));
	env.mono_ms = fake_mono;
	env.unix_s = fake_unix;
	env.random = fake_random;
	env.fetch = fake_fetch;
	env.cancel = fake_cancel;
	return token_store_new_env(NULL, &env);
}

static struct gen *
gen_of(const char *aauth_json)
{
	char err[ERR_MAX];
	struct buf b;
	struct gen *g = xcalloc(1, sizeof(*g));

	buf_init(&b);
	buf_appendf(&b, "{" KEY ", \"resources\": {\"docs\": {\"aauth\": %s}}}",
	            aauth_json);
	g->cfg = config_parse(b.data, "t.json", err);
	if (g->cfg == NULL) {
		fprintf(stderr, "config: %s\n", err);
		exit(1);
	}
	g->refs = 1;
	buf_free(&b);
	return g;
}

#define AAUTH_FILE                                                             \
	"{\"issuer\": \"https://issuer.test/o/api\", \"agent_token\": "        \
	"{\"mint\": {\"iss\": \"https://agent.test\"}}, \"resource_token\": "  \
	"{\"file\": \"/rt\"}, \"redirect_uri\": "                              \
	"\"http://127.0.0.1:8787/.aauth/callback\"}"

static int
acquire(struct token_store *ts, struct gen *g, struct waited *w,
        struct token_value **v, struct token_fail *f, struct token_waiter **tw)
{
	return token_acquire(ts, g, &g->cfg->resources[0], v, f, waited_cb, w,
	                     tw);
}

static enum token_state
state(struct token_store *ts)
{
	struct token_status st;

	token_status_get(ts, "docs", &st);
	return st.state;
}

/* --- the machine ------------------------------------------------------------
 */

static void
test_first_fetch_refresh_and_single_flight(void)
{
	struct token_store *ts = store();
	struct gen *g = gen_of(AAUTH_FILE);
	struct waited w[5];
	struct token_waiter *tw[5];
	struct token_value *v, *v2;
	struct token_fail f;
	struct token_status st;
	int i;

	nfetches = 0;
	memset(w, 0, sizeof(w));
	token_store_sync(ts, g);
	CHECK(nfetches == 1 && fetches[0].type == AAUTH_AUTH);
	CHECK(state(ts) == TOKEN_FETCHING);
	/* Five requests before the first token: five waiters, one fetch. */
	for (i = 0; i < 5; i++)
		CHECK(acquire(ts, g, &w[i], &v, &f, &tw[i]) == 1);
	CHECK(nfetches == 1);
	token_cancel(tw[2]); /* its client went away */
	fake_now += 150;
	finish(AAUTH_OK, "tok-1", "rt-1", 100, 0);
	for (i = 0; i < 5; i++)
		CHECK(w[i].called == (i == 2 ? 0 : 1));
	CHECK(w[0].v != NULL && strcmp(w[0].v->value, "tok-1") == 0);
	CHECK(state(ts) == TOKEN_VALID);
	CHECK(acquire(ts, g, &w[2], &v, &f, &tw[2]) == 0);
	CHECK(v == w[0].v); /* the same value, one more reference */
	token_value_unref(v);

	/* Refresh at 80% of the lifetime, from receipt. */
	fake_now += 79999;
	token_store_tick(ts);
	CHECK(nfetches == 1);
	fake_now += 1;
	token_store_tick(ts);
	CHECK(nfetches == 2 && fetches[1].type == AAUTH_REFRESH);
	CHECK(strcmp(fetches[1].refresh, "rt-1") == 0);
	CHECK(state(ts) == TOKEN_REFRESHING);
	/* The old token serves while the refresh runs. */
	CHECK(acquire(ts, g, &w[0], &v, &f, &tw[0]) == 0 &&
	      strcmp(v->value, "tok-1") == 0);
	/* An answer without a refresh token keeps the old one. */
	finish(AAUTH_OK, "tok-2", NULL, 100, 0);
	CHECK(acquire(ts, g, &w[0], &v2, &f, &tw[0]) == 0 &&
	      strcmp(v2->value, "tok-2") == 0);
	/* A reference outlives its replacement in the cache. */
	CHECK(strcmp(v->value, "tok-1") == 0);
	token_value_unref(v);
	token_value_unref(v2);
	token_status_get(ts, "docs", &st);
	CHECK(st.has_refresh_token && st.expires_in_s == 100);
	fake_now += 80000;
	token_store_tick(ts);
	CHECK(nfetches == 3 && strcmp(fetches[2].refresh, "rt-1") == 0);
	finish(AAUTH_OK, "tok-3", NULL, 100, 0);

	for (i = 0; i < 5; i++)
		token_value_unref(w[i].v);
	token_store_free(ts);
	gen_unref(g);
}

static void
test_backoff_expiry_and_recovery(void)
{
	struct token_store *ts = store();
	struct gen *g = gen_of(AAUTH_FILE);
	struct token_value *v;
	struct token_fail f;
	struct token_waiter *tw;
	struct waited w;
	/* Refresh at 80 s of 100: failures retry 1, 2, 4, 8 s later, then
	 * no later than 0.5 s before the expiry, then the token lapses. */
	static const uint64_t want[] = {81000, 83000, 87000, 95000, 99500};
	uint64_t t0;
	size_t i;

	memset(&w, 0, sizeof(w));
	nfetches = 0;
	token_store_sync(ts, g);
	t0 = fake_now;
	finish(AAUTH_OK, "tok-1", "rt-1", 100, 0);
	fake_now = t0 + 80000;
	token_store_tick(ts);
	CHECK(nfetches == 2);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		finish(AAUTH_TRANSIENT, NULL, NULL, -1, 0);
		CHECK(state(ts) == TOKEN_BACKOFF);
		/* Still in use while it is valid. */
		CHECK(acquire(ts, g, &w, &v, &f, &tw) == 0 && v != NULL);
		token_value_unref(v);
		fake_now = t0 + want[i] - 1;
		token_store_tick(ts);
		CHECK(nfetches == (int)i + 2);
		fake_now = t0 + want[i];
		token_store_tick(ts);
		CHECK(nfetches == (int)i + 3);
	}
	finish(AAUTH_TRANSIENT, NULL, NULL, -1, 0);
	fake_now = t0 + 100000;
	token_store_tick(ts);
	CHECK(state(ts) == TOKEN_EXPIRED);
	CHECK(acquire(ts, g, &w, &v, &f, &tw) == -1);
	CHECK(f.status == 503 && strcmp(f.code, "token_unavailable") == 0);
	CHECK(f.last_error != NULL && strstr(f.last_error, "503") != NULL);
	CHECK(f.retry_after == 32 - 0); /* 99.5 + 32 s - 100 s, rounded up */
	/* The next attempt succeeds: back to VALID, backoff reset. */
	fake_now = t0 + 99500 + 32000;
	token_store_tick(ts);
	CHECK(last_fetch()->type == AAUTH_REFRESH && !last_fetch()->done);
	CHECK(state(ts) == TOKEN_FETCHING);
	finish(AAUTH_OK, "tok-2", NULL, 100, 0);
	CHECK(state(ts) == TOKEN_VALID);
	CHECK(acquire(ts, g, &w, &v, &f, &tw) == 0);
	token_value_unref(v);

	/* Retry-After wins over the backoff; a permanent error waits 60 s. */
	fake_now += 80000;
	token_store_tick(ts);
	finish(AAUTH_TRANSIENT, NULL, NULL, -1, 7);
	i = nfetches;
	fake_now += 6999;
	token_store_tick(ts);
	CHECK(nfetches == (int)i);
	fake_now += 1;
	token_store_tick(ts);
	CHECK(nfetches == (int)i + 1);
	finish(AAUTH_PERMANENT, NULL, NULL, -1, 0);
	/* 60 s, but never past the expiry (13 s left). */
	fake_now += 12499;
	token_store_tick(ts);
	CHECK(nfetches == (int)i + 1);
	fake_now += 1;
	token_store_tick(ts);
	CHECK(nfetches == (int)i + 2);
	finish(AAUTH_PERMANENT, NULL, NULL, -1, 0);
	fake_now += 1000; /* expired now */
	token_store_tick(ts);
	CHECK(state(ts) == TOKEN_EXPIRED);
	fake_now += 58999;
	token_store_tick(ts);
	CHECK(nfetches == (int)i + 2);
	fake_now += 1;
	token_store_tick(ts);
	CHECK(nfetches == (int)i + 3);
	token_store_free(ts);
	CHECK(last_fetch()->cancelled);
	gen_unref(g);
}

/* The backoff is jittered by ±20%: the same failure, three draws. */
static void
test_jitter(void)
{
	static const struct {
		int draw;
		uint64_t ms;
	} want[] = {{0, 800}, {40, 1200}, {20, 1000}};
	struct token_store *ts;
	struct gen *g;
	size_t i;
	int n;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		ts = store();
		g = gen_of(AAUTH_FILE);
		nfetches = 0;
		fake_rand = want[i].draw;
		token_store_sync(ts, g);
		finish(AAUTH_TRANSIENT, NULL, NULL, -1, 0);
		n = nfetches;
		fake_now += want[i].ms - 1;
		token_store_tick(ts);
		CHECK(nfetches == n);
		fake_now += 1;
		token_store_tick(ts);
		CHECK(nfetches == n + 1);
		token_store_free(ts);
		gen_unref(g);
	}
	fake_rand = -1;
}

static void
test_invalid_grant_and_consent(void)
{
	struct token_store *ts = store();
	struct gen *g = gen_of(AAUTH_FILE);
	struct token_value *v;
	struct token_fail f;
	struct token_waiter *tw;
	struct waited w, cw;
	char err[ERR_MAX];

	memset(&w, 0, sizeof(w));
	memset(&cw, 0, sizeof(cw));
	nfetches = 0;
	token_store_sync(ts, g);
	finish(AAUTH_OK, "tok-1", "rt-1", 10, 0);
	fake_now += 8000;
	token_store_tick(ts);
	CHECK(last_fetch()->type == AAUTH_REFRESH);
	/* invalid_grant on refresh: an auth at once, without the refresh
	 * token. */
	finish(AAUTH_INVALID_GRANT, NULL, NULL, -1, 0);
	CHECK(nfetches == 3 && last_fetch()->type == AAUTH_AUTH &&
	      last_fetch()->refresh[0] == '\0');
	/* The auth asks for consent; the token has expired meanwhile. */
	fake_now += 3000;
	CHECK(acquire(ts, g, &w, &v, &f, &tw) == 1);
	finish(AAUTH_CONSENT, NULL, NULL, -1, 0);
	CHECK(w.called == 1 && w.status == 403 &&
	      strstr(w.url, "authorize") != NULL);
	CHECK(state(ts) == TOKEN_CONSENT);
	CHECK(acquire(ts, g, &w, &v, &f, &tw) == -1 && f.status == 403);
	CHECK(strcmp(f.code, "consent_required") == 0);
	/* The browser brings a code. */
	CHECK(token_consent_code(ts, g, &g->cfg->resources[0], "code-9",
	                         waited_cb, &cw, &tw, err) == 0);
	CHECK(last_fetch()->type == AAUTH_CODE &&
	      strcmp(last_fetch()->code, "code-9") == 0);
	finish(AAUTH_OK, "tok-2", "rt-2", 10, 0);
	CHECK(cw.called == 1 && cw.v != NULL);
	CHECK(state(ts) == TOKEN_VALID);
	/* No consent pending: a second code is refused. */
	CHECK(token_consent_code(ts, g, &g->cfg->resources[0], "code-9",
	                         waited_cb, &cw, &tw, err) == -1);
	/* A consent prompt that lapses is asked again. */
	fake_now += 8000;
	token_store_tick(ts);
	finish(AAUTH_INVALID_GRANT, NULL, NULL, -1, 0);
	finish(AAUTH_CONSENT, NULL, NULL, -1, 0);
	fake_now += 600000;
	token_store_tick(ts);
	CHECK(last_fetch()->type == AAUTH_AUTH && !last_fetch()->done);
	token_value_unref(w.v);
	token_value_unref(cw.v);
	token_store_free(ts);
	gen_unref(g);
}

static void
test_invalidate_after_401(void)
{
	struct token_store *ts = store();
	struct gen *g = gen_of(AAUTH_FILE);
	const struct config_resource *r = &g->cfg->resources[0];
	struct token_value *v, *v2;
	struct token_fail f;
	struct token_waiter *tw;
	struct waited w;
	int n;

	memset(&w, 0, sizeof(w));
	nfetches = 0;
	token_store_sync(ts, g);
	finish(AAUTH_OK, "tok-1", "rt-1", 100, 0);
	CHECK(acquire(ts, g, &w, &v, &f, &tw) == 0);
	/* Refused right after it came: not refreshed again (rate bound). */
	token_invalidate(ts, g, r, v, NULL);
	CHECK(nfetches == 1);
	fake_now += 5000;
	token_invalidate(ts, g, r, v, NULL);
	CHECK(nfetches == 2 && last_fetch()->type == AAUTH_REFRESH);
	/* Many 401s, one refresh. */
	token_invalidate(ts, g, r, v, NULL);
	CHECK(nfetches == 2);
	/* The retry waits for the refresh: the refused token is withheld. */
	CHECK(acquire(ts, g, &w, &v2, &f, &tw) == 1);
	/* The refresh fails: the token goes back into service. */
	finish(AAUTH_TRANSIENT, NULL, NULL, -1, 0);
	CHECK(w.called == 1 && w.v == v);
	/* A 401 for a token that is no longer current changes nothing. */
	fake_now += 1000;
	token_store_tick(ts);
	finish(AAUTH_OK, "tok-2", NULL, 100, 0);
	n = nfetches;
	fake_now += 5000;
	token_invalidate(ts, g, r, v, NULL);
	CHECK(nfetches == n);
	token_value_unref(v);
	token_value_unref(w.v);
	token_store_free(ts);
	gen_unref(g);
}

static void
test_challenge_resource_and_reload(void)
{
	struct token_store *ts = store();
	struct gen *g =
	    gen_of("{\"issuer\": \"https://issuer.test\", \"agent_token\": "
	           "{\"file\": \"/a\"}, \"resource_token\": \"challenge\"}");
	struct gen *g2 = gen_of(AAUTH_FILE);
	const struct config_resource *r = &g->cfg->resources[0];
	struct token_value *v;
	struct token_fail f;
	struct token_waiter *tw;
	struct waited w;

	memset(&w, 0, sizeof(w));
	nfetches = 0;
	token_store_sync(ts, g);
	CHECK(nfetches == 0); /* nothing to ask with yet */
	/* Go without a token, so the resource can challenge. */
	CHECK(acquire(ts, g, &w, &v, &f, &tw) == 0 && v == NULL);
	token_invalidate(ts, g, r, NULL, "rt-challenge");
	CHECK(nfetches == 1 && last_fetch()->type == AAUTH_AUTH &&
	      strcmp(last_fetch()->resource, "rt-challenge") == 0);
	CHECK(acquire(ts, g, &w, &v, &f, &tw) == 1);
	finish(AAUTH_OK, "tok-1", "rt-1", 100, 0);
	CHECK(w.v != NULL);
	/* No fresh challenge at refresh time: used until it expires. */
	fake_now += 300000;
	token_store_tick(ts);
	CHECK(nfetches == 1);
	fake_now -= 300000;

	/* A reload that changes the resource's aauth settings starts
	 * afresh: the token is dropped, a new auth starts. */
	token_store_sync(ts, g2);
	CHECK(nfetches == 2 && last_fetch()->type == AAUTH_AUTH &&
	      last_fetch()->resource[0] == '\0');
	token_store_sync(ts, g2); /* the same settings: nothing new */
	CHECK(nfetches == 2);
	token_value_unref(w.v);
	token_store_free(ts);
	CHECK(last_fetch()->cancelled);
	gen_unref(g);
	gen_unref(g2);
}

/* --- the pure pieces
 * ----------------------------------------------------------
 */

static void
test_parse_response(void)
{
	struct aauth_result r;

	memset(&r, 0, sizeof(r));
#define P(status, body) aauth_parse_response(status, body, strlen(body), 0, &r)
	P(200, "{\"request_type\":\"auth\",\"auth_token\":\"at.1\","
	       "\"token_type\":\"auth+jwt\",\"expires_in\":900,"
	       "\"refresh_token\":\"rt\",\"scope\":\"a b\"}");
	CHECK(r.outcome == AAUTH_OK && strcmp(r.token, "at.1") == 0);
	CHECK(r.expires_in == 900 && strcmp(r.refresh_token, "rt") == 0);
	CHECK(strcmp(r.scope, "a b") == 0);
	P(200, "{\"access_token\":\"at.2\",\"token_type\":\"Bearer\"}");
	CHECK(r.outcome == AAUTH_OK && strcmp(r.token, "at.2") == 0 &&
	      r.expires_in == -1 && r.refresh_token == NULL);
	P(200, "{\"request_token\":\"rq\",\"authorization_uri\":"
	       "\"https://i.test/portal/aauth/authorize?request_token=rq\","
	       "\"expires_in\":600}");
	CHECK(r.outcome == AAUTH_CONSENT && r.consent_expires_in == 600);
	CHECK(strstr(r.consent_url, "request_token=rq") != NULL);
	P(401, "{\"error\":\"authorization_required\",\"auth_url\":"
	       "\"https://i.test/a\",\"request_token\":\"rq\"}");
	CHECK(r.outcome == AAUTH_CONSENT);
	/* A consent URL that could not be shown safely is garbage. */
	P(200, "{\"request_token\":\"rq\",\"authorization_uri\":"
	       "\"javascript:alert(1)\"}");
	CHECK(r.outcome == AAUTH_TRANSIENT);
	P(200, "");
	CHECK(r.outcome == AAUTH_TRANSIENT && strstr(r.error, "empty"));
	P(200, "<html>");
	CHECK(r.outcome == AAUTH_TRANSIENT && strstr(r.error, "not a JSON"));
	P(200, "{\"auth_token\":\"a\\r\\nX-Evil: 1\"}");
	CHECK(r.outcome == AAUTH_TRANSIENT && r.token == NULL);
	P(200, "{\"auth_token\":\"ok\",\"refresh_token\":\"a b\"}");
	CHECK(r.outcome == AAUTH_TRANSIENT && r.token == NULL);
	P(200, "{\"auth_token\":42}");
	CHECK(r.outcome == AAUTH_TRANSIENT);
	P(200, "{\"token_type\":\"x\"}");
	CHECK(r.outcome == AAUTH_TRANSIENT);
	P(500, "oops");
	CHECK(r.outcome == AAUTH_TRANSIENT && strstr(r.error, "500"));
	aauth_parse_response(429, "", 0, 30, &r);
	CHECK(r.outcome == AAUTH_TRANSIENT && r.retry_after == 30);
	P(400, "{\"error\":\"invalid_grant\"}");
	CHECK(r.outcome == AAUTH_INVALID_GRANT);
	P(400, "{\"error\":\"invalid_scope\",\"error_description\":"
	       "\"no\\u0001such\\nscope\"}");
	CHECK(r.outcome == AAUTH_PERMANENT && strstr(r.error, "invalid_scope"));
	CHECK(strchr(r.error, '\n') == NULL);
	P(401, "{\"error\":\"invalid_agent_token\"}");
	CHECK(r.outcome == AAUTH_PERMANENT);
	P(404, "");
	CHECK(r.outcome == AAUTH_PERMANENT);
#undef P
	aauth_result_clear(&r);
}

static void
test_challenge_and_callback_query(void)
{
	const char *h1 = "requirement=auth-token; resource-token=\"eyJ.a.b\"";
	const char *h2 = "requirement=auth-token, resource-token=\"rt2\"";
	const char *bad[] = {
	    "requirement=person-token; resource-token=\"x\"",
	    "requirement=auth-token",
	    "requirement=auth-token; resource-token=\"a b\"",
	    "requirement=auth-token; resource-token=x\"",
	    "",
	};
	char *s, *code, *error;
	size_t i;

	s = aauth_challenge_parse(h1, strlen(h1));
	CHECK_STREQ(s, "eyJ.a.b");
	free(s);
	s = aauth_challenge_parse(h2, strlen(h2));
	CHECK_STREQ(s, "rt2");
	free(s);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(aauth_challenge_parse(bad[i], strlen(bad[i])) == NULL);

	CHECK(consent_query("code=a%2Fb+c&state=1", &code, &error) == 0);
	CHECK_STREQ(code, "a/b c");
	CHECK(error == NULL);
	free(code);
	CHECK(consent_query("error=access_denied", &code, &error) == 0);
	CHECK(code == NULL);
	CHECK_STREQ(error, "access_denied");
	free(error);
	CHECK(consent_query("code=a&code=b", &code, &error) == -1);
	CHECK(consent_query("code=%4", &code, &error) == -1);
	CHECK(consent_query("code=%00x", &code, &error) == -1);
	CHECK(consent_query("", &code, &error) == 0 && code == NULL);
	CHECK(consent_query(NULL, &code, &error) == 0);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	log_init(LOG_ERROR, stderr);
	test_first_fetch_refresh_and_single_flight();
	test_backoff_expiry_and_recovery();
	test_jitter();
	test_invalid_grant_and_consent();
	test_invalidate_after_401();
	test_challenge_resource_and_reload();
	test_parse_response();
	test_challenge_and_callback_query();
	return check_done("token");
}
