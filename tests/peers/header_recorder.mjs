// A Streamable HTTP MCP backend (TypeScript SDK) that records the headers of every HTTP request
// it receives (tests/gateway_vault.rs): the credential tests read the record to prove what the
// gateway sent on the upstream hop — its own credential, never the client's.
//   - every request to /mcp is appended, before it is handled, as one JSON line
//     `{"method","path","headers"}` to the file named by HEADERS_FILE;
//   - requests whose Authorization is in the rejected set get 401 (`POST /test/reject` with the
//     header value as its body adds one), like a backend that revoked a token;
//   - tools: `echo` (returns its message), `fail` (throws: an error result).
// Env: PORT (required), HEADERS_FILE (required).
// Run with `node --require ./loopback.cjs` so it listens on 127.0.0.1 only.
import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import express from 'express';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const record = process.env.HEADERS_FILE;
const rejected = new Set();
const transports = new Map();

function newServer() {
  const server = new McpServer({ name: 'header-recorder', version: '1.0.0' });
  server.registerTool('echo', {
    description: 'Echoes its message',
    inputSchema: { message: z.string() },
  }, async ({ message }) => ({ content: [{ type: 'text', text: `Echo: ${message}` }] }));
  server.registerTool('fail', {
    description: 'Always fails',
    inputSchema: {},
  }, async () => {
    throw new Error('the fail tool failed, as it always does');
  });
  return server;
}

const app = express();
app.post('/test/reject', express.text({ type: '*/*' }), (req, res) => {
  rejected.add(req.body);
  res.status(204).end();
});
app.all('/mcp', express.json(), async (req, res) => {
  appendFileSync(record, JSON.stringify({ method: req.method, path: req.path, headers: req.headers }) + '\n');
  if (req.headers.authorization !== undefined && rejected.has(req.headers.authorization)) {
    res.status(401).set('www-authenticate', 'Bearer error="invalid_token"').end();
    return;
  }
  const sid = req.headers['mcp-session-id'];
  if (sid !== undefined) {
    const t = transports.get(sid);
    if (!t) {
      res.status(404).json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
      return;
    }
    await t.handleRequest(req, res, req.body);
    return;
  }
  if (req.method !== 'POST') {
    res.status(400).json({ jsonrpc: '2.0', error: { code: -32000, message: 'Mcp-Session-Id required' }, id: null });
    return;
  }
  const server = newServer();
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    enableJsonResponse: true,
    onsessioninitialized: (id) => transports.set(id, transport),
  });
  transport.onclose = () => {
    if (transport.sessionId) transports.delete(transport.sessionId);
  };
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
});
const listener = app.listen(Number(process.env.PORT), () => {
  console.error(`header recorder MCP peer listening on port ${listener.address().port}`);
});
