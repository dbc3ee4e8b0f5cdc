/*
 * token: per-resource access tokens. This stage's source is a static file,
 * re-read whenever its identity (inode, size, mtime) changes, so rotating
 * the file (write + rename, or in place) takes effect on the next request
 * without a reload. The cache never holds a value that could inject a
 * header: only visible ASCII is accepted.
 */
#include "token.h"

#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "util.h"

#define TOKEN_MAX_BYTES (64 * 1024)

struct token_entry {
	char *name;        /* the resource's */
	char *path;        /* the token file it was last read from */
	char *value;       /* in sodium_malloc memory, wiped on replace */
	size_t value_size; /* allocation size for sodium_free */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim;
	int loaded;
	int warned_mode;
	/* Checked in the current batch of event callbacks (see token_get):
	 * the hash of value, valid while memo is set. */
	int memo;
	char hash[13];
};

struct token_store {
	struct token_entry *v;
	size_t n, cap;
	struct event_base *base;
	struct event *ev_forget; /* clears every memo after the batch */
	int memos;               /* ev_forget is active */
};

static void
token_forget_cb(evutil_socket_t fd, short what, void *arg)
{
	struct token_store *ts = arg;
	size_t i;

	for (i = 0; i < ts->n; i++)
		ts->v[i].memo = 0;
	ts->memos = 0;
}

struct token_store *
token_store_new(struct event_base *base)
{
	struct token_store *ts = xcalloc(1, sizeof(*ts));

	ts->base = base;
	if (base != NULL)
		ts->ev_forget = event_new(base, -1, 0, token_forget_cb, ts);
	return ts;
}

static void
token_entry_clear(struct token_entry *e)
{
	if (e->value != NULL)
		sodium_free(e->value);
	e->value = NULL;
	e->value_size = 0;
	e->loaded = 0;
	e->memo = 0;
}

void
token_store_free(struct token_store *ts)
{
	size_t i;

	if (ts == NULL)
		return;
	for (i = 0; i < ts->n; i++) {
		token_entry_clear(&ts->v[i]);
		free(ts->v[i].name);
		free(ts->v[i].path);
	}
	if (ts->ev_forget)
		event_free(ts->ev_forget);
	free(ts->v);
	free(ts);
}

/* The resource's entry, made on first use; a new token file path (a
 * reload that changed it) starts from nothing. */
static struct token_entry *
token_find(struct token_store *ts, const struct config_resource *r)
{
	struct token_entry *e;
	size_t i;

	for (i = 0; i < ts->n; i++)
		if (strcmp(ts->v[i].name, r->name) == 0)
			break;
	if (i == ts->n) {
		if (ts->n == ts->cap) {
			ts->cap = ts->cap ? ts->cap * 2 : 8;
			ts->v = xrealloc(ts->v, ts->cap * sizeof(*ts->v));
		}
		e = &ts->v[ts->n++];
		memset(e, 0, sizeof(*e));
		e->name = xstrdup(r->name);
	}
	e = &ts->v[i];
	if (e->path == NULL || strcmp(e->path, r->token_file) != 0) {
		token_entry_clear(e);
		free(e->path);
		e->path = xstrdup(r->token_file);
		e->warned_mode = 0;
	}
	return e;
}

