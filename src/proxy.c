/*
 * proxy: the daemon — load the generation (config and key), bind the
 * listeners, run the one libevent loop, and on SIGTERM/SIGINT stop
 * accepting, let in-flight requests finish (bounded), wipe the key, exit.
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "accesslog.h"
#include "conn.h"
#include "gen.h"
#include "log.h"
#include "metrics.h"
#include "token.h"
#include "upstream.h"
#include "util.h"
#include "version.h"

/* In-flight requests get this long after SIGTERM before the exit. */
#define PROXY_DRAIN_MS 10000
/* After accept fails for lack of descriptors, pause before retrying. */
#define PROXY_ACCEPT_RETRY_MS 500
#define PROXY_BACKLOG         511

struct proxy_listener {
	struct conn_listener info; /* what connections see */
	struct proxy *px;
	struct evconnlistener *lev;
	char *unix_path; /* unlinked on exit */
	struct proxy_listener *next;
};

struct proxy {
	struct conn_ctx ctx; /* event base, generation, shared services */
	struct metrics metrics;
	struct proxy_listener *listeners;
	struct event *ev_sigterm, *ev_sigint, *ev_sighup;
	struct event *ev_drain, *ev_accept_retry;
};

/* A connection was freed: the drain ends with the last one. */
static void
proxy_conn_gone(void *arg)
{
	struct proxy *px = arg;

	if (px->ctx.draining && px->ctx.conns == NULL)
		event_base_loopexit(px->ctx.base, NULL);
}

/* --- listeners ------------------------------------------------------------ */

static void
proxy_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
                struct sockaddr *sa, int salen, void *arg)
{
	struct proxy_listener *ls = arg;
	struct proxy *px = ls->px;

	if (px->ctx.draining) {
		close(fd);
		return;
	}
	/* A descriptor number curl may still have an event for. */
	upstream_fd_reused(px->ctx.up, fd);
	conn_accept(&px->ctx, &ls->info, fd, sa, salen);
}

static void
proxy_accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *px = arg;
	struct proxy_listener *ls;

	if (px->ctx.draining)
		return;
	for (ls = px->listeners; ls; ls = ls->next)
		if (ls->lev)
			evconnlistener_enable(ls->lev);
}

static void
proxy_accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct proxy_listener *ls = arg;
	struct proxy *px = ls->px;
	int e = errno;
	struct timeval tv = {0, PROXY_ACCEPT_RETRY_MS * 1000};
	struct proxy_listener *it;

	log_warn("accept on %s: %s", ls->info.name, strerror(e));
	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM)
		return;
	/* Out of descriptors: accepting again at once would spin. */
	for (it = px->listeners; it; it = it->next)
		if (it->lev)
			evconnlistener_disable(it->lev);
	evtimer_add(px->ev_accept_retry, &tv);
}

static struct proxy_listener *
proxy_listener_add(struct proxy *px)
{
	struct proxy_listener *ls = xcalloc(1, sizeof(*ls)), **tail;

	ls->px = px;
	for (tail = &px->listeners; *tail; tail = &(*tail)->next)
		;
	*tail = ls;
	return ls;
}

