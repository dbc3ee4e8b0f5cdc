/*
 * digest: RFC 9530 Content-Digest. Hashing is OpenSSL EVP (SHA-256/512),
 * fed chunk by chunk; the field value is an RFC 8941 Dictionary built and
 * parsed through sfv.
 */
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "sfv.h"

struct digest_ctx {
	enum digest_alg alg;
	EVP_MD_CTX *md;
};

static const struct {
	enum digest_alg alg;
	const char *name;
} digest_names[] = {
    {DIGEST_SHA256, "sha-256"},
    {DIGEST_SHA512, "sha-512"},
};

#define DIGEST_NNAMES (sizeof(digest_names) / sizeof(digest_names[0]))

int
digest_alg_parse(const char *name, enum digest_alg *out)
{
	size_t i;

	if (strcmp(name, "none") == 0) {
		*out = DIGEST_NONE;
		return 0;
	}
	for (i = 0; i < DIGEST_NNAMES; i++) {
		if (strcmp(name, digest_names[i].name) == 0) {
			*out = digest_names[i].alg;
			return 0;
		}
	}
	return -1;
}

const char *
digest_alg_name(enum digest_alg alg)
{
	size_t i;

	for (i = 0; i < DIGEST_NNAMES; i++)
		if (digest_names[i].alg == alg)
			return digest_names[i].name;
	return "none";
}

/* OpenSSL 3 resolves EVP_sha256() through its provider tables (a locked
 * hash look-up) on every EVP_DigestInit; on a signed GET that look-up cost
 * more than hashing the body. Fetch each algorithm once per process. */
static EVP_MD *digest_fetched[2];
static pthread_once_t digest_once = PTHREAD_ONCE_INIT;

static void
digest_fetch(void)
{
	digest_fetched[0] = EVP_MD_fetch(NULL, "SHA2-256", NULL);
	digest_fetched[1] = EVP_MD_fetch(NULL, "SHA2-512", NULL);
}

static const EVP_MD *
digest_md(enum digest_alg alg)
{
	pthread_once(&digest_once, digest_fetch);
	switch (alg) {
	case DIGEST_SHA256:
		return digest_fetched[0] ? digest_fetched[0] : EVP_sha256();
	case DIGEST_SHA512:
		return digest_fetched[1] ? digest_fetched[1] : EVP_sha512();
	case DIGEST_NONE:
		break;
	}
	return NULL;
}

struct digest_ctx *
digest_new(enum digest_alg alg)
{
	struct digest_ctx *d;
	const EVP_MD *md = digest_md(alg);

	if (md == NULL)
		return NULL;
	d = xcalloc(1, sizeof(*d));
	d->alg = alg;
	if ((d->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(d->md, md, NULL) != 1) {
		/* Only an allocation failure inside OpenSSL gets here. */
		EVP_MD_CTX_free(d->md);
		free(d);
		return NULL;
	}
	return d;
}

void
digest_update(struct digest_ctx *d, const void *p, size_t n)
{
	if (n > 0)
		EVP_DigestUpdate(d->md, p, n);
}

/* Raw hash bytes; returns their length. */
static unsigned int
digest_finish(struct digest_ctx *d, unsigned char out[EVP_MAX_MD_SIZE])
{
	unsigned int n = 0;

	EVP_DigestFinal_ex(d->md, out, &n);
	EVP_MD_CTX_free(d->md);
	free(d);
	return n;
}

/* "<alg>=:<base64>:" appended to out, encoded in place (no temporary). */
static void
digest_format(enum digest_alg alg, const unsigned char *h, unsigned int n,
              struct buf *out)
{
	const char *name = digest_alg_name(alg);
	size_t enc =
	    sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);

	buf_reserve(out, strlen(name) + 3 + enc);
	buf_appends(out, name);
	buf_append(out, "=:", 2);
	sodium_bin2base64(out->data + out->len, enc, h, n,
	                  sodium_base64_VARIANT_ORIGINAL);
	out->len += enc - 1; /* enc counts the NUL */
	buf_appendc(out, ':');
}

void
digest_final(struct digest_ctx *d, struct buf *out)
{
	unsigned char h[EVP_MAX_MD_SIZE];
	enum digest_alg alg = d->alg;
	unsigned int n = digest_finish(d, h);

	digest_format(alg, h, n, out);
}

void
digest_field(enum digest_alg alg, const void *body, size_t len, struct buf *out)
{
	unsigned char h[EVP_MAX_MD_SIZE];
	const EVP_MD *md = digest_md(alg);
	unsigned int n = 0;

	/* One call instead of new/update/final: no digest_ctx to allocate. */
	if (md == NULL || EVP_Digest(body, len, h, &n, md, NULL) != 1)
		return;
	digest_format(alg, h, n, out);
}

int
digest_verify(const char *field_value, const void *body, size_t len, char *err)
{
	unsigned char h[EVP_MAX_MD_SIZE];
	struct sfv_list dict;
	const struct sfv_member *m;
	struct digest_ctx *d;
	enum digest_alg alg;
	char perr[ERR_MAX];
	char *want;
	unsigned int n;
	size_t i, known = 0;

	if (sfv_parse_dict(field_value, strlen(field_value), 0, &dict, perr) ==
	    -1) {
		err_set(err, "Content-Digest is not a valid dictionary: %s",
		        perr);
		return -1;
	}
	for (i = 0; i < dict.n; i++) {
		m = &dict.v[i];
		if (digest_alg_parse(m->key, &alg) == -1 || alg == DIGEST_NONE)
			continue; /* RFC 9530 §2: ignore unknown algorithms */
		if (m->is_inner || m->bare.type != SFV_BYTES) {
			err_set(err,
			        "Content-Digest member %s is not a byte "
			        "sequence",
			        m->key);
			goto fail;
		}
		known++;
		d = digest_new(alg);
		if (d == NULL) {
			err_set(err, "cannot compute %s", m->key);
			goto fail;
		}
		digest_update(d, body, len);
		n = digest_finish(d, h);
		if (m->bare.nbytes != n || memcmp(m->bare.bytes, h, n) != 0) {
			want = b64_encode(h, n, B64_STD);
			err_set(err,
			        "Content-Digest %s does not match the body "
			        "(field has :%s:, the %zu-byte body hashes to "
			        ":%s:)",
			        m->key, m->bare.str, len, want);
			free(want);
			goto fail;
		}
	}
	if (known == 0) {
		err_set(err, "Content-Digest has no supported algorithm (need "
		             "sha-256 or sha-512)");
		goto fail;
	}
	sfv_list_free(&dict);
	return 0;
fail:
	sfv_list_free(&dict);
	return -1;
}
