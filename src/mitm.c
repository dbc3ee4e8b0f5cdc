/*
 * mitm: the local CA, the leaves it mints and the host binding of
 * intercepted TLS. One SSL_CTX per loaded CA (per generation) holds the
 * session cache; each intercepted connection gets an SSL with the leaf for
 * its CONNECT host, from an LRU so a host costs one signature per week,
 * not one per connection.
 */
#include "mitm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "netaddr.h"
#include "util.h"
#include "xport.h"

/* A cached leaf is re-minted when it has less than this left. */
#define MITM_LEAF_RENEW_S (24 * 3600)

struct mitm_leaf {
	struct mitm_leaf *prev, *next; /* most recently used first */
	char host[NETADDR_HOST_MAX];
	X509 *cert;
	time_t not_after;
};

struct mitm_ca {
	X509 *cert;             /* issues the leaves */
	EVP_PKEY *key;          /* its key */
	STACK_OF(X509) * chain; /* every certificate in the file, served */
	time_t not_after;       /* no leaf outlives the CA */
	EVP_PKEY *leaf_key;     /* one P-256 key for every leaf */
	SSL_CTX *ctx;
	struct mitm_leaf *head, *tail;
	size_t nleaves;
	size_t minted;
};

/* What one intercepted connection is bound to (SSL ex_data). */
struct mitm_bind {
	char host[NETADDR_HOST_MAX];
	int port;
	char label[200];
};

static int mitm_bind_idx = -1;

/* Why OpenSSL failed, for an error string. */
static const char *
mitm_ossl_err(void)
{
	unsigned long e = ERR_get_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : "unknown OpenSSL error";
}

static time_t
mitm_asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

/* --- host binding -----------------------------------------------------------
 */

int
mitm_sni_matches(const char *host, int port, const char *sni)
{
	char name[NETADDR_HOST_MAX + 2], canon[NETADDR_HOST_MAX], err[ERR_MAX];
	const char *colon = strchr(sni, ':');
	size_t n = strlen(sni);

	if (n == 0 || n >= NETADDR_HOST_MAX)
		return 0;
	if (colon != NULL && strchr(colon + 1, ':') != NULL) {
		/* More than one colon: an IPv6 literal (never with a
		 * port: that would need brackets). */
		snprintf(name, sizeof(name), "[%s]", sni);
	} else if (colon != NULL) {
		char *end;
		long p = strtol(colon + 1, &end, 10);

		if (*end != '\0' || colon[1] == '\0' || p != port)
			return 0;
		memcpy(name, sni, (size_t)(colon - sni));
		name[colon - sni] = '\0';
	} else {
		memcpy(name, sni, n + 1);
	}
	if (netaddr_canonical_host(name, canon, err) == -1)
		return 0;
	return strcmp(canon, host) == 0;
}

/* Printable for a log line: the SNI is the client's text. */
static void
mitm_printable(const char *s, char *out, size_t len)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < len; i++)
		out[i] =
		    (s[i] > 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
	out[i] = '\0';
}

