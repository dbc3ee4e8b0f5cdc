/*
 * test_http1: the strict request parser, the chunked decoder, the field list,
 * the writer and the response-head parser. Every request head is parsed three
 * ways (all at once, one byte at a time, random splits) and the three results
 * must agree; every response head two ways (line slices with their endings,
 * and short-lived copies without).
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "http1.h"

/* A check that names the caller's line, for the table-like helpers. */
static void
ok_at(int line, int cond, const char *what, const char *detail)
{
	check_count++;
	if (!cond) {
		check_failures++;
		fprintf(stderr, "test_http1.c:%d: %s failed%s%s\n", line, what,
		        detail ? ": " : "", detail ? detail : "");
	}
}

static int
streq_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Same parse result, field for field. */
static int
req_same(const struct http_request *a, const struct http_request *b)
{
	size_t i;

	if (!streq_null(a->method, b->method) ||
	    !streq_null(a->target, b->target) || a->form != b->form ||
	    a->version_minor != b->version_minor ||
	    !streq_null(a->scheme, b->scheme) ||
	    !streq_null(a->authority, b->authority) ||
	    !streq_null(a->host, b->host) || a->port != b->port ||
	    !streq_null(a->path, b->path) || !streq_null(a->query, b->query) ||
	    a->chunked != b->chunked ||
	    a->content_length != b->content_length ||
	    a->expect_continue != b->expect_continue ||
	    a->conn_close != b->conn_close || a->fields.n != b->fields.n ||
	    a->body_len != b->body_len)
		return 0;
	for (i = 0; i < a->fields.n; i++)
		if (strcmp(a->fields.v[i].name, b->fields.v[i].name) != 0 ||
		    strcmp(a->fields.v[i].value, b->fields.v[i].value) != 0)
			return 0;
	return a->body_len == 0 || memcmp(a->body, b->body, a->body_len) == 0;
}

struct head_result {
	int r;
	size_t consumed;
	int status;
	char err[ERR_MAX];
	size_t fail_at; /* bytes fed when the byte-wise parse returned -1 */
};

/* Feed raw[0..n) in pieces whose ends are given by cut(); returns the
 * first non-zero result, or 0 when all bytes gave "need more". */
static int
head_feed(const char *raw, size_t n, const struct http_limits *lim,
          struct http_request *req, struct head_result *res, int bytewise)
{
	size_t k = 0;
	int r = 0;

	res->err[0] = '\0';
	res->status = 0;
	res->consumed = 0;
	for (;;) {
		r = http1_parse_request_head(raw, k, lim, req, &res->consumed,
		                             &res->status, res->err);
		if (r != 0 || k == n)
			break;
		k += bytewise ? 1 : 1 + (size_t)(rand() % 23);
		if (k > n)
			k = n;
	}
	res->r = r;
	res->fail_at = k;
	return r;
}

/* Parse all at once into req, and check that byte-wise and random-split
 * feeding give the same answer; returns the all-at-once result. */
static int
head_parse(int line, const char *raw, size_t n, const struct http_limits *lim,
           struct http_request *req, struct head_result *res)
{
	struct http_request b, c;
	struct head_result rb, rc;

	http_request_init(req);
	res->err[0] = '\0';
	res->r = http1_parse_request_head(raw, n, lim, req, &res->consumed,
	                                  &res->status, res->err);

	http_request_init(&b);
	head_feed(raw, n, lim, &b, &rb, 1);
	http_request_init(&c);
	head_feed(raw, n, lim, &c, &rc, 0);
	ok_at(line, rb.r == res->r && rc.r == res->r,
	      "incremental result equals all-at-once", rb.err);
	if (res->r == 1) {
		ok_at(line,
		      rb.consumed == res->consumed &&
		          rc.consumed == res->consumed,
		      "incremental consumed equals all-at-once", NULL);
		/* byte-wise completes exactly when the last CRLF arrives */
		ok_at(line, rb.fail_at == res->consumed,
		      "byte-wise completes at the end of the head", NULL);
		ok_at(line, req_same(req, &b) && req_same(req, &c),
		      "incremental request equals all-at-once", NULL);
	}
	if (res->r == -1)
		ok_at(line,
		      rb.status == res->status &&
		          strcmp(rb.err, res->err) == 0 &&
		          rc.status == res->status &&
		          strcmp(rc.err, res->err) == 0,
		      "incremental error equals all-at-once", rb.err);
	http_request_free(&b);
	http_request_free(&c);
	return res->r;
}

#define LIM_DEFAULT NULL
/* A string literal as (pointer, length), NULs inside included. */
#define LIT(s) (s), sizeof(s) - 1

static void
reject_at(int line, const char *raw, size_t n, const struct http_limits *lim,
          int want_status, const char *want)
{
	struct http_request req;
	struct head_result res;
	char detail[ERR_MAX + 64];

	head_parse(line, raw, n, lim, &req, &res);
	snprintf(detail, sizeof(detail), "r=%d status=%d err=[%s]", res.r,
	         res.status, res.err);
	ok_at(line, res.r == -1, "rejected", detail);
	ok_at(line, res.status == want_status, "status", detail);
	ok_at(line, strstr(res.err, want) != NULL, "error names the problem",
	      detail);
	http_request_free(&req);
}

#define REJECT(raw, st, sub)                                                   \
	reject_at(__LINE__, raw, sizeof(raw) - 1, LIM_DEFAULT, st, sub)
#define REJECT_LIM(raw, lim, st, sub)                                          \
	reject_at(__LINE__, raw, sizeof(raw) - 1, lim, st, sub)

/* Parse a head that must be accepted; req is left for the caller. */
static void
accept_at(int line, const char *raw, size_t n, const struct http_limits *lim,
          struct http_request *req)
{
	struct head_result res;

	head_parse(line, raw, n, lim, req, &res);
	ok_at(line, res.r == 1, "accepted", res.err);
	ok_at(line, res.consumed == n, "consumed the whole head", NULL);
}

#define ACCEPT(raw, req) accept_at(__LINE__, raw, sizeof(raw) - 1, NULL, req)

/* Bytes fed when byte-wise parsing first returned -1 (0 if it never did). */
static size_t
fail_point(const char *raw, size_t n, const struct http_limits *lim, char *err)
{
	struct http_request req;
	struct head_result res;
	size_t at;

	http_request_init(&req);
	head_feed(raw, n, lim, &req, &res, 1);
	at = res.r == -1 ? res.fail_at : 0;
	if (err)
		snprintf(err, ERR_MAX, "%s", res.err);
	http_request_free(&req);
	return at;
}

