"""Regressions for issue 6 — holes found by attacking the running proxy.

1. Two upstream replies in a row crashed the daemon: libcurl 7.88.1 keeps
   a pointer into the previous transfer's header store on a reused easy
   handle, and a reply whose first header line is an obs-fold makes it
   realloc freed memory. Replies our parser refuses must not poison the
   next transfer either.
2. Endless response trailers grew memory without bound.
3. TRACE to a sign host echoed the Bearer token back to the agent.
4. Deny rules written in another spelling of an address never matched.
Also: a global budget for buffered request bodies.

Every test serves the exact bytes from the issue through the real daemon;
the sanitizer build runs them too (the harness fails on any report).
"""

import json
import re
import socket
import threading

import pytest

from fakes import http as fhttp
from fakes.daemon import RawConn, header, rss_growth_during, wait_until
from test_proxy_security import (assert_clean_head, base_rules, decode_body, exchange, get,
                                 serves, statuses)

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
FOLD_FIRST = b"HTTP/1.1 204 No Content\r\n\tX-B: 2\r\n\r\n"


def scripted(replies, fallback=OK):
    """A handler that answers the n-th request with replies[n] (then
    fallback), each on its own connection, then closes it."""
    lock = threading.Lock()
    it = iter(replies)

    def handler(s, req):
        with lock:
            data = next(it, fallback)
        s.sendall(data)
        return False

    return handler


def up_rule(up, action):
    r = {"host": "127.0.0.1", "port": up.port, "action": action}
    if action == "sign":
        r["resource"] = "r"
    return r


def one(w, up, path):
    got = exchange(w.proxy.addr, get(up.url(path)), timeout=10)
    assert w.proxy.alive(), "the daemon died:\n" + w.proxy.stderr_text()[-3000:]
    return assert_clean_head(got)


# --- 1. stale libcurl state on a reused handle ---------------------------------

@pytest.mark.parametrize("action", ["pass", "sign"])
def test_fold_first_after_a_good_reply_does_not_crash(world, hostile, action):
    """The exact sequence from the issue, three rounds, fresh connections:
    a 200, then a 204 whose first header line is '\\tX-B: 2'."""
    w = world
    up = hostile(scripted([OK, FOLD_FIRST] * 3))
    w.start(rules=base_rules(w) + [up_rule(up, action)])
    for i in range(3):
        st, fields, rest = one(w, up, f"/good-{i}")
        assert st == 200 and decode_body(fields, rest) == b"ok"
        st, fields, rest = one(w, up, f"/fold-{i}")
        # Either refused as a malformed head or relayed without the
        # dangling line; never the daemon's death.
        assert st in (204, 502), st
        if st == 204:
            assert "x-b" not in fields and rest == b""
        else:
            assert fields.get("proxy-status")
    assert len(up.records()) == 6
    serves(w)


# Heads that libcurl stores but our parser refuses (or drops lines of),
# each followed by a good reply that must come through intact.
POISON = {
    "fold_first_tab": b"HTTP/1.1 200 OK\r\n\tX-B: 2\r\nContent-Length: 2\r\n\r\nok",
    "fold_first_space": b"HTTP/1.1 200 OK\r\n X-B: 2\r\nContent-Length: 2\r\n\r\nok",
    "fold_after_field": b"HTTP/1.1 200 OK\r\nX-A: 1\r\n\tX-B: 2\r\nContent-Length: 2\r\n\r\nok",
    "fold_on_length": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n 0\r\n\r\nok",
    "bad_name_space": b"HTTP/1.1 200 OK\r\nX Bad: 1\r\nContent-Length: 2\r\n\r\nok",
    "bad_name_empty": b"HTTP/1.1 200 OK\r\n: 1\r\nContent-Length: 2\r\n\r\nok",
    "bad_name_ctl": b"HTTP/1.1 200 OK\r\nX\x01: 1\r\nContent-Length: 2\r\n\r\nok",
    "oversize_line": b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 150000 + b"\r\nContent-Length: 2\r\n\r\nok",
    "many_lines_then_fold": b"HTTP/1.1 200 OK\r\n" + b"X-F: 1\r\n" * 300 +
                            b"\tX-G: 1\r\nContent-Length: 2\r\n\r\nok",
    "interim_then_fold": b"HTTP/1.1 100 Continue\r\nX-I: 1\r\n\r\n"
                         b"HTTP/1.1 204 No Content\r\n\tX-B: 2\r\n\r\n",
    "status_then_nothing": b"HTTP/1.1 200 OK\r\n",
}


