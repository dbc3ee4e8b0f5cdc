/*
 * httpsig: RFC 9421 HTTP Message Signatures for requests. Owns component
 * values (derived and field), the signature base, the built-in profiles,
 * and Ed25519 signing/verification with libsodium. One base builder serves
 * sign, verify and `httpsig_base`, so the three can never disagree.
 */
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpsig.h"
#include "sfv.h"

#define HTTPSIG_DEFAULT_WINDOW 60
#define HTTPSIG_NONCE_BYTES    16
#define HTTPSIG_NONCE_MAX      64

/* httpsig_component_value() result for a field the request does not have:
 * the caller decides between an empty value and an error. */
#define HTTPSIG_ABSENT 1

enum httpsig_kind {
	HTTPSIG_K_FIELD,
	HTTPSIG_K_METHOD,
	HTTPSIG_K_TARGET_URI,
	HTTPSIG_K_AUTHORITY,
	HTTPSIG_K_SCHEME,
	HTTPSIG_K_REQUEST_TARGET,
	HTTPSIG_K_PATH,
	HTTPSIG_K_QUERY,
	HTTPSIG_K_QUERY_PARAM,
};

static const struct {
	const char *name;
	enum httpsig_kind kind;
} httpsig_derived[] = {
    {"@method", HTTPSIG_K_METHOD},
    {"@target-uri", HTTPSIG_K_TARGET_URI},
    {"@authority", HTTPSIG_K_AUTHORITY},
    {"@scheme", HTTPSIG_K_SCHEME},
    {"@request-target", HTTPSIG_K_REQUEST_TARGET},
    {"@path", HTTPSIG_K_PATH},
    {"@query", HTTPSIG_K_QUERY},
    {"@query-param", HTTPSIG_K_QUERY_PARAM},
};
#define HTTPSIG_NDERIVED (sizeof(httpsig_derived) / sizeof(httpsig_derived[0]))

/* A covered component after httpsig_check_component: everything the base
 * builder needs, so it never looks at identifier text or parameters again.
 * Strings point into the sfv_item and the serialised text it came from. */
struct httpsig_comp {
	enum httpsig_kind kind;
	const char *text; /* serialised identifier: "example-dict";key="a" */
	size_t textlen;
	const char *name; /* the field name (lower case) or derived name */
	const char *arg;  /* the ;key member or the @query-param name */
	int sf, bs;
	int body_field; /* plain "content-digest" or "content-type" */
};

/* A list of components: a profile's, made once at set-up, or the ones a
 * received Signature-Input covers. */
struct httpsig_comps {
	char **of; /* the profile->components array this was made from */
	size_t n;
	struct sfv_item *items; /* owned when made from a profile */
	struct httpsig_comp *v;
	const struct httpsig_comp **p; /* &v[i], for the base builder */
	struct buf texts; /* every identifier's text, NUL-separated */
};

/* What query_if_present inserts after "@path". */
static const struct httpsig_comp httpsig_query_comp = {
    HTTPSIG_K_QUERY, "\"@query\"", 8, "@query", NULL, 0, 0, 0};

static const char *const httpsig_param_names[] = {
    [HTTPSIG_PARAM_CREATED] = "created", [HTTPSIG_PARAM_EXPIRES] = "expires",
    [HTTPSIG_PARAM_NONCE] = "nonce",     [HTTPSIG_PARAM_ALG] = "alg",
    [HTTPSIG_PARAM_KEYID] = "keyid",     [HTTPSIG_PARAM_TAG] = "tag",
};
#define HTTPSIG_NPARAM_NAMES                                                   \
	(sizeof(httpsig_param_names) / sizeof(httpsig_param_names[0]))

/*
 * ;sf needs the field's structured type, which RFC 9421 §2.1.1 leaves to
 * the field's definition. Known fields use their registered type; for any
 * other field we try Dictionary, then List, then Item. A List of bare
 * tokens also parses as a Dictionary of booleans, but both serialise to
 * the same bytes, and a single Item serialises the same as a one-member
 * List. The one difference: a List that repeats a bare token ("a, a")
 * reads as a Dictionary and loses the repeat. Such fields should be added
 * to the table with their real type.
 */
enum httpsig_sftype { HTTPSIG_SF_DICT, HTTPSIG_SF_LIST, HTTPSIG_SF_ITEM };

static const struct {
	const char *name;
	enum httpsig_sftype type;
} httpsig_sf_fields[] = {
    {"accept-signature", HTTPSIG_SF_DICT},
    {"cache-status", HTTPSIG_SF_LIST},
    {"client-cert", HTTPSIG_SF_ITEM},
    {"client-cert-chain", HTTPSIG_SF_LIST},
    {"content-digest", HTTPSIG_SF_DICT},
    {"priority", HTTPSIG_SF_DICT},
    {"proxy-status", HTTPSIG_SF_LIST},
    {"repr-digest", HTTPSIG_SF_DICT},
    {"signature", HTTPSIG_SF_DICT},
    {"signature-input", HTTPSIG_SF_DICT},
    {"signature-key", HTTPSIG_SF_DICT},
    {"want-content-digest", HTTPSIG_SF_DICT},
    {"want-repr-digest", HTTPSIG_SF_DICT},
};

static int httpsig_profile_prepare(struct httpsig_profile *p, char *err);
static char *httpsig_field_value(const struct http_request *req,
                                 const char *name);
static void httpsig_comps_free(struct httpsig_comps *cs);

/* ---- profiles ---- */

static char **
httpsig_strv(const char *const *v, size_t n)
{
	char **out = xcalloc(n ? n : 1, sizeof(*out));
	size_t i;

	for (i = 0; i < n; i++)
		out[i] = xstrdup(v[i]);
	return out;
}

