"""Running the real aauth-proxy daemon for a test, and talking to it over
raw sockets.

ProxyProcess writes the config JSON, starts `aauth-proxy run -c FILE`,
waits (bounded) until the daemon has logged `listening on ADDR` for every
listen entry, and takes the bound address from those lines: a config may
say "127.0.0.1:0" (what proxy_factory does) and the kernel picks the
port, so no test races another process for a port. It captures every
stderr line (JSON log lines and the access log), and on stop() sends
SIGTERM and checks that the daemon exited cleanly (status 0, no sanitizer
report).

Waiting: wait_until(pred, timeout) polls a condition (bounded) instead of
sleeping a fixed time; ProxyProcess.wait_for / wait_access / wait_exit
wait on the daemon's output or exit.
"""

import contextlib
import ipaddress
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


def wait_until(pred, timeout=10, interval=0.02):
    """Poll pred() until it returns something truthy (returned) or timeout
    seconds pass (then its last, falsy value is returned). Bounded: never
    waits longer than timeout (plus one pred() call)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        left = deadline - time.monotonic()
        if left <= 0:
            return v
        time.sleep(min(interval, left))


def free_port(host="127.0.0.1"):
    """A port that was free a moment ago. Racy (another process may take
    it before it is used): proxies and fakes bind port 0 instead, and a
    port where nothing listens comes from dead_port()."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def dead_port(host="127.0.0.1"):
    """A port on which connections are refused for as long as the block
    runs: bound (so nobody else can take it) but not listening, so a
    connect gets a reset (ECONNREFUSED) on Linux."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        yield s.getsockname()[1]
    finally:
        s.close()


def rss_kb(pid):
    """Resident set size of a process in KiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def rss_mib(pid):
    return rss_kb(pid) / 1024


