/*
 * proxy: the daemon — load the generation (config, key, CA), open the
 * proxy and admin listeners, run the one libevent loop. SIGHUP builds the
 * whole next generation and its listeners before swapping anything, so a
 * bad reload leaves the old one serving; SIGTERM/SIGINT stop accepting,
 * let in-flight requests finish (limits.drain_timeout_ms), wipe the key.
 */
#include "proxy.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accesslog.h"
#include "admin.h"
#include "conn.h"
#include "gen.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "token.h"
#include "upstream.h"
#include "util.h"
#include "version.h"

struct proxy {
	struct conn_ctx ctx; /* event base, generation, shared services */
	struct metrics metrics;
	struct listener *listeners; /* the proxy port(s) */
	struct listener *admins;    /* the admin port(s) */
	/* Closed by a reload; connections may still name them. */
	struct listener *retired;
	const struct proxy_opts *opts;
	int fixed_listen; /* --listen or systemd sockets: reloads keep them */
	int fixed_admin;  /* admin sockets from systemd */
	struct admin_state ast;
	struct admin *admin;
	struct event *ev_sigterm, *ev_sigint, *ev_sighup;
	struct event *ev_drain;
};

/* A connection was freed: the drain ends with the last one. */
static void
proxy_conn_gone(void *arg)
{
	struct proxy *px = arg;

	if (px->ctx.draining && px->ctx.conns == NULL)
		event_base_loopexit(px->ctx.base, NULL);
}

static void
proxy_accept(void *arg, const struct conn_listener *ls, int fd,
             const struct sockaddr *sa, int salen)
{
	struct proxy *px = arg;

	if (px->ctx.draining) {
		close(fd);
		return;
	}
	/* A descriptor number curl may still have an event for. */
	upstream_fd_reused(px->ctx.up, fd);
	conn_accept(&px->ctx, ls, fd, sa, salen);
}

static void
proxy_admin_accept(void *arg, const struct conn_listener *ls, int fd,
                   const struct sockaddr *sa, int salen)
{
	struct proxy *px = arg;

	upstream_fd_reused(px->ctx.up, fd);
	admin_accept(px->admin, ls, fd, sa, salen);
}

/* --- listeners: open what is missing, close what is gone -----------------
 */

/* Does configured address a name listener l? As configured, or as bound:
 * a config edited from port 0 to the port the daemon got keeps it. */
static int
proxy_listener_is(const struct listener *l, const char *a)
{
	return strcmp(l->addr, a) == 0 || strcmp(l->info.name, a) == 0;
}

static int
proxy_has_addr(char **addrs, size_t n, const struct listener *l)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (proxy_listener_is(l, addrs[i]))
			return 1;
	return 0;
}

static int
proxy_listening_on(const struct listener *l, const char *a)
{
	for (; l; l = l->next)
		if (l->lev && proxy_listener_is(l, a))
			return 1;
	return 0;
}

/* Open, into *added, each of addrs that cur does not listen on yet. On
 * failure nothing opened stays open. */
static int
proxy_listen_plan(struct proxy *px, const struct listener *cur, char **addrs,
                  size_t n, int mode, listener_accept_fn cb,
                  struct listener **added, char *err)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (proxy_listening_on(cur, addrs[i]) ||
		    proxy_listening_on(*added, addrs[i]))
			continue;
		if (listener_open(px->ctx.base, addrs[i], mode, cb, px, added,
		                  err) == -1) {
			listener_free_list(*added);
			*added = NULL;
			return -1;
		}
	}
	return 0;
}

