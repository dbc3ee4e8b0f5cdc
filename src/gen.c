/*
 * gen: a configuration and its key, loaded together and freed together
 * when the last exchange that uses them is done.
 */
#include "gen.h"

#include <stdlib.h>

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
	config_free(g->cfg);
	free(g);
}
