"""The floor for Streamable HTTP throughput: the minimal echo server, stateless, JSON answers, on uvicorn.

Served the way ``clevertap-mcp --transport http`` serves (the SDK's ``StreamableHTTPSessionManager`` with
``stateless=True`` and ``json_response=True`` under Starlette and uvicorn), so the difference is our own code.

    python bench/floors/minimal_http.py --port N
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from mcp.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

sys.path.insert(0, str(Path(__file__).resolve().parent))
from minimal_server import call_tool, list_tools


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    ns = parser.parse_args()
    server: Server[Any] = Server("minimal", version="0.0.0", on_list_tools=list_tools, on_call_tool=call_tool)
    manager = StreamableHTTPSessionManager(server, json_response=True, stateless=True)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    class Endpoint:  # a class instance, so starlette's Route calls it as a plain ASGI app (as our server does)
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await manager.handle_request(scope, receive, send)

    app = Starlette(routes=[Route("/mcp", endpoint=Endpoint())], lifespan=lifespan)
    uvicorn.run(app, host="127.0.0.1", port=ns.port, log_level="warning", server_header=False)


if __name__ == "__main__":
    main()
