/*
 * sfv: RFC 8941 Structured Field Values. The parser follows the algorithms
 * of §4.2 step by step (so every rejection the RFC asks for happens here)
 * and the serialiser those of §4.1, which makes parse → serialise the
 * canonical form RFC 9421 signs.
 */
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "sfv.h"

/* Integers and decimals are bounded by §3.3.1/§3.3.2. */
#define SFV_INT_MAX 999999999999999LL
#define SFV_DEC_MAX 999999999999999LL /* thousandths: 12 + 3 digits */

struct sfv_parser {
	const char *s;
	size_t len;
	size_t pos;
	unsigned flags;
	char *err;
};

static int sfv_parse_bare(struct sfv_parser *p, struct sfv_bare *out);
static int sfv_parse_params(struct sfv_parser *p, struct sfv_params *out);

static int
sfv_eof(const struct sfv_parser *p)
{
	return p->pos >= p->len;
}

static int
sfv_peek(const struct sfv_parser *p)
{
	return sfv_eof(p) ? -1 : (unsigned char)p->s[p->pos];
}

/* The error names the offending character and where it is, because field
 * values in a bad request are usually long. */
static int
sfv_fail(struct sfv_parser *p, const char *what)
{
	int c = sfv_peek(p);

	if (c == -1)
		err_set(p->err, "%s at end of input (offset %zu)", what,
		        p->pos);
	else if (c > 0x20 && c < 0x7f)
		err_set(p->err, "%s at offset %zu ('%c')", what, p->pos, c);
	else
		err_set(p->err, "%s at offset %zu (byte 0x%02x)", what, p->pos,
		        c);
	return -1;
}

static void
sfv_skip_sp(struct sfv_parser *p)
{
	while (!sfv_eof(p) && p->s[p->pos] == ' ')
		p->pos++;
}

