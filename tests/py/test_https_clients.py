"""Unmodified clients calling https:// URLs through HTTPS_PROXY, trusting
only the proxy's CA: curl, Python requests and httpx, Node undici's
ProxyAgent (default CONNECT mode) and EnvHttpProxyAgent (under
`aauth-proxy exec`, which sets the proxy and NODE_EXTRA_CA_CERTS). The
proxy intercepts the TLS, signs, and forwards to a TLS fake resource that
checks every signature; GET with a query, a JSON POST, multi-MiB bodies
both ways checksummed, and server-sent events event by event. Node's
undici tunnels http:// through CONNECT too: that is plain HTTP inside the
tunnel, signed the same way."""

import hashlib
import json
import queue
import secrets
import subprocess
import threading
import uuid

import httpx
import pytest
import requests

from fakes.daemon import clean_env
from fakes.resource import big_body
from https_world import NODE_DIR, all_valid, https, node_env, node_modules  # noqa: F401

BIG = 5 << 20
CLIENTS = ["curl", "requests", "httpx", "node", "node-env"]


class Result:
    def __init__(self, status, headers, body=None, sha256=None, length=None):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body
        self.sha256 = sha256 if sha256 is not None else hashlib.sha256(body).hexdigest()
        self.length = length if length is not None else len(body)

    def json(self):
        return json.loads(self.body)


