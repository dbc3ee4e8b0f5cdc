"""What ships for operators (issue 10): the systemd units (hardening
exposure at most 1.4, `systemd-analyze verify` clean, Type=notify, reload),
the Containerfile and the Kubernetes sidecar manifest (parsed with PyYAML
and checked field by field against what the pod must be)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from cli_helpers import private_copy, run

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "aauth-proxy.service"
SOCKET = REPO / "systemd" / "aauth-proxy.socket"
MANIFEST = REPO / "deploy" / "k8s" / "agent-with-aauth-proxy.yaml"

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed here")


def _unit(path):
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, _, v = line.partition("=")
            out.setdefault(k.strip(), []).append(v.strip())
    return out


@needs_analyze
def test_unit_exposure_at_most_1_4():
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", str(UNIT)],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for aauth-proxy.service: ([0-9.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 1.4, r.stdout


@needs_analyze
def test_units_verify_clean(tmp_path, proxy_bin):
    # verify wants the ExecStart binary to exist: point it at the build
    for src in (UNIT, SOCKET):
        (tmp_path / src.name).write_text(
            src.read_text().replace("/usr/local/bin/aauth-proxy", proxy_bin))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                        str(tmp_path / UNIT.name), str(tmp_path / SOCKET.name)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


def test_unit_is_notify_with_reload_and_socket():
    u = _unit(UNIT)
    assert u["Type"] == ["notify"] and u["NotifyAccess"] == ["main"]
    assert "/bin/kill -HUP $MAINPID" in u["ExecReload"]
    # the config is checked before the signal, so `systemctl reload` fails loudly
    assert u["ExecReload"][0].endswith("check-config -c /etc/aauth-proxy/aauth-proxy.json")
    assert "AF_UNIX" in u["RestrictAddressFamilies"][0]  # sd_notify's datagram
    s = _unit(SOCKET)
    for addr in s["ListenStream"]:
        assert addr.startswith(("127.", "[::1]", "/")), addr
    assert s["Service"] == ["aauth-proxy.service"]


def test_containerfile():
    text = (REPO / "Containerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(froms) == 2 and all(f.startswith("debian:12") for f in froms)
    final = text.split("\nFROM ")[-1]
    assert re.search(r"^USER 10001", final, re.M)
    assert 'ENTRYPOINT ["/usr/local/bin/aauth-proxy", "run"]' in final
    assert "meson" not in final.split("COPY --from")[0] and "-dev" not in final
    # every library the binary links directly is installed in the final stage
    needed = re.findall(r"\(NEEDED\).*\[(.+)\]",
                        subprocess.check_output(["readelf", "-d", str(_bin())], text=True))
    for lib in needed:
        if lib.startswith(("libasan", "libubsan", "liblsan")):
            continue  # a sanitizer build's; the image is a release build
        path = subprocess.check_output(["/sbin/ldconfig", "-p"], text=True)
        m = re.search(rf"\s{re.escape(lib)} .*=> (\S+)", path)
        assert m, lib
        pkg = _dpkg_owner(m.group(1))
        assert pkg, f"no Debian package owns {lib}"
        if pkg == "libc6":  # in every Debian image
            continue
        assert re.search(rf"\b{re.escape(pkg)}\b", final), f"{lib} ({pkg}) not installed"


def _bin():
    import os
    return Path(os.environ.get("AAUTH_PROXY_BIN") or REPO / "build" / "aauth-proxy")


def _dpkg_owner(path):
    """The package owning a library (merged /usr: dpkg may know it under
    /lib or /usr/lib, through the symlink or its target)."""
    real = str(Path(path).resolve())
    for p in (path, real, real.replace("/usr/lib/", "/lib/", 1),
              path.replace("/usr/lib/", "/lib/", 1)):
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0]
    return None


# --- Kubernetes -------------------------------------------------------------

def _docs():
    return list(yaml.safe_load_all(MANIFEST.read_text()))


def _pod():
    (dep,) = [d for d in _docs() if d["kind"] == "Deployment"]
    assert dep["apiVersion"] == "apps/v1"
    assert dep["spec"]["selector"]["matchLabels"].items() <= \
        dep["spec"]["template"]["metadata"]["labels"].items()
    return dep["spec"]["template"]["spec"]


CONTAINER_FIELDS = {"name": str, "image": str, "command": list, "args": list, "env": list,
                    "volumeMounts": list, "securityContext": dict, "resources": dict,
                    "restartPolicy": str, "startupProbe": dict, "livenessProbe": dict,
                    "readinessProbe": dict}
PROBE_FIELDS = {"exec", "httpGet", "periodSeconds", "failureThreshold",
                "initialDelaySeconds", "timeoutSeconds"}
SECCTX_FIELDS = {"allowPrivilegeEscalation": bool, "privileged": bool,
                 "readOnlyRootFilesystem": bool, "runAsNonRoot": bool, "capabilities": dict}


def test_manifest_schema():
    """Field names and types as the core/v1 and apps/v1 schemas define
    them, for every field the manifest uses (a typo is an error here, not
    a silently ignored field on the cluster)."""
    pod = _pod()
    assert set(pod) <= {"automountServiceAccountToken", "enableServiceLinks", "securityContext",
                        "initContainers", "containers", "volumes"}
    vols = {v["name"]: v for v in pod["volumes"]}
    for v in pod["volumes"]:
        kinds = set(v) - {"name"}
        assert len(kinds) == 1 and kinds <= {"configMap", "secret", "emptyDir"}, v
        if "secret" in v:
            assert set(v["secret"]) <= {"secretName", "defaultMode"}
            assert isinstance(v["secret"]["secretName"], str)
            assert 0 <= v["secret"].get("defaultMode", 0o644) <= 0o777
    for c in pod["initContainers"] + pod["containers"]:
        for k, val in c.items():
            assert k in CONTAINER_FIELDS and isinstance(val, CONTAINER_FIELDS[k]), (c["name"], k)
        for e in c.get("env", []):
            assert set(e) == {"name", "value"} and isinstance(e["value"], str), e
        for m in c.get("volumeMounts", []):
            assert m["name"] in vols, m  # every mount names a declared volume
            assert set(m) <= {"name", "mountPath", "subPath", "readOnly"}
        for k, val in c["securityContext"].items():
            assert k in SECCTX_FIELDS and isinstance(val, SECCTX_FIELDS[k]), k
        for p in ("startupProbe", "livenessProbe", "readinessProbe"):
            if p in c:
                assert set(c[p]) <= PROBE_FIELDS
                assert all(isinstance(a, str) for a in c[p]["exec"]["command"])
        if "restartPolicy" in c:
            assert c["restartPolicy"] == "Always"  # the only value for an init container


def test_manifest_native_sidecar_secrets_probes_and_agent_env():
    pod = _pod()
    inits = {c["name"]: c for c in pod["initContainers"]}
    side = inits["aauth-proxy"]
    assert side["restartPolicy"] == "Always"
    # no privileges, read-only root anywhere in the pod
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    for c in pod["initContainers"] + pod["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["privileged"] is False and sc["capabilities"]["drop"] == ["ALL"]
    # key and CA from Secrets; the CA key never reaches the agent
    vols = {v["name"]: v for v in pod["volumes"]}
    secret_of = {n: v["secret"]["secretName"] for n, v in vols.items() if "secret" in v}
    assert "aauth-agent-key" in secret_of.values() and "aauth-proxy-ca" in secret_of.values()
    (agent,) = pod["containers"]
    agent_secrets = {secret_of.get(m["name"]) for m in agent["volumeMounts"]}
    assert "aauth-proxy-ca" not in agent_secrets and "aauth-agent-key" not in agent_secrets
    assert "aauth-proxy-ca-public" in agent_secrets
    # the probes hit the admin endpoints
    cmd = " ".join
    assert "127.0.0.1:8788/healthz" in cmd(side["livenessProbe"]["exec"]["command"])
    assert "127.0.0.1:8788/readyz" in cmd(side["readinessProbe"]["exec"]["command"])
    # the agent is pointed at the proxy and trusts its CA
    env = {e["name"]: e["value"] for e in agent["env"]}
    assert env["HTTP_PROXY"] == env["HTTPS_PROXY"] == "http://127.0.0.1:8787"
    assert env["NODE_EXTRA_CA_CERTS"].endswith("/ca.pem")
    for v in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        assert env[v].endswith("/ca-bundle.pem")


def test_manifest_config_is_valid_and_matches_the_mounts(tmp_path):
    (cm,) = [d for d in _docs() if d["kind"] == "ConfigMap"]
    cfg = json.loads(cm["data"]["aauth-proxy.json"])
    assert cfg["listen"] == ["127.0.0.1:8787"] and cfg["admin"]["listen"] == ["127.0.0.1:8788"]
    pod = _pod()
    side = {c["name"]: c for c in pod["initContainers"]}["aauth-proxy"]
    mounts = [m["mountPath"] for m in side["volumeMounts"]]
    for f in (cfg["key"]["file"], cfg["ca"]["cert_file"], cfg["ca"]["key_file"],
              cfg["resources"]["example-api"]["token_file"]):
        assert any(f.startswith(m + "/") for m in mounts), f
    # and the daemon accepts it (paths moved into a scratch directory)
    key = private_copy(tmp_path, "lumoauth/agent-key.pem")
    cfg["key"]["file"] = str(key)
    cfg["ca"] = {"cert_file": str(tmp_path / "ca.pem"), "key_file": str(tmp_path / "ca-key.pem")}
    tok = tmp_path / "tok"
    tok.write_text("t" * 32)
    tok.chmod(0o600)
    cfg["resources"]["example-api"]["token_file"] = str(tok)
    f = tmp_path / "c.json"
    f.write_text(json.dumps(cfg))
    r = run("check-config", "-c", str(f))
    assert r.returncode == 0, r.stderr
