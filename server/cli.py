"""Command line: serve MCP over stdio, list tools, call one tool, or serve the sandbox's CleverTap API."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from server.config import load_settings, parse_tool_names
from server.policies.scrub import Scrubber, configure_logging

USAGE_EPILOG = """\
commands:
  (none)                      serve MCP over stdio
  --transport http [--host H] [--port N]
                              serve MCP over Streamable HTTP at http://H:N/mcp
  tools                       print the tool list as JSON
  call TOOL 'JSON-ARGS'       call one tool through an MCP client session; prints its structured result
  sandbox serve [--port N]    serve the sandbox's CleverTap-compatible API on 127.0.0.1

environment: MEMBRANE_TOKEN, MEMBRANE_API_URL, MEMBRANE_WORKSPACE_KEY/SECRET, MEMBRANE_TENANT_KEY,
MEMBRANE_CONNECTION_ID,
CLEVERTAP_ACCOUNT_ID, CLEVERTAP_PASSCODE, CLEVERTAP_REGION, CLEVERTAP_API_BASE_URL, CLEVERTAP_MCP_BACKEND,
CLEVERTAP_MCP_READ_ONLY, CLEVERTAP_MCP_CONFIRM, CLEVERTAP_MCP_REDACT_KEYS,
CLEVERTAP_MCP_MAX_FRAME_BYTES (largest stdio message, default 64 MiB),
CLEVERTAP_MCP_MAX_UPSTREAM_BYTES (largest CleverTap answer read, default 64 MiB) (see README)."""


def _global_flags(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--backend",
        choices=["auto", "membrane", "clevertap", "sandbox"],
        default=default,
        help="how to reach CleverTap (env CLEVERTAP_MCP_BACKEND, default auto)",
    )
    parser.add_argument(
        "--sandbox",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="use the embedded demo account (= --backend sandbox)",
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="list and allow only tools that cannot change the account (env CLEVERTAP_MCP_READ_ONLY=1)",
    )


def _safety_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tools", help="comma-separated tool names to list (env CLEVERTAP_MCP_TOOLS)")
    parser.add_argument(
        "--exclude-tools", help="comma-separated tool names to hide; beats --tools (env CLEVERTAP_MCP_EXCLUDE_TOOLS)"
    )
    parser.add_argument(
        "--redact-pii",
        action="store_true",
        default=None,
        help="mask personal data in every result: email, phone and name keys at any depth, email addresses and "
        "phone numbers anywhere (env CLEVERTAP_MCP_REDACT_PII=1)",
    )
    parser.add_argument(
        "--redact-keys",
        metavar="KEYS",
        help="comma-separated extra keys whose values --redact-pii masks, besides email, phone and name "
        "(env CLEVERTAP_MCP_REDACT_KEYS)",
    )
    parser.add_argument(
        "--audit-log", metavar="PATH", help="append one JSON line per write attempt (env CLEVERTAP_MCP_AUDIT_LOG)"
    )


def _transport_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default="stdio",
        help="stdio (default), or Streamable HTTP at /mcp (env CLEVERTAP_MCP_HTTP_TOKEN, CLEVERTAP_MCP_ALLOWED_HOSTS, "
        "CLEVERTAP_MCP_REDIS_URL, CLEVERTAP_MCP_SECRET; bounds: CLEVERTAP_MCP_HTTP_IDLE_TIMEOUT (s, default 15), "
        "CLEVERTAP_MCP_HTTP_HEADER_TIMEOUT (s, default 10), CLEVERTAP_MCP_HTTP_BODY_TIMEOUT (s without body data, "
        "default 30), CLEVERTAP_MCP_MAX_USER_RUNTIMES (per X-Membrane-Token, default 64), "
        "CLEVERTAP_MCP_USER_RUNTIMES_MEMORY_MB (default 1024))",
    )
    parser.add_argument("--host", dest="http_host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument("--port", dest="http_port", type=int, default=8000, help="HTTP port (default 8000)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clevertap-mcp",
        description="MCP server for CleverTap.",
        epilog=USAGE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_flags(parser, suppress=False)
    _safety_flags(parser)
    _transport_flags(parser)
    sub = parser.add_subparsers(dest="command")
    tools_p = sub.add_parser("tools", help="print the tool list as JSON")
    _global_flags(tools_p, suppress=True)
    call_p = sub.add_parser("call", help="call one tool and print its structured result")
    _global_flags(call_p, suppress=True)
    call_p.add_argument("tool")
    call_p.add_argument("arguments", nargs="?", default="{}", help="JSON object of arguments")
    sandbox_p = sub.add_parser("sandbox", help="the sandbox's CleverTap-compatible HTTP API")
    sandbox_sub = sandbox_p.add_subparsers(dest="sandbox_command", required=True)
    serve_p = sandbox_sub.add_parser("serve", help="serve it on 127.0.0.1")
    serve_p.add_argument("--host", default="127.0.0.1")
    serve_p.add_argument("--port", type=int, default=8765)
    serve_p.add_argument("--account-id", default="DEMO-SANDBOX")
    serve_p.add_argument("--passcode", default="sandbox")
    serve_p.add_argument(
        "--admin",
        action="store_true",
        help="enable POST /__sandbox/config (fault injection, knobs) and GET /__sandbox/stats; for tests only",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    level_name = os.environ.get("CLEVERTAP_MCP_LOG_LEVEL", "WARNING").upper()
    scrubber = Scrubber()
    configure_logging(scrubber, getattr(logging, level_name, logging.WARNING))

    if ns.command == "sandbox":
        from server.backends.sandbox import SandboxConfig, serve

        config = SandboxConfig(account_id=ns.account_id, passcode=ns.passcode)
        serve(host=ns.host, port=ns.port, config=config, admin=ns.admin)
        return 0

    backend = "sandbox" if ns.sandbox else ns.backend
    try:
        settings = load_settings(
            backend=backend,
            read_only=True if ns.read_only else None,
            tools=parse_tool_names(ns.tools),
            exclude_tools=parse_tool_names(ns.exclude_tools),
            redact_pii=ns.redact_pii,
            redact_keys=parse_tool_names(ns.redact_keys),
            audit_log=ns.audit_log,
        )
        from server.runtime import Runtime

        runtime = Runtime(settings, scrubber=scrubber)
    except ValueError as exc:
        print(f"clevertap-mcp: {exc}", file=sys.stderr)
        return 2
    import anyio

    if ns.command == "tools":
        return anyio.run(_print_tools, runtime)
    if ns.command == "call":
        try:
            arguments = json.loads(ns.arguments)
        except json.JSONDecodeError as exc:
            print(f"Input error: the arguments are not valid JSON ({exc}).")
            return 1
        if not isinstance(arguments, dict):
            print('Input error: the arguments must be a JSON object, e.g. \'{"event_name": "Charged"}\'.')
            return 1
        return anyio.run(_call, runtime, ns.tool, arguments)
    if ns.transport == "http":
        from server.transports.http import HttpOptions, serve_http

        try:
            options = HttpOptions.from_env(ns.http_host, ns.http_port, max_body_bytes=settings.max_frame_bytes)
        except ValueError as exc:
            print(f"clevertap-mcp: {exc}", file=sys.stderr)
            return 2
        return serve_http(runtime, options)
    anyio.run(_serve_stdio, runtime)
    return 0


async def _serve_stdio(runtime: Any) -> None:
    from mcp.server import NotificationOptions

    from server.codec.gcpause import settle_for_serving
    from server.protocol.app import build_server
    from server.transports.stdio import stdio_server

    server, _ = build_server(runtime)
    settle_for_serving()
    try:
        drain_s = runtime.settings.call_budget_s + 10  # an answer in flight at the end of stdin gets its budget
        async with stdio_server(runtime.settings.max_frame_bytes, drain_s) as (read, write):
            await server.run(read, write, server.create_initialization_options(NotificationOptions(tools_changed=True)))
    finally:
        await runtime.aclose()


async def _print_tools(runtime: Any) -> int:
    from mcp import Client

    from server.protocol.app import build_server

    server, _ = build_server(runtime)
    async with Client(server, mode="legacy") as client:
        listed = await client.list_tools()
    print(json.dumps([t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed.tools], indent=2))
    return 0


async def _call(runtime: Any, tool: str, arguments: dict[str, Any]) -> int:
    import mcp.types as types
    from mcp import Client

    from server.protocol.app import build_server

    server, _ = build_server(runtime)
    try:
        async with Client(server, mode="legacy") as client:
            result = await client.call_tool(tool, arguments)
    finally:
        await runtime.aclose()
    if result.is_error:
        text = "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))
        print(text)
        return 1
    print(json.dumps(result.structured_content, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
