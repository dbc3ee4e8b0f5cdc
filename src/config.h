/*
 * config: the JSON configuration file (jansson) turned into one immutable
 * struct config. Every error names the file, the field as a JSON path
 * (e.g. rules[2].host), the value and the reason.
 */
#ifndef AAUTH_CONFIG_H
#define AAUTH_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "httpsig.h"
#include "log.h"

enum route_action {
	ROUTE_DENY, /* 403 */
	ROUTE_PASS, /* forward unsigned */
	ROUTE_SIGN, /* token + signature, then forward */
};

const char *config_action_name(enum route_action a);

/* Where a token-endpoint input comes from (resources.NAME.aauth). */
enum config_tsrc_kind {
	CONFIG_TSRC_FILE,      /* {"file": F}: re-read for every use */
	CONFIG_TSRC_COMMAND,   /* {"command": [argv…]}: its stdout */
	CONFIG_TSRC_URL,       /* {"url": U}: a signed GET (resource token) */
	CONFIG_TSRC_CHALLENGE, /* "challenge": the resource's own 401 */
	CONFIG_TSRC_MINT,      /* {"mint": {…}}: an agent+jwt we sign */
};

/* An absolute http(s) URL, split once so nothing parses it again. */
struct config_url {
	char *text;      /* as configured */
	char *scheme;    /* "https" or "http" */
	char *host;      /* canonical (netaddr), IPv6 in brackets */
	int port;        /* explicit, or the scheme's default */
	char *authority; /* host[:port], the default port left out */
	char *path;      /* "/…" raw, never empty; no query */
	char *query;     /* NULL when there is none */
};

struct config_tsrc {
	enum config_tsrc_kind kind;
	char *file;               /* FILE: absolute */
	char **argv;              /* COMMAND: NULL-terminated */
	struct config_url url;    /* URL */
	char *mint_iss;           /* MINT: the agent identifier */
	char *mint_sub;           /* MINT: default mint_iss */
	unsigned mint_lifetime_s; /* MINT: default 300 */
};

/* resources.NAME.aauth: tokens from the issuer's token endpoint. */
struct config_aauth {
	struct config_url issuer;
	char *token_target; /* issuer path + "/aauth/agent/token" */
	struct config_tsrc agent_token;
	struct config_tsrc resource_token;
	char *scope;         /* NULL: none sent */
	char *redirect_uri;  /* NULL: consent cannot complete through us */
	char *redirect_path; /* its path: the callback on our listener */
	char *state_file;    /* NULL: nothing survives a restart */
	/* Every field above in one string: a reload that changes any of
	 * them starts the resource's token state afresh. */
	char *fingerprint;
};

/* A protected resource: how requests to it are signed and authorised. */
struct config_resource {
	char *name;
	struct httpsig_profile profile;
	char *token_file;           /* static token source, re-read on change */
	struct config_aauth *aauth; /* instead of token_file */
	int upstream_tls;    /* 1: https upstream (default), 0: plaintext */
	int allow_plaintext; /* required for upstream_tls == 0 */
	int required;        /* /readyz waits for its token (default 1) */
};

struct config_rule {
	char *host;   /* lower-case; exact, or "*.suffix" */
	int wildcard; /* host is "*.suffix": matches any subdomain of suffix */
	int port;     /* -1: any port */
	enum route_action action;
	struct config_resource *resource; /* ROUTE_SIGN only */
};

/* routes[]: origin-form requests under prefix go to the base URL. */
struct config_route {
	char *prefix;   /* "/docs/": starts and ends with '/' */
	char *upstream; /* as written, for messages */
	char *scheme;   /* "http" or "https" */
	char *host;     /* canonical (netaddr_canonical_host) */
	int port;       /* -1: the scheme's default */
	char *path;     /* the base path, ends with '/' */
};

struct config {
	char *path;

	char **listen; /* "127.0.0.1:8787", "[::1]:8787" or "unix:/path" */
	size_t nlisten;
	int unix_mode; /* permissions of unix sockets (default 0660) */
	/* admin.listen: health, status and metrics; empty: no admin port. */
	char **admin_listen;
	size_t nadmin_listen;

	char *key_file;
	char *kid;

	struct config_resource *resources;
	size_t nresources;
	struct config_rule *rules;
	size_t nrules;
	enum route_action default_action; /* unmatched hosts: deny (default) */
	int block_private; /* refuse loopback/private/link-local addresses that
	                      no rule names (default on) */

	/* Client side limits. */
	size_t max_connections;
	size_t max_head_bytes;
	size_t max_fields;
	uint64_t max_body_bytes;
	uint64_t max_buffered_bytes; /* all request bodies held at once */
	unsigned header_timeout_ms;  /* whole head must arrive in this time */
	unsigned idle_timeout_ms;    /* keep-alive connection with no request */
	unsigned drain_timeout_ms;   /* SIGTERM: in-flight requests get this */

	/* Upstream side. */
	unsigned upstream_connect_timeout_ms;
	unsigned upstream_timeout_ms;      /* whole exchange, 0: none */
	unsigned upstream_idle_timeout_ms; /* no bytes from upstream */
	char *upstream_ca_file;            /* NULL: system trust store */
	char *upstream_proxy;      /* "http://host:port", NULL: direct */
	char *upstream_proxy_host; /* its host (IPv6 in brackets) */
	int upstream_proxy_port;
	char *upstream_proxy_auth_file; /* "user:password", NULL: none */
	/* The credentials read from that file when the generation loads (not
	 * by the parser, which reads no secrets); wiped with the config. */
	char *upstream_proxy_userpwd;

	enum log_level log_level;
	char *access_log; /* "stderr" (default), "off", or a file path */

	/* The local CA that intercepted TLS leaves are minted from; default
	 * ca.pem and ca-key.pem beside key.file. */
	char *ca_cert_file;
	char *ca_key_file;
	struct config_route *routes;
	size_t nroutes;
};

/* Where check-config looks without -c: the repository's config (what
 * ./dev.sh run uses, relative to the working directory), then the one the
 * systemd unit names. */
#define CONFIG_DEFAULT_PATH "conf/aauth-proxy.json"
#define CONFIG_SYSTEM_PATH  "/etc/aauth-proxy/aauth-proxy.json"

/* Parse and validate a config file. NULL on error, err names the field. */
struct config *config_load(const char *path, char *err);
/* Same, from a JSON text (tests, defaults). */
struct config *config_parse(const char *json, const char *name, char *err);
void config_free(struct config *c);

/* check-config: warn (stderr) about files an aauth resource cannot read
 * or a state_file directory it cannot write. */
void config_aauth_warn(const struct config_resource *r);

#endif
