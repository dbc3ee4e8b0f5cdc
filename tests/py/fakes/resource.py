"""Fake upstream servers for the black-box tests.

FakeServer is a threaded HTTP/1.1 server (keep-alive, optional TLS) bound
to a loopback address. With verify=True it is a *protected resource*: every
request must carry a LumoAuth-profile signature that fakes.lumo verifies
from the bytes actually received, plus "Authorization: Bearer <token>",
and exactly one Host naming this server; anything else is answered 401
with a JSON reason. With verify=False it is a
plain upstream that only records what it receives (to prove that hosts no
sign rule names never see credentials).

Every request is recorded (method, target, headers, body and its hash,
verdict). With handler=fn, fn(sock, record) answers every request instead
of the endpoints below (a scripted upstream; it returns "close" to end
the connection).

Endpoints (any method unless said):
  /echo               the received body back (X-Body-Sha256 header)
  /big?size=N&mode=   N bytes of big_body() (default 8 MiB); mode=chunked
                      or close for those framings; X-Body-Sha256 header
  /sse?n=&id=&ack=1&delay=&mode=chunked|close
                      server-sent events flushed one by one; with ack=1
                      event i+1 is only sent after ack(id, i) was called
                      (bounded wait), and each event says whether the
                      previous one was acknowledged
  /slow?ms=N          sleeps N ms, then answers 200
  /status/NNN         answers NNN (no body for 1xx/204/304)
  /trailers           a chunked body followed by trailer fields (X-Cost,
                      X-Budget-Remaining)
  /ws                 with Upgrade: websocket, 101 Switching Protocols, then
                      every byte received is echoed back until EOF
  anything else       200 with a JSON echo of the request
HEAD gets the same head as GET, without a body.
"""

import hashlib
import json
import random
import socket
import socketserver
import ssl
import threading
import time
import urllib.parse

from . import http as fhttp
from . import lumo

BIG_DEFAULT = 8 << 20
_big_cache = {}
_big_lock = threading.Lock()


def big_body(size):
    """Deterministic pseudo-random bytes (the same for a size on every run)."""
    with _big_lock:
        if size not in _big_cache:
            _big_cache[size] = random.Random(size).randbytes(size)
        return _big_cache[size]


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


class Record:
    """One request as the fake received it."""

    def __init__(self, req, verdict, reason):
        self.method = req.method
        self.target = req.target
        self.path = req.path
        self.query = req.query
        self.version = req.version
        self.headers = list(req.headers)
        self.raw_head = req.raw_head
        self.body = req.body
        self.body_len = len(req.body)
        self.body_sha256 = sha256_hex(req.body)
        self.framing = req.framing
        self.verdict = verdict  # "valid", "invalid" or "unchecked"
        self.reason = reason
        self.time = time.time()

    @property
    def raw(self):
        """The request as received (head + body), for re-verifying its
        signature; None for a chunked body (not kept as framed)."""
        return None if self.framing == "chunked" else self.raw_head + self.body

    def get_all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def get(self, name, default=None):
        v = self.get_all(name)
        return v[0] if v else default

    def header_names(self):
        return [n.lower() for n, _ in self.headers]

    def __repr__(self):
        return f"<Record {self.method} {self.target} {self.verdict} {self.reason or ''}>"


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class _Handler(socketserver.BaseRequestHandler):
    def setup(self):
        fake = self.server.fake
        sock = self.request
        sock.settimeout(60)
        if fake.tls_ctx is not None:
            try:
                sock = fake.tls_ctx.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError) as e:
                fake._note_tls_failure(e)
                self.sock = None
                return
        self.sock = sock
        fake._track(sock, True)
        self.rfile = sock.makefile("rb")

    def finish(self):
        if self.sock is not None:
            self.server.fake._track(self.sock, False)
            try:
                self.rfile.close()
            except OSError:
                pass

    def handle(self):
        if self.sock is None:
            return
        fake = self.server.fake
        while not fake._stopping:
            try:
                req = fhttp.read_request(self.rfile)
            except fhttp.BadRequest as e:
                fake._note_malformed(str(e))
                self._send(400, [("Content-Type", "application/json")],
                           json.dumps({"error": "bad_request", "reason": str(e)}).encode(),
                           close=True)
                return
            except (OSError, ValueError):
                return
            if req is None:
                return
            try:
                keep = fake._dispatch(self, req)
            except (OSError, ssl.SSLError):
                return
            if not keep:
                return

    def _send(self, status, headers, body=b"", close=False, head=False):
        reason = {200: "OK", 204: "No Content", 304: "Not Modified", 400: "Bad Request",
                  401: "Unauthorized"}.get(status, "Status")
        lines = [f"HTTP/1.1 {status} {reason}"]
        names = {n.lower() for n, _ in headers}
        for n, v in headers:
            lines.append(f"{n}: {v}")
        if status >= 200 and status not in (204, 304) and "content-length" not in names \
                and "transfer-encoding" not in names:
            lines.append(f"Content-Length: {len(body)}")
        if close:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if not head and status not in (204, 304):
            data += body
        self.sock.sendall(data)

    def send_raw(self, data):
        self.sock.sendall(data)


