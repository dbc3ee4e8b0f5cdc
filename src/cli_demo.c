/*
 * cli_demo: `aauth-proxy demo-resource` — a small protected resource that
 * verifies each request's signature (as `verify` does) and Bearer token and
 * answers what it found as JSON. `./dev.sh run` puts it behind the proxy so
 * a first request succeeds; a resource developer points an agent at it to
 * see what a signed request carries. One libevent loop, the project's own
 * parser, fixed limits; it never echoes a token.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <getopt.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "digest.h"
#include "http1.h"
#include "httpsig.h"
#include "listener.h"
#include "log.h"
#include "token.h"
#include "util.h"

#define CLI_DEMO_DEFAULT_LISTEN "127.0.0.1:8790"
/* Room for a request head with a large token (token files hold up to 64
 * KiB) and the signature fields. */
#define CLI_DEMO_MAX_HEAD   (96 * 1024)
#define CLI_DEMO_MAX_FIELDS 100
#define CLI_DEMO_MAX_BODY   (1024 * 1024)
#define CLI_DEMO_MAX_CONNS  64
/* A head must be complete, and a silent connection is closed, after: */
#define CLI_DEMO_TIMEOUT_S 10
/* Stop reading a client that does not read its answers. */
#define CLI_DEMO_MAX_OUTPUT (1024 * 1024)
/* Nonces seen in verified requests: a replay within the last this many
 * requests is refused (the created window bounds the rest). */
#define CLI_DEMO_NONCES 4096
/* The answer over CLI_DEMO_MAX_CONNS, written without a connection object. */
#define CLI_DEMO_BUSY_BODY                                                     \
	"{\"verified\": false, \"reason\": \"too many connections\"}\n"

enum cli_demo_state {
	CLI_DEMO_HEAD,
	CLI_DEMO_BODY,    /* Content-Length body */
	CLI_DEMO_CHUNKED, /* chunked body */
	CLI_DEMO_CLOSING, /* answered; close once the output is written */
};

struct cli_demo;

struct cli_demo_conn {
	struct cli_demo *d;
	struct bufferevent *bev;
	enum cli_demo_state state;
	struct http_request req;
	struct http_chunked chunked;
	struct buf body;
	uint64_t need;         /* Content-Length bytes still to come */
	uint64_t head_started; /* monotonic ms when the head began */
	char peer[INET6_ADDRSTRLEN + 8];
	struct cli_demo_conn *prev, *next;
};

struct cli_demo {
	struct event_base *base;
	struct listener *listeners;
	struct cli_verifier v;
	const char *token_file; /* NULL: the token is not checked */
	struct cli_demo_conn *conns;
	size_t nconns;
	unsigned char nonces[CLI_DEMO_NONCES][16]; /* hashes of seen nonces */
	size_t nnonces, nonce_next;
	uint64_t requests, verified;
};

static void cli_demo_conn_process(struct cli_demo_conn *c);

static void
cli_demo_usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: aauth-proxy demo-resource --key PUBFILE [--listen ADDR] "
	    "[options]\n"
	    "\n"
	    "A small HTTP/1.1 resource for trying the proxy and for seeing "
	    "what a signed\n"
	    "request carries. Each request's signature is verified (as "
	    "`verify` does) and\n"
	    "its Bearer token checked; the answer is JSON: \"verified\": "
	    "true, or false\n"
	    "with the \"reason\", the covered components, the signature "
	    "parameters, the\n"
	    "key's thumbprint, a short hash of the token (never the token) "
	    "and the body's\n"
	    "digest. Status 200 when verified, 401 when not. Stop it with "
	    "Ctrl-C.\n"
	    "\n"
	    "options:\n"
	    "  -k, --key FILE         the agent's public key: SPKI or PKCS#8 "
	    "PEM, JWK or JWKS\n"
	    "  -l, --listen ADDR      HOST:PORT or [IPv6]:PORT (default "
	    "%s)\n"
	    "  -t, --token-file FILE  the access token requests must carry "
	    "(re-read for\n"
	    "                         each request); without it any token "
	    "is accepted\n"
	    "  -p, --profile NAME     lumoauth (default), rfc9421 or "
	    "aauth-draft\n"
	    "      --label L          the signature label (default: the "
	    "profile's)\n"
	    "      --components LIST  components that must be covered "
	    "(default: the\n"
	    "                         profile's)\n"
	    "  -h, --help             show this help\n"
	    "\n"
	    "Limits: request head %d KiB, %d header lines, body %d KiB, %d "
	    "connections,\n"
	    "%d s for a head or of silence. Requests arrive as plain HTTP "
	    "(scheme http);\n"
	    "a nonce already seen in one of the last %d verified requests is "
	    "a replay.\n",
	    CLI_DEMO_DEFAULT_LISTEN, CLI_DEMO_MAX_HEAD / 1024,
	    CLI_DEMO_MAX_FIELDS, CLI_DEMO_MAX_BODY / 1024, CLI_DEMO_MAX_CONNS,
	    CLI_DEMO_TIMEOUT_S, CLI_DEMO_NONCES);
}

