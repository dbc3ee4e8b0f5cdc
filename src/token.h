/*
 * token: the access token of each resource. This stage reads a static
 * token file (re-read when its mtime/size/inode changes); the AAuth
 * endpoint flow fills the same cache asynchronously later, so callers
 * already treat "no token" as a normal, explained outcome. Entries are
 * keyed by resource name, so they outlive a configuration generation.
 */
#ifndef AAUTH_TOKEN_H
#define AAUTH_TOKEN_H

#include "config.h"
#include "util.h"

struct event_base;
struct token_store;

struct token_store *token_store_new(struct event_base *base);
void token_store_free(struct token_store *ts);

/* The current token of a resource and its short hash for logs (13 bytes
 * with the NUL), or NULL with err saying why (missing file, empty file,
 * unreadable). The pointer stays valid until the next token_get for the
 * same resource. */
const char *token_get(struct token_store *ts, const struct config_resource *r,
                      char hash[13], char *err);

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

/* What /status, /readyz and /metrics report about a resource's token,
 * never the token itself. States are the token lifecycle's; a static token
 * file is "valid" when it would serve and "empty" when it would not. */
enum token_state {
	TOKEN_EMPTY,
	TOKEN_FETCHING,
	TOKEN_VALID,
	TOKEN_REFRESHING,
	TOKEN_BACKOFF,
	TOKEN_CONSENT,
	TOKEN_EXPIRED,
};

struct token_status {
	enum token_state state;
	int64_t expires_at;       /* unix seconds; 0: unknown (no exp claim) */
	int64_t last_refresh;     /* unix seconds the token was obtained; 0 */
	char last_error[ERR_MAX]; /* "" when none; never holds the token */
	const char *consent_url;  /* pending consent, else NULL */
};

const char *token_state_name(enum token_state s);
/* Fill st for resource r (reading the static file if it changed). */
void token_status_get(struct token_store *ts, const struct config_resource *r,
                      struct token_status *st);

#endif
