/*
 * test_netaddr: the one spelling of a host that is routed and dialled, and
 * the address policy behind block_private_addresses — which resolved
 * addresses an unnamed host may not reach, including IPv6 forms that
 * embed an IPv4 address.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"
#include "netaddr.h"
#include "util.h"

static int
test_private(const char *addr)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			return -1;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			return -1;
	}
	return netaddr_is_private((struct sockaddr *)&ss);
}

static void
test_canonical_host(void)
{
	static const char *const same[][2] = {
	    {"127.0.0.2", "127.0.0.2"},
	    {"2130706434", "127.0.0.2"},
	    {"0x7f.0.0.2", "127.0.0.2"},
	    {"0x7f000002", "127.0.0.2"},
	    {"0177.0.0.2", "127.0.0.2"},
	    {"127.2", "127.0.0.2"},
	    {"127.000.000.002", "127.0.0.2"},
	    {"[::ffff:127.0.0.2]", "127.0.0.2"},
	    {"[::ffff:7f00:2]", "127.0.0.2"},
	    {"[0:0::1]", "[::1]"},
	    {"[FE80::1]", "[fe80::1]"},
	    {"API.Example.COM.", "api.example.com"},
	    {"under_score.test", "under_score.test"},
	    {"1e100.net", "1e100.net"},
	};
	static const char *const bad[] = {
	    "127.0.0.%32",      "pastebin.co%6d", "a b", "a\\b", "[::1",
	    "[fe80::1%25eth0]", "[zz::1]",        ".",   "",     "h!st",
	    "ex@mple.com",
	};
	char out[NETADDR_HOST_MAX], err[ERR_MAX];
	size_t i;

	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		CHECK(netaddr_canonical_host(same[i][0], out, err) == 0);
		CHECK_STREQ(out, same[i][1]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK(netaddr_canonical_host(bad[i], out, err) == -1);
		CHECK(err[0] != '\0');
	}
}

int
main(void)
{
	static const char *const blocked[] = {
	    "127.0.0.1",
	    "127.255.0.9",
	    "0.0.0.0",
	    "10.1.2.3",
	    "172.16.0.1",
	    "172.31.255.255",
	    "192.168.1.1",
	    "169.254.169.254",
	    "100.64.0.1",
	    "100.100.100.200",
	    "192.0.0.192",
	    "198.18.0.1",
	    "224.0.0.1",
	    "255.255.255.255",
	    "240.0.0.1",
	    "::1",
	    "::",
	    "fe80::1",
	    "fc00::1",
	    "fd00:ec2::254",
	    "ff02::1",
	    "fec0::1",
	    "::ffff:127.0.0.1",
	    "::ffff:169.254.169.254",
	    "::127.0.0.1",
	    "64:ff9b::a9fe:a9fe",
	    "2002:a9fe:a9fe::1",
	};
	static const char *const allowed[] = {
	    "8.8.8.8",         "1.1.1.1",        "172.32.0.1",
	    "172.15.255.255",  "192.169.0.1",    "100.128.0.1",
	    "169.255.0.1",     "11.0.0.1",       "2606:4700::1111",
	    "2001:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808",
	    "2002:808:808::1",
	};
	size_t i;

	for (i = 0; i < sizeof(blocked) / sizeof(blocked[0]); i++) {
		if (test_private(blocked[i]) != 1)
			fprintf(stderr, "should be blocked: %s\n", blocked[i]);
		CHECK(test_private(blocked[i]) == 1);
	}
	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		if (test_private(allowed[i]) != 0)
			fprintf(stderr, "should be allowed: %s\n", allowed[i]);
		CHECK(test_private(allowed[i]) == 0);
	}
	test_canonical_host();
	return check_done("netaddr");
}
