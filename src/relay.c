/*
 * relay: the client's response head and body framing for an upstream
 * response. The head is sized first, then written in place into one
 * reserved evbuffer chunk: one copy, no formatting.
 */
#include "relay.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "util.h"

#define RELAY_IS(name, len, lit)                                               \
	((len) == sizeof(lit) - 1 && util_strncaseeq((name), (lit), (len)))

static char *
relay_put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

static char *
relay_put_dec(char *p, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	return relay_put(p, tmp + i, sizeof(tmp) - i);
}

/* The options of the upstream's Connection fields, gathered once per
 * head (a handful at most in practice; beyond RELAY_OPTS_MAX the fields
 * themselves are scanned again for each name). */
#define RELAY_OPTS_MAX 16

struct relay_opts {
	const char *p[RELAY_OPTS_MAX];
	size_t len[RELAY_OPTS_MAX];
	size_t n;
	int overflow;
};

static void
relay_opts_gather(const struct upstream_head *h, struct relay_opts *o)
{
	const char *p, *end, *t;
	size_t i;

	o->n = 0;
	o->overflow = 0;
	for (i = 0; i < h->n; i++) {
		if (!RELAY_IS(h->v[i].name, h->v[i].name_len, "Connection"))
			continue;
		p = h->v[i].value;
		end = p + h->v[i].value_len;
		while (p < end) {
			while (p < end &&
			       (*p == ' ' || *p == '\t' || *p == ','))
				p++;
			t = p;
			while (p < end && *p != ',' && *p != ' ' && *p != '\t')
				p++;
			if (p == t)
				continue;
			if (o->n == RELAY_OPTS_MAX) {
				o->overflow = 1;
				return;
			}
			o->p[o->n] = t;
			o->len[o->n++] = (size_t)(p - t);
		}
	}
}

static int
relay_opts_has(const struct upstream_head *h, const struct relay_opts *o,
               const char *name, size_t len)
{
	size_t i;

	if (o->overflow) {
		for (i = 0; i < h->n; i++)
			if (RELAY_IS(h->v[i].name, h->v[i].name_len,
			             "Connection") &&
			    http1_list_has(h->v[i].value, h->v[i].value_len,
			                   name, len))
				return 1;
		return 0;
	}
	for (i = 0; i < o->n; i++)
		if (o->len[i] == len && util_strncaseeq(o->p[i], name, len))
			return 1;
	return 0;
}

/* What each response field is for the relay. */
enum {
	RELAY_F_DROP = 0, /* hop-by-hop, named by Connection, or framing */
	RELAY_F_KEEP = 1, /* relayed as is */
};

int
relay_head(struct relay *rl, const struct upstream_head *h,
           struct evbuffer *out)
{
	struct evbuffer_iovec v;
	struct relay_opts opts;
	int status = h->status, has_conn = 0, send_len = 0;
	const char *reason = h->reason, *name;
	size_t i, total, rlen, nlen;
	unsigned char kbuf[64], *kind = kbuf;
	char *p;

	if (h->n > sizeof(kbuf))
		kind = xmalloc(h->n);
	for (i = 0; i < h->n; i++) {
		name = h->v[i].name;
		nlen = h->v[i].name_len;
		kind[i] = RELAY_F_KEEP;
		if (RELAY_IS(name, nlen, "Content-Length")) {
			kind[i] = RELAY_F_DROP;
		} else if (http1_is_hop_by_hop(name, nlen)) {
			kind[i] = RELAY_F_DROP;
			if (RELAY_IS(name, nlen, "Connection"))
				has_conn = 1;
		}
	}
	if (has_conn) {
		relay_opts_gather(h, &opts);
		for (i = 0; i < h->n; i++)
			if (kind[i] != RELAY_F_DROP &&
			    relay_opts_has(h, &opts, h->v[i].name,
			                   h->v[i].name_len))
				kind[i] = RELAY_F_DROP;
	}
	if (rl->is_head || status == 204 || status == 304 ||
	    (status >= 100 && status < 200)) {
		rl->framing = RELAY_FRAME_NONE;
		/* HEAD and 304 may still say how long the body would be;
		 * 1xx and 204 must not (RFC 9110 §8.6). */
		send_len =
		    h->content_length >= 0 && status >= 200 && status != 204;
	} else if (h->content_length >= 0) {
		/* Set only without Transfer-Encoding (upstream.h): curl
		 * then delivers exactly this many bytes. */
		rl->framing = RELAY_FRAME_LENGTH;
		rl->length_left = (uint64_t)h->content_length;
		send_len = 1;
	} else if (rl->version_minor >= 1) {
		rl->framing = RELAY_FRAME_CHUNKED;
	} else {
		rl->framing = RELAY_FRAME_CLOSE;
		rl->keep_alive = 0;
	}

