"""Proof that the fake resource's verifier is right on its own: it accepts
the LumoAuth vector (byte for byte) and a request signed by
`aauth-proxy sign`, and rejects every kind of tampering. Also checks the
fake's endpoints directly (no daemon involved), so a proxy test that fails
points at the daemon, not at the fake."""

import base64
import hashlib
import json
import secrets
import socket
import subprocess
import time

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from fakes import lumo
from fakes.daemon import RawConn, header
from fakes.http import parse_request_bytes
from fakes.resource import FakeServer, big_body

VECTOR_CREATED = 1750000000


@pytest.fixture(scope="module")
def vec(vectors):
    d = vectors / "lumoauth" / "token-request"
    return {
        "signed": (d / "request-signed.http").read_bytes(),
        "base": (d / "signature-base.txt").read_bytes(),
        "case": json.loads((d / "case.json").read_text()),
    }


@pytest.fixture(scope="module")
def privkey(vectors):
    return load_pem_private_key((vectors / "lumoauth" / "agent-key.pem").read_bytes(), None)


def verify_vector(raw, pubkey, **kw):
    req = parse_request_bytes(raw)
    opts = dict(tls=True, expected_token=None, now=VECTOR_CREATED, nonces=set())
    opts.update(kw)
    return lumo.verify(req, pubkey, **opts)


def replace_body(raw, new_body):
    head, _, _ = raw.partition(b"\r\n\r\n")
    lines = [ln if not ln.lower().startswith(b"content-length:")
             else b"Content-Length: %d" % len(new_body) for ln in head.split(b"\r\n")]
    return b"\r\n".join(lines) + b"\r\n\r\n" + new_body


def add_header(raw, line):
    head, _, body = raw.partition(b"\r\n\r\n")
    return head + b"\r\n" + line + b"\r\n\r\n" + body


# The verifier against the vector -------------------------------------------

def test_vector_verifies_and_base_is_byte_exact(vec, pubkey):
    info = verify_vector(vec["signed"], pubkey)
    assert info["base"].encode() == vec["base"]
    assert info["nonce"] == vec["case"]["nonce"]
    assert info["created"] == VECTOR_CREATED


def test_vector_body_changed_rejected(vec, pubkey):
    raw = replace_body(vec["signed"], vec["signed"].rpartition(b"\r\n\r\n")[2].replace(b"read write", b"read admin"))
    with pytest.raises(lumo.Rejected, match="Content-Digest"):
        verify_vector(raw, pubkey)


def test_vector_path_changed_rejected(vec, pubkey):
    raw = vec["signed"].replace(b"/aauth/agent/token", b"/aauth/agent/tokens", 1)
    with pytest.raises(lumo.Rejected, match="does not verify"):
        verify_vector(raw, pubkey)


def test_vector_query_added_rejected(vec, pubkey):
    raw = vec["signed"].replace(b"/aauth/agent/token HTTP", b"/aauth/agent/token?x=1 HTTP", 1)
    with pytest.raises(lumo.Rejected, match="covered components"):
        verify_vector(raw, pubkey)


def test_vector_token_added_rejected(vec, pubkey):
    # authorization is covered (empty in the vector): adding one breaks it
    raw = add_header(vec["signed"], b"Authorization: Bearer stolen")
    with pytest.raises(lumo.Rejected, match="does not verify"):
        verify_vector(raw, pubkey, expected_token="stolen")


def test_vector_host_changed_rejected(vec, pubkey):
    raw = vec["signed"].replace(b"Host: auth.acme.test", b"Host: evil.acme.test")
    with pytest.raises(lumo.Rejected, match="does not verify"):
        verify_vector(raw, pubkey)


def test_vector_host_case_and_default_port_ignored(vec, pubkey):
    raw = vec["signed"].replace(b"Host: auth.acme.test", b"Host: AUTH.Acme.test:443")
    verify_vector(raw, pubkey)
    with pytest.raises(lumo.Rejected, match="does not verify"):
        verify_vector(raw, pubkey, tls=False)  # :443 is not the default for http


