"""Live reload (SIGHUP) and the drain (SIGTERM), issue 10: a bad config is
rejected while the old one keeps serving, a good one changes routing for
new requests while a streamed response started before it completes, and
SIGTERM lets a stream finish — but not past limits.drain_timeout_ms."""

import json
import signal
import threading
import time

from fakes.daemon import http_get_via, wait_until
from ops_helpers import Stream, admin_json, rewrite_config, sample, scrape, wait_log_count


def _hammer(proxy, url, stop, results):
    """Requests, one after another, until stop is set: every status kept."""
    while not stop.is_set():
        try:
            results.append(http_get_via(proxy.addr, url, timeout=10)[0])
        except Exception as e:  # noqa: BLE001 — a failure is what we count
            results.append(repr(e))


def test_reload_bad_then_good_while_streaming(world):
    p = world.start()
    plain_url = world.plain.url("/p")
    assert http_get_via(p.addr, plain_url)[0] == 200  # a pass rule today
    s = Stream(p, world.resource, "reload")
    s.wait_event(1)  # mid-response from here on
    stop, results = threading.Event(), []
    t = threading.Thread(target=_hammer, args=(p, world.resource.url("/h"), stop, results))
    t.start()
    try:
        # 1. a bad config: rejected, reported, the old one keeps serving
        good = p.config
        bad = json.loads(json.dumps(good))
        bad["limits"]["max_body_bytes"] = "lots"
        rewrite_config(p, bad)
        p.signal(signal.SIGHUP)
        msgs = p.wait_log("reload rejected")
        assert msgs and "limits.max_body_bytes" in msgs[0]["msg"], p.stderr_text()[-2000:]
        assert msgs[0]["level"] == "error"
        st, status = admin_json(p, "/status")
        assert status["reload"]["failures"] == 1 and status["reload"]["last_ok"] is False
        assert "limits.max_body_bytes" in status["reload"]["last_error"]
        assert http_get_via(p.addr, plain_url)[0] == 200  # still the old rules

        # a key that cannot be loaded is just as rejected (built before the swap)
        nokey = json.loads(json.dumps(good))
        nokey["key"]["file"] = good["key"]["file"] + ".missing"
        rewrite_config(p, nokey)
        p.signal(signal.SIGHUP)
        assert wait_log_count(p, "reload rejected", 2)
        assert http_get_via(p.addr, plain_url)[0] == 200

        # 2. a good config that denies the plain host: new requests see it
        new = json.loads(json.dumps(good))
        new["rules"] = [r for r in new["rules"] if r["action"] != "pass"]
        rewrite_config(p, new)
        p.signal(signal.SIGHUP)
        assert p.wait_log("reloaded "), p.stderr_text()[-2000:]
        assert http_get_via(p.addr, plain_url)[0] == 403
        st, status = admin_json(p, "/status")
        assert status["reload"]["reloads"] == 1 and status["reload"]["last_ok"] is True
        assert status["reload"]["last_error"] is None
        m = scrape(p)
        assert sample(m, "aauth_proxy_config_reloads", "aauth_proxy_config_reloads_total") == 1
        assert sample(m, "aauth_proxy_config_reload_failures",
                      "aauth_proxy_config_reload_failures_total") == 2
    finally:
        stop.set()
        t.join(30)
    # the stream begun before all this completes on its generation
    data = s.finish()
    assert data.count(b"event: tick") == s.n
    assert results and all(r == 200 for r in results), results
    # the signed resource saw valid signatures throughout
    assert all(r.verdict == "valid" for r in world.resource.records()), \
        [r.reason for r in world.resource.records() if r.verdict != "valid"]


