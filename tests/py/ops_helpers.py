"""Helpers for the operations tests: talking to the admin port, parsing
/metrics with the real Prometheus text parser, a streamed (acknowledged)
SSE request through the proxy, and rewriting a running daemon's config."""

import json
import socket
import time

from prometheus_client.parser import text_string_to_metric_families

from fakes.daemon import RawConn, wait_until


def admin_get(proxy, path, method="GET", timeout=10):
    """(status, headers, body) of one request to the daemon's admin port."""
    host, port = proxy.admin_addr()
    with RawConn((host, port), timeout) as c:
        c.send(f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               f"Content-Length: 0\r\nConnection: close\r\n\r\n")
        return c.response(head_only=(method == "HEAD"))


def admin_json(proxy, path):
    st, hd, body = admin_get(proxy, path)
    return st, json.loads(body)


def scrape(proxy):
    """{metric family name: family} from /metrics, parsed by
    prometheus_client (which rejects text that is not format 0.0.4)."""
    st, hd, body = admin_get(proxy, "/metrics")
    assert st == 200, body
    ctype = dict(hd).get("content-type", "")
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def sample(families, family, name=None, **labels):
    """The value of the sample (name defaults to the family's) whose labels
    include labels, or None."""
    f = families.get(family)
    if f is None:
        return None
    for s in f.samples:
        if s.name == (name or family) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


class Stream:
    """GET /sse?ack=1 through the proxy: the resource sends event i+1 only
    after ack(i), so the test decides exactly when the response is mid-way."""

    def __init__(self, proxy, resource, sid, n=4):
        self.resource, self.sid, self.n = resource, sid, n
        self.conn = RawConn(proxy.addr, timeout=20)
        url = resource.url(f"/sse?n={n}&ack=1&id={sid}")
        self.conn.send(f"GET {url} HTTP/1.1\r\nHost: {resource.authority}\r\n"
                       f"Connection: close\r\n\r\n")
        self.data = b""

    def wait_event(self, i, timeout=10):
        deadline = time.monotonic() + timeout
        while f"id: {i}\n".encode() not in self.data:
            left = deadline - time.monotonic()
            assert left > 0, f"event {i} not received: {self.data[-300:]!r}"
            self.conn.sock.settimeout(left)
            chunk = self.conn.sock.recv(65536)
            assert chunk, f"stream closed before event {i}: {self.data[-300:]!r}"
            self.data += chunk

    def finish(self, timeout=15):
        """Acknowledge the rest and read to the end: the response must be
        complete (200, every event, the last chunk)."""
        for i in range(1, self.n):
            self.resource.ack(self.sid, i)
            self.wait_event(i + 1, timeout)
        deadline = time.monotonic() + timeout
        while not self.data.endswith(b"0\r\n\r\n"):
            left = deadline - time.monotonic()
            assert left > 0, f"no last chunk: {self.data[-200:]!r}"
            self.conn.sock.settimeout(left)
            chunk = self.conn.sock.recv(65536)
            assert chunk, f"stream cut short: {self.data[-300:]!r}"
            self.data += chunk
        assert self.data.startswith(b"HTTP/1.1 200 "), self.data[:200]
        self.conn.close()
        return self.data

    def close(self):
        self.conn.close()


def rewrite_config(proxy, config):
    """Replace the daemon's config file in place (what an operator does
    before `systemctl reload`)."""
    proxy.config = config
    tmp = proxy.config_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(config, f, indent=2)
    import os
    os.replace(tmp, proxy.config_path)


def wait_log_count(proxy, text, n, timeout=10):
    return wait_until(lambda: len([o for o in proxy.log_messages() if text in o["msg"]]) >= n,
                      timeout)
