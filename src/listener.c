/*
 * listener: binding, adopting and closing listening sockets. Accept errors
 * for lack of descriptors pause the listener briefly instead of spinning.
 */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define LISTENER_RETRY_MS 500
#define LISTENER_BACKLOG  511
#define LISTENER_SD_FD0   3 /* SD_LISTEN_FDS_START */

static void
listener_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
                   struct sockaddr *sa, int salen, void *arg)
{
	struct listener *l = arg;

	l->cb(l->arg, &l->info, fd, sa, salen);
}

static void
listener_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	if (l->lev)
		evconnlistener_enable(l->lev);
}

static void
listener_error_cb(struct evconnlistener *lev, void *arg)
{
	struct listener *l = arg;
	int e = errno;
	struct timeval tv = {0, LISTENER_RETRY_MS * 1000};

	log_warn("accept on %s: %s", l->info.name, strerror(e));
	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM)
		return;
	/* Out of descriptors: accepting again at once would spin. */
	evconnlistener_disable(l->lev);
	evtimer_add(l->ev_retry, &tv);
}

static struct listener *
listener_add(struct event_base *base, const char *addr, listener_accept_fn cb,
             void *arg, struct listener **list)
{
	struct listener *l = xcalloc(1, sizeof(*l)), **tail;

	l->addr = xstrdup(addr);
	l->cb = cb;
	l->arg = arg;
	l->ev_retry = evtimer_new(base, listener_retry_cb, l);
	for (tail = list; *tail; tail = &(*tail)->next)
		;
	*tail = l;
	return l;
}

static void
listener_watch(struct listener *l, struct evconnlistener *lev)
{
	l->lev = lev;
	evconnlistener_set_cb(lev, listener_accept_cb, l);
	evconnlistener_set_error_cb(lev, listener_error_cb);
}

static void
listener_sockname(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN];

	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1) {
		snprintf(out, len, "?");
		return;
	}
	if (ss.ss_family == AF_UNIX) {
		struct sockaddr_un *su = (struct sockaddr_un *)&ss;

		snprintf(out, len, "unix:%s",
		         su->sun_path[0] ? su->sun_path : "@abstract");
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(out, len, "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(out, len, "%s:%u", a, ntohs(s4->sin_port));
	}
}

static int
listener_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)
		                  ->sin_addr.s_addr) >>
		        24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(
		    &((const struct sockaddr_in6 *)(const void *)sa)
		         ->sin6_addr);
	return 0;
}

static int
listener_open_tcp(struct event_base *base, const char *addr,
                  listener_accept_fn cb, void *arg, struct listener **list,
                  char *err)
{
	struct addrinfo hints, *res = NULL, *ai;
	char host[256];
	const char *colon, *h = addr;
	struct listener *l;
	size_t hl;
	int rc, bound = 0;

	colon = strrchr(addr, ':');
	if (colon == NULL || colon == addr || colon[1] == '\0') {
		err_set(err,
		        "listen '%s': expected HOST:PORT, [IPv6]:PORT or "
		        "unix:/path",
		        addr);
		return -1;
	}
	hl = (size_t)(colon - addr);
	if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') {
		h = addr + 1;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host)) {
		err_set(err, "listen '%s': bad host", addr);
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
		err_set(err, "listen '%s': %s", addr, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		struct evconnlistener *lev;

		/* Without proxy client credentials, loopback only. */
		if (!listener_is_loopback(ai->ai_addr)) {
			err_set(err,
			        "listen '%s': not a loopback address; "
			        "aauth-proxy listens on loopback or unix "
			        "sockets only",
			        addr);
			freeaddrinfo(res);
			return -1;
		}
		lev = evconnlistener_new_bind(
		    base, listener_accept_cb, NULL,
		    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
		        LEV_OPT_CLOSE_ON_EXEC,
		    LISTENER_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
		if (lev == NULL) {
			err_set(err, "listen '%s': %s", addr, strerror(errno));
			if (ai->ai_next == NULL && bound == 0) {
				freeaddrinfo(res);
				return -1;
			}
			log_warn("%s", err);
			continue;
		}
		l = listener_add(base, addr, cb, arg, list);
		listener_watch(l, lev);
		listener_sockname(evconnlistener_get_fd(lev), l->info.name,
		                  sizeof(l->info.name));
		bound++;
	}
	freeaddrinfo(res);
	if (bound == 0) {
		err_set(err, "listen '%s': no address to bind", addr);
		return -1;
	}
	return 0;
}

static int
listener_open_unix(struct event_base *base, const char *addr, int unix_mode,
                   listener_accept_fn cb, void *arg, struct listener **list,
                   char *err)
{
	const char *path = addr + 5;
	struct sockaddr_un sun;
	struct evconnlistener *lev;
	struct stat st;
	struct listener *l;
	mode_t old;
	int fd = -1, probe;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (path[0] != '/' || strlen(path) >= sizeof(sun.sun_path)) {
		err_set(err,
		        "listen '%s': need an absolute path shorter than "
		        "%zu bytes",
		        addr, sizeof(sun.sun_path));
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			err_set(err,
			        "listen '%s': %s exists and is not a "
			        "socket; not removing it",
			        addr, path);
			return -1;
		}
		/* A socket someone still answers on is not stale. */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe != -1 &&
		    connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(probe);
			err_set(err,
			        "listen '%s': another process is "
			        "listening on %s",
			        addr, path);
			return -1;
		}
		if (probe != -1)
			close(probe);
		if (unlink(path) == -1) {
			err_set(err,
			        "listen '%s': cannot remove stale "
			        "socket: %s",
			        addr, strerror(errno));
			return -1;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		err_set(err, "listen '%s': socket: %s", addr, strerror(errno));
		return -1;
	}
	/* No window in which the socket has looser permissions. */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		err_set(err, "listen '%s': bind: %s", addr, strerror(errno));
		goto fail;
	}
	umask(old);
	if (chmod(path, (mode_t)unix_mode) == -1) {
		err_set(err, "listen '%s': chmod: %s", addr, strerror(errno));
		unlink(path);
		goto fail;
	}
	if (listen(fd, LISTENER_BACKLOG) == -1) {
		err_set(err, "listen '%s': %s", addr, strerror(errno));
		unlink(path);
		goto fail;
	}
	/* backlog 0: listen() was called above. */
	lev = evconnlistener_new(base, listener_accept_cb, NULL,
	                         LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
	                         0, fd);
	if (lev == NULL) {
		err_set(err, "listen '%s': cannot watch the socket", addr);
		unlink(path);
		goto fail;
	}
	l = listener_add(base, addr, cb, arg, list);
	l->info.unix_sock = 1;
	l->unix_path = xstrdup(path);
	snprintf(l->info.name, sizeof(l->info.name), "unix:%s", path);
	listener_watch(l, lev);
	return 0;
