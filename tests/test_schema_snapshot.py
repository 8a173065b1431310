"""Tool schemas are a public interface: any change must be deliberate.

Run ``UPDATE_SNAPSHOTS=1 pytest tests/test_schema_snapshot.py`` after an intended change and commit the new snapshot.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import make_runtime, mcp_client

pytestmark = pytest.mark.anyio

SNAPSHOT = Path(__file__).parent / "snapshots" / "tools.json"


async def _listed(**overrides: object) -> list[dict[str, object]]:
    async with mcp_client(make_runtime(**overrides)) as client:
        tools = (await client.list_tools()).tools
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]


async def test_tool_schemas_match_the_snapshot() -> None:
    current = json.dumps(await _listed(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(current)
    assert SNAPSHOT.exists(), "no snapshot yet: run with UPDATE_SNAPSHOTS=1 and commit it"
    assert current == SNAPSHOT.read_text(), "tool schemas changed: review, then UPDATE_SNAPSHOTS=1"


async def test_tools_list_stays_small() -> None:
    """The model-facing part of tools/list (name + description + inputSchema; output schemas are not counted)."""
    facing = [{k: t[k] for k in ("name", "description", "inputSchema") if k in t} for t in await _listed()]
    size = len(json.dumps(facing, separators=(",", ":"), ensure_ascii=False).encode())
    assert size <= 24_000, f"tools/list is {size} model-facing bytes"


async def test_read_only_lists_only_read_tools_and_refuses_writes() -> None:
    tools = await _listed(read_only=True)
    assert tools and all(t["annotations"]["readOnlyHint"] for t in tools)  # type: ignore[index]
    async with mcp_client(make_runtime(read_only=True)) as client:
        result = await client.call_tool(
            "clevertap_upload_events", {"events": [{"identity": "a", "evtName": "X", "evtData": {}}]}
        )
    assert result.is_error
    assert "read-only" in result.content[0].text  # type: ignore[union-attr]
