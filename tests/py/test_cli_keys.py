"""`aauth-proxy keygen` and `pubkey`, driven as a user would: the key file
they write, the JWK/JWKS/thumbprint they print (checked against an
independent computation and python3-cryptography), and their refusals."""

import json
import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cli_helpers import (
    LUMO_THUMBPRINT, LUMO_X, b64url, private_copy, run, thumbprint,
    vector,
)

def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def keygen_json(tmp_path, *extra, name="k.pem"):
    out = tmp_path / name
    r = run("keygen", "--out", out, "--json", *extra)
    assert r.returncode == 0, r.stderr
    return out, json.loads(r.stdout)


def public_x_of(pem_path):
    """The raw public key of a PEM private key, according to cryptography."""
    key = serialization.load_pem_private_key(pem_path.read_bytes(), None)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return b64url(raw)


def test_keygen_json_output_matches_the_written_key(tmp_path):
    out, doc = keygen_json(tmp_path)
    assert set(doc) == {"key_file", "jwk", "jwks", "thumbprint"}
    assert doc["key_file"] == str(out)
    jwk = doc["jwk"]
    assert list(jwk) == ["kty", "crv", "x", "use", "kid"]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519"
    assert jwk["use"] == "sig" and jwk["kid"] == "key-1"
    assert doc["jwks"] == {"keys": [jwk]}
    # The printed public key is the one in the file (per cryptography), and
    # the thumbprint is RFC 7638 over it, computed independently.
    assert jwk["x"] == public_x_of(out)
    assert doc["thumbprint"] == thumbprint(jwk["x"])
    assert mode(out) == 0o600
    text = out.read_text()
    assert text.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert text.endswith("-----END PRIVATE KEY-----\n")
    assert all(len(line) <= 64 for line in text.splitlines())


def test_keygen_keys_differ(tmp_path):
    _, a = keygen_json(tmp_path, name="a.pem")
    _, b = keygen_json(tmp_path, name="b.pem")
    assert a["jwk"]["x"] != b["jwk"]["x"]


def test_keygen_human_output_has_labelled_sections(tmp_path):
    out = tmp_path / "h.pem"
    r = run("keygen", "--out", out, "--kid", "agent-7")
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    assert str(out) in text and "0600" in text
    lines = text.splitlines()
    jwk = json.loads(lines[lines.index("Public JWK:") + 1])
    assert jwk["kid"] == "agent-7" and jwk["x"] == public_x_of(out)
    # The JWKS section is a complete JSON document up to the blank line.
    start = next(i for i, l in enumerate(lines) if l.startswith("JWKS"))
    end = lines.index("", start)
    assert json.loads("\n".join(lines[start + 1:end])) == {"keys": [jwk]}
    tp_label = next(i for i, l in enumerate(lines) if l.startswith("Thumbprint"))
    assert lines[tp_label + 1] == thumbprint(jwk["x"])