def do_curl(w, url, method, headers, body, tmp_path):
    out = tmp_path / f"curl-{uuid.uuid4().hex}"
    args = ["curl", "-sS", "-x", w.proxy_url, "--noproxy", "", "--cacert", w.proxy_ca,
            "-X", method, "-o", str(out), "-D", str(out) + ".h", "-w", "%{http_code}",
            "--max-time", "60"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    if body is not None:
        bf = tmp_path / f"{out.name}.in"
        bf.write_bytes(body)
        args += ["--data-binary", f"@{bf}"]
    r = subprocess.run(args + [url], capture_output=True, timeout=90, env=clean_env())
    assert r.returncode == 0, r.stderr.decode()
    hdrs = {}
    for ln in (tmp_path / (out.name + ".h")).read_bytes().decode("latin-1").split("\r\n"):
        if ln.startswith("HTTP/"):
            hdrs = {}  # the CONNECT response and 100 come first
        elif ":" in ln:
            k, _, v = ln.partition(":")
            hdrs[k.strip()] = v.strip()
    return Result(int(r.stdout), hdrs, out.read_bytes())


def do_requests(w, url, method, headers, body, tmp_path):
    with requests.Session() as s:
        s.trust_env = False
        r = s.request(method, url, headers=headers, data=body, timeout=60,
                      proxies={"https": w.proxy_url, "http": w.proxy_url}, verify=w.proxy_ca)
        return Result(r.status_code, dict(r.headers), r.content)


def do_httpx(w, url, method, headers, body, tmp_path):
    with httpx.Client(proxies=w.proxy_url, verify=w.proxy_ca, timeout=60,
                      trust_env=False) as c:
        r = c.request(method, url, headers=headers, content=body)
        return Result(r.status_code, dict(r.headers), r.content)


def node_cmd(w, name, spec):
    """(argv, env) for client.mjs: ProxyAgent with requestTls = the proxy
    CA only, or EnvHttpProxyAgent under `aauth-proxy exec`."""
    if name == "node-env":
        spec["env"] = True
        return ([w.bin, "exec", "-c", w.proxy.config_path, "--", "node",
                 str(NODE_DIR / "client.mjs"), json.dumps(spec)], node_env())
    spec.update(proxy=w.proxy_url, tunnel=True, ca_file=w.proxy_ca)
    return ["node", str(NODE_DIR / "client.mjs"), json.dumps(spec)], node_env()


def node_spec(url, method, headers, body, tmp_path, mode="body"):
    spec = {"url": url, "method": method, "headers": headers, "mode": mode}
    if body is not None:
        bf = tmp_path / f"node-{uuid.uuid4().hex}.in"
        bf.write_bytes(body)
        spec["body_file"] = str(bf)
    return spec


def do_node(w, name, url, method, headers, body, tmp_path):
    argv, env = node_cmd(w, name, node_spec(url, method, headers, body, tmp_path))
    r = subprocess.run(argv, cwd=NODE_DIR, capture_output=True, timeout=90, env=env)
    lines = [json.loads(ln) for ln in r.stdout.decode().splitlines() if ln.strip()]
    assert r.returncode == 0 and lines and "error" not in lines[-1], (r.stdout, r.stderr)
    o = lines[-1]
    body_bytes = o["text"].encode() if o["text"] is not None else None
    return Result(o["status"], o["headers"], body_bytes, sha256=o["sha256"], length=o["len"])


@pytest.fixture
def client(request, https, tmp_path):
    name = request.param
    if name.startswith("node"):
        request.getfixturevalue("node_modules")
    https.start()

    def call(url, method="GET", headers=None, body=None):
        headers = dict(headers or {})
        if name == "curl":
            return do_curl(https, url, method, headers, body, tmp_path)
        if name == "requests":
            return do_requests(https, url, method, headers, body, tmp_path)
        if name == "httpx":
            return do_httpx(https, url, method, headers, body, tmp_path)
        return do_node(https, name, url, method, headers, body, tmp_path)

    call.name = name
    call.world = https
    return call


def check_valid(fake, n=None):
    recs = fake.records()
    if n is not None:
        assert len(recs) == n, recs
    ok, bad = all_valid(fake)
    assert ok, f"the fake resource rejected signed requests: {bad}"


def connects(w):
    return [e for e in w.proxy.access_entries() if e.get("method") == "CONNECT"]


@pytest.mark.parametrize("client", CLIENTS, indirect=True)
def test_https_get_with_query(client):
    w = client.world
    r = client(w.tls.url("/items?limit=5&q=a%20b&empty="))
    assert r.status == 200, r.body
    echo = r.json()
    assert echo["verdict"] == "valid"
    assert echo["query"] == "limit=5&q=a%20b&empty="
    check_valid(w.tls, 1)
    rec = w.tls.records()[0]
    assert rec.get("authorization") == f"Bearer {w.token}"
    assert "@query" in rec.get("signature-input")
    # it came through a tunnel, and the inner request was signed
    entries = w.proxy.wait_access(2)
    assert [e.get("method") for e in entries] == ["CONNECT", "GET"], entries
    assert entries[1].get("action") == "sign" and entries[1].get("status") == 200


@pytest.mark.parametrize("client", CLIENTS, indirect=True)
def test_https_post_json(client):
    w = client.world
    payload = json.dumps({"client": client.name, "n": [1, 2, 3], "s": "h\u00e9llo"}).encode()
    r = client(w.tls.url("/echo"), "POST", {"Content-Type": "application/json"}, payload)
    assert r.status == 200, r.body
    assert r.body == payload
    check_valid(w.tls, 1)
    rec = w.tls.records()[0]
    assert rec.body_sha256 == hashlib.sha256(payload).hexdigest()
    assert rec.get("content-type") == "application/json"


@pytest.mark.parametrize("client", CLIENTS, indirect=True)
def test_https_upload_and_download_several_mib(client):
    w = client.world
    payload = secrets.token_bytes(BIG)
    want = hashlib.sha256(payload).hexdigest()
    r = client(w.tls.url("/echo"), "POST", {"Content-Type": "application/octet-stream"}, payload)
    assert r.status == 200
    assert (r.length, r.sha256) == (BIG, want)
    assert r.headers["x-body-sha256"] == want
    r = client(w.tls.url(f"/big?size={BIG}&mode=chunked"))
    assert r.status == 200
    assert (r.length, r.sha256) == (BIG, hashlib.sha256(big_body(BIG)).hexdigest())
    check_valid(w.tls, 2)


# Server-sent events -------------------------------------------------------------

def sse_curl(w, url):
    p = subprocess.Popen(["curl", "-sSN", "-x", w.proxy_url, "--noproxy", "", "--cacert",
                          w.proxy_ca, "--max-time", "60", url],
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


def sse_requests(w, url):
    with requests.Session() as s:
        s.trust_env = False
        with s.get(url, proxies={"https": w.proxy_url}, verify=w.proxy_ca, stream=True,
                   timeout=60) as r:
            assert r.status_code == 200
            for ln in r.iter_lines(chunk_size=1, decode_unicode=True):
                if ln.startswith("data: "):
                    yield json.loads(ln[6:])


def sse_httpx(w, url):
    with httpx.Client(proxies=w.proxy_url, verify=w.proxy_ca, timeout=60,
                      trust_env=False) as c:
        with c.stream("GET", url) as r:
            assert r.status_code == 200
            for ln in r.iter_lines():
                if ln.startswith("data: "):
                    yield json.loads(ln[6:])


def sse_node(w, name, url, tmp_path):
    argv, env = node_cmd(w, name, node_spec(url, "GET", {}, None, tmp_path, mode="sse"))
    p = subprocess.Popen(argv, cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env)
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
    q = queue.Queue()

    def target():
        try:
            q.put(("ok", fn()))
        except BaseException as e:  # noqa: BLE001 - re-raised below
            q.put(("err", e))

    threading.Thread(target=target, daemon=True).start()
    try:
        kind, val = q.get(timeout=timeout)
    except queue.Empty:
        pytest.fail(f"stream did not finish within {timeout}s")
    if kind == "err":
        raise val
    return val


@pytest.mark.parametrize("client", CLIENTS, indirect=True)
def test_https_sse_arrives_event_by_event(client, tmp_path):
    """Event i+1 leaves the fake only after the client saw event i: a
    proxy (or TLS layer) that holds bytes back makes the waits time out."""
    w = client.world
    sid = uuid.uuid4().hex
    n = 4
    url = w.tls.url(f"/sse?n={n}&id={sid}&ack=1&mode=chunked")
    gen = {
        "curl": lambda: sse_curl(w, url),
        "requests": lambda: sse_requests(w, url),
        "httpx": lambda: sse_httpx(w, url),
    }.get(client.name, lambda: sse_node(w, client.name, url, tmp_path))

    def consume():
        got = []
        for ev in gen():
            got.append(ev)
            w.tls.ack(sid, ev["i"])
        return got

    events = run_with_deadline(consume, 90)
    assert [e["i"] for e in events] == list(range(1, n + 1))
    assert [e["acked_prev"] for e in events] == [True] * n
    check_valid(w.tls, 1)


@pytest.mark.parametrize("client", ["node", "node-env"], indirect=True)
def test_undici_tunnels_http_too(client):
    """undici's ProxyAgent and EnvHttpProxyAgent send even http:// URLs
    through CONNECT; the bytes after it are plain HTTP, which the proxy
    parses, signs and forwards as it would absolute-form."""
    w = client.world
    payload = b'{"plain": "in a tunnel"}'
    r = client(w.plain.url("/echo?z=1"), "POST", {"Content-Type": "application/json"}, payload)
    assert r.status == 200 and r.body == payload
    check_valid(w.plain, 1)
    assert w.plain.records()[0].get("authorization") == f"Bearer {w.plain_token}"
    assert [e.get("method") for e in w.proxy.wait_access(2)][:1] == ["CONNECT"]


@pytest.mark.parametrize("client", ["curl", "node"], indirect=True)
def test_keep_alive_and_many_requests_in_one_tunnel(client):
    """curl reuses one tunnel for several URLs; every inner request is
    signed on its own (fresh nonce)."""
    w = client.world
    if client.name == "curl":
        urls = [w.tls.url(f"/k{i}?i={i}") for i in range(5)]
        r = subprocess.run(["curl", "-sS", "-x", w.proxy_url, "--noproxy", "", "--cacert",
                            w.proxy_ca, "--max-time", "60"] + urls,
                           capture_output=True, timeout=90, env=clean_env())
        assert r.returncode == 0, r.stderr
        assert len(connects(w)) == 1
    else:
        for i in range(3):
            assert client(w.tls.url(f"/k{i}")).status == 200
    check_valid(w.tls)
    recs = w.tls.records()
    assert len({r.get("signature-input") for r in recs}) == len(recs)