static void
httpsig_strv_free(char **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int
httpsig_profile_builtin(struct httpsig_profile *p, const char *name, char *err)
{
	static const char *const lumo[] = {
	    "\"@method\"",       "\"@authority\"",     "\"@path\"",
	    "\"signature-key\"", "\"content-digest\"", "\"content-type\"",
	    "\"authorization\"",
	};
	static const char *const rfc[] = {
	    "\"@method\"",
	    "\"@authority\"",
	    "\"@path\"",
	    "\"content-digest\"",
	};
	static const char *const draft[] = {
	    "\"@method\"",       "\"@authority\"",     "\"@path\"",
	    "\"signature-key\"", "\"content-digest\"", "\"content-type\"",
	};

	memset(p, 0, sizeof(*p));
	p->alg = xstrdup("ed25519");
	p->created_window = HTTPSIG_DEFAULT_WINDOW;
	p->nonce_bytes = HTTPSIG_NONCE_BYTES;
	p->digest = DIGEST_SHA256;
	p->params[p->nparams++] = HTTPSIG_PARAM_CREATED;
	if (strcmp(name, "lumoauth") == 0) {
		p->label = xstrdup("sig1");
		p->components = httpsig_strv(lumo, 7);
		p->ncomponents = 7;
		p->query_if_present = 1;
		p->absent_as_empty = 1;
		p->params[p->nparams++] = HTTPSIG_PARAM_NONCE;
		p->enc = HTTPSIG_ENC_B64URL;
		p->digest_always = 1;
		p->default_content_type = xstrdup("application/json");
	} else if (strcmp(name, "rfc9421") == 0) {
		p->label = xstrdup("sig1");
		p->components = httpsig_strv(rfc, 4);
		p->ncomponents = 4;
		p->body_fields_if_body = 1;
		p->params[p->nparams++] = HTTPSIG_PARAM_KEYID;
		p->enc = HTTPSIG_ENC_B64;
	} else if (strcmp(name, "aauth-draft") == 0) {
		p->label = xstrdup("sig");
		p->components = httpsig_strv(draft, 6);
		p->ncomponents = 6;
		p->body_fields_if_body = 1;
		p->enc = HTTPSIG_ENC_B64;
		p->sigkey = HTTPSIG_SIGKEY_HWK;
	} else {
		httpsig_profile_free(p);
		err_set(err,
		        "unknown signature profile '%s' (known: lumoauth, "
		        "rfc9421, aauth-draft)",
		        name);
		return -1;
	}
	p->name = xstrdup(name);
	if (httpsig_profile_prepare(p, err) == -1) {
		httpsig_profile_free(p);
		return -1;
	}
	return 0;
}

void
httpsig_profile_free(struct httpsig_profile *p)
{
	free(p->name);
	free(p->label);
	httpsig_strv_free(p->components, p->ncomponents);
	free(p->keyid);
	free(p->alg);
	free(p->tag);
	free(p->default_content_type);
	httpsig_comps_free(p->comps);
	memset(p, 0, sizeof(*p));
}

/* ---- component identifiers ---- */

/* The kind of a derived component name; -1 for an unknown one. */
static int
httpsig_derived_kind(const char *name)
{
	size_t i;

	for (i = 0; i < HTTPSIG_NDERIVED; i++)
		if (strcmp(name, httpsig_derived[i].name) == 0)
			return (int)httpsig_derived[i].kind;
	return -1;
}

static int
httpsig_param_is_true(const struct sfv_bare *b)
{
	return b->type == SFV_BOOLEAN && b->num == 1;
}

/* Is this a component identifier we can compute for a request? Names the
 * problem otherwise: the message must tell a user which of their
 * components is wrong and why. */
static int
httpsig_check_component(const struct sfv_item *c, char *err)
{
	const char *name = c->bare.str, *s, *k;
	const struct sfv_bare *v;
	int sf = 0, key = 0, bs = 0;
	size_t i;

	if (c->bare.type != SFV_STRING) {
		err_set(err, "component identifiers must be strings");
		return -1;
	}
	if (*name == '\0') {
		err_set(err, "empty component name");
		return -1;
	}
	if (*name == '@') {
		if (strcmp(name, "@status") == 0) {
			err_set(err, "component \"@status\" exists only in "
			             "responses; this is a request");
			return -1;
		}
		if (strcmp(name, "@signature-params") == 0) {
			err_set(err, "\"@signature-params\" cannot be a "
			             "covered component");
			return -1;
		}
		if (httpsig_derived_kind(name) == -1) {
			err_set(err,
			        "unknown derived component \"%s\" (known: "
			        "@method @target-uri @authority @scheme "
			        "@request-target @path @query @query-param)",
			        name);
			return -1;
		}
		for (i = 0; i < c->params.n; i++) {
			k = c->params.v[i].key;
			v = &c->params.v[i].value;
			if (strcmp(name, "@query-param") == 0 &&
			    strcmp(k, "name") == 0) {
				if (v->type != SFV_STRING) {
					err_set(err, "\"@query-param\": the "
					             "name parameter must be a "
					             "string");
					return -1;
				}
				continue;
			}
			if (strcmp(k, "req") == 0) {
				err_set(err,
				        "component \"%s\": ;req (a request "
				        "component in a response signature) "
				        "does not apply to request signatures",
				        name);
				return -1;
			}
			err_set(err, "component \"%s\": unknown parameter '%s'",
			        name, k);
			return -1;
		}
		if (strcmp(name, "@query-param") == 0 &&
		    sfv_params_get(&c->params, "name") == NULL) {
			err_set(err, "component \"@query-param\" needs a name "
			             "parameter (e.g. @query-param;name=Pet)");
			return -1;
		}
		return 0;
	}
	for (s = name; *s; s++) {
		if (*s >= 'A' && *s <= 'Z') {
			err_set(err,
			        "component \"%s\": field names in component "
			        "identifiers must be lower case",
			        name);
			return -1;
		}
		if (!http1_is_tchar((unsigned char)*s)) {
			err_set(err, "component \"%s\" is not a field name",
			        name);
			return -1;
		}
	}
	for (i = 0; i < c->params.n; i++) {
		k = c->params.v[i].key;
		v = &c->params.v[i].value;
		if (strcmp(k, "sf") == 0 && httpsig_param_is_true(v))
			sf = 1;
		else if (strcmp(k, "bs") == 0 && httpsig_param_is_true(v))
			bs = 1;
		else if (strcmp(k, "key") == 0 && v->type == SFV_STRING)
			key = 1;
		else if (strcmp(k, "key") == 0) {
			err_set(err,
			        "component \"%s\": the key parameter must be "
			        "a string",
			        name);
			return -1;
		} else if (strcmp(k, "req") == 0 || strcmp(k, "tr") == 0) {
			err_set(err,
			        "component \"%s\": parameter '%s' is not "
			        "supported for request signatures",
			        name, k);
			return -1;
		} else {
			err_set(err,
			        "component \"%s\": unknown parameter '%s' "
			        "(known: sf, key, bs)",
			        name, k);
			return -1;
		}
	}
	if (bs && (sf || key)) {
		err_set(err,
		        "component \"%s\": ;bs cannot be combined with ;sf or "
		        ";key (RFC 9421 §2.1.3)",
		        name);
		return -1;
	}
	return 0;
}

/* The user-facing syntax: `name` or `name;p` or `name;p=v`, where v is a
 * bare word or a quoted string. A value starting with '"' is taken as the
 * serialised identifier itself. */
static int
httpsig_component_from_user(const char *id, struct sfv_item *out, char *err)
{
	struct sfv_member m;
	struct sfv_bare v;
	const char *semi, *eq, *end, *p;
	char *name = NULL, *key = NULL, *val = NULL;
	char perr[ERR_MAX];

	memset(out, 0, sizeof(*out));
	while (*id == ' ' || *id == '\t')
		id++;
	if (*id == '"') {
		if (sfv_parse_item(id, strlen(id), 0, &m, perr) == -1) {
			err_set(err, "component %s: %s", id, perr);
			return -1;
		}
		out->bare = m.bare;
		out->params = m.params;
		memset(&m.bare, 0, sizeof(m.bare));
		memset(&m.params, 0, sizeof(m.params));
		sfv_member_free(&m);
		return 0;
	}
	semi = strchr(id, ';');
	end = semi ? semi : id + strlen(id);
	while (end > id && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	name = xstrndup(id, (size_t)(end - id));
	if (*name != '@')
		util_lower(name); /* field names are case-insensitive */
	sfv_bare_set_string(&out->bare, name);
	free(name);
	for (p = semi; p != NULL && *p == ';'; p = semi) {
		p++;
		semi = strchr(p, ';');
		end = semi ? semi : p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		key = xstrndup(p, (size_t)((eq ? eq : end) - p));
		if (!sfv_is_key(key)) {
			err_set(err, "component %s: bad parameter name '%s'",
			        id, key);
			goto fail;
		}
		if (eq == NULL)
			sfv_bare_set_boolean(&v, 1);
		else if (eq[1] == '"') {
			/* A quoted value may itself contain ';'. */
			struct sfv_member qm;
			const char *q = eq + 2;

			while (*q && *q != '"')
				q += (*q == '\\' && q[1]) ? 2 : 1;
			if (*q != '"') {
				err_set(err,
				        "component %s: unterminated quoted "
				        "value",
				        id);
				goto fail;
			}
			end = q + 1;
			semi = *end == ';' ? end : NULL;
			if (*end != '\0' && *end != ';') {
				err_set(err,
				        "component %s: text after quoted value",
				        id);
				goto fail;
			}
			if (sfv_parse_item(eq + 1, (size_t)(end - eq - 1), 0,
			                   &qm, perr) == -1) {
				err_set(err, "component %s: %s", id, perr);
				goto fail;
			}
			v = qm.bare;
			memset(&qm.bare, 0, sizeof(qm.bare));
			sfv_member_free(&qm);
		} else {
			val = xstrndup(eq + 1, (size_t)(end - eq - 1));
			sfv_bare_set_string(&v, val);
			free(val);
			val = NULL;
		}
		sfv_params_put(&out->params, key, &v);
		free(key);
		key = NULL;
	}
	return 0;
fail:
	free(key);
	free(val);
	sfv_item_free(out);
	return -1;
}

/* Serialised identifier, e.g. "example-dict";key="a". */
static int
httpsig_component_text(const struct sfv_item *c, struct buf *out, char *err)
{
	if (sfv_serialize_bare(&c->bare, out, err) == -1 ||
	    sfv_serialize_params(&c->params, out, err) == -1)
		return -1;
	return 0;
}

/* ---- component lists ---- */

/* Check one identifier and record what the base builder needs; c->text is
 * filled by httpsig_comps_texts. */
static int
httpsig_classify(const struct sfv_item *it, struct httpsig_comp *c, char *err)
{
	const struct sfv_bare *v;

	if (httpsig_check_component(it, err) == -1)
		return -1;
	c->name = it->bare.str;
	c->arg = NULL;
	c->sf = c->bs = c->body_field = 0;
	if (*c->name == '@') {
		c->kind = (enum httpsig_kind)httpsig_derived_kind(c->name);
		if (c->kind == HTTPSIG_K_QUERY_PARAM)
			c->arg = sfv_params_get(&it->params, "name")->str;
		return 0;
	}
	c->kind = HTTPSIG_K_FIELD;
	if ((v = sfv_params_get(&it->params, "key")) != NULL)
		c->arg = v->str;
	c->sf = sfv_params_get(&it->params, "sf") != NULL;
	c->bs = sfv_params_get(&it->params, "bs") != NULL;
	c->body_field =
	    it->params.n == 0 && (strcmp(c->name, "content-digest") == 0 ||
	                          strcmp(c->name, "content-type") == 0);
	return 0;
}

/* Serialise each identifier once: coverage checks, base lines and
 * @signature-params all use this text. */
static int
httpsig_comps_texts(struct httpsig_comps *cs, const struct sfv_item *items,
                    size_t n, char *err)
{
	size_t i, start, off = 0;

	cs->n = n;
	cs->v = xcalloc(n ? n : 1, sizeof(*cs->v));
	cs->p = xcalloc(n ? n : 1, sizeof(*cs->p));
	for (i = 0; i < n; i++) {
		cs->p[i] = &cs->v[i];
		start = cs->texts.len;
		if (httpsig_component_text(&items[i], &cs->texts, err) == -1)
			return -1;
		cs->v[i].textlen = cs->texts.len - start;
		buf_append(&cs->texts, "", 1); /* the NUL separator */
	}
	/* Pointers only now: texts moved while it grew. */
	for (i = 0; i < n; i++) {
		cs->v[i].text = cs->texts.data + off;
		off += cs->v[i].textlen + 1;
	}
	return 0;
}

/* Check and classify every identifier; each may appear only once (§2.5). */
static int
httpsig_comps_check(struct httpsig_comps *cs, const struct sfv_item *items,
                    char *err)
{
	size_t i, j;

	for (i = 0; i < cs->n; i++) {
		if (httpsig_classify(&items[i], &cs->v[i], err) == -1)
			return -1;
		for (j = 0; j < i; j++) {
			if (cs->v[j].textlen == cs->v[i].textlen &&
			    memcmp(cs->v[j].text, cs->v[i].text,
			           cs->v[i].textlen) == 0) {
				err_set(err, "component %s is covered twice",
				        cs->v[i].text);
				return -1;
			}
		}
	}
	return 0;
}

static void
httpsig_comps_clear(struct httpsig_comps *cs)
{
	size_t i;

	if (cs->items != NULL)
		for (i = 0; i < cs->n; i++)
			sfv_item_free(&cs->items[i]);
	free(cs->items);
	free(cs->v);
	free(cs->p);
	buf_free(&cs->texts);
	memset(cs, 0, sizeof(*cs));
}

static void
httpsig_comps_free(struct httpsig_comps *cs)
{
	if (cs == NULL)
		return;
	httpsig_comps_clear(cs);
	free(cs);
}

/* A profile's serialised identifiers, parsed into cs. */
static int
httpsig_comps_parse(struct httpsig_comps *cs, char **ids, size_t n, char *err)
{
	struct sfv_member m;
	char perr[ERR_MAX];
	size_t i;

	memset(cs, 0, sizeof(*cs));
	cs->of = ids;
	cs->n = n;
	cs->items = xcalloc(n ? n : 1, sizeof(*cs->items));
	for (i = 0; i < n; i++) {
		if (sfv_parse_item(ids[i], strlen(ids[i]), 0, &m, perr) == -1) {
			err_set(err, "profile component %s: %s", ids[i], perr);
			goto fail;
		}
		cs->items[i].bare = m.bare;
		cs->items[i].params = m.params;
		memset(&m.bare, 0, sizeof(m.bare));
		memset(&m.params, 0, sizeof(m.params));
		sfv_member_free(&m);
	}
	if (httpsig_comps_texts(cs, cs->items, n, err) == -1 ||
	    httpsig_comps_check(cs, cs->items, err) == -1)
		goto fail;
	return 0;
fail:
	httpsig_comps_clear(cs);
	return -1;
}

/* Set-up time: parse the profile's components once for every request. */
static int
httpsig_profile_prepare(struct httpsig_profile *p, char *err)
{
	struct httpsig_comps *cs = xcalloc(1, sizeof(*cs));

	if (httpsig_comps_parse(cs, p->components, p->ncomponents, err) == -1) {
		free(cs);
		return -1;
	}
	httpsig_comps_free(p->comps);
	p->comps = cs;
	return 0;
}

/* The profile's prepared components; if `components` was replaced
 * without httpsig_profile_set_components, they are parsed now into tmp
 * (which the caller clears), so a stale list is never used. */
static const struct httpsig_comps *
httpsig_profile_comps(const struct httpsig_profile *p,
                      struct httpsig_comps *tmp, char *err)
{
	if (p->comps != NULL && p->comps->of == p->components &&
	    p->comps->n == p->ncomponents)
		return p->comps;
	if (httpsig_comps_parse(tmp, p->components, p->ncomponents, err) == -1)
		return NULL;
	return tmp;
}

int
httpsig_profile_set_components(struct httpsig_profile *p,
                               const char *const *ids, size_t n, char *err)
{
	char **v = xcalloc(n ? n : 1, sizeof(*v)), **old;
	struct sfv_item it;
	struct buf b;
	size_t i, j, oldn;

	buf_init(&b);
	for (i = 0; i < n; i++) {
		if (httpsig_component_from_user(ids[i], &it, err) == -1)
			goto fail;
		if (httpsig_check_component(&it, err) == -1) {
			sfv_item_free(&it);
			goto fail;
		}
		buf_reset(&b);
		if (httpsig_component_text(&it, &b, err) == -1) {
			sfv_item_free(&it);
			goto fail;
		}
		sfv_item_free(&it);
		for (j = 0; j < i; j++) {
			if (strcmp(v[j], b.data) == 0) {
				err_set(err, "component %s is listed twice",
				        b.data);
				goto fail;
			}
		}
		v[i] = xstrdup(b.data);
	}
	buf_free(&b);
	old = p->components;
	oldn = p->ncomponents;
	p->components = v;
	p->ncomponents = n;
	if (httpsig_profile_prepare(p, err) == -1) {
		/* Not for identifiers checked above; keep the old list. */
		p->components = old;
		p->ncomponents = oldn;
		httpsig_strv_free(v, n);
		return -1;
	}
	httpsig_strv_free(old, oldn);
	return 0;
fail:
	buf_free(&b);
	httpsig_strv_free(v, n);
	return -1;
}

int
httpsig_profile_set_params(struct httpsig_profile *p, const char *const *names,
                           size_t n, char *err)
{
	enum httpsig_param v[HTTPSIG_MAX_PARAMS];
	size_t i, j, k;

	if (n > HTTPSIG_MAX_PARAMS) {
		err_set(err, "too many signature parameters (%zu, at most %d)",
		        n, HTTPSIG_MAX_PARAMS);
		return -1;
	}
	for (i = 0; i < n; i++) {
		for (k = 0; k < HTTPSIG_NPARAM_NAMES; k++)
			if (strcmp(names[i], httpsig_param_names[k]) == 0)
				break;
		if (k == HTTPSIG_NPARAM_NAMES) {
			err_set(err,
			        "unknown signature parameter '%s' (known: "
			        "created expires nonce alg keyid tag)",
			        names[i]);
			return -1;
		}
		for (j = 0; j < i; j++) {
			if (v[j] == (enum httpsig_param)k) {
				err_set(err,
				        "signature parameter '%s' is listed "
				        "twice",
				        names[i]);
				return -1;
			}
		}
		v[i] = (enum httpsig_param)k;
	}
	memcpy(p->params, v, n * sizeof(v[0]));
	p->nparams = n;
	return 0;
}

/* ---- component values ---- */

static int
httpsig_is_ows(int c)
{
	return c == ' ' || c == '\t';
}

/* RFC 9421 §2.1: strip leading and trailing whitespace, and replace each
 * obs-fold (OWS CRLF RWS, RFC 9112 §5.2) by a single SP. */
static void
httpsig_canon_line(const char *v, struct buf *out)
{
	size_t start = out->len, n;

	while (httpsig_is_ows((unsigned char)*v))
		v++;
	n = strcspn(v, "\r\n");
	if (v[n] == '\0') {
		/* No fold (the proxy's parser refuses them): one copy. */
		while (n > 0 && httpsig_is_ows((unsigned char)v[n - 1]))
			n--;
		buf_append(out, v, n);
		return;
	}
	for (; *v; v++) {
		if (*v == '\r' || *v == '\n') {
			while (out->len > start &&
			       httpsig_is_ows(out->data[out->len - 1]))
				out->len--;
			while (*v == '\r' || *v == '\n' ||
			       httpsig_is_ows((unsigned char)*v))
				v++;
			v--;
			buf_appendc(out, ' ');
			continue;
		}
		buf_appendc(out, *v);
	}
	while (out->len > start && httpsig_is_ows(out->data[out->len - 1]))
		out->len--;
	out->data[out->len] = '\0';
}

/* Just the OWS trim, for ;bs which encodes the bytes as they are. */
static void
httpsig_trim_line(const char *v, struct buf *out)
{
	size_t n;

	while (httpsig_is_ows((unsigned char)*v))
		v++;
	n = strlen(v);
	while (n > 0 && httpsig_is_ows((unsigned char)v[n - 1]))
		n--;
	buf_append(out, v, n);
}

/* All lines of a field, canonicalised and joined with ", " (§2.1),
 * appended to out. Returns the number of lines (0: absent). */
static size_t
httpsig_field_joined(const struct http_request *req, const char *name,
                     struct buf *out)
{
	size_t i, n = 0;

	buf_append(out, "", 0);
	for (i = 0; i < req->fields.n; i++) {
		if (!util_strcaseeq(req->fields.v[i].name, name))
			continue;
		if (n++ > 0)
			buf_appends(out, ", ");
		httpsig_canon_line(req->fields.v[i].value, out);
	}
	return n;
}

static enum httpsig_sftype
httpsig_sf_type(const char *name, int *known)
{
	size_t i;

	for (i = 0;
	     i < sizeof(httpsig_sf_fields) / sizeof(httpsig_sf_fields[0]);
	     i++) {
		if (strcmp(name, httpsig_sf_fields[i].name) == 0) {
			*known = 1;
			return httpsig_sf_fields[i].type;
		}
	}
	*known = 0;
	return HTTPSIG_SF_DICT;
}

/* §2.1.1: re-serialise a field as its structured type. */
static int
httpsig_value_sf(const char *name, const char *value, struct buf *out,
                 char *err)
{
	enum httpsig_sftype t;
	struct sfv_list l;
	struct sfv_member m;
	char perr[ERR_MAX];
	size_t len = strlen(value);
	int known, r;

	t = httpsig_sf_type(name, &known);
	if (t == HTTPSIG_SF_DICT &&
	    sfv_parse_dict(value, len, 0, &l, perr) == 0) {
		r = sfv_serialize_dict(&l, out, err);
		sfv_list_free(&l);
		return r;
	}
	if ((!known || t == HTTPSIG_SF_LIST) &&
	    sfv_parse_list(value, len, 0, &l, perr) == 0) {
		r = sfv_serialize_list(&l, out, err);
		sfv_list_free(&l);
		return r;
	}
	if ((!known || t == HTTPSIG_SF_ITEM) &&
	    sfv_parse_item(value, len, 0, &m, perr) == 0) {
		r = sfv_serialize_member(&m, out, err);
		sfv_member_free(&m);
		return r;
	}
	err_set(err, "field %s is not a valid structured field for ;sf: %s",
	        name, perr);
	return -1;
}

/* §2.1.2: one dictionary member's value, without its key. */
static int
httpsig_value_key(const char *name, const char *value, const char *key,
                  struct buf *out, char *err)
{
	const struct sfv_member *m;
	struct sfv_list d;
	char perr[ERR_MAX];
	int r;

	if (sfv_parse_dict(value, strlen(value), 0, &d, perr) == -1) {
		err_set(err,
		        "field %s is not a dictionary (needed for ;key): %s",
		        name, perr);
		return -1;
	}
	if ((m = sfv_dict_get(&d, key)) == NULL) {
		err_set(err, "field %s has no dictionary member '%s'", name,
		        key);
		sfv_list_free(&d);
		return -1;
	}
	r = sfv_serialize_member(m, out, err);
	sfv_list_free(&d);
	return r;
}

static int
httpsig_value_field(const struct http_request *req,
                    const struct httpsig_comp *c, struct buf *out, char *err)
{
	const char *name = c->name;
	struct buf joined;
	char *b64;
	size_t i, n = 0;
	int r;

	if (c->bs) {
		/* §2.1.3: each line separately, wrapped as a byte sequence. */
		struct buf line;

		buf_init(&line);
		for (i = 0; i < req->fields.n; i++) {
			if (!util_strcaseeq(req->fields.v[i].name, name))
				continue;
			buf_reset(&line);
			httpsig_trim_line(req->fields.v[i].value, &line);
			b64 = b64_encode(line.data ? line.data : "", line.len,
			                 B64_STD);
			buf_appendf(out, "%s:%s:", n++ > 0 ? ", " : "", b64);
			free(b64);
		}
		buf_free(&line);
		return n == 0 ? HTTPSIG_ABSENT : 0;
	}
	if (c->arg == NULL && !c->sf) /* the common case: straight into out */
		return httpsig_field_joined(req, name, out) == 0
		           ? HTTPSIG_ABSENT
		           : 0;
	buf_init(&joined);
	if (httpsig_field_joined(req, name, &joined) == 0) {
		buf_free(&joined);
		return HTTPSIG_ABSENT;
	}
	if (c->arg != NULL)
		r = httpsig_value_key(name, joined.data, c->arg, out, err);
	else
		r = httpsig_value_sf(name, joined.data, out, err);
	buf_free(&joined);
	return r;
}

/* Split an authority into host and port text; IPv6 literals keep their
 * brackets. port is NULL when none is given. */
static int
httpsig_split_authority(const char *a, const char **host_end, const char **port)
{
	const char *colon;

	*port = NULL;
	if (*a == '[') {
		const char *rb = strchr(a, ']');

		if (rb == NULL)
			return -1;
		*host_end = rb + 1;
		if (rb[1] == ':')
			*port = rb + 2;
		else if (rb[1] != '\0')
			return -1;
		return 0;
	}
	colon = strrchr(a, ':');
	*host_end = colon ? colon : a + strlen(a);
	if (colon)
		*port = colon + 1;
	return 0;
}

static const char *
httpsig_authority_raw(const struct http_request *req)
{
	if (req->authority != NULL)
		return req->authority;
	return http_fields_get(&req->fields, "host");
}

/* §2.2.3: host lower-cased, the scheme's default port dropped. */
static int
httpsig_value_authority(const struct http_request *req, struct buf *out,
                        char *err)
{
	const char *a = httpsig_authority_raw(req), *host_end, *port;
	size_t start = out->len, i;
	long pn;
	char *endp;

	if (a == NULL || *a == '\0') {
		err_set(err, "request has no authority (no Host field)");
		return -1;
	}
	if (httpsig_split_authority(a, &host_end, &port) == -1) {
		err_set(err, "bad authority '%s'", a);
		return -1;
	}
	buf_append(out, a, (size_t)(host_end - a));
	for (i = start; i < out->len; i++)
		out->data[i] = (char)tolower((unsigned char)out->data[i]);
	if (port == NULL || *port == '\0')
		return 0;
	pn = strtol(port, &endp, 10);
	if (*endp != '\0' || pn < 0 || pn > 65535) {
		err_set(err, "bad port in authority '%s'", a);
		return -1;
	}
	if (req->scheme == NULL) {
		err_set(err, "@authority: the request scheme is unknown, so "
		             "the default port cannot be recognised");
		return -1;
	}
	if ((util_strcaseeq(req->scheme, "https") && pn == 443) ||
	    (util_strcaseeq(req->scheme, "http") && pn == 80))
		return 0;
	buf_appendf(out, ":%ld", pn);
	return 0;
}

static int
httpsig_value_scheme(const struct http_request *req, struct buf *out,
                     const char *what, char *err)
{
	size_t start = out->len, i;

	if (req->scheme == NULL) {
		err_set(err, "%s: the request scheme is unknown", what);
		return -1;
	}
	buf_appends(out, req->scheme);
	for (i = start; i < out->len; i++)
		out->data[i] = (char)tolower((unsigned char)out->data[i]);
	return 0;
}

/* §2.2.2: the target URI as received; for origin-form it is rebuilt from
 * the scheme and the raw authority (RFC 9110 §7.1), unnormalised. */
static int
httpsig_value_target_uri(const struct http_request *req, struct buf *out,
                         char *err)
{
	const char *a = httpsig_authority_raw(req);

	if (req->form == HTTP_TARGET_ABSOLUTE) {
		buf_appends(out, req->target);
		return 0;
	}
	if (httpsig_value_scheme(req, out, "@target-uri", err) == -1)
		return -1;
	if (a == NULL) {
		err_set(err, "@target-uri: request has no authority");
		return -1;
	}
	buf_appends(out, "://");
	buf_appends(out, a);
	if (req->form == HTTP_TARGET_ORIGIN) {
		buf_appends(out, req->path ? req->path : "");
		if (req->query != NULL) {
			buf_appendc(out, '?');
			buf_appends(out, req->query);
		}
	}
	return 0;
}

static int
httpsig_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* WHATWG application/x-www-form-urlencoded byte decoding: '+' is a space,
 * %XX decodes, a '%' not followed by two hex digits stays as it is. */
static void
httpsig_form_decode(const char *s, size_t n, struct buf *out)
{
	size_t i;
	int h, l;

	buf_reserve(out, n);
	for (i = 0; i < n; i++) {
		if (s[i] == '+')
			buf_appendc(out, ' ');
		else if (s[i] == '%' && i + 2 < n &&
		         (h = httpsig_hexval((unsigned char)s[i + 1])) >= 0 &&
		         (l = httpsig_hexval((unsigned char)s[i + 2])) >= 0) {
			buf_appendc(out, (char)(h * 16 + l));
			i += 2;
		} else
			buf_appendc(out, s[i]);
	}
}

/* Re-encode keeping only ALPHA DIGIT * - . _ (the urlencoded set), with
 * space as %20 as in the RFC 9421 §2.2.8 example. */
static void
httpsig_qp_encode(const char *s, size_t n, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;
	size_t i;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (isalnum(c) || c == '*' || c == '-' || c == '.' || c == '_')
			buf_appendc(out, (char)c);
		else {
			buf_appendc(out, '%');
			buf_appendc(out, hex[c >> 4]);
			buf_appendc(out, hex[c & 15]);
		}
	}
}

/* §2.2.8 */
static int
httpsig_value_query_param(const struct http_request *req,
                          const struct httpsig_comp *c, struct buf *out,
                          char *err)
{
	const char *want = c->arg;
	const char *q = req->query ? req->query : "", *seg, *amp, *eq;
	struct buf name, dec, val;
	size_t seglen, found = 0;

	buf_init(&name);
	buf_init(&dec);
	buf_init(&val);
	for (seg = q; *seg; seg = amp ? amp + 1 : seg + seglen) {
		amp = strchr(seg, '&');
		seglen = amp ? (size_t)(amp - seg) : strlen(seg);
		if (seglen == 0) {
			if (amp == NULL)
				break;
			continue;
		}
		eq = memchr(seg, '=', seglen);
		buf_reset(&dec);
		buf_reset(&name);
		httpsig_form_decode(seg, eq ? (size_t)(eq - seg) : seglen,
		                    &dec);
		httpsig_qp_encode(dec.data, dec.len, &name);
		buf_append(&name, "", 0);
		if (strcmp(name.data, want) != 0) {
			if (amp == NULL)
				break;
			continue;
		}
		if (found++ == 0) {
			buf_reset(&dec);
			if (eq != NULL)
				httpsig_form_decode(
				    eq + 1, seglen - (size_t)(eq + 1 - seg),
				    &dec);
			httpsig_qp_encode(dec.data ? dec.data : "", dec.len,
			                  &val);
		}
		if (amp == NULL)
			break;
	}
	buf_free(&name);
	buf_free(&dec);
	if (found == 0) {
		buf_free(&val);
		err_set(err,
		        "@query-param: the query has no parameter named "
		        "'%s'",
		        want);
		return -1;
	}
	if (found > 1) {
		buf_free(&val);
		err_set(
		    err,
		    "@query-param: parameter '%s' occurs %zu times in the "
		    "query, so it cannot be signed alone (RFC 9421 §2.2.8); "
		    "cover @query instead",
		    want, found);
		return -1;
	}
	buf_append(out, val.data ? val.data : "", val.len);
	buf_free(&val);
	return 0;
}

/* The value of one covered component. 0, HTTPSIG_ABSENT for a field the
 * request does not have, or -1. */
static int
httpsig_component_value(const struct http_request *req,
                        const struct httpsig_comp *c, struct buf *out,
                        char *err)
{
	switch (c->kind) {
	case HTTPSIG_K_FIELD:
		return httpsig_value_field(req, c, out, err);
	case HTTPSIG_K_METHOD:
		buf_appends(out, req->method);
		return 0;
	case HTTPSIG_K_AUTHORITY:
		return httpsig_value_authority(req, out, err);
	case HTTPSIG_K_SCHEME:
		return httpsig_value_scheme(req, out, "@scheme", err);
	case HTTPSIG_K_TARGET_URI:
		return httpsig_value_target_uri(req, out, err);
	case HTTPSIG_K_REQUEST_TARGET:
		buf_appends(out, req->target);
		return 0;
	case HTTPSIG_K_PATH:
		/* §2.2.6: as on the wire, "/" when empty. */
		buf_appends(out, req->path && *req->path ? req->path : "/");
		return 0;
	case HTTPSIG_K_QUERY:
		buf_appendc(out, '?');
		buf_appends(out, req->query ? req->query : "");
		return 0;
	case HTTPSIG_K_QUERY_PARAM:
		return httpsig_value_query_param(req, c, out, err);
	}
	err_set(err, "unknown component kind %d", (int)c->kind);
	return -1;
}

/* ---- the signature base ---- */

/* "(" identifiers ")", the inner list of Signature-Input and of the
 * @signature-params line, from the identifiers' text. */
static void
httpsig_inner_list(const struct httpsig_comp *const *c, size_t n,
                   struct buf *out)
{
	size_t i;

	buf_appendc(out, '(');
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_appendc(out, ' ');
		buf_append(out, c[i]->text, c[i]->textlen);
	}
	buf_appendc(out, ')');
}

