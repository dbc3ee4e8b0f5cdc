/*
 * key: load, generate and write the agent's Ed25519 key, and derive its JWK
 * and RFC 7638 thumbprint. OpenSSL only parses PEM; the private bytes are
 * moved at once into libsodium guarded memory and every other copy wiped.
 */
#include "key.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A PEM key file is a few hundred bytes; anything this large is not one. */
#define KEY_FILE_MAX   (64 * 1024)
#define KEY_SEED_BYTES 32

/* RFC 8410 PKCS#8 OneAsymmetricKey for Ed25519, up to the 32-byte seed. */
static const unsigned char key_pkcs8_prefix[16] = {
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
    0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};

static void
key_reset(struct key *k)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->kid, sizeof(k->kid), "%s", KEY_DEFAULT_KID);
}

/* Fill x and thumbprint from pk. The thumbprint input is the RFC 7638
 * canonical form: required members only, sorted, no whitespace. */
static void
key_derive_public(struct key *k)
{
	char canon[128];
	unsigned char hash[crypto_hash_sha256_BYTES];
	char *s;

	s = b64_encode(k->pk, KEY_PK_BYTES, B64_URL_NOPAD);
	snprintf(k->x, sizeof(k->x), "%s", s);
	free(s);
	snprintf(canon, sizeof(canon),
	         "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", k->x);
	crypto_hash_sha256(hash, (const unsigned char *)canon, strlen(canon));
	s = b64_encode(hash, sizeof(hash), B64_URL_NOPAD);
	snprintf(k->thumbprint, sizeof(k->thumbprint), "%s", s);
	free(s);
}

/* The first OpenSSL error as text, for "corrupt PEM" messages; clears the
 * queue so a later failure does not report a stale reason. */
static const char *
key_ossl_reason(char *out, size_t outlen)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(out, outlen, "no PEM key found");
	else
		ERR_error_string_n(e, out, outlen);
	ERR_clear_error();
	return out;
}

/* Never prompt on the terminal for a passphrase: encrypted keys are
 * refused with a message instead. */
static int
key_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

/* Read a key file into out (which the caller wipes). When private is set,
 * the file must be a regular file that only its owner can read. The mode
 * is checked on the opened descriptor, so the file checked is the file
 * read. */
static int
key_read_file(const char *path, int private, struct buf *out, char *err)
{
	struct stat st;
	char chunk[4096];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		if (errno == ENOENT)
			err_set(err, "%s: no such key file", path);
		else
			err_set(err, "%s: cannot open key file: %s", path,
			        strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		err_set(err, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(err, "%s: not a regular file; pass the key file itself",
		        path);
		goto fail;
	}
	if (private && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		err_set(err,
		        "%s: key file mode %04o lets group or others access "
		        "it; run `chmod 600 %s`",
		        path, (unsigned)(st.st_mode & 07777), path);
		goto fail;
	}
	if (st.st_size > KEY_FILE_MAX) {
		err_set(err, "%s: %lld bytes is too large for a key file", path,
		        (long long)st.st_size);
		goto fail;
	}
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err_set(err, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (out->len + (size_t)n > KEY_FILE_MAX) {
			err_set(err, "%s: too large for a key file", path);
			goto fail;
		}
		/* Reserve first so buf never reallocates (and strands an
		 * unwiped copy) while it holds key text. */
		if (out->cap < KEY_FILE_MAX + 1)
			buf_reserve(out, KEY_FILE_MAX);
		buf_append(out, chunk, (size_t)n);
	}
	OPENSSL_cleanse(chunk, sizeof(chunk));
	close(fd);
	buf_append(out, "", 0); /* NUL-terminated even when empty */
	return 0;
fail:
	OPENSSL_cleanse(chunk, sizeof(chunk));
	close(fd);
	return -1;
}

static void
key_wipe_buf(struct buf *b)
{
	if (b->data != NULL)
		OPENSSL_cleanse(b->data, b->cap);
	buf_free(b);
}

/* Name a non-Ed25519 key type so the user knows what they passed. */
static void
key_type_name(EVP_PKEY *pkey, char *out, size_t outlen)
{
	const char *name = EVP_PKEY_get0_type_name(pkey);
	int id = EVP_PKEY_get_base_id(pkey);
	char group[64];
	size_t glen = 0;

	if (name == NULL)
		name = OBJ_nid2sn(id);
	if (name == NULL)
		name = "unknown";
	if (id == EVP_PKEY_EC &&
	    EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) == 1)
		snprintf(out, outlen, "%s (%s)", name, group);
	else if (id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS ||
	         id == EVP_PKEY_DSA)
		snprintf(out, outlen, "%s (%d bits)", name,
		         EVP_PKEY_get_bits(pkey));
	else
		snprintf(out, outlen, "%s", name);
}

