/*
 * test_outreq: the pure connection parts — request finalisation (what an
 * upstream sees of a request), the hop-by-hop rules, the response relay's
 * head and framing, and the ingress classifier.
 */
#include <event2/buffer.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "http1.h"
#include "httpsig.h"
#include "ingress.h"
#include "key.h"
#include "outreq.h"
#include "relay.h"
#include "util.h"

static int
parse(const char *raw, struct http_request *r)
{
	char err[ERR_MAX];

	http_request_init(r);
	if (http1_parse_request(raw, strlen(raw), NULL, r, err) == -1) {
		fprintf(stderr, "parse: %s\n", err);
		return -1;
	}
	return 0;
}

static int
has_field(const struct http_request *r, const char *name)
{
	return http_fields_get(&r->fields, name) != NULL;
}

static void
test_hop_rules(void)
{
	static const char *const hop[] = {
	    "Connection",       "keep-alive",       "TE", "Trailer", "UPGRADE",
	    "Proxy-Connection", "Transfer-Encoding"};
	static const char *const end[] = {"Host", "Content-Length", "TEA",
	                                  "Connections", "Authorization"};
	size_t i;

	for (i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		CHECK(http1_is_hop_by_hop(hop[i], strlen(hop[i])));
	for (i = 0; i < sizeof(end) / sizeof(end[0]); i++)
		CHECK(!http1_is_hop_by_hop(end[i], strlen(end[i])));
	CHECK(http1_list_has("close, X-Secret", 15, "x-secret", 8));
	CHECK(http1_list_has(" ,x-a,,x-b ", 11, "X-B", 3));
	CHECK(!http1_list_has("x-ab", 4, "x-a", 3));
	CHECK(!http1_list_has("", 0, "", 0));
}

static void
test_finalise_pass(void)
{
	struct http_request r;
	char err[ERR_MAX];

	if (parse("POST /p?q=1 HTTP/1.1\r\nHost: evil.example\r\n"
	          "Connection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\n"
	          "Expect: 100-continue\r\nProxy-Authorization: Basic x\r\n"
	          "Authorization: Bearer client\r\nContent-Length: 3\r\n"
	          "X-Keep: yes\r\n\r\nabc",
	          &r) == -1) {
		CHECK(0);
		return;
	}
	free(r.authority);
	r.authority = xstrdup("api.test:8080");
	CHECK(outreq_finalise(&r, 1, NULL, err) == 0);
	/* Host first, from the authority, not the client's. */
	CHECK_STREQ(r.fields.v[0].name, "Host");
	CHECK_STREQ(r.fields.v[0].value, "api.test:8080");
	CHECK(!has_field(&r, "Connection") && !has_field(&r, "X-Hop") &&
	      !has_field(&r, "Keep-Alive") && !has_field(&r, "Expect") &&
	      !has_field(&r, "Proxy-Authorization"));
	/* Not a signing rule: the client's own Authorization stays. */
	CHECK_STREQ(http_fields_get(&r.fields, "authorization"),
	            "Bearer client");
	CHECK_STREQ(http_fields_get(&r.fields, "x-keep"), "yes");
	CHECK_STREQ(http_fields_get(&r.fields, "content-length"), "3");
	CHECK(!has_field(&r, "Signature"));
	http_request_free(&r);
}

static void
test_finalise_sign(void)
{
	struct httpsig_profile p;
	struct outreq_sign s;
	struct http_request r;
	struct key k;
	char err[ERR_MAX];
	size_t i, n;

	CHECK(key_generate(&k, err) == 0);
	CHECK(httpsig_profile_builtin(&p, "lumoauth", err) == 0);
	if (parse("POST /v1/docs?x=1 HTTP/1.1\r\nHost: api.test\r\n"
	          "Authorization: Bearer stolen\r\nSignature: sig1=:AAAA:\r\n"
	          "Signature-Input: sig1=();created=1\r\n"
	          "Signature-Key: sig=hwk\r\nContent-Digest: sha-256=:x:\r\n"
	          "Agent-Auth: agent_token=x\r\nContent-Type: text/plain\r\n"
	          "Content-Length: 2\r\n\r\nhi",
	          &r) == -1) {
		CHECK(0);
		return;
	}
	http_request_set_scheme(&r, "https");
	s.profile = &p;
	s.key = &k;
	s.token = "tok-123";
	CHECK(outreq_finalise(&r, 1, &s, err) == 0);
	/* The client's versions of every owned field are gone: one each. */
	for (i = 0, n = 0; i < r.fields.n; i++)
		if (util_strcaseeq(r.fields.v[i].name, "Authorization"))
			n++;
	CHECK(n == 1);
	CHECK_STREQ(http_fields_get(&r.fields, "authorization"),
	            "Bearer tok-123");
	CHECK(!has_field(&r, "Signature-Key") && !has_field(&r, "Agent-Auth"));
	CHECK(strstr(http_fields_get(&r.fields, "signature-input"),
	             "sig1=(\"@method\" \"@authority\" \"@path\" "
	             "\"@query\" ") != NULL);
	/* What goes out verifies, digest of the body included. */
	CHECK(httpsig_verify(&p, &k, &r, NULL, NULL, err) == 0);
	/* A changed body or token no longer does. */
	r.body[0] = 'H';
	CHECK(httpsig_verify(&p, &k, &r, NULL, NULL, err) == -1);
	http_request_free(&r);
	httpsig_profile_free(&p);
	key_free(&k);
}

static size_t
relay_run(const char *fields, int status, int64_t cl, int is_head, int minor,
          struct relay *rl, struct buf *out)
{
	struct http_response_field f[8];
	struct upstream_head h;
	struct evbuffer *eb = evbuffer_new();
	char copy[512], *line, *save = NULL;
	size_t n = 0, len;

	snprintf(copy, sizeof(copy), "%s", fields);
	for (line = strtok_r(copy, "\n", &save); line && n < 8;
	     line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':');

		*colon = '\0';
		f[n].name = line;
		f[n].name_len = strlen(line);
		f[n].value = colon + 1;
		f[n].value_len = strlen(colon + 1);
		n++;
	}
	h.status = status;
	h.reason = "";
	h.v = f;
	h.n = n;
	h.content_length = cl;
	memset(rl, 0, sizeof(*rl));
	rl->is_head = is_head;
	rl->version_minor = minor;
	rl->keep_alive = 1;
	CHECK(relay_head(rl, &h, eb) == 0);
	len = evbuffer_get_length(eb);
	buf_reset(out);
	buf_append(out, evbuffer_pullup(eb, -1), len);
	evbuffer_free(eb);
	return len;
}

