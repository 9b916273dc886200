#!/usr/bin/env python3
"""Test driver: a real MCP client built on the official Python SDK (`mcp` 2.3.0).

Switchboard's Rust integration tests run this (through tests/common/peers.rs) to
drive a server - the gateway, or a reference server - exactly as a Python SDK
client would. One invocation = one client session = one JSON object on stdout.

    py_client.py --url URL [--era legacy|2026|auto] [--elicit JSON] [--header 'K: V']...
                 [--timeout SECONDS] [--token TOKEN] [--report-refusal] ACTION [ARGS...]

Actions (same CLI and JSON shapes as ts_client.mjs):
    list                                    tools/prompts/resources/templates (paginated) + server info
    call NAME JSON_ARGS [--progress]        {"result": CallToolResult} or {"error": {code, message}}
    cancel NAME JSON_ARGS AFTER_MS          {"cancelled": bool, "pingOk": bool}
    watch-list-changed TOOL JSON_ARGS [--kind tools|prompts|resources]
                                            {"listChanged": bool, "<kind>": [...]}
    reconnect-after-expiry NAME JSON_ARGS WAIT_MS
                                            see reconnect_after_expiry() below
    call-twice NAME1 JSON_ARGS1 NAME2 JSON_ARGS2
                                            {"first": <call>, "second": <call>}, one session

Every output also carries "serverRequests" (server->client requests answered by
the driver's handlers, as {method, params}; in 2026 these are the `inputRequests` of
`input_required` results, which the SDK routes to the same handlers) and
"notifications" (server notifications received, as {method, params}).
Exit code 0 unless the driver itself broke (bad CLI, crash, connection failure);
a JSON-RPC error from the server is reported as {"error": {...}} with exit 0.

Auth: `--token TOKEN` (or the SWITCHBOARD_TOKEN environment variable) sends
`Authorization: Bearer TOKEN` on every request (an explicit --header Authorization wins).
`--report-refusal`: every HTTP response >= 400 is recorded as {method, status,
wwwAuthenticate, body} in "httpErrors"; when the session then fails (e.g. a 401 on
initialize), the driver prints {"refused": <first HTTP error>, "httpErrors": [...], ...}
and exits 0 instead of 2 (the SDK itself reports a refusal only as JSON-RPC error -32603).

Eras: `legacy` (default) = initialize handshake + Mcp-Session-Id (2025-11-25);
`2026` = the stateless 2026-07-28 protocol (no handshake; per-request _meta,
server->client requests arrive as MRTR inputRequests and are answered by the same
callbacks); `auto` = SDK probes server/discover and falls back to legacy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

ROOT = {"uri": "file:///tmp/driver-root", "name": "driver-root"}
ERA_MODES = {"legacy": "legacy", "2026": "2026-07-28", "auto": "auto"}
LIST_CHANGED_WAIT_S = 10.0


def log(*parts: Any) -> None:
    print("[py_client]", *parts, file=sys.stderr, flush=True)


def dump(model: Any) -> Any:
    """Pydantic model -> wire-shaped JSON: camelCase aliases, only the fields that were set
    (for parsed results: those on the wire, so no SDK defaults such as resultType appear)."""
    if model is None:
        return None
    if hasattr(model, "model_dump"):
        return model.model_dump(by_alias=True, mode="json", exclude_unset=True)
    return model


def error_json(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, MCPError):
        err: dict[str, Any] = {"code": exc.error.code, "message": exc.error.message}
        if exc.error.data is not None:
            err["data"] = exc.error.data
        return err
    return {"code": None, "message": f"{type(exc).__name__}: {exc}"}


class Driver:
    """Holds the recorded traffic and the deterministic client-side handlers."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server_requests: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self.elicit_content = json.loads(args.elicit)
        self.list_changed = anyio.Event()
        self.watch_method: str | None = None
        self.http_errors: list[dict[str, Any]] = []

    # -- HTTP ------------------------------------------------------------------------
    def headers(self) -> dict[str, str]:
        pairs = (h.split(":", 1) for h in self.args.header)
        headers = {k.strip(): v.strip() for k, v in pairs}
        if self.args.token and not any(k.lower() == "authorization" for k in headers):
            headers["Authorization"] = f"Bearer {self.args.token}"
        return headers

    async def on_response(self, response: Any) -> None:
        """httpx response hook: record every refusal (status >= 400) for --report-refusal."""
        if response.status_code < 400:
            return
        body = (await response.aread()).decode("utf-8", "replace")
        self.http_errors.append(
            {
                "method": response.request.method,
                "status": response.status_code,
                "wwwAuthenticate": response.headers.get("www-authenticate"),
                "body": body[:2000],
            }
        )

    # -- server -> client requests -------------------------------------------------
    async def on_sampling(self, ctx: Any, params: types.CreateMessageRequestParams) -> Any:
        self.server_requests.append({"method": "sampling/createMessage", "params": dump(params)})
        text = ""
        for message in params.messages:
            if message.role == "user":
                content = message.content
                blocks = content if isinstance(content, list) else [content]
                text = next((b.text for b in blocks if getattr(b, "type", None) == "text"), "")
                break
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=f"sampled: {text}"),
            model="driver-model",
            stop_reason="endTurn",
        )

    async def on_elicitation(self, ctx: Any, params: Any) -> Any:
        self.server_requests.append({"method": "elicitation/create", "params": dump(params)})
        return types.ElicitResult(action="accept", content=self.elicit_content)

    async def on_roots(self, ctx: Any) -> Any:
        self.server_requests.append({"method": "roots/list", "params": None})
        return types.ListRootsResult(roots=[types.Root(**ROOT)])

    # -- server notifications ------------------------------------------------------
    async def on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            log("transport exception:", repr(message))
            return
        raw = dump(message)
        method = raw.get("method") if isinstance(raw, dict) else None
        self.notifications.append({"method": method, "params": raw.get("params") if isinstance(raw, dict) else None})
        if method is not None and method == self.watch_method:
            self.list_changed.set()

    # -- connection ----------------------------------------------------------------
    async def connect(self, stack: AsyncExitStack) -> Client:
        http = await stack.enter_async_context(
            httpx2.AsyncClient(
                headers=self.headers(),
                event_hooks={"response": [self.on_response]} if self.args.report_refusal else None,
                trust_env=False,  # loopback only: never route through an environment proxy
                timeout=httpx2.Timeout(30.0, read=300.0),
            )
        )
        client = Client(
            streamable_http_client(self.args.url, http_client=http),
            mode=ERA_MODES[self.args.era],
            sampling_callback=self.on_sampling,
            elicitation_callback=self.on_elicitation,
            list_roots_callback=self.on_roots,
            message_handler=self.on_message,
            client_info=types.Implementation(name="switchboard-py-driver", version="1.0.0"),
            read_timeout_seconds=self.args.timeout,
            cache=None,  # every list must reach the server: the tests observe the wire
        )
        return await stack.enter_async_context(client)

    # -- actions -------------------------------------------------------------------
    async def list_all(self, client: Client) -> dict[str, Any]:
        out: dict[str, Any] = {}

        async def walk(fetch: Any, attr: str, key: Any) -> list[Any]:
            items: list[Any] = []
            cursor = None
            for _ in range(1000):
                page = await fetch(cursor=cursor)
                items += [key(x) for x in getattr(page, attr)]
                cursor = page.next_cursor
                if not cursor:
                    return items
            raise RuntimeError(f"pagination of {attr} did not end after 1000 pages")

        caps = client.server_capabilities
        # `--era 2026` adopts 2026-07-28 without server/discover, so the server's capabilities
        # are unknown (all unset): then every list is tried and -32601 reads as "none".
        unknown = client.session.discover_result is not None and caps == types.ServerCapabilities()

        async def maybe(declared: Any, fetch: Any, attr: str, key: Any) -> list[Any]:
            if not (declared or unknown):
                return []
            try:
                return await walk(fetch, attr, key)
            except MCPError as exc:
                if unknown and exc.error.code == types.METHOD_NOT_FOUND:
                    return []
                raise

        out["tools"] = await maybe(caps.tools, client.list_tools, "tools", lambda t: t.name)
        out["prompts"] = await maybe(caps.prompts, client.list_prompts, "prompts", lambda p: p.name)
        out["resources"] = await maybe(caps.resources, client.list_resources, "resources", lambda r: str(r.uri))
        out["resourceTemplates"] = await maybe(
            caps.resources, client.list_resource_templates, "resource_templates", lambda r: r.uri_template
        )
        out["serverInfo"] = dump(client.server_info) or {}
        out["protocolVersion"] = client.protocol_version
        out["capabilities"] = dump(caps)
        return out

    async def call(self, client: Client, name: str, arguments: dict[str, Any], progress: bool) -> dict[str, Any]:
        events: list[dict[str, Any]] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            events.append({"progress": value, "total": total, "message": message})

        out: dict[str, Any] = {}
        try:
            result = await client.call_tool(name, arguments, progress_callback=on_progress if progress else None)
            out["result"] = dump(result)
        except MCPError as exc:
            out["error"] = error_json(exc)
        if progress:
            out["progress"] = events
        return out

    async def cancel(self, client: Client, name: str, arguments: dict[str, Any], after_ms: int) -> dict[str, Any]:
        """Start the call, abandon it after AFTER_MS through anyio cancellation.

        The SDK's dispatcher sends `notifications/cancelled` for an abandoned
        request (legacy) or aborts the request's POST stream (2026).
        """
        completed: dict[str, Any] = {}
        with anyio.move_on_after(after_ms / 1000) as scope:
            try:
                completed["result"] = dump(await client.call_tool(name, arguments))
            except MCPError as exc:
                completed["error"] = error_json(exc)
        out: dict[str, Any] = {"cancelled": scope.cancelled_caught}
        if completed:
            out["completedBeforeCancel"] = completed
        out["pingOk"], ping_error = await self.ping(client)
        if ping_error:
            out["pingError"] = ping_error
        return out

    async def ping(self, client: Client) -> tuple[bool, dict[str, Any] | None]:
        """Prove the session is alive: `ping` (legacy) or a tools/list round trip (2026 has no ping)."""
        try:
            if client.protocol_version in types_modern():
                await client.list_tools(cache_mode="bypass")
            else:
                await client.session.send_ping()
            return True, None
        except Exception as exc:  # any failure means "not alive"; report it
            return False, error_json(exc)

    async def watch_list_changed(
        self, client: Client, tool: str, arguments: dict[str, Any], kind: str
    ) -> dict[str, Any]:
        self.watch_method = f"notifications/{kind}/list_changed"
        self.list_changed = anyio.Event()  # only changes after the trigger count
        out: dict[str, Any] = {}
        if client.protocol_version in types_modern():
            # 2026: change notifications only flow on a subscriptions/listen stream.
            async with client.listen(**{f"{kind}_list_changed": True}) as sub:
                out["trigger"] = await self.call(client, tool, arguments, False)
                with anyio.move_on_after(LIST_CHANGED_WAIT_S):
                    async for _event in sub:
                        self.list_changed.set()
                        break
        else:
            out["trigger"] = await self.call(client, tool, arguments, False)
            with anyio.move_on_after(LIST_CHANGED_WAIT_S):
                await self.list_changed.wait()
        out["listChanged"] = self.list_changed.is_set()
        listing = await self.list_all(client)
        out[kind] = listing["resources" if kind == "resources" else kind]
        return out

    async def reconnect_after_expiry(self, name: str, arguments: dict[str, Any], wait_ms: int) -> dict[str, Any]:
        """Call, wait WAIT_MS (the test expires the session meanwhile), call again.

        What mcp 2.3.0 does: a 404 on a request carrying Mcp-Session-Id surfaces as
        an MCPError "Session terminated" (code -32600); the SDK does NOT re-initialize
        by itself. Recovery is the application's: open a new Client (new initialize).
        Output: {"first", "afterExpiry", "sdkRecovered": false, "reinitialized": bool,
        "retry", "sessionChanged"}.
        """
        out: dict[str, Any] = {"sdkRecovered": False}
        async with AsyncExitStack() as stack:
            client = await self.connect(stack)
            out["first"] = await self.call(client, name, arguments, False)
            log(f"first call done; waiting {wait_ms} ms")
            print("READY-FOR-EXPIRY", file=sys.stderr, flush=True)
            await anyio.sleep(wait_ms / 1000)
            try:
                out["afterExpiry"] = await self.call(client, name, arguments, False)
            except Exception as exc:  # transport-level failures are data here
                out["afterExpiry"] = {"error": error_json(exc)}
        if "error" in out["afterExpiry"]:
            async with AsyncExitStack() as stack:
                client = await self.connect(stack)
                out["reinitialized"] = True
                out["retry"] = await self.call(client, name, arguments, False)
        else:
            out["reinitialized"] = False
        return out


