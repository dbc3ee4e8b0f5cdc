/*
 * http1: the HTTP/1.1 message model shared by the signer, the command line
 * and the proxy, and strict parsers for it. Strict means ambiguity is an
 * error, never a guess (RFC 9112 §2.2, §6.3, §11.2): bare CR or LF, NUL,
 * obs-fold, invalid token characters, Content-Length with
 * Transfer-Encoding, differing Content-Lengths and bad chunk sizes are all
 * rejected in requests; responses get the narrower rules below. No
 * networking here: the parsers work on byte ranges and lines.
 */
#ifndef AAUTH_HTTP1_H
#define AAUTH_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* One field line. name keeps the case it was received with; value has
 * leading/trailing OWS removed. Both are heap strings owned by the list. */
struct http_field {
	char *name;
	char *value;
};

struct http_fields {
	struct http_field *v;
	size_t n;
	size_t cap;
};

void http_fields_init(struct http_fields *f);
void http_fields_free(struct http_fields *f);
void http_fields_add(struct http_fields *f, const char *name,
                     const char *value);
/* Remove every line with this name (case-insensitive); returns how many. */
size_t http_fields_del(struct http_fields *f, const char *name);
/* Remove every line for which drop(name, arg) is nonzero, in one pass;
 * returns how many. */
size_t http_fields_del_if(struct http_fields *f,
                          int (*drop)(const char *name, void *arg), void *arg);
/* Replace all lines of this name by one line (appended if absent). */
void http_fields_set(struct http_fields *f, const char *name,
                     const char *value);
/* First line with this name, or NULL. */
const char *http_fields_get(const struct http_fields *f, const char *name);
size_t http_fields_count(const struct http_fields *f, const char *name);
/* All lines of this name joined with ", " (RFC 9421 §2.1); returns 0 if at
 * least one line exists (out receives the joined value), -1 if none. */
int http_fields_join(const struct http_fields *f, const char *name,
                     struct buf *out);

enum http_target_form {
	HTTP_TARGET_ORIGIN,    /* /path?query */
	HTTP_TARGET_ABSOLUTE,  /* http://host[:port]/path?query */
	HTTP_TARGET_AUTHORITY, /* host:port (CONNECT) */
	HTTP_TARGET_ASTERISK,  /* * (OPTIONS) */
};

struct http_request {
	char *method; /* exactly as received (case preserved) */
	char *target; /* request-target exactly as received */
	enum http_target_form form;
	int version_minor; /* 1 for HTTP/1.1, 0 for HTTP/1.0 */
	char *scheme;      /* "http"/"https": from an absolute-form target,
	                      else NULL until the caller sets it */
	char *authority;   /* host[:port] from the target, else from Host;
	                      raw, not normalised */
	char *host;        /* authority without port, brackets kept for
	                      IPv6 literals; raw */
	int port;          /* explicit port, or -1 when none was given */
	char *path;        /* raw path as on the wire ("" possible for
	                      absolute-form without a path) */
	char *query;       /* raw query after '?', NULL when there is no '?' */
	struct http_fields fields;
	/* Framing, from the head: */
	int chunked;            /* Transfer-Encoding: chunked */
	int64_t content_length; /* -1 when absent */
	int expect_continue;    /* Expect: 100-continue */
	int conn_close;         /* Connection: close, or HTTP/1.0 without
	                           keep-alive */
	/* The body once read (owned; may be NULL when body_len is 0). */
	unsigned char *body;
	size_t body_len;
	/* Where http1_parse_request_head resumes after it returned 0, so a
	 * head arriving in many small reads is scanned once, not once per
	 * read. Private to http1.c; reset by http_request_init/free. */
	struct http1_progress {
		size_t pos;        /* next byte to examine */
		size_t line_start; /* offset of the line being received */
		unsigned line_no;  /* its 1-based number (for messages) */
		unsigned leading;  /* empty lines before the request line */
	} progress;
};

void http_request_init(struct http_request *r);
/* Free everything and leave r initialised (ready for the next request). */
void http_request_free(struct http_request *r);
/* Replace the target parts (used after routing/rewriting). Each argument
 * may be NULL to keep the current value. */
