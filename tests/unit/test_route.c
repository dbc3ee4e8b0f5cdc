/*
 * test_route: route_match precedence — exact over wildcard, longest
 * wildcard suffix, port-specific over any-port, first of equals, case and
 * trailing dots, IPv6 literals, and no match at all.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "route.h"

#define NRULES 16

static struct config_rule test_rules[NRULES];
static struct config test_cfg;

/* Append a rule the way config.c stores one: lower-case host, wildcard flag
 * for "*.suffix", port -1 for any. */
static struct config_rule *
test_rule(const char *host, int port, enum route_action action)
{
	struct config_rule *r = &test_rules[test_cfg.nrules++];

	r->host = (char *)host;
	r->wildcard = strncmp(host, "*.", 2) == 0;
	r->port = port;
	r->action = action;
	r->resource = NULL;
	return r;
}

static void
test_reset(void)
{
	memset(test_rules, 0, sizeof(test_rules));
	memset(&test_cfg, 0, sizeof(test_cfg));
	test_cfg.rules = test_rules;
	test_cfg.default_action = ROUTE_DENY;
}

static void
test_precedence(void)
{
	struct config_rule *wild, *wild_long, *exact, *exact_port, *wild_port;

	test_reset();
	wild = test_rule("*.example.com", -1, ROUTE_PASS);
	wild_long = test_rule("*.api.example.com", -1, ROUTE_DENY);
	wild_port = test_rule("*.example.com", 8443, ROUTE_SIGN);
	exact = test_rule("api.example.com", -1, ROUTE_SIGN);
	exact_port = test_rule("api.example.com", 9000, ROUTE_PASS);

	/* Exact beats every wildcard, even ones listed first. */
	CHECK(route_match(&test_cfg, "api.example.com", 443) == exact);
	/* A port-specific rule beats the same host without a port. */
	CHECK(route_match(&test_cfg, "api.example.com", 9000) == exact_port);
	/* ... but a wildcard with a port never beats an exact host. */
	CHECK(route_match(&test_cfg, "api.example.com", 8443) == exact);
	/* Longest wildcard suffix wins. */
	CHECK(route_match(&test_cfg, "v1.api.example.com", 443) == wild_long);
	CHECK(route_match(&test_cfg, "a.b.api.example.com", 80) == wild_long);
	CHECK(route_match(&test_cfg, "www.example.com", 80) == wild);
	/* Same wildcard with a port wins on that port only. */
	CHECK(route_match(&test_cfg, "www.example.com", 8443) == wild_port);
	CHECK(route_match(&test_cfg, "deep.www.example.com", 8443) ==
	      wild_port);
	/* A wildcard does not match its bare suffix. */
	CHECK(route_match(&test_cfg, "example.com", 443) == NULL);
	/* Nor a name that merely ends with the same letters. */
	CHECK(route_match(&test_cfg, "badexample.com", 443) == NULL);
	CHECK(route_match(&test_cfg, "api.example.com.evil.net", 443) == NULL);
	CHECK(route_match(&test_cfg, "example.org", 443) == NULL);
	CHECK(route_match(&test_cfg, "", 443) == NULL);
	CHECK(route_match(&test_cfg, NULL, 443) == NULL);
	CHECK(route_match(&test_cfg, ".", 443) == NULL);
}

static void
test_case_and_dots(void)
{
	struct config_rule *exact, *wild;

	test_reset();
	exact = test_rule("api.example.com", -1, ROUTE_SIGN);
	wild = test_rule("*.example.net", -1, ROUTE_PASS);
	CHECK(route_match(&test_cfg, "API.Example.COM", 443) == exact);
	CHECK(route_match(&test_cfg, "api.example.com.", 443) == exact);
	CHECK(route_match(&test_cfg, "WWW.EXAMPLE.NET.", 80) == wild);
	CHECK(route_match(&test_cfg, "api.example.com..", 443) == NULL);
	CHECK(route_match(&test_cfg, "api.example.co", 443) == NULL);
	CHECK(route_match(&test_cfg, "xapi.example.com", 443) == NULL);
}

static void
test_first_of_equals(void)
{
	struct config_rule *a, *b, *c, *d;

	test_reset();
	a = test_rule("dup.example.com", -1, ROUTE_SIGN);
	b = test_rule("dup.example.com", -1, ROUTE_DENY);
	c = test_rule("*.dup.example.com", 80, ROUTE_PASS);
	d = test_rule("*.dup.example.com", 80, ROUTE_DENY);
	CHECK(route_match(&test_cfg, "dup.example.com", 1) == a);
	CHECK(route_match(&test_cfg, "x.dup.example.com", 80) == c);
	CHECK(route_match(&test_cfg, "x.dup.example.com", 81) == NULL);
	(void)b;
	(void)d;
}

static void
test_ip_literals(void)
{
	struct config_rule *v4, *v6, *v6port;

	test_reset();
	v4 = test_rule("127.0.0.1", -1, ROUTE_PASS);
	v6 = test_rule("[::1]", -1, ROUTE_PASS);
	v6port = test_rule("[2001:db8::1]", 8080, ROUTE_SIGN);
	CHECK(route_match(&test_cfg, "127.0.0.1", 9000) == v4);
	CHECK(route_match(&test_cfg, "127.0.0.2", 9000) == NULL);
	CHECK(route_match(&test_cfg, "[::1]", 9000) == v6);
	/* Same address, different spelling. */
	CHECK(route_match(&test_cfg, "[0:0::1]", 9000) == v6);
	CHECK(route_match(&test_cfg, "[::2]", 9000) == NULL);
	CHECK(route_match(&test_cfg, "[2001:DB8:0::1]", 8080) == v6port);
	CHECK(route_match(&test_cfg, "[2001:db8::1]", 8081) == NULL);
	/* Brackets matter: a name is never an IPv6 literal. */
	CHECK(route_match(&test_cfg, "::1", 9000) == NULL);
	CHECK(route_match(&test_cfg, "[not-an-address]", 9000) == NULL);
}

/* The hint for a 403: a rule naming the host on another port. */
static void
test_other_port(void)
{
	struct config_rule *p443, *wild;

	test_reset();
	p443 = test_rule("api.test", 443, ROUTE_SIGN);
	wild = test_rule("*.svc.test", 8443, ROUTE_PASS);
	test_rule("any.test", -1, ROUTE_PASS);
	CHECK(route_match(&test_cfg, "api.test", 80) == NULL);
	CHECK(route_match_other_port(&test_cfg, "api.test", 80) == p443);
	CHECK(route_match_other_port(&test_cfg, "API.test.", 80) == p443);
	CHECK(route_match_other_port(&test_cfg, "api.test", 443) == NULL);
	CHECK(route_match_other_port(&test_cfg, "a.svc.test", 80) == wild);
	CHECK(route_match_other_port(&test_cfg, "svc.test", 80) == NULL);
	CHECK(route_match_other_port(&test_cfg, "other.test", 80) == NULL);
	/* A rule without a port already matched; no hint is needed. */
	CHECK(route_match_other_port(&test_cfg, "any.test", 80) == NULL);
}

static void
test_empty_config(void)
{
	test_reset();
	CHECK(route_match(&test_cfg, "api.example.com", 443) == NULL);
}

/* Every spelling of an address routes as that address; anything that
 * could be decoded differently downstream is refused. */
int
main(void)
{
	test_precedence();
	test_case_and_dots();
	test_first_of_equals();
	test_ip_literals();
	test_other_port();
	test_empty_config();
	return check_done("route");
}
