/*
 * metrics: the counters and the Prometheus text exposition (format 0.0.4).
 * Labelled counters are small lists searched linearly: a handful of
 * actions × resources × status classes, so no hash table is worth it.
 */
#include "metrics.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

static const double metrics_bounds[METRICS_NBUCKETS] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
    0.01,    0.05,   0.1,     0.5,    1,     5,      30};

void
metrics_init(struct metrics *m)
{
	memset(m, 0, sizeof(*m));
	m->start_time = util_now();
}

static void
metrics_family_free(struct metrics_family *f)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		free(f->v[i].labels);
	free(f->v);
	memset(f, 0, sizeof(*f));
}

void
metrics_free(struct metrics *m)
{
	metrics_family_free(&m->by_request);
	metrics_family_free(&m->token_fetches);
}

/* A label value as the exposition format wants it: \\, \" and \n escaped
 * (a resource name is the operator's and may hold anything). */
static void
metrics_label(struct buf *b, const char *name, const char *v)
{
	if (b->len > 0)
		buf_appendc(b, ',');
	buf_appendf(b, "%s=\"", name);
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			buf_appendc(b, '\\');
		if (*v == '\n')
			buf_appends(b, "\\n");
		else
			buf_appendc(b, *v);
	}
	buf_appendc(b, '"');
}

static void
metrics_family_inc(struct metrics_family *f, struct buf *labels)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->v[i].labels, labels->data) == 0) {
			f->v[i].n++;
			return;
		}
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 8;
		f->v = xrealloc(f->v, f->cap * sizeof(*f->v));
	}
	f->v[f->n].labels = buf_steal(labels);
	f->v[f->n++].n = 1;
}

void
metrics_request(struct metrics *m, const char *action, const char *resource,
                int status, uint64_t bytes_in, uint64_t bytes_out)
{
	struct buf b;
	char cls[4] = "0xx";

	if (status >= 100 && status < 600)
		cls[0] = (char)('0' + status / 100);
	buf_init(&b);
	metrics_label(&b, "action", action ? action : "none");
	metrics_label(&b, "resource", resource ? resource : "");
	metrics_label(&b, "code", cls);
	metrics_family_inc(&m->by_request, &b);
	buf_free(&b);
	m->bytes_in += bytes_in;
	m->bytes_out += bytes_out;
}

void
metrics_token_fetch(struct metrics *m, const char *type, const char *outcome)
{
	struct buf b;

	buf_init(&b);
	metrics_label(&b, "type", type);
	metrics_label(&b, "outcome", outcome);
	metrics_family_inc(&m->token_fetches, &b);
	buf_free(&b);
}

void
metrics_observe(struct metrics_hist *h, double seconds)
{
	size_t i;

	for (i = 0; i < METRICS_NBUCKETS; i++)
		if (seconds <= metrics_bounds[i]) {
			h->bucket[i]++;
			break;
		}
	h->count++;
	h->sum += seconds;
}

uint64_t
metrics_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void
metrics_head(struct buf *out, const char *name, const char *type,
             const char *help)
{
	buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	            type);
}

static void
metrics_scalar(struct buf *out, const char *name, const char *type,
               const char *help, uint64_t v)
{
	metrics_head(out, name, type, help);
	buf_appendf(out, "%s %llu\n", name, (unsigned long long)v);
}

static void
metrics_family_write(struct buf *out, const char *name, const char *help,
                     const struct metrics_family *f)
{
	size_t i;

	metrics_head(out, name, "counter", help);
	for (i = 0; i < f->n; i++)
		buf_appendf(out, "%s{%s} %llu\n", name, f->v[i].labels,
		            (unsigned long long)f->v[i].n);
}

static void
metrics_hist_write(struct buf *out, const char *name, const char *help,
                   const struct metrics_hist *h)
{
	uint64_t cum = 0;
	size_t i;

	metrics_head(out, name, "histogram", help);
	for (i = 0; i < METRICS_NBUCKETS; i++) {
		cum += h->bucket[i];
		buf_appendf(out, "%s_bucket{le=\"%g\"} %llu\n", name,
		            metrics_bounds[i], (unsigned long long)cum);
	}
	buf_appendf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name,
	            (unsigned long long)h->count);
	buf_appendf(out, "%s_sum %.6f\n%s_count %llu\n", name, h->sum, name,
	            (unsigned long long)h->count);
}

void
metrics_write(const struct metrics *m, const struct metrics_resource *res,
              size_t nres, struct buf *out)
{
	struct buf l;
	size_t i;

	metrics_family_write(out, "aauth_proxy_requests_total",
	                     "Requests by action, resource and status class.",
	                     &m->by_request);
	metrics_hist_write(out, "aauth_proxy_signing_duration_seconds",
	                   "Time to finalise and sign one request.",
	                   &m->signing);
	metrics_hist_write(out, "aauth_proxy_upstream_duration_seconds",
	                   "Time from sending upstream to the response head.",
	                   &m->upstream);
	metrics_family_write(out, "aauth_proxy_token_fetches_total",
	                     "Token requests by type and outcome.",
	                     &m->token_fetches);
	metrics_head(out, "aauth_proxy_token_expiry_seconds", "gauge",
	             "Seconds until the resource's token expires.");
	buf_init(&l);
	for (i = 0; i < nres; i++) {
		if (res[i].expires_in < 0)
			continue;
		buf_reset(&l);
		metrics_label(&l, "resource", res[i].name);
		buf_appendf(out, "aauth_proxy_token_expiry_seconds{%s} %lld\n",
		            l.data, (long long)res[i].expires_in);
	}
	metrics_head(out, "aauth_proxy_token_valid", "gauge",
	             "1 when the resource holds a usable token.");
	for (i = 0; i < nres; i++) {
		buf_reset(&l);
		metrics_label(&l, "resource", res[i].name);
		metrics_label(&l, "state", res[i].state);
		buf_appendf(out, "aauth_proxy_token_valid{%s} %d\n", l.data,
		            strcmp(res[i].state, "valid") == 0);
	}
	buf_free(&l);
	metrics_scalar(out, "aauth_proxy_client_connections", "gauge",
	               "Client connections open now.", m->open_conns);
	metrics_scalar(out, "aauth_proxy_connections_accepted_total", "counter",
	               "Client connections accepted.", m->accepted);
	metrics_scalar(out, "aauth_proxy_connections_refused_total", "counter",
	               "Client connections refused over max_connections.",
	               m->refused);
	metrics_scalar(out, "aauth_proxy_received_bytes_total", "counter",
	               "Request body bytes received from clients.",
	               m->bytes_in);
	metrics_scalar(out, "aauth_proxy_sent_bytes_total", "counter",
	               "Response body bytes sent to clients.", m->bytes_out);
	metrics_scalar(out, "aauth_proxy_upstream_errors_total", "counter",
	               "Exchanges that failed on the upstream side.",
	               m->upstream_errors);
	metrics_scalar(out, "aauth_proxy_config_reloads_total", "counter",
	               "Reloads that took effect.", m->reloads);
	metrics_scalar(out, "aauth_proxy_config_reload_failures_total",
	               "counter", "Reloads rejected (the old config kept).",
	               m->reload_failures);
	metrics_head(out, "aauth_proxy_start_time_seconds", "gauge",
	             "Process start time, unix seconds.");
	buf_appendf(out, "aauth_proxy_start_time_seconds %lld\n",
	            (long long)m->start_time);
}
