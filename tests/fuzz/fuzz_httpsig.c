/*
 * fuzz_httpsig: httpsig_verify (and httpsig_base) on arbitrary
 * Signature-Input and Signature values. The request around them is fixed —
 * RFC 9421 B.2.6's or the LumoAuth token request, with their public keys
 * embedded below — and goes through the strict parser like any request
 * `verify` reads, so the values are what a verifier can really be handed.
 * The seeds verify; mutations walk every check on the way there.
 *
 * With bit 5 set the request is instead finalised as the proxy does it
 * (owned fields removed, Authorization set) and signed with the scenario's
 * private key (both are published test keys), and what was signed must
 * verify with the same base: signer and verifier agree on every request.
 *
 * Input: byte 0 picks the scenario and options; then lines: the
 * Signature-Input value, the Signature value, and any further raw header
 * lines (more Signature-Input lines, covered fields, Signature-Key...).
 * With bit 2 set the first line is the label to verify instead.
 */
#include <sodium.h>
#include <string.h>

#include "fuzz.h"
#include "httpsig.h"

/* RFC 9421 B.1.4 test-key-ed25519 (the RFC's own test key). */
static const unsigned char fuzz_rfc_pk[KEY_PK_BYTES] = {
    0x26, 0xb4, 0x0b, 0x8f, 0x93, 0xff, 0xf3, 0xd8, 0x97, 0x11, 0x2f,
    0x7e, 0xbc, 0x58, 0x2b, 0x23, 0x2d, 0xbd, 0x72, 0x51, 0x7d, 0x08,
    0x2f, 0xe8, 0x3c, 0xfb, 0x30, 0xdd, 0xce, 0x43, 0xd1, 0xbb};
/* The LumoAuth vector's agent key (seed 0x00..0x1f). */
static const unsigned char fuzz_lumo_pk[KEY_PK_BYTES] = {
    0x03, 0xa1, 0x07, 0xbf, 0xf3, 0xce, 0x10, 0xbe, 0x1d, 0x70, 0xdd,
    0x18, 0xe7, 0x4b, 0xc0, 0x99, 0x67, 0xe4, 0xd6, 0x30, 0x9b, 0xa5,
    0x0d, 0x5f, 0x1d, 0xdc, 0x86, 0x64, 0x12, 0x55, 0x31, 0xb8};

/* The private halves (RFC 9421 B.1.4 "d"; the LumoAuth seed 0x00..0x1f). */
static const unsigned char fuzz_rfc_seed[32] = {
    0x9f, 0x83, 0x62, 0xf8, 0x7a, 0x48, 0x4a, 0x95, 0x4e, 0x6e, 0x74,
    0x0c, 0x5b, 0x4c, 0x0e, 0x84, 0x22, 0x91, 0x39, 0xa2, 0x0a, 0xa8,
    0xab, 0x56, 0xff, 0x66, 0x58, 0x6f, 0x6a, 0x7d, 0x29, 0xc5};
static unsigned char fuzz_lumo_seed[32]; /* 0x00..0x1f, set at start */

static const char fuzz_rfc_head[] =
    "POST /foo?param=Value&Pet=dog HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "Date: Tue, 20 Apr 2021 02:07:55 GMT\r\n"
    "Content-Type: application/json\r\n"
    "Content-Digest: sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm"
    "+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:\r\n"
    "Content-Length: 18\r\n";
static const char fuzz_rfc_body[] = "{\"hello\": \"world\"}";

static const char fuzz_lumo_head[] =
    "POST /orgs/acme-corp/api/v1/aauth/agent/token HTTP/1.1\r\n"
    "Host: auth.acme.test\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 89\r\n"
    "Agent-Auth: agent_token=AGENT_TOKEN_FIXED\r\n"
    "Content-Digest: sha-256=:maoKTEBGVoe/uXlHmt4EeWj7K7xo71Ag/qIPObi3vPw=:"
    "\r\n";
static const char fuzz_lumo_body[] =
    "{\"request_type\": \"auth\", \"resource_token\": "
    "\"RESOURCE_TOKEN_FIXED\", \"scope\": \"read write\"}";

struct fuzz_scenario {
	const char *head, *body;
	int64_t created;
	struct key pub, priv;
	struct httpsig_profile profile;
};

static struct fuzz_scenario fuzz_sc[4];

/* A public key from its raw bytes, as key_load_public would fill it. */
static void
fuzz_key(struct key *k, const unsigned char pk[KEY_PK_BYTES], const char *kid)
{
	key_set_public(k, pk, kid);
}

/* The signing key for a scenario: the same public half plus sk. */
static void
fuzz_private(struct key *priv, const struct key *pub,
             const unsigned char seed[32])
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];

	*priv = *pub;
	priv->sk = malloc(crypto_sign_SECRETKEYBYTES);
	if (priv->sk == NULL)
		abort();
	crypto_sign_seed_keypair(pk, priv->sk, seed);
	if (memcmp(pk, pub->pk, sizeof(pk)) != 0)
		abort(); /* the embedded halves do not belong together */
}

