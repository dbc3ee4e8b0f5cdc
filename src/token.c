/*
 * token: per-resource token state machines. A static token_file is read
 * on demand (a stat per batch of callbacks; re-read when its identity
 * changes). An aauth resource runs the machine in token.h: every decision
 * is taken in token_run from the entry's times against the injected clock,
 * so the same code runs under libevent timers and under a unit test's
 * fake clock. Lifetimes are measured from receipt on the monotonic clock.
 */
#include "token.h"

#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gen.h"
#include "jwt.h"
#include "log.h"
#include "metrics.h"
#include "token_src.h"
#include "util.h"

/* Backoff: 1 s doubling, at most 60 s, jittered by ±20%. */
#define TOKEN_BACKOFF_FIRST_MS 1000
#define TOKEN_BACKOFF_MAX_MS   60000
#define TOKEN_LAST_TRY_MS      500
/* A token refused within this time of its arrival is not refreshed
 * again: a resource that refuses every token must not turn each request
 * into a token request. */
#define TOKEN_FORCE_MIN_AGE_MS 1000
/* When an answer says nothing about the lifetime (no expires_in, no JWT
 * exp): assume a short one; a 401 forces a refresh anyway. */
#define TOKEN_LIFETIME_DEFAULT_S 300
#define TOKEN_CONSENT_DEFAULT_S  600
/* Longer lifetimes are taken as this (an issuer's 2^62 must not wrap the
 * millisecond arithmetic). */
#define TOKEN_LIFETIME_MAX_S (366 * 86400)
/* A challenge's resource token counts as fresh this long (they live
 * about 300 s). */
#define TOKEN_CHALLENGE_FRESH_MS 240000

struct token_waiter {
	struct token_entry *e;
	struct token_waiter **list; /* the head of the list it is on */
	struct token_waiter *prev, *next;
	token_ready_cb cb;
	void *arg;
};

struct token_entry {
	struct token_store *ts;
	char *name;
	struct token_value *cur; /* the token handed out, or NULL */

	/* token_file */
	char *path;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim;
	int warned_mode;
	int memo; /* checked in this batch of callbacks (see token_file) */

	/* aauth */
	char *fingerprint; /* NULL: a token_file entry */
	struct gen *gen;   /* the latest generation: key and config */
	const struct config_resource *res; /* in gen->cfg */
	enum token_state state;
	uint64_t received_ms, refresh_ms, expires_ms; /* monotonic; cur */
	int64_t received_unix, expires_unix;
	char *refresh; /* refresh token */
	char *scope;
	char *challenge; /* resource token from a 401 challenge */
	uint64_t challenge_ms;
	char *code; /* from the consent callback, until exchanged */
	char *consent_url;
	uint64_t consent_until_ms;
	int forced; /* cur was refused by the resource: not handed out
	               while its successor is fetched */
	int had_token;
	struct aauth_op *op;
	enum aauth_type op_type;
	int op_challenge; /* the op uses (and consumes) the challenge */
	unsigned failures;
	uint64_t retry_ms; /* BACKOFF/EXPIRED: the next attempt; 0: none */
	int permanent;     /* the last failure was not a passing one */
	char last_error[ERR_MAX];
	char logged_kind[128]; /* the failure last logged (aauth kind) */
	struct token_waiter *waiters;
	struct event *timer;
	uint64_t timer_at; /* when the timer fires; 0: not armed */
};

struct token_store {
	struct event_base *base;
	struct token_env env;
	struct aauth *aauth; /* the real fetcher (token_store_new) */
	struct token_entry **v;
	size_t n, cap;
	struct event *ev_forget; /* clears the file memos after the batch */
	int memos;
	struct metrics *metrics; /* token fetches by type and outcome; NULL */
};

static void token_run(struct token_entry *e);

