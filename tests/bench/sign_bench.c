/*
 * sign_bench: what signing one request costs next to the Ed25519 signature
 * it must make anyway (design.md "Performance budget"). Prints ns/op for
 * each step and the ratio (sign - bare signature) / bare signature. Not a
 * test: timings depend on the machine, so nothing here asserts a time.
 *
 * Usage: sign_bench [ms-per-round]   (default 50; 20 rounds, best kept)
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "digest.h"
#include "httpsig.h"
#include "key.h"

#define BENCH_ROUNDS 20

/* A token of the size an AAuth JWT has (header.payload.signature). */
#define BENCH_TOKEN_LEN 600

struct bench_ctx {
	const struct httpsig_profile *p;
	const struct key *k;
	struct http_request *req;
	struct httpsig_sign_opts so;
	struct buf base;
	const char *member; /* Signature-Input member value, for base only */
	const void *data;
	size_t len;
	size_t nfields; /* the request's fields before signing */
	struct buf out;
};

struct bench_case {
	const char *what;
	void (*fn)(struct bench_ctx *);
	struct bench_ctx *c;
	unsigned long n; /* iterations per round */
	double best;     /* ns/op */
};

static double bench_ms = 50;
static volatile unsigned long bench_sink;

/* This thread's CPU time: time spent descheduled (other processes on a
 * busy build machine) is not counted. */
static double
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double
bench_round(struct bench_case *bc)
{
	double t0 = bench_now_ns();
	unsigned long i;

	for (i = 0; i < bc->n; i++)
		bc->fn(bc->c);
	return (bench_now_ns() - t0) / (double)bc->n;
}

/* Size each case so a round lasts about bench_ms, then run the rounds
 * interleaved (every case once per round) so a slow patch on the machine
 * hits all cases alike; each case keeps its best round. */
static void
bench_run(struct bench_case *v, size_t n)
{
	size_t i;
	int r;
	double t;

	for (i = 0; i < n; i++) {
		for (v[i].n = 1;; v[i].n *= 2) {
			t = bench_round(&v[i]) * (double)v[i].n;
			if (t >= bench_ms * 1e6 / 10)
				break;
		}
		v[i].n =
		    (unsigned long)((double)v[i].n * bench_ms * 1e6 / t) + 1;
	}
	for (r = 0; r < BENCH_ROUNDS; r++) {
		for (i = 0; i < n; i++) {
			t = bench_round(&v[i]);
			if (r == 0 || t < v[i].best)
				v[i].best = t;
		}
	}
}

/* ---- the operations ---- */

static void
op_bare_sign(struct bench_ctx *c)
{
	unsigned char sig[crypto_sign_BYTES];

	crypto_sign_detached(sig, NULL, (const unsigned char *)c->base.data,
	                     c->base.len, c->k->sk);
	bench_sink += sig[0];
}

static void
op_digest(struct bench_ctx *c)
{
	buf_reset(&c->out);
	digest_field(DIGEST_SHA256, c->data, c->len, &c->out);
	bench_sink += (unsigned char)c->out.data[10];
}

/* httpsig_sign appends the fields it adds (Content-Type on a GET,
 * Content-Digest, Signature-Input, Signature); dropping them again puts the
 * request back as it came, without the cost of a fresh copy. Freeing them
 * is counted: it is memory the signing allocated. */
static void
bench_restore(struct http_request *r, size_t nfields)
{
	while (r->fields.n > nfields) {
		r->fields.n--;
		free(r->fields.v[r->fields.n].name);
		free(r->fields.v[r->fields.n].value);
	}
}

static void
op_sign(struct bench_ctx *c)
{
	char err[ERR_MAX];

	bench_restore(c->req, c->nfields);
	if (httpsig_sign(c->p, c->k, c->req, &c->so, NULL, err) == -1) {
		fprintf(stderr, "sign_bench: httpsig_sign: %s\n", err);
		exit(1);
	}
	bench_sink += c->req->fields.n;
}

