"""The OpenAI Agents SDK for JavaScript, as the vendor quickstart wires
AAuth into a Python agent — but with no signing code in the agent: its
function tools fetch a protected https:// API with plain fetch, it runs
under `aauth-proxy exec`, and the model is scripted locally (no network).
Every request the tools make arrives at the resource signed and with the
Bearer token."""

import json
import subprocess

from https_world import NODE_DIR, all_valid, https, node_env, node_modules  # noqa: F401


def test_agents_sdk_tool_calls_are_signed(https, node_modules):
    w = https
    p = w.start()
    api = f"https://127.0.0.1:{w.tls.port}/v1"
    r = subprocess.run([w.bin, "exec", "-c", p.config_path, "--", "node",
                        str(NODE_DIR / "agent.mjs"), api],
                       cwd=NODE_DIR, capture_output=True, timeout=120,
                       env=node_env({"OPENAI_API_KEY": "not-used-the-model-is-scripted"}))
    assert r.returncode == 0, (r.stdout, r.stderr)
    out = json.loads(r.stdout.decode().splitlines()[-1])
    assert out["final"] == "Fetched doc-42 and created its summary."
    tools = out["tools"]
    assert [t["name"] for t in tools] == ["fetch_document", "create_summary"]
    assert all(t["status"] == 200 for t in tools), tools
    fetched = json.loads(tools[0]["output"])
    assert fetched["verdict"] == "valid" and fetched["path"] == "/v1/documents/doc-42"
    recs = w.tls.records()
    assert [(x.method, x.path) for x in recs] == [
        ("GET", "/v1/documents/doc-42"), ("POST", "/v1/documents/doc-42/summaries")]
    ok, bad = all_valid(w.tls)
    assert ok, bad
    assert all(x.get("authorization") == f"Bearer {w.token}" for x in recs)
    # the agent's process never saw the token or a signature
    assert w.token not in r.stdout.decode() + r.stderr.decode()
    # nothing else was reached (the scripted model makes no request)
    hosts = {e.get("host") for e in p.access_entries()}
    assert hosts == {"127.0.0.1"}, p.access_entries()
