/*
 * test_httpsig: the signer against the vectors, byte for byte — the
 * LumoAuth cross-SDK vector, RFC 9421 B.2.6 and the other RFC request
 * bases, every edge case, the B.4 transformations — then sign → verify
 * round trips for the three profiles and one rejection per tampering.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "httpsig.h"
#include "sfv.h"

static const struct http_limits limits = {.max_head_bytes = 65536,
                                          .max_fields = 100};
/* What `verify` may use for the RFC's own examples. */
static const struct http_limits obs_limits = {
    .max_head_bytes = 65536, .max_fields = 100, .allow_obs_fold = 1};

/* ---- helpers ---- */

/* http1 rejects obs-fold (as a proxy must); RFC 9421 §2.1 still defines
 * how a verifier canonicalises it. To feed e01 to httpsig, the folded
 * continuation lines are taken out before parsing and put back into the
 * field value afterwards, as a lenient parser would store them. */
struct fold {
	char name[64];
	char cont[256];
};

static int
parse_lenient(const char *wire, size_t len, struct http_request *r, char *err)
{
	struct fold folds[8];
	size_t nfolds = 0, i, j;
	struct buf b;
	const char *p = wire, *end = wire + len, *eol, *head_end;
	const char *prev = NULL;
	int rc;

	head_end = strstr(wire, "\r\n\r\n");
	if (head_end == NULL)
		head_end = end;
	buf_init(&b);
	while (p < head_end) {
		eol = strstr(p, "\r\n");
		if (eol == NULL || eol > head_end)
			eol = head_end;
		if ((*p == ' ' || *p == '\t') && prev != NULL && nfolds < 8) {
			const char *colon =
			    memchr(prev, ':', (size_t)(p - prev));

			snprintf(folds[nfolds].name, sizeof(folds[0].name),
			         "%.*s", (int)(colon - prev), prev);
			snprintf(folds[nfolds].cont, sizeof(folds[0].cont),
			         "%.*s", (int)(eol - p), p);
			nfolds++;
		} else {
			buf_append(&b, p, (size_t)(eol - p));
			buf_appends(&b, "\r\n");
			prev = p;
		}
		p = eol + 2;
	}
	if (head_end < end)
		buf_append(&b, head_end + 2, (size_t)(end - head_end - 2));
	rc = http1_parse_request(b.data, b.len, &limits, r, err);
	buf_free(&b);
	if (rc == -1)
		return -1;
	for (i = 0; i < nfolds; i++) {
		for (j = 0; j < r->fields.n; j++) {
			struct http_field *f = &r->fields.v[j];
			struct buf v;

			if (!util_strcaseeq(f->name, folds[i].name))
				continue;
			buf_init(&v);
			buf_appendf(&v, "%s\r\n%s", f->value, folds[i].cont);
			free(f->value);
			f->value = buf_steal(&v);
		}
	}
	return 0;
}

static int
parse_text(const char *wire, size_t len, const char *scheme,
           struct http_request *r)
{
	char err[ERR_MAX];

	http_request_init(r);
	if (http1_parse_request(wire, len, &limits, r, err) == -1) {
		http_request_free(r);
		http_request_init(r);
		if (strstr(wire, "\r\n ") == NULL ||
		    parse_lenient(wire, len, r, err) == -1) {
			fprintf(stderr, "  cannot parse request: %s\n", err);
			return -1;
		}
	}
	if (scheme != NULL)
		http_request_set_scheme(r, scheme);
	return 0;
}

static int
load_request(const char *rel, const char *scheme, struct http_request *r)
{
	struct buf b;
	int rc;

	check_read_vector(rel, &b);
	rc = parse_text(b.data, b.len, scheme, r);
	buf_free(&b);
	return rc;
}

/* The vectors' key files are world-readable; key_load refuses that, so
 * load a 0600 copy. */
static int
load_private(const char *rel, struct key *k)
{
	char path[] = "/tmp/aauth-test-key-XXXXXX";
	char err[ERR_MAX];
	struct buf pem;
	int fd, rc;

	check_read_vector(rel, &pem);
	fd = mkstemp(path); /* mode 0600 */
	if (fd == -1 || write(fd, pem.data, pem.len) != (ssize_t)pem.len) {
		buf_free(&pem);
		return -1;
	}
	close(fd);
	buf_free(&pem);
	rc = key_load(k, path, err);
	unlink(path);
	if (rc == -1)
		fprintf(stderr, "  key_load: %s\n", err);
	return rc;
}

static int
load_public(const char *rel, struct key *k)
{
	char err[ERR_MAX];

	if (key_load_public(k, check_vector(rel), err) == -1) {
		fprintf(stderr, "  key_load_public: %s\n", err);
		return -1;
	}
	return 0;
}

static char *
vector_text(const char *rel)
{
	struct buf b;

	check_read_vector(rel, &b);
	buf_append(&b, "", 0);
	return buf_steal(&b);
}

static const char *
field(const struct http_request *r, const char *name)
{
	return http_fields_get(&r->fields, name);
}

/* The Signature-Input member text for label, canonical (via sfv). */
static char *
member_text(const struct http_request *r, const char *label)
{
	const char *si = field(r, "Signature-Input");
	const struct sfv_member *m;
	struct sfv_list d;
	struct buf b;
	char err[ERR_MAX];

	if (si == NULL || sfv_parse_dict(si, strlen(si), 0, &d, err) == -1)
		return NULL;
	buf_init(&b);
	m = sfv_dict_get(&d, label);
	if (m == NULL || sfv_serialize_member(m, &b, err) == -1) {
		sfv_list_free(&d);
		buf_free(&b);
		return NULL;
	}
	sfv_list_free(&d);
	return buf_steal(&b);
}

/* The raw text after "label=" in a single-member Signature-Input. */
static const char *
raw_member(const struct http_request *r, const char *label)
{
	const char *si = field(r, "Signature-Input");
	size_t n = strlen(label);

	if (si == NULL || strncmp(si, label, n) != 0 || si[n] != '=')
		return NULL;
	return si + n + 1;
}

static void
wire(const struct http_request *r, struct buf *out)
{
	buf_init(out);
	http1_write_request(r, out);
}

/* A copy of s with the first `from` replaced by `to`. */
static char *
replace(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);
	struct buf b;

	if (at == NULL) {
		fprintf(stderr, "  replace: [%s] not found\n", from);
		return xstrdup(s);
	}
	buf_init(&b);
	buf_append(&b, s, (size_t)(at - s));
	buf_appends(&b, to);
	buf_appends(&b, at + strlen(from));
	return buf_steal(&b);
}

