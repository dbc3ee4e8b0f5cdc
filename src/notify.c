/*
 * notify: sd_notify by hand. The protocol is one datagram per state
 * change to an AF_UNIX socket; implementing it here keeps libsystemd out
 * of a daemon that also runs in containers without systemd.
 */
#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static struct sockaddr_un notify_addr;
static socklen_t notify_len; /* 0: no socket, nothing to send */

void
notify_init(void)
{
	const char *p = getenv("NOTIFY_SOCKET");
	size_t n;

	notify_len = 0;
	if (p == NULL || *p == '\0')
		return;
	n = strlen(p);
	if ((p[0] != '/' && p[0] != '@') || n >= sizeof(notify_addr.sun_path)) {
		log_warn("NOTIFY_SOCKET='%s': not an absolute path or "
		         "@abstract name; not notifying systemd",
		         p);
		return;
	}
	memset(&notify_addr, 0, sizeof(notify_addr));
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, p, n);
	if (p[0] == '@')
		notify_addr.sun_path[0] = '\0';
	/* An abstract name is exactly n bytes long, no terminating NUL. */
	notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	                         (p[0] == '/'));
	unsetenv("NOTIFY_SOCKET");
}

static int
notify_vsend(const char *fmt, va_list ap)
{
	struct buf b;
	int fd, rc = 0;

	if (notify_len == 0)
		return 0;
	buf_init(&b);
	buf_vappendf(&b, fmt, ap);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1 ||
	    sendto(fd, b.data, b.len, MSG_NOSIGNAL,
	           (struct sockaddr *)&notify_addr, notify_len) == -1) {
		log_debug("sd_notify: %s", strerror(errno));
		rc = -1;
	}
	if (fd != -1)
		close(fd);
	buf_free(&b);
	return rc;
}

int
notify_send(const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = notify_vsend(fmt, ap);
	va_end(ap);
	return rc;
}

int
notify_reloading(const char *status)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return notify_send("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=%s",
	                   (unsigned long long)ts.tv_sec * 1000000ull +
	                       (unsigned long long)ts.tv_nsec / 1000ull,
	                   status);
}

void
notify_free(void)
{
	notify_len = 0;
}
