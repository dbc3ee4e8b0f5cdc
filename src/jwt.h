/*
 * jwt: the JSON Web Tokens the proxy reads and makes — decoding a token's
 * header and claims (an auth token's exp, an agent token's exp) without
 * trusting them, and minting the agent+jwt the token endpoint wants. Pure:
 * no I/O; signing only through key_sign.
 */
#ifndef AAUTH_JWT_H
#define AAUTH_JWT_H

#include <jansson.h>
#include <stdint.h>

#include "key.h"

/* The decoded header and claims of a compact JWS (three base64url parts,
 * both JSON objects); the signature is NOT checked. Either out may be
 * NULL. -1 with err when it is not a JWT. */
int jwt_decode(const char *tok, json_t **header, json_t **claims, char *err);
/* The integer "exp" claim of a JWT; -1 when it is not a JWT or has none. */
int jwt_exp(const char *tok, int64_t *exp);

struct jwt_agent {
	const char *iss; /* the agent identifier (https URL) */
	const char *sub; /* the delegate */
	const char *aud; /* the issuer */
	int64_t iat;     /* unix seconds */
	unsigned lifetime_s;
	const char *jti; /* NULL: 16 random bytes, base64url */
};

/* An agent+jwt signed with k: header {typ, alg EdDSA, kid}, claims iss,
 * sub, aud, iat, exp, jti, cnf.jwk (the key's public JWK). A new string
 * (free it), or NULL with err. */
char *jwt_mint_agent(const struct key *k, const struct jwt_agent *a, char *err);

/* Check an EdDSA JWT's signature with pub (public half suffices). */
int jwt_verify(const char *tok, const struct key *pub, char *err);

#endif