static void
test_forms(void)
{
	struct http_request r;

	ACCEPT("GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: Example.com\r\n"
	       "Accept: */*\r\n\r\n",
	       &r);
	CHECK_STREQ(r.method, "GET");
	CHECK_STREQ(r.target, "/a/b?x=1&y=2");
	CHECK(r.form == HTTP_TARGET_ORIGIN);
	CHECK(r.version_minor == 1);
	CHECK(r.scheme == NULL);
	CHECK_STREQ(r.authority, "Example.com");
	CHECK_STREQ(r.host, "Example.com");
	CHECK(r.port == -1);
	CHECK_STREQ(r.path, "/a/b");
	CHECK_STREQ(r.query, "x=1&y=2");
	CHECK(r.content_length == -1 && !r.chunked && !r.conn_close &&
	      !r.expect_continue);
	CHECK(r.fields.n == 2);
	http_request_free(&r);

	/* '?' with nothing after it: query "" (present but empty) */
	ACCEPT("GET /p? HTTP/1.1\r\nHost: h\r\n\r\n", &r);
	CHECK_STREQ(r.path, "/p");
	CHECK_STREQ(r.query, "");
	http_request_free(&r);
	ACCEPT("GET / HTTP/1.1\r\nHost: h:8080\r\n\r\n", &r);
	CHECK(r.query == NULL);
	CHECK_STREQ(r.host, "h");
	CHECK(r.port == 8080);
	CHECK_STREQ(r.authority, "h:8080");
	http_request_free(&r);
	ACCEPT("GET / HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n", &r);
	CHECK_STREQ(r.host, "[2001:db8::1]");
	CHECK(r.port == 8080);
	http_request_free(&r);

	/* raw path and query: no decoding, no dot-segment removal */
	ACCEPT("GET /a/../b/./c%2F%zz?x=%20&y='&z=(1)|{} HTTP/1.1\r\n"
	       "Host: h\r\n\r\n",
	       &r);
	CHECK_STREQ(r.path, "/a/../b/./c%2F%zz");
	CHECK_STREQ(r.query, "x=%20&y='&z=(1)|{}");
	http_request_free(&r);

	/* absolute-form: authority from the target, Host kept as received */
	ACCEPT("GET HTTP://Example.COM:8080/a/b?x=1 HTTP/1.1\r\n"
	       "Host: other.example\r\n\r\n",
	       &r);
	CHECK(r.form == HTTP_TARGET_ABSOLUTE);
	CHECK_STREQ(r.scheme, "http");
	CHECK_STREQ(r.authority, "Example.COM:8080");
	CHECK_STREQ(r.host, "Example.COM");
	CHECK(r.port == 8080);
	CHECK_STREQ(r.path, "/a/b");
	CHECK_STREQ(r.query, "x=1");
	CHECK_STREQ(r.target, "HTTP://Example.COM:8080/a/b?x=1");
	CHECK_STREQ(http_fields_get(&r.fields, "host"), "other.example");
	http_request_free(&r);
	ACCEPT("GET hTTpS://x.test HTTP/1.1\r\nHost: x.test\r\n\r\n", &r);
	CHECK_STREQ(r.scheme, "https");
	CHECK_STREQ(r.path, "");
	CHECK(r.query == NULL);
	CHECK(r.port == -1);
	http_request_free(&r);
	ACCEPT("GET http://x.test?q=1 HTTP/1.1\r\nHost: x.test\r\n\r\n", &r);
	CHECK_STREQ(r.path, "");
	CHECK_STREQ(r.query, "q=1");
	CHECK_STREQ(r.authority, "x.test");
	http_request_free(&r);
	ACCEPT("GET http://[::1]:8080/p HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
	       &r);
	CHECK_STREQ(r.host, "[::1]");
	CHECK(r.port == 8080);
	CHECK_STREQ(r.authority, "[::1]:8080");
	CHECK_STREQ(r.path, "/p");
	http_request_free(&r);
	/* absolute-form with an empty Host is fine: the target decides */
	ACCEPT("GET http://a.test/ HTTP/1.1\r\nHost: \r\n\r\n", &r);
	CHECK_STREQ(r.authority, "a.test");
	http_request_free(&r);

	/* authority-form, CONNECT only */
	ACCEPT("CONNECT api.example.com:443 HTTP/1.1\r\n"
	       "Host: api.example.com:443\r\n\r\n",
	       &r);
	CHECK(r.form == HTTP_TARGET_AUTHORITY);
	CHECK_STREQ(r.authority, "api.example.com:443");
	CHECK_STREQ(r.host, "api.example.com");
	CHECK(r.port == 443);
	CHECK_STREQ(r.path, "");
	CHECK(r.scheme == NULL);
	http_request_free(&r);
	ACCEPT("CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n", &r);
	CHECK_STREQ(r.host, "[::1]");
	CHECK(r.port == 443);
	http_request_free(&r);

	/* asterisk-form, OPTIONS only */
	ACCEPT("OPTIONS * HTTP/1.1\r\nHost: h.test:81\r\n\r\n", &r);
	CHECK(r.form == HTTP_TARGET_ASTERISK);
	CHECK_STREQ(r.path, "*");
	CHECK_STREQ(r.authority, "h.test:81");
	CHECK(r.port == 81);
	http_request_free(&r);

	/* method is a token, case preserved */
	ACCEPT("Patch /x HTTP/1.1\r\nHost: h\r\n\r\n", &r);
	CHECK_STREQ(r.method, "Patch");
	http_request_free(&r);
	ACCEPT("M-SEARCH! /x HTTP/1.1\r\nHost: h\r\n\r\n", &r);
	CHECK_STREQ(r.method, "M-SEARCH!");
	http_request_free(&r);

	/* HTTP/1.0: Host optional, close by default */
	ACCEPT("GET /old HTTP/1.0\r\n\r\n", &r);
	CHECK(r.version_minor == 0);
	CHECK(r.authority == NULL && r.host == NULL);
	CHECK(r.conn_close == 1);
	http_request_free(&r);
	ACCEPT("GET /old HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: h\r\n\r\n",
	       &r);
	CHECK(r.conn_close == 0);
	CHECK_STREQ(r.authority, "h");
	http_request_free(&r);

	/* leading empty lines are skipped (a few) */
	ACCEPT("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", &r);
	CHECK_STREQ(r.method, "GET");
	http_request_free(&r);
	REJECT("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "empty lines before the request line");
}

static void
test_request_line_errors(void)
{
	REJECT("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "more than one space after the method");
	REJECT("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400,
	       "more than two "
	       "spaces");
	REJECT("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400, "(%20)");
	REJECT("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "not tabs");
	REJECT("GET /\tx HTTP/1.1\r\nHost: h\r\n\r\n", 400, "contains a tab");
	REJECT("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "invalid character '(' in the method");
	REJECT(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "starts with "
	       "whitespace");
	REJECT("/ HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "must start with a method");
	REJECT("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505,
	       "HTTP/2.0 is not "
	       "supported");
	REJECT("GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505, "HTTP/1.2");
	REJECT("GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505, "not supported");
	REJECT("GET / http/1.1\r\nHost: h\r\n\r\n", 400, "expected 'HTTP/1.1'");
	REJECT("GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400,
	       "expected "
	       "'HTTP/1.1'");
	REJECT("GET / HTTP/1\r\nHost: h\r\n\r\n", 400, "expected 'HTTP/1.1'");
	REJECT("GET /\r\nHost: h\r\n\r\n", 400, "no HTTP version");
	REJECT("GET\r\nHost: h\r\n\r\n", 400, "no request-target");
	REJECT("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "non-ASCII byte 0xc3");
	REJECT("GET /?q=\x80 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "non-ASCII");
	REJECT("GET /a\x01z HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "control character 0x01");
	REJECT("GET /a\x7fz HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "control character 0x7f");
	REJECT("\x16\x03\x01\x02\x00\x01\x00", 400, "control character 0x16");

	/* forms in the wrong place */
	REJECT("GET example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "only allowed with CONNECT");
	REJECT("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "only allowed with OPTIONS");
	REJECT("CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "CONNECT needs host:port");
	REJECT("CONNECT http://x.test:443 HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "CONNECT needs host:port");
	REJECT("CONNECT x.test HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "a port is required");
	REJECT("CONNECT x.test: HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "empty port");

	/* absolute-form targets */
	REJECT("GET ftp://x.test/ HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "unsupported scheme 'ftp'");
	REJECT("GET http:/x.test HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "expected '//'");
	REJECT("GET http://user:pw@x.test/ HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "userinfo (user@host) is not allowed");
	REJECT("GET http:///p HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "host is "
	       "empty");
	REJECT("GET http://x.test:/ HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "empty port after ':'");
	REJECT("GET http://x.test:65536/ HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "invalid port '65536'");
	REJECT("GET http://x.test:8a/ HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "invalid port '8a'");
	REJECT("GET http://x.test:000080/ HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "invalid port");
	REJECT("GET http://x.test:-1/ HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "invalid port");
	REJECT("GET http://[::1/ HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "malformed IPv6 literal");
	REJECT("GET http://[zz::1]/ HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "in the IPv6 literal");
	REJECT("GET http://[::1]x/ HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "after the IPv6 literal");
	REJECT("GET http://ex{ample/ HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "invalid character '{' in the host");
	REJECT("GET http://a%zz/ HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "two hex digits");
	REJECT("GET example.com/x HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "is not a path");
}

static void
test_host(void)
{
	struct http_request r;

	REJECT("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400, "missing Host");
	REJECT("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400,
	       "Host header given 2 times");
	REJECT("GET http://a/ HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\n", 400,
	       "given 2 times");
	REJECT("GET http://a/ HTTP/1.1\r\n\r\n", 400, "missing Host");
	REJECT("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400,
	       "given 2 times");
	REJECT("GET / HTTP/1.1\r\nHost: \r\n\r\n", 400, "Host header is empty");
	REJECT("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400,
	       "Host header: invalid character ' '");
	REJECT("GET / HTTP/1.1\r\nHost: me@a\r\n\r\n", 400, "userinfo");
	REJECT("GET / HTTP/1.1\r\nHost: a:\r\n\r\n", 400, "empty port");
	REJECT("GET / HTTP/1.1\r\nHost: a:70000\r\n\r\n", 400, "invalid port");
	REJECT("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400,
	       "invalid character "
	       "'/'");
	REJECT("OPTIONS * HTTP/1.1\r\nHost: [x]\r\n\r\n", 400, "IPv6");
	ACCEPT("GET / HTTP/1.1\r\nhOsT:   WWW.Example.COM:443  \r\n\r\n", &r);
	CHECK_STREQ(r.authority, "WWW.Example.COM:443");
	CHECK_STREQ(r.host, "WWW.Example.COM");
	CHECK(r.port == 443);
	http_request_free(&r);
}

static void
test_fields(void)
{
	struct http_request r;

	ACCEPT("GET / HTTP/1.1\r\nHost: h\r\nX-Mixed-Case:  a  b \t\r\n"
	       "x-empty:\r\nX-Empty-2:   \r\nCache-Control: max-age=60\r\n"
	       "cache-control: must-revalidate\r\nX-Tab:\tv\tw\t\r\n"
	       "X-Obs-Text: caf\xc3\xa9\r\n\r\n",
	       &r);
	CHECK(r.fields.n == 8);
	CHECK_STREQ(r.fields.v[0].name, "Host");
	CHECK_STREQ(r.fields.v[1].name, "X-Mixed-Case");
	CHECK_STREQ(r.fields.v[1].value, "a  b");
	CHECK_STREQ(r.fields.v[2].name, "x-empty");
	CHECK_STREQ(r.fields.v[2].value, "");
	CHECK_STREQ(r.fields.v[3].value, "");
	CHECK_STREQ(r.fields.v[4].value, "max-age=60");
	CHECK_STREQ(r.fields.v[5].name, "cache-control");
	CHECK_STREQ(r.fields.v[6].value, "v\tw");
	CHECK_STREQ(r.fields.v[7].value, "caf\xc3\xa9");
	http_request_free(&r);

	REJECT("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400,
	       "whitespace between the field name and ':'");
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX-A\t: 1\r\n\r\n", 400,
	       "line 3: whitespace between the field name");
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX A: 1\r\n\r\n", 400,
	       "whitespace between the field name");
	REJECT("GET / HTTP/1.1\r\nHost: h\r\n(A): 1\r\n\r\n", 400,
	       "invalid character '(' in the field name");
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nA\"b: 1\r\n\r\n", 400,
	       "invalid character '\"' in the field name");
	REJECT("GET / HTTP/1.1\r\nHost: h\r\n: 1\r\n\r\n", 400,
	       "empty field name");
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400,
	       "line 3: header line 'NoColon' has no ':'");
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n  folded\r\n\r\n", 400,
	       "line 4: obs-fold (line starts with whitespace) is not "
	       "allowed");
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tfolded\r\n\r\n", 400,
	       "obs-fold");
	REJECT("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400,
	       "whitespace before the first header field");
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 400,
	       "line 3: NUL byte");
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400,
	       "line 3: bare CR");
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX: a\nY: b\r\n\r\n", 400,
	       "line 3 ends in a bare LF; HTTP requires CRLF");
	REJECT("GET / HTTP/1.1\r\nHost: h\r\n\n", 400,
	       "line 3 ends in a bare "
	       "LF");
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n", 400,
	       "control character 0x7f");
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX: \x1b[31m\r\n\r\n", 400,
	       "control character 0x1b");
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nX: a\x0b\r\n\r\n", 400,
	       "control character 0x0b");
}

static void
test_obs_fold_opt_in(void)
{
	struct http_limits lim = {0, 0, 1};
	struct http_request r;
	static const char raw[] = "GET / HTTP/1.1\r\nHost: h\r\n"
	                          "X-Fold: Obsolete  \r\n    line folding.\r\n"
	                          "X-Empty:\r\n\t  \r\n\tlater\r\n"
	                          "Y: 1\r\n\r\n";

	accept_at(__LINE__, raw, sizeof(raw) - 1, &lim, &r);
	CHECK(r.fields.n == 4);
	CHECK_STREQ(http_fields_get(&r.fields, "x-fold"),
	            "Obsolete line folding.");
	CHECK_STREQ(http_fields_get(&r.fields, "x-empty"), "later");
	CHECK_STREQ(http_fields_get(&r.fields, "y"), "1");
	http_request_free(&r);
	/* even when allowed, a fold cannot precede the first field */
	REJECT_LIM("GET / HTTP/1.1\r\n x: 1\r\nHost: h\r\n\r\n", &lim, 400,
	           "whitespace before the first header field");
}

static void
test_framing(void)
{
	struct http_request r;

	ACCEPT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18\r\n\r\n", &r);
	CHECK(r.content_length == 18 && !r.chunked);
	http_request_free(&r);
	ACCEPT("POST / HTTP/1.1\r\nHost: h\r\ncontent-length: 007\r\n\r\n", &r);
	CHECK(r.content_length == 7);
	http_request_free(&r);
	ACCEPT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: "
	       "9223372036854775807\r\n\r\n",
	       &r);
	CHECK(r.content_length == INT64_MAX);
	http_request_free(&r);
	ACCEPT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n"
	       "\r\n",
	       &r);
	CHECK(r.chunked == 1 && r.content_length == -1);
	http_request_free(&r);
	ACCEPT(
	    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked ,\r\n"
	    "\r\n",
	    &r);
	CHECK(r.chunked == 1);
	http_request_free(&r);

	REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	       "Transfer-Encoding: chunked\r\n\r\n",
	       400,
	       "Content-Length and Transfer-Encoding both present: ambiguous "
	       "framing");
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	       "Content-Length: 5\r\n\r\n",
	       400, "ambiguous framing");
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
	       400, "must end with chunked");
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, "
	       "gzip\r\n\r\n",
	       400, "must end with chunked");
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, "
	       "chunked\r\n\r\n",
	       501, "Transfer-Encoding 'gzip' is not supported");
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n"
	       "Transfer-Encoding: chunked\r\n\r\n",
	       501, "'gzip' is not supported");
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, "
	       "chunked\r\n\r\n",
	       400, "chunked is applied more than once");
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	       "Transfer-Encoding: chunked\r\n\r\n",
	       400, "more than once");
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
	       "chunked;q=1\r\n\r\n",
	       400, "chunked takes no parameters");
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\n\r\n", 400,
	       "Transfer-Encoding is empty");
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
	       "\"chunked\"\r\n\r\n",
	       400, "invalid coding");
	REJECT("POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	       "\r\n",
	       400, "not allowed in an HTTP/1.0 request");

	REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400,
	       "Content-Length '-1' is not a number");
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400,
	       "not a number");
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n",
	       400, "not a number");
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n", 400,
	       "not a number");
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400,
	       "not a number");
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n",
	       400, "single number, not a list");
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	       "Content-Length: 5\r\n\r\n",
	       400, "Content-Length given 2 times; send it once");
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	       "Content-Length: 6\r\n\r\n",
	       400, "different values (5 and 6)");
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: "
	       "9223372036854775808\r\n\r\n",
	       400, "too large");
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: "
	       "99999999999999999999999\r\n\r\n",
	       400, "too large");
}

