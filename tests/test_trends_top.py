"""clevertap_get_trends and clevertap_get_top_values through MCP on the sandbox, checked against the raw API, with
and without charts (image blocks, text alternatives, the chart resource, and no matplotlib unless asked)."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import mcp.types as types
import pytest
from mcp import Client
from PIL import Image, ImageStat

from server.backends.clevertap.client import CleverTapClient
from server.backends.clevertap.executor import HttpExecutor
from server.backends.sandbox import SandboxConfig, create_app
from server.protocol.app import build_server
from tests.helpers import day, err, make_runtime, mcp_client, ok
from tests.stdio_raw import StdioServer

pytestmark = pytest.mark.anyio

LAST_30 = {"from": day(-29), "to": day(0)}


def iso(yyyymmdd: int) -> str:
    return dt.date(yyyymmdd // 10000, yyyymmdd // 100 % 100, yyyymmdd % 100).isoformat()


async def raw(client: Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """The same question asked through the raw proxy tool: CleverTap's own answer."""
    out = ok(await client.call_tool("clevertap_request", {"method": "POST", "path": path, "body": body}))
    assert out["status"] == 200, out
    answer: dict[str, Any] = out["body"]
    assert answer["status"] == "success", answer
    return answer


def images(result: types.CallToolResult) -> list[types.ImageContent]:
    return [c for c in result.content if isinstance(c, types.ImageContent)]


def alt_text(result: types.CallToolResult) -> str:
    texts = [c.text for c in result.content if isinstance(c, types.TextContent)]
    assert len(texts) == 2, texts  # the JSON result, then the chart's text alternative
    return texts[1]


def check_png(block: types.ImageContent) -> Image.Image:
    assert block.mime_type == "image/png"
    png = base64.b64decode(block.data)
    assert len(png) <= 150_000
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG"
    assert image.size == (800, 450)
    # Not blank: a drawn chart has lines, bars and text, far from one flat colour.
    assert max(ImageStat.Stat(image.convert("L")).stddev) > 10
    return image


# -- trends ------------------------------------------------------------------------------------------------------------


async def test_daily_app_launched_for_30_days_is_one_call_and_matches_the_raw_api() -> None:
    async with mcp_client() as client:
        out = ok(
            await client.call_tool(
                "clevertap_get_trends", {"event_name": "App Launched", "from": "29 days ago", "to": "today"}
            )
        )
        answer = await raw(
            client,
            "/1/counts/trends.json",
            {"event_name": "App Launched", **LAST_30, "groups": {"g": {"trend_type": "daily"}}},
        )
        count = ok(await client.call_tool("clevertap_get_event_count", {"event_name": "App Launched", **LAST_30}))
    expected = {iso(int(k)): v for k, v in answer["g"].items()}
    assert len(out["series"]) == 30
    assert {p["period"]: p["value"] for p in out["series"]} == expected
    assert [p["period"] for p in out["series"]] == sorted(expected)
    assert out["total"] == sum(expected.values()) == count["count"] > 0
    assert (out["from"], out["to"], out["unit"], out["measure"]) == (iso(day(-29)), iso(day(0)), "day", "events")