/* Verify wire text; returns the httpsig_verify result, err filled. */
static int
verify_text(const struct httpsig_profile *p, const struct key *pub,
            const char *text, const struct httpsig_verify_opts *o, char *err)
{
	struct http_request r;
	int rc;

	if (parse_text(text, strlen(text), "https", &r) == -1) {
		err_set(err, "(unparseable)");
		return -2;
	}
	rc = httpsig_verify(p, pub, &r, o, NULL, err);
	http_request_free(&r);
	return rc;
}

/* Expect verification of text to fail with an error containing want. */
static void
expect_reject(const char *what, const struct httpsig_profile *p,
              const struct key *pub, const char *text,
              const struct httpsig_verify_opts *o, const char *want)
{
	char err[ERR_MAX] = "";
	int rc = verify_text(p, pub, text, o, err);

	if (rc != -1 || strstr(err, want) == NULL)
		fprintf(stderr, "  %s: rc %d, error [%s], wanted [%s]\n", what,
		        rc, err, want);
	CHECK(rc == -1);
	CHECK(strstr(err, want) != NULL);
}

/* ---- the LumoAuth vector ---- */

static void
test_lumoauth_vector(void)
{
	struct httpsig_profile p;
	struct http_request r;
	struct httpsig_sign_opts so = {0};
	struct httpsig_verify_opts vo = {0};
	struct key k, pub;
	struct buf base, out;
	json_t *cs;
	json_error_t jerr;
	char err[ERR_MAX];
	char *want_base, *want_si, *want_sig, *want_signed, *cjs;
	unsigned char seed[32], pk[32], sk[64];
	int i;

	fprintf(stderr, "lumoauth/token-request\n");
	cjs = vector_text("lumoauth/token-request/case.json");
	cs = json_loads(cjs, 0, &jerr);
	free(cjs);
	CHECK(cs != NULL);
	if (cs == NULL)
		return;
	want_base = vector_text("lumoauth/token-request/signature-base.txt");
	want_si = vector_text("lumoauth/token-request/signature-input.txt");
	want_sig = vector_text("lumoauth/token-request/signature.txt");
	want_signed = vector_text("lumoauth/token-request/request-signed.http");

	CHECK(load_private("lumoauth/agent-key.pem", &k) == 0);
	/* The README says the seed is 0x00..0x1f: the loaded key must be the
	 * one libsodium derives from it. */
	for (i = 0; i < 32; i++)
		seed[i] = (unsigned char)i;
	crypto_sign_seed_keypair(pk, sk, seed);
	CHECK(memcmp(k.pk, pk, 32) == 0);
	CHECK_STREQ(k.thumbprint,
	            json_string_value(json_object_get(cs, "jwk_thumbprint")));
	CHECK_STREQ(k.x, json_string_value(json_object_get(cs, "public_x")));

	CHECK(httpsig_profile_builtin(&p, "lumoauth", err) == 0);
	CHECK(load_request("lumoauth/token-request/request-unsigned.http",
	                   "https", &r) == 0);
	http_fields_add(&r.fields, "Agent-Auth",
	                "agent_token=AGENT_TOKEN_FIXED");
	so.created = json_integer_value(json_object_get(cs, "created"));
	so.nonce = json_string_value(json_object_get(cs, "nonce"));
	buf_init(&base);
	CHECK(httpsig_sign(&p, &k, &r, &so, &base, err) == 0);
	CHECK_STREQ(base.data, want_base);
	CHECK_STREQ(field(&r, "Signature-Input"), want_si);
	CHECK_STREQ(field(&r, "Signature"), want_sig);
	CHECK_STREQ(field(&r, "Content-Digest"),
	            json_string_value(json_object_get(cs, "content_digest")));
	CHECK(strstr(field(&r, "Signature"),
	             json_string_value(
	                 json_object_get(cs, "signature_b64url"))) != NULL);
	/* The whole message, as the SDKs send it. */
	wire(&r, &out);
	CHECK_STREQ(out.data, want_signed);
	buf_free(&out);

	/* The resource's side: verify what was just signed and the vector's
	 * own signed request. */
	CHECK(load_public("lumoauth/agent-key.pub.pem", &pub) == 0);
	vo.now = so.created + 30;
	CHECK(httpsig_verify(&p, &pub, &r, &vo, NULL, err) == 0);
	http_request_free(&r);
	CHECK(load_request("lumoauth/token-request/request-signed.http",
	                   "https", &r) == 0);
	buf_reset(&base);
	CHECK(httpsig_verify(&p, &pub, &r, &vo, &base, err) == 0);
	CHECK_STREQ(base.data, want_base);
	http_request_free(&r);

	buf_free(&base);
	key_free(&k);
	key_free(&pub);
	httpsig_profile_free(&p);
	json_decref(cs);
	free(want_base);
	free(want_si);
	free(want_sig);
	free(want_signed);
}

/* ---- RFC 9421 ---- */

