"""Forward-proxy data path, black box: the real daemon between raw-socket
clients and scripted_upstream upstreams on loopback. Runs on the shared harness
(conftest.py: proxy_factory, scripted_upstream, token_file; fakes/), so every
daemon here is also checked at teardown for a clean exit and no sanitizer
report."""
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from fakes import http as fhttp
from fakes.daemon import RawConn, dead_port, hold_connections, wait_until

TOKEN = "tok-datapath-0123456789"
TIMEOUT = 10


# --- responses, read with the harness's RawConn (buffered, linear) ---------

class Response:
    def __init__(self, status, fields, body):
        self.status = status
        self.fields = fields  # [(name as received, value)]
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


def read_response(c, method="GET"):
    st, fields, body = c.response(head_only=(method == "HEAD"), keep_case=True)
    return Response(st, fields, body)


# --- upstream handlers (scripted_upstream FakeServer: handler(sock, record)) --------

def ok_json(sock, req):
    body = json.dumps({"method": req.method, "target": req.target,
                       "fields": req.headers,
                       "body": req.body.decode("latin-1")}).encode()
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
                 b"Keep-Alive: timeout=5\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


def field(req, name):
    return req.get_all(name)


# --- the daemon -----------------------------------------------------------

@pytest.fixture
def dp(proxy_factory, token_file, tmp_path):
    """start(rules, ...) → a running daemon with the data-path settings: a
    sign resource r1 (token TOKEN), a resource "gone" whose token file is
    missing, tight timeouts, and the access log in a file
    (proxy.access_path; read it with access_lines)."""
    tok = token_file("r1", TOKEN)
    os.chmod(tok, 0o600)
    n = [0]

    def start(rules, default="deny", block_private=True, limits=None, upstream=None,
              extra_listen=None):
        n[0] += 1
        access = tmp_path / f"access-{n[0]}.log"
        px = proxy_factory({
            "listen": ["127.0.0.1:0"] + (extra_listen or []),
            "default_action": default,
            "block_private_addresses": block_private,
            "resources": {
                "r1": {"token_file": tok, "upstream": "http", "allow_plaintext": True},
                "gone": {"token_file": str(tmp_path / "missing"),
                         "upstream": "http", "allow_plaintext": True},
            },
            "rules": rules,
            "limits": dict({"header_timeout_ms": 1500,
                            "idle_timeout_ms": 3000,
                            "max_body_bytes": 100000}, **(limits or {})),
            "upstream": dict({"connect_timeout_ms": 2000,
                              "idle_timeout_ms": 2000}, **(upstream or {})),
            "log": {"level": "info", "access_log": str(access)},
        })
        px.access_path = access
        return px

    return start


def access_lines(px):
    try:
        with open(px.access_path) as f:
            return [json.loads(x) for x in f if x.strip()]
    except FileNotFoundError:
        return []


def connect(px):
    return RawConn(px.addr, timeout=TIMEOUT)


def request(px, raw, method="GET"):
    with connect(px) as c:
        c.send(raw)
        return read_response(c, method)


@pytest.fixture
def env(dp, scripted_upstream):
    """One upstream echoing JSON, a proxy signing for it on one port
    rule and passing another upstream; yields (proxy, up, up_pass)."""
    up = scripted_upstream(ok_json)
    up_pass = scripted_upstream(ok_json)
    px = dp([
        {"host": "127.0.0.1", "port": up.port, "action": "sign",
         "resource": "r1"},
        {"host": "127.0.0.1", "port": up_pass.port, "action": "pass"},
        {"host": "blocked.test", "action": "deny"},
    ])
    return px, up, up_pass


def get(port, path="/", extra=b"", method=b"GET", version=b"1.1", body=b""):
    return (method + b" http://127.0.0.1:%d%s HTTP/%s\r\nHost: 127.0.0.1:%d\r\n"
            % (port, path.encode(), version, port) + extra + b"\r\n" + body)


@pytest.fixture
def verify(proxy_bin, vectors):
    """verify(raw request) → (exit status, stderr) of the daemon's own
    verifier, with the public half of the daemon's key."""
    def run(raw):
        assert raw is not None
        p = subprocess.run([proxy_bin, "verify", "-",
                            "--key", str(vectors / "lumoauth" / "agent-key.pub.pem"),
                            "--scheme", "http"],
                           input=raw, capture_output=True, timeout=30)
        return p.returncode, p.stderr.decode()
    return run


