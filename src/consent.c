/*
 * consent: the browser's return from the issuer's consent page. The code
 * in the query is a credential: it goes to token (which exchanges it) and
 * is wiped; the pages say what happened in words a person understands.
 */
#include "consent.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "token_src.h"
#include "util.h"

static int
consent_hex(int c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	                              : -1;
}

/* application/x-www-form-urlencoded value p[0..n) → a new string. */
static char *
consent_unescape(const char *p, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t i, o = 0;
	int h, l;

	for (i = 0; i < n; i++) {
		if (p[i] == '+') {
			out[o++] = ' ';
		} else if (p[i] == '%') {
			if (i + 2 >= n ||
			    (h = consent_hex((unsigned char)p[i + 1])) < 0 ||
			    (l = consent_hex((unsigned char)p[i + 2])) < 0)
				goto bad;
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else {
			out[o++] = p[i];
		}
	}
	out[o] = '\0';
	if (strlen(out) != o)
		goto bad; /* %00 */
	return out;
bad:
	free(out);
	return NULL;
}

int
consent_query(const char *query, char **code, char **error)
{
	const char *p = query, *amp, *eq;
	char **dst;
	size_t n;

	*code = *error = NULL;
	while (p != NULL && *p != '\0') {
		amp = strchr(p, '&');
		n = amp ? (size_t)(amp - p) : strlen(p);
		eq = memchr(p, '=', n);
		dst = NULL;
		if (eq != NULL && (size_t)(eq - p) == 4 &&
		    memcmp(p, "code", 4) == 0)
			dst = code;
		else if (eq != NULL && (size_t)(eq - p) == 5 &&
		         memcmp(p, "error", 5) == 0)
			dst = error;
		if (dst != NULL) {
			if (*dst != NULL)
				goto bad; /* twice: which one? */
			*dst =
			    consent_unescape(eq + 1, n - (size_t)(eq + 1 - p));
			if (*dst == NULL)
				goto bad;
		}
		p = amp ? amp + 1 : NULL;
	}
	return 0;
bad:
	if (*code != NULL) {
		memset(*code, 0, strlen(*code));
		free(*code);
	}
	free(*error);
	*code = *error = NULL;
	return -1;
}

static void consent_page(struct consent_page *page, int status, const char *fmt,
                         ...) __attribute__((format(printf, 3, 4)));

static void
consent_page(struct consent_page *page, int status, const char *fmt, ...)
{
	va_list ap;

	page->status = status;
	va_start(ap, fmt);
	vsnprintf(page->text, sizeof(page->text), fmt, ap);
	va_end(ap);
}

int
consent_begin(struct token_store *ts, struct gen *g,
              const struct config_resource *r, const char *query,
              token_ready_cb cb, void *arg, struct token_waiter **w,
              struct consent_page *page)
{
	char *code = NULL, *error = NULL, err[ERR_MAX];
	size_t i;
	int rc = 0;

	*w = NULL;
	if (consent_query(query, &code, &error) == -1) {
		consent_page(page, 400,
		             "aauth-proxy: this consent callback is malformed "
		             "(code or error given twice, or a bad "
		             "percent-escape).\n");
		return 0;
	}
	if (code == NULL) {
		/* The issuer's error code, shown as printable ASCII. */
		for (i = 0; error != NULL && error[i]; i++)
			if (error[i] < 0x20 || error[i] > 0x7e)
				error[i] = '?';
		consent_page(page, 400,
		             "aauth-proxy: the approval for %s was not given "
		             "(%.100s). Requests to it keep getting 403 until "
		             "it is.\n",
		             r->name, error ? error : "no code");
	} else if (token_consent_code(ts, g, r, code, cb, arg, w, err) == -1) {
		consent_page(page, 409, "aauth-proxy: %s.\n", err);
	} else {
		rc = 1;
	}
	token_src_wipe(code);
	free(error);
	return rc;
}

void
consent_end(const struct config_resource *r, struct token_value *v,
            const struct token_fail *f, struct consent_page *page)
{
	if (v != NULL || f == NULL) {
		token_value_unref(v);
		consent_page(page, 200,
		             "aauth-proxy: access to %s is approved. You can "
		             "close this page.\n",
		             r->name);
		return;
	}
	consent_page(page, f->status == 403 ? 403 : 502,
	             "aauth-proxy: the approval for %s could not be "
	             "completed: %.500s\n",
	             r->name, f->detail);
}

void
consent_timeout(struct consent_page *page)
{
	consent_page(page, 504,
	             "aauth-proxy: the issuer has not answered the code "
	             "exchange yet; reload this page in a moment.\n");
}

void
consent_write(const struct consent_page *page, int is_head, int close,
              struct evbuffer *out)
{
	size_t n = strlen(page->text);

	evbuffer_add_printf(out,
	                    "HTTP/1.1 %d %s\r\n"
	                    "Content-Type: text/plain; charset=utf-8\r\n"
	                    "Content-Length: %zu\r\n"
	                    "Cache-Control: no-store\r\n%s\r\n",
	                    page->status, http1_status_reason(page->status), n,
	                    close ? "Connection: close\r\n" : "");
	if (!is_head)
		evbuffer_add(out, page->text, n);
}
