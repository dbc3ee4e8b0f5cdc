/*
 * fuzz_response: the response-head parser fed line by line, as libcurl's
 * header callback feeds it: once with slices of the input that keep their
 * line endings, once with exactly-sized heap copies without them (so a
 * read past a line, or a pointer kept into it, shows). Both transcripts
 * must agree, and every complete head must keep the parser's promises.
 * After a complete or refused head the parser is reset (or trimmed) and the
 * following lines make the next head, as on a reused connection.
 *
 * Input: byte 0 is flags (bit 0: trim instead of reset), the rest lines.
 */
#include <string.h>

#include "fuzz.h"
#include "http1.h"

static int
fuzz_ctl(unsigned char c)
{
	return c >= 0x20 ? c == 0x7f : c != '\t';
}

static int
fuzz_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* A complete head: check it and append what the relay would see. fed is
 * the bytes of its lines: the head is kept in one buffer that never needs
 * more than that (a per-response cost must be linear in the input). */
static void
fuzz_record(const struct http_response_head *h, size_t fed, struct buf *t)
{
	size_t i, k;

	FUZZ_CHECK(h->buf.len <= fed);
	FUZZ_CHECK(h->status >= 100 && h->status <= 599);
	FUZZ_CHECK(h->reason != NULL);
	for (k = 0; h->reason[k] != '\0'; k++)
		FUZZ_CHECK(!fuzz_ctl((unsigned char)h->reason[k]));
	FUZZ_CHECK(h->content_length >= -1);
	FUZZ_CHECK(h->n == 0 || h->v != NULL);
	buf_appendf(t, "%d [%s] %lld %zu\n", h->status, h->reason,
	            (long long)h->content_length, h->dropped);
	for (i = 0; i < h->n; i++) {
		const struct http_response_field *f = &h->v[i];

		FUZZ_CHECK(f->name_len > 0 && f->name[f->name_len] == '\0');
		FUZZ_CHECK(f->value[f->value_len] == '\0');
		for (k = 0; k < f->name_len; k++)
			FUZZ_CHECK(http1_is_tchar((unsigned char)f->name[k]));
		for (k = 0; k < f->value_len; k++)
			FUZZ_CHECK(!fuzz_ctl((unsigned char)f->value[k]));
		FUZZ_CHECK(f->value_len == 0 ||
		           (!fuzz_ows(f->value[0]) &&
		            !fuzz_ows(f->value[f->value_len - 1])));
		buf_append(t, f->name, f->name_len);
		buf_appendc(t, ':');
		buf_append(t, f->value, f->value_len);
		buf_appendc(t, '\n');
	}
}

static void
fuzz_run(const char *raw, size_t n, int copies, int trim, struct buf *t)
{
	struct http_response_head h;
	char err[ERR_MAX];
	size_t i = 0, e, k, fed = 0;
	int rc;

	http_response_head_init(&h);
	while (i < n) {
		const char *lf = memchr(raw + i, '\n', n - i);

		e = lf ? (size_t)(lf - raw) + 1 : n;
		if (!copies) {
			rc = http1_response_line(&h, raw + i, e - i, err);
		} else {
			char *copy;

			for (k = e - i; k > 0 && (raw[i + k - 1] == '\n' ||
			                          raw[i + k - 1] == '\r');
			     k--)
				;
			copy = malloc(k ? k : 1);
			FUZZ_CHECK(copy != NULL);
			memcpy(copy, raw + i, k);
			rc = http1_response_line(&h, copy, k, err);
			memset(copy, 0xa5, k);
			free(copy);
		}
		fed += e - i;
		i = e;
		if (rc == 0)
			continue;
		if (rc == 1)
			fuzz_record(&h, fed, t);
		else
			buf_appendf(t, "error: %s\n", err);
		if (trim)
			http_response_head_trim(&h, 256);
		else
			http_response_head_reset(&h);
		FUZZ_CHECK(h.status == 0 && h.n == 0);
		fed = 0;
	}
	http_response_head_free(&h);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf a, b;

	if (size < 1)
		return 0;
	buf_init(&a);
	buf_init(&b);
	fuzz_run((const char *)data + 1, size - 1, 0, data[0] & 1, &a);
	fuzz_run((const char *)data + 1, size - 1, 1, data[0] & 1, &b);
	FUZZ_CHECK(a.len == b.len &&
	           (a.len == 0 || memcmp(a.data, b.data, a.len) == 0));
	buf_free(&a);
	buf_free(&b);
	return 0;
}
