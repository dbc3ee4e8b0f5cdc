/*
 * route: which rule a request's host and port fall under. Exact host
 * names win over wildcards; among wildcards the longest suffix wins; a rule
 * with a port wins over the same host without one.
 */
#ifndef AAUTH_ROUTE_H
#define AAUTH_ROUTE_H

#include "config.h"

/* NULL when no rule names the host (the caller applies default_action).
 * host is compared case-insensitively; a trailing dot is ignored. */
const struct config_rule *route_match(const struct config *c, const char *host,
                                      int port);

/* A rule that names host on another port than this one (the first in
 * the file), to explain a request no rule matched; NULL when none does. */
const struct config_rule *route_match_other_port(const struct config *c,
                                                 const char *host, int port);

/* The one spelling of a request's host that is routed and dialled, so a
 * rule cannot be bypassed by writing the same address another way: IPv4 in
 * any form inet_aton takes (2130706433, 0x7f.1, 0177.0.0.1, 127.1) becomes
 * dotted decimal; an IPv4-mapped IPv6 literal becomes its IPv4 address;
 * other IPv6 literals are written canonically in brackets; names are
 * lower-cased without a trailing dot. Anything but letters, digits, '-',
 * '.' and '_' in a name (percent-escapes included) is refused: -1 with
 * err saying why. out must hold ROUTE_HOST_MAX bytes. */
#define ROUTE_HOST_MAX 256
int route_canonical_host(const char *host, char *out, char *err);

#endif
