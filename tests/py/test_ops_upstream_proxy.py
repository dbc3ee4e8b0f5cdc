"""upstream.proxy and upstream.proxy_auth_file (issue 10): every upstream
exchange goes through the named proxy as a CONNECT tunnel, with Basic
credentials from the file; without it, HTTP(S)_PROXY in the daemon's own
environment is ignored; the fields are validated with their JSON paths."""

import base64
import json
import os
import signal

import pytest

from cli_helpers import run
from fakes.daemon import ProxyProcess, http_get_via
from fakes.upproxy import UpstreamProxy
from ops_helpers import admin_get, rewrite_config


@pytest.fixture
def upproxy():
    made = []

    def make(**kw):
        p = UpstreamProxy(**kw).start()
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()


def _auth_file(tmp_path, text):
    f = tmp_path / "proxy-auth"
    f.write_text(text)
    os.chmod(f, 0o600)
    return str(f)


def test_every_exchange_goes_through_the_upstream_proxy(world, upproxy, tmp_path):
    corp = upproxy(require_auth="Basic " + base64.b64encode(b"agent:s3cret pw").decode())
    p = world.start(upstream={"proxy": corp.url,
                              "proxy_auth_file": _auth_file(tmp_path, "agent:s3cret pw\n")})
    st, _, body = http_get_via(p.addr, world.resource.url("/signed?x=1"))
    assert st == 200, body
    assert http_get_via(p.addr, world.plain.url("/passed"))[0] == 200
    seen = corp.records()
    targets = [(m, t) for m, t, _ in seen]
    assert ("CONNECT", world.resource.authority) in targets
    assert ("CONNECT", world.plain.authority) in targets
    assert all(m == "CONNECT" for m, _, _ in seen)
    # the signature still verifies at the resource: the target went out as signed
    (rec,) = world.resource.records()
    assert rec.verdict == "valid" and rec.target == "/signed?x=1"
    # the credential never shows on the admin port
    for path in ("/status", "/metrics"):
        assert b"s3cret" not in admin_get(p, path)[2]


def test_wrong_proxy_credentials_fail_the_exchange(world, upproxy, tmp_path):
    corp = upproxy(require_auth="Basic " + base64.b64encode(b"agent:right").decode())
    p = world.start(upstream={"proxy": corp.url,
                              "proxy_auth_file": _auth_file(tmp_path, "agent:wrong")})
    st, _, body = http_get_via(p.addr, world.resource.url("/x"))
    assert st == 502 and b"407" in body, body  # not a 407 the agent would misread
    assert world.resource.records() == []
    assert corp.records()  # it was asked


def test_reload_switches_the_upstream_proxy(world, upproxy):
    corp = upproxy()
    p = world.start()
    assert http_get_via(p.addr, world.resource.url("/direct"))[0] == 200
    assert corp.records() == []
    cfg = json.loads(json.dumps(p.config))
    cfg["upstream"]["proxy"] = corp.url
    rewrite_config(p, cfg)
    p.signal(signal.SIGHUP)
    assert p.wait_log("reloaded ")
    assert http_get_via(p.addr, world.resource.url("/via"))[0] == 200
    assert [t for _, t, _ in corp.records()] == [world.resource.authority]


def test_environment_proxy_is_ignored(world, upproxy, proxy_bin, tmp_path):
    corp = upproxy()
    p = ProxyProcess(proxy_bin, world.config(key={"file": _key(tmp_path)}),
                     str(tmp_path / "c.json"),
                     env={"HTTP_PROXY": corp.url, "http_proxy": corp.url,
                          "HTTPS_PROXY": corp.url, "ALL_PROXY": corp.url})
    p.start()
    try:
        assert http_get_via(p.addr, world.resource.url("/env"))[0] == 200
        assert corp.records() == []
    finally:
        assert p.stop() == []


def _key(tmp_path):
    from cli_helpers import private_copy
    return str(private_copy(tmp_path, "lumoauth/agent-key.pem"))


