/*
 * http1: the strict HTTP/1.1 request parser (RFC 9112), the chunked decoder,
 * the field list, the request writer and the response-head parser. Every
 * ambiguity is an error with a message a client developer can act on; the
 * request-head parser is one pass and resumable, because it sees every byte
 * a possibly hostile agent sends; the response-head parser is fed by line,
 * runs for every upstream response and allocates nothing once warm.
 */
#include "http1.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 9112 §2.2 asks servers to skip at least one empty line before the
 * request line (old clients send CRLF after a POST body); a few is enough. */
#define HTTP1_MAX_LEADING_EMPTY 4
#define HTTP1_CHUNK_LINE_MAX    4096
#define HTTP1_TRAILERS_MAX      (16 * 1024)
#define HTTP1_CRLF_HINT         "HTTP requires CRLF — convert with `sed 's/$/\\r/'`"

/* Byte classes inside a head line: only these may appear between CRLFs.
 * OK covers HTAB, SP, VCHAR and obs-text; the line parsers then apply the
 * narrower rules of the request line and field names. */
enum {
	HTTP1_C_OK = 0,
	HTTP1_C_CR,
	HTTP1_C_LF,
	HTTP1_C_BAD, /* NUL, other CTLs, DEL */
};

static const unsigned char http1_lcls[256] = {
    /* HTAB (0x09) stays HTTP1_C_OK */
    [0x00 ... 0x08] = HTTP1_C_BAD, ['\n'] = HTTP1_C_LF,
    [0x0b ... 0x0c] = HTTP1_C_BAD, ['\r'] = HTTP1_C_CR,
    [0x0e ... 0x1f] = HTTP1_C_BAD, [0x7f] = HTTP1_C_BAD,
};

/* tchar (RFC 9110 §5.6.2). */
static const unsigned char http1_tchar[256] = {
    ['!'] = 1,         ['#'] = 1,         ['$'] = 1, ['%'] = 1,
    ['&'] = 1,         ['\''] = 1,        ['*'] = 1, ['+'] = 1,
    ['-'] = 1,         ['.'] = 1,         ['^'] = 1, ['_'] = 1,
    ['`'] = 1,         ['|'] = 1,         ['~'] = 1, ['0' ... '9'] = 1,
    ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

/* reg-name characters (RFC 3986 §3.2.2): unreserved, sub-delims and '%'
 * (checked for two hex digits separately). */
static const unsigned char http1_hostc[256] = {
    ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1, ['-'] = 1,
    ['.'] = 1,         ['_'] = 1,         ['~'] = 1,         ['!'] = 1,
    ['$'] = 1,         ['&'] = 1,         ['\''] = 1,        ['('] = 1,
    [')'] = 1,         ['*'] = 1,         ['+'] = 1,         [','] = 1,
    [';'] = 1,         ['='] = 1,         ['%'] = 1,
};

static int
http1_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* ASCII case-insensitive compare of s[0..n) with a literal. */
#define HTTP1_CI_EQ(s, n, lit)                                                 \
	((n) == sizeof(lit) - 1 && util_strncaseeq((s), lit, sizeof(lit) - 1))

/* Printable rendering of untrusted bytes for an error message: at most 40
 * bytes, others as \xNN, so a hostile request cannot forge log lines. */
static const char *
http1_show(const char *s, size_t n, char *out, size_t outsz)
{
	size_t i, o = 0;

	for (i = 0; i < n && o + 8 < outsz; i++) {
		unsigned char c = (unsigned char)s[i];

		if (i == 40) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}

int
http1_is_tchar(unsigned char c)
{
	return http1_tchar[c];
}

/* ---- field list ---- */

void
http_fields_init(struct http_fields *f)
{
	f->v = NULL;
	f->n = 0;
	f->cap = 0;
}

void
http_fields_free(struct http_fields *f)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		free(f->v[i].name);
		free(f->v[i].value);
	}
	free(f->v);
	http_fields_init(f);
}

static void
http_fields_addn(struct http_fields *f, const char *name, size_t nlen,
                 const char *value, size_t vlen)
{
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		f->v = xrealloc(f->v, f->cap * sizeof(*f->v));
	}
	f->v[f->n].name = xstrndup(name, nlen);
	f->v[f->n].value = xstrndup(value, vlen);
	f->n++;
}

void
http_fields_add(struct http_fields *f, const char *name, const char *value)
{
	http_fields_addn(f, name, strlen(name), value, strlen(value));
}

static int
http_fields_name_is(const struct http_field *fl, const char *name)
{
	return util_strcaseeq(fl->name, name);
}

static int
http_fields_drop_named(const char *fname, void *arg)
{
	return util_strcaseeq(fname, arg);
}

size_t
http_fields_del(struct http_fields *f, const char *name)
{
	return http_fields_del_if(f, http_fields_drop_named, (void *)name);
}

size_t
http_fields_del_if(struct http_fields *f,
                   int (*drop)(const char *name, void *arg), void *arg)
{
	size_t i, o = 0, n = 0;

	for (i = 0; i < f->n; i++) {
		if (drop(f->v[i].name, arg)) {
			free(f->v[i].name);
			free(f->v[i].value);
			n++;
			continue;
		}
		f->v[o++] = f->v[i];
	}
	f->n = o;
	return n;
}

void
http_fields_set(struct http_fields *f, const char *name, const char *value)
{
	size_t i, o, first = f->n;

	for (i = 0; i < f->n; i++)
		if (http_fields_name_is(&f->v[i], name)) {
			first = i;
			break;
		}
	if (first == f->n) {
		http_fields_add(f, name, value);
		return;
	}
	/* Keep the first line's position, drop the others. */
	free(f->v[first].name);
	free(f->v[first].value);
	f->v[first].name = xstrdup(name);
	f->v[first].value = xstrdup(value);
	for (i = o = first + 1; i < f->n; i++) {
		if (http_fields_name_is(&f->v[i], name)) {
			free(f->v[i].name);
			free(f->v[i].value);
			continue;
		}
		f->v[o++] = f->v[i];
	}
	f->n = o;
}

const char *
http_fields_get(const struct http_fields *f, const char *name)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (http_fields_name_is(&f->v[i], name))
			return f->v[i].value;
	return NULL;
}

size_t
http_fields_count(const struct http_fields *f, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < f->n; i++)
		n += (size_t)http_fields_name_is(&f->v[i], name);
	return n;
}

int
http_fields_join(const struct http_fields *f, const char *name, struct buf *out)
{
	size_t i;
	int found = 0;

	for (i = 0; i < f->n; i++) {
		if (!http_fields_name_is(&f->v[i], name))
			continue;
		if (found)
			buf_append(out, ", ", 2);
		buf_appends(out, f->v[i].value);
		found = 1;
	}
	if (found && out->data == NULL)
		buf_reserve(out, 0); /* an empty value is still a value */
	return found ? 0 : -1;
}

