/*
 * gen: one generation of what the daemon runs with — the configuration and
 * the key it names (and later the CA). Reference-counted: every exchange
 * holds the generation it started with, so replacing the current one (a
 * reload) never pulls a config or a key from under a request in flight.
 */
#ifndef AAUTH_GEN_H
#define AAUTH_GEN_H

#include "config.h"
#include "key.h"

struct gen {
	unsigned refs;
	struct config *cfg;
	struct key key;
};

/* Take over cfg and load the key it names; NULL with err (cfg freed). */
struct gen *gen_new(struct config *cfg, char *err);
struct gen *gen_ref(struct gen *g);
/* The last reference frees the config and wipes the key. */
void gen_unref(struct gen *g);

#endif
