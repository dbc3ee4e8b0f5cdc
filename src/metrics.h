/*
 * metrics: the daemon's counters, in one place the connection code writes
 * and the process reports (the stop line today, /metrics later). Plain
 * numbers: one process, one thread.
 */
#ifndef AAUTH_METRICS_H
#define AAUTH_METRICS_H

#include <stdint.h>

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
};

#endif
