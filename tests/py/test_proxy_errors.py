"""What the daemon answers when it cannot or must not forward: status,
JSON body, Proxy-Status (RFC 9209), and that it serves the next request
fine afterwards."""

import json
import re
import time

import pytest
import requests

from fakes.daemon import RawConn, dead_port, header, hold_connections, http_get_via, wait_until

# RFC 9209 section 2.3 error types a proxy may name.
PROXY_STATUS_TYPES = {
    "dns_timeout", "dns_error", "destination_not_found", "destination_unavailable",
    "destination_ip_prohibited", "destination_ip_unroutable", "connection_refused",
    "connection_terminated", "connection_timeout", "connection_read_timeout",
    "connection_write_timeout", "connection_limit_reached", "tls_protocol_error",
    "tls_certificate_error", "tls_alert_received", "http_request_error", "http_request_denied",
    "http_response_incomplete", "http_response_header_section_size", "http_response_header_size",
    "http_response_body_size", "http_response_trailer_section_size", "http_response_trailer_size",
    "http_response_transfer_coding", "http_response_content_coding", "http_response_timeout",
    "http_upgrade_failed", "http_protocol_error", "proxy_internal_response",
    "proxy_internal_error", "proxy_configuration_error", "proxy_loop_detected",
}


def via(w, url, **kw):
    return requests.request(kw.pop("method", "GET"), url, proxies={"http": w.proxy_url},
                            timeout=kw.pop("timeout", 30), **kw)


def error_json(r):
    """The proxy's JSON error body as a dict (asserting it is one)."""
    ct = r.headers.get("content-type", "")
    assert ct.startswith("application/json"), (r.status_code, ct, r.content[:300])
    body = r.json()
    assert isinstance(body, dict) and body, body
    return body


def proxy_status(r, allowed):
    """Parse Proxy-Status; assert its error= is one of the allowed RFC 9209
    types. Returns the whole header value."""
    v = r.headers.get("proxy-status")
    assert v, f"no Proxy-Status on a {r.status_code} the proxy generated"
    m = re.search(r";\s*error=([a-z_]+)", v)
    assert m, f"Proxy-Status without error=: {v!r}"
    assert m.group(1) in PROXY_STATUS_TYPES, f"not an RFC 9209 error type: {v!r}"
    assert m.group(1) in allowed, f"Proxy-Status error {m.group(1)!r} not one of {allowed}"
    return v


def text_of(body):
    return json.dumps(body).lower()


def assert_still_serves(w):
    r = via(w, w.resource.url("/after?ok=1"))
    assert r.status_code == 200, r.content
    assert r.json()["verdict"] == "valid"


def test_upstream_connection_refused_502(world):
    with dead_port() as dead:
        w = world
        w.start(rules=[
            {"host": "127.0.0.1", "port": dead, "action": "sign", "resource": "r"},
            {"host": "127.0.0.1", "port": w.resource.port, "action": "sign", "resource": "r"},
        ])
        r = via(w, f"http://127.0.0.1:{dead}/x")
    assert r.status_code == 502
    body = error_json(r)
    assert re.search(r"refused|connect", text_of(body)), body
    proxy_status(r, {"connection_refused", "destination_unavailable"})
    assert_still_serves(w)


@pytest.mark.parametrize("knob", ["idle_timeout_ms", "timeout_ms"])
def test_upstream_timeout_504(world, knob):
    w = world
    w.start(upstream={knob: 1000})  # the smallest value config accepts
    t0 = time.monotonic()
    r = via(w, w.resource.url("/slow?ms=6000"))
    took = time.monotonic() - t0
    assert r.status_code == 504, r.content
    assert took < 4.5, f"504 after {took:.1f}s, the limit was 1s"
    body = error_json(r)
    assert re.search(r"time", text_of(body)), body
    proxy_status(r, {"http_response_timeout", "connection_read_timeout", "connection_timeout"})
    # the slow request did reach the resource, signed
    assert w.resource.records()[0].verdict == "valid"
    assert_still_serves(w)


def test_missing_token_file_503_names_resource(world, tmp_path):
    w = world
    cfg_res = {"upstream": "http", "allow_plaintext": True,
               "token_file": str(tmp_path / "no-such-token")}
    w.start(resources={"billing-api": cfg_res},
            rules=[{"host": "127.0.0.2", "port": w.plain.port, "action": "sign",
                    "resource": "billing-api"},
                   {"host": "127.0.0.1", "port": w.resource.port, "action": "sign",
                    "resource": "r"}])
    r = via(w, w.plain.url("/x"))
    assert r.status_code == 503
    body = error_json(r)
    assert "billing-api" in json.dumps(body), body
    assert r.headers.get("proxy-status"), "no Proxy-Status on a proxy-generated 503"
    assert not w.plain.records(), "a request without a token reached the upstream"
    assert_still_serves(w)


def test_deny_rule_403(world):
    w = world
    w.start(rules=[
        {"host": "127.0.0.2", "port": w.plain.port, "action": "deny"},
        {"host": "127.0.0.1", "port": w.resource.port, "action": "sign", "resource": "r"},
    ])
    r = via(w, w.plain.url("/secret"))
    assert r.status_code == 403
    body = error_json(r)
    assert "127.0.0.2" in json.dumps(body), body
    proxy_status(r, {"http_request_denied", "destination_ip_prohibited"})
    assert not w.plain.records()
    assert_still_serves(w)


def test_unmatched_host_default_deny_403(running):
    w = running
    r = via(w, f"http://127.0.0.3:{w.plain.port}/x")
    assert r.status_code == 403
    body = error_json(r)
    assert "127.0.0.3" in json.dumps(body), body
    proxy_status(r, {"http_request_denied", "destination_ip_prohibited"})
    assert_still_serves(w)


