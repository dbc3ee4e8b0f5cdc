"""The admin port (issue 10): /healthz, /readyz, /status, /metrics, /ca.pem,
404 and 405, admin.listen ([] turns it off, loopback or unix only, default
127.0.0.1:8788), and /metrics as a Prometheus parser reads it."""

import json
import os
import socket
import subprocess
import time

import pytest

from cli_helpers import run
from fakes.daemon import ProxyProcess, http_get_via, wait_until
from ops_helpers import admin_get, admin_json, sample, scrape


def test_healthz_status_404_405(running, agent_key):
    p = running.proxy
    st, hd, body = admin_get(p, "/healthz")
    assert st == 200 and json.loads(body) == {"status": "ok"}
    assert dict(hd)["connection"] == "close"
    st, s = admin_json(p, "/status")
    assert st == 200
    thumb = run("pubkey", "--key", agent_key, "--json")
    assert s["key_thumbprint"] == json.loads(thumb.stdout)["thumbprint"]
    assert s["version"] and s["uptime_seconds"] >= 0 and s["ca_fingerprint"] is None
    (r,) = s["resources"]
    assert r["name"] == "r" and r["token_state"] == "valid" and r["required"] is True
    assert r["last_error"] is None and r["last_refresh"] > 0
    assert s["reload"] == {"reloads": 0, "failures": 0, "last_error": None}
    assert admin_get(p, "/nope")[0] == 404
    assert admin_get(p, "/ca.pem")[0] == 404  # no CA in this world
    for m in ("POST", "PUT", "DELETE", "HEAD"):
        st, hd, _ = admin_get(p, "/healthz", method=m)
        assert st == 405 and dict(hd)["allow"] == "GET", m
    # the admin port is not a proxy: an absolute-form request is a 404
    st, _, _ = http_get_via(p.admin_addr(), running.resource.url("/"))
    assert st == 404
    assert running.resource.records() == []


def test_status_never_shows_a_secret(running, agent_key):
    p = running.proxy
    assert http_get_via(p.addr, running.resource.url("/x"))[0] == 200
    texts = [admin_get(p, path)[2].decode() for path in ("/status", "/metrics", "/readyz")]
    # the token, any 16-byte piece of it, and the private key's bytes
    tok = running.token
    pem = open(agent_key).read()
    der_b64 = "".join(l for l in pem.splitlines() if not l.startswith("-----"))
    for t in texts:
        assert tok not in t
        assert not any(tok[i:i + 16] in t for i in range(0, len(tok) - 16))
        assert der_b64[-24:] not in t and "PRIVATE" not in t


def test_metrics_parse_and_move(running):
    p = running.proxy
    before = scrape(p)
    for f in ("aauth_proxy_requests", "aauth_proxy_signing_duration_seconds",
              "aauth_proxy_upstream_duration_seconds", "aauth_proxy_token_fetches",
              "aauth_proxy_token_valid", "aauth_proxy_client_connections",
              "aauth_proxy_received_bytes", "aauth_proxy_sent_bytes",
              "aauth_proxy_config_reloads", "aauth_proxy_config_reload_failures",
              "aauth_proxy_start_time_seconds", "aauth_proxy_token_expiry_seconds"):
        assert f in before, f
    assert before["aauth_proxy_requests"].type == "counter"
    assert before["aauth_proxy_signing_duration_seconds"].type == "histogram"
    assert abs(sample(before, "aauth_proxy_start_time_seconds") - time.time()) < 60
    assert sample(before, "aauth_proxy_token_valid", resource="r", state="valid") == 1
    for _ in range(3):
        assert http_get_via(p.addr, running.resource.url("/echo"), method="POST",
                            body=b"x" * 100)[0] == 200
    assert http_get_via(p.addr, running.plain.url("/"))[0] == 200
    assert http_get_via(p.addr, "http://127.0.0.9:1/")[0] == 403  # default deny
    p.wait_access(5)
    after = scrape(p)
    req = "aauth_proxy_requests_total"
    assert sample(after, "aauth_proxy_requests", req, action="sign", resource="r",
                  code="2xx") == 3
    assert sample(after, "aauth_proxy_requests", req, action="pass", code="2xx") == 1
    assert sample(after, "aauth_proxy_requests", req, action="deny", code="4xx") == 1
    assert sample(after, "aauth_proxy_received_bytes", "aauth_proxy_received_bytes_total") \
        == 300
    assert sample(after, "aauth_proxy_sent_bytes", "aauth_proxy_sent_bytes_total") >= 300
    for h, n in (("aauth_proxy_signing_duration_seconds", 3),
                 ("aauth_proxy_upstream_duration_seconds", 4)):
        buckets = [(float(s.labels["le"]), s.value) for s in after[h].samples
                   if s.name == h + "_bucket"]
        assert buckets == sorted(buckets), "bucket bounds out of order"
        values = [v for _, v in buckets]
        assert values == sorted(values), f"{h}: buckets not cumulative {values}"
        assert buckets[-1][0] == float("inf") and buckets[-1][1] == n
        assert sample(after, h, h + "_count") == n
        assert sample(after, h, h + "_sum") >= 0  # upstream: ms resolution
    # one held connection shows in the gauge
    with socket.create_connection(p.addr) as s:
        assert wait_until(lambda: sample(scrape(p), "aauth_proxy_client_connections") == 1)