	if (reason[0] == '\0')
		reason = http1_status_reason(status);
	rlen = strlen(reason);
	total = 9 + 12 + 1 + rlen + 2 + 16 + 20 + 2 + 28 + 24 + 2;
	for (i = 0; i < h->n; i++)
		if (kind[i] != RELAY_F_DROP)
			total += h->v[i].name_len + 2 + h->v[i].value_len + 2;
	if (evbuffer_reserve_space(out, (ssize_t)total, &v, 1) < 1) {
		if (kind != kbuf)
			free(kind);
		return -1;
	}
	p = v.iov_base;
	p = relay_put(p, "HTTP/1.1 ", 9);
	p = relay_put_dec(p, (unsigned)status);
	*p++ = ' ';
	p = relay_put(p, reason, rlen);
	p = relay_put(p, "\r\n", 2);
	for (i = 0; i < h->n; i++) {
		if (kind[i] == RELAY_F_DROP)
			continue;
		p = relay_put(p, h->v[i].name, h->v[i].name_len);
		p = relay_put(p, ": ", 2);
		p = relay_put(p, h->v[i].value, h->v[i].value_len);
		p = relay_put(p, "\r\n", 2);
	}
	if (send_len) {
		p = relay_put(p, "Content-Length: ", 16);
		p = relay_put_dec(p, (uint64_t)h->content_length);
		p = relay_put(p, "\r\n", 2);
	}
	if (rl->framing == RELAY_FRAME_CHUNKED)
		p = relay_put(p, "Transfer-Encoding: chunked\r\n", 28);
	if (!rl->keep_alive)
		p = relay_put(p, "Connection: close\r\n", 19);
	else if (rl->version_minor == 0)
		p = relay_put(p, "Connection: keep-alive\r\n", 24);
	p = relay_put(p, "\r\n", 2);
	v.iov_len = (size_t)(p - (char *)v.iov_base);
	evbuffer_commit_space(out, &v, 1);
	if (kind != kbuf)
		free(kind);
	return 0;
}

int
relay_body(struct relay *rl, const char *p, size_t n, struct evbuffer *out)
{
	static const char hex[] = "0123456789abcdef";
	char size[24];
	size_t i, x;

	switch (rl->framing) {
	case RELAY_FRAME_NONE:
		return 0;
	case RELAY_FRAME_CHUNKED:
		i = sizeof(size);
		size[--i] = '\n';
		size[--i] = '\r';
		x = n;
		do {
			size[--i] = hex[x & 15];
			x >>= 4;
		} while (x != 0);
		evbuffer_add(out, size + i, sizeof(size) - i);
		evbuffer_add(out, p, n);
		evbuffer_add(out, "\r\n", 2);
		break;
	case RELAY_FRAME_LENGTH:
		if (n > rl->length_left)
			return -1;
		rl->length_left -= n;
		evbuffer_add(out, p, n);
		break;
	default:
		evbuffer_add(out, p, n);
		break;
	}
	rl->bytes += n;
	return 0;
}

void
relay_end(struct relay *rl, struct evbuffer *out)
{
	if (rl->framing == RELAY_FRAME_CHUNKED)
		evbuffer_add(out, "0\r\n\r\n", 5);
}

void
relay_end_trailers(struct relay *rl, struct evbuffer *out, const char *trailers,
                   size_t len)
{
	if (rl->framing != RELAY_FRAME_CHUNKED || len == 0) {
		relay_end(rl, out);
		return;
	}
	evbuffer_add(out, "0\r\n", 3);
	evbuffer_add(out, trailers, len);
	evbuffer_add(out, "\r\n", 2);
}