static void
test_rfc_b26(void)
{
	static const char *const comps[] = {"date",         "@method",
	                                    "@path",        "@authority",
	                                    "content-type", "content-length"};
	static const char *const params[] = {"created", "keyid"};
	struct httpsig_profile p;
	struct httpsig_sign_opts so = {0};
	struct httpsig_verify_opts vo = {0};
	struct http_request r;
	struct key k, pub;
	struct buf base;
	char err[ERR_MAX];
	char *want_base, *want_si, *want_sig;

	fprintf(stderr, "rfc9421/b2_6-ed25519\n");
	want_base = vector_text("rfc9421/b2_6-ed25519/signature-base.txt");
	want_si = vector_text("rfc9421/b2_6-ed25519/signature-input.txt");
	want_sig = vector_text("rfc9421/b2_6-ed25519/signature.txt");
	CHECK(load_private("keys/test-key-ed25519.priv.pem", &k) == 0);
	CHECK(load_public("keys/test-key-ed25519.pub.pem", &pub) == 0);

	CHECK(httpsig_profile_builtin(&p, "rfc9421", err) == 0);
	CHECK(httpsig_profile_set_components(&p, comps, 6, err) == 0);
	CHECK(httpsig_profile_set_params(&p, params, 2, err) == 0);
	free(p.label);
	p.label = xstrdup("sig-b26");
	p.keyid = xstrdup("test-key-ed25519");
	p.digest = DIGEST_NONE; /* the request carries its own sha-512 */

	CHECK(load_request("rfc9421/b2_6-ed25519/request-unsigned.http",
	                   "https", &r) == 0);
	so.created = 1618884473;
	buf_init(&base);
	CHECK(httpsig_sign(&p, &k, &r, &so, &base, err) == 0);
	CHECK_STREQ(base.data, want_base);
	CHECK_STREQ(field(&r, "Signature-Input"), want_si);
	CHECK_STREQ(field(&r, "Signature"), want_sig);
	vo.ignore_time = 1;
	CHECK(httpsig_verify(&p, &pub, &r, &vo, NULL, err) == 0);
	http_request_free(&r);

	/* The RFC's signed message verifies, and its time is checked when
	 * not ignored. */
	CHECK(load_request("rfc9421/b2_6-ed25519/request-signed.http", "https",
	                   &r) == 0);
	CHECK(httpsig_verify(&p, &pub, &r, &vo, NULL, err) == 0);
	vo.ignore_time = 0;
	vo.now = 1618884473 + 3600;
	CHECK(httpsig_verify(&p, &pub, &r, &vo, NULL, err) == -1);
	CHECK(strstr(err, "too old") != NULL &&
	      strstr(err, "1618884473") != NULL &&
	      strstr(err, "window is 60 s") != NULL);
	http_request_free(&r);

	buf_free(&base);
	key_free(&k);
	key_free(&pub);
	httpsig_profile_free(&p);
	free(want_base);
	free(want_si);
	free(want_sig);
}

/* Every RFC request example: our base for its Signature-Input member
 * equals the base that the RFC's signature verifies over. */
static void
test_rfc_request_bases(void)
{
	json_t *idx, *cases, *c;
	json_error_t jerr;
	struct http_request r;
	struct buf base;
	char err[ERR_MAX], rel[512], *text, *mv, *want;
	const char *id, *label;
	size_t i;

	text = vector_text("index.json");
	idx = json_loads(text, 0, &jerr);
	free(text);
	CHECK(idx != NULL);
	cases = json_object_get(idx, "cases");
	buf_init(&base);
	for (i = 0; i < json_array_size(cases); i++) {
		c = json_array_get(cases, i);
		id = json_string_value(json_object_get(c, "id"));
		label = json_string_value(json_object_get(c, "label"));
		if (strcmp(json_string_value(json_object_get(c, "kind")),
		           "request") != 0 ||
		    strncmp(id, "b4-", 3) == 0)
			continue;
		fprintf(stderr, "rfc9421/%s base\n", id);
		snprintf(rel, sizeof(rel), "rfc9421/%s/signature-base.txt", id);
		if (access(check_vector(rel), R_OK) != 0)
			snprintf(rel, sizeof(rel),
			         "rfc9421/%s/signature-base.computed.txt", id);
		want = vector_text(rel);
		snprintf(rel, sizeof(rel), "rfc9421/%s/request-signed.http",
		         id);
		CHECK(load_request(rel, "https", &r) == 0);
		mv = member_text(&r, label);
		CHECK(mv != NULL);
		if (mv != NULL) {
			if (httpsig_base(&r, mv, 0, &base, err) == -1)
				fprintf(stderr, "  %s\n", err);
			CHECK_STREQ(base.data, want);
		}
		free(mv);
		free(want);
		http_request_free(&r);
	}
	buf_free(&base);
	json_decref(idx);
}

/* B.4: allowed transformations keep the signature valid, the others
 * break it. */
static void
test_rfc_b4(void)
{
	static const struct {
		const char *dir;
		int valid;
	} v[] = {
	    {"b4-ed25519-transform", 1},
	    {"b4-ed25519-transform-v1-added-header-and-query", 1},
	    {"b4-ed25519-transform-v2-date-removed-accept-collapsed", 1},
	    {"b4-ed25519-transform-v3-fields-reordered", 1},
	    {"b4-ed25519-transform-v4-method-authority-changed", 0},
	    {"b4-ed25519-transform-v5-accept-order-swapped", 0},
	};
	struct httpsig_profile p;
	struct httpsig_verify_opts vo = {0};
	struct http_request r;
	struct key pub;
	struct buf base;
	char err[ERR_MAX], rel[512], *want;
	size_t i;
	int rc;

	CHECK(load_public("keys/test-key-ed25519.pub.pem", &pub) == 0);
	CHECK(httpsig_profile_builtin(&p, "rfc9421", err) == 0);
	CHECK(httpsig_profile_set_components(&p, NULL, 0, err) == 0);
	vo.ignore_time = 1;
	vo.label = "transform";
	want = vector_text("rfc9421/b4-ed25519-transform/signature-base.txt");
	buf_init(&base);
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		fprintf(stderr, "rfc9421/%s\n", v[i].dir);
		snprintf(rel, sizeof(rel), "rfc9421/%s/request-signed.http",
		         v[i].dir);
		CHECK(load_request(rel, "https", &r) == 0);
		rc = httpsig_verify(&p, &pub, &r, &vo, &base, err);
		if (v[i].valid) {
			if (rc != 0)
				fprintf(stderr, "  %s\n", err);
			CHECK(rc == 0);
			CHECK_STREQ(base.data, want);
		} else {
			CHECK(rc == -1);
			CHECK(strstr(err, "does not verify") != NULL);
			CHECK(strcmp(base.data, want) != 0);
		}
		http_request_free(&r);
	}
	buf_free(&base);
	free(want);
	key_free(&pub);
	httpsig_profile_free(&p);
}

/* ---- edge cases ---- */

