"""Bad input for every tool gets an isError result that says what was wrong, and the server keeps serving."""

from __future__ import annotations

from typing import Any

import pytest

from tests.examples import TOOLS, Examples
from tests.helpers import day, err, make_runtime, mcp_client, ok

pytestmark = pytest.mark.anyio

DATES = {"from": day(-7), "to": day(0)}

# Beyond the catalog's own invalid examples: arguments whose error must name particular words.
MESSAGES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("clevertap_connect", {"wait_seconds": "soon"}, ["wait_seconds"]),
    ("clevertap_connect", {"bogus": 1}, ["bogus"]),
    ("clevertap_get_event_count", {"event_name": "Charged", "from": 20261301, "to": 20261302}, ["calendar date"]),
    ("clevertap_get_event_count", {"event_name": "Charged", "from": day(0), "to": day(-7)}, ["after"]),
    ("clevertap_get_event_count", {"event_name": "Charged", "from": "next blue moon", "to": day(0)}, ["YYYYMMDD"]),
    ("clevertap_get_event_count", {"from": day(-1), "to": day(0)}, ["event_name"]),
    ("clevertap_get_profile_count", {"event_name": "Charged", "from": 2026, "to": day(0)}, ["YYYYMMDD"]),
    ("clevertap_get_events", {"event_name": "Charged", **DATES, "batch_size": 0}, ["batch_size"]),
    ("clevertap_get_events_by_cursor", {"cursor": "ct_doesnotexist"}, ["cursor"]),
    ("clevertap_upload_events", {"events": [{"evtName": "X", "evtData": {}}]}, ["identity"]),
    (
        "clevertap_upload_events",
        {"events": [{"identity": "a", "evtName": "X", "evtData": "nope"}]},
        ["evtData", "object"],
    ),
    ("clevertap_upload_events", {"events": [{"identity": "a", "evtName": "X", "evtData": None}]}, ["[0]", "evtData"]),
    ("clevertap_upload_events", {"events": [{"identity": "a", "evtName": "X"}]}, ["evtData", "required"]),
    (
        "clevertap_upload_user_profiles",
        {"profiles": [{"identity": "a", "profileData": {}}, {"identity": "b", "profileData": [1]}]},
        ["[1]", "profileData"],
    ),
    (
        "clevertap_upload_device_tokens",
        {"tokens": [{"identity": "a", "tokenData": {"id": "t", "type": "fcm"}}]},
        ["objectId"],
    ),
    (
        "clevertap_upload_device_tokens",
        {"tokens": [{"objectId": "o", "tokenData": {"id": "t", "type": "pigeon"}}]},
        ["type"],
    ),
    ("clevertap_create_campaign", {"name": "x"}, ["target_mode"]),
    ("clevertap_delete_user_profile", {"identity": "a", "guid": "b"}, ["both"]),
    ("clevertap_delete_user_profile", {"identity": [f"u{i}" for i in range(101)]}, ["100"]),
    ("clevertap_run_action", {"action": "get-event-count", "input": {"event_name": "Charged"}}, ["from"]),
    ("clevertap_request", {"method": "GET", "path": "https://example.com/1/x"}, ["path"]),
    ("clevertap_request", {"method": "TRACE", "path": "/1/now.json"}, ["method"]),
    ("clevertap_request", {"method": "POST", "path": "/1/upload", "body": {"d": [{"identity": "a"}] * 1001}}, ["1000"]),
]


@pytest.mark.parametrize("tool", TOOLS)
async def test_invalid_examples_are_input_errors_and_the_server_keeps_serving(tool: str) -> None:
    async with mcp_client() as client:
        examples = Examples(client)
        for arguments in await examples.invalid(tool):
            message = err(await client.call_tool(tool, arguments))
            assert message.startswith("Input error"), (arguments, message)
        # the same session still answers a good call of the same tool
        ok(await client.call_tool(tool, await examples.valid(tool)))


@pytest.mark.parametrize(
    ("tool", "arguments", "words"), MESSAGES, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(MESSAGES)]
)
async def test_the_error_says_what_was_wrong(tool: str, arguments: dict[str, Any], words: list[str]) -> None:
    async with mcp_client() as client:
        message = err(await client.call_tool(tool, arguments))
    assert message.startswith("Input error"), message
    for word in words:
        assert word.lower() in message.lower(), (arguments, message)


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