const char *
token_state_name(enum token_state s)
{
	static const char *const names[] = {"empty",      "fetching", "valid",
	                                    "refreshing", "backoff",  "consent",
	                                    "expired"};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* --- values ----------------------------------------------------------- */

static struct token_value *
token_value_new(const char *s, char *err)
{
	struct token_value *v = xcalloc(1, sizeof(*v));

	v->refs = 1;
	v->size = strlen(s) + 1;
	v->value = sodium_malloc(v->size);
	if (v->value == NULL) {
		free(v);
		err_set(err, "cannot allocate secure memory for a token");
		return NULL;
	}
	memcpy(v->value, s, v->size);
	log_token_hash(v->value, v->hash);
	return v;
}

struct token_value *
token_value_ref(struct token_value *v)
{
	if (v != NULL)
		v->refs++;
	return v;
}

void
token_value_unref(struct token_value *v)
{
	if (v == NULL || --v->refs > 0)
		return;
	sodium_free(v->value); /* wipes */
	free(v);
}

/* --- the real environment ------------------------------------------------ */

static uint64_t
token_real_mono(void *arg)
{
	return util_mono_ms();
}

static int64_t
token_real_unix(void *arg)
{
	return util_now();
}

static uint32_t
token_real_random(void *arg, uint32_t n)
{
	return n ? randombytes_uniform(n) : 0;
}

static struct aauth_op *
token_real_fetch(void *arg, const struct aauth_req *req, aauth_cb cb,
                 void *cbarg)
{
	return aauth_fetch(arg, req, cb, cbarg);
}

static void
token_real_cancel(void *arg, struct aauth_op *op)
{
	aauth_cancel(op);
}

/* --- store ---------------------------------------------------------------- */

static void
token_forget_cb(evutil_socket_t fd, short what, void *arg)
{
	struct token_store *ts = arg;
	size_t i;

	for (i = 0; i < ts->n; i++)
		ts->v[i]->memo = 0;
	ts->memos = 0;
}

struct token_store *
token_store_new_env(struct event_base *base, const struct token_env *env)
{
	struct token_store *ts = xcalloc(1, sizeof(*ts));

	ts->base = base;
	ts->env = *env;
	if (base != NULL)
		ts->ev_forget = event_new(base, -1, 0, token_forget_cb, ts);
	return ts;
}

struct token_store *
token_store_new(struct event_base *base, struct upstream *up)
{
	struct token_env env;
	struct token_store *ts;
	struct aauth *a = aauth_new(base, up);

	memset(&env, 0, sizeof(env));
	env.mono_ms = token_real_mono;
	env.unix_s = token_real_unix;
	env.random = token_real_random;
	env.fetch = token_real_fetch;
	env.cancel = token_real_cancel;
	env.arg = a;
	ts = token_store_new_env(base, &env);
	ts->aauth = a;
	return ts;
}

static uint64_t
token_now(const struct token_entry *e)
{
	return e->ts->env.mono_ms(e->ts->env.arg);
}

static void
token_waiter_unlink(struct token_waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		*w->list = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
}

/* Wake every waiter of e: with v (a reference each) or with f. A waiter's
 * callback may cancel others or add new ones: those wait for the next
 * outcome. */
static void
token_wake(struct token_entry *e, struct token_value *v,
           const struct token_fail *f)
{
	struct token_waiter *list = e->waiters, *w;

	e->waiters = NULL;
	for (w = list; w != NULL; w = w->next)
		w->list = &list;
	while ((w = list) != NULL) {
		token_waiter_unlink(w);
		w->cb(w->arg, token_value_ref(v), f);
		free(w);
	}
}

static void
token_fail_init(struct token_fail *f, const struct token_entry *e)
{
	memset(f, 0, sizeof(*f));
	f->status = 503;
	f->code = "token_unavailable";
	f->state = token_state_name(e->state);
	f->last_error = e->last_error[0] ? e->last_error : NULL;
}

/* A person must approve first: 403 with the authorization URL. */
static void
token_fail_consent(struct token_fail *f, const struct token_entry *e)
{
	f->status = 403;
	f->code = "consent_required";
	f->url = e->consent_url;
	snprintf(f->detail, sizeof(f->detail),
	         "a person must approve this agent's access to %s: open "
	         "authorization_uri in a browser%s",
	         e->name,
	         e->res->aauth->redirect_uri
	             ? "; requests resume by themselves once it is approved"
	             : " (resources.NAME.aauth.redirect_uri is not set, so "
	               "the proxy cannot receive the approval)");
}

static void
token_entry_clear(struct token_entry *e)
{
	struct token_fail f;

	if (e->op != NULL)
		e->ts->env.cancel(e->ts->env.arg, e->op);
	e->op = NULL;
	if (e->waiters != NULL) {
		token_fail_init(&f, e);
		snprintf(f.detail, sizeof(f.detail),
		         "the settings of resource %s changed while this "
		         "request waited for its token; send it again",
		         e->name);
		token_wake(e, NULL, &f);
	}
	token_value_unref(e->cur);
	e->cur = NULL;
	token_src_wipe(e->refresh);
	token_src_wipe(e->challenge);
	token_src_wipe(e->code);
	e->refresh = e->challenge = e->code = NULL;
	free(e->scope);
	free(e->consent_url);
	e->scope = e->consent_url = NULL;
	e->forced = e->had_token = 0;
	e->failures = 0;
	e->retry_ms = 0;
	e->permanent = 0;
	e->last_error[0] = e->logged_kind[0] = '\0';
	e->state = TOKEN_EMPTY;
	e->memo = 0;
}

static void
token_entry_free(struct token_entry *e)
{
	token_entry_clear(e);
	if (e->timer != NULL)
		event_free(e->timer);
	gen_unref(e->gen);
	free(e->fingerprint);
	free(e->path);
	free(e->name);
	free(e);
}

void
token_store_free(struct token_store *ts)
{
	size_t i;

	if (ts == NULL)
		return;
	for (i = 0; i < ts->n; i++)
		token_entry_free(ts->v[i]);
	if (ts->ev_forget)
		event_free(ts->ev_forget);
	free(ts->v);
	aauth_free(ts->aauth);
	free(ts);
}

static void
token_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct token_entry *e = arg;

	e->timer_at = 0;
	token_run(e);
}

static struct token_entry *
token_find(struct token_store *ts, const char *name)
{
	size_t i;

	for (i = 0; i < ts->n; i++)
		if (strcmp(ts->v[i]->name, name) == 0)
			return ts->v[i];
	return NULL;
}

static void token_state_restore(struct token_entry *e);

/* Point e at r of generation g; a changed aauth setup starts afresh. */
static void
token_adopt(struct token_entry *e, struct gen *g,
            const struct config_resource *r)
{
	const char *fp = r->aauth ? r->aauth->fingerprint : NULL;

	if ((fp == NULL) != (e->fingerprint == NULL) ||
	    (fp != NULL && strcmp(fp, e->fingerprint) != 0)) {
		if (e->fingerprint != NULL || e->path != NULL)
			log_info("resource %s: token settings changed; "
			         "starting afresh",
			         e->name);
		token_entry_clear(e);
		free(e->fingerprint);
		e->fingerprint = fp ? xstrdup(fp) : NULL;
		free(e->path);
		e->path = NULL;
		if (e->gen != g) {
			gen_unref(e->gen);
			e->gen = g ? gen_ref(g) : NULL;
		}
		e->res = r;
		if (fp != NULL)
			token_state_restore(e);
		return;
	}
	if (e->gen != g && g != NULL) {
		gen_unref(e->gen);
		e->gen = gen_ref(g);
	}
	e->res = r;
}