/* Enough room for a base in the usual case, so it is built in one
 * allocation: the identifiers, every field value (a bound for the covered
 * ones) and the target parts. */
static size_t
httpsig_base_size(const struct http_request *req,
                  const struct httpsig_comp *const *c, size_t n,
                  size_t params_len)
{
	size_t i, size = 64 + params_len;

	for (i = 0; i < n; i++)
		size += c[i]->textlen + 3;
	for (i = 0; i < req->fields.n; i++)
		size += strlen(req->fields.v[i].value) + 2;
	if (req->target != NULL)
		size += 2 * strlen(req->target);
	if (req->authority != NULL)
		size += strlen(req->authority);
	return size;
}

/* §2.5: a line per covered component, then "@signature-params" whose
 * value (the serialised inner list and parameters) the caller made once
 * and also uses for Signature-Input. */
static int
httpsig_build_base(const struct http_request *req,
                   const struct httpsig_comp *const *c, size_t n,
                   int absent_as_empty, const char *params, size_t params_len,
                   struct buf *out, char *err)
{
	size_t i, start;
	int r;

	buf_reset(out);
	buf_reserve(out, httpsig_base_size(req, c, n, params_len));
	for (i = 0; i < n; i++) {
		buf_append(out, c[i]->text, c[i]->textlen);
		buf_append(out, ": ", 2);
		start = out->len;
		r = httpsig_component_value(req, c[i], out, err);
		if (r == -1)
			return -1;
		if (r == HTTPSIG_ABSENT && !absent_as_empty) {
			err_set(err, "covered field %s is not in the request",
			        c[i]->text);
			return -1;
		}
		/* A line break inside a value would forge base lines. */
		if (memchr(out->data + start, '\n', out->len - start) ||
		    memchr(out->data + start, '\r', out->len - start)) {
			err_set(err, "value of %s contains a line break",
			        c[i]->text);
			return -1;
		}
		buf_appendc(out, '\n');
	}
	buf_appends(out, "\"@signature-params\": ");
	buf_append(out, params, params_len);
	return 0;
}

