/*
 * metrics: the daemon's counters, in one place the connection code writes
 * and the process reports (the stop line, and /metrics in the Prometheus
 * text format 0.0.4). Plain numbers: one process, one thread.
 */
#ifndef AAUTH_METRICS_H
#define AAUTH_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct buf;

/* Upper bounds in seconds, shared by both duration histograms: signing is
 * tens of microseconds, upstream exchanges up to minutes. */
#define METRICS_NBUCKETS 14

struct metrics_hist {
	uint64_t
	    bucket[METRICS_NBUCKETS]; /* not cumulative; summed on output */
	uint64_t count;
	double sum; /* seconds */
};

/* One labelled counter: the label values joined, and its count. */
struct metrics_series {
	char *labels; /* already in exposition form: a="x",b="y" */
	uint64_t n;
};

struct metrics_family {
	struct metrics_series *v;
	size_t n, cap;
};

struct metrics {
	uint64_t accepted; /* client connections */
	uint64_t refused;  /* over max_connections */
	uint64_t requests;
	uint64_t signed_requests;
	uint64_t passed;
	uint64_t denied;
	uint64_t local_errors;    /* answered by the proxy with >= 400 */
	uint64_t upstream_errors; /* 502/503/504 from the upstream side */
	uint64_t open_conns;      /* client connections open now */
	uint64_t body_bytes;      /* request bodies buffered now */
	uint64_t bytes_in;        /* request bodies received from clients */
	uint64_t bytes_out;       /* response bodies sent to clients */
	uint64_t reloads;         /* SIGHUP reloads that took effect */
	uint64_t reload_failures; /* rejected ones (old config kept) */
	int64_t start_time;       /* unix seconds */
	struct metrics_family by_request;    /* action, resource, class */
	struct metrics_family token_fetches; /* type, outcome */
	struct metrics_hist signing, upstream;
};

void metrics_init(struct metrics *m);
void metrics_free(struct metrics *m);
/* One finished exchange: action "sign"/"pass"/"deny" or "" when it was
 * never routed, resource "" when none, the status sent. */
void metrics_request(struct metrics *m, const char *action,
                     const char *resource, int status, uint64_t bytes_in,
                     uint64_t bytes_out);
void metrics_observe(struct metrics_hist *h, double seconds);
/* A token request by type ("static_file", "auth_token", "refresh", …)
 * and outcome ("ok", "error", "consent", …): for the token engine. */
void metrics_token_fetch(struct metrics *m, const char *type,
                         const char *outcome);
/* Monotonic microseconds, for the signing histogram. */
uint64_t metrics_now_us(void);

/* What the process knows beyond the counters, per resource, for the
 * exposition. expires_in < 0: unknown (not emitted). */
struct metrics_resource {
	const char *name;
	const char *state;
	int64_t expires_in;
};

/* The whole exposition (text format 0.0.4) appended to out. */
void metrics_write(const struct metrics *m, const struct metrics_resource *res,
                   size_t nres, struct buf *out);

#endif
