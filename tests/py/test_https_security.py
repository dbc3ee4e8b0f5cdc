"""CONNECT, attacked: host binding (SNI and every inner Host/authority
against the CONNECT authority), the opaque pass splice, deny before any
TLS, the leaf cache, bad TLS input that must close only its own
connection with a logged reason, tunnels against max_connections and the
idle timeout, and a CA file holding an intermediate and its chain."""

import hashlib
import os
import socket
import ssl
import subprocess
import threading
import time
import warnings

import pytest

from https_world import https, no_credentials, read_response  # noqa: F401


def msgs(p):
    return [o["msg"] for o in p.log_messages()]


def wait_msg(p, needle, timeout=10):
    return p.wait_for(lambda _l: [m for m in msgs(p) if needle in m], timeout)


def get(sock, path, host, extra=""):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
    return read_response(sock)


def nothing_reached(w):
    return not w.tls.records() and not w.plain.records() and not w.passer.records()


# Host binding ------------------------------------------------------------------

def test_sni_mismatch_aborts_the_handshake(https):
    w = https
    p = w.start()
    s, st, _ = w.connect(f"127.0.0.1:{w.tls.port}")
    assert st == 200
    ctx = w.client_ctx()
    ctx.check_hostname = False
    with pytest.raises((ssl.SSLError, ConnectionError)):
        ctx.wrap_socket(s, server_hostname="evil.example").do_handshake()
    s.close()
    assert wait_msg(p, 'SNI "evil.example" does not name the CONNECT authority')
    assert nothing_reached(w)


def test_sni_with_the_port_is_accepted(https):
    """Some clients (hey) write host:port into the SNI: it names the same
    host and port, so it is no mismatch; another port is."""
    w = https
    w.start(rules=[{"host": "localhost", "port": w.tls.port, "action": "sign",
                    "resource": "secure"}],
            upstream={"ca_file": w.up_ca})
    for sni, ok in ((f"localhost:{w.tls.port}", True), ("localhost:1", False)):
        s, st, _ = w.connect(f"localhost:{w.tls.port}")
        assert st == 200
        ctx = w.client_ctx()
        ctx.check_hostname = False
        if ok:
            t = ctx.wrap_socket(s, server_hostname=sni)
            t.close()
        else:
            with pytest.raises((ssl.SSLError, ConnectionError)):
                ctx.wrap_socket(s, server_hostname=sni)
            s.close()


@pytest.mark.parametrize("how", ["host", "absolute", "absolute-scheme", "plain-host"])
def test_inner_request_naming_another_host_gets_421(https, how):
    w = https
    p = w.start()
    other = f"127.0.0.2:{w.passer.port}"
    if how == "plain-host":
        s, st, _ = w.connect(f"127.0.0.1:{w.plain.port}")
        assert st == 200
        t = s
    else:
        t = w.tls_connect(f"127.0.0.1:{w.tls.port}")
    if how == "host":
        st, hd, body = get(t, "/x", other)
    elif how == "absolute":
        st, hd, body = get(t, f"https://{other}/x", other)
    elif how == "absolute-scheme":
        # the right host, but http:// inside TLS: not what was opened
        st, hd, body = get(t, f"http://127.0.0.1:{w.tls.port}/x", f"127.0.0.1:{w.tls.port}")
    else:
        st, hd, body = get(t, "/x", f"127.0.0.1:{w.tls.port}")
    assert st == 421, body
    assert b"host binding" in body
    t.close()
    assert wait_msg(p, "one host per tunnel")
    time.sleep(0.2)
    assert nothing_reached(w)


def test_host_without_port_means_the_default_port(https):
    """Host "127.0.0.1" inside a TLS tunnel to 127.0.0.1:<not 443> names
    port 443: refused, never sent to the CONNECT port with a credential."""
    w = https
    w.start()
    t = w.tls_connect(f"127.0.0.1:{w.tls.port}")
    st, _, _ = get(t, "/x", "127.0.0.1")
    assert st == 421
    t.close()
    assert nothing_reached(w)


def test_right_host_in_another_spelling_is_signed(https):
    """The binding compares canonical hosts: 127.0.0.1 written as
    2130706433 is the same host."""
    w = https
    w.start()
    t = w.tls_connect(f"2130706433:{w.tls.port}")
    st, _, body = get(t, "/spelled", f"127.0.0.1:{w.tls.port}")
    assert st == 200, body
    t.close()
    assert [r.verdict for r in w.tls.records()] == ["valid"]