static int
key_check_type(EVP_PKEY *pkey, const char *path, char *err)
{
	char name[96];

	if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519)
		return 0;
	key_type_name(pkey, name, sizeof(name));
	err_set(err,
	        "%s: this is an %s key; AAuth agent keys are Ed25519 "
	        "(create one with `aauth-proxy keygen`)",
	        path, name);
	return -1;
}

/* Classify PEM text before handing it to OpenSSL, so the common mistakes
 * get a message saying what to do instead of an OpenSSL error code. */
static int
key_pem_precheck(const struct buf *b, const char *path, int private, char *err)
{
	if (strstr(b->data, "-----BEGIN ") == NULL) {
		err_set(err,
		        "%s: not a PEM key file (no -----BEGIN line); expected "
		        "%s",
		        path,
		        private
		            ? "a PKCS#8 PEM private key"
		            : "a PEM public or private key, a JWK or a JWKS");
		return -1;
	}
	if (strstr(b->data, "-----BEGIN ENCRYPTED PRIVATE KEY-----") != NULL) {
		err_set(err,
		        "%s: the key is passphrase-encrypted; store it "
		        "unencrypted with mode 0600 (`openssl pkey -in %s -out "
		        "NEW.pem`)",
		        path, path);
		return -1;
	}
	if (private && strstr(b->data, "PRIVATE KEY-----") == NULL &&
	    strstr(b->data, "-----BEGIN PUBLIC KEY-----") != NULL) {
		err_set(err,
		        "%s: this is a public key; pass the private key file",
		        path);
		return -1;
	}
	if (strstr(b->data, "-----BEGIN CERTIFICATE-----") != NULL &&
	    strstr(b->data, "KEY-----") == NULL) {
		err_set(err, "%s: this is a certificate, not a key", path);
		return -1;
	}
	return 0;
}

static EVP_PKEY *
key_parse_private_pem(const struct buf *b, const char *path, char *err)
{
	char why[160];
	EVP_PKEY *pkey;
	BIO *bio;

	ERR_clear_error();
	bio = BIO_new_mem_buf(b->data, (int)b->len);
	if (bio == NULL) {
		err_set(err, "%s: out of memory", path);
		return NULL;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, key_no_passphrase, NULL);
	BIO_free(bio);
	if (pkey == NULL)
		err_set(err, "%s: corrupt or unsupported PEM private key (%s)",
		        path, key_ossl_reason(why, sizeof(why)));
	return pkey;
}

