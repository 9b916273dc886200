#!/usr/bin/env node
// Test driver: a real MCP client built on the official TypeScript SDK
// (@modelcontextprotocol/sdk 1.32.2, StreamableHTTPClientTransport).
//
// Switchboard's Rust integration tests run this (through tests/common/peers.rs) to drive a
// server - the gateway, or a reference server - exactly as a TypeScript SDK client would.
// One invocation = one client session = one JSON object on stdout; diagnostics go to stderr.
//
//   ts_client.mjs --url URL [--era legacy] [--elicit JSON] [--header 'K: V']... [--timeout SECONDS]
//                 [--token TOKEN] [--report-refusal] ACTION [ARGS...]
//
// Actions (same CLI and JSON shapes as py_client.py):
//   list                                  tools/prompts/resources/templates (paginated) + server info
//   call NAME JSON_ARGS [--progress]      {"result": CallToolResult} or {"error": {code, message}}
//   cancel NAME JSON_ARGS AFTER_MS        {"cancelled": bool, "pingOk": bool}
//   watch-list-changed TOOL JSON_ARGS [--kind tools|prompts|resources]
//                                         {"listChanged": bool, "<kind>": [...]}
//   reconnect-after-expiry NAME JSON_ARGS WAIT_MS   see reconnectAfterExpiry() below
//   call-twice NAME1 JSON_ARGS1 NAME2 JSON_ARGS2   {"first": <call>, "second": <call>}, one session
//
// Every output also carries "serverRequests" and "notifications": every server->client
// JSON-RPC request / notification seen on the wire (recorded by wrapping the transport).
// Exit code 0 unless the driver itself broke; a JSON-RPC error from the server is reported
// as {"error": {...}} with exit 0.
//
// Auth: `--token TOKEN` (or the SWITCHBOARD_TOKEN environment variable) sends
// `Authorization: Bearer TOKEN` on every request (an explicit --header Authorization wins).
// `--report-refusal`: every HTTP response >= 400 is recorded as {method, status,
// wwwAuthenticate, body} in "httpErrors" (recorded by wrapping the transport's fetch); when the
// session then fails (e.g. a 401 on initialize), the driver prints
// {"refused": <first HTTP error>, "httpErrors": [...], ...} and exits 0 instead of 2.
//
// Eras: the TS SDK 1.32.2 speaks the handshake protocol (2025-11-25 and older) only, so
// `--era legacy` and `--era auto` both mean initialize + Mcp-Session-Id; `--era 2026` is
// refused with exit 2 (the SDK has no 2026-07-28 stateless mode).

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CallToolResultSchema,
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  McpError,
} from '@modelcontextprotocol/sdk/types.js';

const ROOT = { uri: 'file:///tmp/driver-root', name: 'driver-root' };
const LIST_CHANGED_WAIT_MS = 10_000;
const ACTIONS = { list: 0, call: 2, cancel: 3, 'watch-list-changed': 2, 'reconnect-after-expiry': 3, 'call-twice': 4 };

const log = (...parts) => console.error('[ts_client]', ...parts);

class UsageError extends Error {}

function parseArgs(argv) {
  const opts = {
    era: 'legacy',
    elicit: '{"confirm": true}',
    headers: {},
    timeout: 30,
    progress: false,
    kind: 'tools',
    token: process.env.SWITCHBOARD_TOKEN || undefined,
    reportRefusal: false,
  };
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--url') opts.url = value();
    else if (a === '--era') opts.era = value();
    else if (a === '--elicit') opts.elicit = value();
    else if (a === '--timeout') opts.timeout = Number(value());
    else if (a === '--kind') opts.kind = value();
    else if (a === '--progress') opts.progress = true;
    else if (a === '--token') opts.token = value();
    else if (a === '--report-refusal') opts.reportRefusal = true;
    else if (a === '--header') {
      const h = value();
      const at = h.indexOf(':');
      if (at < 0) throw new UsageError(`--header wants 'Name: value', got ${h}`);
      opts.headers[h.slice(0, at).trim()] = h.slice(at + 1).trim();
    } else positional.push(a);
  }
  if (!opts.url) throw new UsageError('--url is required');
  if (opts.token && !Object.keys(opts.headers).some((k) => k.toLowerCase() === 'authorization')) {
    opts.headers.Authorization = `Bearer ${opts.token}`;
  }
  if (!['legacy', '2026', 'auto'].includes(opts.era)) throw new UsageError(`unknown era ${opts.era}`);
  if (opts.era === '2026') {
    throw new UsageError('@modelcontextprotocol/sdk 1.32.2 has no 2026-07-28 (stateless) mode; use py_client.py --era 2026');
  }
  if (!['tools', 'prompts', 'resources'].includes(opts.kind)) throw new UsageError(`unknown kind ${opts.kind}`);
  const [action, ...rest] = positional;
  if (!(action in ACTIONS)) throw new UsageError(`unknown action ${action}; one of ${Object.keys(ACTIONS).join(', ')}`);
  if (rest.length !== ACTIONS[action]) {
    throw new UsageError(`${action} takes ${ACTIONS[action]} positional argument(s), got ${JSON.stringify(rest)}`);
  }
  opts.action = action;
  opts.rest = rest;
  opts.elicitContent = JSON.parse(opts.elicit);
  return opts;
}

