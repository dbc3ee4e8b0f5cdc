"""Forward-proxy data path, black box: the real daemon between raw-socket
clients and in-process upstreams on loopback. Self-contained (own fixtures)
so it runs next to the shared suite. Binary: $AAUTH_PROXY_BIN, else
build/aauth-proxy."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("AAUTH_PROXY_BIN", os.path.join(ROOT, "build", "aauth-proxy"))
TOKEN = "tok-datapath-0123456789"
TIMEOUT = 10


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# --- a minimal HTTP/1.1 reader for raw sockets ----------------------------

class Reader:
    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def until(self, sep):
        while sep not in self.buf:
            self.fill()
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def rest(self):
        try:
            while True:
                self.fill()
        except EOFError:
            pass
        out, self.buf = self.buf, b""
        return out

    def head(self):
        raw = self.until(b"\r\n\r\n").decode("latin-1")
        lines = raw.split("\r\n")
        first = lines[0].split(" ", 2)
        fields = []
        for ln in lines[1:]:
            if ln:
                k, v = ln.split(":", 1)
                fields.append((k, v.strip()))
        return first, fields

    def chunked(self):
        body = b""
        while True:
            size = int(self.until(b"\r\n")[:-2].split(b";")[0], 16)
            if size == 0:
                self.until(b"\r\n")
                return body
            body += self.exact(size)
            assert self.exact(2) == b"\r\n"


class Response:
    def __init__(self, status, fields, body):
        self.status = status
        self.fields = fields
        self.body = body

    def get(self, name):
        for k, v in self.fields:
            if k.lower() == name.lower():
                return v
        return None

    def all(self, name):
        return [v for k, v in self.fields if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)


def read_response(rd, method="GET"):
    first, fields = rd.head()
    status = int(first[1])
    r = Response(status, fields, b"")
    if status < 200:
        return r
    if method == "HEAD" or status in (204, 304):
        return r
    if (r.get("Transfer-Encoding") or "").lower() == "chunked":
        r.body = rd.chunked()
    elif r.get("Content-Length") is not None:
        r.body = rd.exact(int(r.get("Content-Length")))
    else:
        r.body = rd.rest()
    return r


# --- upstream: a threaded raw server with a per-test handler --------------

class Upstream:
    """Parses each request (Content-Length or chunked body) and hands it to
    handler(conn, req) with req = dict(method, target, fields, body, raw)."""

    def __init__(self, handler):
        self.handler = handler
        self.port = free_port()
        self.requests = []
        self.events = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.stop = False
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        rd = Reader(c)
        try:
            while True:
                raw = rd.until(b"\r\n\r\n")
                lines = raw.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                fields = [tuple(x.strip() for x in ln.split(":", 1))
                          for ln in lines[1:] if ln]
                req = {"method": method, "target": target, "fields": fields}
                te = [v for k, v in fields if k.lower() == "transfer-encoding"]
                cl = [v for k, v in fields if k.lower() == "content-length"]
                if te:
                    req["body"] = rd.chunked()
                    req["raw"] = None
                else:
                    req["body"] = rd.exact(int(cl[0])) if cl else b""
                    req["raw"] = raw + req["body"]
                self.requests.append(req)
                if self.handler(c, req) == "close":
                    break
        except (EOFError, OSError):
            pass
        finally:
            c.close()

    def close(self):
        self.stop = True
        self.sock.close()


def ok_json(c, req):
    body = json.dumps({"method": req["method"], "target": req["target"],
                       "fields": req["fields"],
                       "body": req["body"].decode("latin-1")}).encode()
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
              b"Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
              b"Keep-Alive: timeout=5\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


def field(req, name):
    return [v for k, v in req["fields"] if k.lower() == name.lower()]


# --- the daemon -----------------------------------------------------------

class Proxy:
    def __init__(self, tmp, rules, default="deny", block_private=True,
                 limits=None, upstream=None, extra_listen=None):
        self.tmp = tmp
        self.port = free_port()
        key = os.path.join(tmp, "key.pem")
        if not os.path.exists(key):
            subprocess.run([BIN, "keygen", "--out", key], check=True,
                           stdout=subprocess.DEVNULL)
        tok = os.path.join(tmp, "token")
        with open(tok, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(tok, 0o600)
        self.key = key
        self.access = os.path.join(tmp, "access-%d.log" % self.port)
        listen = ["127.0.0.1:%d" % self.port] + (extra_listen or [])
        cfg = {
            "listen": listen,
            "key": {"file": key},
            "default_action": default,
            "block_private_addresses": block_private,
            "resources": {
                "r1": {"token_file": tok, "upstream": "http",
                       "allow_plaintext": True},
                "gone": {"token_file": os.path.join(tmp, "missing"),
                         "upstream": "http", "allow_plaintext": True},
            },
            "rules": rules,
            "limits": dict({"header_timeout_ms": 1500,
                            "idle_timeout_ms": 3000,
                            "max_body_bytes": 100000}, **(limits or {})),
            "upstream": dict({"connect_timeout_ms": 2000,
                              "idle_timeout_ms": 2000}, **(upstream or {})),
            "log": {"level": "info", "access_log": self.access},
        }
        self.conf = os.path.join(tmp, "conf-%d.json" % self.port)
        with open(self.conf, "w") as f:
            json.dump(cfg, f)
        self.lines = []
        self.p = subprocess.Popen([BIN, "run", "-c", self.conf],
                                  stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.time() + TIMEOUT
        while time.time() < deadline:
            if any("listening on 127.0.0.1:%d" % self.port in ln
                   for ln in self.lines):
                break
            if self.p.poll() is not None:
                raise RuntimeError("proxy exited: %s" % "".join(self.lines))
            time.sleep(0.02)
        else:
            raise RuntimeError("proxy did not start")

    def _read(self):
        for ln in self.p.stderr:
            self.lines.append(ln)

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        return s

    def request(self, raw, method="GET"):
        s = self.connect()
        try:
            s.sendall(raw)
            return read_response(Reader(s), method)
        finally:
            s.close()

    def access_lines(self):
        with open(self.access) as f:
            return [json.loads(x) for x in f if x.strip()]

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="aauth-dp-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def env(tmp):
    """One upstream echoing JSON, a proxy signing for it on one port
    rule and passing another upstream; yields (proxy, up, up_pass)."""
    up = Upstream(ok_json)
    up_pass = Upstream(ok_json)
    px = Proxy(tmp, [
        {"host": "127.0.0.1", "port": up.port, "action": "sign",
         "resource": "r1"},
        {"host": "127.0.0.1", "port": up_pass.port, "action": "pass"},
        {"host": "blocked.test", "action": "deny"},
    ])
    yield px, up, up_pass
    assert px.stop() == 0
    up.close()
    up_pass.close()


def get(port, path="/", extra=b"", method=b"GET", version=b"1.1", body=b""):
    return (method + b" http://127.0.0.1:%d%s HTTP/%s\r\nHost: 127.0.0.1:%d\r\n"
            % (port, path.encode(), version, port) + extra + b"\r\n" + body)


def verify(px, raw):
    p = subprocess.run([BIN, "verify", "-", "--key", px.key, "--scheme", "http"],
                       input=raw, capture_output=True)
    return p.returncode, p.stderr.decode()


# --- signing and header handling ------------------------------------------

def test_sign_replaces_owned_headers_and_verifies(env):
    px, up, _ = env
    r = px.request(get(up.port, "/v1/items?limit=5&secret=hunter2",
                       b"Authorization: Bearer client-own\r\n"
                       b"Signature: sig1=:AAAA:\r\nSignature-Input: sig1=()\r\n"
                       b"Signature-Key: x\r\nContent-Digest: sha-256=:x=:\r\n"
                       b"Agent-Auth: agent_token=x\r\nProxy-Authorization: Basic eA==\r\n"
                       b"X-Keep: yes\r\n"))
    assert r.status == 200
    req = up.requests[-1]
    assert req["target"] == "/v1/items?limit=5&secret=hunter2"
    assert field(req, "Authorization") == ["Bearer " + TOKEN]
    assert len(field(req, "Signature")) == 1 and "AAAA" not in field(req, "Signature")[0]
    assert field(req, "Agent-Auth") == []
    assert field(req, "Proxy-Authorization") == []
    assert field(req, "Signature-Key") == []
    assert field(req, "X-Keep") == ["yes"]
    assert req["fields"][0] == ("Host", "127.0.0.1:%d" % up.port)
    rc, why = verify(px, req["raw"])
    assert rc == 0, why
    # hop-by-hop response fields are gone, the rest is relayed
    assert r.get("X-Hop") is None and r.get("Keep-Alive") is None
    assert r.get("Content-Type") == "application/json"


def test_sign_chunked_body_resent_with_length(env):
    px, up, _ = env
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    r = px.request(get(up.port, "/upload", b"Transfer-Encoding: chunked\r\n"
                       b"Content-Type: text/plain\r\n", method=b"POST", body=body))
    assert r.status == 200
    req = up.requests[-1]
    assert req["body"] == b"hello world"
    assert field(req, "Content-Length") == ["11"]
    assert field(req, "Transfer-Encoding") == []
    rc, why = verify(px, req["raw"])
    assert rc == 0, why


def test_sign_dot_segments_and_method_case_go_out_verbatim(env):
    px, up, _ = env
    r = px.request(get(up.port, "/a/../b/./%7e?q=%20", method=b"Patch",
                       extra=b"Content-Length: 2\r\n", body=b"{}"))
    assert r.status == 200
    req = up.requests[-1]
    assert req["method"] == "Patch"
    assert req["target"] == "/a/../b/./%7e?q=%20"
    rc, why = verify(px, req["raw"])
    assert rc == 0, why


def test_pass_keeps_client_headers_minus_hop_by_hop(env):
    px, _, upp = env
    r = px.request(get(upp.port, "/p", b"Authorization: mine\r\n"
                       b"Connection: keep-alive, X-Private\r\nX-Private: 1\r\n"
                       b"Proxy-Connection: keep-alive\r\nTE: trailers\r\n"
                       b"Upgrade: h2c\r\nProxy-Authorization: Basic eA==\r\n"))
    assert r.status == 200
    req = upp.requests[-1]
    assert field(req, "Authorization") == ["mine"]
    assert field(req, "Signature") == []
    for h in ("X-Private", "Proxy-Connection", "TE", "Upgrade",
              "Proxy-Authorization", "Connection"):
        assert field(req, h) == [], h
    # curl must not have added headers of its own
    assert field(req, "Accept") == []
    assert field(req, "User-Agent") == []


# --- framing, keep-alive, pipelining --------------------------------------

def test_pipelined_requests_answered_in_order(env):
    px, up, upp = env
    s = px.connect()
    s.sendall(get(up.port, "/one") + get(upp.port, "/two") +
              b"GET http://blocked.test/x HTTP/1.1\r\nHost: blocked.test\r\n\r\n" +
              get(up.port, "/four"))
    rd = Reader(s)
    got = [read_response(rd) for _ in range(4)]
    s.close()
    assert [g.status for g in got] == [200, 200, 403, 200]
    assert got[0].json()["target"] == "/one"
    assert got[1].json()["target"] == "/two"
    assert got[3].json()["target"] == "/four"


def test_expect_continue(env):
    px, up, _ = env
    s = px.connect()
    s.sendall(get(up.port, "/e", b"Content-Length: 4\r\nExpect: 100-continue\r\n",
                  method=b"POST"))
    rd = Reader(s)
    first, _ = rd.head()
    assert first[1] == "100"
    s.sendall(b"data")
    r = read_response(rd)
    s.close()
    assert r.status == 200
    assert up.requests[-1]["body"] == b"data"
    assert field(up.requests[-1], "Expect") == []


def test_expect_continue_too_large_is_413_without_reading(env):
    px, up, _ = env
    s = px.connect()
    s.sendall(get(up.port, "/e", b"Content-Length: 999999999\r\n"
                  b"Expect: 100-continue\r\n", method=b"POST"))
    r = read_response(Reader(s))
    s.close()
    assert r.status == 413
    assert r.get("Connection") == "close"
    assert "max_body_bytes" in r.json()["detail"]


def test_body_over_limit_chunked_is_413(env):
    px, up, _ = env
    chunk = b"%x\r\n%s\r\n" % (60000, b"a" * 60000)
    s = px.connect()
    s.sendall(get(up.port, "/big", b"Transfer-Encoding: chunked\r\n",
                  method=b"POST") + chunk + chunk)
    r = read_response(Reader(s))
    s.close()
    assert r.status == 413
    assert r.get("Content-Type") == "application/json"


def test_malformed_request_400_json_and_close(env):
    px, _, _ = env
    s = px.connect()
    s.sendall(b"GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    rd = Reader(s)
    r = read_response(rd)
    assert r.status == 400
    assert r.get("Connection") == "close"
    assert r.json()["error"] == "bad_request" and r.json()["detail"]
    assert rd.rest() == b""  # closed
    s.close()


def test_oversized_head_is_431(env):
    px, up, _ = env
    r = px.request(get(up.port, "/", b"X-Big: " + b"a" * 70000 + b"\r\n"))
    assert r.status == 431


def test_http10_client_gets_close_delimited_body(tmp):
    def chunky(c, req):
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n")
    up = Upstream(chunky)
    px = Proxy(tmp, [{"host": "127.0.0.1", "port": up.port, "action": "pass"}])
    try:
        s = px.connect()
        s.sendall(get(up.port, "/x", version=b"1.0"))
        rd = Reader(s)
        first, fields = rd.head()
        assert first[1] == "200"
        names = [k.lower() for k, _ in fields]
        assert "transfer-encoding" not in names
        assert ("Connection", "close") in fields
        assert rd.rest() == b"abcdef"
        s.close()
        # an HTTP/1.1 client gets it re-chunked
        r = px.request(get(up.port, "/y"))
        assert r.get("Transfer-Encoding") == "chunked" and r.body == b"abcdef"
    finally:
        assert px.stop() == 0
        up.close()


def test_head_response_has_no_body(env):
    px, up, _ = env
    s = px.connect()
    s.sendall(get(up.port, "/h", method=b"HEAD") + get(up.port, "/after"))
    rd = Reader(s)
    r1 = read_response(rd, "HEAD")
    r2 = read_response(rd)
    s.close()
    assert r1.status == 200 and int(r1.get("Content-Length")) > 0
    assert r2.json()["target"] == "/after"


# --- streaming, backpressure, disconnects ---------------------------------

def test_sse_events_arrive_one_by_one(tmp):
    def sse(c, req):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        for i in range(3):
            d = b"data: %d\n\n" % i
            c.sendall(b"%x\r\n%s\r\n" % (len(d), d))
            time.sleep(0.4)
        c.sendall(b"0\r\n\r\n")
    up = Upstream(sse)
    px = Proxy(tmp, [{"host": "127.0.0.1", "port": up.port, "action": "sign",
                      "resource": "r1"}])
    try:
        s = px.connect()
        s.sendall(get(up.port, "/events"))
        rd = Reader(s)
        t0 = time.time()
        first, _ = rd.head()
        assert first[1] == "200"
        size = int(rd.until(b"\r\n")[:-2], 16)
        assert rd.exact(size + 2) == b"data: 0\n\n\r\n"
        # the first event came long before the stream ended (1.2 s)
        assert time.time() - t0 < 0.35
        rest = rd.chunked()
        assert rest == b"data: 1\n\ndata: 2\n\n"
        s.close()
    finally:
        assert px.stop() == 0
        up.close()


def test_client_disconnect_mid_stream_aborts_upstream(tmp):
    gone = threading.Event()

    def endless(c, req):
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(200):
                c.sendall(b"6\r\ntick!\n\r\n")
                time.sleep(0.05)
        except OSError:
            gone.set()
            return "close"
    up = Upstream(endless)
    ok = Upstream(ok_json)
    px = Proxy(tmp, [{"host": "127.0.0.1", "port": up.port, "action": "pass"},
                     {"host": "127.0.0.1", "port": ok.port, "action": "pass"}])
    try:
        s = px.connect()
        s.sendall(get(up.port, "/stream"))
        rd = Reader(s)
        rd.head()
        rd.until(b"tick!")
        s.close()
        assert gone.wait(5), "upstream kept streaming to a gone client"
        # the proxy is fine for everyone else
        assert px.request(get(ok.port, "/still")).status == 200
        log = [x for x in px.access_lines() if x.get("path") == "/stream"]
        assert log and log[0]["status"] == 200
    finally:
        assert px.stop() == 0
        up.close()
        ok.close()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS"):
                return int(ln.split()[1])
    raise AssertionError("no VmRSS")


def test_slow_client_large_body_intact(tmp):
    size = 32 * 1024 * 1024
    blob = bytes(range(256)) * (size // 256)

    def big(c, req):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        c.sendall(blob)
    up = Upstream(big)
    px = Proxy(tmp, [{"host": "127.0.0.1", "port": up.port, "action": "pass"}],
               upstream={"idle_timeout_ms": 3000})
    try:
        before = rss_kb(px.p.pid)
        s = px.connect()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        s.sendall(get(up.port, "/big"))
        rd = Reader(s)
        first, fields = rd.head()
        assert first[1] == "200"
        # Not reading: the proxy must pause the upstream, not buffer
        # 32 MiB (the bound leaves room for sanitizer builds).
        time.sleep(1.5)
        grown = rss_kb(px.p.pid) - before
        assert grown < 8 * 1024, grown
        got = rd.exact(size)
        assert got == blob
        s.close()
    finally:
        assert px.stop() == 0
        up.close()


# --- upstream failures ------------------------------------------------------

def test_upstream_refused_is_502_with_proxy_status(tmp):
    port = free_port()
    px = Proxy(tmp, [{"host": "127.0.0.1", "port": port, "action": "pass"}])
    try:
        r = px.request(get(port, "/"))
        assert r.status == 502
        assert r.json()["error"] == "connection_refused"
        assert r.json()["upstream"] == "127.0.0.1:%d" % port
        assert r.get("Proxy-Status").startswith("aauth-proxy; error=connection_refused")
    finally:
        assert px.stop() == 0


def test_upstream_dns_failure_is_502(tmp):
    px = Proxy(tmp, [{"host": "*.invalid", "action": "pass"}])
    try:
        r = px.request(b"GET http://no-such-host.invalid/ HTTP/1.1\r\n"
                       b"Host: no-such-host.invalid\r\n\r\n")
        assert r.status == 502
        assert r.json()["error"] == "dns_error"
    finally:
        assert px.stop() == 0


def test_upstream_silent_is_504(tmp):
    def silent(c, req):
        time.sleep(4)
        return "close"
    up = Upstream(silent)
    px = Proxy(tmp, [{"host": "127.0.0.1", "port": up.port, "action": "pass"}],
               upstream={"idle_timeout_ms": 1000})
    try:
        t0 = time.time()
        r = px.request(get(up.port, "/"))
        assert r.status == 504
        assert r.json()["error"] == "http_response_timeout"
        assert time.time() - t0 < 3.5
    finally:
        assert px.stop() == 0
        up.close()


def test_token_unavailable_is_503(tmp):
    up = Upstream(ok_json)
    px = Proxy(tmp, [{"host": "127.0.0.1", "port": up.port, "action": "sign",
                      "resource": "gone"}])
    try:
        r = px.request(get(up.port, "/"))
        assert r.status == 503
        j = r.json()
        assert j["error"] == "token_unavailable" and j["resource"] == "gone"
        assert "missing" in j["detail"]
        assert up.requests == []
    finally:
        assert px.stop() == 0
        up.close()


# --- policy -----------------------------------------------------------------

def test_deny_and_default_deny(env):
    px, _, _ = env
    r = px.request(b"GET http://blocked.test/x HTTP/1.1\r\nHost: blocked.test\r\n\r\n")
    assert r.status == 403 and r.json()["host"] == "blocked.test"
    assert "http_request_denied" in r.get("Proxy-Status")
    r = px.request(b"GET http://other.test/x HTTP/1.1\r\nHost: other.test\r\n\r\n")
    assert r.status == 403 and "default_action" in r.json()["detail"]


def test_block_private_unnamed_hosts(tmp):
    up = Upstream(ok_json)
    px = Proxy(tmp, [{"host": "named.localhost", "action": "deny"}], default="pass")
    try:
        for host in (b"127.0.0.1:%d" % up.port, b"localhost:%d" % up.port,
                     b"[::1]:%d" % up.port, b"169.254.169.254"):
            r = px.request(b"GET http://" + host + b"/ HTTP/1.1\r\nHost: " +
                           host + b"\r\n\r\n")
            assert r.status == 403, host
            assert r.json()["error"] == "destination_ip_prohibited", host
        assert up.requests == []
    finally:
        assert px.stop() == 0
        up.close()


def test_connect_and_origin_form(env):
    px, _, _ = env
    # unmatched host, default deny: refused before any tunnel (issue 9)
    r = px.request(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    assert r.status == 403 and r.get("Connection") == "close"
    r = px.request(b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert r.status == 400
    assert "HTTP_PROXY=http://127.0.0.1:%d" % px.port in r.json()["detail"]


def test_max_connections(tmp):
    up = Upstream(ok_json)
    px = Proxy(tmp, [{"host": "127.0.0.1", "port": up.port, "action": "pass"}],
               limits={"max_connections": 3})
    try:
        held = [px.connect() for _ in range(3)]
        time.sleep(0.2)
        s = px.connect()
        r = read_response(Reader(s))
        assert r.status == 503 and r.json()["error"] == "too_many_connections"
        s.close()
        held[0].close()
        time.sleep(0.2)
        assert px.request(get(up.port, "/")).status == 200
        for h in held[1:]:
            h.close()
    finally:
        assert px.stop() == 0
        up.close()


def test_header_timeout_408(env):
    px, up, _ = env
    s = px.connect()
    s.sendall(b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: x\r\n")
    t0 = time.time()
    r = read_response(Reader(s))
    s.close()
    assert r.status == 408
    assert 1.0 < time.time() - t0 < 4


def test_access_log_has_no_secrets(env):
    px, up, _ = env
    px.request(get(up.port, "/q?api_key=supersecret&x=1"))
    time.sleep(0.1)
    lines = px.access_lines()
    line = [x for x in lines if x.get("path") == "/q"][-1]
    text = json.dumps(line)
    assert "supersecret" not in text and TOKEN not in text
    assert line["query_names"] == ["api_key", "x"]
    assert line["action"] == "sign" and line["status"] == 200
    assert len(line["token"]) == 12 and line["key"]


def test_unix_listener(tmp):
    up = Upstream(ok_json)
    path = os.path.join(tmp, "p.sock")
    px = Proxy(tmp, [{"host": "127.0.0.1", "port": up.port, "action": "pass"}],
               extra_listen=["unix:" + path])
    try:
        assert oct(os.stat(path).st_mode & 0o777) == "0o660"
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(TIMEOUT)
        s.connect(path)
        s.sendall(get(up.port, "/unix"))
        r = read_response(Reader(s))
        s.close()
        assert r.json()["target"] == "/unix"
    finally:
        assert px.stop() == 0
        up.close()
    assert not os.path.exists(path)


def test_sigterm_lets_inflight_request_finish(tmp):
    def slow(c, req):
        time.sleep(1.0)
        ok_json(c, req)
    up = Upstream(slow)
    px = Proxy(tmp, [{"host": "127.0.0.1", "port": up.port, "action": "pass"}])
    s = px.connect()
    s.sendall(get(up.port, "/slow"))
    time.sleep(0.3)
    px.p.send_signal(signal.SIGTERM)
    r = read_response(Reader(s))
    s.close()
    assert r.status == 200 and r.get("Connection") == "close"
    assert px.p.wait(TIMEOUT) == 0
    up.close()