# --- signing and header handling ------------------------------------------

def test_sign_replaces_owned_headers_and_verifies(env, verify):
    px, up, _ = env
    r = request(px, get(up.port, "/v1/items?limit=5&secret=hunter2",
                        b"Authorization: Bearer client-own\r\n"
                        b"Signature: sig1=:AAAA:\r\nSignature-Input: sig1=()\r\n"
                        b"Signature-Key: x\r\nContent-Digest: sha-256=:x=:\r\n"
                        b"Agent-Auth: agent_token=x\r\nProxy-Authorization: Basic eA==\r\n"
                        b"X-Keep: yes\r\n"))
    assert r.status == 200
    req = up.records()[-1]
    assert req.target == "/v1/items?limit=5&secret=hunter2"
    assert field(req, "Authorization") == ["Bearer " + TOKEN]
    assert len(field(req, "Signature")) == 1 and "AAAA" not in field(req, "Signature")[0]
    assert field(req, "Agent-Auth") == []
    assert field(req, "Proxy-Authorization") == []
    assert field(req, "Signature-Key") == []
    assert field(req, "X-Keep") == ["yes"]
    assert req.headers[0] == ("Host", "127.0.0.1:%d" % up.port)
    rc, why = verify(req.raw)
    assert rc == 0, why
    # hop-by-hop response fields are gone, the rest is relayed
    assert r.get("X-Hop") is None and r.get("Keep-Alive") is None
    assert r.get("Content-Type") == "application/json"


def test_sign_chunked_body_resent_with_length(env, verify):
    px, up, _ = env
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    r = request(px, get(up.port, "/upload", b"Transfer-Encoding: chunked\r\n"
                        b"Content-Type: text/plain\r\n", method=b"POST", body=body))
    assert r.status == 200
    req = up.records()[-1]
    assert req.body == b"hello world"
    assert field(req, "Content-Length") == ["11"]
    assert field(req, "Transfer-Encoding") == []
    rc, why = verify(req.raw)
    assert rc == 0, why


def test_sign_dot_segments_and_method_case_go_out_verbatim(env, verify):
    px, up, _ = env
    r = request(px, get(up.port, "/a/../b/./%7e?q=%20", method=b"Patch",
                        extra=b"Content-Length: 2\r\n", body=b"{}"))
    assert r.status == 200
    req = up.records()[-1]
    assert req.method == "Patch"
    assert req.target == "/a/../b/./%7e?q=%20"
    rc, why = verify(req.raw)
    assert rc == 0, why


def test_pass_keeps_client_headers_minus_hop_by_hop(env):
    px, _, upp = env
    r = request(px, get(upp.port, "/p", b"Authorization: mine\r\n"
                        b"Connection: keep-alive, X-Private\r\nX-Private: 1\r\n"
                        b"Proxy-Connection: keep-alive\r\nTE: trailers\r\n"
                        b"Upgrade: h2c\r\nProxy-Authorization: Basic eA==\r\n"))
    assert r.status == 200
    req = upp.records()[-1]
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
    with connect(px) as c:
        c.send(get(up.port, "/one") + get(upp.port, "/two") +
               b"GET http://blocked.test/x HTTP/1.1\r\nHost: blocked.test\r\n\r\n" +
               get(up.port, "/four"))
        got = [read_response(c) for _ in range(4)]
    assert [g.status for g in got] == [200, 200, 403, 200]
    assert got[0].json()["target"] == "/one"
    assert got[1].json()["target"] == "/two"
    assert got[3].json()["target"] == "/four"


def test_expect_continue(env):
    px, up, _ = env
    with connect(px) as c:
        c.send(get(up.port, "/e", b"Content-Length: 4\r\nExpect: 100-continue\r\n",
                   method=b"POST"))
        first = read_response(c)
        assert first.status == 100
        c.send(b"data")
        r = read_response(c)
    assert r.status == 200
    assert up.records()[-1].body == b"data"
    assert field(up.records()[-1], "Expect") == []


