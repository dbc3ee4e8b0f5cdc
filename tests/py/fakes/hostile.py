"""A hostile upstream for the adversarial tests: a loopback TCP server that
records the raw bytes of every request it receives and answers with
whatever a test scripts, however malformed (bare LF or CR, duplicate
framing, endless headers, a bogus status line, an endless body).

handler(conn, raw_request) is called once per request with the socket and
the request bytes (head + the Content-Length body, bounded); it writes
what it wants and returns True to keep the connection for another
request. The stock handlers below cover the usual attacks.
"""

import socket
import threading
import time

MAX_REQ = 1 << 20


class HostileServer:
    def __init__(self, handler, host="127.0.0.1"):
        self.handler = handler
        self.host = host
        self.requests = []  # raw request bytes, in arrival order
        self.connections = 0
        self.errors = []
        self._cond = threading.Condition()
        self._stopping = False
        self._socks = set()
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((host, 0))
        self._lsock.listen(64)
        self.port = self._lsock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def authority(self):
        return f"{self.host}:{self.port}"

    def url(self, path="/"):
        return f"http://{self.host}:{self.port}{path}"

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stopping = True
        try:
            self._lsock.shutdown(socket.SHUT_RDWR)  # wakes the blocking accept()
        except OSError:
            pass
        self._thread.join(5)
        self._lsock.close()
        with self._cond:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def records(self):
        with self._cond:
            return list(self.requests)

    def wait_requests(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n and time.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - time.monotonic()))
            return list(self.requests)

    def _accept_loop(self):
        while not self._stopping:
            try:
                s, _ = self._lsock.accept()
            except OSError:
                return
            if self._stopping:
                s.close()
                return
            with self._cond:
                self.connections += 1
                self._socks.add(s)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _read_request(self, s, buf):
        """One request (head + Content-Length body) from s; buf (a
        bytearray) holds what was read past the previous request and keeps
        what is read past this one. Returns the request bytes, or None at
        EOF. Appends to buf and cuts the request off its front once, so a
        large request costs linear time."""
        scan = 0  # where to resume looking for the end of the head
        while (end := buf.find(b"\r\n\r\n", scan)) < 0:
            if len(buf) > MAX_REQ:
                return None
            scan = max(0, len(buf) - 3)
            d = s.recv(65536)
            if not d:
                return None
            buf += d
        end += 4
        n = 0
        for line in bytes(buf[:end]).split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                n = min(int(value.strip()), MAX_REQ)
        while len(buf) < end + n:
            d = s.recv(65536)
            if not d:
                break
            buf += d
        req = bytes(buf[:end + n])
        del buf[:end + n]
        return req

    def _serve(self, s):
        s.settimeout(30)
        buf = bytearray()
        try:
            while not self._stopping:
                req = self._read_request(s, buf)
                if req is None:
                    return
                with self._cond:
                    self.requests.append(req)
                    self._cond.notify_all()
                if not self.handler(s, req):
                    return
        except OSError as e:
            with self._cond:
                self.errors.append(repr(e))
        finally:
            with self._cond:
                self._socks.discard(s)
            try:
                s.close()
            except OSError:
                pass


def raw_reply(data, keep=False):
    """A handler that sends fixed bytes, then closes (or keeps) the
    connection."""
    if isinstance(data, str):
        data = data.encode("latin-1")

    def handler(s, req):
        s.sendall(data)
        return keep

    return handler


def endless_headers(line=b"X-Filler: " + b"a" * 1000 + b"\r\n", limit=256 << 20):
    """A 200 head that never ends: header lines until limit bytes or the
    peer closes."""

    def handler(s, req):
        s.sendall(b"HTTP/1.1 200 OK\r\n")
        sent = 0
        block = line * 64
        while sent < limit:
            s.sendall(block)
            sent += len(block)
        return False

    return handler


def endless_body(total, chunk=1 << 16):
    """A 200 with Content-Length total, streamed as fast as the peer takes
    it (the same cheap block repeated, so the test process stays small).
    handler.sent counts the body bytes the kernel accepted so far, which
    shows whether the proxy pushed back."""
    block = bytes(range(256)) * (chunk // 256)

    def handler(s, req):
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                  b"Content-Length: %d\r\n\r\n" % total)
        while handler.sent < total:
            n = min(len(block), total - handler.sent)
            s.sendall(block[:n])
            handler.sent += n
        return False

    handler.sent = 0
    handler.block = block
    return handler
