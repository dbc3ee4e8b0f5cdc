"""`aauth-proxy sign` and `verify` on real request files: the LumoAuth
vector byte for byte, sign→verify for every profile (checked by an
independent python3-cryptography verifier too), each tampering rejected
with a reason, and every failure exiting non-zero with nothing on stdout."""

import json

import pytest

from cli_helpers import (
    LUMO_X, Message, independent_verify, private_copy, run,
    vector,
)

LUMO = "lumoauth/token-request/"
CREATED = 1750000000
NONCE = "AAECAwQFBgcICQoLDA0ODw"
ENC = {"lumoauth": "b64url", "rfc9421": "b64", "aauth-draft": "b64"}
LABEL = {"lumoauth": "sig1", "rfc9421": "sig1", "aauth-draft": "sig"}

POST_WITH_QUERY = (
    b"POST /api/v1/items?limit=10&tag=a%20b HTTP/1.1\r\n"
    b"Host: API.Example.com:443\r\n"
    b"Content-Type: application/json\r\n"
    b"X-Trace: abc\r\n"
    b"Content-Length: 17\r\n"
    b"\r\n"
    b'{"name": "thing"}'
)
GET_ABSOLUTE = (
    b"GET https://res.example.test:8443/data/./x HTTP/1.1\r\n"
    b"Host: res.example.test:8443\r\n"
    b"Accept: */*\r\n"
    b"\r\n"
)


@pytest.fixture
def lumo_key(tmp_path):
    return private_copy(tmp_path, "lumoauth/agent-key.pem", "lumo.pem")