static void
sfv_skip_ows(struct sfv_parser *p)
{
	while (!sfv_eof(p) && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t'))
		p->pos++;
}

static int
sfv_is_lcalpha(int c)
{
	return c >= 'a' && c <= 'z';
}

static int
sfv_is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
sfv_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
sfv_is_keychar(int c)
{
	return sfv_is_lcalpha(c) || sfv_is_digit(c) || c == '_' || c == '-' ||
	       c == '.' || c == '*';
}

int
sfv_is_key(const char *s)
{
	if (!sfv_is_lcalpha((unsigned char)*s) && *s != '*')
		return 0;
	for (s++; *s; s++)
		if (!sfv_is_keychar((unsigned char)*s))
			return 0;
	return 1;
}

int
sfv_is_token(const char *s)
{
	if (!sfv_is_alpha((unsigned char)*s) && *s != '*')
		return 0;
	for (s++; *s; s++)
		if (!http1_is_tchar((unsigned char)*s) && *s != ':' &&
		    *s != '/')
			return 0;
	return 1;
}

static int
sfv_b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
sfv_base64_decode(const char *s, size_t len, struct buf *out)
{
	uint32_t acc = 0;
	size_t i, n = 0, pad = 0;
	int v;

	for (i = 0; i < len; i++) {
		if (s[i] == '=') {
			pad++;
			continue;
		}
		if (pad > 0) /* data after padding */
			return -1;
		if ((v = sfv_b64_value((unsigned char)s[i])) < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		if (++n % 4 == 0) {
			unsigned char b[3] = {(unsigned char)(acc >> 16),
			                      (unsigned char)(acc >> 8),
			                      (unsigned char)acc};
			buf_append(out, b, 3);
			acc = 0;
		}
	}
	/* Padding is optional, but if present it must complete the quantum. */
	if (pad > 0 && (n + pad) % 4 != 0)
		return -1;
	switch (n % 4) {
	case 1:
		return -1;
	case 2:
		buf_appendc(out, (char)(acc >> 4));
		break;
	case 3:
		buf_appendc(out, (char)(acc >> 10));
		buf_appendc(out, (char)(acc >> 2));
		break;
	}
	return 0;
}

/* §4.2.4 */
static int
sfv_parse_number(struct sfv_parser *p, struct sfv_bare *out)
{
	int decimal = 0, neg = 0;
	size_t ndigits = 0, nfrac = 0;
	int64_t v = 0;
	int c;

	if (sfv_peek(p) == '-') {
		neg = 1;
		p->pos++;
	}
	if (sfv_eof(p))
		return sfv_fail(p, "number expected");
	if (!sfv_is_digit(sfv_peek(p)))
		return sfv_fail(p, "digit expected");
	while (!sfv_eof(p)) {
		c = sfv_peek(p);
		if (sfv_is_digit(c)) {
			v = v * 10 + (c - '0');
			ndigits++;
			if (decimal)
				nfrac++;
		} else if (!decimal && c == '.') {
			if (ndigits > 12)
				return sfv_fail(
				    p, "decimal with more than 12 integer "
				       "digits");
			decimal = 1;
		} else
			break;
		p->pos++;
		if (!decimal && ndigits > 15)
			return sfv_fail(p, "integer with more than 15 digits");
		if (decimal && ndigits + 1 > 16)
			return sfv_fail(p, "decimal longer than 16 characters");
	}
	if (!decimal) {
		out->type = SFV_INTEGER;
		out->num = neg ? -v : v;
		return 0;
	}
	if (nfrac == 0)
		return sfv_fail(p, "decimal ends with '.'");
	if (nfrac > 3)
		return sfv_fail(p,
		                "decimal with more than 3 fractional digits");
	while (nfrac < 3) {
		v *= 10;
		nfrac++;
	}
	out->type = SFV_DECIMAL;
	out->num = neg ? -v : v;
	return 0;
}

/* §4.2.5 */
static int
sfv_parse_string(struct sfv_parser *p, struct sfv_bare *out)
{
	struct buf b;
	int c;

	buf_init(&b);
	p->pos++; /* the opening DQUOTE */
	for (;;) {
		if (sfv_eof(p)) {
			buf_free(&b);
			return sfv_fail(p, "unterminated string");
		}
		c = sfv_peek(p);
		if (c == '\\') {
			p->pos++;
			c = sfv_peek(p);
			if (c != '"' && c != '\\') {
				buf_free(&b);
				return sfv_fail(p,
				                "bad escape in string "
				                "(only \\\" and \\\\ exist)");
			}
		} else if (c == '"') {
			p->pos++;
			break;
		} else if (c < 0x20 || c > 0x7e) {
			buf_free(&b);
			return sfv_fail(p, "character not allowed in string");
		}
		buf_appendc(&b, (char)c);
		p->pos++;
	}
	out->type = SFV_STRING;
	buf_append(&b, "", 0);
	out->str = buf_steal(&b);
	return 0;
}

/* §4.2.6 */
static int
sfv_parse_token(struct sfv_parser *p, struct sfv_bare *out)
{
	size_t start = p->pos;
	int c;

	p->pos++; /* first char already checked */
	while (!sfv_eof(p)) {
		c = sfv_peek(p);
		if (!http1_is_tchar((unsigned char)c) && c != ':' && c != '/')
			break;
		p->pos++;
	}
	out->type = SFV_TOKEN;
	out->str = xstrndup(p->s + start, p->pos - start);
	return 0;
}

/* §4.2.7 */
static int
sfv_parse_bytes(struct sfv_parser *p, struct sfv_bare *out)
{
	size_t start, end;
	struct buf b;
	int c, urlsafe = 0;

	p->pos++;
	start = p->pos;
	for (;;) {
		if (sfv_eof(p))
			return sfv_fail(p, "unterminated byte sequence");
		c = sfv_peek(p);
		if (c == ':')
			break;
		if (!sfv_is_alpha(c) && !sfv_is_digit(c) && c != '+' &&
		    c != '/' && c != '=') {
			if ((p->flags & SFV_RAW_BYTES) &&
			    (c == '-' || c == '_'))
				urlsafe = 1;
			else
				return sfv_fail(p, "character not allowed "
				                   "in byte sequence");
		}
		p->pos++;
	}
	end = p->pos;
	p->pos++;
	out->type = SFV_BYTES;
	out->str = xstrndup(p->s + start, end - start);
	if (urlsafe)
		return 0;
	buf_init(&b);
	if (sfv_base64_decode(p->s + start, end - start, &b) == -1) {
		buf_free(&b);
		if (p->flags & SFV_RAW_BYTES)
			return 0;
		p->pos = start;
		free(out->str);
		out->str = NULL;
		return sfv_fail(p, "byte sequence is not valid base64");
	}
	out->nbytes = b.len;
	buf_append(&b, "", 0);
	out->bytes = (unsigned char *)buf_steal(&b);
	return 0;
}

/* §4.2.8 */
static int
sfv_parse_boolean(struct sfv_parser *p, struct sfv_bare *out)
{
	int c;

	p->pos++;
	c = sfv_peek(p);
	if (c != '0' && c != '1')
		return sfv_fail(p, "boolean must be ?0 or ?1");
	p->pos++;
	out->type = SFV_BOOLEAN;
	out->num = c == '1';
	return 0;
}

/* §4.2.3.1 */
static int
sfv_parse_bare(struct sfv_parser *p, struct sfv_bare *out)
{
	int c = sfv_peek(p);

	memset(out, 0, sizeof(*out));
	if (c == '-' || sfv_is_digit(c))
		return sfv_parse_number(p, out);
	if (c == '"')
		return sfv_parse_string(p, out);
	if (sfv_is_alpha(c) || c == '*')
		return sfv_parse_token(p, out);
	if (c == ':')
		return sfv_parse_bytes(p, out);
	if (c == '?')
		return sfv_parse_boolean(p, out);
	return sfv_fail(p, "item expected");
}

/* §4.2.3.3 */
static int
sfv_parse_key(struct sfv_parser *p, char **out)
{
	size_t start = p->pos;
	int c = sfv_peek(p);

	if (!sfv_is_lcalpha(c) && c != '*')
		return sfv_fail(p, "key must start with a-z or '*'");
	while (!sfv_eof(p) && sfv_is_keychar(sfv_peek(p)))
		p->pos++;
	*out = xstrndup(p->s + start, p->pos - start);
	return 0;
}

/* Room for element n of an array being parsed, doubling: a hostile field
 * holds tens of thousands of them, and growing by one element at a time
 * copies the whole array each time under some allocators (ASan's always). */
static void *
sfv_grow(void *v, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return v;
	*cap = *cap ? 2 * *cap : 4;
	return xrealloc(v, *cap * size);
}

/* Where each key of a dictionary or parameter list being parsed sits. A
 * repeated key overwrites the earlier one in place (§4.2.2, §4.2.3.2), so
 * every key is looked up among those before it; a scan made that quadratic
 * (a 300 kB field took half a minute). Short lists, which is nearly all of
 * them, are still scanned; longer ones get an open-addressing table of
 * index + 1, filled in lazily and rebuilt when it gets half full. */
#define SFV_KEYS_SCAN 16

struct sfv_keys {
	size_t *slot;
	size_t cap;  /* a power of two, or 0 */
	size_t have; /* keys 0..have-1 are in the table */
};

static size_t
sfv_keys_hash(const char *k)
{
	size_t h = 14695981039346656037ull; /* FNV-1a */

	for (; *k != '\0'; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211ull;
	return h;
}

/* Index of key among the n keys key_at(v, 0..n-1), or n when absent. */
static size_t
sfv_keys_find(struct sfv_keys *ix, const void *v, size_t n,
              const char *(*key_at)(const void *, size_t), const char *key)
{
	size_t i, h, mask;

	if (n <= SFV_KEYS_SCAN) {
		for (i = 0; i < n; i++)
			if (strcmp(key_at(v, i), key) == 0)
				return i;
		return n;
	}
	if (ix->cap < 2 * n) {
		free(ix->slot);
		for (ix->cap = 64; ix->cap < 4 * n; ix->cap *= 2)
			;
		ix->slot = xcalloc(ix->cap, sizeof(*ix->slot));
		ix->have = 0;
	}
	mask = ix->cap - 1;
	for (; ix->have < n; ix->have++) {
		h = sfv_keys_hash(key_at(v, ix->have)) & mask;
		while (ix->slot[h] != 0)
			h = (h + 1) & mask;
		ix->slot[h] = ix->have + 1;
	}
	for (h = sfv_keys_hash(key) & mask; ix->slot[h] != 0;
	     h = (h + 1) & mask)
		if (strcmp(key_at(v, ix->slot[h] - 1), key) == 0)
			return ix->slot[h] - 1;
	return n;
}

static const char *
sfv_member_key(const void *v, size_t i)
{
	return ((const struct sfv_member *)v)[i].key;
}

static const char *
sfv_param_key(const void *v, size_t i)
{
	return ((const struct sfv_param *)v)[i].key;
}

void
sfv_params_put(struct sfv_params *p, const char *key, struct sfv_bare *value)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		if (strcmp(p->v[i].key, key) == 0) {
			sfv_bare_free(&p->v[i].value);
			p->v[i].value = *value;
			memset(value, 0, sizeof(*value));
			return;
		}
	}
	p->v = xrealloc(p->v, (p->n + 1) * sizeof(*p->v));
	p->v[p->n].key = xstrdup(key);
	p->v[p->n].value = *value;
	p->n++;
	memset(value, 0, sizeof(*value));
}

/* §4.2.3.2 */
static int
sfv_parse_params(struct sfv_parser *p, struct sfv_params *out)
{
	struct sfv_keys ix = {0};
	struct sfv_bare value;
	char *key = NULL;
	size_t i, cap = 0;

	memset(out, 0, sizeof(*out));
	while (sfv_peek(p) == ';') {
		p->pos++;
		sfv_skip_sp(p);
		if (sfv_parse_key(p, &key) == -1)
			goto fail;
		memset(&value, 0, sizeof(value));
		value.type = SFV_BOOLEAN;
		value.num = 1;
		if (sfv_peek(p) == '=') {
			p->pos++;
			if (sfv_parse_bare(p, &value) == -1)
				goto fail;
		}
		i = sfv_keys_find(&ix, out->v, out->n, sfv_param_key, key);
		if (i < out->n) {
			sfv_bare_free(&out->v[i].value);
			out->v[i].value = value;
			free(key);
		} else {
			out->v =
			    sfv_grow(out->v, out->n, &cap, sizeof(*out->v));
			out->v[out->n].key = key;
			out->v[out->n++].value = value;
		}
		key = NULL;
	}
	free(ix.slot);
	return 0;
fail:
	free(ix.slot);
	free(key);
	sfv_params_free(out);
	return -1;
}

/* §4.2.1.2 */
static int
sfv_parse_inner(struct sfv_parser *p, struct sfv_member *out)
{
	struct sfv_item it;
	size_t cap = 0;

	p->pos++; /* '(' */
	out->is_inner = 1;
	for (;;) {
		sfv_skip_sp(p);
		if (sfv_eof(p))
			return sfv_fail(p, "unterminated inner list");
		if (sfv_peek(p) == ')') {
			p->pos++;
			return sfv_parse_params(p, &out->params);
		}
		if (sfv_parse_bare(p, &it.bare) == -1)
			return -1;
		if (sfv_parse_params(p, &it.params) == -1) {
			sfv_bare_free(&it.bare);
			return -1;
		}
		out->items =
		    sfv_grow(out->items, out->nitems, &cap, sizeof(it));
		out->items[out->nitems++] = it;
		if (sfv_eof(p))
			return sfv_fail(p, "unterminated inner list");
		if (sfv_peek(p) != ' ' && sfv_peek(p) != ')')
			return sfv_fail(p, "inner list items must be "
			                   "separated by a space");
	}
}

/* §4.2.1.1 */
static int
sfv_parse_item_or_inner(struct sfv_parser *p, struct sfv_member *out)
{
	if (sfv_peek(p) == '(')
		return sfv_parse_inner(p, out);
	out->is_inner = 0;
	if (sfv_parse_bare(p, &out->bare) == -1)
		return -1;
	return sfv_parse_params(p, &out->params);
}

static void
sfv_list_push(struct sfv_list *l, size_t *cap, struct sfv_member *m)
{
	l->v = sfv_grow(l->v, l->n, cap, sizeof(*l->v));
	l->v[l->n++] = *m;
	memset(m, 0, sizeof(*m));
}

/* After a list or dictionary member: OWS, then end or a comma that must be
 * followed by another member. 1: more members, 0: done, -1: error. */
static int
sfv_parse_separator(struct sfv_parser *p)
{
	sfv_skip_ows(p);
	if (sfv_eof(p))
		return 0;
	if (sfv_peek(p) != ',')
		return sfv_fail(p, "',' expected between members");
	p->pos++;
	sfv_skip_ows(p);
	if (sfv_eof(p))
		return sfv_fail(p, "trailing comma");
	return 1;
}

static void
sfv_parser_init(struct sfv_parser *p, const char *s, size_t len, unsigned flags,
                char *err)
{
	p->s = s;
	p->len = len;
	p->pos = 0;
	p->flags = flags;
	p->err = err;
	/* §4.2 step 2: leading SP discarded; step 6: so is trailing SP. */
	sfv_skip_sp(p);
	while (p->len > p->pos && s[p->len - 1] == ' ')
		p->len--;
}

int
sfv_parse_list(const char *s, size_t len, unsigned flags, struct sfv_list *out,
               char *err)
{
	struct sfv_parser p;
	struct sfv_member m;
	size_t cap = 0;
	int r;

	memset(out, 0, sizeof(*out));
	sfv_parser_init(&p, s, len, flags, err);
	while (!sfv_eof(&p)) {
		memset(&m, 0, sizeof(m));
		if (sfv_parse_item_or_inner(&p, &m) == -1) {
			sfv_member_free(&m);
			goto fail;
		}
		sfv_list_push(out, &cap, &m);
		if ((r = sfv_parse_separator(&p)) == -1)
			goto fail;
		if (r == 0)
			break;
	}
	return 0;
fail:
	sfv_list_free(out);
	return -1;
}

int
sfv_parse_dict(const char *s, size_t len, unsigned flags, struct sfv_list *out,
               char *err)
{
	struct sfv_keys ix = {0};
	struct sfv_parser p;
	struct sfv_member m;
	size_t i, cap = 0;
	int r;

	memset(out, 0, sizeof(*out));
	sfv_parser_init(&p, s, len, flags, err);
	while (!sfv_eof(&p)) {
		memset(&m, 0, sizeof(m));
		if (sfv_parse_key(&p, &m.key) == -1)
			goto fail_member;
		if (sfv_peek(&p) == '=') {
			p.pos++;
			if (sfv_parse_item_or_inner(&p, &m) == -1)
				goto fail_member;
		} else {
			m.bare.type = SFV_BOOLEAN;
			m.bare.num = 1;
			if (sfv_parse_params(&p, &m.params) == -1)
				goto fail_member;
		}
		i = sfv_keys_find(&ix, out->v, out->n, sfv_member_key, m.key);
		if (i < out->n) { /* a repeated key keeps its first place */
			char *key = out->v[i].key;

			out->v[i].key = NULL;
			sfv_member_free(&out->v[i]);
			out->v[i] = m;
			free(m.key);
			out->v[i].key = key;
		} else
			sfv_list_push(out, &cap, &m);
		if ((r = sfv_parse_separator(&p)) == -1)
			goto fail;
		if (r == 0)
			break;
	}
	free(ix.slot);
	return 0;
fail_member:
	sfv_member_free(&m);
fail:
	free(ix.slot);
	sfv_list_free(out);
	return -1;
}

int
sfv_parse_item(const char *s, size_t len, unsigned flags,
               struct sfv_member *out, char *err)
{
	struct sfv_parser p;

	memset(out, 0, sizeof(*out));
	sfv_parser_init(&p, s, len, flags, err);
	if (sfv_parse_bare(&p, &out->bare) == -1 ||
	    sfv_parse_params(&p, &out->params) == -1)
		goto fail;
	if (!sfv_eof(&p)) {
		sfv_fail(&p, "unexpected text after item");
		goto fail;
	}
	return 0;
fail:
	sfv_member_free(out);
	return -1;
}

int
sfv_parse_member(const char *s, size_t len, unsigned flags,
                 struct sfv_member *out, char *err)
{
	struct sfv_parser p;

	memset(out, 0, sizeof(*out));
	sfv_parser_init(&p, s, len, flags, err);
	if (sfv_parse_item_or_inner(&p, out) == -1)
		goto fail;
	if (!sfv_eof(&p)) {
		sfv_fail(&p, "unexpected text after member");
		goto fail;
	}
	return 0;
fail:
	sfv_member_free(out);
	return -1;
}

void
sfv_bare_free(struct sfv_bare *b)
{
	free(b->str);
	free(b->bytes);
	memset(b, 0, sizeof(*b));
}

void
sfv_params_free(struct sfv_params *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		free(p->v[i].key);
		sfv_bare_free(&p->v[i].value);
	}
	free(p->v);
	memset(p, 0, sizeof(*p));
}