@pytest.mark.parametrize("action", ["pass", "sign"])
def test_refused_heads_never_poison_the_next_transfer(world, hostile, action):
    w = world
    seq = []
    for name in sorted(POISON):
        seq += [POISON[name], OK]
    up = hostile(scripted(seq * 2))
    w.start(rules=base_rules(w) + [up_rule(up, action)], upstream={"idle_timeout_ms": 3000})
    for rnd in range(2):
        for name in sorted(POISON):
            st, fields, _ = one(w, up, f"/{name}-{rnd}")
            if st == 502:
                assert fields.get("proxy-status"), name
            st, fields, rest = one(w, up, f"/after-{name}-{rnd}")
            assert st == 200, f"after {name}: {st}"
            assert decode_body(fields, rest) == b"ok", f"after {name}"
    serves(w)


# --- 2. endless trailers ------------------------------------------------------

def endless_trailers(limit):
    def handler(s, req):
        s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n")
        block = b"X-Trailer: " + b"t" * 1000 + b"\r\n"
        block *= 64
        sent = 0
        while sent < limit:
            s.sendall(block)
            sent += len(block)
        handler.finished = True
        return False

    handler.finished = False
    return handler


def test_endless_trailers_cut_with_bounded_memory(world, hostile):
    w = world
    h = endless_trailers(256 << 20)
    up = hostile(h)
    w.start(rules=base_rules(w) + [up_rule(up, "pass")],
            upstream={"idle_timeout_ms": 5000, "timeout_ms": 0})
    got, grew = rss_growth_during(w.proxy.proc.pid,
                                  lambda: exchange(w.proxy.addr, get(up.url("/trailers")), timeout=30))
    st, fields, rest = assert_clean_head(got)
    # The head and the body had left already: the client learns of the
    # failure by a chunked body with no last chunk.
    assert st == 200
    assert fields.get("transfer-encoding") == ["chunked"]
    assert rest == b"2\r\nok\r\n", rest[:200]
    assert not h.finished, "the upstream was allowed to send every trailer"
    assert grew < 32, f"RSS grew {grew:.0f} MiB on endless trailers"
    assert w.proxy.wait_for(
        lambda _: any("trailer" in o["msg"] and "max_header_bytes" in o["msg"]
                      for o in w.proxy.log_messages()),
        timeout=5), "no log line says why the response was cut"
    serves(w)


def test_small_trailers_still_end_the_body_cleanly(world, hostile):
    w = world
    up = hostile(scripted([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"2\r\nok\r\n0\r\nX-Cost: 3\r\nX-Budget: 9\r\n\r\n"]))
    w.start(rules=base_rules(w) + [up_rule(up, "pass")])
    st, fields, rest = one(w, up, "/t")
    # relayed unchanged after the last chunk (issue 9)
    assert st == 200 and rest.endswith(b"0\r\nX-Cost: 3\r\nX-Budget: 9\r\n\r\n"), rest
    assert decode_body(fields, rest) == b"ok"


def test_trailer_limit_follows_max_header_bytes(world, hostile):
    """8 KiB of trailers: fine with the default limit, cut at a 4 KiB one."""
    big = b"".join(b"X-T%d: %s\r\n" % (i, b"v" * 90) for i in range(80))
    reply = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n" + big + b"\r\n")
    w = world
    up = hostile(scripted([reply, reply]))
    w.start(rules=base_rules(w) + [up_rule(up, "pass")])
    st, fields, rest = one(w, up, "/a")
    assert st == 200 and rest.endswith(b"0\r\n" + big + b"\r\n")
    # A second daemon on the same upstream, with a smaller limit.
    w.start(rules=base_rules(w) + [up_rule(up, "pass")], limits={"max_header_bytes": 4096})
    st, fields, rest = one(w, up, "/b")
    assert st == 200 and rest == b"2\r\nok\r\n", rest[-40:]


# --- 3. TRACE -------------------------------------------------------------------

