/*
 * token_src: token inputs from files, commands (posix_spawn, stdout read
 * through a pipe on the event loop, bounded in bytes and time, the child
 * reaped without blocking), signed GETs (fetch) and minted agent tokens
 * (jwt), plus the per-resource state file. A value is checked before it
 * is handed on: it is going into a header line.
 */
#define _GNU_SOURCE /* pipe2, posix_spawn_file_actions_addclosefrom_np */
#include "token_src.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fetch.h"
#include "gen.h"
#include "jwt.h"
#include "log.h"
#include "outreq.h"
#include "util.h"

extern char **environ;

/* After a command closed its stdout: how often to look for its exit. */
#define TOKEN_SRC_REAP_MS 5
/* A command's agent token is run again this long before its exp. */
#define TOKEN_SRC_CMD_EARLY_S 60
#define TOKEN_SRC_CACHE_MAX   64

/* A command's output kept until shortly before the token's exp. */
struct token_src_cached {
	char *key; /* resource name + argv */
	char *value;
	int64_t until; /* unix seconds */
};

struct token_src {
	struct event_base *base;
	struct upstream *up;
	struct token_src_cached cache[TOKEN_SRC_CACHE_MAX];
	size_t ncache;
};

struct token_src_req {
	struct token_src *s;
	struct gen *gen;
	token_src_cb cb;
	void *arg;
	struct event *ev;  /* deliver, command deadline, reap polling */
	char *value;       /* a result waiting to be delivered */
	char err[ERR_MAX]; /* or why there is none */
	char *cache_key;   /* a command whose output may be cached */
	/* COMMAND */
	pid_t pid;
	int fd;
	struct event *ev_read;
	struct buf out;
	uint64_t deadline; /* monotonic ms */
	int reaping;       /* stdout closed; waiting for the exit */
	/* URL */
	struct fetch *fetch;
	char *url_text;
};

/* --- values ----------------------------------------------------------- */

void
token_src_wipe(char *s)
{
	if (s == NULL)
		return;
	sodium_memzero(s, strlen(s));
	free(s);
}

int
token_src_check(const char *p, size_t n, const char *what, char *err)
{
	size_t i;

	if (n == 0) {
		err_set(err, "%s is empty", what);
		return -1;
	}
	if (n > TOKEN_SRC_MAX_BYTES) {
		err_set(err, "%s is longer than %d bytes", what,
		        TOKEN_SRC_MAX_BYTES);
		return -1;
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e) {
			err_set(err,
			        "%s: byte %zu (0x%02x) is not allowed in a "
			        "token (visible ASCII only)",
			        what, i, (unsigned char)p[i]);
			return -1;
		}
	return 0;
}

/* The value in p[0..n) without surrounding whitespace, checked; a new
 * string or NULL with err. */
static char *
token_src_trimmed(const char *p, size_t n, const char *what, char *err)
{
	size_t a = 0;

	while (a < n &&
	       (p[a] == ' ' || p[a] == '\t' || p[a] == '\r' || p[a] == '\n'))
		a++;
	while (n > a && (p[n - 1] == ' ' || p[n - 1] == '\t' ||
	                 p[n - 1] == '\r' || p[n - 1] == '\n'))
		n--;
	if (token_src_check(p + a, n - a, what, err) == -1)
		return NULL;
	return xstrndup(p + a, n - a);
}

int
token_src_read_file(const char *path, char **value, char *err)
{
	char what[300];
	struct buf b;

	*value = NULL;
	buf_init(&b);
	if (util_read_file(path, &b, TOKEN_SRC_MAX_BYTES, err) == -1)
		goto out;
	snprintf(what, sizeof(what), "token file %s", path);
	*value = token_src_trimmed(b.data ? b.data : "", b.len, what, err);
out:
	if (b.data != NULL)
		sodium_memzero(b.data, b.len);
	buf_free(&b);
	return *value != NULL ? 0 : -1;
}

/* --- the context and its command cache -------------------------------- */

struct token_src *
token_src_new(struct event_base *base, struct upstream *up)
{
	struct token_src *s = xcalloc(1, sizeof(*s));

	s->base = base;
	s->up = up;
	return s;
}

void
token_src_free(struct token_src *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->ncache; i++) {
		free(s->cache[i].key);
		token_src_wipe(s->cache[i].value);
	}
	free(s);
}

