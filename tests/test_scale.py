"""The issue's scale promise: 100,000 events in one call, and the counts include them afterwards."""

from __future__ import annotations

import pytest

from tests.helpers import mcp_client, ok

pytestmark = pytest.mark.anyio

TS = 1_767_225_600  # 2026-01-01 00:00:00 UTC


async def test_one_hundred_thousand_events_in_one_call() -> None:
    events = [
        {"identity": f"bulk-{i % 5_000}", "evtName": "Bulk Imported", "evtData": {"i": i}, "ts": TS + i}
        for i in range(100_000)
    ]
    args = {"event_name": "Bulk Imported", "from": 20260101, "to": 20260131}
    async with mcp_client() as client:
        before = ok(await client.call_tool("clevertap_get_event_count", args))["count"]
        up = ok(await client.call_tool("clevertap_upload_events", {"events": events}))
        after = ok(await client.call_tool("clevertap_get_event_count", args))
        users = ok(await client.call_tool("clevertap_get_profile_count", args))
    assert before == 0
    assert up == {**up, "status": "success", "processed": 100_000, "unprocessed_count": 0, "batches": 100}
    assert after["count"] == 100_000
    assert users["count"] == 5_000