static void
test_expect_connection(void)
{
	struct http_request r;

	ACCEPT("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n"
	       "Content-Length: 3\r\n\r\n",
	       &r);
	CHECK(r.expect_continue == 1);
	http_request_free(&r);
	ACCEPT("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", &r);
	CHECK(r.expect_continue == 0);
	http_request_free(&r);
	REJECT("POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", 417,
	       "Expect '200-ok' is not supported");

	ACCEPT("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n"
	       "\r\n",
	       &r);
	CHECK(r.conn_close == 1);
	http_request_free(&r);
	ACCEPT("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
	       "Connection: close\r\n\r\n",
	       &r);
	CHECK(r.conn_close == 1);
	http_request_free(&r);
	ACCEPT("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", &r);
	CHECK(r.conn_close == 0);
	http_request_free(&r);
	REJECT("GET / HTTP/1.1\r\nHost: h\r\nConnection: close;x\r\n\r\n", 400,
	       "Connection: 'close;x' is not a token");
}

static void
test_limits(void)
{
	struct http_limits lim = {0, 3, 0};
	struct http_limits small = {64, 0, 0};
	struct http_request r;
	char big[256];
	size_t n;
	static const char exact[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
	struct http_limits tight = {sizeof(exact) - 1, 0, 0};
	struct http_limits tighter = {sizeof(exact) - 2, 0, 0};

	accept_at(__LINE__,
	          LIT("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n"),
	          &lim, &r);
	CHECK(r.fields.n == 3);
	http_request_free(&r);
	REJECT_LIM("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
	           &lim, 431, "more than 3 header fields");

	/* head of exactly the limit passes; one byte less is 431 */
	accept_at(__LINE__, exact, sizeof(exact) - 1, &tight, &r);
	http_request_free(&r);
	REJECT_LIM("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &tighter, 431,
	           "larger than 26 bytes");

	/* 431 without ever seeing the end of the head */
	n = (size_t)snprintf(big, sizeof(big),
	                     "GET / HTTP/1.1\r\nHost: h\r\nX-Big: %0100d", 7);
	reject_at(__LINE__, big, n, &small, 431, "larger than 64 bytes");
	CHECK(fail_point(big, n, &small, NULL) == 64);
	/* default limit: 64 KiB of one header line, no CRLF */
	{
		size_t L = HTTP1_DEFAULT_MAX_HEAD_BYTES + 10;
		char *p = xmalloc(L);
		struct head_result res;

		memset(p, 'a', L);
		memcpy(p, "GET / HTTP/1.1\r\nX: ", 19);
		http_request_init(&r);
		res.r = http1_parse_request_head(p, L, NULL, &r, &res.consumed,
		                                 &res.status, res.err);
		CHECK(res.r == -1 && res.status == 431);
		http_request_free(&r);
		http_request_init(&r);
		res.r = http1_parse_request_head(
		    p, HTTP1_DEFAULT_MAX_HEAD_BYTES - 1, NULL, &r,
		    &res.consumed, &res.status, res.err);
		CHECK(res.r == 0);
		http_request_free(&r);
		free(p);
	}
}

/* Errors are reported when the offending byte (or line end) arrives, not
 * when the head ends. */
static void
test_early_errors(void)
{
	char err[ERR_MAX];
	static const char lf[] = "GET / HTTP/1.1\nHost: h\r\n\r\n";
	static const char nul[] = "GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n";
	static const char fold[] = "GET / HTTP/1.1\r\nHost: h\r\nX: 1\r\n "
	                           "y\r\n\r\n";
	static const char cr[] = "GET / HTTP/1.1\rHost: h\r\n\r\n";
	static const char ver[] = "GET / HTTP/3.0\r\nHost: h\r\n\r\n";
	static const char tls[] = "\x16\x03\x01\x00\xa5";

	CHECK(fail_point(lf, sizeof(lf) - 1, NULL, err) == 15);
	CHECK(strstr(err, "line 1 ends in a bare LF") != NULL);
	CHECK(strstr(err, "sed 's/$/\\r/'") != NULL);
	CHECK(fail_point(nul, sizeof(nul) - 1, NULL, err) == 6);
	CHECK(strstr(err, "NUL") != NULL);
	CHECK(fail_point(fold, sizeof(fold) - 1, NULL, err) == 32);
	CHECK(strstr(err, "obs-fold") != NULL);
	CHECK(fail_point(cr, sizeof(cr) - 1, NULL, err) == 16);
	CHECK(strstr(err, "bare CR") != NULL);
	CHECK(fail_point(ver, sizeof(ver) - 1, NULL, err) == 16);
	CHECK(strstr(err, "HTTP/3.0") != NULL);
	CHECK(fail_point(tls, sizeof(tls) - 1, NULL, err) == 1);

	/* a CR at the end of the bytes so far is not yet an error */
	{
		struct http_request r;
		size_t used;
		int st;

		http_request_init(&r);
		CHECK(http1_parse_request_head(LIT("GET / HTTP/1.1\r"), NULL,
		                               &r, &used, &st, err) == 0);
		CHECK(http1_parse_request_head(
		          LIT("GET / HTTP/1.1\r\nHost: h\r\n\r"), NULL, &r,
		          &used, &st, err) == 0);
		CHECK(http1_parse_request_head(
		          LIT("GET / HTTP/1.1\r\nHost: h\r\n\r\nBODY"), NULL,
		          &r, &used, &st, err) == 1);
		CHECK(used == 27);
		CHECK_STREQ(r.authority, "h");
		http_request_free(&r);
	}
	/* a shorter buffer than last time means different bytes: restart */
	{
		struct http_request r;
		size_t used;
		int st;

		http_request_init(&r);
		CHECK(http1_parse_request_head("GET /aaaa HTTP/1.1\r\nX: 1\r\n",
		                               26, NULL, &r, &used, &st,
		                               err) == 0);
		CHECK(http1_parse_request_head(LIT("PUT /b HTTP/1.1\r\n"), NULL,
		                               &r, &used, &st, err) == 0);
		CHECK(http1_parse_request_head(
		          LIT("PUT /b HTTP/1.1\r\nHost: z\r\n\r\n"), NULL, &r,
		          &used, &st, err) == 1);
		CHECK_STREQ(r.method, "PUT");
		CHECK(r.fields.n == 1);
		http_request_free(&r);
	}
}

/* ---- chunked ---- */

static int
chunk_all(const char *in, size_t n, size_t step, struct buf *out, size_t *used,
          char *err)
{
	struct http_chunked c;
	size_t off = 0, got;
	int r = 0;

	http_chunked_init(&c);
	buf_reset(out);
	while (off < n) {
		size_t len = step && n - off > step ? step : n - off;

		r = http_chunked_decode(&c, in + off, len, out, &got, err);
		off += got;
		if (r != 0)
			break;
		if (got != len) { /* 0 must mean everything was taken */
			r = -2;
			break;
		}
	}
	*used = off;
	return r;
}

static void
chunk_reject_at(int line, const char *in, size_t n, const char *want)
{
	struct buf out;
	char err[ERR_MAX] = "";
	size_t used, step;
	int r;

	buf_init(&out);
	for (step = 0; step <= 1; step++) {
		r = chunk_all(in, n, step, &out, &used, err);
		ok_at(line, r == -1, "chunked rejected", err);
		ok_at(line, strstr(err, want) != NULL,
		      "chunked error names the problem", err);
	}
	buf_free(&out);
}

#define CHUNK_REJECT(in, want)                                                 \
	chunk_reject_at(__LINE__, in, sizeof(in) - 1, want)

static void
test_chunked(void)
{
	static const char msg[] = "5;ext=1;q=\"a b\"\r\nhello\r\n"
	                          "A\r\n0123456789\r\n"
	                          "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n"
	                          "0000000000000001\r\n!\r\n"
	                          "0;last\r\nX-Trailer: t1\r\nY:\r\n\r\n";
	static const char want[] = "hello0123456789abcdefghijklmnopqrstuvwxyz!";
	size_t n = sizeof(msg) - 1, p, used, got1, got2;
	struct buf out;
	char err[ERR_MAX];
	int r, bad = 0;

	buf_init(&out);
	r = chunk_all(msg, n, 0, &out, &used, err);
	CHECK(r == 1 && used == n);
	CHECK_STREQ(out.data, want);
	r = chunk_all(msg, n, 1, &out, &used, err);
	CHECK(r == 1 && used == n);
	CHECK_STREQ(out.data, want);

	/* split in two at every position */
	for (p = 0; p <= n; p++) {
		struct http_chunked c;

		http_chunked_init(&c);
		buf_reset(&out);
		r = http_chunked_decode(&c, msg, p, &out, &got1, err);
		if (p < n && (r != 0 || got1 != p))
			bad++;
		if (p < n)
			r = http_chunked_decode(&c, msg + p, n - p, &out, &got2,
			                        err);
		else
			got2 = 0;
		if (r != 1 || got1 + got2 != n || out.len != sizeof(want) - 1 ||
		    memcmp(out.data, want, out.len) != 0)
			bad++;
	}
	CHECK(bad == 0);
	/* random splits */
	srand(42);
	bad = 0;
	for (p = 0; p < 500; p++) {
		struct http_chunked c;
		size_t off = 0;

		http_chunked_init(&c);
		buf_reset(&out);
		r = 0;
		while (off < n && r == 0) {
			size_t len = 1 + (size_t)(rand() % 9);

			if (len > n - off)
				len = n - off;
			r = http_chunked_decode(&c, msg + off, len, &out, &got1,
			                        err);
			off += got1;
		}
		if (r != 1 || off != n || strcmp(out.data, want) != 0)
			bad++;
	}
	CHECK(bad == 0);

	/* stops exactly at the end: the next request's bytes stay unread */
	{
		static const char two[] = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1";
		struct http_chunked c;

		http_chunked_init(&c);
		buf_reset(&out);
		r = http_chunked_decode(&c, two, sizeof(two) - 1, &out, &got1,
		                        err);
		CHECK(r == 1 && got1 == 13);
		CHECK_STREQ(out.data, "abc");
		r = http_chunked_decode(&c, two + got1, 5, &out, &got2, err);
		CHECK(r == 1 && got2 == 0);
	}
	/* a chunk larger than what has arrived: data passes through */
	{
		struct http_chunked c;

		http_chunked_init(&c);
		buf_reset(&out);
		r = http_chunked_decode(&c, "ffff\r\nxyz", 9, &out, &got1, err);
		CHECK(r == 0 && got1 == 9 && out.len == 3);
		CHECK(c.remaining == 0xffff - 3);
	}

	CHUNK_REJECT("\r\nhello\r\n0\r\n\r\n", "expected a hex chunk size");
	CHUNK_REJECT("g\r\n", "expected a hex chunk size");
	CHUNK_REJECT("-5\r\n", "expected a hex chunk size");
	CHUNK_REJECT("00000000000000001\r\nx\r\n0\r\n\r\n",
	             "more than 16 hex digits");
	CHUNK_REJECT("5 \r\nhello\r\n0\r\n\r\n", "invalid byte 0x20 after the "
	                                         "chunk size");
	CHUNK_REJECT("5\nhello\r\n0\r\n\r\n", "bare LF");
	CHUNK_REJECT("5\rhello\r\n0\r\n\r\n", "bare CR");
	CHUNK_REJECT("5;a\nhello\r\n0\r\n\r\n", "bare LF in a chunk extension");
	CHUNK_REJECT("5;a\x01\r\nhello\r\n0\r\n\r\n", "control byte");
	CHUNK_REJECT("5\r\nhelloX\r\n0\r\n\r\n", "not followed by CRLF");
	CHUNK_REJECT("5\r\nhello\n0\r\n\r\n", "not followed by CRLF");
	CHUNK_REJECT("5\r\nhello\r\n0\r\n\n", "bare LF after the last chunk");
	CHUNK_REJECT("0\r\nA: 1\r\n b\r\n\r\n", "obs-fold in the trailer");
	CHUNK_REJECT("0\r\n(: 1\r\n\r\n", "invalid trailer field line");
	CHUNK_REJECT("0\r\nA b: 1\r\n\r\n", "in a trailer field name");
	CHUNK_REJECT("0\r\nA: 1\n\r\n", "bare LF in a trailer field");
	CHUNK_REJECT("0\r\nA: \x7f\r\n\r\n", "control byte in a trailer");
	CHUNK_REJECT("0\r\nA: 1\rX\r\n", "bare CR in the trailer");
	{
		/* extension line limit 4 KiB, trailer limit 16 KiB */
		size_t L = 5000, i;
		char *p2 = xmalloc(L + 64);

		p2[0] = '1';
		p2[1] = ';';
		memset(p2 + 2, 'e', L);
		memcpy(p2 + 2 + L, "\r\nx\r\n0\r\n\r\n", 11);
		chunk_reject_at(__LINE__, p2, L + 13, "longer than 4096 bytes");
		free(p2);

		L = 20000;
		p2 = xmalloc(L + 64);
		memcpy(p2, "0\r\n", 3);
		for (i = 3; i + 8 < L; i += 8)
			memcpy(p2 + i, "X-T: v\r\n", 8);
		memcpy(p2 + i, "\r\n", 2);
		chunk_reject_at(__LINE__, p2, i + 2,
		                "trailer section larger than 16384 bytes");
		free(p2);
	}
	/* a failed decoder stays failed */
	{
		struct http_chunked c;

		http_chunked_init(&c);
		CHECK(http_chunked_decode(&c, "z", 1, &out, &got1, err) == -1);
		CHECK(http_chunked_decode(&c, "0\r\n\r\n", 5, &out, &got1,
		                          err) == -1);
	}
	buf_free(&out);
}

/* ---- whole messages and vectors ---- */

static void
whole_reject_at(int line, const char *raw, size_t n, const char *want)
{
	struct http_request r;
	char err[ERR_MAX] = "";
	int rc;

	http_request_init(&r);
	rc = http1_parse_request(raw, n, NULL, &r, err);
	ok_at(line, rc == -1, "whole request rejected", err);
	ok_at(line, strstr(err, want) != NULL, "error names the problem", err);
	http_request_free(&r);
}

#define WHOLE_REJECT(raw, want)                                                \
	whole_reject_at(__LINE__, raw, sizeof(raw) - 1, want)

static void
test_whole(void)
{
	struct http_request r;
	struct buf out;
	char err[ERR_MAX];
	static const char ch[] =
	    "POST /up HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: chunked\r\nX-After: 1\r\n"
	    "\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\nT: x\r\n\r\n";

	buf_init(&out);
	http_request_init(&r);
	CHECK(http1_parse_request(ch, sizeof(ch) - 1, NULL, &r, err) == 0);
	CHECK(r.body_len == 9 && memcmp(r.body, "Wikipedia", 9) == 0);
	CHECK(r.chunked == 0 && r.content_length == 9);
	CHECK(http_fields_count(&r.fields, "transfer-encoding") == 0);
	CHECK_STREQ(http_fields_get(&r.fields, "content-length"), "9");
	http1_write_request(&r, &out);
	CHECK_STREQ(out.data, "POST /up HTTP/1.1\r\nHost: h\r\nX-After: 1\r\n"
	                      "Content-Length: 9\r\n\r\nWikipedia");
	http_request_free(&r);

	http_request_init(&r);
	CHECK(http1_parse_request(LIT("GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
	                          NULL, &r, err) == 0);
	CHECK(r.body == NULL && r.body_len == 0);
	http_request_free(&r);
	http_request_init(&r);
	CHECK(http1_parse_request(LIT("POST / HTTP/1.1\r\nHost: h\r\n"
	                              "Content-Length: 0\r\n\r\n"),
	                          NULL, &r, err) == 0);
	CHECK(r.body_len == 0 && r.content_length == 0);
	http_request_free(&r);

	WHOLE_REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18\r\n\r\n"
	             "abc",
	             "body shorter than Content-Length: got 3 of 18 bytes");
	WHOLE_REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n"
	             "abc\n",
	             "1 bytes after the body (Content-Length is 3); a trailing "
	             "newline");
	WHOLE_REJECT("GET / HTTP/1.1\r\nHost: h\r\n\r\nxyz",
	             "3 bytes after the header section but no Content-Length");
	WHOLE_REJECT("GET / HTTP/1.1\nHost: h\n\n",
	             "line 1 ends in a bare LF; HTTP requires CRLF — convert "
	             "with `sed 's/$/\\r/'`");
	WHOLE_REJECT("GET / HTTP/1.1\r\nHost: h\r\n",
	             "incomplete request head");
	WHOLE_REJECT("", "empty input");
	WHOLE_REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	             "\r\n\r\n5\r\nabc",
	             "chunked body is incomplete");
	WHOLE_REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	             "\r\n\r\n3\r\nabc\r\n0\r\n\r\nextra",
	             "5 bytes after the end of the chunked body");
	WHOLE_REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	             "\r\n\r\nzz\r\n",
	             "expected a hex chunk size");
	WHOLE_REJECT("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	             "Host header given 2 times");
	buf_free(&out);
}

