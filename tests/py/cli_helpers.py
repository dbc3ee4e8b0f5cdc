"""Helpers for the command-line tests: where the binary and the vectors are,
running a subcommand, private copies of the (world-readable) vector keys, a
small HTTP/1.1 message splitter and an independent RFC 9421 verifier built
on python3-cryptography, so the CLI is never checked only against itself."""

import base64
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("AAUTH_PROXY_BIN") or REPO / "build" / "aauth-proxy")
VECTORS = Path(os.environ.get("AAUTH_VECTORS") or REPO / "tests" / "vectors")

LUMO_X = "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"
LUMO_THUMBPRINT = "1IG2tMH7J2wbJZnOf8LJzQitKf7LMvoAElsuDMVM54Y"


def run(*args, input=None, cwd=None, preexec_fn=None):
    """Run `aauth-proxy ARGS`; stdout/stderr as bytes, never hangs. A
    missing binary fails the test: a skipped CLI test proves nothing."""
    if not BIN.is_file():
        pytest.fail("aauth-proxy binary not found at %s: build it or set "
                    "AAUTH_PROXY_BIN" % BIN)
    return subprocess.run(
        [str(BIN), *[str(a) for a in args]],
        input=input if input is not None else b"",
        capture_output=True,
        timeout=30,
        cwd=cwd,
        preexec_fn=preexec_fn,
    )


def vector(rel):
    return VECTORS / rel


def private_copy(tmp_path, rel, name=None, mode=0o600):
    """Copy a vector file to tmp_path with the given mode (the vector
    files are world-readable and a key file must not be)."""
    dst = Path(tmp_path) / (name or Path(rel).name)
    shutil.copyfile(vector(rel), dst)
    os.chmod(dst, mode)
    return dst


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def thumbprint(x):
    """RFC 7638 thumbprint of an Ed25519 JWK, computed here, not by the CLI."""
    canon = '{"crv":"Ed25519","kty":"OKP","x":"%s"}' % x
    return b64url(hashlib.sha256(canon.encode()).digest())


class Message:
    """One HTTP/1.1 request as wire bytes: request line, field lines, body."""

    def __init__(self, raw):
        head, sep, body = raw.partition(b"\r\n\r\n")
        assert sep, "no end of head in %r" % raw[:200]
        lines = head.decode("latin-1").split("\r\n")
        self.method, self.target, self.version = lines[0].split(" ")
        self.fields = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.fields.append((name, value.strip(" \t")))
        self.body = body

    def get_all(self, name):
        return [v for n, v in self.fields if n.lower() == name.lower()]

    def get(self, name):
        vals = self.get_all(name)
        return vals[0] if vals else None

    def names(self):
        return [n for n, _ in self.fields]

    def serialize(self):
        out = "%s %s %s\r\n" % (self.method, self.target, self.version)
        for n, v in self.fields:
            out += "%s: %s\r\n" % (n, v)
        return out.encode("latin-1") + b"\r\n" + self.body

    def replace(self, name, value):
        self.fields = [(n, value if n.lower() == name.lower() else v)
                       for n, v in self.fields]


def _split_target(msg):
    t = msg.target
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://([^/?]*)(.*)$", t)
    if m:
        scheme, authority, rest = m.group(1).lower(), m.group(2), m.group(3)
    else:
        scheme, authority, rest = None, msg.get("Host"), t
    path, q, query = rest.partition("?")
    return scheme, authority, path or "/", (query if q else None)


def _authority(scheme, authority):
    a = authority.lower()
    default = {"https": ":443", "http": ":80"}.get(scheme)
    if default and a.endswith(default):
        a = a[: -len(default)]
    return a


def signature_base(msg, label, scheme="https", absent_as_empty=True):
    """Rebuild an RFC 9421 base from a signed request, for components
    without parameters (what the built-in profiles cover)."""
    sig_input = None
    for member in _dict_members(",".join(msg.get_all("Signature-Input"))):
        if member[0] == label:
            sig_input = member[1]
    assert sig_input is not None, "no Signature-Input member %s" % label
    m = re.match(r'^\(([^)]*)\)', sig_input)
    components = re.findall(r'"([^"]*)"', m.group(1))
    tscheme, authority, path, query = _split_target(msg)
    scheme = tscheme or scheme
    lines = []
    for c in components:
        if c == "@method":
            v = msg.method
        elif c == "@authority":
            v = _authority(scheme, authority)
        elif c == "@path":
            v = path
        elif c == "@query":
            v = "?" + (query or "")
        elif c == "@scheme":
            v = scheme
        elif c == "@target-uri":
            # RFC 9110 §7.1 reconstruction: the raw Host, not normalised
            # (vectors/edge/e12b-target-uri-from-unnormalized-host).
            v = "%s://%s%s%s" % (scheme, authority, path,
                                 "?" + query if query is not None else "")
        elif c == "@request-target":
            v = msg.target
        elif c.startswith("@"):
            raise AssertionError("verifier does not know " + c)
        else:
            vals = msg.get_all(c)
            if not vals and not absent_as_empty:
                raise AssertionError("covered field %s absent" % c)
            v = ", ".join(vals)
        lines.append('"%s": %s' % (c, v))
    lines.append('"@signature-params": %s' % sig_input)
    return "\n".join(lines).encode("latin-1")


def _dict_members(value):
    """Split an RFC 8941 dictionary at top-level commas (enough for the
    Signature and Signature-Input values the proxy writes)."""
    out, depth, cur, inq = [], 0, "", False
    for ch in value:
        if ch == '"' and not cur.endswith("\\"):
            inq = not inq
        if not inq and ch == "(":
            depth += 1
        if not inq and ch == ")":
            depth -= 1
        if ch == "," and depth == 0 and not inq:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        out.append(cur)
    members = []
    for m in out:
        k, _, v = m.strip().partition("=")
        members.append((k, v))
    return members


def signature_bytes(msg, label, enc):
    """The raw signature; enc is "b64url" (LumoAuth: unpadded base64url)
    or "b64" (RFC 8941 byte sequence: padded standard base64)."""
    for k, v in _dict_members(",".join(msg.get_all("Signature"))):
        if k == label:
            inner = v.strip()
            assert inner.startswith(":") and inner.endswith(":"), inner
            s = inner[1:-1]
            if enc == "b64url":
                assert re.fullmatch(r"[A-Za-z0-9_-]+", s), s
                return b64url_decode(s)
            assert re.fullmatch(r"[A-Za-z0-9+/]+=*", s), s
            return base64.b64decode(s, validate=True)
    raise AssertionError("no Signature member %s" % label)


def independent_verify(msg, label, pub_x, enc, scheme="https",
                       absent_as_empty=True):
    """Verify with python3-cryptography; raises on failure. Also checks any
    Content-Digest against the body."""
    cd = msg.get("Content-Digest")
    if cd is not None:
        for alg, fn in (("sha-256", hashlib.sha256), ("sha-512", hashlib.sha512)):
            m = re.search(alg + r"=:([^:]*):", cd)
            if m:
                assert base64.b64decode(m.group(1)) == fn(msg.body).digest(), \
                    "Content-Digest does not match the body"
    base = signature_base(msg, label, scheme, absent_as_empty)
    sig = signature_bytes(msg, label, enc)
    Ed25519PublicKey.from_public_bytes(b64url_decode(pub_x)).verify(sig, base)
    return base