async def test_weeks_months_users_and_revenue_agree_with_the_raw_api_and_the_counts() -> None:
    span = {"from": day(-60), "to": day(0)}
    async with mcp_client() as client:
        weekly = ok(await client.call_tool("clevertap_get_trends", {"event_name": "Charged", **span, "unit": "week"}))
        monthly = ok(await client.call_tool("clevertap_get_trends", {"event_name": "Charged", **span, "unit": "month"}))
        count = ok(await client.call_tool("clevertap_get_event_count", {"event_name": "Charged", **span}))
        users = ok(
            await client.call_tool("clevertap_get_trends", {"event_name": "Charged", **span, "measure": "users"})
        )
        profiles = ok(await client.call_tool("clevertap_get_profile_count", {"event_name": "Charged", **span}))
        revenue = ok(
            await client.call_tool(
                "clevertap_get_trends",
                {"event_name": "Charged", **span, "unit": "week", "measure": "sum", "property": "Amount"},
            )
        )
        raw_revenue = await raw(
            client,
            "/1/counts/trends.json",
            {"event_name": "Charged", **span, "sum_event_prop": "Amount", "groups": {"w": {"trend_type": "weekly"}}},
        )
        raw_users = await raw(
            client,
            "/1/counts/trends.json",
            {"event_name": "Charged", **span, "unique": True, "groups": {"d": {"trend_type": "daily"}}},
        )
    assert weekly["total"] == monthly["total"] == count["count"] > 0
    # Buckets start on a Monday / the 1st, except the first, which starts with the range.
    assert weekly["series"][0]["period"] == monthly["series"][0]["period"] == iso(span["from"])
    assert all(dt.date.fromisoformat(p["period"]).weekday() == 0 for p in weekly["series"][1:])
    assert all(p["period"].endswith("-01") for p in monthly["series"][1:])
    assert len(monthly["series"]) in (3, 4)
    # Unique users per day, and the range's distinct users as the total (not the sum of the days).
    assert [p["value"] for p in users["series"]] == [raw_users["d"][k] for k in sorted(raw_users["d"])]
    assert users["total"] == profiles["count"] < sum(p["value"] for p in users["series"])
    assert [p["value"] for p in revenue["series"]] == [raw_revenue["w"][k] for k in sorted(raw_revenue["w"])]
    assert revenue["total"] == pytest.approx(sum(raw_revenue["w"].values()), abs=0.01)
    assert revenue["property"] == "Amount" and revenue["measure"] == "sum"


async def test_trends_take_the_same_filters_as_counts() -> None:
    flt = {"event_properties": [{"name": "Amount", "operator": "greater_than", "value": 100}]}
    async with mcp_client() as client:
        everything = ok(await client.call_tool("clevertap_get_trends", {"event_name": "Charged", **LAST_30}))
        big = ok(await client.call_tool("clevertap_get_trends", {"event_name": "Charged", **LAST_30, **flt}))
        count = ok(await client.call_tool("clevertap_get_event_count", {"event_name": "Charged", **LAST_30, **flt}))
    assert 0 < big["total"] == count["count"] < everything["total"]


async def test_an_unknown_event_is_a_clevertap_error_not_a_crash() -> None:
    async with mcp_client() as client:
        message = err(await client.call_tool("clevertap_get_trends", {"event_name": "charged", **LAST_30}))
        assert "Invalid event" in message
        assert ok(await client.call_tool("clevertap_get_trends", {"event_name": "Charged", **LAST_30}))["total"] > 0


async def test_an_unfinished_trend_continues_with_its_req_id() -> None:
    # The first answer is 'partial' and the first poll succeeds. A first poll later than the budget ends the
    # first call before it polls, so it must hand back a req_id; the second call picks the answer up with it.
    app = create_app(SandboxConfig(seed_profiles=300, seed_events=12_000, trends_partial_polls=1))
    runtime = make_runtime({"CLEVERTAP_MCP_CALL_BUDGET": "2"})
    runtime._executor = HttpExecutor.in_process(
        app, account_id="DEMO-SANDBOX", passcode="sandbox", local_actions=runtime
    )
    runtime._api = CleverTapClient(runtime._executor, poll_interval_s=60.0, first_poll_s=60.0, poll_grace_s=0.0)
    args = {"event_name": "App Launched", "from": day(-6), "to": day(0)}
    async with mcp_client(runtime) as client:
        await client.call_tool(
            "clevertap_real_time_user_count", {}
        )  # loads the sandbox's data before the budget counts
        first = ok(await client.call_tool("clevertap_get_trends", args))
        assert first["done"] is False and first["series"] == []
        assert "req_id" in first["next_step"]
        second = ok(await client.call_tool("clevertap_get_trends", {**args, "req_id": first["req_id"]}))
    assert second["done"] is True
    assert len(second["series"]) == 7 and second["total"] == sum(p["value"] for p in second["series"]) > 0