# pass, deny -----------------------------------------------------------------------

def test_pass_splice_is_opaque(https):
    """The TLS server behind a pass rule is reached through a byte splice:
    the client completes its handshake with that server's own certificate
    (from its own CA, which the proxy CA did not issue) and the server sees
    no credential."""
    w = https
    p = w.start()
    t = w.tls_connect(f"127.0.0.2:{w.passer.port}", server_hostname="127.0.0.2",
                      cafile=w.pass_ca)
    der = t.getpeercert(binary_form=True)
    leaf = ssl.PEM_cert_to_DER_cert(open(w.pass_chain).read().split("-----END CERTIFICATE-----")[0]
                                    + "-----END CERTIFICATE-----\n")
    assert der == leaf
    st, _, body = get(t, "/opaque?x=1", f"127.0.0.2:{w.passer.port}", "Authorization: mine\r\n")
    assert st == 200
    t.close()
    recs = w.passer.wait_requests(1)
    assert recs[0].get("authorization") == "mine"  # the client's own, untouched
    assert not (no_credentials(w.passer) - {"authorization"})
    e = [x for x in p.wait_access(1) if x.get("method") == "CONNECT"]
    assert e and e[0]["action"] == "pass"


def test_pass_splice_is_byte_exact(https):
    """Arbitrary bytes (not HTTP, not TLS) both ways, checksummed."""
    w = https
    srv = socket.socket()
    srv.bind(("127.0.0.2", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    got = {}

    def echo():
        c, _ = srv.accept()
        h = hashlib.sha256()
        n = 0
        while True:
            b = c.recv(65536)
            if not b:
                break
            h.update(b)
            n += len(b)
            c.sendall(b)
        got["n"], got["sha"] = n, h.hexdigest()
        c.close()

    th = threading.Thread(target=echo, daemon=True)
    th.start()
    w.start(rules=[{"host": "127.0.0.2", "port": port, "action": "pass"}])
    s, st, _ = w.connect(f"127.0.0.2:{port}")
    assert st == 200
    data = os.urandom(3 << 20)
    back = bytearray()

    def reader():
        while True:
            b = s.recv(65536)
            if not b:
                break
            back.extend(b)

    rt = threading.Thread(target=reader, daemon=True)
    rt.start()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    rt.join(30)
    th.join(30)
    s.close()
    srv.close()
    assert got["n"] == len(data) and got["sha"] == hashlib.sha256(data).hexdigest()
    assert bytes(back) == data


@pytest.mark.parametrize("target", ["127.0.0.3:443", "198.51.100.7:443"])
def test_deny_and_unmatched_refused_before_tls(https, target):
    w = https
    p = w.start()
    s, st, head = w.connect(target)
    assert st == 403, head
    assert b"Proxy-Status: aauth-proxy; error=http_request_denied" in head
    # a ClientHello now gets nothing back but the end of the connection
    s.settimeout(5)
    rest = b""
    try:
        s.sendall(b"\x16\x03\x01\x00\x10" + b"\x00" * 16)
        while True:
            b = s.recv(65536)
            if not b:
                break
            rest += b
    except (ConnectionError, socket.timeout):
        pass
    s.close()
    assert b"\x16\x03" not in rest
    assert not [m for m in msgs(p) if "minted" in m]


def test_connect_to_a_private_address_no_rule_names(https):
    """default_action pass still holds to block_private_addresses: a
    tunnel to 10.0.0.1 or 127.0.0.9 is refused (403) without dialling."""
    w = https
    w.start(default_action="pass")
    s, st, head = w.connect("127.0.0.9:9")
    assert st == 403 and b"destination_ip_prohibited" in head, head
    s.close()


def test_no_local_ca_refuses_interception(https, tmp_path):
    w = https
    w.start(ca={"cert_file": str(tmp_path / "none.pem"),
                "key_file": str(tmp_path / "none-key.pem")})
    s, st, head = w.connect(f"127.0.0.1:{w.tls.port}")
    assert st == 503 and b"ca init" in head
    s.close()


# leaf cache ------------------------------------------------------------------------

def test_leaf_minted_once_per_host(https):
    w = https
    p = w.start(rules=[
        {"host": "127.0.0.1", "port": w.tls.port, "action": "sign", "resource": "secure"},
        {"host": "localhost", "port": w.tls.port, "action": "sign", "resource": "secure"}])
    serials = set()
    for _ in range(4):
        t = w.tls_connect(f"127.0.0.1:{w.tls.port}")
        serials.add(t.getpeercert()["serialNumber"])
        assert get(t, "/c", f"127.0.0.1:{w.tls.port}")[0] == 200
        t.close()
    assert len(serials) == 1
    t = w.tls_connect(f"localhost:{w.tls.port}", server_hostname="localhost")
    cert = t.getpeercert()
    assert ("DNS", "localhost") in cert["subjectAltName"]
    t.close()
    minted = [m for m in msgs(p) if m.startswith("minted a TLS certificate")]
    assert len(minted) == 2, minted
    # the leaf: days, not years; IP SAN for an address
    t = w.tls_connect(f"127.0.0.1:{w.tls.port}")
    c = t.getpeercert()
    t.close()
    assert ("IP Address", "127.0.0.1") in c["subjectAltName"]
    life = ssl.cert_time_to_seconds(c["notAfter"]) - ssl.cert_time_to_seconds(c["notBefore"])
    assert life <= 8 * 86400


# bad TLS input ---------------------------------------------------------------------

def healthy(w):
    """Another client is served meanwhile."""
    t = w.tls_connect(f"127.0.0.1:{w.tls.port}")
    st = get(t, "/healthy", f"127.0.0.1:{w.tls.port}")[0]
    t.close()
    return st == 200


def test_garbage_after_connect_closes_that_connection(https):
    w = https
    p = w.start()
    s, st, _ = w.connect(f"127.0.0.1:{w.tls.port}")
    assert st == 200
    s.sendall(b"\x16\x03\x01\x00\x08garbage!" + os.urandom(64))
    s.settimeout(5)
    data = b""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
    except (ConnectionError, socket.timeout):
        pass
    s.close()
    assert wait_msg(p, "handshake failed")
    assert healthy(w)
    assert p.alive()


def test_stalled_handshake_times_out(https):
    w = https
    p = w.start(limits={"header_timeout_ms": 600})
    s, st, _ = w.connect(f"127.0.0.1:{w.tls.port}")
    assert st == 200
    s.sendall(b"\x16\x03\x01")  # the start of a record, then nothing
    t0 = time.monotonic()
    s.settimeout(10)
    try:
        assert s.recv(4096) == b""
    except ConnectionError:
        pass
    assert time.monotonic() - t0 < 5
    s.close()
    assert wait_msg(p, "did not complete within 600 ms")
    assert healthy(w)


def test_old_protocol_version_refused(https):
    w = https
    p = w.start()
    s, st, _ = w.connect(f"127.0.0.1:{w.tls.port}")
    assert st == 200
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot offer TLS 1.1 at all")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        ctx.wrap_socket(s).do_handshake()
    s.close()
    assert wait_msg(p, "handshake failed")
    assert any("protocol" in m for m in msgs(p) if "handshake failed" in m), msgs(p)
    assert healthy(w)


def test_no_bytes_after_connect_times_out(https):
    w = https
    p = w.start(limits={"header_timeout_ms": 500})
    s, st, _ = w.connect(f"127.0.0.1:{w.tls.port}")
    assert st == 200
    s.settimeout(5)
    assert s.recv(10) == b""
    s.close()
    assert wait_msg(p, "sent nothing within header_timeout_ms after CONNECT")


# limits ----------------------------------------------------------------------------

def test_tunnels_count_against_max_connections_and_idle_out(https):
    w = https
    p = w.start(limits={"max_connections": 2, "idle_timeout_ms": 800})
    a, st1, _ = w.connect(f"127.0.0.2:{w.passer.port}")
    b, st2, _ = w.connect(f"127.0.0.2:{w.passer.port}")
    assert (st1, st2) == (200, 200)
    c, st3, head = w.connect(f"127.0.0.2:{w.passer.port}")
    assert st3 == 503, head
    c.close()
    # idle splices are closed by the proxy
    t0 = time.monotonic()
    for s in (a, b):
        s.settimeout(10)
        try:
            assert s.recv(10) == b""
        except ConnectionError:
            pass
        s.close()
    assert time.monotonic() - t0 < 6
    assert wait_msg(p, "idle for 800 ms")
    a, st, _ = w.connect(f"127.0.0.2:{w.passer.port}")
    assert st == 200
    a.close()


# an intermediate CA ----------------------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def test_intermediate_ca_chain_is_served(https, tmp_path):
    """ca.cert_file holds an intermediate (which issues the leaves) and the
    root; a client that trusts only the root verifies the leaf, so the
    chain was served with it."""
    w = https
    d = tmp_path / "inter"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "root.key", "-out", "root.pem", "-days", "3", "-subj", "/CN=test root",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "inter.key", "-out", "inter.csr", "-subj", "/CN=test intermediate", cwd=d)
    (d / "ext").write_text("basicConstraints=critical,CA:TRUE,pathlen:0\n"
                           "keyUsage=critical,keyCertSign,cRLSign\n"
                           "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    openssl("x509", "-req", "-in", "inter.csr", "-CA", "root.pem", "-CAkey", "root.key",
            "-CAcreateserial", "-out", "inter.pem", "-days", "3", "-extfile", "ext", cwd=d)
    (d / "chain.pem").write_text((d / "inter.pem").read_text() + (d / "root.pem").read_text())
    os.chmod(d / "inter.key", 0o600)
    w.start(ca={"cert_file": str(d / "chain.pem"), "key_file": str(d / "inter.key")})
    t = w.tls_connect(f"127.0.0.1:{w.tls.port}", cafile=str(d / "root.pem"))
    assert get(t, "/chained", f"127.0.0.1:{w.tls.port}")[0] == 200
    t.close()


def test_ca_key_readable_by_others_is_refused(https, proxy_factory):
    w = https
    os.chmod(w.proxy_ca_key, 0o644)
    with pytest.raises(RuntimeError, match="chmod 600"):
        w.start()


# hostile clients -------------------------------------------------------------------

def test_pipelined_burst_inside_tls(https):
    """Forty requests in one TLS write: more than the input bound holds at
    once, so reading must resume from OpenSSL's and the socket's buffers
    without a new event. Answered in order, each signed."""
    w = https
    w.start()
    t = w.tls_connect(f"127.0.0.1:{w.tls.port}")
    host = f"127.0.0.1:{w.tls.port}"
    pad = "x" * 4000
    burst = "".join(f"GET /p{i}?pad={pad} HTTP/1.1\r\nHost: {host}\r\n\r\n" for i in range(40))
    t.sendall(burst.encode())
    for i in range(40):
        st, _, body = read_response(t)
        assert st == 200 and f'"path": "/p{i}"'.encode() in body
    t.close()
    assert len(w.tls.records()) == 40
    assert all(r.verdict == "valid" for r in w.tls.records())


def test_dns_name_resolving_to_loopback_is_not_spliced(https):
    """default_action pass with a name (resolved without blocking the
    loop, /etc/hosts included): the address policy applies after
    resolution, as for every other upstream."""
    w = https
    w.start(default_action="pass")
    s, st, head = w.connect(f"localhost:{w.passer.port}")
    assert st == 403 and b"destination_ip_prohibited" in head, head
    s.close()
    assert not w.passer.records()


def test_many_tunnels_at_once(https):
    """200 splices open together, each carrying a request; the daemon
    stays within its limits and closes them all."""
    w = https
    p = w.start(limits={"max_connections": 300})
    socks = []
    for _ in range(200):
        s, st, _ = w.connect(f"127.0.0.2:{w.passer.port}")
        assert st == 200
        socks.append(s)
    ctx = w.client_ctx(cafile=w.pass_ca)
    tls = [ctx.wrap_socket(s, server_hostname="127.0.0.2") for s in socks[:20]]
    for t in tls:
        assert get(t, "/m", f"127.0.0.2:{w.passer.port}")[0] == 200
    for s in tls + socks[20:]:
        s.close()
    assert p.wait_for(lambda _l: len([e for e in p.access_entries()
                                      if e.get("method") == "CONNECT"]) >= 200, 20)
    assert p.alive()