void http_request_set_scheme(struct http_request *r, const char *scheme);

/* Used when lim is NULL or a limit is 0. */
#define HTTP1_DEFAULT_MAX_HEAD_BYTES (64 * 1024)
#define HTTP1_DEFAULT_MAX_FIELDS     100

struct http_limits {
	size_t max_head_bytes; /* request line + fields; beyond → 431 */
	size_t max_fields;     /* beyond → 431 */
	/* 0 (the default, and what the proxy uses): obs-fold is a 400.
	 * 1: replace each obs-fold by one SP (RFC 9112 §5.2), which is what
	 * RFC 9421 §2.1 signs. Only for `verify` of messages such as the
	 * RFC's own examples; never for traffic the proxy forwards. */
	int allow_obs_fold;
};

/* Parse a request head from buf[0..len). Returns:
 *   1  complete: *consumed = bytes of the head including the final CRLF;
 *   0  need more bytes (and nothing seen so far is invalid);
 *  -1  invalid: *status is the HTTP status to answer (400, 431, 501, 505)
 *      and err says why in words a client developer understands.
 * The request-target is split into scheme/authority/host/port/path/query
 * according to its form; for origin-form the authority comes from Host.
 * Exactly one Host is required for HTTP/1.1 (HTTP/1.0 without Host leaves
 * authority and host NULL). Asterisk-form sets path "*", authority-form
 * (CONNECT) sets path "".
 *
 * Incremental use: call again with the same req and the same bytes plus
 * whatever arrived since; only the new bytes are scanned. Errors are found
 * as soon as the offending byte arrives (bare CR/LF, NUL, control bytes,
 * obs-fold) or its line ends, and a head longer than max_head_bytes is a
 * 431 even before its end is seen. Free req (http_request_free) after any
 * result; it may hold part of a request after 0 or -1.
 *
 * Decisions (all 400 unless said): Transfer-Encoding must be exactly
 * "chunked" — a list whose final coding is not chunked, or chunked twice,
 * is 400, any other coding before a final chunked is 501. Content-Length
 * must appear once as plain digits: a repeated line or a comma list is 400
 * even when the values are identical. Expect other than 100-continue is
 * 417. At most 4 empty lines before the request line are skipped. */
int http1_parse_request_head(const char *buf, size_t len,
                             const struct http_limits *lim,
                             struct http_request *req, size_t *consumed,
                             int *status, char *err);

/* Incremental chunked-body decoder (RFC 9112 §7.1). Trailers are parsed
 * and discarded. Limits: at most 16 hex digits of chunk size, a size line
 * (with extensions) of at most 4 KiB, trailers of at most 16 KiB in all.
 * No whitespace is accepted between the size and ';' or CRLF. */
struct http_chunked {
	int state;
	uint64_t remaining;
	size_t line_len;
	size_t trailer_bytes;
};

void http_chunked_init(struct http_chunked *c);
/* Feed in[0..len); decoded data is appended to out. *consumed is how much
 * of in was used. Returns 1 when the final chunk and trailers are done, 0
 * when more input is needed, -1 on a framing error (err says why). */
int http_chunked_decode(struct http_chunked *c, const char *in, size_t len,
                        struct buf *out, size_t *consumed, char *err);

/* Parse a whole request (head + body by Content-Length or chunked) from a
 * buffer, as the `sign`/`verify` commands read it from a file. A missing
 * body when no framing is given is an empty body; bytes after the body are
 * an error. A chunked body is decoded and the request rewritten to carry it
 * with Content-Length (Transfer-Encoding removed, trailers dropped), so what
 * http1_write_request emits is exactly what gets signed. lim may be NULL. */
int http1_parse_request(const char *buf, size_t len,
                        const struct http_limits *lim, struct http_request *req,
                        char *err);

/* Serialise a request for the wire: request line (method, target as
 * received), the fields in order, CRLF, body. Content-Length is written as
 * is; the caller keeps fields and body consistent. */
void http1_write_request(const struct http_request *req, struct buf *out);

/* The fixed hop-by-hop set (RFC 9110 §7.6.1): Connection, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade. name is len
 * bytes, compared without case. */
