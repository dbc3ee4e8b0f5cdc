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

#endif
