"""The scene for the HTTPS (CONNECT) tests, imported by the test_https_*
modules: a proxy CA made with `aauth-proxy ca init`, a TLS fake resource
(its own test CA, trusted by the daemon through upstream.ca_file) that
checks every signature, a plain-HTTP fake resource for http:// inside a
tunnel, and a TLS server on 127.0.0.2 named only by a pass rule (its own
certificate: a client sees it only through an opaque splice).

Clients trust only the proxy CA (`world.proxy_ca`)."""

import json
import os
import secrets
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from fakes.daemon import clean_env
from fakes.resource import FakeServer, make_tls_context
from fakes.tls import make_ca_and_leaf

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


class HttpsWorld:
    def __init__(self, tmp_path, pubkey, agent_key, proxy_bin, token_file, factory):
        self.tmp = tmp_path
        self.bin = proxy_bin
        self.factory = factory
        up = tmp_path / "upca"
        up.mkdir()
        self.up_ca, chain, key = make_ca_and_leaf(up, "127.0.0.1")
        self.token = "tok-" + secrets.token_urlsafe(24)
        self.tls = FakeServer("127.0.0.1", verify=True, pubkey=pubkey, token=self.token,
                              tls_ctx=make_tls_context(chain, key), name="tls").start()
        self.plain_token = "tok-" + secrets.token_urlsafe(24)
        self.plain = FakeServer("127.0.0.1", verify=True, pubkey=pubkey,
                                token=self.plain_token, name="plain-resource").start()
        pd = tmp_path / "passca"
        pd.mkdir()
        self.pass_ca, pchain, pkey = make_ca_and_leaf(pd, "127.0.0.2")
        self.pass_chain = pchain
        self.passer = FakeServer("127.0.0.2", verify=False, tls_ctx=make_tls_context(pchain, pkey),
                                 name="pass").start()
        self.token_path = token_file("secure", self.token)
        self.plain_token_path = token_file("r", self.plain_token)
        self.proxy_ca = str(tmp_path / "pca" / "ca.pem")
        self.proxy_ca_key = str(tmp_path / "pca" / "ca-key.pem")
        (tmp_path / "pca").mkdir()
        self.agent_key = agent_key
        self.ca_config = tmp_path / "ca.json"
        self.ca_config.write_text(json.dumps({
            "key": {"file": agent_key},
            "ca": {"cert_file": self.proxy_ca, "key_file": self.proxy_ca_key}}))
        r = subprocess.run([proxy_bin, "ca", "init", "-c", str(self.ca_config)],
                           capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        self.proxy = None

    def config(self, **over):
        from conftest import deep_merge
        base = {
            "default_action": "deny",
            "ca": {"cert_file": self.proxy_ca, "key_file": self.proxy_ca_key},
            "resources": {
                "secure": {"upstream": "https", "token_file": self.token_path},
                "r": {"upstream": "http", "allow_plaintext": True,
                      "token_file": self.plain_token_path},
            },
            "rules": [
                {"host": "127.0.0.1", "port": self.tls.port, "action": "sign",
                 "resource": "secure"},
                {"host": "127.0.0.1", "port": self.plain.port, "action": "sign",
                 "resource": "r"},
                {"host": "127.0.0.2", "port": self.passer.port, "action": "pass"},
                {"host": "127.0.0.3", "action": "deny"},
            ],
            "upstream": {"ca_file": self.up_ca, "connect_timeout_ms": 3000},
            "limits": {"header_timeout_ms": 5000},
        }
        return deep_merge(base, over)

    def start(self, **over):
        self.proxy = self.factory(self.config(**over))
        return self.proxy

    @property
    def proxy_url(self):
        return self.proxy.url

    def stop(self):
        for s in (self.tls, self.plain, self.passer):
            s.stop()

    # raw clients -------------------------------------------------------------

    def connect(self, authority, timeout=10):
        """A socket to the proxy with a CONNECT answered; returns (sock,
        status, head bytes)."""
        s = socket.create_connection(self.proxy.addr, timeout=timeout)
        s.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            b = s.recv(1)
            if not b:
                break
            head += b
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.") else 0
        return s, status, head

    def client_ctx(self, cafile=None):
        ctx = ssl.create_default_context(cafile=cafile or self.proxy_ca)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def tls_connect(self, authority, server_hostname="127.0.0.1", cafile=None):
        s, status, head = self.connect(authority)
        assert status == 200, head
        return self.client_ctx(cafile).wrap_socket(s, server_hostname=server_hostname)


def read_response(sock):
    """(status, headers dict lower-case, body) of one response with a
    Content-Length, from a (TLS) socket."""
    f = sock.makefile("rb")
    line = f.readline()
    status = int(line.split()[1])
    hdrs = {}
    while True:
        ln = f.readline().rstrip(b"\r\n")
        if not ln:
            break
        k, _, v = ln.decode("latin-1").partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    body = f.read(n) if n else b""
    return status, hdrs, body


@pytest.fixture
def https(tmp_path, pubkey, agent_key, proxy_bin, token_file, proxy_factory):
    w = HttpsWorld(tmp_path, pubkey, agent_key, proxy_bin, token_file, proxy_factory)
    yield w
    w.stop()


@pytest.fixture(scope="session")
def node_modules():
    if not (NODE_DIR / "node_modules" / "@openai" / "agents").is_dir() or \
            not (NODE_DIR / "node_modules" / "undici").is_dir():
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                           capture_output=True, timeout=600)
        assert r.returncode == 0, r.stderr.decode()
    return NODE_DIR


def node_env(extra=None):
    env = clean_env(extra)
    for k in ("NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "NODE_USE_ENV_PROXY"):
        env.pop(k, None)
    env.update(extra or {})
    return env


def all_valid(fake):
    bad = [(r.method, r.target, r.reason) for r in fake.records() if r.verdict != "valid"]
    return not bad, bad


def no_credentials(fake):
    names = set()
    for r in fake.records():
        names |= set(r.header_names())
    return names & {"authorization", "signature", "signature-input", "signature-key",
                    "content-digest"}


__all__ = ["HttpsWorld", "https", "node_modules", "read_response", "node_env", "all_valid",
           "no_credentials", "NODE_DIR", "os"]