struct vec_want {
	const char *file, *method, *authority, *path, *query, *scheme;
	const char *body;
};

static void
vector_at(int line, const struct vec_want *w)
{
	struct http_request r, r2;
	struct buf raw, out;
	char err[ERR_MAX] = "";
	int rc;

	check_read_vector(w->file, &raw);
	http_request_init(&r);
	rc = http1_parse_request(raw.data, raw.len, NULL, &r, err);
	ok_at(line, rc == 0, w->file, err);
	if (rc == 0) {
		ok_at(line, streq_null(r.method, w->method), "method",
		      r.method);
		ok_at(line, streq_null(r.authority, w->authority), "authority",
		      r.authority);
		ok_at(line, streq_null(r.path, w->path), "path", r.path);
		ok_at(line, streq_null(r.query, w->query), "query", r.query);
		ok_at(line, streq_null(r.scheme, w->scheme), "scheme",
		      r.scheme);
		ok_at(line,
		      r.body_len == strlen(w->body) &&
		          (r.body_len == 0 ||
		           memcmp(r.body, w->body, r.body_len) == 0),
		      "body", NULL);
		/* write → parse gives the same request */
		buf_init(&out);
		http1_write_request(&r, &out);
		http_request_init(&r2);
		ok_at(line,
		      http1_parse_request(out.data, out.len, NULL, &r2, err) ==
		              0 &&
		          req_same(&r, &r2),
		      "write/parse round trip", err);
		http_request_free(&r2);
		buf_free(&out);
	}
	http_request_free(&r);
	buf_free(&raw);
}

