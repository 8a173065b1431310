"""Consent by elicitation where the client can be asked, PII redaction, and the audit log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mcp.types as types
import pytest

from tests.helpers import day, make_runtime, mcp_client, ok

pytestmark = pytest.mark.anyio

CAMPAIGN = {
    "name": "Elicited",
    "target_mode": "push",
    "where": {"event_name": "Charged", "from": day(-7), "to": day(-1)},
    "content": {"title": "Hi", "body": "Thanks for shopping"},
    "devices": ["android"],
    "when": "now",
}


def answering(action: str, confirm: bool | None = None) -> Any:
    asked: list[str] = []

    async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        content = None if confirm is None else {"confirm": confirm}
        return types.ElicitResult(action=action, content=content)  # type: ignore[arg-type]

    callback.asked = asked  # type: ignore[attr-defined]
    return callback


async def _campaign_count(client: Any) -> int:
    listed = ok(await client.call_tool("clevertap_get_campaigns", {"from": day(-1), "to": day(1)}))
    return len(listed["campaigns"])


async def test_a_yes_from_the_user_creates_in_one_call() -> None:
    callback = answering("accept", True)
    async with mcp_client(elicitation_callback=callback) as client:
        before = await _campaign_count(client)
        out = ok(await client.call_tool("clevertap_create_campaign", CAMPAIGN))
        assert out["created"] is True and out["confirmed_by"]
        assert await _campaign_count(client) == before + 1
    assert len(callback.asked) == 1 and "Elicited" in callback.asked[0] and "cannot be undone" in callback.asked[0]


@pytest.mark.parametrize("action,confirm", [("decline", None), ("cancel", None), ("accept", False)])
async def test_anything_but_yes_does_nothing_and_leaves_no_token(action: str, confirm: bool | None) -> None:
    async with mcp_client(elicitation_callback=answering(action, confirm)) as client:
        before = await _campaign_count(client)
        out = ok(await client.call_tool("clevertap_create_campaign", CAMPAIGN))
        assert out["created"] is False and "confirm_token" not in out
        assert "declined" in out["next_step"]
        assert await _campaign_count(client) == before


async def test_delete_and_raw_send_are_asked_too() -> None:
    callback = answering("accept", True)
    async with mcp_client(elicitation_callback=callback) as client:
        deleted = ok(await client.call_tool("clevertap_delete_user_profile", {"identity": "user-00007"}))
        sent = ok(
            await client.call_tool(
                "clevertap_request",
                {
                    "method": "POST",
                    "path": "/1/send/push.json",
                    "body": {"to": {"Identity": ["user-00008"]}, "content": {"title": "t", "body": "b"}},
                },
            )
        )
    assert deleted["deleted"] is True and sent["sent"] is True and sent["status"] == 200
    assert len(callback.asked) == 2


async def test_redact_pii_masks_profile_fields_in_exports() -> None:
    args = {"event_name": "Charged", "from": day(-2), "to": day(-1), "batch_size": 50}
    async with mcp_client(make_runtime(redact_pii=True)) as client:
        page = ok(await client.call_tool("clevertap_get_user_profiles", args))
        events = ok(await client.call_tool("clevertap_get_events", args))
        lookup = ok(
            await client.call_tool(
                "clevertap_request", {"method": "GET", "path": "/1/profile.json", "query": {"identity": "user-00001"}}
            )
        )
    async with mcp_client(make_runtime()) as client:
        plain = ok(await client.call_tool("clevertap_get_user_profiles", args))
    assert plain["records"][0]["email"].endswith("@example.com") and "***" not in plain["records"][0]["email"]
    for record in page["records"]:
        for key in ("email", "name", "phone"):
            if key in record:
                assert "***" in str(record[key]) or "*" in str(record[key]), (key, record[key])
    profile = events["records"][0]["profile"]
    assert "***" in profile.get("email", "***")
    assert "***" in lookup["body"]["record"].get("email", "***")


async def test_audit_log_has_one_line_per_write_attempt_and_no_arguments(tmp_path: Path) -> None:
    log_path = tmp_path / "audit" / "writes.jsonl"
    async with mcp_client(make_runtime(audit_log=str(log_path))) as client:
        ok(
            await client.call_tool(
                "clevertap_get_event_count", {"event_name": "Charged", "from": day(-1), "to": day(-1)}
            )
        )
        preview = ok(await client.call_tool("clevertap_create_campaign", CAMPAIGN))
        ok(await client.call_tool("clevertap_create_campaign", {**CAMPAIGN, "confirm_token": preview["confirm_token"]}))
        await client.call_tool("clevertap_upload_events", {"events": [{"evtName": "no identity", "evtData": {}}]})
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    calls = [e for e in lines if e["event"] == "call"]
    assert [(e["tool"], e["outcome"]) for e in calls] == [
        ("clevertap_create_campaign", "preview"),
        ("clevertap_create_campaign", "ok"),
        ("clevertap_upload_events", "error:input"),
    ]
    assert all(len(e["arguments_sha256"]) == 64 and e["time"] for e in calls)
    # The one request that changed the account: logged before it was sent, and its outcome after.
    sent = [(e["event"], e.get("request"), e.get("kind")) for e in lines if e["event"] != "call"]
    assert sent == [("attempt", "POST /1/targets/create.json", "irreversible"), ("outcome", None, None)]
    assert lines.index(next(e for e in lines if e["event"] == "attempt")) < lines.index(calls[1])
    text = log_path.read_text()
    assert "Thanks for shopping" not in text and "no identity" not in text
    assert oct(log_path.stat().st_mode & 0o777) == "0o600"
