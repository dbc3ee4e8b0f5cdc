"""AAuth token lifecycle, black box: the real daemon fetches tokens from a
fake issuer (fakes/issuer.py, written from aauth-wire.md) and signs for a
fake resource that accepts only the issuer's unexpired tokens. Lifetimes
are a few seconds, so refreshes happen during each test.

Proves: continuous traffic across several lifetimes with zero failures,
one auth then refreshes, one fetch per refresh under concurrent load;
requests before the first token wait for it (many waiters, one fetch);
an issuer outage shorter than the token's remaining lifetime costs
nothing, a longer one gives 503 (resource and last error named,
Proxy-Status) after expiry and recovers by itself; a restart with
state_file needs no new auth; invalid_grant on refresh falls back to
auth; the old refresh token is kept when an answer carries none;
access_token and a JWT exp are understood. No secret in any log line."""

import json
import os
import stat
import threading
import time

import pytest

from aauth_helpers import (aauth_cfg, aresource, assert_no_secrets, get, get_json,  # noqa: F401
                           issuer, lines_with, traffic, wait_status)


def test_continuous_traffic_across_lifetimes(proxy_factory, issuer, aresource, tmp_path):
    issuer.lifetime = 3  # refresh at 2.4 s
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path))
    assert issuer.wait_token_requests(1)
    t0 = time.monotonic()
    out = traffic(p, aresource.url("/data"), seconds=9, threads=6)
    elapsed = time.monotonic() - t0
    bad = [(round(t - t0, 2), st, b[:200]) for t, st, b in out if st != 200]
    assert not bad, f"{len(bad)} of {len(out)} requests failed: {bad[:5]}"
    assert len(out) > 100, len(out)
    reqs = issuer.token_requests()
    types = [r.type for r in reqs]
    assert types[0] == "auth" and set(types[1:]) == {"refresh"}, types
    assert all(r.verdict == "valid" and r.answer[0] == 200 for r in reqs), reqs
    # Optional members that are not configured are left out, not null.
    assert set(reqs[0].json) == {"request_type", "resource_token"}, reqs[0].json
    assert set(reqs[1].json) == {"request_type", "refresh_token", "resource_token"}
    # One fetch per refresh however many clients: fetches are about 80%
    # of a lifetime apart, never two at once.
    refreshes = types.count("refresh")
    assert 2 <= refreshes <= elapsed / 2.4 + 1.5, (refreshes, elapsed)
    gaps = [b.time - a.time for a, b in zip(reqs, reqs[1:])]
    assert min(gaps) > 1.8, gaps
    # In the background at about 80% of the lifetime, before the token
    # expires (not when a request finds it expired).
    assert max(gaps) < 2.9, gaps
    # The refresh token is not rotated by the issuer: every refresh sends
    # the one the auth gave.
    rts = {r.json["refresh_token"] for r in reqs if r.type == "refresh"}
    assert len(rts) == 1, rts
    # The resource saw only valid, unexpired tokens, several of them.
    recs = aresource.records()
    assert all(r["verdict"] == "valid" for r in recs)
    assert len({r["token"] for r in recs}) >= 3
    assert_no_secrets(p.stderr_text(), issuer)


