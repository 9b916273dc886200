// server-everything behind a spec-strict Streamable HTTP front (tests/upstream_transports.rs).
// Why not `server-everything streamableHttp`: its express front answers 400 for an unknown
// Mcp-Session-Id, where the spec (2025-03-26 and later) demands 404. This front routes by
// session id with 404 for unknown ones, keeps a per-stream event store (resumability), and adds:
//   - tool `echo-after-stream-break`: closes its SSE response stream, then answers 300 ms
//     later, so the client must resume with GET + Last-Event-ID to get the result;
//   - `POST /test/forget-sessions`: the server forgets every session (out-of-band expiry);
//   - requests in a session without MCP-Protocol-Version get 400 (the spec's MUST);
//   - `POST /test/break-get-streams`: closes every standalone GET stream (client must reconnect);
//   - `GET /test/sessions`: `{ "count": n }`, the number of live sessions.
// Env: PORT (required), JSON_RESPONSE=1 for application/json answers instead of SSE.
// Run with `node --require ./loopback.cjs` so it listens on 127.0.0.1 only.
import { randomUUID } from 'node:crypto';
import express from 'express';
import { z } from 'zod';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createServer } from '@modelcontextprotocol/server-everything/dist/server/index.js';

class EventStore {
  events = new Map(); // eventId -> { streamId, message }
  next = 0;
  async storeEvent(streamId, message) {
    const id = `${streamId}_${++this.next}`;
    this.events.set(id, { streamId, message });
    return id;
  }
  async getStreamIdForEventId(eventId) {
    return this.events.get(eventId)?.streamId;
  }
  async replayEventsAfter(lastEventId, { send }) {
    const streamId = this.events.get(lastEventId)?.streamId;
    let after = false;
    for (const [id, ev] of this.events) {
      if (after && ev.streamId === streamId && Object.keys(ev.message).length > 0) await send(id, ev.message);
      if (id === lastEventId) after = true;
    }
    return streamId;
  }
}

const transports = new Map();
const app = express();
app.post('/test/forget-sessions', async (_req, res) => {
  const all = [...transports.values()];
  transports.clear();
  for (const t of all) await t.close();
  res.status(204).end();
});
app.post('/test/break-get-streams', (_req, res) => {
  for (const t of transports.values()) t.closeStandaloneSSEStream();
  res.status(204).end();
});
app.get('/test/sessions', (_req, res) => res.json({ count: transports.size }));
app.all('/mcp', async (req, res) => {
  const sid = req.headers['mcp-session-id'];
  if (sid !== undefined) {
    const t = transports.get(sid);
    if (!t) {
      res.status(404).json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
      return;
    }
    // Spec 2025-06-18+: every request after initialize carries MCP-Protocol-Version.
    if (req.headers['mcp-protocol-version'] === undefined) {
      res.status(400).json({ jsonrpc: '2.0', error: { code: -32000, message: 'MCP-Protocol-Version required' }, id: null });
      return;
    }
    await t.handleRequest(req, res);
    return;
  }
  if (req.method !== 'POST') {
    res.status(400).json({ jsonrpc: '2.0', error: { code: -32000, message: 'Mcp-Session-Id required' }, id: null });
    return;
  }
  const { server, cleanup } = createServer();
  server.registerTool('echo-after-stream-break', {
    description: 'Closes its response stream, then echoes 300 ms later',
    inputSchema: { message: z.string() },
  }, async ({ message }, extra) => {
    extra.closeSSEStream?.();
    await new Promise((r) => setTimeout(r, 300));
    return { content: [{ type: 'text', text: `Echo: ${message}` }] };
  });
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    eventStore: new EventStore(),
    retryInterval: 100,
    enableJsonResponse: process.env.JSON_RESPONSE === '1',
    onsessioninitialized: (id) => transports.set(id, transport),
  });
  server.server.onclose = () => {
    const id = transport.sessionId;
    if (id) {
      transports.delete(id);
      cleanup(id);
    }
  };
  await server.connect(transport);
  await transport.handleRequest(req, res);
});
const listener = app.listen(Number(process.env.PORT), () => {
  console.error(`strict MCP HTTP peer listening on port ${listener.address().port}`);
});
