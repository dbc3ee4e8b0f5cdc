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

#endif
