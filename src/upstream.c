/*
 * upstream: libcurl's multi interface on the proxy's libevent loop (socket
 * and timer callbacks + curl_multi_socket_action). Owns the easy-handle
 * pool, the shared DNS/TLS-session cache, the feeding of response-head
 * lines to http1's parser, and the mapping of curl failures to HTTP
 * statuses and RFC 9209 error types.
 */
#include "upstream.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "netaddr.h"
#include "util.h"

/* Idle requests (each with a configured easy handle) kept for reuse, and
 * pooled upstream connections. */
#define UPSTREAM_POOL_MAX    64
#define UPSTREAM_POOL_KEEP   8
#define UPSTREAM_MAXCONNECTS 64
#define UPSTREAM_BUF_KEEP    (16 * 1024)
/* After a burst of this many concurrent transfers, give the freed heap
 * back to the system once everything has been quiet this long. */
#define UPSTREAM_TRIM_PEAK 32
#define UPSTREAM_TRIM_MS   1000

/* libevent's view of one curl socket. The event stays registered while
 * the connection sits idle in curl's pool ("parked"), so a keep-alive
 * connection costs no epoll_ctl per request; it goes away when curl
 * closes the socket (close-socket callback). */
struct upstream_sock {
	struct event *ev;
	short kind; /* EV_READ/EV_WRITE registered now; 0 when none */
	int parked; /* curl does not watch this socket at the moment */
};

struct upstream {
	struct event_base *base;
	CURLM *multi;
	CURLSH *share;
	struct event *timer;
	struct event *trim_timer;
	struct upstream_req *pool; /* idle requests, linked by next */
	size_t npool;
	size_t active;
	size_t peak; /* most transfers at once since the last trim */
	struct upstream_sock **socks; /* by descriptor */
	size_t nsocks;
};

/* One exchange. The struct and its buffers are pooled; the easy handle
 * is not. libcurl 7.88 (Debian 12) keeps a pointer into the previous
 * transfer's header store on a reused handle (state.prevhead), and a
 * response whose first field line is an obs-fold makes it realloc that
 * freed memory: any upstream could crash the process holding the key.
 * A handle that has never run a transfer has no such state, and what
 * reuse saved is small beside that (connections, TLS sessions and DNS
 * answers live in the multi and the share, not in the handle). */
struct upstream_req {
	struct upstream *u;
	const struct config *cfg;  /* of the exchange's generation */
	CURL *easy;                /* NULL while in the pool */
	struct upstream_req *next; /* in the idle pool */
	struct upstream_cbs cbs;
	void *arg;
	int check_private;
	int head_done;
	size_t trailer_bytes; /* received after the final head */
	struct buf trailers;  /* the lines relayed after the last chunk */
	int sock_errno;       /* socket() failed with this (EMFILE, ...) */
	/* The upstream's base URL, parsed once and kept while the next
	 * request goes to the same place. */
	char url_text[512];
	CURLU *url;
	/* The request's header lines: one curl_slist built in place over
	 * one string buffer (curl only reads the list). */
	struct curl_slist *hlist;
	size_t hcap;
	struct buf hbuf;
	/* The response head, parsed as curl hands over its lines. */
	struct http_response_head head;
	/* Why we stopped the transfer (the response head is invalid, or
	 * too much came after it); empty while we have not. bad_error is
	 * the RFC 9209 type, http_protocol_error unless set. */
	char bad[160];
	const char *bad_error;
	uint64_t t_start, t_head;
	char blocked[INET6_ADDRSTRLEN]; /* first address refused */
	char errbuf[CURL_ERROR_SIZE];
};

static void upstream_check_done(struct upstream *u);

/* --- curl ↔ libevent ----------------------------------------------------- */

static struct upstream_sock *
upstream_sock_get(const struct upstream *u, curl_socket_t fd)
{
	return fd >= 0 && (size_t)fd < u->nsocks ? u->socks[fd] : NULL;
}

static void
upstream_sock_forget(struct upstream *u, curl_socket_t fd)
{
	struct upstream_sock *s = upstream_sock_get(u, fd);

	if (s == NULL)
		return;
	event_free(s->ev);
	free(s);
	u->socks[fd] = NULL;
}