int
key_load(struct key *k, const char *path, char *err)
{
	unsigned char seed[KEY_SEED_BYTES];
	size_t seedlen = sizeof(seed);
	EVP_PKEY *pkey = NULL;
	struct buf b;

	key_reset(k);
	buf_init(&b);
	if (sodium_init() < 0) {
		err_set(err, "libsodium failed to initialise");
		return -1;
	}
	if (key_read_file(path, 1, &b, err) == -1)
		goto fail;
	if (key_pem_precheck(&b, path, 1, err) == -1)
		goto fail;
	if ((pkey = key_parse_private_pem(&b, path, err)) == NULL)
		goto fail;
	if (key_check_type(pkey, path, err) == -1)
		goto fail;
	if (EVP_PKEY_get_raw_private_key(pkey, seed, &seedlen) != 1 ||
	    seedlen != KEY_SEED_BYTES) {
		err_set(err, "%s: cannot extract the Ed25519 private key",
		        path);
		goto fail;
	}
	k->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
	if (k->sk == NULL) {
		err_set(err, "%s: cannot allocate locked memory for the key",
		        path);
		goto fail;
	}
	crypto_sign_seed_keypair(k->pk, k->sk, seed);
	sodium_mprotect_readonly(k->sk);
	key_derive_public(k);
	OPENSSL_cleanse(seed, sizeof(seed));
	EVP_PKEY_free(pkey);
	key_wipe_buf(&b);
	return 0;
fail:
	OPENSSL_cleanse(seed, sizeof(seed));
	EVP_PKEY_free(pkey);
	key_wipe_buf(&b);
	key_free(k);
	return -1;
}

/* A JWK object → k (public part only). */
static int
key_from_jwk(struct key *k, json_t *jwk, const char *path, char *err)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	const char *x = json_string_value(json_object_get(jwk, "x"));
	const char *kid = json_string_value(json_object_get(jwk, "kid"));

	if (kty == NULL || strcmp(kty, "OKP") != 0 || crv == NULL ||
	    strcmp(crv, "Ed25519") != 0) {
		err_set(err,
		        "%s: the JWK is kty \"%s\" crv \"%s\"; an Ed25519 key "
		        "(kty \"OKP\", crv \"Ed25519\") is required",
		        path, kty ? kty : "(none)", crv ? crv : "(none)");
		return -1;
	}
	if (x == NULL) {
		err_set(err, "%s: the JWK has no \"x\" member", path);
		return -1;
	}
	if (b64_decode(x, strlen(x), B64_URL_NOPAD, k->pk, KEY_PK_BYTES) !=
	    KEY_PK_BYTES) {
		err_set(err,
		        "%s: the JWK \"x\" is not 32 bytes of unpadded "
		        "base64url",
		        path);
		return -1;
	}
	if (kid != NULL)
		key_set_kid(k, kid);
	key_derive_public(k);
	return 0;
}

static int
key_load_json(struct key *k, const struct buf *b, const char *path, char *err)
{
	json_error_t jerr;
	json_t *root, *keys, *jwk;
	size_t i;
	int rc = -1;

	root = json_loadb(b->data, b->len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		err_set(err, "%s:%d: invalid JSON: %s", path, jerr.line,
		        jerr.text);
		return -1;
	}
	if (!json_is_object(root)) {
		err_set(err, "%s: expected a JWK or JWKS JSON object", path);
		goto out;
	}
	keys = json_object_get(root, "keys");
	if (keys == NULL) {
		rc = key_from_jwk(k, root, path, err);
		goto out;
	}
	if (!json_is_array(keys)) {
		err_set(err, "%s: JWKS \"keys\" is not an array", path);
		goto out;
	}
	json_array_foreach(keys, i, jwk)
	{
		const char *kty =
		    json_string_value(json_object_get(jwk, "kty"));
		const char *crv =
		    json_string_value(json_object_get(jwk, "crv"));

		if (kty && crv && strcmp(kty, "OKP") == 0 &&
		    strcmp(crv, "Ed25519") == 0) {
			rc = key_from_jwk(k, jwk, path, err);
			goto out;
		}
	}
	err_set(err, "%s: the JWKS holds no Ed25519 (OKP) key", path);
out:
	json_decref(root);
	return rc;
}

