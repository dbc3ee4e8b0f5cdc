/*
 * token_src: where the inputs of a token come from — a file, a command's
 * stdout, a signed GET of a URL, the agent token minted with our key —
 * and the state file that carries a resource's tokens across a restart.
 * Everything that can take time (a command, a URL) runs on the event loop
 * and reports through a callback; nothing here blocks on the network or
 * on a child process.
 */
#ifndef AAUTH_TOKEN_SRC_H
#define AAUTH_TOKEN_SRC_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct event_base;
struct gen;
struct token_src;
struct token_src_req;
struct upstream;

/* The most bytes of one token value (file, command output, response). */
#define TOKEN_SRC_MAX_BYTES (64 * 1024)
/* A command gets this long, and this much output, before it is killed. */
#define TOKEN_SRC_CMD_TIMEOUT_MS 10000

struct token_src *token_src_new(struct event_base *base, struct upstream *up);
void token_src_free(struct token_src *s);

/* value: the token (owned by the callee: token_src_wipe it), or NULL and
 * err saying why, without the value. */
typedef void (*token_src_cb)(void *arg, char *value, const char *err);

/* Get one value from src for resource r under generation g (the key for
 * a mint or a signed GET, timeouts). cb runs once, never before this
 * returns, unless the request is cancelled. */
struct token_src_req *token_src_get(struct token_src *s, struct gen *g,
                                    const struct config_resource *r,
                                    const struct config_tsrc *src,
                                    token_src_cb cb, void *arg);
void token_src_cancel(struct token_src_req *q);

/* Read a token file: whitespace around the value trimmed, then only
 * visible ASCII (it goes into a header line). *value is a new string
 * (token_src_wipe it). */
int token_src_read_file(const char *path, char **value, char *err);
/* Is p[0..n) a value that may go into a header: 1..TOKEN_SRC_MAX_BYTES
 * bytes of visible ASCII? err names what (and the offending byte's
 * position, never the value). */
int token_src_check(const char *p, size_t n, const char *what, char *err);
/* Zero and free a secret string (NULL is fine). */
void token_src_wipe(char *s);

/* What a state file holds for one resource. */
struct token_saved {
	char *token;         /* NULL: none */
	char *refresh_token; /* NULL: none */
	char *scope;         /* NULL: none */
	int64_t received_at; /* unix seconds */
	int64_t expires_at;  /* unix seconds */
};

/* Load path; 1 when there is nothing usable (no file, another issuer),
 * 0 with *out filled, -1 with err. */
int token_src_state_load(const char *path, const char *issuer,
                         struct token_saved *out, char *err);
/* Write path atomically with mode 0600. */
int token_src_state_save(const char *path, const char *issuer,
                         const struct token_saved *in, char *err);
void token_saved_clear(struct token_saved *t);

#endif