def test_requests_before_the_first_token_wait(proxy_factory, issuer, aresource, tmp_path):
    """A slow first fetch: 60 requests arrive before the token; they wait
    (bounded by connect_timeout_ms), none fails, the issuer sees one auth."""
    issuer.set_mode("slow", delay=1.2)
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path))
    results = []
    lock = threading.Lock()

    def one():
        r = get(p, aresource.url("/early"), timeout=20)
        with lock:
            results.append(r[0])

    ts = [threading.Thread(target=one) for _ in range(60)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert results.count(200) == 60, results
    assert [r.type for r in issuer.token_requests()] == ["auth"]


def test_wait_is_bounded_by_connect_timeout(proxy_factory, issuer, aresource, tmp_path):
    issuer.set_mode("timeout")
    cfg = aauth_cfg(issuer, aresource, tmp_path)
    cfg["upstream"]["connect_timeout_ms"] = 700
    p = proxy_factory(cfg)
    t0 = time.monotonic()
    st, hd, body = get_json(p, aresource.url("/x"))
    took = time.monotonic() - t0
    assert st == 503, body
    assert body["error"] == "token_unavailable" and body["resource"] == "docs", body
    assert "connect_timeout_ms" in body["detail"], body
    assert hd.get("proxy-status"), hd
    assert 0.5 < took < 3, took
    issuer.set_mode("ok")


def test_outage_shorter_than_remaining_lifetime(proxy_factory, issuer, aresource, tmp_path):
    issuer.lifetime = 6  # refresh at 4.8 s, expiry at 6 s
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path))
    assert wait_status(p, aresource.url("/0"))[0] == 200
    first = issuer.token_requests()[0]
    issuer.go_down()  # connections refused from now on
    back = threading.Timer(max(0.1, first.time + 5.3 - time.monotonic()), issuer.come_up)
    back.start()
    try:
        out = traffic(p, aresource.url("/o"), seconds=8.5, threads=3)
    finally:
        back.join()
    bad = [(st, b[:200]) for _, st, b in out if st != 200]
    assert not bad, bad[:5]
    reqs = issuer.token_requests()
    assert [r.type for r in reqs][:2] == ["auth", "refresh"], reqs
    # The failed attempt was logged once, with its reason.
    warn = lines_with(p, "connection_refused", "warn")
    assert len(warn) == 1, "\n".join(warn) + "\n" + repr(reqs)
    assert "stays in use" in warn[0], warn
    assert_no_secrets(p.stderr_text(), issuer)


def test_outage_longer_than_lifetime_503_then_recovers(proxy_factory, issuer, aresource,
                                                        tmp_path):
    issuer.lifetime = 3
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path))
    assert wait_status(p, aresource.url("/a"))[0] == 200
    issuer.go_down()
    down_at = time.monotonic()
    # After the token's expiry: fail closed, saying why.
    r = None
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        r = get_json(p, aresource.url("/b"))
        if r[0] == 503:
            break
        time.sleep(0.1)
    st, hd, body = r
    assert st == 503, r
    assert body["error"] == "token_unavailable", body
    assert body["resource"] == "docs", body
    assert "connection_refused" in body.get("last_error", ""), body
    assert "aauth-proxy" in hd.get("proxy-status", ""), hd
    assert time.monotonic() - down_at < 4.5  # by its expiry, not later
    assert p.wait_for(lambda _: any("expired" in m
                                    for m in lines_with(p, "resource docs", "warn")), 5)
    # Several seconds of outage, then the issuer returns.
    time.sleep(max(0, down_at + 6 - time.monotonic()))
    issuer.come_up()
    up_at = time.monotonic()
    r = wait_status(p, aresource.url("/c"), 200, timeout=15)
    assert r[0] == 200, r
    assert time.monotonic() - up_at < 10
    # The failure was logged once, not once per attempt.
    refused = [m for m in lines_with(p, "connection_refused", "warn") if "retrying" in m]
    assert len(refused) == 1, refused
    assert_no_secrets(p.stderr_text(), issuer)


def test_restart_with_state_file_makes_no_new_auth(proxy_factory, issuer, aresource, tmp_path):
    issuer.lifetime = 30
    state = tmp_path / "state" / "docs.json"
    state.parent.mkdir()
    cfg = aauth_cfg(issuer, aresource, tmp_path, state_file=str(state))
    p = proxy_factory(cfg)
    assert wait_status(p, aresource.url("/1"))[0] == 200
    assert [r.type for r in issuer.token_requests()] == ["auth"]
    assert p.wait_for(lambda _: state.exists(), 5)
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    assert p.stop() == []
    p.expect_exit = True
    n = len(issuer.token_requests())
    p2 = proxy_factory(cfg)
    assert get(p2, aresource.url("/2"))[0] == 200
    time.sleep(0.5)
    assert len(issuer.token_requests()) == n, issuer.token_requests()
    assert any("from " + str(state) in m for m in lines_with(p2, "resource docs"))
    assert_no_secrets(p.stderr_text() + p2.stderr_text(), issuer)