void
sfv_item_free(struct sfv_item *it)
{
	sfv_bare_free(&it->bare);
	sfv_params_free(&it->params);
}

void
sfv_member_free(struct sfv_member *m)
{
	size_t i;

	free(m->key);
	sfv_bare_free(&m->bare);
	for (i = 0; i < m->nitems; i++)
		sfv_item_free(&m->items[i]);
	free(m->items);
	sfv_params_free(&m->params);
	memset(m, 0, sizeof(*m));
}

void
sfv_list_free(struct sfv_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		sfv_member_free(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* §4.1.4 digits, without printf: signing serialises created/expires on
 * every request. */
static void
sfv_append_int(struct buf *out, int64_t v)
{
	char d[24], *p = d + sizeof(d);
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	buf_append(out, p, (size_t)(d + sizeof(d) - p));
}

/* §4.1.6: checked and escaped in one pass, copying the runs between
 * escapes whole (identifiers and tokens are long and rarely escaped). */
static int
sfv_append_string(struct buf *out, const char *s, char *err)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t start = out->len, run;

	buf_appendc(out, '"');
	for (;; p += run + 1) {
		for (run = 0; p[run] >= 0x20 && p[run] <= 0x7e &&
		              p[run] != '"' && p[run] != '\\';
		     run++)
			;
		buf_append(out, p, run);
		if (p[run] == '\0')
			break;
		if (p[run] < 0x20 || p[run] > 0x7e) {
			/* Nothing of a refused string stays in out. */
			out->len = start;
			out->data[start] = '\0';
			err_set(err, "string contains a character outside "
			             "printable ASCII");
			return -1;
		}
		buf_appendc(out, '\\');
		buf_appendc(out, (char)p[run]);
	}
	buf_appendc(out, '"');
	return 0;
}

/* §4.1.3 .. §4.1.9 */
int
sfv_serialize_bare(const struct sfv_bare *b, struct buf *out, char *err)
{
	int64_t a;
	size_t n;
	int frac;

	switch (b->type) {
	case SFV_INTEGER:
		if (b->num < -SFV_INT_MAX || b->num > SFV_INT_MAX) {
			err_set(err, "integer %lld out of range",
			        (long long)b->num);
			return -1;
		}
		sfv_append_int(out, b->num);
		return 0;
	case SFV_DECIMAL:
		if (b->num < -SFV_DEC_MAX || b->num > SFV_DEC_MAX) {
			err_set(err, "decimal out of range");
			return -1;
		}
		a = b->num < 0 ? -b->num : b->num;
		frac = (int)(a % 1000);
		buf_appendf(out, "%s%lld.", b->num < 0 ? "-" : "",
		            (long long)(a / 1000));
		/* Shortest fraction, but at least one digit. */
		if (frac % 100 == 0)
			buf_appendf(out, "%d", frac / 100);
		else if (frac % 10 == 0)
			buf_appendf(out, "%02d", frac / 10);
		else
			buf_appendf(out, "%03d", frac);
		return 0;
	case SFV_STRING:
		return sfv_append_string(out, b->str, err);
	case SFV_TOKEN:
		if (!sfv_is_token(b->str)) {
			err_set(err, "'%s' is not a valid token", b->str);
			return -1;
		}
		buf_appends(out, b->str);
		return 0;
	case SFV_BYTES:
		buf_appendc(out, ':');
		if (b->bytes == NULL && b->str != NULL) {
			/* Raw text kept by SFV_RAW_BYTES: echo it. */
			buf_appends(out, b->str);
		} else {
			n = sodium_base64_encoded_len(
			    b->nbytes, sodium_base64_VARIANT_ORIGINAL);
			buf_reserve(out, n);
			sodium_bin2base64(
			    out->data + out->len, n,
			    b->bytes ? b->bytes : (const unsigned char *)"",
			    b->nbytes, sodium_base64_VARIANT_ORIGINAL);
			out->len += n - 1; /* n counts the NUL */
		}
		buf_appendc(out, ':');
		return 0;
	case SFV_BOOLEAN:
		buf_appends(out, b->num ? "?1" : "?0");
		return 0;
	}
	err_set(err, "unknown item type");
	return -1;
}

/* §4.1.1.2 */
int
sfv_serialize_params(const struct sfv_params *p, struct buf *out, char *err)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		if (!sfv_is_key(p->v[i].key)) {
			err_set(err, "'%s' is not a valid parameter key",
			        p->v[i].key);
			return -1;
		}
		buf_appendc(out, ';');
		buf_appends(out, p->v[i].key);
		if (p->v[i].value.type == SFV_BOOLEAN && p->v[i].value.num)
			continue;
		buf_appendc(out, '=');
		if (sfv_serialize_bare(&p->v[i].value, out, err) == -1)
			return -1;
	}
	return 0;
}