static void
upstream_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *u = arg;
	struct upstream_sock *s = upstream_sock_get(u, fd);
	int running, act = 0;

	if (s != NULL && s->parked) {
		/* An idle pooled connection became readable: the server
		 * closed it (or sent garbage). curl finds out when it next
		 * checks the connection; stop listening so a level-triggered
		 * event does not spin. */
		event_del(s->ev);
		s->kind = 0;
		return;
	}
	if (what & EV_READ)
		act |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		act |= CURL_CSELECT_OUT;
	curl_multi_socket_action(u->multi, fd, act, &running);
	upstream_check_done(u);
}

static void
upstream_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *u = arg;
	int running;

	curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	upstream_check_done(u);
}

static int
upstream_socket_cb(CURL *e, curl_socket_t fd, int what, void *userp,
                   void *socketp)
{
	struct upstream *u = userp;
	struct upstream_sock *s = upstream_sock_get(u, fd);
	short kind = 0;

	if (what == CURL_POLL_REMOVE) {
		if (s == NULL)
			return 0;
		/* Keep a read event: the next request on this connection
		 * wants exactly that. A write interest would spin. */
		s->parked = 1;
		if (s->kind != EV_READ && s->kind != 0) {
			event_del(s->ev);
			s->kind = 0;
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (s == NULL) {
		if ((size_t)fd >= u->nsocks) {
			size_t n = u->nsocks ? u->nsocks : 64;

			while (n <= (size_t)fd)
				n *= 2;
			u->socks = xrealloc(u->socks, n * sizeof(*u->socks));
			memset(u->socks + u->nsocks, 0,
			       (n - u->nsocks) * sizeof(*u->socks));
			u->nsocks = n;
		}
		s = xcalloc(1, sizeof(*s));
		s->ev = event_new(u->base, fd, kind | EV_PERSIST,
		                  upstream_event_cb, u);
		if (s->ev == NULL) {
			free(s);
			return -1;
		}
		u->socks[fd] = s;
		event_add(s->ev, NULL);
		s->kind = kind;
	} else if (s->kind != kind) {
		if (s->kind != 0)
			event_del(s->ev);
		event_assign(s->ev, u->base, fd, kind | EV_PERSIST,
		             upstream_event_cb, u);
		event_add(s->ev, NULL);
		s->kind = kind;
	}
	s->parked = 0;
	return 0;
}

static int
upstream_timerfn(CURLM *m, long timeout_ms, void *userp)
{
	struct upstream *u = userp;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(u->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(u->timer, &tv);
	return 0;
}

/* --- per-request callbacks ---------------------------------------------- */

static curl_socket_t
upstream_opensocket_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct upstream_req *r = arg;
	curl_socket_t fd;

	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	/* The address check happens here, after resolution and for every
	 * address curl tries, so DNS answers cannot route around it. */
	if (r->check_private && netaddr_is_private(&a->addr)) {
		if (r->blocked[0] == '\0') {
			const void *src =
			    a->family == AF_INET
			        ? (const void *)&(
			              (struct sockaddr_in *)(void *)&a->addr)
			              ->sin_addr
			        : (const void *)&(
			              (struct sockaddr_in6 *)(void *)&a->addr)
			              ->sin6_addr;
			if (inet_ntop(a->family, src, r->blocked,
			              sizeof(r->blocked)) == NULL)
				strcpy(r->blocked, "?");
		}
		return CURL_SOCKET_BAD;
	}
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	if (fd == -1) {
		r->sock_errno = errno;
		return CURL_SOCKET_BAD;
	}
	upstream_fd_reused(r->u, fd);
	return fd;
}

static int
upstream_closesocket_cb(void *arg, curl_socket_t fd)
{
	/* curl has already said CURL_POLL_REMOVE if it watched fd; the
	 * parked event must go before the number can be reused. */
	upstream_sock_forget(arg, fd);
	return close(fd);
}

/* The response head is invalid: remember why (curl only says "failed
 * writing header" once the header callback returns 0). */
static void
upstream_bad(struct upstream_req *r, const char *why)
{
	if (r->bad[0] == '\0')
		snprintf(r->bad, sizeof(r->bad),
		         "the upstream sent an invalid response head: %.110s",
		         why);
}

static int
upstream_head_deliver(struct upstream_req *r)
{
	const struct http_response_head *ph = &r->head;
	struct upstream_head h;

	h.status = ph->status;
	h.reason = ph->reason;
	h.v = ph->v;
	h.n = ph->n;
	h.content_length = ph->content_length;
	return r->cbs.head(r->arg, &h);
}

/* One trailer line (cost and budget fields travel there): kept when it is
 * a well-formed field that is not about framing or this hop. */
static void
upstream_trailer_line(struct upstream_req *r, const char *p, size_t n)
{
	size_t i;

	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	if (n == 0)
		return;
	for (i = 0; i < n && http1_is_tchar((unsigned char)p[i]); i++)
		;
	if (i == 0 || i == n || p[i] != ':' ||
	    http1_ctl_at(p + i + 1, n - i - 1) < n - i - 1 ||
	    http1_is_hop_by_hop(p, i) ||
	    (i == 14 && util_strncaseeq(p, "Content-Length", 14)) ||
	    (i == 4 && util_strncaseeq(p, "Host", 4))) {
		log_warn("dropping an upstream trailer line that cannot be "
		         "relayed safely");
		return;
	}
	buf_append(&r->trailers, p, n);
	buf_append(&r->trailers, "\r\n", 2);
}

static size_t
upstream_header_cb(char *p, size_t size, size_t nitems, void *arg)
{
	struct upstream_req *r = arg;
	size_t len = size * nitems, dropped;
	char err[ERR_MAX];
	int rc;

	if (r->head_done) {
		/* curl stores every trailer line, and a body that never ends
		 * in a blank line keeps the transfer alive past any idle
		 * timeout: bound them like a head. */
		r->trailer_bytes += len;
		if (r->trailer_bytes > r->cfg->max_head_bytes) {
			snprintf(r->bad, sizeof(r->bad),
			         "the upstream's trailer section exceeds "
			         "limits.max_header_bytes (%zu bytes)",
			         r->cfg->max_head_bytes);
			r->bad_error = "http_response_trailer_section_size";
			return 0;
		}
		upstream_trailer_line(r, p, len);
		return len;
	}
	dropped = r->head.dropped;
	rc = http1_response_line(&r->head, p, len, err);
	if (rc == -1) {
		upstream_bad(r, err);
		return 0;
	}
	if (r->head.dropped != dropped)
		log_warn("dropping an upstream header line with a control byte "
		         "(0x%02x)",
		         r->head.dropped_byte);
	if (rc == 0)
		return len;
	if (r->head.status == 101) {
		/* The client's Upgrade is hop-by-hop and never forwarded:
		 * nothing asked for this. */
		upstream_bad(r, "101 Switching Protocols, but no upgrade was "
		                "requested");
		return 0;
	}
	if (r->head.status < 200) {
		/* Interim responses (100, 103) are not relayed: the client
		 * never asked this upstream for them. */
		http_response_head_reset(&r->head);
		return len;
	}
	r->head_done = 1;
	r->t_head = util_mono_ms();
	if (upstream_head_deliver(r) == -1)
		return 0;
	return len;
}

static size_t
upstream_write_cb(char *p, size_t size, size_t nitems, void *arg)
{
	struct upstream_req *r = arg;
	size_t len = size * nitems;
	int rc;

	if (!r->head_done) {
		upstream_bad(r, "body bytes before a final response head");
		return 0;
	}
	rc = r->cbs.body(r->arg, p, len);
	if (rc == 1)
		return CURL_WRITEFUNC_PAUSE;
	if (rc < 0)
		return 0;
	return len;
}

/* --- request lifecycle --------------------------------------------------- */

static void
upstream_req_destroy(struct upstream_req *r)
{
	if (r->easy != NULL)
		curl_easy_cleanup(r->easy);
	curl_url_cleanup(r->url);
	free(r->hlist);
	buf_free(&r->hbuf);
	http_response_head_free(&r->head);
	buf_free(&r->trailers);
	free(r);
}

/* A fresh easy handle for r's next transfer, with every option that is
 * the same for all requests (upstream_start sets the rest). About a
 * microsecond: see the comment on struct upstream_req for why it is not
 * reused. */
static CURL *
upstream_easy_new(struct upstream_req *r)
{
	const struct upstream *u = r->u;
	const struct config *c = r->cfg;
	/* libcurl measures the idle limit in whole seconds. */
	long low_speed_time =
	    (long)((c->upstream_idle_timeout_ms + 999) / 1000);
	CURL *e;

	if ((e = curl_easy_init()) == NULL)
		return NULL;
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_SHARE, u->share);
	/* The path and query go out exactly as received and signed: no
	 * dot-segment removal, no re-encoding by curl's URL parser. */
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* HTTP_PROXY in our own environment may well point at us: only
	 * upstream.proxy counts. Through it every exchange is a CONNECT
	 * tunnel, so the request target goes out exactly as signed (a
	 * forwarding proxy would be sent the absolute form). */
	if (c->upstream_proxy != NULL) {
		curl_easy_setopt(e, CURLOPT_PROXY, c->upstream_proxy);
		curl_easy_setopt(e, CURLOPT_NOPROXY, "");
		curl_easy_setopt(e, CURLOPT_HTTPPROXYTUNNEL, 1L);
		/* The proxy's answer to CONNECT is not the upstream's head:
		 * a 407 relayed to the agent would ask it for credentials
		 * it does not have. A refused CONNECT fails the exchange. */
		curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
		if (c->upstream_proxy_userpwd != NULL) {
			curl_easy_setopt(e, CURLOPT_PROXYAUTH,
			                 (long)CURLAUTH_BASIC);
			curl_easy_setopt(e, CURLOPT_PROXYUSERPWD,
			                 c->upstream_proxy_userpwd);
		}
	} else {
		curl_easy_setopt(e, CURLOPT_PROXY, "");
		curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	}
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->upstream_ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->upstream_ca_file);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long)c->upstream_connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->upstream_timeout_ms);
	if (low_speed_time > 0) {
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, low_speed_time);
	}
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, upstream_opensocket_cb);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r);
	/* Connections outlive requests: the close callback gets u. */
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION,
	                 upstream_closesocket_cb);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, u);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, upstream_header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, upstream_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	return e;
}

