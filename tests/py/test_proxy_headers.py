"""Which header fields reach the upstream: the proxy's own credentials
replace anything the client sent, hop-by-hop fields stop at the proxy, a
new token is picked up from the file while running, and the access log
has one line per request without secrets."""

import base64
import hashlib
import os

import pytest
import requests

from fakes.daemon import RawConn

OWNED = ["Authorization", "Signature", "Signature-Input", "Signature-Key", "Content-Digest",
         "Agent-Auth"]


def via(w, url, **kw):
    return requests.request(kw.pop("method", "GET"), url, proxies={"http": w.proxy_url},
                            timeout=30, **kw)


def test_client_credentials_replaced(running):
    w = running
    forged = {
        "Authorization": "Bearer client-forged-token",
        "Signature": "sig1=:AAAA:",
        "Signature-Input": 'sig1=("@method");created=1;nonce="xxxxxxxxxxxxxxxxxxxx"',
        "Signature-Key": 'sig1=hwk;kty="OKP"',
        "Content-Digest": "sha-256=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:",
        "Agent-Auth": "agent_token=client-agent-token",
    }
    r = via(w, w.resource.url("/echo?x=1"), method="POST", data=b"payload", headers=forged)
    assert r.status_code == 200, r.content
    rec = w.resource.records()[-1]
    assert rec.verdict == "valid", rec.reason
    for name in ["Authorization", "Signature", "Signature-Input", "Content-Digest"]:
        assert len(rec.get_all(name)) == 1, (name, rec.get_all(name))
    assert rec.get("authorization") == f"Bearer {w.token}"
    assert rec.get_all("signature-key") == []
    assert rec.get_all("agent-auth") == []
    raw = rec.raw_head.decode("latin-1")
    for v in ["client-forged-token", "client-agent-token", "AAAA:", 'created=1;']:
        assert v not in raw, v


def test_client_credentials_on_raw_socket_duplicates(running):
    """Two client Authorization lines and lower-case names are all gone."""
    w = running
    with RawConn(w.proxy.addr) as c:
        c.send(f"GET {w.resource.url('/d')} HTTP/1.1\r\nHost: {w.resource.authority}\r\n"
               "authorization: Bearer one\r\nAUTHORIZATION: Bearer two\r\n"
               "signature: sig1=:x:\r\nsignature-input: sig1=()\r\n\r\n")
        st, _, body = c.response()
    assert st == 200, body
    rec = w.resource.records()[-1]
    assert rec.verdict == "valid", rec.reason
    assert rec.get_all("authorization") == [f"Bearer {w.token}"]


HOP = [("Connection", "keep-alive, X-Hop-Custom"), ("X-Hop-Custom", "drop-me"),
       ("Keep-Alive", "timeout=5, max=100"), ("TE", "trailers"),
       ("Proxy-Authorization", "Basic dXNlcjpwYXNz"), ("Proxy-Connection", "keep-alive"),
       ("X-End-To-End", "keep-me")]


@pytest.mark.parametrize("target", ["resource", "plain"])
def test_hop_by_hop_headers_stop_at_proxy(running, target):
    w = running
    fake = getattr(w, target)
    with RawConn(w.proxy.addr) as c:
        c.send(f"GET {fake.url('/hop')} HTTP/1.1\r\nHost: {fake.authority}\r\n"
               + "".join(f"{n}: {v}\r\n" for n, v in HOP) + "\r\n")
        st, _, body = c.response()
    assert st == 200, body
    rec = fake.records()[-1]
    names = set(rec.header_names())
    for gone in ["x-hop-custom", "keep-alive", "te", "proxy-authorization", "proxy-connection"]:
        assert gone not in names, f"{gone} reached the upstream"
    conn = ",".join(rec.get_all("connection")).lower()
    assert "x-hop-custom" not in conn
    assert rec.get("x-end-to-end") == "keep-me"
    assert "dXNlcjpwYXNz" not in rec.raw_head.decode("latin-1")
    if target == "resource":
        assert rec.verdict == "valid", rec.reason


def test_token_file_change_picked_up(running):
    w = running
    old = w.token
    assert via(w, w.resource.url("/a")).status_code == 200
    w.set_token("tok-rotated-" + "x" * 30)  # new inode, new length
    r = via(w, w.resource.url("/b"))
    assert r.status_code == 200, r.content
    assert w.resource.records()[-1].get("authorization") == f"Bearer {w.token}"
    # in place, same length, new content (mtime changes: set one second
    # on rather than sleeping past the file system's timestamp granularity)
    before = os.stat(w.token_path).st_mtime_ns
    same_len = "tok-rotated-" + "y" * 30
    with open(w.token_path, "w") as f:
        f.write(same_len + "\n")
    os.utime(w.token_path, ns=(before + 10**9, before + 10**9))
    w.token = same_len
    w.resource.expected_token = same_len
    r = via(w, w.resource.url("/c"))
    assert r.status_code == 200, r.content
    recs = w.resource.records()
    assert [x.verdict for x in recs] == ["valid"] * 3, [x.reason for x in recs]
    assert old not in recs[-1].raw_head.decode("latin-1")


def test_token_file_whitespace_trimmed(world, token_file):
    w = world
    token_file("r", "  \t" + w.token + " \n\n")
    w.start()
    r = via(w, w.resource.url("/t"))
    assert r.status_code == 200, r.content
    assert w.resource.records()[-1].verdict == "valid"


def test_access_log_one_line_per_request_without_secrets(running):
    w = running
    secret_q = "QSECRETVALUE4242"
    urls = [w.resource.url(f"/log1?api_key={secret_q}"), w.plain.url(f"/log2?pw={secret_q}"),
            f"http://127.0.0.9:{w.plain.port}/denied?x={secret_q}"]
    statuses = [via(w, u).status_code for u in urls]
    assert statuses == [200, 200, 403]
    entries = w.proxy.wait_access(3)
    assert len(entries) == 3, entries
    blob = w.proxy.stderr_text()
    assert w.token not in blob, "the token appears in the log"
    assert secret_q not in blob, "a query value appears in the log"
    for e, st in zip(entries, statuses):
        assert e.get("status") == st, e
        assert e.get("method") == "GET", e
        for field in ("time", "client", "host", "path", "action", "status", "bytes_in",
                      "bytes_out", "total_ms"):
            assert field in e, (field, e)
    assert [e["action"] for e in entries] == ["sign", "pass", "deny"]
    assert [e["path"] for e in entries] == ["/log1", "/log2", "/denied"]
    assert [e["host"] for e in entries] == ["127.0.0.1", "127.0.0.2", "127.0.0.9"]
    assert entries[0].get("resource") == "r"
    assert entries[0].get("query_names") == ["api_key"]
    # the token appears only as its short hash
    digest = hashlib.sha256(w.token.encode()).digest()
    assert entries[0].get("token") == base64.urlsafe_b64encode(digest).decode()[:12]
    assert "token" not in entries[1]