function errorJson(err) {
  if (err instanceof McpError) {
    const out = { code: err.code, message: err.message };
    if (err.data !== undefined) out.data = err.data;
    return out;
  }
  // Transport-level errors (StreamableHTTPError carries the HTTP status as .code).
  return { code: err?.code ?? null, message: `${err?.name ?? 'Error'}: ${err?.message ?? String(err)}` };
}

class Driver {
  constructor(opts) {
    this.opts = opts;
    this.serverRequests = [];
    this.notifications = [];
    this.listeners = [];
    this.httpErrors = [];
  }

  /** fetch that records every refusal (status >= 400) for --report-refusal. */
  recordingFetch() {
    return async (url, init) => {
      const response = await fetch(url, init);
      if (response.status >= 400) {
        const body = await response.clone().text();
        this.httpErrors.push({
          method: init?.method ?? 'GET',
          status: response.status,
          wwwAuthenticate: response.headers.get('www-authenticate'),
          body: body.slice(0, 2000),
        });
      }
      return response;
    };
  }

  /** Record every server->client message by wrapping the transport's onmessage at start(). */
  record(transport) {
    const start = transport.start.bind(transport);
    transport.start = async () => {
      const inner = transport.onmessage;
      transport.onmessage = (message, extra) => {
        if (message && typeof message.method === 'string') {
          const entry = { method: message.method, params: message.params ?? null };
          if (message.id !== undefined) this.serverRequests.push(entry);
          else {
            this.notifications.push(entry);
            for (const listener of this.listeners) listener(entry);
          }
        }
        inner?.(message, extra);
      };
      return start();
    };
  }

  async connect() {
    const transport = new StreamableHTTPClientTransport(new URL(this.opts.url), {
      requestInit: { headers: this.opts.headers },
      ...(this.opts.reportRefusal ? { fetch: this.recordingFetch() } : {}),
    });
    this.record(transport);
    const client = new Client(
      { name: 'switchboard-ts-driver', version: '1.0.0' },
      { capabilities: { sampling: {}, elicitation: { form: {}, url: {} }, roots: { listChanged: true } } },
    );
    client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
      const first = request.params.messages.find((m) => m.role === 'user');
      const blocks = first ? (Array.isArray(first.content) ? first.content : [first.content]) : [];
      const text = blocks.find((b) => b.type === 'text')?.text ?? '';
      return {
        role: 'assistant',
        content: { type: 'text', text: `sampled: ${text}` },
        model: 'driver-model',
        stopReason: 'endTurn',
      };
    });
    client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: this.opts.elicitContent }));
    client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [ROOT] }));
    client.onerror = (err) => log('client error:', err?.message ?? err);
    await client.connect(transport, { timeout: this.requestTimeout() });
    return { client, transport };
  }

  requestTimeout() {
    return this.opts.timeout * 1000;
  }

  async close({ client, transport }) {
    try {
      await transport.terminateSession();
    } catch (err) {
      log('terminateSession failed:', err?.message ?? err);
    }
    await client.close();
  }

  async listAll({ client, transport }) {
    const walk = async (fetch, attr, key) => {
      const items = [];
      let cursor;
      for (let page = 0; page < 1000; page++) {
        const result = await fetch(cursor === undefined ? {} : { cursor }, { timeout: this.requestTimeout() });
        items.push(...result[attr].map(key));
        cursor = result.nextCursor;
        if (!cursor) return items;
      }
      throw new Error(`pagination of ${attr} did not end after 1000 pages`);
    };
    const caps = client.getServerCapabilities() ?? {};
    const out = {};
    out.tools = caps.tools ? await walk((p, o) => client.listTools(p, o), 'tools', (t) => t.name) : [];
    out.prompts = caps.prompts ? await walk((p, o) => client.listPrompts(p, o), 'prompts', (p) => p.name) : [];
    if (caps.resources) {
      out.resources = await walk((p, o) => client.listResources(p, o), 'resources', (r) => r.uri);
      out.resourceTemplates = await walk(
        (p, o) => client.listResourceTemplates(p, o),
        'resourceTemplates',
        (r) => r.uriTemplate,
      );
    } else {
      out.resources = [];
      out.resourceTemplates = [];
    }
    out.serverInfo = client.getServerVersion() ?? {};
    out.protocolVersion = transport.protocolVersion ?? null;
    out.capabilities = caps;
    return out;
  }

  async call({ client }, name, args, progress, signal) {
    const events = [];
    const options = { timeout: this.requestTimeout() };
    if (progress) options.onprogress = (p) => events.push({ progress: p.progress, total: p.total ?? null, message: p.message ?? null });
    if (signal) options.signal = signal;
    const out = {};
    try {
      out.result = await client.callTool({ name, arguments: args }, CallToolResultSchema, options);
    } catch (err) {
      if (signal?.aborted) throw err;
      out.error = errorJson(err);
    }
    if (progress) out.progress = events;
    return out;
  }

  /** Start the call; abort it after AFTER_MS through an AbortSignal (the SDK sends notifications/cancelled). */
  async cancel(conn, name, args, afterMs) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort('driver cancel'), afterMs);
    const out = {};
    try {
      const completed = await this.call(conn, name, args, false, controller.signal);
      out.cancelled = false;
      out.completedBeforeCancel = completed;
    } catch (err) {
      out.cancelled = controller.signal.aborted;
      if (!out.cancelled) throw err;
    } finally {
      clearTimeout(timer);
    }
    try {
      await conn.client.ping({ timeout: this.requestTimeout() });
      out.pingOk = true;
    } catch (err) {
      out.pingOk = false;
      out.pingError = errorJson(err);
    }
    return out;
  }

  async watchListChanged(conn, tool, args, kind) {
    const method = `notifications/${kind}/list_changed`;
    let resolveSeen;
    const seen = new Promise((resolve) => {
      resolveSeen = resolve;
    });
    this.listeners.push((n) => n.method === method && resolveSeen(true));
    const out = {};
    out.trigger = await this.call(conn, tool, args, false);
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(false), LIST_CHANGED_WAIT_MS);
    });
    out.listChanged = await Promise.race([seen, timeout]);
    clearTimeout(timer);
    const listing = await this.listAll(conn);
    out[kind] = listing[kind];
    return out;
  }

  /**
   * Call, wait WAIT_MS (the test expires the session meanwhile), call again.
   *
   * What SDK 1.32.2 does: a 404 on a POST carrying Mcp-Session-Id throws
   * StreamableHTTPError(404) (reported as error.code 404); the transport keeps the stale
   * session id and never re-initializes. Recovery is the application's: a new Client and
   * transport (new initialize). Output: {first, afterExpiry, sdkRecovered: false,
   * reinitialized, retry}.
   */
  async reconnectAfterExpiry(name, args, waitMs) {
    const out = { sdkRecovered: false };
    const conn = await this.connect();
    out.first = await this.call(conn, name, args, false);
    log(`first call done; waiting ${waitMs} ms`);
    console.error('READY-FOR-EXPIRY');
    await new Promise((resolve) => setTimeout(resolve, waitMs));
    out.afterExpiry = await this.call(conn, name, args, false);
    await conn.client.close();
    if (out.afterExpiry.error) {
      const fresh = await this.connect();
      out.reinitialized = true;
      out.retry = await this.call(fresh, name, args, false);
      await this.close(fresh);
    } else {
      out.reinitialized = false;
    }
    return out;
  }
}

