#!/usr/bin/python3
"""Open N keep-alive connections to a forward proxy, send one request on
each (read the whole response) and keep them all open; report the proxy
process's VmRSS before and with the connections held, then check that a
sample of them is still usable.

usage: idle_conns.py PROXY_HOST PROXY_PORT TARGET_URL N PID
"""

import socket
import sys
import time
from urllib.parse import urlsplit


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def read_response(sock, buf):
    """Read one Content-Length-framed response; returns (status, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response head")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for ln in lines[1:]:
        n, _, v = ln.partition(b":")
        if n.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a body")
        rest += chunk
    return status, rest[length:]


def main():
    host, port, target, n, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    authority = urlsplit(target).netloc
    req = f"GET {target} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode()
    before = rss_kib(pid)
    socks = []
    t0 = time.monotonic()
    for i in range(n):
        s = socket.create_connection((host, port), timeout=30)
        s.sendall(req)
        status, rest = read_response(s, b"")
        if status != 200 or rest:
            raise SystemExit(f"connection {i}: status {status}, {len(rest)} stray bytes")
        socks.append(s)
    opened = time.monotonic() - t0
    time.sleep(1.0)
    held = rss_kib(pid)
    # the connections are still alive and usable
    alive = 0
    for s in socks[:: max(1, n // 50)]:
        s.sendall(req)
        status, _ = read_response(s, b"")
        alive += status == 200
    sample = len(socks[:: max(1, n // 50)])
    for s in socks:
        s.close()
    time.sleep(0.5)
    after = rss_kib(pid)
    print(f"idle_connections={n} open_seconds={opened:.2f} rss_before_kib={before} "
          f"rss_held_kib={held} rss_after_close_kib={after} "
          f"per_conn_bytes={(held - before) * 1024 // max(n, 1)} sample_alive={alive}/{sample}")


if __name__ == "__main__":
    main()
