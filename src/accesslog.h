/*
 * accesslog: one JSON line per exchange, to stderr (with the diagnostic
 * log), to a file, or nowhere. Written by hand without a JSON tree per
 * request; every string is escaped so a hostile host or path can never
 * break a line, and the query keeps its parameter names only (values may
 * be credentials).
 */
#ifndef AAUTH_ACCESSLOG_H
#define AAUTH_ACCESSLOG_H

#include <stdint.h>

struct accesslog;

/* One exchange. NULL strings are left out. */
struct accesslog_entry {
	const char *client;
	const char *method;
	const char *host;
	const char *path;  /* without the query; "" is written as "/" */
	const char *query; /* only its parameter names are written */
	const char *action;
	const char *resource;
	int status;
	const char *error;
	uint64_t bytes_in, bytes_out, upstream_ms, total_ms;
	const char *key;   /* thumbprint, with token */
	const char *token; /* short hash */
};

/* where: "stderr", "off", or a file path (appended to). NULL with err. */
struct accesslog *accesslog_open(const char *where, char *err);
void accesslog_close(struct accesslog *a);
void accesslog_write(struct accesslog *a, const struct accesslog_entry *e);

#endif
