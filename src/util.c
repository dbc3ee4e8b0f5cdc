/*
 * util: error strings, buffers, base64 and file helpers shared by all modules.
 * Base64 is libsodium's constant-time codec, so keys never go through a
 * table-lookup implementation.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void
err_set(char *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(err, ERR_MAX, fmt, ap);
	va_end(ap);
}

static void
util_oom(size_t n)
{
	fprintf(stderr, "aauth-proxy: out of memory allocating %zu bytes\n", n);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		util_oom(n);
	return p;
}

void *
xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);

	if (p == NULL)
		util_oom(n * m);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		util_oom(n);
	return q;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
buf_reserve(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	size_t cap;

	if (need <= b->cap)
		return;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
	/* Keep the "always NUL-terminated" promise for a fresh buffer too. */
	b->data[b->len] = '\0';
}

void
buf_append(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
buf_appends(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void
buf_appendc(struct buf *b, char c)
{
	buf_append(b, &c, 1);
}

void
buf_vappendf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	buf_reserve(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void
buf_appendf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vappendf(b, fmt, ap);
	va_end(ap);
}

char *
buf_steal(struct buf *b)
{
	char *p;

	buf_reserve(b, 0);
	p = b->data;
	buf_init(b);
	return p;
}

static int
b64_sodium_variant(enum b64_variant v)
{
	return v == B64_STD ? sodium_base64_VARIANT_ORIGINAL
	                    : sodium_base64_VARIANT_URLSAFE_NO_PADDING;
}

char *
b64_encode(const void *src, size_t len, enum b64_variant v)
{
	int sv = b64_sodium_variant(v);
	size_t n = sodium_base64_encoded_len(len, sv);
	char *out = xmalloc(n);

	sodium_bin2base64(out, n, src, len, sv);
	return out;
}

long
b64_decode(const char *src, size_t srclen, enum b64_variant v,
           unsigned char *dst, size_t dstcap)
{
	size_t outlen = 0;
	const char *end = NULL;

	if (sodium_base642bin(dst, dstcap, src, srclen, NULL, &outlen, &end,
	                      b64_sodium_variant(v)) != 0)
		return -1;
	if (end != src + srclen)
		return -1;
	return (long)outlen;
}

int
util_read_file(const char *path, struct buf *out, size_t max, char *err)
{
	char chunk[16384];
	int fd;
	ssize_t n;

	if (strcmp(path, "-") == 0)
		fd = STDIN_FILENO;
	else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		err_set(err, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err_set(err, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (out->len + (size_t)n > max) {
			err_set(err, "%s: larger than %zu bytes", path, max);
			goto fail;
		}
		buf_append(out, chunk, (size_t)n);
	}
	if (fd != STDIN_FILENO)
		close(fd);
	buf_reserve(out, 0);
	return 0;
fail:
	if (fd != STDIN_FILENO)
		close(fd);
	return -1;
}

/* ASCII only, whatever the locale: HTTP names and hosts are ASCII, and
 * this runs for every field of every message (no tolower() call). */
static inline unsigned
util_ascii_lower(unsigned char c)
{
	return (unsigned)c - 'A' < 26u ? (unsigned)c + 32u : (unsigned)c;
}

int
util_strcaseeq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (util_ascii_lower((unsigned char)*a) !=
		    util_ascii_lower((unsigned char)*b))
			return 0;
	return *a == *b;
}

int
util_strncaseeq(const char *a, const char *b, size_t n)
{
	size_t i;

	/* ASCII only, without the locale: names and hosts are ASCII, and
	 * this runs for every header field of every request. */
	for (i = 0; i < n; i++) {
		if (util_ascii_lower((unsigned char)a[i]) !=
		    util_ascii_lower((unsigned char)b[i]))
			return 0;
		if (a[i] == '\0')
			return 1;
	}
	return 1;
}

void
util_lower(char *s)
{
	for (; *s; s++)
		*s = (char)util_ascii_lower((unsigned char)*s);
}

void
util_json_strip_comments(char *s)
{
	int in_string = 0;

	for (; *s; s++) {
		if (in_string) {
			if (*s == '\\' && s[1] != '\0')
				s++;
			else if (*s == '"')
				in_string = 0;
		} else if (*s == '"') {
			in_string = 1;
		} else if (s[0] == '/' && s[1] == '/') {
			/* Blanked, not removed: the parser's line and column
			 * numbers still point into the file as written. */
			for (; *s && *s != '\n'; s++)
				*s = ' ';
			if (*s == '\0')
				break;
		}
	}
}

int64_t
util_now(void)
{
	return (int64_t)time(NULL);
}

uint64_t
util_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