def types_modern() -> tuple[str, ...]:
    from mcp_types.version import MODERN_PROTOCOL_VERSIONS

    return tuple(MODERN_PROTOCOL_VERSIONS)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--era", choices=sorted(ERA_MODES), default="legacy")
    p.add_argument("--elicit", default='{"confirm": true}', help="content returned when accepting an elicitation")
    p.add_argument("--header", action="append", default=[], help="extra HTTP header 'Name: value' (repeatable)")
    p.add_argument("--timeout", type=float, default=30.0, help="per-request read timeout, seconds")
    p.add_argument("--progress", action="store_true", help="call: request progress with a progress token")
    p.add_argument("--kind", choices=["tools", "prompts", "resources"], default="tools")
    p.add_argument(
        "--token",
        default=os.environ.get("SWITCHBOARD_TOKEN") or None,
        help="bearer token for every request (default: $SWITCHBOARD_TOKEN)",
    )
    p.add_argument(
        "--report-refusal",
        action="store_true",
        help='record HTTP errors in "httpErrors"; a session that fails after one prints {"refused": ...}, exit 0',
    )
    p.add_argument(
        "action", choices=["list", "call", "cancel", "watch-list-changed", "reconnect-after-expiry", "call-twice"]
    )
    p.add_argument("rest", nargs="*")
    args = p.parse_args(argv)
    need = {"list": 0, "call": 2, "cancel": 3, "watch-list-changed": 2, "reconnect-after-expiry": 3, "call-twice": 4}[
        args.action
    ]
    if len(args.rest) != need:
        p.error(f"{args.action} takes {need} positional argument(s), got {args.rest!r}")
    return args


