"""Config and error messages that say what to do: "did you mean", a rule
host with a port, the 403 for a host a rule names on another port, the
warnings for no rules, an empty token file and a placeholder token (printed
by check-config, logged by `run` at load), check-config's default path, and
the stale-descriptor message at debug level."""

import json
import os
import secrets
import shutil

import pytest

from cli_helpers import REPO, private_copy, run
from fakes.daemon import free_port, raw_request

SYSTEM_CONFIG = "/etc/aauth-proxy/aauth-proxy.json"


def check(tmp_path, cfg, cwd=None):
    private_copy(tmp_path, "lumoauth/agent-key.pem", "agent.pem")
    cfg = dict({"key": {"file": "agent.pem"}}, **cfg)
    p = tmp_path / "cfg.json"
    p.write_text(json.dumps(cfg))
    r = run("check-config", "-c", p, cwd=cwd)
    return r, p


def write_token(tmp_path, name, value, mode=0o600):
    p = tmp_path / name
    p.write_text(value)
    os.chmod(p, mode)
    return str(p)


def one_rule(**over):
    return {"rules": [dict({"host": "api.test", "action": "pass"}, **over)]}


def test_unknown_field_did_you_mean(tmp_path):
    r, p = check(tmp_path, {"defualt_action": "deny"})
    assert r.returncode == 1 and r.stdout == b""
    assert b"defualt_action: unknown field; did you mean \"default_action\"?" in r.stderr
    r, _ = check(tmp_path, {"rules": [{"host": "a.test", "action": "pass", "prot": 80}]})
    assert r.returncode == 1 and b"rules[0].prot" in r.stderr
    assert b"did you mean \"port\"?" in r.stderr
    # Far from every field: no guess.
    r, _ = check(tmp_path, {"frobnicate": 1})
    assert r.returncode == 1 and b"frobnicate: unknown field" in r.stderr
    assert b"did you mean" not in r.stderr


@pytest.mark.parametrize("host,hint", [
    ("api.test:8080", b'"host": "api.test", "port": 8080'),
    ("http://api.test/v1", b'"host": "api.test"'),
])
def test_rule_host_with_port_points_to_port(tmp_path, host, hint):
    r, _ = check(tmp_path, one_rule(host=host))
    assert r.returncode == 1 and r.stdout == b""
    assert b"rules[0].host" in r.stderr and hint in r.stderr, r.stderr


def test_403_names_the_rules_port(proxy_factory):
    px = proxy_factory({
        "default_action": "deny",
        "rules": [{"host": "api.test", "port": 443, "action": "pass"},
                  {"host": "other.test", "action": "pass"}],
    })
    st, _, body = raw_request(
        px.addr, b"GET http://api.test/x HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n")
    detail = json.loads(body)["detail"]
    assert st == 403
    assert "no rule names api.test:80" in detail
    assert "rule 'api.test' names port 443 only" in detail
    assert "http:// URLs without one use port 80" in detail
    st, _, body = raw_request(
        px.addr, b"GET http://api.test:8080/ HTTP/1.1\r\nHost: api.test:8080\r\n"
                 b"Connection: close\r\n\r\n")
    assert st == 403 and "give it 8080" in json.loads(body)["detail"]
    # No rule for the host on any port: no port hint.
    st, _, body = raw_request(
        px.addr, b"GET http://nope.test/ HTTP/1.1\r\nHost: nope.test\r\nConnection: close\r\n\r\n")
    assert st == 403 and "names port" not in json.loads(body)["detail"]


def test_check_config_warnings(tmp_path):
    # No rules at all: loads, but says nothing will be signed.
    r, p = check(tmp_path, {})
    assert r.returncode == 0
    assert b"warning: " + str(p).encode() + b": no rules" in r.stderr
    placeholder = "replace-me-with-an-access-token"
    cfg = {
        "resources": {
            "empty": {"token_file": write_token(tmp_path, "empty", "\n")},
            "ph": {"token_file": write_token(tmp_path, "ph", placeholder + "\n")},
            "real": {"token_file": write_token(tmp_path, "real", "tok-" + secrets.token_urlsafe(32))},
        },
        "rules": [{"host": h + ".test", "action": "sign", "resource": h}
                  for h in ("empty", "ph", "real")],
    }
    r, _ = check(tmp_path, cfg)
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    lines = [ln for ln in err.splitlines() if "warning" in ln]
    assert len(lines) == 2, err
    assert any("resources.empty.token_file" in ln and "is empty" in ln and "503" in ln
               for ln in lines), err
    assert any("resources.ph.token_file" in ln and "looks like a placeholder" in ln
               and "replace-me" in ln for ln in lines), err
    # What matched is named; the token itself never is.
    assert placeholder not in err
    assert "resources.real" not in err


def test_run_logs_the_warnings_at_load(proxy_factory, tmp_path):
    px = proxy_factory({"rules": []})
    msgs = px.wait_for(lambda ls: [ln for ln in ls if '"level":"warn"' in ln])
    assert any("no rules: nothing will be signed" in ln for ln in msgs), msgs
    tok = write_token(tmp_path, "ph", "CHANGEME")
    px = proxy_factory({
        "resources": {"r": {"token_file": tok}},
        "rules": [{"host": "a.test", "action": "sign", "resource": "r"}],
    })
    msgs = px.wait_for(lambda ls: [ln for ln in ls if '"level":"warn"' in ln])
    assert any("resources.r.token_file" in ln and "placeholder" in ln for ln in msgs), msgs
    assert not any("CHANGEME" in ln for ln in px.snapshot())


def test_check_config_default_path(tmp_path):
    """Without -c: conf/aauth-proxy.json relative to where it runs (the
    repository root), and it says which file it checked."""
    shutil.copytree(REPO / "conf", tmp_path / "conf")
    (tmp_path / "state" / "tokens").mkdir(parents=True)
    assert run("keygen", "--out", tmp_path / "state" / "agent-key.pem").returncode == 0
    write_token(tmp_path / "state" / "tokens", "demo", "demo-" + secrets.token_hex(16))
    r = run("check-config", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert b"no -c FILE given; checking conf/aauth-proxy.json" in r.stderr
    assert r.stdout.startswith(b"conf/aauth-proxy.json: ok")
    # Nowhere to look: a usage error naming both places.
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run("check-config", cwd=empty)
    if os.path.exists(SYSTEM_CONFIG):
        assert SYSTEM_CONFIG.encode() in r.stderr
    else:
        assert r.returncode == 2
        assert b"conf/aauth-proxy.json" in r.stderr and SYSTEM_CONFIG.encode() in r.stderr


def test_stale_descriptor_message_is_debug(proxy_factory):
    """After a name lookup libcurl closes its resolver's socketpair itself;
    the number coming back is routine, so it is logged at debug level only.
    Two failing lookups and a request after each make it happen."""
    px = proxy_factory({
        "log": {"level": "debug"},
        "default_action": "pass",
        "rules": [{"host": "127.0.0.1", "action": "pass"}],
        "upstream": {"connect_timeout_ms": 3000},
    })
    port = free_port()
    for host in (b"no-such-host.invalid", b"127.0.0.1:%d" % port) * 2:
        st, _, _ = raw_request(px.addr, b"GET http://" + host + b"/ HTTP/1.1\r\nHost: " + host
                               + b"\r\nConnection: close\r\n\r\n", timeout=20)
        assert st in (502, 504)
    lines = [o for o in px.log_messages() if "closed behind the upstream" in o["msg"]]
    assert lines, "the scenario no longer makes the message appear:\n" + px.stderr_text()
    assert all(o["level"] == "debug" for o in lines), lines