def test_vector_stale_created_rejected(vec, pubkey):
    with pytest.raises(lumo.Rejected, match="created"):
        verify_vector(vec["signed"], pubkey, now=VECTOR_CREATED + 61)
    verify_vector(vec["signed"], pubkey, now=VECTOR_CREATED + 59)
    with pytest.raises(lumo.Rejected, match="created"):
        verify_vector(vec["signed"], pubkey, now=None)  # today


def test_vector_replayed_nonce_rejected(vec, pubkey):
    seen = set()
    verify_vector(vec["signed"], pubkey, nonces=seen)
    with pytest.raises(lumo.Rejected, match="replayed"):
        verify_vector(vec["signed"], pubkey, nonces=seen)


def test_vector_signature_bit_flip_rejected(vec, pubkey):
    sig = vec["case"]["signature_b64url"]
    flipped = ("A" if sig[10] != "A" else "B")
    raw = vec["signed"].replace(sig.encode(), (sig[:10] + flipped + sig[11:]).encode())
    with pytest.raises(lumo.Rejected, match="does not verify"):
        verify_vector(raw, pubkey)


def test_vector_standard_base64_signature_rejected(vec, pubkey):
    sig = base64.b64encode(lumo.b64url_decode(vec["case"]["signature_b64url"])).decode()
    raw = vec["signed"].replace(vec["case"]["signature_b64url"].encode(), sig.encode())
    with pytest.raises(lumo.Rejected, match="Signature"):
        verify_vector(raw, pubkey)


def test_vector_extra_param_rejected(vec, pubkey):
    raw = vec["signed"].replace(b';nonce="', b';keyid="key-1";nonce="')
    with pytest.raises(lumo.Rejected, match="shape"):
        verify_vector(raw, pubkey)


def test_vector_missing_digest_rejected(vec, pubkey):
    raw = b"\r\n".join(ln for ln in vec["signed"].split(b"\r\n")
                       if not ln.startswith(b"Content-Digest:"))
    with pytest.raises(lumo.Rejected):
        verify_vector(raw, pubkey)


# The verifier against `aauth-proxy sign` -----------------------------------

