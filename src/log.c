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

static void
log_time(char *out, size_t len)
{
	struct timeval tv;
	struct tm tm;
	char tmp[64];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, len, "%s.%03ldZ", tmp, (long)(tv.tv_usec / 1000));
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

static void
log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	char ts[96];
	struct buf msg;
	json_t *o;
	char *s;

	if (level > log_cur)
		return;
	buf_init(&msg);
	buf_vappendf(&msg, fmt, ap);
	log_time(ts, sizeof(ts));
	o = json_pack("{s:s, s:s, s:s}", "time", ts, "level", log_names[level],
	              "msg", msg.data ? msg.data : "");
	if (o != NULL &&
	    (s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
		log_json_line(s);
		free(s);
	}
	json_decref(o);
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
