/*
 * gen: a configuration and its key, loaded together and freed together
 * when the last exchange that uses them is done.
 */
#include "gen.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "mitm.h"
#include "util.h"

struct gen *
gen_new(struct config *cfg, char *err)
{
	struct gen *g = xcalloc(1, sizeof(*g));

	g->refs = 1;
	g->cfg = cfg;
	if (key_load(&g->key, cfg->key_file, err) == -1) {
		gen_unref(g);
		return NULL;
	}
	key_set_kid(&g->key, cfg->kid);
	if (access(cfg->ca_cert_file, F_OK) == 0) {
		g->ca = mitm_ca_load(cfg->ca_cert_file, cfg->ca_key_file, err);
		if (g->ca == NULL) {
			gen_unref(g);
			return NULL;
		}
	} else if (errno == ENOENT) {
		log_info("no local CA at %s: CONNECT to a sign host is refused "
		         "until `aauth-proxy ca init -c %s` creates one",
		         cfg->ca_cert_file, cfg->path ? cfg->path : "FILE");
	}
	return g;
}

struct gen *
gen_ref(struct gen *g)
{
	g->refs++;
	return g;
}

void
gen_unref(struct gen *g)
{
	if (g == NULL || --g->refs > 0)
		return;
	key_free(&g->key);
	mitm_ca_free(g->ca);
	config_free(g->cfg);
	free(g);
}