async def run(args: argparse.Namespace, d: Driver) -> dict[str, Any]:
    rest = args.rest
    started = time.monotonic()
    if args.action == "reconnect-after-expiry":
        out = await d.reconnect_after_expiry(rest[0], json.loads(rest[1]), int(rest[2]))
    else:
        async with AsyncExitStack() as stack:
            client = await d.connect(stack)
            if args.action == "list":
                out = await d.list_all(client)
            elif args.action == "call":
                out = await d.call(client, rest[0], json.loads(rest[1]), args.progress)
            elif args.action == "cancel":
                out = await d.cancel(client, rest[0], json.loads(rest[1]), int(rest[2]))
            elif args.action == "call-twice":
                out = {"first": await d.call(client, rest[0], json.loads(rest[1]), False)}
                out["second"] = await d.call(client, rest[2], json.loads(rest[3]), False)
            else:
                out = await d.watch_list_changed(client, rest[0], json.loads(rest[1]), args.kind)
    out["serverRequests"] = d.server_requests
    out["notifications"] = d.notifications
    if args.report_refusal:
        out["httpErrors"] = d.http_errors
    log(f"{args.action} done in {time.monotonic() - started:.2f}s")
    return out


def main() -> int:
    args = parse_args(sys.argv[1:])
    d = Driver(args)
    try:
        out = anyio.run(run, args, d)
    except BaseException as exc:  # the driver itself broke: say why on stderr, exit non-zero
        import traceback

        traceback.print_exc(file=sys.stderr)
        log("driver failure:", repr(exc))
        if not (args.report_refusal and d.http_errors):
            return 2
        # The session failed after the server refused a request: that refusal is the result.
        out = {
            "refused": d.http_errors[0],
            "httpErrors": d.http_errors,
            "serverRequests": d.server_requests,
            "notifications": d.notifications,
        }
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
