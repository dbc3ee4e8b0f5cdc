"""The aauth configuration and the `token` command, black box:
check-config names the field of every bad aauth value (JSON paths such as
resources.docs.aauth.issuer), an http:// issuer needs allow_plaintext,
token_file and aauth are alternatives; `aauth-proxy token` fetches once
per resource and prints state, expiry, scope and a short hash of the
token (never the token), or the consent URL, exiting 0 only when every
named resource holds a token; what it wrote to state_file lets `run`
start without a new auth."""

import base64
import hashlib
import json
import os
import subprocess

import pytest

from aauth_helpers import (aauth_cfg, aresource, assert_no_secrets, get, issuer,  # noqa: F401
                           wait_status)
from fakes.daemon import clean_env


def write_cfg(tmp_path, cfg, agent_key, name="cfg.json"):
    cfg = dict(cfg)
    cfg.setdefault("key", {"file": agent_key})
    path = tmp_path / name
    path.write_text(json.dumps(cfg))
    return str(path)


def cli(proxy_bin, *args, timeout=60):
    return subprocess.run([proxy_bin, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=clean_env(), stdin=subprocess.DEVNULL)


def short_hash(token):
    d = hashlib.sha256(token.encode()).digest()
    return base64.urlsafe_b64encode(d).decode()[:12]


BASE = {"issuer": "https://issuer.test/orgs/acme/api/v1",
        "agent_token": {"mint": {"iss": "https://agent.test"}},
        "resource_token": {"file": "rt.jwt"}}


@pytest.mark.parametrize("over,field,words", [
    ({"issuer": "http://issuer.test"}, "resources.docs.aauth.issuer", "allow_plaintext"),
    ({"issuer": "ftp://x"}, "resources.docs.aauth.issuer", "http"),
    ({"issuer": "https://u@issuer.test"}, "resources.docs.aauth.issuer", "user info"),
    ({"issuer": None}, "resources.docs.aauth.issuer", "required"),
    ({"agent_token": {"file": "a", "command": ["x"]}}, "resources.docs.aauth.agent_token",
     "exactly one"),
    ({"agent_token": {"url": "https://x.test"}}, "resources.docs.aauth.agent_token.url",
     "unknown field"),
    ({"agent_token": {"command": []}}, "resources.docs.aauth.agent_token.command", "non-empty"),
    ({"agent_token": {"command": ["ok", 3]}}, "resources.docs.aauth.agent_token.command[1]",
     "string"),
    ({"agent_token": {"mint": {"sub": "x"}}}, "resources.docs.aauth.agent_token.mint.iss",
     "required"),
    ({"agent_token": {"mint": {"iss": "https://a.test", "lifetime_s": 5}}},
     "resources.docs.aauth.agent_token.mint.lifetime_s", "out of range"),
    ({"resource_token": "fly"}, "resources.docs.aauth.resource_token", "challenge"),
    ({"resource_token": {"url": "http://r.test/rt"}}, "resources.docs.aauth.resource_token.url",
     "allow_plaintext"),
    ({"scope": ""}, "resources.docs.aauth.scope", "empty"),
    ({"redirect_uri": "http://127.0.0.1:8787"}, "resources.docs.aauth.redirect_uri", "path"),
    ({"state_file": 7}, "resources.docs.aauth.state_file", "string"),
    ({"refresh": 1}, "resources.docs.aauth.refresh", "unknown field"),
])
def test_check_config_names_the_aauth_field(proxy_bin, agent_key, tmp_path, over, field, words):
    a = {k: v for k, v in {**BASE, **over}.items() if v is not None}
    cfg = {"resources": {"docs": {"aauth": a}}}
    r = cli(proxy_bin, "check-config", "-c", write_cfg(tmp_path, cfg, agent_key))
    assert r.returncode == 1, r
    assert f"{field}: " in r.stderr and words in r.stderr, r.stderr


def test_check_config_token_file_and_aauth_are_alternatives(proxy_bin, agent_key, tmp_path):
    cfg = {"resources": {"docs": {"token_file": "t", "aauth": BASE}}}
    r = cli(proxy_bin, "check-config", "-c", write_cfg(tmp_path, cfg, agent_key))
    assert r.returncode == 1 and "resources.docs: token_file and aauth" in r.stderr, r.stderr
    cfg = {"resources": {"docs": {}}}
    r = cli(proxy_bin, "check-config", "-c", write_cfg(tmp_path, cfg, agent_key))
    assert r.returncode == 1 and "resources.docs.token_file" in r.stderr, r.stderr
    # Two resources cannot share a callback path: a code names no resource.
    red = {**BASE, "redirect_uri": "http://127.0.0.1:8787/.aauth/callback"}
    cfg = {"resources": {"a": {"aauth": red}, "b": {"aauth": red}}}
    r = cli(proxy_bin, "check-config", "-c", write_cfg(tmp_path, cfg, agent_key))
    assert r.returncode == 1 and "resources.b.aauth.redirect_uri" in r.stderr, r.stderr


def test_check_config_accepts_the_issue_example(proxy_bin, agent_key, tmp_path):
    cfg = {"resources": {"docs": {"profile": "lumoauth", "upstream": "https", "aauth": {
        "issuer": "https://app.lumoauth.dev/orgs/acme/api/v1",
        "agent_token": {"file": "agent.jwt"},
        "resource_token": {"file": "resource.jwt"},
        "scope": "documents:read",
        "redirect_uri": "http://127.0.0.1:8787/.aauth/callback",
        "state_file": None}}},
        "rules": [{"host": "docs.example.com", "action": "sign", "resource": "docs"}]}
    r = cli(proxy_bin, "check-config", "-c", write_cfg(tmp_path, cfg, agent_key))
    assert r.returncode == 0, r.stderr
    # The files do not exist yet: warnings naming the fields.
    assert "resources.docs.aauth.agent_token.file" in r.stderr, r.stderr
    assert "resources.docs.aauth.resource_token.file" in r.stderr, r.stderr
    for a in ({"command": ["/usr/bin/get-agent-token", "--json"]},
              {"mint": {"iss": "https://my-agent.example", "sub": "me", "lifetime_s": 300}}):
        cfg["resources"]["docs"]["aauth"]["agent_token"] = a
        cfg["resources"]["docs"]["aauth"]["resource_token"] = "challenge"
        r = cli(proxy_bin, "check-config", "-c", write_cfg(tmp_path, cfg, agent_key))
        assert r.returncode == 0, r.stderr


def test_token_command_fetches_and_prints_without_secrets(proxy_bin, agent_key, tmp_path,
                                                          issuer, aresource, proxy_factory):
    issuer.lifetime = 60
    issuer.scope = "documents:read"
    state = tmp_path / "docs.state"
    cfg = aauth_cfg(issuer, aresource, tmp_path, scope="documents:read",
                    state_file=str(state))
    path = write_cfg(tmp_path, cfg, agent_key)
    r = cli(proxy_bin, "token", "-c", path)
    assert r.returncode == 0, r.stdout + r.stderr
    tok = issuer.current_tokens()[0]
    assert f"token sha256 {short_hash(tok)}" in r.stdout, r.stdout
    assert r.stdout.startswith("docs: valid, expires in 5") or "expires in 6" in r.stdout, r.stdout
    assert 'scope "documents:read"' in r.stdout and "refresh token: yes" in r.stdout
    assert_no_secrets(r.stdout + r.stderr, issuer)
    assert [q.type for q in issuer.token_requests()] == ["auth"]
    # The daemon starts from what the command saved: no new auth.
    p = proxy_factory(cfg)
    assert get(p, aresource.url("/x"))[0] == 200
    assert [q.type for q in issuer.token_requests()] == ["auth"]
    # Again: one fetch (a refresh with the saved refresh token).
    r = cli(proxy_bin, "token", "-c", path, "--resource", "docs")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [q.type for q in issuer.token_requests()] == ["auth", "refresh"]


def test_token_command_consent_failure_and_usage(proxy_bin, agent_key, tmp_path, issuer,
                                                 aresource):
    cfg = aauth_cfg(issuer, aresource, tmp_path)
    path = write_cfg(tmp_path, cfg, agent_key)
    issuer.set_mode("consent")
    r = cli(proxy_bin, "token", "-c", path)
    assert r.returncode == 1, r
    assert "docs: consent required: open http://" in r.stdout and "request_token=" in r.stdout
    issuer.set_mode("invalid_scope")
    r = cli(proxy_bin, "token", "-c", path)
    assert r.returncode == 1 and "invalid_scope" in r.stdout, r.stdout
    issuer.go_down()
    r = cli(proxy_bin, "token", "-c", path)
    assert r.returncode == 1 and "connection_refused" in r.stdout, r.stdout
    r = cli(proxy_bin, "token", "-c", path, "--resource", "nope")
    assert r.returncode == 2 and "--resource 'nope'" in r.stderr, r.stderr
    r = cli(proxy_bin, "token")
    assert r.returncode == 2
    r = cli(proxy_bin, "token", "--help")
    assert r.returncode == 0 and "usage: aauth-proxy token" in r.stdout
    r = cli(proxy_bin, "--help")
    assert "  token " in r.stdout


def test_token_command_static_file(proxy_bin, agent_key, tmp_path):
    t = tmp_path / "tok"
    t.write_text("static-token-value\n")
    os.chmod(t, 0o600)
    cfg = {"resources": {"r": {"token_file": str(t)}}}
    r = cli(proxy_bin, "token", "-c", write_cfg(tmp_path, cfg, agent_key))
    assert r.returncode == 0, r.stdout + r.stderr
    assert short_hash("static-token-value") in r.stdout
    assert "static-token-value" not in r.stdout + r.stderr
    os.unlink(t)
    r = cli(proxy_bin, "token", "-c", write_cfg(tmp_path, cfg, agent_key))
    assert r.returncode == 1 and "No such file" in r.stdout, r.stdout