static void
op_base(struct bench_ctx *c)
{
	char err[ERR_MAX];

	if (httpsig_base(c->req, c->member, 1, &c->base, err) == -1) {
		fprintf(stderr, "sign_bench: httpsig_base: %s\n", err);
		exit(1);
	}
	bench_sink += c->base.len;
}

/* ---- set-up ---- */

static void
bench_request(const char *head, const void *body, size_t blen,
              const char *token, struct http_request *r)
{
	char err[ERR_MAX];
	struct buf w, auth;

	buf_init(&w);
	buf_appends(&w, head);
	if (blen > 0)
		buf_appendf(&w, "Content-Length: %zu\r\n", blen);
	buf_appends(&w, "\r\n");
	buf_append(&w, body, blen);
	http_request_init(r);
	if (http1_parse_request(w.data, w.len, NULL, r, err) == -1) {
		fprintf(stderr, "sign_bench: request: %s\n", err);
		exit(1);
	}
	http_request_set_scheme(r, "https");
	buf_init(&auth);
	buf_appendf(&auth, "Bearer %s", token);
	http_fields_add(&r->fields, "Authorization", auth.data);
	buf_free(&auth);
	buf_free(&w);
}

/* The Signature-Input member value (after "label=") of a signed request. */
static char *
bench_member(const struct http_request *r, const char *label)
{
	const char *si = http_fields_get(&r->fields, "Signature-Input");
	size_t n = strlen(label);

	if (si == NULL || strncmp(si, label, n) != 0 || si[n] != '=') {
		fprintf(stderr, "sign_bench: no Signature-Input\n");
		exit(1);
	}
	return xstrdup(si + n + 1);
}

static void
bench_ctx_init(struct bench_ctx *c, const struct httpsig_profile *p,
               const struct key *k, struct http_request *req)
{
	memset(c, 0, sizeof(*c));
	c->p = p;
	c->k = k;
	c->req = req;
	c->nfields = req ? req->fields.n : 0;
	buf_init(&c->base);
	buf_init(&c->out);
}

static void
bench_ctx_free(struct bench_ctx *c)
{
	buf_free(&c->base);
	buf_free(&c->out);
}

/* Sign once (fixing the request's signed shape) and keep the base for the
 * bare signature over the same bytes: Ed25519 hashes the message twice,
 * so its cost grows with the base. */
