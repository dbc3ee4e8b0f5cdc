/*
 * fuzz_sfv: the RFC 8941 parser (List, Dictionary, Item, List member, with
 * and without SFV_RAW_BYTES) and the serialiser behind it. Whatever parses
 * must serialise (sfv.h: only values no parser produces can fail), and the
 * serialisation is canonical: parsing it again and serialising gives the
 * same text. That is what RFC 9421 signs, so a difference is a finding.
 *
 * Input: byte 0 picks the kind and flags, the rest is the field value.
 */
#include <string.h>

#include "fuzz.h"
#include "sfv.h"

enum { FUZZ_LIST, FUZZ_DICT, FUZZ_ITEM, FUZZ_MEMBER };

struct fuzz_parsed {
	struct sfv_list l;   /* list or dict */
	struct sfv_member m; /* item or member */
};

static int
fuzz_parse(int kind, const char *s, size_t n, unsigned flags,
           struct fuzz_parsed *p, char *err)
{
	memset(p, 0, sizeof(*p));
	switch (kind) {
	case FUZZ_LIST:
		return sfv_parse_list(s, n, flags, &p->l, err);
	case FUZZ_DICT:
		return sfv_parse_dict(s, n, flags, &p->l, err);
	case FUZZ_ITEM:
		return sfv_parse_item(s, n, flags, &p->m, err);
	default:
		return sfv_parse_member(s, n, flags, &p->m, err);
	}
}

static int
fuzz_serialize(int kind, const struct fuzz_parsed *p, struct buf *out,
               char *err)
{
	switch (kind) {
	case FUZZ_LIST:
		return sfv_serialize_list(&p->l, out, err);
	case FUZZ_DICT:
		return sfv_serialize_dict(&p->l, out, err);
	default:
		return sfv_serialize_member(&p->m, out, err);
	}
}

static void
fuzz_free(int kind, struct fuzz_parsed *p)
{
	if (kind == FUZZ_LIST || kind == FUZZ_DICT)
		sfv_list_free(&p->l);
	else
		sfv_member_free(&p->m);
}

/* The look-ups httpsig does on a parsed Signature-Input. */
static void
fuzz_lookups(int kind, const struct fuzz_parsed *p)
{
	static const char *const keys[] = {"sig1", "a", "created", "keyid",
	                                   "*"};
	const struct sfv_member *m;
	size_t i, j;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (kind == FUZZ_DICT && (m = sfv_dict_get(&p->l, keys[i])))
			for (j = 0; j < sizeof(keys) / sizeof(keys[0]); j++)
				(void)sfv_params_get(&m->params, keys[j]);
		if (kind >= FUZZ_ITEM)
			(void)sfv_params_get(&p->m.params, keys[i]);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_parsed p1, p2;
	struct buf s1, s2, b64;
	const char *s;
	char err[ERR_MAX], *z;
	unsigned flags;
	size_t n;
	int kind;

	if (size < 1)
		return 0;
	kind = data[0] & 3;
	flags = (data[0] & 4) ? SFV_RAW_BYTES : 0;
	s = (const char *)data + 1;
	n = size - 1;

	if (data[0] & 8) {
		/* The helpers that take C strings and raw base64. */
		z = malloc(n + 1);
		FUZZ_CHECK(z != NULL);
		memcpy(z, s, n);
		z[n] = '\0';
		(void)sfv_is_key(z);
		(void)sfv_is_token(z);
		free(z);
		buf_init(&b64);
		(void)sfv_base64_decode(s, n, &b64);
		buf_free(&b64);
	}

	if (fuzz_parse(kind, s, n, flags, &p1, err) == -1)
		return 0;
	fuzz_lookups(kind, &p1);
	buf_init(&s1);
	buf_init(&s2);
	if (fuzz_serialize(kind, &p1, &s1, err) == -1) {
		fprintf(stderr, "parsed but cannot serialise: %s\n", err);
		FUZZ_CHECK(0);
	}
	if (fuzz_parse(kind, s1.data ? s1.data : "", s1.len, flags, &p2, err) ==
	    -1) {
		fprintf(stderr, "own output [%s] does not parse: %s\n", s1.data,
		        err);
		FUZZ_CHECK(0);
	}
	FUZZ_CHECK(fuzz_serialize(kind, &p2, &s2, err) == 0);
	if (s1.len != s2.len ||
	    (s1.len && memcmp(s1.data, s2.data, s1.len) != 0)) {
		fprintf(stderr, "not canonical: [%s] then [%s]\n", s1.data,
		        s2.data);
		FUZZ_CHECK(0);
	}
	fuzz_free(kind, &p1);
	fuzz_free(kind, &p2);
	buf_free(&s1);
	buf_free(&s2);
	return 0;
}
