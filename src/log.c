/*
 * log: structured JSON log lines. Messages are escaped through jansson so a
 * hostile header value can never break the line structure.
 */
#include "log.h"

#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "util.h"

static enum log_level log_cur = LOG_INFO;
static FILE *log_out;

static const char *const log_names[] = {"error", "warn", "info", "debug"};

void
log_init(enum log_level level, FILE *out)
{
	log_cur = level;
	log_out = out;
}

enum log_level
log_level_get(void)
{
	return log_cur;
}

int
log_level_parse(const char *name, enum log_level *out)
{
	size_t i;

	for (i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++)
		if (strcmp(name, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -1;
}

/* Hand-formatted: it runs for every access-log line, and strftime +
 * snprintf cost more than the rest of the line. */
void
log_timestamp(struct buf *b)
{
	struct timeval tv;
	struct tm tm;
	char *p;
	int v[7], w[7] = {4, 2, 2, 2, 2, 2, 3}, i, j;
	static const char sep[] = "--T::.Z";

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	v[0] = tm.tm_year + 1900;
	v[1] = tm.tm_mon + 1;
	v[2] = tm.tm_mday;
	v[3] = tm.tm_hour;
	v[4] = tm.tm_min;
	v[5] = tm.tm_sec;
	v[6] = (int)(tv.tv_usec / 1000) % 1000;
	buf_reserve(b, 24);
	p = b->data + b->len;
	for (i = 0; i < 7; i++) {
		for (j = w[i] - 1; j >= 0; j--) {
			p[j] = (char)('0' + v[i] % 10);
			v[i] /= 10;
		}
		p += w[i];
		*p++ = sep[i];
	}
	b->len = (size_t)(p - b->data);
	b->data[b->len] = '\0';
}

void
log_json_line(const char *json)
{
	FILE *f = log_out ? log_out : stderr;

	fputs(json, f);
	fputc('\n', f);
	fflush(f);
}

void
log_json_write(const char *line, size_t len)
{
	FILE *f = log_out ? log_out : stderr;

	/* stderr is unbuffered: fputs + fputc would be two writes. */
	fwrite(line, 1, len, f);
	fflush(f);
}

static void log_vwrite(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	struct buf ts, msg;
	json_t *o;
	char *s;

	if (level > log_cur)
		return;
	buf_init(&msg);
	buf_vappendf(&msg, fmt, ap);
	buf_init(&ts);
	log_timestamp(&ts);
	o = json_pack("{s:s, s:s, s:s}", "time", ts.data, "level",
	              log_names[level], "msg", msg.data ? msg.data : "");
	if (o != NULL &&
	    (s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
		log_json_line(s);
		free(s);
	}
	json_decref(o);
	buf_free(&ts);
	buf_free(&msg);
}

#define LOG_FN(name, level)                                                    \
	void name(const char *fmt, ...)                                        \
	{                                                                      \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		log_vwrite(level, fmt, ap);                                    \
		va_end(ap);                                                    \
	}

LOG_FN(log_error, LOG_ERROR)
LOG_FN(log_warn, LOG_WARN)
LOG_FN(log_info, LOG_INFO)
LOG_FN(log_debug, LOG_DEBUG)

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}

void
log_token_hash(const char *token, char out[13])
{
	unsigned char md[crypto_hash_sha256_BYTES];
	char enc[sodium_base64_ENCODED_LEN(crypto_hash_sha256_BYTES,
	                                   sodium_base64_VARIANT_URLSAFE)];

	/* Once per signed request: libsodium's SHA-256 into stack buffers
	 * (no OpenSSL method fetch, no allocation). */
	crypto_hash_sha256(md, (const unsigned char *)token, strlen(token));
	sodium_bin2base64(enc, sizeof(enc), md, sizeof(md),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	memcpy(out, enc, 12);
	out[12] = '\0';
}
