"""HTTP/1.1 on the client side of the daemon, byte for byte over raw
sockets: ambiguous framing is refused (400 + close), Expect: 100-continue,
keep-alive, pipelining, bodiless responses, and the slowloris and idle
timeouts."""

import threading
import time

import pytest

from fakes.daemon import RawConn, header, wait_until
from fakes.resource import big_body


def head(w, target_path, extra="", method="GET"):
    return (f"{method} {w.resource.url(target_path)} HTTP/1.1\r\n"
            f"Host: {w.resource.authority}\r\n{extra}")


def serves_next(w):
    with RawConn(w.proxy.addr) as c:
        c.send(head(w, "/next?ok=1") + "\r\n")
        st, hd, body = c.response()
    assert st == 200, body
    assert b'"verdict": "valid"' in body


BAD = {
    "cl_and_te": "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two_different_cl": "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "cl_list_different": "Content-Length: 5, 6\r\n\r\nhello!",
    "cl_not_a_number": "Content-Length: 5x\r\n\r\nhello",
    "cl_negative": "Content-Length: -1\r\n\r\n",
    "bad_chunk_size": "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk_size_overflow": "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nx\r\n0\r\n\r\n",
    "chunk_missing_crlf": "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    "te_not_chunked_final": "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "obs_fold": "X-A: 1\r\n  continued\r\n\r\n",
    "bare_lf_header": "X-A: 1\nX-B: 2\r\n\r\n",
    "bare_cr_in_value": "X-A: a\rb\r\n\r\n",
    "nul_in_value": "X-A: a\x00b\r\n\r\n",
    "space_in_name": "X A: 1\r\n\r\n",
    "paren_in_name": "X(A): 1\r\n\r\n",
    "space_before_colon": "X-A : 1\r\n\r\n",
    "empty_name": ": x\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_ambiguous_framing_400_and_close(running, case):
    w = running
    with RawConn(w.proxy.addr) as c:
        c.send(head(w, "/echo", method="POST") + BAD[case])
        st, hd, body = c.response()
        assert st == 400 if case != "te_not_chunked_final" else st in (400, 501), (st, body)
        assert header(hd, "content-type").startswith("application/json")
        assert c.closed_by_peer(5), "the proxy kept the connection open after a framing error"
    assert not w.resource.records(), "a malformed request reached the upstream"
    serves_next(w)


def test_bare_lf_request_line_400(running):
    w = running
    with RawConn(w.proxy.addr) as c:
        c.send(f"GET {w.resource.url('/x')} HTTP/1.1\nHost: {w.resource.authority}\r\n\r\n")
        st, _, _ = c.response()
        assert st == 400
        assert c.closed_by_peer(5)
    serves_next(w)


def test_host_mismatch_absolute_form_uses_target(running):
    """An absolute-form target wins over a contradicting Host: RFC 9112
    3.2.2 says a proxy MUST ignore the received Host and use the target's.
    The request goes to, and is signed for, the target."""
    w = running
    with RawConn(w.proxy.addr) as c:
        c.send(f"GET {w.resource.url('/x')} HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        st, hd, body = c.response()
    assert st == 200, body
    rec = w.resource.records()[-1]
    assert rec.get_all("host") == [w.resource.authority]
    assert rec.verdict == "valid", rec.reason


def test_expect_100_continue_good_request(running):
    w = running
    payload = b'{"expect": "continue"}'
    with RawConn(w.proxy.addr) as c:
        c.send(head(w, "/echo", method="POST") + "Content-Type: application/json\r\n"
               f"Content-Length: {len(payload)}\r\nExpect: 100-continue\r\n\r\n")
        st, hd, _ = c.response()
        assert st == 100, "no 100 Continue before the body was sent"
        c.send(payload)
        st, hd, body = c.response()
    assert st == 200 and body == payload
    rec = w.resource.records()[-1]
    assert rec.verdict == "valid", rec.reason
    assert "expect" not in rec.header_names() or rec.get("expect") == "100-continue"
    serves_next(w)


def test_keepalive_two_requests_one_socket(running):
    w = running
    with RawConn(w.proxy.addr) as c:
        c.send(head(w, "/one?a=1") + "\r\n")
        st1, hd1, b1 = c.response()
        c.send(f"GET {w.plain.url('/two')} HTTP/1.1\r\nHost: {w.plain.authority}\r\n\r\n")
        st2, hd2, b2 = c.response()
        c.send(head(w, "/three") + "\r\n")
        st3, hd3, b3 = c.response()
    assert (st1, st2, st3) == (200, 200, 200)
    assert b'"path": "/one"' in b1 and b'"path": "/two"' in b2 and b'"path": "/three"' in b3
    assert [r.path for r in w.resource.records()] == ["/one", "/three"]
    assert all(r.verdict == "valid" for r in w.resource.records())
    assert [r.path for r in w.plain.records()] == ["/two"]


def test_pipelining_answered_in_order(running):
    w = running
    reqs = []
    for i, word in enumerate([b"first", b"second-longer", b"3"]):
        reqs.append((head(w, f"/echo?i={i}", method="POST")
                     + f"Content-Length: {len(word)}\r\n\r\n").encode() + word)
    reqs.append(f"GET {w.plain.url('/pipelined')} HTTP/1.1\r\nHost: {w.plain.authority}\r\n\r\n".encode())
    reqs.append((head(w, "/big?size=70000")).encode() + b"\r\n")
    with RawConn(w.proxy.addr) as c:
        c.send(b"".join(reqs))  # all at once
        got = [c.response() for _ in range(5)]
    assert [g[0] for g in got] == [200] * 5
    assert [g[2] for g in got[:3]] == [b"first", b"second-longer", b"3"]
    assert b"/pipelined" in got[3][2]
    assert got[4][2] == big_body(70000)
    assert all(r.verdict == "valid" for r in w.resource.records())


def test_connection_close_and_http10(running):
    w = running
    with RawConn(w.proxy.addr) as c:
        c.send(head(w, "/c") + "Connection: close\r\n\r\n")
        st, hd, _ = c.response()
        assert st == 200
        assert c.closed_by_peer(5)
    with RawConn(w.proxy.addr) as c:
        c.send(f"GET {w.resource.url('/h10')} HTTP/1.0\r\nHost: {w.resource.authority}\r\n\r\n")
        st, hd, body = c.response()
        assert st == 200 and b'"path": "/h10"' in body
        assert c.closed_by_peer(5)
    assert all(r.verdict == "valid" for r in w.resource.records())


def test_head_204_304_have_no_body(running):
    """On one keep-alive connection: any stray body byte after a HEAD, 204
    or 304 would corrupt the next response."""
    w = running
    with RawConn(w.proxy.addr) as c:
        c.send(head(w, "/big?size=12345", method="HEAD") + "\r\n")
        st, hd, body = c.response(head_only=True)
        assert st == 200 and header(hd, "content-length") == "12345"
        c.send(head(w, "/status/204") + "\r\n")
        st, hd, body = c.response()
        assert st == 204 and header(hd, "content-length") in (None, "0")
        assert header(hd, "transfer-encoding") is None
        c.send(head(w, "/status/304") + "If-None-Match: \"v1\"\r\n\r\n")
        st, hd, body = c.response()
        assert st == 304 and header(hd, "etag") == '"v1"'
        c.send(head(w, "/sse?n=2&delay=10", method="HEAD") + "\r\n")
        st, hd, body = c.response(head_only=True)
        assert st == 200
        c.send(head(w, "/after") + "\r\n")
        st, hd, body = c.response()
        assert st == 200 and b'"path": "/after"' in body
        c.sock.settimeout(0.5)
        try:
            extra = c.sock.recv(1)
        except OSError:
            extra = b""
        assert extra == b"", f"stray bytes after the last response: {extra!r}"
    assert [r.method for r in w.resource.records()] == ["HEAD", "GET", "GET", "HEAD", "GET"]
    assert all(r.verdict == "valid" for r in w.resource.records())


def test_slowloris_cut_off_while_others_served(world):
    w = world
    w.start(limits={"header_timeout_ms": 1000})
    outcome = {}

    def slow():
        c = RawConn(w.proxy.addr, timeout=10)
        t0 = time.monotonic()
        try:
            c.send(f"GET {w.resource.url('/slowloris')} HTTP/1.1\r\n")
            for i in range(60):  # up to 9 s, far past the 1 s limit
                time.sleep(0.15)  # the drip's pace: a slow client is the point
                c.send(f"X-Drip-{i}: {i}\r\n")
        except OSError:
            pass
        c.sock.settimeout(5)
        try:
            rest = c.rfile.read()
        except OSError:
            rest = b""
        outcome["after"] = time.monotonic() - t0
        outcome["reply"] = rest
        c.close()

    t = threading.Thread(target=slow)
    t.start()
    served = []
    while t.is_alive() and len(served) < 5:
        t1 = time.monotonic()
        with RawConn(w.proxy.addr) as c:
            c.send(head(w, f"/fast{len(served)}") + "\r\n")
            st, _, _ = c.response()
        served.append((st, time.monotonic() - t1))
        time.sleep(0.2)  # spread over the slow client's life, not all at its start
    t.join(20)
    assert not t.is_alive()
    assert outcome["after"] < 5, f"slow client still connected after {outcome['after']:.1f}s"
    assert outcome["after"] >= 0.8, "cut off before header_timeout_ms"
    assert outcome["reply"] == b"" or outcome["reply"].startswith(b"HTTP/1.1 408"), outcome["reply"][:100]
    assert served and all(st == 200 and dt < 1.0 for st, dt in served), served
    assert not [r for r in w.resource.records() if r.path == "/slowloris"]


def test_idle_keepalive_closed_after_idle_timeout(world):
    w = world
    w.start(limits={"idle_timeout_ms": 500})
    with RawConn(w.proxy.addr) as c:
        c.send(head(w, "/k") + "\r\n")
        assert c.response()[0] == 200
        t0 = time.monotonic()
        assert c.closed_by_peer(5)
        assert 0.3 <= time.monotonic() - t0 < 3


def _abort(c):
    """Close with a reset, as a killed client would."""
    import socket
    import struct
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()


def test_client_abort_mid_download_and_mid_stream(running):
    w = running
    for path in ["/big?size=50000000", "/big?size=50000000&mode=chunked",
                 "/sse?n=50&delay=100", "/sse?n=50&delay=100&mode=close"]:
        c = RawConn(w.proxy.addr)
        c.send(head(w, path) + "\r\n")
        got = c.rfile.read1(65536)
        assert got.startswith(b"HTTP/1.1 200"), got[:100]
        _abort(c)
    # The daemon has finished (and logged) every aborted exchange, and lives.
    paths = {"/big", "/sse"}
    done = w.proxy.wait_access(4, pred=lambda o: o.get("path") in paths)
    assert len(done) >= 4, done
    assert w.proxy.alive()
    serves_next(w)
    # the upstream connections of the aborted exchanges are given up
    # rather than left streaming forever
    wait_until(lambda: w.resource.open_connections <= 2, timeout=10)
    assert w.resource.open_connections <= 2, w.resource.open_connections