static void
upstream_release(struct upstream_req *r)
{
	struct upstream *u = r->u;

	curl_multi_remove_handle(u->multi, r->easy);
	curl_easy_cleanup(r->easy);
	r->easy = NULL;
	u->active--;
	/* A pooled request keeps its buffers, but not an outsized one. */
	http_response_head_trim(&r->head, UPSTREAM_BUF_KEEP);
	if (r->hbuf.cap > UPSTREAM_BUF_KEEP)
		buf_free(&r->hbuf);
	if (u->npool < UPSTREAM_POOL_MAX) {
		r->next = u->pool;
		u->pool = r;
		u->npool++;
	} else {
		upstream_req_destroy(r);
	}
}

static void
upstream_result_fill(struct upstream_req *r, CURLcode rc,
                     struct upstream_result *res)
{
	const char *detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);
	curl_off_t pre = 0;

	memset(res, 0, sizeof(*res));
	if (r->head_done)
		res->head_ms = r->t_head - r->t_start;
	res->status = 502;
	if (r->bad[0] != '\0') {
		/* Stopped by us (curl says only "failed writing header"). */
		res->error =
		    r->bad_error ? r->bad_error : "http_protocol_error";
		snprintf(res->detail, sizeof(res->detail), "%s", r->bad);
		return;
	}
	switch (rc) {
	case CURLE_OK:
		if (r->head_done) {
			res->ok = 1;
			res->status = r->head.status;
			if (r->trailers.len > 0) {
				res->trailers = r->trailers.data;
				res->trailers_len = r->trailers.len;
			}
			return;
		}
		res->error = "http_response_incomplete";
		snprintf(res->detail, sizeof(res->detail),
		         "the upstream closed without a response");
		return;
	default:
		break;
	}
	snprintf(res->detail, sizeof(res->detail), "%s", detail);
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		res->error = "dns_error";
		return;
	case CURLE_COULDNT_CONNECT:
		if (r->blocked[0] != '\0') {
			res->status = 403;
			res->error = "destination_ip_prohibited";
			snprintf(res->detail, sizeof(res->detail),
			         "the host resolves to %s, a loopback, private "
			         "or link-local address, and no rule names "
			         "it (block_private_addresses)",
			         r->blocked);
			return;
		}
		if (r->sock_errno == EMFILE || r->sock_errno == ENFILE ||
		    r->sock_errno == ENOBUFS || r->sock_errno == ENOMEM) {
			/* Ours, not the upstream's: say so, and that it
			 * passes. */
			res->status = 503;
			res->error = "proxy_internal_error";
			snprintf(res->detail, sizeof(res->detail),
			         "the proxy cannot open a socket to the "
			         "upstream: %s (raise the open-file limit, "
			         "e.g. LimitNOFILE, or lower "
			         "limits.max_connections)",
			         strerror(r->sock_errno));
			return;
		}
		res->error = "connection_refused";
		return;
	case CURLE_OPERATION_TIMEDOUT:
		res->status = 504;
		curl_easy_getinfo(r->easy, CURLINFO_PRETRANSFER_TIME_T, &pre);
		res->error =
		    pre == 0 ? "connection_timeout" : "http_response_timeout";
		return;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		res->error = "tls_certificate_error";
		return;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CIPHER:
	case CURLE_USE_SSL_FAILED:
		res->error = "tls_protocol_error";
		return;
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CRL_BADFILE:
		res->error = "proxy_configuration_error";
		return;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		res->error = "connection_terminated";
		return;
	case CURLE_PARTIAL_FILE:
		res->error = "http_response_incomplete";
		return;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_HTTP2:
		res->error = "http_protocol_error";
		return;
	default:
		res->error = "proxy_internal_error";
		return;
	}
}