/* A received Signature-Input member as components: identifiers checked,
 * no repeats, and params receives the @signature-params value (the
 * canonical serialisation of the parsed member, not the received text). */
static int
httpsig_received(const struct sfv_member *m, struct httpsig_comps *cs,
                 struct buf *params, char *err)
{
	if (httpsig_comps_check(cs, m->items, err) == -1)
		return -1;
	httpsig_inner_list(cs->p, cs->n, params);
	return sfv_serialize_params(&m->params, params, err);
}

int
httpsig_base(const struct http_request *req, const char *member_value,
             int absent_as_empty, struct buf *out, char *err)
{
	struct httpsig_comps cs;
	struct sfv_member m;
	struct buf params;
	char perr[ERR_MAX];
	int r = -1;

	if (sfv_parse_member(member_value, strlen(member_value), 0, &m, perr) ==
	    -1) {
		err_set(err, "bad Signature-Input member: %s", perr);
		return -1;
	}
	memset(&cs, 0, sizeof(cs));
	buf_init(&params);
	if (!m.is_inner) {
		err_set(err, "the signature input is not an inner list of "
		             "components");
		goto out;
	}
	if (httpsig_comps_texts(&cs, m.items, m.nitems, err) == -1 ||
	    httpsig_received(&m, &cs, &params, err) == -1)
		goto out;
	r = httpsig_build_base(req, cs.p, cs.n, absent_as_empty, params.data,
	                       params.len, out, err);
out:
	httpsig_comps_clear(&cs);
	buf_free(&params);
	sfv_member_free(&m);
	return r;
}

