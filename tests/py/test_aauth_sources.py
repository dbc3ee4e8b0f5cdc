"""Where the agent token and the resource token come from, black box: a
minted agent+jwt (verified here against the agent's public key, claim by
claim, a new jti every time), a file, a command (its stdout; a failing,
babbling or hanging command is reported and killed, never blocking
anything), and a signed GET of a URL. Token requests are always signed
with the lumoauth profile, authorization covered empty, Agent-Auth
outside the signature."""

import json
import os
import sys
import time

from aauth_helpers import (AGENT_ISS, aauth_cfg, aresource, assert_no_secrets, get,  # noqa: F401
                           get_json, issuer, lines_with, wait_status, write_secret)
from fakes.issuer import verify_agent_jwt


def test_minted_agent_token_verifies_against_the_agent_key(proxy_factory, issuer, aresource,
                                                           tmp_path, pubkey):
    issuer.lifetime = 2
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path))
    reqs = issuer.wait_token_requests(2, timeout=10)
    assert [r.verdict for r in reqs] == ["valid", "valid"], issuer.token_requests()
    jtis = set()
    for r in reqs:
        aa = r.get("agent-auth")
        assert aa.startswith("agent_token=")
        tok = aa[len("agent_token="):]
        header, claims = verify_agent_jwt(tok, pubkey, aud=issuer.url, iss=AGENT_ISS,
                                          sub="user-7")
        assert header == {"typ": "agent+jwt", "alg": "EdDSA", "kid": "key-1"}
        assert claims["exp"] - claims["iat"] == 300
        assert abs(claims["iat"] - time.time()) < 30
        jtis.add(claims["jti"])
        # Agent-Auth is not covered; authorization is, with an empty value.
        si = r.get("signature-input")
        assert '"authorization"' in si and "agent-auth" not in si
        assert r.get("authorization") is None
    assert len(jtis) == 2, "an agent token was reused"
    assert_no_secrets(p.stderr_text(), issuer)


def test_agent_and_resource_tokens_from_files(proxy_factory, issuer, aresource, tmp_path):
    issuer.agent_token = "agt-file-" + "f" * 20
    agent = write_secret(tmp_path / "agent.jwt", issuer.agent_token)
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path, agent_token={"file": agent}))
    assert wait_status(p, aresource.url("/f"))[0] == 200
    assert_no_secrets(p.stderr_text(), issuer)


def script(tmp_path, name, body):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    os.chmod(path, 0o700)
    return str(path)


def test_tokens_from_commands(proxy_factory, issuer, aresource, tmp_path):
    issuer.agent_token = "agt-cmd-" + "c" * 20
    issuer.resource_tokens.add("rt-cmd-" + "r" * 12)
    agent = script(tmp_path, "agent.sh", f"echo stderr noise >&2; echo {issuer.agent_token}")
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path,
                                agent_token={"command": [agent]},
                                resource_token={"command": ["/bin/echo",
                                                            "rt-cmd-" + "r" * 12]}))
    assert wait_status(p, aresource.url("/c"))[0] == 200
    assert issuer.token_requests()[0].json["resource_token"] == "rt-cmd-" + "r" * 12
    assert "stderr noise" not in p.stderr_text()
    assert_no_secrets(p.stderr_text(), issuer)


def test_bad_commands_are_reported_not_fatal(proxy_factory, issuer, aresource, plain,
                                             tmp_path):
    cases = [
        (script(tmp_path, "fail.sh", "echo half-a-token; exit 3"), "exited with status 3"),
        (script(tmp_path, "babble.sh", "head -c 200000 /dev/zero | tr '\\0' a"),
         "wrote more than 65536 bytes"),
        (script(tmp_path, "crlf.sh", "printf 'abc\\r\\nX-Evil: 1'"), "not allowed in a token"),
        ("/nonexistent/helper", "cannot run /nonexistent/helper"),
    ]
    for cmd, reason in cases:
        cfg = aauth_cfg(issuer, aresource, tmp_path, agent_token={"command": [cmd]})
        p = proxy_factory(cfg)
        st, _, body = wait_status(p, aresource.url("/x"), 503, timeout=5)
        body = json.loads(body)
        assert reason in body["last_error"], (cmd, body)
        assert p.alive()
        assert issuer.token_requests() == []
        assert "half-a-token" not in p.stderr_text()


def test_hanging_command_is_killed_and_blocks_nothing(proxy_factory, issuer, aresource, plain,
                                                      tmp_path):
    hang = script(tmp_path, "hang.sh", "sleep 60")
    cfg = aauth_cfg(issuer, aresource, tmp_path, agent_token={"command": [hang]})
    cfg["rules"].append({"host": "127.0.0.2", "port": plain.port, "action": "pass"})
    p = proxy_factory(cfg)
    t0 = time.monotonic()
    for _ in range(5):
        assert get(p, plain.url("/free"))[0] == 200
    assert time.monotonic() - t0 < 2
    ok = p.wait_for(lambda lines: any("did not finish within 10000 ms" in ln for ln in lines),
                    timeout=20)
    assert ok, p.stderr_text()[-2000:]
    st, _, body = get_json(p, aresource.url("/x"))
    assert st == 503 and "killed" in body["last_error"], body


def test_resource_token_from_a_signed_url(proxy_factory, issuer, aresource, tmp_path):
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path,
                                resource_token={"url": issuer.url + "/resource-token"}))
    assert wait_status(p, aresource.url("/u"))[0] == 200
    gets = [r for r in issuer.requests if r.path.endswith("/resource-token")]
    assert gets and all(r.verdict == "valid" for r in gets), gets
    assert gets[0].get("authorization") is None
    auth = issuer.token_requests(["auth"])[0]
    assert auth.json["resource_token"].startswith("rt-url-")
    assert_no_secrets(p.stderr_text(), issuer)


def test_agent_token_file_is_reread_when_it_changes(proxy_factory, issuer, aresource,
                                                    tmp_path):
    issuer.lifetime = 2
    issuer.agent_token = "agt-one-" + "1" * 20
    agent = write_secret(tmp_path / "agent.jwt", issuer.agent_token)
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path, agent_token={"file": agent}))
    assert wait_status(p, aresource.url("/1"))[0] == 200
    issuer.agent_token = "agt-two-" + "2" * 20  # the old one is refused now
    write_secret(tmp_path / "agent.jwt.new", issuer.agent_token)
    os.replace(tmp_path / "agent.jwt.new", agent)
    n = len(issuer.token_requests())
    reqs = issuer.wait_token_requests(n + 1, timeout=10)
    assert reqs[n].verdict == "valid" and reqs[n].get("agent-auth").endswith("2" * 20)
    assert wait_status(p, aresource.url("/2"))[0] == 200


def test_agent_token_command_runs_again_only_before_exp(proxy_factory, issuer, aresource,
                                                        tmp_path):
    """A command's agent token (a JWT) is reused until shortly before its
    exp; an opaque one is fetched for every token request."""
    import base64
    issuer.lifetime = 1  # a refresh every 0.8 s
    exp = int(time.time()) + 3600
    claims = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).rstrip(b"=").decode()
    jwt = f"eyJhbGciOiJFZERTQSJ9.{claims}.c2ln"
    issuer.agent_token = jwt
    runs = tmp_path / "runs"
    cmd = script(tmp_path, "agent.sh", f"echo run >> {runs}; echo {jwt}")
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path, agent_token={"command": [cmd]}))
    assert len(issuer.wait_token_requests(4, timeout=10)) >= 4
    assert runs.read_text().count("run") == 1
    assert wait_status(p, aresource.url("/c"))[0] == 200
