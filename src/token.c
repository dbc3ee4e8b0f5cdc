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

/* Read, trim and validate the file into e. */
static int
token_reload(struct token_entry *e, const struct stat *st, char *err)
{
	const char *path = e->path;
	struct buf b;
	size_t start = 0, end, i;

	buf_init(&b);
	if (util_read_file(path, &b, TOKEN_MAX_BYTES, err) == -1)
		goto fail;
	end = b.len;
	while (start < end && (b.data[start] == ' ' || b.data[start] == '\t' ||
	                       b.data[start] == '\r' || b.data[start] == '\n'))
		start++;
	while (end > start &&
	       (b.data[end - 1] == ' ' || b.data[end - 1] == '\t' ||
	        b.data[end - 1] == '\r' || b.data[end - 1] == '\n'))
		end--;
	if (end == start) {
		err_set(err, "token file %s is empty", path);
		goto fail;
	}
	for (i = start; i < end; i++) {
		unsigned char ch = (unsigned char)b.data[i];

		if (ch < 0x21 || ch > 0x7e) {
			err_set(
			    err,
			    "token file %s: byte %zu (0x%02x) is not allowed "
			    "in a Bearer token (visible ASCII only)",
			    path, i - start, ch);
			goto fail;
		}
	}
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
