"""A fake AAuth issuer and an AAuth-protected resource, written from
aauth-wire.md sections 2 to 4 alone (they share no code with the daemon).

FakeIssuer serves POST {prefix}/aauth/agent/token. Every token request
must carry a valid LumoAuth-profile signature with `authorization` covered
empty (fakes.lumo verifies it from the received bytes), a Content-Digest
matching the body, a nonce never seen before, and
`Agent-Auth: agent_token=<jwt>`; the agent token is either a fixed value or
an agent+jwt minted with the agent key (verified here: typ, alg, kid,
signature, iss, sub, aud = the issuer, iat, exp, a fresh jti, cnf.jwk).
Then it answers by request_type (auth, refresh, code) with tokens whose
lifetime is `lifetime` seconds, so refreshes happen during a test.

`mode` switches it to a failure (see MODES), to consent, or back to "ok";
go_down()/come_up() make connections be refused. It also serves
GET {prefix}/resource-token (a resource token for the `url` source,
signature checked, no Authorization).

AAuthResource is a protected resource that accepts exactly the tokens the
issuer has issued and not yet expired, checks the signature the same way
(a replayed nonce is refused), and can refuse given tokens with 401, all
tokens, or ask for a token with the AAuth-Requirement challenge.
"""

import base64
import json
import secrets
import socket
import socketserver
import threading
import time

from cryptography.exceptions import InvalidSignature

from . import http as fhttp
from . import lumo

MODES = {
    "ok": "answer normally",
    "timeout": "read the request, never answer (until the mode changes)",
    "slow": "answer normally after `delay` seconds",
    "drip": "send the 200 head, then one body byte every 0.2 s",
    "500": "500 with a JSON error",
    "503": "503, Retry-After if retry_after is set",
    "429": "429 with Retry-After: retry_after",
    "empty": "200 with an empty body",
    "nonjson": "200 with an HTML body",
    "oversized": "200 with a 2 MiB JSON body",
    "notoken": "200 JSON without auth_token or access_token",
    "crlf": "200 with a token holding CR LF and a header",
    "invalid_scope": "400 invalid_scope with an error_description",
    "invalid_grant": "400 invalid_grant for refresh requests (auth is fine)",
    "consent": "200 request_token + authorization_uri for auth requests",
    "consent401": "401 authorization_required + auth_url for auth requests",
    "bad_agent": "401 invalid_agent_token (a rejected agent token)",
}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def public_x(pubkey):
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    return b64url(pubkey.public_bytes(Encoding.Raw, PublicFormat.Raw))


def verify_agent_jwt(tok, pubkey, *, aud, iss=None, sub=None, kid="key-1"):
    """Check a minted agent+jwt against the agent's public key; returns
    (header, claims) or raises ValueError with the reason."""
    parts = tok.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS")
    header = json.loads(b64url_decode(parts[0]))
    claims = json.loads(b64url_decode(parts[1]))
    if header != {"typ": "agent+jwt", "alg": "EdDSA", "kid": kid}:
        raise ValueError(f"header {header}")
    try:
        pubkey.verify(b64url_decode(parts[2]), (parts[0] + "." + parts[1]).encode())
    except InvalidSignature:
        raise ValueError("signature does not verify with the agent key")
    now = time.time()
    for c in ("iss", "sub", "aud", "iat", "exp", "jti", "cnf"):
        if c not in claims:
            raise ValueError(f"claim {c} missing")
    if claims["aud"] != aud:
        raise ValueError(f"aud {claims['aud']!r} != {aud!r}")
    if iss is not None and claims["iss"] != iss:
        raise ValueError(f"iss {claims['iss']!r}")
    if sub is not None and claims["sub"] != sub:
        raise ValueError(f"sub {claims['sub']!r}")
    if not (claims["iat"] - 60 <= now <= claims["exp"]):
        raise ValueError(f"iat/exp {claims['iat']}/{claims['exp']} vs now {now:.0f}")
    jwk = claims["cnf"].get("jwk", {})
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or jwk.get("x") != public_x(pubkey):
        raise ValueError(f"cnf.jwk {jwk} is not the agent key")
    return header, claims


