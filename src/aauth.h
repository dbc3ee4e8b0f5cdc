/*
 * aauth: the issuer's token endpoint (aauth-wire.md §3) — one request at
 * a time per call: get the agent token and the resource token from their
 * sources, POST {issuer}/aauth/agent/token signed with the lumoauth
 * profile (authorization covered empty) plus Agent-Auth, and sort the
 * answer into a token, a consent prompt, or a failure with its kind. No
 * state between calls: token.c decides what to ask for and when.
 */
#ifndef AAUTH_AAUTH_H
#define AAUTH_AAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "util.h"

struct aauth;
struct aauth_op;
struct event_base;
struct gen;
struct token_src;
struct upstream;

/* A response body past this is refused (a token answer is a few KiB). */
#define AAUTH_BODY_MAX (64 * 1024)

enum aauth_type {
	AAUTH_AUTH,    /* resource_token (+ scope, redirect_uri) */
	AAUTH_REFRESH, /* refresh_token + a fresh resource_token */
	AAUTH_CODE,    /* code + redirect_uri, after consent */
};

enum aauth_outcome {
	AAUTH_OK,            /* a token */
	AAUTH_CONSENT,       /* a person must approve: consent_url */
	AAUTH_TRANSIENT,     /* refused, timeout, 5xx, 429, garbage: retry */
	AAUTH_INVALID_GRANT, /* the refresh token or code is no good */
	AAUTH_PERMANENT,     /* invalid_scope, a rejected agent token, …:
	                        retry only slowly */
};

struct aauth_req {
	struct gen *gen; /* key and config for this exchange */
	const struct config_resource *res;
	enum aauth_type type;
	const char *refresh_token;  /* REFRESH */
	const char *code;           /* CODE */
	const char *resource_token; /* a challenge's; NULL: the source's */
};

/* Strings are owned by the result: a callback may take one (set the
 * pointer to NULL); the rest are wiped and freed after it returns. */
struct aauth_result {
	enum aauth_outcome outcome;
	char *token;                /* OK */
	char *refresh_token;        /* OK, when the answer carried one */
	char *scope;                /* OK, when the answer carried one */
	int64_t expires_in;         /* OK: seconds; -1 when not given */
	char *consent_url;          /* CONSENT */
	int64_t consent_expires_in; /* CONSENT: seconds; -1 when not given */
	unsigned retry_after;       /* seconds the issuer asked for, or 0 */
	int status;                 /* the HTTP status; 0 when none came */
	char error[ERR_MAX];        /* why (no secret in it), for the log and
	                               the 503 body */
	char kind[96];              /* the failure without its details: a
	                               repeat is logged once */
};

typedef void (*aauth_cb)(void *arg, struct aauth_result *res);

struct aauth *aauth_new(struct event_base *base, struct upstream *up);
void aauth_free(struct aauth *a);

/* Start one exchange; cb runs exactly once, never before this returns,
 * unless the operation is cancelled. The strings in req are copied. */
struct aauth_op *aauth_fetch(struct aauth *a, const struct aauth_req *req,
                             aauth_cb cb, void *arg);
void aauth_cancel(struct aauth_op *op);

const char *aauth_type_name(enum aauth_type t);

/* The resource token of a resource's 401 challenge (aauth-wire.md §4):
 * "AAuth-Requirement: requirement=auth-token; resource-token=\"…\"". A new
 * string (token_src_wipe it), or NULL when v is no such challenge. */
char *aauth_challenge_parse(const char *v, size_t len);

/* Sort one token-endpoint answer (pure; the unit tests feed it). body may
 * be NULL with len 0. */
void aauth_parse_response(int status, const char *body, size_t len,
                          unsigned retry_after, struct aauth_result *out);
void aauth_result_clear(struct aauth_result *r);

#endif
