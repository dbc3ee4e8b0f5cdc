/*
 * route: pick the rule a request's host and port fall under. Runs once per
 * request on the data path, so it compares in place without allocating:
 * case-insensitive, a trailing dot ignored, IPv6 literals by address.
 */
#include "route.h"

#include <arpa/inet.h>
#include <string.h>

#include "util.h"

/* A host name view: the bytes to compare, without brackets or a trailing
 * dot. */
struct route_name {
	const char *p;
	size_t n;
	int v6; /* was a bracketed IPv6 literal */
};

static void
route_name_init(struct route_name *nm, const char *h)
{
	size_t n = strlen(h);

	nm->v6 = 0;
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h++;
		n -= 2;
		nm->v6 = 1;
	} else if (n > 1 && h[n - 1] == '.') {
		n--;
	}
	nm->p = h;
	nm->n = n;
}

/* IPv6 literals compare by address so "[0::1]" names the same host as
 * "[::1]". */
static int
route_v6_eq(const struct route_name *a, const struct route_name *b)
{
	char sa[64], sb[64];
	struct in6_addr xa, xb;

	if (a->n >= sizeof(sa) || b->n >= sizeof(sb))
		return 0;
	memcpy(sa, a->p, a->n);
	sa[a->n] = '\0';
	memcpy(sb, b->p, b->n);
	sb[b->n] = '\0';
	if (inet_pton(AF_INET6, sa, &xa) != 1 ||
	    inet_pton(AF_INET6, sb, &xb) != 1)
		return 0;
	return memcmp(&xa, &xb, sizeof(xa)) == 0;
}

/* How well rule r names the host: 0 no match; otherwise larger is more
 * specific. Exact names outrank every wildcard; among wildcards the longer
 * suffix wins; a port breaks the remaining tie. */
static size_t
route_score(const struct config_rule *r, const struct route_name *host,
            int port)
{
	struct route_name pat;
	size_t score;

	if (r->port != -1 && r->port != port)
		return 0;
	if (r->wildcard) {
		/* "*.example.com" matches "a.example.com" and
		 * "a.b.example.com", never "example.com" itself. */
		route_name_init(&pat, r->host + 1); /* ".example.com" */
		if (host->v6 || host->n <= pat.n)
			return 0;
		if (!util_strncaseeq(host->p + host->n - pat.n, pat.p, pat.n))
			return 0;
		score = pat.n * 2;
	} else {
		route_name_init(&pat, r->host);
		if (pat.v6 || host->v6) {
			if (!(pat.v6 && host->v6 && route_v6_eq(&pat, host)))
				return 0;
		} else if (pat.n != host->n ||
		           !util_strncaseeq(pat.p, host->p, pat.n)) {
			return 0;
		}
		/* Above any wildcard: host names are at most 255 bytes. */
		score = 1024;
	}
	return score + (r->port != -1 ? 1 : 0);
}

const struct config_rule *
route_match(const struct config *c, const char *host, int port)
{
	const struct config_rule *best = NULL;
	struct route_name nm;
	size_t i, s, best_score = 0;

	if (host == NULL || *host == '\0')
		return NULL;
	route_name_init(&nm, host);
	if (nm.n == 0)
		return NULL;
	for (i = 0; i < c->nrules; i++) {
		s = route_score(&c->rules[i], &nm, port);
		/* Strictly greater: the first of equally specific rules
		 * wins, as written in the file. */
		if (s > best_score) {
			best_score = s;
			best = &c->rules[i];
		}
	}
	return best;
}

const struct config_rule *
route_match_other_port(const struct config *c, const char *host, int port)
{
	struct route_name nm;
	size_t i;

	if (host == NULL || *host == '\0')
		return NULL;
	route_name_init(&nm, host);
	for (i = 0; i < c->nrules; i++)
		if (c->rules[i].port != -1 && c->rules[i].port != port &&
		    route_score(&c->rules[i], &nm, c->rules[i].port) > 0)
			return &c->rules[i];
	return NULL;
}