static void
test_edge_cases(void)
{
	struct httpsig_profile p;
	struct httpsig_verify_opts vo = {0};
	struct http_request r;
	struct key pub;
	struct buf base, lines;
	json_t *root, *cases, *c, *el;
	json_error_t jerr;
	char err[ERR_MAX], rel[512], *text, *want;
	const char *id, *expect, *scheme, *mv;
	size_t i, j, nvalid = 0, ninvalid = 0;
	int rc;

	text = vector_text("edge/edge-cases.json");
	root = json_loads(text, 0, &jerr);
	free(text);
	CHECK(root != NULL);
	CHECK(load_public("keys/test-key-ed25519.pub.pem", &pub) == 0);
	/* A verifier that requires nothing beyond what each case covers. */
	CHECK(httpsig_profile_builtin(&p, "rfc9421", err) == 0);
	CHECK(httpsig_profile_set_components(&p, NULL, 0, err) == 0);
	vo.ignore_time = 1;
	cases = json_object_get(root, "cases");
	CHECK(json_array_size(cases) >= 25);
	buf_init(&base);
	for (i = 0; i < json_array_size(cases); i++) {
		c = json_array_get(cases, i);
		id = json_string_value(json_object_get(c, "id"));
		expect = json_string_value(json_object_get(c, "expect"));
		scheme = json_string_value(json_object_get(c, "scheme"));
		fprintf(stderr, "edge/%s (%s)\n", id, expect);
		snprintf(rel, sizeof(rel), "edge/%s/request-signed.http", id);
		if (load_request(rel, scheme, &r) == -1) {
			CHECK(0);
			continue;
		}
		snprintf(rel, sizeof(rel), "edge/%s/signature-base.txt", id);
		want = vector_text(rel);
		/* The member as received, non-canonical text included. */
		mv = raw_member(&r, "sig1");
		CHECK(mv != NULL);
		rc = mv ? httpsig_base(&r, mv, 0, &base, err) : -1;
		if (rc == -1)
			fprintf(stderr, "  base: %s\n", err);
		CHECK(rc == 0);
		/* The expected component lines, then @signature-params. */
		buf_init(&lines);
		el = json_object_get(c, "expected_lines");
		for (j = 0; j < json_array_size(el); j++)
			buf_appendf(&lines, "%s\n",
			            json_string_value(json_array_get(el, j)));
		CHECK(rc == 0 && base.len >= lines.len &&
		      memcmp(base.data, lines.data, lines.len) == 0);
		buf_free(&lines);
		rc = httpsig_verify(&p, &pub, &r, &vo, NULL, err);
		if (strcmp(expect, "valid") == 0) {
			nvalid++;
			CHECK_STREQ(base.data, want);
			if (rc != 0)
				fprintf(stderr, "  verify: %s\n", err);
			CHECK(rc == 0);
		} else {
			/* e21b signed the received text, not the canonical
			 * serialisation: our base differs, so it fails. */
			ninvalid++;
			CHECK(strcmp(base.data, want) != 0);
			CHECK(rc == -1);
			CHECK(strstr(err, "does not verify") != NULL);
		}
		free(want);
		http_request_free(&r);
	}
	CHECK(nvalid >= 25 && ninvalid >= 1);
	buf_free(&base);
	key_free(&pub);
	httpsig_profile_free(&p);
	json_decref(root);
}

/* e01 once more, parsed by http1 with obs-fold unfolded to one SP: the
 * same base as the raw folded value canonicalised by httpsig. */
static void
test_obs_fold_parser(void)
{
	struct httpsig_profile p;
	struct httpsig_verify_opts vo = {0};
	struct http_request r;
	struct key pub;
	struct buf msg, base;
	char err[ERR_MAX], *want;
	const char *mv;

	fprintf(stderr, "edge/e01 with allow_obs_fold\n");
	check_read_vector("edge/e01-field-canonicalization/request-signed.http",
	                  &msg);
	want =
	    vector_text("edge/e01-field-canonicalization/signature-base.txt");
	http_request_init(&r);
	CHECK(http1_parse_request(msg.data, msg.len, &limits, &r, err) == -1);
	http_request_free(&r);
	http_request_init(&r);
	CHECK(http1_parse_request(msg.data, msg.len, &obs_limits, &r, err) ==
	      0);
	http_request_set_scheme(&r, "https");
	buf_init(&base);
	mv = raw_member(&r, "sig1");
	CHECK(mv != NULL && httpsig_base(&r, mv, 0, &base, err) == 0);
	CHECK_STREQ(base.data, want);
	CHECK(load_public("keys/test-key-ed25519.pub.pem", &pub) == 0);
	CHECK(httpsig_profile_builtin(&p, "rfc9421", err) == 0);
	CHECK(httpsig_profile_set_components(&p, NULL, 0, err) == 0);
	vo.ignore_time = 1;
	CHECK(httpsig_verify(&p, &pub, &r, &vo, NULL, err) == 0);
	httpsig_profile_free(&p);
	key_free(&pub);
	http_request_free(&r);
	buf_free(&base);
	buf_free(&msg);
	free(want);
}

/* ---- profiles: sign → verify, and each tampering rejected ---- */

static const char req_post[] = "POST /api/items?x=1&y=two HTTP/1.1\r\n"
                               "Host: api.example.com\r\n"
                               "Content-Type: application/json\r\n"
                               "Authorization: Bearer tok123\r\n"
                               "Content-Length: 13\r\n"
                               "\r\n"
                               "{\"a\":\"hello\"}";

static const char req_get[] = "GET /items HTTP/1.1\r\n"
                              "Host: API.Example.com:443\r\n"
                              "Authorization: Bearer tok123\r\n"
                              "\r\n";

/* Sign text with profile p; returns the signed wire bytes. */
static char *
sign_text(const struct httpsig_profile *p, const struct key *k,
          const char *text, const struct httpsig_sign_opts *so,
          struct buf *base)
{
	struct http_request r;
	struct buf out;
	char err[ERR_MAX];

	if (parse_text(text, strlen(text), "https", &r) == -1)
		return NULL;
	if (httpsig_sign(p, k, &r, so, base, err) == -1) {
		fprintf(stderr, "  sign: %s\n", err);
		http_request_free(&r);
		return NULL;
	}
	wire(&r, &out);
	http_request_free(&r);
	return buf_steal(&out);
}