def test_default_pass_still_blocks_loopback_no_rule_names(world):
    """default_action pass + block_private_addresses: a loopback upstream
    no rule names is refused (metadata-endpoint protection)."""
    w = world
    w.start(default_action="pass",
            rules=[{"host": "127.0.0.1", "port": w.resource.port, "action": "sign",
                    "resource": "r"}])
    r = via(w, w.plain.url("/x"))
    assert r.status_code == 403, r.content
    error_json(r)
    assert not w.plain.records(), "the proxy reached a loopback address no rule names"
    assert_still_serves(w)


def test_origin_form_to_proxy_400_explains(running):
    w = running
    with RawConn(w.proxy.addr) as c:
        c.send(f"GET /v1/things HTTP/1.1\r\nHost: {w.proxy.host}:{w.proxy.port}\r\n\r\n")
        st, hd, body = c.response()
    assert st == 400
    assert header(hd, "content-type").startswith("application/json")
    text = body.decode().lower()
    assert "proxy" in text and ("absolute" in text or "http_proxy" in text), body
    assert_still_serves(w)


def test_header_section_too_large_431(world):
    w = world
    w.start(limits={"max_header_bytes": 4096})
    with RawConn(w.proxy.addr) as c:
        c.send(f"GET {w.resource.url('/x')} HTTP/1.1\r\nHost: {w.resource.authority}\r\n"
               f"X-Big: {'a' * 6000}\r\n\r\n")
        st, hd, body = c.response()
    assert st == 431
    assert header(hd, "content-type").startswith("application/json")
    assert not w.resource.records()
    # just under the limit is fine
    st, hd, body = http_get_via(w.proxy.addr, w.resource.url("/x"), [("X-Big", "a" * 3000)])
    assert st == 200, body
    assert_still_serves(w)


def test_too_many_headers_431(world):
    w = world
    w.start(limits={"max_headers": 20})
    many = "".join(f"X-H{i}: {i}\r\n" for i in range(30))
    with RawConn(w.proxy.addr) as c:
        c.send(f"GET {w.resource.url('/x')} HTTP/1.1\r\nHost: {w.resource.authority}\r\n{many}\r\n")
        st, hd, body = c.response()
    assert st == 431
    assert header(hd, "content-type").startswith("application/json")
    assert not w.resource.records()
    st, _, body = http_get_via(w.proxy.addr, w.resource.url("/x"), [(f"X-H{i}", "1") for i in range(10)])
    assert st == 200, body
    assert_still_serves(w)


def test_body_too_large_413(world):
    w = world
    w.start(limits={"max_body_bytes": 1000})
    r = via(w, w.resource.url("/echo"), method="POST", data=b"x" * 2000)
    assert r.status_code == 413
    error_json(r)
    # exactly the limit passes
    r = via(w, w.resource.url("/echo"), method="POST", data=b"y" * 1000)
    assert r.status_code == 200 and r.content == b"y" * 1000
    # chunked beyond the limit
    with RawConn(w.proxy.addr) as c:
        c.send(f"POST {w.resource.url('/echo')} HTTP/1.1\r\nHost: {w.resource.authority}\r\n"
               "Transfer-Encoding: chunked\r\n\r\n" + "400\r\n" + "z" * 1024 + "\r\n0\r\n\r\n")
        st, _, _ = c.response()
        assert st == 413
    assert [r.body_len for r in w.resource.records()] == [1000]
    assert_still_serves(w)


def test_body_too_large_with_expect_100_continue_413_without_100(world):
    w = world
    w.start(limits={"max_body_bytes": 1000})
    with RawConn(w.proxy.addr) as c:
        c.send(f"POST {w.resource.url('/echo')} HTTP/1.1\r\nHost: {w.resource.authority}\r\n"
               "Content-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
        st, hd, body = c.response()  # before any body byte was sent
    assert st == 413, "expected a final 413 instead of 100 Continue"
    assert header(hd, "content-type").startswith("application/json")
    assert not w.resource.records()
    assert_still_serves(w)


def test_upstream_status_passes_through_unchanged(running):
    w = running
    r = via(w, w.resource.url("/status/418"))
    assert r.status_code == 418 and r.json() == {"status": 418}
    assert "proxy-status" not in {k.lower() for k in r.headers} or \
        "error=" not in r.headers["proxy-status"]
    r = via(w, w.resource.url("/status/500"))
    assert r.status_code == 500 and r.json() == {"status": 500}


def test_max_connections_503(world):
    w = world
    w.start(limits={"max_connections": 2})
    held = hold_connections(w.proxy, 2)  # both accepted
    try:
        with RawConn(w.proxy.addr) as c:
            c.send(f"GET {w.resource.url('/x')} HTTP/1.1\r\nHost: {w.resource.authority}\r\n\r\n")
            st, hd, body = c.response()
            assert st == 503, body
            assert header(hd, "content-type").startswith("application/json")
            assert "connection_limit_reached" in (header(hd, "proxy-status") or ""), hd
            assert c.closed_by_peer(5)
    finally:
        for c in held:
            c.close()
    # Served again once the daemon has seen the two closes.
    assert wait_until(lambda: slot_free(w), timeout=10), "the held slots were never freed"
    assert_still_serves(w)


def slot_free(w):
    """A request is no longer refused for max_connections."""
    try:
        with RawConn(w.proxy.addr, timeout=5) as c:
            c.send(f"GET {w.resource.url('/slot')} HTTP/1.1\r\nHost: {w.resource.authority}\r\n"
                   "Connection: close\r\n\r\n")
            return c.response()[0] != 503
    except (OSError, EOFError):  # refused and closed under our request
        return False