static void
proxy_sockname(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN];

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1) {
		snprintf(out, len, "?");
		return;
	}
	if (ss.ss_family == AF_INET6) {
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
proxy_addr_is_loopback(const struct sockaddr *sa)
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
proxy_listen_tcp(struct proxy *px, const char *addr, char *err)
{
	struct addrinfo hints, *res = NULL, *ai;
	char host[256], a[INET6_ADDRSTRLEN + 8];
	const char *colon, *h = addr;
	struct proxy_listener *ls;
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
		if (!proxy_addr_is_loopback(ai->ai_addr)) {
			err_set(err,
			        "listen '%s': not a loopback address; "
			        "aauth-proxy listens on loopback or unix "
			        "sockets only",
			        addr);
			freeaddrinfo(res);
			return -1;
		}
		lev = evconnlistener_new_bind(
		    px->ctx.base, proxy_accept_cb, NULL,
		    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
		        LEV_OPT_CLOSE_ON_EXEC,
		    PROXY_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
		if (lev == NULL) {
			err_set(err, "listen '%s': %s", addr, strerror(errno));
			if (ai->ai_next == NULL && bound == 0) {
				freeaddrinfo(res);
				return -1;
			}
			log_warn("%s", err);
			continue;
		}
		ls = proxy_listener_add(px);
		ls->lev = lev;
		evconnlistener_set_cb(lev, proxy_accept_cb, ls);
		evconnlistener_set_error_cb(lev, proxy_accept_error_cb);
		proxy_sockname(evconnlistener_get_fd(lev), a, sizeof(a));
		snprintf(ls->info.name, sizeof(ls->info.name), "%s", a);
		log_info("listening on %s", ls->info.name);
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
proxy_listen_unix(struct proxy *px, const char *addr, char *err)
{
	const char *path = addr + 5;
	struct sockaddr_un sun;
	struct stat st;
	struct proxy_listener *ls;
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
	if (chmod(path, (mode_t)px->ctx.gen->cfg->unix_mode) == -1) {
		err_set(err, "listen '%s': chmod: %s", addr, strerror(errno));
		unlink(path);
		goto fail;
	}
	if (listen(fd, PROXY_BACKLOG) == -1) {
		err_set(err, "listen '%s': %s", addr, strerror(errno));
		unlink(path);
		goto fail;
	}
	ls = proxy_listener_add(px);
	ls->info.unix_sock = 1;
	ls->unix_path = xstrdup(path);
	snprintf(ls->info.name, sizeof(ls->info.name), "unix:%s", path);
	/* backlog 0: listen() was called above. */
	ls->lev = evconnlistener_new(
	    px->ctx.base, proxy_accept_cb, ls,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (ls->lev == NULL) {
		err_set(err, "listen '%s': cannot watch the socket", addr);
		goto fail;
	}
	evconnlistener_set_error_cb(ls->lev, proxy_accept_error_cb);
	log_info("listening on %s", ls->info.name);
	return 0;
fail:
	close(fd);
	return -1;
}

static void
proxy_listeners_close(struct proxy *px)
{
	struct proxy_listener *ls;

	/* The structs stay: connections name their listener in messages. */
	for (ls = px->listeners; ls; ls = ls->next) {
		if (ls->lev) {
			evconnlistener_free(ls->lev);
			ls->lev = NULL;
		}
		if (ls->unix_path) {
			unlink(ls->unix_path);
			free(ls->unix_path);
			ls->unix_path = NULL;
		}
	}
}

/* --- signals and drain ------------------------------------------------------
 */

static void
proxy_drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *px = arg;

	log_warn("drain period over; closing %zu connection(s)",
	         px->ctx.nconns);
	event_base_loopexit(px->ctx.base, NULL);
}

static void
proxy_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct proxy *px = arg;
	struct timeval tv = {PROXY_DRAIN_MS / 1000, 0};

	if (sig == SIGHUP) {
		log_warn("SIGHUP: configuration reload is not supported yet; "
		         "still running with %s",
		         px->ctx.gen->cfg->path ? px->ctx.gen->cfg->path
		                                : "the old config");
		return;
	}
	if (px->ctx.draining) {
		log_warn("second signal: exiting now");
		event_base_loopexit(px->ctx.base, NULL);
		return;
	}
	px->ctx.draining = 1;
	log_info("%s: no longer accepting; %zu connection(s) open",
	         sig == SIGTERM ? "SIGTERM" : "SIGINT", px->ctx.nconns);
	proxy_listeners_close(px);
	conn_drain_all(&px->ctx);
	if (px->ctx.conns == NULL) {
		event_base_loopexit(px->ctx.base, NULL);
		return;
	}
	evtimer_add(px->ev_drain, &tv);
}

/* --- run --------------------------------------------------------------------
 */

static void
proxy_free(struct proxy *px)
{
	struct proxy_listener *ls, *next;

	conn_free_all(&px->ctx);
	proxy_listeners_close(px);
	for (ls = px->listeners; ls; ls = next) {
		next = ls->next;
		free(ls);
	}
	/* Tokens first: their fetches are requests of the upstream. */
	token_store_free(px->ctx.tokens);
	px->ctx.tokens = NULL;
	upstream_free(px->ctx.up);
	px->ctx.up = NULL;
	if (px->ctx.dns)
		evdns_base_free(px->ctx.dns, 1);
	accesslog_close(px->ctx.alog);
	if (px->ev_sigterm)
		event_free(px->ev_sigterm);
	if (px->ev_sigint)
		event_free(px->ev_sigint);
	if (px->ev_sighup)
		event_free(px->ev_sighup);
	if (px->ev_drain)
		event_free(px->ev_drain);
	if (px->ev_accept_retry)
		event_free(px->ev_accept_retry);
	if (px->ctx.base)
		event_base_free(px->ctx.base);
	gen_unref(px->ctx.gen);
}

static int
proxy_start(struct proxy *px, char **listen, size_t nlisten, char *err)
{
	size_t i;

	px->ctx.metrics = &px->metrics;
	px->ctx.gone = proxy_conn_gone;
	px->ctx.gone_arg = px;
	px->ctx.alog = accesslog_open(px->ctx.gen->cfg->access_log, err);
	if (px->ctx.alog == NULL)
		return -1;
	px->ctx.base = event_base_new();
	if (px->ctx.base == NULL) {
		err_set(err, "cannot create the event loop");
		return -1;
	}
	px->ctx.up = upstream_new(px->ctx.base, err);
	if (px->ctx.up == NULL)
		return -1;
	/* Tunnels resolve without blocking the loop; an idle resolver must
	 * not keep the loop from ending. */
	px->ctx.dns =
	    evdns_base_new(px->ctx.base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	                                     EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (px->ctx.dns == NULL) {
		err_set(err,
		        "cannot set up the DNS resolver (/etc/resolv.conf)");
		return -1;
	}
	px->ctx.tokens = token_store_new(px->ctx.base, px->ctx.up);
	px->ev_sigterm =
	    evsignal_new(px->ctx.base, SIGTERM, proxy_signal_cb, px);
	px->ev_sigint = evsignal_new(px->ctx.base, SIGINT, proxy_signal_cb, px);
	px->ev_sighup = evsignal_new(px->ctx.base, SIGHUP, proxy_signal_cb, px);
	px->ev_drain = evtimer_new(px->ctx.base, proxy_drain_timeout_cb, px);
	px->ev_accept_retry =
	    evtimer_new(px->ctx.base, proxy_accept_retry_cb, px);
	if (!px->ev_sigterm || !px->ev_sigint || !px->ev_sighup ||
	    !px->ev_drain || !px->ev_accept_retry) {
		err_set(err, "cannot create events");
		return -1;
	}
	evsignal_add(px->ev_sigterm, NULL);
	evsignal_add(px->ev_sigint, NULL);
	evsignal_add(px->ev_sighup, NULL);
	for (i = 0; i < nlisten; i++) {
		int rc = strncmp(listen[i], "unix:", 5) == 0
		             ? proxy_listen_unix(px, listen[i], err)
		             : proxy_listen_tcp(px, listen[i], err);
		if (rc == -1)
			return -1;
	}
	return 0;
}

int
proxy_run(struct config *cfg, char **listen, size_t nlisten)
{
	struct proxy px;
	const struct key *k;
	char err[ERR_MAX];
	int rc = 1;

	/* A client that goes away must not kill the daemon. */
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("libcurl failed to initialise");
		config_free(cfg);
		return 1;
	}
	memset(&px, 0, sizeof(px));
	if (nlisten == 0) {
		listen = cfg->listen;
		nlisten = cfg->nlisten;
	}
	px.ctx.gen = gen_new(cfg, err);
	if (px.ctx.gen == NULL) {
		log_error("%s", err);
		goto done;
	}
	if (proxy_start(&px, listen, nlisten, err) == -1) {
		log_error("%s", err);
		goto done;
	}
	k = &px.ctx.gen->key;
	log_info("aauth-proxy %s running: key %s (kid %s), %zu resource(s), "
	         "%zu rule(s), default %s",
	         AAUTH_VERSION, k->thumbprint, k->kid,
	         px.ctx.gen->cfg->nresources, px.ctx.gen->cfg->nrules,
	         config_action_name(px.ctx.gen->cfg->default_action));
	/* The first token fetches start now, while the loop serves. */
	token_store_sync(px.ctx.tokens, px.ctx.gen);
	event_base_dispatch(px.ctx.base);
	log_info("stopped: %llu request(s), %llu signed, %llu connection(s)",
	         (unsigned long long)px.metrics.requests,
	         (unsigned long long)px.metrics.signed_requests,
	         (unsigned long long)px.metrics.accepted);
	rc = 0;
done:
	proxy_free(&px);
	curl_global_cleanup();
	return rc;
}