static struct token_entry *
token_entry_get(struct token_store *ts, struct gen *g,
                const struct config_resource *r)
{
	struct token_entry *e = token_find(ts, r->name);

	if (e != NULL)
		return e;
	if (ts->n == ts->cap) {
		ts->cap = ts->cap ? ts->cap * 2 : 8;
		ts->v = xrealloc(ts->v, ts->cap * sizeof(*ts->v));
	}
	e = xcalloc(1, sizeof(*e));
	ts->v[ts->n++] = e;
	e->ts = ts;
	e->name = xstrdup(r->name);
	if (ts->base != NULL)
		e->timer = evtimer_new(ts->base, token_timer_cb, e);
	token_adopt(e, g, r);
	return e;
}

/* --- token_file ------------------------------------------------------------
 */

static int
token_same_file(const struct token_entry *e, const struct stat *st)
{
	return e->cur != NULL && e->dev == st->st_dev && e->ino == st->st_ino &&
	       e->size == st->st_size && e->mtim.tv_sec == st->st_mtim.tv_sec &&
	       e->mtim.tv_nsec == st->st_mtim.tv_nsec;
}

/* The token in a file's bytes: surrounding whitespace trimmed, and only
 * visible ASCII inside, so a value can never inject a header. Sets
 * [*start, *end) or returns -1 with err saying what is wrong. */
static int
token_parse(const struct buf *b, const char *path, size_t *start, size_t *end,
            char *err)
{
	size_t s = 0, e = b->len, i;

	while (s < e && (b->data[s] == ' ' || b->data[s] == '\t' ||
	                 b->data[s] == '\r' || b->data[s] == '\n'))
		s++;
	while (e > s && (b->data[e - 1] == ' ' || b->data[e - 1] == '\t' ||
	                 b->data[e - 1] == '\r' || b->data[e - 1] == '\n'))
		e--;
	if (e == s) {
		err_set(err, "token file %s is empty", path);
		return -1;
	}
	for (i = s; i < e; i++) {
		unsigned char ch = (unsigned char)b->data[i];

		if (ch < 0x21 || ch > 0x7e) {
			err_set(
			    err,
			    "token file %s: byte %zu (0x%02x) is not allowed "
			    "in a Bearer token (visible ASCII only)",
			    path, i - s, ch);
			return -1;
		}
	}
	*start = s;
	*end = e;
	return 0;
}

static int
token_file_reload(struct token_entry *e, const struct stat *st, char *err)
{
	struct token_value *v;
	char *s;

	if (token_src_read_file(e->path, &s, err) == -1)
		return -1;
	v = token_value_new(s, err);
	token_src_wipe(s);
	if (v == NULL)
		return -1;
	token_value_unref(e->cur);
	e->cur = v;
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->size = st->st_size;
	e->mtim = st->st_mtim;
	if ((st->st_mode & 077) != 0 && !e->warned_mode) {
		log_warn("token file %s is readable by group or others; "
		         "chmod 600 it",
		         e->path);
		e->warned_mode = 1;
	}
	log_info("resource %s: token loaded from %s (sha256 %s)", e->name,
	         e->path, v->hash);
	return 0;
}

/* Each call checks the token file (a stat). The requests of one batch of
 * event callbacks — the same instant as far as the proxy can tell — share
 * one check: the memo is cleared by an event activated here, which
 * libevent runs after the callbacks already queued in this iteration. */
static int
token_file(struct token_entry *e, const struct config_resource *r,
           struct token_value **out, struct token_fail *fail)
{
	char err[ERR_MAX];
	struct stat st;