/* --- answers ---------------------------------------------------------- */

/* A JSON string from request bytes: anything but printable ASCII becomes
 * '?', so hostile bytes (which jansson would refuse as UTF-8) can never
 * cost the answer. NULL becomes null. */
static json_t *
cli_demo_str(const char *s)
{
	json_t *j;
	char *t;
	size_t i;

	if (s == NULL)
		return json_null();
	t = xstrdup(s);
	for (i = 0; t[i]; i++)
		if ((unsigned char)t[i] < 0x20 || (unsigned char)t[i] > 0x7e)
			t[i] = '?';
	j = json_string(t);
	free(t);
	return j;
}

/* Queue one response; body is a JSON object (consumed). close_after also
 * stops reading: the connection ends once the answer is written. */
static void
cli_demo_respond(struct cli_demo_conn *c, int status, json_t *body,
                 int close_after)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct http_fields f;
	char *text = json_dumps(body, JSON_INDENT(2));
	char n[32];
	struct buf head;

	json_decref(body);
	if (text == NULL) /* only when out of memory */
		abort();
	http_fields_init(&f);
	http_fields_add(&f, "Content-Type", "application/json");
	snprintf(n, sizeof(n), "%zu", strlen(text) + 1);
	http_fields_add(&f, "Content-Length", n);
	http_fields_add(&f, "Cache-Control", "no-store");
	if (close_after)
		http_fields_add(&f, "Connection", "close");
	buf_init(&head);
	http1_write_response_head(&head, status, &f);
	evbuffer_add(out, head.data, head.len);
	evbuffer_add(out, text, strlen(text));
	evbuffer_add(out, "\n", 1);
	buf_free(&head);
	http_fields_free(&f);
	free(text);
	if (close_after) {
		c->state = CLI_DEMO_CLOSING;
		bufferevent_disable(c->bev, EV_READ);
	}
}

/* A request the demo could not take as HTTP: a status and why, then the
 * connection closes (the framing can no longer be trusted). */
static void
cli_demo_refuse(struct cli_demo_conn *c, int status, const char *why)
{
	json_t *o = json_object();

	json_object_set_new(o, "verified", json_false());
	json_object_set_new(o, "reason", cli_demo_str(why));
	json_object_set_new(o, "status", json_integer(status));
	log_info("demo-resource: %s: %d %s", c->peer, status,
	         json_string_value(json_object_get(o, "reason")));
	cli_demo_respond(c, status, o, 1);
}

/* Remember a verified nonce; 1 when it was seen before (a replay). */
static int
cli_demo_nonce_seen(struct cli_demo *d, const char *label, const char *nonce)
{
	unsigned char h[crypto_generichash_BYTES];
	crypto_generichash_state st;
	size_t i;

	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const unsigned char *)label,
	                          strlen(label) + 1);
	crypto_generichash_update(&st, (const unsigned char *)nonce,
	                          strlen(nonce));
	crypto_generichash_final(&st, h, sizeof(h));
	for (i = 0; i < d->nnonces; i++)
		if (memcmp(d->nonces[i], h, sizeof(d->nonces[i])) == 0)
			return 1;
	memcpy(d->nonces[d->nonce_next], h, sizeof(d->nonces[0]));
	d->nonce_next = (d->nonce_next + 1) % CLI_DEMO_NONCES;
	if (d->nnonces < CLI_DEMO_NONCES)
		d->nnonces++;
	return 0;
}

/* The Bearer token from Authorization, or NULL. Points into req. */
static const char *
cli_demo_bearer(const struct http_request *req)
{
	const char *a = http_fields_get(&req->fields, "Authorization");

	if (a == NULL ||
	    http_fields_count(&req->fields, "Authorization") != 1 ||
	    !util_strncaseeq(a, "Bearer ", 7))
		return NULL;
	a += 7;
	while (*a == ' ')
		a++;
	return *a ? a : NULL;
}

