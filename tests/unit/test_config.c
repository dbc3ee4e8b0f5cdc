/*
 * test_config: the configuration parser — defaults, every validation error
 * naming its field, relative paths — and the static token source.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "cli.h"
#include "config.h"
#include "route.h"
#include "token.h"

#define KEY "\"key\": {\"file\": \"/k.pem\"}"

/* Parse and expect failure whose message contains every needle. */
static void
expect_error(const char *json, const char *needle1, const char *needle2)
{
	char err[ERR_MAX] = "";
	struct config *c = config_parse(json, "t.json", err);

	CHECK(c == NULL);
	if (c != NULL) {
		fprintf(stderr, "  accepted: %s\n", json);
		config_free(c);
		return;
	}
	if (strstr(err, needle1) == NULL ||
	    (needle2 && strstr(err, needle2) == NULL)) {
		fprintf(stderr, "  error [%s] lacks [%s]/[%s]\n", err, needle1,
		        needle2 ? needle2 : "");
		CHECK(0);
	}
}

static void
test_defaults(void)
{
	char err[ERR_MAX];
	struct config *c = config_parse("{" KEY "}", "t.json", err);

	CHECK(c != NULL);
	if (c == NULL)
		return;
	CHECK(c->nlisten == 1);
	CHECK_STREQ(c->listen[0], "127.0.0.1:8787");
	CHECK(c->default_action == ROUTE_DENY);
	CHECK(c->block_private == 1);
	CHECK(c->max_body_bytes == 16 << 20);
	CHECK(c->max_head_bytes == 65536);
	CHECK(c->max_fields == 100);
	CHECK_STREQ(c->kid, "key-1");
	CHECK_STREQ(c->key_file, "/k.pem");
	CHECK_STREQ(c->access_log, "stderr");
	CHECK(c->nadmin_listen == 1);
	CHECK_STREQ(c->admin_listen[0], "127.0.0.1:8788");
	CHECK(c->drain_timeout_ms == 10000);
	CHECK(c->upstream_proxy == NULL);
	config_free(c);
}

/* Issue 10's fields: admin.listen, resources.NAME.required,
 * limits.drain_timeout_ms, upstream.proxy and proxy_auth_file. */
static void
test_operations(void)
{
	char err[ERR_MAX];
	struct config *c;

	c = config_parse(
	    "{" KEY ", \"admin\": {\"listen\": []}, "
	    "\"limits\": {\"drain_timeout_ms\": 0}, "
	    "\"upstream\": {\"proxy\": \"http://corp.example:3128\"}, "
	    "\"resources\": {\"a\": {\"token_file\": \"/t\", "
	    "\"required\": false}, \"b\": {\"token_file\": \"/t\"}}}",
	    "t.json", err);
	CHECK(c != NULL);
	if (c != NULL) {
		CHECK(c->nadmin_listen == 0);
		CHECK(c->drain_timeout_ms == 0);
		CHECK_STREQ(c->upstream_proxy, "http://corp.example:3128");
		CHECK(c->resources[0].required == 0);
		CHECK(c->resources[1].required == 1);
		config_free(c);
	}
	c = config_parse("{" KEY
	                 ", \"admin\": {\"listen\": [\"unix:/run/a.sock\", "
	                 "\"[::1]:0\"]}}",
	                 "t.json", err);
	CHECK(c != NULL && c->nadmin_listen == 2);
	config_free(c);
	expect_error("{" KEY ", \"admin\": {\"listen\": [\"0.0.0.0:8788\"]}}",
	             "admin.listen[0]", "loopback");
	expect_error("{" KEY ", \"admin\": {\"listen\": \"127.0.0.1:1\"}}",
	             "admin.listen", "array");
	expect_error("{" KEY ", \"admin\": {\"port\": 1}}", "admin.port",
	             "unknown");
	expect_error("{" KEY ", \"limits\": {\"drain_timeout_ms\": 3600001}}",
	             "limits.drain_timeout_ms", NULL);
	expect_error("{" KEY ", \"resources\": {\"a\": {\"token_file\": "
	             "\"/t\", \"required\": 1}}}",
	             "resources.a.required", "true or false");
	expect_error("{" KEY ", \"upstream\": {\"proxy\": \"socks5://h:1\"}}",
	             "upstream.proxy", "http://HOST:PORT");
	expect_error("{" KEY ", \"upstream\": {\"proxy\": \"http://u:p@h:1\"}}",
	             "upstream.proxy", "proxy_auth_file");
	expect_error("{" KEY ", \"upstream\": {\"proxy_auth_file\": \"/x\"}}",
	             "upstream.proxy_auth_file", "upstream.proxy");
}

