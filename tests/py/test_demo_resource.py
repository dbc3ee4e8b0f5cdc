"""`aauth-proxy demo-resource`: what it answers for requests signed by
`sign` and by the proxy, checked against an independent verifier and
independent hashes; every kind of tampering, a wrong or missing token and a
replay rejected with a reason; malformed and oversized input refused with a
clean 4xx; bounded connections; never a token in an answer; usage errors.
"""

import base64
import hashlib
import json
import os
import secrets
import signal
import socket
import time

import pytest

from cli_helpers import LUMO_X, Message, independent_verify, run, thumbprint
from fakes.daemon import ProxyProcess, RawConn, free_port, header, raw_request

LIMIT_CONNS = 64  # DEMO_MAX_CONNS
LIMIT_BODY = 1024 * 1024  # DEMO_MAX_BODY


def token_hash(tok):
    """The 12-character token hash, computed here, not by the daemon."""
    d = hashlib.sha256(tok.encode()).digest()
    return base64.urlsafe_b64encode(d).rstrip(b"=").decode()[:12]


def content_digest(body):
    return "sha-256=:%s:" % base64.b64encode(hashlib.sha256(body).digest()).decode()


class Demo:
    def __init__(self, proc, token):
        self.proc = proc
        self.token = token

    @property
    def addr(self):
        return self.proc.addr

    @property
    def authority(self):
        return "%s:%d" % self.proc.addr

    def send(self, data):
        """One request on a fresh connection → (status, headers, json)."""
        st, hd, body = raw_request(self.addr, data)
        return st, hd, json.loads(body)


@pytest.fixture
def demo_factory(proxy_bin, vectors, token_file, tmp_path):
    started = []

    def start(*extra, token="tok-" + secrets.token_hex(16), token_path=None,
              with_token=True):
        port = free_port()
        argv = ["demo-resource", "--listen", f"127.0.0.1:{port}",
                "--key", str(vectors / "lumoauth" / "agent-key.pub.pem")]
        if with_token:
            argv += ["--token-file", token_path or token_file("demo", token)]
        argv += list(extra)
        timeout = 30 if os.environ.get("AAUTH_SANITIZER") else 15
        p = ProxyProcess(proxy_bin, None, None, start_timeout=timeout, argv=argv,
                         listen=f"127.0.0.1:{port}")
        started.append(p)
        p.start()
        return Demo(p, token if with_token else None)

    yield start
    problems = []
    for p in started:
        problems += [f"{x}\n{p.stderr_text()[-3000:]}" for x in p.stop()]
    if problems:
        pytest.fail("demo-resource teardown: " + "\n".join(problems), pytrace=False)


@pytest.fixture
def demo(demo_factory):
    return demo_factory()


def request_bytes(authority, method="GET", path="/hello?x=1", body=b"",
                  headers=()):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {authority}"]
    lines += [f"{n}: {v}" for n, v in headers]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def sign(agent_key, raw, *opts, token=None):
    args = ["sign", "-", "--key", agent_key, "--scheme", "http", *opts]
    if token is not None:
        args += ["--token", token]
    r = run(*args, input=raw)
    assert r.returncode == 0, r.stderr
    return r.stdout


def assert_no_token(body_text, token):
    if token:
        assert token not in body_text


# ---- verified requests, checked independently ----

@pytest.mark.parametrize("method,path,body", [
    ("GET", "/hello?x=1&y=a%20b", b""),
    ("POST", "/items", b'{"name": "thing", "n": [1, 2]}'),
])
def test_signed_request_is_verified(demo, agent_key, method, path, body):
    signed = sign(agent_key, request_bytes(demo.authority, method, path, body),
                  token=demo.token)
    msg = Message(signed)
    # The request is genuinely valid, by a verifier that is not the daemon's.
    independent_verify(msg, "sig1", LUMO_X, "b64url", scheme="http")
    st, hd, doc = demo.send(signed)
    assert st == 200, doc
    assert doc["verified"] is True and "reason" not in doc
    assert header(hd, "content-type") == "application/json"
    assert doc["profile"] == "lumoauth" and doc["label"] == "sig1"
    p, _, q = path.partition("?")
    assert doc["request"] == {"method": method, "authority": demo.authority,
                              "path": p, "query": q or None}
    # What Signature-Input says, as the test reads it.
    si = msg.get("Signature-Input")
    inner = si[si.index("(") + 1:si.index(")")]
    assert doc["covered"] == [c.strip('"') for c in inner.split(" ")]
    assert ("@query" in doc["covered"]) == bool(q)
    assert doc["params"]["created"] == int(si.split("created=")[1].split(";")[0])
    assert doc["params"]["nonce"] == si.split('nonce="')[1].split('"')[0]
    assert doc["key"] == thumbprint(LUMO_X)
    assert doc["token"] == token_hash(demo.token)
    assert doc["token_checked"] is True
    assert doc["body"] == {"bytes": len(body), "digest": content_digest(body)}
    assert_no_token(json.dumps(doc), demo.token)
    demo.proc.wait_for(lambda ls: any("verified" in ln and p in ln for ln in ls))


