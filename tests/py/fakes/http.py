"""A small, strict HTTP/1.1 request reader for the fake servers.

The fakes parse what the daemon sends themselves (not with http.server),
so they see the exact bytes: the raw request-target, every header line in
order with its case, and the body as framed on the wire.
"""

import io
import re

TOKEN_RE = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
MAX_HEAD = 1 << 20


class BadRequest(Exception):
    pass


class Request:
    def __init__(self):
        self.method = ""
        self.target = ""
        self.version = ""
        self.headers = []  # [(name as received, value)]
        self.body = b""
        self.raw_head = b""
        self.framing = "none"  # "length", "chunked" or "none"

    @property
    def target_form(self):
        if self.target.startswith("/"):
            return "origin"
        if self.target == "*":
            return "asterisk"
        if "://" in self.target:
            return "absolute"
        return "authority"

    @property
    def path(self):
        return self.target.split("?", 1)[0]

    @property
    def query(self):
        """The raw query, or None when the target has no '?'."""
        parts = self.target.split("?", 1)
        return parts[1] if len(parts) == 2 else None

    def get_all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def get(self, name, default=None):
        vals = self.get_all(name)
        return vals[0] if vals else default

    def header_names(self):
        return [n.lower() for n, _ in self.headers]

    def wants_close(self):
        conn = ",".join(self.get_all("connection")).lower()
        tokens = [t.strip() for t in conn.split(",")]
        if self.version == "HTTP/1.0":
            return "keep-alive" not in tokens
        return "close" in tokens


def _line(rfile, limit):
    line = rfile.readline(limit + 1)
    if not line:
        return None
    if len(line) > limit:
        raise BadRequest("line too long")
    if not line.endswith(b"\r\n"):
        if line.endswith(b"\n"):
            raise BadRequest("bare LF line ending")
        raise BadRequest("connection closed inside a line")
    body = line[:-2]
    if b"\r" in body or b"\n" in body or b"\0" in body:
        raise BadRequest("CR, LF or NUL inside a line")
    return line


def read_request(rfile):
    """Read one request from a binary file object. None at a clean EOF
    before any byte; raises BadRequest on anything malformed."""
    req = Request()
    raw = bytearray()
    line = _line(rfile, 65536)
    if line is None:
        return None
    raw += line
    parts = line[:-2].split(b" ")
    if len(parts) != 3:
        raise BadRequest(f"bad request line {line!r}")
    method, target, version = parts
    if not TOKEN_RE.match(method) or version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise BadRequest(f"bad request line {line!r}")
    req.method, req.target, req.version = method.decode(), target.decode("latin-1"), version.decode()
    while True:
        line = _line(rfile, 65536)
        if line is None:
            raise BadRequest("connection closed inside the head")
        raw += line
        if len(raw) > MAX_HEAD:
            raise BadRequest("head too large")
        if line == b"\r\n":
            break
        if line[:1] in (b" ", b"\t"):
            raise BadRequest("obs-fold")
        name, sep, value = line[:-2].partition(b":")
        if not sep or not TOKEN_RE.match(name):
            raise BadRequest(f"bad header line {line!r}")
        req.headers.append((name.decode(), value.strip(b" \t").decode("latin-1")))
    req.raw_head = bytes(raw)
    te = req.get_all("transfer-encoding")
    cl = req.get_all("content-length")
    if te and cl:
        raise BadRequest("both Transfer-Encoding and Content-Length")
    if te:
        if [t.strip().lower() for t in ",".join(te).split(",")] != ["chunked"]:
            raise BadRequest(f"unsupported Transfer-Encoding {te}")
        req.framing = "chunked"
        req.body = read_chunked(rfile)
    elif cl:
        if len(set(cl)) != 1 or not cl[0].isdigit():
            raise BadRequest(f"bad Content-Length {cl}")
        n = int(cl[0])
        req.framing = "length"
        req.body = read_exact(rfile, n)
    return req


def read_exact(rfile, n):
    out = bytearray()
    while len(out) < n:
        chunk = rfile.read(min(n - len(out), 1 << 20))
        if not chunk:
            raise BadRequest(f"body ended after {len(out)} of {n} bytes")
        out += chunk
    return bytes(out)


def read_chunked(rfile):
    out = bytearray()
    while True:
        line = _line(rfile, 4096)
        if line is None:
            raise BadRequest("connection closed inside chunked body")
        size_s = line[:-2].split(b";", 1)[0].strip()
        if not re.match(rb"^[0-9A-Fa-f]{1,16}$", size_s):
            raise BadRequest(f"bad chunk size {line!r}")
        size = int(size_s, 16)
        if size == 0:
            break
        out += read_exact(rfile, size)
        if read_exact(rfile, 2) != b"\r\n":
            raise BadRequest("chunk data not followed by CRLF")
    while True:  # trailers
        line = _line(rfile, 65536)
        if line is None:
            raise BadRequest("connection closed inside trailers")
        if line == b"\r\n":
            break
    return bytes(out)


def parse_request_bytes(data):
    """Parse a whole request from bytes (e.g. a .http vector file)."""
    f = io.BufferedReader(io.BytesIO(data))
    req = read_request(f)
    if req is None:
        raise BadRequest("empty input")
    rest = f.read()
    if rest:
        raise BadRequest(f"{len(rest)} bytes after the request")
    return req


def read_response(rfile, head_only=False, keep_case=False):
    """Read one response (status, [(name, value)], body) from a binary file
    object; used by raw-socket tests. Handles 1xx by returning it as is.
    Header names are lower-cased unless keep_case (then as received)."""
    line = rfile.readline(65537)
    if not line:
        raise EOFError("connection closed before a response")
    parts = line.rstrip(b"\r\n").split(b" ", 2)
    status = int(parts[1])
    headers = []
    while True:
        h = rfile.readline(65537)
        if not h:
            raise EOFError("connection closed inside a response head")
        if h in (b"\r\n", b"\n"):
            break
        n, _, v = h.rstrip(b"\r\n").partition(b":")
        headers.append((n.decode(), v.strip().decode("latin-1")))
    hd = {n.lower(): v for n, v in headers}
    if not keep_case:
        headers = [(n.lower(), v) for n, v in headers]
    if head_only or status < 200 or status in (204, 304):
        return status, headers, b""
    if hd.get("transfer-encoding", "").lower() == "chunked":
        return status, headers, read_chunked(rfile)
    if "content-length" in hd:
        return status, headers, read_exact(rfile, int(hd["content-length"]))
    return status, headers, rfile.read()