int
key_load_public(struct key *k, const char *path, char *err)
{
	unsigned char pk[KEY_PK_BYTES];
	size_t pklen = sizeof(pk);
	EVP_PKEY *pkey = NULL;
	const char *p;
	char why[160];
	struct buf b;
	BIO *bio;

	key_reset(k);
	buf_init(&b);
	if (sodium_init() < 0) {
		err_set(err, "libsodium failed to initialise");
		return -1;
	}
	if (key_read_file(path, 0, &b, err) == -1)
		goto fail;
	for (p = b.data; p != NULL && *p != '\0' && strchr(" \t\r\n", *p); p++)
		;
	if (p != NULL && *p == '{') {
		if (key_load_json(k, &b, path, err) == -1)
			goto fail;
		key_wipe_buf(&b);
		return 0;
	}
	if (b.len == 0) {
		err_set(err, "%s: empty file", path);
		goto fail;
	}
	if (key_pem_precheck(&b, path, 0, err) == -1)
		goto fail;
	if (strstr(b.data, "PRIVATE KEY-----") != NULL) {
		/* A private key file: only its public half is kept. */
		if ((pkey = key_parse_private_pem(&b, path, err)) == NULL)
			goto fail;
	} else {
		ERR_clear_error();
		if ((bio = BIO_new_mem_buf(b.data, (int)b.len)) == NULL) {
			err_set(err, "%s: out of memory", path);
			goto fail;
		}
		pkey = PEM_read_bio_PUBKEY(bio, NULL, key_no_passphrase, NULL);
		BIO_free(bio);
		if (pkey == NULL) {
			err_set(
			    err,
			    "%s: corrupt or unsupported PEM public key (%s)",
			    path, key_ossl_reason(why, sizeof(why)));
			goto fail;
		}
	}
	if (key_check_type(pkey, path, err) == -1)
		goto fail;
	if (EVP_PKEY_get_raw_public_key(pkey, pk, &pklen) != 1 ||
	    pklen != KEY_PK_BYTES) {
		err_set(err, "%s: cannot extract the Ed25519 public key", path);
		goto fail;
	}
	memcpy(k->pk, pk, KEY_PK_BYTES);
	key_derive_public(k);
	EVP_PKEY_free(pkey);
	key_wipe_buf(&b);
	return 0;
fail:
	EVP_PKEY_free(pkey);
	key_wipe_buf(&b);
	key_reset(k);
	return -1;
}

int
key_generate(struct key *k, char *err)
{
	key_reset(k);
	if (sodium_init() < 0) {
		err_set(err, "libsodium failed to initialise");
		return -1;
	}
	k->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
	if (k->sk == NULL) {
		err_set(err, "cannot allocate locked memory for the key");
		return -1;
	}
	crypto_sign_keypair(k->pk, k->sk);
	sodium_mprotect_readonly(k->sk);
	key_derive_public(k);
	return 0;
}

/* Flush the directory entry too, so a crash right after keygen does not
 * leave an empty name where the key was reported written. */
static void
key_sync_dir(const char *path)
{
	char *copy = xstrdup(path);
	int fd;

	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd != -1) {
		(void)fsync(fd);
		close(fd);
	}
	free(copy);
}

