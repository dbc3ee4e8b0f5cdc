/*
 * cli_sign: `sign` (read an HTTP/1.1 request, sign it as the proxy would,
 * write it out) and `verify` (check a signed request against a public key).
 * Both print nothing on stdout unless they succeed.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "digest.h"
#include "http1.h"
#include "httpsig.h"
#include "key.h"
#include "util.h"

/* A request file holds one request; a body this large is a mistake. */
#define CLI_SIGN_FILE_MAX (64u << 20)

static const struct http_limits cli_sign_limits = {
    .max_head_bytes = 1u << 20,
    .max_fields = 1000,
};

/* Fields the signer owns: a client's own copies never survive signing. */
static const char *const cli_sign_owned[] = {
    "Signature",      "Signature-Input", "Signature-Key",
    "Content-Digest", "Agent-Auth",
};

static void
cli_sign_usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: aauth-proxy sign [FILE|-] --key FILE [options]\n"
	    "\n"
	    "Read one HTTP/1.1 request (absolute-form target, or origin-form "
	    "with Host)\n"
	    "from FILE or stdin, sign it with RFC 9421 HTTP Message Signatures "
	    "exactly as\n"
	    "the proxy would, and write the signed request to stdout. "
	    "Client-supplied\n"
	    "Signature, Signature-Input, Signature-Key, Content-Digest and "
	    "Agent-Auth are\n"
	    "removed first; Content-Length is set to the body.\n"
	    "\n"
	    "options:\n"
	    "  -k, --key FILE         the agent's Ed25519 private key "
	    "(PKCS#8 PEM, mode 0600)\n"
	    "  -p, --profile NAME     lumoauth (default), rfc9421 or "
	    "aauth-draft\n"
	    "      --token T          set Authorization: Bearer T (replacing "
	    "the client's)\n"
	    "      --agent-token T    set Agent-Auth: agent_token=T (not "
	    "covered)\n"
	    "      --created N        the created parameter (default: now)\n"
	    "      --nonce S          the nonce (default: fresh random)\n"
	    "      --scheme S         https (default) or http, for "
	    "origin-form targets\n"
	    "      --label L          the signature label (default: the "
	    "profile's)\n"
	    "      --components LIST  covered components, comma-separated, "
	    "e.g.\n"
	    "                         "
	    "\"@method,@authority,@path,content-type\"\n"
	    "      --params LIST      signature parameters in order: created,"
	    "expires,\n"
	    "                         nonce,alg,keyid,tag\n"
	    "      --keyid ID         the keyid parameter (default: the key's "
	    "thumbprint)\n"
	    "      --tag T            the tag parameter\n"
	    "      --expires-in N     expires = created + N seconds\n"
	    "      --digest ALG       Content-Digest: sha-256, sha-512 or "
	    "none\n"
	    "      --signature-key K  Signature-Key: hwk, jwt (with --jwt T) "
	    "or none\n"
	    "      --jwt T            the token for --signature-key jwt\n"
	    "  -v, --verbose          print the signature base to stderr\n"
	    "  -h, --help             show this help\n"
	    "\n"
	    "--keyid, --tag and --expires-in add their parameter when the "
	    "profile's list\n"
	    "lacks it (unless --params is given).\n");
}

static void
cli_verify_usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: aauth-proxy verify [FILE|-] --key PUBFILE [options]\n"
	    "\n"
	    "Verify the signature on one HTTP/1.1 request read from FILE or "
	    "stdin. Exit\n"
	    "status: 0 valid, 1 invalid (the reason on stderr), 2 usage "
	    "error.\n"
	    "\n"
	    "options:\n"
	    "  -k, --key FILE         the public key: SPKI or PKCS#8 PEM, JWK "
	    "or JWKS\n"
	    "  -p, --profile NAME     lumoauth (default), rfc9421 or "
	    "aauth-draft\n"
	    "      --label L          the signature label to check (default: "
	    "the profile's)\n"
	    "      --components LIST  components that must be covered "
	    "(default: the\n"
	    "                         profile's)\n"
	    "      --now N            the current time for the created window "
	    "(unix s)\n"
	    "      --ignore-time      skip the created/expires checks\n"
	    "      --scheme S         https (default) or http, for "
	    "origin-form targets\n"
	    "  -v, --verbose          print the signature base to stderr\n"
	    "  -h, --help             show this help\n");
}