/* ---- describing a signature ---- */

/* The string parameter key of m, copied, or NULL when absent or not a
 * string. */
static char *
httpsig_param_str(const struct sfv_member *m, const char *key)
{
	const struct sfv_bare *b = sfv_params_get(&m->params, key);

	return b != NULL && b->type == SFV_STRING ? xstrdup(b->str) : NULL;
}

int
httpsig_inspect(const struct http_request *req, const char *label,
                struct httpsig_info *out, char *err)
{
	const struct sfv_member *m;
	const struct sfv_bare *b;
	struct sfv_list d;
	char perr[ERR_MAX];
	char *siv;
	struct buf t;
	size_t i;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	memset(&d, 0, sizeof(d));
	if ((siv = httpsig_field_value(req, "signature-input")) == NULL) {
		err_set(err, "the request has no Signature-Input field");
		return -1;
	}
	if (sfv_parse_dict(siv, strlen(siv), 0, &d, perr) == -1) {
		err_set(err, "Signature-Input is not a valid dictionary: %s",
		        perr);
		goto out;
	}
	if ((m = sfv_dict_get(&d, label)) == NULL || !m->is_inner) {
		err_set(err, "Signature-Input has no inner list labelled '%s'",
		        label);
		goto out;
	}
	out->label = xstrdup(label);
	out->components = xcalloc(m->nitems ? m->nitems : 1, sizeof(char *));
	for (i = 0; i < m->nitems; i++) {
		if (m->items[i].bare.type != SFV_STRING) {
			err_set(err,
			        "Signature-Input '%s': component %zu is not a "
			        "string",
			        label, i);
			goto out;
		}
		/* Written as a user names it: example-dict;key="a". */
		buf_init(&t);
		buf_appends(&t, m->items[i].bare.str);
		if (sfv_serialize_params(&m->items[i].params, &t, err) == -1) {
			buf_free(&t);
			goto out;
		}
		buf_append(&t, "", 0);
		out->components[out->ncomponents++] = buf_steal(&t);
	}
	if ((b = sfv_params_get(&m->params, "created")) != NULL &&
	    b->type == SFV_INTEGER)
		out->created = b->num;
	if ((b = sfv_params_get(&m->params, "expires")) != NULL &&
	    b->type == SFV_INTEGER)
		out->expires = b->num;
	out->nonce = httpsig_param_str(m, "nonce");
	out->keyid = httpsig_param_str(m, "keyid");
	out->alg = httpsig_param_str(m, "alg");
	out->tag = httpsig_param_str(m, "tag");
	rc = 0;
out:
	if (rc == -1)
		httpsig_info_free(out);
	sfv_list_free(&d);
	free(siv);
	return rc;
}