/* Check the token against --token-file. 0 or -1 with why. */
static int
cli_demo_check_token(struct cli_demo *d, const char *token, char *why)
{
	char err[ERR_MAX];
	struct buf want;
	int rc = -1;

	if (d->token_file == NULL)
		return 0;
	if (token == NULL) {
		err_set(why, "no Authorization: Bearer token (the proxy adds "
		             "it for a sign rule)");
		return -1;
	}
	buf_init(&want);
	if (token_file_read(d->token_file, &want, err) == -1)
		err_set(why, "cannot check the token: %s", err);
	else if (want.len != strlen(token) ||
	         sodium_memcmp(want.data, token, want.len) != 0)
		err_set(why, "the Bearer token is not the one in %s",
		        d->token_file);
	else
		rc = 0;
	if (want.data != NULL)
		sodium_memzero(want.data, want.len);
	buf_free(&want);
	return rc;
}

/* Verify the whole request and answer it. */
static void
cli_demo_handle(struct cli_demo_conn *c)
{
	struct cli_demo *d = c->d;
	struct http_request *r = &c->req;
	const char *label = cli_verifier_label(&d->v), *token;
	char why[ERR_MAX] = "", hash[13];
	struct httpsig_info info;
	json_t *o, *req, *comps, *params;
	struct buf digest;
	int ok, have_info;
	size_t i;

	d->requests++;
	if (r->scheme == NULL)
		http_request_set_scheme(r, "http");
	/* The body moves into the request: what httpsig_verify hashes. */
	r->body_len = c->body.len;
	r->body = (unsigned char *)buf_steal(&c->body);

	ok = cli_verifier_check(&d->v, r, NULL, NULL, why) == 0;
	have_info = httpsig_inspect(r, label, &info, NULL) == 0;
	token = cli_demo_bearer(r);
	if (ok && cli_demo_check_token(d, token, why) == -1)
		ok = 0;
	if (ok && have_info && info.nonce != NULL &&
	    cli_demo_nonce_seen(d, label, info.nonce)) {
		err_set(why,
		        "nonce \"%.64s\" was already used: a replayed "
		        "request (a signer makes a new nonce every time)",
		        info.nonce);
		ok = 0;
	}
	if (!ok && strstr(why, "no Signature-Input") != NULL)
		err_set(why,
		        "the request is not signed (no Signature-Input): did "
		        "it go through aauth-proxy? curl, wget and git read "
		        "only the lower-case http_proxy");

	o = json_object();
	json_object_set_new(o, "verified", json_boolean(ok));
	if (!ok)
		json_object_set_new(o, "reason", cli_demo_str(why));
	json_object_set_new(o, "profile", cli_demo_str(d->v.profile.name));
	json_object_set_new(o, "label", cli_demo_str(label));
	req = json_object();
	json_object_set_new(req, "method", cli_demo_str(r->method));
	json_object_set_new(req, "authority", cli_demo_str(r->authority));
	json_object_set_new(req, "path", cli_demo_str(r->path));
	json_object_set_new(req, "query", cli_demo_str(r->query));
	json_object_set_new(o, "request", req);
	comps = json_array();
	params = json_object();
	if (have_info) {
		for (i = 0; i < info.ncomponents; i++)
			json_array_append_new(comps,
			                      cli_demo_str(info.components[i]));
		if (info.created)
			json_object_set_new(params, "created",
			                    json_integer(info.created));
		if (info.expires)
			json_object_set_new(params, "expires",
			                    json_integer(info.expires));
		if (info.nonce)
			json_object_set_new(params, "nonce",
			                    cli_demo_str(info.nonce));
		if (info.keyid)
			json_object_set_new(params, "keyid",
			                    cli_demo_str(info.keyid));
		if (info.alg)
			json_object_set_new(params, "alg",
			                    cli_demo_str(info.alg));
		if (info.tag)
			json_object_set_new(params, "tag",
			                    cli_demo_str(info.tag));
		httpsig_info_free(&info);
	}
	json_object_set_new(o, "covered", comps);
	json_object_set_new(o, "params", params);
	json_object_set_new(o, "key", json_string(d->v.key.thumbprint));
	if (token != NULL) {
		log_token_hash(token, hash);
		json_object_set_new(o, "token", json_string(hash));
	} else {
		json_object_set_new(o, "token", json_null());
	}
	json_object_set_new(o, "token_checked",
	                    json_boolean(d->token_file != NULL));
	buf_init(&digest);
	digest_field(DIGEST_SHA256, r->body ? (void *)r->body : "", r->body_len,
	             &digest);
	json_object_set_new(o, "body",
	                    json_pack("{s:I,s:s}", "bytes",
	                              (json_int_t)r->body_len, "digest",
	                              digest.data));
	buf_free(&digest);

	d->verified += ok;
	log_info("demo-resource: %s %s %s: %s%s", c->peer,
	         json_string_value(json_object_get(req, "method")),
	         json_string_value(json_object_get(req, "path")),
	         ok ? "verified" : "not verified: ",
	         ok ? "" : json_string_value(json_object_get(o, "reason")));
	cli_demo_respond(c, ok ? 200 : 401, o, r->conn_close);
	if (c->state == CLI_DEMO_CLOSING)
		return;
	/* Ready for the next request on this connection. */
	http_request_free(&c->req);
	buf_reset(&c->body);
	c->state = CLI_DEMO_HEAD;
}

