/*
 * log: one JSON object per line on stderr (or a file). Levels gate what is
 * written. Callers must never pass a secret: log a key thumbprint or
 * log_token_hash() of a token instead.
 */
#ifndef AAUTH_LOG_H
#define AAUTH_LOG_H

#include <stddef.h>
#include <stdio.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Where log lines go and how much; default stderr, LOG_INFO. */
void log_init(enum log_level level, FILE *out);
int log_level_parse(const char *name, enum log_level *out);
enum log_level log_level_get(void);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Only before the event loop starts: log and exit(1). */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* Append the current UTC time as RFC 3339 with milliseconds
 * (2026-11-28T12:00:00.000Z). */
struct buf;
void log_timestamp(struct buf *b);

/* Write a pre-built JSON object (no trailing newline) as one line. */
void log_json_line(const char *json);
/* The same for a line that already ends in a newline: one write. */
void log_json_write(const char *line, size_t len);

/* Short, non-reversible identifier of a token for logs: the first 12
 * base64url characters of SHA-256(token). out must hold 13 bytes. */
void log_token_hash(const char *token, char out[13]);

#endif