static int
cli_sign_int(const char *cmd, const char *opt, const char *s, int64_t min,
             int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (s[0] == '\0' || *end != '\0' || errno != 0 || v < min) {
		fprintf(stderr,
		        "aauth-proxy %s: %s wants an integer >= %" PRId64
		        ", not '%s'\n",
		        cmd, opt, min, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* Values that end up in a field line or a structured-field string: only
 * visible ASCII, so nothing can inject a line or break the framing. */
static int
cli_sign_visible(const char *cmd, const char *opt, const char *s, int spaces)
{
	const unsigned char *p;

	if (s[0] == '\0') {
		fprintf(stderr, "aauth-proxy %s: %s must not be empty\n", cmd,
		        opt);
		return -1;
	}
	for (p = (const unsigned char *)s; *p; p++)
		if (*p > 0x7e || *p < 0x20 || (*p == ' ' && !spaces)) {
			fprintf(stderr,
			        "aauth-proxy %s: %s may only hold visible "
			        "ASCII characters\n",
			        cmd, opt);
			return -1;
		}
	return 0;
}

/* RFC 8941 key: lcalpha / "*", then lcalpha / DIGIT / "_" / "-" / "." /
 * "*". A label is a Dictionary key in Signature and Signature-Input. */
static int
cli_sign_label(const char *cmd, const char *l)
{
	const char *p;

	if ((l[0] < 'a' || l[0] > 'z') && l[0] != '*')
		goto bad;
	for (p = l + 1; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      strchr("_-.*", *p)))
			goto bad;
	return 0;
bad:
	fprintf(stderr,
	        "aauth-proxy %s: --label '%s' is not a structured-field key "
	        "(lowercase letters, digits, _ - . *; starts with a letter)\n",
	        cmd, l);
	return -1;
}

static int
cli_sign_scheme(const char *cmd, const char *s)
{
	if (strcmp(s, "https") == 0 || strcmp(s, "http") == 0)
		return 0;
	fprintf(stderr,
	        "aauth-proxy %s: --scheme must be https or http, not "
	        "'%s'\n",
	        cmd, s);
	return -1;
}

/* Split a comma-separated list in place; empty items are dropped, so
 * --components "" means no components. */
static size_t
cli_sign_split(char *s, const char **items, size_t max)
{
	size_t n = 0;
	char *tok, *save = NULL, *end;

	for (tok = strtok_r(s, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ' || *tok == '\t')
			tok++;
		end = tok + strlen(tok);
		while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (*tok == '\0')
			continue;
		if (n == max)
			return max + 1;
		items[n++] = tok;
	}
	return n;
}

#define CLI_SIGN_MAX_COMPONENTS 64

/* Split a comma-separated option value and hand it to a profile setter
 * (components or params), reporting errors under the option's name. */
static int
cli_sign_set_list(const char *cmd, const char *opt, struct httpsig_profile *p,
                  const char *list, size_t max,
                  int (*set)(struct httpsig_profile *, const char *const *,
                             size_t, char *))
{
	const char *items[CLI_SIGN_MAX_COMPONENTS + 1];
	char err[ERR_MAX];
	char *copy = xstrdup(list);
	size_t n;
	int rc = -1;

	n = cli_sign_split(copy, items, max);
	if (n > max) {
		fprintf(stderr,
		        "aauth-proxy %s: %s lists more than %zu items\n", cmd,
		        opt, max);
		goto out;
	}
	if (set(p, items, n, err) == -1) {
		fprintf(stderr, "aauth-proxy %s: %s: %s\n", cmd, opt, err);
		goto out;
	}
	rc = 0;
out:
	free(copy);
	return rc;
}

static int
cli_sign_set_components(const char *cmd, struct httpsig_profile *p,
                        const char *list)
{
	return cli_sign_set_list(cmd, "--components", p, list,
	                         CLI_SIGN_MAX_COMPONENTS,
	                         httpsig_profile_set_components);
}

static int
cli_sign_set_params(const char *cmd, struct httpsig_profile *p,
                    const char *list)
{
	return cli_sign_set_list(cmd, "--params", p, list, HTTPSIG_MAX_PARAMS,
	                         httpsig_profile_set_params);
}

static int
cli_sign_has_param(const struct httpsig_profile *p, enum httpsig_param which)
{
	size_t i;

	for (i = 0; i < p->nparams; i++)
		if (p->params[i] == which)
			return 1;
	return 0;
}

/* --keyid/--tag/--expires-in name a parameter the signature must carry:
 * add it to a built-in list, but contradict an explicit --params loudly. */
static int
cli_sign_need_param(const char *cmd, struct httpsig_profile *p,
                    enum httpsig_param which, const char *opt, const char *name,
                    int explicit_params)
{
	if (cli_sign_has_param(p, which))
		return 0;
	if (explicit_params) {
		fprintf(stderr,
		        "aauth-proxy %s: %s given but --params does not "
		        "list %s\n",
		        cmd, opt, name);
		return -1;
	}
	if (p->nparams == HTTPSIG_MAX_PARAMS) {
		fprintf(stderr,
		        "aauth-proxy %s: no room for the %s parameter\n", cmd,
		        name);
		return -1;
	}
	p->params[p->nparams++] = which;
	return 0;
}

static void
cli_sign_replace(char **slot, const char *value)
{
	free(*slot);
	*slot = xstrdup(value);
}

/* Read and parse the request file; scheme comes from an absolute-form
 * target, else --scheme, else https. Returns 0, 1 (failure) or 2 (usage). */
static int
cli_sign_read_request(const char *cmd, const char *path, const char *scheme,
                      struct http_request *req)
{
	char err[ERR_MAX];
	struct buf b;
	int rc = 1;

	buf_init(&b);
	if (util_read_file(path, &b, CLI_SIGN_FILE_MAX, err) == -1) {
		fprintf(stderr, "aauth-proxy %s: %s\n", cmd, err);
		goto out;
	}
	if (b.len == 0) {
		fprintf(stderr,
		        "aauth-proxy %s: %s: empty; expected an "
		        "HTTP/1.1 request\n",
		        cmd, strcmp(path, "-") == 0 ? "stdin" : path);
		goto out;
	}
	if (http1_parse_request(b.data, b.len, &cli_sign_limits, req, err) ==
	    -1) {
		fprintf(stderr,
		        "aauth-proxy %s: %s: not a valid HTTP/1.1 "
		        "request: %s\n",
		        cmd, strcmp(path, "-") == 0 ? "stdin" : path, err);
		goto out;
	}
	if (req->form != HTTP_TARGET_ORIGIN &&
	    req->form != HTTP_TARGET_ABSOLUTE) {
		fprintf(stderr,
		        "aauth-proxy %s: %s: a %s request has no path to sign; "
		        "use an origin-form or absolute-form target\n",
		        cmd, strcmp(path, "-") == 0 ? "stdin" : path,
		        req->method);
		goto out;
	}
	if (req->scheme != NULL) {
		if (scheme != NULL && strcmp(scheme, req->scheme) != 0) {
			fprintf(stderr,
			        "aauth-proxy %s: --scheme %s contradicts the "
			        "request target's %s scheme\n",
			        cmd, scheme, req->scheme);
			rc = 2;
			goto out;
		}
	} else {
		http_request_set_scheme(req, scheme ? scheme : "https");
	}
	rc = 0;
out:
	buf_free(&b);
	return rc;
}

/* Make the framing describe the body the file held: a decoded chunked
 * body goes out with Content-Length, and a stale length is corrected. A
 * request that had no body and no framing stays without Content-Length. */
static void
cli_sign_fix_length(struct http_request *req)
{
	char n[32];

	if (req->body_len == 0 && req->content_length < 0 && !req->chunked)
		return;
	http_fields_del(&req->fields, "Transfer-Encoding");
	snprintf(n, sizeof(n), "%zu", req->body_len);
	http_fields_set(&req->fields, "Content-Length", n);
	req->chunked = 0;
	req->content_length = (int64_t)req->body_len;
}

static void
cli_sign_print_base(const struct buf *base)
{
	if (base->len == 0)
		return;
	fprintf(stderr,
	        "--- signature base ---\n%.*s\n--- end of signature "
	        "base ---\n",
	        (int)base->len, base->data);
}

enum {
	OPT_TOKEN = 256,
	OPT_AGENT_TOKEN,
	OPT_CREATED,
	OPT_NONCE,
	OPT_SCHEME,
	OPT_LABEL,
	OPT_COMPONENTS,
	OPT_PARAMS,
	OPT_KEYID,
	OPT_TAG,
	OPT_EXPIRES_IN,
	OPT_DIGEST,
	OPT_SIGKEY,
	OPT_JWT,
	OPT_NOW,
	OPT_IGNORE_TIME,
};

struct cli_sign_args {
	const char *file, *key, *profile, *token, *agent_token, *nonce;
	const char *scheme, *label, *components, *params, *keyid, *tag;
	const char *digest, *sigkey, *jwt;
	int64_t created, expires_in;
	int has_created, has_expires_in, verbose;
};

/* Returns -1 to go on, else the exit status (0 for --help, 2 usage). */
static int
cli_sign_parse(int argc, char **argv, struct cli_sign_args *a)
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"profile", required_argument, NULL, 'p'},
	    {"token", required_argument, NULL, OPT_TOKEN},
	    {"agent-token", required_argument, NULL, OPT_AGENT_TOKEN},
	    {"created", required_argument, NULL, OPT_CREATED},
	    {"nonce", required_argument, NULL, OPT_NONCE},
	    {"scheme", required_argument, NULL, OPT_SCHEME},
	    {"label", required_argument, NULL, OPT_LABEL},
	    {"components", required_argument, NULL, OPT_COMPONENTS},
	    {"params", required_argument, NULL, OPT_PARAMS},
	    {"keyid", required_argument, NULL, OPT_KEYID},
	    {"tag", required_argument, NULL, OPT_TAG},
	    {"expires-in", required_argument, NULL, OPT_EXPIRES_IN},
	    {"digest", required_argument, NULL, OPT_DIGEST},
	    {"signature-key", required_argument, NULL, OPT_SIGKEY},
	    {"jwt", required_argument, NULL, OPT_JWT},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	memset(a, 0, sizeof(*a));
	a->profile = "lumoauth";
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":k:p:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			a->key = optarg;
			break;
		case 'p':
			a->profile = optarg;
			break;
		case OPT_TOKEN:
			a->token = optarg;
			break;
		case OPT_AGENT_TOKEN:
			a->agent_token = optarg;
			break;
		case OPT_CREATED:
			if (cli_sign_int("sign", "--created", optarg, 1,
			                 &a->created) == -1)
				return 2;
			a->has_created = 1;
			break;
		case OPT_NONCE:
			a->nonce = optarg;
			break;
		case OPT_SCHEME:
			a->scheme = optarg;
			break;
		case OPT_LABEL:
			a->label = optarg;
			break;
		case OPT_COMPONENTS:
			a->components = optarg;
			break;
		case OPT_PARAMS:
			a->params = optarg;
			break;
		case OPT_KEYID:
			a->keyid = optarg;
			break;
		case OPT_TAG:
			a->tag = optarg;
			break;
		case OPT_EXPIRES_IN:
			if (cli_sign_int("sign", "--expires-in", optarg, 1,
			                 &a->expires_in) == -1)
				return 2;
			a->has_expires_in = 1;
			break;
		case OPT_DIGEST:
			a->digest = optarg;
			break;
		case OPT_SIGKEY:
			a->sigkey = optarg;
			break;
		case OPT_JWT:
			a->jwt = optarg;
			break;
		case 'v':
			a->verbose = 1;
			break;
		case 'h':
			cli_sign_usage(stdout);
			return 0;
		default:
			return cli_badopt("sign", c, argv, cli_sign_usage);
		}
	}
	if (optind < argc)
		a->file = argv[optind++];
	if (optind < argc) {
		fprintf(
		    stderr,
		    "aauth-proxy sign: unexpected argument '%s' (one request "
		    "file at a time)\n",
		    argv[optind]);
		return 2;
	}
	if (a->file == NULL)
		a->file = "-";
	if (a->key == NULL) {
		fprintf(stderr, "aauth-proxy sign: --key FILE is required\n\n");
		cli_sign_usage(stderr);
		return 2;
	}
	if ((a->token && cli_sign_visible("sign", "--token", a->token, 0)) ||
	    (a->agent_token &&
	     cli_sign_visible("sign", "--agent-token", a->agent_token, 0)) ||
	    (a->nonce && cli_sign_visible("sign", "--nonce", a->nonce, 1)) ||
	    (a->keyid && cli_sign_visible("sign", "--keyid", a->keyid, 1)) ||
	    (a->tag && cli_sign_visible("sign", "--tag", a->tag, 1)) ||
	    (a->jwt && cli_sign_visible("sign", "--jwt", a->jwt, 0)) ||
	    (a->label && cli_sign_label("sign", a->label)) ||
	    (a->scheme && cli_sign_scheme("sign", a->scheme)))
		return 2;
	return -1;
}

