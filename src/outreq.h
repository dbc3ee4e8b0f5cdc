/*
 * outreq: the one place an outgoing request is finalised — for the data
 * path and for the proxy's own requests (the token endpoint, later). After
 * outreq_finalise the fields and body are exactly what goes upstream, so
 * the signature covers exactly what is sent.
 */
#ifndef AAUTH_OUTREQ_H
#define AAUTH_OUTREQ_H

#include "http1.h"
#include "httpsig.h"
#include "key.h"

/* How to authorise a request to a protected resource. */
struct outreq_sign {
	const struct httpsig_profile *profile;
	const struct key *key;
	/* "Authorization: Bearer" (and a jwt Signature-Key); NULL: none,
	 * and a covered authorization is covered empty. */
	const char *token;
};

/* Remove the hop-by-hop fields and what Connection names, Expect,
 * Proxy-Authorization and the client's Host and Content-Length; with sign
 * also every field the proxy owns (Authorization, Signature,
 * Signature-Input, Signature-Key, Content-Digest, Agent-Auth). Then Host
 * (r->authority) first, Content-Length when has_body, and with sign the
 * Bearer token, Content-Digest and the signature. -1 with err when the
 * request cannot be signed. */
int outreq_finalise(struct http_request *r, int has_body,
                    const struct outreq_sign *sign, char *err);

#endif
