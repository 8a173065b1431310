"""clevertap_aggregate_events and clevertap_describe_schema through MCP on the sandbox, checked against the raw API."""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp import Client

import tools.aggregate
from server.backends.clevertap.client import CleverTapClient
from server.backends.clevertap.executor import HttpExecutor
from server.backends.sandbox import SandboxConfig, create_app
from server.backends.sandbox.app import SandboxApp
from server.runtime import Runtime
from tests.helpers import day, err, make_runtime, mcp_client, ok, text

pytestmark = pytest.mark.anyio

WEEK = {"from": day(-7), "to": day(-1)}  # last week: seven closed days


def sandbox_runtime(app: SandboxApp, **env: str) -> Runtime:
    """A sandbox runtime whose emulator the test can see (request counts, knobs)."""
    runtime = make_runtime(env)
    runtime._executor = HttpExecutor.in_process(
        app, account_id="DEMO-SANDBOX", passcode="sandbox", local_actions=runtime
    )
    runtime._api = CleverTapClient(runtime._executor, poll_interval_s=0.02, backoff_base_s=0.02, call_budget_s=60)
    return runtime


@contextlib.asynccontextmanager
async def session(**env: str) -> AsyncIterator[tuple[Client, Runtime, SandboxApp]]:
    app = create_app(SandboxConfig())
    runtime = sandbox_runtime(app, **env)
    async with mcp_client(runtime) as client:
        yield client, runtime, app


async def raw_events(runtime: Runtime, event: str, from_: int, to: int) -> list[dict[str, Any]]:
    """Every record of the raw export, paged through the wire client (no tool involved)."""
    cursor = await runtime.api.start_export(
        "/1/events.json", {"event_name": event, "from": from_, "to": to}, batch_size=5000
    )
    records: list[dict[str, Any]] = []
    while cursor:
        page = await runtime.api.export_page("/1/events.json", cursor, budget_s=60)
        records += page.records
        cursor = page.next_cursor
    return records


def by(records: list[dict[str, Any]], key: Any, value: Any = None) -> dict[Any, float]:
    out: dict[Any, float] = defaultdict(float)
    for r in records:
        out[key(r)] += 1 if value is None else value(r)
    return dict(out)


def city(record: dict[str, Any]) -> Any:
    return record["profile"].get("profileData", {}).get("City")


def amount(record: dict[str, Any]) -> float:
    return float(record["event_props"]["Amount"])


