#!/usr/bin/python3
"""Write the named seed inputs of tests/fuzz/corpus/ (run from anywhere).

Seeds come from the vectors (../shared/vectors), conf/ and the black-box
suite's hostile upstream heads; each target's first byte(s) select its mode
(see the comment at the top of each fuzz_*.c). Inputs saved from crashes
(crash-*, named after the bug) are left alone.
"""
import os
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VEC = pathlib.Path(os.environ.get("AAUTH_VECTORS", ROOT.parent / "shared" / "vectors"))
CORPUS = HERE / "corpus"

sys.path.insert(0, str(ROOT / "tests" / "py"))


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def sig_fields(path):
    """Signature-Input and Signature values of a signed request."""
    si = sig = None
    for line in path.read_bytes().split(b"\r\n"):
        if line.startswith(b"Signature-Input: "):
            si = line[len(b"Signature-Input: "):]
        elif line.startswith(b"Signature: "):
            sig = line[len(b"Signature: "):]
    return si, sig


# --- request: flags, 2 seed bytes, bytes from the client ------------------
SPLIT, BYTEWISE, CHUNKED, WHOLE, ROUND_TRIP, FOLD = 0, 1, 2, 3, 0x20, 0x10
heads = {
    "origin_get": b"GET /v1/documents/doc-42?x=1 HTTP/1.1\r\nHost: api.example.com\r\n"
                  b"Accept: */*\r\nConnection: keep-alive\r\n\r\n",
    "absolute_get": b"GET http://api.example.com:8080/a/../b?q=%20 HTTP/1.1\r\n"
                    b"Host: api.example.com:8080\r\nUser-Agent: curl/7.88.1\r\n\r\n",
    "post_length": b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.example.com\r\n"
                   b"Content-Type: application/json\r\nContent-Length: 18\r\n"
                   b"Expect: 100-continue\r\n\r\n{\"hello\": \"world\"}",
    "post_chunked": b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n"
                    b"X-Trailer: t\r\n\r\n",
    "connect": b"CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n",
    "options_star": b"OPTIONS * HTTP/1.1\r\nHost: [::1]:8787\r\n\r\n",
    "http10": b"\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "pipelined": b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
    "smuggle_cl_te": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
}
for name, raw in heads.items():
    put("request", name, bytes([ROUND_TRIP | SPLIT, 0x17, 0x2a]) + raw)
put("request", "origin_get_bytewise", bytes([BYTEWISE, 0, 0]) + heads["origin_get"])
put("request", "obs_fold_allowed", bytes([FOLD | ROUND_TRIP, 1, 2]) +
    b"GET / HTTP/1.1\r\nHost: h\r\nX-Folded: a\r\n  b\r\n\tc\r\n\r\n")
put("request", "limits", bytes([0x04 | 0x08, 0x40, 0x01]) + heads["absolute_get"])
put("request", "chunked_only", bytes([CHUNKED, 3, 9]) +
    b"4\r\nWiki\r\n5;a=b;c=\"d\"\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nT: 1\r\n\r\n")
# A few vectors, each for something the others lack.
SIGNED = ["rfc9421/b2_6-ed25519", "rfc9421/b2_2-rsa-pss-selective",
          "rfc9421/s4_3-rsa-v15-proxy_sig", "lumoauth/token-request",
          "edge/e01-field-canonicalization", "edge/e02-sf-and-key",
          "edge/e03-bs-two-lines", "edge/e06-query-param-special-chars",
          "edge/e14-authority-ipv6", "edge/e18-request-target-absolute-form",
          "edge/e20-empty-path-absolute-form", "edge/e21-noncanonical-signature-input",
          "edge/e23-all-params"]
for f in [VEC / d / "request-signed.http" for d in SIGNED]:
    rel = f.relative_to(VEC)
    put("request", "whole_" + "_".join(rel.parts).replace(".http", ""),
        bytes([WHOLE | FOLD, 0, 0]) + f.read_bytes())

# --- response: flags, then the head as curl's header callback sees it ----
put("response", "ok_length", b"\x00HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 2\r\nConnection: keep-alive\r\n\r\n")
put("response", "interim_then_final", b"\x01HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
    b"HTTP/1.1 201 Created\r\nLocation: /x/1\r\nTransfer-Encoding: chunked\r\n\r\n")
put("response", "folds_and_lists", b"\x00HTTP/1.0 404\r\n folded first\r\n"
    b"X-A: a\r\n b\r\n\tc\r\nContent-Length: 7, 7\r\ncontent-length: 7\r\nX-B: \x01\r\n d\r\n\r\n")
try:
    from test_proxy_security import HOSTILE_HEADS
    for name, (raw, _) in sorted(HOSTILE_HEADS.items()):
        if len(raw) < 4096:
            put("response", "hostile_" + name, b"\x00" + raw)
except Exception as e:  # the suite's imports (pytest) may be missing
    print(f"(hostile heads skipped: {e})", file=sys.stderr)