@pytest.fixture
def fresh_key(tmp_path):
    """A new key and its public JWK (written to a file) from keygen."""
    pem = tmp_path / "agent.pem"
    r = run("keygen", "--out", pem, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    jwk = tmp_path / "agent.jwk.json"
    jwk.write_text(json.dumps(doc["jwk"]))
    return pem, jwk, doc["jwk"]["x"]


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def sign(*args, input=None):
    r = run("sign", *args, input=input)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def assert_fails(r, code, *needles):
    assert r.returncode == code, (r.returncode, r.stderr)
    assert r.stdout == b"", r.stdout
    for n in needles:
        assert n.encode() in r.stderr, (n, r.stderr.decode())


# ---- the LumoAuth vector ----

def lumo_sign(lumo_key, *extra):
    return sign(vector(LUMO + "request-unsigned.http"), "--key", lumo_key,
                "--profile", "lumoauth", "--created", CREATED, "--nonce",
                NONCE, "--agent-token", "AGENT_TOKEN_FIXED", *extra)


def test_lumoauth_vector_fields_byte_for_byte(lumo_key):
    got = Message(lumo_sign(lumo_key))
    want = Message(vector(LUMO + "request-signed.http").read_bytes())
    for name in ("Signature-Input", "Signature", "Content-Digest",
                 "Agent-Auth"):
        assert got.get_all(name) == want.get_all(name), name
    assert got.get("Signature-Input") == \
        vector(LUMO + "signature-input.txt").read_text()
    assert got.get("Signature") == vector(LUMO + "signature.txt").read_text()


def test_lumoauth_vector_whole_message(lumo_key):
    assert lumo_sign(lumo_key) == vector(LUMO + "request-signed.http").read_bytes()


def test_lumoauth_vector_verbose_base_and_stdin(lumo_key):
    data = vector(LUMO + "request-unsigned.http").read_bytes()
    r = run("sign", "-", "--key", lumo_key, "--created", CREATED, "--nonce",
            NONCE, "--agent-token", "AGENT_TOKEN_FIXED", "--verbose",
            input=data)
    assert r.returncode == 0, r.stderr
    assert r.stdout == vector(LUMO + "request-signed.http").read_bytes()
    assert vector(LUMO + "signature-base.txt").read_bytes() in r.stderr


def test_lumoauth_vector_verifies(tmp_path):
    signed = vector(LUMO + "request-signed.http")
    pub = vector("lumoauth/agent-key.pub.pem")
    r = run("verify", signed, "--key", pub, "--now", CREATED + 30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"valid: ")
    r = run("verify", signed, "--key", pub, "--ignore-time")
    assert r.returncode == 0, r.stderr
    r = run("verify", signed, "--key", pub, "--now", CREATED + 61)
    assert_fails(r, 1, "too old")
    # The independent verifier agrees with the vector as well.
    independent_verify(Message(signed.read_bytes()), "sig1", LUMO_X, "b64url")


def test_sign_replaces_client_owned_fields(lumo_key, tmp_path):
    req = write(tmp_path, "r.http",
                b"POST /x HTTP/1.1\r\nHost: a.test\r\n"
                b"Authorization: Bearer CLIENT\r\n"
                b"Signature-Input: sig1=();created=1\r\n"
                b"Signature: sig1=:AAAA:\r\n"
                b"Signature-Key: sig1=hwk\r\n"
                b"Content-Digest: sha-256=:AAAA:\r\n"
                b"Agent-Auth: agent_token=CLIENT\r\n"
                b"Content-Length: 2\r\n\r\nhi")
    m = Message(sign(req, "--key", lumo_key, "--token", "TOK",
                     "--created", CREATED, "--nonce", NONCE))
    assert m.get_all("Authorization") == ["Bearer TOK"]
    assert m.get_all("Agent-Auth") == []
    assert m.get_all("Signature-Key") == []
    assert len(m.get_all("Signature")) == 1
    assert "AAAA" not in m.get("Signature") + m.get("Content-Digest")
    assert '"authorization"' in m.get("Signature-Input")
    base = independent_verify(m, "sig1", LUMO_X, "b64url")
    assert b'"authorization": Bearer TOK' in base


def test_sign_keeps_client_authorization_without_token(lumo_key, tmp_path):
    req = write(tmp_path, "r.http",
                b"GET /x HTTP/1.1\r\nHost: a.test\r\n"
                b"Authorization: Bearer MINE\r\n\r\n")
    m = Message(sign(req, "--key", lumo_key))
    assert m.get_all("Authorization") == ["Bearer MINE"]


def test_sign_chunked_body_goes_out_with_content_length(lumo_key, tmp_path):
    req = write(tmp_path, "c.http",
                b"POST /up HTTP/1.1\r\nHost: a.test\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    m = Message(sign(req, "--key", lumo_key))
    assert m.get_all("Transfer-Encoding") == []
    assert m.get_all("Content-Length") == ["11"]
    assert m.body == b"hello world"
    independent_verify(m, "sig1", LUMO_X, "b64url")


# ---- sign → verify, every profile ----

@pytest.mark.parametrize("profile", ["lumoauth", "rfc9421", "aauth-draft"])
@pytest.mark.parametrize("request_bytes", [POST_WITH_QUERY, GET_ABSOLUTE],
                         ids=["post-query", "get-absolute"])
def test_roundtrip_every_profile(tmp_path, fresh_key, profile, request_bytes):
    pem, jwk, x = fresh_key
    req = write(tmp_path, "req.http", request_bytes)
    signed = write(tmp_path, "signed.http",
                   sign(req, "--key", pem, "--profile", profile,
                        "--token", "TOKEN-1"))
    for keyfile in (jwk, pem):  # a JWK, and the private PEM's public half
        r = run("verify", signed, "--key", keyfile, "--profile", profile)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(b"valid: ")
        assert LABEL[profile].encode() in r.stdout
    m = Message(signed.read_bytes())
    base = independent_verify(m, LABEL[profile], x, ENC[profile])
    r = run("verify", signed, "--key", jwk, "--profile", profile, "--verbose")
    assert base in r.stderr
    if profile == "lumoauth":
        assert m.get("Content-Type") is not None  # the SDKs always send one
        assert m.get("Content-Digest") is not None
        assert ('"@query"' in m.get("Signature-Input")) == \
            (b"?" in request_bytes.split(b" ")[1])
    if profile == "rfc9421":
        assert 'keyid="%s"' % json.loads(
            run("pubkey", "--key", jwk, "--json").stdout)["thumbprint"] \
            in m.get("Signature-Input")
    if profile == "aauth-draft":
        assert m.get("Signature-Key") == \
            'sig=hwk;kty="OKP";crv="Ed25519";x="%s"' % x


def test_roundtrip_custom_components_and_params(tmp_path, fresh_key):
    pem, jwk, x = fresh_key
    req = write(tmp_path, "req.http", POST_WITH_QUERY)
    m = Message(sign(req, "--key", pem, "--profile", "rfc9421",
                     "--components", "@method, @target-uri,x-trace,content-type",
                     "--params", "created,expires,nonce,alg,keyid,tag",
                     "--keyid", "my-key", "--tag", "app-1",
                     "--expires-in", "30", "--created", "1700000000",
                     "--nonce", "n-1", "--label", "mine",
                     "--digest", "sha-512"))
    si = m.get("Signature-Input")
    assert si == ('mine=("@method" "@target-uri" "x-trace" "content-type")'
                  ';created=1700000000;expires=1700000030;nonce="n-1"'
                  ';alg="ed25519";keyid="my-key";tag="app-1"')
    assert m.get("Content-Digest").startswith("sha-512=:")
    base = independent_verify(m, "mine", x, "b64")
    assert b'"@target-uri": https://API.Example.com:443/api/v1/items?limit=10&tag=a%20b' in base
    signed = write(tmp_path, "s.http", m.serialize())
    r = run("verify", signed, "--key", jwk, "--profile", "rfc9421",
            "--label", "mine", "--components", "@method,x-trace",
            "--now", "1700000010")
    assert r.returncode == 0, r.stderr
    r = run("verify", signed, "--key", jwk, "--profile", "rfc9421",
            "--label", "mine", "--now", "1700000045", "--components", "@method")
    assert_fails(r, 1, "expired")


def test_signature_key_jwt_and_http_scheme(tmp_path, fresh_key):
    pem, jwk, x = fresh_key
    req = write(tmp_path, "req.http",
                b"GET /a HTTP/1.1\r\nHost: LOCAL.test:80\r\n\r\n")
    m = Message(sign(req, "--key", pem, "--profile", "aauth-draft",
                     "--signature-key", "jwt", "--jwt", "eyJ.a.b",
                     "--scheme", "http"))
    assert m.get("Signature-Key") == 'sig=jwt;jwt="eyJ.a.b"'
    base = independent_verify(m, "sig", x, "b64", scheme="http")
    assert b'"@authority": local.test\n' in base
    signed = write(tmp_path, "s.http", m.serialize())
    assert run("verify", signed, "--key", jwk, "--profile", "aauth-draft",
               "--scheme", "http").returncode == 0
    # Under https the authority keeps :80, so the base differs.
    assert_fails(run("verify", signed, "--key", jwk, "--profile",
                     "aauth-draft"), 1, "does not verify")


# ---- tampering ----

@pytest.fixture
def signed_lumo(tmp_path, fresh_key):
    pem, jwk, x = fresh_key
    req = write(tmp_path, "req.http", POST_WITH_QUERY)
    out = sign(req, "--key", pem, "--token", "TOKEN-A", "--created", CREATED)
    return Message(out), jwk


def verify_msg(tmp_path, m, jwk, *extra):
    f = write(tmp_path, "t.http", m.serialize())
    return run("verify", f, "--key", jwk, "--now", CREATED + 5, *extra)


def test_untampered_verifies(tmp_path, signed_lumo):
    m, jwk = signed_lumo
    r = verify_msg(tmp_path, m, jwk)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("what", ["method", "path", "query", "header",
                                  "token", "authority"])
def test_tampering_breaks_the_signature(tmp_path, signed_lumo, what):
    m, jwk = signed_lumo
    if what == "method":
        m.method = "PUT"
    elif what == "path":
        m.target = m.target.replace("/items", "/itemz")
    elif what == "query":
        m.target = m.target.replace("limit=10", "limit=99")
    elif what == "header":
        m.replace("Content-Type", "text/plain")
    elif what == "token":
        m.replace("Authorization", "Bearer TOKEN-B")
    elif what == "authority":
        m.replace("Host", "evil.example.com")
    assert_fails(verify_msg(tmp_path, m, jwk), 1, "invalid",
                 "'sig1' does not verify")


def test_tampered_body_names_the_digest(tmp_path, signed_lumo):
    m, jwk = signed_lumo
    m.body = m.body.replace(b"thing", b"THING")
    assert_fails(verify_msg(tmp_path, m, jwk), 1, "Content-Digest",
                 "does not match the body")


def test_created_window(tmp_path, signed_lumo):
    m, jwk = signed_lumo
    f = write(tmp_path, "t.http", m.serialize())
    assert_fails(run("verify", f, "--key", jwk, "--now", CREATED + 61), 1,
                 "too old", "created %d" % CREATED)
    assert_fails(run("verify", f, "--key", jwk, "--now", CREATED - 61), 1,
                 "from the future")
    assert run("verify", f, "--key", jwk, "--now", CREATED + 3600,
               "--ignore-time").returncode == 0


def test_wrong_key(tmp_path, signed_lumo):
    m, _ = signed_lumo
    other = vector("lumoauth/agent-key.pub.pem")
    assert_fails(verify_msg(tmp_path, m, other), 1, "does not verify")


def test_missing_or_mislabelled_signature(tmp_path, signed_lumo):
    m, jwk = signed_lumo
    assert_fails(verify_msg(tmp_path, m, jwk, "--label", "other"), 1,
                 "no member labelled 'other'")
    m.fields = [(n, v) for n, v in m.fields if n != "Signature"]
    assert_fails(verify_msg(tmp_path, m, jwk), 1, "no Signature field")


def test_wrong_profile_is_rejected(tmp_path, signed_lumo):
    m, jwk = signed_lumo
    r = verify_msg(tmp_path, m, jwk, "--profile", "aauth-draft")
    assert r.returncode == 1 and r.stdout == b""
    assert b"invalid" in r.stderr


# ---- failures: non-zero, a clear message, nothing on stdout ----

def test_sign_failures(tmp_path, lumo_key):
    req = vector(LUMO + "request-unsigned.http")
    bad = write(tmp_path, "bad.http", b"this is not http\r\n\r\n")
    nohost = write(tmp_path, "nohost.http", b"GET /x HTTP/1.1\r\n\r\n")
    empty = write(tmp_path, "empty.http", b"")
    open_key = private_copy(tmp_path, "lumoauth/agent-key.pem", "open.pem",
                            mode=0o640)
    rsa = private_copy(tmp_path, "keys/test-key-rsa-pss.priv.pem", "rsa.pem")
    ec = private_copy(tmp_path, "keys/test-key-ecc-p256.priv.pem", "ec.pem")
    pub = private_copy(tmp_path, "lumoauth/agent-key.pub.pem", "pub.pem")
    cases = [
        ((bad, "--key", lumo_key), 1, ["bad.http", "not a valid HTTP/1.1 request"]),
        ((nohost, "--key", lumo_key), 1, ["nohost.http", "Host"]),
        ((empty, "--key", lumo_key), 1, ["empty"]),
        ((tmp_path / "nope.http", "--key", lumo_key), 1, ["nope.http"]),
        ((req, "--key", lumo_key, "--profile", "bogus"), 2,
         ["unknown signature profile 'bogus'"]),
        ((req, "--key", lumo_key, "--components", "@method,@bogus"), 2,
         ["@bogus"]),
        ((req, "--key", lumo_key, "--params", "created,colour"), 2, ["colour"]),
        ((req, "--key", tmp_path / "missing.pem"), 1,
         ["missing.pem", "no such key file"]),
        ((req, "--key", open_key), 1, ["chmod 600", "group or others"]),
        ((req, "--key", rsa), 1, ["RSA", "Ed25519"]),
        ((req, "--key", ec), 1, ["EC", "Ed25519"]),
        ((req, "--key", pub), 1, ["this is a public key"]),
        ((req,), 2, ["--key"]),
        ((req, "--key", lumo_key, "--frobnicate"), 2, ["--frobnicate"]),
        ((req, "--key", lumo_key, "--created", "soon"), 2, ["--created", "soon"]),
        ((req, "--key", lumo_key, "--digest", "md5"), 2, ["md5"]),
        ((req, "--key", lumo_key, "--label", "Bad Label"), 2, ["--label"]),
        ((req, "--key", lumo_key, "--scheme", "ftp"), 2, ["ftp"]),
        ((req, "--key", lumo_key, "--token", "a\r\nX-Evil: 1"), 2, ["--token"]),
        ((req, "--key", lumo_key, "--signature-key", "jwt"), 2, ["--jwt"]),
        ((req, "--key", lumo_key, "--keyid", "k", "--params", "created"), 2,
         ["--keyid", "keyid"]),
        ((req, req, "--key", lumo_key), 2, ["unexpected argument"]),
    ]
    for args, code, needles in cases:
        assert_fails(run("sign", *args), code, *needles)


def test_sign_scheme_conflict(tmp_path, lumo_key):
    req = write(tmp_path, "abs.http", GET_ABSOLUTE)
    assert_fails(run("sign", req, "--key", lumo_key, "--scheme", "http"), 2,
                 "--scheme http", "https")


def test_verify_failures(tmp_path, signed_lumo):
    m, jwk = signed_lumo
    signed = write(tmp_path, "s.http", m.serialize())
    bad = write(tmp_path, "bad.http", b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n")
    rsa_pub = private_copy(tmp_path, "keys/test-key-rsa-pss.pub.pem", "rsa.pub")
    cases = [
        ((bad, "--key", jwk), 1, ["bad.http", "not a valid HTTP/1.1 request"]),
        ((signed, "--key", tmp_path / "none.jwk"), 1, ["none.jwk"]),
        ((signed, "--key", rsa_pub), 1, ["RSA"]),
        ((signed, "--key", jwk, "--profile", "nope"), 2, ["'nope'"]),
        ((signed, "--key", jwk, "--components", "@nope"), 2, ["@nope"]),
        ((signed,), 2, ["--key"]),
        ((signed, "--key", jwk, "--now", "-5"), 2, ["--now"]),
        ((signed, "--key", jwk, "--bogus"), 2, ["--bogus"]),
    ]
    for args, code, needles in cases:
        assert_fails(run("verify", *args), code, *needles)


def test_help():
    for cmd, opts in (("sign", [b"--key", b"--profile", b"--token",
                                b"--agent-token", b"--components", b"--verbose"]),
                      ("verify", [b"--key", b"--now", b"--ignore-time",
                                  b"--label"])):
        r = run(cmd, "--help")
        assert r.returncode == 0
        for o in opts:
            assert o in r.stdout, (cmd, o)
