/*
 * util: the small pieces every module needs — error strings, growable byte
 * buffers, base64 (via libsodium), whole-file reads. No networking, no state.
 */
#ifndef AAUTH_UTIL_H
#define AAUTH_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Every function that can fail for a reason the user must see takes
 * `char *err` pointing at ERR_MAX bytes (may be NULL) and returns -1/NULL. */
#define ERR_MAX 256

void err_set(char *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Allocation failure is not recoverable in a small daemon: abort loudly. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* A growable byte string; data is always NUL-terminated after len. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_appends(struct buf *b, const char *s);
void buf_appendc(struct buf *b, char c);
void buf_appendf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_vappendf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Hand the bytes to the caller (who frees them) and reset the buffer. */
char *buf_steal(struct buf *b);

enum b64_variant {
	B64_STD,       /* RFC 4648 §4, padded */
	B64_URL_NOPAD, /* RFC 4648 §5, no padding */
};

/* Encode into a new NUL-terminated string. */
char *b64_encode(const void *src, size_t len, enum b64_variant v);
/* Decode into dst (capacity dstcap); returns bytes written or -1.
 * B64_STD requires correct padding; B64_URL_NOPAD refuses padding. */
long b64_decode(const char *src, size_t srclen, enum b64_variant v,
                unsigned char *dst, size_t dstcap);

/* Read a whole file (or stdin for "-") into a buffer. */
int util_read_file(const char *path, struct buf *out, size_t max, char *err);

/* ASCII case-insensitive helpers (header names, hosts), locale-free: the
 * one case-insensitive compare of the program. strncaseeq compares at most
 * n bytes and stops early where both strings end. */
int util_strcaseeq(const char *a, const char *b);
int util_strncaseeq(const char *a, const char *b, size_t n);
void util_lower(char *s);

/* Blank out "//" comments (to the end of the line, outside strings) in a
 * JSON text, in place, so a config file can explain itself. */
void util_json_strip_comments(char *s);

/* Unix time in seconds and monotonic milliseconds. */
int64_t util_now(void);
uint64_t util_mono_ms(void);

#endif
