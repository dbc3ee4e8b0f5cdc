/*
 * token: the access token of each resource, one state machine per
 * resource on the event loop, keyed by resource name so it outlives a
 * configuration generation. A static token_file is read on demand (re-read
 * when it changes). An aauth resource is fetched from the issuer at start,
 * refreshed in the background at about 80% of its lifetime, retried with
 * jittered backoff, parked in CONSENT when a person must approve, and
 * dropped when it really expires:
 *
 *   EMPTY ─▶ FETCHING ─▶ VALID ─(80%)─▶ REFRESHING ─▶ VALID
 *               │  │                        │  (401: forced, single flight)
 *               │  └─▶ CONSENT ─(code)─▶ FETCHING
 *               └─▶ BACKOFF ─(timer)─▶ FETCHING / REFRESHING
 *   VALID/BACKOFF ─(exp)─▶ EXPIRED ─(timer)─▶ FETCHING
 *
 * At most one fetch per resource is in flight however many requests wait.
 * Callers get a reference-counted token value, never a pointer into the
 * cache. The clock, the randomness and the fetcher are injectable, so a
 * unit test drives the machine with a fake clock and no network.
 */
#ifndef AAUTH_TOKEN_H
#define AAUTH_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "aauth.h"
#include "config.h"
#include "util.h"

struct event_base;
struct gen;
struct token_store;
struct token_waiter;
struct upstream;

enum token_state {
	TOKEN_EMPTY,      /* nothing yet, nothing running */
	TOKEN_FETCHING,   /* no usable token; a fetch is in flight */
	TOKEN_VALID,      /* a token; the refresh is scheduled */
	TOKEN_REFRESHING, /* a token in use; its successor is being fetched */
	TOKEN_BACKOFF,    /* the last fetch failed; the next is scheduled */
	TOKEN_CONSENT,    /* waiting for a person to approve */
	TOKEN_EXPIRED,    /* the token expired before a new one came */
};

const char *token_state_name(enum token_state s);

/* A token as handed out: immutable, reference-counted, the value in
 * guarded memory and wiped with the last reference. */
struct token_value {
	unsigned refs;
	char *value;
	size_t size;
	char hash[13]; /* log_token_hash: what logs may show */
};

struct token_value *token_value_ref(struct token_value *v);
void token_value_unref(struct token_value *v);

/* Why there is no token for a request (valid during the call only). */
struct token_fail {
	int status;             /* 503 (unavailable) or 403 (consent) */
	const char *code;       /* "token_unavailable" or "consent_required" */
	const char *state;      /* token_state_name */
	const char *url;        /* consent: the authorization URL, else NULL */
	const char *last_error; /* the last fetch's reason, or NULL */
	unsigned retry_after;   /* seconds until the next attempt, or 0 */
	char detail[512];       /* one sentence for the client */
};

/* v: a reference the callee owns (NULL: send the request without a token,
 * so the resource can answer with its challenge); or f when there is
 * none. */
typedef void (*token_ready_cb)(void *arg, struct token_value *v,
                               const struct token_fail *f);

/* What the machine needs from outside, for tests; token_store_new uses
 * the real clocks and aauth. */
struct token_env {
	uint64_t (*mono_ms)(void *arg);            /* monotonic milliseconds */
	int64_t (*unix_s)(void *arg);              /* wall clock, for JWT exp */
	uint32_t (*random)(void *arg, uint32_t n); /* uniform in [0, n) */
	struct aauth_op *(*fetch)(void *arg, const struct aauth_req *req,
	                          aauth_cb cb, void *cbarg);
	void (*cancel)(void *arg, struct aauth_op *op);
	void *arg;
};

struct token_store *token_store_new(struct event_base *base,
                                    struct upstream *up);
/* base may be NULL: no timers are armed, token_store_tick runs what is
 * due. */
struct token_store *token_store_new_env(struct event_base *base,
                                        const struct token_env *env);
void token_store_free(struct token_store *ts);
/* Count each endpoint fetch by request type and outcome in m. */
struct metrics;
void token_store_set_metrics(struct token_store *ts, struct metrics *m);