def test_restart_with_expired_state_uses_the_refresh_token(proxy_factory, issuer, aresource,
                                                           tmp_path):
    issuer.lifetime = 2
    state = tmp_path / "docs.state"
    cfg = aauth_cfg(issuer, aresource, tmp_path, state_file=str(state))
    p = proxy_factory(cfg)
    assert wait_status(p, aresource.url("/1"))[0] == 200
    assert p.stop() == []
    p.expect_exit = True
    time.sleep(2.5)  # the saved token has expired
    issuer.requests.clear()
    p2 = proxy_factory(cfg)
    assert wait_status(p2, aresource.url("/2"))[0] == 200
    types = [r.type for r in issuer.token_requests()]
    assert types and "auth" not in types and types[0] == "refresh", types


def test_invalid_grant_on_refresh_falls_back_to_auth(proxy_factory, issuer, aresource, tmp_path):
    issuer.lifetime = 2
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path))
    issuer.wait_token_requests(1)
    issuer.set_mode("invalid_grant")
    reqs = issuer.wait_token_requests(3, timeout=10)
    assert [r.type for r in reqs[:3]] == ["auth", "refresh", "auth"], reqs
    assert reqs[1].answer == (400, "invalid_grant")
    issuer.set_mode("ok")
    out = traffic(p, aresource.url("/g"), seconds=1, threads=2)
    assert all(st == 200 for _, st, _ in out), out[:3]


def test_access_token_and_jwt_exp_are_understood(proxy_factory, issuer, aresource, tmp_path):
    """Older answers say access_token; without expires_in the lifetime
    comes from the token's JWT exp (refreshed before it)."""
    issuer.jwt_tokens = True
    issuer.omit_expires_in = True
    issuer.lifetime = 3
    orig = issuer._issue

    def older(rec, kind):
        out = orig(rec, kind)
        out["access_token"] = out.pop("auth_token")
        out["token_type"] = "Bearer"
        return out

    issuer._issue = older
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path))
    out = traffic(p, aresource.url("/j"), seconds=5, threads=2)
    assert all(st == 200 for _, st, _ in out), [o for o in out if o[1] != 200][:3]
    assert "refresh" in [r.type for r in issuer.token_requests()]


def test_clients_gone_while_waiting(proxy_factory, issuer, aresource, tmp_path):
    """Clients that hang up while their request waits for the first token
    leave nothing behind (the sanitizer build checks the memory)."""
    import socket
    issuer.set_mode("slow", delay=1.0)
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path))
    socks = []
    for i in range(20):
        s = socket.create_connection(p.addr)
        s.sendall(f"GET {aresource.url(f'/gone{i}')} HTTP/1.1\r\n"
                  f"Host: 127.0.0.1:{aresource.port}\r\n\r\n".encode())
        socks.append(s)
    time.sleep(0.2)
    for s in socks:
        s.close()
    issuer.wait_token_requests(1, timeout=10)
    issuer.set_mode("ok")
    assert wait_status(p, aresource.url("/after"))[0] == 200
    assert p.alive()
    assert not [r for r in aresource.records() if r["path"].startswith("/gone")]


def test_sigterm_while_requests_wait(proxy_factory, issuer, aresource, tmp_path):
    import signal
    issuer.set_mode("timeout")
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path))
    got = []
    t = threading.Thread(target=lambda: got.append(get(p, aresource.url("/w"), timeout=20)))
    t.start()
    time.sleep(0.5)
    p.signal(signal.SIGTERM)
    t.join(20)
    assert got and got[0][0] == 503, got  # answered, then the drain ends
    p.proc.wait(15)
    p.expect_exit = True
    assert p.proc.returncode == 0
    issuer.set_mode("ok")
