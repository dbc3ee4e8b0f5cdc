"""Adversarial black-box review of the running daemon: what a
prompt-injected agent (the client) or a hostile upstream would try.

Each test names one protection and fails when it breaks:
  - request smuggling: no framing trick makes an upstream see a request
    the proxy did not parse as one;
  - Connection-header games cannot strip Host, Content-Length or the
    proxy's credentials, and Connection: close is honoured;
  - credentials only ever go to the host and port a sign rule names: not
    to pass or unmatched hosts, not along a redirect, not to another port,
    not to look-alike wildcard names;
  - header injection: CR, LF, NUL in requests, tokens and upstream
    responses never reach the other side; malformed upstream heads become
    502 and leave a clean, unambiguous head for the client;
  - private addresses no rule names are refused in every spelling, and a
    deny rule is not bypassed by another spelling of the same address;
  - resource exhaustion: slowloris, non-reading clients, max_connections,
    clients vanishing mid-transfer;
  - log hygiene: tokens, query values and Authorization values never
    appear in any log line, error paths included.
Everything runs on loopback with bounded timeouts.
"""

import io
import json
import os
import re
import secrets
import socket
import struct
import threading
import time

import pytest

from fakes import http as fhttp
from fakes.daemon import (RawConn, fd_count, header, hold_connections, rss_growth_during, rss_mib,  # noqa: F401
                          unread_by_peer, wait_until)
from fakes.hostile import endless_body, endless_headers, raw_reply

SANITIZER = bool(os.environ.get("AAUTH_SANITIZER"))
TOKEN_RE = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
OWNED = ("authorization", "signature", "signature-input", "signature-key",
         "content-digest", "agent-auth")


# --- helpers ---------------------------------------------------------------

def base_rules(w):
    return [
        {"host": "127.0.0.1", "port": w.resource.port, "action": "sign", "resource": "r"},
        {"host": "127.0.0.2", "port": w.plain.port, "action": "pass"},
    ]


def exchange(addr, data, timeout=10.0, idle=None):
    """Send data on a fresh connection and read until the proxy closes it,
    the overall timeout passes, or (with idle) nothing arrives for idle
    seconds. Returns every byte received."""
    if isinstance(data, str):
        data = data.encode("latin-1")
    s = socket.create_connection(addr, timeout=timeout)
    out = bytearray()
    try:
        s.sendall(data)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(min(left, idle) if idle else left)
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not d:
                break
            out += d
    finally:
        s.close()
    return bytes(out)


def responses_in(data):
    """Every complete response in a byte string (status, headers, body)."""
    f = io.BufferedReader(io.BytesIO(data))
    out = []
    while True:
        try:
            out.append(fhttp.read_response(f))
        except (EOFError, ValueError, IndexError, fhttp.BadRequest):
            return out


def statuses(data):
    return [st for st, _, _ in responses_in(data)]


def split_head(raw):
    i = raw.find(b"\r\n\r\n")
    assert i >= 0, f"no complete response head: {raw[:300]!r}"
    lines = raw[:i].split(b"\r\n")
    return lines[0], lines[1:], raw[i + 4:]


def assert_clean_head(raw):
    """The head the client gets is well-formed and its framing is
    unambiguous: CRLF lines only, token names, no control bytes, at most
    one framing field and that one canonical. Returns (status, {name:
    [values]}, rest-after-head)."""
    status_line, lines, rest = split_head(raw)
    assert re.fullmatch(rb"HTTP/1\.1 [1-5]\d\d( [\t\x20-\x7e\x80-\xff]*)?", status_line), \
        f"malformed status line sent to the client: {status_line!r}"
    fields = {}
    for ln in lines:
        name, sep, value = ln.partition(b":")
        assert sep and TOKEN_RE.match(name), f"header line with a bad name sent: {ln!r}"
        assert re.fullmatch(rb"[\t\x20-\x7e\x80-\xff]*", value), \
            f"control byte in a header value sent: {ln!r}"
        fields.setdefault(name.decode().lower(), []).append(value.strip(b" \t").decode("latin-1"))
    cl = fields.get("content-length", [])
    te = fields.get("transfer-encoding", [])
    assert not (cl and te), f"both Content-Length {cl} and Transfer-Encoding {te} sent"
    assert len(cl) <= 1, f"Content-Length sent {len(cl)} times: {cl}"
    if cl:
        assert re.fullmatch(r"[0-9]+", cl[0]), f"non-canonical Content-Length sent: {cl[0]!r}"
    if te:
        assert [t.lower() for t in te] == ["chunked"], f"Transfer-Encoding sent: {te}"
    return int(status_line.split()[1]), fields, rest


def decode_body(fields, rest):
    """The body as the client would frame it from the (clean) head."""
    if fields.get("transfer-encoding"):
        return fhttp.read_chunked(io.BufferedReader(io.BytesIO(rest)))
    if fields.get("content-length"):
        n = int(fields["content-length"][0])
        assert len(rest) >= n, f"body shorter than Content-Length: {len(rest)} < {n}"
        return rest[:n]
    return rest


def serves(w, path="/still-alive"):
    """The daemon is alive and still signs a normal request correctly."""
    assert w.proxy.alive(), "the daemon died:\n" + w.proxy.stderr_text()[-3000:]
    with RawConn(w.proxy.addr) as c:
        c.send(f"GET {w.resource.url(path)} HTTP/1.1\r\nHost: {w.resource.authority}\r\n"
               "Connection: close\r\n\r\n")
        st, _, body = c.response()
    assert st == 200, body
    assert json.loads(body)["verdict"] == "valid", body


def get(url, extra="", method="GET", close=True):
    from urllib.parse import urlsplit
    u = urlsplit(url)
    return (f"{method} {url} HTTP/1.1\r\nHost: {u.netloc}\r\n{extra}"
            + ("Connection: close\r\n" if close else "") + "\r\n")


# --- 1. request smuggling --------------------------------------------------

