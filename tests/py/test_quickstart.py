"""The README's quick start, run as a newcomer would, in a copy of the
repository (the files git knows, nothing from outside the checkout; the
build directory of the binary under test is reused so the test stays fast):

- `./dev.sh run` makes the key, its public half and a random demo token on
  first use, starts the demo resource and the proxy, and prints one `try:`
  line; that command, run as printed, gets `"verified": true`, and so do the
  README's exported-variable snippet and the clients its table recommends;
- a second run keeps the key and the token; nothing is a placeholder;
- Ctrl-C stops everything, and the demo resource never outlives the proxy.

dev.sh's ports are moved with AAUTH_DEV_LISTEN/AAUTH_DEV_DEMO_LISTEN so the
test cannot collide with anything else; that the defaults are the README's
is checked against the README's own `try:` line.
"""

import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from fakes.daemon import SANITIZER_MARKS, clean_env, free_port

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
TRY_RE = re.compile(r"^try: (curl (?:--noproxy '' )?-x http://127\.0\.0\.1:(\d+) "
                    r"http://demo\.localhost:(\d+)/hello)$")
START_TIMEOUT = 180  # dev.sh checks packages and runs meson on a cold cache


def copy_checkout(dst, build_dir):
    """The files git would give a fresh clone (tracked, and new ones not
    ignored, so uncommitted work is tested too), plus the build reused."""
    r = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "-co", "--exclude-standard"],
                       capture_output=True, check=True)
    for rel in r.stdout.decode().split("\0"):
        if not rel or not (REPO / rel).is_file():
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dst / rel)
    assert not (dst / "state").exists()
    (dst / "build").symlink_to(build_dir, target_is_directory=True)