/* Apply the command-line overrides to the profile. Returns 0 or 2. */
static int
cli_sign_profile(const struct cli_sign_args *a, struct httpsig_profile *p)
{
	char err[ERR_MAX];
	enum digest_alg alg;

	if (httpsig_profile_builtin(p, a->profile, err) == -1) {
		fprintf(stderr, "aauth-proxy sign: --profile: %s\n", err);
		return 2;
	}
	if (a->label)
		cli_sign_replace(&p->label, a->label);
	if (a->components && cli_sign_set_components("sign", p, a->components))
		return 2;
	if (a->params && cli_sign_set_params("sign", p, a->params))
		return 2;
	if (a->keyid) {
		cli_sign_replace(&p->keyid, a->keyid);
		if (cli_sign_need_param("sign", p, HTTPSIG_PARAM_KEYID,
		                        "--keyid", "keyid", a->params != NULL))
			return 2;
	}
	if (a->tag) {
		cli_sign_replace(&p->tag, a->tag);
		if (cli_sign_need_param("sign", p, HTTPSIG_PARAM_TAG, "--tag",
		                        "tag", a->params != NULL))
			return 2;
	}
	if (a->has_expires_in) {
		p->expires_in = a->expires_in;
		if (cli_sign_need_param("sign", p, HTTPSIG_PARAM_EXPIRES,
		                        "--expires-in", "expires",
		                        a->params != NULL))
			return 2;
	}
	if (cli_sign_has_param(p, HTTPSIG_PARAM_EXPIRES) &&
	    p->expires_in <= 0) {
		fprintf(stderr, "aauth-proxy sign: the expires parameter needs "
		                "--expires-in N\n");
		return 2;
	}
	if (a->digest) {
		if (strcmp(a->digest, "none") == 0)
			alg = DIGEST_NONE;
		else if (digest_alg_parse(a->digest, &alg) == -1) {
			fprintf(stderr,
			        "aauth-proxy sign: --digest must be sha-256, "
			        "sha-512 or none, not '%s'\n",
			        a->digest);
			return 2;
		}
		p->digest = alg;
	}
	if (a->sigkey) {
		if (strcmp(a->sigkey, "hwk") == 0)
			p->sigkey = HTTPSIG_SIGKEY_HWK;
		else if (strcmp(a->sigkey, "jwt") == 0)
			p->sigkey = HTTPSIG_SIGKEY_JWT;
		else if (strcmp(a->sigkey, "none") == 0)
			p->sigkey = HTTPSIG_SIGKEY_NONE;
		else {
			fprintf(
			    stderr,
			    "aauth-proxy sign: --signature-key must be hwk, "
			    "jwt or none, not '%s'\n",
			    a->sigkey);
			return 2;
		}
	}
	if (p->sigkey == HTTPSIG_SIGKEY_JWT && a->jwt == NULL) {
		fprintf(
		    stderr,
		    "aauth-proxy sign: --signature-key jwt needs --jwt T\n");
		return 2;
	}
	if (a->jwt && p->sigkey != HTTPSIG_SIGKEY_JWT) {
		fprintf(stderr, "aauth-proxy sign: --jwt is only used with "
		                "--signature-key jwt\n");
		return 2;
	}
	return 0;
}