/* --- one connection --------------------------------------------------- */

static void
cli_demo_conn_free(struct cli_demo_conn *c)
{
	struct cli_demo *d = c->d;

	if (c->prev)
		c->prev->next = c->next;
	else
		d->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	d->nconns--;
	bufferevent_free(c->bev);
	http_request_free(&c->req);
	buf_free(&c->body);
	free(c);
}

/* The head is complete: decide how the body is framed. */
static void
cli_demo_head_done(struct cli_demo_conn *c)
{
	struct http_request *r = &c->req;

	if (r->form != HTTP_TARGET_ORIGIN && r->form != HTTP_TARGET_ABSOLUTE) {
		cli_demo_refuse(
		    c, 400,
		    "the demo resource takes origin-form requests; it "
		    "is a resource, not a proxy");
		return;
	}
	buf_reset(&c->body);
	if (r->chunked) {
		http_chunked_init(&c->chunked);
		c->state = CLI_DEMO_CHUNKED;
	} else if (r->content_length > 0) {
		if (r->content_length > CLI_DEMO_MAX_BODY) {
			cli_demo_refuse(c, 413,
			                "the body is larger than 1 MiB");
			return;
		}
		c->need = (uint64_t)r->content_length;
		c->state = CLI_DEMO_BODY;
	} else {
		cli_demo_handle(c);
		return;
	}
	if (r->expect_continue)
		evbuffer_add_printf(bufferevent_get_output(c->bev),
		                    "HTTP/1.1 100 Continue\r\n\r\n");
}

/* Parse and answer every complete request in the input, in order. */
static void
cli_demo_conn_process(struct cli_demo_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *out = bufferevent_get_output(c->bev);
	static const struct http_limits lim = {
	    .max_head_bytes = CLI_DEMO_MAX_HEAD,
	    .max_fields = CLI_DEMO_MAX_FIELDS,
	};
	char err[ERR_MAX];
	size_t len, consumed;
	int rc, status;
	char *p;

	for (;;) {
		len = evbuffer_get_length(in);
		if (c->state == CLI_DEMO_CLOSING)
			return;
		if (evbuffer_get_length(out) > CLI_DEMO_MAX_OUTPUT) {
			/* Resumed by the write callback once drained. */
			bufferevent_disable(c->bev, EV_READ);
			return;
		}
		if (c->state == CLI_DEMO_HEAD) {
			if (len == 0)
				return;
			if (c->head_started == 0)
				c->head_started = util_mono_ms();
			/* The parser refuses a head beyond its limit, so
			 * it never needs more than that many bytes. */
			if (len > CLI_DEMO_MAX_HEAD + 1)
				len = CLI_DEMO_MAX_HEAD + 1;
			p = (char *)evbuffer_pullup(in, (ssize_t)len);
			rc = http1_parse_request_head(p, len, &lim, &c->req,
			                              &consumed, &status, err);
			if (rc == -1) {
				cli_demo_refuse(c, status, err);
				return;
			}
			if (rc == 0) {
				if (util_mono_ms() - c->head_started >
				    CLI_DEMO_TIMEOUT_S * 1000)
					cli_demo_refuse(
					    c, 408,
					    "the request head took too "
					    "long");
				return;
			}
			evbuffer_drain(in, consumed);
			c->head_started = 0;
			cli_demo_head_done(c);
		} else if (c->state == CLI_DEMO_BODY) {
			if (len == 0)
				return;
			if (len > c->need)
				len = (size_t)c->need;
			buf_reserve(&c->body, len);
			evbuffer_remove(in, c->body.data + c->body.len, len);
			c->body.len += len;
			c->body.data[c->body.len] = '\0';
			c->need -= len;
			if (c->need == 0)
				cli_demo_handle(c);
		} else if (c->state == CLI_DEMO_CHUNKED) {
			if (len == 0)
				return;
			p = (char *)evbuffer_pullup(in, (ssize_t)len);
			rc = http_chunked_decode(&c->chunked, p, len, &c->body,
			                         &consumed, err);
			evbuffer_drain(in, consumed);
			if (rc == -1) {
				cli_demo_refuse(c, 400, err);
				return;
			}
			if (c->body.len > CLI_DEMO_MAX_BODY) {
				cli_demo_refuse(
				    c, 413, "the body is larger than 1 MiB");
				return;
			}
			if (rc == 0)
				return;
			cli_demo_handle(c);
		}
	}
}

