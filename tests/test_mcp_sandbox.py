"""Every tool through an in-memory MCP client on the embedded sandbox: the good paths."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import day, err, make_runtime, mcp_client, ok
from tools.names import TOOL_NAMES

pytestmark = pytest.mark.anyio

EXPECTED_TOOLS = set(TOOL_NAMES)


async def test_lists_every_tool_with_annotations_and_output_schema() -> None:
    async with mcp_client() as client:
        listed = await client.list_tools()
    assert {t.name for t in listed.tools} == EXPECTED_TOOLS
    for tool in listed.tools:
        a = tool.annotations
        assert a is not None, tool.name
        for hint in (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint):
            assert isinstance(hint, bool), tool.name
        assert tool.output_schema and tool.output_schema.get("type") == "object", tool.name
        assert tool.input_schema.get("type") == "object", tool.name
        assert len(tool.description or "") > 80, tool.name
    by_name = {t.name: t for t in listed.tools}
    assert by_name["clevertap_get_event_count"].annotations.read_only_hint is True  # type: ignore[union-attr]
    assert by_name["clevertap_create_campaign"].annotations.destructive_hint is True  # type: ignore[union-attr]
    assert by_name["clevertap_delete_user_profile"].annotations.destructive_hint is True  # type: ignore[union-attr]


async def test_connect_reports_ready_sandbox() -> None:
    async with mcp_client() as client:
        out = ok(await client.call_tool("clevertap_connect", {}))
    assert out["state"] == "READY"
    assert out["backend"] == "sandbox"
    assert "sandbox" not in str(out.get("account_id", "")).lower() or out["account_id"] == "DEMO-SANDBOX"


async def test_counts_are_real_and_consistent() -> None:
    args = {"event_name": "Charged", "from": day(-30), "to": day(0)}
    async with mcp_client() as client:
        events = ok(await client.call_tool("clevertap_get_event_count", args))
        users = ok(await client.call_tool("clevertap_get_profile_count", args))
        launched = ok(await client.call_tool("clevertap_get_event_count", {**args, "event_name": "App Launched"}))
        none = ok(await client.call_tool("clevertap_get_event_count", {**args, "event_name": "charged"}))
        rt = ok(await client.call_tool("clevertap_real_time_user_count", {"device": True}))
    assert events["done"] is True and events["count"] > 100
    assert 0 < users["count"] <= events["count"]
    assert launched["count"] > events["count"]  # a funnel: more launches than purchases
    assert none["count"] == 0  # event names are case-sensitive
    assert isinstance(rt["count"], int) and rt["count"] >= 0


async def test_count_with_property_filter_narrows() -> None:
    base = {"event_name": "Charged", "from": day(-30), "to": day(0)}
    async with mcp_client() as client:
        total = ok(await client.call_tool("clevertap_get_event_count", base))["count"]
        big = ok(
            await client.call_tool(
                "clevertap_get_event_count",
                {**base, "event_properties": [{"name": "Amount", "operator": "greater_than", "value": 100}]},
            )
        )["count"]
    assert 0 < big < total


async def _drain(client: Any, first: str, by_cursor: str, args: dict[str, Any]) -> tuple[list[Any], int]:
    page = ok(await client.call_tool(first, args))
    records = list(page["records"])
    calls = 1
    while not page["done"]:
        assert len(page["cursor"]) < 64, "cursor handles must stay short"
        page = ok(await client.call_tool(by_cursor, {"cursor": page["cursor"]}))
        records.extend(page["records"])
        calls += 1
        assert calls < 500
    return records, calls


async def test_event_export_pages_until_done_and_matches_count() -> None:
    args = {"event_name": "Charged", "from": day(-3), "to": day(0)}
    async with mcp_client() as client:
        count = ok(await client.call_tool("clevertap_get_event_count", args))["count"]
        records, calls = await _drain(
            client, "clevertap_get_events", "clevertap_get_events_by_cursor", {**args, "batch_size": 500}
        )
    assert len(records) == count
    assert calls > 1
    sample = records[0]
    assert "profile" in sample and "event_props" in sample and len(str(sample["ts"])) == 14


async def test_profile_export_pages_until_done() -> None:
    args = {"event_name": "Charged", "from": day(-2), "to": day(0)}
    async with mcp_client() as client:
        count = ok(await client.call_tool("clevertap_get_profile_count", args))["count"]
        records, _ = await _drain(
            client, "clevertap_get_user_profiles", "clevertap_get_user_profiles_by_cursor", {**args, "batch_size": 46}
        )
    assert len(records) == count
    assert all("identity" in r or "profileData" in r for r in records)


async def test_upload_events_then_counts_include_them() -> None:
    events = [
        {"identity": f"qa-{i}", "evtName": "QA Checked", "evtData": {"n": i}, "ts": 1_700_000_000 + i}
        for i in range(2_500)
    ]
    async with mcp_client() as client:
        dry = ok(await client.call_tool("clevertap_upload_events", {"events": events[:10], "dry_run": True}))
        assert dry["processed"] == 10
        up = ok(await client.call_tool("clevertap_upload_events", {"events": events}))
        assert up["processed"] == 2_500 and up["unprocessed_count"] == 0 and up["batches"] == 3
        from_day = int(__import__("time").strftime("%Y%m%d", __import__("time").gmtime(1_700_000_000)))
        count = ok(
            await client.call_tool(
                "clevertap_get_event_count", {"event_name": "QA Checked", "from": from_day, "to": day(0)}
            )
        )
    assert count["count"] == 2_500  # the dry run stored nothing


async def test_upload_profiles_maps_rejections_to_caller_indices() -> None:
    profiles: list[dict[str, Any]] = [
        {"identity": f"p-{i}", "profileData": {"Name": f"P {i}", "Email": f"p{i}@example.com"}} for i in range(1_200)
    ]
    profiles[3]["profileData"]["Email"] = "not-an-email"
    profiles[1_100]["profileData"]["Gender"] = "X"
    async with mcp_client() as client:
        out = ok(await client.call_tool("clevertap_upload_user_profiles", {"profiles": profiles}))
    assert out["processed"] == 1_198
    bad = {u["index"]: u for u in out["unprocessed"]}
    assert set(bad) == {3, 1_100}
    assert bad[3]["code"] == 515 and bad[1_100]["code"] == 514
    assert out["status"] == "partial"


async def test_upload_device_tokens() -> None:
    tokens = [{"objectId": f"obj{i:030d}", "tokenData": {"id": f"tok-{i}", "type": "fcm"}} for i in range(150)]
    async with mcp_client() as client:
        out = ok(await client.call_tool("clevertap_upload_device_tokens", {"tokens": tokens}))
    assert out["processed"] == 150 and out["batches"] == 2


async def test_campaign_list_report_stop() -> None:
    async with mcp_client() as client:
        listed = ok(await client.call_tool("clevertap_get_campaigns", {"from": day(-60), "to": day(14)}))
        campaigns = listed["campaigns"]
        statuses = {c["status"] for c in campaigns}
        assert {"completed", "scheduled", "running", "stopped"} <= statuses
        done = next(c for c in campaigns if c["status"] == "completed")
        report = ok(await client.call_tool("clevertap_get_campaign_report", {"id": done["id"]}))
        assert report["completed"] is True and report["result"]["sent"] >= report["result"]["clicked"]
        pending = next(c for c in campaigns if c["status"] == "scheduled")
        not_done = ok(await client.call_tool("clevertap_get_campaign_report", {"id": pending["id"]}))
        assert not_done["completed"] is False
        preview = ok(await client.call_tool("clevertap_stop_campaign", {"id": pending["id"]}))
        assert preview["stopped"] is False and preview["status"] == "scheduled" and preview["confirm_token"]
        token = preview["confirm_token"]
        stopped = ok(await client.call_tool("clevertap_stop_campaign", {"id": pending["id"], "confirm_token": token}))
        again = ok(await client.call_tool("clevertap_stop_campaign", {"id": pending["id"]}))
        assert stopped["stopped"] is True
        assert again["stopped"] is False and again["status"] == "stopped" and "confirm_token" not in again
        relisted = ok(await client.call_tool("clevertap_get_campaigns", {"from": day(-60), "to": day(14)}))
    assert next(c for c in relisted["campaigns"] if c["id"] == pending["id"])["status"] == "stopped"


CAMPAIGN = {
    "name": "Win back cart abandoners",
    "target_mode": "push",
    "where": {"event_name": "Added To Cart", "from": day(-7), "to": day(0)},
    "content": {"title": "Still thinking?", "body": "Your cart misses you."},
    "devices": ["android", "ios"],
    "when": "now",
}


async def test_create_campaign_estimates_first_and_creates_only_with_the_token() -> None:
    async with mcp_client() as client:
        before = ok(await client.call_tool("clevertap_get_campaigns", {"from": day(-1), "to": day(1)}))["campaigns"]
        preview = ok(await client.call_tool("clevertap_create_campaign", CAMPAIGN))
        assert preview["created"] is False and preview["confirm_token"]
        assert preview["total_estimated_reach"] > 0
        after_preview = ok(await client.call_tool("clevertap_get_campaigns", {"from": day(-1), "to": day(1)}))
        assert len(after_preview["campaigns"]) == len(before)  # nothing was sent

        changed = {**CAMPAIGN, "name": "Something else", "confirm_token": preview["confirm_token"]}
        assert "payload changed" in err(await client.call_tool("clevertap_create_campaign", changed))
        assert "not a token" in err(
            await client.call_tool("clevertap_create_campaign", {**CAMPAIGN, "confirm_token": "forged"})
        )

        created = ok(
            await client.call_tool("clevertap_create_campaign", {**CAMPAIGN, "confirm_token": preview["confirm_token"]})
        )
        assert created["created"] is True and isinstance(created["id"], int)
        after = ok(await client.call_tool("clevertap_get_campaigns", {"from": day(-1), "to": day(1)}))
    assert len(after["campaigns"]) == len(before) + 1


async def test_confirm_never_creates_directly() -> None:
    runtime = make_runtime({"CLEVERTAP_MCP_CONFIRM": "never"})
    async with mcp_client(runtime) as client:
        created = ok(await client.call_tool("clevertap_create_campaign", CAMPAIGN))
    assert created["created"] is True


async def test_delete_profile_previews_then_deletes() -> None:
    async with mcp_client() as client:
        found = ok(
            await client.call_tool(
                "clevertap_request", {"method": "GET", "path": "/1/profile.json", "query": {"identity": "user-00042"}}
            )
        )
        assert found["status"] == 200 and found["body"]["status"] == "success", found
        preview = ok(await client.call_tool("clevertap_delete_user_profile", {"identity": "user-00042"}))
        assert preview["deleted"] is False and preview["confirm_token"]
        still = ok(
            await client.call_tool(
                "clevertap_request", {"method": "GET", "path": "/1/profile.json", "query": {"identity": "user-00042"}}
            )
        )
        assert still["body"]["status"] == "success"
        done = ok(
            await client.call_tool(
                "clevertap_delete_user_profile", {"identity": "user-00042", "confirm_token": preview["confirm_token"]}
            )
        )
        assert done["deleted"] is True
        gone = ok(
            await client.call_tool(
                "clevertap_request", {"method": "GET", "path": "/1/profile.json", "query": {"identity": "user-00042"}}
            )
        )
    assert gone["body"]["status"] == "fail"


async def test_search_and_run_actions_over_the_local_catalog() -> None:
    async with mcp_client() as client:
        found = ok(await client.call_tool("clevertap_search_actions", {"intent": "count events in a date range"}))
        keys = [a["key"] for a in found["actions"]]
        assert "get-event-count" in keys[:3]
        ran = ok(
            await client.call_tool(
                "clevertap_run_action",
                {"action": "get-event-count", "input": {"event_name": "Charged", "from": day(-30), "to": day(0)}},
            )
        )
        direct = ok(
            await client.call_tool(
                "clevertap_get_event_count", {"event_name": "Charged", "from": day(-30), "to": day(0)}
            )
        )
        unknown = err(await client.call_tool("clevertap_run_action", {"action": "launch-rocket", "input": {}}))
    assert ran["output"]["count"] == direct["count"]
    assert "unknown action" in unknown


async def test_raw_request_reaches_any_endpoint_and_refuses_escapes() -> None:
    async with mcp_client() as client:
        now = ok(await client.call_tool("clevertap_request", {"method": "POST", "path": "/1/now.json", "body": {}}))
        assert now["status"] == 200 and now["body"]["status"] == "success"
        for bad in ("https://evil.example/1/x", "//evil.example/1/x", "/1/../admin", "/1/%2e%2e/x", "/1/x\r\nHost: a"):
            message = err(await client.call_tool("clevertap_request", {"method": "GET", "path": bad}))
            assert "Input error" in message, bad