/* Tamperings common to every profile: all covered by each of them. */
static void
common_tampering(const char *name, const struct httpsig_profile *p,
                 const struct key *pub, const struct key *other,
                 const char *signed_text, const struct httpsig_verify_opts *vo,
                 int64_t created)
{
	struct httpsig_verify_opts o = *vo;
	char err[ERR_MAX], *t, *sigline, *s;
	const char *sig;

	fprintf(stderr, "profile %s: tampering\n", name);
	t = replace(signed_text, "POST ", "PUT ");
	expect_reject("method", p, pub, t, vo, "does not verify");
	free(t);
	t = replace(signed_text, "/api/items", "/api/itemz");
	expect_reject("path", p, pub, t, vo, "does not verify");
	free(t);
	t = replace(signed_text, "Host: api.example.com",
	            "Host: api.example.org");
	expect_reject("authority", p, pub, t, vo, "does not verify");
	free(t);
	t = replace(signed_text, "{\"a\":\"hello\"}", "{\"a\":\"jello\"}");
	expect_reject("body", p, pub, t, vo,
	              "Content-Digest sha-256 does not "
	              "match the body");
	free(t);
	expect_reject("wrong key", p, other, signed_text, vo,
	              "does not verify");

	/* One signature byte changed (the second character of the value). */
	sig = strstr(signed_text, "\r\nSignature: ");
	CHECK(sig != NULL);
	if (sig != NULL) {
		sigline = xstrdup(sig);
		s = strchr(sigline, ':') + 1;
		s = strchr(s, ':') + 2;
		*s = *s == 'A' ? 'B' : 'A';
		t = replace(signed_text, sig, sigline);
		expect_reject("signature byte", p, pub, t, vo,
		              "does not verify");
		free(t);
		free(sigline);
	}

	o.label = "sig2";
	expect_reject("label", p, pub, signed_text, &o,
	              "no member labelled 'sig2'");
	o = *vo;
	o.now = created + p->created_window + 1;
	expect_reject("too old", p, pub, signed_text, &o, "too old");
	o.now = created - p->created_window - 1;
	expect_reject("future", p, pub, signed_text, &o, "from the future");
	o.now = created + p->created_window; /* the edge is still fine */
	CHECK(verify_text(p, pub, signed_text, &o, err) == 0);

	t = replace(signed_text, "Signature-Input:", "X-Signature-Input:");
	expect_reject("no Signature-Input", p, pub, t, vo,
	              "no Signature-Input field");
	free(t);
	t = replace(signed_text, "\r\nSignature:", "\r\nX-Signature:");
	expect_reject("no Signature", p, pub, t, vo, "no Signature field");
	free(t);
}

static void
test_profile_lumoauth(const struct key *k, const struct key *other)
{
	struct httpsig_profile p, p2;
	struct httpsig_sign_opts so = {0};
	struct httpsig_verify_opts vo = {0};
	struct buf base;
	char err[ERR_MAX], *s, *t, *s2;
	const char *nonce;

	fprintf(stderr, "profile lumoauth\n");
	CHECK(httpsig_profile_builtin(&p, "lumoauth", err) == 0);
	so.created = 1700000000;
	vo.now = 1700000005;
	buf_init(&base);
	s = sign_text(&p, k, req_post, &so, &base);
	CHECK(s != NULL);
	if (s == NULL)
		goto out;
	/* @query right after @path, absent signature-key covered empty. */
	CHECK(strstr(s,
	             "Signature-Input: sig1=(\"@method\" \"@authority\" "
	             "\"@path\" \"@query\" \"signature-key\" "
	             "\"content-digest\" \"content-type\" "
	             "\"authorization\");created=1700000000;nonce=\"") != NULL);
	CHECK(strstr(base.data, "\"@query\": ?x=1&y=two\n") != NULL);
	CHECK(strstr(base.data, "\"signature-key\": \n") != NULL);
	CHECK(strstr(base.data, "\"authorization\": Bearer tok123\n") != NULL);
	CHECK(strstr(s, "\r\nSignature: sig1=:") != NULL &&
	      strchr(strstr(s, "\r\nSignature: sig1=:") + 19, '=') == NULL);
	/* A fresh 16-byte nonce: 22 base64url characters. */
	nonce = strstr(s, "nonce=\"");
	CHECK(nonce != NULL && strchr(nonce + 7, '"') - (nonce + 7) == 22);
	CHECK(verify_text(&p, k, s, &vo, err) == 0);
	s2 = sign_text(&p, k, req_post, &so, NULL);
	CHECK(s2 != NULL && strcmp(s, s2) != 0); /* another nonce */
	free(s2);

	common_tampering("lumoauth", &p, k, other, s, &vo, so.created);
	t = replace(s, "?x=1&y=two", "?x=2&y=two");
	expect_reject("query", &p, k, t, &vo, "does not verify");
	free(t);
	t = replace(s, "?x=1&y=two", "");
	expect_reject("query removed", &p, k, t, &vo, "does not verify");
	free(t);
	t = replace(s, "Content-Type: application/json",
	            "Content-Type: text/plain");
	expect_reject("covered header", &p, k, t, &vo, "does not verify");
	free(t);
	t = replace(s, "Bearer tok123", "Bearer tok124");
	expect_reject("authorization", &p, k, t, &vo, "does not verify");
	free(t);
	/* Absent-as-empty: dropping a covered header changes the base. */
	t = replace(s, "Authorization: Bearer tok123\r\n", "");
	expect_reject("authorization removed", &p, k, t, &vo,
	              "does not verify");
	free(t);
	t = replace(s, "Content-Digest:", "X-Content-Digest:");
	expect_reject("digest removed", &p, k, t, &vo,
	              "no Content-Digest field");
	free(t);
	t = replace(s, "Signature: sig1=:", "Signature: sig1=:+");
	expect_reject("encoding", &p, k, t, &vo, "not valid base64url");
	free(t);

	/* A signer that leaves out authorization is not a LumoAuth one. */
	{
		static const char *const c[] = {
		    "@method",       "@authority",     "@path",
		    "signature-key", "content-digest", "content-type"};

		CHECK(httpsig_profile_builtin(&p2, "lumoauth", err) == 0);
		CHECK(httpsig_profile_set_components(&p2, c, 6, err) == 0);
		t = sign_text(&p2, k, req_post, &so, NULL);
		expect_reject("not covered", &p, k, t, &vo,
		              "does not cover \"authorization\"");
		free(t);
		httpsig_profile_free(&p2);
	}
	free(s);

	/* GET without body or Content-Type: the SDK defaults apply, and
	 * @authority is normalised while nothing else changes. */
	buf_reset(&base);
	s = sign_text(&p, k, req_get, &so, &base);
	CHECK(s != NULL);
	if (s != NULL) {
		CHECK(strstr(s, "\r\nContent-Type: application/json\r\n") !=
		      NULL);
		CHECK(strstr(s, "\r\nContent-Digest: sha-256=:47DEQpj8HBSa+/"
		                "TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:\r\n") != NULL);
		CHECK(strstr(base.data, "\"@query\"") == NULL);
		CHECK(strstr(base.data, "\"@authority\": api.example.com\n") !=
		      NULL);
		CHECK(verify_text(&p, k, s, &vo, err) == 0);
	}
	free(s);
out:
	buf_free(&base);
	httpsig_profile_free(&p);
}