static struct token_src_cached *
token_src_cache_find(struct token_src *s, const char *key)
{
	size_t i;

	for (i = 0; i < s->ncache; i++)
		if (strcmp(s->cache[i].key, key) == 0)
			return &s->cache[i];
	return NULL;
}

static void
token_src_cache_put(struct token_src *s, const char *key, const char *value,
                    int64_t until)
{
	struct token_src_cached *c = token_src_cache_find(s, key);

	if (c == NULL) {
		if (s->ncache == TOKEN_SRC_CACHE_MAX) {
			/* Forget the oldest: only a re-run is lost. */
			free(s->cache[0].key);
			token_src_wipe(s->cache[0].value);
			memmove(&s->cache[0], &s->cache[1],
			        (s->ncache - 1) * sizeof(s->cache[0]));
			s->ncache--;
		}
		c = &s->cache[s->ncache++];
		c->key = xstrdup(key);
		c->value = NULL;
	}
	token_src_wipe(c->value);
	c->value = xstrdup(value);
	c->until = until;
}

/* --- requests ------------------------------------------------------------ */

/* Kill a command and everything it started (its process group), and
 * reap it: after SIGKILL the wait is immediate. */
static void
token_src_kill(struct token_src_req *q)
{
	int st;

	kill(-q->pid, SIGKILL);
	kill(q->pid, SIGKILL);
	while (waitpid(q->pid, &st, 0) == -1 && errno == EINTR)
		;
	q->pid = 0;
}

static void
token_src_req_free(struct token_src_req *q)
{
	if (q->pid > 0)
		token_src_kill(q); /* cancelled (or shutting down) */
	if (q->ev_read != NULL)
		event_free(q->ev_read);
	if (q->fd >= 0)
		close(q->fd);
	if (q->ev != NULL)
		event_free(q->ev);
	if (q->fetch != NULL)
		fetch_cancel(q->fetch);
	if (q->out.data != NULL)
		sodium_memzero(q->out.data, q->out.cap);
	buf_free(&q->out);
	token_src_wipe(q->value);
	free(q->cache_key);
	free(q->url_text);
	gen_unref(q->gen);
	free(q);
}

void
token_src_cancel(struct token_src_req *q)
{
	if (q != NULL)
		token_src_req_free(q);
}

/* Hand the result over and forget the request. */
static void
token_src_deliver(struct token_src_req *q)
{
	char *v = q->value;

	q->value = NULL;
	q->cb(q->arg, v, v != NULL ? NULL : q->err);
	token_src_req_free(q);
}

static void
token_src_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	token_src_deliver(arg);
}

/* A result known at once: delivered from the loop, as promised. */
static void
token_src_later(struct token_src_req *q)
{
	if (q->ev != NULL)
		event_free(q->ev);
	q->ev = evtimer_new(q->s->base, token_src_deliver_cb, q);
	event_active(q->ev, EV_TIMEOUT, 1);
}

/* --- commands ------------------------------------------------------------ */

static void token_src_cmd_timer_cb(evutil_socket_t fd, short what, void *arg);

static void
token_src_cmd_arm(struct token_src_req *q, uint64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000),
	                     (suseconds_t)((ms % 1000) * 1000)};

	evtimer_add(q->ev, &tv);
}

/* The child has exited with st: the output is the value, or why not. */
static void
token_src_cmd_exited(struct token_src_req *q, int st)
{
	int64_t exp;

	q->pid = 0;
	if (WIFSIGNALED(st)) {
		err_set(q->err, "the command was killed by signal %d",
		        WTERMSIG(st));
	} else if (WEXITSTATUS(st) != 0) {
		err_set(q->err,
		        "the command exited with status %d (its stderr is "
		        "discarded; run it by hand to see why)",
		        WEXITSTATUS(st));
	} else {
		q->value = token_src_trimmed(q->out.data ? q->out.data : "",
		                             q->out.len, "the command's output",
		                             q->err);
		/* An agent token from a command is good until shortly
		 * before its exp: run it again only then. */
		if (q->value != NULL && q->cache_key != NULL &&
		    jwt_exp(q->value, &exp) == 0 &&
		    exp - TOKEN_SRC_CMD_EARLY_S > util_now())
			token_src_cache_put(q->s, q->cache_key, q->value,
			                    exp - TOKEN_SRC_CMD_EARLY_S);
	}
	token_src_deliver(q);
}

