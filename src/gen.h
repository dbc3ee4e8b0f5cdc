/*
 * gen: one generation of what the daemon runs with — the configuration and
 * the key and the local CA it names. Reference-counted: every exchange
 * holds the generation it started with, so replacing the current one (a
 * reload) never pulls a config or a key from under a request in flight.
 */
#ifndef AAUTH_GEN_H
#define AAUTH_GEN_H

#include "config.h"
#include "key.h"

struct mitm_ca;

struct gen {
	unsigned refs;
	struct config *cfg;
	struct key key;
	struct mitm_ca *ca; /* NULL while ca.cert_file does not exist */
	/* The CA certificate as loaded, for /ca.pem and /status: what this
	 * generation mints with, even if the file changes before a reload. */
	char *ca_pem;
	char ca_fingerprint[96];
};

/* Take over cfg and load the key and CA it names; NULL with err (cfg
 * freed). A CA whose certificate file does not exist is no error: CONNECT
 * to a sign host is then refused with a word on `ca init`. */
struct gen *gen_new(struct config *cfg, char *err);
struct gen *gen_ref(struct gen *g);
/* The last reference frees the config and wipes the key. */
void gen_unref(struct gen *g);

#endif
