"""A sign rule whose resource has upstream "https": the daemon dials TLS
to a self-signed fake (certificates made with the openssl CLI now) and
verifies it against upstream.ca_file; without that file verification
fails and the client gets 502."""

import pytest
import requests

from fakes.resource import FakeServer, make_tls_context
from fakes.tls import make_ca_and_leaf


@pytest.fixture
def tls_resource(tmp_path, pubkey):
    ca, chain, key = make_ca_and_leaf(tmp_path, "127.0.0.1")
    s = FakeServer("127.0.0.1", verify=True, pubkey=pubkey, token="tok-tls-" + "q" * 20,
                   tls_ctx=make_tls_context(chain, key), name="tls").start()
    s.ca_file = ca
    yield s
    s.stop()


def tls_config(w, srv, token_file, ca_file):
    cfg = {
        "resources": {"secure": {"upstream": "https", "token_file": token_file("secure", srv.expected_token)}},
        "rules": [
            {"host": "127.0.0.1", "port": srv.port, "action": "sign", "resource": "secure"},
            {"host": "127.0.0.1", "port": w.resource.port, "action": "sign", "resource": "r"},
        ],
    }
    if ca_file:
        cfg["upstream"] = {"ca_file": ca_file}
    return cfg


def via(w, url, **kw):
    return requests.request(kw.pop("method", "GET"), url, proxies={"http": w.proxy_url},
                            timeout=30, **kw)


def test_https_upstream_with_ca_file(world, tls_resource, token_file):
    w = world
    w.start(**tls_config(w, tls_resource, token_file, tls_resource.ca_file))
    # the client speaks plain http to the proxy; the rule makes the hop TLS
    url = f"http://127.0.0.1:{tls_resource.port}/echo?q=1"
    r = via(w, url, method="POST", data=b'{"over": "tls"}',
            headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.content
    assert r.content == b'{"over": "tls"}'
    recs = tls_resource.records()
    assert len(recs) == 1 and recs[0].verdict == "valid", recs
    big = via(w, f"http://127.0.0.1:{tls_resource.port}/big?size=3000000")
    assert big.status_code == 200 and len(big.content) == 3000000
    assert all(x.verdict == "valid" for x in tls_resource.records())


def test_https_upstream_without_ca_file_fails_502(world, tls_resource, token_file):
    w = world
    w.start(**tls_config(w, tls_resource, token_file, None))
    r = via(w, f"http://127.0.0.1:{tls_resource.port}/x")
    assert r.status_code == 502, r.content
    assert r.headers.get("content-type", "").startswith("application/json")
    ps = r.headers.get("proxy-status", "")
    assert "tls" in ps or "certificate" in r.text.lower() or "tls" in r.text.lower(), (ps, r.text)
    assert not tls_resource.records(), "a request went over an unverified TLS connection"
    # the plaintext-allowed resource still works
    r = via(w, w.resource.url("/ok"))
    assert r.status_code == 200 and r.json()["verdict"] == "valid"


def test_http_upstream_requires_allow_plaintext(world):
    """upstream "http" without allow_plaintext is a config error: the
    daemon must not start (credentials would go out in clear)."""
    w = world
    cfg = w.config(resources={"r": {"upstream": "http", "allow_plaintext": False,
                                    "token_file": w.token_path}})
    with pytest.raises(RuntimeError, match="allow_plaintext"):
        w._factory(cfg)
