"""Bad input for every tool gets an isError result that says what was wrong, and the server keeps serving."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import day, err, make_runtime, mcp_client, ok

pytestmark = pytest.mark.anyio

DATES = {"from": day(-7), "to": day(0)}

# tool -> list of (arguments, words the error must contain)
CASES: dict[str, list[tuple[dict[str, Any], list[str]]]] = {
    "clevertap_connect": [({"wait_seconds": "soon"}, ["wait_seconds"]), ({"bogus": 1}, ["bogus"])],
    "clevertap_real_time_user_count": [({"device": "maybe"}, ["device"])],
    "clevertap_get_event_count": [
        ({"event_name": "Charged", "from": 20261301, "to": 20261302}, ["calendar date"]),
        ({"event_name": "Charged", "from": day(0), "to": day(-7)}, ["after"]),
        ({"event_name": "Charged", "from": "next tuesday", "to": day(0)}, ["YYYYMMDD", "last week"]),
        ({"from": day(-1), "to": day(0)}, ["event_name"]),
        ({"event_name": 42, **DATES}, ["event_name"]),
    ],
    "clevertap_get_profile_count": [({"event_name": "Charged", "from": 2026, "to": day(0)}, ["YYYYMMDD"])],
    "clevertap_get_events": [
        ({"event_name": "Charged", **DATES, "batch_size": 0}, ["batch_size"]),
        ({"event_name": "Charged", "from": day(0), "to": day(-1)}, ["after"]),
    ],
    "clevertap_get_events_by_cursor": [({"cursor": "ct_doesnotexist"}, ["cursor"]), ({}, ["cursor"])],
    "clevertap_get_user_profiles": [({"event_name": "", **DATES}, ["event_name"])],
    "clevertap_get_user_profiles_by_cursor": [({"cursor": "ct_nope"}, ["cursor"])],
    "clevertap_upload_events": [
        ({"events": [{"evtName": "X", "evtData": {}}]}, ["identity"]),
        ({"events": []}, ["events"]),
        ({"events": "not a list"}, ["events"]),
        ({"events": [{"identity": "a", "evtName": "X", "evtData": "nope"}]}, ["evtData", "object"]),
        ({"events": [{"identity": "a", "evtName": "X", "evtData": None}]}, ["[0]", "evtData", "object"]),
        ({"events": [{"identity": "a", "evtName": "X"}]}, ["evtData", "required"]),
    ],
    "clevertap_upload_user_profiles": [
        ({"profiles": [{"profileData": {"Name": "x"}}]}, ["identity"]),
        (
            {"profiles": [{"identity": "a", "profileData": {}}, {"identity": "b", "profileData": [1]}]},
            ["[1]", "profileData"],
        ),
    ],
    "clevertap_upload_device_tokens": [
        ({"tokens": [{"identity": "a", "tokenData": {"id": "t", "type": "fcm"}}]}, ["objectId"]),
        ({"tokens": [{"objectId": "o", "tokenData": {"id": "t", "type": "carrier-pigeon"}}]}, ["type"]),
    ],
    "clevertap_get_campaigns": [({"from": day(0), "to": day(-30)}, ["after"])],
    "clevertap_get_campaign_report": [({"id": "abc"}, ["id"]), ({"id": -5}, ["id"])],
    "clevertap_create_campaign": [({"name": "x"}, ["target_mode"])],
    "clevertap_stop_campaign": [({"id": None}, ["id"])],
    "clevertap_delete_user_profile": [
        ({"identity": "a", "guid": "b"}, ["both"]),
        ({}, ["identity"]),
        ({"identity": [f"u{i}" for i in range(101)]}, ["100"]),
    ],
    "clevertap_search_actions": [({"intent": ""}, ["intent"])],
    "clevertap_run_action": [({"action": "get-event-count", "input": {"event_name": "Charged"}}, ["from"])],
    "clevertap_request": [
        ({"method": "GET", "path": "https://example.com/1/x"}, ["path"]),
        ({"method": "TRACE", "path": "/1/now.json"}, ["method"]),
        ({"method": "POST", "path": "/1/upload", "body": {"d": [{"identity": "a"}] * 1001}}, ["1000"]),
    ],
    "clevertap_get_user_profile": [
        ({}, ["exactly one", "identity", "email", "object_id"]),
        ({"identity": "u1", "email": "a@b.co"}, ["exactly one"]),
        ({"objectId": "g1"}, ["objectId"]),
    ],
    "clevertap_get_message_report": [
        ({"from": "this month", "to": "last month"}, ["after"]),
        ({"from": "soon", "to": "today"}, ["from", "YYYYMMDD"]),
        ({"to": "today"}, ["from"]),
    ],
}


async def test_every_tool_has_bad_input_cases() -> None:
    async with mcp_client() as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert names == set(CASES)


@pytest.mark.parametrize("tool", sorted(CASES))
async def test_bad_input_is_an_error_result_and_server_keeps_serving(tool: str) -> None:
    async with mcp_client() as client:
        for arguments, words in CASES[tool]:
            message = err(await client.call_tool(tool, arguments))
            assert message.startswith(("Input error", "Confirmation required")), message
            for word in words:
                assert word.lower() in message.lower(), (arguments, message)
        # the same session still answers a good call
        assert ok(await client.call_tool("clevertap_get_event_count", {"event_name": "Charged", **DATES}))["done"]


async def test_unknown_tool_lists_the_valid_ones() -> None:
    async with mcp_client() as client:
        message = err(await client.call_tool("clevertap_launch_rocket", {}))
    assert "unknown tool" in message and "clevertap_get_event_count" in message


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "\ud800"])
async def test_an_upload_with_one_unencodable_record_sends_nothing(bad: Any) -> None:
    from tests.rawmcp import raw_client, result_text

    events = [{"identity": f"u{i}", "evtName": "All Or Nothing", "evtData": {"v": i}} for i in range(2_500)]
    events[1_500] = {**events[1_500], "evtData": {"v": bad}}
    args = {"event_name": "All Or Nothing", "from": day(-1), "to": day(1)}
    runtime = make_runtime()
    async with raw_client(runtime) as raw:
        answer = await raw.call_tool("clevertap_upload_events", {"events": events})
        assert answer["isError"] is True
        text = result_text(answer)
        assert text.startswith("Input error") and "record 1500" in text and "Nothing was sent" in text
        count = await raw.call_tool("clevertap_get_event_count", args)
    assert count["structuredContent"]["count"] == 0
