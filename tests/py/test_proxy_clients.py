"""Real HTTP clients through the real daemon to the signature-checking fake
resource: curl -x, Python requests (HTTP_PROXY) and httpx (proxies=), and
Node undici's ProxyAgent in absolute-form mode. Each one does a GET with a
query, a JSON POST, a multi-MiB upload and download checksummed end to
end, and a server-sent-event stream that must arrive event by event."""

import hashlib
import json
import queue
import secrets
import subprocess
import threading
import uuid
from pathlib import Path

import httpx
import pytest
import requests

from fakes.daemon import clean_env
from fakes.resource import big_body

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
BIG = 6 << 20  # several MiB each way
CLIENTS = ["curl", "requests", "httpx", "node"]


class Result:
    def __init__(self, status, headers, body=None, sha256=None, length=None):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body
        self.sha256 = sha256 if sha256 is not None else hashlib.sha256(body).hexdigest()
        self.length = length if length is not None else len(body)

    def json(self):
        return json.loads(self.body)


# One request per client ------------------------------------------------------

def do_curl(proxy, url, method, headers, body, tmp_path):
    out = tmp_path / f"curl-{uuid.uuid4().hex}"
    args = ["curl", "-sS", "-x", proxy, "--noproxy", "", "-X", method,
            "-o", str(out), "-D", str(out) + ".h", "-w", "%{http_code}", "--max-time", "60"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    if body is not None:
        bf = Path(str(out) + ".in")
        bf.write_bytes(body)
        args += ["--data-binary", f"@{bf}"]
    r = subprocess.run(args + [url], capture_output=True, timeout=90, env=clean_env())
    assert r.returncode == 0, r.stderr.decode()
    hdrs = {}
    for ln in Path(str(out) + ".h").read_bytes().decode("latin-1").split("\r\n"):
        if ln.startswith("HTTP/"):
            hdrs = {}  # keep only the final response's head (skip 100)
        elif ":" in ln:
            k, _, v = ln.partition(":")
            hdrs[k.strip()] = v.strip()
    return Result(int(r.stdout), hdrs, out.read_bytes())


def do_requests(proxy, url, method, headers, body, tmp_path, monkeypatch):
    for v in ("NO_PROXY", "no_proxy", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    r = requests.request(method, url, headers=headers, data=body, timeout=60)
    return Result(r.status_code, dict(r.headers), r.content)


def do_httpx(proxy, url, method, headers, body, tmp_path):
    with httpx.Client(proxies=proxy, timeout=60, trust_env=False) as c:
        r = c.request(method, url, headers=headers, content=body)
        return Result(r.status_code, dict(r.headers), r.content)


def node_spec(proxy, url, method, headers, body, tmp_path, mode="body"):
    spec = {"proxy": proxy, "url": url, "method": method, "headers": headers, "mode": mode}
    if body is not None:
        bf = tmp_path / f"node-{uuid.uuid4().hex}.in"
        bf.write_bytes(body)
        spec["body_file"] = str(bf)
    return spec


def do_node(proxy, url, method, headers, body, tmp_path):
    spec = node_spec(proxy, url, method, headers, body, tmp_path)
    r = subprocess.run(["node", str(NODE_DIR / "client.mjs"), json.dumps(spec)],
                       cwd=NODE_DIR, capture_output=True, timeout=90, env=clean_env())
    lines = [json.loads(ln) for ln in r.stdout.decode().splitlines() if ln.strip()]
    assert r.returncode == 0 and lines and "error" not in lines[-1], (r.stdout, r.stderr)
    o = lines[-1]
    body_bytes = o["text"].encode() if o["text"] is not None else None
    return Result(o["status"], o["headers"], body_bytes, sha256=o["sha256"], length=o["len"])


@pytest.fixture
def client(request, running, tmp_path, monkeypatch):
    name = request.param
    if name == "node":
        request.getfixturevalue("node_ready")

    def call(url, method="GET", headers=None, body=None):
        headers = dict(headers or {})
        if name == "curl":
            return do_curl(running.proxy_url, url, method, headers, body, tmp_path)
        if name == "requests":
            return do_requests(running.proxy_url, url, method, headers, body, tmp_path, monkeypatch)
        if name == "httpx":
            return do_httpx(running.proxy_url, url, method, headers, body, tmp_path)
        return do_node(running.proxy_url, url, method, headers, body, tmp_path)

    call.name = name
    call.world = running
    return call


def assert_all_valid(fake, n=None):
    recs = fake.records()
    if n is not None:
        assert len(recs) == n, recs
    bad = [(r.method, r.target, r.reason) for r in recs if r.verdict != "valid"]
    assert not bad, f"the fake resource rejected signed requests: {bad}"


@pytest.mark.parametrize("client", CLIENTS, indirect=True)
def test_get_with_query(client):
    w = client.world
    url = w.resource.url("/items?limit=5&q=a%20b&empty=")
    r = client(url)
    assert r.status == 200, r.body
    echo = r.json()
    assert echo["verdict"] == "valid"
    assert echo["query"] == "limit=5&q=a%20b&empty="
    assert echo["path"] == "/items"
    assert_all_valid(w.resource, 1)
    rec = w.resource.records()[0]
    assert rec.get("authorization") == f"Bearer {w.token}"
    assert "@query" in rec.get("signature-input")
    # absolute-form, not a CONNECT tunnel (undici needs proxyTunnel: false)
    entries = w.proxy.wait_access(1)
    assert [e.get("method") for e in entries] == ["GET"], entries


@pytest.mark.parametrize("client", CLIENTS, indirect=True)
def test_post_json(client):
    w = client.world
    payload = json.dumps({"client": client.name, "n": [1, 2, 3], "s": "h\u00e9llo"}).encode()
    r = client(w.resource.url("/echo"), "POST", {"Content-Type": "application/json"}, payload)
    assert r.status == 200, r.body
    assert r.body == payload
    assert r.headers["content-type"].startswith("application/json")
    assert_all_valid(w.resource, 1)
    rec = w.resource.records()[0]
    assert rec.body_sha256 == hashlib.sha256(payload).hexdigest()
    assert rec.get("content-type") == "application/json"


@pytest.mark.parametrize("client", CLIENTS, indirect=True)
def test_upload_several_mib(client):
    w = client.world
    payload = secrets.token_bytes(BIG)
    want = hashlib.sha256(payload).hexdigest()
    r = client(w.resource.url("/echo"), "POST", {"Content-Type": "application/octet-stream"}, payload)
    assert r.status == 200, r.body[:200] if r.body else r.status
    assert (r.length, r.sha256) == (BIG, want)
    assert r.headers["x-body-sha256"] == want
    assert_all_valid(w.resource, 1)
    assert w.resource.records()[0].body_sha256 == want


@pytest.mark.parametrize("mode", ["length", "chunked", "close"])
@pytest.mark.parametrize("client", CLIENTS, indirect=True)
def test_download_several_mib(client, mode):
    w = client.world
    r = client(w.resource.url(f"/big?size={BIG}&mode={mode}"))
    assert r.status == 200
    want = hashlib.sha256(big_body(BIG)).hexdigest()
    assert (r.length, r.sha256) == (BIG, want)
    assert_all_valid(w.resource, 1)


# Server-sent events ------------------------------------------------------------

def sse_lines_curl(proxy, url):
    p = subprocess.Popen(["curl", "-sSN", "-x", proxy, "--noproxy", "", "--max-time", "60", url],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    try:
        for raw in p.stdout:
            ln = raw.decode().rstrip("\n")
            if ln.startswith("data: "):
                yield json.loads(ln[6:])
        p.wait(30)
        assert p.returncode == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def sse_lines_requests(proxy, url):
    with requests.get(url, proxies={"http": proxy}, stream=True, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for ln in r.iter_lines(chunk_size=1, decode_unicode=True):
            if ln.startswith("data: "):
                yield json.loads(ln[6:])


def sse_lines_httpx(proxy, url):
    with httpx.Client(proxies=proxy, timeout=60, trust_env=False) as c:
        with c.stream("GET", url) as r:
            assert r.status_code == 200
            for ln in r.iter_lines():
                if ln.startswith("data: "):
                    yield json.loads(ln[6:])


def sse_lines_node(proxy, url, tmp_path):
    spec = node_spec(proxy, url, "GET", {}, None, tmp_path, mode="sse")
    p = subprocess.Popen(["node", str(NODE_DIR / "client.mjs"), json.dumps(spec)], cwd=NODE_DIR,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    try:
        done = None
        for raw in p.stdout:
            o = json.loads(raw)
            assert "error" not in o, o
            if "event" in o:
                yield o["event"]
            elif o.get("done"):
                done = o
        p.wait(30)
        assert p.returncode == 0 and done and done["status"] == 200, (done, p.stderr.read())
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def run_with_deadline(fn, timeout):
    """Run fn in a thread so a stuck stream fails the test instead of
    hanging it."""
    q = queue.Queue()

    def target():
        try:
            q.put(("ok", fn()))
        except BaseException as e:  # noqa: BLE001 - re-raised below
            q.put(("err", e))

    t = threading.Thread(target=target, daemon=True)
    t.start()
    try:
        kind, val = q.get(timeout=timeout)
    except queue.Empty:
        pytest.fail(f"stream did not finish within {timeout}s")
    if kind == "err":
        raise val
    return val


@pytest.mark.parametrize("mode", ["chunked", "close"])
@pytest.mark.parametrize("client", CLIENTS, indirect=True)
def test_sse_arrives_event_by_event(client, mode, tmp_path):
    """The fake sends event i+1 only after the test saw event i at the
    client (an acknowledgement, bounded at 10 s). A proxy that buffers the
    response makes every wait time out, and the events then say
    acked_prev=false."""
    w = client.world
    sid = uuid.uuid4().hex
    n = 4
    url = w.resource.url(f"/sse?n={n}&id={sid}&ack=1&mode={mode}")
    proxy = w.proxy_url
    gen = {
        "curl": lambda: sse_lines_curl(proxy, url),
        "requests": lambda: sse_lines_requests(proxy, url),
        "httpx": lambda: sse_lines_httpx(proxy, url),
        "node": lambda: sse_lines_node(proxy, url, tmp_path),
    }[client.name]

    def consume():
        got = []
        for ev in gen():
            got.append(ev)
            w.resource.ack(sid, ev["i"])  # only now may the next one leave
        return got

    events = run_with_deadline(consume, 90)
    assert [e["i"] for e in events] == list(range(1, n + 1))
    assert [e["acked_prev"] for e in events] == [True] * n, \
        "the client did not get an event before the server sent the next one (buffered?)"
    stream = w.resource.streams[sid]
    assert stream["acked"] == [True] * (n - 1)
    assert_all_valid(w.resource, 1)


def test_node_fetch_get(running, tmp_path, node_ready):
    """undici's fetch() through the same ProxyAgent."""
    spec = node_spec(running.proxy_url, running.resource.url("/things?x=1"), "GET", {}, None, tmp_path)
    spec["api"] = "fetch"
    r = subprocess.run(["node", str(NODE_DIR / "client.mjs"), json.dumps(spec)], cwd=NODE_DIR,
                       capture_output=True, timeout=60, env=clean_env())
    o = json.loads(r.stdout.decode().splitlines()[-1])
    assert o.get("status") == 200, (o, r.stderr)
    assert json.loads(o["text"])["verdict"] == "valid"
    assert_all_valid(running.resource, 1)


@pytest.mark.parametrize("client", ["curl", "requests", "httpx", "node"], indirect=True)
def test_pass_host_gets_no_credentials(client):
    """A host named only by a pass rule is forwarded unsigned: the plain
    upstream never sees Authorization, Signature, Signature-Input,
    Signature-Key or Content-Digest."""
    w = client.world
    r = client(w.plain.url("/p?x=1"), "POST", {"Content-Type": "application/json"}, b'{"a":1}')
    assert r.status == 200
    recs = w.plain.records()
    assert len(recs) == 1
    names = set(recs[0].header_names())
    leaked = names & {"authorization", "signature", "signature-input", "signature-key",
                      "content-digest", "agent-auth"}
    assert not leaked, leaked
    assert recs[0].query == "x=1" and recs[0].body_sha256 == hashlib.sha256(b'{"a":1}').hexdigest()
    assert w.token not in recs[0].raw_head.decode("latin-1")
    assert not w.resource.records()