int
sfv_serialize_member(const struct sfv_member *m, struct buf *out, char *err)
{
	size_t i;

	if (!m->is_inner) {
		if (sfv_serialize_bare(&m->bare, out, err) == -1)
			return -1;
		return sfv_serialize_params(&m->params, out, err);
	}
	/* §4.1.1.1 */
	buf_appendc(out, '(');
	for (i = 0; i < m->nitems; i++) {
		if (i > 0)
			buf_appendc(out, ' ');
		if (sfv_serialize_bare(&m->items[i].bare, out, err) == -1 ||
		    sfv_serialize_params(&m->items[i].params, out, err) == -1)
			return -1;
	}
	buf_appendc(out, ')');
	return sfv_serialize_params(&m->params, out, err);
}

/* §4.1.1 */
int
sfv_serialize_list(const struct sfv_list *l, struct buf *out, char *err)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		if (i > 0)
			buf_appends(out, ", ");
		if (sfv_serialize_member(&l->v[i], out, err) == -1)
			return -1;
	}
	return 0;
}

/* §4.1.2 */
int
sfv_serialize_dict(const struct sfv_list *d, struct buf *out, char *err)
{
	const struct sfv_member *m;
	size_t i;

	for (i = 0; i < d->n; i++) {
		m = &d->v[i];
		if (m->key == NULL || !sfv_is_key(m->key)) {
			err_set(err, "'%s' is not a valid dictionary key",
			        m->key ? m->key : "(none)");
			return -1;
		}
		if (i > 0)
			buf_appends(out, ", ");
		buf_appends(out, m->key);
		if (!m->is_inner && m->bare.type == SFV_BOOLEAN &&
		    m->bare.num) {
			if (sfv_serialize_params(&m->params, out, err) == -1)
				return -1;
			continue;
		}
		buf_appendc(out, '=');
		if (sfv_serialize_member(m, out, err) == -1)
			return -1;
	}
	return 0;
}

