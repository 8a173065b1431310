"""Tool schemas are a public interface: any change must be deliberate, and what the model pays for stays small.

After an intended change run ``python scripts/regen.py`` and commit the new snapshot with the change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.regen import listed_tools, render_snapshot

pytestmark = pytest.mark.anyio

SNAPSHOT = Path(__file__).parent / "snapshots" / "tools.json"
# What every request pays for: name, description and inputSchema of all tools together (output schemas and
# annotations do not reach the model's context on the clients we know), shared by every tool present and future.
MODEL_FACING_BUDGET = 24 * 1024


def test_tool_schemas_match_the_snapshot() -> None:
    assert SNAPSHOT.exists(), "no snapshot yet: run python scripts/regen.py and commit it"
    assert render_snapshot("") == SNAPSHOT.read_text(), "tool schemas changed: review, then python scripts/regen.py"


async def test_what_the_model_pays_for_stays_inside_the_budget() -> None:
    tools = await listed_tools()
    facing = [{k: t[k] for k in ("name", "description", "inputSchema") if k in t} for t in tools]
    size = len(json.dumps(facing, separators=(",", ":"), ensure_ascii=False).encode())
    assert size <= MODEL_FACING_BUDGET, f"name+description+inputSchema of all tools take {size} bytes"
    assert all(set(t) >= {"name", "description", "inputSchema"} for t in tools)