/* Swap in the plan: listeners not in addrs retire, added ones join. */
static void
proxy_listen_commit(struct proxy *px, struct listener **list, char **addrs,
                    size_t n, struct listener *added, const char *what)
{
	struct listener **pp = list, *l, **tail;

	while ((l = *pp) != NULL) {
		if (proxy_has_addr(addrs, n, l)) {
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		log_info("%sno longer listening on %s", what, l->info.name);
		listener_close(l);
		l->next = px->retired;
		px->retired = l;
	}
	for (l = added; l; l = l->next)
		log_info("%slistening on %s", what, l->info.name);
	for (tail = list; *tail; tail = &(*tail)->next)
		;
	*tail = added;
}

static void
proxy_ready(struct proxy *px, const char *what)
{
	const struct config *cfg = px->ctx.gen->cfg;

	px->ast.nlisteners = listener_count(px->listeners);
	notify_send("READY=1\nSTATUS=%s: %zu listener(s), %zu resource(s), "
	            "key %s\nMAINPID=%ld",
	            what, px->ast.nlisteners, cfg->nresources,
	            px->ctx.gen->key.thumbprint, (long)getpid());
}

/* --- reload ---------------------------------------------------------------
 */

static void
proxy_reload(struct proxy *px)
{
	/* A copy: the old generation, and its config, may go below. */
	char path[PATH_MAX];
	struct listener *addp = NULL, *adda = NULL;
	struct accesslog *alog = NULL;
	struct config *cfg;
	struct gen *g = NULL;
	char err[ERR_MAX];

	snprintf(path, sizeof(path), "%s", px->ctx.gen->cfg->path);
	notify_reloading("reloading the configuration");
	px->ast.last_reload = util_now();
	log_info("SIGHUP: reloading %s", path);
	if ((cfg = config_load(path, err)) == NULL)
		goto fail;
	/* The key and CA the new config names, loaded now: a missing key is
	 * a rejected reload, not a failure on the next request. */
	if ((g = gen_new(cfg, err)) == NULL)
		goto fail;
	if ((alog = accesslog_open(g->cfg->access_log, err)) == NULL)
		goto fail;
	if (!px->fixed_listen &&
	    proxy_listen_plan(px, px->listeners, g->cfg->listen,
	                      g->cfg->nlisten, g->cfg->unix_mode, proxy_accept,
	                      &addp, err) == -1)
		goto fail;
	if (!px->fixed_admin &&
	    proxy_listen_plan(px, px->admins, g->cfg->admin_listen,
	                      g->cfg->nadmin_listen, g->cfg->unix_mode,
	                      proxy_admin_accept, &adda, err) == -1)
		goto fail;

	/* Everything is built: from here on nothing can fail. */
	if (!px->fixed_listen)
		proxy_listen_commit(px, &px->listeners, g->cfg->listen,
		                    g->cfg->nlisten, addp, "");
	if (!px->fixed_admin)
		proxy_listen_commit(px, &px->admins, g->cfg->admin_listen,
		                    g->cfg->nadmin_listen, adda, "admin ");
	accesslog_close(px->ctx.alog);
	px->ctx.alog = alog;
	gen_unref(px->ctx.gen); /* exchanges in flight keep theirs */
	px->ctx.gen = g;
	/* Token state carries over by resource name where the token settings
	 * did not change; new aauth resources start their first fetch. */
	token_store_sync(px->ctx.tokens, g);
	if (!px->opts->log_level_fixed)
		log_init(g->cfg->log_level, stderr);
	px->metrics.reloads++;
	px->ast.last_reload_ok = 1;
	px->ast.last_reload_error[0] = '\0';
	log_info("reloaded %s: key %s, %zu resource(s), %zu rule(s), "
	         "%zu route(s)",
	         path, g->key.thumbprint, g->cfg->nresources, g->cfg->nrules,
	         g->cfg->nroutes);
	proxy_ready(px, "reloaded");
	return;
fail:
	listener_free_list(addp);
	listener_free_list(adda);
	accesslog_close(alog);
	gen_unref(g);
	px->metrics.reload_failures++;
	px->ast.last_reload_ok = 0;
	snprintf(px->ast.last_reload_error, sizeof(px->ast.last_reload_error),
	         "%s", err);
	log_error("reload rejected, still serving the previous "
	          "configuration: %s",
	          err);
	notify_send("READY=1\nSTATUS=reload rejected, previous configuration "
	            "kept: %s",
	            err);
}

/* --- signals and drain ----------------------------------------------------
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
	unsigned ms = px->ctx.gen->cfg->drain_timeout_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (sig == SIGHUP) {
		if (!px->ctx.draining)
			proxy_reload(px);
		return;
	}
	if (px->ctx.draining) {
		log_warn("second signal: exiting now");
		event_base_loopexit(px->ctx.base, NULL);
		return;
	}
	px->ctx.draining = 1;
	log_info("%s: no longer accepting; %zu connection(s) open, up to %u "
	         "ms to finish",
	         sig == SIGTERM ? "SIGTERM" : "SIGINT", px->ctx.nconns, ms);
	notify_send("STOPPING=1\nSTATUS=draining %zu connection(s)",
	            px->ctx.nconns);
	/* The admin port stays up: /readyz says 503 while we drain. */
	listener_close_list(px->listeners);
	conn_drain_all(&px->ctx);
	if (px->ctx.conns == NULL || ms == 0) {
		event_base_loopexit(px->ctx.base, NULL);
		return;
	}
	evtimer_add(px->ev_drain, &tv);
}