def fd_count(pid):
    """Open file descriptors of a process (Linux /proc)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def _proc_net_addr(addr):
    """(ip, port) → the hex form /proc/net/tcp{,6} uses."""
    ip, port = addr[0], addr[1]
    packed = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    words = [packed[i:i + 4][::-1].hex().upper() for i in range(0, len(packed), 4)]
    return f"{''.join(words)}:{port:04X}"


def unread_by_peer(sock):
    """How many bytes sent on the loopback TCP socket sock still sit
    unread in the peer's receive queue (Linux /proc/net/tcp), or None if
    the peer's socket is not found (e.g. closed). 0 means the peer process
    has read everything sent so far."""
    local = _proc_net_addr(sock.getpeername())   # the peer's side
    remote = _proc_net_addr(sock.getsockname())
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[1] == local and fields[2] == remote:
                        return int(fields[4].split(":")[1], 16)
        except FileNotFoundError:
            continue
    return None


def clean_env(extra=None):
    """The environment for client processes: no proxy settings inherited."""
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update(extra or {})
    return env


def _is_ip(host):
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _split_hostport(name):
    host, _, port = name.rpartition(":")
    return host.strip("[]"), int(port)


class ProxyProcess:
    """`aauth-proxy run -c CONFIG`, or with argv (and listen, the address
    it will bind) any other long-running command such as demo-resource."""

    def __init__(self, binary, config, config_path, start_timeout=15, argv=None,
                 listen=None, env=None, pass_fds=(), wrapper=None):
        self.binary = binary
        self.env = env or {}          # added to the clean environment
        self.pass_fds = pass_fds      # descriptors the daemon inherits
        self.wrapper = wrapper or []  # argv prefix (e.g. a socket-activation shim)
        self.config = config
        self.config_path = config_path
        self.start_timeout = start_timeout
        self.argv = argv
        if listen is not None:  # another command (argv), listening there
            self.listen = [listen]
        else:
            config.setdefault("listen", ["127.0.0.1:0"])
            # The admin port defaults to 127.0.0.1:8788: tests that run
            # side by side must not race for it, so the kernel picks one.
            config.setdefault("admin", {"listen": ["127.0.0.1:0"]})
            self.listen = list(config["listen"])
        tcp = [a for a in self.listen if not a.startswith("unix:")]
        unix = [a for a in self.listen if a.startswith("unix:")]
        # The first TCP listener is the one addr/url/port name; its port
        # may be 0 until the daemon says which one it bound.
        self.host, self.port = _split_hostport(tcp[0]) if tcp else (None, None)
        self.unix_path = unix[0][len("unix:"):] if unix else None
        self.bound = []  # every "listening on" name, in the order logged
        self.lines = []
        self._json = []  # the stderr lines that are JSON objects, parsed once
        self.stdout_lines = []
        self.proc = None
        self.expect_exit = False  # the test expects an unusual exit: no status check
        self._awaited = False     # the exit was waited for (stop() or wait_exit())
        self._cond = threading.Condition()
        self._threads = []

    @property
    def url(self):
        return f"http://{self.host}:{self.port}" if ":" not in self.host \
            else f"http://[{self.host}]:{self.port}"

    @property
    def addr(self):
        if self.host is None:
            raise RuntimeError("this daemon has no TCP listener")
        return (self.host, self.port)

    @property
    def pid(self):
        return self.proc.pid

    def _reader(self, stream, sink):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            obj = None
            if sink is self.lines:
                try:
                    obj = json.loads(line)
                except ValueError:
                    pass
            with self._cond:
                sink.append(line)
                if isinstance(obj, dict):
                    self._json.append(obj)
                self._cond.notify_all()
        stream.close()
        with self._cond:
            self._cond.notify_all()

    def _listening(self):
        """The names from the daemon's "listening on NAME" log lines."""
        out = []
        for o in self.log_messages():
            msg = o.get("msg", "")
            if o.get("level") == "info" and msg.startswith("listening on "):
                out.append(msg[len("listening on "):])
        return out

    def start(self):
        if self.argv is None:
            level = (self.config.get("log") or {}).get("level", "info")
            if level not in ("info", "debug"):
                raise RuntimeError(f"ProxyProcess reads the bound port from the info log "
                                   f"line 'listening on': log.level {level!r} hides it")
            with open(self.config_path, "w") as f:
                json.dump(self.config, f, indent=2)
        self.proc = subprocess.Popen(
            [*self.wrapper, self.binary, *(self.argv or ["run", "-c", self.config_path])],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=clean_env(self.env), pass_fds=self.pass_fds,
        )
        for stream, sink in ((self.proc.stderr, self.lines), (self.proc.stdout, self.stdout_lines)):
            t = threading.Thread(target=self._reader, args=(stream, sink), daemon=True)
            t.start()
            self._threads.append(t)
        # Every listen entry logs at least one "listening on" line once it
        # is bound (listeners are set up in config order, before the
        # daemon serves anything), or the daemon exits.
        deadline = time.monotonic() + self.start_timeout
        while True:
            seen = len(self.snapshot())
            bound = self._listening()
            if len(bound) >= len(self.listen):
                break
            if self.proc.poll() is not None:
                self.expect_exit = True  # the caller gets the exception
                self._join_readers()
                raise RuntimeError(
                    f"aauth-proxy exited with status {self.proc.returncode} during start-up:\n"
                    + self.stderr_text())
            left = deadline - time.monotonic()
            if left <= 0:
                self.proc.kill()
                self.proc.wait()
                self.expect_exit = True
                raise RuntimeError(f"aauth-proxy did not log 'listening on' for {self.listen} "
                                   f"within {self.start_timeout}s:\n" + self.stderr_text())
            with self._cond:
                if len(self.lines) == seen:  # nothing new: wait for a line (or an exit)
                    self._cond.wait(min(left, 0.1))
        self.bound = bound
        if self.host is not None:
            tcp = [b for b in bound if not b.startswith("unix:")]
            host, port = _split_hostport(tcp[0])
            if (_is_ip(self.host) and host != self.host) or (self.port != 0 and port != self.port):
                raise RuntimeError(f"the daemon bound {tcp[0]}, the config says "
                                   f"{self.host}:{self.port}")
            self.host, self.port = host, port
        if self.argv is None and any(a.endswith(":0") for a in self.listen):
            # Commands that read the config later (env, exec) must find the
            # address the daemon really listens on, not port 0.
            free = [b for b in bound if not b.startswith("unix:")]
            listen = []
            for a in self.listen:
                if a.endswith(":0") and free:
                    listen.append(free.pop(0))
                else:
                    listen.append(a)
            self.config["listen"] = listen
            with open(self.config_path, "w") as f:
                json.dump(self.config, f, indent=2)
        return self

    def admin_addrs(self, timeout=10):
        """The names from "admin listening on NAME" lines (waited for,
        bounded: they follow the proxy's own "listening on" lines)."""
        def names():
            return [o["msg"][len("admin listening on "):] for o in self.log_messages()
                    if o.get("msg", "").startswith("admin listening on ")]
        wait_until(names, timeout)
        return names()

    def admin_addr(self, timeout=10):
        """(host, port) of the first TCP admin listener."""
        tcp = [a for a in self.admin_addrs(timeout) if not a.startswith("unix:")]
        if not tcp:
            raise AssertionError("no admin listener logged:\n" + self.stderr_text())
        return _split_hostport(tcp[0])

    def _join_readers(self):
        for t in self._threads:
            t.join(5)

    def snapshot(self):
        with self._cond:
            return list(self.lines)

    def stderr_text(self):
        return "\n".join(self.snapshot())

    def json_lines(self):
        """The stderr lines that are JSON objects, in order."""
        with self._cond:
            return list(self._json)

    def log_messages(self):
        """The plain log lines (time/level/msg)."""
        return [o for o in self.json_lines() if "msg" in o and "level" in o]

    def access_entries(self):
        """Access-log lines: JSON objects that are not plain log messages."""
        return [o for o in self.json_lines() if not ("msg" in o and "level" in o)]

    def wait_for(self, pred, timeout=10):
        """Wait until pred(list of stderr lines) is truthy; returns its value
        (or the last falsy one after timeout)."""
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

    def wait_log(self, text, timeout=10):
        """Wait for a log message containing text; returns the messages
        that do (empty after timeout)."""
        return self.wait_for(
            lambda _: [o for o in self.log_messages() if text in o["msg"]], timeout)

    def wait_access(self, n, timeout=10, pred=None):
        """Wait until at least n access-log entries (matching pred, when
        given) were written; returns them (fewer after timeout)."""
        def got(_):
            e = [o for o in self.access_entries() if pred is None or pred(o)]
            return e if len(e) >= n else None
        return self.wait_for(got, timeout) or \
            [o for o in self.access_entries() if pred is None or pred(o)]

    def wait_exit(self, timeout=15):
        """Wait (bounded) for the daemon to exit by itself, e.g. after a test
        sent it a signal; returns the exit status (None if still running).
        stop() at teardown still checks the status and the sanitizer."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._awaited = True
        return rc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def fd_count(self):
        return fd_count(self.proc.pid)

    def rss_kb(self):
        return rss_kb(self.proc.pid)

    def stop(self, timeout=15):
        """SIGTERM, wait (bounded), then return a list of problems (empty
        when the daemon exited cleanly). Calling it again is harmless."""
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
        elif not (self.expect_exit or self._awaited):
            problems.append(f"aauth-proxy had already exited (status {self.proc.returncode})")
        self._awaited = True
        self._join_readers()
        rc = self.proc.returncode
        if not self.expect_exit and rc != 0 and not problems:
            problems.append(f"aauth-proxy exited with status {rc}")
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
        """addr: (host, port), or a path for a unix socket."""
        if isinstance(addr, str):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            try:
                self.sock.connect(addr)
            except OSError:
                self.sock.close()
                raise
        else:
            self.sock = socket.create_connection(addr, timeout=timeout)
        self.rfile = self.sock.makefile("rb")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def response(self, head_only=False, keep_case=False):
        return fhttp.read_response(self.rfile, head_only=head_only, keep_case=keep_case)

    def final_response(self, head_only=False, keep_case=False):
        """Skip 1xx responses; returns (informational list, final response)."""
        infos = []
        while True:
            st, hd, body = self.response(head_only=head_only, keep_case=keep_case)
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

    def read_to_eof(self, timeout=None):
        """Every byte until the peer closes (a timeout or a reset raises)."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        return self.rfile.read()

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


def hold_connections(proxy, n, timeout=10):
    """Open n client connections that send nothing, and wait (bounded)
    until the daemon has accepted all of them (its fd count grew by n), so
    that they count against max_connections before the test goes on."""
    base = proxy.fd_count()
    held = [RawConn(proxy.addr) for _ in range(n)]
    if not wait_until(lambda: proxy.fd_count() >= base + n, timeout):
        for c in held:
            c.close()
        raise AssertionError(f"the daemon did not accept {n} connections within {timeout}s "
                             f"({proxy.fd_count()} fds, {base} before)")
    return held


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


def rss_growth_during(pid, fn, interval=0.02):
    """Run fn() while sampling pid's RSS; returns (fn's result, the peak
    growth over the RSS before it, in MiB)."""
    base = rss_mib(pid)
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], rss_mib(pid))
            except OSError:
                return
            stop.wait(interval)  # the sampling interval

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        out = fn()
    finally:
        stop.set()
        t.join(2)
    return out, peak[0] - base