static void
test_relay(void)
{
	struct evbuffer *eb = evbuffer_new();
	struct relay rl;
	struct buf out;

	buf_init(&out);
	relay_run("Connection:x-secret\nX-Secret:1\nKeep-Alive:t=5\n"
	          "Content-Length:999\nX-Ok:v",
	          200, 2, 0, 1, &rl, &out);
	CHECK_STREQ(out.data, "HTTP/1.1 200 OK\r\nX-Ok: v\r\n"
	                      "Content-Length: 2\r\n\r\n");
	CHECK(rl.framing == RELAY_FRAME_LENGTH && rl.keep_alive);
	/* Never more than announced. */
	CHECK(relay_body(&rl, "abc", 3, eb) == -1);
	CHECK(relay_body(&rl, "ab", 2, eb) == 0 && rl.length_left == 0);

	/* No length: chunked for HTTP/1.1, close-delimited for 1.0. */
	relay_run("X-A:1", 200, -1, 0, 1, &rl, &out);
	CHECK(strstr(out.data, "Transfer-Encoding: chunked\r\n") != NULL);
	evbuffer_drain(eb, evbuffer_get_length(eb));
	CHECK(relay_body(&rl, "hello", 5, eb) == 0);
	relay_end(&rl, eb);
	CHECK(evbuffer_get_length(eb) == 15 &&
	      memcmp(evbuffer_pullup(eb, -1), "5\r\nhello\r\n0\r\n\r\n", 15) ==
	          0);
	relay_run("X-A:1", 200, -1, 0, 0, &rl, &out);
	CHECK(rl.framing == RELAY_FRAME_CLOSE && !rl.keep_alive);
	CHECK(strstr(out.data, "Connection: close\r\n") != NULL);

	/* HEAD and 304 keep the length, 204 and 1xx never have one. */
	relay_run("", 200, 10, 1, 1, &rl, &out);
	CHECK(rl.framing == RELAY_FRAME_NONE &&
	      strstr(out.data, "Content-Length: 10\r\n") != NULL);
	relay_run("", 204, 10, 0, 1, &rl, &out);
	CHECK(rl.framing == RELAY_FRAME_NONE &&
	      strstr(out.data, "Content-Length") == NULL);
	buf_free(&out);
	evbuffer_free(eb);
}