static void
test_profile_rfc9421(const struct key *k, const struct key *other)
{
	static const char *const full[] = {
	    "@method",        "@authority",   "@path",        "@query",
	    "content-digest", "content-type", "authorization"};
	struct httpsig_profile p;
	struct httpsig_sign_opts so = {0};
	struct httpsig_verify_opts vo = {0};
	struct buf base;
	char err[ERR_MAX], *s, *t, want[256];

	fprintf(stderr, "profile rfc9421\n");
	CHECK(httpsig_profile_builtin(&p, "rfc9421", err) == 0);
	so.created = 1700000000;
	vo.now = 1700000005;
	buf_init(&base);
	s = sign_text(&p, k, req_post, &so, &base);
	CHECK(s != NULL);
	if (s == NULL)
		goto out;
	snprintf(want, sizeof(want),
	         "Signature-Input: sig1=(\"@method\" \"@authority\" \"@path\" "
	         "\"content-digest\");created=1700000000;keyid=\"%s\"\r\n",
	         k->thumbprint);
	CHECK(strstr(s, want) != NULL);
	/* Standard base64 with padding for a 64-byte signature. */
	CHECK(strstr(s, "==:\r\n") != NULL);
	CHECK(verify_text(&p, k, s, &vo, err) == 0);
	common_tampering("rfc9421", &p, k, other, s, &vo, so.created);
	free(s);

	/* A bodiless GET: no Content-Digest, nothing added. */
	buf_reset(&base);
	s = sign_text(&p, k, req_get, &so, &base);
	CHECK(s != NULL && strstr(s, "Content-Digest") == NULL &&
	      strstr(s, "Content-Type") == NULL);
	CHECK(s != NULL && verify_text(&p, k, s, &vo, err) == 0);
	free(s);

	/* Covering more: query, header values, Authorization; a covered
	 * header that disappears is named. */
	CHECK(httpsig_profile_set_components(&p, full, 7, err) == 0);
	s = sign_text(&p, k, req_post, &so, NULL);
	CHECK(s != NULL);
	if (s == NULL)
		goto out;
	CHECK(verify_text(&p, k, s, &vo, err) == 0);
	t = replace(s, "?x=1&y=two", "?x=1&y=too");
	expect_reject("query", &p, k, t, &vo, "does not verify");
	free(t);
	t = replace(s, "Content-Type: application/json",
	            "Content-Type: application/jsox");
	expect_reject("covered header", &p, k, t, &vo, "does not verify");
	free(t);
	t = replace(s, "Bearer tok123", "Bearer tok999");
	expect_reject("authorization", &p, k, t, &vo, "does not verify");
	free(t);
	t = replace(s, "Authorization: Bearer tok123\r\n", "");
	expect_reject("authorization removed", &p, k, t, &vo,
	              "covered field \"authorization\" is not in the request");
	free(t);
	t = replace(s, "Signature: sig1=:", "Signature: sig1=:*");
	expect_reject("encoding", &p, k, t, &vo, "not a valid dictionary");
	free(t);
	free(s);

	/* A covered field missing at signing time is an error too. */
	{
		static const char *const c[] = {"@method", "x-missing"};
		struct http_request r;

		CHECK(httpsig_profile_set_components(&p, c, 2, err) == 0);
		CHECK(parse_text(req_get, strlen(req_get), "https", &r) == 0);
		CHECK(httpsig_sign(&p, k, &r, &so, NULL, err) == -1);
		CHECK(strstr(err, "\"x-missing\" is not in the request") !=
		      NULL);
		http_request_free(&r);
	}

	/* expires: rejected once past, with the values shown. */
	{
		static const char *const c[] = {"@method", "@authority",
		                                "@path"};
		static const char *const pn[] = {"created", "expires", "nonce",
		                                 "alg",     "keyid",   "tag"};
		struct httpsig_verify_opts o = vo;

		CHECK(httpsig_profile_set_components(&p, c, 3, err) == 0);
		CHECK(httpsig_profile_set_params(&p, pn, 6, err) == 0);
		p.expires_in = 30;
		p.tag = xstrdup("proxy");
		s = sign_text(&p, k, req_get, &so, NULL);
		CHECK(s != NULL &&
		      strstr(s, ";created=1700000000;expires=1700000030;"
		                "nonce=\"") != NULL &&
		      strstr(s, "\";alg=\"ed25519\";keyid=\"") != NULL &&
		      strstr(s, "\";tag=\"proxy\"\r\n") != NULL);
		CHECK(s != NULL && verify_text(&p, k, s, &o, err) == 0);
		o.now = 1700000031;
		if (s != NULL)
			expect_reject("expired", &p, k, s, &o,
			              "expired: expires 1700000030 is 1 s");
		free(s);
	}
out:
	buf_free(&base);
	httpsig_profile_free(&p);
}