/* ---- request ---- */

void
http_request_init(struct http_request *r)
{
	memset(r, 0, sizeof(*r));
	http_fields_init(&r->fields);
	r->port = -1;
	r->content_length = -1;
	r->version_minor = 1;
}

void
http_request_free(struct http_request *r)
{
	free(r->method);
	free(r->target);
	free(r->scheme);
	free(r->authority);
	free(r->host);
	free(r->path);
	free(r->query);
	free(r->body);
	http_fields_free(&r->fields);
	http_request_init(r);
}

void
http_request_set_scheme(struct http_request *r, const char *scheme)
{
	char *old = r->scheme;

	if (scheme == NULL || scheme == old)
		return;
	/* Copy first: scheme may point into the string being replaced. */
	r->scheme = xstrdup(scheme);
	free(old);
}

/* ---- request line and target ---- */

/* host [":" port] (RFC 3986 §3.2). what names the source in messages. */
static int
http1_authority(const char *a, size_t n, int need_port, const char *what,
                char **host, int *port, char *err)
{
	char show[64], ch[16];
	size_t he, i;
	long v;

	if (n == 0) {
		err_set(err, "%s: the host is empty", what);
		return -1;
	}
	if (memchr(a, '@', n) != NULL) {
		err_set(err,
		        "%s: userinfo (user@host) is not allowed; send "
		        "credentials in a header instead",
		        what);
		return -1;
	}
	if (a[0] == '[') {
		int colon = 0;

		for (he = 1; he < n && a[he] != ']'; he++) {
			unsigned char c = (unsigned char)a[he];

			colon |= c == ':';
			if (http1_hexval(c) < 0 && c != ':' && c != '.') {
				err_set(
				    err,
				    "%s: invalid character '%s' in the IPv6 "
				    "literal",
				    what,
				    http1_show(a + he, 1, show, sizeof(show)));
				return -1;
			}
		}
		if (he == n || !colon) {
			err_set(err, "%s: malformed IPv6 literal '%s'", what,
			        http1_show(a, n, show, sizeof(show)));
			return -1;
		}
		he++;
	} else {
		for (he = 0; he < n && a[he] != ':'; he++) {
			unsigned char c = (unsigned char)a[he];

			if (!http1_hostc[c]) {
				err_set(
				    err,
				    "%s: invalid character '%s' in the host "
				    "'%s'",
				    what, http1_show(a + he, 1, ch, sizeof(ch)),
				    http1_show(a, n, show, sizeof(show)));
				return -1;
			}
			if (c == '%' &&
			    (he + 2 >= n ||
			     http1_hexval((unsigned char)a[he + 1]) < 0 ||
			     http1_hexval((unsigned char)a[he + 2]) < 0)) {
				err_set(
				    err,
				    "%s: '%%' in the host must be followed by "
				    "two hex digits",
				    what);
				return -1;
			}
		}
		if (he == 0) {
			err_set(err, "%s: the host is empty", what);
			return -1;
		}
	}
	if (he == n) {
		if (need_port) {
			err_set(err, "%s: a port is required (host:port)",
			        what);
			return -1;
		}
		*port = -1;
	} else {
		if (a[he] != ':') {
			err_set(err,
			        "%s: unexpected '%s' after the IPv6 literal",
			        what,
			        http1_show(a + he, n - he, show, sizeof(show)));
			return -1;
		}
		if (he + 1 == n) {
			err_set(err, "%s: empty port after ':'", what);
			return -1;
		}
		v = 0;
		for (i = he + 1; i < n; i++) {
			if (a[i] < '0' || a[i] > '9' || i - he > 5) {
				v = -1;
				break;
			}
			v = v * 10 + (a[i] - '0');
		}
		if (v < 0 || v > 65535) {
			err_set(err,
			        "%s: invalid port '%s' (expected a number "
			        "0-65535)",
			        what,
			        http1_show(a + he + 1, n - he - 1, show,
			                   sizeof(show)));
			return -1;
		}
		*port = (int)v;
	}
	*host = xstrndup(a, he);
	return 0;
}

static int
http1_has_scheme_sep(const char *t, size_t n)
{
	size_t i;

	for (i = 0; i + 2 < n; i++)
		if (t[i] == ':' && t[i + 1] == '/' && t[i + 2] == '/')
			return 1;
	return 0;
}

static void
http1_split_path(struct http_request *req, const char *p, size_t n)
{
	const char *q = memchr(p, '?', n);

	if (q == NULL) {
		req->path = xstrndup(p, n);
		return;
	}
	req->path = xstrndup(p, (size_t)(q - p));
	req->query = xstrndup(q + 1, n - (size_t)(q - p) - 1);
}

static int
http1_target(struct http_request *req, const char *t, size_t n, char *err)
{
	char show[64];
	size_t s, a, ae;

	/* A fragment never belongs on the wire (RFC 9112 §3.2); forwarding
	 * one would leak what clients keep there (OAuth implicit-flow
	 * tokens) to the upstream and into the access log. */
	if (memchr(t, '#', n) != NULL) {
		err_set(err,
		        "request-target '%s' contains a fragment ('#'); "
		        "fragments are never sent in HTTP requests",
		        http1_show(t, n, show, sizeof(show)));
		return -1;
	}
	if (strcmp(req->method, "CONNECT") == 0) {
		req->form = HTTP_TARGET_AUTHORITY;
		if (t[0] == '/' || http1_has_scheme_sep(t, n)) {
			err_set(err,
			        "CONNECT needs host:port as its target "
			        "(authority-form), got '%s'",
			        http1_show(t, n, show, sizeof(show)));
			return -1;
		}
		if (http1_authority(t, n, 1, "CONNECT target", &req->host,
		                    &req->port, err) == -1)
			return -1;
		req->authority = xstrndup(t, n);
		req->path = xstrdup("");
		return 0;
	}
	if (t[0] == '/') {
		req->form = HTTP_TARGET_ORIGIN;
		http1_split_path(req, t, n);
		return 0;
	}
	if (n == 1 && t[0] == '*') {
		if (strcmp(req->method, "OPTIONS") != 0) {
			err_set(err, "the target '*' (asterisk-form) is only "
			             "allowed with OPTIONS");
			return -1;
		}
		req->form = HTTP_TARGET_ASTERISK;
		req->path = xstrdup("*");
		return 0;
	}
	/* absolute-form: scheme "://" authority path-abempty ["?" query] */
	for (s = 0; s < n && t[s] != ':' && t[s] != '/' && t[s] != '?'; s++)
		;
	if (s == n || t[s] != ':' ||
	    !(HTTP1_CI_EQ(t, s, "http") || HTTP1_CI_EQ(t, s, "https"))) {
		if (s < n && t[s] == ':' && s > 0 && http1_has_scheme_sep(t, n))
			err_set(
			    err,
			    "unsupported scheme '%s' in the request-target; "
			    "only http and https",
			    http1_show(t, s, show, sizeof(show)));
		else
			err_set(
			    err,
			    "request-target '%s' is not a path ('/...'), an "
			    "absolute URL ('http://...') or '*'; host:port is "
			    "only allowed with CONNECT",
			    http1_show(t, n, show, sizeof(show)));
		return -1;
	}
	if (n - s < 3 || t[s + 1] != '/' || t[s + 2] != '/') {
		err_set(err, "request-target: expected '//' after '%.*s:'",
		        (int)s, t);
		return -1;
	}
	req->form = HTTP_TARGET_ABSOLUTE;
	req->scheme = xstrndup(t, s);
	util_lower(req->scheme);
	a = s + 3;
	for (ae = a; ae < n && t[ae] != '/' && t[ae] != '?'; ae++)
		;
	if (http1_authority(t + a, ae - a, 0, "request-target", &req->host,
	                    &req->port, err) == -1)
		return -1;
	req->authority = xstrndup(t + a, ae - a);
	http1_split_path(req, t + ae, n - ae);
	return 0;
}