static int
mitm_sni_cb(SSL *ssl, int *alert, void *arg)
{
	const struct mitm_bind *b = SSL_get_ex_data(ssl, mitm_bind_idx);
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	char show[NETADDR_HOST_MAX];

	if (b == NULL)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	if (sni == NULL || mitm_sni_matches(b->host, b->port, sni))
		return SSL_TLSEXT_ERR_OK;
	mitm_printable(sni, show, sizeof(show));
	log_warn("TLS %s: the client's SNI \"%s\" does not name the CONNECT "
	         "authority %s:%d; handshake aborted (host binding)",
	         b->label, show, b->host, b->port);
	*alert = SSL_AD_UNRECOGNIZED_NAME;
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int
mitm_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
             const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned i = 0;

	/* Only HTTP/1.1 is parsed inside; a client offering h2 alone gets
	 * no ALPN answer and decides for itself. */
	while (i < inlen) {
		unsigned n = in[i];

		if (i + 1 + n > inlen)
			break;
		if (n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
			*out = in + i + 1;
			*outlen = 8;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

static void
mitm_bind_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
               void *argp)
{
	free(ptr);
}

/* --- leaves ---------------------------------------------------------------
 */

static int
mitm_add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
	int rc;

	if (ext == NULL)
		return -1;
	rc = X509_add_ext(x, ext, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ext);
	return rc;
}

static int
mitm_serial(X509 *x)
{
	unsigned char raw[16];
	BIGNUM *bn;
	int rc;

	randombytes_buf(raw, sizeof(raw));
	raw[0] = (unsigned char)((raw[0] & 0x7f) | 0x40); /* positive, 16 */
	bn = BN_bin2bn(raw, sizeof(raw), NULL);
	if (bn == NULL)
		return -1;
	rc = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ? 0 : -1;
	BN_free(bn);
	return rc;
}

/* A leaf for host: SAN the DNS name or IP address, days of validity,
 * serverAuth only. */
static X509 *
mitm_mint(struct mitm_ca *ca, const char *host, time_t *not_after, char *err)
{
	char bare[NETADDR_HOST_MAX], san[NETADDR_HOST_MAX + 8];
	size_t n = strlen(host);
	unsigned char a[16];
	time_t now = time(NULL), end;
	X509V3_CTX v3;
	X509 *x;

	if (host[0] == '[' && n >= 2) {
		memcpy(bare, host + 1, n - 2);
		bare[n - 2] = '\0';
	} else {
		memcpy(bare, host, n + 1);
	}
	if (inet_pton(AF_INET, bare, a) == 1 ||
	    inet_pton(AF_INET6, bare, a) == 1)
		snprintf(san, sizeof(san), "IP:%s", bare);
	else
		snprintf(san, sizeof(san), "DNS:%s", bare);
	end = now + (time_t)MITM_LEAF_DAYS * 86400;
	if (ca->not_after != 0 && end > ca->not_after)
		end = ca->not_after;
	if ((x = X509_new()) == NULL)
		goto fail;
	if (X509_set_version(x, 2) != 1 || mitm_serial(x) == -1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), end) == NULL ||
	    X509_set_pubkey(x, ca->leaf_key) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) != 1)
		goto fail;
	/* CN is at most 64 characters; the SAN is what clients check. */
	if (strlen(bare) <= 64 &&
	    X509_NAME_add_entry_by_txt(
	        X509_get_subject_name(x), "CN", MBSTRING_ASC,
	        (const unsigned char *)bare, -1, -1, 0) != 1)
		goto fail;
	X509V3_set_ctx(&v3, ca->cert, x, NULL, NULL, 0);
	if (mitm_add_ext(x, &v3, NID_subject_alt_name, san) == -1 ||
	    mitm_add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE") ==
	        -1 ||
	    mitm_add_ext(x, &v3, NID_key_usage, "critical,digitalSignature") ==
	        -1 ||
	    mitm_add_ext(x, &v3, NID_ext_key_usage, "serverAuth") == -1 ||
	    mitm_add_ext(x, &v3, NID_subject_key_identifier, "hash") == -1)
		goto fail;
	/* Only when the CA has a key identifier to point at. */
	if (X509_get0_subject_key_id(ca->cert) != NULL &&
	    mitm_add_ext(x, &v3, NID_authority_key_identifier, "keyid") == -1)
		goto fail;
	if (X509_sign(x, ca->key, EVP_sha256()) <= 0)
		goto fail;
	*not_after = end;
	return x;
fail:
	err_set(err, "cannot mint a certificate for %s: %s", host,
	        mitm_ossl_err());
	X509_free(x);
	return NULL;
}

static void
mitm_leaf_unlink(struct mitm_ca *ca, struct mitm_leaf *l)
{
	if (l->prev)
		l->prev->next = l->next;
	else
		ca->head = l->next;
	if (l->next)
		l->next->prev = l->prev;
	else
		ca->tail = l->prev;
	l->prev = l->next = NULL;
}

static void
mitm_leaf_push(struct mitm_ca *ca, struct mitm_leaf *l)
{
	l->next = ca->head;
	l->prev = NULL;
	if (ca->head)
		ca->head->prev = l;
	ca->head = l;
	if (ca->tail == NULL)
		ca->tail = l;
}

static void
mitm_leaf_free(struct mitm_leaf *l)
{
	X509_free(l->cert);
	free(l);
}

