// The vendor's OpenAI Agents SDK quickstart (fetch a document, create a
// summary) in JavaScript, with no signing code: the function tools call
// the protected https:// API with plain fetch, and `aauth-proxy exec` puts
// the proxy and its CA in the environment. The model is scripted here (no
// network): it calls fetch_document, then create_summary with what the
// tool returned, then answers.
//
//   aauth-proxy exec -c FILE -- node agent.mjs https://127.0.0.1:P/v1
//
// Prints one JSON line: {final, tools: [{name, output}]}.
import { Agent, Runner, Usage, setTracingDisabled, tool } from '@openai/agents';
import { EnvHttpProxyAgent, fetch } from 'undici';
import { z } from 'zod';

setTracingDisabled(true);
const api = process.argv[2];
// The proxy comes from HTTPS_PROXY and the CA from NODE_EXTRA_CA_CERTS;
// Node 20's built-in fetch reads neither (NODE_USE_ENV_PROXY is Node 22.21+).
const dispatcher = new EnvHttpProxyAgent();
const outputs = [];

const fetchDocument = tool({
  name: 'fetch_document',
  description: 'Fetch a document from the protected API.',
  parameters: z.object({ document_id: z.string() }),
  async execute({ document_id }) {
    const res = await fetch(`${api}/documents/${document_id}`, { dispatcher });
    const text = res.status === 200 ? await res.text() : `Error: HTTP ${res.status}`;
    outputs.push({ name: 'fetch_document', status: res.status, output: text });
    return text;
  },
});

const createSummary = tool({
  name: 'create_summary',
  description: 'Create a summary for a document in the protected API.',
  parameters: z.object({ document_id: z.string(), summary: z.string() }),
  async execute({ document_id, summary }) {
    const res = await fetch(`${api}/documents/${document_id}/summaries`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: summary }),
      dispatcher,
    });
    const text = await res.text();
    outputs.push({ name: 'create_summary', status: res.status, output: text });
    return res.status === 200 || res.status === 201
      ? 'Summary created successfully.'
      : `Error: HTTP ${res.status}`;
  },
});

// A model that plays the quickstart's conversation without a network.
class ScriptedModel {
  constructor() {
    this.turn = 0;
  }

  async getResponse(request) {
    this.turn += 1;
    const usage = new Usage();
    const call = (id, name, args) => ({
      type: 'function_call',
      callId: id,
      name,
      arguments: JSON.stringify(args),
      status: 'completed',
    });
    if (this.turn === 1) {
      return { usage, output: [call('call_1', 'fetch_document', { document_id: 'doc-42' })] };
    }
    if (this.turn === 2) {
      const items = Array.isArray(request.input) ? request.input : [];
      const result = items.find((i) => i.type === 'function_call_result');
      const seen = result ? JSON.stringify(result.output).slice(0, 40) : 'nothing';
      return {
        usage,
        output: [
          call('call_2', 'create_summary', {
            document_id: 'doc-42',
            summary: `Doc-42 was fetched through the proxy. It began: ${seen}.`,
          }),
        ],
      };
    }
    return {
      usage,
      output: [
        {
          type: 'message',
          role: 'assistant',
          status: 'completed',
          content: [{ type: 'output_text', text: 'Fetched doc-42 and created its summary.' }],
        },
      ],
    };
  }

  async *getStreamedResponse() {
    throw new Error('streaming is not scripted');
  }
}

const researchAgent = new Agent({
  name: 'Research Assistant',
  instructions:
    'You are a helpful assistant with access to a protected document API. ' +
    'Retrieve documents and create summaries as requested.',
  tools: [fetchDocument, createSummary],
  model: new ScriptedModel(),
});

const runner = new Runner();
const result = await runner.run(researchAgent, 'Fetch document doc-42 and create a two-sentence summary.');
process.stdout.write(JSON.stringify({ final: result.finalOutput, tools: outputs }) + '\n');
await dispatcher.close();