	if (e->path == NULL || strcmp(e->path, r->token_file) != 0) {
		token_value_unref(e->cur);
		e->cur = NULL;
		free(e->path);
		e->path = xstrdup(r->token_file);
		e->warned_mode = 0;
		e->memo = 0;
	}
	if (e->memo && e->cur != NULL) {
		*out = token_value_ref(e->cur);
		return 0;
	}
	if (stat(r->token_file, &st) == -1) {
		/* A file that went away means the token was withdrawn:
		 * fail closed rather than keep using the old one. */
		err_set(err, "token file %s: %s", r->token_file,
		        strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(err, "token file %s is not a regular file",
		        r->token_file);
		goto fail;
	}
	if (!token_same_file(e, &st) && token_file_reload(e, &st, err) == -1)
		goto fail;
	if (e->ts->ev_forget != NULL) {
		e->memo = 1;
		if (!e->ts->memos) {
			event_active(e->ts->ev_forget, EV_TIMEOUT, 1);
			e->ts->memos = 1;
		}
	}
	*out = token_value_ref(e->cur);
	return 0;
fail:
	token_value_unref(e->cur);
	e->cur = NULL;
	memset(fail, 0, sizeof(*fail));
	fail->status = 503;
	fail->code = "token_unavailable";
	fail->state = "empty";
	snprintf(fail->detail, sizeof(fail->detail), "%s", err);
	return -1;
}

/* --- the aauth machine ------------------------------------------------------
 */

/* The state that the entry's facts amount to; logged when it changes. */
static void
token_settle(struct token_entry *e)
{
	enum token_state s, old = e->state;

	if (e->op != NULL)
		s = e->cur && !e->forced ? TOKEN_REFRESHING : TOKEN_FETCHING;
	else if (e->consent_url != NULL && e->cur == NULL)
		s = TOKEN_CONSENT;
	else if (e->cur != NULL)
		s = e->retry_ms ? TOKEN_BACKOFF : TOKEN_VALID;
	else if (e->retry_ms)
		s = e->had_token ? TOKEN_EXPIRED : TOKEN_BACKOFF;
	else
		s = TOKEN_EMPTY;
	e->state = s;
	if (s != old) {
		log_debug("resource %s: token state %s -> %s", e->name,
		          token_state_name(old), token_state_name(s));
	}
}

static void
token_arm(struct token_entry *e)
{
	uint64_t now = token_now(e), due = 0, t[4];
	struct timeval tv;
	size_t i, n = 0;

	if (e->cur != NULL)
		t[n++] = e->expires_ms;
	if (e->op == NULL) {
		if (e->cur != NULL && !e->retry_ms && e->consent_url == NULL)
			t[n++] = e->refresh_ms;
		if (e->retry_ms)
			t[n++] = e->retry_ms;
		if (e->consent_url != NULL)
			t[n++] = e->consent_until_ms;
	}
	for (i = 0; i < n; i++)
		if (due == 0 || t[i] < due)
			due = t[i];
	if (e->timer == NULL)
		return;
	if (due == 0) {
		evtimer_del(e->timer);
		e->timer_at = 0;
		return;
	}
	if (e->timer_at == due)
		return;
	due = due > now ? due - now : 0;
	tv.tv_sec = (time_t)(due / 1000);
	tv.tv_usec = (suseconds_t)((due % 1000) * 1000);
	evtimer_add(e->timer, &tv);
	e->timer_at = now + due;
}

static int
token_challenge_fresh(const struct token_entry *e, uint64_t now)
{
	return e->challenge != NULL &&
	       now < e->challenge_ms + TOKEN_CHALLENGE_FRESH_MS;
}

static void token_fetched(void *arg, struct aauth_result *res);

/* Start the one fetch: a code after consent, else a refresh while there
 * is a refresh token, else an auth. 0 when it cannot start (a challenge
 * resource without a fresh challenge). */
static int
token_start(struct token_entry *e)
{
	const struct config_aauth *ca = e->res->aauth;
	uint64_t now = token_now(e);
	struct aauth_req req;

	if (e->op != NULL)
		return 1;
	memset(&req, 0, sizeof(req));
	req.gen = e->gen;
	req.res = e->res;
	if (e->code != NULL) {
		req.type = AAUTH_CODE;
		req.code = e->code;
	} else {
		req.type = e->refresh ? AAUTH_REFRESH : AAUTH_AUTH;
		req.refresh_token = e->refresh;
		if (token_challenge_fresh(e, now)) {
			req.resource_token = e->challenge;
		} else if (ca->resource_token.kind == CONFIG_TSRC_CHALLENGE) {
			/* Nothing to ask with: the next request goes without
			 * a token and brings a challenge back. */
			e->retry_ms = 0;
			return 0;
		}
	}
	e->op_type = req.type;
	e->op_challenge = req.resource_token != NULL;
	e->retry_ms = 0;
	log_debug("resource %s: %s request to %s", e->name,
	          aauth_type_name(req.type), ca->issuer.text);
	e->op = e->ts->env.fetch(e->ts->env.arg, &req, token_fetched, e);
	token_settle(e);
	token_arm(e);
	return 1;
}

/* Forget an expired token. */
static void
token_expire(struct token_entry *e, uint64_t now)
{
	if (e->cur == NULL || now < e->expires_ms)
		return;
	log_warn("resource %s: token (sha256 %s) expired%s%s", e->name,
	         e->cur->hash, e->last_error[0] ? "; last error: " : "",
	         e->last_error);
	token_value_unref(e->cur);
	e->cur = NULL;
	e->forced = 0;
}

/* Do what is due at the current time, then re-arm. */
static void
token_run(struct token_entry *e)
{
	uint64_t now = token_now(e);

	if (e->fingerprint == NULL)
		return;
	token_expire(e, now);
	if (e->op == NULL) {
		if (e->consent_url != NULL && now >= e->consent_until_ms) {
			/* The prompt lapsed unanswered: ask again. */
			log_info("resource %s: the consent request expired; "
			         "asking again",
			         e->name);
			free(e->consent_url);
			e->consent_url = NULL;
			token_start(e);
		} else if (e->retry_ms && now >= e->retry_ms) {
			token_start(e);
		} else if (e->cur != NULL && !e->retry_ms &&
		           e->consent_url == NULL && now >= e->refresh_ms &&
		           !token_start(e)) {
			/* No fresh challenge to refresh with: the token is
			 * used until it expires, then a request fetches the
			 * next challenge. */
			e->refresh_ms = e->expires_ms;
		}
	}
	token_settle(e);
	token_arm(e);
}

void
token_store_tick(struct token_store *ts)
{
	size_t i;

	for (i = 0; i < ts->n; i++)
		token_run(ts->v[i]);
}

static void
token_state_save(struct token_entry *e)
{
	const struct config_aauth *ca = e->res->aauth;
	struct token_saved sv;
	char err[ERR_MAX];

	if (ca->state_file == NULL)
		return;
	memset(&sv, 0, sizeof(sv));
	sv.token = e->cur ? e->cur->value : NULL;
	sv.refresh_token = e->refresh;
	sv.scope = e->scope;
	sv.received_at = e->received_unix;
	sv.expires_at = e->cur ? e->expires_unix : 0;
	if (token_src_state_save(ca->state_file, ca->issuer.text, &sv, err) ==
	    -1)
		log_warn("resource %s: cannot write state_file: %s", e->name,
		         err);
}

/* A new generation's resource with a state_file: the token and refresh
 * token it holds, so a restart needs no new auth. */
static void
token_state_restore(struct token_entry *e)
{
	const struct config_aauth *ca = e->res->aauth;
	int64_t unow = e->ts->env.unix_s(e->ts->env.arg), life, left;
	uint64_t now = token_now(e);
	struct token_saved sv;
	char err[ERR_MAX];
	int rc;

	if (ca->state_file == NULL)
		return;
	rc = token_src_state_load(ca->state_file, ca->issuer.text, &sv, err);
	if (rc == -1) {
		log_warn("resource %s: ignoring state_file: %s", e->name, err);
		return;
	}
	if (rc == 1)
		return;
	e->refresh = sv.refresh_token;
	sv.refresh_token = NULL;
	if (sv.scope != NULL) {
		e->scope = sv.scope;
		sv.scope = NULL;
	}
	left = sv.expires_at - unow;
	if (left > TOKEN_LIFETIME_MAX_S)
		left = TOKEN_LIFETIME_MAX_S;
	if (sv.token != NULL && left > 1 &&
	    (e->cur = token_value_new(sv.token, err)) != NULL) {
		life = sv.expires_at - sv.received_at;
		if (sv.received_at <= 0 || life < left || life > 2 * left + 60)
			life = left;
		e->received_unix = sv.received_at;
		e->expires_unix = sv.expires_at;
		e->expires_ms = now + (uint64_t)left * 1000;
		/* The refresh stays at 80% of the whole lifetime. */
		e->refresh_ms = left * 1000 > life * 200
		                    ? now + (uint64_t)(left * 1000 - life * 200)
		                    : now;
		e->had_token = 1;
		log_info("resource %s: token (sha256 %s) from %s, valid for "
		         "%lld s",
		         e->name, e->cur->hash, ca->state_file,
		         (long long)left);
	} else if (e->refresh != NULL) {
		log_info("resource %s: refresh token from %s", e->name,
		         ca->state_file);
	}
	token_saved_clear(&sv);
}

/* The jittered delay before attempt failures+1. */
static uint64_t
token_backoff(struct token_entry *e, unsigned retry_after_s)
{
	uint64_t d, now = token_now(e);
	unsigned k = e->failures > 0 ? e->failures - 1 : 0;

	if (e->permanent)
		d = TOKEN_BACKOFF_MAX_MS;
	else
		d = k >= 6 ? TOKEN_BACKOFF_MAX_MS
		           : (uint64_t)TOKEN_BACKOFF_FIRST_MS << k;
	if (d > TOKEN_BACKOFF_MAX_MS)
		d = TOKEN_BACKOFF_MAX_MS;
	/* ±20%: many proxies restarted together do not retry together. */
	d = d * (80 + e->ts->env.random(e->ts->env.arg, 41)) / 100;
	if (retry_after_s > 0) {
		if (d < (uint64_t)retry_after_s * 1000)
			d = (uint64_t)retry_after_s * 1000;
		return d;
	}
	/* Never past the expiry of the token still in use: the last try
	 * comes while it is still good (TOKEN_LAST_TRY_MS before), so
	 * requests do not see the gap. Closer than that, the token is let
	 * go rather than retried in a burst. */
	if (e->cur != NULL && e->expires_ms > now + TOKEN_LAST_TRY_MS * 2 &&
	    now + d > e->expires_ms - TOKEN_LAST_TRY_MS)
		d = e->expires_ms - TOKEN_LAST_TRY_MS - now;
	return d;
}

static void
token_got(struct token_entry *e, struct aauth_result *res)
{
	int64_t unow = e->ts->env.unix_s(e->ts->env.arg), exp, life;
	uint64_t now = token_now(e);
	struct token_value *v;
	char err[ERR_MAX];

	v = token_value_new(res->token, err);
	if (v == NULL) {
		log_error("resource %s: %s", e->name, err);
		return;
	}
	life = res->expires_in;
	if (life <= 0 && jwt_exp(res->token, &exp) == 0 && exp > unow)
		life = exp - unow;
	if (life > TOKEN_LIFETIME_MAX_S)
		life = TOKEN_LIFETIME_MAX_S;
	if (life <= 0) {
		life = TOKEN_LIFETIME_DEFAULT_S;
		log_warn("resource %s: the issuer gave no lifetime (no "
		         "expires_in, no JWT exp); assuming %d s",
		         e->name, TOKEN_LIFETIME_DEFAULT_S);
	}
	token_value_unref(e->cur);
	e->cur = v;
	e->forced = 0;
	e->had_token = 1;
	e->received_unix = unow;
	e->expires_unix = unow + life;
	e->received_ms = now;
	e->expires_ms = now + (uint64_t)life * 1000;
	e->refresh_ms = now + (uint64_t)life * 800;
	if (res->refresh_token != NULL) {
		/* Not rotated by the issuer unless it sends a new one. */
		token_src_wipe(e->refresh);
		e->refresh = res->refresh_token;
		res->refresh_token = NULL;
	}
	if (res->scope != NULL) {
		free(e->scope);
		e->scope = res->scope;
		res->scope = NULL;
	}
	token_src_wipe(e->code);
	e->code = NULL;
	free(e->consent_url);
	e->consent_url = NULL;
	e->failures = 0;
	e->permanent = 0;
	e->retry_ms = 0;
	e->last_error[0] = e->logged_kind[0] = '\0';
	log_info("resource %s: token (sha256 %s) from %s request, valid for "
	         "%lld s, refresh in %lld s%s",
	         e->name, v->hash, aauth_type_name(e->op_type), (long long)life,
	         (long long)(life * 8 / 10),
	         e->refresh ? "" : " (no refresh token)");
	token_state_save(e);
}

static void
token_failed(struct token_entry *e, struct aauth_result *res)
{
	uint64_t now = token_now(e), d;
	int permanent = res->outcome == AAUTH_PERMANENT;
	char kind[128];

	e->failures++;
	e->permanent = permanent;
	/* A refused token stays in use until it expires: the resource may
	 * have failed, not the token. */
	e->forced = 0;
	snprintf(e->last_error, sizeof(e->last_error), "%s: %.*s",
	         aauth_type_name(e->op_type), (int)sizeof(e->last_error) - 16,
	         res->error);
	d = token_backoff(e, res->retry_after);
	e->retry_ms = now + (d ? d : 1);
	snprintf(kind, sizeof(kind), "%s %s", aauth_type_name(e->op_type),
	         res->kind);
	if (strcmp(e->logged_kind, kind) != 0) {
		/* Once per state and reason, not once per attempt. */
		memcpy(e->logged_kind, kind, sizeof(kind));
		if (e->cur != NULL)
			log_warn("resource %s: %s%s; retrying in %.1f s, the "
			         "token stays in use for %.1f s",
			         e->name, e->last_error,
			         permanent ? " (permanent)" : "",
			         (double)d / 1000,
			         e->expires_ms > now
			             ? (double)(e->expires_ms - now) / 1000
			             : 0.0);
		else
			log_warn("resource %s: %s%s; no token, retrying in "
			         "%.1f s",
			         e->name, e->last_error,
			         permanent ? " (permanent)" : "",
			         (double)d / 1000);
	} else {
		log_debug("resource %s: %s; retrying in %.1f s", e->name,
		          e->last_error, (double)d / 1000);
	}
}

static void
token_consent(struct token_entry *e, struct aauth_result *res)
{
	uint64_t now = token_now(e);
	int64_t s = res->consent_expires_in > 0 ? res->consent_expires_in
	                                        : TOKEN_CONSENT_DEFAULT_S;
	int same = e->consent_url != NULL &&
	           strcmp(e->consent_url, res->consent_url) == 0;

	free(e->consent_url);
	e->consent_url = res->consent_url;
	res->consent_url = NULL;
	e->consent_until_ms = now + (uint64_t)s * 1000;
	token_src_wipe(e->code);
	e->code = NULL;
	e->failures = 0;
	e->retry_ms = 0;
	e->logged_kind[0] = '\0';
	snprintf(e->last_error, sizeof(e->last_error),
	         "waiting for a person's consent");
	if (!same)
		log_warn("resource %s needs a person's consent: open %s in a "
		         "browser and approve; %s",
		         e->name, e->consent_url,
		         e->res->aauth->redirect_uri
		             ? "requests resume by themselves afterwards"
		             : "resources.NAME.aauth.redirect_uri is not set, "
		               "so the approval cannot reach the proxy");
}

/* The fetch ended: apply its outcome and tell whoever waits. */
static void
token_fetched(void *arg, struct aauth_result *res)
{
	struct token_entry *e = arg;
	enum aauth_type type = e->op_type;
	struct token_fail f;

	e->op = NULL;
	if (e->ts->metrics != NULL) {
		static const char *const types[] = {"auth", "refresh", "code"};
		static const char *const outcomes[] = {
		    "ok", "consent", "transient", "invalid_grant", "permanent"};

		metrics_token_fetch(e->ts->metrics, types[type],
		                    outcomes[res->outcome]);
	}
	switch (res->outcome) {
	case AAUTH_OK:
		token_got(e, res);
		break;
	case AAUTH_CONSENT:
		token_consent(e, res);
		break;
	case AAUTH_INVALID_GRANT:
		if (type == AAUTH_REFRESH || type == AAUTH_CODE) {
			/* A refresh token the issuer no longer honours, or a
			 * spent code: start over with an auth. */
			log_info("resource %s: %s; falling back to an auth "
			         "request",
			         e->name, res->error);
			if (type == AAUTH_REFRESH) {
				token_src_wipe(e->refresh);
				e->refresh = NULL;
				token_state_save(e);
			} else {
				token_src_wipe(e->code);
				e->code = NULL;
			}
			if (token_start(e))
				return; /* the waiters wait for the auth */
		}
		res->outcome = AAUTH_PERMANENT;
		token_failed(e, res);
		break;
	default:
		token_failed(e, res);
		break;
	}
	if (e->op_challenge) {
		/* A resource token is for one request. */
		token_src_wipe(e->challenge);
		e->challenge = NULL;
		e->op_challenge = 0;
	}
	token_expire(e, token_now(e));
	token_settle(e);
	token_arm(e);
	if (e->cur != NULL) {
		token_wake(e, e->cur, NULL);
		return;
	}
	token_fail_init(&f, e);
	if (e->consent_url != NULL) {
		token_fail_consent(&f, e);
	} else {
		f.retry_after =
		    e->retry_ms > token_now(e)
		        ? (unsigned)((e->retry_ms - token_now(e) + 999) / 1000)
		        : 0;
		snprintf(f.detail, sizeof(f.detail),
		         "no token for resource %s: %s", e->name,
		         e->last_error);
	}
	token_wake(e, NULL, &f);
}

/* --- the API ----------------------------------------------------------------
 */

static struct token_waiter *
token_wait(struct token_entry *e, token_ready_cb cb, void *arg)
{
	struct token_waiter *w = xcalloc(1, sizeof(*w));

	w->e = e;
	w->cb = cb;
	w->arg = arg;
	w->list = &e->waiters;
	w->next = e->waiters;
	if (e->waiters)
		e->waiters->prev = w;
	e->waiters = w;
	return w;
}

void
token_cancel(struct token_waiter *w)
{
	if (w == NULL)
		return;
	token_waiter_unlink(w);
	free(w);
}

void
token_store_sync(struct token_store *ts, struct gen *g)
{
	const struct config *c = g->cfg;
	struct token_entry *e;
	size_t i, j;

	/* Resources that are gone take their tokens with them. */
	for (i = 0; i < ts->n;) {
		for (j = 0; j < c->nresources; j++)
			if (strcmp(ts->v[i]->name, c->resources[j].name) == 0)
				break;
		if (j < c->nresources) {
			i++;
			continue;
		}
		token_entry_free(ts->v[i]);
		memmove(&ts->v[i], &ts->v[i + 1],
		        (ts->n - i - 1) * sizeof(ts->v[0]));
		ts->n--;
	}
	for (j = 0; j < c->nresources; j++) {
		e = token_entry_get(ts, g, &c->resources[j]);
		token_adopt(e, g, &c->resources[j]);
		if (e->fingerprint == NULL)
			continue;
		/* Fetched at start, before the first request needs it;
		 * the loop is not held up (the fetch is asynchronous). */
		if (e->cur == NULL && e->op == NULL && !e->retry_ms &&
		    e->consent_url == NULL)
			token_start(e);
		token_run(e);
	}
}

static int
token_refuse(struct token_entry *e, struct token_fail *fail)
{
	uint64_t now = token_now(e);

	token_fail_init(fail, e);
	if (e->consent_url != NULL) {
		token_fail_consent(fail, e);
		return -1;
	}
	if (e->retry_ms > now)
		fail->retry_after =
		    (unsigned)((e->retry_ms - now + 999) / 1000);
	snprintf(fail->detail, sizeof(fail->detail),
	         "no token for resource %s%s%s", e->name,
	         e->last_error[0] ? ": " : "", e->last_error);
	return -1;
}

int
token_acquire(struct token_store *ts, struct gen *g,
              const struct config_resource *r, struct token_value **out,
              struct token_fail *fail, token_ready_cb cb, void *arg,
              struct token_waiter **w)
{
	struct token_entry *e = token_entry_get(ts, g, r);
	uint64_t now;

