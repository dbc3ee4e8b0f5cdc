/*
 * test_ingress: what a CONNECT becomes (intercept, splice, refuse), the
 * host binding of requests inside a tunnel, base-URL routes, and the SNI
 * comparison of intercepted TLS.
 */
#include <sodium.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "http1.h"
#include "ingress.h"
#include "mitm.h"
#include "util.h"

static struct config *cfg;

static void
parse(const char *raw, struct http_request *r)
{
	char err[ERR_MAX];

	http_request_init(r);
	if (http1_parse_request(raw, strlen(raw), NULL, r, err) == -1)
		fprintf(stderr, "parse: %s\n", err);
}

static void
classify(const char *raw, const struct ingress_tunnel *tun, int have_ca,
         struct http_request *r, struct ingress *in)
{
	struct ingress_listener ls = {"127.0.0.1:8787", 0, tun, have_ca};

	parse(raw, r);
	ingress_classify(cfg, &ls, r, in);
}

static void
test_connect(void)
{
	struct http_request r;
	struct ingress in;

	classify("CONNECT API.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n",
	         NULL, 1, &r, &in);
	CHECK(in.kind == INGRESS_INTERCEPT && in.action == ROUTE_SIGN);
	CHECK_STREQ(in.up_host, "api.test");
	CHECK(in.up_port == 443 && in.res != NULL);
	http_request_free(&r);
	classify("CONNECT a.open.test:8443 HTTP/1.1\r\nHost: x\r\n\r\n", NULL,
	         1, &r, &in);
	CHECK(in.kind == INGRESS_SPLICE && in.up_port == 8443 &&
	      !in.check_private);
	http_request_free(&r);
	/* deny in another spelling, unmatched: 403 before any tunnel */
	classify("CONNECT 2130706434:443 HTTP/1.1\r\nHost: x\r\n\r\n", NULL, 1,
	         &r, &in);
	CHECK(in.kind == INGRESS_REFUSE && in.status == 403 && in.close);
	CHECK(strcmp(in.ps_error, "http_request_denied") == 0);
	http_request_free(&r);
	classify("CONNECT other.test:443 HTTP/1.1\r\nHost: x\r\n\r\n", NULL, 1,
	         &r, &in);
	CHECK(in.kind == INGRESS_REFUSE && in.status == 403);
	http_request_free(&r);
	/* no CA: the sign host cannot be read, so it is refused */
	classify("CONNECT api.test:443 HTTP/1.1\r\nHost: x\r\n\r\n", NULL, 0,
	         &r, &in);
	CHECK(in.status == 503 && strcmp(in.code, "no_local_ca") == 0);
	http_request_free(&r);
}

static void
test_tunnel_binding(void)
{
	const struct ingress_tunnel tls = {"api.test", 443, 1};
	const struct ingress_tunnel odd = {"api.test", 8443, 0};
	struct http_request r;
	struct ingress in;

	classify("GET /a?b=1 HTTP/1.1\r\nHost: API.test\r\n\r\n", &tls, 1, &r,
	         &in);
	CHECK(in.kind == INGRESS_FORWARD && in.action == ROUTE_SIGN);
	CHECK_STREQ(in.up_scheme, "https");
	CHECK_STREQ(r.authority, "api.test");
	CHECK_STREQ(r.target, "/a?b=1");
	http_request_free(&r);
	classify(
	    "GET https://api.test:443/x HTTP/1.1\r\nHost: api.test\r\n\r\n",
	    &tls, 1, &r, &in);
	CHECK(in.kind == INGRESS_FORWARD);
	http_request_free(&r);
	/* another host, another port, another scheme, a Host that
	 * disagrees with the target: 421, nothing forwarded */
	classify("GET /a HTTP/1.1\r\nHost: evil.test\r\n\r\n", &tls, 1, &r,
	         &in);
	CHECK(in.kind == INGRESS_REFUSE && in.status == 421 && in.close);
	http_request_free(&r);
	classify("GET /a HTTP/1.1\r\nHost: api.test:444\r\n\r\n", &tls, 1, &r,
	         &in);
	CHECK(in.status == 421);
	http_request_free(&r);
	classify("GET http://api.test/x HTTP/1.1\r\nHost: api.test\r\n\r\n",
	         &tls, 1, &r, &in);
	CHECK(in.status == 421);
	http_request_free(&r);
	classify("GET https://api.test/x HTTP/1.1\r\nHost: evil.test\r\n\r\n",
	         &tls, 1, &r, &in);
	CHECK(in.status == 421);
	http_request_free(&r);
	/* a port-less Host means the scheme's default */
	classify("GET /a HTTP/1.1\r\nHost: api.test\r\n\r\n", &odd, 1, &r, &in);
	CHECK(in.status == 421);
	http_request_free(&r);
	classify("GET /a HTTP/1.1\r\nHost: api.test:8443\r\n\r\n", &odd, 1, &r,
	         &in);
	/* plain HTTP in the tunnel: signed over TLS upstream all the same */
	CHECK(in.kind == INGRESS_FORWARD && in.up_port == 8443);
	CHECK_STREQ(in.up_scheme, "https");
	http_request_free(&r);
	classify("CONNECT api.test:443 HTTP/1.1\r\nHost: x\r\n\r\n", &tls, 1,
	         &r, &in);
	CHECK(in.kind == INGRESS_REFUSE && in.status == 400);
	http_request_free(&r);
}

