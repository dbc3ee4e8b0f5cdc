"""Base-URL routes (origin-form requests under a prefix go to an upstream
base URL, then the rule for its host), and the commands around HTTPS:
`ca init`, `ca show`, `env` and `exec`."""

import json
import os
import re
import stat
import subprocess

import pytest
import requests

from fakes.daemon import clean_env, free_port, raw_request
from https_world import https  # noqa: F401


def run(*args, env=None, timeout=30):
    return subprocess.run(list(args), capture_output=True, timeout=timeout,
                          env=env or clean_env())


# routes -------------------------------------------------------------------------

def routes_cfg(w):
    return {"routes": [
        {"prefix": "/docs/", "upstream": f"https://127.0.0.1:{w.tls.port}/v1/"},
        {"prefix": "/docs/plain/", "upstream": f"http://127.0.0.1:{w.plain.port}/p/"},
        {"prefix": "/nope/", "upstream": "https://127.0.0.3/"},
    ]}


def test_route_prefix_reaches_its_upstream_signed(https):
    w = https
    p = w.start(**routes_cfg(w))
    r = requests.post(f"{p.url}/docs/items?q=a%20b", json={"x": 1}, timeout=30)
    assert r.status_code == 200, r.text
    echo = r.json()
    assert echo["verdict"] == "valid" and echo["target"] == "/v1/items?q=a%20b"
    rec = w.tls.records()[0]
    assert rec.get("host") == f"127.0.0.1:{w.tls.port}"
    assert rec.get("authorization") == f"Bearer {w.token}"
    # the longest prefix wins; plaintext allowed by that resource
    r = requests.get(f"{p.url}/docs/plain/x", timeout=30)
    assert r.status_code == 200 and r.json()["target"] == "/p/x"
    assert [x.verdict for x in w.plain.records()] == ["valid"]


def test_route_through_http_proxy_to_the_proxy_itself(https):
    """An agent under `exec` that calls the route's base URL on the proxy
    sends it through HTTP_PROXY as absolute-form to the proxy's own
    address: that is the route too, not a request to a loopback host."""
    w = https
    p = w.start(**routes_cfg(w))
    r = requests.get(f"{p.url}/docs/self", proxies={"http": p.url}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["target"] == "/v1/self"


@pytest.mark.parametrize("path", ["/docs/../admin", "/docs/a/%2e%2E/admin", "/docs/a%2fb",
                                  "/docs/./x"])
def test_route_refuses_climbing_out(https, path):
    w = https
    p = w.start(**routes_cfg(w))
    # raw: client libraries would squash the dot segments themselves
    st, _, body = raw_request(p.addr, f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                                      "Connection: close\r\n\r\n")
    assert st == 400, body
    assert not w.tls.records()


def test_route_to_a_denied_host_and_no_route(https):
    w = https
    p = w.start(**routes_cfg(w))
    r = requests.get(f"{p.url}/nope/x", timeout=30)
    assert r.status_code == 403
    r = requests.get(f"{p.url}/elsewhere", timeout=30)
    assert r.status_code == 400 and "route" in r.text


@pytest.mark.parametrize("route,field,word", [
    ({"prefix": "docs/", "upstream": "https://a.test/"}, "routes[0].prefix", "starts and ends"),
    ({"prefix": "/d/", "upstream": "ftp://a.test/"}, "routes[0].upstream", "https://"),
    ({"prefix": "/d/", "upstream": "https://a.test/v1"}, "routes[0].upstream", "end with '/'"),
    ({"prefix": "/d/"}, "routes[0].upstream", "required"),
    ({"prefix": "/d/", "upstream": "https://a.test/", "x": 1}, "routes[0].x", "unknown"),
])
def test_route_config_errors_name_the_field(proxy_bin, agent_key, tmp_path, route, field, word):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"key": {"file": agent_key}, "routes": [route]}))
    r = run(proxy_bin, "check-config", "-c", str(cfg))
    assert r.returncode == 1
    err = r.stderr.decode()
    assert field in err and word in err, err


# ca init / show ----------------------------------------------------------------