static int
http1_request_line(struct http_request *req, const char *l, size_t n,
                   int *status, char *err)
{
	char show[64];
	size_t m, t, te, v;

	for (m = 0; m < n && http1_tchar[(unsigned char)l[m]]; m++)
		;
	if (m == 0) {
		if (n > 0 && (l[0] == ' ' || l[0] == '\t'))
			err_set(err, "line 1: the request line starts with "
			             "whitespace");
		else
			err_set(err,
			        "line 1: the request line must start with a "
			        "method; got '%s'",
			        http1_show(l, n, show, sizeof(show)));
		return -1;
	}
	if (m == n) {
		err_set(
		    err,
		    "line 1: request line '%s' has no request-target and no "
		    "HTTP version",
		    http1_show(l, n, show, sizeof(show)));
		return -1;
	}
	if (l[m] != ' ') {
		if (l[m] == '\t')
			err_set(err, "line 1: the request line must use single "
			             "spaces, not tabs");
		else
			err_set(err,
			        "line 1: invalid character '%s' in the method",
			        http1_show(l + m, 1, show, sizeof(show)));
		return -1;
	}
	t = m + 1;
	if (t < n && l[t] == ' ') {
		err_set(err, "line 1: more than one space after the method");
		return -1;
	}
	for (te = t; te < n && l[te] != ' '; te++) {
		unsigned char c = (unsigned char)l[te];

		if (c == '\t') {
			err_set(err, "line 1: the request-target contains a "
			             "tab");
			return -1;
		}
		if (c >= 0x80) {
			err_set(err,
			        "line 1: non-ASCII byte 0x%02x in the "
			        "request-target; percent-encode it",
			        c);
			return -1;
		}
	}
	if (te == t) {
		err_set(err, "line 1: the request-target is empty");
		return -1;
	}
	if (te == n) {
		err_set(err, "line 1: the request line has no HTTP version "
		             "(HTTP/0.9 is not supported); end it with "
		             "' HTTP/1.1'");
		return -1;
	}
	v = te + 1;
	if (memchr(l + v, ' ', n - v) != NULL) {
		err_set(err, "line 1: the request line has more than two "
		             "spaces; a space in the request-target must be "
		             "percent-encoded (%%20)");
		return -1;
	}
	if (n - v == 8 && memcmp(l + v, "HTTP/1.", 7) == 0 &&
	    (l[v + 7] == '1' || l[v + 7] == '0')) {
		req->version_minor = l[v + 7] - '0';
	} else if (n - v == 8 && memcmp(l + v, "HTTP/", 5) == 0 &&
	           l[v + 5] >= '0' && l[v + 5] <= '9' && l[v + 6] == '.' &&
	           l[v + 7] >= '0' && l[v + 7] <= '9') {
		*status = 505;
		err_set(err,
		        "line 1: HTTP version %.8s is not supported; use "
		        "HTTP/1.1 (or HTTP/1.0)",
		        l + v);
		return -1;
	} else {
		err_set(err,
		        "line 1: expected 'HTTP/1.1' at the end of the request "
		        "line, got '%s'",
		        http1_show(l + v, n - v, show, sizeof(show)));
		return -1;
	}
	req->method = xstrndup(l, m);
	req->target = xstrndup(l + t, te - t);
	return http1_target(req, req->target, te - t, err);
}

/* ---- field lines ---- */

static int
http1_field_line(struct http_request *req, const char *l, size_t n,
                 unsigned line_no, size_t max_fields, int *status, char *err)
{
	char show[64];
	size_t k, v, e;

	if (req->fields.n >= max_fields) {
		*status = 431;
		err_set(err, "line %u: more than %zu header fields", line_no,
		        max_fields);
		return -1;
	}
	for (k = 0; k < n && http1_tchar[(unsigned char)l[k]]; k++)
		;
	if (k == n) {
		err_set(err, "line %u: header line '%s' has no ':'", line_no,
		        http1_show(l, n, show, sizeof(show)));
		return -1;
	}
	if (l[k] != ':') {
		if (l[k] == ' ' || l[k] == '\t')
			err_set(err,
			        "line %u: whitespace between the field name "
			        "and ':' is not allowed (RFC 9112 §5.1)",
			        line_no);
		else
			err_set(err,
			        "line %u: invalid character '%s' in the field "
			        "name",
			        line_no,
			        http1_show(l + k, 1, show, sizeof(show)));
		return -1;
	}
	if (k == 0) {
		err_set(err, "line %u: empty field name (line starts with ':')",
		        line_no);
		return -1;
	}
	/* The line scanner already refused every CTL but HTAB. */
	for (v = k + 1; v < n && (l[v] == ' ' || l[v] == '\t'); v++)
		;
	for (e = n; e > v && (l[e - 1] == ' ' || l[e - 1] == '\t'); e--)
		;
	http_fields_addn(&req->fields, l, k, l + v, e - v);
	return 0;
}

/* RFC 9112 §5.2: a recipient may replace obs-fold by SP; only when asked. */
static void
http1_fold_line(struct http_request *req, const char *l, size_t n)
{
	struct http_field *f = &req->fields.v[req->fields.n - 1];
	size_t v, e, old;

	for (v = 0; v < n && (l[v] == ' ' || l[v] == '\t'); v++)
		;
	for (e = n; e > v && (l[e - 1] == ' ' || l[e - 1] == '\t'); e--)
		;
	if (e == v)
		return;
	old = strlen(f->value);
	f->value = xrealloc(f->value, old + 1 + (e - v) + 1);
	if (old > 0)
		f->value[old++] = ' ';
	memcpy(f->value + old, l + v, e - v);
	f->value[old + e - v] = '\0';
}

/* Next element of a comma-separated list (RFC 9110 §5.6.1), OWS trimmed;
 * empty elements are skipped. Returns 0 at the end. */