async def call(client: Client, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    result = await client.call_tool("clevertap_aggregate_events", args)
    return ok(result), len(text(result).encode())


async def test_revenue_and_top_cities_in_two_small_calls_match_the_raw_api() -> None:
    async with session() as (client, runtime, _app):
        total, size1 = await call(client, {"event_name": "Charged", **WEEK, "metrics": ["sum:Amount"]})
        top, size2 = await call(
            client,
            {"event_name": "Charged", **WEEK, "group_by": ["profile.City"], "metrics": ["sum:Amount"], "limit": 5},
        )
        records = await raw_events(runtime, "Charged", WEEK["from"], WEEK["to"])
        raw_trend = await runtime.api.call(
            "POST",
            "/1/counts/trends.json",
            body={
                "event_name": "Charged",
                **WEEK,
                "sum_event_prop": "Amount",
                "groups": {"w": {"trend_type": "monthly"}},
            },
        )
    assert size1 + size2 < 4096, (size1, size2)
    assert records, "the sandbox has Charged events last week"
    revenue = sum(amount(r) for r in records)
    # The total comes from CleverTap's own trends endpoint, without scanning anything.
    assert total["source"] == "CleverTap counts API" and total["records_scanned"] == 0
    assert "trends" in total["method"]
    assert total["totals"]["sum:Amount"] == pytest.approx(sum(raw_trend["w"].values()), abs=0.01)
    assert total["totals"]["sum:Amount"] == pytest.approx(revenue, abs=0.05)
    # The breakdown scans the export inside the server: exactly the raw records, top five cities by revenue.
    expected = sorted(by(records, city, amount).items(), key=lambda kv: -kv[1])[:5]
    assert top["records_scanned"] == len(records)
    assert [g["profile.City"] for g in top["groups"]] == [c for c, _ in expected]
    for group, (_, value) in zip(top["groups"], expected, strict=True):
        assert group["sum:Amount"] == pytest.approx(value, abs=0.01)
    assert top["groups_total"] == len({city(r) for r in records})
    assert top["totals"]["sum:Amount"] == pytest.approx(revenue, abs=0.01)
    assert top["partial"] is False and "handle" not in top


async def test_a_second_breakdown_answers_from_the_local_store_without_exporting() -> None:
    async with session() as (client, runtime, app):
        first, _ = await call(client, {"event_name": "Charged", **WEEK, "group_by": ["profile.City"]})
        exports = app.received("POST", "/1/events.json"), app.received("GET", "/1/events.json")
        second, _ = await call(
            client, {"event_name": "Charged", **WEEK, "group_by": ["platform"], "metrics": ["count", "users"]}
        )
        after = app.received("POST", "/1/events.json"), app.received("GET", "/1/events.json")
        fresh, _ = await call(
            client,
            {
                "event_name": "Charged",
                **WEEK,
                "group_by": ["platform"],
                "metrics": ["count", "users"],
                "use_store": False,
            },
        )
        records = await raw_events(runtime, "Charged", WEEK["from"], WEEK["to"])
        users = await runtime.api.count("/1/counts/profiles.json", {"event_name": "Charged", **WEEK}, budget_s=30)
    assert first["source"] == "export" and first["records_scanned"] == len(records)
    assert second["source"] == "local store" and second["records_scanned"] == 0
    assert after == exports, "the follow-up must not export again"
    assert fresh["source"] == "export" and fresh["records_scanned"] == len(records)
    assert second["groups"] == fresh["groups"] and second["totals"] == fresh["totals"]
    per_platform = by(records, lambda r: r["profile"].get("platform"))
    assert {g["platform"]: g["count"] for g in second["groups"]} == per_platform
    assert second["totals"] == {"count": len(records), "users": users.count}


async def test_keeping_nothing_when_the_store_size_is_zero() -> None:
    async with session(CLEVERTAP_MCP_SCAN_STORE_MB="0") as (client, _runtime, app):
        await call(client, {"event_name": "Charged", **WEEK, "group_by": ["profile.City"]})
        again, _ = await call(client, {"event_name": "Charged", **WEEK, "group_by": ["platform"]})
    assert again["source"] == "export" and again["records_scanned"] > 0
    assert app.received("POST", "/1/events.json") == 2


async def test_a_scan_out_of_budget_continues_through_its_handle_to_the_exact_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Small pages and a slow emulator: the scan cannot finish inside a two-second budget.
    monkeypatch.setattr(tools.aggregate, "PAGE_SIZE", 300)
    start, end = day(-14), day(-1)
    args = {"event_name": "Charged", "from": start, "to": end, "group_by": ["platform"], "metrics": ["count"]}
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with session(CLEVERTAP_MCP_CALL_BUDGET="2") as (client, runtime, app):
        app.apply_knobs({"slow_s": 0.3})
        first = ok(await client.call_tool("clevertap_aggregate_events", args, progress_callback=on_progress))
        results = [first]
        while results[-1]["partial"] and len(results) < 60:
            handle = results[-1]["handle"]
            results.append(ok(await client.call_tool("clevertap_aggregate_events", {**args, "handle": handle})))
        app.apply_knobs({"slow_s": 0})
        records = await raw_events(runtime, "Charged", start, end)
    assert first["partial"] is True and first["handle"].startswith("ct_")
    assert 0 < first["records_scanned"] < len(records)
    assert "handle=" in first["next_step"]
    assert seen and seen == sorted(seen)
    scanned = [r["records_scanned"] for r in results]
    assert scanned == sorted(scanned) and len(set(scanned)) == len(scanned), scanned
    final = results[-1]
    assert final["partial"] is False and "handle" not in final
    assert final["records_scanned"] == len(records)
    assert {g["platform"]: g["count"] for g in final["groups"]} == by(records, lambda r: r["profile"].get("platform"))


async def test_native_daily_series_matches_raw_trends() -> None:
    async with session() as (client, runtime, _app):
        out, _ = await call(
            client, {"event_name": "App Launched", **WEEK, "group_by": ["day"], "metrics": ["count", "users"]}
        )
        raw = await runtime.api.call(
            "POST",
            "/1/counts/trends.json",
            body={"event_name": "App Launched", **WEEK, "groups": {"d": {"trend_type": "daily"}}},
        )
    assert out["source"] == "CleverTap counts API"
    assert [g["day"] for g in out["groups"]] == [f"{k[:4]}-{k[4:6]}-{k[6:]}" for k in sorted(raw["d"])]
    assert [g["count"] for g in out["groups"]] == [raw["d"][k] for k in sorted(raw["d"])]
    assert out["totals"]["count"] == sum(raw["d"].values())
    assert all(0 < g["users"] <= g["count"] for g in out["groups"])


async def test_charged_lowercase_gets_a_did_you_mean_everywhere() -> None:
    span = {"from": day(-30), "to": day(-1)}
    async with session() as (client, runtime, _app):
        raw = await runtime.api.count("/1/counts/events.json", {"event_name": "charged", **span}, budget_s=30)
        count = ok(await client.call_tool("clevertap_get_event_count", {"event_name": "charged", **span}))
        export = ok(await client.call_tool("clevertap_get_events", {"event_name": "charged", **span}))
        # CleverTap's trends endpoint refuses an unknown event: the error carries the suggestion.
        native = err(
            await client.call_tool(
                "clevertap_aggregate_events", {"event_name": "charged", **span, "metrics": ["sum:Amount"]}
            )
        )
        scan = ok(
            await client.call_tool(
                "clevertap_aggregate_events", {"event_name": "charged", **span, "group_by": ["profile.City"]}
            )
        )
        # The empty scan is kept: the same question answered from the local store still suggests the name.
        stored = ok(await client.call_tool("clevertap_aggregate_events", {"event_name": "charged", **span}))
        known = ok(await client.call_tool("clevertap_get_event_count", {"event_name": "Charged", **span}))
    assert raw.count == 0
    assert count["count"] == 0 and "did you mean 'Charged'?" in count["next_step"]
    assert export["records"] == [] and "did you mean 'Charged'?" in export["next_step"]
    assert scan["records_scanned"] == 0 and "did you mean 'Charged'?" in scan["next_step"]
    assert "did you mean 'Charged'?" in native
    assert stored["source"] == "local store" and "did you mean 'Charged'?" in stored["next_step"]
    assert known["count"] > 0 and "next_step" not in known


async def test_describe_schema_is_discovered_cached_and_served_as_a_resource() -> None:
    async with session() as (client, runtime, app):
        first = ok(await client.call_tool("clevertap_describe_schema", {"event_name": "Charged"}))
        calls = app.received("POST", "/1/profiles.json"), app.received("POST", "/1/events.json")
        cached = ok(await client.call_tool("clevertap_describe_schema", {}))
        resource = await client.read_resource("clevertap://schema")
        assert (app.received("POST", "/1/profiles.json"), app.received("POST", "/1/events.json")) == calls
        refreshed = ok(await client.call_tool("clevertap_describe_schema", {"refresh": True}))
        assert app.received("POST", "/1/profiles.json") == calls[0] + 1
        raw = await raw_events(runtime, "Charged", day(-30), day(0))
    assert {"Charged", "App Launched", "Product Viewed"} <= set(first["events"])
    assert first["profile_properties"]["City"]["type"] == "string"
    assert first["profile_properties"]["Age"]["type"] == "number"
    props = first["event"]["properties"]
    assert set(props) == {k for r in raw for k in r["event_props"]}
    assert props["Amount"]["type"] == "number" and props["Payment mode"]["type"] == "string"
    assert len(props["Amount"]["examples"]) <= 3
    assert "profiles" in first["obtained"] and first["ttl_s"] == 3600
    assert cached["fetched_at"] == first["fetched_at"] and cached["events"] == first["events"]
    document = json.loads(resource.contents[0].text)  # type: ignore[union-attr]
    assert document["events"] == first["events"]
    assert refreshed["events"] == first["events"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"metrics": ["median:Amount"]}, "median:Amount"),
        ({"metrics": ["sum:day"]}, "needs a property"),
        ({"group_by": ["profile.City"], "order_by": "revenue"}, "order_by 'revenue'"),
        ({"group_by": ['bad"name']}, "double quote"),
        ({"handle": "ct_nope"}, "unknown or has expired"),
    ],
)
async def test_bad_arguments_say_what_to_fix(args: dict[str, Any], expected: str) -> None:
    async with mcp_client() as client:
        message = err(await client.call_tool("clevertap_aggregate_events", {"event_name": "Charged", **WEEK, **args}))
    assert expected in message


