/*
 * outreq: finalise an outgoing request — strip what the proxy owns or what
 * is hop-by-hop, put Host first, frame the body, and for a protected
 * resource add the Bearer token and sign. Everything that decides what an
 * upstream sees of a request is here, so the data path and the proxy's own
 * requests cannot drift apart.
 */
#include "outreq.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

#define OUTREQ_IS(name, len, lit)                                              \
	((len) == sizeof(lit) - 1 && util_strncaseeq((name), (lit), (len)))

struct outreq_strip {
	struct buf listed; /* the Connection values, comma-joined */
	int sign;          /* also the fields the signer owns */
};

static int
outreq_drop(const char *name, void *arg)
{
	struct outreq_strip *st = arg;
	size_t len = strlen(name);

	/* Hop-by-hop; Expect was answered by the proxy; Host goes first and
	 * Content-Length is recomputed, both re-added below. */
	if (http1_is_hop_by_hop(name, len) || OUTREQ_IS(name, len, "Host") ||
	    OUTREQ_IS(name, len, "Content-Length") ||
	    OUTREQ_IS(name, len, "Expect") ||
	    OUTREQ_IS(name, len, "Proxy-Authorization"))
		return 1;
	if (st->sign && (OUTREQ_IS(name, len, "Authorization") ||
	                 OUTREQ_IS(name, len, "Signature") ||
	                 OUTREQ_IS(name, len, "Signature-Input") ||
	                 OUTREQ_IS(name, len, "Signature-Key") ||
	                 OUTREQ_IS(name, len, "Content-Digest") ||
	                 OUTREQ_IS(name, len, "Agent-Auth")))
		return 1;
	return st->listed.len > 0 &&
	       http1_list_has(st->listed.data, st->listed.len, name, len);
}

/* One pass over the fields: what Connection names, the hop-by-hop set,
 * and the fields set below. */
static void
outreq_strip(struct http_fields *f, int sign)
{
	struct outreq_strip st;
	size_t i;

	buf_init(&st.listed);
	st.sign = sign;
	for (i = 0; i < f->n; i++)
		if (util_strcaseeq(f->v[i].name, "Connection")) {
			buf_appends(&st.listed, f->v[i].value);
			buf_appendc(&st.listed, ',');
		}
	http_fields_del_if(f, outreq_drop, &st);
	buf_free(&st.listed);
}

/* "Host: authority" first, where servers and humans expect it. */
static void
outreq_host_first(struct http_fields *f, const char *authority)
{
	struct http_field h;

	http_fields_add(f, "Host", authority);
	h = f->v[f->n - 1];
	memmove(&f->v[1], &f->v[0], (f->n - 1) * sizeof(f->v[0]));
	f->v[0] = h;
}

int
outreq_finalise(struct http_request *r, int has_body,
                const struct outreq_sign *sign, char *err)
{
	struct httpsig_sign_opts so;
	char len[32];
	struct buf auth;

	outreq_strip(&r->fields, sign != NULL);
	outreq_host_first(&r->fields, r->authority);
	if (has_body) {
		snprintf(len, sizeof(len), "%zu", r->body_len);
		http_fields_add(&r->fields, "Content-Length", len);
	}
	if (sign == NULL)
		return 0;
	/* No token: the token endpoint (authorization covered empty), or a
	 * resource asked first for its challenge. */
	if (sign->token != NULL) {
		buf_init(&auth);
		buf_append(&auth, "Bearer ", 7);
		buf_appends(&auth, sign->token);
		http_fields_add(&r->fields, "Authorization", auth.data);
		sodium_memzero(auth.data, auth.len);
		buf_free(&auth);
	}
	memset(&so, 0, sizeof(so));
	so.sigkey_jwt = sign->token;
	return httpsig_sign(sign->profile, sign->key, r, &so, NULL, err);
}
