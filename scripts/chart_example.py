"""Draw the README's example chart from the sandbox, through a real MCP client session, into docs/.

    .venv/bin/python scripts/chart_example.py          # writes docs/chart-revenue-per-day.png

The sandbox is pinned to a fixed day so that the picture only changes when the data or the drawing code does.
"""

from __future__ import annotations

import base64
import datetime as dt
import sys
from pathlib import Path

import anyio
import mcp.types as types
from mcp import Client

from server.backends.clevertap.executor import HttpExecutor
from server.backends.sandbox import SandboxConfig, create_app
from server.config import load_settings
from server.protocol.app import build_server
from server.runtime import SANDBOX_ACCOUNT_ID, SANDBOX_PASSCODE, Runtime

ANCHOR = dt.date(2026, 11, 30)
OUT = Path(__file__).resolve().parent.parent / "docs" / "chart-revenue-per-day.png"
ARGS = {
    "event_name": "Charged",
    "from": (ANCHOR - dt.timedelta(days=30)).isoformat(),
    "to": (ANCHOR - dt.timedelta(days=1)).isoformat(),
    "measure": "sum",
    "property": "Amount",
    "chart": True,
}


def sandbox_runtime() -> Runtime:
    app = create_app(SandboxConfig(account_id=SANDBOX_ACCOUNT_ID, passcode=SANDBOX_PASSCODE, anchor=ANCHOR))

    def pinned_sandbox(runtime: Runtime) -> HttpExecutor:
        return HttpExecutor.in_process(
            app, account_id=SANDBOX_ACCOUNT_ID, passcode=SANDBOX_PASSCODE, local_actions=runtime
        )

    return Runtime(load_settings({}, backend="sandbox"), make_executor=pinned_sandbox)


async def main() -> int:
    runtime = sandbox_runtime()
    server, _ = build_server(runtime)
    try:
        async with Client(server, mode="legacy") as client:
            result = await client.call_tool("clevertap_get_trends", ARGS)
    finally:
        await runtime.aclose()
    images = [c for c in result.content if isinstance(c, types.ImageContent)]
    if result.is_error or not images:
        print(f"no chart: {result.content}", file=sys.stderr)
        return 1
    OUT.write_bytes(base64.b64decode(images[0].data))
    total = (result.structured_content or {}).get("total")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes); total revenue {total}")
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
