/*
 * upstream: libcurl's multi interface on the proxy's libevent loop (socket
 * and timer callbacks + curl_multi_socket_action). Owns the easy-handle
 * pool, the shared DNS/TLS-session cache, response-head parsing and the
 * mapping of curl failures to HTTP statuses and RFC 9209 error types.
 */
#include "upstream.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <event2/event.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "util.h"

/* Idle easy handles kept for reuse, and pooled upstream connections. */
#define UPSTREAM_POOL_MAX    16
#define UPSTREAM_MAXCONNECTS 64
/* After a burst of this many concurrent transfers, give the freed heap
 * back to the system once everything is quiet again. */
#define UPSTREAM_TRIM_PEAK 32

struct upstream_sock {
	struct upstream *u;
	struct event *ev;
	curl_socket_t fd;
	struct upstream_sock *prev, *next;
};

struct upstream {
	struct event_base *base;
	const struct config *cfg;
	CURLM *multi;
	CURLSH *share;
	struct event *timer;
	CURL *pool[UPSTREAM_POOL_MAX];
	size_t npool;
	size_t active;
	size_t peak;         /* most transfers at once since the last trim */
	long low_speed_time; /* seconds, from upstream_idle_timeout_ms */
	struct upstream_sock *socks;
	struct buf line; /* scratch for header lines */
};

struct upstream_req {
	struct upstream *u;
	CURL *easy;
	struct curl_slist *headers;
	struct upstream_cbs cbs;
	void *arg;
	int check_private;
	int head_done;
	int status;
	char *reason;
	struct http_fields fields;
	uint64_t t_start, t_head;
	char blocked[INET6_ADDRSTRLEN]; /* first address refused */
	char errbuf[CURL_ERROR_SIZE];
};

static void upstream_check_done(struct upstream *u);

/* --- address policy ----------------------------------------------------- */

static int
upstream_v4_is_private(uint32_t a)
{
	return (a >> 24) == 0 ||                   /* 0.0.0.0/8 */
	       (a >> 24) == 10 ||                  /* 10/8 */
	       (a & 0xffc00000u) == 0x64400000u || /* 100.64/10 CGNAT */
	       (a >> 24) == 127 ||                 /* loopback */
	       (a & 0xffff0000u) == 0xa9fe0000u || /* 169.254/16 */
	       (a & 0xfff00000u) == 0xac100000u || /* 172.16/12 */
	       (a & 0xffffff00u) == 0xc0000000u || /* 192.0.0/24 */
	       (a & 0xffff0000u) == 0xc0a80000u || /* 192.168/16 */
	       (a & 0xfffe0000u) == 0xc6120000u || /* 198.18/15 */
	       (a & 0xf0000000u) == 0xe0000000u || /* multicast */
	       (a & 0xf0000000u) == 0xf0000000u;   /* reserved, broadcast */
}

