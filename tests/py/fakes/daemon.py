"""Running the real aauth-proxy daemon for a test, and talking to it over
raw sockets.

ProxyProcess writes the config JSON, starts `aauth-proxy run -c FILE`,
waits (bounded) for the `listening on` log line or a successful connect,
captures every stderr line (JSON log lines and the access log), and on
stop() sends SIGTERM and checks that the daemon exited cleanly (status 0,
no sanitizer report).
"""

import json
import os
import signal
import socket
import subprocess
import threading
import time

from . import http as fhttp

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:", "ThreadSanitizer")


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def clean_env(extra=None):
    """The environment for client processes: no proxy settings inherited."""
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update(extra or {})
    return env


class ProxyProcess:
    """`aauth-proxy run -c CONFIG`, or with argv (and listen, the address
    it will bind) any other long-running command such as demo-resource."""

    def __init__(self, binary, config, config_path, start_timeout=15, argv=None,
                 listen=None):
        self.binary = binary
        self.config = config
        self.config_path = config_path
        self.start_timeout = start_timeout
        self.argv = argv
        listen = listen or config["listen"][0]
        host, _, port = listen.rpartition(":")
        self.host = host.strip("[]")
        self.port = int(port)
        self.lines = []
        self.stdout_lines = []
        self.proc = None
        self.expect_exit = False
        self._cond = threading.Condition()
        self._threads = []

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    @property
    def addr(self):
        return (self.host, self.port)

    def _reader(self, stream, sink):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                sink.append(line)
                self._cond.notify_all()
        stream.close()

    def start(self):
        if self.argv is None:
            with open(self.config_path, "w") as f:
                json.dump(self.config, f, indent=2)
        self.proc = subprocess.Popen(
            [self.binary, *(self.argv or ["run", "-c", self.config_path])],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=clean_env(),
        )
        for stream, sink in ((self.proc.stderr, self.lines), (self.proc.stdout, self.stdout_lines)):
            t = threading.Thread(target=self._reader, args=(stream, sink), daemon=True)
            t.start()
            self._threads.append(t)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.expect_exit = True  # the caller gets the exception
                self._join_readers()
                raise RuntimeError(
                    f"aauth-proxy exited with status {self.proc.returncode} during start-up:\n"
                    + self.stderr_text())
            if any("listening on" in ln for ln in self.snapshot()) or self._connects():
                return self
            with self._cond:
                self._cond.wait(0.05)
        self.proc.kill()
        self.proc.wait()
        self.expect_exit = True
        raise RuntimeError(f"aauth-proxy did not start listening within {self.start_timeout}s:\n"
                           + self.stderr_text())

    def _connects(self):
        try:
            with socket.create_connection(self.addr, timeout=0.2):
                return True
        except OSError:
            return False

    def _join_readers(self):
        for t in self._threads:
            t.join(5)

    def snapshot(self):
        with self._cond:
            return list(self.lines)

    def stderr_text(self):
        return "\n".join(self.snapshot())

    def json_lines(self):
        out = []
        for ln in self.snapshot():
            try:
                obj = json.loads(ln)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out

    def log_messages(self):
        """The plain log lines (time/level/msg)."""
        return [o for o in self.json_lines() if "msg" in o and "level" in o]

    def access_entries(self):
        """Access-log lines: JSON objects that are not plain log messages."""
        return [o for o in self.json_lines() if not ("msg" in o and "level" in o)]

    def wait_for(self, pred, timeout=10):
        """Wait until pred(list of stderr lines) is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                v = pred(list(self.lines))
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    return v
                self._cond.wait(min(left, 0.1))

    def wait_access(self, n, timeout=10):
        """Wait until at least n access-log entries were written."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            e = self.access_entries()
            if len(e) >= n:
                return e
            time.sleep(0.02)
        return self.access_entries()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=15):
        """SIGTERM, wait (bounded), then return a list of problems (empty
        when the daemon exited cleanly)."""
        problems = []
        if self.proc is None:
            return problems
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append(f"aauth-proxy did not exit within {timeout}s of SIGTERM")
        elif not self.expect_exit:
            problems.append(f"aauth-proxy had already exited (status {self.proc.returncode})")
        self._join_readers()
        rc = self.proc.returncode
        if not self.expect_exit and rc != 0 and not problems:
            problems.append(f"aauth-proxy exited with status {rc} after SIGTERM")
        text = self.stderr_text()
        for mark in SANITIZER_MARKS:
            if mark in text:
                problems.append(f"sanitizer report in stderr ({mark})")
                break
        return problems


# Raw-socket clients -------------------------------------------------------

class RawConn:
    """A client connection to the proxy for byte-exact requests."""

    def __init__(self, addr, timeout=10):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.rfile = self.sock.makefile("rb")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def response(self, head_only=False):
        return fhttp.read_response(self.rfile, head_only=head_only)

    def final_response(self, head_only=False):
        """Skip 1xx responses; returns (informational list, final response)."""
        infos = []
        while True:
            st, hd, body = self.response(head_only=head_only)
            if st >= 200:
                return infos, (st, hd, body)
            infos.append((st, hd))

    def closed_by_peer(self, timeout=5):
        """True when the proxy closes the connection (EOF or reset) within
        timeout with no further bytes."""
        self.sock.settimeout(timeout)
        try:
            data = self.rfile.read1(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        return data == b""

    def close(self):
        try:
            self.rfile.close()
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def header(headers, name):
    """First value of a header in a [(lower-name, value)] list, or None."""
    for n, v in headers:
        if n == name.lower():
            return v
    return None


def raw_request(addr, data, timeout=10, head_only=False):
    with RawConn(addr, timeout) as c:
        c.send(data)
        return c.response(head_only=head_only)


def http_get_via(addr, url, headers=(), method="GET", body=b"", timeout=10):
    """One absolute-form request through the proxy on a fresh connection."""
    from urllib.parse import urlsplit
    u = urlsplit(url)
    lines = [f"{method} {url} HTTP/1.1", f"Host: {u.netloc}"]
    lines += [f"{n}: {v}" for n, v in headers]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    return raw_request(addr, data, timeout=timeout, head_only=(method == "HEAD"))
