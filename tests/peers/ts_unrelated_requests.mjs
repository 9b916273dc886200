// A TypeScript-SDK Streamable HTTP server whose server→client requests are NOT tied to a client
// request: it calls `server.server.createMessage(...)` / `elicitInput(...)` without a
// `relatedRequestId`, so the SDK sends them on the session's standalone GET stream (the way
// `server.request(...)` does), not on the tool call's POST response stream. Used by
// tests/gateway_ts_http_backends.rs.
//
// Tools (each answer contains what the client sent back, so a test sees the backend got it):
//   - `sample-unrelated {prompt}`: asks for sampling, answers `backend received: <text> (model <m>)`;
//   - `elicit-unrelated {message}`: asks for a form elicitation, answers
//     `backend received: <action> <content JSON>`;
//   - `sample-after-return {prompt}`: answers `scheduled` at once, then (after its answer went
//     out) asks for sampling from a timer; `await-sampled {}` waits (≤ 30 s) for that answer and
//     returns it like `sample-unrelated` does.
//
// Listens on 127.0.0.1, port 0 (or PORT), and prints `ts unrelated-requests peer listening on
// http://127.0.0.1:<port>/mcp` on stdout once it accepts connections. Unknown session ids get
// 404 (the spec's answer). stderr logs every server→client request and its outcome.
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const log = (...parts) => console.error('[ts-unrelated]', ...parts);
const text = (t) => ({ content: [{ type: 'text', text: t }] });
const AWAIT_LIMIT_MS = 30_000;

/** One MCP server per session: its tools and the sampling started after a tool returned. */
function sessionServer() {
  const server = new McpServer({ name: 'ts-unrelated-requests', version: '1.0.0' });
  let scheduled; // Promise of the sampling started by `sample-after-return`

  const sample = async (prompt) => {
    log('sending sampling/createMessage without a related request');
    // No options → no relatedRequestId → the standalone GET stream.
    const r = await server.server.createMessage({
      messages: [{ role: 'user', content: { type: 'text', text: prompt } }],
      maxTokens: 16,
    });
    const got = Array.isArray(r.content) ? r.content.find((c) => c.type === 'text')?.text : r.content?.text;
    log(`sampling answered: ${got}`);
    return `backend received: ${got} (model ${r.model})`;
  };

  server.registerTool('sample-unrelated', {
    description: 'Asks the client to sample, on the standalone GET stream',
    inputSchema: { prompt: z.string() },
  }, async ({ prompt }) => text(await sample(prompt)));

  server.registerTool('elicit-unrelated', {
    description: 'Asks the client for input (form elicitation), on the standalone GET stream',
    inputSchema: { message: z.string() },
  }, async ({ message }) => {
    log('sending elicitation/create without a related request');
    const r = await server.server.elicitInput({
      message,
      requestedSchema: {
        type: 'object',
        properties: { confirm: { type: 'boolean' }, who: { type: 'string' } },
      },
    });
    log(`elicitation answered: ${r.action}`);
    return text(`backend received: ${r.action} ${JSON.stringify(r.content ?? null)}`);
  });

  server.registerTool('sample-after-return', {
    description: 'Answers at once, then asks the client to sample from a timer',
    inputSchema: { prompt: z.string() },
  }, async ({ prompt }) => {
    scheduled = new Promise((resolve, reject) => {
      setTimeout(() => sample(prompt).then(resolve, reject), 0);
    });
    scheduled.catch((e) => log(`scheduled sampling failed: ${e}`));
    return text('scheduled');
  });

  server.registerTool('await-sampled', {
    description: 'Waits for the sampling that sample-after-return started',
  }, async () => {
    if (!scheduled) return { ...text('nothing scheduled'), isError: true };
    let timer;
    const limit = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no sampling answer within ${AWAIT_LIMIT_MS} ms`)), AWAIT_LIMIT_MS);
    });
    try {
      return text(await Promise.race([scheduled, limit]));
    } catch (e) {
      return { ...text(String(e)), isError: true };
    } finally {
      clearTimeout(timer);
    }
  });
  return server;
}

const transports = new Map();

const http = createHttpServer(async (req, res) => {
  const reject = (status, message) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
  };
  try {
    if (new URL(req.url, 'http://x').pathname !== '/mcp') return reject(404, 'not found');
    const sid = req.headers['mcp-session-id'];
    if (sid !== undefined) {
      const t = transports.get(sid);
      if (!t) return reject(404, 'Session not found');
      await t.handleRequest(req, res);
      return;
    }
    if (req.method !== 'POST') return reject(400, 'Mcp-Session-Id required');
    const server = sessionServer();
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => transports.set(id, transport),
    });
    transport.onclose = () => {
      if (transport.sessionId) transports.delete(transport.sessionId);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res);
  } catch (e) {
    log(`request failed: ${e?.stack ?? e}`);
    if (!res.headersSent) reject(500, 'internal error');
  }
});

http.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`ts unrelated-requests peer listening on http://127.0.0.1:${http.address().port}/mcp`);
});