# (version, header lines, body, must_reject). The body, when the proxy
# frames it as the fields say, is "hello"; every payload is followed by an
# origin-form request for /smuggled, which the proxy itself would refuse
# (400, not a proxy request): if /smuggled ever reaches the upstream, the
# proxy and the upstream disagreed about where a request ends.
CHUNKED_HELLO = "5\r\nhello\r\n0\r\n\r\n"
SMUGGLE = {
    "cl_then_te": ("1.1", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "hello", True),
    "te_then_cl": ("1.1", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                   CHUNKED_HELLO, True),
    "te_trailing_space": ("1.1", "Transfer-Encoding: chunked \r\n", CHUNKED_HELLO, False),
    "te_tab_ows": ("1.1", "Transfer-Encoding:\tchunked\t\r\n", CHUNKED_HELLO, False),
    "te_upper": ("1.1", "Transfer-Encoding: CHUNKED\r\n", CHUNKED_HELLO, False),
    "te_xchunked": ("1.1", "Transfer-Encoding: xchunked\r\n", CHUNKED_HELLO, True),
    "te_xchunked_and_cl": ("1.1", "Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n",
                           "hello", True),
    "te_vtab": ("1.1", "Transfer-Encoding: chunked\x0b\r\n", CHUNKED_HELLO, True),
    "te_formfeed_and_cl": ("1.1", "Content-Length: 5\r\nTransfer-Encoding:\x0cchunked\r\n",
                           "hello", True),
    "te_nul": ("1.1", "Transfer-Encoding: chunked\x00\r\n", CHUNKED_HELLO, True),
    "te_two_lines": ("1.1", "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
                     CHUNKED_HELLO, True),
    "te_chunked_twice": ("1.1", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                         CHUNKED_HELLO, True),
    "te_identity_chunked": ("1.1", "Transfer-Encoding: identity, chunked\r\n", CHUNKED_HELLO,
                            True),
    "te_space_before_colon": ("1.1", "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n",
                              "hello", True),
    "te_obs_fold": ("1.1", "Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n", "hello",
                    True),
    "te_quoted": ("1.1", 'Transfer-Encoding: "chunked"\r\n', CHUNKED_HELLO, True),
    "te_in_http10": ("1.0", "Transfer-Encoding: chunked\r\n", CHUNKED_HELLO, True),
    "cl_duplicate_same": ("1.1", "Content-Length: 5\r\nContent-Length: 5\r\n", "hello", None),
    "cl_duplicate_diff": ("1.1", "Content-Length: 5\r\nContent-Length: 50\r\n", "hello", True),
    "cl_list": ("1.1", "Content-Length: 5, 5\r\n", "hello", None),
    "cl_plus": ("1.1", "Content-Length: +5\r\n", "hello", True),
    "cl_minus": ("1.1", "Content-Length: -5\r\n", "hello", True),
    "cl_hex": ("1.1", "Content-Length: 0x5\r\n", "hello", True),
    "cl_inner_space": ("1.1", "Content-Length: 0 5\r\n", "hello", True),
    "cl_leading_zeros": ("1.1", "Content-Length: 0005\r\n", "hello", None),
    "cl_overflow": ("1.1", "Content-Length: 18446744073709551621\r\n", "hello", True),
    "chunk_size_0x": ("1.1", "Transfer-Encoding: chunked\r\n", "0x5\r\nhello\r\n0\r\n\r\n", True),
    "chunk_size_space": ("1.1", "Transfer-Encoding: chunked\r\n", " 5\r\nhello\r\n0\r\n\r\n",
                         True),
    "chunk_size_plus": ("1.1", "Transfer-Encoding: chunked\r\n", "+5\r\nhello\r\n0\r\n\r\n",
                        True),
    "chunk_bare_lf": ("1.1", "Transfer-Encoding: chunked\r\n", "5\nhello\n0\n\n", True),
    "chunk_too_long": ("1.1", "Transfer-Encoding: chunked\r\n", "3\r\nhello\r\n0\r\n\r\n", True),
    "chunk_ext_crlf_in_quotes": ("1.1", "Transfer-Encoding: chunked\r\n",
                                 '5;x="a\r\n0\r\n\r\n"\r\nhello\r\n0\r\n\r\n', True),
    "chunk_trailer_smuggles_cl": ("1.1", "Transfer-Encoding: chunked\r\n",
                                  "5\r\nhello\r\n0\r\nContent-Length: 80\r\n\r\n", None),
}


@pytest.mark.parametrize("case", sorted(SMUGGLE))
def test_request_framing_tricks_never_desync_the_upstream(running, case):
    w = running
    version, fields, body, must_reject = SMUGGLE[case]
    target = w.plain.url("/a")
    tail = f"GET /smuggled HTTP/1.1\r\nHost: {w.plain.authority}\r\n\r\n"
    req = (f"POST {target} HTTP/{version}\r\nHost: {w.plain.authority}\r\n{fields}\r\n"
           f"{body}{tail}")
    got = exchange(w.proxy.addr, req, timeout=6, idle=3)
    sts = statuses(got)
    assert sts, f"no response at all: {got[:300]!r}"
    # An absence can only be watched for a while: a grace period that
    # ends early if it does show up.
    wait_until(lambda: [r for r in w.plain.records() if "smuggled" in r.target], 0.3)
    recs = w.plain.records()
    assert not [r for r in recs if "smuggled" in r.target], \
        f"the upstream saw a request the proxy never parsed: {recs}"
    assert not w.plain.malformed, f"the proxy sent the upstream a malformed request: " \
                                  f"{w.plain.malformed}"
    if must_reject:
        assert sts[0] in (400, 501), \
            f"{case}: ambiguous framing accepted with {sts[0]}: {got[:400]!r}"
        assert recs == [], f"{case}: a rejected request reached the upstream: {recs}"
    else:
        assert sts[0] in (200, 400, 501), got[:400]
    for r in recs:
        # Whatever went out was one POST /a whose body the proxy framed
        # with an exact Content-Length: "hello", nothing of the tail.
        assert (r.method, r.path) == ("POST", "/a"), r
        assert r.framing == "length" and r.get("content-length") == "5", r.raw_head
        assert r.body_len == 5, r
    assert len(recs) <= 1, recs
    serves(w)