/* The leaf for host, from the cache or minted now. */
static X509 *
mitm_leaf_get(struct mitm_ca *ca, const char *host, char *err)
{
	time_t now = time(NULL);
	struct mitm_leaf *l;

	for (l = ca->head; l != NULL; l = l->next)
		if (strcmp(l->host, host) == 0)
			break;
	if (l != NULL && l->not_after - now > MITM_LEAF_RENEW_S) {
		if (l != ca->head) {
			mitm_leaf_unlink(ca, l);
			mitm_leaf_push(ca, l);
		}
		return l->cert;
	}
	if (l != NULL) { /* close to its end: a fresh one */
		mitm_leaf_unlink(ca, l);
		mitm_leaf_free(l);
		ca->nleaves--;
	}
	l = xcalloc(1, sizeof(*l));
	snprintf(l->host, sizeof(l->host), "%s", host);
	l->cert = mitm_mint(ca, host, &l->not_after, err);
	if (l->cert == NULL) {
		free(l);
		return NULL;
	}
	mitm_leaf_push(ca, l);
	ca->nleaves++;
	ca->minted++;
	if (ca->nleaves > MITM_CACHE_MAX) {
		struct mitm_leaf *old = ca->tail;

		mitm_leaf_unlink(ca, old);
		mitm_leaf_free(old);
		ca->nleaves--;
	}
	log_info("minted a TLS certificate for %s (valid %d days; %zu "
	         "host(s) cached)",
	         host, MITM_LEAF_DAYS, ca->nleaves);
	return l->cert;
}

size_t
mitm_ca_minted(const struct mitm_ca *ca)
{
	return ca->minted;
}

/* --- loading --------------------------------------------------------------
 */

static SSL_CTX *
mitm_ctx_new(char *err)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		err_set(err, "cannot create a TLS context: %s",
		        mitm_ossl_err());
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(
	    ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
	             SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Resumption (tickets and the session cache) makes a reconnect
	 * cost no signature. */
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"aauth", 5);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, 4096);
	SSL_CTX_set_tlsext_servername_callback(ctx, mitm_sni_cb);
	SSL_CTX_set_alpn_select_cb(ctx, mitm_alpn_cb, NULL);
	return ctx;
}

struct mitm_ca *
mitm_ca_load(const char *cert_file, const char *key_file, char *err)
{
	struct mitm_ca *ca = xcalloc(1, sizeof(*ca));
	struct stat st;
	BIO *bio = NULL;
	X509 *x;

	if (mitm_bind_idx == -1)
		mitm_bind_idx =
		    SSL_get_ex_new_index(0, NULL, NULL, NULL, mitm_bind_free);
	ERR_clear_error();
	if ((bio = BIO_new_file(cert_file, "r")) == NULL) {
		err_set(err, "ca.cert_file %s: %s", cert_file, strerror(errno));
		goto fail;
	}
	ca->chain = sk_X509_new_null();
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		sk_X509_push(ca->chain, x);
	ERR_clear_error(); /* the end of the file reads as an error */
	BIO_free(bio);
	bio = NULL;
	if (sk_X509_num(ca->chain) == 0) {
		err_set(err, "ca.cert_file %s: no PEM certificate in it",
		        cert_file);
		goto fail;
	}
	ca->cert = sk_X509_value(ca->chain, 0);
	X509_up_ref(ca->cert);
	if (X509_check_ca(ca->cert) < 1) {
		err_set(
		    err,
		    "ca.cert_file %s: the first certificate is not a CA "
		    "(basicConstraints CA:TRUE); make one with `aauth-proxy "
		    "ca init`",
		    cert_file);
		goto fail;
	}
	ca->not_after = mitm_asn1_time(X509_get0_notAfter(ca->cert));
	if (ca->not_after != 0 && ca->not_after <= time(NULL)) {
		err_set(err,
		        "ca.cert_file %s: the CA certificate has expired; "
		        "make a new one with `aauth-proxy ca init --force`",
		        cert_file);
		goto fail;
	}
	if (stat(key_file, &st) == -1) {
		err_set(err, "ca.key_file %s: %s", key_file, strerror(errno));
		goto fail;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		err_set(err,
		        "ca.key_file %s: mode %04o lets others read the CA key "
		        "(anyone with it can impersonate every site to this "
		        "machine); chmod 600 %s",
		        key_file, (unsigned)(st.st_mode & 07777), key_file);
		goto fail;
	}
	if ((bio = BIO_new_file(key_file, "r")) == NULL ||
	    (ca->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) ==
	        NULL) {
		err_set(err, "ca.key_file %s: not a PEM private key (%s)",
		        key_file, mitm_ossl_err());
		goto fail;
	}
	BIO_free(bio);
	bio = NULL;
	if (X509_check_private_key(ca->cert, ca->key) != 1) {
		err_set(err,
		        "ca.key_file %s does not belong to the certificate in "
		        "%s",
		        key_file, cert_file);
		goto fail;
	}
	if ((ca->leaf_key = EVP_EC_gen("P-256")) == NULL) {
		err_set(err, "cannot make a P-256 key: %s", mitm_ossl_err());
		goto fail;
	}
	if ((ca->ctx = mitm_ctx_new(err)) == NULL)
		goto fail;
	return ca;
fail:
	if (bio)
		BIO_free(bio);
	mitm_ca_free(ca);
	return NULL;
}