/* --- run ------------------------------------------------------------------
 */

static void
proxy_free(struct proxy *px)
{
	conn_free_all(&px->ctx);
	admin_free(px->admin);
	listener_free_list(px->listeners);
	listener_free_list(px->admins);
	listener_free_list(px->retired);
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
	if (px->ctx.base)
		event_base_free(px->ctx.base);
	metrics_free(&px->metrics);
	gen_unref(px->ctx.gen);
}

static int
proxy_open_listeners(struct proxy *px, char *err)
{
	const struct config *cfg = px->ctx.gen->cfg;
	char **listen = cfg->listen;
	size_t nlisten = cfg->nlisten, i;
	struct listener *l;
	int n;

	n = listener_from_systemd(px->ctx.base, proxy_accept, px,
	                          &px->listeners, proxy_admin_accept, px,
	                          &px->admins, err);
	if (n == -1)
		return -1;
	px->fixed_admin = px->admins != NULL;
	if (px->listeners != NULL) {
		px->fixed_listen = 1;
		log_info("socket activation: %d socket(s) from systemd; "
		         "the config's listen list is not used",
		         n);
	} else {
		if (px->opts->nlisten > 0) {
			listen = px->opts->listen;
			nlisten = px->opts->nlisten;
			px->fixed_listen = 1;
		}
		for (i = 0; i < nlisten; i++)
			if (listener_open(px->ctx.base, listen[i],
			                  cfg->unix_mode, proxy_accept, px,
			                  &px->listeners, err) == -1)
				return -1;
	}
	if (!px->fixed_admin)
		for (i = 0; i < cfg->nadmin_listen; i++)
			if (listener_open(px->ctx.base, cfg->admin_listen[i],
			                  cfg->unix_mode, proxy_admin_accept,
			                  px, &px->admins, err) == -1)
				return -1;
	for (l = px->listeners; l; l = l->next)
		log_info("listening on %s", l->info.name);
	for (l = px->admins; l; l = l->next)
		log_info("admin listening on %s", l->info.name);
	return 0;
}

static int
proxy_start(struct proxy *px, char *err)
{
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
	token_store_set_metrics(px->ctx.tokens, &px->metrics);
	px->ast.ctx = &px->ctx;
	px->admin = admin_new(&px->ast);
	px->ev_sigterm =
	    evsignal_new(px->ctx.base, SIGTERM, proxy_signal_cb, px);
	px->ev_sigint = evsignal_new(px->ctx.base, SIGINT, proxy_signal_cb, px);
	px->ev_sighup = evsignal_new(px->ctx.base, SIGHUP, proxy_signal_cb, px);
	px->ev_drain = evtimer_new(px->ctx.base, proxy_drain_timeout_cb, px);
	if (!px->ev_sigterm || !px->ev_sigint || !px->ev_sighup ||
	    !px->ev_drain) {
		err_set(err, "cannot create events");
		return -1;
	}
	evsignal_add(px->ev_sigterm, NULL);
	evsignal_add(px->ev_sigint, NULL);
	evsignal_add(px->ev_sighup, NULL);
	if (proxy_open_listeners(px, err) == -1)
		return -1;
	px->ast.listening = 1;
	return 0;
}

int
proxy_run(struct config *cfg, const struct proxy_opts *opts)
{
	struct proxy px;
	const struct key *k;
	char err[ERR_MAX];
	int rc = 1;

	/* A client that goes away must not kill the daemon. */
	signal(SIGPIPE, SIG_IGN);
	notify_init();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("libcurl failed to initialise");
		config_free(cfg);
		return 1;
	}
	memset(&px, 0, sizeof(px));
	metrics_init(&px.metrics);
	px.opts = opts;
	px.ctx.gen = gen_new(cfg, err);
	if (px.ctx.gen == NULL) {
		log_error("%s", err);
		goto done;
	}
	if (proxy_start(&px, err) == -1) {
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
	proxy_ready(&px, "serving");
	event_base_dispatch(px.ctx.base);
	log_info("stopped: %llu request(s), %llu signed, %llu connection(s)",
	         (unsigned long long)px.metrics.requests,
	         (unsigned long long)px.metrics.signed_requests,
	         (unsigned long long)px.metrics.accepted);
	rc = 0;
done:
	if (rc != 0)
		notify_send("STATUS=failed to start: %s", err);
	proxy_free(&px);
	notify_free();
	curl_global_cleanup();
	return rc;
}
