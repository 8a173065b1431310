"""Issue 12 part A through MCP on the sandbox, each answer checked against the raw API in the same session: relative
dates on several tools, the one-user lookup, the message report, export field projection, and errors' own hints."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

import pytest
from mcp import Client

from server.backends.clevertap.client import error_for
from tests.helpers import err, mcp_client, ok, text
from tools.api import RawResponse
from tools.error_hints import clevertap_hint
from tools.models import parse_day

pytestmark = pytest.mark.anyio

WAIT = {"wait_seconds": 120}  # the first call of a session may wait for the sandbox's seed on a busy machine


def today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def ymd(day: dt.date) -> int:
    return int(day.strftime("%Y%m%d"))


def last_week() -> tuple[int, int]:
    """Monday to Sunday of the previous week, computed here independently of the server's date code."""
    monday = today() - dt.timedelta(days=today().weekday() + 7)
    return ymd(monday), ymd(monday + dt.timedelta(days=6))


def iso(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def raw(client: Client, method: str, path: str, **kwargs: Any) -> Any:
    """The raw CleverTap answer, through clevertap_request in the same session."""
    out = ok(await client.call_tool("clevertap_request", {"method": method, "path": path, **kwargs}))
    assert out["sent"] is True, out
    return out["body"]


async def raw_count(client: Client, path: str, body: dict[str, Any]) -> int:
    answer = await raw(client, "POST", path, body=body)
    for _ in range(50):
        if answer.get("status") != "partial":
            break
        answer = await raw(client, "GET", path, query={"req_id": answer["req_id"]})
    assert answer["status"] == "success", answer
    return int(answer["count"])


async def raw_events(client: Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    first = await raw(client, "POST", "/1/events.json", query={"batch_size": 50}, body=body)  # pages fit a result
    records: list[dict[str, Any]] = []
    cursor = first.get("cursor")
    while cursor:
        # CleverTap's cursor comes %-encoded and the proxy encodes query values: decode it once first
        page = await raw(client, "GET", "/1/events.json", query={"cursor": urllib.parse.unquote(cursor)})
        records += page.get("records", [])
        cursor = page.get("next_cursor")
    return records


# -- dates -------------------------------------------------------------------------------------------------------------


def test_relative_forms_resolve_to_the_days_they_name() -> None:
    friday = dt.date(2026, 12, 4)
    cases = {
        "today": (20261204, 20261204),
        "yesterday": (20261203, 20261203),
        "7 days ago": (20261127, 20261127),
        "1 week ago": (20261127, 20261127),
        "a month ago": (20261104, 20261104),
        "last 7 days": (20261128, 20261204),
        "this week": (20261130, 20261204),
        "last week": (20261123, 20261129),
        "this month": (20261201, 20261204),
        "last month": (20261101, 20261130),
        "last year": (20250101, 20251231),
        "2026-11": (20261101, 20261130),
        "2026-11-26": (20261126, 20261126),
        "2026-11-26T23:30:00-02:00": (20261127, 20261127),
        " Last  Month ": (20261101, 20261130),
    }
    for form, (first, last) in cases.items():
        assert (parse_day(form, "start", friday), parse_day(form, "end", friday)) == (first, last), form
    assert parse_day("3 months ago", "start", dt.date(2026, 5, 31)) == 20260228  # clamped to a shorter month
    for bad in ("next tuesday", "2026-02-30", "last 0 days", True, 2026):
        with pytest.raises(ValueError):
            parse_day(bad)


async def test_instructions_state_todays_date_in_utc() -> None:
    async with mcp_client() as client:
        instructions = client.instructions or ""
    assert f"Today is {today().isoformat()}" in instructions
    assert "last week" in instructions and "inclusive" in instructions


async def test_date_inputs_say_integer_or_string_and_inclusive() -> None:
    async with mcp_client() as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    for name in ("clevertap_get_event_count", "clevertap_get_events", "clevertap_get_campaigns"):
        props = tools[name].input_schema["properties"]
        for key in ("from", "to"):
            assert props[key]["anyOf"] == [{"type": "integer"}, {"type": "string"}], (name, key)
            assert "inclusive" in props[key]["description"], (name, key)
    for name in ("clevertap_get_user_profile", "clevertap_get_message_report"):
        facing = tools[name].model_dump_json(include={"name", "description", "input_schema"}, by_alias=True)
        assert len(facing.encode()) < 1300, name


async def test_relative_dates_on_counts_campaigns_reports_and_exports_match_the_raw_api() -> None:
    first, last = last_week()
    async with mcp_client() as client:
        counted = ok(
            await client.call_tool(
                "clevertap_get_event_count",
                {"event_name": "App Launched", "from": "last week", "to": "last week", **WAIT},
            )
        )
        expected = await raw_count(
            client, "/1/counts/events.json", {"event_name": "App Launched", "from": first, "to": last}
        )
        assert counted == {"done": True, "count": expected, "from": first, "to": last} and expected > 0

        month_start = ymd((today().replace(day=1) - dt.timedelta(days=1)).replace(day=1))
        campaigns = ok(await client.call_tool("clevertap_get_campaigns", {"from": "last month", "to": "today"}))
        targets = (await raw(client, "POST", "/1/targets/list.json", body={"from": month_start, "to": ymd(today())}))[
            "targets"
        ]
        assert [c["id"] for c in campaigns["campaigns"]] == [t["id"] for t in targets] and targets
        for listed, target in zip(campaigns["campaigns"], targets, strict=True):
            on = str(target["scheduled_on"])
            assert listed["scheduled_on"] == target["scheduled_on"]
            assert listed["scheduled_at"] == f"{on[:4]}-{on[4:6]}-{on[6:8]}T{on[8:10]}:{on[10:12]}:00Z"

        report = ok(await client.call_tool("clevertap_get_message_report", {"from": "last month", "to": "today"}))
        messages = (
            await raw(client, "POST", "/1/message/report.json", body={"from": month_start, "to": ymd(today())})
        )["messages"]
        assert (report["from"], report["to"]) == (month_start, ymd(today()))
        assert [m["message_id"] for m in report["messages"]] == [m["message_id"] for m in messages] and messages
        assert report["count"] == len(messages)
        for key in ("sent", "viewed", "clicked"):
            assert report["totals"][key] == sum(m[key] for m in messages)
        for mine, theirs in zip(report["messages"], messages, strict=True):
            assert {k: mine[k] for k in theirs} == theirs  # every raw field kept as sent
            if theirs["sent"]:
                assert mine["click_rate"] == round(theirs["clicked"] / theirs["sent"], 4)

        exported = ok(
            await client.call_tool(
                "clevertap_get_events",
                {"event_name": "Charged", "from": "yesterday", "to": "today", "batch_size": 5000, "fields": ["ts"]},
            )
        )
        yesterday = ymd(today() - dt.timedelta(days=1))
        everything = await raw_events(client, {"event_name": "Charged", "from": yesterday, "to": ymd(today())})
        assert exported["total_returned"] == exported["returned"] == len(everything) and exported["done"]

        backwards = err(
            await client.call_tool(
                "clevertap_get_event_count", {"event_name": "Charged", "from": "today", "to": "last week"}
            )
        )
        assert f"({ymd(today())}) is after 'to' ({last})" in backwards


# -- one user ----------------------------------------------------------------------------------------------------------


async def test_user_profile_by_email_in_one_call_matches_the_raw_record() -> None:
    async with mcp_client() as client:
        page = ok(
            await client.call_tool(
                "clevertap_get_events",
                {
                    "event_name": "Charged",
                    "from": "7 days ago",
                    "to": "today",
                    "max_records": 1,
                    "fields": ["profile.email"],
                },
            )
        )
        email = page["records"][0]["profile.email"]
        result = await client.call_tool("clevertap_get_user_profile", {"email": email})
        record = (await raw(client, "GET", "/1/profile.json", query={"email": email}))["record"]
    out = ok(result)
    assert len(text(result)) < 4000
    assert out["found"] is True
    profile = out["profile"]
    assert (profile["email"], profile["identity"], profile["name"]) == (email, record["identity"], record["name"])
    assert profile["profileData"] == record["profileData"]
    assert profile["object_ids"] == [p["objectId"] for p in record["platformInfo"]]
    assert all("push_token" not in p for p in profile["platforms"])
    summary = record["events"]
    assert {e["event"] for e in out["events"]} == set(summary) and "Charged" in summary
    for event in out["events"]:
        raw_event = summary[event["event"]]
        assert event["count"] == raw_event["count"]
        assert event["first_seen"] == iso(raw_event["first_seen"])
        assert event["last_seen"] == iso(raw_event["last_seen"])
    assert [e["last_seen"] for e in out["events"]] == sorted((e["last_seen"] for e in out["events"]), reverse=True)


async def test_unknown_user_is_found_false_not_an_error() -> None:
    async with mcp_client() as client:
        raw_answer = await raw(client, "GET", "/1/profile.json", query={"email": "nobody@nowhere.example"})
        answers = [
            await client.call_tool("clevertap_get_user_profile", {key: value})
            for key, value in (("email", "nobody@nowhere.example"), ("identity", "no-such-user"), ("object_id", "zz"))
        ]
    assert raw_answer.get("status") != "success" or not raw_answer.get("record")  # CleverTap knows no such user
    for answer in answers:
        out = ok(answer)
        assert out["found"] is False and "profile" not in out
        assert "clevertap_get_user_profiles" in out["next_step"]
        assert "404" not in text(answer)


# -- exports -----------------------------------------------------------------------------------------------------------


async def test_fields_project_exported_records_to_the_listed_keys() -> None:
    fields = ["time", "ts", "Amount", "profile.identity", "event_props.Currency", "City", "Nope"]
    async with mcp_client() as client:
        records: list[dict[str, Any]] = []
        page = ok(
            await client.call_tool(
                "clevertap_get_events",
                {"event_name": "Charged", "from": "yesterday", "to": "yesterday", "batch_size": 50, "fields": fields},
            )
        )
        records += page["records"]
        while not page["done"]:
            page = ok(await client.call_tool("clevertap_get_events_by_cursor", {"cursor": page["cursor"]}))
            records += page["records"]
        yesterday = ymd(today() - dt.timedelta(days=1))
        everything = await raw_events(client, {"event_name": "Charged", "from": yesterday, "to": yesterday})
    assert page["total_returned"] == len(records) == len(everything) > 0
    assert "'Nope'" in page["next_step"]
    for mine, theirs in zip(records, everything, strict=True):
        ts = str(theirs["ts"])
        expected = {
            "time": f"{ts[:4]}-{ts[4:6]}-{ts[6:8]}T{ts[8:10]}:{ts[10:12]}:{ts[12:]}Z",
            "ts": theirs["ts"],
            "Amount": theirs["event_props"]["Amount"],
            "profile.identity": theirs["profile"]["identity"],
            "event_props.Currency": theirs["event_props"]["Currency"],
            "City": theirs["profile"]["profileData"]["City"],
        }
        assert mine == expected


async def test_profile_exports_give_iso_first_and_last_seen() -> None:
    async with mcp_client() as client:
        page = ok(
            await client.call_tool(
                "clevertap_get_user_profiles",
                {
                    "event_name": "Charged",
                    "from": "7 days ago",
                    "to": "today",
                    "max_records": 1,
                    "fields": ["identity", "events"],
                },
            )
        )
        mine = page["records"][0]
        record = (await raw(client, "GET", "/1/profile.json", query={"identity": mine["identity"]}))["record"]
    for name, summary in record["events"].items():
        assert mine["events"][name] == {
            "count": summary["count"],
            "first_seen": iso(summary["first_seen"]),
            "last_seen": iso(summary["last_seen"]),
        }


# -- errors ------------------------------------------------------------------------------------------------------------


async def test_clevertap_errors_through_mcp_carry_their_own_next_step() -> None:
    async with mcp_client() as client:
        unknown = err(await client.call_tool("clevertap_get_campaign_report", {"id": 123456789}))
        raw_unknown = await raw(client, "POST", "/1/targets/result.json", body={"id": 123456789})
        email = {
            "name": "Hint check",
            "target_mode": "email",
            "where": {},
            "content": {"subject": "Hi", "body": "<p>Hi</p>"},
            "when": "now",
        }
        mandatory = err(await client.call_tool("clevertap_create_campaign", email))
    assert "invalid target id" in str(raw_unknown).lower()
    assert unknown.startswith("CleverTap error") and "clevertap_get_campaigns" in unknown.split("What to do:")[1]
    assert mandatory.startswith("CleverTap error") and "sender_name" in mandatory.split("What to do:")[1]
    assert "YYYYMMDD dates" not in unknown + mandatory  # not the old one-size-fits-all hint


def test_documented_errors_map_to_specific_steps() -> None:
    def hint(status: int, body: Any, headers: dict[str, str] | None = None) -> str:
        error = error_for(RawResponse(status, body, headers or {}), "POST", "/1/counts/trends.json")
        assert error is not None
        return error.hint or ""

    invalid_event = hint(400, {"status": "fail", "error": '["Invalid event : Uninstalled"]', "code": 400})
    assert "'Uninstalled'" in invalid_event and "case-sensitive" in invalid_event
    assert "Wait 42 s" in hint(429, {"status": "fail", "error": "Too many concurrent requests"}, {"Retry-After": "42"})
    assert "10 s" in hint(429, {"status": "fail", "error": "Too many concurrent requests", "code": 429})
    assert "CLEVERTAP_ACCOUNT_ID" in hint(401, {"status": "fail", "error": "Account ID is not valid", "code": 401})
    assert "CLEVERTAP_PASSCODE" in hint(401, {"status": "fail", "error": "Passcode Invalid", "code": 401})
    assert "'devices'" in hint(200, {"status": "fail", "error": "'devices' is mandatory for push", "code": 400})
    assert "20261126" in hint(400, {"status": "fail", "error": "'from' must not be after 'to'", "code": 400})
    assert "run the count again" in hint(400, {"status": "fail", "error": "Invalid request id"})
    assert "clevertap_get_campaigns" in hint(200, {"status": "fail", "error": "Invalid target id: 7"})
    assert "inputSchema" in hint(400, {"status": "fail", "error": "Some mandatory parameter was missing."})
    assert clevertap_hint("Dates must be real calendar dates", 4002) == clevertap_hint("whatever", 4002)
    assert clevertap_hint("Trying to raise a restricted system event") and clevertap_hint("no such thing") is None