void
httpsig_info_free(struct httpsig_info *i)
{
	size_t k;

	for (k = 0; k < i->ncomponents; k++)
		free(i->components[k]);
	free(i->components);
	free(i->label);
	free(i->nonce);
	free(i->keyid);
	free(i->alg);
	free(i->tag);
	memset(i, 0, sizeof(*i));
}

/* ---- signing ---- */

/* Room on the stack for the covered list of any ordinary profile. */
#define HTTPSIG_SEL_STACK 16

static int
httpsig_has_body(const struct http_request *req)
{
	return req->body_len > 0;
}

/* The components this profile covers on this request, in order: the
 * profile's list, minus absent body fields when the profile says so (with
 * body_fields_if_body, content-digest and content-type describe a body:
 * they are covered when there is one and the field is there — the signer
 * adds Content-Digest itself, so only a missing Content-Type on a body is
 * left out; a verifier derives the same list from the request it got, so
 * stripping such a field does not help), plus "@query" after "@path" when
 * the profile asks for it. v has room for cs->n + 1. */
static size_t
httpsig_select(const struct httpsig_profile *p, const struct httpsig_comps *cs,
               const struct http_request *req, const struct httpsig_comp **v)
{
	const struct httpsig_comp *c;
	int query =
	    p->query_if_present && req->query != NULL && *req->query != '\0';
	size_t i, n = 0;

	for (i = 0; i < cs->n; i++) {
		c = &cs->v[i];
		if (p->body_fields_if_body && c->body_field &&
		    (!httpsig_has_body(req) ||
		     http_fields_get(&req->fields, c->name) == NULL))
			continue;
		if (query && c->kind == HTTPSIG_K_QUERY)
			continue; /* added right after @path below */
		v[n++] = c;
		if (query && c->kind == HTTPSIG_K_PATH) {
			v[n++] = &httpsig_query_comp;
			query = 0;
		}
	}
	if (query) /* no @path in the list: @query goes last */
		v[n++] = &httpsig_query_comp;
	return n;
}

/* Base64 straight into out (no temporary string). */
static void
httpsig_append_b64(struct buf *out, const unsigned char *p, size_t n,
                   int variant)
{
	size_t enc = sodium_base64_encoded_len(n, variant);

	buf_reserve(out, enc);
	sodium_bin2base64(out->data + out->len, enc, p, n, variant);
	out->len += enc - 1; /* enc counts the NUL */
}

/* Signature-Key, built as text: an sfv Dictionary of one member whose
 * only free-form parts are strings. b is scratch. */
static int
httpsig_add_sigkey(const struct httpsig_profile *p, const struct key *k,
                   struct http_request *req, const struct httpsig_sign_opts *o,
                   struct buf *b, char *err)
{
	struct sfv_bare v;

	if (p->sigkey == HTTPSIG_SIGKEY_NONE)
		return 0;
	memset(&v, 0, sizeof(v));
	v.type = SFV_STRING;
	buf_reset(b);
	buf_appends(b, p->label);
	if (p->sigkey == HTTPSIG_SIGKEY_HWK) {
		buf_appends(b, "=hwk;kty=\"OKP\";crv=\"Ed25519\";x=");
		v.str = (char *)k->x; /* only read */
	} else {
		if (o == NULL || o->sigkey_jwt == NULL) {
			err_set(err,
			        "profile %s sends Signature-Key: jwt, but "
			        "no token was given",
			        p->name ? p->name : "");
			return -1;
		}
		buf_appends(b, "=jwt;jwt=");
		v.str = (char *)o->sigkey_jwt; /* only read */
	}
	if (sfv_serialize_bare(&v, b, err) == -1)
		return -1;
	http_fields_set(&req->fields, "Signature-Key", b->data);
	return 0;
}

/* The signature parameters in the profile's order (";created=…;nonce=…"),
 * appended to out. */
