/*
 * test_key: key loading from OpenSSL-made and LumoAuth PEM files, the JWK
 * and thumbprint against the vectors, every refusal (permissions, type,
 * public key, corrupt, missing) and the write→load round trip.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "key.h"
#include "util.h"

static char test_dir[256];

/* Copy a vector into the temp dir with the given mode; returns the path
 * (static storage per slot). */
static const char *
copy_vector(const char *rel, const char *name, mode_t mode)
{
	static char paths[16][512];
	static int slot;
	char *p = paths[slot++ % 16];
	struct buf b;
	FILE *f;

	check_read_vector(rel, &b);
	snprintf(p, 512, "%s/%s", test_dir, name);
	unlink(p);
	f = fopen(p, "w");
	if (f == NULL || fwrite(b.data, 1, b.len, f) != b.len) {
		fprintf(stderr, "cannot write %s\n", p);
		exit(1);
	}
	fclose(f);
	chmod(p, mode);
	buf_free(&b);
	return p;
}

static const char *
write_text(const char *name, const char *text, mode_t mode)
{
	static char paths[16][512];
	static int slot;
	char *p = paths[slot++ % 16];
	FILE *f;

	snprintf(p, 512, "%s/%s", test_dir, name);
	unlink(p);
	f = fopen(p, "w");
	if (f == NULL) {
		fprintf(stderr, "cannot write %s\n", p);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
	chmod(p, mode);
	return p;
}

static int
contains(const char *hay, const char *needle)
{
	return hay != NULL && strstr(hay, needle) != NULL;
}

static mode_t
file_mode(const char *path)
{
	struct stat st;

	if (stat(path, &st) == -1)
		return (mode_t)-1;
	return st.st_mode & 07777;
}

/* The LumoAuth SDK key: x, thumbprint and JWK exactly as the vectors. */
static void
test_lumoauth_key(void)
{
	const char *path =
	    copy_vector("lumoauth/agent-key.pem", "lumo.pem", 0600);
	char err[ERR_MAX] = "";
	struct key k;
	unsigned char seed[32], sig[KEY_SIG_BYTES];
	unsigned char pk[32], sk[64];
	char *jwk;
	int i;

	CHECK(key_load(&k, path, err) == 0);
	CHECK_STREQ(err, "");
	CHECK(k.sk != NULL);
	CHECK_STREQ(k.x, "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg");
	CHECK_STREQ(k.thumbprint,
	            "1IG2tMH7J2wbJZnOf8LJzQitKf7LMvoAElsuDMVM54Y");
	CHECK_STREQ(k.kid, "key-1");
	jwk = key_jwk_json(&k);
	CHECK_STREQ(jwk, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
	                 "\"A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg\","
	                 "\"use\":\"sig\",\"kid\":\"key-1\"}");
	free(jwk);

	/* The seed is 0x00..0x1f: the secret key must be what libsodium
	 * derives from it, so signatures match an independent computation. */
	for (i = 0; i < 32; i++)
		seed[i] = (unsigned char)i;
	crypto_sign_seed_keypair(pk, sk, seed);
	CHECK(memcmp(k.pk, pk, 32) == 0);
	CHECK(memcmp(k.sk, sk, 64) == 0);
	CHECK(key_sign(&k, (const unsigned char *)"abc", 3, sig) == 0);
	CHECK(crypto_sign_verify_detached(sig, (const unsigned char *)"abc", 3,
	                                  pk) == 0);
	CHECK(key_verify(&k, (const unsigned char *)"abc", 3, sig, 64) == 0);
	CHECK(key_verify(&k, (const unsigned char *)"abd", 3, sig, 64) == -1);
	CHECK(key_verify(&k, (const unsigned char *)"abc", 3, sig, 63) == -1);

	key_set_kid(&k, "agent-2025");
	jwk = key_jwk_json(&k);
	CHECK(contains(jwk, "\"kid\":\"agent-2025\""));
	free(jwk);
	key_free(&k);
	CHECK(k.sk == NULL);
	key_free(&k); /* twice is harmless */
}

/* The signed LumoAuth vector verifies with the loaded key: the whole key
 * path agrees with the SDKs, not just the encodings. */
static void
test_lumoauth_signature(void)
{
	const char *path =
	    copy_vector("lumoauth/agent-key.pem", "lumo2.pem", 0600);
	char err[ERR_MAX];
	struct buf base, sig;
	unsigned char mine[KEY_SIG_BYTES];
	struct key k;

	check_read_vector("lumoauth/token-request/signature-base.txt", &base);
	check_read_vector("lumoauth/token-request/signature.bin", &sig);
	CHECK(key_load(&k, path, err) == 0);
	CHECK(sig.len == KEY_SIG_BYTES);
	CHECK(key_verify(&k, (unsigned char *)base.data, base.len,
	                 (unsigned char *)sig.data, sig.len) == 0);
	/* Ed25519 is deterministic: signing the base gives the vector. */
	CHECK(key_sign(&k, (unsigned char *)base.data, base.len, mine) == 0);
	CHECK(memcmp(mine, sig.data, KEY_SIG_BYTES) == 0);
	key_free(&k);
	buf_free(&base);
	buf_free(&sig);
}

/* RFC 9421 B.1.4 test-key-ed25519 (OpenSSL-format PKCS#8): the public key
 * must be the raw one the vectors record. */
static void
test_rfc_key(void)
{
	const char *path =
	    copy_vector("keys/test-key-ed25519.priv.pem", "rfc.pem", 0400);
	char err[ERR_MAX];
	char hex[65];
	struct key k;

	CHECK(key_load(&k, path, err) == 0);
	sodium_bin2hex(hex, sizeof(hex), k.pk, 32);
	CHECK_STREQ(hex, "26b40b8f93fff3d897112f7ebc582b232dbd72517d082fe83cf"
	                 "b30ddce43d1bb");
	sodium_bin2hex(hex, sizeof(hex), k.sk, 32);
	CHECK_STREQ(hex, "9f8362f87a484a954e6e740c5b4c0e84229139a20aa8ab56ff6"
	                 "6586f6a7d29c5");
	key_free(&k);
}

/* A key made by `openssl genpkey -algorithm ed25519`, when the tool is
 * installed; the load must agree with OpenSSL's own view of the public key. */
static void
test_openssl_genpkey(void)
{
	char cmd[2048], path[512], pubpath[512], err[ERR_MAX];
	struct key k, pub;

	snprintf(path, sizeof(path), "%s/ossl.pem", test_dir);
	snprintf(pubpath, sizeof(pubpath), "%s/ossl.pub.pem", test_dir);
	snprintf(cmd, sizeof(cmd),
	         "openssl genpkey -algorithm ed25519 -out '%s' 2>/dev/null && "
	         "openssl pkey -in '%s' -pubout -out '%s' 2>/dev/null",
	         path, path, pubpath);
	if (system(cmd) != 0) {
		fprintf(stderr, "test_key: openssl CLI not available; "
		                "skipping the genpkey case\n");
		return;
	}
	chmod(path, 0600);
	CHECK(key_load(&k, path, err) == 0);
	CHECK(key_load_public(&pub, pubpath, err) == 0);
	CHECK(memcmp(k.pk, pub.pk, 32) == 0);
	CHECK_STREQ(k.thumbprint, pub.thumbprint);
	{
		/* From the raw bytes alone: the same x and thumbprint. */
		struct key raw;

		key_set_public(&raw, pub.pk, "kid-raw");
		CHECK_STREQ(raw.x, pub.x);
		CHECK_STREQ(raw.thumbprint, pub.thumbprint);
		CHECK_STREQ(raw.kid, "kid-raw");
		CHECK(raw.sk == NULL);
	}
	key_free(&k);
	key_free(&pub);
}

static void
test_refusals(void)
{
	char err[ERR_MAX], want[600];
	const char *path;
	struct key k;

	/* Group- or other-readable: refused, message says the fix. */
	path = copy_vector("lumoauth/agent-key.pem", "open.pem", 0644);
	CHECK(key_load(&k, path, err) == -1);
	CHECK(k.sk == NULL);
	snprintf(want, sizeof(want), "chmod 600 %s", path);
	CHECK(contains(err, want));
	CHECK(contains(err, "0644"));
	path = copy_vector("lumoauth/agent-key.pem", "group.pem", 0640);
	CHECK(key_load(&k, path, err) == -1);
	CHECK(contains(err, "chmod 600"));
	path = copy_vector("lumoauth/agent-key.pem", "world.pem", 0604);
	CHECK(key_load(&k, path, err) == -1);
	CHECK(contains(err, "group or others"));

	/* Not a regular file. */
	CHECK(key_load(&k, test_dir, err) == -1);
	CHECK(contains(err, "not a regular file"));

	/* Wrong key types are named. */
	path = copy_vector("keys/test-key-rsa-pss.priv.pem", "rsa.pem", 0600);
	CHECK(key_load(&k, path, err) == -1);
	CHECK(contains(err, "RSA"));
	CHECK(contains(err, "Ed25519"));
	path = copy_vector("keys/test-key-ecc-p256.priv.pem", "ec.pem", 0600);
	CHECK(key_load(&k, path, err) == -1);
	CHECK(contains(err, "EC"));
	CHECK(contains(err, "prime256v1"));
	path = copy_vector("keys/test-key-rsa.priv.pem", "rsa1.pem", 0600);
	CHECK(key_load(&k, path, err) == -1);
	CHECK(contains(err, "RSA"));

	/* A public key where the private one belongs. */
	path = copy_vector("lumoauth/agent-key.pub.pem", "pub.pem", 0600);
	CHECK(key_load(&k, path, err) == -1);
	CHECK(contains(err, "this is a public key; pass the private key file"));

	/* Corrupt PEM: damaged base64, truncated DER, no PEM at all. */
	path =
	    write_text("corrupt.pem",
	               "-----BEGIN PRIVATE KEY-----\n"
	               "MC4CAQAwBQYDK2VwBCIEIAAB!!!EBQYHCAkKCwwNDg8QERITFBUWFxg"
	               "ZGhscHR4f\n-----END PRIVATE KEY-----\n",
	               0600);
	CHECK(key_load(&k, path, err) == -1);
	CHECK(contains(err, "corrupt"));
	path = write_text("short.pem",
	                  "-----BEGIN PRIVATE KEY-----\n"
	                  "MC4CAQAwBQYDK2VwBCIEIAABAgMEBQYH\n"
	                  "-----END PRIVATE KEY-----\n",
	                  0600);
	CHECK(key_load(&k, path, err) == -1);
	CHECK(contains(err, "corrupt"));
	path = write_text("text.pem", "hello\n", 0600);
	CHECK(key_load(&k, path, err) == -1);
	CHECK(contains(err, "not a PEM"));
	path = write_text("empty.pem", "", 0600);
	CHECK(key_load(&k, path, err) == -1);
	CHECK(contains(err, "not a PEM"));
	path = write_text("enc.pem",
	                  "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n"
	                  "-----END ENCRYPTED PRIVATE KEY-----\n",
	                  0600);
	CHECK(key_load(&k, path, err) == -1);
	CHECK(contains(err, "encrypted"));

	/* Missing file. */
	snprintf(want, sizeof(want), "%s/does-not-exist.pem", test_dir);
	CHECK(key_load(&k, want, err) == -1);
	CHECK(contains(err, "no such key file"));
	CHECK(contains(err, "does-not-exist.pem"));
}

static void
test_load_public(void)
{
	const char *want_x = "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg";
	const char *want_tp = "1IG2tMH7J2wbJZnOf8LJzQitKf7LMvoAElsuDMVM54Y";
	char err[ERR_MAX];
	const char *path;
	struct key k;

	/* Permissions do not matter for public material. */
	path = copy_vector("lumoauth/agent-key.pub.pem", "p1.pem", 0644);
	CHECK(key_load_public(&k, path, err) == 0);
	CHECK_STREQ(k.x, want_x);
	CHECK_STREQ(k.thumbprint, want_tp);
	CHECK(k.sk == NULL);

	path = copy_vector("lumoauth/agent-key.pem", "p2.pem", 0600);
	CHECK(key_load_public(&k, path, err) == 0);
	CHECK_STREQ(k.x, want_x);
	CHECK(k.sk == NULL);

	path = copy_vector("lumoauth/agent-key.jwk.json", "p3.json", 0644);
	CHECK(key_load_public(&k, path, err) == 0);
	CHECK_STREQ(k.x, want_x);
	CHECK_STREQ(k.thumbprint, want_tp);
	CHECK_STREQ(k.kid, "key-1");

	path =
	    write_text("p4.json",
	               "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":"
	               "\"AQAB\"},{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
	               "\"A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg\","
	               "\"kid\":\"second\"}]}",
	               0644);
	CHECK(key_load_public(&k, path, err) == 0);
	CHECK_STREQ(k.thumbprint, want_tp);
	CHECK_STREQ(k.kid, "second");

	path =
	    copy_vector("keys/test-key-ed25519.pub.jwk.json", "p5.json", 0644);
	CHECK(key_load_public(&k, path, err) == 0);

	path = write_text("p6.json", "{\"keys\":[{\"kty\":\"RSA\"}]}", 0644);
	CHECK(key_load_public(&k, path, err) == -1);
	CHECK(contains(err, "no Ed25519"));
	path = write_text(
	    "p7.json", "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}",
	    0644);
	CHECK(key_load_public(&k, path, err) == -1);
	CHECK(contains(err, "\"x\""));
	path = write_text("p8.json", "{\"kty\":", 0644);
	CHECK(key_load_public(&k, path, err) == -1);
	CHECK(contains(err, "invalid JSON"));
	path = copy_vector("keys/test-key-ecc-p256.pub.pem", "p9.pem", 0644);
	CHECK(key_load_public(&k, path, err) == -1);
	CHECK(contains(err, "EC"));
	path = copy_vector("keys/test-key-ecc-p256.pub.jwk.json", "p10.json",
	                   0644);
	CHECK(key_load_public(&k, path, err) == -1);
	CHECK(contains(err, "\"EC\""));
}

/* generate → write → load gives the same key; the file is 0600 even with
 * a permissive umask; O_EXCL unless force; force fixes an existing mode. */
static void
test_write_roundtrip(void)
{
	char path[512], err[ERR_MAX];
	struct key a, b, c;
	struct buf text;
	mode_t old;
	int fd;

	snprintf(path, sizeof(path), "%s/gen.pem", test_dir);
	unlink(path);
	CHECK(key_generate(&a, err) == 0);
	CHECK(a.sk != NULL);
	CHECK(strlen(a.x) == 43);
	CHECK(strlen(a.thumbprint) == 43);
	old = umask(0);
	CHECK(key_write_pem(&a, path, 0, err) == 0);
	umask(old);
	CHECK(file_mode(path) == 0600);
	CHECK(key_load(&b, path, err) == 0);
	CHECK(memcmp(a.pk, b.pk, 32) == 0);
	CHECK(memcmp(a.sk, b.sk, 64) == 0);
	CHECK_STREQ(a.thumbprint, b.thumbprint);

	/* PEM layout: the standard label and 64-column body. */
	buf_init(&text);
	CHECK(util_read_file(path, &text, 4096, err) == 0);
	CHECK(strncmp(text.data,
	              "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2Vw",
	              42) == 0);
	CHECK(contains(text.data, "\n-----END PRIVATE KEY-----\n"));
	CHECK(text.len == 28 + 65 + 26);
	buf_free(&text);

	/* Without force an existing file is kept, untouched. */
	CHECK(key_generate(&c, err) == 0);
	CHECK(key_write_pem(&c, path, 0, err) == -1);
	CHECK(contains(err, "already exists"));
	CHECK(contains(err, "--force"));
	key_free(&b);
	CHECK(key_load(&b, path, err) == 0);
	CHECK(memcmp(a.pk, b.pk, 32) == 0);
	key_free(&b);

	/* With force it is replaced, and a loose mode is tightened. */
	chmod(path, 0644);
	CHECK(key_write_pem(&c, path, 1, err) == 0);
	CHECK(file_mode(path) == 0600);
	CHECK(key_load(&b, path, err) == 0);
	CHECK(memcmp(c.pk, b.pk, 32) == 0);
	key_free(&b);

	/* A public-only key has nothing to write. */
	CHECK(key_load_public(&b, path, err) == 0);
	CHECK(key_write_pem(&b, path, 1, err) == -1);

	/* Writing into a missing directory names the path. */
	snprintf(path, sizeof(path), "%s/no/such/dir/k.pem", test_dir);
	CHECK(key_write_pem(&a, path, 0, err) == -1);
	CHECK(contains(err, "no/such/dir"));

	/* Force never follows a symlink. */
	snprintf(path, sizeof(path), "%s/link.pem", test_dir);
	unlink(path);
	fd = symlink("gen.pem", path);
	CHECK(fd == 0);
	CHECK(key_write_pem(&a, path, 1, err) == -1);
	CHECK(contains(err, "symbolic link"));

	key_free(&a);
	key_free(&c);
}

static void
cleanup(void)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", test_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", test_dir);
}

int
main(void)
{
	const char *tmp = getenv("TMPDIR");

	if (sodium_init() < 0)
		return 1;
	snprintf(test_dir, sizeof(test_dir), "%s/test_key.XXXXXX",
	         tmp ? tmp : "/tmp");
	if (mkdtemp(test_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_lumoauth_key();
	test_lumoauth_signature();
	test_rfc_key();
	test_openssl_genpkey();
	test_refusals();
	test_load_public();
	test_write_roundtrip();
	cleanup();
	return check_done("test_key");
}
