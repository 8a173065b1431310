"""The floor for cold start, idle memory and per-call latency: the smallest useful low-level ``mcp`` server.

One ``echo`` tool with an explicit schema, served over stdio exactly the way ``python -m server`` serves
(low-level ``Server`` + ``stdio_server``), so the difference to our server is our own code and nothing else.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import mcp.types as types
from mcp.server import NotificationOptions, Server, ServerRequestContext
from mcp.server.stdio import stdio_server

ECHO = types.Tool.model_validate(
    {
        "name": "echo",
        "description": "Return the arguments unchanged.",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
        "outputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
    }
)


async def list_tools(
    ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[ECHO])


async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
    args = dict(params.arguments or {})
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(args))],
        structured_content=args,
    )


async def main() -> None:
    server: Server[Any] = Server("minimal", version="0.0.0", on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options(NotificationOptions(tools_changed=True)))


if __name__ == "__main__":
    anyio.run(main)