@pytest.mark.parametrize("method", ["TRACE", "TRACK", "trace"])
@pytest.mark.parametrize("which", ["sign", "pass", "unmatched"])
def test_trace_refused_never_signed(world, hostile, method, which):
    w = world
    echo_seen = []

    def echo(s, req):  # an upstream that implements TRACE
        echo_seen.append(req)
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: message/http\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(req), req))
        return False

    up = hostile(echo)
    rules = base_rules(w) + ([up_rule(up, which)] if which != "unmatched" else [])
    w.start(rules=rules, default_action="pass", block_private_addresses=False)
    with RawConn(w.proxy.addr) as c:
        c.send(f"{method} {up.url('/echo')} HTTP/1.1\r\nHost: {up.authority}\r\n"
               "Max-Forwards: 1\r\n\r\n")
        st, hd, body = c.response()
        # The connection stays usable: the next request is served.
        c.send(f"GET {w.resource.url('/next')} HTTP/1.1\r\nHost: {w.resource.authority}\r\n\r\n")
        st2, _, body2 = c.response()
    # Methods are case-sensitive, but servers that upper-case them exist:
    # every spelling is refused.
    assert st == 405, (st, body)
    doc = json.loads(body)
    assert doc["error"] == "method_not_allowed"
    assert method in doc["detail"]
    assert echo_seen == [], "a TRACE reached the upstream"
    assert w.token.encode() not in body
    assert b"Bearer" not in body and b"Signature" not in body
    assert st2 == 200 and json.loads(body2)["verdict"] == "valid"


def test_trace_with_a_body_closes_the_connection(running):
    w = running
    with RawConn(w.proxy.addr) as c:
        c.send(f"TRACE {w.resource.url('/')} HTTP/1.1\r\nHost: {w.resource.authority}\r\n"
               "Content-Length: 5\r\n\r\nhello")
        st, hd, body = c.response()
        assert st == 405
        assert c.closed_by_peer()
    assert w.resource.records() == []


# --- 4. rule hosts in other spellings ------------------------------------------

RULE_SPELLINGS = ["[::ffff:127.0.0.2]", "[::ffff:7f00:2]", "2130706434", "0x7f.0.0.2",
                  "127.2", "127.000.000.002", "0177.0.0.2", "0x7f000002", "127.0.0.2."]


@pytest.mark.parametrize("spelling", RULE_SPELLINGS)
def test_deny_rule_in_any_spelling_is_enforced(world, spelling):
    w = world
    w.start(default_action="pass", block_private_addresses=False,
            rules=[base_rules(w)[0], {"host": spelling, "action": "deny"}])
    for host in ("127.0.0.2", spelling):
        auth = f"{host}:{w.plain.port}"
        got = exchange(w.proxy.addr, f"GET http://{auth}/secret HTTP/1.1\r\nHost: {auth}\r\n"
                                     "Connection: close\r\n\r\n", timeout=8)
        assert statuses(got)[:1] == [403], f"{auth} with a deny rule '{spelling}': {got[:200]!r}"
    assert w.plain.records() == [], "the denied host was reached"
    if spelling != "127.0.0.2.":
        assert any("127.0.0.2" in o["msg"] and "rules[1].host" in o["msg"]
                   for o in w.proxy.log_messages()), \
            "no warning says which address the rule's spelling names"


def test_sign_rule_in_another_spelling_signs_that_address(world):
    """Canonicalised, a sign rule written as a mapped IPv6 address names
    127.0.0.1 and signs for it (and only for it)."""
    w = world
    w.start(rules=[{"host": "[::ffff:7f00:1]", "port": w.resource.port, "action": "sign",
                    "resource": "r"}])
    with RawConn(w.proxy.addr) as c:
        c.send(f"GET {w.resource.url('/x')} HTTP/1.1\r\nHost: {w.resource.authority}\r\n\r\n")
        st, _, body = c.response()
    assert st == 200 and json.loads(body)["verdict"] == "valid", body


# --- also seen: a budget for buffered request bodies ----------------------------

