/*
 * proxy: the daemon process — the event loop, the listeners, the signals
 * and the current generation (config and key). It owns what connections
 * share and hands it to them as a conn_ctx; nothing here parses HTTP.
 */
#ifndef AAUTH_PROXY_H
#define AAUTH_PROXY_H

#include <stddef.h>

#include "config.h"

/* Run the daemon with cfg (taken over) on the given listen addresses (the
 * config's own when nlisten is 0) until SIGTERM/SIGINT and the drain.
 * Returns the process exit status. */
int proxy_run(struct config *cfg, char **listen, size_t nlisten);

#endif
