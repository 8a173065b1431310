"""The catalog's example arguments, ready to send: fresh where they must be, with run-time values resolved.

Catalog-driven suites parametrize over ``TOOLS`` (sorted names, so ids name the tool and nothing depends on the
order of ``CATALOG``) and build arguments with ``Examples``.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from mcp import Client

from tests.helpers import ok
from tools.base import UNIQUE, ToolSpec
from tools.catalog import CATALOG, by_name

SPECS: dict[str, ToolSpec[Any, Any]] = {spec.name: spec for spec in CATALOG}
TOOLS: list[str] = sorted(SPECS)
_counter = itertools.count(1)
_SELECT = re.compile(r"^(?P<name>[^\[]+)\[(?P<key>[^=\]]+)=(?P<values>[^\]]+)\]$")


def spec(name: str) -> ToolSpec[Any, Any]:
    found = by_name(name)
    assert found is not None, name
    return found


def fresh(value: Any) -> Any:
    """``value`` with every ``UNIQUE`` marker in its strings replaced by one new number."""
    n = f"_{next(_counter)}_"

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return v.replace(UNIQUE, n)
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        return v

    return walk(value)


def pick(result: Any, path: str) -> Any:
    """The value at ``path`` (see ``tools.base.example_from``) in a tool's structured result."""
    value = result
    for segment in path.split("."):
        m = _SELECT.match(segment)
        if m is None:
            value = value[segment]
            continue
        wanted = m.group("values").split("|")
        items = value[m.group("name")]
        value = next((item for item in items if str(item.get(m.group("key"))) in wanted), None)
        assert value is not None, f"no item of {m.group('name')} has {m.group('key')} in {wanted}"
    return value


def is_reference(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"$example", "$pick"}


def references(args: Any) -> set[str]:
    """The tools whose results ``args`` needs."""
    if is_reference(args):
        return {args["$example"]}
    if isinstance(args, dict):
        return set().union(*(references(v) for v in args.values())) if args else set()
    if isinstance(args, list):
        return set().union(*(references(v) for v in args)) if args else set()
    return set()


class Examples:
    """Arguments for ``client``'s session: each call gives fresh ones, references resolved by running the tool they
    name (with its own first valid example) on the same session."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def resolve(self, value: Any) -> Any:
        if is_reference(value):
            source = spec(value["$example"])
            answer = await self.client.call_tool(source.name, await self.valid(source.name))
            return pick(ok(answer), value["$pick"])
        if isinstance(value, dict):
            return {k: await self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [await self.resolve(v) for v in value]
        return value

    async def valid(self, tool: str, index: int = 0) -> dict[str, Any]:
        resolved = await self.resolve(fresh(spec(tool).examples_valid[index]))
        assert isinstance(resolved, dict)
        return resolved

    async def invalid(self, tool: str) -> list[dict[str, Any]]:
        return [await self.resolve(fresh(args)) for args in spec(tool).examples_invalid]


def tools_where(**flags: Any) -> list[Any]:
    """``TOOLS`` filtered by spec attributes, as pytest params with the tool name as id (none: a skipped param)."""
    names = [n for n in TOOLS if all(getattr(SPECS[n], k) == v for k, v in flags.items())]
    return names or [pytest.param(None, marks=pytest.mark.skip(reason=f"no tool with {flags}"))]