static int
http1_list_next(const char **pp, const char **elem, size_t *elen)
{
	const char *p = *pp, *s, *e;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0') {
			*pp = p;
			return 0;
		}
		s = p;
		while (*p != '\0' && *p != ',')
			p++;
		e = p;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > s)
			break;
	}
	*pp = p;
	*elem = s;
	*elen = (size_t)(e - s);
	return 1;
}

static int
http1_is_token(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!http1_tchar[(unsigned char)s[i]])
			return 0;
	return n > 0;
}

struct http1_framing {
	size_t nhost, ncl, nte;
	const char *host;
	const char *cl_first;
	int cl_err; /* 1 repeated same, 2 differing */
	const char *cl_other;
	size_t te_elems, te_chunked;
	int te_last_chunked;
	const char *te_other; /* first coding that is not chunked */
	size_t te_other_len;
	int te_bad; /* chunked with parameters or a non-token */
	int conn_close, conn_keepalive;
	const char *expect_bad;
};

static int
http1_te_value(struct http1_framing *fr, const char *val, char *err)
{
	char show[64];
	const char *p = val, *el;
	size_t n, k;

	while (http1_list_next(&p, &el, &n)) {
		for (k = 0; k < n && http1_tchar[(unsigned char)el[k]]; k++)
			;
		if (k == 0 ||
		    (k < n && el[k] != ';' && el[k] != ' ' && el[k] != '\t')) {
			err_set(err, "Transfer-Encoding: invalid coding '%s'",
			        http1_show(el, n, show, sizeof(show)));
			return -1;
		}
		fr->te_elems++;
		fr->te_last_chunked = HTTP1_CI_EQ(el, k, "chunked");
		if (fr->te_last_chunked) {
			fr->te_chunked++;
			if (k < n) {
				err_set(err, "Transfer-Encoding: chunked takes "
				             "no parameters");
				return -1;
			}
		} else if (fr->te_other == NULL) {
			fr->te_other = el;
			fr->te_other_len = k;
		}
	}
	return 0;
}

static int
http1_content_length(const char *v, int64_t *out, char *err)
{
	char show[64];
	int64_t n = 0;
	size_t i;

	if (strchr(v, ',') != NULL) {
		err_set(err,
		        "Content-Length must be a single number, not a list "
		        "('%s')",
		        http1_show(v, strlen(v), show, sizeof(show)));
		return -1;
	}
	for (i = 0; v[i] != '\0'; i++) {
		int d = v[i] - '0';

		if (d < 0 || d > 9)
			break;
		if (n > (INT64_MAX - d) / 10) {
			err_set(err, "Content-Length %s is too large",
			        http1_show(v, strlen(v), show, sizeof(show)));
			return -1;
		}
		n = n * 10 + d;
	}
	if (i == 0 || v[i] != '\0') {
		err_set(err,
		        "Content-Length '%s' is not a number (digits only, no "
		        "sign)",
		        http1_show(v, strlen(v), show, sizeof(show)));
		return -1;
	}
	*out = n;
	return 0;
}

/* The empty line arrived: cross-field rules (Host, framing, Expect,
 * Connection) over the whole header section. */
static int
http1_head_finish(struct http_request *req, int *status, char *err)
{
	struct http1_framing fr;
	char show[64], show2[64];
	size_t i;

	memset(&fr, 0, sizeof(fr));
	for (i = 0; i < req->fields.n; i++) {
		const struct http_field *f = &req->fields.v[i];
		size_t nl = strlen(f->name);
		const char *p, *el;
		size_t n;

		switch (nl) {
		case 4:
			if (HTTP1_CI_EQ(f->name, nl, "host")) {
				fr.nhost++;
				fr.host = f->value;
			}
			break;
		case 6:
			if (HTTP1_CI_EQ(f->name, nl, "expect") &&
			    !HTTP1_CI_EQ(f->value, strlen(f->value),
			                 "100-continue") &&
			    fr.expect_bad == NULL)
				fr.expect_bad = f->value;
			break;
		case 10:
			if (!HTTP1_CI_EQ(f->name, nl, "connection"))
				break;
			p = f->value;
			while (http1_list_next(&p, &el, &n)) {
				if (!http1_is_token(el, n)) {
					err_set(
					    err,
					    "Connection: '%s' is not a token",
					    http1_show(el, n, show,
					               sizeof(show)));
					return -1;
				}
				fr.conn_close |= HTTP1_CI_EQ(el, n, "close");
				fr.conn_keepalive |=
				    HTTP1_CI_EQ(el, n, "keep-alive");
			}
			break;
		case 14:
			if (!HTTP1_CI_EQ(f->name, nl, "content-length"))
				break;
			if (fr.ncl++ == 0)
				fr.cl_first = f->value;
			else if (fr.cl_err != 2) {
				fr.cl_err =
				    strcmp(fr.cl_first, f->value) == 0 ? 1 : 2;
				fr.cl_other = f->value;
			}
			break;
		case 17:
			if (!HTTP1_CI_EQ(f->name, nl, "transfer-encoding"))
				break;
			fr.nte++;
			if (http1_te_value(&fr, f->value, err) == -1)
				return -1;
			break;
		}
	}

	if (fr.nhost == 0 && req->version_minor == 1) {
		err_set(err, "missing Host header (HTTP/1.1 requires exactly "
		             "one)");
		return -1;
	}
	if (fr.nhost > 1) {
		err_set(err, "Host header given %zu times; send exactly one",
		        fr.nhost);
		return -1;
	}
	if (fr.nte > 0 && req->version_minor == 0) {
		err_set(err, "Transfer-Encoding is not allowed in an HTTP/1.0 "
		             "request; use Content-Length");
		return -1;
	}
	if (fr.nte > 0 && fr.ncl > 0) {
		err_set(err, "Content-Length and Transfer-Encoding both "
		             "present: ambiguous framing; send only one");
		return -1;
	}
	if (fr.nte > 0) {
		if (fr.te_elems == 0) {
			err_set(err, "Transfer-Encoding is empty");
			return -1;
		}
		if (!fr.te_last_chunked) {
			err_set(err,
			        "Transfer-Encoding must end with chunked in a "
			        "request (RFC 9112 §6.3); the body length is "
			        "unknown");
			return -1;
		}
		if (fr.te_chunked > 1) {
			err_set(err, "Transfer-Encoding: chunked is applied "
			             "more than once");
			return -1;
		}
		if (fr.te_other != NULL) {
			*status = 501;
			err_set(err,
			        "Transfer-Encoding '%s' is not supported; send "
			        "only 'Transfer-Encoding: chunked' or "
			        "Content-Length",
			        http1_show(fr.te_other, fr.te_other_len, show,
			                   sizeof(show)));
			return -1;
		}
		req->chunked = 1;
	}
	if (fr.cl_err == 2) {
		err_set(err,
		        "Content-Length given twice with different values (%s "
		        "and %s): ambiguous framing",
		        http1_show(fr.cl_first, strlen(fr.cl_first), show,
		                   sizeof(show)),
		        http1_show(fr.cl_other, strlen(fr.cl_other), show2,
		                   sizeof(show2)));
		return -1;
	}
	if (fr.cl_err == 1) {
		err_set(err, "Content-Length given %zu times; send it once",
		        fr.ncl);
		return -1;
	}
	if (fr.ncl == 1 &&
	    http1_content_length(fr.cl_first, &req->content_length, err) == -1)
		return -1;
	if (fr.expect_bad != NULL) {
		*status = 417;
		err_set(err, "Expect '%s' is not supported (only 100-continue)",
		        http1_show(fr.expect_bad, strlen(fr.expect_bad), show,
		                   sizeof(show)));
		return -1;
	}
	/* RFC 9110 §10.1.1: a 100-continue from an HTTP/1.0 client is
	 * ignored. */
	req->expect_continue =
	    req->version_minor == 1 && http_fields_get(&req->fields, "expect");
	req->conn_close =
	    fr.conn_close || (req->version_minor == 0 && !fr.conn_keepalive);

	if (req->form == HTTP_TARGET_ORIGIN ||
	    req->form == HTTP_TARGET_ASTERISK) {
		if (fr.host == NULL)
			return 0; /* HTTP/1.0 without Host */
		if (fr.host[0] == '\0') {
			err_set(err, "the Host header is empty; it must name "
			             "the server (host[:port])");
			return -1;
		}
		if (http1_authority(fr.host, strlen(fr.host), 0, "Host header",
		                    &req->host, &req->port, err) == -1)
			return -1;
		req->authority = xstrdup(fr.host);
	}
	return 0;
}