static int
httpsig_sign_params(const struct httpsig_profile *p, const struct key *k,
                    const struct httpsig_sign_opts *o, struct buf *out,
                    char *err)
{
	unsigned char nb[HTTPSIG_NONCE_MAX];
	int64_t created = o && o->created ? o->created : util_now();
	enum httpsig_param w;
	struct sfv_bare v;
	unsigned seen = 0;
	size_t i, nn;

	memset(&v, 0, sizeof(v));
	for (i = 0; i < p->nparams; i++) {
		w = p->params[i];
		if ((size_t)w >= HTTPSIG_NPARAM_NAMES) {
			err_set(err, "unknown signature parameter %d", (int)w);
			return -1;
		}
		if (seen & (1u << w))
			continue; /* a parameter appears once (§4.2.3.2) */
		seen |= 1u << w;
		buf_appendc(out, ';');
		buf_appends(out, httpsig_param_names[w]);
		buf_appendc(out, '=');
		v.type = SFV_STRING;
		switch (w) {
		case HTTPSIG_PARAM_CREATED:
			v.type = SFV_INTEGER;
			v.num = created;
			break;
		case HTTPSIG_PARAM_EXPIRES:
			v.type = SFV_INTEGER;
			v.num = created + p->expires_in;
			break;
		case HTTPSIG_PARAM_NONCE:
			if (o && o->nonce) {
				v.str = (char *)o->nonce; /* only read */
				break;
			}
			/* Fresh for every signature: LumoAuth nonces are
			 * single-use, so a retry must never reuse one.
			 * base64url needs no escaping inside an sfv string. */
			nn = p->nonce_bytes ? p->nonce_bytes
			                    : HTTPSIG_NONCE_BYTES;
			if (nn > sizeof(nb))
				nn = sizeof(nb);
			randombytes_buf(nb, nn);
			buf_appendc(out, '"');
			httpsig_append_b64(
			    out, nb, nn,
			    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
			buf_appendc(out, '"');
			continue;
		case HTTPSIG_PARAM_ALG:
			v.str = (char *)(p->alg ? p->alg : "ed25519");
			break;
		case HTTPSIG_PARAM_KEYID:
			v.str = (char *)(p->keyid ? p->keyid : k->thumbprint);
			break;
		case HTTPSIG_PARAM_TAG:
			if (p->tag == NULL) {
				err_set(err, "the profile lists the tag "
				             "parameter but sets no tag");
				return -1;
			}
			v.str = p->tag;
			break;
		}
		if (sfv_serialize_bare(&v, out, err) == -1)
			return -1;
	}
	return 0;
}

int
httpsig_sign(const struct httpsig_profile *p, const struct key *k,
             struct http_request *req, const struct httpsig_sign_opts *o,
             struct buf *base_out, char *err)
{
	unsigned char sig[crypto_sign_BYTES];
	const struct httpsig_comp *selv[HTTPSIG_SEL_STACK], **sel = selv;
	const struct httpsig_comps *cs;
	struct httpsig_comps tmp;
	struct buf base, b;
	size_t n, mstart;
	int ret = -1;

	if (k == NULL || k->sk == NULL) {
		err_set(err, "cannot sign: the key has no private part");
		return -1;
	}
	if (p->label == NULL || !sfv_is_key(p->label)) {
		err_set(err,
		        "signature label '%s' is not valid (use lower-case "
		        "letters, digits, '_', '-', '.', '*')",
		        p->label ? p->label : "");
		return -1;
	}
	memset(&tmp, 0, sizeof(tmp));
	buf_init(&base);
	buf_init(&b);
	buf_reserve(&b, 256); /* every field value below fits */
	if (p->default_content_type != NULL &&
	    http_fields_get(&req->fields, "content-type") == NULL)
		http_fields_add(&req->fields, "Content-Type",
		                p->default_content_type);
	if (p->digest != DIGEST_NONE &&
	    (p->digest_always || httpsig_has_body(req))) {
		digest_field(p->digest, req->body ? (void *)req->body : "",
		             req->body_len, &b);
		http_fields_set(&req->fields, "Content-Digest", b.data);
	}
	if (httpsig_add_sigkey(p, k, req, o, &b, err) == -1)
		goto out;

	if ((cs = httpsig_profile_comps(p, &tmp, err)) == NULL)
		goto out;
	if (cs->n + 1 > HTTPSIG_SEL_STACK)
		sel = xcalloc(cs->n + 1, sizeof(*sel));
	n = httpsig_select(p, cs, req, sel);

	/* "label=(…);created=…": the member text after "label=" is also the
	 * @signature-params value, so it is made once. */
	buf_reset(&b);
	buf_appends(&b, p->label);
	buf_appendc(&b, '=');
	mstart = b.len;
	httpsig_inner_list(sel, n, &b);
	if (httpsig_sign_params(p, k, o, &b, err) == -1)
		goto out;
	if (httpsig_build_base(req, sel, n, p->absent_as_empty, b.data + mstart,
	                       b.len - mstart, &base, err) == -1)
		goto out;

	if (key_sign(k, (const unsigned char *)base.data, base.len, sig) ==
	    -1) {
		err_set(err, "the key could not sign");
		goto out;
	}

	http_fields_set(&req->fields, "Signature-Input", b.data);
	buf_reset(&b);
	buf_appends(&b, p->label);
	buf_append(&b, "=:", 2);
	httpsig_append_b64(&b, sig, sizeof(sig),
	                   p->enc == HTTPSIG_ENC_B64URL
	                       ? sodium_base64_VARIANT_URLSAFE_NO_PADDING
	                       : sodium_base64_VARIANT_ORIGINAL);
	buf_appendc(&b, ':');
	http_fields_set(&req->fields, "Signature", b.data);

	if (base_out != NULL) { /* hand the buffer over rather than copy */
		buf_free(base_out);
		*base_out = base;
		buf_init(&base);
	}
	ret = 0;
out:
	if (sel != selv)
		free(sel);
	httpsig_comps_clear(&tmp);
	buf_free(&base);
	buf_free(&b);
	return ret;
}

/* ---- verification ---- */

/* Every line of a field joined with ", " (raw values, no canonicalising:
 * these are structured fields parsed next). NULL when absent. */
static char *
httpsig_field_value(const struct http_request *req, const char *name)
{
	struct buf b;

	buf_init(&b);
	if (http_fields_join(&req->fields, name, &b) == -1) {
		buf_free(&b);
		return NULL;
	}
	buf_append(&b, "", 0);
	return buf_steal(&b);
}

static void
httpsig_labels(const struct sfv_list *d, struct buf *out)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		buf_appendf(out, "%s%s", i ? ", " : "", d->v[i].key);
}

/* created/expires must be integers; the string parameters strings. */
static int
httpsig_check_params(const struct httpsig_profile *p,
                     const struct sfv_member *sig, const char *label, char *err)
{
	const struct sfv_param *pv;
	size_t i;

	for (i = 0; i < sig->params.n; i++) {
		pv = &sig->params.v[i];
		if (strcmp(pv->key, "created") == 0 ||
		    strcmp(pv->key, "expires") == 0) {
			if (pv->value.type != SFV_INTEGER) {
				err_set(err,
				        "signature '%s': parameter %s must be "
				        "an integer",
				        label, pv->key);
				return -1;
			}
		} else if (strcmp(pv->key, "nonce") == 0 ||
		           strcmp(pv->key, "alg") == 0 ||
		           strcmp(pv->key, "keyid") == 0 ||
		           strcmp(pv->key, "tag") == 0) {
			if (pv->value.type != SFV_STRING) {
				err_set(err,
				        "signature '%s': parameter %s must be "
				        "a string",
				        label, pv->key);
				return -1;
			}
		}
	}
	for (i = 0; i < p->nparams; i++) {
		const char *name = httpsig_param_names[p->params[i]];

		/* A verifier cannot know the nonce or keyid it should see,
		 * but their absence is still a different signer. */
		if ((p->params[i] == HTTPSIG_PARAM_CREATED ||
		     p->params[i] == HTTPSIG_PARAM_NONCE ||
		     p->params[i] == HTTPSIG_PARAM_EXPIRES) &&
		    sfv_params_get(&sig->params, name) == NULL) {
			err_set(err,
			        "signature '%s' has no %s parameter, which "
			        "profile %s requires",
			        label, name, p->name ? p->name : "");
			return -1;
		}
	}
	{
		const struct sfv_bare *alg =
		    sfv_params_get(&sig->params, "alg");

		if (alg != NULL && strcmp(alg->str, "ed25519") != 0) {
			err_set(err,
			        "signature '%s' declares alg \"%s\"; only "
			        "ed25519 is supported",
			        label, alg->str);
			return -1;
		}
	}
	return 0;
}