def run_sign(proxy_bin, agent_key, tmp_path, request_bytes, token):
    """Sign a request file with the CLI; returns the signed wire bytes."""
    req_file = tmp_path / "req.http"
    req_file.write_bytes(request_bytes)
    out = subprocess.run(
        [proxy_bin, "sign", "--key", agent_key, "--token", token, str(req_file)],
        capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout


def test_cli_signed_request_verifies(proxy_bin, agent_key, tmp_path, pubkey):
    body = b'{"hello": "world"}'
    req = (b"POST /v1/items?limit=5&q=a%%20b HTTP/1.1\r\nHost: API.example.com\r\n"
           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    signed = run_sign(proxy_bin, agent_key, tmp_path, req, "tok-cli-123")
    parsed = parse_request_bytes(signed)
    info = lumo.verify(parsed, pubkey, tls=True, expected_token="tok-cli-123", nonces=set())
    assert "@query" in info["components"]
    assert parsed.body == body
    # and each tampering breaks it
    for bad, why in [
        (replace_body(signed, b'{"hello": "World"}'), "Content-Digest"),
        (signed.replace(b"/v1/items", b"/v1/itemz", 1), "does not verify"),
        (signed.replace(b"limit=5", b"limit=6", 1), "does not verify"),
        (signed.replace(b"Bearer tok-cli-123", b"Bearer tok-cli-124"), "does not verify"),
    ]:
        with pytest.raises(lumo.Rejected, match=why):
            lumo.verify(parse_request_bytes(bad), pubkey, tls=True,
                        expected_token="tok-cli-124" if b"124" in bad else "tok-cli-123",
                        nonces=set())
    with pytest.raises(lumo.Rejected, match="Authorization"):
        lumo.verify(parsed, pubkey, tls=True, expected_token="other", nonces=set())


def test_cli_signed_get_without_query_verifies(proxy_bin, agent_key, tmp_path, pubkey):
    req = b"GET /status HTTP/1.1\r\nHost: api.example.com\r\n\r\n"
    signed = run_sign(proxy_bin, agent_key, tmp_path, req, "t0k")
    parsed = parse_request_bytes(signed)
    info = lumo.verify(parsed, pubkey, tls=True, expected_token="t0k", nonces=set())
    assert "@query" not in info["components"]
    assert parsed.get("content-digest") == lumo.content_digest(b"")


# The live fake server (no daemon): verdicts and endpoints ---------------------

def py_sign(privkey, method, target, host, token, body=b"", content_type="application/json",
            created=None, nonce=None):
    """A third, test-only signer: builds the wire bytes of a signed request."""
    path, _, query = target.partition("?")
    comps = lumo.COMPONENTS_HEAD + (["@query"] if query else []) + lumo.COMPONENTS_TAIL
    created = int(time.time()) if created is None else created
    nonce = nonce or base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()
    params = "(" + " ".join(f'"{c}"' for c in comps) + f');created={created};nonce="{nonce}"'
    headers = [("Host", host), ("Content-Type", content_type),
               ("Content-Digest", lumo.content_digest(body)),
               ("Authorization", f"Bearer {token}"), ("Content-Length", str(len(body)))]

    class R:  # the minimal shape lumo.signature_base reads
        pass
    r = R()
    r.method, r.path, r.query = method, path, query or None
    r.get_all = lambda n: [v for k, v in headers if k.lower() == n.lower()]
    base = lumo.signature_base(r, params, comps, tls=False)
    sig = base64.urlsafe_b64encode(privkey.sign(base)).rstrip(b"=").decode()
    headers += [("Signature-Input", "sig1=" + params), ("Signature", f"sig1=:{sig}:")]
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    return head.encode() + b"\r\n" + body


@pytest.fixture
def fake(pubkey):
    s = FakeServer("127.0.0.1", verify=True, pubkey=pubkey, token="tok-A", name="t").start()
    yield s
    s.stop()


def roundtrip(server, data):
    with RawConn(("127.0.0.1", server.port)) as c:
        c.send(data)
        return c.response()


def test_live_fake_accepts_signed_and_rejects_tampered(fake, privkey):
    host = fake.authority
    ok = py_sign(privkey, "POST", "/echo?a=1", host, "tok-A", b'{"x":1}')
    st, hd, body = roundtrip(fake, ok)
    assert st == 200 and body == b'{"x":1}'
    assert fake.records()[-1].verdict == "valid"
    # replay of the very same bytes
    st, _, body = roundtrip(fake, ok)
    assert st == 401 and "replayed" in json.loads(body)["reason"]
    cases = [
        (replace_body(py_sign(privkey, "POST", "/echo", host, "tok-A", b"abc"), b"abd"),
         "Content-Digest"),
        (py_sign(privkey, "GET", "/x", host, "tok-A").replace(b"GET /x ", b"GET /y ", 1),
         "does not verify"),
        (py_sign(privkey, "GET", "/x", host, "tok-B"), "Authorization"),
        (py_sign(privkey, "GET", "/x", host, "tok-A", created=int(time.time()) - 120), "created"),
        (py_sign(privkey, "GET", "/x", "127.0.0.1:1", "tok-A"), "authority"),
        (py_sign(privkey, "GET", "/x", host, "tok-A", nonce="short"), "nonce"),
    ]
    for data, why in cases:
        st, hd, body = roundtrip(fake, data)
        assert st == 401, (why, body)
        assert header(hd, "content-type") == "application/json"
        assert why in json.loads(body)["reason"]
        assert fake.records()[-1].verdict == "invalid"


def test_live_fake_rejects_unsigned_and_absolute_form(fake):
    st, _, body = roundtrip(fake, f"GET /x HTTP/1.1\r\nHost: {fake.authority}\r\n\r\n".encode())
    assert st == 401 and "signature-input" in json.loads(body)["reason"]
    st, _, body = roundtrip(
        fake, f"GET http://{fake.authority}/x HTTP/1.1\r\nHost: {fake.authority}\r\n\r\n".encode())
    assert st == 401 and "origin-form" in json.loads(body)["reason"]


def test_live_fake_keepalive_and_chunked_upload(fake, privkey):
    body = b"0123456789" * 1000
    signed = py_sign(privkey, "PUT", "/echo", fake.authority, "tok-A", body)
    head, _, _ = signed.partition(b"\r\n\r\n")
    head = head.replace(b"Content-Length: %d" % len(body), b"Transfer-Encoding: chunked")
    chunked = head + b"\r\n\r\n" + b"".join(
        b"%x\r\n%s\r\n" % (len(body[i:i + 777]), body[i:i + 777]) for i in range(0, len(body), 777)
    ) + b"0\r\n\r\n"
    with RawConn(("127.0.0.1", fake.port)) as c:
        c.send(chunked)
        st, hd, got = c.response()
        assert st == 200 and got == body
        c.send(py_sign(privkey, "GET", "/big?size=100000", fake.authority, "tok-A"))
        st, hd, got = c.response()
        assert st == 200 and got == big_body(100000)
        assert header(hd, "x-body-sha256") == hashlib.sha256(got).hexdigest()
    assert [r.framing for r in fake.records()] == ["chunked", "length"]


def test_plain_fake_endpoints():
    s = FakeServer("127.0.0.2", name="p").start()
    try:
        a = ("127.0.0.2", s.port)
        with RawConn(a) as c:
            for mode in ("length", "chunked"):
                c.send(f"GET /big?size=3000000&mode={mode} HTTP/1.1\r\nHost: x\r\n\r\n")
                st, hd, got = c.response()
                assert st == 200 and got == big_body(3000000)
            c.send("GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n")
            st, hd, got = c.response()
            assert st == 204 and got == b""
            c.send("GET /status/304 HTTP/1.1\r\nHost: x\r\n\r\n")
            st, hd, got = c.response()
            assert st == 304 and header(hd, "content-length") is None
            c.send("HEAD /echo?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            st, hd, got = c.response(head_only=True)
            assert st == 200 and header(hd, "content-length") == "0"
            c.send("GET /status/418 HTTP/1.1\r\nHost: x\r\n\r\n")
            st, hd, got = c.response()
            assert st == 418 and json.loads(got) == {"status": 418}
            c.send("GET /headers?a=b HTTP/1.1\r\nHost: x\r\nX-Thing: 1\r\n\r\n")
            st, hd, got = c.response()
            echo = json.loads(got)
            assert echo["query"] == "a=b" and "x-thing" in echo["header_names"]
            assert echo["verdict"] == "unchecked"
        t0 = time.monotonic()
        with RawConn(a) as c:
            c.send("GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            st, _, _ = c.response()
            assert st == 200 and time.monotonic() - t0 >= 0.3
            assert c.closed_by_peer()
        with RawConn(a) as c:
            c.send("GET /big?size=5000&mode=close HTTP/1.1\r\nHost: x\r\n\r\n")
            st, hd, got = c.response()
            assert got == big_body(5000)
        assert [r.path for r in s.records()][-2:] == ["/slow", "/big"]
    finally:
        s.stop()


def test_sse_ack_handshake_direct():
    """Event i+1 leaves only after ack(i); without acks each wait times out
    (that is what a buffering proxy would cause)."""
    s = FakeServer("127.0.0.2", name="p").start()
    try:
        with socket.create_connection(("127.0.0.2", s.port), timeout=10) as sock:
            f = sock.makefile("rb")
            sock.sendall(b"GET /sse?n=3&id=s1&ack=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            while f.readline() not in (b"\r\n", b""):
                pass
            events = []
            while len(events) < 3:
                size = int(f.readline().strip(), 16)
                chunk = f.read(size)
                f.readline()
                data = json.loads(chunk.split(b"data: ")[1].split(b"\n")[0])
                events.append(data)
                s.ack("s1", data["i"])
            assert [e["acked_prev"] for e in events] == [True, True, True]
            assert f.readline() == b"0\r\n"
    finally:
        s.stop()


def test_tls_fake(tmp_path, pubkey):
    import ssl

    from fakes.resource import make_tls_context
    from fakes.tls import make_ca_and_leaf
    ca, chain, key = make_ca_and_leaf(tmp_path, "127.0.0.1")
    s = FakeServer("127.0.0.1", tls_ctx=make_tls_context(chain, key), name="tls").start()
    try:
        ctx = ssl.create_default_context(cafile=ca)
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
                t.sendall(b"GET /status/201 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                data = bytearray()
                while chunk := t.recv(4096):
                    data += chunk
        assert data.startswith(b"HTTP/1.1 201")
        assert s.url("/").startswith("https://")
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as raw:
            with pytest.raises(ssl.SSLCertVerificationError):
                ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")
    finally:
        s.stop()