static void
test_routes(void)
{
	struct http_request r;
	struct ingress in;

	classify("GET /docs/items?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8787\r\n\r\n",
	         NULL, 1, &r, &in);
	CHECK(in.kind == INGRESS_FORWARD && in.action == ROUTE_SIGN);
	CHECK(in.route != NULL);
	CHECK_STREQ(r.target, "/v1/items?x=1");
	CHECK_STREQ(r.authority, "api.test");
	CHECK_STREQ(in.up_scheme, "https");
	http_request_free(&r);
	/* the proxy's own address in absolute-form is the route too */
	classify("GET http://127.0.0.1:8787/docs/a HTTP/1.1\r\nHost: x\r\n\r\n",
	         NULL, 1, &r, &in);
	CHECK(in.kind == INGRESS_FORWARD);
	CHECK_STREQ(r.target, "/v1/a");
	http_request_free(&r);
	classify("GET /docs/%2E%2e/admin HTTP/1.1\r\nHost: x\r\n\r\n", NULL, 1,
	         &r, &in);
	CHECK(in.kind == INGRESS_REFUSE && in.status == 400);
	http_request_free(&r);
	classify("GET /docs/a/..%2fb HTTP/1.1\r\nHost: x\r\n\r\n", NULL, 1, &r,
	         &in);
	CHECK(in.status == 400);
	http_request_free(&r);
	classify("GET /docs/.well-known/x HTTP/1.1\r\nHost: x\r\n\r\n", NULL, 1,
	         &r, &in);
	CHECK(in.kind == INGRESS_FORWARD);
	http_request_free(&r);
	classify("GET /other HTTP/1.1\r\nHost: x\r\n\r\n", NULL, 1, &r, &in);
	CHECK(in.status == 400);
	http_request_free(&r);
}

static void
test_sni(void)
{
	CHECK(mitm_sni_matches("api.test", 443, "api.test"));
	CHECK(mitm_sni_matches("api.test", 443, "API.Test."));
	CHECK(mitm_sni_matches("api.test", 8443, "api.test:8443"));
	CHECK(!mitm_sni_matches("api.test", 8443, "api.test:443"));
	CHECK(!mitm_sni_matches("api.test", 443, "evil.test"));
	CHECK(!mitm_sni_matches("api.test", 443, "api.test.evil"));
	CHECK(mitm_sni_matches("127.0.0.1", 443, "127.0.0.1"));
	CHECK(mitm_sni_matches("[::1]", 443, "::1"));
	CHECK(!mitm_sni_matches("api.test", 443, "api%2etest"));
	CHECK(!mitm_sni_matches("api.test", 443, ""));
}

int
main(void)
{
	char err[ERR_MAX];

	if (sodium_init() < 0)
		return 1;
	cfg = config_parse(
	    "{\"key\": {\"file\": \"/nonexistent\"},"
	    " \"resources\": {\"r\": {\"token_file\": \"t\"}},"
	    " \"rules\": [{\"host\": \"api.test\", \"action\": \"sign\","
	    " \"resource\": \"r\"},"
	    " {\"host\": \"127.0.0.2\", \"action\": \"deny\"},"
	    " {\"host\": \"*.open.test\", \"action\": \"pass\"}],"
	    " \"routes\": [{\"prefix\": \"/docs/\", \"upstream\":"
	    " \"https://api.test/v1/\"}]}",
	    "t.json", err);
	CHECK(cfg != NULL);
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err);
		return check_done("ingress");
	}
	test_connect();
	test_tunnel_binding();
	test_routes();
	test_sni();
	config_free(cfg);
	return check_done("ingress");
}
