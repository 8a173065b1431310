"""Finding 10, uploads: a record larger than the per-record limit (a 2 MB profile value here; 100 MB in the finding)
is refused by index before anything is sent, through MCP against the sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import err, make_runtime, mcp_client, ok

pytestmark = pytest.mark.anyio


def profile(identity: str, **data: Any) -> dict[str, Any]:
    return {"identity": identity, "ts": 1_790_000_000, "profileData": {"Name": "A", **data}}


async def test_an_oversized_record_is_refused_by_index_and_nothing_is_sent() -> None:
    huge = "v" * (2 * 1024 * 1024)
    profiles = [profile("bound-a"), profile("bound-b", Bio=huge), profile("bound-c")]
    events = [{"identity": "bound-a", "evtName": "Big", "evtData": {"blob": [huge]}, "ts": 1_790_000_000}]
    async with mcp_client(make_runtime()) as client:
        refused = err(await client.call_tool("clevertap_upload_user_profiles", {"profiles": profiles}))
        refused_events = err(await client.call_tool("clevertap_upload_events", {"events": events}))
        lookups = [
            ok(
                await client.call_tool(
                    "clevertap_request", {"method": "GET", "path": "/1/profile.json", "query": {"identity": i}}
                )
            )
            for i in ("bound-a", "bound-c")
        ]
        fine = ok(await client.call_tool("clevertap_upload_user_profiles", {"profiles": [profiles[0], profiles[2]]}))
    assert "1 of 3 profiles" in refused and "[1]" in refused and "nothing was sent" in refused, refused
    assert "262,144" in refused and len(refused) < 2_000, "the error must not echo the value"
    assert "[0]" in refused_events and "over the limit" in refused_events
    assert all(look["body"].get("status") != "success" or not look["body"].get("record") for look in lookups), lookups
    assert fine["processed"] == 2


async def test_a_record_just_under_the_limit_is_sent() -> None:
    value = "w" * 500
    record = profile("bound-d", **{f"Key {i}": value for i in range(200)})
    async with mcp_client(make_runtime()) as client:
        out = ok(await client.call_tool("clevertap_upload_user_profiles", {"profiles": [record], "dry_run": True}))
    assert out["status"] == "success", out
