"""A corporate-style HTTP proxy on loopback for the upstream.proxy tests:
it answers CONNECT by dialling the target and splicing bytes both ways,
and records every request head it saw (method, target, headers), so a
test can check what went through it and with which credentials. With
require_auth set, a request without that Proxy-Authorization gets 407."""

import socket
import threading


class UpstreamProxy:
    def __init__(self, host="127.0.0.1", require_auth=None):
        self.require_auth = require_auth  # "Basic …" or None
        self.seen = []  # (method, target, {lower-name: value})
        self._lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.host, self.port = self.sock.getsockname()[:2]
        self._stop = False
        self._threads = []

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def start(self):
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self):
        self._stop = True
        try:
            self.sock.close()
        except OSError:
            pass

    def records(self):
        with self._lock:
            return list(self.seen)

    def _accept_loop(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            c.settimeout(15)
            head = b""
            while b"\r\n\r\n" not in head:
                b = c.recv(4096)
                if not b:
                    return
                head += b
            head, _, rest = head.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            hdrs = {}
            for line in lines[1:]:
                n, _, v = line.partition(":")
                hdrs[n.strip().lower()] = v.strip()
            with self._lock:
                self.seen.append((method, target, hdrs))
            if self.require_auth and hdrs.get("proxy-authorization") != self.require_auth:
                c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                          b"Proxy-Authenticate: Basic realm=\"corp\"\r\n"
                          b"Content-Length: 0\r\n\r\n")
                return
            if method != "CONNECT":
                c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            host, _, port = target.rpartition(":")
            try:
                u = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
            except OSError:
                c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                u.sendall(rest)
            c.settimeout(None)
            u.settimeout(None)
            t = threading.Thread(target=self._pipe, args=(u, c), daemon=True)
            t.start()
            self._pipe(c, u)
            t.join(15)
        except OSError:
            pass
        finally:
            c.close()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        finally:
            try:
                b.shutdown(socket.SHUT_WR)
            except OSError:
                pass