static void
token_src_cmd_reap(struct token_src_req *q)
{
	int st;
	pid_t p;

	do
		p = waitpid(q->pid, &st, WNOHANG);
	while (p == -1 && errno == EINTR);
	if (p == q->pid) {
		token_src_cmd_exited(q, st);
		return;
	}
	if (p == -1) {
		q->pid = 0;
		err_set(q->err, "waitpid: %s", strerror(errno));
		token_src_deliver(q);
		return;
	}
	if (util_mono_ms() >= q->deadline) {
		token_src_kill(q);
		err_set(q->err,
		        "the command closed its output but did not exit "
		        "within %d ms; killed",
		        TOKEN_SRC_CMD_TIMEOUT_MS);
		token_src_deliver(q);
		return;
	}
	token_src_cmd_arm(q, TOKEN_SRC_REAP_MS);
}

static void
token_src_cmd_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct token_src_req *q = arg;

	if (q->reaping) {
		token_src_cmd_reap(q);
		return;
	}
	token_src_kill(q);
	err_set(q->err, "the command did not finish within %d ms; killed",
	        TOKEN_SRC_CMD_TIMEOUT_MS);
	token_src_deliver(q);
}

static void
token_src_cmd_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct token_src_req *q = arg;
	char chunk[4096];
	ssize_t n;

	for (;;) {
		n = read(q->fd, chunk, sizeof(chunk));
		if (n > 0) {
			if (q->out.len + (size_t)n > TOKEN_SRC_MAX_BYTES + 2) {
				sodium_memzero(chunk, sizeof(chunk));
				token_src_kill(q);
				err_set(q->err,
				        "the command wrote more than %d bytes; "
				        "killed",
				        TOKEN_SRC_MAX_BYTES);
				token_src_deliver(q);
				return;
			}
			buf_append(&q->out, chunk, (size_t)n);
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		/* EOF (or a read error): now wait for the exit. */
		event_free(q->ev_read);
		q->ev_read = NULL;
		close(q->fd);
		q->fd = -1;
		q->reaping = 1;
		evtimer_del(q->ev);
		token_src_cmd_reap(q);
		break;
	}
	sodium_memzero(chunk, sizeof(chunk));
}

static int
token_src_cmd_start(struct token_src_req *q, char *const argv[])
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int p[2], rc;

	/* Only our end is non-blocking: a helper that writes faster than
	 * we read must block, not fail with EAGAIN. */
	if (pipe2(p, O_CLOEXEC) == -1) {
		err_set(q->err, "pipe: %s", strerror(errno));
		return -1;
	}
	if (fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK) == -1) {
		err_set(q->err, "pipe: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	/* Its stderr is not ours to log: a helper may well print what it
	 * fetched there. */
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	/* Our ignored SIGPIPE must not be inherited as ignored. */
	posix_spawnattr_setsigdefault(&at, &all);
	/* Its own process group: a helper script's children are killed
	 * with it. */
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
	                                  POSIX_SPAWN_SETSIGDEF |
	                                  POSIX_SPAWN_SETPGROUP);
	rc = posix_spawnp(&q->pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		q->pid = 0;
		err_set(q->err, "cannot run %s: %s", argv[0], strerror(rc));
		return -1;
	}
	q->fd = p[0];
	q->ev_read = event_new(q->s->base, q->fd, EV_READ | EV_PERSIST,
	                       token_src_cmd_read_cb, q);
	q->ev = evtimer_new(q->s->base, token_src_cmd_timer_cb, q);
	if (q->ev_read == NULL || q->ev == NULL) {
		err_set(q->err, "cannot watch the command's output");
		return -1;
	}
	event_add(q->ev_read, NULL);
	q->deadline = util_mono_ms() + TOKEN_SRC_CMD_TIMEOUT_MS;
	token_src_cmd_arm(q, TOKEN_SRC_CMD_TIMEOUT_MS);
	return 0;
}

/* --- URLs ---------------------------------------------------------------- */

static void
token_src_url_done(void *arg, const struct fetch_result *res)
{
	struct token_src_req *q = arg;
	json_t *o, *m;
	char what[300];

	q->fetch = NULL;
	snprintf(what, sizeof(what), "the resource token from %.200s",
	         q->url_text);
	if (!res->ok) {
		if (res->oversized)
			err_set(q->err, "GET %.200s: %s", q->url_text,
			        res->detail);
		else
			err_set(q->err, "GET %.200s: %s: %s", q->url_text,
			        res->error, res->detail);
	} else if (res->status != 200) {
		err_set(q->err, "GET %.200s answered %d", q->url_text,
		        res->status);
	} else if ((o = json_loadb(res->body, res->body_len, 0, NULL)) !=
	           NULL) {
		/* JSON: its resource_token member; anything else in JSON
		 * is not a token. */
		m = json_object_get(o, "resource_token");
		if (json_is_string(m))
			q->value = token_src_trimmed(json_string_value(m),
			                             json_string_length(m),
			                             what, q->err);
		else
			err_set(q->err,
			        "GET %.200s: a JSON answer without a "
			        "resource_token string",
			        q->url_text);
		json_decref(o);
	} else {
		q->value =
		    token_src_trimmed(res->body, res->body_len, what, q->err);
	}
	token_src_deliver(q);
}

