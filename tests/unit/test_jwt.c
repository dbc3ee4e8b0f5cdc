/*
 * test_jwt: minting an agent+jwt (header, every claim, the signature over
 * the first two parts with the agent key), decoding without trust, exp,
 * and the refusals (tampering, another key, malformed tokens).
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "jwt.h"
#include "key.h"
#include "util.h"

static void
test_mint_and_verify(void)
{
	struct key k, other;
	struct jwt_agent a;
	char err[ERR_MAX], *tok, *t2, *dot;
	json_t *h, *c, *jwk;

	CHECK(key_generate(&k, err) == 0);
	CHECK(key_generate(&other, err) == 0);
	key_set_kid(&k, "key-7");
	memset(&a, 0, sizeof(a));
	a.iss = "https://agent.example";
	a.sub = "user-1";
	a.aud = "https://issuer.example/orgs/acme/api/v1";
	a.iat = 1800000000;
	a.lifetime_s = 300;
	a.jti = "jti-1";
	tok = jwt_mint_agent(&k, &a, err);
	CHECK(tok != NULL);
	if (tok == NULL)
		return;
	CHECK(jwt_verify(tok, &k, err) == 0);
	CHECK(jwt_verify(tok, &other, err) == -1);
	CHECK(jwt_decode(tok, &h, &c, err) == 0);
	CHECK_STREQ(json_string_value(json_object_get(h, "typ")), "agent+jwt");
	CHECK_STREQ(json_string_value(json_object_get(h, "alg")), "EdDSA");
	CHECK_STREQ(json_string_value(json_object_get(h, "kid")), "key-7");
	CHECK(json_object_size(h) == 3);
	CHECK_STREQ(json_string_value(json_object_get(c, "iss")),
	            "https://agent.example");
	CHECK_STREQ(json_string_value(json_object_get(c, "sub")), "user-1");
	CHECK_STREQ(json_string_value(json_object_get(c, "aud")), a.aud);
	CHECK(json_integer_value(json_object_get(c, "iat")) == 1800000000);
	CHECK(json_integer_value(json_object_get(c, "exp")) == 1800000300);
	CHECK_STREQ(json_string_value(json_object_get(c, "jti")), "jti-1");
	jwk = json_object_get(json_object_get(c, "cnf"), "jwk");
	CHECK_STREQ(json_string_value(json_object_get(jwk, "kty")), "OKP");
	CHECK_STREQ(json_string_value(json_object_get(jwk, "crv")), "Ed25519");
	CHECK_STREQ(json_string_value(json_object_get(jwk, "x")), k.x);
	json_decref(h);
	json_decref(c);
	{
		int64_t exp = 0;

		CHECK(jwt_exp(tok, &exp) == 0 && exp == 1800000300);
	}
	/* A random jti each time when none is given. */
	a.jti = NULL;
	t2 = jwt_mint_agent(&k, &a, err);
	CHECK(t2 != NULL && strcmp(t2, tok) != 0);
	CHECK(jwt_verify(t2, &k, err) == 0);
	free(t2);
	/* Tampered claims: the signature no longer holds. */
	dot = strchr(tok, '.');
	dot[3] ^= 1;
	CHECK(jwt_verify(tok, &k, err) == -1);
	free(tok);
	/* Without the private key there is nothing to sign with. */
	key_free(&k);
	CHECK(jwt_mint_agent(&k, &a, err) == NULL);
	key_free(&other);
}

static void
test_decode_refusals(void)
{
	static const char *const bad[] = {
	    "",
	    "a.b",
	    "a.b.c.d",
	    "!!.e30.x",
	    "e30.!!.x",
	    "WzFd.e30.x", /* header is an array */
	    "e30.bnVsbA.x",
	};
	char err[ERR_MAX];
	int64_t exp;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(jwt_decode(bad[i], NULL, NULL, err) == -1);
	CHECK(jwt_decode("e30.e30.x", NULL, NULL, err) == 0);
	/* No exp claim, a string exp: none. */
	CHECK(jwt_exp("e30.e30.x", &exp) == -1);
	CHECK(jwt_exp("e30.eyJleHAiOiIxIn0.x", &exp) == -1);
	CHECK(jwt_exp("e30.eyJleHAiOjEyM30.x", &exp) == 0 && exp == 123);
	/* An opaque token is not a JWT. */
	CHECK(jwt_exp("at-3jzG_b4JvjFxNIfQhcaSu2bCm2qlh3uM", &exp) == -1);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_mint_and_verify();
	test_decode_refusals();
	return check_done("jwt");
}