static void
bench_base_of(struct bench_ctx *c)
{
	char err[ERR_MAX];

	if (httpsig_sign(c->p, c->k, c->req, NULL, &c->base, err) == -1) {
		fprintf(stderr, "sign_bench: sign: %s\n", err);
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	enum { BARE_GET, BARE_POST, D1K, D1M, BASE, SIGN_GET, SIGN_POST, NB };
	struct bench_case v[NB];
	struct bench_ctx cx[NB];
	struct httpsig_profile p;
	struct http_request get, post;
	struct key k;
	char err[ERR_MAX], token[BENCH_TOKEN_LEN + 1], json[1024];
	unsigned char *mib;
	size_t i;

	if (argc > 1 && (bench_ms = atof(argv[1])) <= 0) {
		fprintf(stderr, "usage: sign_bench [ms-per-round]\n");
		return 2;
	}
	if (sodium_init() < 0 || key_generate(&k, err) == -1 ||
	    httpsig_profile_builtin(&p, "lumoauth", err) == -1) {
		fprintf(stderr, "sign_bench: set-up: %s\n", err);
		return 1;
	}
	for (i = 0; i < BENCH_TOKEN_LEN; i++)
		token[i] =
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789-_"[i % 64];
	token[40] = token[400] = '.';
	token[BENCH_TOKEN_LEN] = '\0';
	/* 1 KiB of JSON: {"items":["xxxx…", …]} padded to exactly 1024. */
	memset(json, 'x', sizeof(json));
	memcpy(json, "{\"items\":[\"", 11);
	for (i = 64; i + 4 < sizeof(json); i += 64)
		memcpy(json + i, "\",\"", 3);
	memcpy(json + sizeof(json) - 3, "\"]}", 3);
	mib = xmalloc(1 << 20);
	randombytes_buf(mib, 1 << 20);

	bench_request(
	    "GET /v1/orders?status=open&limit=50&cursor=eyJpZCI6MTIzfQ "
	    "HTTP/1.1\r\nHost: api.shop.example\r\nUser-Agent: "
	    "agent-sdk/1.4 python/3.12\r\nAccept: application/json\r\n"
	    "Accept-Encoding: gzip, deflate\r\n",
	    NULL, 0, token, &get);
	bench_request("POST /v1/orders HTTP/1.1\r\nHost: api.shop.example\r\n"
	              "User-Agent: agent-sdk/1.4 python/3.12\r\nAccept: "
	              "application/json\r\nContent-Type: application/json\r\n",
	              json, sizeof(json), token, &post);

	/* Contexts first, while the requests are unsigned: the sign cases
	 * restore them to this many fields on every iteration. */
	bench_ctx_init(&cx[SIGN_GET], &p, &k, &get);
	bench_ctx_init(&cx[SIGN_POST], &p, &k, &post);
	bench_ctx_init(&cx[BARE_GET], &p, &k, &get);
	bench_ctx_init(&cx[BARE_POST], &p, &k, &post);
	bench_ctx_init(&cx[D1K], &p, &k, NULL);
	bench_ctx_init(&cx[D1M], &p, &k, NULL);
	bench_ctx_init(&cx[BASE], &p, &k, &get);
	bench_base_of(&cx[BARE_GET]);
	bench_base_of(&cx[BARE_POST]);
	cx[BASE].member = bench_member(&get, p.label);
	cx[D1K].data = json;
	cx[D1K].len = sizeof(json);
	cx[D1M].data = mib;
	cx[D1M].len = 1 << 20;

	v[BARE_GET] = (struct bench_case){"crypto_sign_detached, GET's base",
	                                  op_bare_sign, &cx[BARE_GET], 0, 0};
	v[BARE_POST] = (struct bench_case){"crypto_sign_detached, POST's base",
	                                   op_bare_sign, &cx[BARE_POST], 0, 0};
	v[D1K] = (struct bench_case){"digest_field sha-256, 1 KiB", op_digest,
	                             &cx[D1K], 0, 0};
	v[D1M] = (struct bench_case){"digest_field sha-256, 1 MiB", op_digest,
	                             &cx[D1M], 0, 0};
	v[BASE] = (struct bench_case){"httpsig_base, GET (parse + build)",
	                              op_base, &cx[BASE], 0, 0};
	v[SIGN_GET] = (struct bench_case){"httpsig_sign lumoauth, GET + query",
	                                  op_sign, &cx[SIGN_GET], 0, 0};
	v[SIGN_POST] = (struct bench_case){"httpsig_sign lumoauth, POST 1 KiB",
	                                   op_sign, &cx[SIGN_POST], 0, 0};

	printf("sign_bench: lumoauth profile; bases of %zu (GET) and %zu "
	       "(POST) bytes with a %d-char bearer token; thread CPU time, "
	       "best of %d interleaved rounds of ~%.0f ms\n",
	       cx[BARE_GET].base.len, cx[BARE_POST].base.len, BENCH_TOKEN_LEN,
	       BENCH_ROUNDS, bench_ms);
	bench_run(v, NB);
	for (i = 0; i < NB; i++)
		printf("  %-40s %10.0f ns/op\n", v[i].what, v[i].best);
	printf("  sha-256 throughput: %.0f MB/s\n",
	       (1 << 20) / v[D1M].best * 1e3);
	printf("ratio (sign - bare) / bare: GET %.3f  POST %.3f\n",
	       (v[SIGN_GET].best - v[BARE_GET].best) / v[BARE_GET].best,
	       (v[SIGN_POST].best - v[BARE_POST].best) / v[BARE_POST].best);

	for (i = 0; i < NB; i++)
		bench_ctx_free(&cx[i]);
	free((char *)cx[BASE].member);
	free(mib);
	http_request_free(&get);
	http_request_free(&post);
	httpsig_profile_free(&p);
	key_free(&k);
	return bench_sink == 42 ? 3 : 0; /* keep the sink alive */
}
