/*
 * config_int: what config.c shares with the parsers of its sub-objects
 * (config_aauth.c) — the parsing context and the field readers, so every
 * error has the same shape: file, JSON path, reason.
 */
#ifndef AAUTH_CONFIG_INT_H
#define AAUTH_CONFIG_INT_H

#include <jansson.h>
#include <stdint.h>

#include "config.h"

/* Parsing context: file name for messages and the directory that
 * relative paths are resolved against. */
struct config_ctx {
	const char *file;
	char *dir;
	char *err;
};

int config_fail(struct config_ctx *x, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int config_check_keys(struct config_ctx *x, json_t *obj, const char *path,
                      const char *const *allowed);
int config_get_string(struct config_ctx *x, json_t *parent, const char *name,
                      const char *path, char **out);
int config_get_uint(struct config_ctx *x, json_t *parent, const char *name,
                    const char *path, uint64_t min, uint64_t max,
                    uint64_t *out);
char *config_path(struct config_ctx *x, const char *p);

/* resources.NAME.aauth (v) into r->aauth; the resources before r (prev,
 * nprev) are checked for a clashing redirect_uri path. */
int config_aauth_parse(struct config_ctx *x, const char *path, json_t *v,
                       struct config_resource *r,
                       const struct config_resource *prev, size_t nprev);
void config_aauth_free(struct config_aauth *a);

#endif