int http1_is_hop_by_hop(const char *name, size_t len);
/* Is name (len bytes) one of the comma-separated tokens in the field value
 * v (vlen bytes), as Connection lists options? */
int http1_list_has(const char *v, size_t vlen, const char *name, size_t len);

/* "HTTP/1.1 <status> <reason>\r\n", the fields (may be NULL), "\r\n": the
 * head of a response the program makes itself (demo-resource). */
void http1_write_response_head(struct buf *out, int status,
                               const struct http_fields *fields);

/* Index of the first control byte other than HTAB (or DEL) in p[0..n), n
 * if none: what may not be relayed in a field value or reason. */
size_t http1_ctl_at(const char *p, size_t n);

/* RFC 9110 token character (tchar): the one table for the whole program. */
int http1_is_tchar(unsigned char c);

/* Reason phrase for a status code ("Bad Request"); "Unknown" if none. */
const char *http1_status_reason(int status);

/* One response field line as received (OWS around the value trimmed, an
 * obs-fold joined with SP). Both strings are NUL-terminated and point into
 * the head's own buffer. */
struct http_response_field {
	const char *name;
	const char *value;
	size_t name_len;
	size_t value_len;
};

struct http1_field_at; /* private to http1.c */

/* A response head fed line by line, as a client library that has already
 * split and framed it hands it over (libcurl's header callback). All of it
 * lives in one buffer, so a head costs no allocation per field once the
 * buffers have grown. Initialise with http_response_head_init; start the
 * next head (after an interim 1xx, or for the next response) with
 * http_response_head_reset. */
struct http_response_head {
	/* Set as soon as the status line is in (100..599); 0 before. */
	int status;
	/* The rest is valid once http1_response_line returned 1, until the
	 * next call or reset. */
	const char *reason; /* possibly empty; HTAB, SP, VCHAR, obs-text */
	const struct http_response_field *v;
	size_t n;
	/* The body length from Content-Length (one value, or identical
	 * repeats folded); -1 when there is none or Transfer-Encoding
	 * overrides it (RFC 9112 §6.3). */
	int64_t content_length;
	/* Field lines dropped so far for a control byte in the value, and
	 * the byte of the last one: for the caller's log. */
	size_t dropped;
	unsigned char dropped_byte;

	/* Private to http1.c: "reason\0" then "name\0value\0" pairs, found
	 * by offset while the buffer may still move. */
	struct buf buf;
	struct http1_field_at *at;
	struct http_response_field *fields;
	size_t nfields, capfields;
	int64_t cl;
	int te;           /* Transfer-Encoding came */
	int last_framing; /* the last field line was CL (1) or TE (2) */
	int last_dropped; /* the last field line was dropped */
};

void http_response_head_init(struct http_response_head *h);
void http_response_head_free(struct http_response_head *h);
/* Forget the head and keep the buffers for the next one. */
void http_response_head_reset(struct http_response_head *h);
/* Free buffers that grew beyond keep bytes (an outsized head once). */
void http_response_head_trim(struct http_response_head *h, size_t keep);

/* Feed one line of a response head, with or without its line ending (any
 * trailing run of CR and LF is ignored). Returns 1 when the line was the
 * empty line ending the head (the fields above are then filled; h->status
 * says whether it was an interim 1xx), 0 to go on, -1 when the head is
 * invalid (err says why; reset before the next head). Empty lines before
 * the status line are skipped.
 *
 * By then the head is known to be one the proxy can relay without anyone
 * reading it differently (RFC 9112 §4, §5): a status line
 * "HTTP/1.x 3DIGIT[ reason]" with a status from 100 to 599 and no control
 * byte in the reason; token field names right up to the ':'; Content-Length
 * as 1*DIGIT or a list of one repeated value, agreeing across lines; no
 * obs-fold or control byte in Content-Length or Transfer-Encoding. A field
 * line with another control byte in its value is dropped (RFC 9110 §5.5;
 * counted in h->dropped), and so is an obs-fold continuing it or opening
 * the field section; any other obs-fold is joined with one SP. */
int http1_response_line(struct http_response_head *h, const char *line,
                        size_t n, char *err);

#endif