static void
test_ingress(void)
{
	static const struct ingress_listener ls = {"127.0.0.1:8787", 0, NULL,
	                                           0};
	struct config *c;
	struct http_request r;
	struct ingress in;
	char err[ERR_MAX];

	c = config_parse("{\"key\": {\"file\": \"/nonexistent\"},"
	                 " \"resources\": {\"r\": {\"token_file\": \"t\"}},"
	                 " \"rules\": [{\"host\": \"api.test\", \"action\":"
	                 " \"sign\", \"resource\": \"r\"},"
	                 " {\"host\": \"127.0.0.2\", \"action\": \"deny\"},"
	                 " {\"host\": \"*.open.test\", \"action\": \"pass\"}]}",
	                 "t.json", err);
	CHECK(c != NULL);
	if (c == NULL) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	/* Sign: https upstream, port 80 of an http:// URL becomes 443,
	 * origin-form target. */
	parse("GET http://API.test:80/a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	ingress_classify(c, &ls, &r, &in);
	CHECK(in.kind == INGRESS_FORWARD && in.action == ROUTE_SIGN);
	CHECK_STREQ(in.up_scheme, "https");
	CHECK(in.up_port == 443 && !in.check_private);
	CHECK_STREQ(r.authority, "api.test");
	CHECK_STREQ(r.target, "/a?b=1");
	http_request_free(&r);

	/* Deny in another spelling of the address. */
	parse("GET http://2130706434/ HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	ingress_classify(c, &ls, &r, &in);
	CHECK(in.kind == INGRESS_REFUSE && in.status == 403);
	CHECK_STREQ(in.host, "127.0.0.2");
	http_request_free(&r);

	/* Unmatched → default deny; pass keeps the scheme and port. */
	parse("GET http://other.test/ HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	ingress_classify(c, &ls, &r, &in);
	CHECK(in.kind == INGRESS_REFUSE && in.status == 403 &&
	      strstr(in.detail, "no rule names other.test:80") != NULL);
	http_request_free(&r);
	parse("GET http://a.open.test:8080/x HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	ingress_classify(c, &ls, &r, &in);
	/* A host a rule names is not held to block_private_addresses. */
	CHECK(in.kind == INGRESS_FORWARD && in.action == ROUTE_PASS &&
	      in.up_port == 8080 && !in.check_private);
	CHECK_STREQ(in.up_scheme, "http");
	http_request_free(&r);

	/* Refusals: TRACE in any case, CONNECT, origin-form, schemes, hosts. */
	parse("trace http://api.test/ HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	ingress_classify(c, &ls, &r, &in);
	CHECK(in.kind == INGRESS_REFUSE && in.status == 405);
	http_request_free(&r);
	parse("CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n",
	      &r);
	ingress_classify(c, &ls, &r, &in);
	/* A sign host with no local CA: refused before any TLS. */
	CHECK(in.status == 503 && in.close &&
	      strcmp(in.code, "no_local_ca") == 0);
	http_request_free(&r);
	parse("GET /x HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	ingress_classify(c, &ls, &r, &in);
	CHECK(in.status == 400 && strstr(in.detail, "127.0.0.1:8787"));
	http_request_free(&r);
	parse("GET http://127.0.0.%32/ HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	ingress_classify(c, &ls, &r, &in);
	CHECK(in.status == 400 && strcmp(in.code, "invalid_host") == 0);
	http_request_free(&r);
	config_free(c);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_hop_rules();
	test_finalise_pass();
	test_finalise_sign();
	test_relay();
	test_ingress();
	return check_done("outreq");
}