static void
test_full(void)
{
	char err[ERR_MAX] = "";
	struct config *c = config_parse(
	    "{\"listen\": [\"127.0.0.1:9000\", \"[::1]:9001\", "
	    "\"unix:/tmp/a.sock\"], " KEY ","
	    "\"default_action\": \"pass\", \"block_private_addresses\": false,"
	    "\"resources\": {\"api\": {\"token_file\": \"/t\"},"
	    "  \"dev\": {\"token_file\": \"/t2\", \"upstream\": \"http\","
	    "            \"allow_plaintext\": true,"
	    "            \"profile\": {\"base\": \"rfc9421\", \"label\": \"s\","
	    "               \"components\": [\"@method\", \"@path\"],"
	    "               \"params\": [\"created\", \"nonce\"],"
	    "               \"digest\": \"sha-512\"}}},"
	    "\"rules\": [{\"host\": \"API.example.com\", \"action\": \"sign\","
	    "             \"resource\": \"api\"},"
	    "            {\"host\": \"*.dev.test\", \"port\": 8080, \"action\":"
	    "             \"sign\", \"resource\": \"dev\"},"
	    "            {\"host\": \"evil.test\", \"action\": \"deny\"}],"
	    "\"limits\": {\"max_body_bytes\": 1024, \"header_timeout_ms\": 50},"
	    "\"upstream\": {\"timeout_ms\": 1000},"
	    "\"log\": {\"level\": \"debug\", \"access_log\": \"off\"}}",
	    "t.json", err);

	CHECK(c != NULL);
	if (c == NULL) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK(c->nlisten == 3);
	CHECK(c->default_action == ROUTE_PASS);
	CHECK(c->block_private == 0);
	CHECK(c->nresources == 2 && c->nrules == 3);
	CHECK_STREQ(c->rules[0].host, "api.example.com");
	CHECK(c->rules[0].resource == &c->resources[0]);
	CHECK(c->rules[1].wildcard && c->rules[1].port == 8080);
	CHECK(c->resources[0].upstream_tls == 1);
	CHECK(c->resources[1].upstream_tls == 0);
	CHECK_STREQ(c->resources[0].profile.name, "lumoauth");
	CHECK_STREQ(c->resources[0].profile.label, "sig1");
	CHECK_STREQ(c->resources[1].profile.label, "s");
	CHECK(c->resources[1].profile.ncomponents == 2);
	CHECK(c->resources[1].profile.digest == DIGEST_SHA512);
	CHECK(c->max_body_bytes == 1024);
	CHECK(c->header_timeout_ms == 50);
	CHECK(c->upstream_timeout_ms == 1000);
	CHECK(c->log_level == LOG_DEBUG);
	CHECK_STREQ(c->access_log, "off");
	config_free(c);
}

