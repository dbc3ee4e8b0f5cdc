/*
 * fuzz_request: the request-head parser and the chunked decoder, each fed
 * once whole and once in splits derived from the input (the way reads
 * arrive from a client); the two must agree on everything, as the parser
 * promises. Successful heads are checked against the parser's guarantees
 * and written back out, which must parse to the same request.
 *
 * Input: byte 0 picks the mode and limits, bytes 1-2 seed the splits, the
 * rest is what the client sent.
 */
#include <string.h>

#include "fuzz.h"
#include "http1.h"

static int
fuzz_streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static void
fuzz_same_request(const struct http_request *a, const struct http_request *b)
{
	size_t i;

	FUZZ_CHECK(fuzz_streq(a->method, b->method));
	FUZZ_CHECK(fuzz_streq(a->target, b->target));
	FUZZ_CHECK(a->form == b->form);
	FUZZ_CHECK(a->version_minor == b->version_minor);
	FUZZ_CHECK(fuzz_streq(a->scheme, b->scheme));
	FUZZ_CHECK(fuzz_streq(a->authority, b->authority));
	FUZZ_CHECK(fuzz_streq(a->host, b->host));
	FUZZ_CHECK(a->port == b->port);
	FUZZ_CHECK(fuzz_streq(a->path, b->path));
	FUZZ_CHECK(fuzz_streq(a->query, b->query));
	FUZZ_CHECK(a->chunked == b->chunked);
	FUZZ_CHECK(a->content_length == b->content_length);
	FUZZ_CHECK(a->expect_continue == b->expect_continue);
	FUZZ_CHECK(a->conn_close == b->conn_close);
	FUZZ_CHECK(a->fields.n == b->fields.n);
	for (i = 0; i < a->fields.n; i++) {
		FUZZ_CHECK(strcmp(a->fields.v[i].name, b->fields.v[i].name) ==
		           0);
		FUZZ_CHECK(strcmp(a->fields.v[i].value, b->fields.v[i].value) ==
		           0);
	}
}

/* What a complete head promises the connection code. */
static void
fuzz_check_head(const struct http_request *r, size_t consumed, size_t n,
                const struct http_limits *lim)
{
	size_t i, k;

	FUZZ_CHECK(consumed >= 4 && consumed <= n);
	FUZZ_CHECK(r->method != NULL && r->method[0] != '\0');
	FUZZ_CHECK(r->target != NULL && r->target[0] != '\0');
	FUZZ_CHECK(r->path != NULL);
	FUZZ_CHECK(r->version_minor == 0 || r->version_minor == 1);
	FUZZ_CHECK(r->version_minor == 0 || r->authority != NULL);
	FUZZ_CHECK(r->port >= -1 && r->port <= 65535);
	FUZZ_CHECK(r->content_length >= -1);
	FUZZ_CHECK(!r->chunked || r->content_length == -1);
	FUZZ_CHECK(!r->chunked || r->version_minor == 1);
	FUZZ_CHECK(r->fields.n <= (lim->max_fields ? lim->max_fields
	                                           : HTTP1_DEFAULT_MAX_FIELDS));
	for (i = 0; i < r->fields.n; i++) {
		const char *nm = r->fields.v[i].name;
		const char *v = r->fields.v[i].value;
		size_t vl = strlen(v);

		FUZZ_CHECK(nm[0] != '\0');
		for (k = 0; nm[k] != '\0'; k++)
			FUZZ_CHECK(http1_is_tchar((unsigned char)nm[k]));
		for (k = 0; k < vl; k++)
			FUZZ_CHECK((unsigned char)v[k] >= 0x20 ? v[k] != 0x7f
			                                       : v[k] == '\t');
		FUZZ_CHECK(vl == 0 || (v[0] != ' ' && v[0] != '\t' &&
		                       v[vl - 1] != ' ' && v[vl - 1] != '\t'));
	}
}

/* Feed growing prefixes of raw, as the connection does with its input
 * buffer; byte by byte or in generated pieces. */
static int
fuzz_head_split(const char *raw, size_t n, const struct http_limits *lim,
                struct http_request *req, size_t *consumed, int *status,
                char *err, uint64_t seed, int bytewise)
{
	size_t k = 0;
	int r;

	for (;;) {
		r = http1_parse_request_head(raw, k, lim, req, consumed, status,
		                             err);
		if (r != 0 || k == n)
			return r;
		k += bytewise ? 1 : fuzz_piece(&seed);
		if (k > n)
			k = n;
	}
}

/* The chunked body decoded whole and in pieces: same bytes, same end,
 * same error. */