async def test_a_handle_only_continues_its_own_aggregation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools.aggregate, "PAGE_SIZE", 200)
    args = {"event_name": "Charged", "from": day(-14), "to": day(-1), "group_by": ["platform"]}
    async with session(CLEVERTAP_MCP_CALL_BUDGET="1") as (client, _runtime, app):
        app.apply_knobs({"slow_s": 0.3})
        first = ok(await client.call_tool("clevertap_aggregate_events", args))
        assert first["partial"] is True
        message = err(
            await client.call_tool(
                "clevertap_aggregate_events", {**args, "event_name": "App Launched", "handle": first["handle"]}
            )
        )
    assert "another event" in message


async def test_the_store_drops_the_least_recently_used_scan_beyond_its_size() -> None:
    # 50 KB: one week of either event fills it, so keeping the second scan drops the first.
    async with session(CLEVERTAP_MCP_SCAN_STORE_MB="0.05") as (client, _runtime, _app):
        await call(client, {"event_name": "Charged", **WEEK, "group_by": ["platform"]})
        await call(client, {"event_name": "Cart Abandoned", **WEEK, "group_by": ["platform"]})
        latest, _ = await call(client, {"event_name": "Cart Abandoned", **WEEK, "group_by": ["profile.City"]})
        dropped, _ = await call(client, {"event_name": "Charged", **WEEK, "group_by": ["profile.City"]})
    assert latest["source"] == "local store"
    assert dropped["source"] == "export" and dropped["records_scanned"] > 0
