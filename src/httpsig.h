/*
 * httpsig: RFC 9421 HTTP Message Signatures — signature base construction,
 * Signature-Input/Signature serialisation (RFC 8941 via sfv), signing and
 * verification. Profiles are data (struct httpsig_profile), so "lumoauth",
 * "rfc9421" and "aauth-draft" differ only in the values they carry.
 * No networking: this module sees a struct http_request and a key.
 */
#ifndef AAUTH_HTTPSIG_H
#define AAUTH_HTTPSIG_H

#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "http1.h"
#include "key.h"
#include "util.h"

enum httpsig_enc {
	HTTPSIG_ENC_B64,    /* RFC 8941 byte sequence: standard base64 */
	HTTPSIG_ENC_B64URL, /* LumoAuth SDKs: base64url without padding */
};

enum httpsig_sigkey {
	HTTPSIG_SIGKEY_NONE,
	HTTPSIG_SIGKEY_HWK, /* Signature-Key: <label>=hwk;kty="OKP";crv=…;x=… */
	HTTPSIG_SIGKEY_JWT, /* Signature-Key: <label>=jwt;jwt="<token>" */
};

enum httpsig_param {
	HTTPSIG_PARAM_CREATED,
	HTTPSIG_PARAM_EXPIRES,
	HTTPSIG_PARAM_NONCE,
	HTTPSIG_PARAM_ALG,
	HTTPSIG_PARAM_KEYID,
	HTTPSIG_PARAM_TAG,
};

#define HTTPSIG_MAX_PARAMS 6

struct httpsig_comps; /* private to httpsig.c */

struct httpsig_profile {
	char *name;  /* "lumoauth", "rfc9421", "aauth-draft" or a config name */
	char *label; /* "sig1", "sig" … */
	/* Covered components as serialised in Signature-Input, in order, e.g.
	 * "\"@method\"" or "\"example-dict\";key=\"a\"". Replace them with
	 * httpsig_profile_set_components, which also prepares `comps`. */
	char **components;
	size_t ncomponents;
	int query_if_present; /* insert "@query" right after "@path" only when
	                         the target has a query (lumoauth) */
	int absent_as_empty;  /* a covered field that is absent is covered with
	                         an empty value (lumoauth) instead of an error */
	int body_fields_if_body; /* "content-digest" and "content-type" are
	                            covered only when the request has a body
	                            and the field (rfc9421, aauth-draft) */
	enum httpsig_param
	    params[HTTPSIG_MAX_PARAMS]; /* emitted in this order */
	size_t nparams;
	int64_t expires_in; /* expires = created + expires_in */
	char *keyid;        /* NULL: the key's RFC 7638 thumbprint */
	char *alg;          /* the alg parameter value, default "ed25519" */
	char *tag;
	enum httpsig_enc enc;
	enum digest_alg
	    digest;        /* Content-Digest algorithm; DIGEST_NONE: none */
	int digest_always; /* add Content-Digest even for an empty body */
	enum httpsig_sigkey sigkey;
	char *default_content_type; /* added when absent (SDKs:
	                               application/json); NULL: never add */
	int64_t created_window;     /* verify: allowed |now - created| (s) */
	size_t nonce_bytes;         /* random bytes in a generated nonce */
	/* Private to httpsig.c: `components` parsed, checked and classified
	 * once, by httpsig_profile_builtin and _set_components, so signing
	 * parses no identifiers per request. Freed by httpsig_profile_free. */
	struct httpsig_comps *comps;
};

/* Fill p with a built-in profile's defaults. Unknown name → -1, err lists
 * the known ones. */
int httpsig_profile_builtin(struct httpsig_profile *p, const char *name,
                            char *err);
/* Replace the covered components. Each id is written as a user would in a
 * config or on the command line: "@method", "content-type",
 * "example-dict;sf", "example-dict;key=a", "@query-param;name=Pet",
 * "example-header;bs". Unknown derived components and bad parameters → -1
 * with err naming the component. */
int httpsig_profile_set_components(struct httpsig_profile *p,
                                   const char *const *ids, size_t n, char *err);
/* Replace the parameter list by names: created expires nonce alg keyid tag. */
int httpsig_profile_set_params(struct httpsig_profile *p,
                               const char *const *names, size_t n, char *err);
void httpsig_profile_free(struct httpsig_profile *p);

struct httpsig_sign_opts {
	int64_t created;        /* 0: the current time */
	const char *nonce;      /* NULL: fresh random nonce */
	const char *sigkey_jwt; /* token for HTTPSIG_SIGKEY_JWT */
};

/* Sign req in place: add Content-Type (if the profile defaults one),
 * Content-Digest (per profile, over req->body), Signature-Key (per
 * profile), then Signature-Input and Signature. The caller has already
 * removed client-supplied versions of those fields and set Authorization.
 * req->scheme must be set. base_out (may be NULL) receives the base. */
int httpsig_sign(const struct httpsig_profile *p, const struct key *k,
                 struct http_request *req, const struct httpsig_sign_opts *o,
                 struct buf *base_out, char *err);

struct httpsig_verify_opts {
	int64_t now;       /* 0: the current time */
	int ignore_time;   /* skip the created/expires checks */
	const char *label; /* NULL: the profile's label */
};

/* Verify the signature with the profile's label on req against pub. Checks,
 * in order: Signature-Input and Signature present and parseable, every
 * component the profile requires is covered, covered fields present,
 * Content-Digest matches the body, created/expires within the window,
 * then the signature. err says precisely which check failed. */
int httpsig_verify(const struct httpsig_profile *p, const struct key *pub,
                   const struct http_request *req,
                   const struct httpsig_verify_opts *o, struct buf *base_out,
                   char *err);

/* What a request's signature says about itself, unverified: for showing a
 * developer what was signed (demo-resource). */
struct httpsig_info {
	char *label;
	char **components; /* as a user names them: "@method",
	                      "example-dict;key=\"a\"" */
	size_t ncomponents;
	int64_t created, expires;        /* 0 when absent */
	char *nonce, *keyid, *alg, *tag; /* NULL when absent */
};

/* Read the Signature-Input member with this label. -1 with err when there
 * is none or it does not parse; free out with httpsig_info_free after 0. */
int httpsig_inspect(const struct http_request *req, const char *label,
                    struct httpsig_info *out, char *err);
void httpsig_info_free(struct httpsig_info *i);

/* The signature base for one Signature-Input member value (the text after
 * "label="), exactly as RFC 9421 §2.5 builds it: the @signature-params line
 * is the canonical RFC 8941 serialisation of the parsed inner list and its
 * parameters (not the received text). For tests and `verify --verbose`. */
int httpsig_base(const struct http_request *req, const char *member_value,
                 int absent_as_empty, struct buf *out, char *err);

#endif