static uint32_t
upstream_v4_at(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int
upstream_addr_is_private(const struct sockaddr *sa)
{
	static const unsigned char zero12[12];
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
	                                         0, 0, 0, 0, 0xff, 0xff};
	static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
	const unsigned char *b;

	if (sa->sa_family == AF_INET)
		return upstream_v4_is_private(
		    ntohl(((const struct sockaddr_in *)(const void *)sa)
		              ->sin_addr.s_addr));
	if (sa->sa_family != AF_INET6)
		return 1; /* nothing else is ever dialled */
	b = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
	/* Addresses that embed an IPv4 address are judged by it, so
	 * ::ffff:169.254.169.254 is no way around the IPv4 rules. */
	if (memcmp(b, zero12, 12) == 0 || memcmp(b, mapped, 12) == 0 ||
	    memcmp(b, nat64, 12) == 0)
		return upstream_v4_is_private(upstream_v4_at(b + 12));
	if (b[0] == 0x20 && b[1] == 0x02) /* 6to4 */
		return upstream_v4_is_private(upstream_v4_at(b + 2));
	return (b[0] & 0xfe) == 0xfc ||                   /* fc00::/7 ULA */
	       (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || /* fe80::/10 */
	       (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) || /* fec0::/10 */
	       b[0] == 0xff;                              /* multicast */
}

/* --- curl ↔ libevent ----------------------------------------------------- */

static void
upstream_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *u = arg;
	int running, act = 0;

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

static void
upstream_sock_free(struct upstream *u, struct upstream_sock *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		u->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	event_free(s->ev);
	free(s);
}

static int
upstream_socket_cb(CURL *e, curl_socket_t fd, int what, void *userp,
                   void *socketp)
{
	struct upstream *u = userp;
	struct upstream_sock *s = socketp;
	short kind = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			upstream_sock_free(u, s);
			curl_multi_assign(u->multi, fd, NULL);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->u = u;
		s->fd = fd;
		s->ev = event_new(u->base, fd, kind, upstream_event_cb, u);
		s->next = u->socks;
		if (u->socks)
			u->socks->prev = s;
		u->socks = s;
		curl_multi_assign(u->multi, fd, s);
	} else {
		event_del(s->ev);
		event_assign(s->ev, u->base, fd, kind, upstream_event_cb, u);
	}
	event_add(s->ev, NULL);
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

	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	/* The address check happens here, after resolution and for every
	 * address curl tries, so DNS answers cannot route around it. */
	if (r->check_private && upstream_addr_is_private(&a->addr)) {
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
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static void
upstream_head_reset(struct upstream_req *r)
{
	http_fields_free(&r->fields);
	http_fields_init(&r->fields);
	free(r->reason);
	r->reason = NULL;
	r->status = 0;
}

/* "HTTP/1.1 200 OK": status and reason (possibly empty). */
static int
upstream_status_line(struct upstream_req *r, const char *p, size_t n)
{
	size_t i = 0;
	int status = 0, digits;

	if (n < 12 || memcmp(p, "HTTP/", 5) != 0)
		return -1;
	while (i < n && p[i] != ' ')
		i++;
	while (i < n && p[i] == ' ')
		i++;
	for (digits = 0; digits < 3; digits++, i++) {
		if (i >= n || p[i] < '0' || p[i] > '9')
			return -1;
		status = status * 10 + (p[i] - '0');
	}
	if (i < n && p[i] == ' ')
		i++;
	r->status = status;
	r->reason = xstrndup(p + i, n - i);
	return 0;
}

static void
upstream_field_line(struct upstream_req *r, const char *p, size_t n)
{
	struct buf *b = &r->u->line;
	const char *colon, *v, *end = p + n;
	size_t namelen, i;

	/* Relayed to the client as is: a stray CR or other control byte
	 * must not be able to start a line of its own there. */
	for (i = 0; i < n; i++)
		if (((unsigned char)p[i] < 0x20 && p[i] != '\t') ||
		    p[i] == 0x7f) {
			log_warn("dropping an upstream header line with a "
			         "control byte (0x%02x)",
			         (unsigned char)p[i]);
			return;
		}

	if (p[0] == ' ' || p[0] == '\t') {
		/* obs-fold from an old server: continue the last value. */
		struct http_field *last;

		if (r->fields.n == 0)
			return;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		last = &r->fields.v[r->fields.n - 1];
		buf_reset(b);
		buf_appendf(b, "%s %.*s", last->value, (int)(end - p), p);
		free(last->value);
		last->value = xstrdup(b->data);
		return;
	}
	colon = memchr(p, ':', n);
	if (colon == NULL || colon == p)
		return;
	namelen = (size_t)(colon - p);
	v = colon + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	/* One scratch buffer holds "name\0value\0". */
	buf_reset(b);
	buf_append(b, p, namelen);
	buf_appendc(b, '\0');
	buf_append(b, v, (size_t)(end - v));
	http_fields_add(&r->fields, b->data, b->data + namelen + 1);
}

static size_t
upstream_header_cb(char *p, size_t size, size_t nitems, void *arg)
{
	struct upstream_req *r = arg;
	size_t len = size * nitems, n = len;

	if (r->head_done)
		return len; /* trailers: not forwarded */
	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	if (n == 0) {
		if (r->status == 0)
			return len;
		if (r->status >= 100 && r->status < 200) {
			/* Interim responses (100, 103) are not relayed: the
			 * client never asked this upstream for them. */
			upstream_head_reset(r);
			return len;
		}
		r->head_done = 1;
		r->t_head = util_mono_ms();
		if (r->cbs.head(r->arg, r->status, r->reason ? r->reason : "",
		                &r->fields) == -1)
			return 0;
		return len;
	}
	if (r->status == 0) {
		if (upstream_status_line(r, p, n) == -1)
			return 0;
	} else {
		upstream_field_line(r, p, n);
	}
	return len;
}

static size_t
upstream_write_cb(char *p, size_t size, size_t nitems, void *arg)
{
	struct upstream_req *r = arg;
	size_t len = size * nitems;
	int rc;

	if (!r->head_done)
		return 0;
	rc = r->cbs.body(r->arg, p, len);
	if (rc == 1)
		return CURL_WRITEFUNC_PAUSE;
	if (rc < 0)
		return 0;
	return len;
}

/* --- request lifecycle --------------------------------------------------- */

static void
upstream_release(struct upstream_req *r)
{
	struct upstream *u = r->u;

	curl_multi_remove_handle(u->multi, r->easy);
	u->active--;
	if (u->npool < UPSTREAM_POOL_MAX) {
		curl_easy_reset(r->easy);
		u->pool[u->npool++] = r->easy;
	} else {
		curl_easy_cleanup(r->easy);
	}
	curl_slist_free_all(r->headers);
	http_fields_free(&r->fields);
	free(r->reason);
	free(r);
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
	snprintf(res->detail, sizeof(res->detail), "%s", detail);
	switch (rc) {
	case CURLE_OK:
		if (r->head_done) {
			res->ok = 1;
			res->status = r->status;
			res->detail[0] = '\0';
			return;
		}
		res->error = "http_response_incomplete";
		snprintf(res->detail, sizeof(res->detail),
		         "the upstream closed without a response");
		return;
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
upstream_check_done(struct upstream *u)
{
	struct upstream_result res;
	struct upstream_req *r;
	struct upstream_cbs cbs;
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
		/* Gone before the callback: the callee may start the next
		 * exchange on the same client connection at once. */
		upstream_release(r);
		cbs.done(arg, &res);
	}
#ifdef __GLIBC__
	/* Memory stays flat: a burst of hundreds of transfers leaves the
	 * heap fragmented, and glibc keeps it unless asked. */
	if (u->active == 0 && u->peak >= UPSTREAM_TRIM_PEAK) {
		u->peak = 0;
		malloc_trim(0);
	}
#endif
}

/* The header list curl sends: every field as given, plus empty entries
 * that stop curl from adding its own Accept, Expect and Content-Type. */
static struct curl_slist *
upstream_headers(struct upstream *u, const struct http_fields *f)
{
	static const char *const suppress[] = {
	    "Accept", "Expect", "Content-Type", "Transfer-Encoding"};
	struct curl_slist *l = NULL, *t;
	struct buf *b = &u->line;
	size_t i;

	for (i = 0; i < f->n; i++) {
		buf_reset(b);
		/* "Name;" is curl's spelling of a field with an empty
		 * value; "Name:" would delete it. */
		if (f->v[i].value[0] == '\0')
			buf_appendf(b, "%s;", f->v[i].name);
		else
			buf_appendf(b, "%s: %s", f->v[i].name, f->v[i].value);
		if ((t = curl_slist_append(l, b->data)) == NULL)
			goto fail;
		l = t;
	}
	for (i = 0; i < sizeof(suppress) / sizeof(suppress[0]); i++) {
		if (http_fields_get(f, suppress[i]) != NULL)
			continue;
		buf_reset(b);
		buf_appendf(b, "%s:", suppress[i]);
		if ((t = curl_slist_append(l, b->data)) == NULL)
			goto fail;
		l = t;
	}
	return l;
fail:
	curl_slist_free_all(l);
	return NULL;
}

struct upstream_req *
upstream_start(struct upstream *u, const struct upstream_spec *s,
               const struct upstream_cbs *cbs, void *arg, char *err)
{
	const struct config *c = u->cfg;
	struct upstream_req *r;
	CURLMcode mc;
	char url[512];
	CURL *e;

	if ((size_t)snprintf(url, sizeof(url), "%s://%s:%d/", s->scheme,
	                     s->host, s->port) >= sizeof(url)) {
		err_set(err, "upstream host name too long");
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->u = u;
	r->cbs = *cbs;
	r->arg = arg;
	r->check_private = s->check_private;
	http_fields_init(&r->fields);
	r->headers = upstream_headers(u, s->fields);
	if (r->headers == NULL) {
		err_set(err, "out of memory building upstream headers");
		free(r);
		return NULL;
	}
	if (u->npool > 0) {
		e = u->pool[--u->npool];
	} else if ((e = curl_easy_init()) == NULL) {
		err_set(err, "curl_easy_init failed");
		curl_slist_free_all(r->headers);
		free(r);
		return NULL;
	}
	r->easy = e;

	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_SHARE, u->share);
	curl_easy_setopt(e, CURLOPT_URL, url);
	/* The path and query go out exactly as received and signed: no
	 * dot-segment removal, no re-encoding by curl's URL parser. */
	curl_easy_setopt(e, CURLOPT_REQUEST_TARGET, s->target);
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, s->method);
	if (strcmp(s->method, "HEAD") == 0)
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	if (s->has_body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)s->body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS,
		                 s->body ? (const char *)s->body : "");
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* HTTP_PROXY in our own environment may well point at us. */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
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
	if (u->low_speed_time > 0) {
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, u->low_speed_time);
	}
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, upstream_opensocket_cb);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, upstream_header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, upstream_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);

	r->t_start = util_mono_ms();
	mc = curl_multi_add_handle(u->multi, e);
	if (mc != CURLM_OK) {
		err_set(err, "curl_multi_add_handle: %s",
		        curl_multi_strerror(mc));
		u->active++; /* upstream_release counts it back down */
		upstream_release(r);
		return NULL;
	}
	if (++u->active > u->peak)
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

struct upstream *
upstream_new(struct event_base *base, const struct config *c, char *err)
{
	struct upstream *u = xcalloc(1, sizeof(*u));

	u->base = base;
	u->cfg = c;
	buf_init(&u->line);
	u->low_speed_time = (long)((c->upstream_idle_timeout_ms + 999) / 1000);
	u->timer = evtimer_new(base, upstream_timer_cb, u);
	u->multi = curl_multi_init();
	u->share = curl_share_init();
	if (u->timer == NULL || u->multi == NULL || u->share == NULL) {
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
	size_t i;

	if (u == NULL)
		return;
	for (i = 0; i < u->npool; i++)
		curl_easy_cleanup(u->pool[i]);
	if (u->multi)
		curl_multi_cleanup(u->multi);
	if (u->share)
		curl_share_cleanup(u->share);
	while (u->socks)
		upstream_sock_free(u, u->socks);
	if (u->timer)
		event_free(u->timer);
	buf_free(&u->line);
	free(u);
}
