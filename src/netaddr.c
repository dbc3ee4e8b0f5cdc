/*
 * netaddr: what a host or address is, without any I/O — the one canonical
 * spelling of a host (so a rule and a request that write the same address
 * differently still meet) and the address ranges no request may reach
 * unless a rule names the host.
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "util.h"

static int
netaddr_v4_is_private(uint32_t a)
{
	return (a >> 24) == 0 ||                   /* 0.0.0.0/8 */
	       (a >> 24) == 10 ||                  /* 10/8 */
	       (a & 0xffc00000u) == 0x64400000u || /* 100.64/10 CGNAT */
	       (a >> 24) == 127 ||                 /* loopback */
	       (a & 0xffff0000u) == 0xa9fe0000u || /* 169.254/16 */
	       (a & 0xfff00000u) == 0xac100000u || /* 172.16/12 */
	       (a & 0xffffff00u) == 0xc0000000u || /* 192.0.0/24 */
	       (a & 0xffff0000u) == 0xc0a80000u || /* 192.168/16 */
	       (a & 0xfffe0000u) == 0xc6120000u || /* 198.18/15 */
	       (a & 0xf0000000u) == 0xe0000000u || /* multicast */
	       (a & 0xf0000000u) == 0xf0000000u;   /* reserved, broadcast */
}

static uint32_t
netaddr_v4_at(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int
netaddr_is_private(const struct sockaddr *sa)
{
	static const unsigned char zero12[12];
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
	                                         0, 0, 0, 0, 0xff, 0xff};
	static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
	const unsigned char *b;

	if (sa->sa_family == AF_INET)
		return netaddr_v4_is_private(
		    ntohl(((const struct sockaddr_in *)(const void *)sa)
		              ->sin_addr.s_addr));
	if (sa->sa_family != AF_INET6)
		return 1; /* nothing else is ever dialled */
	b = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
	/* Addresses that embed an IPv4 address are judged by it, so
	 * ::ffff:169.254.169.254 is no way around the IPv4 rules. */
	if (memcmp(b, zero12, 12) == 0 || memcmp(b, mapped, 12) == 0 ||
	    memcmp(b, nat64, 12) == 0)
		return netaddr_v4_is_private(netaddr_v4_at(b + 12));
	if (b[0] == 0x20 && b[1] == 0x02) /* 6to4 */
		return netaddr_v4_is_private(netaddr_v4_at(b + 2));
	return (b[0] & 0xfe) == 0xfc ||                   /* fc00::/7 ULA */
	       (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || /* fe80::/10 */
	       (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) || /* fec0::/10 */
	       b[0] == 0xff;                              /* multicast */
}

int
netaddr_canonical_host(const char *host, char *out, char *err)
{
	char tmp[NETADDR_HOST_MAX];
	struct in6_addr a6;
	struct in_addr a4;
	size_t n = strlen(host), i;

	if (n == 0 || n >= NETADDR_HOST_MAX) {
		err_set(err, "host name is empty or longer than %d bytes",
		        NETADDR_HOST_MAX - 1);
		return -1;
	}
	if (host[0] == '[') {
		if (n < 3 || host[n - 1] != ']') {
			err_set(err, "malformed IPv6 literal '%s'", host);
			return -1;
		}
		memcpy(tmp, host + 1, n - 2);
		tmp[n - 2] = '\0';
		if (inet_pton(AF_INET6, tmp, &a6) != 1) {
			err_set(err,
			        "'%s' is not an IPv6 address (zone ids "
			        "are not accepted)",
			        host);
			return -1;
		}
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			memcpy(&a4, &a6.s6_addr[12], 4);
			inet_ntop(AF_INET, &a4, out, NETADDR_HOST_MAX);
			return 0;
		}
		out[0] = '[';
		inet_ntop(AF_INET6, &a6, out + 1, NETADDR_HOST_MAX - 2);
		strcat(out, "]");
		return 0;
	}
	if (host[n - 1] == '.')
		n--;
	if (n == 0) {
		err_set(err, "host name is empty");
		return -1;
	}
	for (i = 0; i < n; i++) {
		char ch = host[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
		      ch == '_')) {
			err_set(
			    err,
			    "host '%s' has a character not allowed in a host "
			    "name (0x%02x at %zu); percent-escapes are not "
			    "accepted",
			    host, (unsigned char)ch, i);
			return -1;
		}
		tmp[i] = (char)((ch >= 'A' && ch <= 'Z') ? ch + 32 : ch);
	}
	tmp[n] = '\0';
	/* inet_aton takes every legacy IPv4 spelling that resolvers and
	 * libcurl also take; route on the address they would dial. */
	if (inet_aton(tmp, &a4) == 1) {
		inet_ntop(AF_INET, &a4, out, NETADDR_HOST_MAX);
		return 0;
	}
	memcpy(out, tmp, n + 1);
	return 0;
}