# --- sfv: kind (0 list, 1 dict, 2 item, 3 member) | 4 raw bytes | 8 helpers
LIST, DICT, ITEM, MEMBER, RAW, HELPERS = 0, 1, 2, 3, 4, 8
sfv = {
    "list": (LIST, b'sugar, tea, rum, ("a" "b");q=0.5, ?0, -12.345, :AQID:, @1659578233'),
    "dict": (DICT, b'a=1, b=?0, c, d=(1 2);x="y", e=:cHJldGVuZCB0aGlzIGlzIGJpbmFyeQ==:, a=2'),
    "item": (ITEM, b'"a \\"quoted\\" \\\\ string";p=1.5;q=?1;t=tok/en:1'),
    "member": (MEMBER, b'("@method" "@path" "example-dict";key="a");created=1618884473;'
                       b'keyid="test-key-ed25519";nonce="x"'),
    "digest": (DICT, b"sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-512=:abc=:"),
    "raw_b64url": (DICT | RAW, b"sig1=:sr5ZGEA2-LkKN4RvFrpYxhaGPB-tf1STvf1W0bl_UAFt1Rjn_w:"),
    "helpers": (HELPERS | ITEM, b"*tok_en-1.x:y/z"),
}
for name, (kind, text) in sfv.items():
    put("sfv", name, bytes([kind]) + text)
for f in [VEC / d / "request-signed.http" for d in SIGNED]:
    si, sig = sig_fields(f)
    tag = "_".join(f.relative_to(VEC).parts[:-1])
    if si:
        put("sfv", "si_" + tag, bytes([DICT]) + si)
    if sig:
        put("sfv", "sig_" + tag, bytes([DICT | RAW]) + sig)

# --- httpsig: scenario (0 B.2.6, 1 lumoauth, 2 aauth-draft, 3 rfc9421) -----
si, sig = sig_fields(VEC / "rfc9421/b2_6-ed25519/request-signed.http")
put("httpsig", "b2_6_valid", b"\x00" + si + b"\n" + sig)
put("httpsig", "b2_6_label", b"\x04sig-b26\n" + si + b"\n" + sig)
put("httpsig", "b2_6_base", b"\x08" + si.split(b"=", 1)[1])
si, sig = sig_fields(VEC / "lumoauth/token-request/request-signed.http")
put("httpsig", "lumoauth_valid", b"\x01" + si + b"\n" + sig)
put("httpsig", "lumoauth_as_draft", b"\x02" + si + b"\n" + sig +
    b'\nSignature-Key: sig1=hwk;kty="OKP";crv="Ed25519";x="A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"')
put("httpsig", "lumoauth_base_absent_empty", b"\x18" + si.split(b"=", 1)[1])
for f in [VEC / d / "request-signed.http" for d in SIGNED if d.startswith("edge/")]:
    si, sig = sig_fields(f)
    if si and sig:
        put("httpsig", "edge_" + f.parent.name, b"\x13" + si + b"\n" + sig +
            b"\nExample-Dict: a=1, b=2;x=1;y=2, c=(a b c)\nCache-Control: max-age=60")

# sign (as the proxy finalises a request) then verify, over odd fields
odd = (b"\n\nContent-Type: text/plain\nContent-Type:  application/json \nDate: a\nDate:\n"
       b"Authorization: Basic x\nX-Empty:\nExample-Dict: a=1, b=2\nCache-Control: no-store")
for sc in range(4):
    put("httpsig", f"sign_verify_{sc}", bytes([0x20 | sc]) + odd)

# --- config: the JSON text as is -----------------------------------------
for f in sorted((ROOT / "conf").glob("*.json")):
    put("config", f.stem, f.read_bytes())
put("config", "every_field", b'''{"listen": ["127.0.0.1:0", "[::1]:0", "unix:/tmp/a.sock"],
 "unix_socket_mode": "0600", "key": {"file": "k.pem", "kid": "k"},
 "default_action": "pass", "block_private_addresses": false,
 "resources": {"r": {"token_file": "t", "upstream": "http", "allow_plaintext": true,
   "profile": {"base": "rfc9421", "label": "sig", "keyid": "kid", "alg": "ed25519",
     "tag": "aauth", "expires_in": 300, "digest": "sha-512", "content_type": "application/json",
     "signature_key": "hwk", "created_window": 60,
     "components": ["@method", "@authority", "@path", "@query-param;name=a", "content-digest"],
     "params": ["created", "expires", "nonce", "keyid", "alg", "tag"]}},
   "s": {"token_file": "u", "profile": "aauth-draft"}},
 "rules": [{"host": "*.example.com", "port": 8443, "action": "sign", "resource": "r"},
   {"host": "10.0.0.1", "action": "deny"}, {"host": "[::1]", "port": 80, "action": "pass"}],
 "limits": {"max_connections": 10, "max_header_bytes": 4096, "max_headers": 10,
   "max_body_bytes": 1024, "max_buffered_bytes": 4096, "header_timeout_ms": 1000,
   "idle_timeout_ms": 1000},
 "upstream": {"connect_timeout_ms": 100, "timeout_ms": 1000, "idle_timeout_ms": 1000},
 "log": {"level": "debug", "access_log": "off"}}''')
print(f"seeds written under {CORPUS}")