def test_buffered_body_budget_gives_503_then_recovers(world):
    w = world
    w.start(limits={"max_body_bytes": 4 << 20, "max_buffered_bytes": 8 << 20,
                    "idle_timeout_ms": 20000})
    holders = []
    try:
        # Two clients each announce 4 MiB and send all but one byte: the
        # budget is full.
        for i in range(2):
            s = socket.create_connection(w.proxy.addr, timeout=10)
            s.sendall(f"POST {w.resource.url(f'/hold{i}')} HTTP/1.1\r\n"
                      f"Host: {w.resource.authority}\r\nContent-Length: {4 << 20}\r\n\r\n"
                      .encode() + b"x" * ((4 << 20) - 1))
            holders.append(s)
        # A third body does not fit: 503 with Retry-After (once the
        # daemon has read both heads; until then it may still fit).
        third = []

        def refused():
            with RawConn(w.proxy.addr) as c:
                c.send(f"POST {w.resource.url('/third')} HTTP/1.1\r\n"
                       f"Host: {w.resource.authority}\r\n"
                       f"Content-Length: 1000\r\n\r\n" + "y" * 1000)
                third[:] = c.response()
            return third[0] == 503
        wait_until(refused, timeout=10, interval=0.05)
        st, hd, body = third
        assert st == 503, body
        assert re.fullmatch(r"\d+", header(hd, "retry-after") or ""), hd
        assert json.loads(body)["error"] == "too_many_buffered_bytes"
        # A request without a body is still served meanwhile.
        serves(w)
        # The holders finish: their bodies go through, the budget frees.
        for s in holders:
            s.sendall(b"x")
        for s in holders:
            f = s.makefile("rb")
            line = f.readline()
            assert line.startswith(b"HTTP/1.1 200"), line
    finally:
        for s in holders:
            s.close()
    with RawConn(w.proxy.addr) as c:
        c.send(f"POST {w.resource.url('/after')} HTTP/1.1\r\nHost: {w.resource.authority}\r\n"
               f"Content-Length: 1000\r\n\r\n" + "z" * 1000)
        st, _, body = c.response()
    assert st == 200, body
    assert json.loads(body)["verdict"] == "valid"


def test_budget_counts_chunked_bodies(world):
    """3 MiB of an unfinished chunked body and a 2 MiB Content-Length body
    do not fit a 4 MiB budget together: whichever is counted second gets
    503 (which one depends on how far the daemon has read), the other
    goes through. Uncounted chunked bodies would let both through."""
    w = world
    w.start(limits={"max_body_bytes": 4 << 20, "max_buffered_bytes": 4 << 20,
                    "idle_timeout_ms": 20000})
    s = socket.create_connection(w.proxy.addr, timeout=15)
    try:
        s.sendall(f"POST {w.resource.url('/c')} HTTP/1.1\r\nHost: {w.resource.authority}\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n".encode())
        chunk = b"x" * (1 << 20)
        for _ in range(3):
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        with RawConn(w.proxy.addr, timeout=15) as c:
            c.send(f"POST {w.resource.url('/big')} HTTP/1.1\r\n"
                   f"Host: {w.resource.authority}\r\nContent-Length: {2 << 20}\r\n\r\n")
            try:
                c.send("y" * (2 << 20))
            except OSError:
                pass  # refused at its head and closed
            st_big, _, body_big = c.response()
        try:
            s.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # refused mid-body and closed
        st_chunked, _, body_chunked = fhttp.read_response(s.makefile("rb"))
    finally:
        s.close()
    got = sorted([st_big, st_chunked])
    assert got == [200, 503], f"Content-Length body {st_big}, chunked body {st_chunked}"
    refused = body_big if st_big == 503 else body_chunked
    assert json.loads(refused)["error"] == "too_many_buffered_bytes"
    # Both are gone now: the budget is free again.
    with RawConn(w.proxy.addr) as c:
        c.send(f"POST {w.resource.url('/after')} HTTP/1.1\r\nHost: {w.resource.authority}\r\n"
               f"Content-Length: {3 << 20}\r\n\r\n" + "z" * (3 << 20))
        st, _, body = c.response()
    assert st == 200, body


# --- also seen: out of file descriptors says so ------------------------------------

def test_out_of_descriptors_is_503_that_says_so(running):
    import resource as rlim
    from test_proxy_security import fd_count

    w = running
    pid = w.proxy.proc.pid
    with RawConn(w.proxy.addr) as c:
        # The connection is accepted first; then the daemon may open no
        # more descriptors, so the upstream socket cannot be made.
        c.send(f"GET {w.resource.url('/warm')} HTTP/1.1\r\nHost: {w.resource.authority}\r\n\r\n")
        assert c.response()[0] == 200
        old = rlim.prlimit(pid, rlim.RLIMIT_NOFILE)
        rlim.prlimit(pid, rlim.RLIMIT_NOFILE, (fd_count(pid), old[1]))
        try:
            c.send(f"GET {w.plain.url('/x')} HTTP/1.1\r\nHost: {w.plain.authority}\r\n\r\n")
            st, hd, body = c.response()
        finally:
            rlim.prlimit(pid, rlim.RLIMIT_NOFILE, old)
    assert st == 503, body
    doc = json.loads(body)
    assert doc["error"] == "proxy_internal_error"
    assert "open" in doc["detail"] and "LimitNOFILE" in doc["detail"], doc
    assert "connection_refused" not in body.decode()
    assert w.plain.records() == []
    serves(w)