void
mitm_ca_free(struct mitm_ca *ca)
{
	struct mitm_leaf *l, *next;

	if (ca == NULL)
		return;
	for (l = ca->head; l != NULL; l = next) {
		next = l->next;
		mitm_leaf_free(l);
	}
	SSL_CTX_free(ca->ctx);
	EVP_PKEY_free(ca->leaf_key);
	EVP_PKEY_free(ca->key);
	X509_free(ca->cert);
	sk_X509_pop_free(ca->chain, X509_free);
	free(ca);
}

/* --- one intercepted connection -------------------------------------------
 */

struct xport *
mitm_xport_new(struct mitm_ca *ca, struct event_base *base, struct xport *lower,
               const char *host, int port, const char *label,
               unsigned handshake_ms, const struct xport_cbs *cbs, void *arg,
               char *err)
{
	struct mitm_bind *b;
	struct xport *x;
	X509 *leaf;
	SSL *ssl = NULL;
	int i;

	if ((leaf = mitm_leaf_get(ca, host, err)) == NULL)
		goto fail;
	ERR_clear_error();
	if ((ssl = SSL_new(ca->ctx)) == NULL ||
	    SSL_use_certificate(ssl, leaf) != 1 ||
	    SSL_use_PrivateKey(ssl, ca->leaf_key) != 1) {
		err_set(err, "cannot set up TLS: %s", mitm_ossl_err());
		goto fail;
	}
	for (i = 0; i < sk_X509_num(ca->chain); i++)
		SSL_add1_chain_cert(ssl, sk_X509_value(ca->chain, i));
	b = xcalloc(1, sizeof(*b));
	snprintf(b->host, sizeof(b->host), "%s", host);
	b->port = port;
	snprintf(b->label, sizeof(b->label), "%s", label);
	SSL_set_ex_data(ssl, mitm_bind_idx, b);
	SSL_set_accept_state(ssl);
	x = xport_tls_new(base, lower, ssl, handshake_ms, label, cbs, arg);
	if (x == NULL)
		err_set(err, "cannot set up the TLS transport");
	return x;
fail:
	if (ssl)
		SSL_free(ssl);
	return NULL;
}

/* --- creating and describing a CA -------------------------------------------
 */

/* Write PEM text to path through a temporary file and a rename, with
 * mode; O_EXCL on the final name unless force. */