static int
token_same_file(const struct token_entry *e, const struct stat *st)
{
	return e->loaded && e->dev == st->st_dev && e->ino == st->st_ino &&
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

/* Read, trim and validate the file into e. */
static int
token_reload(struct token_entry *e, const struct stat *st, char *err)
{
	const char *path = e->path;
	struct buf b;
	size_t start, end;

	buf_init(&b);
	if (util_read_file(path, &b, TOKEN_MAX_BYTES, err) == -1 ||
	    token_parse(&b, path, &start, &end, err) == -1)
		goto fail;
	token_entry_clear(e);
	e->value_size = end - start + 1;
	e->value = sodium_malloc(e->value_size);
	if (e->value == NULL) {
		err_set(err, "token file %s: cannot allocate secure memory",
		        path);
		goto fail;
	}
	memcpy(e->value, b.data + start, end - start);
	e->value[end - start] = '\0';
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->size = st->st_size;
	e->mtim = st->st_mtim;
	e->loaded = 1;
	if ((st->st_mode & 077) != 0 && !e->warned_mode) {
		log_warn("token file %s is readable by group or others; "
		         "chmod 600 it",
		         path);
		e->warned_mode = 1;
	}
	sodium_memzero(b.data, b.len);
	buf_free(&b);
	log_token_hash(e->value, e->hash);
	log_info("resource %s: token loaded from %s (sha256 %s)", e->name, path,
	         e->hash);
	return 0;
fail:
	if (b.data != NULL)
		sodium_memzero(b.data, b.len);
	buf_free(&b);
	return -1;
}

/* Each call checks the token file (a stat). The requests of one batch of
 * event callbacks — the same instant as far as the proxy can tell — share
 * one check: the memo is cleared by an event activated here, which
 * libevent runs after the callbacks already queued in this iteration. */
const char *
token_get(struct token_store *ts, const struct config_resource *r,
          char hash[13], char *err)
{
	struct token_entry *e = token_find(ts, r);
	struct stat st;

	if (e->memo && e->value != NULL) {
		memcpy(hash, e->hash, 13);
		return e->value;
	}
	if (stat(r->token_file, &st) == -1) {
		/* A file that went away means the token was withdrawn:
		 * fail closed rather than keep using the old one. */
		token_entry_clear(e);
		err_set(err, "token file %s: %s", r->token_file,
		        strerror(errno));
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		token_entry_clear(e);
		err_set(err, "token file %s is not a regular file",
		        r->token_file);
		return NULL;
	}
	if (!token_same_file(e, &st) && token_reload(e, &st, err) == -1) {
		token_entry_clear(e);
		return NULL;
	}
	memcpy(hash, e->hash, 13);
	if (ts->ev_forget != NULL) {
		e->memo = 1;
		if (!ts->memos) {
			event_active(ts->ev_forget, EV_TIMEOUT, 1);
			ts->memos = 1;
		}
	}
	return e->value;
}

int
token_file_read(const char *path, struct buf *out, char *err)
{
	struct buf b;
	size_t start, end;
	int rc = -1;

	buf_init(&b);
	if (util_read_file(path, &b, TOKEN_MAX_BYTES, err) == 0 &&
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

const char *
token_state_name(enum token_state s)
{
	static const char *const names[] = {"empty",      "fetching", "valid",
	                                    "refreshing", "backoff",  "consent",
	                                    "expired"};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s]
	                                                      : "unknown";
}

/* The exp claim of a JWT access token (0 when the token is opaque or has
 * none), so operators see expiry coming even for static files. */
static int64_t
token_jwt_exp(const char *tok)
{
	const char *p = strchr(tok, '.'), *q;
	unsigned char dec[4096];
	json_t *o;
	long n;
	int64_t exp = 0;

	if (p == NULL || (q = strchr(p + 1, '.')) == NULL)
		return 0;
	n = b64_decode(p + 1, (size_t)(q - p - 1), B64_URL_NOPAD, dec,
	               sizeof(dec) - 1);
	if (n <= 0)
		return 0;
	o = json_loadb((const char *)dec, (size_t)n, 0, NULL);
	if (json_is_integer(json_object_get(o, "exp")))
		exp = json_integer_value(json_object_get(o, "exp"));
	json_decref(o);
	sodium_memzero(dec, sizeof(dec));
	return exp;
}

void
token_status_get(struct token_store *ts, const struct config_resource *r,
                 struct token_status *st)
{
	struct token_entry *e;
	const char *tok;
	char hash[13];

	memset(st, 0, sizeof(*st));
	tok = token_get(ts, r, hash, st->last_error);
	if (tok == NULL) {
		st->state = TOKEN_EMPTY;
		return;
	}
	e = token_find(ts, r);
	st->state = TOKEN_VALID;
	st->last_refresh = (int64_t)e->mtim.tv_sec;
	st->expires_at = token_jwt_exp(tok);
	if (st->expires_at != 0 && st->expires_at <= util_now())
		st->state = TOKEN_EXPIRED;
}