class FakeServer:
    def __init__(self, host="127.0.0.1", *, verify=False, pubkey=None, token=None,
                 tls_ctx=None, name="fake", handler=None):
        self.host = host
        # handler(sock, record) answers every (checked and recorded)
        # request itself instead of the endpoints above; it returns
        # "close" to end the connection.
        self.handler = handler
        self.verify = verify
        self.pubkey = pubkey
        self.expected_token = token
        self.tls_ctx = tls_ctx
        self.name = name
        self.requests = []
        self.malformed = []
        self.tls_failures = []
        self.nonces = set()
        self.streams = {}
        self._acks = {}
        self._cond = threading.Condition()
        self._conns = set()
        self._stopping = False
        self._server = _Server((host, 0), _Handler, bind_and_activate=True)
        self._server.fake = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    # lifecycle
    def start(self):
        self._thread.start()
        return self

    def _accept_loop(self):
        # A blocking accept that stop() ends at once (shutdown of the
        # listening socket), rather than serve_forever's polling.
        lsock = self._server.socket
        while not self._stopping:
            try:
                conn, addr = lsock.accept()
            except OSError:
                return
            if self._stopping:
                conn.close()
                return
            self._server.process_request(conn, addr)  # a thread per connection

    def stop(self):
        self._stopping = True
        with self._cond:
            self._cond.notify_all()
        try:
            self._server.socket.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self._thread.join(5)
        self._server.server_close()
        for s in list(self._conns):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def authority(self):
        return f"{self.host}:{self.port}"

    def url(self, path="/"):
        scheme = "https" if self.tls_ctx else "http"
        return f"{scheme}://{self.host}:{self.port}{path}"

    # records
    def _track(self, sock, add):
        with self._cond:
            (self._conns.add if add else self._conns.discard)(sock)

    def _note_malformed(self, why):
        with self._cond:
            self.malformed.append(why)

    def _note_tls_failure(self, e):
        with self._cond:
            self.tls_failures.append(str(e))

    def records(self, path=None):
        with self._cond:
            return [r for r in self.requests if path is None or r.path == path]

    def wait_requests(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self.requests)

    def clear(self):
        with self._cond:
            self.requests.clear()

    @property
    def open_connections(self):
        with self._cond:
            return len(self._conns)

    # server-sent events handshake
    def ack(self, stream_id, i):
        with self._cond:
            self._acks.setdefault(stream_id, set()).add(int(i))
            self._cond.notify_all()

    def _wait_ack(self, stream_id, i, timeout):
        deadline = time.monotonic() + timeout
        with self._cond:
            while i not in self._acks.get(stream_id, ()):
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping:
                    return False
                self._cond.wait(left)
            return True

    # request handling
    def _check(self, req):
        if not self.verify:
            return "unchecked", None
        host = req.get_all("host")
        if [h.lower() for h in host] != [self.authority]:
            return "invalid", f"Host {host} is not this server's authority {self.authority}"
        try:
            lumo.verify(req, self.pubkey, tls=self.tls_ctx is not None,
                        expected_token=self.expected_token, nonces=self.nonces)
            return "valid", None
        except lumo.Rejected as e:
            return "invalid", str(e)

    def _dispatch(self, h, req):
        verdict, reason = self._check(req)
        rec = Record(req, verdict, reason)
        with self._cond:
            self.requests.append(rec)
            self._cond.notify_all()
        close = req.wants_close()
        head = req.method == "HEAD"
        if self.handler is not None:
            return self.handler(h.sock, rec) != "close" and not close
        if verdict == "invalid":
            body = json.dumps({"error": "invalid_request", "reason": reason}).encode()
            h._send(401, [("Content-Type", "application/json")], body, close=close, head=head)
            return not close
        q = urllib.parse.parse_qs(req.query or "", keep_blank_values=True)

        def arg(name, default):
            return q.get(name, [default])[0]

        path = req.path
        if path == "/echo":
            ct = req.get("content-type") or "application/octet-stream"
            h._send(200, [("Content-Type", ct), ("X-Body-Sha256", sha256_hex(req.body))],
                    req.body, close=close, head=head)
            return not close
        if path == "/big":
            size = int(arg("size", BIG_DEFAULT))
            mode = arg("mode", "length")
            return self._send_big(h, size, mode, close, head)
        if path == "/sse":
            return self._send_sse(h, req, q, close, head)
        if path == "/trailers":
            h.send_raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                       b"Trailer: X-Cost, X-Budget-Remaining\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n"
                       b"5\r\nhello\r\n0\r\nX-Cost: 0.0042 usd\r\n"
                       b"X-Budget-Remaining: 17\r\n\r\n")
            return not close
        if path == "/ws" and (req.get("upgrade") or "").lower() == "websocket":
            return self._websocket(h, req)
        if path == "/slow":
            ms = int(arg("ms", "2000"))
            with self._cond:  # slow on purpose; stop() ends the wait
                self._cond.wait_for(lambda: self._stopping, timeout=ms / 1000)
        if path.startswith("/status/"):
            status = int(path.split("/")[2])
            if status in (204, 304) or status < 200:
                h._send(status, [("X-Fake", self.name), ("ETag", '"v1"')], b"", close=close)
                return not close
            body = json.dumps({"status": status}).encode()
            h._send(status, [("Content-Type", "application/json")], body, close=close, head=head)
            return not close
        echo = {
            "server": self.name,
            "method": req.method,
            "target": req.target,
            "path": req.path,
            "query": req.query,
            "body_sha256": sha256_hex(req.body),
            "body_len": len(req.body),
            "header_names": req.header_names(),
            "verdict": verdict,
        }
        h._send(200, [("Content-Type", "application/json")], json.dumps(echo).encode(),
                close=close, head=head)
        return not close

    def _websocket(self, h, req):
        import base64
        key = req.get("sec-websocket-key") or ""
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        h.send_raw(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        # The bytes after the switch are opaque to the proxy: echo them.
        while not self._stopping:
            b = h.rfile.read1(65536)
            if not b:
                break
            h.send_raw(b)
        return False

    def _send_big(self, h, size, mode, close, head):
        body = big_body(size)
        hdrs = [("Content-Type", "application/octet-stream"), ("X-Body-Sha256", sha256_hex(body))]
        if mode == "chunked":
            hdrs.append(("Transfer-Encoding", "chunked"))
        elif mode == "close":
            close = True
        else:
            hdrs.append(("Content-Length", str(size)))
        lines = ["HTTP/1.1 200 OK"] + [f"{n}: {v}" for n, v in hdrs]
        if close:
            lines.append("Connection: close")
        h.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode())
        if head:
            return not close
        step = 256 << 10
        for off in range(0, size, step):
            piece = body[off:off + step]
            if mode == "chunked":
                h.send_raw(b"%x\r\n" % len(piece) + piece + b"\r\n")
            else:
                h.send_raw(piece)
        if mode == "chunked":
            h.send_raw(b"0\r\n\r\n")
        return not close

    def _send_sse(self, h, req, q, close, head):
        n = int(q.get("n", ["5"])[0])
        sid = q.get("id", ["default"])[0]
        use_ack = q.get("ack", ["0"])[0] == "1"
        delay = int(q.get("delay", ["100"])[0]) / 1000
        mode = q.get("mode", ["chunked"])[0]
        hdrs = ["HTTP/1.1 200 OK", "Content-Type: text/event-stream", "Cache-Control: no-cache"]
        if mode == "chunked":
            hdrs.append("Transfer-Encoding: chunked")
        else:
            close = True
            hdrs.append("Connection: close")
        h.send_raw(("\r\n".join(hdrs) + "\r\n\r\n").encode())
        if head:
            return not close
        stream = {"sent": [], "acked": []}
        with self._cond:
            self.streams[sid] = stream
        acked_prev = True
        for i in range(1, n + 1):
            data = json.dumps({"i": i, "n": n, "acked_prev": acked_prev, "t": time.time()})
            ev = f"id: {i}\nevent: tick\ndata: {data}\n\n".encode()
            if mode == "chunked":
                h.send_raw(b"%x\r\n" % len(ev) + ev + b"\r\n")
            else:
                h.send_raw(ev)
            stream["sent"].append(time.time())
            if i < n:
                if use_ack:
                    acked_prev = self._wait_ack(sid, i, timeout=10)
                    stream["acked"].append(acked_prev)
                else:
                    time.sleep(delay)  # the stream's pace
        if mode == "chunked":
            h.send_raw(b"0\r\n\r\n")
        stream["done"] = time.time()
        return not close


def make_tls_context(certfile, keyfile):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile, keyfile)
    return ctx