static int
key_write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
key_write_pem(const struct key *k, const char *path, int force, char *err)
{
	unsigned char der[sizeof(key_pkcs8_prefix) + KEY_SEED_BYTES];
	char b64[128], pem[256];
	size_t b64len, pos, off = 0, line;
	struct stat st;
	int fd, flags;

	if (k->sk == NULL) {
		err_set(err, "no private key to write");
		return -1;
	}
	memcpy(der, key_pkcs8_prefix, sizeof(key_pkcs8_prefix));
	/* libsodium's secret key is seed || pk: the seed is the first half. */
	memcpy(der + sizeof(key_pkcs8_prefix), k->sk, KEY_SEED_BYTES);
	sodium_bin2base64(b64, sizeof(b64), der, sizeof(der),
	                  sodium_base64_VARIANT_ORIGINAL);
	OPENSSL_cleanse(der, sizeof(der));
	b64len = strlen(b64);
	off +=
	    (size_t)snprintf(pem, sizeof(pem), "-----BEGIN PRIVATE KEY-----\n");
	for (pos = 0; pos < b64len; pos += line) {
		line = b64len - pos < 64 ? b64len - pos : 64;
		memcpy(pem + off, b64 + pos, line);
		off += line;
		pem[off++] = '\n';
	}
	off += (size_t)snprintf(pem + off, sizeof(pem) - off,
	                        "-----END PRIVATE KEY-----\n");
	OPENSSL_cleanse(b64, sizeof(b64));

	/* O_NOFOLLOW: --force must not be steered through a symlink into
	 * overwriting some other file with key material. */
	flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY |
	        (force ? O_TRUNC : O_EXCL);
	fd = open(path, flags, 0600);
	if (fd == -1) {
		if (errno == EEXIST)
			err_set(err,
			        "%s already exists; refusing to overwrite it "
			        "(use --force to replace it)",
			        path);
		else if (errno == ELOOP)
			err_set(err,
			        "%s is a symbolic link; refusing to write "
			        "a key through it",
			        path);
		else
			err_set(err, "%s: %s", path, strerror(errno));
		goto fail_wipe;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		err_set(err,
		        "%s: not a regular file; refusing to write a key "
		        "there",
		        path);
		close(fd);
		goto fail_wipe;
	}
	/* The umask may have narrowed 0600 (harmless), and an existing file
	 * keeps its old mode under O_TRUNC: set it before any key byte lands.
	 */
	if (fchmod(fd, 0600) == -1) {
		err_set(err, "%s: cannot set mode 0600: %s", path,
		        strerror(errno));
		goto fail_close;
	}
	if (key_write_all(fd, pem, off) == -1 || fsync(fd) == -1) {
		err_set(err, "%s: write failed: %s", path, strerror(errno));
		goto fail_close;
	}
	if (close(fd) == -1) {
		err_set(err, "%s: write failed: %s", path, strerror(errno));
		unlink(path);
		goto fail_wipe;
	}
	key_sync_dir(path);
	OPENSSL_cleanse(pem, sizeof(pem));
	return 0;
fail_close:
	close(fd);
	/* Leave no half-written key behind. */
	unlink(path);
fail_wipe:
	OPENSSL_cleanse(pem, sizeof(pem));
	return -1;
}

void
key_set_kid(struct key *k, const char *kid)
{
	snprintf(k->kid, sizeof(k->kid), "%s", kid);
}

char *
key_jwk_json(const struct key *k)
{
	json_t *o;
	char *s;

	o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "OKP", "crv",
	              "Ed25519", "x", k->x, "use", "sig", "kid", k->kid);
	if (o == NULL)
		return NULL;
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

int
key_sign(const struct key *k, const unsigned char *msg, size_t len,
         unsigned char sig[KEY_SIG_BYTES])
{
	if (k->sk == NULL)
		return -1;
	return crypto_sign_detached(sig, NULL, msg, len, k->sk) == 0 ? 0 : -1;
}

int
key_verify(const struct key *k, const unsigned char *msg, size_t len,
           const unsigned char *sig, size_t siglen)
{
	if (siglen != KEY_SIG_BYTES)
		return -1;
	return crypto_sign_verify_detached(sig, msg, len, k->pk) == 0 ? 0 : -1;
}

void
key_free(struct key *k)
{
	if (k->sk != NULL)
		sodium_free(k->sk); /* makes it writable, wipes, unmaps */
	k->sk = NULL;
}

void
key_set_public(struct key *k, const unsigned char pk[KEY_PK_BYTES],
               const char *kid)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->pk, pk, KEY_PK_BYTES);
	key_derive_public(k);
	key_set_kid(k, kid);
}