fail:
	close(fd);
	return -1;
}

int
listener_open(struct event_base *base, const char *addr, int unix_mode,
              listener_accept_fn cb, void *arg, struct listener **list,
              char *err)
{
	if (strncmp(addr, "unix:", 5) == 0)
		return listener_open_unix(base, addr, unix_mode, cb, arg, list,
		                          err);
	return listener_open_tcp(base, addr, cb, arg, list, err);
}

/* The n-th name in LISTEN_FDNAMES (colon-separated), or "". */
static void
listener_fdname(const char *names, int n, char *out, size_t len)
{
	const char *p = names, *e;

	out[0] = '\0';
	while (p != NULL && n-- > 0)
		p = (p = strchr(p, ':')) ? p + 1 : NULL;
	if (p == NULL)
		return;
	e = strchr(p, ':');
	snprintf(out, len, "%.*s", (int)(e ? (size_t)(e - p) : strlen(p)), p);
}

int
listener_from_systemd(struct event_base *base, listener_accept_fn cb, void *arg,
                      struct listener **proxy, listener_accept_fn admin_cb,
                      void *admin_arg, struct listener **admin, char *err)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	char *end, name[64], sock[160];
	long n, i;
	int rc = 0;

	if (pid == NULL || fds == NULL)
		return 0;
	/* Meant for another process (we were exec'd by it): not ours. */
	if (strtol(pid, &end, 10) != (long)getpid() || *end != '\0')
		return 0;
	n = strtol(fds, &end, 10);
	if (*end != '\0' || n < 0 || n > 64) {
		err_set(err, "LISTEN_FDS='%s': not a count of sockets", fds);
		return -1;
	}
	for (i = 0; i < n; i++) {
		int fd = LISTENER_SD_FD0 + (int)i, acc = 0, type = 0;
		socklen_t sl = sizeof(acc);
		struct sockaddr_storage ss;
		socklen_t al = sizeof(ss);
		struct evconnlistener *lev;
		struct listener *l;
		int is_admin;

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &sl) ==
		        -1 ||
		    !acc ||
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type,
		               &(socklen_t){sizeof(type)}) == -1 ||
		    type != SOCK_STREAM) {
			err_set(err,
			        "socket activation: descriptor %d is not a "
			        "listening stream socket (ListenStream= in the "
			        ".socket unit)",
			        fd);
			return -1;
		}
		memset(&ss, 0, sizeof(ss));
		if (getsockname(fd, (struct sockaddr *)&ss, &al) == 0 &&
		    ss.ss_family != AF_UNIX &&
		    !listener_is_loopback((struct sockaddr *)&ss)) {
			listener_sockname(fd, sock, sizeof(sock));
			err_set(err,
			        "socket activation: %s is not a loopback "
			        "address; aauth-proxy listens on loopback or "
			        "unix sockets only",
			        sock);
			return -1;
		}
		evutil_make_socket_nonblocking(fd);
		evutil_make_socket_closeonexec(fd);
		listener_fdname(names, (int)i, name, sizeof(name));
		is_admin = strcmp(name, "admin") == 0;
		listener_sockname(fd, sock, sizeof(sock));
		lev = evconnlistener_new(
		    base, listener_accept_cb, NULL,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
		if (lev == NULL) {
			err_set(err, "socket activation: cannot watch %s",
			        sock);
			return -1;
		}
		l = listener_add(base, sock, is_admin ? admin_cb : cb,
		                 is_admin ? admin_arg : arg,
		                 is_admin ? admin : proxy);
		l->info.unix_sock = ss.ss_family == AF_UNIX;
		snprintf(l->info.name, sizeof(l->info.name), "%s", sock);
		listener_watch(l, lev);
		rc++;
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return rc;
}

void
listener_close(struct listener *l)
{
	if (l->lev) {
		evconnlistener_free(l->lev);
		l->lev = NULL;
	}
	if (l->ev_retry)
		evtimer_del(l->ev_retry);
	if (l->unix_path) {
		unlink(l->unix_path);
		free(l->unix_path);
		l->unix_path = NULL;
	}
}

void
listener_close_list(struct listener *list)
{
	for (; list; list = list->next)
		listener_close(list);
}

void
listener_free_list(struct listener *list)
{
	struct listener *next;

	for (; list; list = next) {
		next = list->next;
		listener_close(list);
		if (list->ev_retry)
			event_free(list->ev_retry);
		free(list->addr);
		free(list);
	}
}

size_t
listener_count(const struct listener *list)
{
	size_t n = 0;

	for (; list; list = list->next)
		if (list->lev)
			n++;
	return n;
}