static void
test_vectors(void)
{
	static const char rfc_body[] = "{\"hello\": \"world\"}";
	static const char lumo_body[] =
	    "{\"request_type\": \"auth\", \"resource_token\": "
	    "\"RESOURCE_TOKEN_FIXED\", \"scope\": \"read write\"}";
	static const struct vec_want v[] = {
	    {"rfc9421/test-request.http", "POST", "example.com", "/foo",
	     "param=Value&Pet=dog", NULL, rfc_body},
	    {"lumoauth/token-request/request-unsigned.http", "POST",
	     "auth.acme.test", "/orgs/acme-corp/api/v1/aauth/agent/token", NULL,
	     NULL, lumo_body},
	    {"lumoauth/token-request/request-signed.http", "POST",
	     "auth.acme.test", "/orgs/acme-corp/api/v1/aauth/agent/token", NULL,
	     NULL, lumo_body},
	    {"edge/e02-sf-and-key/request-signed.http", "GET",
	     "www.example.com", "/foo", NULL, NULL, ""},
	    {"edge/e02b-key-only/request-signed.http", "GET", "www.example.com",
	     "/foo", NULL, NULL, ""},
	    {"edge/e03-bs-two-lines/request-signed.http", "GET",
	     "www.example.com", "/foo", NULL, NULL, ""},
	    {"edge/e04-query-param-rfc/request-signed.http", "GET",
	     "www.example.com", "/parameters",
	     "var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+"
	     "whitespace&fa%C3%A7ade%22%3A%20=something",
	     NULL, ""},
	    {"edge/e05-query-param-empty-value/request-signed.http", "GET",
	     "www.example.com", "/path",
	     "param=value&foo=bar&baz=batman&qux=", NULL, ""},
	    {"edge/e06-query-param-special-chars/request-signed.http", "GET",
	     "www.example.com", "/p", "a=x~y&b=it's&c=(1)&d=a*b!&e=%7E", NULL,
	     ""},
	    {"edge/e07-query-printed/request-signed.http", "GET",
	     "www.example.com", "/path", "param=value&foo=bar&baz=bat%2Dman",
	     NULL, ""},
	    {"edge/e08-query-absent/request-signed.http", "GET",
	     "www.example.com", "/path", NULL, NULL, ""},
	    {"edge/e09-query-raw-apostrophe/request-signed.http", "GET",
	     "www.example.com", "/search", "q=it's", NULL, ""},
	    {"edge/e10-path-dot-segments/request-signed.http", "GET",
	     "www.example.com", "/a/../b/./c", NULL, NULL, ""},
	    {"edge/e11-path-percent-encoded/request-signed.http", "GET",
	     "www.example.com", "/caf%C3%A9/x%2Fy%7e", NULL, NULL, ""},
	    {"edge/e12-authority-case-and-default-port/request-signed.http",
	     "GET", "WWW.Example.COM:443", "/x", NULL, NULL, ""},
	    {"edge/e12b-target-uri-from-unnormalized-host/request-signed.http",
	     "GET", "WWW.Example.COM:443", "/x", NULL, NULL, ""},
	    {"edge/e13-authority-nondefault-port/request-signed.http", "GET",
	     "www.example.com:8443", "/x", NULL, NULL, ""},
	    {"edge/e14-authority-ipv6/request-signed.http", "GET",
	     "[2001:db8::1]:8080", "/x", NULL, NULL, ""},
	    {"edge/e15-http-scheme/request-signed.http", "POST",
	     "www.example.com", "/path", "param=value", NULL, ""},
	    {"edge/e16-absolute-form-normalized/request-signed.http", "GET",
	     "www.example.com", "/foo", "x=1", "http", ""},
	    {"edge/e17-absolute-form-unnormalized/request-signed.http", "GET",
	     "WWW.Example.com:80", "/foo", "x=1", "http", ""},
	    {"edge/e18-request-target-absolute-form/request-signed.http", "GET",
	     "www.example.com", "/path", "param=value", "https", ""},
	    {"edge/e19-method-case-preserved/request-signed.http", "Patch",
	     "www.example.com", "/x", NULL, NULL, ""},
	    {"edge/e20-empty-path-absolute-form/request-signed.http", "OPTIONS",
	     "www.example.com", "", NULL, "https", ""},
	    {"edge/e21-noncanonical-signature-input/request-signed.http", "GET",
	     "www.example.com", "/x", NULL, NULL, ""},
	    {"edge/e21b-signed-noncanonical-params-line/request-signed.http",
	     "GET", "www.example.com", "/x", NULL, NULL, ""},
	    {"edge/e22-content-digest-covered/request-signed.http", "POST",
	     "example.com", "/foo", NULL, NULL, rfc_body},
	    {"edge/e23-all-params/request-signed.http", "GET",
	     "www.example.com", "/x", NULL, NULL, ""},
	};
	struct http_limits fold = {0, 0, 1};
	struct http_request r;
	struct buf raw, out;
	char err[ERR_MAX] = "";
	size_t i, nedge = 0;
	DIR *d;
	struct dirent *de;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		vector_at(__LINE__, &v[i]);
		nedge += strncmp(v[i].file, "edge/", 5) == 0;
	}

	/* the test-request.http bytes survive parse → write unchanged */
	check_read_vector("rfc9421/test-request.http", &raw);
	http_request_init(&r);
	CHECK(http1_parse_request(raw.data, raw.len, NULL, &r, err) == 0);
	buf_init(&out);
	http1_write_request(&r, &out);
	CHECK(out.len == raw.len && memcmp(out.data, raw.data, raw.len) == 0);
	CHECK(r.fields.n == 5);
	CHECK_STREQ(r.fields.v[3].name, "Content-Digest");
	buf_free(&out);
	http_request_free(&r);
	buf_free(&raw);

	/* e01 carries an obs-fold on purpose: strict parsing refuses it,
	 * the verify-only opt-in folds it into one SP as RFC 9421 signs */
	check_read_vector("edge/e01-field-canonicalization/request-signed.http",
	                  &raw);
	http_request_init(&r);
	CHECK(http1_parse_request(raw.data, raw.len, NULL, &r, err) == -1);
	CHECK(strstr(err, "line 6: obs-fold") != NULL);
	http_request_free(&r);
	http_request_init(&r);
	CHECK(http1_parse_request(raw.data, raw.len, &fold, &r, err) == 0);
	CHECK_STREQ(http_fields_get(&r.fields, "x-obs-fold-header"),
	            "Obsolete line folding.");
	CHECK_STREQ(http_fields_get(&r.fields, "x-ows-header"),
	            "Leading and trailing whitespace.");
	CHECK_STREQ(http_fields_get(&r.fields, "x-empty-header"), "");
	CHECK_STREQ(http_fields_get(&r.fields, "example-dict"),
	            "a=1,    b=2;x=1;y=2,   c=(a   b   c)");
	buf_init(&out);
	CHECK(http_fields_join(&r.fields, "cache-control", &out) == 0);
	CHECK_STREQ(out.data, "max-age=60, must-revalidate");
	buf_free(&out);
	http_request_free(&r);
	buf_free(&raw);

	/* every edge case directory is covered above (e01 separately) */
	d = opendir(check_vector("edge"));
	CHECK(d != NULL);
	i = 0;
	while (d && (de = readdir(d)) != NULL)
		i += de->d_name[0] == 'e' && strchr(de->d_name, '.') == NULL;
	if (d)
		closedir(d);
	CHECK(i == nedge + 1);

	/* every RFC 9421 request file parses, with its /foo or /demo path */
	d = opendir(check_vector("rfc9421"));
	CHECK(d != NULL);
	i = 0;
	while (d && (de = readdir(d)) != NULL) {
		static const char *names[] = {"request.http",
		                              "request-signed.http",
		                              "request-unsigned.http"};
		size_t k;
		char rel[512];
		FILE *fp;

		if (de->d_name[0] == '.')
			continue;
		for (k = 0; k < 3; k++) {
			snprintf(rel, sizeof(rel), "rfc9421/%s/%s", de->d_name,
			         names[k]);
			fp = fopen(check_vector(rel), "r");
			if (fp == NULL)
				continue;
			fclose(fp);
			check_read_vector(rel, &raw);
			http_request_init(&r);
			err[0] = '\0';
			ok_at(__LINE__,
			      http1_parse_request(raw.data, raw.len, NULL, &r,
			                          err) == 0,
			      rel, err);
			ok_at(__LINE__,
			      r.path && (strcmp(r.path, "/foo") == 0 ||
			                 strcmp(r.path, "/demo") == 0),
			      rel, r.path);
			/* origin-form: the authority is the Host value */
			ok_at(__LINE__,
			      r.authority &&
			          streq_null(
			              r.authority,
			              http_fields_get(&r.fields, "host")) &&
			          strchr(r.authority, '.') != NULL,
			      rel, r.authority);
			http_request_free(&r);
			buf_free(&raw);
			i++;
		}
	}
	if (d)
		closedir(d);
	CHECK(i >= 15);
}

static void
test_field_helpers(void)
{
	struct http_fields f;
	struct buf b;

	http_fields_init(&f);
	http_fields_add(&f, "Accept", "a/b");
	http_fields_add(&f, "Host", "h");
	http_fields_add(&f, "accept", "c/d");
	http_fields_add(&f, "X-Empty", "");
	CHECK(http_fields_count(&f, "ACCEPT") == 2);
	CHECK_STREQ(http_fields_get(&f, "aCCept"), "a/b");
	CHECK(http_fields_get(&f, "missing") == NULL);
	CHECK(http_fields_get(&f, "Acce") == NULL);
	buf_init(&b);
	CHECK(http_fields_join(&f, "accept", &b) == 0);
	CHECK_STREQ(b.data, "a/b, c/d");
	buf_reset(&b);
	CHECK(http_fields_join(&f, "nope", &b) == -1);
	buf_free(&b);
	buf_init(&b);
	CHECK(http_fields_join(&f, "x-empty", &b) == 0);
	CHECK(b.data != NULL && b.len == 0);
	buf_free(&b);

	http_fields_set(&f, "ACCEPT", "e/f");
	CHECK(f.n == 3);
	CHECK_STREQ(f.v[0].name, "ACCEPT");
	CHECK_STREQ(f.v[0].value, "e/f");
	CHECK_STREQ(f.v[1].name, "Host");
	http_fields_set(&f, "New", "1");
	CHECK(f.n == 4);
	CHECK_STREQ(f.v[3].name, "New");
	http_fields_add(&f, "new", "2");
	CHECK(http_fields_del(&f, "NEW") == 2);
	CHECK(http_fields_del(&f, "NEW") == 0);
	CHECK(f.n == 3);
	CHECK_STREQ(f.v[2].name, "X-Empty");
	http_fields_free(&f);
	CHECK(f.n == 0 && f.v == NULL);

	CHECK(http1_is_tchar('a') && http1_is_tchar('~') &&
	      http1_is_tchar('!') && http1_is_tchar('9'));
	CHECK(!http1_is_tchar(' ') && !http1_is_tchar(':') &&
	      !http1_is_tchar('"') && !http1_is_tchar(0x80) &&
	      !http1_is_tchar('(') && !http1_is_tchar(0));
}

