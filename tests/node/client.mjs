// One HTTP request through aauth-proxy with undici, driven by the Python
// tests: ProxyAgent in absolute-form mode (proxyTunnel: false), or with
// "tunnel": true in its default CONNECT mode (https:// and http:// alike),
// or with "env": true EnvHttpProxyAgent reading HTTP(S)_PROXY/NO_PROXY.
// "ca_file" is then the only CA trusted for the target (requestTls).
//
//   node client.mjs '{"proxy": "http://127.0.0.1:P", "url": "http://…",
//                     "method": "POST", "headers": {…}, "body_file": "…",
//                     "mode": "body" | "sse", "api": "request" | "fetch",
//                     "agent": "proxy" | "env" | "env-default",
//                     "tunnel": true, "ca_file": "…"}'
//
// agent "env": EnvHttpProxyAgent({ proxyTunnel: false }), which takes the
// proxy from http_proxy/HTTP_PROXY; "env-default" (or "env": true):
// EnvHttpProxyAgent() as shipped, which tunnels (CONNECT); "proxy":
// ProxyAgent, tunnelling when "tunnel" is true. ca_file: the CA to trust.
//
// Prints JSON lines on stdout. mode "body": one line {status, headers,
// sha256, len, text}. mode "sse": one line {event: <data JSON>} per event as
// soon as it has arrived (the test acknowledges each one to the fake
// server, which holds back the next event until then), then {done, status}.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EnvHttpProxyAgent, ProxyAgent, fetch, request } from 'undici';

const spec = JSON.parse(process.argv[2]);
const tls = spec.ca_file ? { requestTls: { ca: readFileSync(spec.ca_file) } } : {};
const agent =
  spec.agent === 'env'
    ? new EnvHttpProxyAgent({ proxyTunnel: false, ...tls })
    : spec.agent === 'env-default' || spec.env
      ? new EnvHttpProxyAgent(tls)
      : new ProxyAgent({ uri: spec.proxy, proxyTunnel: spec.tunnel === true, ...tls });
const method = spec.method || 'GET';
const headers = spec.headers || {};
const body = spec.body_file ? readFileSync(spec.body_file) : spec.body;

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function main() {
  let status, resHeaders, stream;
  if (spec.api === 'fetch') {
    const res = await fetch(spec.url, { method, headers, body, dispatcher: agent });
    status = res.status;
    resHeaders = Object.fromEntries(res.headers.entries());
    stream = res.body ?? [];
  } else {
    const res = await request(spec.url, { method, headers, body, dispatcher: agent });
    status = res.statusCode;
    resHeaders = res.headers;
    stream = res.body;
  }
  if (spec.mode === 'sse') {
    let pending = '';
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      pending += dec.decode(chunk, { stream: true });
      let idx;
      while ((idx = pending.indexOf('\n\n')) >= 0) {
        const ev = pending.slice(0, idx);
        pending = pending.slice(idx + 2);
        const data = ev.split('\n').find((l) => l.startsWith('data: '));
        if (data) out({ event: JSON.parse(data.slice(6)) });
      }
    }
    out({ done: true, status, headers: resHeaders });
    return;
  }
  const hash = createHash('sha256');
  const parts = [];
  let len = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    len += chunk.length;
    if (len <= 65536) parts.push(Buffer.from(chunk));
  }
  const text = len <= 65536 ? Buffer.concat(parts).toString('utf8') : null;
  out({ status, headers: resHeaders, sha256: hash.digest('hex'), len, text });
}

main()
  .then(() => agent.close())
  .catch((err) => {
    out({ error: String(err && err.stack ? err.stack : err), code: err && err.code });
    process.exitCode = 1;
  });
