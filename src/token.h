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

#endif