static void
fuzz_chunked(const char *in, size_t n, uint64_t seed)
{
	struct http_chunked c1, c2;
	struct buf o1, o2;
	char e1[ERR_MAX] = "", e2[ERR_MAX] = "";
	size_t u1 = 0, u2, off = 0, piece;
	int r1, r2 = 0;

	buf_init(&o1);
	buf_init(&o2);
	http_chunked_init(&c1);
	r1 = http_chunked_decode(&c1, in, n, &o1, &u1, e1);
	FUZZ_CHECK(u1 <= n && o1.len <= u1);
	FUZZ_CHECK(r1 != 0 || u1 == n);

	http_chunked_init(&c2);
	while (off < n) {
		piece = fuzz_piece(&seed);
		if (piece > n - off)
			piece = n - off;
		u2 = 0;
		r2 = http_chunked_decode(&c2, in + off, piece, &o2, &u2, e2);
		FUZZ_CHECK(u2 <= piece);
		off += u2;
		if (r2 != 0)
			break;
		FUZZ_CHECK(u2 == piece);
	}
	if (n == 0)
		r2 = http_chunked_decode(&c2, in, 0, &o2, &u2, e2);
	FUZZ_CHECK(r1 == r2);
	FUZZ_CHECK(r1 == -1 || off == u1);
	FUZZ_CHECK(r1 != -1 || strcmp(e1, e2) == 0);
	FUZZ_CHECK(o1.len == o2.len &&
	           (o1.len == 0 || memcmp(o1.data, o2.data, o1.len) == 0));
	buf_free(&o1);
	buf_free(&o2);
}

/* A parsed HTTP/1.1 head written out parses to the same request. */
static void
fuzz_round_trip(const struct http_request *r, const struct http_limits *lim)
{
	struct http_request again;
	struct http_limits big = *lim;
	struct buf out;
	size_t used;
	int st, rc;
	char err[ERR_MAX];

	buf_init(&out);
	http1_write_request(r, &out);
	big.max_head_bytes = out.len + 1;
	big.allow_obs_fold = 0;
	http_request_init(&again);
	rc = http1_parse_request_head(out.data, out.len, &big, &again, &used,
	                              &st, err);
	if (rc != 1)
		fprintf(stderr, "round trip: %d %s\n", rc, err);
	FUZZ_CHECK(rc == 1 && used == out.len);
	fuzz_same_request(r, &again);
	http_request_free(&again);
	buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_limits lim = {0};
	struct http_request a, b;
	const char *raw;
	size_t n, ua = 0, ub = 0;
	int ra, rb, sa = 0, sb = 0, flags;
	char ea[ERR_MAX] = "", eb[ERR_MAX] = "";
	uint64_t seed;

	if (size < 3)
		return 0;
	flags = data[0];
	seed = (uint64_t)data[1] | (uint64_t)data[2] << 8;
	raw = (const char *)data + 3;
	n = size - 3;
	if (flags & 0x04)
		lim.max_head_bytes = 16 + (size_t)(seed % 2048);
	if (flags & 0x08)
		lim.max_fields = 1 + (size_t)(seed >> 11) % 8;
	lim.allow_obs_fold = (flags & 0x10) != 0;

	switch (flags & 3) {
	case 2:
		fuzz_chunked(raw, n, seed);
		return 0;
	case 3:
		/* The `sign`/`verify` path: a whole request from a file. */
		http_request_init(&a);
		if (http1_parse_request(raw, n, &lim, &a, ea) == 0) {
			FUZZ_CHECK(!a.chunked);
			FUZZ_CHECK(a.body_len == 0 || a.body != NULL);
			FUZZ_CHECK(a.content_length == -1 ||
			           (uint64_t)a.content_length == a.body_len);
		}
		http_request_free(&a);
		return 0;
	default:
		break;
	}

	http_request_init(&a);
	http_request_init(&b);
	ra = http1_parse_request_head(raw, n, &lim, &a, &ua, &sa, ea);
	rb = fuzz_head_split(raw, n, &lim, &b, &ub, &sb, eb, seed, flags & 1);
	FUZZ_CHECK(ra == rb);
	if (ra == -1) {
		FUZZ_CHECK(sa == sb);
		FUZZ_CHECK(strcmp(ea, eb) == 0);
		FUZZ_CHECK(sa == 400 || sa == 417 || sa == 431 || sa == 501 ||
		           sa == 505);
	}
	if (ra == 1) {
		FUZZ_CHECK(ua == ub);
		fuzz_same_request(&a, &b);
		fuzz_check_head(&a, ua, n, &lim);
		if (a.chunked)
			fuzz_chunked(raw + ua, n - ua, seed ^ 0x5555);
		if (a.version_minor == 1 && (flags & 0x20))
			fuzz_round_trip(&a, &lim);
	}
	http_request_free(&a);
	http_request_free(&b);
	return 0;
}
