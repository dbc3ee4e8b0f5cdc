/*
 * proxy: the daemon process — the event loop, the listeners, the signals
 * and the current generation (config, key, CA). It owns what connections
 * share and hands it to them as a conn_ctx; nothing here parses HTTP.
 */
#ifndef AAUTH_PROXY_H
#define AAUTH_PROXY_H

#include <stddef.h>

#include "config.h"

struct proxy_opts {
	char *
	    *listen; /* --listen: replaces the config's list, kept on reload */
	size_t nlisten;
	int log_level_fixed; /* --log-level: a reload leaves the level alone */
};

/* Run the daemon with cfg (taken over) until SIGTERM/SIGINT and the drain.
 * SIGHUP reloads cfg->path. Returns the process exit status. */
int proxy_run(struct config *cfg, const struct proxy_opts *opts);

#endif