def test_ca_init_show_and_force(proxy_bin, agent_key, tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    key = d / "agent-key.pem"
    key.write_bytes(open(agent_key, "rb").read())
    os.chmod(key, 0o600)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"key": {"file": str(key)}}))
    r = run(proxy_bin, "ca", "init", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    ca, cakey = d / "ca.pem", d / "ca-key.pem"  # beside the key file
    assert ca.is_file() and stat.S_IMODE(cakey.stat().st_mode) == 0o600
    text = subprocess.check_output(["openssl", "x509", "-in", str(ca), "-noout", "-text"]).decode()
    assert "CA:TRUE, pathlen:0" in text and "prime256v1" in text
    pub = run(proxy_bin, "pubkey", "--key", str(key), "--json")
    thumb = json.loads(pub.stdout)["thumbprint"]
    assert thumb[:12] in text  # the CN names the agent key
    fp = subprocess.check_output(["openssl", "x509", "-in", str(ca), "-noout", "-fingerprint",
                                  "-sha256"]).decode().strip().split("=", 1)[1]
    show = run(proxy_bin, "ca", "show", "-c", str(cfg))
    assert show.returncode == 0
    out = show.stdout.decode()
    assert str(ca) in out and fp in out and "-----BEGIN CERTIFICATE-----" in out
    # no overwrite without --force; --force makes a new one
    r = run(proxy_bin, "ca", "init", "-c", str(cfg))
    assert r.returncode == 1 and "--force" in r.stderr.decode()
    r = run(proxy_bin, "ca", "init", "-c", str(cfg), "--force")
    assert r.returncode == 0
    assert fp not in run(proxy_bin, "ca", "show", "-c", str(cfg)).stdout.decode()
    assert run(proxy_bin, "ca", "bogus", "-c", str(cfg)).returncode == 2
    assert run(proxy_bin, "ca", "--help").returncode == 0


# env / exec --------------------------------------------------------------------

def test_env_prints_exports_and_writes_the_bundle(https):
    w = https
    cfg = w.tmp / "env.json"
    port = free_port()
    cfg.write_text(json.dumps(w.config(listen=[f"127.0.0.1:{port}"],
                                       key={"file": w.agent_key})))
    r = run(w.bin, "env", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    env = dict(re.findall(r"^export (\w+)='([^']*)'$", out, re.M))
    url = f"http://127.0.0.1:{port}"
    for k in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        assert env[k] == url
    assert env["NODE_USE_ENV_PROXY"] == "1"
    assert env["NODE_EXTRA_CA_CERTS"] == w.proxy_ca
    bundle = env["SSL_CERT_FILE"]
    for k in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"):
        assert env[k] == bundle
    assert os.path.dirname(bundle) == os.path.dirname(w.proxy_ca)
    text = open(bundle).read()
    assert open(w.proxy_ca).read() in text
    assert text.count("BEGIN CERTIFICATE") > 1  # the system store too
    # loopback names a rule uses go through the proxy; others do not
    assert "127.0.0.1" not in env["NO_PROXY"].split(",")
    assert "localhost" in env["NO_PROXY"].split(",") and env["no_proxy"] == env["NO_PROXY"]
    # the output is shell: eval it and check one variable
    sh = subprocess.run(["bash", "-c", f'eval "$({w.bin} env -c {cfg})"; echo "$HTTPS_PROXY"'],
                        capture_output=True, timeout=30, env=clean_env())
    assert sh.stdout.decode().strip() == url


def test_env_without_a_ca_says_what_to_do(proxy_bin, agent_key, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"key": {"file": agent_key},
                               "ca": {"cert_file": str(tmp_path / "no.pem")}}))
    r = run(proxy_bin, "env", "-c", str(cfg))
    assert r.returncode == 1 and "ca init" in r.stderr.decode()


def test_exec_runs_the_command_with_the_environment(https):
    w = https
    p = w.start()
    r = run(w.bin, "exec", "-c", p.config_path, "--", "sh", "-c",
            'echo "$HTTPS_PROXY|$NODE_EXTRA_CA_CERTS|$REQUESTS_CA_BUNDLE"; exit 7')
    assert r.returncode == 7, r.stderr
    proxy, ca, bundle = r.stdout.decode().strip().split("|")
    assert proxy == p.url and ca == w.proxy_ca and bundle.endswith("ca-bundle.pem")
    # a Python agent with no proxy code: requests reads the variables
    code = ("import requests,sys; r = requests.get(sys.argv[1], timeout=30); "
            "print(r.status_code, r.json()['verdict'])")
    r = run(w.bin, "exec", "-c", p.config_path, "--", "/usr/bin/python3", "-c", code,
            w.tls.url("/from-exec"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == ["200", "valid"]


def test_exec_says_when_no_proxy_is_listening(https):
    w = https
    cfg = w.tmp / "down.json"
    port = free_port()
    cfg.write_text(json.dumps(w.config(listen=[f"127.0.0.1:{port}"], key={"file": w.agent_key})))
    r = run(w.bin, "exec", "-c", str(cfg), "--", "true")
    assert r.returncode == 1
    err = r.stderr.decode()
    assert f"no proxy is listening on 127.0.0.1:{port}" in err and "aauth-proxy run" in err
    assert run(w.bin, "exec", "-c", str(cfg)).returncode == 2
