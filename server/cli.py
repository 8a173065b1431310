"""Command line: serve MCP over stdio, list tools, call one tool, or serve the sandbox's CleverTap API."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap
import typing
from typing import Any

from server.config import Settings, declared, environment_rows, load_settings, parse_tool_names, shown_default
from server.policies.scrub import Scrubber, configure_logging

# Settings given as flags: on the top-level parser and the tools/call commands, and on the top-level parser only.
GLOBAL_SETTINGS = ("backend", "read_only")
SAFETY_SETTINGS = ("tools", "exclude_tools", "redact_pii", "redact_keys", "audit_log")


def usage_epilog() -> str:
    variables = textwrap.fill(
        "environment (each one's default and meaning: README, Environment): "
        + ", ".join(name for name, _, _ in environment_rows()),
        width=100,
    )
    return f"""\
commands:
  (none)                      serve MCP over stdio
  --transport http [--host H] [--port N]
                              serve MCP over Streamable HTTP at http://H:N/mcp
  tools                       print the tool list as JSON
  call TOOL 'JSON-ARGS'       call one tool through an MCP client session; prints its structured result
  sandbox serve [--port N]    serve the sandbox's CleverTap-compatible API on 127.0.0.1

{variables}"""


def _setting_flag(parser: argparse.ArgumentParser, name: str, *, suppress: bool) -> None:
    """The flag of the setting ``name``, with the help text, variable and default it is declared with."""
    field, spec = Settings.model_fields[name], declared(name)
    assert spec.flag is not None, name
    words = (field.description or "").replace("`", "").replace("%", "%%").rstrip(".")
    shown = shown_default(name).replace("`", "")
    extra = f"env {spec.env}" + (f", default {shown}" if shown else "")
    options: dict[str, Any] = {"dest": name, "help": f"{words} ({extra})"}
    options["default"] = argparse.SUPPRESS if suppress else None
    choices = [c for c in typing.get_args(field.annotation) if isinstance(c, str)]
    if field.annotation is bool:
        options["action"] = "store_true"
    elif choices:
        options["choices"] = choices
    else:
        options["metavar"] = spec.metavar
    parser.add_argument(spec.flag, **options)


def _global_flags(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    _setting_flag(parser, "backend", suppress=suppress)
    parser.add_argument(
        "--sandbox",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="use the embedded demo account (= --backend sandbox)",
    )
    _setting_flag(parser, "read_only", suppress=suppress)


def _safety_flags(parser: argparse.ArgumentParser) -> None:
    for name in SAFETY_SETTINGS:
        _setting_flag(parser, name, suppress=False)


def _overrides(ns: argparse.Namespace) -> dict[str, object]:
    """The settings given as flags (None: not given, the environment or the default decides)."""
    given: dict[str, object] = {name: getattr(ns, name, None) for name in (*GLOBAL_SETTINGS, *SAFETY_SETTINGS)}
    if getattr(ns, "sandbox", False):
        given["backend"] = "sandbox"
    for name in ("tools", "exclude_tools", "redact_keys"):
        value = given[name]
        given[name] = parse_tool_names(value) if isinstance(value, str) else None
    return given


def _transport_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default="stdio",
        help="stdio (default), or Streamable HTTP at /mcp (configured by the CLEVERTAP_MCP_HTTP_*, "
        "CLEVERTAP_MCP_ALLOWED_HOSTS, CLEVERTAP_MCP_REDIS_URL, CLEVERTAP_MCP_SECRET and "
        "CLEVERTAP_MCP_*_USER_RUNTIMES* variables: see README, Environment)",
    )
    parser.add_argument("--host", dest="http_host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument("--port", dest="http_port", type=int, default=8000, help="HTTP port (default 8000)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clevertap-mcp",
        description="MCP server for CleverTap.",
        epilog=usage_epilog(),
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
    scrubber = Scrubber()
    try:
        settings: Settings | None = load_settings(None, **_overrides(ns))
        problem = None
    except ValueError as exc:
        settings, problem = None, exc
    configure_logging(scrubber, getattr(logging, settings.log_level if settings else "WARNING"))

    if ns.command == "sandbox":  # the emulator needs none of the server's settings: a bad one does not stop it
        from server.backends.sandbox import SandboxConfig, serve

        config = SandboxConfig(account_id=ns.account_id, passcode=ns.passcode)
        serve(host=ns.host, port=ns.port, config=config, admin=ns.admin)
        return 0

    try:
        if settings is None:
            raise problem or ValueError("invalid configuration")
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

        return serve_http(runtime, HttpOptions.from_settings(settings, ns.http_host, ns.http_port))
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
