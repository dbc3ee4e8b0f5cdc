"""`aauth-proxy check-config`: a working config passes; every error names
the file, the field and the reason; the key is checked as `run` would."""

import json
import os
import shutil

from cli_helpers import REPO, private_copy, run


def write_config(tmp_path, cfg):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    return path


def base_config(tmp_path):
    private_copy(tmp_path, "lumoauth/agent-key.pem", "agent.pem")
    (tmp_path / "tok").write_text("t0k\n")
    os.chmod(tmp_path / "tok", 0o600)
    return {
        "key": {"file": "agent.pem"},
        "resources": {"api": {"token_file": "tok"}},
        "rules": [{"host": "api.example.com", "action": "sign",
                   "resource": "api"}],
    }


def test_valid_config_reports_summary(tmp_path):
    p = write_config(tmp_path, base_config(tmp_path))
    r = run("check-config", "-c", p)
    assert r.returncode == 0, r.stderr
    assert b"ok: 1 listener(s), 1 resource(s), 1 rule(s)" in r.stdout
    assert r.stderr == b""


def test_shipped_default_config_checks_once_key_exists(tmp_path):
    """conf/aauth-proxy.json is what `./dev.sh run` starts: with its key
    in ../state it must validate (paths are relative to the config)."""
    conf = tmp_path / "conf"
    conf.mkdir()
    shutil.copy(REPO / "conf" / "aauth-proxy.json", conf)
    (tmp_path / "state").mkdir()
    r = run("keygen", "--out", tmp_path / "state" / "agent-key.pem")
    assert r.returncode == 0, r.stderr
    r = run("check-config", "-c", conf / "aauth-proxy.json")
    assert r.returncode == 0, r.stderr
    # The demo token does not exist yet: a warning naming the field.
    assert b"resources.demo.token_file" in r.stderr
    assert b"503" in r.stderr


def test_shipped_config_own_api_is_one_edit_away(tmp_path):
    """The commented example API in conf/aauth-proxy.json: uncommenting its
    two lines (what the README says to do) gives a valid config with an
    example-api sign rule; commented, it is not active at all."""
    conf = tmp_path / "conf"
    conf.mkdir()
    text = (REPO / "conf" / "aauth-proxy.json").read_text()
    (tmp_path / "state" / "tokens").mkdir(parents=True)
    assert run("keygen", "--out", tmp_path / "state" / "agent-key.pem").returncode == 0
    for name in ("demo", "example-api"):
        tok = tmp_path / "state" / "tokens" / name
        tok.write_text("t-" + name + "-0123456789abcdef\n")
        os.chmod(tok, 0o600)
    (conf / "aauth-proxy.json").write_text(text)
    r = run("check-config", "-c", conf / "aauth-proxy.json")
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    assert b"1 resource(s), 3 rule(s)" in r.stdout
    lines = [ln for ln in text.splitlines() if "example-api" in ln
             and ln.strip().startswith("//") and "{" in ln]
    assert len(lines) == 2, lines
    for ln in lines:
        text = text.replace(ln, ln.replace("// ", "", 1))
    (conf / "aauth-proxy.json").write_text(text)
    r = run("check-config", "-c", conf / "aauth-proxy.json")
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    assert b"2 resource(s), 4 rule(s)" in r.stdout


def test_errors_name_the_field(tmp_path):
    cases = [
        ({"rules": [{"host": "a.test", "action": "sign"}]},
         b"rules[0].resource"),
        ({"rules": [{"host": "a.test", "action": "fly"}]},
         b"rules[0].action"),
        ({"listen": ["0.0.0.0:8787"]}, b"listen[0]"),
        ({"limits": {"max_body_bytes": -1}}, b"limits.max_body_bytes"),
        ({"resources": {"api": {"token_file": "tok", "upstream": "http"}}},
         b"resources.api.upstream"),
        ({"typo_field": 1}, b"typo_field"),
    ]
    for over, field in cases:
        cfg = base_config(tmp_path)
        cfg.update(over)
        p = write_config(tmp_path, cfg)
        r = run("check-config", "-c", p)
        assert r.returncode == 1, (over, r.stdout)
        assert field in r.stderr, (over, r.stderr)
        assert str(p).encode() in r.stderr
        assert r.stdout == b""


def test_invalid_json_gives_line_and_column(tmp_path):
    p = tmp_path / "cfg.json"
    p.write_text('{\n  "key": {"file": "k.pem"},\n  "rules": [,]\n}\n')
    r = run("check-config", "-c", p)
    assert r.returncode == 1
    assert b"cfg.json:3:" in r.stderr and b"invalid JSON" in r.stderr


def test_key_problems_are_reported(tmp_path):
    cfg = base_config(tmp_path)
    os.chmod(tmp_path / "agent.pem", 0o644)
    r = run("check-config", "-c", write_config(tmp_path, cfg))
    assert r.returncode == 1
    assert b"key.file" in r.stderr and b"chmod 600" in r.stderr

    cfg["key"]["file"] = "missing.pem"
    r = run("check-config", "-c", write_config(tmp_path, cfg))
    assert r.returncode == 1
    assert b"key.file" in r.stderr and b"missing.pem" in r.stderr


def test_usage_errors(tmp_path):
    # No -c and no default config where it is run from: a usage error
    # naming the paths it looked for.
    r = run("check-config", cwd=tmp_path)
    assert r.returncode == 2
    assert b"conf/aauth-proxy.json" in r.stderr
    assert run("check-config", "--bogus").returncode == 2
    r = run("check-config", "--help")
    assert r.returncode == 0 and b"check-config [-c FILE]" in r.stdout
    r = run("check-config", "-c", tmp_path / "nope.json")
    assert r.returncode == 1 and b"nope.json" in r.stderr


def test_every_command_has_help_and_version():
    r = run("--version")
    assert r.returncode == 0
    assert r.stdout.startswith(b"aauth-proxy ") and r.stdout.strip()[-1:].isdigit()
    r = run("--help")
    assert r.returncode == 0
    for cmd in ("run", "check-config", "keygen", "pubkey", "sign", "verify",
                "demo-resource"):
        assert cmd.encode() in r.stdout
        h = run(cmd, "--help")
        assert h.returncode == 0, cmd
        assert b"usage: aauth-proxy " + cmd.encode() in h.stdout, cmd
    r = run("frobnicate")
    assert r.returncode == 2 and b"unknown command 'frobnicate'" in r.stderr
    assert run().returncode == 2
