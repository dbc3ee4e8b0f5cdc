"""Upgrade: websocket through the proxy — the handshake request to a sign
host is signed like any other, then after 101 both directions are spliced
(through pass hosts likewise, unsigned), and an idle upgraded connection is
closed; and response trailers (where cost and budget fields travel)
reach the client unchanged."""

import os
import socket
import time

import pytest

from fakes.resource import FakeServer
from https_world import https, no_credentials  # noqa: F401

WS_HEAD = ("GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n")


def read_head(sock):
    head = b""
    while b"\r\n\r\n" not in head:
        b = sock.recv(1)
        if not b:
            break
        head += b
    return head


def echo_roundtrip(sock, n=200000):
    data = os.urandom(n)
    sock.sendall(data)
    back = b""
    while len(back) < len(data):
        b = sock.recv(65536)
        if not b:
            break
        back += b
    return back == data


@pytest.mark.parametrize("where", ["tls-tunnel", "absolute-form"])
def test_websocket_to_a_sign_host(https, where):
    w = https
    p = w.start(limits={"idle_timeout_ms": 1500})
    if where == "tls-tunnel":
        srv = w.tls
        sock = w.tls_connect(f"127.0.0.1:{srv.port}")
        target = "/ws?room=1"
    else:
        srv = w.plain
        sock = socket.create_connection(p.addr, timeout=10)
        target = f"http://127.0.0.1:{srv.port}/ws?room=1"
    sock.sendall(WS_HEAD.format(target=target, host=f"127.0.0.1:{srv.port}").encode())
    head = read_head(sock)
    assert head.startswith(b"HTTP/1.1 101 "), head
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    assert b"Upgrade: websocket" in head
    assert echo_roundtrip(sock)
    rec = srv.records()[0]
    assert rec.verdict == "valid", rec.reason
    assert rec.get("authorization") is not None and rec.get("upgrade") == "websocket"
    # quiet longer than idle_timeout_ms: the proxy closes the splice
    t0 = time.monotonic()
    sock.settimeout(10)
    try:
        assert sock.recv(10) == b""
    except ConnectionError:
        pass
    assert 1.0 < time.monotonic() - t0 < 8
    sock.close()
    e = [x for x in p.wait_access(2) if x.get("path") == "/ws"]
    assert e and e[0]["status"] == 101, p.access_entries()


def test_websocket_through_a_pass_host_is_unsigned(https):
    w = https
    plain = FakeServer("127.0.0.2", verify=False, name="ws-pass").start()
    try:
        p = w.start(rules=[{"host": "127.0.0.2", "port": plain.port, "action": "pass"}])
        sock = socket.create_connection(p.addr, timeout=10)
        sock.sendall(WS_HEAD.format(target=f"http://127.0.0.2:{plain.port}/ws",
                                    host=f"127.0.0.2:{plain.port}").encode())
        assert read_head(sock).startswith(b"HTTP/1.1 101 ")
        assert echo_roundtrip(sock)
        sock.close()
        assert not no_credentials(plain)
    finally:
        plain.stop()


def test_refused_upgrade_is_relayed_and_closed(https):
    """The upstream answers the upgrade with an ordinary response: the
    client gets it (with Connection: close), nothing is spliced."""
    w = https
    w.start()
    sock = w.tls_connect(f"127.0.0.1:{w.tls.port}")
    sock.sendall(WS_HEAD.format(target="/not-ws", host=f"127.0.0.1:{w.tls.port}")
                 .replace("Upgrade: websocket", "Upgrade: nothing").encode())
    head = read_head(sock)
    assert head.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in head, head
    sock.close()


def read_chunked_with_trailers(sock):
    f = sock.makefile("rb")
    status = f.readline()
    hdrs = []
    while True:
        ln = f.readline()
        if ln in (b"\r\n", b""):
            break
        hdrs.append(ln)
    body = b""
    while True:
        size = int(f.readline().split(b";")[0], 16)
        if size == 0:
            break
        body += f.read(size)
        f.readline()
    trailers = []
    while True:
        ln = f.readline()
        if ln in (b"\r\n", b""):
            break
        trailers.append(ln.rstrip(b"\r\n"))
    return status, hdrs, body, trailers


@pytest.mark.parametrize("where", ["tls-tunnel", "absolute-form"])
def test_trailers_are_relayed(https, where):
    w = https
    p = w.start()
    if where == "tls-tunnel":
        sock = w.tls_connect(f"127.0.0.1:{w.tls.port}")
        req = f"GET /trailers HTTP/1.1\r\nHost: 127.0.0.1:{w.tls.port}\r\nTE: trailers\r\n\r\n"
    else:
        sock = socket.create_connection(p.addr, timeout=10)
        req = (f"GET http://127.0.0.1:{w.plain.port}/trailers HTTP/1.1\r\n"
               f"Host: 127.0.0.1:{w.plain.port}\r\nTE: trailers\r\n\r\n")
    sock.sendall(req.encode())
    status, hdrs, body, trailers = read_chunked_with_trailers(sock)
    sock.close()
    assert status.startswith(b"HTTP/1.1 200") and body == b"hello"
    assert trailers == [b"X-Cost: 0.0042 usd", b"X-Budget-Remaining: 17"], trailers


def test_upgrade_without_an_answer_gets_504(https):
    """An upstream that takes the upgrade request and never answers: the
    client hears 504 after the idle timeout, not silence."""
    w = https
    srv = socket.socket()
    srv.bind(("127.0.0.2", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    try:
        p = w.start(rules=[{"host": "127.0.0.2", "port": port, "action": "pass"}],
                    limits={"idle_timeout_ms": 700})
        sock = socket.create_connection(p.addr, timeout=10)
        sock.sendall(WS_HEAD.format(target=f"http://127.0.0.2:{port}/ws",
                                    host=f"127.0.0.2:{port}").encode())
        held, _ = srv.accept()
        head = read_head(sock)
        assert head.startswith(b"HTTP/1.1 504 "), head
        assert b"http_response_timeout" in head
        sock.close()
        held.close()
    finally:
        srv.close()