def test_token_expiry_gauge_from_a_jwt(world):
    import base64
    exp = int(time.time()) + 3600
    claims = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).rstrip(b"=")
    world.set_token("eyJhbGciOiJub25lIn0." + claims.decode() + ".c2ln")
    p = world.start()
    v = sample(scrape(p), "aauth_proxy_token_expiry_seconds", resource="r")
    assert v is not None and 3500 < v <= 3600
    st, s = admin_json(p, "/status")
    assert 3500 < s["resources"][0]["expires_in"] <= 3600


def test_readyz_follows_token_state(world, token_file):
    p = world.start(resources={"opt": {"upstream": "http", "allow_plaintext": True,
                                       "token_file": token_file("opt-missing", "x") + ".no",
                                       "required": False}})
    st, body = admin_json(p, "/readyz")
    assert st == 200 and body["ready"] is True  # "opt" is not required
    os.unlink(world.token_path)
    st, body = admin_json(p, "/readyz")
    assert st == 503 and body["ready"] is False
    assert "token" in body["reason"]
    assert [w["resource"] for w in body["waiting"]] == ["r"]
    assert body["waiting"][0]["token_state"] == "empty"
    assert admin_json(p, "/status")[1]["resources"][0]["token_state"] == "empty"
    assert sample(scrape(p), "aauth_proxy_token_valid", resource="r", state="empty") == 0
    world.set_token(world.token)
    st, body = admin_json(p, "/readyz")
    assert st == 200, body
    # SIGTERM with nothing in flight: a clean exit at once
    p.signal(15)
    assert p.wait_exit(10) == 0


def test_ca_pem_and_fingerprint(proxy_factory, proxy_bin, agent_key, tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    key = d / "agent-key.pem"
    key.write_bytes(open(agent_key, "rb").read())
    os.chmod(key, 0o600)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"key": {"file": str(key)}}))
    assert run("ca", "init", "-c", str(cfg)).returncode == 0
    p = proxy_factory({"key": {"file": str(key)}})
    st, hd, body = admin_get(p, "/ca.pem")
    assert st == 200 and body == (d / "ca.pem").read_bytes()
    assert b"PRIVATE" not in body
    fp = subprocess.check_output(["openssl", "x509", "-in", str(d / "ca.pem"), "-noout",
                                  "-fingerprint", "-sha256"]).decode().strip().split("=", 1)[1]
    assert admin_json(p, "/status")[1]["ca_fingerprint"] == fp


def test_admin_listen_off_unix_and_checked(proxy_factory, proxy_bin, agent_key, tmp_path):
    p = proxy_factory({"admin": {"listen": []}})
    assert p.admin_addrs(timeout=0.5) == []
    assert not p.wait_log("admin listening", timeout=0.3)
    path = str(tmp_path / "admin.sock")
    p2 = proxy_factory({"admin": {"listen": ["unix:" + path]}})
    assert p2.admin_addrs() == ["unix:" + path]
    from fakes.daemon import RawConn
    with RawConn(path) as c:
        c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.response()[0] == 200
    for bad, why in (("0.0.0.0:8788", "loopback"), ("10.1.2.3:9", "loopback"),
                     (8788, "string")):
        cfg = tmp_path / "bad.json"
        cfg.write_text(json.dumps({"key": {"file": agent_key}, "admin": {"listen": [bad]}}))
        r = run("check-config", "-c", str(cfg))
        assert r.returncode != 0 and "admin.listen[0]" in r.stderr.decode() \
            and why in r.stderr.decode(), r.stderr
    cfg.write_text(json.dumps({"key": {"file": agent_key}, "admin": {"listen": "x"}}))
    r = run("check-config", "-c", str(cfg))
    assert r.returncode != 0 and "admin.listen" in r.stderr.decode()


def test_admin_listen_default(proxy_bin, agent_key, tmp_path):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the daemon binds
        try:
            s.bind(("127.0.0.1", 8788))
        except OSError:
            pytest.skip("127.0.0.1:8788 is in use on this machine")
    p = ProxyProcess(proxy_bin, {"key": {"file": agent_key}}, str(tmp_path / "c.json"))
    del p.config["admin"]  # the harness's port-0 default: the daemon's own applies
    p.start()
    try:
        assert p.admin_addrs() == ["127.0.0.1:8788"]
        assert admin_get(p, "/healthz")[0] == 200
    finally:
        assert p.stop() == []


def test_metrics_escape_label_values(world):
    name = 'odd "name"\\with\nnewline'
    p = world.start(resources={name: {"upstream": "http", "allow_plaintext": True,
                                      "token_file": world.token_path}},
                    rules=[{"host": "127.0.0.1", "port": world.resource.port,
                            "action": "sign", "resource": name}])
    assert http_get_via(p.addr, world.resource.url("/e"))[0] == 200
    p.wait_access(1)
    m = scrape(p)  # the parser would choke on a broken line
    assert sample(m, "aauth_proxy_requests", "aauth_proxy_requests_total", resource=name) == 1
    assert sample(m, "aauth_proxy_token_valid", resource=name, state="valid") == 1


def test_admin_connections_are_bounded(running):
    p = running.proxy
    held = []
    try:
        for _ in range(64):
            held.append(socket.create_connection(p.admin_addr(), timeout=5))
        extra = socket.create_connection(p.admin_addr(), timeout=5)
        extra.settimeout(5)
        assert extra.recv(1) == b""  # closed at once: over the bound
        extra.close()
        # the proxy port is unaffected
        assert http_get_via(p.addr, running.resource.url("/still"))[0] == 200
    finally:
        for s in held:
            s.close()

    def healthy():
        try:
            return admin_get(p, "/healthz")[0] == 200
        except (EOFError, OSError):  # an old one not yet seen closing
            return False
    assert wait_until(healthy)