def test_keygen_default_path_is_agent_key_pem_in_cwd(tmp_path):
    r = run("keygen", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["key_file"] == "agent-key.pem"
    assert mode(tmp_path / "agent-key.pem") == 0o600
    help_text = run("keygen", "--help").stdout.decode()
    assert "agent-key.pem" in help_text


def test_keygen_mode_is_0600_even_with_umask_0(tmp_path):
    out = tmp_path / "u.pem"
    r = run("keygen", "--out", out, preexec_fn=lambda: os.umask(0))
    assert r.returncode == 0, r.stderr
    assert mode(out) == 0o600


def test_keygen_refuses_to_overwrite_without_force(tmp_path):
    out, first = keygen_json(tmp_path)
    before = out.read_bytes()
    r = run("keygen", "--out", out)
    assert r.returncode == 1
    assert r.stdout == b""
    assert b"already exists" in r.stderr and b"--force" in r.stderr
    assert out.read_bytes() == before


def test_keygen_force_replaces_and_tightens_mode(tmp_path):
    out, first = keygen_json(tmp_path)
    os.chmod(out, 0o644)
    _, second = keygen_json(tmp_path, "--force")
    assert second["jwk"]["x"] != first["jwk"]["x"]
    assert public_x_of(out) == second["jwk"]["x"]
    assert mode(out) == 0o600


def test_keygen_usage_errors(tmp_path):
    for args, needle in (
        (["--bogus"], b"--bogus"),
        (["--out"], b"needs a value"),
        (["extra-arg"], b"extra-arg"),
        (["--kid", ""], b"--kid"),
    ):
        r = run("keygen", *args, cwd=tmp_path)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stdout == b""
        assert needle in r.stderr, (args, r.stderr)
    assert not (tmp_path / "agent-key.pem").exists()


def test_keygen_into_missing_directory_fails_cleanly(tmp_path):
    r = run("keygen", "--out", tmp_path / "nope" / "k.pem")
    assert r.returncode == 1 and r.stdout == b""
    assert b"nope" in r.stderr


def test_keygen_help():
    r = run("keygen", "--help")
    assert r.returncode == 0
    for opt in (b"--out", b"--kid", b"--force", b"--json"):
        assert opt in r.stdout


@pytest.mark.parametrize("rel,mode_bits", [
    ("lumoauth/agent-key.pem", 0o600),
    ("lumoauth/agent-key.pub.pem", 0o644),
    ("lumoauth/agent-key.jwk.json", 0o644),
])
def test_pubkey_lumoauth_vector(tmp_path, rel, mode_bits):
    path = private_copy(tmp_path, rel, mode=mode_bits)
    r = run("pubkey", "--key", path, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["thumbprint"] == LUMO_THUMBPRINT == thumbprint(LUMO_X)
    assert doc["jwk"] == json.loads(vector("lumoauth/agent-key.jwk.json").read_text())
    assert doc["jwks"] == {"keys": [doc["jwk"]]}


def test_pubkey_jwks_and_kid(tmp_path):
    jwk = json.loads(vector("lumoauth/agent-key.jwk.json").read_text())
    jwk["kid"] = "from-file"
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{"kty": "EC", "crv": "P-256"}, jwk]}))
    doc = json.loads(run("pubkey", "--key", jwks, "--json").stdout)
    assert doc["jwk"]["kid"] == "from-file"
    assert doc["thumbprint"] == LUMO_THUMBPRINT
    doc = json.loads(run("pubkey", jwks, "--kid", "override", "--json").stdout)
    assert doc["jwk"]["kid"] == "override"


def test_pubkey_agrees_with_keygen_and_cryptography(tmp_path):
    out, gen = keygen_json(tmp_path)
    r = run("pubkey", "--key", out, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {k: gen[k] for k in ("jwk", "jwks", "thumbprint")}
    # A key made by python3-cryptography reads the same way.
    key = Ed25519PrivateKey.generate()
    pem = tmp_path / "py.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    os.chmod(pem, 0o600)
    doc = json.loads(run("pubkey", "--key", pem, "--json").stdout)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    assert doc["jwk"]["x"] == b64url(raw)
    assert doc["thumbprint"] == thumbprint(b64url(raw))


def test_pubkey_human_output(tmp_path):
    path = private_copy(tmp_path, "lumoauth/agent-key.pub.pem")
    r = run("pubkey", "--key", path)
    assert r.returncode == 0
    text = r.stdout.decode()
    assert "Public JWK:" in text and "JWKS" in text
    assert LUMO_THUMBPRINT in text and LUMO_X in text


@pytest.mark.parametrize("rel,needle", [
    ("keys/test-key-rsa-pss.priv.pem", b"RSA"),
    ("keys/test-key-ecc-p256.pub.pem", b"EC"),
    ("keys/test-key-rsa.pub.jwk.json", b"RSA"),
])
def test_pubkey_refuses_other_key_types(tmp_path, rel, needle):
    path = private_copy(tmp_path, rel)
    r = run("pubkey", "--key", path)
    assert r.returncode == 1 and r.stdout == b""
    assert needle in r.stderr and b"Ed25519" in r.stderr


def test_pubkey_errors(tmp_path):
    r = run("pubkey", "--key", tmp_path / "missing.pem")
    assert r.returncode == 1 and r.stdout == b""
    assert b"missing.pem" in r.stderr
    r = run("pubkey")
    assert r.returncode == 2 and b"--key" in r.stderr and r.stdout == b""
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    r = run("pubkey", "--key", junk)
    assert r.returncode == 1 and r.stdout == b"" and b"corrupt" in r.stderr
