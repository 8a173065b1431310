"""Rewrites every file derived from the tool catalog, or with ``--check`` names the stale ones.

Run from the repository root: ``python scripts/regen.py`` (README tables: tools from the catalog, environment from
the settings' declaration in server/config.py; manifest.json tools, the schema snapshot
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


# (name, default, what it does), derived from the one declaration (``server.config.Settings``). A test checks that
# every variable the code reads is listed here.
def _environment() -> tuple[tuple[str, str, str], ...]:
    from server.config import environment_rows

    return tuple(environment_rows())


ENVIRONMENT: tuple[tuple[str, str, str], ...] = _environment()


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