static void
test_errors(void)
{
	expect_error("{", "t.json:", "invalid JSON");
	expect_error("[]", "must be a JSON object", NULL);
	expect_error("{}", "key", "required");
	expect_error("{" KEY ", \"lissen\": []}", "lissen", "unknown field");
	expect_error("{" KEY ", \"listen\": [\"0.0.0.0:8787\"]}", "listen[0]",
	             "not a loopback");
	expect_error("{" KEY ", \"listen\": [\"127.0.0.1\"]}", "listen[0]",
	             "HOST:PORT");
	expect_error("{" KEY ", \"listen\": [\"127.0.0.1:99999\"]}",
	             "listen[0]", "invalid port");
	expect_error("{" KEY ", \"listen\": [\"unix:rel.sock\"]}", "listen[0]",
	             "absolute path");
	expect_error("{" KEY ", \"default_action\": \"sign\"}",
	             "default_action", "deny or pass");
	expect_error("{" KEY ", \"default_action\": \"allow\"}",
	             "default_action", "not an action");
	expect_error("{" KEY ", \"rules\": [{\"action\": \"pass\"}]}",
	             "rules[0].host", "required");
	expect_error("{" KEY ", \"rules\": [{\"host\": \"a b\", \"action\": "
	             "\"pass\"}]}",
	             "rules[0].host", "only letters");
	expect_error("{" KEY ", \"rules\": [{\"host\": \"a\", \"action\": "
	             "\"sign\"}]}",
	             "rules[0].resource", "required");
	expect_error("{" KEY ", \"rules\": [{\"host\": \"a\", \"action\": "
	             "\"sign\", \"resource\": \"nope\"}]}",
	             "rules[0].resource", "not defined");
	expect_error("{" KEY ", \"rules\": [{\"host\": \"a\", \"port\": 0, "
	             "\"action\": \"pass\"}]}",
	             "rules[0].port", "out of range");
	expect_error("{" KEY ", \"resources\": {\"r\": {}}}",
	             "resources.r.token_file", "required");
	expect_error("{" KEY ", \"resources\": {\"r\": {\"token_file\": "
	             "\"/t\", \"upstream\": \"http\"}}}",
	             "resources.r.upstream", "allow_plaintext");
	expect_error("{" KEY ", \"resources\": {\"r\": {\"token_file\": "
	             "\"/t\", \"upstream\": \"ftp\"}}}",
	             "resources.r.upstream", "https or http");
	expect_error("{" KEY ", \"resources\": {\"r\": {\"token_file\": "
	             "\"/t\", \"profile\": \"hmac\"}}}",
	             "resources.r.profile", "hmac");
	expect_error("{" KEY ", \"resources\": {\"r\": {\"token_file\": "
	             "\"/t\", \"profile\": {\"components\": [\"@bogus\"]}}}}",
	             "resources.r.profile.components", "@bogus");
	expect_error("{" KEY ", \"resources\": {\"r\": {\"token_file\": "
	             "\"/t\", \"profile\": {\"digest\": \"md5\"}}}}",
	             "resources.r.profile.digest", "md5");
	expect_error("{" KEY ", \"limits\": {\"max_headers\": \"10\"}}",
	             "limits.max_headers", "integer");
	expect_error("{" KEY ", \"limits\": {\"max_headers\": 1}}",
	             "limits.max_headers", "out of range");
	expect_error("{" KEY ", \"log\": {\"level\": \"loud\"}}", "log.level",
	             "loud");
	expect_error("{" KEY
	             ", \"upstream\": {\"ca_file\": \"/nonexistent/ca\"}}",
	             "upstream.ca_file", "No such file");
	expect_error("{" KEY ", \"key\": {\"file\": \"/b\"}}", "duplicate",
	             NULL);
}

/* "//" comments are blanked outside strings, so line numbers in errors
 * still match the file, and "//" inside a string is data. */
static void
test_comments(void)
{
	char err[ERR_MAX];
	struct config *c = config_parse(
	    "// leading comment\n"
	    "{\"key\": {\"file\": \"/k.pem\", // trailing comment\n"
	    "  \"kid\": \"http://x//y\\\" // not a comment\"},\n"
	    "  // \"default_action\": \"pass\",\n"
	    "  \"rules\": [] // end\n}",
	    "t.json", err);

	CHECK(c != NULL);
	if (c != NULL) {
		CHECK_STREQ(c->kid, "http://x//y\" // not a comment");
		CHECK(c->default_action == ROUTE_DENY);
		config_free(c);
	}
	expect_error("// one\n// two\n{" KEY ",\n  \"rules\": [,]}",
	             "t.json:4:", "invalid JSON");
}

/* A typo gets the field it is closest to; a name far from every field
 * gets no guess. */
