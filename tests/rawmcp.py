"""A raw in-memory MCP client: JSON-RPC messages go to the server exactly as built, with no client-side cleanup.

``mcp.Client`` serialises arguments before sending (NaN and infinities become ``null``, nesting deeper than ~250
levels is refused), so it cannot deliver the hostile values a hand-written client can. This one hands the server
``JSONRPCRequest`` objects over the SDK's in-memory streams.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import anyio
from mcp.shared.memory import create_client_server_memory_streams
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

from server.protocol.app import build_server
from server.runtime import Runtime

PROTOCOL_VERSION = "2025-11-25"


class RawError(Exception):
    """The server answered with a JSON-RPC error (not a tool result)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RawMcp:
    def __init__(self, read: Any, write: Any) -> None:
        self._read = read
        self._write = write
        self._ids = itertools.count(1)

    async def request(self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 30) -> Any:
        """Send one request and wait (at most ``timeout`` s) for its answer; notifications are skipped."""
        request_id = next(self._ids)
        message = JSONRPCRequest.model_construct(jsonrpc="2.0", id=request_id, method=method, params=params)
        await self._write.send(SessionMessage(message))
        with anyio.fail_after(timeout):
            while True:
                item = await self._read.receive()
                if isinstance(item, Exception):
                    raise item
                answer = item.message
                if isinstance(answer, JSONRPCResponse) and answer.id == request_id:
                    return answer.result
                if isinstance(answer, JSONRPCError) and answer.id == request_id:
                    raise RawError(answer.error.code, answer.error.message)

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        message = JSONRPCNotification(jsonrpc="2.0", method=method, params=params)
        await self._write.send(SessionMessage(message))

    async def call_tool(self, name: str, arguments: Any, *, timeout: float = 30) -> dict[str, Any]:
        """``tools/call``; returns the result as a dict (``isError``, ``content``, ``structuredContent``)."""
        result = await self.request("tools/call", {"name": name, "arguments": arguments}, timeout=timeout)
        assert isinstance(result, dict)
        return result


def result_text(result: dict[str, Any]) -> str:
    return "\n".join(str(c.get("text", "")) for c in result.get("content") or [] if isinstance(c, dict))


@contextlib.asynccontextmanager
async def raw_client(runtime: Runtime) -> AsyncIterator[RawMcp]:
    """The server on ``runtime``, initialized, behind a ``RawMcp``."""
    server, _ = build_server(runtime)
    try:
        async with (
            create_client_server_memory_streams() as (client_streams, server_streams),
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(
                lambda: server.run(server_streams[0], server_streams[1], server.create_initialization_options())
            )
            client = RawMcp(*client_streams)
            await client.request(
                "initialize",
                {
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "raw-fuzz", "version": "0"},
                },
            )
            await client.notify("notifications/initialized")
            try:
                yield client
            finally:
                await client_streams[1].aclose()
                with anyio.move_on_after(2):
                    await server_streams[1].aclose()
                tg.cancel_scope.cancel()
    finally:
        await runtime.aclose()
