/*
 * test_sfv: RFC 8941 parse → serialise round trips (the RFC's own
 * examples and their canonical forms) and the rejections §4.2 requires.
 */
#include <string.h>
#include <time.h>

#include "check.h"
#include "sfv.h"

enum kind { LIST, DICT, ITEM, MEMBER };

/* Parse text as kind and serialise it; NULL when parsing fails. */
static char *
roundtrip(enum kind k, const char *text, unsigned flags, char *err)
{
	struct sfv_list l;
	struct sfv_member m;
	struct buf b;
	int r = -1;

	buf_init(&b);
	buf_append(&b, "", 0);
	switch (k) {
	case LIST:
		if (sfv_parse_list(text, strlen(text), flags, &l, err) == 0) {
			r = sfv_serialize_list(&l, &b, err);
			sfv_list_free(&l);
		}
		break;
	case DICT:
		if (sfv_parse_dict(text, strlen(text), flags, &l, err) == 0) {
			r = sfv_serialize_dict(&l, &b, err);
			sfv_list_free(&l);
		}
		break;
	case ITEM:
		if (sfv_parse_item(text, strlen(text), flags, &m, err) == 0) {
			r = sfv_serialize_member(&m, &b, err);
			sfv_member_free(&m);
		}
		break;
	case MEMBER:
		if (sfv_parse_member(text, strlen(text), flags, &m, err) == 0) {
			r = sfv_serialize_member(&m, &b, err);
			sfv_member_free(&m);
		}
		break;
	}
	if (r == -1) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

static void
check_rt(enum kind k, const char *in, const char *want)
{
	char err[ERR_MAX] = "";
	char *got = roundtrip(k, in, 0, err);

	if (got == NULL)
		fprintf(stderr, "  parse of [%s] failed: %s\n", in, err);
	CHECK_STREQ(got, want);
	free(got);
}

static void
check_reject(enum kind k, const char *in, const char *errpart)
{
	char err[ERR_MAX] = "";
	char *got = roundtrip(k, in, 0, err);

	if (got != NULL)
		fprintf(stderr, "  [%s] was accepted as [%s]\n", in, got);
	CHECK(got == NULL);
	if (errpart != NULL && strstr(err, errpart) == NULL)
		fprintf(stderr, "  [%s]: error [%s] lacks [%s]\n", in, err,
		        errpart);
	CHECK(errpart == NULL || strstr(err, errpart) != NULL);
	free(got);
}

static void
test_rfc_examples(void)
{
	/* §3.1 Lists */
	check_rt(LIST, "sugar, tea, rum", "sugar, tea, rum");
	check_rt(LIST, "sugar,tea,   rum", "sugar, tea, rum");
	check_rt(LIST, "sugar,\ttea", "sugar, tea");
	/* §3.1.1 Inner Lists */
	check_rt(LIST, "(\"foo\" \"bar\"), (\"baz\"), (\"bat\" \"one\"), ()",
	         "(\"foo\" \"bar\"), (\"baz\"), (\"bat\" \"one\"), ()");
	check_rt(LIST, "(\"foo\"; a=1;b=2);lvl=5, (\"bar\" \"baz\");lvl=1",
	         "(\"foo\";a=1;b=2);lvl=5, (\"bar\" \"baz\");lvl=1");
	/* §3.1.2 Parameters */
	check_rt(LIST, "abc;a=1;b=2; cde_456, (ghi;jk=4 l);q=\"9\";r=w",
	         "abc;a=1;b=2;cde_456, (ghi;jk=4 l);q=\"9\";r=w");
	/* §3.2 Dictionaries */
	check_rt(DICT, "en=\"Applepie\", da=:w4ZibGV0w6ZydGU=:",
	         "en=\"Applepie\", da=:w4ZibGV0w6ZydGU=:");
	check_rt(DICT, "a=?0, b, c; foo=bar", "a=?0, b, c;foo=bar");
	check_rt(DICT, "a=?1, b=?1;x", "a, b;x");
	check_rt(DICT, "rating=1.5, feelings=(joy sadness)",
	         "rating=1.5, feelings=(joy sadness)");
	check_rt(DICT, "a=(1 2), b=3, c=4;aa=bb, d=(5 6);valid",
	         "a=(1 2), b=3, c=4;aa=bb, d=(5 6);valid");
	/* §3.3 Items */
	check_rt(ITEM, "5; foo=bar", "5;foo=bar");
	check_rt(ITEM, "42", "42");
	check_rt(ITEM, "-42", "-42");
	check_rt(ITEM, "-0", "0");
	check_rt(ITEM, "00042", "42");
	check_rt(ITEM, "999999999999999", "999999999999999");
	check_rt(ITEM, "-999999999999999", "-999999999999999");
	check_rt(ITEM, "4.5", "4.5");
	check_rt(ITEM, "1.50", "1.5");
	check_rt(ITEM, "1.000", "1.0");
	check_rt(ITEM, "-0.05", "-0.05");
	check_rt(ITEM, "0.125", "0.125");
	check_rt(ITEM, "123456789012.123", "123456789012.123");
	check_rt(ITEM, "\"hello world\"", "\"hello world\"");
	check_rt(ITEM, "\"say \\\"hi\\\" \\\\o/\"",
	         "\"say \\\"hi\\\" \\\\o/\"");
	check_rt(ITEM, "foo123/456", "foo123/456");
	check_rt(ITEM, "*foo:bar", "*foo:bar");
	check_rt(ITEM, ":cHJldGVuZCB0aGlzIGlzIGJpbmFyeSBjb250ZW50Lg==:",
	         ":cHJldGVuZCB0aGlzIGlzIGJpbmFyeSBjb250ZW50Lg==:");
	check_rt(ITEM, "::", "::");
	check_rt(ITEM, "?1", "?1");
	check_rt(ITEM, "?0", "?0");
	check_rt(ITEM, "  \"padded\"  ", "\"padded\"");
	/* Canonicalisation: missing base64 padding is accepted (§4.2.7) and
	 * re-serialised padded; repeated keys overwrite in place. */
	check_rt(ITEM, ":aGVsbG8:", ":aGVsbG8=:");
	check_rt(DICT, "a=1, b=2, a=3", "a=3, b=2");
	check_rt(ITEM, "1;a=1;b;a=2", "1;a=2;b");
	check_rt(LIST, "", "");
	check_rt(DICT, "", "");
	/* The Signature-Input member of RFC 9421 edge vector e21. */
	check_rt(MEMBER,
	         "(  \"@method\"   \"@authority\" );created=1700000000;"
	         "keyid=\"test-key-ed25519\"",
	         "(\"@method\" \"@authority\");created=1700000000;"
	         "keyid=\"test-key-ed25519\"");
	check_rt(MEMBER, "(\"example-dict\";key=\"a\" \"x\";bs)",
	         "(\"example-dict\";key=\"a\" \"x\";bs)");
}

static void
test_rejections(void)
{
	check_reject(ITEM, "", "item expected");
	check_reject(ITEM, "1.", "ends with '.'");
	check_reject(ITEM, "1234567890123.1", "12 integer digits");
	check_reject(ITEM, "1.1234", "3 fractional");
	check_reject(ITEM, "1234567890123456", "15 digits");
	check_reject(ITEM, "-", "number expected");
	check_reject(ITEM, "-a", "digit expected");
	check_reject(ITEM, "\"bad \\a escape\"", "bad escape");
	check_reject(ITEM, "\"unterminated", "unterminated string");
	check_reject(ITEM, "\"tab\there\"", "not allowed in string");
	check_reject(ITEM, "\"caf\xc3\xa9\"", "not allowed in string");
	check_reject(ITEM, ":abc!:", "byte sequence");
	check_reject(ITEM, ":abcd", "unterminated byte sequence");
	check_reject(ITEM, ":a:", "not valid base64");
	check_reject(ITEM, ":ab=c:", "not valid base64");
	check_reject(ITEM, ":sr5ZGEA2-Lk_:", "byte sequence");
	check_reject(ITEM, "?2", "boolean");
	check_reject(ITEM, "?", "boolean");
	check_reject(ITEM, "1 2", "after item");
	check_reject(ITEM, "1;", "key");
	check_reject(ITEM, "1;A=2", "key must start");
	check_reject(ITEM, "\tfoo", "item expected");
	check_reject(ITEM, "@foo", "item expected");
	check_reject(LIST, "a,", "trailing comma");
	check_reject(LIST, "a,,b", "item expected");
	check_reject(LIST, "a b", "','");
	check_reject(LIST, "(a b", "unterminated inner list");
	check_reject(LIST, "(\"a\"\"b\")", "separated by a space");
	check_reject(LIST, "(a)b", "','");
	check_reject(DICT, "A=1", "key must start");
	check_reject(DICT, "a=1,", "trailing comma");
	check_reject(DICT, "a=1 b=2", "','");
	check_reject(DICT, "\"a\"=1", "key must start");
	check_reject(DICT, "a=", "item expected");
	check_reject(MEMBER, "(\"@method\") x", "after member");
}

static void
test_access_and_raw(void)
{
	struct sfv_list d;
	struct sfv_member m;
	const struct sfv_member *dm;
	const struct sfv_bare *p;
	char err[ERR_MAX];
	const char *sig = "sig1=:sr5ZGEA2-LkKN4RvFrpY_w:, sig2=:aGk=:";
	char *got;

	CHECK(sfv_parse_dict("a=1;x=\"y\", b=(c d)", 18, 0, &d, err) == 0);
	dm = sfv_dict_get(&d, "a");
	CHECK(dm != NULL && !dm->is_inner && dm->bare.type == SFV_INTEGER &&
	      dm->bare.num == 1);
	p = dm ? sfv_params_get(&dm->params, "x") : NULL;
	CHECK(p != NULL && p->type == SFV_STRING && strcmp(p->str, "y") == 0);
	dm = sfv_dict_get(&d, "b");
	CHECK(dm != NULL && dm->is_inner && dm->nitems == 2 &&
	      dm->items[1].bare.type == SFV_TOKEN &&
	      strcmp(dm->items[1].bare.str, "d") == 0);
	CHECK(sfv_dict_get(&d, "c") == NULL);
	sfv_list_free(&d);

	/* The LumoAuth Signature carries base64url inside :…:, which is
	 * rejected strictly and kept raw with SFV_RAW_BYTES. */
	CHECK(sfv_parse_dict(sig, strlen(sig), 0, &d, err) == -1);
	CHECK(sfv_parse_dict(sig, strlen(sig), SFV_RAW_BYTES, &d, err) == 0);
	dm = sfv_dict_get(&d, "sig1");
	CHECK(dm != NULL && dm->bare.type == SFV_BYTES &&
	      dm->bare.bytes == NULL &&
	      strcmp(dm->bare.str, "sr5ZGEA2-LkKN4RvFrpY_w") == 0);
	dm = sfv_dict_get(&d, "sig2");
	CHECK(dm != NULL && dm->bare.bytes != NULL && dm->bare.nbytes == 2 &&
	      memcmp(dm->bare.bytes, "hi", 2) == 0);
	sfv_list_free(&d);
	got = roundtrip(DICT, sig, SFV_RAW_BYTES, err);
	CHECK_STREQ(got, sig);
	free(got);

	/* Decoded values. */
	CHECK(sfv_parse_item("\"a\\\"b\"", 6, 0, &m, err) == 0);
	CHECK(m.bare.type == SFV_STRING && strcmp(m.bare.str, "a\"b") == 0);
	sfv_member_free(&m);
	CHECK(sfv_parse_item("-12.5", 5, 0, &m, err) == 0);
	CHECK(m.bare.type == SFV_DECIMAL && m.bare.num == -12500);
	sfv_member_free(&m);
	CHECK(sfv_parse_item(":aGVsbG8=:", 10, 0, &m, err) == 0);
	CHECK(m.bare.type == SFV_BYTES && m.bare.nbytes == 5 &&
	      memcmp(m.bare.bytes, "hello", 5) == 0);
	sfv_member_free(&m);
}

static void
test_build_and_serialise(void)
{
	struct sfv_member m;
	struct sfv_bare v;
	struct buf b;
	char err[ERR_MAX];

	memset(&m, 0, sizeof(m));
	buf_init(&b);
	sfv_bare_set_token(&m.bare, "hwk");
	sfv_bare_set_string(&v, "OKP");
	sfv_params_put(&m.params, "kty", &v);
	sfv_bare_set_string(&v, "q\"uote");
	sfv_params_put(&m.params, "x", &v);
	sfv_bare_set_boolean(&v, 1);
	sfv_params_put(&m.params, "flag", &v);
	sfv_bare_set_integer(&v, 7);
	sfv_params_put(&m.params, "kty", &v); /* overwrite in place */
	CHECK(sfv_serialize_member(&m, &b, err) == 0);
	CHECK_STREQ(b.data, "hwk;kty=7;x=\"q\\\"uote\";flag");
	sfv_member_free(&m);

	/* Values no parser produces are refused, not written. */
	buf_reset(&b);
	sfv_bare_set_integer(&v, 1000000000000000LL);
	CHECK(sfv_serialize_bare(&v, &b, err) == -1);
	CHECK(strstr(err, "out of range") != NULL);
	sfv_bare_set_token(&v, "1abc");
	CHECK(sfv_serialize_bare(&v, &b, err) == -1);
	sfv_bare_free(&v);
	sfv_bare_set_string(&v, "line\nbreak");
	CHECK(sfv_serialize_bare(&v, &b, err) == -1);
	sfv_bare_free(&v);
	sfv_bare_set_bytes(&v, "\x00\xff", 2);
	CHECK(sfv_serialize_bare(&v, &b, err) == 0);
	CHECK_STREQ(b.data, ":AP8=:");
	sfv_bare_free(&v);
	buf_free(&b);

	CHECK(sfv_is_key("a-b_c.d*1") && sfv_is_key("*x") && !sfv_is_key("A") &&
	      !sfv_is_key("1a") && !sfv_is_key(""));
	CHECK(sfv_is_token("application/json") && !sfv_is_token("1x") &&
	      !sfv_is_token("a b"));
}

/* A repeated key overwrites the earlier member in place (§4.2.2), and
 * finding it was a scan of every member so far: a 300 kB dictionary or
 * parameter list took half a minute of one core (looked for once
 * fuzz_response had found the same shape in the obs-fold code). Arrays grew
 * one element at a time, which under ASan copies the whole array each
 * time. With keys indexed and arrays doubled, 30,000 of each parse in
 * milliseconds; the bound leaves two orders of magnitude for slow and
 * sanitizer builds. */
static void
test_many_keys_linear(void)
{
	enum { N = 30000 };
	struct sfv_list l;
	struct sfv_member m;
	struct buf b;
	struct timespec t0, t1;
	const struct sfv_member *d;
	char err[ERR_MAX];
	double secs;
	size_t i;

	buf_init(&b);
	for (i = 0; i < N; i++)
		buf_appendf(&b, "%sk%zu=%zu", i ? ", " : "", i, i);
	buf_appends(&b, ", k7=dup, k0");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(sfv_parse_dict(b.data, b.len, 0, &l, err) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "dictionary of %d keys: %.3f s\n", N, secs);
	CHECK(secs < 1.0);
	/* repeats keep their first place and take the last value */
	CHECK(l.n == N);
	CHECK(l.n == N && strcmp(l.v[7].key, "k7") == 0 &&
	      l.v[7].bare.type == SFV_TOKEN &&
	      strcmp(l.v[7].bare.str, "dup") == 0);
	CHECK(l.n == N && l.v[0].bare.type == SFV_BOOLEAN &&
	      strcmp(l.v[N - 1].key, "k29999") == 0 &&
	      l.v[N - 1].bare.num == N - 1);
	CHECK((d = sfv_dict_get(&l, "k12345")) != NULL && d->bare.num == 12345);
	sfv_list_free(&l);

	buf_reset(&b);
	buf_appends(&b, "x");
	for (i = 0; i < N; i++)
		buf_appendf(&b, ";p%zu=%zu", i, i);
	buf_appends(&b, ";p3=?0");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(sfv_parse_item(b.data, b.len, 0, &m, err) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "item with %d parameters: %.3f s\n", N, secs);
	CHECK(secs < 1.0);
	CHECK(m.params.n == N);
	CHECK(m.params.n == N && strcmp(m.params.v[3].key, "p3") == 0 &&
	      m.params.v[3].value.type == SFV_BOOLEAN &&
	      m.params.v[3].value.num == 0);
	CHECK(sfv_params_get(&m.params, "p29999") != NULL &&
	      sfv_params_get(&m.params, "p29999")->num == N - 1);
	sfv_member_free(&m);

	/* Lists and inner lists grow by doubling too. */
	buf_reset(&b);
	for (i = 0; i < N; i++)
		buf_appendf(&b, "%s%zu", i ? ", " : "", i);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(sfv_parse_list(b.data, b.len, 0, &l, err) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "list of %d members: %.3f s\n", N, secs);
	CHECK(secs < 1.0);
	CHECK(l.n == N && l.v[N - 1].bare.num == N - 1);
	sfv_list_free(&l);
	buf_reset(&b);
	buf_appendc(&b, '(');
	for (i = 0; i < N; i++)
		buf_appendf(&b, "%s%zu", i ? " " : "", i);
	buf_appendc(&b, ')');
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(sfv_parse_member(b.data, b.len, 0, &m, err) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "inner list of %d items: %.3f s\n", N, secs);
	CHECK(secs < 1.0);
	CHECK(m.is_inner && m.nitems == N && m.items[N - 1].bare.num == N - 1);
	sfv_member_free(&m);
	buf_free(&b);
}

int
main(void)
{
	test_rfc_examples();
	test_rejections();
	test_access_and_raw();
	test_build_and_serialise();
	test_many_keys_linear();
	return check_done("sfv");
}
