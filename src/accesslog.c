/*
 * accesslog: one JSON line per exchange. The escaping keeps a line one
 * line whatever a client or upstream sends (quote, backslash, control
 * bytes escaped; bytes that are not UTF-8 replaced by U+FFFD).
 */
#include "accesslog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

struct accesslog {
	FILE *f;         /* NULL: stderr, through the diagnostic log */
	int off;         /* "off": nothing is written */
	struct buf line; /* reused from line to line */
};

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if the
 * bytes there are not one. */
static size_t
accesslog_utf8_len(const unsigned char *p, size_t n)
{
	size_t len, i;
	unsigned cp;

	if (p[0] < 0xc2 || p[0] > 0xf4)
		return 0;
	len = p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;
	if (n < len)
		return 0;
	cp = p[0] & (0x7f >> len);
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* A JSON string: quote, backslash and control characters escaped, bytes
 * that are not UTF-8 replaced by U+FFFD, so a hostile Host header or path
 * can never break the line. */
static void
accesslog_json_strn(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	size_t run;
	char esc[6];

	buf_appendc(b, '"');
	while (p < end) {
		for (run = 0; p + run < end && p[run] >= 0x20 &&
		              p[run] < 0x80 && p[run] != '"' && p[run] != '\\';
		     run++)
			;
		if (run > 0) {
			buf_append(b, p, run);
			p += run;
			continue;
		}
		if (*p >= 0x80) {
			run = accesslog_utf8_len(p, (size_t)(end - p));
			if (run == 0) {
				buf_append(b, "\\ufffd", 6);
				p++;
			} else {
				buf_append(b, p, run);
				p += run;
			}
			continue;
		}
		esc[0] = '\\';
		switch (*p) {
		case '"':
		case '\\':
			esc[1] = (char)*p;
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			buf_append(b, "\\u00", 4);
			esc[0] = hex[*p >> 4];
			esc[1] = hex[*p & 15];
			break;
		}
		buf_append(b, esc, 2);
		p++;
	}
	buf_appendc(b, '"');
}

static void
accesslog_json_str(struct buf *b, const char *key, const char *s)
{
	buf_appendc(b, ',');
	buf_appendc(b, '"');
	buf_appends(b, key);
	buf_append(b, "\":", 2);
	accesslog_json_strn(b, s, strlen(s));
}

static void
accesslog_json_int(struct buf *b, const char *key, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	buf_appendc(b, ',');
	buf_appendc(b, '"');
	buf_appends(b, key);
	buf_append(b, "\":", 2);
	buf_append(b, tmp + i, sizeof(tmp) - i);
}

/* The query's parameter names only: values may be credentials. */
static void
accesslog_query_names(struct buf *b, const char *q)
{
	const char *p = q, *end, *eq;
	size_t n = 0;

	buf_append(b, ",\"query_names\":[", 16);
	while (p && *p && n < 16) {
		end = strchr(p, '&');
		if (end == NULL)
			end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq == NULL)
			eq = end;
		if (eq > p) {
			if (n > 0)
				buf_appendc(b, ',');
			accesslog_json_strn(b, p, (size_t)(eq - p));
			n++;
		}
		p = *end ? end + 1 : end;
	}
	buf_appendc(b, ']');
}

struct accesslog *
accesslog_open(const char *where, char *err)
{
	struct accesslog *a = xcalloc(1, sizeof(*a));

	buf_init(&a->line);
	if (where == NULL || strcmp(where, "stderr") == 0)
		return a;
	if (strcmp(where, "off") == 0) {
		a->off = 1;
		return a;
	}
	a->f = fopen(where, "ae");
	if (a->f == NULL) {
		err_set(err, "access log %s: %s", where, strerror(errno));
		accesslog_close(a);
		return NULL;
	}
	return a;
}

void
accesslog_close(struct accesslog *a)
{
	if (a == NULL)
		return;
	if (a->f)
		fclose(a->f);
	buf_free(&a->line);
	free(a);
}

void
accesslog_write(struct accesslog *a, const struct accesslog_entry *e)
{
	struct buf *b = &a->line;

	if (a->off)
		return;
	buf_reset(b);
	buf_append(b, "{\"time\":\"", 9);
	log_timestamp(b);
	buf_appendc(b, '"');
	accesslog_json_str(b, "client", e->client);
	if (e->method)
		accesslog_json_str(b, "method", e->method);
	if (e->host)
		accesslog_json_str(b, "host", e->host);
	if (e->path)
		accesslog_json_str(b, "path", e->path[0] ? e->path : "/");
	if (e->query && e->query[0])
		accesslog_query_names(b, e->query);
	if (e->action)
		accesslog_json_str(b, "action", e->action);
	if (e->resource)
		accesslog_json_str(b, "resource", e->resource);
	accesslog_json_int(b, "status", (uint64_t)e->status);
	if (e->error)
		accesslog_json_str(b, "error", e->error);
	accesslog_json_int(b, "bytes_in", e->bytes_in);
	accesslog_json_int(b, "bytes_out", e->bytes_out);
	accesslog_json_int(b, "upstream_ms", e->upstream_ms);
	accesslog_json_int(b, "total_ms", e->total_ms);
	if (e->key && e->token) {
		accesslog_json_str(b, "key", e->key);
		accesslog_json_str(b, "token", e->token);
	}
	buf_append(b, "}\n", 2);
	if (a->f == NULL) {
		log_json_write(b->data, b->len);
		return;
	}
	/* One write per line, so lines from a crash are whole. */
	fwrite(b->data, 1, b->len, a->f);
	fflush(a->f);
}
