"""Test certificates made with the openssl CLI at test time: a throw-away
CA and a leaf for a loopback host, so a TLS fake can be trusted through
upstream.ca_file and nothing else."""

import ipaddress
import subprocess


def _run(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca_and_leaf(directory, host):
    """Returns (ca.pem, chain.pem = leaf + CA, leaf.key) in directory."""
    d = str(directory)
    try:
        ipaddress.ip_address(host)
        san = f"IP:{host}"
    except ValueError:
        san = f"DNS:{host}"
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=aauth-proxy test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", f"/CN={host}", cwd=d)
    with open(f"{d}/leaf.ext", "w") as f:
        f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    _run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext", cwd=d)
    with open(f"{d}/leaf.pem") as a, open(f"{d}/ca.pem") as b, open(f"{d}/chain.pem", "w") as out:
        out.write(a.read() + b.read())
    return f"{d}/ca.pem", f"{d}/chain.pem", f"{d}/leaf.key"