static void
test_did_you_mean(void)
{
	expect_error("{" KEY ", \"defualt_action\": \"deny\"}",
	             "defualt_action: unknown field",
	             "did you mean \"default_action\"?");
	expect_error("{" KEY ", \"rule\": []}", "did you mean \"rules\"?",
	             NULL);
	expect_error("{" KEY ", \"rules\": [{\"host\": \"a\", \"prot\": 1, "
	             "\"action\": \"pass\"}]}",
	             "rules[0].prot", "did you mean \"port\"?");
	expect_error("{" KEY ", \"limits\": {\"max_body_byte\": 1}}",
	             "limits.max_body_byte",
	             "did you mean \"max_body_bytes\"?");
	expect_error("{" KEY ", \"Listen\": []}", "did you mean \"listen\"?",
	             NULL);
	{
		char err[ERR_MAX] = "";
		struct config *c =
		    config_parse("{" KEY ", \"typo_field\": 1}", "t.json", err);

		CHECK(c == NULL);
		CHECK(strstr(err, "typo_field: unknown field") != NULL);
		CHECK(strstr(err, "did you mean") == NULL);
		config_free(c);
	}
}

/* A rule host with a port or written as a URL says where the parts go. */
static void
test_host_with_port(void)
{
	expect_error("{" KEY ", \"rules\": [{\"host\": \"api.test:8080\", "
	             "\"action\": \"pass\"}]}",
	             "rules[0].host: 'api.test:8080' has a port",
	             "\"host\": \"api.test\", \"port\": 8080");
	expect_error("{" KEY ", \"rules\": [{\"host\": \"[::1]:9\", "
	             "\"action\": \"pass\"}]}",
	             "has a port", "\"host\": \"[::1]\", \"port\": 9");
	expect_error("{" KEY ", \"rules\": [{\"host\": "
	             "\"https://api.test/v1\", \"action\": \"pass\"}]}",
	             "is a URL", "\"host\": \"api.test\"");
	expect_error("{" KEY ", \"rules\": [{\"host\": "
	             "\"http://api.test:81/\", \"action\": \"pass\"}]}",
	             "has a port", "\"host\": \"api.test\", \"port\": 81");
	/* Bracketed IPv6 without a port is still a host. */
	{
		char err[ERR_MAX];
		struct config *c = config_parse(
		    "{" KEY ", \"rules\": [{\"host\": \"[::1]\", \"action\": "
		    "\"pass\"}]}",
		    "t.json", err);

		CHECK(c != NULL);
		config_free(c);
	}
}

static void
test_routes(void)
{
	char err[ERR_MAX];
	struct config *c = config_parse(
	    "{" KEY ", \"resources\": {\"r\": {\"token_file\": \"/t\"}},"
	    "\"rules\": [{\"host\": \"*.example.com\", \"action\": \"pass\"},"
	    " {\"host\": \"*.api.example.com\", \"action\": \"deny\"},"
	    " {\"host\": \"x.api.example.com\", \"action\": \"sign\","
	    "  \"resource\": \"r\"},"
	    " {\"host\": \"p.test\", \"action\": \"deny\"},"
	    " {\"host\": \"p.test\", \"port\": 8443, \"action\": \"pass\"}]}",
	    "t.json", err);
	const struct config_rule *r;

	CHECK(c != NULL);
	if (c == NULL)
		return;
	r = route_match(c, "X.API.example.com", 443);
	CHECK(r != NULL && r->action == ROUTE_SIGN);
	r = route_match(c, "y.api.example.com", 443);
	CHECK(r != NULL && r->action == ROUTE_DENY);
	r = route_match(c, "www.example.com", 80);
	CHECK(r != NULL && r->action == ROUTE_PASS);
	r = route_match(c, "www.example.com.", 80);
	CHECK(r != NULL && r->action == ROUTE_PASS);
	/* A wildcard names subdomains only, not the bare suffix, and never
	 * a look-alike such as evilexample.com. */
	CHECK(route_match(c, "example.com", 443) == NULL);
	CHECK(route_match(c, "evilexample.com", 443) == NULL);
	r = route_match(c, "p.test", 8443);
	CHECK(r != NULL && r->action == ROUTE_PASS);
	r = route_match(c, "p.test", 443);
	CHECK(r != NULL && r->action == ROUTE_DENY);
	config_free(c);
}

static void
write_file(const char *path, const char *s, int mode)
{
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	fputs(s, f);
	fclose(f);
	chmod(path, (mode_t)mode);
}

/* The static token file through token_acquire: the value (valid until
 * the next call) and its hash, or NULL with err. */