/* One complete line (without CRLF). Returns 1 when it was the empty line
 * ending the head, 0 to go on, -1 on error. */
static int
http1_head_line(struct http_request *req, const char *l, size_t n,
                size_t max_fields, int *status, char *err)
{
	struct http1_progress *pg = &req->progress;

	if (req->method == NULL) {
		if (n > 0)
			return http1_request_line(req, l, n, status, err);
		if (++pg->leading > HTTP1_MAX_LEADING_EMPTY) {
			err_set(err,
			        "more than %d empty lines before the "
			        "request line",
			        HTTP1_MAX_LEADING_EMPTY);
			return -1;
		}
		pg->line_no--; /* leading CRLFs do not count as lines */
		return 0;
	}
	if (n == 0)
		return http1_head_finish(req, status, err) == 0 ? 1 : -1;
	if (l[0] == ' ' || l[0] == '\t') {
		/* only reached when allow_obs_fold and a field precedes */
		http1_fold_line(req, l, n);
		return 0;
	}
	return http1_field_line(req, l, n, pg->line_no, max_fields, status,
	                        err);
}

int
http1_parse_request_head(const char *buf, size_t len,
                         const struct http_limits *lim,
                         struct http_request *req, size_t *consumed,
                         int *status, char *err)
{
	struct http1_progress *pg = &req->progress;
	size_t max_head = HTTP1_DEFAULT_MAX_HEAD_BYTES;
	size_t max_fields = HTTP1_DEFAULT_MAX_FIELDS;
	int fold = 0, r;
	size_t end, i;

	if (lim != NULL) {
		if (lim->max_head_bytes > 0)
			max_head = lim->max_head_bytes;
		if (lim->max_fields > 0)
			max_fields = lim->max_fields;
		fold = lim->allow_obs_fold;
	}
	*status = 400;
	*consumed = 0;
	if (len < pg->pos) /* not the bytes of the last call: start over */
		http_request_free(req);
	if (pg->line_no == 0)
		pg->line_no = 1;

	/* Only the first max_head bytes can belong to an acceptable head. */
	end = len < max_head ? len : max_head;
	i = pg->pos;
	while (i < end) {
		if (i == pg->line_start && req->method != NULL &&
		    (buf[i] == ' ' || buf[i] == '\t') &&
		    (!fold || req->fields.n == 0)) {
			if (req->fields.n == 0)
				err_set(err,
				        "line %u: whitespace before the first "
				        "header field is not allowed",
				        pg->line_no);
			else
				err_set(err,
				        "line %u: obs-fold (line starts with "
				        "whitespace) is not allowed; put the "
				        "field value on one line",
				        pg->line_no);
			return -1;
		}
		while (i < end && http1_lcls[(unsigned char)buf[i]] == 0)
			i++;
		if (i == end)
			break;
		switch (http1_lcls[(unsigned char)buf[i]]) {
		case HTTP1_C_CR:
			if (i + 1 >= end)
				goto more; /* look at this CR again */
			if (buf[i + 1] != '\n') {
				err_set(
				    err,
				    "line %u: bare CR (a CR not followed by "
				    "LF)",
				    pg->line_no);
				return -1;
			}
			r = http1_head_line(req, buf + pg->line_start,
			                    i - pg->line_start, max_fields,
			                    status, err);
			if (r == -1)
				return -1;
			i += 2;
			pg->line_start = i;
			pg->line_no++;
			if (r == 1) {
				pg->pos = i;
				*consumed = i;
				return 1;
			}
			break;
		case HTTP1_C_LF:
			err_set(err,
			        "line %u ends in a bare LF; " HTTP1_CRLF_HINT,
			        pg->line_no);
			return -1;
		default:
			if (buf[i] == '\0')
				err_set(err, "line %u: NUL byte", pg->line_no);
			else
				err_set(err,
				        "line %u: control character 0x%02x is "
				        "not allowed",
				        pg->line_no, (unsigned char)buf[i]);
			return -1;
		}
	}
more:
	pg->pos = i;
	if (len >= max_head) {
		*status = 431;
		err_set(err,
		        "request head is larger than %zu bytes (request line "
		        "and header fields)",
		        max_head);
		return -1;
	}
	return 0;
}

/* ---- chunked bodies ---- */

enum {
	CH_SIZE = 0,
	CH_EXT,
	CH_SIZE_LF,
	CH_DATA,
	CH_DATA_CR,
	CH_DATA_LF,
	CH_TRAILER_START,
	CH_TRAILER_NAME,
	CH_TRAILER_VALUE,
	CH_TRAILER_LF,
	CH_END_LF,
	CH_DONE,
	CH_ERROR,
};

void
http_chunked_init(struct http_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = CH_SIZE;
}

static int
http1_chunk_fail(struct http_chunked *c, size_t i, size_t *consumed)
{
	c->state = CH_ERROR;
	*consumed = i;
	return -1;
}

int
http_chunked_decode(struct http_chunked *c, const char *in, size_t len,
                    struct buf *out, size_t *consumed, char *err)
{
	size_t i = 0;