static void
test_profile_aauth_draft(const struct key *k, const struct key *other)
{
	struct httpsig_profile p;
	struct httpsig_sign_opts so = {0};
	struct httpsig_verify_opts vo = {0};
	struct http_request r;
	struct buf base;
	char err[ERR_MAX], *s, *t, want[256];

	fprintf(stderr, "profile aauth-draft\n");
	CHECK(httpsig_profile_builtin(&p, "aauth-draft", err) == 0);
	so.created = 1700000000;
	vo.now = 1700000005;
	vo.label = NULL;
	buf_init(&base);
	s = sign_text(&p, k, req_post, &so, &base);
	CHECK(s != NULL);
	if (s == NULL)
		goto out;
	snprintf(want, sizeof(want),
	         "\r\nSignature-Key: sig=hwk;kty=\"OKP\";crv=\"Ed25519\";"
	         "x=\"%s\"\r\n",
	         k->x);
	CHECK(strstr(s, want) != NULL);
	CHECK(strstr(s, "\r\nSignature-Input: sig=(\"@method\" \"@authority\" "
	                "\"@path\" \"signature-key\" \"content-digest\" "
	                "\"content-type\");created=1700000000\r\n") != NULL);
	snprintf(want, sizeof(want),
	         "\"signature-key\": sig=hwk;kty=\"OKP\";"
	         "crv=\"Ed25519\";x=\"%s\"\n",
	         k->x);
	CHECK(strstr(base.data, want) != NULL);
	CHECK(verify_text(&p, k, s, &vo, err) == 0);
	{
		/* common_tampering's label check expects "sig2" to be
		 * missing, which holds for label "sig" too. */
		common_tampering("aauth-draft", &p, k, other, s, &vo,
		                 so.created);
	}
	/* Signature-Key is covered: swapping the key text breaks it. */
	t = replace(s, "kty=\"OKP\"", "kty=\"EC\"");
	expect_reject("signature-key", &p, k, t, &vo, "does not verify");
	free(t);
	free(s);

	/* Bodiless: only the four components. */
	s = sign_text(&p, k, req_get, &so, NULL);
	CHECK(s != NULL &&
	      strstr(s,
	             "\r\nSignature-Input: sig=(\"@method\" \"@authority\" "
	             "\"@path\" \"signature-key\");created=1700000000\r\n") !=
	          NULL);
	free(s);

	/* Signature-Key: jwt. */
	p.sigkey = HTTPSIG_SIGKEY_JWT;
	CHECK(parse_text(req_get, strlen(req_get), "https", &r) == 0);
	CHECK(httpsig_sign(&p, k, &r, &so, NULL, err) == -1);
	CHECK(strstr(err, "no token was given") != NULL);
	so.sigkey_jwt = "eyJhbGciOiJFZERTQSJ9.e30.c2ln";
	CHECK(httpsig_sign(&p, k, &r, &so, NULL, err) == 0);
	CHECK_STREQ(field(&r, "Signature-Key"),
	            "sig=jwt;jwt=\"eyJhbGciOiJFZERTQSJ9.e30.c2ln\"");
	CHECK(httpsig_verify(&p, k, &r, &vo, NULL, err) == 0);
	http_request_free(&r);
out:
	buf_free(&base);
	httpsig_profile_free(&p);
}

/* ---- profile configuration ---- */

static void
test_profile_config(void)
{
	static const char *const ok[] = {"@method",
	                                 "Content-Type;sf",
	                                 "example-dict;key=a",
	                                 "@query-param;name=Pet",
	                                 "x;bs",
	                                 "\"y\";key=\"b;c\"",
	                                 "z;key=\"q\""};
	static const char *const want[] = {"\"@method\"",
	                                   "\"content-type\";sf",
	                                   "\"example-dict\";key=\"a\"",
	                                   "\"@query-param\";name=\"Pet\"",
	                                   "\"x\";bs",
	                                   "\"y\";key=\"b;c\"",
	                                   "\"z\";key=\"q\""};
	static const struct {
		const char *id;
		const char *err;
	} bad[] = {
	    {"@status", "\"@status\" exists only in responses"},
	    {"@foo", "unknown derived component \"@foo\""},
	    {"@signature-params", "cannot be a covered component"},
	    {"content-type;foo", "unknown parameter 'foo'"},
	    {"@method;name=x", "component \"@method\": unknown parameter"},
	    {"@query-param", "needs a name parameter"},
	    {"x;bs;sf", ";bs cannot be combined"},
	    {"x;req", "not supported for request signatures"},
	    {"x y", "not a field name"},
	    {"x;Key=a", "bad parameter name 'Key'"},
	};
	static const char *const dup[] = {"@method", "@method"};
	static const char *const params_bad[] = {"created", "foo"};
	static const char *const params_dup[] = {"created", "created"};
	struct httpsig_profile p;
	char err[ERR_MAX];
	size_t i;

	CHECK(httpsig_profile_builtin(&p, "nope", err) == -1);
	CHECK(strstr(err, "'nope'") != NULL &&
	      strstr(err, "lumoauth, rfc9421, aauth-draft") != NULL);
	CHECK(httpsig_profile_builtin(&p, "lumoauth", err) == 0);
	CHECK(p.ncomponents == 7 && p.nparams == 2 &&
	      p.params[0] == HTTPSIG_PARAM_CREATED &&
	      p.params[1] == HTTPSIG_PARAM_NONCE && p.created_window == 60 &&
	      p.enc == HTTPSIG_ENC_B64URL && p.digest == DIGEST_SHA256 &&
	      p.digest_always && p.absent_as_empty && p.query_if_present &&
	      strcmp(p.label, "sig1") == 0 &&
	      strcmp(p.default_content_type, "application/json") == 0);
	CHECK(httpsig_profile_set_components(&p, ok, 7, err) == 0);
	CHECK(p.ncomponents == 7);
	for (i = 0; i < 7 && i < p.ncomponents; i++)
		CHECK_STREQ(p.components[i], want[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK(httpsig_profile_set_components(&p, &bad[i].id, 1, err) ==
		      -1);
		if (strstr(err, bad[i].err) == NULL)
			fprintf(stderr, "  %s: [%s]\n", bad[i].id, err);
		CHECK(strstr(err, bad[i].err) != NULL);
	}
	CHECK(p.ncomponents == 7); /* failures leave the profile alone */
	CHECK(httpsig_profile_set_components(&p, dup, 2, err) == -1);
	CHECK(strstr(err, "listed twice") != NULL);
	CHECK(httpsig_profile_set_params(&p, params_bad, 2, err) == -1);
	CHECK(strstr(err, "'foo'") != NULL);
	CHECK(httpsig_profile_set_params(&p, params_dup, 2, err) == -1);
	CHECK(p.nparams == 2);
	httpsig_profile_free(&p);

	CHECK(httpsig_profile_builtin(&p, "rfc9421", err) == 0);
	CHECK(p.ncomponents == 4 && p.nparams == 2 &&
	      p.params[1] == HTTPSIG_PARAM_KEYID && p.enc == HTTPSIG_ENC_B64 &&
	      !p.digest_always && !p.absent_as_empty &&
	      p.default_content_type == NULL && strcmp(p.label, "sig1") == 0);
	httpsig_profile_free(&p);
	CHECK(httpsig_profile_builtin(&p, "aauth-draft", err) == 0);
	CHECK(p.nparams == 1 && p.sigkey == HTTPSIG_SIGKEY_HWK &&
	      p.enc == HTTPSIG_ENC_B64 && strcmp(p.label, "sig") == 0);
	httpsig_profile_free(&p);
}

/* ---- component values the vectors do not reach ---- */

static void
test_component_errors(void)
{
	static const char text[] = "GET /p?a=1&a=2&b=100%25&c HTTP/1.1\r\n"
	                           "Host: www.example.com\r\n"
	                           "X-List: \"one\",   \"two\"\r\n"
	                           "X-Item: 1.50;x\r\n"
	                           "X-Bad: \"unterminated\r\n"
	                           "X-Dict: a=1\r\n"
	                           "\r\n";
	static const struct {
		const char *member;
		const char *want; /* base's first line, or the error */
		int ok;
	} v[] = {
	    {"(\"@query-param\";name=\"b\")",
	     "\"@query-param\";name=\"b\": 100%25", 1},
	    {"(\"@query-param\";name=\"c\")",
	     "\"@query-param\";name=\"c\": ", 1},
	    {"(\"@query-param\";name=\"a\")", "occurs 2 times", 0},
	    {"(\"@query-param\";name=\"d\")", "no parameter named 'd'", 0},
	    {"(\"x-list\";sf)", "\"x-list\";sf: \"one\", \"two\"", 1},
	    {"(\"x-item\";sf)", "\"x-item\";sf: 1.5;x", 1},
	    {"(\"x-bad\";sf)", "not a valid structured field", 0},
	    {"(\"x-dict\";key=\"b\")", "has no dictionary member 'b'", 0},
	    {"(\"x-list\";key=\"a\")", "is not a dictionary", 0},
	    {"(\"@method\" \"@method\")", "covered twice", 0},
	    {"(\"@status\")", "only in responses", 0},
	    {"(\"X-Dict\")", "must be lower case", 0},
	    {"(\"@path\";req)", "does not apply", 0},
	    {"\"@method\"", "not an inner list", 0},
	    {"(\"@method\"", "bad Signature-Input member", 0},
	};
	struct http_request r;
	struct buf base;
	char err[ERR_MAX];
	size_t i;
	int rc;

	CHECK(parse_text(text, strlen(text), "https", &r) == 0);
	buf_init(&base);
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		err[0] = '\0';
		rc = httpsig_base(&r, v[i].member, 0, &base, err);
		if (v[i].ok) {
			CHECK(rc == 0 &&
			      strncmp(base.data, v[i].want,
			              strlen(v[i].want)) == 0 &&
			      base.data[strlen(v[i].want)] == '\n');
			if (rc != 0)
				fprintf(stderr, "  %s: %s\n", v[i].member, err);
		} else {
			CHECK(rc == -1 && strstr(err, v[i].want) != NULL);
			if (rc != -1 || strstr(err, v[i].want) == NULL)
				fprintf(stderr, "  %s: rc %d [%s]\n",
				        v[i].member, rc, err);
		}
	}
	/* absent_as_empty covers a missing field as "name": with one SP. */
	CHECK(httpsig_base(&r, "(\"x-none\")", 1, &base, err) == 0);
	CHECK_STREQ(base.data,
	            "\"x-none\": \n\"@signature-params\": (\"x-none\")");
	CHECK(httpsig_base(&r, "(\"x-none\")", 0, &base, err) == -1);
	/* Without a scheme, @scheme and @target-uri cannot be built. */
	free(r.scheme);
	r.scheme = NULL;
	CHECK(httpsig_base(&r, "(\"@scheme\")", 0, &base, err) == -1);
	CHECK(strstr(err, "scheme is unknown") != NULL);
	buf_free(&base);
	http_request_free(&r);
}