class TokenRequest:
    """One request the issuer received, and what it made of it."""

    def __init__(self, req):
        self.time = time.monotonic()
        self.method = req.method
        self.path = req.path
        self.headers = list(req.headers)
        self.raw_head = req.raw_head
        self.body = req.body
        try:
            self.json = json.loads(req.body) if req.body else None
        except ValueError:
            self.json = None
        self.type = (self.json or {}).get("request_type") if isinstance(self.json, dict) else None
        self.verdict = None
        self.reason = None
        self.nonce = None
        self.answer = None  # (status, what)

    def get(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return f"<TokenRequest {self.type} {self.verdict} {self.reason or ''} {self.answer}>"


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        fake = self.server.fake
        sock = self.request
        sock.settimeout(60)
        fake._track(sock, True)
        rfile = sock.makefile("rb")
        try:
            while not fake._stopping:
                try:
                    req = fhttp.read_request(rfile)
                except (fhttp.BadRequest, OSError, ValueError) as e:
                    fake._note(f"bad request: {e}")
                    return
                if req is None:
                    return
                if not fake._handle(sock, req):
                    return
        finally:
            fake._track(sock, False)
            try:
                rfile.close()
            except OSError:
                pass


def _send(sock, status, body=b"", headers=(), close=False, ctype="application/json"):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    lines = [f"HTTP/1.1 {status} X"]
    if ctype:
        lines.append(f"Content-Type: {ctype}")
    lines += [f"{n}: {v}" for n, v in headers]
    lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


class FakeIssuer:
    def __init__(self, pubkey, *, host="127.0.0.1", prefix="/orgs/acme/api/v1", lifetime=3,
                 agent_token=None, agent_iss="https://agent.test", agent_sub=None,
                 resource_token="rt-" + "a" * 8, scope=None, redirect_uri=None,
                 refresh_tokens=True, jwt_tokens=False, resource_profile_tls=False):
        self.pubkey = pubkey
        self.host = host
        self.prefix = prefix
        self.lifetime = lifetime
        self.agent_token = agent_token  # None: a minted agent+jwt is expected
        self.agent_iss = agent_iss
        self.agent_sub = agent_sub
        self.resource_tokens = {resource_token} if resource_token else set()
        self.served_resource_token = resource_token
        self.scope = scope
        self.redirect_uri = redirect_uri
        self.give_refresh_tokens = refresh_tokens
        self.jwt_tokens = jwt_tokens
        self.omit_expires_in = False
        self.mode = "ok"
        self.delay = 0
        self.retry_after = None
        self.requests = []
        self.notes = []
        self.nonces = set()
        self.jtis = set()
        self.tokens = {}  # token -> wall-clock expiry
        self.refresh_tokens = set()
        self.consents = {}  # request_token -> code (after approve)
        self.codes = {}  # code -> used?
        self.secrets = set()  # every secret issued or received
        self._cond = threading.Condition()
        self._conns = set()
        self._stopping = False
        self._server = None
        self.port = None
        self._bind(0)

    # lifecycle -----------------------------------------------------------
    def _bind(self, port):
        self._server = _Server((self.host, port), _Handler, bind_and_activate=True)
        self._server.fake = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def go_down(self):
        """Stop listening and drop every connection: connects are refused."""
        self._server.shutdown()
        self._server.server_close()
        self._drop_conns()
        self._server = None

    def come_up(self):
        self._bind(self.port)
        self._thread.start()

    def _drop_conns(self):
        with self._cond:
            socks = list(self._conns)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self._stopping = True
        with self._cond:
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._drop_conns()

    def set_mode(self, mode, **kw):
        assert mode in MODES, mode
        with self._cond:
            self.mode = mode
            for k, v in kw.items():
                setattr(self, k, v)
            self._cond.notify_all()

    @property
    def url(self):
        return f"http://{self.host}:{self.port}{self.prefix}"

    @property
    def token_path(self):
        return self.prefix + "/aauth/agent/token"

    # records -------------------------------------------------------------
    def _track(self, sock, add):
        with self._cond:
            (self._conns.add if add else self._conns.discard)(sock)

    def _note(self, what):
        with self._cond:
            self.notes.append(what)

    def token_requests(self, types=None):
        with self._cond:
            return [r for r in self.requests if r.path == self.token_path
                    and (types is None or r.type in types)]

    def wait_token_requests(self, n, timeout=15, types=None, answered=True):
        """Wait for n token requests (answered ones unless answered=False:
        a "timeout" answer only comes when the mode changes)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self.requests if r.path == self.token_path
                       and (types is None or r.type in types)
                       and (not answered or r.answer is not None)]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    return got
                self._cond.wait(min(left, 0.1))

    def wait_for(self, pred, timeout=15):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                v = pred()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    return v
                self._cond.wait(min(left, 0.1))

    def token_valid(self, tok, grace=0.5):
        with self._cond:
            exp = self.tokens.get(tok)
        return exp is not None and time.time() <= exp + grace

    def current_tokens(self):
        with self._cond:
            now = time.time()
            return [t for t, e in self.tokens.items() if e >= now]

    def approve(self, request_token=None):
        """The person approves: returns the code the browser would carry."""
        with self._cond:
            rqt = request_token or next(iter(self.consents))
            code = "code-" + secrets.token_urlsafe(16)
            self.consents[rqt] = code
            self.codes[code] = False
            self.secrets.add(code)
            return code

    # handling ------------------------------------------------------------
    def _handle(self, sock, req):
        rec = TokenRequest(req)
        with self._cond:
            self.requests.append(rec)
            self._cond.notify_all()
        if req.path == self.prefix + "/resource-token" and req.method == "GET":
            return self._resource_token(sock, req, rec)
        if req.path != self.token_path or req.method != "POST":
            rec.verdict, rec.reason = "invalid", f"{req.method} {req.path}"
            _send(sock, 404, {"error": "not_found"})
            return True
        why = self._check(req, rec)
        if why is not None:
            rec.verdict, rec.reason = "invalid", why
            rec.answer = (401, why)
            _send(sock, 401, {"error": "invalid_request", "error_description": why})
            with self._cond:
                self._cond.notify_all()
            return True
        rec.verdict = "valid"
        try:
            return self._answer(sock, req, rec)
        finally:
            with self._cond:
                self._cond.notify_all()

    def _check(self, req, rec):
        """The reason to refuse a token request, or None."""
        try:
            v = lumo.verify(req, self.pubkey, tls=False, expected_token=None,
                            nonces=self.nonces)
            rec.nonce = v["nonce"]
        except lumo.Rejected as e:
            return f"signature: {e}"
        if req.get("content-type") != "application/json":
            return f"Content-Type {req.get('content-type')!r}"
        aa = req.get_all("agent-auth")
        if len(aa) != 1 or not aa[0].startswith("agent_token="):
            return f"Agent-Auth {aa!r}"
        agent = aa[0][len("agent_token="):]
        with self._cond:
            self.secrets.add(agent)
        if self.agent_token is not None:
            if agent != self.agent_token:
                return "agent token is not the registered one"
        else:
            try:
                _, claims = verify_agent_jwt(agent, self.pubkey, aud=self.url,
                                             iss=self.agent_iss, sub=self.agent_sub)
            except ValueError as e:
                return f"agent token: {e}"
            with self._cond:
                if claims["jti"] in self.jtis:
                    return "agent token jti replayed"
                self.jtis.add(claims["jti"])
        if not isinstance(rec.json, dict):
            return "body is not a JSON object"
        body = rec.json
        t = body.get("request_type")
        with self._cond:
            for k in ("resource_token", "refresh_token", "code"):
                if isinstance(body.get(k), str):
                    self.secrets.add(body[k])
        if t == "auth":
            if body.get("resource_token") not in self.resource_tokens:
                return "unknown resource_token"
            if self.scope is not None and body.get("scope") != self.scope:
                return f"scope {body.get('scope')!r}"
            if self.redirect_uri is not None and body.get("redirect_uri") != self.redirect_uri:
                return f"redirect_uri {body.get('redirect_uri')!r}"
        elif t == "refresh":
            if body.get("resource_token") not in self.resource_tokens:
                return "refresh without a valid fresh resource_token"
        elif t == "code":
            if self.redirect_uri is not None and body.get("redirect_uri") != self.redirect_uri:
                return f"redirect_uri {body.get('redirect_uri')!r}"
        else:
            return f"request_type {t!r}"
        return None

    def _issue(self, rec, kind):
        with self._cond:
            now = time.time()
            if self.jwt_tokens:
                hdr = b64url(json.dumps({"typ": "auth+jwt", "alg": "none"}).encode())
                cl = b64url(json.dumps({"exp": int(now + self.lifetime),
                                        "jti": secrets.token_hex(8)}).encode())
                tok = f"{hdr}.{cl}.sig"
            else:
                tok = "at-" + secrets.token_urlsafe(24)
            self.tokens[tok] = now + self.lifetime
            self.secrets.add(tok)
            out = {"request_type": kind, "auth_token": tok, "token_type": "auth+jwt"}
            if not self.omit_expires_in:
                out["expires_in"] = self.lifetime
            if kind in ("auth", "code") and self.give_refresh_tokens:
                rt = "rft-" + secrets.token_urlsafe(24)
                self.refresh_tokens.add(rt)
                self.secrets.add(rt)
                out["refresh_token"] = rt
            if self.scope:
                out["scope"] = self.scope
            return out

    def _answer(self, sock, req, rec):
        with self._cond:
            mode = self.mode
            delay = self.delay
        t = rec.type
        if mode == "timeout":
            with self._cond:
                deadline = time.monotonic() + 60
                while self.mode == "timeout" and not self._stopping and time.monotonic() < deadline:
                    self._cond.wait(0.1)
            rec.answer = (0, "no answer")
            return False
        if mode == "slow":
            time.sleep(delay)
        if mode == "drip":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n")
            for _ in range(300):
                if self._stopping or self.mode != "drip":
                    break
                try:
                    sock.sendall(b" ")
                except OSError:
                    break
                time.sleep(0.2)
            rec.answer = (200, "drip")
            return False
        simple = {
            "500": (500, {"error": "server_error"}),
            "empty": (200, b""),
            "nonjson": (200, b"<html>maintenance</html>"),
            "oversized": (200, json.dumps({"auth_token": "x" * (2 << 20)}).encode()),
            "notoken": (200, {"token_type": "auth+jwt", "expires_in": 60}),
            "crlf": (200, {"auth_token": "at-evil\r\nX-Injected: 1", "expires_in": 60}),
            "invalid_scope": (400, {"error": "invalid_scope",
                                    "error_description": "scope documents:write is not granted"}),
            "bad_agent": (401, {"error": "invalid_agent_token",
                                "error_description": "agent token rejected"}),
        }
        if mode in simple:
            st, body = simple[mode]
            rec.answer = (st, mode)
            _send(sock, st, body, ctype="text/html" if mode == "nonjson" else "application/json")
            return True
        if mode in ("503", "429"):
            hdrs = [("Retry-After", str(self.retry_after))] if self.retry_after else []
            rec.answer = (int(mode), mode)
            _send(sock, int(mode), {"error": "temporarily_unavailable"}, headers=hdrs)
            return True
        if mode == "invalid_grant" and t == "refresh":
            rec.answer = (400, "invalid_grant")
            _send(sock, 400, {"error": "invalid_grant", "error_description": "refresh token revoked"})
            return True
        if t == "refresh" and rec.json.get("refresh_token") not in self.refresh_tokens:
            rec.answer = (400, "invalid_grant")
            _send(sock, 400, {"error": "invalid_grant", "error_description": "unknown refresh token"})
            return True
        if t == "code":
            code = rec.json.get("code")
            with self._cond:
                ok = code in self.codes and not self.codes[code]
                if ok:
                    self.codes[code] = True
            if not ok:
                rec.answer = (400, "invalid_grant")
                _send(sock, 400, {"error": "invalid_grant", "error_description": "bad code"})
                return True
        if t == "auth" and mode in ("consent", "consent401"):
            rqt = "rqt-" + secrets.token_urlsafe(12)
            with self._cond:
                self.consents[rqt] = None
            url = f"http://{self.host}:{self.port}/portal/aauth/authorize?request_token={rqt}"
            rec.answer = (200 if mode == "consent" else 401, "consent")
            if mode == "consent":
                _send(sock, 200, {"request_token": rqt, "authorization_uri": url,
                                  "expires_in": 600})
            else:
                _send(sock, 401, {"error": "authorization_required", "auth_url": url,
                                  "request_token": rqt})
            return True
        out = self._issue(rec, t)
        rec.answer = (200, "token")
        _send(sock, 200, out)
        return True

    def _resource_token(self, sock, req, rec):
        try:
            lumo.verify(req, self.pubkey, tls=False, expected_token=None, nonces=self.nonces)
        except lumo.Rejected as e:
            rec.verdict, rec.reason = "invalid", str(e)
            _send(sock, 401, {"error": "invalid_signature", "error_description": str(e)})
            return True
        rec.verdict = "valid"
        rt = "rt-url-" + secrets.token_urlsafe(8)
        with self._cond:
            self.resource_tokens.add(rt)
        _send(sock, 200, {"resource_token": rt})
        return True


class AAuthResource:
    """A protected resource trusting the issuer's tokens (see module doc)."""

    def __init__(self, issuer, pubkey, host="127.0.0.1"):
        self.issuer = issuer
        self.pubkey = pubkey
        self.host = host
        self.challenge = None  # resource token to put in a 401 challenge
        self.refuse = set()  # tokens answered with 401
        self.refuse_all = False
        self.requests = []
        self.nonces = set()
        self._cond = threading.Condition()
        self._stopping = False
        self._conns = set()
        self._server = _Server((host, 0), _Handler, bind_and_activate=True)
        self._server.fake = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stopping = True
        self._server.shutdown()
        self._server.server_close()
        with self._cond:
            socks = list(self._conns)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def url(self, path="/"):
        return f"http://{self.host}:{self.port}{path}"

    def _track(self, sock, add):
        with self._cond:
            (self._conns.add if add else self._conns.discard)(sock)

    def _note(self, what):
        pass

    def records(self):
        with self._cond:
            return list(self.requests)

    def wait_requests(self, n, timeout=15):
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self.requests)

    def _handle(self, sock, req):
        auth = req.get_all("authorization")
        token = auth[0][7:] if len(auth) == 1 and auth[0].startswith("Bearer ") else None
        rec = {"time": time.monotonic(), "token": token, "nonce": None, "created": None,
               "verdict": None, "reason": None, "path": req.path}
        try:
            v = lumo.verify(req, self.pubkey, tls=False, expected_token=token,
                            nonces=self.nonces)
            rec["nonce"], rec["created"] = v["nonce"], v["created"]
            if token is None:
                rec["verdict"], rec["reason"] = "no_token", "no Authorization"
            elif not self.issuer.token_valid(token):
                rec["verdict"], rec["reason"] = "bad_token", "token unknown or expired"
            elif self.refuse_all or token in self.refuse:
                rec["verdict"], rec["reason"] = "refused", "token refused"
            else:
                rec["verdict"] = "valid"
        except lumo.Rejected as e:
            rec["verdict"], rec["reason"] = "invalid", str(e)
        with self._cond:
            self.requests.append(rec)
            self._cond.notify_all()
        close = req.wants_close()
        if rec["verdict"] == "valid":
            _send(sock, 200, {"ok": True, "path": req.path}, close=close)
        else:
            hdrs = []
            if self.challenge is not None and rec["verdict"] != "invalid":
                hdrs.append(("AAuth-Requirement",
                             f'requirement=auth-token; resource-token="{self.challenge}"'))
            _send(sock, 401, {"error": rec["verdict"], "reason": rec["reason"]},
                  headers=hdrs, close=close)
        return not close
