"""clevertap_aggregate_events with chart=true: the first metric as a picture, through MCP on the sandbox."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.helpers import day, mcp_client, ok
from tests.test_trends_top import alt_text, check_png, images

pytestmark = pytest.mark.anyio

WEEK: dict[str, Any] = {"event_name": "Charged", "from": day(-7), "to": day(-1)}


def numbers_in(alt: str) -> dict[str, float]:
    """``label = 12.5`` pairs of a chart's text alternative (a sentence's final full stop is not a decimal point)."""
    return {k.strip(): float(v) for k, v in re.findall(r"([^,;:\n]+?) = (-?\d+(?:\.\d+)?)", alt)}


async def test_grouped_values_are_bars_whose_text_carries_the_same_numbers() -> None:
    args = {**WEEK, "group_by": ["platform"], "metrics": ["sum:Amount", "count"]}
    async with mcp_client() as client:
        charted = await client.call_tool("clevertap_aggregate_events", {**args, "chart": True})
        plain = await client.call_tool("clevertap_aggregate_events", args)
    out = ok(charted)
    assert {k: v for k, v in ok(plain).items() if k not in ("source", "method", "records_scanned")} == {
        k: v for k, v in out.items() if k not in ("source", "method", "records_scanned")
    }
    assert images(plain) == []
    check_png(images(charted)[0])
    alt = alt_text(charted)
    assert alt.startswith("Bar chart:") and "sum:Amount" in alt and "platform" in alt
    assert numbers_in(alt) == {row["platform"]: pytest.approx(row["sum:Amount"]) for row in out["groups"]}


async def test_a_period_group_is_a_line_per_value_of_the_second_group() -> None:
    args = {**WEEK, "group_by": ["day", "platform"], "metrics": ["count"], "limit": 100, "chart": True}
    async with mcp_client() as client:
        result = await client.call_tool("clevertap_aggregate_events", args)
    out = ok(result)
    check_png(images(result)[0])
    alt = alt_text(result)
    assert alt.startswith("Line chart:") and "Day (UTC)" in alt
    for platform in {row["platform"] for row in out["groups"]}:
        assert f"{platform}:" in alt or f"{platform} " in alt
    points = sum(alt.count(f"{row['day']} = ") for row in out["groups"][:1])
    assert points >= 1


async def test_totals_alone_are_one_bar() -> None:
    async with mcp_client() as client:
        result = await client.call_tool("clevertap_aggregate_events", {**WEEK, "metrics": ["count"], "chart": True})
    out = ok(result)
    check_png(images(result)[0])
    assert numbers_in(alt_text(result)) == {"count": out["totals"]["count"]}