int
cli_sign(int argc, char **argv)
{
	struct httpsig_profile p;
	struct httpsig_sign_opts so;
	struct http_request req;
	struct cli_sign_args a;
	struct buf base, out;
	char err[ERR_MAX], auth[16384];
	struct key k;
	size_t i, n;
	int rc;

	memset(&p, 0, sizeof(p));
	memset(&k, 0, sizeof(k));
	http_request_init(&req);
	buf_init(&base);
	buf_init(&out);
	if ((rc = cli_sign_parse(argc, argv, &a)) != -1)
		return rc;
	if ((rc = cli_sign_profile(&a, &p)) != 0)
		goto out;
	rc = 1;
	if (key_load(&k, a.key, err) == -1) {
		fprintf(stderr, "aauth-proxy sign: %s\n", err);
		goto out;
	}
	if ((rc = cli_sign_read_request("sign", a.file, a.scheme, &req)) != 0)
		goto out;
	rc = 1;

	for (i = 0; i < sizeof(cli_sign_owned) / sizeof(cli_sign_owned[0]);
	     i++) {
		n = http_fields_del(&req.fields, cli_sign_owned[i]);
		if (n > 0 && a.verbose)
			fprintf(stderr,
			        "aauth-proxy sign: removed the request's own "
			        "%s\n",
			        cli_sign_owned[i]);
	}
	if (a.token) {
		if (http_fields_del(&req.fields, "Authorization") > 0 &&
		    a.verbose)
			fprintf(stderr, "aauth-proxy sign: replaced the "
			                "request's Authorization\n");
		if ((size_t)snprintf(auth, sizeof(auth), "Bearer %s",
		                     a.token) >= sizeof(auth)) {
			fprintf(stderr, "aauth-proxy sign: --token is too "
			                "long\n");
			goto out;
		}
		http_fields_add(&req.fields, "Authorization", auth);
	}
	if (a.agent_token) {
		if ((size_t)snprintf(auth, sizeof(auth), "agent_token=%s",
		                     a.agent_token) >= sizeof(auth)) {
			fprintf(stderr, "aauth-proxy sign: --agent-token is "
			                "too long\n");
			goto out;
		}
		http_fields_add(&req.fields, "Agent-Auth", auth);
	}
	cli_sign_fix_length(&req);

	memset(&so, 0, sizeof(so));
	so.created = a.has_created ? a.created : 0;
	so.nonce = a.nonce;
	so.sigkey_jwt = a.jwt;
	if (httpsig_sign(&p, &k, &req, &so, &base, err) == -1) {
		if (a.verbose)
			cli_sign_print_base(&base);
		fprintf(stderr, "aauth-proxy sign: %s\n", err);
		goto out;
	}
	if (a.verbose)
		cli_sign_print_base(&base);
	http1_write_request(&req, &out);
	if (fwrite(out.data, 1, out.len, stdout) != out.len ||
	    fflush(stdout) != 0) {
		fprintf(stderr, "aauth-proxy sign: writing to stdout: %s\n",
		        strerror(errno));
		goto out;
	}
	rc = 0;
out:
	key_free(&k);
	httpsig_profile_free(&p);
	http_request_free(&req);
	buf_free(&base);
	buf_free(&out);
	return rc;
}

