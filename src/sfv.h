/*
 * sfv: RFC 8941 Structured Field Values — strict parsing (§4.2) and
 * canonical serialisation (§4.1) of Items, Parameters, Inner Lists, Lists
 * and Dictionaries. httpsig and digest build on it; nothing here knows HTTP.
 */
#ifndef AAUTH_SFV_H
#define AAUTH_SFV_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum sfv_type {
	SFV_INTEGER,
	SFV_DECIMAL,
	SFV_STRING,
	SFV_TOKEN,
	SFV_BYTES,
	SFV_BOOLEAN,
};

/* A Bare Item. Decimals are held exactly as thousandths (RFC 8941 allows at
 * most three fractional digits), so parse → serialise never rounds. */
struct sfv_bare {
	enum sfv_type type;
	int64_t num; /* integer; decimal × 1000; boolean 0/1 */
	char *str;   /* string (unescaped) or token; for a byte sequence
	                the raw text between the colons */
	unsigned char *bytes; /* byte sequence, decoded; NULL when parsed
	                         with SFV_RAW_BYTES and the text is not
	                         standard base64 */
	size_t nbytes;
};

struct sfv_param {
	char *key;
	struct sfv_bare value;
};

/* Parameters keep their first-seen order; a repeated key overwrites the
 * value in place (§4.2.3.2). */
struct sfv_params {
	struct sfv_param *v;
	size_t n;
};

struct sfv_item {
	struct sfv_bare bare;
	struct sfv_params params;
};

/* A List member or a Dictionary member: an Item or an Inner List, with
 * its parameters. In a List key is NULL. */
struct sfv_member {
	char *key;
	int is_inner;
	struct sfv_bare bare;   /* the item, when !is_inner */
	struct sfv_item *items; /* the inner list, when is_inner */
	size_t nitems;
	struct sfv_params params;
};

/* A List, or a Dictionary (members carry keys; a repeated key overwrites
 * the earlier value in place, §4.2.2). */
struct sfv_list {
	struct sfv_member *v;
	size_t n;
};

/* Parse flags. */
#define SFV_RAW_BYTES                                                          \
	0x1 /* accept base64url (-, _) inside :…: and keep                   \
	       the raw text — the LumoAuth profile puts                      \
	       base64url there; decode it yourself */

/* Parse a whole field value. Returns 0, or -1 with err saying what is wrong
 * and at which offset. */
int sfv_parse_list(const char *s, size_t len, unsigned flags,
                   struct sfv_list *out, char *err);
int sfv_parse_dict(const char *s, size_t len, unsigned flags,
                   struct sfv_list *out, char *err);
/* An Item (bare item + parameters); out->is_inner is 0. */
int sfv_parse_item(const char *s, size_t len, unsigned flags,
                   struct sfv_member *out, char *err);
/* One Item or Inner List with parameters (a List member), e.g. the text
 * after "sig1=" in Signature-Input. */
int sfv_parse_member(const char *s, size_t len, unsigned flags,
                     struct sfv_member *out, char *err);

void sfv_bare_free(struct sfv_bare *b);
void sfv_params_free(struct sfv_params *p);
void sfv_item_free(struct sfv_item *it);
void sfv_member_free(struct sfv_member *m);
void sfv_list_free(struct sfv_list *l);

/* Canonical serialisation (§4.1), appended to out. Serialising can fail
 * only for values no parser produces (an integer out of range, a string
 * with control characters, a bad token or key): then -1 and err. */
int sfv_serialize_bare(const struct sfv_bare *b, struct buf *out, char *err);
int sfv_serialize_params(const struct sfv_params *p, struct buf *out,
                         char *err);
/* A member's value without its key: "1;a=2" or "(a b);c". */
int sfv_serialize_member(const struct sfv_member *m, struct buf *out,
                         char *err);
int sfv_serialize_list(const struct sfv_list *l, struct buf *out, char *err);
int sfv_serialize_dict(const struct sfv_list *d, struct buf *out, char *err);

/* Look-ups: NULL when absent. */
const struct sfv_member *sfv_dict_get(const struct sfv_list *d,
                                      const char *key);
const struct sfv_bare *sfv_params_get(const struct sfv_params *p,
                                      const char *key);

/* Building values (strings are copied). */
void sfv_bare_set_integer(struct sfv_bare *b, int64_t v);
void sfv_bare_set_string(struct sfv_bare *b, const char *s);
void sfv_bare_set_token(struct sfv_bare *b, const char *s);
void sfv_bare_set_boolean(struct sfv_bare *b, int v);
void sfv_bare_set_bytes(struct sfv_bare *b, const void *p, size_t n);
/* Add or overwrite a parameter; takes ownership of value's contents. */
void sfv_params_put(struct sfv_params *p, const char *key,
                    struct sfv_bare *value);
/* Deep copy. */
void sfv_item_copy(struct sfv_item *dst, const struct sfv_item *src);

/* Decode a byte sequence's text as RFC 8941 §4.2.7 asks: standard base64,
 * missing padding and non-zero pad bits tolerated. Returns 0 or -1. */
int sfv_base64_decode(const char *s, size_t len, struct buf *out);

/* Character classes shared with httpsig. */
int sfv_is_key(const char *s);
int sfv_is_token(const char *s);

#endif
