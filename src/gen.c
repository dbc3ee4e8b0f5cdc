/*
 * gen: a configuration and its key, loaded together and freed together
 * when the last exchange that uses them is done.
 */
#include "gen.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mitm.h"
#include "util.h"

/* upstream.proxy_auth_file: one line "user:password", read once per
 * generation so a reload picks up a rotated credential. */
static int
gen_proxy_auth(struct config *cfg, char *err)
{
	const char *path = cfg->upstream_proxy_auth_file;
	struct buf b;
	size_t s = 0, e;

	buf_init(&b);
	if (util_read_file(path, &b, 4096, err) == -1) {
		buf_free(&b);
		return -1;
	}
	if (b.len == 0) {
		err_set(err, "upstream.proxy_auth_file %s is empty", path);
		buf_free(&b);
		return -1;
	}
	e = b.len;
	while (e > 0 && strchr(" \t\r\n", b.data[e - 1]) != NULL)
		e--;
	while (s < e && strchr(" \t\r\n", b.data[s]) != NULL)
		s++;
	if (memchr(b.data + s, ':', e - s) == NULL ||
	    memchr(b.data + s, '\n', e - s) != NULL) {
		err_set(err,
		        "upstream.proxy_auth_file %s: expected one line "
		        "user:password",
		        path);
		sodium_memzero(b.data, b.len);
		buf_free(&b);
		return -1;
	}
	cfg->upstream_proxy_userpwd = xstrndup(b.data + s, e - s);
	sodium_memzero(b.data, b.len);
	buf_free(&b);
	return 0;
}

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
	if (cfg->upstream_proxy_auth_file != NULL &&
	    gen_proxy_auth(cfg, err) == -1) {
		gen_unref(g);
		return NULL;
	}
	if (access(cfg->ca_cert_file, F_OK) == 0) {
		g->ca = mitm_ca_load(cfg->ca_cert_file, cfg->ca_key_file, err);
		if (g->ca == NULL ||
		    mitm_ca_describe(cfg->ca_cert_file, g->ca_fingerprint,
		                     &g->ca_pem, err) == -1) {
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
	free(g->ca_pem);
	config_free(g->cfg);
	free(g);
}
