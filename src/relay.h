/*
 * relay: what of an upstream response reaches the client, and in which
 * framing. The client gets the upstream's fields minus the hop-by-hop set,
 * what its Connection names and its framing fields, and then our own one
 * Content-Length or our own chunking — never the upstream's spelling of a
 * length, so no second or odd length can reach the client.
 */
#ifndef AAUTH_RELAY_H
#define AAUTH_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "upstream.h"

struct evbuffer;

enum relay_framing {
	RELAY_FRAME_NONE,    /* HEAD, 1xx, 204, 304: no body */
	RELAY_FRAME_LENGTH,  /* Content-Length */
	RELAY_FRAME_CHUNKED, /* our own chunking */
	RELAY_FRAME_CLOSE,   /* HTTP/1.0 client, no length: close ends it */
};

/* The response for one client request. */
struct relay {
	int is_head;       /* the client sent HEAD */
	int version_minor; /* of the client's request */
	int keep_alive;    /* in: wanted; out: 0 if the framing needs a close */
	enum relay_framing framing; /* out */
	uint64_t length_left;       /* RELAY_FRAME_LENGTH: body bytes due */
	uint64_t bytes;             /* body bytes relayed */
};

/* Append the client's response head for h to out (one reserve, written in
 * place) and set the framing. -1 when out cannot grow. */
int relay_head(struct relay *rl, const struct upstream_head *h,
               struct evbuffer *out);
/* Append body bytes in the framing; -1 when they would overrun a
 * Content-Length (a byte beyond would be taken for the next response). */
int relay_body(struct relay *rl, const char *p, size_t n, struct evbuffer *out);
/* The end of a complete body ("0\r\n\r\n" when chunked). */
void relay_end(struct relay *rl, struct evbuffer *out);
/* The same with the upstream's trailer lines ("Name: value\r\n" each)
 * after the last chunk; with any other framing there is nowhere to put
 * them and they are dropped. */
void relay_end_trailers(struct relay *rl, struct evbuffer *out,
                        const char *trailers, size_t len);

#endif