	*out = NULL;
	*w = NULL;
	if (r->aauth == NULL) {
		if (e->fingerprint != NULL)
			token_adopt(e, g, r);
		return token_file(e, r, out, fail);
	}
	/* The same resource of the same generation: no string compare on
	 * the data path. */
	if (e->res != r &&
	    (e->fingerprint == NULL ||
	     strcmp(e->fingerprint, r->aauth->fingerprint) != 0)) {
		if (e->gen != g && e->fingerprint != NULL) {
			/* An exchange of an older generation, after a reload
			 * changed this resource: its settings are gone. */
			token_fail_init(fail, e);
			snprintf(fail->detail, sizeof(fail->detail),
			         "the settings of resource %s changed; send "
			         "the request again",
			         e->name);
			return -1;
		}
		token_adopt(e, g, r);
	}
	now = token_now(e);
	/* The cheap path first: a token in hand. */
	if (e->cur != NULL && !e->forced && now < e->expires_ms) {
		*out = token_value_ref(e->cur);
		return 0;
	}
	token_run(e); /* an expiry, a due start */
	if (e->cur != NULL && !e->forced) {
		*out = token_value_ref(e->cur);
		return 0;
	}
	if (e->op != NULL) {
		*w = token_wait(e, cb, arg);
		return 1;
	}
	if (e->consent_url != NULL || e->retry_ms)
		return token_refuse(e, fail);
	if (token_start(e)) {
		*w = token_wait(e, cb, arg);
		return 1;
	}
	/* A challenge resource with nothing to ask with: go without a
	 * token, and the 401 brings the resource token. */
	return 0;
}

void
token_fail_timeout(struct token_store *ts, const struct config_resource *r,
                   unsigned ms, struct token_fail *f)
{
	struct token_entry *e = token_find(ts, r->name);

	memset(f, 0, sizeof(*f));
	f->status = 503;
	f->code = "token_unavailable";
	f->state = token_state_name(e ? e->state : TOKEN_EMPTY);
	f->last_error = e && e->last_error[0] ? e->last_error : NULL;
	f->retry_after = 1;
	snprintf(f->detail, sizeof(f->detail),
	         "no token for resource %s within upstream.connect_timeout_ms "
	         "(%u ms): %s",
	         r->name, ms,
	         f->last_error ? f->last_error
	                       : "the issuer has not answered yet");
}

void
token_invalidate(struct token_store *ts, struct gen *g,
                 const struct config_resource *r,
                 const struct token_value *used, const char *challenge)
{
	struct token_entry *e;

	if (r->aauth == NULL)
		return;
	e = token_entry_get(ts, g, r);
	if (e->fingerprint == NULL ||
	    strcmp(e->fingerprint, r->aauth->fingerprint) != 0)
		return;
	if (challenge != NULL) {
		token_src_wipe(e->challenge);
		e->challenge = xstrdup(challenge);
		e->challenge_ms = token_now(e);
	}
	if (used != e->cur && (used != NULL || !e->forced))
		return; /* a newer token is already there */
	if (used != NULL && challenge == NULL && e->op == NULL &&
	    token_now(e) < e->received_ms + TOKEN_FORCE_MIN_AGE_MS) {
		log_debug("resource %s: token (sha256 %s) refused right after "
		          "it came; not refreshing it again yet",
		          e->name, used->hash);
		return;
	}
	if (used != NULL && !e->forced) {
		log_info("resource %s: the resource refused token (sha256 %s); "
		         "forcing a refresh",
		         e->name, used->hash);
		e->forced = 1;
	}
	if (used == NULL && challenge == NULL)
		return;
	if (e->consent_url != NULL && e->code == NULL)
		return; /* a person's approval is what is missing */
	token_start(e);
	token_settle(e);
	token_arm(e);
}

int
token_consent_code(struct token_store *ts, struct gen *g,
                   const struct config_resource *r, const char *code,
                   token_ready_cb cb, void *arg, struct token_waiter **w,
                   char *err)
{
	struct token_entry *e;

	*w = NULL;
	if (r->aauth == NULL || (e = token_find(ts, r->name)) == NULL ||
	    e->fingerprint == NULL || e->consent_url == NULL) {
		err_set(err, "no consent is pending for resource %s", r->name);
		return -1;
	}
	if (e->op != NULL) {
		/* An auth asking again for consent, most likely: the code
		 * answers the prompt the person saw. */
		e->ts->env.cancel(e->ts->env.arg, e->op);
		e->op = NULL;
	}
	token_src_wipe(e->code);
	e->code = xstrdup(code);
	log_info("resource %s: consent given; exchanging the code", e->name);
	token_start(e);
	*w = token_wait(e, cb, arg);
	return 0;
}

int
token_fetch_now(struct token_store *ts, struct gen *g,
                const struct config_resource *r, struct token_value **out,
                struct token_fail *fail, token_ready_cb cb, void *arg,
                struct token_waiter **w)
{
	struct token_entry *e = token_entry_get(ts, g, r);

