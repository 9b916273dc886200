#!/usr/bin/env python3
"""A reference MCP server on the official Python SDK (`mcp` 2.3.0), speaking BOTH eras.

    py_server.py PORT        → streamable HTTP at http://127.0.0.1:PORT/mcp (loopback only)

The same endpoint answers 2025 clients (initialize + Mcp-Session-Id; server→client requests
on the SSE streams) and 2026-07-28 clients (server/discover, stateless requests; elicitation,
sampling and roots as MRTR `input_required` rounds). It is the test suite's 2026 backend and
the peer that validates `py_client.py --era 2026`. Tools:

    echo(message)            "Echo: <message>"
    slow(steps, delay_ms)    progress 1..steps (total=steps, message "step i"), then "done <steps>"
    ask_name()               elicits {"name": str}        → "Hello, <name>"
    sample_text(prompt)      samples the client's LLM      → "<sampled text> (<model>)"
    client_roots()           lists the client's roots      → "<uri> <name>" per line
    add_tool(name)           registers tool `name` at runtime and announces the tools list
                             change (2026: to `subscriptions/listen` subscribers) → "added <name>"
"""

from __future__ import annotations

import sys
from typing import Annotated

import anyio
from mcp.server.mcpserver import Context, Elicit, ListRoots, MCPServer, Resolve, Sample
from mcp_types import CreateMessageResult, ListRootsResult, SamplingMessage, TextContent
from pydantic import BaseModel

mcp = MCPServer("switchboard-py-peer")


class Name(BaseModel):
    name: str


def _ask(_: Context) -> Elicit[Name]:
    return Elicit("What is your name?", Name)


def _sample(prompt: str) -> Sample:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=prompt))
    return Sample([message], max_tokens=50)


def _roots() -> ListRoots:
    return ListRoots()


@mcp.tool()
def echo(message: str) -> str:
    """Echo the message back."""
    return f"Echo: {message}"


@mcp.tool()
async def slow(steps: int, delay_ms: int, ctx: Context) -> str:
    """Report progress `steps` times, `delay_ms` apart."""
    for i in range(1, steps + 1):
        await anyio.sleep(delay_ms / 1000)
        await ctx.report_progress(i, steps, f"step {i}")
    return f"done {steps}"


@mcp.tool()
def ask_name(person: Annotated[Name, Resolve(_ask)]) -> str:
    """Elicit a name from the user."""
    return f"Hello, {person.name}"


@mcp.tool()
def sample_text(prompt: str, sampled: Annotated[CreateMessageResult, Resolve(_sample)]) -> str:
    """Ask the client's LLM to answer `prompt`."""
    content = sampled.content
    text = content.text if isinstance(content, TextContent) else repr(content)
    return f"{text} ({sampled.model})"


@mcp.tool()
def client_roots(roots: Annotated[ListRootsResult, Resolve(_roots)]) -> str:
    """List the client's roots."""
    return "\n".join(f"{r.uri} {r.name}" for r in roots.roots)


@mcp.tool()
async def add_tool(name: str, ctx: Context) -> str:
    """Register a new tool at runtime and announce the list change."""

    def added() -> str:
        return f"I am {name}"

    mcp.add_tool(added, name=name, description="Added at runtime")
    await ctx.notify_tools_changed()
    return f"added {name}"


if __name__ == "__main__":
    mcp.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