# -- top values --------------------------------------------------------------------------------------------------------


async def test_top_values_match_the_raw_api() -> None:
    async with mcp_client() as client:
        cities = ok(
            await client.call_tool(
                "clevertap_get_top_values",
                {"event_name": "Charged", **LAST_30, "property": "City", "property_type": "profile", "top_n": 5},
            )
        )
        answer = await raw(
            client,
            "/1/counts/top.json",
            {
                "event_name": "Charged",
                **LAST_30,
                "groups": {"c": {"property_type": "profile_fields", "name": "City", "top_n": 5}},
            },
        )
        payment = ok(
            await client.call_tool(
                "clevertap_get_top_values", {"event_name": "Charged", **LAST_30, "property": "Payment mode"}
            )
        )
        amounts = ok(
            await client.call_tool(
                "clevertap_get_top_values", {"event_name": "Charged", **LAST_30, "property": "Amount"}
            )
        )
        count = ok(await client.call_tool("clevertap_get_event_count", {"event_name": "Charged", **LAST_30}))
    expected = answer["c"]["STR"]
    assert cities["kind"] == "values" and len(cities["values"]) == 5
    assert {v["value"]: v["count"] for v in cities["values"]} == expected
    counts = [v["count"] for v in cities["values"]]
    assert counts == sorted(counts, reverse=True) and cities["total"] == sum(counts)
    # Every Charged event has a payment mode and an amount: all values together add up to the event count.
    assert payment["total"] == amounts["total"] == count["count"]
    assert amounts["kind"] == "ranges"
    starts = [float(v["value"].split("-")[0]) for v in amounts["values"]]
    assert starts == sorted(starts)


async def test_top_values_of_a_missing_property_say_so() -> None:
    async with mcp_client() as client:
        result = await client.call_tool(
            "clevertap_get_top_values", {"event_name": "Charged", **LAST_30, "property": "No Such Thing", "chart": True}
        )
    out = ok(result)
    assert out["values"] == [] and out["total"] == 0
    assert "No Such Thing" in out["next_step"]
    # A chart of nothing says so, in the picture (an image nearly all background) and in the text.
    image = Image.open(io.BytesIO(base64.b64decode(images(result)[0].data)))
    assert image.size == (800, 450)
    assert "No data" in alt_text(result)


# -- charts ------------------------------------------------------------------------------------------------------------


def numbers_in(alt: str) -> dict[str, float]:
    return {k.strip(): float(v) for k, v in re.findall(r"([^,;:\n]+?) = (-?[0-9.]+)", alt)}


async def test_trend_chart_is_a_png_whose_text_carries_the_same_numbers() -> None:
    args = {"event_name": "Charged", **LAST_30, "measure": "sum", "property": "Amount"}
    async with mcp_client() as client:
        result = await client.call_tool("clevertap_get_trends", {**args, "chart": True})
        plain = await client.call_tool("clevertap_get_trends", args)
    out = ok(result)
    assert ok(plain) == out  # the chart changes nothing in the structured result
    assert images(plain) == []
    (block,) = images(result)
    check_png(block)
    alt = alt_text(result)
    assert "Charged" in alt and out["from"] in alt and out["to"] in alt and "Sum of Amount" in alt
    assert numbers_in(alt) == {p["period"]: pytest.approx(p["value"]) for p in out["series"]}


async def test_top_values_chart_is_a_bar_png_whose_text_carries_the_same_numbers() -> None:
    args = {"event_name": "Charged", **LAST_30, "property": "City", "property_type": "profile", "chart": True}
    async with mcp_client() as client:
        result = await client.call_tool("clevertap_get_top_values", args)
    out = ok(result)
    check_png(images(result)[0])
    alt = alt_text(result)
    assert alt.startswith("Bar chart:") and "City" in alt
    assert numbers_in(alt) == {v["value"]: v["count"] for v in out["values"]}