def test_expect_continue_too_large_is_413_without_reading(env):
    px, up, _ = env
    r = request(px, get(up.port, "/e", b"Content-Length: 999999999\r\n"
                        b"Expect: 100-continue\r\n", method=b"POST"))
    assert r.status == 413
    assert r.get("Connection") == "close"
    assert "max_body_bytes" in r.json()["detail"]


def test_body_over_limit_chunked_is_413(env):
    px, up, _ = env
    chunk = b"%x\r\n%s\r\n" % (60000, b"a" * 60000)
    r = request(px, get(up.port, "/big", b"Transfer-Encoding: chunked\r\n",
                        method=b"POST") + chunk + chunk)
    assert r.status == 413
    assert r.get("Content-Type") == "application/json"


def test_malformed_request_400_json_and_close(env):
    px, _, _ = env
    with connect(px) as c:
        c.send(b"GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
        r = read_response(c)
        assert r.status == 400
        assert r.get("Connection") == "close"
        assert r.json()["error"] == "bad_request" and r.json()["detail"]
        assert c.read_to_eof() == b""  # closed


def test_oversized_head_is_431(env):
    px, up, _ = env
    r = request(px, get(up.port, "/", b"X-Big: " + b"a" * 70000 + b"\r\n"))
    assert r.status == 431


def test_http10_client_gets_close_delimited_body(dp, scripted_upstream):
    def chunky(sock, req):
        sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n")
    up = scripted_upstream(chunky)
    px = dp([{"host": "127.0.0.1", "port": up.port, "action": "pass"}])
    with connect(px) as c:
        c.send(get(up.port, "/x", version=b"1.0"))
        # no Content-Length, no chunking: the body is what comes until EOF
        st, fields, body = c.response(keep_case=True)
        assert st == 200
        names = [k.lower() for k, _ in fields]
        assert "transfer-encoding" not in names
        assert ("Connection", "close") in fields
        assert body == b"abcdef"
    # an HTTP/1.1 client gets it re-chunked
    r = request(px, get(up.port, "/y"))
    assert r.get("Transfer-Encoding") == "chunked" and r.body == b"abcdef"


def test_head_response_has_no_body(env):
    px, up, _ = env
    with connect(px) as c:
        c.send(get(up.port, "/h", method=b"HEAD") + get(up.port, "/after"))
        r1 = read_response(c, "HEAD")
        r2 = read_response(c)
    assert r1.status == 200 and int(r1.get("Content-Length")) > 0
    assert r2.json()["target"] == "/after"


# --- streaming, backpressure, disconnects ---------------------------------

def test_sse_events_arrive_one_by_one(dp, scripted_upstream):
    def sse(sock, req):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        for i in range(3):
            d = b"data: %d\n\n" % i
            sock.sendall(b"%x\r\n%s\r\n" % (len(d), d))
            time.sleep(0.4)  # the stream's pace: what the test is about
        sock.sendall(b"0\r\n\r\n")
    up = scripted_upstream(sse)
    px = dp([{"host": "127.0.0.1", "port": up.port, "action": "sign",
              "resource": "r1"}])
    with connect(px) as c:
        c.send(get(up.port, "/events"))
        t0 = time.monotonic()
        st, _, _ = c.response(head_only=True)
        assert st == 200
        size = int(c.rfile.readline()[:-2], 16)
        assert fhttp.read_exact(c.rfile, size + 2) == b"data: 0\n\n\r\n"
        # the first event came long before the stream ended (1.2 s)
        assert time.monotonic() - t0 < 0.35
        rest = fhttp.read_chunked(c.rfile)
        assert rest == b"data: 1\n\ndata: 2\n\n"


def test_client_disconnect_mid_stream_aborts_upstream(dp, scripted_upstream):
    gone = threading.Event()

    def endless(sock, req):
        sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(200):
                sock.sendall(b"6\r\ntick!\n\r\n")
                time.sleep(0.05)  # the stream's pace (10 s in all)
        except OSError:
            gone.set()
            return "close"
    up = scripted_upstream(endless)
    ok = scripted_upstream(ok_json)
    px = dp([{"host": "127.0.0.1", "port": up.port, "action": "pass"},
             {"host": "127.0.0.1", "port": ok.port, "action": "pass"}])
    c = connect(px)
    try:
        c.send(get(up.port, "/stream"))
        st, _, _ = c.response(head_only=True)
        assert st == 200
        seen = bytearray()
        while b"tick!" not in seen:
            d = c.rfile.read1(65536)
            assert d, "the stream ended before the first tick"
            seen += d
    finally:
        c.close()
    assert gone.wait(5), "upstream kept streaming to a gone client"
    # the proxy is fine for everyone else
    assert request(px, get(ok.port, "/still")).status == 200
    log = wait_until(lambda: [x for x in access_lines(px) if x.get("path") == "/stream"])
    assert log and log[0]["status"] == 200


def test_slow_client_large_body_intact(dp, scripted_upstream):
    size = 32 * 1024 * 1024
    blob = bytes(range(256)) * (size // 256)

    def big(sock, req):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        sock.sendall(blob)
    up = scripted_upstream(big)
    px = dp([{"host": "127.0.0.1", "port": up.port, "action": "pass"}],
            upstream={"idle_timeout_ms": 3000})
    before = px.rss_kb()
    with connect(px) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        c.send(get(up.port, "/big"))
        st, _, _ = c.response(head_only=True)
        assert st == 200
        # Not reading for 1.5 s (the test is about a client that stalls
        # for a while, so this one is time): the proxy must pause the
        # upstream, not buffer 32 MiB (the bound leaves room for sanitizer
        # builds). RSS is sampled through the pause; the peak counts.
        peak = before
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            peak = max(peak, px.rss_kb())
            time.sleep(0.05)  # the sampling interval
        grown = max(peak, px.rss_kb()) - before
        assert grown < 8 * 1024, grown
        got = fhttp.read_exact(c.rfile, size)
        assert got == blob


# --- upstream failures ------------------------------------------------------

def test_upstream_refused_is_502_with_proxy_status(dp):
    with dead_port() as port:
        px = dp([{"host": "127.0.0.1", "port": port, "action": "pass"}])
        r = request(px, get(port, "/"))
        assert r.status == 502
        assert r.json()["error"] == "connection_refused"
        assert r.json()["upstream"] == "127.0.0.1:%d" % port
        assert r.get("Proxy-Status").startswith("aauth-proxy; error=connection_refused")


def test_upstream_dns_failure_is_502(dp):
    px = dp([{"host": "*.invalid", "action": "pass"}])
    r = request(px, b"GET http://no-such-host.invalid/ HTTP/1.1\r\n"
                b"Host: no-such-host.invalid\r\n\r\n")
    assert r.status == 502
    assert r.json()["error"] == "dns_error"


def test_upstream_silent_is_504(dp, scripted_upstream):
    def silent(sock, req):
        time.sleep(4)  # silent for longer than the proxy's 1 s idle timeout
        return "close"
    up = scripted_upstream(silent)
    px = dp([{"host": "127.0.0.1", "port": up.port, "action": "pass"}],
            upstream={"idle_timeout_ms": 1000})
    t0 = time.monotonic()
    r = request(px, get(up.port, "/"))
    assert r.status == 504
    assert r.json()["error"] == "http_response_timeout"
    assert time.monotonic() - t0 < 3.5


def test_token_unavailable_is_503(dp, scripted_upstream):
    up = scripted_upstream(ok_json)
    px = dp([{"host": "127.0.0.1", "port": up.port, "action": "sign",
              "resource": "gone"}])
    r = request(px, get(up.port, "/"))
    assert r.status == 503
    j = r.json()
    assert j["error"] == "token_unavailable" and j["resource"] == "gone"
    assert "missing" in j["detail"]
    assert up.records() == []


# --- policy -----------------------------------------------------------------

def test_deny_and_default_deny(env):
    px, _, _ = env
    r = request(px, b"GET http://blocked.test/x HTTP/1.1\r\nHost: blocked.test\r\n\r\n")
    assert r.status == 403 and r.json()["host"] == "blocked.test"
    assert "http_request_denied" in r.get("Proxy-Status")
    r = request(px, b"GET http://other.test/x HTTP/1.1\r\nHost: other.test\r\n\r\n")
    assert r.status == 403 and "default_action" in r.json()["detail"]


def test_block_private_unnamed_hosts(dp, scripted_upstream):
    up = scripted_upstream(ok_json)
    px = dp([{"host": "named.localhost", "action": "deny"}], default="pass")
    for host in (b"127.0.0.1:%d" % up.port, b"localhost:%d" % up.port,
                 b"[::1]:%d" % up.port, b"169.254.169.254"):
        r = request(px, b"GET http://" + host + b"/ HTTP/1.1\r\nHost: " +
                    host + b"\r\n\r\n")
        assert r.status == 403, host
        assert r.json()["error"] == "destination_ip_prohibited", host
    assert up.records() == []


def test_connect_and_origin_form(env):
    px, _, _ = env
    # unmatched host, default deny: refused before any tunnel (issue 9)
    r = request(px, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    assert r.status == 403 and r.get("Connection") == "close"
    r = request(px, b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert r.status == 400
    assert "HTTP_PROXY=http://127.0.0.1:%d" % px.port in r.json()["detail"]


def test_max_connections(dp, scripted_upstream):
    up = scripted_upstream(ok_json)
    px = dp([{"host": "127.0.0.1", "port": up.port, "action": "pass"}],
            limits={"max_connections": 3})
    held = hold_connections(px, 3)  # accepted by the daemon, nothing sent
    try:
        with connect(px) as c:
            r = read_response(c)
        assert r.status == 503 and r.json()["error"] == "too_many_connections"
        held[0].close()
        # The freed slot is taken again once the daemon has seen the
        # close (until then a new connection is still refused).
        tries = []

        def served():
            try:
                tries.append(request(px, get(up.port, "/")).status)
            except (OSError, EOFError) as e:  # refused and closed under our request
                tries.append(repr(e))
            return tries[-1] == 200
        assert wait_until(served, timeout=10), tries
    finally:
        for h in held:
            h.close()


def test_header_timeout_408(env):
    px, up, _ = env
    with connect(px) as c:
        c.send(b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        r = read_response(c)
    assert r.status == 408
    assert 1.0 < time.monotonic() - t0 < 4


def test_access_log_has_no_secrets(env):
    px, up, _ = env
    request(px, get(up.port, "/q?api_key=supersecret&x=1"))
    lines = wait_until(lambda: [x for x in access_lines(px) if x.get("path") == "/q"])
    assert lines, access_lines(px)
    line = lines[-1]
    text = json.dumps(line)
    assert "supersecret" not in text and TOKEN not in text
    assert line["query_names"] == ["api_key", "x"]
    assert line["action"] == "sign" and line["status"] == 200
    assert len(line["token"]) == 12 and line["key"]


def test_unix_listener(dp, scripted_upstream, tmp_path):
    up = scripted_upstream(ok_json)
    path = str(tmp_path / "p.sock")
    px = dp([{"host": "127.0.0.1", "port": up.port, "action": "pass"}],
            extra_listen=["unix:" + path])
    assert px.unix_path == path
    assert oct(os.stat(path).st_mode & 0o777) == "0o660"
    with RawConn(path, timeout=TIMEOUT) as c:
        c.send(get(up.port, "/unix"))
        r = read_response(c)
    assert r.json()["target"] == "/unix"
    assert px.stop() == []
    assert not os.path.exists(path)


def test_sigterm_lets_inflight_request_finish(dp, scripted_upstream):
    release = threading.Event()

    def slow(sock, req):
        release.wait(TIMEOUT)  # answers once the test says so (bounded)
        ok_json(sock, req)
    up = scripted_upstream(slow)
    px = dp([{"host": "127.0.0.1", "port": up.port, "action": "pass"}])
    with connect(px) as c:
        c.send(get(up.port, "/slow"))
        assert up.wait_requests(1, TIMEOUT), "the request never reached the upstream"
        px.signal(signal.SIGTERM)
        # The daemon logs that it stopped accepting; the request is still
        # in flight (the upstream has not answered yet).
        px.wait_log("SIGTERM", TIMEOUT)
        release.set()
        r = read_response(c)
    assert r.status == 200 and r.get("Connection") == "close"
    assert px.wait_exit(TIMEOUT) == 0