static void
cli_demo_read_cb(struct bufferevent *bev, void *arg)
{
	cli_demo_conn_process(arg);
}

static void
cli_demo_write_cb(struct bufferevent *bev, void *arg)
{
	struct cli_demo_conn *c = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	if (c->state == CLI_DEMO_CLOSING) {
		cli_demo_conn_free(c);
		return;
	}
	/* A client that had stopped reading has caught up. */
	if (!(bufferevent_get_enabled(bev) & EV_READ)) {
		bufferevent_enable(bev, EV_READ);
		cli_demo_conn_process(c);
	}
}

static void
cli_demo_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct cli_demo_conn *c = arg;
	struct timeval tv = {CLI_DEMO_TIMEOUT_S, 0};

	if ((what & BEV_EVENT_TIMEOUT) && c->state != CLI_DEMO_CLOSING &&
	    (what & BEV_EVENT_READING) &&
	    (c->state != CLI_DEMO_HEAD ||
	     evbuffer_get_length(bufferevent_get_input(bev)) > 0)) {
		/* Part of a request, then silence: say so, then close. */
		cli_demo_refuse(c, 408, "the request stopped arriving");
		bufferevent_set_timeouts(bev, NULL, &tv);
		return;
	}
	if ((what & BEV_EVENT_EOF) && c->state != CLI_DEMO_CLOSING &&
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
		/* The client finished sending (shutdown) before reading its
		 * answers: write them, then close. */
		c->state = CLI_DEMO_CLOSING;
		bufferevent_disable(bev, EV_READ);
		return;
	}
	cli_demo_conn_free(c);
}

static void
cli_demo_peer_name(const struct sockaddr *sa, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(out, len, "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(out, len, "%s:%u", a, ntohs(s4->sin_port));
	}
}