static int
token_src_url_start(struct token_src_req *q, const struct config_resource *r,
                    const struct config_url *u)
{
	struct http_request *req;
	struct fetch_spec fs;
	struct outreq_sign sign;
	struct buf t;

	q->url_text = xstrdup(u->text);
	buf_init(&t);
	buf_appends(&t, u->path);
	if (u->query != NULL)
		buf_appendf(&t, "?%s", u->query);
	req = fetch_request_new("GET", u->scheme, u->authority, t.data, NULL,
	                        NULL, 0, q->err);
	buf_free(&t);
	if (req == NULL)
		return -1;
	/* Signed with the resource's own profile, as the resource will
	 * expect of the agent; there is no token to send yet. */
	sign.profile = &r->profile;
	sign.key = &q->gen->key;
	sign.token = NULL;
	if (outreq_finalise(req, 0, &sign, q->err) == -1) {
		fetch_request_wipe(req);
		free(req);
		return -1;
	}
	memset(&fs, 0, sizeof(fs));
	fs.gen = q->gen;
	fs.req = req;
	fs.scheme = u->scheme;
	fs.host = u->host;
	fs.port = u->port;
	fs.max_body = TOKEN_SRC_MAX_BYTES;
	fs.timeout_ms = fetch_timeout_ms(q->gen);
	q->fetch = fetch_start(q->s->base, q->s->up, &fs, token_src_url_done, q,
	                       q->err);
	return q->fetch != NULL ? 0 : -1;
}

/* --- get ----------------------------------------------------------------- */

struct token_src_req *
token_src_get(struct token_src *s, struct gen *g,
              const struct config_resource *r, const struct config_tsrc *src,
              token_src_cb cb, void *arg)
{
	struct token_src_req *q = xcalloc(1, sizeof(*q));
	struct token_src_cached *c;
	struct jwt_agent ja;
	struct buf key;
	size_t i;

	q->s = s;
	q->gen = gen_ref(g);
	q->cb = cb;
	q->arg = arg;
	q->fd = -1;
	buf_init(&q->out);
	switch (src->kind) {
	case CONFIG_TSRC_FILE:
		token_src_read_file(src->file, &q->value, q->err);
		break;
	case CONFIG_TSRC_MINT:
		memset(&ja, 0, sizeof(ja));
		ja.iss = src->mint_iss;
		ja.sub = src->mint_sub;
		ja.aud = r->aauth->issuer.text;
		ja.iat = util_now();
		ja.lifetime_s = src->mint_lifetime_s;
		/* Fresh for every token request: a new jti each time, so
		 * an issuer that refuses a replayed agent token is happy. */
		q->value = jwt_mint_agent(&g->key, &ja, q->err);
		break;
	case CONFIG_TSRC_CHALLENGE:
		err_set(q->err, "no resource token yet: the resource has not "
		                "sent an AAuth-Requirement challenge");
		break;
	case CONFIG_TSRC_URL:
		if (token_src_url_start(q, r, &src->url) == 0)
			return q;
		break;
	case CONFIG_TSRC_COMMAND:
		if (src == &r->aauth->agent_token) {
			buf_init(&key);
			buf_appends(&key, r->name);
			for (i = 0; src->argv[i]; i++)
				buf_appendf(&key, "\n%s", src->argv[i]);
			q->cache_key = buf_steal(&key);
			c = token_src_cache_find(s, q->cache_key);
			if (c != NULL && c->until > util_now()) {
				q->value = xstrdup(c->value);
				break;
			}
		}
		if (token_src_cmd_start(q, src->argv) == 0)
			return q;
		break;
	}
	token_src_later(q);
	return q;
}

/* --- state file ---------------------------------------------------------- */

void
token_saved_clear(struct token_saved *t)
{
	token_src_wipe(t->token);
	token_src_wipe(t->refresh_token);
	free(t->scope);
	memset(t, 0, sizeof(*t));
}