async function run(opts, d) {
  const [a, b, c, e] = opts.rest;
  let out;
  if (opts.action === 'reconnect-after-expiry') {
    out = await d.reconnectAfterExpiry(a, JSON.parse(b), Number(c));
  } else {
    const conn = await d.connect();
    try {
      if (opts.action === 'list') out = await d.listAll(conn);
      else if (opts.action === 'call') out = await d.call(conn, a, JSON.parse(b), opts.progress);
      else if (opts.action === 'cancel') out = await d.cancel(conn, a, JSON.parse(b), Number(c));
      else if (opts.action === 'call-twice') {
        out = { first: await d.call(conn, a, JSON.parse(b), false) };
        out.second = await d.call(conn, c, JSON.parse(e), false);
      }
      else out = await d.watchListChanged(conn, a, JSON.parse(b), opts.kind);
    } finally {
      await d.close(conn);
    }
  }
  out.serverRequests = d.serverRequests;
  out.notifications = d.notifications;
  if (opts.reportRefusal) out.httpErrors = d.httpErrors;
  return out;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    log(err.message);
    return 2;
  }
  const started = Date.now();
  const d = new Driver(opts);
  try {
    const out = await run(opts, d);
    process.stdout.write(JSON.stringify(out) + '\n');
    log(`${opts.action} done in ${((Date.now() - started) / 1000).toFixed(2)}s`);
    return 0;
  } catch (err) {
    log('driver failure:', err?.stack ?? err);
    if (!(opts.reportRefusal && d.httpErrors.length > 0)) return 2;
    // The session failed after the server refused a request: that refusal is the result.
    const out = {
      refused: d.httpErrors[0],
      httpErrors: d.httpErrors,
      serverRequests: d.serverRequests,
      notifications: d.notifications,
    };
    process.stdout.write(JSON.stringify(out) + '\n');
    return 0;
  }
}

// Exit explicitly: a lingering SSE stream or timer must not keep the driver alive. stdout is a
// pipe, and pipe writes are synchronous on Linux, so the JSON line is flushed by now.
process.exit(await main());