static void
cli_demo_accept(void *arg, const struct conn_listener *ls, int fd,
                const struct sockaddr *sa, int salen)
{
	static const char busy[] =
	    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
	    "application/json\r\nConnection: close\r\nContent-Length: ";
	struct timeval tv = {CLI_DEMO_TIMEOUT_S, 0};
	char answer[256];
	int n;
	struct cli_demo *d = arg;
	struct cli_demo_conn *c;
	int one = 1;

	if (d->nconns >= CLI_DEMO_MAX_CONNS) {
		/* Best effort: the socket is fresh, the answer small. */
		n = snprintf(answer, sizeof(answer), "%s%zu\r\n\r\n%s", busy,
		             sizeof(CLI_DEMO_BUSY_BODY) - 1,
		             CLI_DEMO_BUSY_BODY);
		if (send(fd, answer, (size_t)n, MSG_NOSIGNAL) < 0)
			log_debug("demo-resource: refusing: %s",
			          strerror(errno));
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		free(c);
		return;
	}
	cli_demo_peer_name(sa, c->peer, sizeof(c->peer));
	http_request_init(&c->req);
	buf_init(&c->body);
	c->next = d->conns;
	if (d->conns)
		d->conns->prev = c;
	d->conns = c;
	d->nconns++;
	bufferevent_setcb(c->bev, cli_demo_read_cb, cli_demo_write_cb,
	                  cli_demo_event_cb, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* --- start and stop --------------------------------------------------- */

/* The same listeners as the proxy's (loopback or unix only, a pause
 * when out of descriptors). */
static int
cli_demo_listen(struct cli_demo *d, const char *addr, char *err)
{
	struct listener *l;

	if (listener_open(d->base, addr, 0660, cli_demo_accept, d,
	                  &d->listeners, err) == -1)
		return -1;
	for (l = d->listeners; l; l = l->next)
		log_info("listening on %s", l->info.name);
	return 0;
}

static void
cli_demo_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct cli_demo *d = arg;

	log_info("demo-resource: %s: stopping after %llu request(s), %llu "
	         "verified",
	         sig == SIGTERM ? "SIGTERM" : "SIGINT",
	         (unsigned long long)d->requests,
	         (unsigned long long)d->verified);
	event_base_loopexit(d->base, NULL);
}

enum {
	OPT_DEMO_LABEL = 256,
	OPT_DEMO_COMPONENTS,
};

int
cli_demo_resource(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"listen", required_argument, NULL, 'l'},
	    {"token-file", required_argument, NULL, 't'},
	    {"profile", required_argument, NULL, 'p'},
	    {"label", required_argument, NULL, OPT_DEMO_LABEL},
	    {"components", required_argument, NULL, OPT_DEMO_COMPONENTS},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *keyfile = NULL, *listen = CLI_DEMO_DEFAULT_LISTEN;
	const char *profile = "lumoauth", *label = NULL, *components = NULL;
	struct event *ev_term = NULL, *ev_int = NULL;
	char err[ERR_MAX];
	struct cli_demo *d;
	struct buf tok;
	int c, rc;

	optind = 1;
	opterr = 0;
	d = xcalloc(1, sizeof(*d));
	while ((c = getopt_long(argc, argv, ":k:l:t:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			keyfile = optarg;
			break;
		case 'l':
			listen = optarg;
			break;
		case 't':
			d->token_file = optarg;
			break;
		case 'p':
			profile = optarg;
			break;
		case OPT_DEMO_LABEL:
			label = optarg;
			break;
		case OPT_DEMO_COMPONENTS:
			components = optarg;
			break;
		case 'h':
			cli_demo_usage(stdout);
			free(d);
			return 0;
		default:
			free(d);
			return cli_badopt("demo-resource", c, argv,
			                  cli_demo_usage);
		}
	}
	if (optind < argc) {
		fprintf(stderr,
		        "aauth-proxy demo-resource: unexpected argument "
		        "'%s'\n",
		        argv[optind]);
		free(d);
		return 2;
	}
	if (keyfile == NULL) {
		fprintf(stderr, "aauth-proxy demo-resource: --key FILE is "
		                "required (the agent's public key)\n\n");
		cli_demo_usage(stderr);
		free(d);
		return 2;
	}
	log_init(LOG_INFO, stderr);
	if ((rc = cli_verifier_init(&d->v, "demo-resource", profile, label,
	                            components, keyfile)) != 0)
		goto out;
	rc = 1;
	/* A token file that cannot serve now would fail every request. */
	buf_init(&tok);
	if (d->token_file != NULL &&
	    token_file_read(d->token_file, &tok, err) == -1) {
		fprintf(stderr, "aauth-proxy demo-resource: --token-file: %s\n",
		        err);
		buf_free(&tok);
		goto out;
	}
	if (tok.data != NULL)
		sodium_memzero(tok.data, tok.len);
	buf_free(&tok);
	signal(SIGPIPE, SIG_IGN);
	if ((d->base = event_base_new()) == NULL) {
		fprintf(stderr, "aauth-proxy demo-resource: cannot create the "
		                "event loop\n");
		goto out;
	}
	/* Signals first: whoever sees "listening" may stop it at once. */
	ev_term = evsignal_new(d->base, SIGTERM, cli_demo_signal_cb, d);
	ev_int = evsignal_new(d->base, SIGINT, cli_demo_signal_cb, d);
	if (ev_term == NULL || ev_int == NULL) {
		fprintf(stderr, "aauth-proxy demo-resource: cannot watch "
		                "signals\n");
		goto out;
	}
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	log_info("demo-resource: profile %s, label %s, key %s, token %s",
	         d->v.profile.name, cli_verifier_label(&d->v),
	         d->v.key.thumbprint,
	         d->token_file ? d->token_file : "not checked");
	if (cli_demo_listen(d, listen, err) == -1) {
		fprintf(stderr, "aauth-proxy demo-resource: %s\n", err);
		goto out;
	}
	event_base_dispatch(d->base);
	rc = 0;
out:
	while (d->conns != NULL)
		cli_demo_conn_free(d->conns);
	listener_free_list(d->listeners);
	if (ev_term)
		event_free(ev_term);
	if (ev_int)
		event_free(ev_int);
	if (d->base)
		event_base_free(d->base);
	cli_verifier_free(&d->v);
	free(d);
	return rc;
}