static void
test_writers(void)
{
	struct http_request r;
	struct buf b, dec;
	struct http_chunked c;
	char err[ERR_MAX];
	size_t used;

	buf_init(&b);
	CHECK_STREQ(http1_status_reason(505), "HTTP Version Not Supported");
	CHECK_STREQ(http1_status_reason(799), "Unknown");

	buf_appends(&b, "1b\r\nhello world, 26 bytes long!\r\n1\r\nx\r\n"
	                "0\r\n\r\n");
	buf_init(&dec);
	http_chunked_init(&c);
	CHECK(http_chunked_decode(&c, b.data, b.len, &dec, &used, err) == 1);
	CHECK(used == b.len);
	CHECK_STREQ(dec.data, "hello world, 26 bytes long!x");
	buf_free(&dec);

	/* write: request line with the target as received, HTTP/1.1 */
	http_request_init(&r);
	CHECK(http1_parse_request(LIT("get http://A.test/x?y HTTP/1.0\r\n"
	                              "X:  v \r\nContent-Length: 2\r\n\r\nhi"),
	                          NULL, &r, err) == 0);
	buf_reset(&b);
	http1_write_request(&r, &b);
	CHECK_STREQ(b.data, "get http://A.test/x?y HTTP/1.1\r\nX: v\r\n"
	                    "Content-Length: 2\r\n\r\nhi");
	http_request_set_scheme(&r, "https");
	CHECK_STREQ(r.scheme, "https");
	http_request_set_scheme(&r, NULL);
	CHECK_STREQ(r.scheme, "https");
	http_request_free(&r);
	CHECK(r.method == NULL && r.port == -1 && r.content_length == -1 &&
	      r.fields.n == 0 && r.progress.pos == 0);
	buf_free(&b);
}

/* ---- response heads ---- */

/* Feed raw[0..n) to the response-head parser the way curl hands it over:
 * split after each LF. mode 0 passes slices of raw with their endings;
 * mode 1 passes each line without its ending from a heap copy that is
 * poisoned and freed right after the call (the parser must keep nothing
 * of the caller's). Returns the first non-zero result (1 head complete,
 * -1 invalid), 0 when the input ran out first; *used is the bytes fed. */
static int
resp_feed(struct http_response_head *h, const char *raw, size_t n, int mode,
          size_t *used, char *err)
{
	size_t i = 0, e;
	int rc = 0;

	while (i < n && rc == 0) {
		const char *lf = memchr(raw + i, '\n', n - i);

		e = lf ? (size_t)(lf - raw) + 1 : n;
		if (mode == 0) {
			rc = http1_response_line(h, raw + i, e - i, err);
		} else {
			size_t k = e - i;
			char *copy;

			while (k > 0 && (raw[i + k - 1] == '\n' ||
			                 raw[i + k - 1] == '\r'))
				k--;
			copy = xmalloc(k + 1);
			memcpy(copy, raw + i, k);
			rc = http1_response_line(h, copy, k, err);
			memset(copy, 'Z', k);
			free(copy);
		}
		i = e;
	}
	*used = i;
	return rc;
}

/* The head in raw parses (both ways) to status, reason, Content-Length and
 * exactly the fields given as name, value pairs (NULL-terminated), with
 * `dropped` lines dropped; nothing after the empty line is consumed. */
static void
resp_ok_at(int line, const char *raw, size_t n, int status, const char *reason,
           int64_t cl, size_t dropped, const char *const *fields)
{
	struct http_response_head h;
	char err[ERR_MAX], why[ERR_MAX + 128];
	size_t used, nf, i;
	int mode, rc;

	for (nf = 0; fields[nf] != NULL; nf += 2)
		;
	nf /= 2;
	for (mode = 0; mode < 2; mode++) {
		http_response_head_init(&h);
		err[0] = '\0';
		rc = resp_feed(&h, raw, n, mode, &used, err);
		snprintf(why, sizeof(why), "mode %d, rc %d: %s", mode, rc, err);
		ok_at(line, rc == 1, "response head accepted", why);
		if (rc != 1) {
			http_response_head_free(&h);
			continue;
		}
		ok_at(line, used == n, "whole head consumed", NULL);
		ok_at(line, h.status == status, "status", NULL);
		ok_at(line, h.reason && strcmp(h.reason, reason) == 0, "reason",
		      h.reason);
		ok_at(line, h.content_length == cl, "content_length", NULL);
		ok_at(line, h.dropped == dropped, "dropped lines", NULL);
		ok_at(line, h.n == nf, "number of fields", NULL);
		for (i = 0; i < nf && i < h.n; i++) {
			const struct http_response_field *f = &h.v[i];

			ok_at(line,
			      strcmp(f->name, fields[2 * i]) == 0 &&
			          strlen(f->name) == f->name_len,
			      "field name", f->name);
			ok_at(line,
			      strcmp(f->value, fields[2 * i + 1]) == 0 &&
			          strlen(f->value) == f->value_len,
			      "field value", f->value);
		}
		http_response_head_free(&h);
	}
}

/* The head in raw is refused (both ways) with exactly this message. */
static void
resp_bad_at(int line, const char *raw, size_t n, const char *want)
{
	struct http_response_head h;
	char err[ERR_MAX], why[ERR_MAX * 2 + 32];
	size_t used;
	int mode, rc;

	for (mode = 0; mode < 2; mode++) {
		http_response_head_init(&h);
		err[0] = '\0';
		rc = resp_feed(&h, raw, n, mode, &used, err);
		snprintf(why, sizeof(why),
		         "mode %d, rc %d, got [%s], want [%s]", mode, rc, err,
		         want);
		ok_at(line, rc == -1 && strcmp(err, want) == 0,
		      "response head refused", why);
		http_response_head_free(&h);
	}
}

#define RESP_OK(raw, st, rs, cl, dr, ...)                                      \
	resp_ok_at(__LINE__, LIT(raw), (st), (rs), (cl), (dr),                 \
	           (const char *const[]){__VA_ARGS__, NULL})
#define RESP_BAD(raw, want) resp_bad_at(__LINE__, LIT(raw), (want))

#define E_STATUS                                                               \
	"the status line is not 'HTTP/1.x NNN reason' with a status from 100 " \
	"to 599"
#define E_REASON "a control byte in the reason phrase"
#define E_NAME                                                                 \
	"a header line without a field name made of token characters right "   \
	"before its ':'"
#define E_FOLD_FRAMING                                                         \
	"an obs-fold continues Content-Length or Transfer-Encoding"
#define E_CTL_FRAMING "a control byte in Content-Length or Transfer-Encoding"
#define E_CL_NAN      "Content-Length is not a decimal number"
#define E_CL_BIG      "Content-Length is too large"
#define E_CL_DIFF     "Content-Length values disagree"

static void
test_response_status_line(void)
{
	RESP_OK("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", 200, "OK", 2, 0,
	        "Content-Length", "2");
	RESP_OK("HTTP/1.0 404 Not Found Here\r\n\r\n", 404, "Not Found Here",
	        -1, 0, NULL);
	RESP_OK("HTTP/1.9 599 x\r\n\r\n", 599, "x", -1, 0, NULL);
	RESP_OK("HTTP/1.1 100 Continue\r\n\r\n", 100, "Continue", -1, 0, NULL);
	/* the SP before an empty reason may be missing */
	RESP_OK("HTTP/1.1 204\r\n\r\n", 204, "", -1, 0, NULL);
	RESP_OK("HTTP/1.1 204 \r\n\r\n", 204, "", -1, 0, NULL);
	/* HTAB, SP and obs-text are fine in a reason */
	RESP_OK("HTTP/1.1 200 a\tb  \x80\xff\r\n\r\n", 200, "a\tb  \x80\xff",
	        -1, 0, NULL);
	/* empty lines before the status line are skipped; any run of CR and
	 * LF ends a line */
	RESP_OK("\r\n\r\nHTTP/1.1 200 OK\r\r\nX: 1\n\r\n", 200, "OK", -1, 0,
	        "X", "1");

	RESP_BAD("HTTP/1.1 2000 OK\r\n\r\n", E_STATUS);
	RESP_BAD("HTTP/1.1 99 OK\r\n\r\n", E_STATUS);
	RESP_BAD("HTTP/1.1 099 OK\r\n\r\n", E_STATUS);
	RESP_BAD("HTTP/1.1 600 OK\r\n\r\n", E_STATUS);
	RESP_BAD("HTTP/1.1 20\r\n\r\n", E_STATUS);
	RESP_BAD("HTTP/1.1 2x0 OK\r\n\r\n", E_STATUS);
	RESP_BAD("HTTP/1.1  200 OK\r\n\r\n", E_STATUS);
	RESP_BAD("HTTP/1.1\t200 OK\r\n\r\n", E_STATUS);
	RESP_BAD("HTTP/1.1 200\tOK\r\n\r\n", E_STATUS);
	RESP_BAD("HTTP/1.x 200 OK\r\n\r\n", E_STATUS);
	RESP_BAD("HTTP/2 200 OK\r\n\r\n", E_STATUS);
	RESP_BAD("HTTP/2.0 200 OK\r\n\r\n", E_STATUS);
	RESP_BAD("http/1.1 200 OK\r\n\r\n", E_STATUS);
	RESP_BAD(" HTTP/1.1 200 OK\r\n\r\n", E_STATUS);
	RESP_BAD("FOO BAR BAZ\r\nContent-Length: 2\r\n\r\n", E_STATUS);
	RESP_BAD("ok", E_STATUS);

	/* a control byte in the reason: a bare CR would start a line of the
	 * upstream's choosing in the client's head */
	RESP_BAD("HTTP/1.1 200 O\x01K\r\n\r\n", E_REASON);
	RESP_BAD("HTTP/1.1 200 OK\rSet-Cookie: evil=1\r\n\r\n", E_REASON);
	RESP_BAD("HTTP/1.1 200 O\0K\r\n\r\n", E_REASON);
	RESP_BAD("HTTP/1.1 200 OK\x7f\r\n\r\n", E_REASON);
	RESP_BAD("HTTP/1.1 200 a long reason phrase with\x1b[31m escape\r\n"
	         "\r\n",
	         E_REASON);
}

