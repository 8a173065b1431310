"""Rewrites every file derived from the tool catalog, or with ``--check`` names the stale ones.

Run from the repository root: ``python scripts/regen.py`` (README tables, manifest.json tools, the schema snapshot
tests/snapshots/tools.json, the fast-start name list tools/names.py); ``python scripts/regen.py --check`` exits 1
naming each file that is out of date. A developer script: it is not part of the wheel.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script, scripts/ is sys.path[0]
    sys.path.insert(0, str(ROOT))


# (name, default, what it does). A test checks that every variable the code reads is listed here.
ENVIRONMENT: tuple[tuple[str, str, str], ...] = (
    ("MEMBRANE_TOKEN", "", "Membrane token; selects the `membrane` backend under `auto`."),
    ("MEMBRANE_API_URL", "`https://api.getmembrane.com`", "Membrane API base URL."),
    ("MEMBRANE_WORKSPACE_KEY", "", "With the two below: mint tenant tokens locally (HS256) instead of MEMBRANE_TOKEN."),
    ("MEMBRANE_WORKSPACE_SECRET", "", "Workspace secret used to sign minted tenant tokens."),
    ("MEMBRANE_TENANT_KEY", "", "Tenant (customer) key of minted tokens."),
    ("MEMBRANE_CONNECTION_ID", "", "Use this Membrane connection instead of ensuring one for clevertap.com."),
    ("CLEVERTAP_ACCOUNT_ID", "", "CleverTap account (project) id for the direct `clevertap` backend."),
    ("CLEVERTAP_PASSCODE", "", "CleverTap passcode for the direct backend. Never echoed."),
    ("CLEVERTAP_REGION", "`eu1`", "eu1, in1, sg1, us1, aps3 or mec1: must match the account's region."),
    ("CLEVERTAP_API_BASE_URL", "", "Overrides the regional URL (e.g. `http://127.0.0.1:8765` for `sandbox serve`)."),
    ("CLEVERTAP_MCP_BACKEND", "`auto`", "auto, membrane, clevertap or sandbox (flag `--backend`)."),
    ("CLEVERTAP_MCP_READ_ONLY", "`0`", "`1`: list and allow only what cannot change the account (flag `--read-only`)."),
    (
        "CLEVERTAP_MCP_CONFIRM",
        "`always`",
        "`never` turns the preview-and-confirm step off for unattended harnesses (dangerous: see below).",
    ),
    ("CLEVERTAP_MCP_TOOLS", "", "Comma-separated tools to list (flag `--tools`)."),
    ("CLEVERTAP_MCP_EXCLUDE_TOOLS", "", "Comma-separated tools to hide; beats the above (flag `--exclude-tools`)."),
    (
        "CLEVERTAP_MCP_REDACT_PII",
        "`0`",
        "`1`: mask personal data in every result (flag `--redact-pii`; scope under Safety).",
    ),
    (
        "CLEVERTAP_MCP_REDACT_KEYS",
        "",
        "Comma-separated extra keys whose values `--redact-pii` masks (flag `--redact-keys`).",
    ),
    ("CLEVERTAP_MCP_AUDIT_LOG", "", "Append one JSON line per write attempt to this file (flag `--audit-log`)."),
    ("CLEVERTAP_MCP_CALL_BUDGET", "`120`", "Seconds a tool call may take before it stops and says how to continue."),
    ("CLEVERTAP_MCP_TIMEOUT", "`60`", "Seconds to wait for one HTTP answer from CleverTap."),
    ("CLEVERTAP_MCP_CONNECT_TIMEOUT", "`10`", "Seconds to wait for a connection to CleverTap."),
    ("CLEVERTAP_MCP_RETRY_BACKOFF", "`0.5`", "First retry delay of reads (doubles, with jitter; Retry-After wins)."),
    (
        "CLEVERTAP_MCP_SCAN_STORE_MB",
        "`256`",
        "Disk kept per account for scanned closed days, so follow-up aggregations skip the export (`0`: none).",
    ),
    ("CLEVERTAP_MCP_SCHEMA_TTL", "`3600`", "Seconds a discovered schema (event names, properties) is reused."),
    (
        "CLEVERTAP_MCP_MAX_FRAME_BYTES",
        "`67108864`",
        "Largest stdio message or HTTP body (64 MiB); longer ones are refused while they stream.",
    ),
    (
        "CLEVERTAP_MCP_MAX_UPSTREAM_BYTES",
        "`67108864`",
        "Largest CleverTap answer read (64 MiB); a longer one is refused while it streams.",
    ),
    ("CLEVERTAP_MCP_HTTP_IDLE_TIMEOUT", "`15`", "Seconds an idle keep-alive HTTP connection stays open."),
    (
        "CLEVERTAP_MCP_HTTP_HEADER_TIMEOUT",
        "`10`",
        "Seconds a connection may take to send a request's headers before it is closed.",
    ),
    ("CLEVERTAP_MCP_HTTP_BODY_TIMEOUT", "`30`", "Seconds without body data before a request gets 408."),
    (
        "CLEVERTAP_MCP_MAX_USER_RUNTIMES",
        "`64`",
        "Per-user runtimes (`X-Membrane-Token`) kept; the least recently used is closed.",
    ),
    (
        "CLEVERTAP_MCP_USER_RUNTIMES_MEMORY_MB",
        "`1024`",
        "Above this process RSS, idle per-user runtimes are dropped before a new one is made.",
    ),
    ("CLEVERTAP_MCP_SECRET", "random per process", "HMAC key of confirm tokens; share it between HTTP replicas."),
    ("CLEVERTAP_MCP_HTTP_TOKEN", "", "Bearer token required by `--transport http` (mandatory off loopback)."),
    ("CLEVERTAP_MCP_ALLOWED_HOSTS", "loopback names", "Extra Host names accepted by the HTTP transport."),
    ("CLEVERTAP_MCP_REDIS_URL", "", "Keep cursor handles in Redis so any HTTP replica can continue an export."),
    ("CLEVERTAP_MCP_STATE_DIR", "`~/.config/clevertap-mcp`", "Where the Membrane connection id is remembered."),
    ("CLEVERTAP_MCP_LOG_LEVEL", "`WARNING`", "Log level of the stderr log (secrets are always masked)."),
    ("CLEVERTAP_MCP_PYTHON", "", "Bundle launcher: the Python 3.10+ interpreter to use."),
    ("CLEVERTAP_MCP_VENV", "", "Bundle launcher: where to create its virtual environment."),
)


def tools_table() -> str:
    from tools.catalog import CATALOG

    rows = ["| tool | Membrane action | read-only | destructive | what it does |", "|---|---|---|---|---|"]
    for spec in CATALOG:
        first = spec.description.split(". ")[0].rstrip(".") + "."
        rows.append(
            f"| `{spec.name}` | {spec.action_key or '—'} | {'yes' if spec.read_only else 'no'} | "
            f"{'yes' if spec.destructive else 'no'} | {first.replace('|', '/')} |"
        )
    return "\n".join(rows)


def env_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{name}` | {default or '—'} | {meaning} |" for name, default, meaning in ENVIRONMENT]
    return "\n".join(rows)


def render_readme(readme: str) -> str:
    for marker, table in (("env", env_table()), ("tools", tools_table())):
        pattern = re.compile(rf"(<!-- {marker}:start -->\n).*?(<!-- {marker}:end -->)", re.S)
        readme = pattern.sub(lambda m, t=table: m.group(1) + t + "\n" + m.group(2), readme)  # type: ignore[misc]
    return readme


def manifest_tools() -> list[dict[str, str]]:
    from tools.catalog import CATALOG

    return [{"name": s.name, "description": s.description} for s in CATALOG]


def render_manifest(text: str) -> str:
    manifest = json.loads(text)
    manifest["tools"] = manifest_tools()
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


async def listed_tools(**overrides: Any) -> list[dict[str, Any]]:
    """tools/list of the sandbox server as an MCP client receives it."""
    from mcp import Client

    from server.config import load_settings
    from server.protocol.app import build_server
    from server.runtime import Runtime

    runtime = Runtime(load_settings({}, **{"backend": "sandbox", **overrides}))
    server, _ = build_server(runtime)
    try:
        async with Client(server, mode="legacy") as client:
            tools = (await client.list_tools()).tools
    finally:
        await runtime.aclose()
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]


def render_snapshot(_: str) -> str:
    import anyio

    return json.dumps(anyio.run(listed_tools), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def render_names(_: str) -> str:
    from tools.catalog import CATALOG

    def lines(values: list[str]) -> str:
        return "".join(f"    {json.dumps(v)},\n" for v in values)

    names = [s.name for s in CATALOG]
    keys = [s.action_key for s in CATALOG if s.action_key]
    return (
        '"""Tool names and Membrane action keys without importing the tools (fast start: --tools/--exclude-tools\n'
        "are checked against them; the catalog builds its pydantic models only when a tool is first listed or\n"
        'called). Generated from the catalog by scripts/regen.py: do not edit."""\n\n'
        f"TOOL_NAMES: tuple[str, ...] = (\n{lines(names)})\n"
        "# The Membrane popular actions the typed tools stand for.\n"
        f"POPULAR_ACTION_KEYS: tuple[str, ...] = (\n{lines(keys)})\n"
    )


# Each derived file (relative to the repository root) and what makes it from its current content.
TARGETS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("README.md", render_readme),
    ("manifest.json", render_manifest),
    ("tests/snapshots/tools.json", render_snapshot),
    ("tools/names.py", render_names),
)


def stale(root: Path = ROOT) -> list[tuple[Path, str]]:
    """Every derived file under ``root`` whose content differs from what the catalog makes of it, with the new
    content."""
    out = []
    for name, render in TARGETS:
        path = root / name
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        new = render(current)
        if new != current:
            out.append((path, new))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 naming each stale file")
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree to check or rewrite (default: this one)")
    args = parser.parse_args(argv)
    changed = stale(args.root)
    for path, new in changed:
        rel = path.relative_to(args.root)
        if args.check:
            print(f"stale: {rel} (run python scripts/regen.py)", file=sys.stderr)
        else:
            path.write_text(new, encoding="utf-8")
            print(f"updated {rel}", file=sys.stderr)
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
