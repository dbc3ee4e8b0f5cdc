"""Shared pieces of the AAuth token-lifecycle tests (test_aauth_*.py): the
fake issuer and resource fixtures, the daemon config for an aauth
resource, a client, and the checks every test ends with (no secret in any
log line, the daemon still alive)."""

import json
import os
import socket
import threading
import time

import pytest

from fakes.daemon import free_port, header, http_get_via, raw_request
from fakes.issuer import AAuthResource, FakeIssuer

SANITIZER = bool(os.environ.get("AAUTH_SANITIZER"))
AGENT_ISS = "https://agent.test"


@pytest.fixture
def issuer(pubkey):
    s = FakeIssuer(pubkey, lifetime=3, agent_iss=AGENT_ISS, agent_sub="user-7").start()
    yield s
    s.stop()


@pytest.fixture
def aresource(issuer, pubkey):
    r = AAuthResource(issuer, pubkey).start()
    yield r
    r.stop()


def write_secret(path, value):
    with open(path, "w") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)
    return str(path)


def aauth_cfg(issuer, resource, tmp_path, listen_port=None, name="docs", **over):
    """A config with one aauth resource behind a sign rule for resource."""
    rt = write_secret(tmp_path / "resource.jwt", issuer.served_resource_token)
    aauth = {
        "issuer": issuer.url,
        "agent_token": {"mint": {"iss": AGENT_ISS, "sub": "user-7", "lifetime_s": 300}},
        "resource_token": {"file": rt},
    }
    aauth.update(over)
    cfg = {
        "default_action": "deny",
        "resources": {name: {"upstream": "http", "allow_plaintext": True, "aauth": aauth}},
        "rules": [{"host": "127.0.0.1", "port": resource.port, "action": "sign",
                   "resource": name}],
        "upstream": {"connect_timeout_ms": 3000},
        "limits": {"header_timeout_ms": 5000},
    }
    if listen_port is not None:
        cfg["listen"] = [f"127.0.0.1:{listen_port}"]
    return cfg


def get(proxy, url, timeout=15):
    """One request through the proxy: (status, {lower-name: value}, body)."""
    st, hd, body = http_get_via(proxy.addr, url, timeout=timeout)
    return st, dict(hd), body


def get_json(proxy, url, timeout=15):
    st, hd, body = get(proxy, url, timeout)
    try:
        return st, hd, json.loads(body)
    except ValueError:
        return st, hd, body


def wait_status(proxy, url, want=200, timeout=20):
    """Send requests until one answers want (bounded); returns the last."""
    deadline = time.monotonic() + timeout
    while True:
        r = get(proxy, url)
        if r[0] == want or time.monotonic() > deadline:
            return r
        time.sleep(0.1)


def log_msgs(proxy, level=None):
    return [o for o in proxy.log_messages() if level is None or o.get("level") == level]


def lines_with(proxy, fragment, level=None):
    return [o["msg"] for o in log_msgs(proxy, level) if fragment in o["msg"]]


def assert_no_secrets(text, issuer, extra=()):
    """No token, refresh token, agent token, code or resource token the
    issuer handed out or received appears in text."""
    with issuer._cond:
        secrets_ = set(issuer.secrets) | set(issuer.tokens) | set(issuer.refresh_tokens)
    secrets_ |= set(extra)
    leaked = [s[:12] + "…" for s in secrets_ if s and len(s) >= 8 and s in text]
    assert not leaked, f"secrets in the log: {leaked}"


def traffic(proxy, url, seconds, threads=4, pause=0.02):
    """Concurrent clients for `seconds`: returns [(time, status, body)]."""
    out = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker():
        while time.monotonic() < stop:
            try:
                st, _, body = get(proxy, url, timeout=15)
            except (OSError, EOFError) as e:
                st, body = -1, str(e).encode()
            with lock:
                out.append((time.monotonic(), st, body))
            time.sleep(pause)

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 60)
    return out


__all__ = ["issuer", "aresource", "aauth_cfg", "get", "get_json", "wait_status",
           "lines_with", "log_msgs", "assert_no_secrets", "traffic", "write_secret",
           "free_port", "header", "raw_request", "SANITIZER", "AGENT_ISS"]