	*out = NULL;
	*w = NULL;
	if (r->aauth == NULL)
		return token_file(e, r, out, fail);
	token_adopt(e, g, r);
	if (e->op == NULL) {
		e->retry_ms = 0;
		if (!token_start(e)) {
			token_fail_init(fail, e);
			snprintf(fail->detail, sizeof(fail->detail),
			         "resource %s takes its resource token from "
			         "the resource's 401 challenge: a request "
			         "through the proxy fetches it",
			         e->name);
			return -1;
		}
	}
	*w = token_wait(e, cb, arg);
	return 1;
}

int
token_status_get(struct token_store *ts, const char *name,
                 struct token_status *st)
{
	struct token_entry *e = token_find(ts, name);
	uint64_t now;

	memset(st, 0, sizeof(*st));
	if (e == NULL)
		return -1;
	now = token_now(e);
	st->state = e->fingerprint ? e->state
	            : e->cur       ? TOKEN_VALID
	                           : TOKEN_EMPTY;
	if (e->cur != NULL) {
		st->has_token = 1;
		memcpy(st->hash, e->cur->hash, sizeof(st->hash));
		st->expires_in_s = e->fingerprint && e->expires_ms > now
		                       ? (int64_t)((e->expires_ms - now) / 1000)
		                       : -1;
	}
	if (e->cur != NULL && e->fingerprint == NULL) {
		/* A static file: its JWT exp (when it is one) tells the
		 * operator what is coming. */
		int64_t exp;

		if (jwt_exp(e->cur->value, &exp) == 0) {
			st->expires_in_s = exp - util_now();
			if (st->expires_in_s <= 0) {
				st->expires_in_s = 0;
				st->state = TOKEN_EXPIRED;
			}
		}
		st->last_refresh = (int64_t)e->mtim.tv_sec;
	}
	if (e->cur != NULL && e->fingerprint != NULL)
		st->last_refresh = e->received_unix;
	st->scope = e->scope;
	st->consent_url = e->consent_url;
	st->last_error = e->last_error[0] ? e->last_error : NULL;
	st->has_refresh_token = e->refresh != NULL;
	return 0;
}

int
token_file_read(const char *path, struct buf *out, char *err)
{
	struct buf b;
	size_t start, end;
	int rc = -1;

	buf_init(&b);
	if (util_read_file(path, &b, TOKEN_SRC_MAX_BYTES, err) == 0 &&
	    token_parse(&b, path, &start, &end, err) == 0) {
		buf_append(out, b.data + start, end - start);
		rc = 0;
	}
	if (b.data != NULL)
		sodium_memzero(b.data, b.len);
	buf_free(&b);
	return rc;
}

/* Whether a token looks like something a person was meant to replace.
 * Only signs no real token carries: long words that random base64url
 * essentially never contains, whole-token words, '<' or '>' (outside the
 * RFC 6750 b64token alphabet), one character repeated, or a run of x's
 * standing alone ("sk-xxxx"), which a JWT or an opaque token does not
 * have. Returns what matched, for the message, or NULL. */
static const char *
token_placeholder(const char *t, size_t n, char *why, size_t whylen)
{
	static const char *const words[] = {
	    "replace-me",  "replace_me",  "replaceme",    "changeme",
	    "change-me",   "change_me",   "your-token",   "your_token",
	    "yourtoken",   "placeholder", "insert-token", "insert_token",
	    "token-here",  "token_here",  "tokenhere",    "your-access",
	    "your_access",
	};
	static const char *const whole[] = {
	    "token", "secret", "test",  "todo", "tbd",     "dummy",
	    "none",  "null",   "empty", "fake", "example", "bearer",
	};
	size_t i, j, run;
	char lower[64];

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t wl = strlen(words[i]);

		for (j = 0; j + wl <= n; j++)
			if (util_strncaseeq(t + j, words[i], wl)) {
				snprintf(why, whylen, "contains \"%s\"",
				         words[i]);
				return why;
			}
	}
	if (n < sizeof(lower)) {
		memcpy(lower, t, n);
		lower[n] = '\0';
		util_lower(lower);
		for (i = 0; i < sizeof(whole) / sizeof(whole[0]); i++)
			if (strcmp(lower, whole[i]) == 0) {
				snprintf(why, whylen, "is just \"%s\"",
				         whole[i]);
				return why;
			}
	}
	if (memchr(t, '<', n) || memchr(t, '>', n)) {
		snprintf(why, whylen, "contains '<' or '>'");
		return why;
	}
	for (i = 1; i < n && t[i] == t[0]; i++)
		;
	if (i == n && n > 1) {
		snprintf(why, whylen, "is one character repeated");
		return why;
	}
	/* Runs of letters and digits that are all x. */
	for (i = 0; i < n; i = j + 1) {
		for (j = i, run = 0;
		     j < n && ((t[j] >= '0' && t[j] <= '9') ||
		               ((t[j] | 0x20) >= 'a' && (t[j] | 0x20) <= 'z'));
		     j++)
			run += (t[j] | 0x20) == 'x';
		if (j - i >= 3 && run == j - i) {
			snprintf(why, whylen, "has a run of x's");
			return why;
		}
	}
	return NULL;
}

int
token_file_check(const char *path, char *err)
{
	char why[64];
	struct stat st;
	struct buf b;
	int rc = -1;

	buf_init(&b);
	if (stat(path, &st) == -1) {
		err_set(err, "token file %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(err, "token file %s is not a regular file", path);
		return -1;
	}
	if (token_file_read(path, &b, err) == -1)
		goto out;
	rc = 1;
	if (token_placeholder(b.data, b.len, why, sizeof(why)) != NULL) {
		err_set(err,
		        "token file %s looks like a placeholder (it %s), not "
		        "an access token, yet it would be sent as the Bearer "
		        "token; put the resource's real token there",
		        path, why);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		err_set(err,
		        "token file %s is readable by group or others; chmod "
		        "600 it",
		        path);
		goto out;
	}
	rc = 0;
out:
	if (b.data != NULL)
		sodium_memzero(b.data, b.len);
	buf_free(&b);
	return rc;
}

void
token_store_set_metrics(struct token_store *ts, struct metrics *m)
{
	ts->metrics = m;
}