static void
test_response_fields(void)
{
	/* OWS around the value trimmed, inner whitespace kept, name case
	 * kept, empty values kept */
	RESP_OK("HTTP/1.1 200 OK\r\nX-A: \t a  b \t\r\nx-EMPTY:\r\n"
	        "Y:   \r\n!#$%&'*+-.^_`|~09azAZ: t\r\n\r\n",
	        200, "OK", -1, 0, "X-A", "a  b", "x-EMPTY", "", "Y", "",
	        "!#$%&'*+-.^_`|~09azAZ", "t");
	/* a ':' in the value is just a byte */
	RESP_OK("HTTP/1.1 200 OK\r\nLocation: http://h:8/x\r\n\r\n", 200, "OK",
	        -1, 0, "Location", "http://h:8/x");

	RESP_BAD("HTTP/1.1 200 OK\r\nX Bad: 1\r\n\r\n", E_NAME);
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n", E_NAME);
	RESP_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n",
	         E_NAME);
	RESP_BAD("HTTP/1.1 200 OK\r\nX-A\t: 1\r\n\r\n", E_NAME);
	RESP_BAD("HTTP/1.1 200 OK\r\n: v\r\n\r\n", E_NAME);
	RESP_BAD("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", E_NAME);
	RESP_BAD("HTTP/1.1 200 OK\r\nX(: 1\r\n\r\n", E_NAME);
	RESP_BAD("HTTP/1.1 200 OK\r\nX\x01: 1\r\n\r\n", E_NAME);
	RESP_BAD("HTTP/1.1 200 OK\r\nX\0Y: 1\r\n\r\n", E_NAME);
	RESP_BAD("HTTP/1.1 200 OK\r\n\xc3\x9c: 1\r\n\r\n", E_NAME);
	RESP_BAD("HTTP/1.1 200 OK\r\n\"X\": 1\r\n\r\n", E_NAME);
}

static void
test_response_control_bytes(void)
{
	/* a field line with a control byte in its value is dropped whole;
	 * the rest of the head is still good */
	RESP_OK("HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 2\r\n\r\n",
	        200, "OK", 2, 1, "Content-Length", "2");
	RESP_OK("HTTP/1.1 200 OK\r\nX-A: a\0b\r\nY: 1\r\n\r\n", 200, "OK", -1,
	        1, "Y", "1");
	RESP_OK("HTTP/1.1 200 OK\r\nX-A: a\rSet-Cookie: evil=1\r\nY: 1\r\n\r\n",
	        200, "OK", -1, 1, "Y", "1");
	RESP_OK("HTTP/1.1 200 OK\r\nX-A: \x7f\r\nX-B: \x1f\r\nY: 1\r\n\r\n",
	        200, "OK", -1, 2, "Y", "1");
	/* ... found past the first eight bytes too (the word-wise scan) */
	RESP_OK("HTTP/1.1 200 OK\r\nX-A: 0123456789abcdef\x0b\r\n\r\n", 200,
	        "OK", -1, 1, NULL);
	RESP_OK("HTTP/1.1 200 OK\r\nX-A: 0123456789abcdefg\x7f\r\n\r\n", 200,
	        "OK", -1, 1, NULL);
	/* HTAB and obs-text are not control bytes */
	RESP_OK("HTTP/1.1 200 OK\r\nX-A: a\tb\x80\xfe\xff 0123456789\r\n\r\n",
	        200, "OK", -1, 0, "X-A", "a\tb\x80\xfe\xff 0123456789");
	/* never dropped from the framing fields: refused */
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 2\x01\r\n\r\n",
	         E_CTL_FRAMING);
	RESP_BAD("HTTP/1.1 200 OK\r\ncontent-length: \0"
	         "2\r\n\r\n",
	         E_CTL_FRAMING);
	RESP_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chun\x7fked\r\n\r\n",
	         E_CTL_FRAMING);
	RESP_BAD("HTTP/1.1 200 OK\r\nTRANSFER-ENCODING: chunked\rX: y\r\n\r\n",
	         E_CTL_FRAMING);

	/* the byte is reported for the caller's log */
	{
		struct http_response_head h;
		char err[ERR_MAX];

		http_response_head_init(&h);
		CHECK(http1_response_line(&h, LIT("HTTP/1.1 200 OK\r\n"),
		                          err) == 0);
		CHECK(http1_response_line(&h, LIT("X: a\x05\r\n"), err) == 0);
		CHECK(h.dropped == 1 && h.dropped_byte == 0x05);
		CHECK(http1_response_line(&h, LIT("\r\n"), err) == 1);
		CHECK(h.n == 0);
		http_response_head_free(&h);
	}
}

static void
test_response_obs_fold(void)
{
	/* joined with one SP, leading whitespace of the continuation gone */
	RESP_OK("HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\t \tc d \r\nY: 1\r\n\r\n",
	        200, "OK", -1, 0, "X-A", "a b c d", "Y", "1");
	/* OWS around a continuation goes too; an empty one adds nothing,
	 * and an empty value gets no leading SP */
	RESP_OK("HTTP/1.1 200 OK\r\nX-A: a\r\n \t\r\n b \r\nX-E:\r\n e\r\n"
	        "\r\n",
	        200, "OK", -1, 0, "X-A", "a b", "X-E", "e");
	/* the folded field may grow past the buffer's first size */
	RESP_OK("HTTP/1.1 200 OK\r\nX-A: "
	        "0123456789012345678901234567890123456789\r\n"
	        " 0123456789012345678901234567890123456789\r\n"
	        " 0123456789012345678901234567890123456789\r\nB: 2\r\n\r\n",
	        200, "OK", -1, 0, "X-A",
	        "0123456789012345678901234567890123456789 "
	        "0123456789012345678901234567890123456789 "
	        "0123456789012345678901234567890123456789",
	        "B", "2");
	/* a fold opening the field section has nothing to continue:
	 * ignored (libcurl 7.88 crashed on a reused handle here) */
	RESP_OK("HTTP/1.1 200 OK\r\n folded\r\nX: 1\r\n\r\n", 200, "OK", -1, 0,
	        "X", "1");
	/* a fold with a control byte is dropped like a field line */
	RESP_OK("HTTP/1.1 200 OK\r\nX-A: a\r\n b\x01\r\n c\r\n\r\n", 200, "OK",
	        -1, 1, "X-A", "a c");
	/* the rest of a dropped line is dropped too, never glued to the
	 * field before it */
	RESP_OK("HTTP/1.1 200 OK\r\nX-A: a\r\nX-B: b\x01\r\n c\r\n\td\r\n"
	        "Y: 1\r\n\r\n",
	        200, "OK", -1, 1, "X-A", "a", "Y", "1");
	/* Content-Length and Transfer-Encoding are framed by the line as
	 * it stood: a fold there would make them mean something else */
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n 2\r\n\r\n",
	         E_FOLD_FRAMING);
	RESP_BAD("HTTP/1.1 200 OK\r\ncontent-LENGTH: 2\r\n\t\r\n\r\n",
	         E_FOLD_FRAMING);
	RESP_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n chunked\r\n"
	         "\r\n",
	         E_FOLD_FRAMING);
	/* ... but a fold after another field is fine again */
	RESP_OK("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: a\r\n b\r\n\r\n",
	        200, "OK", 2, 0, "Content-Length", "2", "X", "a b");
}

static void
test_response_framing(void)
{
	RESP_OK("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", 200, "OK", 0, 0,
	        "content-length", "0");
	RESP_OK("HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n", 200, "OK", 7,
	        0, "Content-Length", "007");
	/* a list of one value repeated, and repeated lines, fold */
	RESP_OK("HTTP/1.1 200 OK\r\nContent-Length: 2, 2 ,\t2,2\r\n\r\n", 200,
	        "OK", 2, 0, "Content-Length", "2, 2 ,\t2,2");
	RESP_OK("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 02"
	        "\r\n\r\n",
	        200, "OK", 2, 0, "Content-Length", "2", "Content-Length", "02");
	/* the largest value the overflow guard lets through */
	RESP_OK("HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775799\r\n"
	        "\r\n",
	        200, "OK", INT64_C(9223372036854775799), 0, "Content-Length",
	        "9223372036854775799");
	/* Transfer-Encoding overrides Content-Length (RFC 9112 §6.3) */
	RESP_OK("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
	        "Transfer-Encoding: chunked\r\n\r\n",
	        200, "OK", -1, 0, "Content-Length", "100", "Transfer-Encoding",
	        "chunked");
	RESP_OK("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n"
	        "Content-Length: 3\r\n\r\n",
	        200, "OK", -1, 0, "transfer-encoding", "chunked",
	        "Content-Length", "3");
	/* names that only look like the framing fields */
	RESP_OK("HTTP/1.1 200 OK\r\nContent-Lengths: x\r\nX-Content-Length: y"
	        "\r\nTransfer-Encodings: z\r\n\r\n",
	        200, "OK", -1, 0, "Content-Lengths", "x", "X-Content-Length",
	        "y", "Transfer-Encodings", "z");

	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n", E_CL_NAN);
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", E_CL_NAN);
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", E_CL_NAN);
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 2 3\r\n\r\n", E_CL_NAN);
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 2,\r\n\r\n", E_CL_NAN);
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 2, \r\n\r\n", E_CL_NAN);
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: ,2\r\n\r\n", E_CL_NAN);
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 2,,2\r\n\r\n", E_CL_NAN);
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n", E_CL_NAN);
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 2;q\r\n\r\n", E_CL_NAN);
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\n", E_CL_DIFF);
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 3, 3, 4\r\n\r\n",
	         E_CL_DIFF);
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 27"
	         "\r\n\r\n",
	         E_CL_DIFF);
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775800\r\n"
	         "\r\n",
	         E_CL_BIG);
	RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n"
	         "\r\n",
	         E_CL_BIG);
	/* an empty value adds no length (the client library decides) */
	RESP_OK("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", 200, "OK", -1, 0,
	        "Content-Length", "");
}

