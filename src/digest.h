/*
 * digest: RFC 9530 Content-Digest with OpenSSL's SHA-256/SHA-512.
 * Incremental so the proxy can hash a body chunk by chunk as it arrives.
 */
#ifndef AAUTH_DIGEST_H
#define AAUTH_DIGEST_H

#include <stddef.h>

#include "util.h"

enum digest_alg { DIGEST_NONE, DIGEST_SHA256, DIGEST_SHA512 };

struct digest_ctx;

int digest_alg_parse(const char *name, enum digest_alg *out); /* "sha-256" */
const char *digest_alg_name(enum digest_alg alg);

struct digest_ctx *digest_new(enum digest_alg alg);
void digest_update(struct digest_ctx *d, const void *p, size_t n);
/* Finish and append the field value (e.g. "sha-256=:…=:") to out; frees d. */
void digest_final(struct digest_ctx *d, struct buf *out);

/* One-shot: the Content-Digest field value for a body. */
void digest_field(enum digest_alg alg, const void *body, size_t len,
                  struct buf *out);

/* Check a received Content-Digest value against a body: every member with
 * a known algorithm must match and at least one must be known. */
int digest_verify(const char *field_value, const void *body, size_t len,
                  char *err);

#endif
