/*
 * netaddr: host spellings and address ranges (pure; no resolution, no
 * sockets). Used by config (rule hosts), conn (request hosts) and every
 * dialer (the private-range check after resolution).
 */
#ifndef AAUTH_NETADDR_H
#define AAUTH_NETADDR_H

struct sockaddr;

/* The one spelling of a host that is routed and dialled, so a rule cannot
 * be bypassed by writing the same address another way: IPv4 in any form
 * inet_aton takes (2130706433, 0x7f.1, 0177.0.0.1, 127.1) becomes dotted
 * decimal; an IPv4-mapped IPv6 literal becomes its IPv4 address; other
 * IPv6 literals are written canonically in brackets; names are lower-cased
 * without a trailing dot. Anything but letters, digits, '-', '.' and '_'
 * in a name (percent-escapes included) is refused: -1 with err saying
 * why. out must hold NETADDR_HOST_MAX bytes. */
#define NETADDR_HOST_MAX 256
int netaddr_canonical_host(const char *host, char *out, char *err);

/* 1 when a socket address may not be dialled without a rule naming the
 * host: loopback, private, link-local, ULA, CGNAT, multicast, reserved. */
int netaddr_is_private(const struct sockaddr *sa);

#endif