int
cli_verifier_init(struct cli_verifier *v, const char *cmd, const char *profile,
                  const char *label, const char *components,
                  const char *keyfile)
{
	char err[ERR_MAX];

	memset(v, 0, sizeof(*v));
	v->label = label;
	if (label && cli_sign_label(cmd, label))
		return 2;
	if (httpsig_profile_builtin(&v->profile, profile ? profile : "lumoauth",
	                            err) == -1) {
		fprintf(stderr, "aauth-proxy %s: --profile: %s\n", cmd, err);
		return 2;
	}
	if (components && cli_sign_set_components(cmd, &v->profile, components))
		return 2;
	if (key_load_public(&v->key, keyfile, err) == -1) {
		fprintf(stderr, "aauth-proxy %s: %s\n", cmd, err);
		return 1;
	}
	return 0;
}

int
cli_verifier_check(const struct cli_verifier *v, const struct http_request *req,
                   const struct httpsig_verify_opts *o, struct buf *base,
                   char *err)
{
	struct httpsig_verify_opts vo;

	memset(&vo, 0, sizeof(vo));
	if (o != NULL)
		vo = *o;
	vo.label = v->label;
	return httpsig_verify(&v->profile, &v->key, req, &vo, base, err);
}

const char *
cli_verifier_label(const struct cli_verifier *v)
{
	return v->label ? v->label : v->profile.label;
}

