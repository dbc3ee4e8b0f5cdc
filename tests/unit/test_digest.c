/*
 * test_digest: RFC 9530 Content-Digest against the vectors in
 * rfc9530/content-digest.json — one-shot and chunked hashing, and
 * digest_verify accepting the right values and naming what is wrong.
 */
#include <jansson.h>
#include <string.h>

#include "check.h"
#include "digest.h"

static void
field(enum digest_alg alg, const struct buf *body, struct buf *out)
{
	buf_init(out);
	digest_field(alg, body->data ? body->data : "", body->len, out);
}

/* Feed the body in pieces of `step` bytes. */
static void
chunked(enum digest_alg alg, const struct buf *body, size_t step,
        struct buf *out)
{
	struct digest_ctx *d = digest_new(alg);
	size_t off, n;

	buf_init(out);
	for (off = 0; off < body->len; off += n) {
		n = body->len - off < step ? body->len - off : step;
		digest_update(d, body->data + off, n);
	}
	digest_final(d, out);
}

static void
test_vector(json_t *v)
{
	const char *id = json_string_value(json_object_get(v, "id"));
	const char *file = json_string_value(json_object_get(v, "body_file"));
	const char *w256 =
	    json_string_value(json_object_get(v, "content_digest_sha256"));
	const char *w512 =
	    json_string_value(json_object_get(v, "content_digest_sha512"));
	const char *both =
	    json_string_value(json_object_get(v, "content_digest_both"));
	struct buf body, got;
	char err[ERR_MAX];
	char *tampered;

	CHECK(id && file && w256 && w512 && both);
	if (!id || !file || !w256 || !w512 || !both)
		return;
	fprintf(stderr, "vector %s\n", id);
	check_read_vector(file, &body);
	CHECK((json_int_t)body.len ==
	      json_integer_value(json_object_get(v, "length")));

	field(DIGEST_SHA256, &body, &got);
	CHECK_STREQ(got.data, w256);
	buf_free(&got);
	field(DIGEST_SHA512, &body, &got);
	CHECK_STREQ(got.data, w512);
	buf_free(&got);
	chunked(DIGEST_SHA256, &body, 1, &got);
	CHECK_STREQ(got.data, w256);
	buf_free(&got);
	chunked(DIGEST_SHA512, &body, 7, &got);
	CHECK_STREQ(got.data, w512);
	buf_free(&got);

	CHECK(digest_verify(w256, body.data ? body.data : "", body.len, err) ==
	      0);
	CHECK(digest_verify(w512, body.data ? body.data : "", body.len, err) ==
	      0);
	CHECK(digest_verify(both, body.data ? body.data : "", body.len, err) ==
	      0);

	/* One byte more (or a changed byte) must fail, and say which. */
	tampered = xmalloc(body.len + 1);
	if (body.len > 0)
		memcpy(tampered, body.data, body.len);
	tampered[body.len] = 'x';
	CHECK(digest_verify(both, tampered, body.len + 1, err) == -1);
	CHECK(strstr(err, "sha-256 does not match") != NULL);
	if (body.len > 0) {
		tampered[0] ^= 1;
		CHECK(digest_verify(w512, tampered, body.len, err) == -1);
		CHECK(strstr(err, "sha-512 does not match") != NULL);
	}
	free(tampered);
	buf_free(&body);
}

static void
test_verify_rules(void)
{
	const char *hello = "{\"hello\": \"world\"}";
	size_t n = strlen(hello);
	char err[ERR_MAX];
	enum digest_alg a;

	/* Unknown algorithms are ignored, but one known one is needed. */
	CHECK(digest_verify(
	          "md5=:Sd/dVLAcvNLSq16eXua5uQ==:, "
	          "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
	          hello, n, err) == 0);
	CHECK(digest_verify("md5=:Sd/dVLAcvNLSq16eXua5uQ==:", hello, n, err) ==
	      -1);
	CHECK(strstr(err, "no supported algorithm") != NULL);
	CHECK(digest_verify("", hello, n, err) == -1);
	/* Every known member must match, not just one. */
	CHECK(digest_verify(
	          "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
	          ", sha-512=:AAAA:",
	          hello, n, err) == -1);
	CHECK(strstr(err, "sha-512") != NULL);
	/* Not a dictionary / not a byte sequence. */
	CHECK(digest_verify(
	          "sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=", hello,
	          n, err) == -1);
	CHECK(strstr(err, "not a valid dictionary") != NULL);
	CHECK(digest_verify(
	          "sha-256=\"X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=\"",
	          hello, n, err) == -1);
	CHECK(strstr(err, "not a byte sequence") != NULL);
	/* The RFC 9530 Appendix D printed Want-* example is a dictionary of
	 * integers, not digests. */
	CHECK(digest_verify("sha-512=3, sha-256=10", hello, n, err) == -1);

	CHECK(digest_alg_parse("sha-256", &a) == 0 && a == DIGEST_SHA256);
	CHECK(digest_alg_parse("sha-512", &a) == 0 && a == DIGEST_SHA512);
	CHECK(digest_alg_parse("none", &a) == 0 && a == DIGEST_NONE);
	CHECK(digest_alg_parse("md5", &a) == -1);
	CHECK(digest_alg_parse("SHA-256", &a) == -1);
	CHECK_STREQ(digest_alg_name(DIGEST_SHA512), "sha-512");
	CHECK(digest_new(DIGEST_NONE) == NULL);
}

int
main(void)
{
	struct buf js;
	json_t *root, *vecs;
	json_error_t jerr;
	size_t i;

	check_read_vector("rfc9530/content-digest.json", &js);
	root = json_loadb(js.data, js.len, 0, &jerr);
	CHECK(root != NULL);
	vecs = json_object_get(root, "vectors");
	CHECK(json_array_size(vecs) >= 7);
	for (i = 0; i < json_array_size(vecs); i++)
		test_vector(json_array_get(vecs, i));
	test_verify_rules();
	json_decref(root);
	buf_free(&js);
	return check_done("digest");
}
