/*
 * fuzz_config: config_parse on arbitrary JSON text. The parser touches the
 * file system in one place only, a stat() of upstream.ca_file (relative
 * paths resolve against no directory here); it reads and writes nothing,
 * and the key and token files are opened later by `run`, not here. A
 * config that parses must keep the promises its readers rely on.
 */
#include <string.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* A rule naming an address warns; keep stderr for findings. */
	log_init(LOG_ERROR, stderr);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c;
	char err[ERR_MAX], *json;
	size_t i;

	json = malloc(size + 1);
	FUZZ_CHECK(json != NULL);
	memcpy(json, data, size);
	json[size] = '\0';
	err[0] = '\0';
	c = config_parse(json, "fuzz.json", err);
	free(json);
	if (c == NULL) {
		FUZZ_CHECK(err[0] != '\0' && strlen(err) < ERR_MAX);
		return 0;
	}
	FUZZ_CHECK(c->nlisten > 0 && c->key_file != NULL);
	for (i = 0; i < c->nrules; i++) {
		const struct config_rule *r = &c->rules[i];

		FUZZ_CHECK(r->host != NULL);
		FUZZ_CHECK(r->port >= -1 && r->port <= 65535);
		FUZZ_CHECK((r->action == ROUTE_SIGN) == (r->resource != NULL));
	}
	for (i = 0; i < c->nresources; i++)
		FUZZ_CHECK(c->resources[i].name != NULL);
	config_free(c);
	return 0;
}
