/*
 * cli_key: `keygen` (create the agent key and print what to register) and
 * `pubkey` (print the same for an existing key). Output is labelled text
 * for people, or one JSON object with --json for scripts.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "key.h"
#include "util.h"

#define CLI_KEY_DEFAULT_OUT "agent-key.pem"

static void
cli_keygen_usage(FILE *out)
{
	fprintf(out,
	        "usage: aauth-proxy keygen [--out FILE] [--kid KID] [--force] "
	        "[--json]\n"
	        "\n"
	        "Generate an Ed25519 agent key, write it as a PKCS#8 PEM file "
	        "with mode\n"
	        "0600, and print its public JWK, a JWKS to register with the "
	        "authorization\n"
	        "server, and its RFC 7638 thumbprint.\n"
	        "\n"
	        "options:\n"
	        "  -o, --out FILE  where to write the private key "
	        "(default: ./" CLI_KEY_DEFAULT_OUT ")\n"
	        "  -k, --kid KID   the JWK kid (default: " KEY_DEFAULT_KID ")\n"
	        "  -f, --force     replace FILE if it exists (default: "
	        "refuse)\n"
	        "  -j, --json      print one JSON object {key_file, jwk, jwks, "
	        "thumbprint}\n"
	        "  -h, --help      show this help\n");
}

static void
cli_pubkey_usage(FILE *out)
{
	fprintf(out,
	        "usage: aauth-proxy pubkey --key FILE [--kid KID] [--json]\n"
	        "\n"
	        "Print the public JWK, the JWKS and the RFC 7638 thumbprint of "
	        "a key.\n"
	        "FILE may be a PKCS#8 private key (only its public half is "
	        "read), an SPKI\n"
	        "public key PEM, a JWK or a JWKS (its first Ed25519 key).\n"
	        "\n"
	        "options:\n"
	        "  -k, --key FILE  the key file (may also be given as the only "
	        "argument)\n"
	        "  -i, --kid KID   the JWK kid (default: the JWK's own kid, "
	        "else " KEY_DEFAULT_KID ")\n"
	        "  -j, --json      print one JSON object {jwk, jwks, "
	        "thumbprint}\n"
	        "  -h, --help      show this help\n");
}
static int
cli_key_check_kid(const char *cmd, const char *kid)
{
	if (kid[0] == '\0' || strlen(kid) >= sizeof(((struct key *)0)->kid)) {
		fprintf(stderr,
		        "aauth-proxy %s: --kid must be 1 to %zu characters\n",
		        cmd, sizeof(((struct key *)0)->kid) - 1);
		return -1;
	}
	return 0;
}

/* Print the JWK, JWKS and thumbprint; path is the key file for keygen. */
static int
cli_key_print(const struct key *k, const char *path, int json)
{
	json_t *jwk = NULL, *jwks = NULL, *root = NULL;
	json_error_t jerr;
	char *s = NULL, *jwk_s, *jwks_s = NULL;
	int rc = -1;

	jwk_s = key_jwk_json(k);
	if (jwk_s == NULL)
		return -1;
	jwk = json_loads(jwk_s, 0, &jerr);
	if (jwk == NULL)
		goto out;
	jwks = json_pack("{s:[O]}", "keys", jwk);
	if (jwks == NULL)
		goto out;
	if (json) {
		root = json_object();
		if (path != NULL)
			json_object_set_new(root, "key_file",
			                    json_string(path));
		json_object_set(root, "jwk", jwk);
		json_object_set(root, "jwks", jwks);
		json_object_set_new(root, "thumbprint",
		                    json_string(k->thumbprint));
		s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (s == NULL)
			goto out;
		printf("%s\n", s);
	} else {
		jwks_s = json_dumps(jwks, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (jwks_s == NULL)
			goto out;
		if (path != NULL)
			printf("Private key written to %s (mode 0600). Keep it "
			       "secret; back it up.\n\n",
			       path);
		printf("Public JWK:\n%s\n\n", jwk_s);
		printf("JWKS (register this with the authorization "
		       "server):\n%s\n\n",
		       jwks_s);
		printf("Thumbprint (RFC 7638 SHA-256, the \"jkt\"):\n%s\n",
		       k->thumbprint);
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		goto out;
	rc = 0;
out:
	free(s);
	free(jwk_s);
	free(jwks_s);
	json_decref(jwk);
	json_decref(jwks);
	json_decref(root);
	return rc;
}

int
cli_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"out", required_argument, NULL, 'o'},
	    {"kid", required_argument, NULL, 'k'},
	    {"force", no_argument, NULL, 'f'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *out = CLI_KEY_DEFAULT_OUT, *kid = NULL;
	char err[ERR_MAX];
	int c, force = 0, json = 0, rc = 1;
	struct key k;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:k:fjh", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'k':
			kid = optarg;
			break;
		case 'f':
			force = 1;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			cli_keygen_usage(stdout);
			return 0;
		default:
			return cli_badopt("keygen", c, argv, cli_keygen_usage);
		}
	}
	if (optind < argc) {
		fprintf(stderr,
		        "aauth-proxy keygen: unexpected argument '%s' (use "
		        "--out FILE)\n",
		        argv[optind]);
		return 2;
	}
	if (out[0] == '\0') {
		fprintf(stderr,
		        "aauth-proxy keygen: --out needs a file name\n");
		return 2;
	}
	if (kid != NULL && cli_key_check_kid("keygen", kid) == -1)
		return 2;
	if (key_generate(&k, err) == -1) {
		fprintf(stderr, "aauth-proxy keygen: %s\n", err);
		return 1;
	}
	if (kid != NULL)
		key_set_kid(&k, kid);
	if (key_write_pem(&k, out, force, err) == -1) {
		fprintf(stderr, "aauth-proxy keygen: %s\n", err);
		goto out;
	}
	if (cli_key_print(&k, out, json) == -1) {
		fprintf(stderr,
		        "aauth-proxy keygen: cannot write the output\n");
		goto out;
	}
	rc = 0;
out:
	key_free(&k);
	return rc;
}

int
cli_pubkey(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"kid", required_argument, NULL, 'i'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = NULL, *kid = NULL;
	char err[ERR_MAX];
	int c, json = 0, rc;
	struct key k;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":k:i:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			path = optarg;
			break;
		case 'i':
			kid = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			cli_pubkey_usage(stdout);
			return 0;
		default:
			return cli_badopt("pubkey", c, argv, cli_pubkey_usage);
		}
	}
	if (optind < argc && path == NULL)
		path = argv[optind++];
	if (optind < argc) {
		fprintf(stderr,
		        "aauth-proxy pubkey: unexpected argument '%s'\n",
		        argv[optind]);
		return 2;
	}
	if (path == NULL) {
		fprintf(stderr,
		        "aauth-proxy pubkey: --key FILE is required\n\n");
		cli_pubkey_usage(stderr);
		return 2;
	}
	if (kid != NULL && cli_key_check_kid("pubkey", kid) == -1)
		return 2;
	if (key_load_public(&k, path, err) == -1) {
		fprintf(stderr, "aauth-proxy pubkey: %s\n", err);
		return 1;
	}
	if (kid != NULL)
		key_set_kid(&k, kid);
	rc = cli_key_print(&k, NULL, json);
	if (rc == -1)
		fprintf(stderr,
		        "aauth-proxy pubkey: cannot write the output\n");
	key_free(&k);
	return rc == 0 ? 0 : 1;
}