	while (i < len) {
		unsigned char ch = (unsigned char)in[i];
		int h;

		switch (c->state) {
		case CH_SIZE:
			h = http1_hexval(ch);
			if (h >= 0) {
				if (++c->line_len > 16) {
					err_set(err,
					        "chunked body: chunk size "
					        "has more than 16 hex digits");
					return http1_chunk_fail(c, i, consumed);
				}
				c->remaining =
				    (c->remaining << 4) | (unsigned)h;
				break;
			}
			if (c->line_len == 0) {
				err_set(
				    err,
				    "chunked body: expected a hex chunk size, "
				    "got byte 0x%02x",
				    ch);
				return http1_chunk_fail(c, i, consumed);
			}
			if (ch == ';') {
				c->state = CH_EXT;
				c->line_len++;
			} else if (ch == '\r') {
				c->state = CH_SIZE_LF;
			} else if (ch == '\n') {
				err_set(err,
				        "chunked body: chunk size line "
				        "ends in a bare LF; CRLF required");
				return http1_chunk_fail(c, i, consumed);
			} else {
				err_set(
				    err,
				    "chunked body: invalid byte 0x%02x after "
				    "the chunk size",
				    ch);
				return http1_chunk_fail(c, i, consumed);
			}
			break;
		case CH_EXT:
			if (ch == '\r') {
				c->state = CH_SIZE_LF;
				break;
			}
			if (http1_lcls[ch] != HTTP1_C_OK) {
				err_set(err,
				        "chunked body: %s in a chunk extension",
				        ch == '\n' ? "bare LF"
				                   : "control byte");
				return http1_chunk_fail(c, i, consumed);
			}
			if (++c->line_len > HTTP1_CHUNK_LINE_MAX) {
				err_set(err,
				        "chunked body: chunk size line longer "
				        "than %d bytes",
				        HTTP1_CHUNK_LINE_MAX);
				return http1_chunk_fail(c, i, consumed);
			}
			break;
		case CH_SIZE_LF:
			if (ch != '\n') {
				err_set(err,
				        "chunked body: bare CR in the chunk "
				        "size line");
				return http1_chunk_fail(c, i, consumed);
			}
			c->line_len = 0;
			c->state = c->remaining ? CH_DATA : CH_TRAILER_START;
			break;
		case CH_DATA: {
			size_t take = len - i;

			if (take > c->remaining)
				take = (size_t)c->remaining;
			buf_append(out, in + i, take);
			c->remaining -= take;
			i += take;
			if (c->remaining == 0)
				c->state = CH_DATA_CR;
			continue;
		}
		case CH_DATA_CR:
		case CH_DATA_LF:
			if (ch != (c->state == CH_DATA_CR ? '\r' : '\n')) {
				err_set(err, "chunked body: chunk data is not "
				             "followed by CRLF (wrong chunk "
				             "size?)");
				return http1_chunk_fail(c, i, consumed);
			}
			c->state =
			    c->state == CH_DATA_CR ? CH_DATA_LF : CH_SIZE;
			break;
		case CH_TRAILER_START:
			if (ch == '\r') {
				c->state = CH_END_LF;
			} else if (http1_tchar[ch]) {
				c->state = CH_TRAILER_NAME;
			} else {
				err_set(err, "chunked body: %s",
				        ch == '\n' ? "bare LF after the last "
				                     "chunk; CRLF required"
				        : (ch == ' ' || ch == '\t')
				            ? "obs-fold in the trailer section"
				            : "invalid trailer field line");
				return http1_chunk_fail(c, i, consumed);
			}
			break;
		case CH_TRAILER_NAME:
			if (ch == ':') {
				c->state = CH_TRAILER_VALUE;
			} else if (!http1_tchar[ch]) {
				err_set(err,
				        "chunked body: invalid character "
				        "0x%02x in a trailer field name",
				        ch);
				return http1_chunk_fail(c, i, consumed);
			}
			break;
		case CH_TRAILER_VALUE:
			if (ch == '\r') {
				c->state = CH_TRAILER_LF;
			} else if (http1_lcls[ch] != HTTP1_C_OK) {
				err_set(
				    err, "chunked body: %s in a trailer field",
				    ch == '\n' ? "bare LF" : "control byte");
				return http1_chunk_fail(c, i, consumed);
			}
			break;
		case CH_TRAILER_LF:
		case CH_END_LF:
			if (ch != '\n') {
				err_set(err, "chunked body: bare CR in the "
				             "trailer section");
				return http1_chunk_fail(c, i, consumed);
			}
			if (c->state == CH_END_LF) {
				c->state = CH_DONE;
				*consumed = i + 1;
				return 1;
			}
			c->state = CH_TRAILER_START;
			break;
		case CH_DONE:
			*consumed = i;
			return 1;
		default:
			err_set(err, "chunked body: decoder already failed");
			*consumed = i;
			return -1;
		}
		if (c->state >= CH_TRAILER_START &&
		    ++c->trailer_bytes > HTTP1_TRAILERS_MAX) {
			err_set(err,
			        "chunked body: trailer section larger than "
			        "%d bytes",
			        HTTP1_TRAILERS_MAX);
			return http1_chunk_fail(c, i, consumed);
		}
		i++;
	}
	*consumed = i;
	if (c->state == CH_DONE)
		return 1;
	if (c->state == CH_ERROR) {
		err_set(err, "chunked body: decoder already failed");
		return -1;
	}
	return 0;
}

/* ---- whole messages ---- */

int
http1_parse_request(const char *buf, size_t len, const struct http_limits *lim,
                    struct http_request *req, char *err)
{
	size_t used, rest;
	int status, r;

	r = http1_parse_request_head(buf, len, lim, req, &used, &status, err);
	if (r == -1)
		return -1;
	if (r == 0) {
		if (len == 0)
			err_set(err, "empty input: no request line");
		else
			err_set(err, "incomplete request head: no empty line "
			             "(CRLF CRLF) ends the header section");
		return -1;
	}
	rest = len - used;
	if (req->chunked) {
		struct http_chunked ch;
		struct buf body;
		size_t got;
		char cl[32];

		http_chunked_init(&ch);
		buf_init(&body);
		r = http_chunked_decode(&ch, buf + used, rest, &body, &got,
		                        err);
		if (r != 1) {
			if (r == 0)
				err_set(
				    err,
				    "chunked body is incomplete: it must end "
				    "with the last chunk '0' CRLF CRLF");
			buf_free(&body);
			return -1;
		}
		if (got < rest) {
			err_set(err,
			        "%zu bytes after the end of the chunked body",
			        rest - got);
			buf_free(&body);
			return -1;
		}
		/* Re-frame with Content-Length: the signer and the writer then
		 * see one fixed body, the one that is sent. */
		req->body_len = body.len;
		req->body = body.len ? (unsigned char *)buf_steal(&body) : NULL;
		buf_free(&body);
		http_fields_del(&req->fields, "transfer-encoding");
		snprintf(cl, sizeof(cl), "%zu", req->body_len);
		http_fields_set(&req->fields, "Content-Length", cl);
		req->chunked = 0;
		req->content_length = (int64_t)req->body_len;
		return 0;
	}
	if (req->content_length >= 0) {
		uint64_t want = (uint64_t)req->content_length;

		if ((uint64_t)rest < want) {
			err_set(err,
			        "body shorter than Content-Length: got %zu of "
			        "%" PRId64 " bytes",
			        rest, req->content_length);
			return -1;
		}
		if ((uint64_t)rest > want) {
			err_set(err,
			        "%zu bytes after the body (Content-Length is "
			        "%" PRId64 ")%s",
			        rest - (size_t)want, req->content_length,
			        buf[len - 1] == '\n'
			            ? "; a trailing newline in the file?"
			            : "");
			return -1;
		}
		req->body_len = (size_t)want;
		if (want > 0) {
			req->body = xmalloc(req->body_len);
			memcpy(req->body, buf + used, req->body_len);
		}
		return 0;
	}
	if (rest > 0) {
		err_set(err,
		        "%zu bytes after the header section but no "
		        "Content-Length or Transfer-Encoding; add "
		        "'Content-Length: %zu' if they are the body",
		        rest, rest);
		return -1;
	}
	return 0;
}