static const char *
token_get(struct token_store *ts, const struct config_resource *r,
          char hash[13], char *err)
{
	static struct token_value *last;
	struct token_waiter *w;
	struct token_fail f;

	token_value_unref(last);
	last = NULL;
	if (token_acquire(ts, NULL, r, &last, &f, NULL, NULL, &w) != 0) {
		snprintf(err, ERR_MAX, "%.200s", f.detail);
		return NULL;
	}
	memcpy(hash, last->hash, 13);
	return last->value;
}

static void
test_token(void)
{
	char dir[] = "/tmp/aauth-test-XXXXXX", path[256], tmp[256],
	     err[ERR_MAX], hash[13];
	struct buf json;
	struct config *c;
	struct token_store *ts;
	const char *t;

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/token", dir);
	snprintf(tmp, sizeof(tmp), "%s/token.new", dir);
	buf_init(&json);
	buf_appendf(&json,
	            "{" KEY ", \"resources\": {\"r\": {\"token_file\": "
	            "\"%s\"}}}",
	            path);
	c = config_parse(json.data, "t.json", err);
	CHECK(c != NULL);
	if (c == NULL)
		return;
	ts = token_store_new(NULL, NULL);

	t = token_get(ts, &c->resources[0], hash, err);
	CHECK(t == NULL && strstr(err, "No such file") != NULL);

	write_file(path, "  tok-one\n", 0600);
	t = token_get(ts, &c->resources[0], hash, err);
	CHECK_STREQ(t, "tok-one");

	/* Replaced by rename: a new inode is noticed at once. */
	write_file(tmp, "tok-two", 0600);
	CHECK(rename(tmp, path) == 0);
	t = token_get(ts, &c->resources[0], hash, err);
	CHECK_STREQ(t, "tok-two");

	/* Rewritten in place with a different size. */
	write_file(path, "tok-three-longer\n", 0600);
	t = token_get(ts, &c->resources[0], hash, err);
	CHECK_STREQ(t, "tok-three-longer");

	write_file(path, "\n \n", 0600);
	t = token_get(ts, &c->resources[0], hash, err);
	CHECK(t == NULL && strstr(err, "empty") != NULL);

	/* A CR/LF inside would let a token file inject a header. */
	write_file(path, "abc\r\nX-Evil: 1", 0600);
	t = token_get(ts, &c->resources[0], hash, err);
	CHECK(t == NULL && strstr(err, "not allowed") != NULL);

	write_file(path, "tok-four", 0600);
	CHECK_STREQ(token_get(ts, &c->resources[0], hash, err), "tok-four");
	/* The short hash for logs: 12 base64url characters of SHA-256. */
	CHECK(strlen(hash) == 12);
	CHECK(strstr(hash, "tok") == NULL);
	/* A new generation of the config (a reload) with the same resource
	 * finds the same entry: keyed by name, not by pointer. */
	{
		struct config *c2 = config_parse(json.data, "t2.json", err);

		CHECK(c2 != NULL);
		if (c2 != NULL) {
			CHECK_STREQ(token_get(ts, &c2->resources[0], hash, err),
			            "tok-four");
			config_free(c2);
		}
	}
	unlink(path);
	t = token_get(ts, &c->resources[0], hash, err);
	CHECK(t == NULL);
	token_get(ts, &c->resources[0], hash, err); /* the last reference */

	token_store_free(ts);
	config_free(c);
	buf_free(&json);
	rmdir(dir);
}

static void
collect(void *arg, const char *msg)
{
	struct buf *b = arg;

	buf_appends(b, msg);
	buf_appendc(b, '\n');
}

/* Warnings: no rules, and each token file that is missing, empty or holds
 * a placeholder; a real token, or none of those, says nothing. */