/* httpsig_inspect reads what a signature says about itself, as a user
 * writes it, without verifying. */
static void
test_inspect(void)
{
	struct http_request req;
	struct httpsig_info info;
	char err[ERR_MAX];

	http_request_init(&req);
	CHECK(load_request("lumoauth/token-request/request-signed.http",
	                   "https", &req) == 0);
	CHECK(httpsig_inspect(&req, "sig1", &info, err) == 0);
	CHECK(info.ncomponents == 7);
	if (info.ncomponents == 7) {
		CHECK_STREQ(info.components[0], "@method");
		CHECK_STREQ(info.components[3], "signature-key");
		CHECK_STREQ(info.components[6], "authorization");
	}
	CHECK(info.created == 1750000000);
	CHECK_STREQ(info.nonce, "AAECAwQFBgcICQoLDA0ODw");
	CHECK(info.keyid == NULL && info.expires == 0);
	httpsig_info_free(&info);
	CHECK(httpsig_inspect(&req, "sig2", &info, err) == -1);
	CHECK(strstr(err, "'sig2'") != NULL);
	http_request_free(&req);

	http_request_init(&req);
	CHECK(load_request("edge/e02-sf-and-key/request-signed.http", "https",
	                   &req) == 0);
	CHECK(httpsig_inspect(&req, "sig1", &info, err) == 0);
	CHECK(info.ncomponents == 5);
	if (info.ncomponents == 5) {
		CHECK_STREQ(info.components[0], "example-dict;sf");
		CHECK_STREQ(info.components[1], "example-dict;key=\"a\"");
	}
	CHECK_STREQ(info.keyid, "test-key-ed25519");
	httpsig_info_free(&info);
	http_request_free(&req);

	http_request_init(&req);
	CHECK(load_request("edge/e23-all-params/request-signed.http", "https",
	                   &req) == 0);
	CHECK(httpsig_inspect(&req, "sig1", &info, err) == 0);
	CHECK(info.created == 1700000000 && info.expires == 1700000300);
	CHECK_STREQ(info.nonce, "n-0123456789abcdef");
	CHECK_STREQ(info.alg, "ed25519");
	CHECK_STREQ(info.tag, "proxy");
	httpsig_info_free(&info);
	http_request_free(&req);

	http_request_init(&req);
	CHECK(load_request("lumoauth/token-request/request-unsigned.http",
	                   "https", &req) == 0);
	CHECK(httpsig_inspect(&req, "sig1", &info, err) == -1);
	CHECK(strstr(err, "no Signature-Input") != NULL);
	http_request_free(&req);
}

int
main(void)
{
	struct key k, other;

	if (sodium_init() < 0)
		return 1;
	test_lumoauth_vector();
	test_rfc_b26();
	test_rfc_request_bases();
	test_rfc_b4();
	test_edge_cases();
	test_obs_fold_parser();
	test_profile_config();
	test_component_errors();
	test_inspect();
	CHECK(load_private("lumoauth/agent-key.pem", &k) == 0);
	CHECK(load_public("keys/test-key-ed25519.pub.pem", &other) == 0);
	test_profile_lumoauth(&k, &other);
	test_profile_rfc9421(&k, &other);
	test_profile_aauth_draft(&k, &other);
	key_free(&k);
	key_free(&other);
	return check_done("httpsig");
}