def test_request_hidden_in_a_body_stays_body(running):
    """A body that looks like a second request is forwarded as body bytes,
    with a Content-Length that covers it, inside the signature."""
    w = running
    hidden = (f"GET {w.plain.url('/smuggled')} HTTP/1.1\r\nHost: {w.plain.authority}\r\n\r\n"
              f"GET /smuggled2 HTTP/1.1\r\nHost: {w.resource.authority}\r\n\r\n").encode()
    with RawConn(w.proxy.addr) as c:
        c.send(f"POST {w.resource.url('/echo')} HTTP/1.1\r\nHost: {w.resource.authority}\r\n"
               f"Content-Type: text/plain\r\nContent-Length: {len(hidden)}\r\n\r\n".encode()
               + hidden)
        st, _, body = c.response()
        assert st == 200 and body == hidden, (st, body[:200])
        c.send(get(w.resource.url("/after")))
        st, _, _ = c.response()
        assert st == 200
    recs = w.resource.records()
    assert [(r.method, r.path) for r in recs] == [("POST", "/echo"), ("GET", "/after")], recs
    assert all(r.verdict == "valid" for r in recs), recs
    assert recs[0].body_len == len(hidden)
    assert w.plain.records() == [], "a request hidden in a body reached another host"


def test_pipelined_request_to_a_denied_host_is_routed_on_its_own(world):
    """Two requests in one write: the second, to a denied host, is parsed
    and routed by itself (403) and never rides along with the first."""
    w = world
    w.start(rules=[base_rules(w)[0],
                   {"host": "127.0.0.2", "port": w.plain.port, "action": "deny"}])
    first = (f"POST {w.resource.url('/echo')} HTTP/1.1\r\nHost: {w.resource.authority}\r\n"
             "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
    second = get(w.plain.url("/denied"))
    got = exchange(w.proxy.addr, first + second, timeout=8)
    rs = responses_in(got)
    assert [st for st, _, _ in rs] == [200, 403], got[:600]
    assert rs[0][2] == b"hello"
    assert w.plain.records() == []
    assert [r.path for r in w.resource.records()] == ["/echo"]


# --- 2. Connection header games ----------------------------------------------

def test_connection_cannot_strip_host_length_or_credentials(running):
    w = running
    body = b'{"k": "payload"}'
    names = "host, content-length, authorization, content-digest, signature, " \
            "signature-input, content-type"
    with RawConn(w.proxy.addr) as c:
        c.send(f"POST {w.resource.url('/echo?x=1')} HTTP/1.1\r\nHost: {w.resource.authority}\r\n"
               f"Connection: {names}\r\nAuthorization: Bearer client-forged\r\n"
               f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        st, _, got = c.response()
    assert st == 200, got
    assert got == body
    rec = w.resource.records()[-1]
    assert rec.verdict == "valid", rec.reason
    assert rec.get_all("host") == [w.resource.authority]
    assert rec.get_all("content-length") == [str(len(body))]
    assert rec.get_all("authorization") == [f"Bearer {w.token}"]
    assert len(rec.get_all("signature")) == 1 and len(rec.get_all("signature-input")) == 1
    assert len(rec.get_all("content-digest")) == 1
    assert "connection" not in rec.header_names()


def test_connection_cannot_strip_host_or_length_on_pass(running):
    w = running
    with RawConn(w.proxy.addr) as c:
        c.send(f"POST {w.plain.url('/echo')} HTTP/1.1\r\nHost: {w.plain.authority}\r\n"
               "Connection: host, content-length, x-drop\r\nX-Drop: 1\r\n"
               "Content-Length: 7\r\n\r\npayload")
        st, _, got = c.response()
    assert st == 200 and got == b"payload", (st, got)
    rec = w.plain.records()[-1]
    assert rec.get_all("host") == [w.plain.authority]
    assert rec.get_all("content-length") == ["7"] and rec.body_len == 7
    assert rec.get_all("x-drop") == [], "a field named by Connection was forwarded"


@pytest.mark.parametrize("value", ["close", "Close", "keep-alive, close", "x-foo,close"])
def test_connection_close_honoured(running, value):
    """After a response to Connection: close nothing more is read: a
    pipelined second request is neither answered nor forwarded."""
    w = running
    data = get(w.resource.url("/first"), extra=f"Connection: {value}\r\n", close=False) \
        + get(w.resource.url("/second"), close=False)
    got = exchange(w.proxy.addr, data, timeout=8)
    rs = responses_in(got)
    assert [st for st, _, _ in rs] == [200], got[:600]
    assert header(rs[0][1], "connection") == "close"
    # An absence can only be watched for a while: a grace period that
    # ends early if it does show up.
    wait_until(lambda: len(w.resource.records()) > 1, 0.3)
    assert [r.path for r in w.resource.records()] == ["/first"]


# --- 3. credentials go only where a sign rule says --------------------------

def assert_no_proxy_credentials(rec, w, client_auth=None):
    raw = rec.raw_head.decode("latin-1")
    assert w.token not in raw, f"the proxy's token went to {rec}"
    for name in OWNED:
        vals = rec.get_all(name)
        if name == "authorization" and client_auth is not None:
            assert vals == [client_auth], vals
        else:
            assert vals == [], f"{name} was added for a host no sign rule names: {vals}"
    assert rec.get_all("proxy-authorization") == [], "Proxy-Authorization forwarded"


def test_pass_and_unmatched_hosts_get_no_credentials(world, extra_server):
    w = world
    other = extra_server("127.0.0.3")
    w.start(default_action="pass", block_private_addresses=False)
    for srv in (w.plain, other):
        with RawConn(w.proxy.addr) as c:
            c.send(f"POST {srv.url('/x?a=1')} HTTP/1.1\r\nHost: {srv.authority}\r\n"
                   "Authorization: Bearer clients-own\r\n"
                   "Proxy-Authorization: Basic cHJveHk6cHc=\r\n"
                   "Content-Length: 4\r\n\r\nbody")
            st, _, body = c.response()
        assert st == 200, body
        with RawConn(w.proxy.addr) as c:
            c.send(get(srv.url("/y")))
            st, _, body = c.response()
        assert st == 200, body
        recs = srv.records()
        assert len(recs) == 2, recs
        assert_no_proxy_credentials(recs[0], w, client_auth="Bearer clients-own")
        assert_no_proxy_credentials(recs[1], w)
    serves(w)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_from_signed_upstream_not_followed(world, hostile, status):
    w = world
    steal = w.plain.url("/steal")
    up = hostile(raw_reply(f"HTTP/1.1 {status} Moved\r\nLocation: {steal}\r\n"
                           "Content-Length: 0\r\n\r\n"))
    w.start(rules=base_rules(w) + [
        {"host": "127.0.0.1", "port": up.port, "action": "sign", "resource": "r"}])
    got = exchange(w.proxy.addr, get(up.url("/login"), method="POST",
                                     extra="Content-Length: 3\r\n") + "abc", timeout=8)
    st, fields, _ = assert_clean_head(got)
    assert st == status, got[:300]
    assert fields.get("location") == [steal]
    # An absence can only be watched for a while: a grace period that
    # ends early if it does show up.
    wait_until(w.plain.records, 0.5)
    assert w.plain.records() == [], "the proxy followed a redirect with the agent's credentials"
    assert len(up.records()) == 1
    assert f"Bearer {w.token}".encode() in up.records()[0], "the sign rule did not sign"


@pytest.mark.parametrize("fallback", ["pass_rule", "default_pass"])
def test_sign_rule_port_restriction(world, extra_server, fallback):
    """A sign rule with a port signs only that port: the same host on
    another port gets nothing, whether another rule or the default
    passes it."""
    w = world
    other = extra_server("127.0.0.1")
    if fallback == "pass_rule":
        w.start(rules=base_rules(w) + [{"host": "127.0.0.1", "action": "pass"}])
    else:
        w.start(default_action="pass", block_private_addresses=False)
    with RawConn(w.proxy.addr) as c:
        c.send(get(other.url("/other-port")))
        st, _, body = c.response()
    assert st == 200, body
    assert_no_proxy_credentials(other.records()[0], w)
    serves(w)


WILDCARD_HOSTS = {
    # host → matches "*.example.test"
    "a.example.test": True,
    "a.b.example.test": True,
    "A.EXAMPLE.TEST": True,
    "a.example.test.": True,
    "example.test": False,
    "evilexample.test": False,
    "example.test.evil": False,
    "a.example.test.evil": False,
    "a.example.testx": False,
    "a-example.test": False,
    "xexample.test": False,
    "a.example.t%65st": False,
    "a.example%2etest": False,
}


@pytest.mark.parametrize("host", sorted(WILDCARD_HOSTS))
def test_wildcard_rule_matches_only_subdomains(world, token_file, host):
    """Routing decision seen from outside: the wildcard sign rule's
    resource has no token, so a match answers 503 token_unavailable before
    any upstream is dialled; anything else falls to default deny (403) or
    is malformed (400)."""
    w = world
    w.start(resources={"w": {"token_file": str(token_file("w", "x")) + ".missing"}},
            rules=[{"host": "*.example.test", "action": "sign", "resource": "w"},
                   base_rules(w)[0]])
    got = exchange(w.proxy.addr, get(f"http://{host}/p"), timeout=8)
    st = statuses(got)[0]
    if WILDCARD_HOSTS[host]:
        assert st == 503 and b"token_unavailable" in got, got[:300]
    else:
        assert st in (403, 400), f"{host} was routed to the *.example.test sign rule: {got[:300]!r}"


# --- 4. header injection ----------------------------------------------------

INJECT = {
    "cr_in_value": "X-A: a\rX-Injected: 1\r\n",
    "lf_in_value": "X-A: a\nX-Injected: 1\r\n",
    "nul_in_value": "X-A: a\x00b\r\n",
    "del_in_value": "X-A: a\x7fb\r\n",
    "esc_in_value": "X-A: a\x1b[2Jb\r\n",
    "cr_in_name": "X-A\r: 1\r\n",
    "nul_in_authorization": "Authorization: Bearer a\x00b\r\n",
    "cr_crlf_in_target": None,  # built below
    "nul_in_target": None,
    "space_in_target": None,
    "userinfo_in_target": None,
}


@pytest.mark.parametrize("case", sorted(INJECT))
def test_request_injection_rejected(running, case):
    w = running
    target = w.plain.url("/t")
    fields = INJECT[case] or ""
    if case == "cr_crlf_in_target":
        target += "\rX-Injected: 1"
    elif case == "nul_in_target":
        target += "\x00x"
    elif case == "space_in_target":
        target += " X-Injected: 1"
    elif case == "userinfo_in_target":
        target = f"http://user:pw@{w.plain.authority}/t"
    req = f"GET {target} HTTP/1.1\r\nHost: {w.plain.authority}\r\n{fields}\r\n"
    with RawConn(w.proxy.addr) as c:
        c.send(req)
        st, hd, body = c.response()
        assert st == 400, (st, body)
        assert header(hd, "content-type").startswith("application/json")
        assert c.closed_by_peer(5)
    # An absence can only be watched for a while: a grace period that
    # ends early if it does show up.
    wait_until(w.plain.records, 0.2)
    assert w.plain.records() == [], "an injected request reached the upstream"
    serves(w)


def test_percent_encoded_crlf_in_target_goes_out_verbatim(running):
    """%0d%0a stays three-byte escapes: nothing decodes it into a line."""
    w = running
    with RawConn(w.proxy.addr) as c:
        c.send(get(w.resource.url("/a%0d%0aX-Injected:%201?q=%0d%0a")))
        st, _, body = c.response()
    assert st == 200, body
    rec = w.resource.records()[-1]
    assert rec.target == "/a%0d%0aX-Injected:%201?q=%0d%0a"
    assert "x-injected" not in rec.header_names()
    assert rec.verdict == "valid", rec.reason


@pytest.mark.parametrize("bad", ["tok\r\nX-Injected: evil", "tok\nX-Injected: evil",
                                 "tok\rX-Injected", "tok\x00evil", "tok en", "tok\tx", "tok\u00e9",
                                 "tok\x7f"])
def test_token_with_control_bytes_never_sent(world, bad):
    w = world
    w.start()
    w._token_file("r", bad)  # the resource keeps expecting the good token
    with RawConn(w.proxy.addr) as c:
        c.send(get(w.resource.url("/t")))
        st, hd, body = c.response()
    assert st == 503, (st, body)
    assert json.loads(body)["error"] == "token_unavailable"
    assert w.resource.records() == [], "a request with a broken token was sent"
    w.set_token(w.token)  # a good token again: the same daemon signs
    serves(w)


# Hostile upstream heads. (bytes, body the client must get when the proxy
# relays instead of answering 502). Every case: the head the client gets is
# clean and unambiguous, and the daemon lives on.
HOSTILE_HEADS = {
    "bare_lf_lines": (b"HTTP/1.1 200 OK\nX-A: 1\nContent-Length: 2\n\nok", b"ok"),
    "bare_cr_in_value": (b"HTTP/1.1 200 OK\r\nX-A: a\rSet-Cookie: evil=1\r\n"
                         b"Content-Length: 2\r\n\r\nok", b"ok"),
    "bare_cr_in_reason": (b"HTTP/1.1 200 OK\rSet-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok",
                          b"ok"),
    "ctl_in_reason": (b"HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\n\r\nok", b"ok"),
    "ctl_in_value": (b"HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 2\r\n\r\nok", b"ok"),
    "nul_in_value": (b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok", b"ok"),
    "space_in_name": (b"HTTP/1.1 200 OK\r\nX Bad: 1\r\nContent-Length: 2\r\n\r\nok", b"ok"),
    "cl_space_before_colon": (b"HTTP/1.1 200 OK\r\nContent-Length : 5\r\nConnection: close\r\n"
                              b"\r\nhello", b"hello"),
    "te_space_before_colon": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n"
                              b"Content-Length: 5\r\n\r\nhello", b"hello"),
    "cl_twice_different": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 27\r\n\r\n"
                           b"okHTTP/1.1 200 OK\r\nX: y\r\n\r\n", None),
    "cl_plus": (b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", b"ok"),
    "cl_list": (b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok", b"ok"),
    "cl_and_te": (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"2\r\nok\r\n0\r\n\r\n", b"ok"),
    "te_and_cl_close": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n"
                        b"Connection: close\r\n\r\n2\r\nok\r\n0\r\n\r\n", b"ok"),
    "connection_names_cl": (b"HTTP/1.1 200 OK\r\nConnection: content-length\r\n"
                            b"Content-Length: 2\r\n\r\nok", b"ok"),
    "obs_fold": (b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok", b"ok"),
    "status_four_digits": (b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok", b"ok"),
    "status_two_digits": (b"HTTP/1.1 99 OK\r\nContent-Length: 2\r\n\r\nok", b"ok"),
    "status_line_junk": (b"FOO BAR BAZ\r\nContent-Length: 2\r\n\r\nok", None),
    "http09": (b"ok", None),
    "nothing": (b"", None),
    "head_cut_off": (b"HTTP/1.1 200 OK\r\nContent-Le", None),
    "unrequested_101": (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\n"
                        b"Connection: upgrade\r\n\r\n"
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                        b"ok"),
    "header_line_too_long": (b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 200000 +
                             b"\r\nContent-Length: 2\r\n\r\nok", b"ok"),
    "reason_too_long": (b"HTTP/1.1 200 " + b"R" * 200000 + b"\r\nContent-Length: 2\r\n\r\nok",
                        b"ok"),
    "hop_by_hop_from_upstream": (b"HTTP/1.1 200 OK\r\nConnection: x-secret, keep-alive\r\n"
                                 b"X-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\n"
                                 b"Upgrade: h2c\r\nTrailer: X-T\r\nContent-Length: 2\r\n\r\nok",
                                 b"ok"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_HEADS))
def test_hostile_upstream_head_never_reaches_client_ambiguous(world, hostile, case):
    w = world
    raw, want = HOSTILE_HEADS[case]
    up = hostile(raw_reply(raw))
    w.start(rules=base_rules(w) + [{"host": "127.0.0.1", "port": up.port, "action": "pass"}],
            upstream={"idle_timeout_ms": 2000})
    got = exchange(w.proxy.addr, get(up.url("/h")), timeout=10)
    st, fields, rest = assert_clean_head(got)
    if st == 502:
        assert fields.get("proxy-status"), "a 502 without Proxy-Status"
    else:
        assert st == 200, got[:300]
        assert want is not None, f"{case}: relayed instead of 502: {got[:300]!r}"
        assert decode_body(fields, rest) == want
        for hop in ("x-secret", "keep-alive", "proxy-connection", "upgrade", "trailer"):
            assert hop not in fields, f"hop-by-hop {hop} relayed"
    serves(w)


def test_endless_upstream_head_is_502_with_bounded_memory(world, hostile):
    w = world
    up = hostile(endless_headers(limit=64 << 20))
    w.start(rules=base_rules(w) + [{"host": "127.0.0.1", "port": up.port, "action": "pass"}],
            upstream={"idle_timeout_ms": 3000})
    got, grew = rss_growth_during(w.proxy.proc.pid,
                                  lambda: exchange(w.proxy.addr, get(up.url("/endless")), timeout=20))
    st, fields, _ = assert_clean_head(got)
    assert st == 502, got[:300]
    assert grew < 32, f"RSS grew {grew:.0f} MiB on an endless upstream head"
    serves(w)


def test_interim_response_flood_bounded(world, hostile):
    """An upstream that answers with 1xx responses forever: 502 or a
    timeout, never unbounded memory, and the daemon lives on."""

    def flood(s, req):
        blk = b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n" * 1024
        for _ in range(1024):  # ~50 MiB
            s.sendall(blk)
        return False

    w = world
    up = hostile(flood)
    w.start(rules=base_rules(w) + [{"host": "127.0.0.1", "port": up.port, "action": "pass"}],
            upstream={"idle_timeout_ms": 2000})
    base = rss_mib(w.proxy.proc.pid)
    got = exchange(w.proxy.addr, get(up.url("/hints")), timeout=30)
    st, _, _ = assert_clean_head(got)
    assert st in (502, 504), got[:300]
    assert rss_mib(w.proxy.proc.pid) - base < 32
    serves(w)


# --- 5. private addresses ----------------------------------------------------

def ipv6_loopback_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class V6Listener:
    """Counts connections on [::1]:port (proves 'never reached')."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.sock.bind(("::1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
                self.accepted += 1
                c.close()
            except (socket.timeout, OSError):
                pass

    def close(self):
        self._stop = True
        self.t.join(2)
        self.sock.close()


def private_spellings(port):
    """Hosts that all mean a loopback, private or link-local address."""
    return [
        f"127.0.0.3:{port}", f"localhost:{port}", f"LocalHost.:{port}",
        f"2130706435:{port}", f"0x7f.0.0.3:{port}", f"0x7f000003:{port}",
        f"0177.0.0.3:{port}", f"127.3:{port}", f"127.0.3:{port}", f"127.000.000.003:{port}",
        f"127.0.0.%33:{port}", f"[::ffff:127.0.0.3]:{port}", f"[::ffff:7f00:3]:{port}",
        f"[0:0:0:0:0:ffff:127.0.0.3]:{port}", f"[::127.0.0.3]:{port}", f"[64:ff9b::7f00:3]:{port}",
        f"0.0.0.0:{port}", f"0:{port}", f"[::]:{port}",
        "169.254.169.254", f"169.254.169.254:{port}", "[::ffff:169.254.169.254]",
        "[fe80::1]", "[fd00::1]", "10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1",
    ]


def test_private_addresses_refused_in_every_spelling(world, extra_server):
    w = world
    victim = extra_server("127.0.0.3")
    w.start(default_action="pass", block_private_addresses=True,
            upstream={"connect_timeout_ms": 2000})
    v6 = V6Listener() if ipv6_loopback_available() else None
    hosts = private_spellings(victim.port)
    if v6:
        hosts += [f"[::1]:{v6.port}", f"[0:0::1]:{v6.port}", f"localhost:{v6.port}"]
    try:
        bad = []
        for h in hosts:
            t0 = time.monotonic()
            got = exchange(w.proxy.addr, f"GET http://{h}/meta?x=1 HTTP/1.1\r\nHost: {h}\r\n"
                                         "Connection: close\r\n\r\n", timeout=8)
            sts = statuses(got)
            took = time.monotonic() - t0
            # 502 only when the name does not resolve at all (never reached)
            unresolved = sts[:1] == [502] and b"dns_error" in got
            if not unresolved and (not sts or sts[0] not in (400, 403)):
                bad.append((h, sts, got[:200]))
            elif sts[0] == 403:
                assert b"destination_ip_prohibited" in got or b"denied" in got, got[:300]
            assert took < 5, f"{h}: answered after {took:.1f}s"
        assert bad == [], f"private destinations not refused: {bad}"
        assert victim.records() == [], f"a private address was reached: {victim.records()}"
        if v6:
            assert v6.accepted == 0, "[::1] was connected to"
    finally:
        if v6:
            v6.close()
    # Hosts a rule names stay reachable through the same daemon.
    with RawConn(w.proxy.addr) as c:
        c.send(get(w.plain.url("/named")))
        assert c.response()[0] == 200
    serves(w)


def test_named_host_on_another_port_is_still_private(world, extra_server):
    """A pass rule for 127.0.0.2:P does not open 127.0.0.2:Q."""
    w = world
    other = extra_server("127.0.0.2")
    w.start(default_action="pass", block_private_addresses=True)
    got = exchange(w.proxy.addr, get(other.url("/q")), timeout=8)
    assert statuses(got)[:1] == [403], got[:300]
    assert other.records() == []


DENY_SPELLINGS = ["127.0.0.2", "127.0.0.2.", "2130706434", "0x7f.0.0.2",
                  "0x7f000002", "0177.0.0.2", "127.2", "127.000.000.002", "127.0.0.%32",
                  "[::ffff:127.0.0.2]", "[::ffff:7f00:2]"]


@pytest.mark.parametrize("spelling", DENY_SPELLINGS)
def test_deny_rule_not_bypassed_by_another_spelling(world, spelling):
    """A deny rule for an address holds however the agent writes that
    address (block_private_addresses off, so only the rule stands between
    the agent and the host, as it would for a public address)."""
    w = world
    w.start(default_action="pass", block_private_addresses=False,
            rules=[base_rules(w)[0], {"host": "127.0.0.2", "action": "deny"}])
    host = f"{spelling}:{w.plain.port}"
    got = exchange(w.proxy.addr, f"GET http://{host}/secret HTTP/1.1\r\nHost: {host}\r\n"
                                 "Connection: close\r\n\r\n", timeout=8)
    sts = statuses(got)
    assert sts and sts[0] in (400, 403), f"http://{host}/ got {sts}: {got[:200]!r}"
    assert w.plain.records() == [], f"the denied host was reached as http://{host}/"


# --- 6. resource exhaustion --------------------------------------------------

def test_many_slowloris_clients_do_not_block_a_fast_one(world):
    w = world
    w.start(limits={"header_timeout_ms": 2000})
    n = 150
    slow = []
    for _ in range(n):
        s = socket.create_connection(w.proxy.addr, timeout=5)
        s.sendall(f"GET {w.resource.url('/slow')} HTTP/1.1\r\n".encode())
        slow.append(s)
    stop = threading.Event()

    def drip():
        i = 0
        while not stop.is_set():
            for s in slow:
                try:
                    s.send(f"X-{i}: y\r\n".encode())
                except OSError:
                    pass
            i += 1
            stop.wait(0.25)

    t = threading.Thread(target=drip, daemon=True)
    t.start()
    try:
        times = []
        for i in range(8):
            t0 = time.monotonic()
            with RawConn(w.proxy.addr, timeout=5) as c:
                c.send(get(w.resource.url(f"/fast{i}")))
                st, _, _ = c.response()
            times.append(time.monotonic() - t0)
            assert st == 200
        assert max(times) < (2.0 if SANITIZER else 1.0), times
        # The dripping clients are cut off at header_timeout_ms.
        deadline = time.monotonic() + 8
        closed = 0
        for s in slow:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                while s.recv(65536):
                    pass
                closed += 1
            except (socket.timeout, OSError) as e:
                if not isinstance(e, socket.timeout):
                    closed += 1
        assert closed == n, f"only {closed} of {n} slowloris clients were cut off"
    finally:
        stop.set()
        t.join(2)
        for s in slow:
            s.close()
    assert not [r for r in w.resource.records() if r.path == "/slow"]
    serves(w)


def test_non_reading_client_does_not_make_the_proxy_buffer(world, hostile):
    total = 200 << 20
    handler = endless_body(total)
    w = world
    up = hostile(handler)
    w.start(rules=base_rules(w) + [{"host": "127.0.0.1", "port": up.port, "action": "pass"}],
            limits={"idle_timeout_ms": 60000})
    pid = w.proxy.proc.pid
    base = rss_mib(pid)
    s = socket.create_connection(w.proxy.addr, timeout=30)
    try:
        s.sendall(get(up.url("/big"), close=False).encode())
        peak = base
        # 4 s of not reading (a client that stalls for a while: the time is
        # the point), sampling the daemon's RSS meanwhile.
        for _ in range(40):
            time.sleep(0.1)
            peak = max(peak, rss_mib(pid))
        stalled_at = handler.sent
        assert stalled_at < 64 << 20, \
            f"the proxy took {stalled_at >> 20} MiB from upstream for a client that reads nothing"
        assert peak - base < 32, f"RSS grew {peak - base:.0f} MiB (from {base:.0f})"
        if not SANITIZER:
            assert peak < 64, f"RSS {peak:.0f} MiB"
        # Now read it all: intact and complete.
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            assert d, "closed before the head"
            buf += d
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        assert b"Content-Length: %d" % total in head, head
        got = len(rest)
        first = rest[:4096]
        deadline = time.monotonic() + 120
        while got < total and time.monotonic() < deadline:
            d = s.recv(1 << 20)
            if not d:
                break
            got += len(d)
            peak = max(peak, rss_mib(pid)) if got % (16 << 20) < (1 << 20) else peak
        assert got == total, f"received {got} of {total} bytes"
        assert first == handler.block[:len(first)]
        if not SANITIZER:
            # (ASan's quarantine keeps up to 256 MiB of freed buffers.)
            assert peak - base < 32, f"RSS grew {peak - base:.0f} MiB while streaming"
    finally:
        s.close()
    serves(w)


def test_max_connections_refuses_then_recovers(world):
    w = world
    w.start(limits={"max_connections": 4})
    held = hold_connections(w.proxy, 4)  # accepted, nothing sent
    try:
        with RawConn(w.proxy.addr, timeout=5) as c:
            st, hd, body = c.response()
            assert st == 503, body
            assert json.loads(body)["error"] == "too_many_connections"
            assert header(hd, "connection") == "close"
            assert c.closed_by_peer(5)
        # The held connections were not disturbed.
        held[1].send(get(w.resource.url("/held"), close=False))
        assert held[1].response()[0] == 200
        held[0].close()

        def after_free():
            with RawConn(w.proxy.addr, timeout=5) as c:
                c.send(get(w.resource.url("/after-free")))
                return c.response()[0] == 200
        assert wait_until(after_free, timeout=5), "a freed slot was never reused"
    finally:
        for h in held:
            h.close()
    # Once the daemon has seen those closes, every slot is free again.
    sts = []

    def all_slots():
        conns = [RawConn(w.proxy.addr, timeout=5) for _ in range(4)]
        try:
            for c in conns:
                c.send(get(w.resource.url("/all-slots")))
            sts[:] = [c.response()[0] for c in conns]
        finally:
            for c in conns:
                c.close()
        return sts == [200] * 4
    wait_until(all_slots, timeout=5, interval=0.1)
    assert sts == [200] * 4, sts


def rst_close(sock):
    """Close with a TCP reset, like a crashing client."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_clients_vanishing_mid_transfer_leave_daemon_healthy(world):
    w = world
    w.start()
    pid = w.proxy.proc.pid
    serves(w, "/warmup")
    base_fds = fd_count(pid)
    for i in range(12):
        # mid-upload: half of a 4 MiB body, then gone
        s = socket.create_connection(w.proxy.addr, timeout=5)
        s.sendall(f"POST {w.resource.url(f'/up{i}')} HTTP/1.1\r\nHost: {w.resource.authority}\r\n"
                  f"Content-Length: {4 << 20}\r\n\r\n".encode() + b"x" * (2 << 20))
        (rst_close if i % 2 else socket.socket.close)(s)
        # mid-download: 1 MiB of 32 MiB, then gone
        s = socket.create_connection(w.proxy.addr, timeout=10)
        s.sendall(get(w.resource.url(f"/big?size={32 << 20}&i={i}"), close=False).encode())
        got = 0
        while got < (1 << 20):
            d = s.recv(65536)
            if not d:
                break
            got += len(d)
        (rst_close if i % 2 else socket.socket.close)(s)
    serves(w)
    # Half-sent uploads were never forwarded (nor signed).
    assert not [r for r in w.resource.records() if r.path.startswith("/up")], \
        "an incomplete upload was forwarded"
    # Every client and upstream socket of the aborted exchanges is closed.
    wait_until(lambda: fd_count(pid) <= base_fds + 2, timeout=10)
    assert fd_count(pid) <= base_fds + 2, \
        f"fd leak: {fd_count(pid)} open, {base_fds} before"


def test_fragment_in_target_refused_not_forwarded_or_logged(running):
    """A request-target is an absolute-URI: no '#fragment' (RFC 9112
    3.2.2). Accepting one puts e.g. '#access_token=…' into the upstream's
    request line and into the access log's path."""
    w = running
    secret = "frag" + secrets.token_hex(8)
    got = exchange(w.proxy.addr, get(w.plain.url(f"/cb#access_token={secret}")), timeout=8)
    assert statuses(got)[:1] == [400], got[:300]
    # An absence can only be watched for a while: a grace period that
    # ends early if it does show up.
    wait_until(w.plain.records, 0.2)
    assert w.plain.records() == [], f"forwarded: {w.plain.records()}"
    leaked = [ln for ln in w.proxy.snapshot() if secret in ln]
    assert leaked == [], leaked


# --- 7. log hygiene ----------------------------------------------------------

def test_secrets_never_logged_on_any_path(world, hostile, token_file, refused_port):
    w = world
    qv = "qv" + secrets.token_hex(8)
    ca = "ca" + secrets.token_hex(8)
    pa = "pa" + secrets.token_hex(8)
    bad_tok = "bt" + secrets.token_hex(8)
    up_bad = hostile(raw_reply(b"HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\nx"))
    dead_port = refused_port
    w.start(
        resources={"broken": {"upstream": "http", "allow_plaintext": True,
                              "token_file": token_file("broken", bad_tok + "\r\nX: y")}},
        rules=base_rules(w) + [
            {"host": "127.0.0.1", "port": dead_port, "action": "sign", "resource": "r"},
            {"host": "127.0.0.1", "port": up_bad.port, "action": "sign", "resource": "r"},
            {"host": "broken.test", "action": "sign", "resource": "broken"},
            {"host": "denied.test", "action": "deny"},
        ],
        upstream={"timeout_ms": 1000},
        limits={"max_body_bytes": 1024, "max_header_bytes": 4096},
        log={"level": "debug"})
    auth = f"Authorization: Bearer {ca}\r\nProxy-Authorization: Basic {pa}\r\n"
    q = f"?key={qv}&token={qv}&x={qv}"
    reqs = [
        get(w.resource.url(f"/ok{q}"), extra=auth),                               # 200 signed
        get(w.plain.url(f"/pass{q}"), extra=auth),                                # 200 pass
        get(f"http://denied.test/d{q}", extra=auth),                              # 403
        get(f"http://127.0.0.9:{dead_port}/u{q}", extra=auth),                    # 403 default
        get(f"http://127.0.0.1:{dead_port}/r{q}", extra=auth),                    # 502 refused
        get(w.resource.url(f"/slow{q}&ms=3000"), extra=auth),                     # 504
        get(f"http://broken.test/b{q}", extra=auth),                              # 503 token
        get(up_bad.url(f"/h{q}"), extra=auth),                                    # odd upstream
        get(w.resource.url(f"/big{q}"), method="POST",
            extra=auth + "Content-Length: 5000\r\n"),                             # 413
        get(w.resource.url(f"/hdr{q}"), extra=auth + "X-Pad: " + "p" * 5000 + "\r\n"),  # 431
        f"GET {w.resource.url('/bad' + q)}\x01 HTTP/1.1\r\nHost: x\r\n{auth}\r\n",  # 400 target
        f"GET {w.resource.url('/bad2' + q)} HTTP/1.1\r\nHost: x\r\n{auth}"
        f"Authorization: Bearer {ca}\x01\r\n\r\n",                                # 400 header
        f"GET ftp://x/{q} HTTP/1.1\r\nHost: x\r\n{auth}\r\n",                     # 400 scheme
        f"GET /origin{q} HTTP/1.1\r\nHost: x\r\n{auth}\r\n",                      # 400 origin
        f"POST {w.resource.url('/c' + q)} HTTP/1.1\r\nHost: x\r\n{auth}"
        f"Content-Length: 5\r\nContent-Length: {qv}\r\n\r\n",                    # 400 framing
        f"GET {w.resource.url('/e' + q)} HTTP/1.1\r\nHost: x\r\n{auth}"
        f"Expect: {qv}\r\n\r\n",                                                  # 417
        f"GET {w.resource.url('/cn' + q)} HTTP/1.1\r\nHost: x\r\n{auth}"
        f"Connection: {qv}/x\r\n\r\n",                                            # 400 Connection
    ]
    seen = []
    for r in reqs:
        got = exchange(w.proxy.addr, r, timeout=10)
        seen += statuses(got)[:1]
    # aborted mid-request (499 path)
    s = socket.create_connection(w.proxy.addr, timeout=5)
    s.sendall(f"POST {w.resource.url('/abort' + q)} HTTP/1.1\r\nHost: x\r\n{auth}"
              "Content-Length: 100\r\n\r\nabc".encode())
    # gone only once the daemon has read the head (so it is a request
    # aborted midway), and stopped only once it has logged that
    assert wait_until(lambda: unread_by_peer(s) == 0, timeout=10), "the daemon never read it"
    rst_close(s)
    assert w.proxy.wait_access(1, pred=lambda o: o.get("path") == "/abort"), \
        "no access line for the request aborted midway"
    assert {200, 400, 403, 413, 431, 502, 503, 504} <= set(seen), seen
    entries = w.proxy.wait_access(len(reqs))
    assert len(entries) >= len(reqs) - 6, entries  # most paths produced an access line
    assert w.proxy.stop() == []
    w.proxy.expect_exit = True  # stopped here, checked above
    text = "\n".join(w.proxy.snapshot() + w.proxy.stdout_lines)
    for name, secret in (("token", w.token), ("query value", qv), ("client Authorization", ca),
                         ("Proxy-Authorization", pa), ("broken token", bad_tok)):
        assert secret not in text, f"the {name} appears in the log:\n" + "\n".join(
            ln for ln in text.splitlines() if secret in ln)