static void
test_warnings(void)
{
	char dir[] = "/tmp/aauth-test-XXXXXX", path[256], err[ERR_MAX];
	static const char *const placeholders[] = {
	    "replace-me-with-an-access-token",
	    "CHANGEME",
	    "your-token-here",
	    "<token>",
	    "xxxxxxxx",
	    "sk-xxxx-xxxx",
	    "placeholder",
	    "token",
	    "0000000000",
	};
	static const char *const real[] = {
	    "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4eHgifQ.c2lnbmF0dXJl",
	    "demo-0123456789abcdef0123456789abcdef",
	    "tok-Xx3_xXx9",
	};
	struct buf json, out;
	struct config *c;
	size_t i, n;

	if (mkdtemp(dir) == NULL)
		exit(1);
	snprintf(path, sizeof(path), "%s/token", dir);
	buf_init(&json);
	buf_init(&out);

	c = config_parse("{" KEY "}", "t.json", err);
	CHECK(c != NULL);
	if (c == NULL)
		return;
	n = cli_config_warnings(c, collect, &out);
	CHECK(n == 1);
	CHECK(strstr(out.data, "t.json: no rules") != NULL);
	config_free(c);

	buf_appendf(&json,
	            "{" KEY ", \"resources\": {\"r\": {\"token_file\": "
	            "\"%s\"}}, \"rules\": [{\"host\": \"a.test\", "
	            "\"action\": \"sign\", \"resource\": \"r\"}]}",
	            path);
	c = config_parse(json.data, "t.json", err);
	CHECK(c != NULL);
	if (c == NULL)
		return;

	buf_reset(&out);
	CHECK(cli_config_warnings(c, collect, &out) == 1);
	CHECK(strstr(out.data, "resources.r.token_file") != NULL);
	CHECK(strstr(out.data, "No such file") != NULL);
	CHECK(strstr(out.data, "503") != NULL);

	write_file(path, " \n", 0600);
	buf_reset(&out);
	CHECK(cli_config_warnings(c, collect, &out) == 1);
	CHECK(strstr(out.data, "is empty") != NULL);

	for (i = 0; i < sizeof(placeholders) / sizeof(placeholders[0]); i++) {
		write_file(path, placeholders[i], 0600);
		buf_reset(&out);
		CHECK(cli_config_warnings(c, collect, &out) == 1);
		if (strstr(out.data, "looks like a placeholder") == NULL) {
			fprintf(stderr, "  not a placeholder? [%s]: %s\n",
			        placeholders[i], out.data ? out.data : "");
			CHECK(0);
		}
		/* The message says what matched, never the token. */
		CHECK(strstr(out.data, placeholders[i]) == NULL ||
		      strcmp(placeholders[i], "token") == 0 ||
		      strcmp(placeholders[i], "placeholder") == 0);
	}
	for (i = 0; i < sizeof(real) / sizeof(real[0]); i++) {
		write_file(path, real[i], 0600);
		buf_reset(&out);
		n = cli_config_warnings(c, collect, &out);
		if (n != 0) {
			fprintf(stderr, "  false alarm [%s]: %s\n", real[i],
			        out.data);
			CHECK(0);
		}
	}
	write_file(path, real[0], 0644);
	buf_reset(&out);
	CHECK(cli_config_warnings(c, collect, &out) == 1);
	CHECK(strstr(out.data, "chmod 600") != NULL);

	config_free(c);
	unlink(path);
	rmdir(dir);
	buf_free(&json);
	buf_free(&out);
}

static void
test_relative_paths(void)
{
	char dir[] = "/tmp/aauth-test-XXXXXX", path[256], want[300],
	     err[ERR_MAX];
	struct config *c;

	if (mkdtemp(dir) == NULL)
		exit(1);
	snprintf(path, sizeof(path), "%s/cfg.json", dir);
	write_file(path,
	           "{\"key\": {\"file\": \"keys/agent.pem\"}, \"resources\": "
	           "{\"r\": {\"token_file\": \"tok\"}}}",
	           0600);
	c = config_load(path, err);
	CHECK(c != NULL);
	if (c != NULL) {
		snprintf(want, sizeof(want), "%s/keys/agent.pem", dir);
		CHECK_STREQ(c->key_file, want);
		snprintf(want, sizeof(want), "%s/tok", dir);
		CHECK_STREQ(c->resources[0].token_file, want);
		config_free(c);
	}
	CHECK(config_load("/nonexistent/cfg.json", err) == NULL);
	CHECK(strstr(err, "/nonexistent/cfg.json") != NULL);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_defaults();
	test_operations();
	test_full();
	test_errors();
	test_comments();
	test_did_you_mean();
	test_host_with_port();
	test_warnings();
	test_routes();
	test_token();
	test_relative_paths();
	return check_done("test_config");
}