def test_reload_adds_and_removes_listeners_and_log_level(world):
    p = world.start()
    new = json.loads(json.dumps(p.config))
    new["listen"] = ["127.0.0.1:0", "[::1]:0"] if _has_v6() else ["127.0.0.1:0", "127.0.0.3:0"]
    rewrite_config(p, new)
    p.signal(signal.SIGHUP)
    assert p.wait_log("reloaded "), p.stderr_text()[-3000:]
    added = [o["msg"] for o in p.log_messages() if o["msg"].startswith("listening on ")]
    assert len(added) == 2, added  # the kept one is not reopened
    host, port = added[1][len("listening on "):].rsplit(":", 1)
    addr = (host.strip("[]"), int(port))
    assert http_get_via(addr, world.resource.url("/via-new"))[0] == 200
    # back to one listener: the added one closes
    rewrite_config(p, json.loads(json.dumps(p.config)) | {"listen": ["127.0.0.1:0"]})
    p.signal(signal.SIGHUP)
    assert wait_log_count(p, "reloaded ", 2), p.stderr_text()[-3000:]
    assert p.wait_log("no longer listening on")
    import socket
    try:
        socket.create_connection(addr, timeout=2).close()
        raise AssertionError("the removed listener still accepts")
    except ConnectionRefusedError:
        pass
    assert http_get_via(p.addr, world.resource.url("/old"))[0] == 200
    # log.level changes on reload: at warn, the next reload's info lines go
    quiet = json.loads(json.dumps(p.config))
    quiet["log"]["level"] = "warn"
    rewrite_config(p, quiet)
    p.signal(signal.SIGHUP)
    assert wait_until(lambda: admin_json(p, "/status")[1]["reload"]["reloads"] == 3)
    p.signal(signal.SIGHUP)
    assert wait_until(lambda: admin_json(p, "/status")[1]["reload"]["reloads"] == 4)
    assert len([o for o in p.log_messages() if o["msg"].startswith("SIGHUP: reloading")]) == 3


def _has_v6():
    import socket
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_sigterm_lets_a_stream_finish_then_exits_0(world):
    p = world.start()
    s = Stream(p, world.resource, "term")
    s.wait_event(1)
    p.signal(signal.SIGTERM)
    assert p.wait_log("SIGTERM: no longer accepting")
    st, body = admin_json(p, "/readyz")  # the admin port answers while draining
    assert st == 503 and body["reason"] == "shutting down"
    assert p.alive()
    data = s.finish()
    assert data.count(b"event: tick") == s.n
    assert p.wait_exit(10) == 0


def test_drain_timeout_exits_anyway(world):
    p = world.start(limits={"drain_timeout_ms": 700})
    s = Stream(p, world.resource, "stuck")  # never acknowledged: never ends
    s.wait_event(1)
    t0 = time.monotonic()
    p.signal(signal.SIGTERM)
    assert p.wait_exit(10) == 0
    took = time.monotonic() - t0
    assert 0.6 < took < 5, took
    assert p.wait_log("drain period over")
    s.close()


def test_drain_timeout_is_checked(tmp_path, agent_key):
    from cli_helpers import run
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"key": {"file": agent_key}, "limits": {"drain_timeout_ms": -1}}))
    r = run("check-config", "-c", str(cfg))
    assert r.returncode != 0 and "limits.drain_timeout_ms" in r.stderr.decode()


def test_reload_reopens_the_access_log(world, tmp_path):
    log = tmp_path / "access.log"
    p = world.start(log={"access_log": str(log)})
    assert http_get_via(p.addr, world.resource.url("/one"))[0] == 200
    assert wait_until(lambda: "/one" in log.read_text())
    log.rename(tmp_path / "access.log.1")  # what logrotate does
    p.signal(signal.SIGHUP)
    assert p.wait_log("reloaded ")
    assert http_get_via(p.addr, world.resource.url("/two"))[0] == 200
    assert wait_until(lambda: log.exists() and "/two" in log.read_text())
    assert "/two" not in (tmp_path / "access.log.1").read_text()


def test_reload_loads_a_new_key_and_ca(world, proxy_bin, tmp_path):
    import os
    import shutil
    from cli_helpers import run
    d = tmp_path / "state"
    d.mkdir()
    key = d / "agent-key.pem"
    shutil.copyfile(p_key(tmp_path), key)
    os.chmod(key, 0o600)
    p = world.start(key={"file": str(key)})
    from ops_helpers import admin_get
    st, s = admin_json(p, "/status")
    old = s["key_thumbprint"]
    assert admin_get(p, "/ca.pem")[0] == 404
    # a new key in place and a CA beside it, then SIGHUP
    assert run("keygen", "--out", str(d / "new.pem")).returncode == 0
    os.replace(d / "new.pem", key)
    assert run("ca", "init", "-c", p.config_path).returncode == 0
    p.signal(signal.SIGHUP)
    assert p.wait_log("reloaded ")
    st, s = admin_json(p, "/status")
    assert s["key_thumbprint"] != old and s["ca_fingerprint"]
    assert admin_get(p, "/ca.pem")[0] == 200
    assert http_get_via(p.addr, world.resource.url("/x"))[0] == 401  # the resource knows the old key


def p_key(tmp_path):
    from cli_helpers import vector
    return vector("lumoauth/agent-key.pem")