void
cli_verifier_free(struct cli_verifier *v)
{
	key_free(&v->key);
	httpsig_profile_free(&v->profile);
}

int
cli_verify(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"profile", required_argument, NULL, 'p'},
	    {"label", required_argument, NULL, OPT_LABEL},
	    {"components", required_argument, NULL, OPT_COMPONENTS},
	    {"now", required_argument, NULL, OPT_NOW},
	    {"ignore-time", no_argument, NULL, OPT_IGNORE_TIME},
	    {"scheme", required_argument, NULL, OPT_SCHEME},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *file = NULL, *keyfile = NULL, *profile = "lumoauth";
	const char *label = NULL, *scheme = NULL, *components = NULL;
	struct httpsig_verify_opts vo;
	struct cli_verifier v;
	struct http_request req;
	char err[ERR_MAX];
	struct buf base;
	int c, verbose = 0, rc;

	memset(&vo, 0, sizeof(vo));
	memset(&v, 0, sizeof(v));
	http_request_init(&req);
	buf_init(&base);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":k:p:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			keyfile = optarg;
			break;
		case 'p':
			profile = optarg;
			break;
		case OPT_LABEL:
			label = optarg;
			break;
		case OPT_COMPONENTS:
			components = optarg;
			break;
		case OPT_NOW:
			if (cli_sign_int("verify", "--now", optarg, 1,
			                 &vo.now) == -1)
				return 2;
			break;
		case OPT_IGNORE_TIME:
			vo.ignore_time = 1;
			break;
		case OPT_SCHEME:
			scheme = optarg;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			cli_verify_usage(stdout);
			return 0;
		default:
			return cli_badopt("verify", c, argv, cli_verify_usage);
		}
	}
	if (optind < argc)
		file = argv[optind++];
	if (optind < argc) {
		fprintf(stderr,
		        "aauth-proxy verify: unexpected argument '%s' (one "
		        "request file at a time)\n",
		        argv[optind]);
		return 2;
	}
	if (file == NULL)
		file = "-";
	if (keyfile == NULL) {
		fprintf(stderr,
		        "aauth-proxy verify: --key FILE is required\n\n");
		cli_verify_usage(stderr);
		return 2;
	}
	if (scheme && cli_sign_scheme("verify", scheme))
		return 2;
	if ((rc = cli_verifier_init(&v, "verify", profile, label, components,
	                            keyfile)) != 0)
		goto out;
	if ((rc = cli_sign_read_request("verify", file, scheme, &req)) != 0)
		goto out;
	rc = 1;
	if (cli_verifier_check(&v, &req, &vo, &base, err) == -1) {
		if (verbose)
			cli_sign_print_base(&base);
		fprintf(stderr, "aauth-proxy verify: invalid: %s\n", err);
		goto out;
	}
	if (verbose)
		cli_sign_print_base(&base);
	printf("valid: signature '%s' (profile %s) verified with key %s\n",
	       cli_verifier_label(&v), v.profile.name, v.key.thumbprint);
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	cli_verifier_free(&v);
	http_request_free(&req);
	buf_free(&base);
	return rc;
}