async def test_each_chart_is_also_a_resource_kept_within_bounds() -> None:
    runtime = make_runtime()
    server, app = build_server(runtime)
    app.charts.max_charts = 2
    args = {"event_name": "App Launched", "from": day(-6), "to": day(0), "chart": True}
    try:
        async with Client(server, mode="legacy") as client:
            templates = await client.list_resource_templates()
            assert [t.uri_template for t in templates.resource_templates] == ["clevertap://charts/{id}"]
            uris, pngs = [], []
            for unit in ("day", "week", "month"):
                result = await client.call_tool("clevertap_get_trends", {**args, "unit": unit})
                found = re.search(r"clevertap://charts/[\w-]+", alt_text(result))
                assert found is not None
                uris.append(found.group(0))
                pngs.append(images(result)[0].data)
            listed = [str(r.uri) for r in (await client.list_resources()).resources]
            assert [u for u in listed if u.startswith("clevertap://charts/")] == uris[1:]
            for uri, png in zip(uris[1:], pngs[1:], strict=True):
                (content,) = (await client.read_resource(uri)).contents
                assert isinstance(content, types.BlobResourceContents)
                assert content.mime_type == "image/png" and content.blob == png
            with pytest.raises(Exception, match="call the tool again with chart=true"):
                await client.read_resource(uris[0])
            assert app.charts.bytes == sum(len(base64.b64decode(p)) for p in pngs[1:])
    finally:
        await runtime.aclose()
    # The byte bound: one chart larger than the budget still stays, alone, until the next one comes.
    from server.protocol.charts import ChartStore
    from tools.charts import Chart

    store = ChartStore(max_charts=10, max_bytes=1000)
    first, second = store.put(Chart(png=b"x" * 800, alt="a")), store.put(Chart(png=b"y" * 800, alt="b"))
    assert store.get(first.id) is None and store.get(second.id) is not None and store.bytes == 800


def test_no_chart_no_matplotlib() -> None:
    """Calls without chart never load matplotlib (nor numpy, PIL) into the server; the same calls asking for a chart
    then do (the check has teeth). Seen from outside: their compiled modules in the server process's memory map."""
    calls = (
        ("clevertap_get_trends", {"event_name": "Charged", "from": "7 days ago", "to": "today"}),
        (
            "clevertap_get_top_values",
            {"event_name": "Charged", "from": "7 days ago", "to": "today", "property": "Currency"},
        ),
    )
    server = StdioServer(["--sandbox"])
    loaded: dict[bool, list[str]] = {}
    try:
        server.initialize()
        for chart in (False, True):
            for tool, args in calls:
                answer = server.call_tool(tool, {**args, "chart": chart})
                assert answer["result"]["isError"] is False, answer
            maps = Path(f"/proc/{server.pid}/maps").read_text()
            loaded[chart] = [package for package in ("matplotlib", "numpy", "PIL") if f"/{package}/" in maps]
    finally:
        server.close()
    assert loaded[False] == []
    assert loaded[True] != []


def test_charts_of_one_runtime_are_invisible_to_another() -> None:
    """Over HTTP each Membrane user has their own runtime sharing one store: neither lists nor reads the other's."""
    from server.protocol.charts import ChartStore
    from tools.charts import Chart

    alice, bob = make_runtime(), make_runtime()
    store = ChartStore()
    mine = store.put(Chart(png=b"png", alt="alice's chart"), owner=alice)
    assert [s.id for s in store.all(alice)] == [mine.id] and store.get(mine.id, alice) is mine
    assert store.all(bob) == [] and store.get(mine.id, bob) is None and store.get(mine.id) is None