class DevRun:
    """`./dev.sh run` in the background, its own process group (like a
    terminal's foreground job), stdout and stderr collected by line."""

    def __init__(self, root, proxy_port, demo_port):
        self.root = root
        self.out, self.err = [], []
        self.cond = threading.Condition()
        env = clean_env({
            "AAUTH_DEV_LISTEN": f"127.0.0.1:{proxy_port}",
            "AAUTH_DEV_DEMO_LISTEN": f"127.0.0.1:{demo_port}",
        })
        self.proc = subprocess.Popen(["./dev.sh", "run"], cwd=root, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.threads = [threading.Thread(target=self._read, args=(s, sink), daemon=True)
                        for s, sink in ((self.proc.stdout, self.out),
                                        (self.proc.stderr, self.err))]
        for t in self.threads:
            t.start()

    def _read(self, stream, sink):
        for raw in iter(stream.readline, b""):
            with self.cond:
                sink.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def text(self):
        with self.cond:
            return "\n".join(self.out) + "\n--- stderr ---\n" + "\n".join(self.err)

    def wait_line(self, pred, sink, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for ln in sink:
                    if pred(ln):
                        return ln
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None
                                 and not any(t.is_alive() for t in self.threads)):
                    raise AssertionError("no such line from ./dev.sh run:\n" + self.text())
                self.cond.wait(min(left, 0.2))

    def try_line(self):
        return self.wait_line(lambda ln: ln.startswith("try: "), self.out, START_TIMEOUT)

    def children(self):
        """pid → command line of dev.sh's child processes."""
        out = {}
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.proc.pid:
                    out[int(d.name)] = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, IndexError, ValueError):
                continue
        return out

    def stop(self, sig=signal.SIGINT, timeout=30):
        """Signal the whole group, as Ctrl-C in a terminal does."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
        return self.finish(timeout)

    def finish(self, timeout=30):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"./dev.sh run did not exit within {timeout}s:\n" + self.text())
        for t in self.threads:
            t.join(10)
        return self.proc.returncode


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def run_cmd(argv, env=None, timeout=30):
    r = subprocess.run(argv, capture_output=True, timeout=timeout, env=clean_env(env))
    return r


@pytest.fixture
def checkout(tmp_path, proxy_bin):
    build_dir = Path(proxy_bin).resolve().parent
    if not (build_dir / "build.ninja").is_file():
        pytest.fail(f"{proxy_bin} is not in a meson build directory to reuse")
    root = tmp_path / "aauth-proxy"
    root.mkdir()
    copy_checkout(root, build_dir)
    return root


@pytest.fixture
def dev_run(checkout):
    runs = []

    def start():
        d = DevRun(checkout, free_port(), free_port())
        runs.append(d)
        return d

    yield start
    for d in runs:
        if d.proc.poll() is None:
            d.stop()
        text = d.text()
        for mark in SANITIZER_MARKS:
            assert mark not in text, text


def test_readme_quick_start_commands_come_first():
    block = re.search(r"## Quick start[^\n]*\n\n```sh\n(.*?)```", README, re.S)
    assert block, "the Quick start section opens with a sh block"
    cmds = [ln.split("#")[0].strip() for ln in block.group(1).splitlines()]
    assert cmds == ["./dev.sh run", "./dev.sh test"]


def test_dev_run_try_command_is_verified(dev_run, checkout, proxy_bin, node_ready):
    d = dev_run()
    line = d.try_line()
    m = TRY_RE.match(line)
    assert m, line
    cmd, pport, dport = m.group(1), int(m.group(2)), int(m.group(3))
    # The README shows the same line for the default ports.
    readme_line = line.replace(f":{pport} ", ":8787 ").replace(f":{dport}/", ":8790/")
    assert readme_line in README, readme_line

    # First use made the key, its public half and a random demo token,
    # private, and no placeholder token file.
    state = checkout / "state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "agent-key.pem").stat().st_mode) == 0o600
    assert (state / "agent-key.pub.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    tok_file = state / "tokens" / "demo"
    assert stat.S_IMODE(tok_file.stat().st_mode) == 0o600
    token = tok_file.read_text().strip()
    assert re.fullmatch(r"demo-[0-9a-f]{32}", token), token
    assert sorted(p.name for p in (state / "tokens").iterdir()) == ["demo"]
    assert not any("warning" in ln for ln in d.err + d.out), d.text()
    assert any("generating the agent key" in ln for ln in d.err)
    assert any(ln.startswith('{"kty":"OKP"') for ln in d.out)  # the JWK to register

    # The printed command, run as printed.
    r = run_cmd(shlex.split(cmd))
    assert r.returncode == 0, r.stderr
    assert b'"verified": true' in r.stdout, r.stdout
    doc = json.loads(r.stdout)
    assert doc["token_checked"] is True and token not in r.stdout.decode()
    # The proxy logged it: the access log is what shows a client used it.
    d.wait_line(lambda ln: '"host":"demo.localhost"' in ln and '"status":200' in ln
                and '"action":"sign"' in ln, d.err, 30)

    # The README's "point an agent at it" snippet (default ports moved).
    snippet = re.search(r"```sh\n(export http_proxy=.*?)```", README, re.S).group(1)
    lines = [ln.split("#")[0].strip() for ln in snippet.splitlines()
             if not ln.startswith("python3")]
    assert lines[0] == ("export http_proxy=http://127.0.0.1:8787 "
                        "HTTP_PROXY=http://127.0.0.1:8787")
    script = "set -e\n" + "\n".join(lines).replace("8787", str(pport)).replace(
        "8790", str(dport))
    r = run_cmd(["bash", "-c", script])
    assert r.returncode == 0 and b'"verified": true' in r.stdout, (r.stdout, r.stderr)

    url = f"http://demo.localhost:{dport}/hello"
    proxy = f"http://127.0.0.1:{pport}"
    # curl ignores the upper-case spelling: it goes around the proxy, and the
    # demo resource (which curl reaches directly) says so.
    r = run_cmd(["curl", "-s", url], env={"HTTP_PROXY": proxy})
    doc = json.loads(r.stdout)
    assert doc["verified"] is False and "http_proxy" in doc["reason"], doc
    # Python requests reads the upper-case one as well.
    r = run_cmd(["/usr/bin/python3", "-c", "import requests, sys; "
                 "sys.stdout.write(requests.get(sys.argv[1], timeout=20).text)", url],
                env={"HTTP_PROXY": proxy})
    assert b'"verified": true' in r.stdout, (r.stdout, r.stderr)
    # Node: EnvHttpProxyAgent with proxyTunnel false sends absolute-form; the
    # default tunnels even http:// with CONNECT, which the proxy intercepts
    # for the sign host (plain HTTP inside the tunnel): both verified.
    node_dir = REPO / "tests" / "node"
    for agent in ("env", "env-default"):
        spec = {"url": url, "agent": agent}
        r = subprocess.run(["node", str(node_dir / "client.mjs"), json.dumps(spec)],
                           cwd=node_dir, capture_output=True, timeout=60,
                           env=clean_env({"http_proxy": proxy, "HTTP_PROXY": proxy}))
        res = json.loads(r.stdout.decode().strip().splitlines()[-1])
        assert res.get("status") == 200 and '"verified": true' in res["text"], (agent, res)
    d.wait_line(lambda ln: '"method":"CONNECT"' in ln and '"status":200' in ln, d.err, 30)

    # check-config without -c, from the repository root, checks the config
    # dev.sh uses and says so.
    r = subprocess.run([str(checkout / "build" / "aauth-proxy"), "check-config"],
                       cwd=checkout, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert b"checking conf/aauth-proxy.json" in r.stderr
    assert r.stdout.startswith(b"conf/aauth-proxy.json: ok")

    # Ctrl-C: everything stops, cleanly.
    kids = d.children()
    assert sorted(" run " in c or "demo-resource" in c for c in kids.values()) == [True, True], kids
    assert d.stop() == 0, d.text()
    assert all(gone(pid) for pid in kids), kids
    assert any("demo-resource: SIGINT: stopping" in ln for ln in d.err), d.text()

    # Second run: same key and token, no new key, still verified.
    key = (state / "agent-key.pem").read_bytes()
    d2 = dev_run()
    cmd2 = TRY_RE.match(d2.try_line()).group(1)
    assert not any("generating the agent key" in ln for ln in d2.err)
    assert (state / "agent-key.pem").read_bytes() == key
    assert tok_file.read_text().strip() == token
    r = run_cmd(shlex.split(cmd2))
    assert b'"verified": true' in r.stdout, r.stdout
    assert d2.stop() == 0, d2.text()


def test_demo_resource_never_outlives_the_proxy(dev_run):
    d = dev_run()
    d.try_line()
    kids = d.children()
    proxy = [pid for pid, c in kids.items() if " run " in c]
    demo = [pid for pid, c in kids.items() if "demo-resource" in c]
    assert len(proxy) == 1 and len(demo) == 1, kids
    os.kill(proxy[0], signal.SIGTERM)
    assert d.finish() == 0, d.text()
    assert gone(proxy[0]) and gone(demo[0]), d.text()
    assert any("demo-resource: SIGTERM: stopping" in ln for ln in d.err), d.text()