static void
fuzz_profile(struct httpsig_profile *p, const char *name)
{
	char err[ERR_MAX];

	if (httpsig_profile_builtin(p, name, err) == -1) {
		fprintf(stderr, "profile %s: %s\n", name, err);
		abort();
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* B.2.6 exactly as the RFC signed it (test_httpsig.c does the
	 * same). */
	static const char *const comps[] = {"date",         "@method",
	                                    "@path",        "@authority",
	                                    "content-type", "content-length"};
	static const char *const params[] = {"created", "keyid"};
	char err[ERR_MAX];
	struct fuzz_scenario *s;
	size_t i;

	if (sodium_init() < 0)
		abort();
	s = &fuzz_sc[0];
	s->head = fuzz_rfc_head;
	s->body = fuzz_rfc_body;
	s->created = 1618884473;
	fuzz_key(&s->pub, fuzz_rfc_pk, "test-key-ed25519");
	fuzz_private(&s->priv, &s->pub, fuzz_rfc_seed);
	fuzz_profile(&s->profile, "rfc9421");
	if (httpsig_profile_set_components(&s->profile, comps, 6, err) == -1 ||
	    httpsig_profile_set_params(&s->profile, params, 2, err) == -1)
		abort();
	free(s->profile.label);
	s->profile.label = xstrdup("sig-b26");
	s->profile.keyid = xstrdup("test-key-ed25519");
	s->profile.digest = DIGEST_NONE;

	s = &fuzz_sc[1];
	s->head = fuzz_lumo_head;
	s->body = fuzz_lumo_body;
	s->created = 1750000000;
	fuzz_key(&s->pub, fuzz_lumo_pk, "key-1");
	for (i = 0; i < sizeof(fuzz_lumo_seed); i++)
		fuzz_lumo_seed[i] = (unsigned char)i;
	fuzz_private(&s->priv, &s->pub, fuzz_lumo_seed);
	fuzz_profile(&s->profile, "lumoauth");

	/* The other built-in profiles over the same two requests. */
	fuzz_sc[2] = fuzz_sc[1];
	fuzz_profile(&fuzz_sc[2].profile, "aauth-draft");
	fuzz_sc[3] = fuzz_sc[0];
	fuzz_profile(&fuzz_sc[3].profile, "rfc9421");
	return 0;
}

/* Finalise req as the proxy does for a sign rule, sign it, and check that
 * what was signed verifies over the same base. */
static void
fuzz_sign_verify(const struct fuzz_scenario *s, struct http_request *req)
{
	static const char *const owned[] = {
	    "Authorization", "Signature",  "Signature-Input",
	    "Signature-Key", "Agent-Auth", "Content-Digest"};
	struct httpsig_sign_opts so = {0};
	struct httpsig_verify_opts vo = {0};
	struct buf b1, b2;
	char err[ERR_MAX];
	size_t i;

	for (i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
		http_fields_del(&req->fields, owned[i]);
	http_fields_add(&req->fields, "Authorization", "Bearer fuzz-token");
	so.created = s->created;
	so.nonce = "AAECAwQFBgcICQoLDA0ODw";
	so.sigkey_jwt = "eyJhbGciOiJFZERTQSJ9.e30.c2ln";
	vo.now = s->created + 30;
	buf_init(&b1);
	buf_init(&b2);
	/* Refusing to sign is allowed (a covered field may be missing);
	 * signing something that does not verify is not. */
	if (httpsig_sign(&s->profile, &s->priv, req, &so, &b1, err) == 0) {
		if (httpsig_verify(&s->profile, &s->pub, req, &vo, &b2, err) !=
		    0) {
			fprintf(stderr, "signed, but does not verify: %s\n",
			        err);
			abort();
		}
		FUZZ_CHECK(b1.len == b2.len &&
		           memcmp(b1.data, b2.data, b1.len) == 0);
	}
	buf_free(&b1);
	buf_free(&b2);
}

/* Next line of the input (without its LF); NULL at the end. */
static const char *
fuzz_line(const char **p, const char *end, size_t *n)
{
	const char *s = *p, *lf;

	if (s >= end)
		return NULL;
	lf = memchr(s, '\n', (size_t)(end - s));
	*n = (size_t)((lf ? lf : end) - s);
	*p = lf ? lf + 1 : end;
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p, *end, *l;
	const struct fuzz_scenario *s;
	struct httpsig_verify_opts vo = {0};
	struct http_request req;
	struct buf text, base, label, si;
	char err[ERR_MAX];
	size_t n, i;
	int flags;

	if (size < 1)
		return 0;
	flags = data[0];
	s = &fuzz_sc[flags & 3];
	p = (const char *)data + 1;
	end = (const char *)data + size;

	buf_init(&text);
	buf_init(&label);
	buf_init(&si);
	buf_init(&base);
	buf_appends(&text, s->head);
	if ((flags & 4) && (l = fuzz_line(&p, end, &n)) != NULL)
		buf_append(&label, l, n);
	for (i = 0; (l = fuzz_line(&p, end, &n)) != NULL; i++) {
		if (i == 0) {
			buf_append(&si, l, n);
			buf_appends(&text, "Signature-Input: ");
		} else if (i == 1) {
			buf_appends(&text, "Signature: ");
		}
		buf_append(&text, l, n);
		buf_appends(&text, "\r\n");
	}
	buf_appends(&text, "\r\n");
	buf_appends(&text, s->body);

	/* Only what the strict parser lets through reaches a verifier. */
	http_request_init(&req);
	if (http1_parse_request(text.data, text.len, NULL, &req, err) == -1)
		goto out;
	http_request_set_scheme(&req, "https");
	if (flags & 0x20) {
		fuzz_sign_verify(s, &req);
		goto out;
	}
	if (flags & 8) {
		/* The base for one member value, as `verify --verbose`. */
		if (si.len > 0 && memchr(si.data, '\0', si.len) == NULL)
			(void)httpsig_base(&req, si.data, (flags & 16) != 0,
			                   &base, err);
		goto out;
	}
	vo.ignore_time = (flags & 16) != 0;
	vo.now = s->created + 30;
	if (flags & 4)
		vo.label = label.data ? label.data : "";
	if (httpsig_verify(&s->profile, &s->pub, &req, &vo, &base, err) == 0)
		FUZZ_CHECK(base.len > 0);
out:
	http_request_free(&req);
	buf_free(&text);
	buf_free(&label);
	buf_free(&si);
	buf_free(&base);
	return 0;
}