/* Found by fuzz_response (corpus/response/crash-fold-quadratic): each fold
 * used to rebuild the whole value at the end of the buffer, so the head
 * cost time and memory quadratic in its fold lines — 100 kB of " x" lines
 * from an upstream took the daemon from 11 to 606 MiB and stalled its loop
 * for two seconds. A head must stay within the bytes it arrived in. */
static void
test_response_fold_linear(void)
{
	struct http_response_head h;
	struct buf raw, want;
	char err[ERR_MAX];
	size_t used, i;

	buf_init(&raw);
	buf_init(&want);
	buf_appends(&raw, "HTTP/1.1 200 OK\r\nX-A: a\r\n");
	buf_appendc(&want, 'a');
	for (i = 0; i < 20000; i++) {
		buf_appends(&raw, " x\r\n");
		buf_appends(&want, " x");
	}
	buf_appends(&raw, "Content-Length: 2\r\n\r\n");
	http_response_head_init(&h);
	CHECK(resp_feed(&h, raw.data, raw.len, 0, &used, err) == 1);
	CHECK(h.n == 2 && h.content_length == 2);
	CHECK(h.n > 0 && h.v[0].value_len == want.len &&
	      strcmp(h.v[0].value, want.data) == 0);
	CHECK(h.buf.len <= raw.len);
	CHECK(h.buf.cap <= 2 * raw.len);
	http_response_head_free(&h);
	buf_free(&raw);
	buf_free(&want);
}

/* Interim heads, reuse after reset, many fields, long lines, trimming. */
static void
test_response_reuse(void)
{
	struct http_response_head h;
	struct buf raw;
	char err[ERR_MAX], name[32], val[64];
	size_t used, i;
	int ok;

	http_response_head_init(&h);
	CHECK(resp_feed(&h,
	                LIT("HTTP/1.1 103 Early Hints\r\n"
	                    "Link: </x>; rel=preload\r\n\r\n"),
	                0, &used, err) == 1);
	CHECK(h.status == 103 && h.n == 1);
	http_response_head_reset(&h);
	CHECK(h.status == 0 && h.n == 0 && h.content_length == -1);
	CHECK(resp_feed(&h,
	                LIT("HTTP/1.1 201 Created\r\nContent-Length: 4\r\n"
	                    "\r\n"),
	                0, &used, err) == 1);
	CHECK(h.status == 201 && h.content_length == 4 && h.n == 1);
	CHECK_STREQ(h.reason, "Created");
	CHECK_STREQ(h.v[0].name, "Content-Length");

	/* a failed head, then a good one after reset: nothing carries over */
	http_response_head_reset(&h);
	CHECK(resp_feed(&h,
	                LIT("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
	                    "Content-Length: 6\r\n\r\n"),
	                0, &used, err) == -1);
	http_response_head_reset(&h);
	CHECK(resp_feed(&h,
	                LIT("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n"
	                    "X: \x01\r\n\r\n"),
	                0, &used, err) == 1);
	CHECK(h.content_length == 6 && h.dropped == 1 && h.n == 1);

	/* 500 fields: the arrays and the buffer grow, offsets stay right */
	http_response_head_reset(&h);
	buf_init(&raw);
	buf_appends(&raw, "HTTP/1.1 200 OK\r\n");
	for (i = 0; i < 500; i++)
		buf_appendf(&raw, "X-Field-%zu:  value number %zu  \r\n", i, i);
	buf_appends(&raw, "\r\n");
	CHECK(resp_feed(&h, raw.data, raw.len, 1, &used, err) == 1);
	CHECK(h.n == 500);
	for (i = 0, ok = 1; i < h.n && i < 500; i++) {
		snprintf(name, sizeof(name), "X-Field-%zu", i);
		snprintf(val, sizeof(val), "value number %zu", i);
		ok &= strcmp(h.v[i].name, name) == 0 &&
		      strcmp(h.v[i].value, val) == 0 &&
		      h.v[i].value_len == strlen(val);
	}
	CHECK(ok);

	/* a 200 kB reason and value are accepted (curl bounds the head) */
	http_response_head_reset(&h);
	buf_reset(&raw);
	buf_appends(&raw, "HTTP/1.1 200 ");
	for (i = 0; i < 200000; i++)
		buf_appendc(&raw, 'R');
	buf_appends(&raw, "\r\nX-A: ");
	for (i = 0; i < 200000; i++)
		buf_appendc(&raw, 'a');
	buf_appends(&raw, "\r\n\r\n");
	CHECK(resp_feed(&h, raw.data, raw.len, 0, &used, err) == 1);
	CHECK(strlen(h.reason) == 200000 && h.n == 1 &&
	      h.v[0].value_len == 200000);
	/* trimming frees the outsized buffer and starts over */
	http_response_head_trim(&h, 16 * 1024);
	CHECK(h.buf.cap == 0 && h.status == 0 && h.n == 0);
	CHECK(resp_feed(&h, LIT("HTTP/1.1 200 OK\r\nA: b\r\n\r\n"), 0, &used,
	                err) == 1);
	CHECK(h.n == 1 && strcmp(h.v[0].value, "b") == 0);
	buf_free(&raw);
	http_response_head_free(&h);
}

/* Typical agent request: 12 fields. Print only; timings vary by machine. */
static void
bench(void)
{
	static const char req[] =
	    "POST /v1/chat/completions?stream=true HTTP/1.1\r\n"
	    "Host: api.example.com\r\n"
	    "User-Agent: python-httpx/0.27.0\r\n"
	    "Accept: application/json\r\n"
	    "Accept-Encoding: gzip, deflate\r\n"
	    "Connection: keep-alive\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: 128\r\n"
	    "X-Request-Id: 7f1c2a9e-3b44-4c1d-9a55-0d6f5e8b2c11\r\n"
	    "X-Stainless-Lang: python\r\n"
	    "X-Stainless-Package-Version: 1.35.0\r\n"
	    "OpenAI-Beta: assistants=v2\r\n"
	    "Traceparent: "
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	    "\r\n\r\n";
	struct http_request r;
	struct timespec t0, t1;
	size_t used, i, ok = 0;
	int st;
	char err[ERR_MAX];
	const size_t loops = 100000;
	double ns;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < loops; i++) {
		http_request_init(&r);
		ok += http1_parse_request_head(req, sizeof(req) - 1, NULL, &r,
		                               &used, &st, err) == 1;
		http_request_free(&r);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK(ok == loops);
	ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
	      (double)(t1.tv_nsec - t0.tv_nsec)) /
	     (double)loops;
	fprintf(stderr,
	        "bench: %.0f ns per parse of a 12-field head (%zu bytes), "
	        "%.0f ns per line\n",
	        ns, sizeof(req) - 1, ns / 13);

	/* the same head fed one byte per call: resumable, so linear */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 1000; i++) {
		size_t k;
		int rc = 0;

		http_request_init(&r);
		for (k = 1; k <= sizeof(req) - 1 && rc == 0; k++)
			rc = http1_parse_request_head(req, k, NULL, &r, &used,
			                              &st, err);
		CHECK(rc == 1 || i > 0);
		http_request_free(&r);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
	      (double)(t1.tv_nsec - t0.tv_nsec)) /
	     1000.0;
	fprintf(stderr, "bench: %.0f ns per head fed one byte per call\n", ns);

	/* a typical upstream response head, fed line by line as curl does,
	 * into a reused head (as upstream.c's pooled requests do) */
	{
		static const char *const lines[] = {
		    "HTTP/1.1 200 OK\r\n",
		    "Date: Mon, 01 Dec 2025 13:18:00 GMT\r\n",
		    "Content-Type: application/json; charset=utf-8\r\n",
		    "Content-Length: 1234\r\n",
		    "Connection: keep-alive\r\n",
		    "Cache-Control: no-store\r\n",
		    "X-Request-Id: 7f1c2a9e-3b44-4c1d-9a55-0d6f5e8b2c11\r\n",
		    "Strict-Transport-Security: max-age=31536000\r\n",
		    "Vary: Accept-Encoding\r\n",
		    "Server: nginx\r\n",
		    "X-Ratelimit-Remaining: 4999\r\n",
		    "Openai-Processing-Ms: 312\r\n",
		    "Etag: W/\"4d2-abcdef\"\r\n",
		    "\r\n"};
		struct http_response_head h;
		size_t k, nl = sizeof(lines) / sizeof(lines[0]);
		size_t lens[sizeof(lines) / sizeof(lines[0])];

		for (k = 0; k < nl; k++)
			lens[k] = strlen(lines[k]);
		http_response_head_init(&h);
		ok = 0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (i = 0; i < loops; i++) {
			http_response_head_reset(&h);
			for (k = 0; k < nl; k++)
				ok += http1_response_line(&h, lines[k], lens[k],
				                          err) == 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		CHECK(ok == loops && h.n == 12);
		http_response_head_free(&h);
		ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
		      (double)(t1.tv_nsec - t0.tv_nsec)) /
		     (double)loops;
		fprintf(stderr,
		        "bench: %.0f ns per response head of 12 fields, "
		        "%.0f ns per line\n",
		        ns, ns / 14);
	}
}

/* A fragment in the target is refused, in every form, never forwarded. */
static void
test_fragment_refused(void)
{
	static const char *const heads[] = {
	    "GET /cb#access_token=SECRET HTTP/1.1\r\nHost: h\r\n\r\n",
	    "GET http://h/cb?x=1#t=SECRET HTTP/1.1\r\nHost: h\r\n\r\n",
	    "GET http://h#frag HTTP/1.1\r\nHost: h\r\n\r\n",
	};
	struct http_request r;
	char err[ERR_MAX];
	size_t i, used;
	int st;

	for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		http_request_init(&r);
		err[0] = '\0';
		st = 0;
		CHECK(http1_parse_request_head(heads[i], strlen(heads[i]), NULL,
		                               &r, &used, &st, err) == -1);
		CHECK(st == 400);
		CHECK(strstr(err, "fragment") != NULL);
		http_request_free(&r);
	}
}

int
main(void)
{
	test_fragment_refused();
	srand(1);
	test_forms();
	test_request_line_errors();
	test_host();
	test_fields();
	test_obs_fold_opt_in();
	test_framing();
	test_expect_connection();
	test_limits();
	test_early_errors();
	test_chunked();
	test_whole();
	test_vectors();
	test_field_helpers();
	test_writers();
	test_response_status_line();
	test_response_fields();
	test_response_control_bytes();
	test_response_obs_fold();
	test_response_framing();
	test_response_reuse();
	test_response_fold_linear();
	bench();
	return check_done("test_http1");
}