/* ---- writers ---- */

static void
http1_write_fields(const struct http_fields *f, struct buf *out)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		buf_appends(out, f->v[i].name);
		buf_append(out, ": ", 2);
		buf_appends(out, f->v[i].value);
		buf_append(out, "\r\n", 2);
	}
	buf_append(out, "\r\n", 2);
}

void
http1_write_request(const struct http_request *req, struct buf *out)
{
	buf_appends(out, req->method);
	buf_appendc(out, ' ');
	buf_appends(out, req->target);
	buf_append(out, " HTTP/1.1\r\n", 11);
	http1_write_fields(&req->fields, out);
	if (req->body_len > 0)
		buf_append(out, req->body, req->body_len);
}

const char *
http1_status_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 206:
		return "Partial Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 303:
		return "See Other";
	case 304:
		return "Not Modified";
	case 307:
		return "Temporary Redirect";
	case 308:
		return "Permanent Redirect";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 407:
		return "Proxy Authentication Required";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 417:
		return "Expectation Failed";
	case 421:
		return "Misdirected Request";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

/* ---- response heads ---- */

/* Where a response field sits in the head's buffer while the head is still
 * arriving (the buffer may move as it grows). */
struct http1_field_at {
	size_t name, name_len, value, value_len;
};

void
http_response_head_init(struct http_response_head *h)
{
	memset(h, 0, sizeof(*h));
	buf_init(&h->buf);
	h->cl = -1;
	h->content_length = -1;
}

void
http_response_head_free(struct http_response_head *h)
{
	buf_free(&h->buf);
	free(h->at);
	free(h->fields);
	http_response_head_init(h);
}

void
http_response_head_reset(struct http_response_head *h)
{
	buf_reset(&h->buf);
	h->status = 0;
	h->reason = NULL;
	h->v = NULL;
	h->n = 0;
	h->content_length = -1;
	h->dropped = 0;
	h->dropped_byte = 0;
	h->nfields = 0;
	h->cl = -1;
	h->te = 0;
	h->last_framing = 0;
	h->last_dropped = 0;
}

void
http_response_head_trim(struct http_response_head *h, size_t keep)
{
	if (h->buf.cap > keep)
		buf_free(&h->buf);
	if (h->capfields * (sizeof(*h->at) + sizeof(*h->fields)) > keep) {
		free(h->at);
		free(h->fields);
		h->at = NULL;
		h->fields = NULL;
		h->capfields = 0;
	}
	http_response_head_reset(h);
}

/* Index of the first control byte other than HTAB (or DEL) in p[0..n),
 * n if none. Eight bytes at a time: a header line is checked for every
 * response, and almost never has one. */
size_t
http1_ctl_at(const char *p, size_t n)
{
	const uint64_t ones = 0x0101010101010101ull;
	const uint64_t high = 0x8080808080808080ull;
	size_t i = 0;
	uint64_t x, d;

	for (; i + 8 <= n; i += 8) {
		memcpy(&x, p + i, 8);
		/* A byte below 0x20, or a DEL (0x7f ^ 0x7f == 0). */
		d = ((x - 0x20 * ones) & ~x) |
		    (((x ^ 0x7f * ones) - ones) & ~(x ^ 0x7f * ones));
		if (d & high)
			break;
	}
	for (; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch >= 0x20 ? ch == 0x7f : ch != '\t')
			return i;
	}
	return n;
}

/* status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ] (RFC 9112
 * §4), HTTP/1.x only. The reason is relayed, so it may hold HTAB, SP, VCHAR
 * and obs-text and nothing else: a bare CR there would start a line of the
 * upstream's choosing in the client's head. The SP before an empty reason
 * may be missing (old servers omit it; nothing can hide there). */
static int
http1_status_line(struct http_response_head *h, const char *p, size_t n,
                  char *err)
{
	int status;

	if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' ||
	    p[7] > '9' || p[8] != ' ' || p[9] < '1' || p[9] > '5' ||
	    p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
	    (n > 12 && p[12] != ' ')) {
		err_set(err, "the status line is not 'HTTP/1.x NNN reason' "
		             "with a status from 100 to 599");
		return -1;
	}
	status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	p += n > 12 ? 13 : 12;
	n -= n > 12 ? 13 : 12;
	if (http1_ctl_at(p, n) < n) {
		err_set(err, "a control byte in the reason phrase");
		return -1;
	}
	h->status = status;
	buf_reset(&h->buf);
	buf_append(&h->buf, p, n);
	buf_appendc(&h->buf, '\0');
	return 0;
}

/* A Content-Length value: 1*DIGIT, or a list of one value repeated
 * ("2, 2"), which RFC 9110 §8.6 lets a recipient fold; every line of a
 * repeated field must agree too. Anything else (a sign, a second number,
 * an overflow) the client library might frame differently from what the
 * proxy announces. */
static int
http1_resp_content_length(struct http_response_head *h, const char *v, size_t n,
                          char *err)
{
	const char *end = v + n;
	int64_t x;

	while (v < end) {
		if (*v < '0' || *v > '9')
			goto nan;
		for (x = 0; v < end && *v >= '0' && *v <= '9'; v++) {
			if (x > (INT64_MAX - 9) / 10) {
				err_set(err, "Content-Length is too large");
				return -1;
			}
			x = x * 10 + (*v - '0');
		}
		if (h->cl != -1 && h->cl != x) {
			err_set(err, "Content-Length values disagree");
			return -1;
		}
		h->cl = x;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		if (v == end)
			break;
		if (*v != ',')
			goto nan;
		v++;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		if (v == end)
			goto nan;
	}
	return 0;
nan:
	err_set(err, "Content-Length is not a decimal number");
	return -1;
}