def test_through_the_proxy(demo, proxy_factory, token_file):
    """The whole chain: proxy signs for a rule naming the demo (plain http
    on loopback), the demo verifies signature and token."""
    tok_path = token_file("demo-proxy", demo.token)
    px = proxy_factory({
        "resources": {"demo": {"upstream": "http", "allow_plaintext": True,
                               "token_file": tok_path}},
        "rules": [{"host": "127.0.0.1", "port": demo.addr[1], "action": "sign",
                   "resource": "demo"}],
    })
    body = b'{"agent": "says hi"}'
    url = f"http://{demo.authority}/via/proxy?q=1"
    data = (f"POST {url} HTTP/1.1\r\nHost: {demo.authority}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode() + body
    st, hd, raw = raw_request(px.addr, data)
    doc = json.loads(raw)
    assert st == 200 and doc["verified"] is True, doc
    assert doc["body"]["digest"] == content_digest(body)
    assert doc["token"] == token_hash(demo.token)
    assert "@query" in doc["covered"] and "authorization" in doc["covered"]
    # The proxy's access log shows the same token hash.
    entries = px.wait_access(1)
    assert entries[-1]["token"] == doc["token"] and entries[-1]["status"] == 200
    assert_no_token(raw.decode(), demo.token)


# ---- rejections, each with its reason ----

def flip_signature(raw):
    m = Message(raw)
    sig = m.get("Signature")
    i = sig.index(":") + 5
    ch = "A" if sig[i] != "A" else "B"
    m.replace("Signature", sig[:i] + ch + sig[i + 1:])
    return m.serialize()


def change_path(raw):
    return raw.replace(b"GET /hello?x=1 ", b"GET /hellO?x=1 ", 1)


def change_body(raw):
    m = Message(raw)
    m.body = m.body.replace(b"1", b"2")
    return m.serialize()


CASES = {
    "signature": (lambda a, d: flip_signature(sign(a, request_bytes(d.authority), token=d.token)),
                  "does not verify"),
    "path": (lambda a, d: change_path(sign(a, request_bytes(d.authority), token=d.token)),
             "does not verify"),
    "body": (lambda a, d: change_body(sign(a, request_bytes(d.authority, "POST", "/p", b'{"n": 1}'),
                                           token=d.token)),
             "Content-Digest"),
    "wrong token": (lambda a, d: sign(a, request_bytes(d.authority), token="tok-someone-else"),
                    "Bearer token is not the one in"),
    "no token": (lambda a, d: sign(a, request_bytes(d.authority)), "no Authorization: Bearer"),
    "unsigned": (lambda a, d: request_bytes(d.authority,
                                            headers=[("Authorization", "Bearer " + d.token)]),
                 "not signed"),
    "stale": (lambda a, d: sign(a, request_bytes(d.authority), "--created",
                                str(int(time.time()) - 3600), token=d.token),
              "too old"),
    "other key": (lambda a, d: sign(a, request_bytes(d.authority), token=d.token),
                  "does not verify"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_tampered_requests_are_rejected(demo, agent_key, tmp_path, case):
    make, why = CASES[case]
    key = agent_key
    if case == "other key":
        key = tmp_path / "other.pem"
        assert run("keygen", "--out", key).returncode == 0
    data = make(str(key), demo)
    if case == "wrong token":
        # A valid signature: only the token check can refuse it.
        independent_verify(Message(data), "sig1", LUMO_X, "b64url", scheme="http")
    st, hd, doc = demo.send(data)
    assert st == 401, doc
    assert doc["verified"] is False
    assert why in doc["reason"], doc["reason"]
    assert doc["key"] == thumbprint(LUMO_X)
    assert_no_token(json.dumps(doc), demo.token)
    if case == "unsigned":
        assert "http_proxy" in doc["reason"] and doc["covered"] == []
    if case == "wrong token":
        assert doc["token"] == token_hash("tok-someone-else")


def test_replay_is_rejected(demo, agent_key):
    signed = sign(agent_key, request_bytes(demo.authority), token=demo.token)
    st, _, doc = demo.send(signed)
    assert st == 200 and doc["verified"] is True
    st, _, doc = demo.send(signed)
    assert st == 401 and doc["verified"] is False
    assert "already used" in doc["reason"] and doc["params"]["nonce"] in doc["reason"]
    # A fresh signature of the same request is fine again.
    st, _, doc = demo.send(sign(agent_key, request_bytes(demo.authority), token=demo.token))
    assert st == 200 and doc["verified"] is True


def test_other_profiles(demo_factory, agent_key):
    d = demo_factory("--profile", "rfc9421")
    raw = request_bytes(d.authority, "POST", "/r", b"abc")
    signed = sign(agent_key, raw, "--profile", "rfc9421", token=d.token)
    independent_verify(Message(signed), "sig1", LUMO_X, "b64", scheme="http")
    st, _, doc = d.send(signed)
    assert st == 200 and doc["verified"] is True, doc
    assert doc["profile"] == "rfc9421" and "keyid" in doc["params"]
    # A lumoauth signature covers absent fields as empty, which plain
    # rfc9421 does not; the default demo refuses an rfc9421 signature
    # (authorization not covered).
    st, _, doc = d.send(sign(agent_key, raw, token=d.token))
    assert st == 401 and '"signature-key" is not in the request' in doc["reason"], \
        doc["reason"]
    lumo = demo_factory(token=d.token)
    raw = request_bytes(lumo.authority, "POST", "/r", b"abc")
    st, _, doc = lumo.send(sign(agent_key, raw, "--profile", "rfc9421", token=d.token))
    assert st == 401 and "does not cover" in doc["reason"], doc["reason"]


def test_without_token_file_any_token(demo_factory, agent_key):
    d = demo_factory(with_token=False)
    st, _, doc = d.send(sign(agent_key, request_bytes(d.authority), token="anything"))
    assert st == 200 and doc["verified"] is True
    assert doc["token_checked"] is False and doc["token"] == token_hash("anything")
    st, _, doc = d.send(sign(agent_key, request_bytes(d.authority)))
    assert st == 200 and doc["token"] is None


def test_token_file_is_reread(demo, agent_key, token_file):
    token_file("demo", "tok-rotated-" + secrets.token_hex(8))
    st, _, doc = demo.send(sign(agent_key, request_bytes(demo.authority), token=demo.token))
    assert st == 401 and "not the one in" in doc["reason"]


# ---- HTTP handling and limits ----

def test_keepalive_pipelining_and_expect(demo, agent_key):
    a = sign(agent_key, request_bytes(demo.authority, path="/one"), token=demo.token)
    b = sign(agent_key, request_bytes(demo.authority, path="/two"), token=demo.token)
    with RawConn(demo.addr) as c:
        c.send(a + b)  # pipelined: answered in order
        for want in ("/one", "/two"):
            st, hd, body = c.response()
            doc = json.loads(body)
            assert st == 200 and doc["request"]["path"] == want, doc
            assert header(hd, "connection") is None
        # Expect: 100-continue, then the body on the same connection.
        body = b'{"late": true}'
        raw = sign(agent_key, request_bytes(demo.authority, "POST", "/late", body),
                   token=demo.token)
        head, _, _ = raw.partition(b"\r\n\r\n")
        c.send(head + b"\r\nExpect: 100-continue\r\n\r\n")
        st, _, _ = c.response(head_only=True)
        assert st == 100
        c.send(body)
        st, _, b2 = c.response()
        assert st == 200 and json.loads(b2)["body"]["digest"] == content_digest(body)


def test_chunked_body(demo, agent_key):
    body = b"x" * 5000
    raw = sign(agent_key, request_bytes(demo.authority, "POST", "/c", body), token=demo.token)
    head, _, _ = raw.partition(b"\r\n\r\n")
    head = b"\r\n".join(ln for ln in head.split(b"\r\n")
                        if not ln.lower().startswith(b"content-length"))
    chunked = head + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += b"1000\r\n" + body[:4096] + b"\r\n" + b"388\r\n" + body[4096:] + b"\r\n0\r\n\r\n"
    st, _, doc = demo.send(chunked)
    assert st == 200 and doc["body"] == {"bytes": 5000, "digest": content_digest(body)}, doc


def test_client_shutdown_still_answered(demo, agent_key):
    raw = sign(agent_key, request_bytes(demo.authority), token=demo.token)
    with RawConn(demo.addr) as c:
        c.send(raw)
        c.sock.shutdown(socket.SHUT_WR)
        st, _, body = c.response()
        assert st == 200 and json.loads(body)["verified"] is True


@pytest.mark.parametrize("data,status,why", [
    (b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n", 400, None),
    (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
     400, None),
    (b"CONNECT demo.localhost:443 HTTP/1.1\r\nHost: demo.localhost:443\r\n\r\n", 400,
     "not a proxy"),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % (LIMIT_BODY + 1), 413,
     "1 MiB"),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, None),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * (100 * 1024) + b"\r\n\r\n", 431, None),
    (b"GET /\xff\xfe HTTP/1.1\r\nHost: a\r\n\r\n", 400, None),
])
def test_malformed_input_gets_a_clean_4xx(demo, data, status, why):
    with RawConn(demo.addr) as c:
        c.send(data)
        st, hd, body = c.response()
        doc = json.loads(body)
        assert st == status, (st, doc)
        assert doc["verified"] is False and doc["status"] == status
        if why:
            assert why in doc["reason"]
        assert header(hd, "connection") == "close"
        assert c.closed_by_peer()
    # Still serving.
    st, _, doc = demo.send(request_bytes(demo.authority))
    assert st == 401


def test_chunked_body_over_the_limit(demo):
    with RawConn(demo.addr) as c:
        c.send(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"10000\r\n" + b"z" * 0x10000 + b"\r\n"
        try:
            for _ in range(LIMIT_BODY // 0x10000 + 2):
                c.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        st, _, body = c.response()
        assert st == 413 and "1 MiB" in json.loads(body)["reason"]


def test_connection_limit(demo, agent_key):
    def held_connection(deadline):
        """A connection the demo has taken (it answered on it). A slot can
        still be held for a moment by a connection that was just closed
        (the start-up probe, or the one closed below): retry, bounded."""
        while True:
            c = RawConn(demo.addr)
            c.send(b"GET /held HTTP/1.1\r\nHost: a\r\n\r\n")
            st, _, _ = c.response()
            if st != 503:
                assert st == 401
                return c
            c.close()
            assert time.monotonic() < deadline, "a connection slot never came free"
            demo.proc.wait_for(lambda ls: False, timeout=0.05)

    conns = []
    try:
        deadline = time.monotonic() + 20
        for _ in range(LIMIT_CONNS):
            conns.append(held_connection(deadline))
        # Every slot is taken by a connection the demo answered on.
        with RawConn(demo.addr) as extra:
            st, hd, body = extra.response()
            assert st == 503 and "too many connections" in json.loads(body)["reason"]
            assert extra.closed_by_peer()
        conns.pop().close()
        conns.append(held_connection(time.monotonic() + 20))
        # The connections held are still served.
        raw = sign(agent_key, request_bytes(demo.authority), token=demo.token)
        conns[0].send(raw)
        st, _, body = conns[0].response()
        assert st == 200 and json.loads(body)["verified"] is True
    finally:
        for c in conns:
            c.close()


def test_sigint_stops_cleanly(demo):
    demo.proc.expect_exit = True  # checked here; teardown still looks for sanitizer reports
    demo.proc.signal(signal.SIGINT)
    demo.proc.proc.wait(15)
    assert demo.proc.proc.returncode == 0
    assert demo.proc.wait_for(lambda ls: any("SIGINT: stopping" in ln for ln in ls))


# ---- usage ----

def test_usage_errors(vectors, tmp_path):
    pub = vectors / "lumoauth" / "agent-key.pub.pem"
    r = run("demo-resource", "--help")
    assert r.returncode == 0
    for opt in (b"--key", b"--listen", b"--token-file", b"--profile", b"127.0.0.1:8790"):
        assert opt in r.stdout
    cases = [
        ((), 2, "--key"),
        (("--key", pub, "--bogus"), 2, "--bogus"),
        (("--key", pub, "extra"), 2, "extra"),
        (("--key", tmp_path / "none.pem"), 1, "none.pem"),
        (("--key", pub, "--profile", "nope"), 2, "'nope'"),
        (("--key", pub, "--label", "Bad"), 2, "--label"),
        (("--key", pub, "--token-file", tmp_path / "missing"), 1, "missing"),
        (("--key", pub, "--listen", "nowhere"), 1, "HOST:PORT"),
    ]
    for args, code, needle in cases:
        r = run("demo-resource", *args)
        assert r.returncode == code, (args, r.stderr)
        assert needle.encode() in r.stderr, (args, r.stderr)
        assert r.stdout == b""
    # An address already in use.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = run("demo-resource", "--key", pub, "--listen", "127.0.0.1:%d" % s.getsockname()[1])
        assert r.returncode == 1 and b"in use" in r.stderr, r.stderr
