/*
 * key: the agent's Ed25519 key. Private bytes live in libsodium guarded
 * memory (mlock'd, guard pages, wiped on free); files are PKCS#8 PEM and
 * must not be readable by group or others.
 */
#ifndef AAUTH_KEY_H
#define AAUTH_KEY_H

#include <stddef.h>

#include "util.h"

#define KEY_PK_BYTES    32
#define KEY_SIG_BYTES   64
#define KEY_DEFAULT_KID "key-1"

struct key {
	unsigned char *sk;              /* 64-byte libsodium secret key
	                                   (seed || pk) in sodium_malloc memory;
	                                   NULL for a public-only key */
	unsigned char pk[KEY_PK_BYTES]; /* raw public key */
	char x[64];                     /* base64url(pk), the JWK "x" */
	char thumbprint[64]; /* RFC 7638 JWK thumbprint (base64url) */
	char kid[128];       /* JWK kid, default "key-1" */
};

/* Load a private key from a PKCS#8 PEM file. Refuses group/other-readable
 * files, non-Ed25519 keys, public keys, corrupt PEM; err says which and
 * what to do. */
int key_load(struct key *k, const char *path, char *err);
/* Load a public key for verification: SPKI PEM, PKCS#8 PEM (the public
 * half is used), a JWK or a JWKS (first OKP/Ed25519 key). */
int key_load_public(struct key *k, const char *path, char *err);
int key_generate(struct key *k, char *err);
/* Write the private key as PKCS#8 PEM with mode 0600 (O_EXCL unless force). */
int key_write_pem(const struct key *k, const char *path, int force, char *err);
void key_set_kid(struct key *k, const char *kid);
/* A public-only key from its 32 raw bytes (x and thumbprint derived). */
void key_set_public(struct key *k, const unsigned char pk[KEY_PK_BYTES],
                    const char *kid);
/* The public JWK as compact JSON: kty, crv, x, use, kid (in that order). */
char *key_jwk_json(const struct key *k);
int key_sign(const struct key *k, const unsigned char *msg, size_t len,
             unsigned char sig[KEY_SIG_BYTES]);
int key_verify(const struct key *k, const unsigned char *msg, size_t len,
               const unsigned char *sig, size_t siglen);
/* Wipe and release the private bytes. */
void key_free(struct key *k);

#endif