@pytest.mark.parametrize("up,field,words", [
    ({"proxy": "https://corp:3128"}, "upstream.proxy", "http://HOST:PORT"),
    ({"proxy": "http://corp"}, "upstream.proxy", "port"),
    ({"proxy": "http://u:p@corp:3128"}, "upstream.proxy", "proxy_auth_file"),
    ({"proxy": "http://corp:3128/path"}, "upstream.proxy", "path"),
    ({"proxy": "http://corp:0"}, "upstream.proxy", "port"),
    ({"proxy_auth_file": "/etc/hostname"}, "upstream.proxy_auth_file", "upstream.proxy"),
    ({"proxy": "http://corp:3128", "proxy_auth_file": "/nonexistent/a"},
     "upstream.proxy_auth_file", "No such file"),
])
def test_upstream_proxy_fields_are_checked(tmp_path, up, field, words):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"key": {"file": _key(tmp_path)}, "upstream": up}))
    r = run("check-config", "-c", str(cfg))
    err = r.stderr.decode()
    assert r.returncode != 0 and field in err and words in err, err


def test_bad_credentials_file_rejected_at_start(tmp_path, proxy_bin):
    auth = _auth_file(tmp_path, "no-colon-here")
    p = ProxyProcess(proxy_bin, {"key": {"file": _key(tmp_path)},
                                 "upstream": {"proxy": "http://127.0.0.1:9",
                                              "proxy_auth_file": auth}},
                     str(tmp_path / "c.json"))
    with pytest.raises(RuntimeError) as e:
        p.start()
    assert "user:password" in str(e.value) and "no-colon-here" not in str(e.value)


# Tunnels (CONNECT to a pass host, Upgrade splices) dial through it too.

def _read_head(sock):
    head = b""
    while b"\r\n\r\n" not in head:
        b = sock.recv(1)
        if not b:
            break
        head += b
    return head


def test_pass_tunnel_goes_through_the_upstream_proxy(world, upproxy, tmp_path):
    import socket
    corp = upproxy(require_auth="Basic " + base64.b64encode(b"agent:pw").decode())
    p = world.start(upstream={"proxy": corp.url,
                              "proxy_auth_file": _auth_file(tmp_path, "agent:pw")})
    with socket.create_connection(p.addr, timeout=10) as s:
        auth = world.plain.authority
        s.sendall(f"CONNECT {auth} HTTP/1.1\r\nHost: {auth}\r\n\r\n".encode())
        head = _read_head(s)
        assert head.startswith(b"HTTP/1.1 200 "), head
        s.sendall(f"GET /inside HTTP/1.1\r\nHost: {auth}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]
    assert [(m, t) for m, t, _ in corp.records()] == [("CONNECT", auth)]
    (rec,) = world.plain.records()
    assert rec.target == "/inside" and rec.get("authorization") is None


def test_refused_pass_tunnel_is_a_502(world, upproxy, tmp_path):
    import socket
    corp = upproxy(require_auth="Basic " + base64.b64encode(b"agent:right").decode())
    p = world.start(upstream={"proxy": corp.url,
                              "proxy_auth_file": _auth_file(tmp_path, "agent:wrong")})
    with socket.create_connection(p.addr, timeout=10) as s:
        auth = world.plain.authority
        s.sendall(f"CONNECT {auth} HTTP/1.1\r\nHost: {auth}\r\n\r\n".encode())
        head = _read_head(s)
    assert head.startswith(b"HTTP/1.1 502 "), head
    assert world.plain.records() == []


def test_upgrade_goes_through_the_upstream_proxy(world, upproxy):
    import socket
    corp = upproxy()
    p = world.start(upstream={"proxy": corp.url})
    auth = world.resource.authority
    with socket.create_connection(p.addr, timeout=10) as s:
        s.sendall((f"GET http://{auth}/ws HTTP/1.1\r\nHost: {auth}\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = _read_head(s)
        assert head.startswith(b"HTTP/1.1 101 "), head
        s.sendall(b"ping-through-corp")
        got = b""
        while len(got) < 17:
            got += s.recv(64)
        assert got == b"ping-through-corp"
    assert [(m, t) for m, t, _ in corp.records()] == [("CONNECT", auth)]
    (rec,) = world.resource.records()
    assert rec.verdict == "valid"  # the handshake was signed