static void
upstream_trim_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *u = arg;
	struct upstream_req *r;

	if (u->active > 0)
		return; /* busy again: the next quiet moment re-arms */
	u->peak = 0;
	while (u->npool > UPSTREAM_POOL_KEEP) {
		r = u->pool;
		u->pool = r->next;
		u->npool--;
		upstream_req_destroy(r);
	}
#ifdef __GLIBC__
	/* Memory stays flat: a burst of hundreds of transfers leaves the
	 * heap fragmented, and glibc keeps it unless asked. */
	malloc_trim(0);
#endif
}

static void
upstream_check_done(struct upstream *u)
{
	struct upstream_result res;
	struct upstream_req *r;
	struct upstream_cbs cbs;
	struct buf trailers;
	CURLMsg *msg;
	CURLcode rc;
	void *arg;
	int left;

	while ((msg = curl_multi_info_read(u->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		rc = msg->data.result;
		r = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
		                  (char **)&r);
		if (r == NULL)
			continue;
		upstream_result_fill(r, rc, &res);
		cbs = r->cbs;
		arg = r->arg;
		/* The trailers outlive the request for the callback. */
		trailers = r->trailers;
		buf_init(&r->trailers);
		if (res.trailers != NULL)
			res.trailers = trailers.data;
		/* Gone before the callback: the callee may start the next
		 * exchange on the same client connection at once. */
		upstream_release(r);
		cbs.done(arg, &res);
		buf_free(&trailers);
	}
	/* Trimming is not free (madvise, then page faults to get the
	 * memory back): only once a burst is over, not at every moment
	 * the multi happens to be empty under load. */
	if (u->active == 0 && u->peak >= UPSTREAM_TRIM_PEAK &&
	    !evtimer_pending(u->trim_timer, NULL)) {
		struct timeval tv = {UPSTREAM_TRIM_MS / 1000,
		                     (UPSTREAM_TRIM_MS % 1000) * 1000};

		evtimer_add(u->trim_timer, &tv);
	}
}

static int
upstream_has_field(const struct http_fields *f, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (util_strncaseeq(f->v[i].name, name, len) &&
		    f->v[i].name[len] == '\0')
			return 1;
	return 0;
}

/* The header list curl sends: every field as given, plus empty entries
 * that stop curl from adding its own Accept, and for a request with a
 * body its own Expect, Content-Type and Transfer-Encoding. The list and
 * its strings live in r's buffers, reused from request to request. */
static void
upstream_headers(struct upstream_req *r, const struct http_fields *f,
                 int has_body)
{
	static const char *const suppress[] = {
	    "Accept:", "Expect:", "Content-Type:", "Transfer-Encoding:"};
	struct buf *b = &r->hbuf;
	size_t i, n = 0, nsup = has_body ? 4 : 1, off, nl, vl;

	if (r->hcap < f->n + nsup) {
		r->hcap = f->n + nsup + 16;
		free(r->hlist);
		r->hlist = xcalloc(r->hcap, sizeof(*r->hlist));
	}
	buf_reset(b);
	/* Offsets first: the buffer may move while it grows. */
	for (i = 0; i < f->n; i++) {
		nl = strlen(f->v[i].name);
		vl = strlen(f->v[i].value);
		off = b->len;
		buf_reserve(b, nl + vl + 3);
		memcpy(b->data + b->len, f->v[i].name, nl);
		b->len += nl;
		/* "Name;" is curl's spelling of a field with an empty
		 * value; "Name:" would delete it. */
		if (vl == 0) {
			b->data[b->len++] = ';';
		} else {
			b->data[b->len++] = ':';
			b->data[b->len++] = ' ';
			memcpy(b->data + b->len, f->v[i].value, vl);
			b->len += vl;
		}
		b->data[b->len++] = '\0';
		r->hlist[n++].data = (char *)(uintptr_t)off;
	}
	for (i = 0; i < nsup; i++) {
		nl = strlen(suppress[i]) - 1;
		if (upstream_has_field(f, suppress[i], nl))
			continue;
		off = b->len;
		buf_append(b, suppress[i], nl + 2); /* with its NUL */
		r->hlist[n++].data = (char *)(uintptr_t)off;
	}
	for (i = 0; i < n; i++) {
		r->hlist[i].data = b->data + (uintptr_t)r->hlist[i].data;
		r->hlist[i].next = i + 1 < n ? &r->hlist[i + 1] : NULL;
	}
	if (n == 0)
		r->hlist[0].data = NULL;
}

struct upstream_req *
upstream_start(struct upstream *u, const struct upstream_spec *s,
               const struct upstream_cbs *cbs, void *arg, char *err)
{
	struct upstream_req *r;
	CURLMcode mc;
	char url[sizeof(r->url_text)];
	CURL *e;

	if ((size_t)snprintf(url, sizeof(url), "%s://%s:%d/", s->scheme,
	                     s->host, s->port) >= sizeof(url)) {
		err_set(err, "upstream host name too long");
		return NULL;
	}
	if (u->pool != NULL) {
		r = u->pool;
		u->pool = r->next;
		u->npool--;
	} else {
		r = xcalloc(1, sizeof(*r));
		r->u = u;
		buf_init(&r->hbuf);
		http_response_head_init(&r->head);
		buf_init(&r->trailers);
	}
	r->cfg = s->cfg;
	if ((e = r->easy = upstream_easy_new(r)) == NULL) {
		upstream_req_destroy(r);
		err_set(err, "curl_easy_init failed");
		return NULL;
	}
	r->cbs = *cbs;
	r->arg = arg;
	/* Through upstream.proxy the socket we open goes to the proxy, which
	 * the operator named, and the proxy resolves the upstream's name. */
	r->check_private = s->check_private && s->cfg->upstream_proxy == NULL;
	r->head_done = 0;
	r->trailer_bytes = 0;
	buf_reset(&r->trailers);
	r->sock_errno = 0;
	http_response_head_reset(&r->head);
	r->blocked[0] = '\0';
	r->errbuf[0] = '\0';
	r->bad[0] = '\0';
	r->bad_error = NULL;

	if (strcmp(url, r->url_text) != 0) {
		/* Parsed once per upstream, not once per request (curl
		 * re-parses a CURLOPT_URL string for every transfer). */
		if (r->url == NULL)
			r->url = curl_url();
		if (r->url != NULL &&
		    curl_url_set(r->url, CURLUPART_URL, url, 0) == CURLUE_OK)
			memcpy(r->url_text, url, sizeof(url));
		else
			r->url_text[0] = '\0';
	}
	if (r->url_text[0] != '\0')
		curl_easy_setopt(e, CURLOPT_CURLU, r->url);
	else
		/* curl's own parse then fails the transfer and says why, as
		 * for any other URL. */
		curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_REQUEST_TARGET, s->target);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, s->method);
	if (strcmp(s->method, "HEAD") == 0)
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	if (s->has_body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)s->body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS,
		                 s->body ? (const char *)s->body : "");
	}
	upstream_headers(r, s->fields, s->has_body);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER,
	                 r->hlist[0].data ? r->hlist : NULL);

	r->t_start = util_mono_ms();
	u->active++;
	mc = curl_multi_add_handle(u->multi, e);
	if (mc != CURLM_OK) {
		err_set(err, "curl_multi_add_handle: %s",
		        curl_multi_strerror(mc));
		upstream_release(r);
		return NULL;
	}
	if (u->active > u->peak)
		u->peak = u->active;
	return r;
}