const struct sfv_member *
sfv_dict_get(const struct sfv_list *d, const char *key)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (d->v[i].key != NULL && strcmp(d->v[i].key, key) == 0)
			return &d->v[i];
	return NULL;
}

const struct sfv_bare *
sfv_params_get(const struct sfv_params *p, const char *key)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->v[i].key, key) == 0)
			return &p->v[i].value;
	return NULL;
}

void
sfv_bare_set_integer(struct sfv_bare *b, int64_t v)
{
	memset(b, 0, sizeof(*b));
	b->type = SFV_INTEGER;
	b->num = v;
}

void
sfv_bare_set_string(struct sfv_bare *b, const char *s)
{
	memset(b, 0, sizeof(*b));
	b->type = SFV_STRING;
	b->str = xstrdup(s);
}

void
sfv_bare_set_token(struct sfv_bare *b, const char *s)
{
	memset(b, 0, sizeof(*b));
	b->type = SFV_TOKEN;
	b->str = xstrdup(s);
}

void
sfv_bare_set_boolean(struct sfv_bare *b, int v)
{
	memset(b, 0, sizeof(*b));
	b->type = SFV_BOOLEAN;
	b->num = v != 0;
}

void
sfv_bare_set_bytes(struct sfv_bare *b, const void *p, size_t n)
{
	memset(b, 0, sizeof(*b));
	b->type = SFV_BYTES;
	b->bytes = xmalloc(n ? n : 1);
	if (n > 0)
		memcpy(b->bytes, p, n);
	b->nbytes = n;
}

static void
sfv_bare_copy(struct sfv_bare *dst, const struct sfv_bare *src)
{
	*dst = *src;
	dst->str = src->str ? xstrdup(src->str) : NULL;
	dst->bytes = NULL;
	if (src->bytes != NULL) {
		dst->bytes = xmalloc(src->nbytes ? src->nbytes : 1);
		memcpy(dst->bytes, src->bytes, src->nbytes);
	}
}

void
sfv_item_copy(struct sfv_item *dst, const struct sfv_item *src)
{
	size_t i;

	sfv_bare_copy(&dst->bare, &src->bare);
	dst->params.n = src->params.n;
	dst->params.v = NULL;
	if (src->params.n == 0)
		return;
	dst->params.v = xcalloc(src->params.n, sizeof(*dst->params.v));
	for (i = 0; i < src->params.n; i++) {
		dst->params.v[i].key = xstrdup(src->params.v[i].key);
		sfv_bare_copy(&dst->params.v[i].value, &src->params.v[i].value);
	}
}
