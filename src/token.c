/*
 * token: per-resource access tokens. This stage's source is a static file,
 * re-read whenever its identity (inode, size, mtime) changes, so rotating
 * the file (write + rename, or in place) takes effect on the next request
 * without a reload. The cache never holds a value that could inject a
 * header: only visible ASCII is accepted.
 */
#include "token.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "util.h"

#define TOKEN_MAX_BYTES (64 * 1024)

struct token_entry {
	const struct config_resource *res;
	char *value;       /* in sodium_malloc memory, wiped on replace */
	size_t value_size; /* allocation size for sodium_free */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim;
	int loaded;
	int warned_mode;
};

struct token_store {
	struct token_entry *v;
	size_t n;
};

struct token_store *
token_store_new(const struct config *c)
{
	struct token_store *ts = xcalloc(1, sizeof(*ts));
	size_t i;

	ts->v = xcalloc(c->nresources ? c->nresources : 1, sizeof(*ts->v));
	ts->n = c->nresources;
	for (i = 0; i < c->nresources; i++)
		ts->v[i].res = &c->resources[i];
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
}

void
token_store_free(struct token_store *ts)
{
	size_t i;

	if (ts == NULL)
		return;
	for (i = 0; i < ts->n; i++)
		token_entry_clear(&ts->v[i]);
	free(ts->v);
	free(ts);
}

static struct token_entry *
token_find(struct token_store *ts, const struct config_resource *r)
{
	size_t i;

	for (i = 0; i < ts->n; i++)
		if (ts->v[i].res == r)
			return &ts->v[i];
	return NULL;
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
	const char *path = e->res->token_file;
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
	char hash[13];
	log_token_hash(e->value, hash);
	log_info("resource %s: token loaded from %s (sha256 %s)", e->res->name,
	         path, hash);
	return 0;
fail:
	if (b.data != NULL)
		sodium_memzero(b.data, b.len);
	buf_free(&b);
	return -1;
}

const char *
token_get(struct token_store *ts, const struct config_resource *r, char *err)
{
	struct token_entry *e = token_find(ts, r);
	struct stat st;

	if (e == NULL) {
		err_set(err, "resource %s has no token source", r->name);
		return NULL;
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
	return e->value;
}
