"""An independent verifier of the LumoAuth profile of RFC 9421.

Written from aauth-wire.md section 1 alone (it shares no code with the
daemon), so a signature the daemon gets wrong cannot be accepted here by a
bug the two have in common. It works on a parsed HTTP request as the
receiving server saw it (fakes.http.Request) and returns a verdict.
"""

import base64
import hashlib
import re
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

LABEL = "sig1"
# Covered components in the one order the profile allows; "@query" goes
# right after "@path" if and only if the target has a non-empty query.
COMPONENTS_HEAD = ["@method", "@authority", "@path"]
COMPONENTS_TAIL = ["signature-key", "content-digest", "content-type", "authorization"]
CREATED_WINDOW = 60
MIN_NONCE_CHARS = 16  # 12 random bytes at least; the SDKs use 16

SIG_INPUT_RE = re.compile(
    r'^sig1=\(((?:"[^"\\]*")(?: "[^"\\]*")*)\);created=(\d+);nonce="([^"]*)"$'
)
SIGNATURE_RE = re.compile(r"^sig1=:([A-Za-z0-9_-]+):$")
B64URL_RE = re.compile(r"^[A-Za-z0-9_-]+$")
DIGEST_RE = re.compile(r"^sha-256=:([A-Za-z0-9+/]+={0,2}):$")


class Rejected(Exception):
    """A request that the profile does not accept; str() is the reason."""


def load_public_key(path):
    with open(path, "rb") as f:
        key = load_pem_public_key(f.read())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


def b64url_decode(s):
    if not B64URL_RE.match(s):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def content_digest(body):
    """The Content-Digest value the profile sends for these body bytes."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


def authority(host, tls):
    """@authority: host[:port] lower-cased, the scheme's default port dropped."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise Rejected(f"malformed Host {host!r}")
        name, rest = host[: end + 1], host[end + 1 :]
        port = rest[1:] if rest.startswith(":") else None
    elif ":" in host:
        name, port = host.rsplit(":", 1)
    else:
        name, port = host, None
    if port is not None and port == ("443" if tls else "80"):
        port = None
    return name if port is None else f"{name}:{port}"


def single(req, name):
    vals = req.get_all(name)
    if len(vals) != 1:
        raise Rejected(f"expected exactly one {name} header, got {len(vals)}")
    return vals[0]


def covered_value(req, name):
    """A covered field: all lines joined with ", "; absent means empty."""
    vals = req.get_all(name)
    return ", ".join(vals)


def signature_base(req, params_text, components, tls):
    lines = []
    for c in components:
        if c == "@method":
            v = req.method.upper()
        elif c == "@authority":
            v = authority(single(req, "host"), tls)
        elif c == "@path":
            v = req.path or "/"
        elif c == "@query":
            v = "?" + req.query
        else:
            v = covered_value(req, c)
        lines.append(f'"{c}": {v}')
    lines.append(f'"@signature-params": {params_text}')
    return "\n".join(lines).encode()


def verify(req, pubkey, *, tls=False, expected_token=None, now=None,
           check_created=True, nonces=None):
    """Check one received request. Returns a dict describing what was
    signed; raises Rejected with the reason otherwise.

    expected_token: the token the Authorization header must carry as
    "Bearer <token>"; None means the request must have no Authorization.
    nonces: a set of nonces already seen (replay detection); the nonce is
    added to it once the signature has verified.
    """
    if req.target_form != "origin":
        raise Rejected(f"request-target is not origin-form: {req.target!r}")
    sig_input = single(req, "signature-input")
    signature = single(req, "signature")
    m = SIG_INPUT_RE.match(sig_input)
    if not m:
        raise Rejected(f"Signature-Input does not have the profile's shape: {sig_input!r}")
    components = [c.strip('"') for c in m.group(1).split(" ")]
    want = list(COMPONENTS_HEAD)
    if req.query:
        want.append("@query")
    want += COMPONENTS_TAIL
    if components != want:
        raise Rejected(f"covered components {components} != {want}")
    created = int(m.group(2))
    nonce = m.group(3)
    if len(nonce) < MIN_NONCE_CHARS or not B64URL_RE.match(nonce):
        raise Rejected(f"nonce {nonce!r} is not >= {MIN_NONCE_CHARS} base64url chars")
    if check_created:
        t = time.time() if now is None else now
        if abs(t - created) > CREATED_WINDOW:
            raise Rejected(f"created {created} is {t - created:.0f}s away from now")
    sm = SIGNATURE_RE.match(signature)
    if not sm:
        raise Rejected(f"Signature is not sig1=:<base64url>: : {signature!r}")
    sig = b64url_decode(sm.group(1))
    if len(sig) != 64:
        raise Rejected(f"signature is {len(sig)} bytes, not 64")
    params_text = sig_input[len(LABEL) + 1 :]
    base = signature_base(req, params_text, components, tls)
    try:
        pubkey.verify(sig, base)
    except InvalidSignature:
        raise Rejected("signature does not verify over the rebuilt base:\n" + base.decode())
    digest = single(req, "content-digest")
    dm = DIGEST_RE.match(digest)
    if not dm:
        raise Rejected(f"Content-Digest is not sha-256=:<base64>: : {digest!r}")
    if digest != content_digest(req.body):
        raise Rejected(
            f"Content-Digest {digest} does not match the {len(req.body)} body bytes received"
            f" ({content_digest(req.body)})"
        )
    if nonces is not None:
        if nonce in nonces:
            raise Rejected(f"nonce {nonce} replayed")
        nonces.add(nonce)
    auth = req.get_all("authorization")
    if expected_token is None:
        if auth:
            raise Rejected(f"unexpected Authorization {auth!r}")
    else:
        if auth != [f"Bearer {expected_token}"]:
            shown = [a[:20] + "..." for a in auth]
            raise Rejected(f"Authorization {shown} is not Bearer <expected token>")
    return {"created": created, "nonce": nonce, "components": components,
            "base": base.decode()}