/* A generation became current (start-up, reload): adopt its resources,
 * start the first fetch of each aauth resource, and forget the state of
 * resources that are gone or whose aauth settings changed. */
void token_store_sync(struct token_store *ts, struct gen *g);
/* Run whatever is due by the store's clock (tests without a loop). */
void token_store_tick(struct token_store *ts);

/* The token for a request to r. Returns
 *   0  *out is a reference (NULL: go without a token, see above);
 *   1  a fetch is in flight: cb runs when it ends, *w cancels it;
 *  -1  no token: fail says why. */
int token_acquire(struct token_store *ts, struct gen *g,
                  const struct config_resource *r, struct token_value **out,
                  struct token_fail *fail, token_ready_cb cb, void *arg,
                  struct token_waiter **w);
void token_cancel(struct token_waiter *w);
/* Why a request that waited ms for r's token gets none (503). */
void token_fail_timeout(struct token_store *ts, const struct config_resource *r,
                        unsigned ms, struct token_fail *f);

/* The resource answered 401 to a request that carried used (NULL: none).
 * challenge: the resource token of its AAuth-Requirement, or NULL. Used
 * is withdrawn and one refresh is forced, unless a newer token or a fetch
 * is already there; a retry then waits for its outcome. */
void token_invalidate(struct token_store *ts, struct gen *g,
                      const struct config_resource *r,
                      const struct token_value *used, const char *challenge);

/* The consent callback brought code: exchange it (request_type=code).
 * cb runs with the outcome. -1 with err when no consent is pending. */
int token_consent_code(struct token_store *ts, struct gen *g,
                       const struct config_resource *r, const char *code,
                       token_ready_cb cb, void *arg, struct token_waiter **w,
                       char *err);

/* One fetch now, whatever the schedule (the token command); cb runs with
 * its outcome. A static token file is read at once: returns 0 then with
 * *out or -1 with fail, like token_acquire. */
int token_fetch_now(struct token_store *ts, struct gen *g,
                    const struct config_resource *r, struct token_value **out,
                    struct token_fail *fail, token_ready_cb cb, void *arg,
                    struct token_waiter **w);

struct token_status {
	enum token_state state;
	int has_token;
	int64_t expires_in_s;    /* has_token */
	char hash[13];           /* has_token */
	const char *scope;       /* NULL: the issuer did not say */
	const char *consent_url; /* CONSENT */
	const char *last_error;  /* NULL: none */
	int has_refresh_token;
	int64_t last_refresh; /* unix seconds the token was obtained; 0 */
};

/* The state of resource name; -1 when the store has none. */
int token_status_get(struct token_store *ts, const char *name,
                     struct token_status *st);

/* Read a token file as token_get does (surrounding whitespace trimmed,
 * visible ASCII only) and append the token to out; the caller wipes out
 * (sodium_memzero) before freeing it. */
int token_file_read(const char *path, struct buf *out, char *err);

/* Whether a token file would serve. 0: yes. -1: no, requests would get
 * 503 (missing, not a regular file, empty, bytes a header cannot carry).
 * 1: it would be used, but should not be: a value that looks like a
 * placeholder ("replace-me", "changeme", "<token>", "xxxx"…, which would
 * otherwise go out as a Bearer token without a word), or a file readable
 * by group or others. err says which; it never holds the token. */
int token_file_check(const char *path, char *err);

/* Read a token file as token_get does (surrounding whitespace trimmed,
 * visible ASCII only) and append the token to out; the caller wipes out
 * (sodium_memzero) before freeing it. */
int token_file_read(const char *path, struct buf *out, char *err);

/* Whether a token file would serve. 0: yes. -1: no, requests would get
 * 503 (missing, not a regular file, empty, bytes a header cannot carry).
 * 1: it would be used, but should not be: a value that looks like a
 * placeholder ("replace-me", "changeme", "<token>", "xxxx"…, which would
 * otherwise go out as a Bearer token without a word), or a file readable
 * by group or others. err says which; it never holds the token. */
int token_file_check(const char *path, char *err);

#endif
