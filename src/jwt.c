/*
 * jwt: compact JWS decoding and agent+jwt minting (RFC 7515/7519 with
 * EdDSA, RFC 8037). Claims are read to learn lifetimes, never to decide
 * trust: the issuer and the resource check signatures, we only schedule.
 */
#include "jwt.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Larger than any token we would hold (token values are capped lower). */
#define JWT_MAX_PART (64 * 1024)

static json_t *
jwt_part(const char *s, size_t n, char *err, const char *what)
{
	unsigned char *raw;
	json_error_t je;
	json_t *o;
	long len;

	if (n == 0 || n > JWT_MAX_PART) {
		err_set(err, "the JWT %s is empty or too large", what);
		return NULL;
	}
	raw = xmalloc(n);
	len = b64_decode(s, n, B64_URL_NOPAD, raw, n);
	if (len < 0) {
		free(raw);
		err_set(err, "the JWT %s is not base64url", what);
		return NULL;
	}
	o = json_loadb((const char *)raw, (size_t)len, JSON_REJECT_DUPLICATES,
	               &je);
	sodium_memzero(raw, n);
	free(raw);
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		err_set(err, "the JWT %s is not a JSON object", what);
		return NULL;
	}
	return o;
}

int
jwt_decode(const char *tok, json_t **header, json_t **claims, char *err)
{
	const char *d1, *d2;
	json_t *h, *c;

	if (header)
		*header = NULL;
	if (claims)
		*claims = NULL;
	d1 = strchr(tok, '.');
	d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (d2 == NULL || strchr(d2 + 1, '.') != NULL) {
		err_set(err, "not a JWT (three dot-separated parts)");
		return -1;
	}
	if ((h = jwt_part(tok, (size_t)(d1 - tok), err, "header")) == NULL)
		return -1;
	if ((c = jwt_part(d1 + 1, (size_t)(d2 - d1 - 1), err, "claims")) ==
	    NULL) {
		json_decref(h);
		return -1;
	}
	if (header)
		*header = h;
	else
		json_decref(h);
	if (claims)
		*claims = c;
	else
		json_decref(c);
	return 0;
}

int
jwt_exp(const char *tok, int64_t *exp)
{
	json_t *c, *e;
	int rc = -1;

	if (jwt_decode(tok, NULL, &c, NULL) == -1)
		return -1;
	e = json_object_get(c, "exp");
	if (json_is_integer(e)) {
		*exp = (int64_t)json_integer_value(e);
		rc = 0;
	} else if (json_is_real(e) && json_real_value(e) > 0 &&
	           json_real_value(e) < 1e15) {
		*exp = (int64_t)json_real_value(e);
		rc = 0;
	}
	json_decref(c);
	return rc;
}

/* base64url(JSON of o), appended to b. */
static int
jwt_append_part(struct buf *b, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	char *e;

	if (s == NULL)
		return -1;
	e = b64_encode(s, strlen(s), B64_URL_NOPAD);
	buf_appends(b, e);
	free(e);
	free(s);
	return 0;
}

char *
jwt_mint_agent(const struct key *k, const struct jwt_agent *a, char *err)
{
	unsigned char rnd[16], sig[KEY_SIG_BYTES];
	char *jti = NULL, *s;
	json_t *h, *c;
	struct buf b;

	if (a->jti == NULL) {
		randombytes_buf(rnd, sizeof(rnd));
		jti = b64_encode(rnd, sizeof(rnd), B64_URL_NOPAD);
	}
	h = json_pack("{s:s,s:s,s:s}", "typ", "agent+jwt", "alg", "EdDSA",
	              "kid", k->kid);
	c = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:{s:{s:s,s:s,s:s,s:s}}}",
	              "iss", a->iss, "sub", a->sub, "aud", a->aud, "iat",
	              (json_int_t)a->iat, "exp",
	              (json_int_t)(a->iat + (int64_t)a->lifetime_s), "jti",
	              a->jti ? a->jti : jti, "cnf", "jwk", "kty", "OKP", "crv",
	              "Ed25519", "x", k->x, "kid", k->kid);
	free(jti);
	buf_init(&b);
	if (h == NULL || c == NULL || jwt_append_part(&b, h) == -1) {
		err_set(err, "cannot encode the agent token");
		goto fail;
	}
	buf_appendc(&b, '.');
	if (jwt_append_part(&b, c) == -1) {
		err_set(err, "cannot encode the agent token");
		goto fail;
	}
	if (key_sign(k, (const unsigned char *)b.data, b.len, sig) == -1) {
		err_set(err, "cannot sign the agent token (no private key)");
		goto fail;
	}
	s = b64_encode(sig, sizeof(sig), B64_URL_NOPAD);
	buf_appendc(&b, '.');
	buf_appends(&b, s);
	free(s);
	json_decref(h);
	json_decref(c);
	return buf_steal(&b);
fail:
	json_decref(h);
	json_decref(c);
	buf_free(&b);
	return NULL;
}

int
jwt_verify(const char *tok, const struct key *pub, char *err)
{
	unsigned char sig[KEY_SIG_BYTES + 4];
	const char *dot;
	json_t *h;
	long n;

	if (jwt_decode(tok, &h, NULL, err) == -1)
		return -1;
	if (!json_is_string(json_object_get(h, "alg")) ||
	    strcmp(json_string_value(json_object_get(h, "alg")), "EdDSA") !=
	        0) {
		json_decref(h);
		err_set(err, "the JWT's alg is not EdDSA");
		return -1;
	}
	json_decref(h);
	dot = strrchr(tok, '.');
	n = b64_decode(dot + 1, strlen(dot + 1), B64_URL_NOPAD, sig,
	               sizeof(sig));
	if (n != KEY_SIG_BYTES ||
	    key_verify(pub, (const unsigned char *)tok, (size_t)(dot - tok),
	               sig, (size_t)n) == -1) {
		err_set(err, "the JWT's signature does not verify");
		return -1;
	}
	return 0;
}