static int
httpsig_check_time(const struct httpsig_profile *p,
                   const struct sfv_member *sig,
                   const struct httpsig_verify_opts *o, const char *label,
                   char *err)
{
	const struct sfv_bare *c = sfv_params_get(&sig->params, "created");
	const struct sfv_bare *e = sfv_params_get(&sig->params, "expires");
	int64_t now, win = p->created_window;

	if (o != NULL && o->ignore_time)
		return 0;
	now = o && o->now ? o->now : util_now();
	if (c != NULL && win > 0) {
		if (now - c->num > win) {
			err_set(err,
			        "signature '%s' is too old: created %lld is "
			        "%lld s before now (%lld); the window is "
			        "%lld s",
			        label, (long long)c->num,
			        (long long)(now - c->num), (long long)now,
			        (long long)win);
			return -1;
		}
		if (c->num - now > win) {
			err_set(err,
			        "signature '%s' is from the future: created "
			        "%lld is %lld s after now (%lld); the window "
			        "is %lld s",
			        label, (long long)c->num,
			        (long long)(c->num - now), (long long)now,
			        (long long)win);
			return -1;
		}
	}
	if (e != NULL && now > e->num) {
		err_set(err,
		        "signature '%s' expired: expires %lld is %lld s "
		        "before now (%lld)",
		        label, (long long)e->num, (long long)(now - e->num),
		        (long long)now);
		return -1;
	}
	return 0;
}

/* Is the component (serialised text) in the covered list? */
static int
httpsig_covers(const struct httpsig_comps *cs, const char *text, size_t len)
{
	size_t i;

	for (i = 0; i < cs->n; i++)
		if (cs->v[i].textlen == len &&
		    memcmp(cs->v[i].text, text, len) == 0)
			return 1;
	return 0;
}

static int
httpsig_decode_sig(const struct httpsig_profile *p, const struct sfv_bare *s,
                   unsigned char out[crypto_sign_BYTES], const char *label,
                   char *err)
{
	const char *how;
	long n;

	if (p->enc == HTTPSIG_ENC_B64URL) {
		unsigned char tmp[crypto_sign_BYTES + 3];

		how = "base64url without padding";
		n = b64_decode(s->str, strlen(s->str), B64_URL_NOPAD, tmp,
		               sizeof(tmp));
		if (n == crypto_sign_BYTES) {
			memcpy(out, tmp, crypto_sign_BYTES);
			return 0;
		}
	} else {
		/* sfv decoded it already when it was standard base64. */
		how = "standard base64";
		n = s->bytes != NULL ? (long)s->nbytes : -1;
		if (n == crypto_sign_BYTES) {
			memcpy(out, s->bytes, crypto_sign_BYTES);
			return 0;
		}
	}
	if (n < 0)
		err_set(err,
		        "signature '%s' is not valid %s (profile %s): "
		        ":%.40s%s:",
		        label, how, p->name ? p->name : "", s->str,
		        strlen(s->str) > 40 ? "…" : "");
	else
		err_set(err,
		        "signature '%s' decodes to %ld bytes; an Ed25519 "
		        "signature has 64",
		        label, n);
	return -1;
}

int
httpsig_verify(const struct httpsig_profile *p, const struct key *pub,
               const struct http_request *req,
               const struct httpsig_verify_opts *o, struct buf *base_out,
               char *err)
{
	const char *label = o && o->label ? o->label : p->label;
	unsigned char sig[crypto_sign_BYTES];
	const struct httpsig_comp *selv[HTTPSIG_SEL_STACK], **sel = selv;
	const struct sfv_member *si, *sv;
	const struct httpsig_comps *pc;
	const struct sfv_bare *keyid;
	struct httpsig_comps rc, ptmp;
	struct sfv_list sid, sigd;
	struct buf base, tmp;
	char perr[ERR_MAX];
	char *siv = NULL, *sigv = NULL, *cd = NULL;
	size_t i, n;
	int need_digest, ret = -1;

	memset(&sid, 0, sizeof(sid));
	memset(&sigd, 0, sizeof(sigd));
	memset(&rc, 0, sizeof(rc));
	memset(&ptmp, 0, sizeof(ptmp));
	buf_init(&base);
	buf_init(&tmp);
	if ((siv = httpsig_field_value(req, "signature-input")) == NULL) {
		err_set(err, "the request has no Signature-Input field");
		goto out;
	}
	if ((sigv = httpsig_field_value(req, "signature")) == NULL) {
		err_set(err, "the request has no Signature field");
		goto out;
	}
	if (sfv_parse_dict(siv, strlen(siv), 0, &sid, perr) == -1) {
		err_set(err, "Signature-Input is not a valid dictionary: %s",
		        perr);
		goto out;
	}
	/* Raw byte sequences: LumoAuth puts base64url inside :…:. */
	if (sfv_parse_dict(sigv, strlen(sigv), SFV_RAW_BYTES, &sigd, perr) ==
	    -1) {
		err_set(err, "Signature is not a valid dictionary: %s", perr);
		goto out;
	}
	if ((si = sfv_dict_get(&sid, label)) == NULL) {
		httpsig_labels(&sid, &tmp);
		err_set(err,
		        "Signature-Input has no member labelled '%s' (labels: "
		        "%s)",
		        label, tmp.len ? tmp.data : "none");
		goto out;
	}
	if (!si->is_inner) {
		err_set(err,
		        "Signature-Input member '%s' is not an inner list of "
		        "components",
		        label);
		goto out;
	}
	if ((sv = sfv_dict_get(&sigd, label)) == NULL) {
		buf_reset(&tmp);
		httpsig_labels(&sigd, &tmp);
		err_set(err,
		        "Signature has no member labelled '%s' (labels: %s)",
		        label, tmp.len ? tmp.data : "none");
		goto out;
	}
	if (sv->is_inner || sv->bare.type != SFV_BYTES) {
		err_set(err,
		        "Signature member '%s' is not a byte sequence "
		        "(:…:)",
		        label);
		goto out;
	}

	/* What the profile insists on. */
	if (httpsig_comps_texts(&rc, si->items, si->nitems, err) == -1 ||
	    (pc = httpsig_profile_comps(p, &ptmp, err)) == NULL)
		goto out;
	if (pc->n + 1 > HTTPSIG_SEL_STACK)
		sel = xcalloc(pc->n + 1, sizeof(*sel));
	n = httpsig_select(p, pc, req, sel);
	for (i = 0; i < n; i++) {
		if (!httpsig_covers(&rc, sel[i]->text, sel[i]->textlen)) {
			err_set(err,
			        "signature '%s' does not cover %s, which "
			        "profile %s requires",
			        label, sel[i]->text, p->name ? p->name : "");
			goto out;
		}
	}
	if (httpsig_check_params(p, si, label, err) == -1)
		goto out;

	/* Rebuilding the base also finds covered fields that are missing. */
	buf_reset(&tmp);
	if (httpsig_received(si, &rc, &tmp, err) == -1 ||
	    httpsig_build_base(req, rc.p, rc.n, p->absent_as_empty, tmp.data,
	                       tmp.len, &base, err) == -1)
		goto out;

	need_digest = p->digest != DIGEST_NONE &&
	              (p->digest_always || httpsig_has_body(req));
	cd = httpsig_field_value(req, "content-digest");
	if (cd == NULL && need_digest) {
		err_set(err,
		        "the request has no Content-Digest field, which "
		        "profile %s requires",
		        p->name ? p->name : "");
		goto out;
	}
	if (cd != NULL &&
	    (need_digest || httpsig_covers(&rc, "\"content-digest\"", 16)) &&
	    digest_verify(cd, req->body ? (void *)req->body : "", req->body_len,
	                  err) == -1)
		goto out;

	if (httpsig_check_time(p, si, o, label, err) == -1)
		goto out;

	if (httpsig_decode_sig(p, &sv->bare, sig, label, err) == -1)
		goto out;
	if (crypto_sign_verify_detached(sig, (const unsigned char *)base.data,
	                                base.len, pub->pk) != 0) {
		keyid = sfv_params_get(&si->params, "keyid");
		if (keyid != NULL && pub->thumbprint[0] != '\0' &&
		    strcmp(keyid->str, pub->thumbprint) != 0 &&
		    strcmp(keyid->str, pub->kid) != 0)
			err_set(err,
			        "signature '%s' does not verify with this key "
			        "(the signer names keyid \"%s\"; this key is "
			        "%s)",
			        label, keyid->str, pub->thumbprint);
		else
			err_set(err,
			        "signature '%s' does not verify: the request "
			        "differs from what was signed, or the key is "
			        "not the signer's",
			        label);
		goto out;
	}
	ret = 0;
out:
	if (base_out != NULL) {
		buf_reset(base_out);
		buf_append(base_out, base.data ? base.data : "", base.len);
	}
	if (sel != selv)
		free(sel);
	httpsig_comps_clear(&rc);
	httpsig_comps_clear(&ptmp);
	free(siv);
	free(sigv);
	free(cd);
	sfv_list_free(&sid);
	sfv_list_free(&sigd);
	buf_free(&base);
	buf_free(&tmp);
	return ret;
}