/* A field line dropped whole: RFC 9110 §5.5 lets a recipient drop what it
 * cannot relay safely; the rest of the head is still good. */
static int
http1_resp_drop(struct http_response_head *h, unsigned char ctl)
{
	h->dropped++;
	h->dropped_byte = ctl;
	return 0;
}

/* obs-fold from an old server: continue the last value in place. It is
 * always the last thing in the buffer (a field line appends
 * "name\0value\0", a fold extends it), so the continuation goes over its
 * NUL: linear in the head, where rebuilding the value at each fold cost
 * time and memory quadratic in the fold lines (fuzz_response). */
static int
http1_resp_fold(struct http_response_head *h, const char *p, size_t n,
                char *err)
{
	const char *end = p + n;
	struct buf *b = &h->buf;
	struct http1_field_at *f;
	size_t i;

	if ((i = http1_ctl_at(p, n)) < n)
		return http1_resp_drop(h, (unsigned char)p[i]);
	if (h->nfields == 0)
		return 0; /* nothing to continue */
	if (h->last_framing) {
		/* The client library has framed by the line as it stood. */
		err_set(err, "an obs-fold continues Content-Length or "
		             "Transfer-Encoding");
		return -1;
	}
	if (h->last_dropped)
		return 0; /* the rest of a line already dropped */
	/* OWS trimmed on both sides, as around any field value; one SP
	 * where the fold was (RFC 9112 §5.2), none around nothing. */
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (p == end)
		return 0;
	f = &h->at[h->nfields - 1];
	b->len = f->value + f->value_len; /* over the value's NUL */
	buf_reserve(b, 2 + (size_t)(end - p));
	if (f->value_len > 0)
		b->data[b->len++] = ' ';
	memcpy(b->data + b->len, p, (size_t)(end - p));
	b->len += (size_t)(end - p);
	b->data[b->len++] = '\0';
	b->data[b->len] = '\0';
	f->value_len = b->len - 1 - f->value;
	return 0;
}

/* field-line = field-name ":" OWS field-value OWS (RFC 9112 §5.1). */
static int
http1_resp_field(struct http_response_head *h, const char *p, size_t n,
                 char *err)
{
	struct buf *b = &h->buf;
	struct http1_field_at *f;
	const char *colon, *v, *end = p + n;
	size_t i;

	if (p[0] == ' ' || p[0] == '\t')
		return http1_resp_fold(h, p, n, err);
	/* The name is a token right up to the colon: "Content-Length : 5"
	 * is not a Content-Length to curl, and must not become one to the
	 * client either. */
	for (i = 0; i < n && http1_tchar[(unsigned char)p[i]]; i++)
		;
	if (i == 0 || i == n || p[i] != ':') {
		err_set(err, "a header line without a field name made of "
		             "token characters right before its ':'");
		return -1;
	}
	colon = p + i;
	v = colon + 1;
	h->last_framing =
	    i == 14 && util_strncaseeq(p, "Content-Length", 14)      ? 1
	    : i == 17 && util_strncaseeq(p, "Transfer-Encoding", 17) ? 2
	                                                             : 0;
	h->last_dropped = 0;
	/* Relayed to the client as is: a stray CR or other control byte
	 * must not be able to start a line of its own there. */
	if ((i = http1_ctl_at(v, (size_t)(end - v))) < (size_t)(end - v)) {
		if (h->last_framing) {
			err_set(err, "a control byte in Content-Length or "
			             "Transfer-Encoding");
			return -1;
		}
		h->last_dropped = 1;
		return http1_resp_drop(h, (unsigned char)v[i]);
	}
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (h->last_framing == 1 &&
	    http1_resp_content_length(h, v, (size_t)(end - v), err) == -1)
		return -1;
	if (h->last_framing == 2)
		h->te = 1;
	if (h->nfields == h->capfields) {
		h->capfields = h->capfields ? h->capfields * 2 : 32;
		h->at = xrealloc(h->at, h->capfields * sizeof(*h->at));
		h->fields =
		    xrealloc(h->fields, h->capfields * sizeof(*h->fields));
	}
	f = &h->at[h->nfields++];
	f->name_len = (size_t)(colon - p);
	f->value_len = (size_t)(end - v);
	buf_reserve(b, f->name_len + f->value_len + 2);
	f->name = b->len;
	memcpy(b->data + b->len, p, f->name_len);
	b->len += f->name_len;
	b->data[b->len++] = '\0';
	f->value = b->len;
	memcpy(b->data + b->len, v, f->value_len);
	b->len += f->value_len;
	b->data[b->len] = '\0';
	b->len++;
	b->data[b->len] = '\0';
	return 0;
}

/* The empty line: the buffer stops moving, so the offsets become
 * pointers. */
static void
http1_resp_finish(struct http_response_head *h)
{
	size_t i;

	for (i = 0; i < h->nfields; i++) {
		h->fields[i].name = h->buf.data + h->at[i].name;
		h->fields[i].name_len = h->at[i].name_len;
		h->fields[i].value = h->buf.data + h->at[i].value;
		h->fields[i].value_len = h->at[i].value_len;
	}
	h->reason = h->buf.data;
	h->v = h->fields;
	h->n = h->nfields;
	h->content_length = h->te ? -1 : h->cl;
}

int
http1_response_line(struct http_response_head *h, const char *line, size_t n,
                    char *err)
{
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (n == 0) {
		if (h->status == 0)
			return 0;
		http1_resp_finish(h);
		return 1;
	}
	if (h->status == 0)
		return http1_status_line(h, line, n, err);
	return http1_resp_field(h, line, n, err);
}

int
http1_is_hop_by_hop(const char *n, size_t len)
{
	/* By length first: almost every field is rejected there. */
	switch (len) {
	case 2:
		return util_strncaseeq(n, "TE", 2);
	case 7:
		return util_strncaseeq(n, "Trailer", 7) ||
		       util_strncaseeq(n, "Upgrade", 7);
	case 10:
		return util_strncaseeq(n, "Connection", 10) ||
		       util_strncaseeq(n, "Keep-Alive", 10);
	case 16:
		return util_strncaseeq(n, "Proxy-Connection", 16);
	case 17:
		return util_strncaseeq(n, "Transfer-Encoding", 17);
	default:
		return 0;
	}
}

int
http1_list_has(const char *v, size_t vlen, const char *name, size_t len)
{
	const char *p = v, *end = v + vlen, *t;

	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
			p++;
		t = p;
		while (p < end && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		if ((size_t)(p - t) == len && len > 0 &&
		    util_strncaseeq(t, name, len))
			return 1;
	}
	return 0;
}

void
http1_write_response_head(struct buf *out, int status,
                          const struct http_fields *fields)
{
	buf_appendf(out, "HTTP/1.1 %03d %s\r\n", status,
	            http1_status_reason(status));
	if (fields != NULL)
		http1_write_fields(fields, out);
	else
		buf_append(out, "\r\n", 2);
}
