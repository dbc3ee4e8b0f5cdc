/*
 * consent: the consent callback — the person's browser sent back to a
 * resource's redirect_uri on the proxy's own listener. Reads the query,
 * starts the code exchange (token), and words the short pages the person
 * sees; conn only writes them. No secret reaches a page or a log.
 */
#ifndef AAUTH_CONSENT_H
#define AAUTH_CONSENT_H

#include "config.h"
#include "token.h"

struct evbuffer;

struct consent_page {
	int status;
	char text[640];
};

/* The callback's query: code and error, percent-decoded (new strings, or
 * NULL when absent). -1 when the query is malformed (a key twice, a bad
 * escape, %00). */
int consent_query(const char *query, char **code, char **error);

/* Start the exchange of the query's code: 1 while it runs (cb runs with
 * the outcome, *w cancels), or 0 with the page to answer now (no code,
 * error=…, a malformed query, no consent pending). */
int consent_begin(struct token_store *ts, struct gen *g,
                  const struct config_resource *r, const char *query,
                  token_ready_cb cb, void *arg, struct token_waiter **w,
                  struct consent_page *page);
/* The page for the exchange's outcome (v or f, as token_ready_cb got
 * them; v is released). */
void consent_end(const struct config_resource *r, struct token_value *v,
                 const struct token_fail *f, struct consent_page *page);
/* The page when the issuer took too long. */
void consent_timeout(struct consent_page *page);
/* The response: status line, text/plain, no-store, the text (none for
 * HEAD), Connection: close when close. */
void consent_write(const struct consent_page *page, int is_head, int close,
                   struct evbuffer *out);

#endif
