"""Fixtures for the black-box tests of aauth-proxy.

Run with `/usr/bin/python3 -m pytest tests/py` from the repository root.
Environment:
  AAUTH_PROXY_BIN  the daemon to test (default: build/aauth-proxy)
  AAUTH_VECTORS    the test vectors (default: tests/vectors in this repository)

`proxy_factory(config)` starts the real daemon with a config dict;
`world` bundles the usual scene: a protected fake resource on 127.0.0.1
(every request signature-checked independently of the daemon's code), a
plain recording upstream on 127.0.0.2, a token file, and a daemon whose
rules sign for the first and pass the second. `scripted_upstream`,
`hostile` and `extra_server` make more upstreams; `refused_port` is a
port where connections are refused. Every daemon and fake binds port 0
and the test learns the port from it (the daemon's `listening on` log
line), so nothing races for a port; every daemon is checked at teardown
for a clean exit and no sanitizer report.
"""

import copy
import os
import secrets
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakes import lumo  # noqa: E402
from fakes.daemon import ProxyProcess, dead_port  # noqa: E402
from fakes.hostile import HostileServer  # noqa: E402
from fakes.resource import FakeServer  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo_root():
    return REPO


@pytest.fixture(scope="session")
def proxy_bin():
    path = Path(os.environ.get("AAUTH_PROXY_BIN") or REPO / "build" / "aauth-proxy")
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"aauth-proxy binary not found at {path}: build it "
                    "(meson compile -C build) or set AAUTH_PROXY_BIN")
    return str(path)


@pytest.fixture(scope="session")
def vectors():
    path = Path(os.environ.get("AAUTH_VECTORS") or REPO / "tests" / "vectors")
    if not (path / "lumoauth" / "agent-key.pem").is_file():
        pytest.fail(f"test vectors not found at {path}: set AAUTH_VECTORS")
    return path


@pytest.fixture(scope="session")
def agent_key(vectors, tmp_path_factory):
    """A private (0600) copy of the vector's agent key: the daemon refuses
    key files that group or others can read."""
    d = tmp_path_factory.mktemp("key")
    dst = d / "agent-key.pem"
    shutil.copyfile(vectors / "lumoauth" / "agent-key.pem", dst)
    os.chmod(dst, stat.S_IRUSR | stat.S_IWUSR)
    return str(dst)


@pytest.fixture(scope="session")
def pubkey(vectors):
    return lumo.load_public_key(vectors / "lumoauth" / "agent-key.pub.pem")


@pytest.fixture(scope="session")
def node_ready():
    """tests/node's undici installed (npm ci on first use)."""
    node_dir = REPO / "tests" / "node"
    if not (node_dir / "node_modules" / "undici").is_dir():
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=node_dir,
                           capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr.decode()
    return True


def deep_merge(base, over):
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


@pytest.fixture
def proxy_factory(proxy_bin, agent_key, tmp_path):
    """start(config) → a running ProxyProcess. Fills in listen (127.0.0.1
    port 0: the daemon binds a port, ProxyProcess reads it back from the
    log), key.file and log defaults when not given. Every daemon is
    stopped with SIGTERM at teardown, which fails the test unless it exits
    with status 0 and without a sanitizer report."""
    started = []
    counter = [0]

    def start(config, start_timeout=None):
        counter[0] += 1
        cfg = deep_merge({
            "listen": ["127.0.0.1:0"],
            "key": {"file": agent_key},
            "log": {"level": "info", "access_log": "stderr"},
        }, config)
        path = tmp_path / f"aauth-proxy-{counter[0]}.json"
        timeout = start_timeout or (30 if os.environ.get("AAUTH_SANITIZER") else 15)
        p = ProxyProcess(proxy_bin, cfg, str(path), start_timeout=timeout)
        started.append(p)
        return p.start()

    yield start
    problems = []
    for p in started:
        for prob in p.stop():
            problems.append(f"{prob}\n--- stderr ---\n{p.stderr_text()[-4000:]}")
    if problems:
        pytest.fail("daemon teardown: " + "\n".join(problems), pytrace=False)


@pytest.fixture
def token_file(tmp_path):
    """write(name, value) → path of a token file in the test's tmp dir."""
    d = tmp_path / "tokens"
    d.mkdir(exist_ok=True)

    def write(name, value):
        p = d / name
        tmp = d / f".{name}.tmp"
        tmp.write_text(value + "\n")
        os.replace(tmp, p)
        return str(p)

    return write


@pytest.fixture
def resource(pubkey):
    """The protected fake resource on 127.0.0.1 (signature-checked)."""
    tok = "tok-" + secrets.token_urlsafe(24)
    s = FakeServer("127.0.0.1", verify=True, pubkey=pubkey, token=tok, name="resource").start()
    yield s
    s.stop()


@pytest.fixture
def plain():
    """An unprotected upstream on 127.0.0.2 that only records requests."""
    s = FakeServer("127.0.0.2", verify=False, name="plain").start()
    yield s
    s.stop()


@pytest.fixture
def refused_port():
    """A loopback port where connections are refused for the whole test
    (bound, never listening: nobody else can take it meanwhile)."""
    with dead_port() as port:
        yield port


@pytest.fixture
def scripted_upstream():
    """make(handler, host="127.0.0.1") → a started recording FakeServer on
    which handler(sock, record) answers every request (see
    fakes.resource.FakeServer)."""
    made = []

    def make(handler, host="127.0.0.1"):
        s = FakeServer(host, name="scripted", handler=handler).start()
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


@pytest.fixture
def hostile():
    """make(handler, host="127.0.0.1") → a started HostileServer."""
    made = []

    def make(handler, host="127.0.0.1"):
        s = HostileServer(handler, host).start()
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


@pytest.fixture
def extra_server(pubkey):
    """make(host, verify=False) → another recording FakeServer."""
    made = []

    def make(host, **kw):
        s = FakeServer(host, name=f"extra-{host}", **kw).start()
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


class World:
    def __init__(self, resource, plain, token_file, proxy_factory):
        self.resource = resource
        self.plain = plain
        self.token = resource.expected_token
        self._token_file = token_file
        self.token_path = token_file("r", self.token)
        self._factory = proxy_factory
        self.proxy = None

    def set_token(self, value):
        """Replace the token file (new inode, like a refresher would) and
        tell the fake resource to expect the new token."""
        self._token_file("r", value)
        self.token = value
        self.resource.expected_token = value

    def config(self, **over):
        base = {
            "default_action": "deny",
            "resources": {
                "r": {"upstream": "http", "allow_plaintext": True,
                      "token_file": self.token_path},
            },
            "rules": [
                {"host": "127.0.0.1", "port": self.resource.port, "action": "sign",
                 "resource": "r"},
                {"host": "127.0.0.2", "port": self.plain.port, "action": "pass"},
            ],
            "limits": {"header_timeout_ms": 5000},
            "upstream": {"connect_timeout_ms": 3000},
        }
        return deep_merge(base, over)

    def start(self, **over):
        self.proxy = self._factory(self.config(**over))
        return self.proxy

    @property
    def proxy_url(self):
        return self.proxy.url


@pytest.fixture
def world(resource, plain, token_file, proxy_factory):
    return World(resource, plain, token_file, proxy_factory)


@pytest.fixture
def running(world):
    """The usual world with its daemon already started."""
    world.start()
    return world