void
upstream_resume(struct upstream_req *r)
{
	/* May deliver the held-back bytes through the body callback before
	 * it returns. */
	curl_easy_pause(r->easy, CURLPAUSE_CONT);
}

void
upstream_cancel(struct upstream_req *r)
{
	if (r != NULL)
		upstream_release(r);
}

size_t
upstream_active(const struct upstream *u)
{
	return u->active;
}

void
upstream_fd_reused(struct upstream *u, int fd)
{
	if (upstream_sock_get(u, fd) == NULL)
		return;
	/* Routine, not a fault: libcurl's threaded resolver has us watch
	 * its socketpair and closes it itself (the close-socket callback
	 * covers only sockets opened through ours), so after a name lookup
	 * the number comes back with its event still parked. Dropping the
	 * event is the whole remedy. */
	log_debug("descriptor %d was closed behind the upstream's back; "
	          "dropping its stale event",
	          fd);
	upstream_sock_forget(u, fd);
}

struct upstream *
upstream_new(struct event_base *base, char *err)
{
	struct upstream *u = xcalloc(1, sizeof(*u));

	u->base = base;
	u->timer = evtimer_new(base, upstream_timer_cb, u);
	u->trim_timer = evtimer_new(base, upstream_trim_cb, u);
	u->multi = curl_multi_init();
	u->share = curl_share_init();
	if (u->timer == NULL || u->trim_timer == NULL || u->multi == NULL ||
	    u->share == NULL) {
		err_set(err, "cannot initialise libcurl");
		upstream_free(u);
		return NULL;
	}
	/* One process, one thread: no lock callbacks needed. TLS sessions
	 * are shared so a reconnect resumes instead of a full handshake. */
	curl_share_setopt(u->share, CURLSHOPT_SHARE,
	                  CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION,
	                  upstream_socket_cb);
	curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
	curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, upstream_timerfn);
	curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
	curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS,
	                  (long)UPSTREAM_MAXCONNECTS);
	return u;
}

void
upstream_free(struct upstream *u)
{
	struct upstream_req *r;
	size_t i;

	if (u == NULL)
		return;
	while ((r = u->pool) != NULL) {
		u->pool = r->next;
		upstream_req_destroy(r);
	}
	/* Closes the pooled connections through upstream_closesocket_cb,
	 * which still needs the socket table. */
	if (u->multi)
		curl_multi_cleanup(u->multi);
	if (u->share)
		curl_share_cleanup(u->share);
	for (i = 0; i < u->nsocks; i++)
		upstream_sock_forget(u, (curl_socket_t)i);
	free(u->socks);
	if (u->timer)
		event_free(u->timer);
	if (u->trim_timer)
		event_free(u->trim_timer);
	free(u);
}