static char *
token_src_json_secret(json_t *o, const char *name, char *err, int *bad)
{
	json_t *m = json_object_get(o, name);
	char what[64];

	if (m == NULL || json_is_null(m))
		return NULL;
	snprintf(what, sizeof(what), "%s", name);
	if (!json_is_string(m) ||
	    token_src_check(json_string_value(m), json_string_length(m), what,
	                    err) == -1) {
		if (json_is_string(m) == 0)
			err_set(err, "%s is not a string", name);
		*bad = 1;
		return NULL;
	}
	return xstrdup(json_string_value(m));
}

int
token_src_state_load(const char *path, const char *issuer,
                     struct token_saved *out, char *err)
{
	json_t *o = NULL, *m;
	char why[ERR_MAX];
	struct buf b;
	int bad = 0, rc = -1;

	memset(out, 0, sizeof(*out));
	buf_init(&b);
	if (access(path, F_OK) == -1 && errno == ENOENT) {
		rc = 1;
		goto out;
	}
	if (util_read_file(path, &b, 1 << 20, err) == -1)
		goto out;
	o = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
	if (!json_is_object(o)) {
		err_set(err, "%s: not a JSON object", path);
		goto out;
	}
	m = json_object_get(o, "issuer");
	if (!json_is_string(m) || strcmp(json_string_value(m), issuer) != 0) {
		/* Tokens of another issuer are no use here. */
		rc = 1;
		goto out;
	}
	why[0] = '\0';
	out->token = token_src_json_secret(o, "token", why, &bad);
	out->refresh_token =
	    token_src_json_secret(o, "refresh_token", why, &bad);
	if (bad) {
		err_set(err, "%s: %s", path, why);
		token_saved_clear(out);
		goto out;
	}
	if (json_is_string(json_object_get(o, "scope")))
		out->scope =
		    xstrdup(json_string_value(json_object_get(o, "scope")));
	if (json_is_integer(json_object_get(o, "received_at")))
		out->received_at = (int64_t)json_integer_value(
		    json_object_get(o, "received_at"));
	if (json_is_integer(json_object_get(o, "expires_at")))
		out->expires_at = (int64_t)json_integer_value(
		    json_object_get(o, "expires_at"));
	rc = out->token || out->refresh_token ? 0 : 1;
out:
	json_decref(o);
	if (b.data != NULL)
		sodium_memzero(b.data, b.len);
	buf_free(&b);
	return rc;
}

int
token_src_state_save(const char *path, const char *issuer,
                     const struct token_saved *in, char *err)
{
	struct buf tmp;
	json_t *o;
	char *text;
	size_t len, off = 0;
	ssize_t n;
	int fd, rc = -1;

	o = json_pack("{s:s,s:s?,s:s?,s:s?,s:I,s:I}", "issuer", issuer, "token",
	              in->token, "refresh_token", in->refresh_token, "scope",
	              in->scope, "received_at", (json_int_t)in->received_at,
	              "expires_at", (json_int_t)in->expires_at);
	text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (text == NULL) {
		err_set(err, "%s: cannot encode the state", path);
		return -1;
	}
	len = strlen(text);
	buf_init(&tmp);
	buf_appendf(&tmp, "%s.tmp", path);
	/* 0600 from the first byte: it holds a refresh token. */
	fd = open(tmp.data,
	          O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		err_set(err, "%s: %s", tmp.data, strerror(errno));
		goto out;
	}
	if (fchmod(fd, 0600) == -1) {
		err_set(err, "%s: chmod: %s", tmp.data, strerror(errno));
		close(fd);
		unlink(tmp.data);
		goto out;
	}
	while (off < len) {
		n = write(fd, text + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			err_set(err, "%s: %s", tmp.data, strerror(errno));
			close(fd);
			unlink(tmp.data);
			goto out;
		}
		off += (size_t)n;
	}
	/* No fsync: it can stall the loop for as long as the disk likes,
	 * and a state file lost to a power cut costs one new auth. */
	if (close(fd) == -1) {
		err_set(err, "%s: %s", tmp.data, strerror(errno));
		unlink(tmp.data);
		goto out;
	}
	if (rename(tmp.data, path) == -1) {
		err_set(err, "%s: %s", path, strerror(errno));
		unlink(tmp.data);
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(text, len);
	free(text);
	buf_free(&tmp);
	return rc;
}