static int
mitm_write_file(const char *path, const char *data, size_t len, mode_t mode,
                int force, char *err)
{
	char tmp[4096];
	ssize_t w;
	size_t off = 0;
	int fd;

	if (!force && access(path, F_OK) == 0) {
		err_set(err, "%s exists", path);
		return -1;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path,
	                     (long)getpid()) >= sizeof(tmp)) {
		err_set(err, "%s: path too long", path);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd == -1) {
		err_set(err, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	fchmod(fd, mode);
	while (off < len) {
		w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			err_set(err, "%s: %s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			return -1;
		}
		off += (size_t)w;
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		err_set(err, "%s: %s", tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (!force && access(path, F_OK) == 0) {
		unlink(tmp);
		err_set(err, "%s exists", path);
		return -1;
	}
	if (rename(tmp, path) == -1) {
		err_set(err, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static char *
mitm_bio_string(BIO *bio, size_t *len)
{
	char *p;
	long n = BIO_get_mem_data(bio, &p);
	char *s = xmalloc((size_t)n + 1);

	memcpy(s, p, (size_t)n);
	s[n] = '\0';
	*len = (size_t)n;
	return s;
}

int
mitm_ca_create(const char *cert_file, const char *key_file, const char *cn,
               int force, char *err)
{
	char *kpem = NULL, *cpem = NULL, why[ERR_MAX];
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	X509_NAME *name;
	X509V3_CTX v3;
	BIO *kb = NULL, *cb = NULL;
	size_t klen = 0, clen = 0;
	int rc = -1;

	if (!force &&
	    (access(cert_file, F_OK) == 0 || access(key_file, F_OK) == 0)) {
		err_set(err,
		        "%s exists; `ca init --force` replaces the CA (every "
		        "client that trusts the old one must then be given the "
		        "new one)",
		        access(cert_file, F_OK) == 0 ? cert_file : key_file);
		return -1;
	}
	ERR_clear_error();
	if ((k = EVP_EC_gen("P-256")) == NULL || (x = X509_new()) == NULL)
		goto ossl;
	name = X509_get_subject_name(x);
	if (X509_set_version(x, 2) != 1 || mitm_serial(x) == -1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x),
	                    (long)MITM_CA_DAYS * 86400) == NULL ||
	    X509_set_pubkey(x, k) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	                               (const unsigned char *)"aauth-proxy", -1,
	                               -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	                               (const unsigned char *)cn, -1, -1,
	                               0) != 1 ||
	    X509_set_issuer_name(x, name) != 1)
		goto ossl;
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if (mitm_add_ext(x, &v3, NID_basic_constraints,
	                 "critical,CA:TRUE,pathlen:0") == -1 ||
	    mitm_add_ext(x, &v3, NID_key_usage,
	                 "critical,keyCertSign,cRLSign") == -1 ||
	    mitm_add_ext(x, &v3, NID_subject_key_identifier, "hash") == -1 ||
	    X509_sign(x, k, EVP_sha256()) <= 0)
		goto ossl;
	kb = BIO_new(BIO_s_mem());
	cb = BIO_new(BIO_s_mem());
	if (kb == NULL || cb == NULL ||
	    PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_X509(cb, x) != 1)
		goto ossl;
	kpem = mitm_bio_string(kb, &klen);
	cpem = mitm_bio_string(cb, &clen);
	/* The key first: a certificate without its key is useless, a key
	 * without a certificate is simply made again. */
	if (mitm_write_file(key_file, kpem, klen, 0600, force, why) == -1 ||
	    mitm_write_file(cert_file, cpem, clen, 0644, force, why) == -1) {
		err_set(err, "%s", why);
		goto out;
	}
	rc = 0;
	goto out;
ossl:
	err_set(err, "cannot create the CA: %s", mitm_ossl_err());
out:
	if (kpem) {
		sodium_memzero(kpem, klen);
		free(kpem);
	}
	free(cpem);
	BIO_free(kb);
	BIO_free(cb);
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}

int
mitm_ca_describe(const char *cert_file, char *fingerprint, char **pem,
                 char *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	BIO *bio, *mb;
	X509 *x;
	size_t len, o;

	if ((bio = BIO_new_file(cert_file, "r")) == NULL) {
		err_set(err, "%s: %s", cert_file, strerror(errno));
		return -1;
	}
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (x == NULL) {
		err_set(err, "%s: no PEM certificate in it", cert_file);
		ERR_clear_error();
		return -1;
	}
	X509_digest(x, EVP_sha256(), md, &mdlen);
	for (i = 0, o = 0; i < mdlen && i < 32; i++)
		o += (size_t)snprintf(fingerprint + o, 96 - o, "%s%02X",
		                      i ? ":" : "", md[i]);
	mb = BIO_new(BIO_s_mem());
	if (mb == NULL || PEM_write_bio_X509(mb, x) != 1) {
		BIO_free(mb);
		X509_free(x);
		err_set(err, "cannot write PEM");
		return -1;
	}
	*pem = mitm_bio_string(mb, &len);
	BIO_free(mb);
	X509_free(x);
	return 0;
}
