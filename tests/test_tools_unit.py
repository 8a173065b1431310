"""Unit tests of the tool catalog: declarations, schemas, and every implementation against in-memory fakes."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from tests.fakes_tools import Fakes, make_fakes
from tools.api import ActionInfo, RawResponse
from tools.base import ToolSpec
from tools.catalog import CATALOG, by_action, by_name, search_catalog
from tools.errors import (
    CampaignNotCompleted,
    CleverTapCredentialsError,
    CleverTapError,
    ConsentRequired,
    CursorExpired,
    InputError,
    ProfileNotFound,
)
from tools.proxy import check_path
from tools.uploads import index_ranges

pytestmark = pytest.mark.anyio

EVENTS = [
    {"profile": {"identity": f"u{i}", "objectId": f"g{i}"}, "ts": 20261101120000 + i, "event_props": {"Amount": i}}
    for i in range(25)
]
PROFILES = [{"identity": f"u{i}", "profileData": {"Name": f"User {i}"}} for i in range(30)]
CAMPAIGN = {
    "name": "Winter sale",
    "target_mode": "push",
    "where": {"event_name": "App Launched", "from": 20261101, "to": 20261130},
    "content": {"title": "Hi", "body": "50% off"},
    "devices": ["android", "ios"],
    "when": "now",
}


def strip_titles(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: strip_titles(v) for k, v in schema.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(schema, list):
        return [strip_titles(v) for v in schema]
    return schema


def dump(output: Any) -> dict[str, Any]:
    return output.model_dump(mode="json", by_alias=True, exclude_none=True)


async def run(spec: ToolSpec[Any, Any], fakes: Fakes, args: dict[str, Any], **ctx: Any) -> dict[str, Any]:
    parsed = spec.input_model.model_validate(args)
    return dump(await spec.impl(fakes.ctx(**ctx), parsed))


def tool(name: str) -> ToolSpec[Any, Any]:
    spec = by_name(name)
    assert spec is not None
    return spec


@pytest.fixture
def fakes() -> Fakes:
    f = make_fakes()
    f.api.datasets = {"/1/events.json": EVENTS, "/1/profiles.json": PROFILES}
    f.api.counts = {"/1/counts/events.json": 42, "/1/counts/profiles.json": 7}
    f.api.routes[("POST", "/1/now.json")] = {
        "status": "success",
        "count": 214,
        "last_processed_ts": 1486536600,
        "os": {"android": 196, "ios": 35},
    }
    f.api.routes[("POST", "/1/targets/list.json")] = {
        "status": "success",
        "targets": [{"id": 1457429935, "name": "My API Campaign", "scheduled_on": 201603081330, "status": "completed"}],
    }
    f.api.routes[("POST", "/1/targets/result.json")] = {"status": "success", "result": {"sent": 82, "clicked": 28}}
    f.api.routes[("POST", "/1/targets/create.json")] = lambda m, p, q, body: (
        {"status": "success", "estimates": {"android": 10, "ios": 30}}
        if body.get("estimate_only")
        else {"status": "success", "id": 1457433898, "estimates": {"android": 10, "ios": 30}}
    )
    f.api.routes[("GET", "/1/profile.json")] = lambda m, p, query, b: (
        {"status": "success", "record": {"identity": "u1", "profileData": {"Name": "Jack", "Email": "j@x.com"}}}
        if (query or {}).get("identity") == "u1"
        else {"status": "success", "record": None}
    )
    f.api.routes[("POST", "/1/message/report.json")] = {
        "status": "success",
        "messages": [{"message_id": 1, "message_name": "Hi", "start_date": 201603081330, "sent": 82, "clicked": 28}],
    }
    f.executor.actions = [
        ActionInfo(
            id="a1", key="get-campaigns", name="Get Campaigns", description="List.", input_schema={}, read_only=True
        )
    ]
    f.executor.action_output = {"campaigns": []}
    f.executor.responses[("GET", "/1/profile.json")] = RawResponse(200, {"status": "success", "record": {"a": 1}})
    return f


# Calls against the in-memory fakes, whose answers these arguments fit; each result must validate against the
# tool's own output schema. (Every tool's own examples run on the sandbox in test_catalog.py.)
EXAMPLES: dict[str, dict[str, Any]] = {
    "clevertap_connect": {"wait_seconds": 5},
    "clevertap_real_time_user_count": {"os": True, "device": True},
    "clevertap_get_event_count": {"event_name": "Charged", "from": 20261101, "to": "2026-11-07"},
    "clevertap_get_profile_count": {"event_name": "Charged", "from": 20261101, "to": 20261107},
    "clevertap_get_events": {"event_name": "Charged", "from": 20261101, "to": 20261107, "batch_size": 10},
    "clevertap_get_events_by_cursor": {"cursor": "<events handle>"},
    "clevertap_get_user_profiles": {"event_name": "Charged", "from": 20261101, "to": 20261107, "batch_size": 23},
    "clevertap_get_user_profiles_by_cursor": {"cursor": "<profiles handle>"},
    "clevertap_upload_events": {"events": [{"identity": 1, "evtName": "Charged", "evtData": {}, "ts": 1700000000}]},
    "clevertap_upload_user_profiles": {"profiles": [{"identity": "u1", "profileData": {"Name": "A"}}]},
    "clevertap_upload_device_tokens": {"tokens": [{"objectId": "g1", "tokenData": {"id": "t", "type": "fcm"}}]},
    "clevertap_get_campaigns": {"from": 20261101, "to": 20261130},
    "clevertap_get_campaign_report": {"id": 1457432766},
    "clevertap_create_campaign": CAMPAIGN,
    "clevertap_stop_campaign": {"id": 1457432766},
    "clevertap_delete_user_profile": {"identity": ["u1", "u2"]},
    "clevertap_search_actions": {"intent": "list campaigns"},
    "clevertap_run_action": {"action": "get-campaigns", "input": {"from": 20261101, "to": 20261130}},
    "clevertap_request": {"method": "GET", "path": "/1/profile.json", "query": {"identity": "u1"}},
    "clevertap_get_trends": {"event_name": "Charged", "from": 20261101, "to": 20261107},
    "clevertap_get_top_values": {"event_name": "Charged", "from": 20261101, "to": 20261107, "property": "City"},
    "clevertap_get_user_profile": {"identity": "u1"},
    "clevertap_get_message_report": {"from": "last month", "to": "today", "channel": ["push", "email"]},
}


# -- catalog -------------------------------------------------------------------------------------------------------


def test_catalog_lookups_find_every_tool_by_name_and_action_key() -> None:
    assert len({s.name for s in CATALOG}) == len(CATALOG)
    assert len({s.action_key for s in CATALOG if s.action_key}) == sum(1 for s in CATALOG if s.action_key)
    for spec in CATALOG:
        assert by_name(spec.name) is spec
        assert by_action(spec.name) is spec
        if spec.action_key:
            assert by_action(spec.action_key) is spec
    assert by_name("nope") is None and by_action("nope") is None


def test_annotations_are_explicit_and_consistent() -> None:
    for spec in CATALOG:
        hints = spec.annotations()
        assert all(isinstance(hints[k], bool) for k in ("readOnlyHint", "destructiveHint", "idempotentHint"))
        assert hints["openWorldHint"] is True
        if spec.read_only:
            assert not spec.destructive
    expected = {
        "clevertap_upload_events": (False, False, False),
        "clevertap_upload_user_profiles": (False, True, True),
        "clevertap_upload_device_tokens": (False, False, True),
        "clevertap_create_campaign": (False, True, False),
        "clevertap_stop_campaign": (False, True, True),
        "clevertap_delete_user_profile": (False, True, True),
        "clevertap_run_action": (False, True, False),
        "clevertap_request": (False, True, False),
        "clevertap_connect": (True, False, True),
        "clevertap_search_actions": (True, False, True),
    }
    for name, (ro, destructive, idempotent) in expected.items():
        spec = tool(name)
        assert (spec.read_only, spec.destructive, spec.idempotent) == (ro, destructive, idempotent), name


def test_search_catalog_scores_keywords() -> None:
    top = search_catalog("how many users are active right now", 3)
    assert top[0].key == "real-time-user-count"
    assert search_catalog("delete a user profile", 1)[0].key == "delete-user-profile"
    assert search_catalog("next page of events", 1)[0].key == "get-events-by-cursor"
    assert search_catalog("upload push device tokens", 1)[0].key == "upload-device-tokens"
    found = search_catalog("campaign", 50)
    assert {a.key for a in found} >= {"get-campaigns", "create-campaign", "stop-campaign", "get-campaign-report"}
    assert all(a.id == a.key and a.input_schema and a.read_only is not None for a in found)
    assert search_catalog("zzzz qqqq", 5) == []
    assert len(search_catalog("get", 2)) == 2
    keys = {a.key for a in search_catalog("get count upload campaign profile events real time", 50)}
    assert keys <= {s.action_key for s in CATALOG if s.action_key}


# -- schemas -------------------------------------------------------------------------------------------------------


def _properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = list(schema.get("properties", {}).items())
    for sub in schema.get("$defs", {}).values():
        out += list(sub.get("properties", {}).items())
    return out


def test_input_schemas_describe_every_field_and_forbid_extras() -> None:
    for spec in CATALOG:
        schema = spec.input_schema()
        assert schema["additionalProperties"] is False, spec.name
        for name, prop in _properties(schema):
            assert prop.get("description"), f"{spec.name}.{name} has no description"
        for sub in schema.get("$defs", {}).values():
            assert sub.get("additionalProperties") is False, spec.name
        with pytest.raises(ValidationError, match="unexpected_field"):
            spec.input_model.model_validate({**spec.examples_invalid[0], "unexpected_field": 1})


async def test_every_example_output_validates_against_its_output_schema(fakes: Fakes) -> None:
    events = await run(tool("clevertap_get_events"), fakes, EXAMPLES["clevertap_get_events"])
    profiles = await run(tool("clevertap_get_user_profiles"), fakes, {**EXAMPLES["clevertap_get_user_profiles"]})
    handles = {"<events handle>": events["cursor"], "<profiles handle>": profiles["cursor"]}
    for name, example in EXAMPLES.items():
        spec = tool(name)
        args = {k: handles.get(v, v) if isinstance(v, str) else v for k, v in example.items()}
        result = await run(spec, fakes, args)
        for mode in ("validation", "serialization"):
            schema = spec.output_model.model_json_schema(by_alias=True, mode=mode)
            jsonschema.validate(result, schema)
            jsonschema.validate(result, strip_titles(schema))


# -- connect, counts, real time -------------------------------------------------------------------------------------


async def test_connect_mirrors_the_executor(fakes: Fakes) -> None:
    out = await run(tool("clevertap_connect"), fakes, {"wait_seconds": 12})
    assert out["state"] == "READY" and out["account_id"] == "ACC-1" and fakes.executor.connects == [12]
    with pytest.raises(ValidationError):
        tool("clevertap_connect").input_model.model_validate({"wait_seconds": 301})


async def test_real_time_sends_only_true_flags(fakes: Fakes) -> None:
    out = await run(tool("clevertap_real_time_user_count"), fakes, {"os": True, "browser": False})
    assert fakes.api.calls[-1][:2] == ("POST", "/1/now.json") and fakes.api.calls[-1][3] == {"os": True}
    assert out == {
        "count": 214,
        "last_processed_ts": 1486536600,
        "last_processed_at": "2017-02-08T06:50:00Z",
        "breakdowns": {"os": {"android": 196, "ios": 35}},
    }


async def test_counts_validate_dates(fakes: Fakes) -> None:
    out = await run(tool("clevertap_get_event_count"), fakes, EXAMPLES["clevertap_get_event_count"])
    assert out["count"] == 42 and out["done"] is True
    with pytest.raises(ValidationError, match="after"):
        tool("clevertap_get_event_count").input_model.model_validate(
            {"event_name": "x", "from": 20261107, "to": 20261101}
        )
    with pytest.raises(ValidationError):
        tool("clevertap_get_event_count").input_model.model_validate({"event_name": "x", "from": 20261301, "to": 1})


# -- exports -------------------------------------------------------------------------------------------------------


async def test_export_pages_through_with_short_handles(fakes: Fakes) -> None:
    first = await run(tool("clevertap_get_events"), fakes, {**EXAMPLES["clevertap_get_events"], "app": True})
    assert first["returned"] == 10 and not first["done"] and first["cursor"].startswith("ct_")
    assert len(first["cursor"]) < 40
    assert fakes.api.exports[-1]["flags"] == {"app": True} and fakes.api.exports[-1]["batch_size"] == 10
    assert fakes.api.exports[-1]["body"] == {"event_name": "Charged", "from": 20261101, "to": 20261107}
    seen = list(first["records"])
    cursor = first["cursor"]
    nxt = tool("clevertap_get_events_by_cursor")
    for _ in range(5):
        page = await run(nxt, fakes, {"cursor": cursor})
        seen += page["records"]
        if page["done"]:
            assert "cursor" not in page
            break
        cursor = page["cursor"]
    # every record as CleverTap sent it, plus its ISO 8601 UTC time beside the compact ts
    timed = [{**e, "time": f"2026-11-01T12:00:{i:02d}Z"} for i, e in enumerate(EVENTS)]
    assert seen == timed
    # Handles are not consumed: the same handle gives the same page again.
    again = await run(nxt, fakes, {"cursor": first["cursor"]})
    assert again["records"] == timed[10:20]


async def test_export_is_bounded_and_keeps_a_position(fakes: Fakes) -> None:
    big = [{"i": i, "pad": "x" * 300} for i in range(30)]
    fakes.api.datasets["/1/events.json"] = big
    args = {**EXAMPLES["clevertap_get_events"], "batch_size": 30}
    first = await run(tool("clevertap_get_events"), fakes, args, max_result_bytes=3000)
    assert 0 < first["returned"] < 30 and len(json.dumps(first)) < 3000
    state = fakes.handles.items[first["cursor"]]
    # The handle holds a position in the page (its cursor and an offset), never the remaining records.
    assert state["kind"] == "events" and state["path"] == "/1/events.json" and state["cursor"]
    assert state["offset"] == first["returned"] and "buffer" not in state
    got = list(first["records"])
    cursor = first["cursor"]
    while cursor:
        page = await run(tool("clevertap_get_events_by_cursor"), fakes, {"cursor": cursor, "max_records": 4})
        assert page["returned"] <= 4
        got += page["records"]
        cursor = page.get("cursor")
    assert got == big


async def test_export_of_nothing_is_done(fakes: Fakes) -> None:
    fakes.api.datasets["/1/profiles.json"] = []
    out = await run(tool("clevertap_get_user_profiles"), fakes, EXAMPLES["clevertap_get_user_profiles"])
    assert out == {
        "records": [],
        "returned": 0,
        "total_returned": 0,
        "done": True,
        "next_step": "All records have been returned.",
    }


async def test_cursor_errors(fakes: Fakes) -> None:
    events = await run(tool("clevertap_get_events"), fakes, EXAMPLES["clevertap_get_events"])
    with pytest.raises(InputError, match="profiles export") as wrong:
        await run(tool("clevertap_get_user_profiles_by_cursor"), fakes, {"cursor": events["cursor"]})
    assert "clevertap_get_events_by_cursor" in (wrong.value.hint or "")
    with pytest.raises(InputError, match="unknown or has expired") as unknown:
        await run(tool("clevertap_get_events_by_cursor"), fakes, {"cursor": "ct_nope"})
    assert "clevertap_get_events" in (unknown.value.hint or "")
    fakes.handles.forget(events["cursor"])
    with pytest.raises(InputError):
        await run(tool("clevertap_get_events_by_cursor"), fakes, {"cursor": events["cursor"]})
    with pytest.raises(CursorExpired) as expired:
        await run(tool("clevertap_get_events_by_cursor"), fakes, {"cursor": "Z" * 120})
    assert "clevertap_get_events" in (expired.value.hint or "")


async def test_raw_cleverTap_cursor_is_used_directly(fakes: Fakes) -> None:
    raw = fakes.api._cursor("/1/profiles.json", 0, 5)
    out = await run(tool("clevertap_get_user_profiles_by_cursor"), fakes, {"cursor": raw})
    assert out["records"] == PROFILES[:5] and not out["done"] and raw not in json.dumps(out)


# -- uploads -------------------------------------------------------------------------------------------------------


async def test_upload_reports_rejections_by_index(fakes: Fakes) -> None:
    fakes.api.reject = lambda r: "Email is not valid" if r.get("profileData", {}).get("Email") == "bad" else None
    profiles = [
        {"identity": f"u{i}", "profileData": {"Email": "bad" if i in (3, 1500) else "a@b.c"}} for i in range(2000)
    ]
    out = await run(tool("clevertap_upload_user_profiles"), fakes, {"profiles": profiles})
    assert out["status"] == "partial" and out["processed"] == 1998 and out["batches"] == 2
    assert [u["index"] for u in out["unprocessed"]] == [3, 1500] and out["unprocessed_count"] == 2
    assert out["unprocessed"][0]["record"]["identity"] == "u3"
    assert "resend only those indices" in out["next_step"]
    sent = fakes.api.uploads[-1]
    assert sent["kind"] == "profile" and sent["records"][0] == {
        "identity": "u0",
        "profileData": {"Email": "a@b.c"},
        "type": "profile",
    }
    assert fakes.progress  # the client's progress reaches the MCP progress callback


async def test_upload_summarises_unsent_batches_and_dry_run(fakes: Fakes) -> None:
    fakes.api.unsent_batches = {1}
    events = [{"identity": "u", "evtName": "E", "evtData": {}} for _ in range(2500)]
    out = await run(tool("clevertap_upload_events"), fakes, {"events": events, "dry_run": True})
    assert out["unsent"] == ["1000-1999"] and out["status"] == "partial"
    assert "1000 records in 'unsent' got no answer (timeout)" in out["next_step"]
    assert fakes.api.uploads[-1]["dry_run"] is True
    fakes.api.unsent_batches = {0}
    out = await run(tool("clevertap_upload_events"), fakes, {"events": events[:10]})
    assert out["status"] == "fail" and out["processed"] == 0


def test_index_ranges() -> None:
    assert index_ranges([5, 0, 1, 2, 7, 8]) == ["0-2", "5", "7-8"]
    assert index_ranges(list(range(0, 20, 2)), limit=3) == ["0", "2", "4", "..."]
    assert index_ranges([]) == []


def test_malformed_upload_lists_first_indices() -> None:
    model = tool("clevertap_upload_events").input_model
    events: list[Any] = [{"identity": "u", "evtName": "E", "evtData": {}} for _ in range(50)]
    events[2] = {"evtName": "E", "evtData": {}}
    events[7] = {"identity": "u", "evtName": "E", "evtData": {}, "ts": 1700000000000}
    events[9] = {"identity": "u", "evtName": "E", "evtData": "nope"}
    with pytest.raises(ValidationError) as exc:
        model.model_validate({"events": events})
    text = str(exc.value)
    assert "3 of 50 events are malformed" in text and "nothing was sent" in text
    assert "[2]" in text and "identity" in text and "[7]" in text and "SECONDS" in text and "[9]" in text
    with pytest.raises(ValidationError):
        model.model_validate({"events": []})
    tokens = tool("clevertap_upload_device_tokens").input_model
    with pytest.raises(ValidationError, match="chrome"):
        tokens.model_validate({"tokens": [{"objectId": "g", "tokenData": {"id": "t", "type": "chrome"}}]})
    with pytest.raises(ValidationError, match="0-based"):
        tokens.model_validate({"tokens": [{"identity": "u", "tokenData": {"id": "t", "type": "fcm"}}]})


# -- campaigns -----------------------------------------------------------------------------------------------------


async def test_get_campaigns_lists_the_targets(fakes: Fakes) -> None:
    # The wire client puts every answer shape under "targets" (tests/test_wire_errors.py).
    fakes.api.routes[("POST", "/1/targets/list.json")] = {"status": "success", "targets": [{"id": 1, "name": "A"}]}
    out = await run(tool("clevertap_get_campaigns"), fakes, {"from": 20260101, "to": 20260131})
    assert out["campaigns"] == [{"id": 1, "name": "A"}] and out["count"] == 1
    assert fakes.api.calls[-1][3] == {"from": 20260101, "to": 20260131}


async def test_campaign_report_not_completed_is_not_an_error(fakes: Fakes) -> None:
    fakes.api.routes[("POST", "/1/targets/result.json")] = CampaignNotCompleted(
        "CleverTap said: This target hasn't been completed", details={"error": "This target hasn't been completed"}
    )
    out = await run(tool("clevertap_get_campaign_report"), fakes, {"id": 5})
    assert out["completed"] is False and "hasn't been completed" in out["message"] and out["next_step"]
    fakes.api.routes[("POST", "/1/targets/result.json")] = CleverTapError("Invalid id")
    with pytest.raises(CleverTapError):
        await run(tool("clevertap_get_campaign_report"), fakes, {"id": 5})
    with pytest.raises(ValidationError):
        tool("clevertap_get_campaign_report").input_model.model_validate({"id": -1})


async def test_create_campaign_estimates_first_then_needs_the_token(fakes: Fakes) -> None:
    spec = tool("clevertap_create_campaign")
    preview = await run(spec, fakes, CAMPAIGN)
    assert preview["created"] is False and preview["total_estimated_reach"] == 40
    estimates = [c[3] for c in fakes.api.calls if c[3] and c[3].get("estimate_only")]
    # The exact payload is estimated, then everyone: this fake answers 40 for any audience, so the filter is flagged.
    assert estimates == [{**CAMPAIGN, "estimate_only": True}, {**CAMPAIGN, "where": {}, "estimate_only": True}]
    assert "every reachable user" in preview["warning"] and preview["next_step"].startswith("WARNING")
    assert "confirm_token" in preview and "cannot be recalled" in preview["next_step"]
    assert len([c for c in fakes.api.calls if c[3] and not c[3].get("estimate_only")]) == 0
    with pytest.raises(ConsentRequired):
        await run(spec, fakes, {**CAMPAIGN, "name": "Other", "confirm_token": preview["confirm_token"]})
    created = await run(spec, fakes, {**CAMPAIGN, "confirm_token": preview["confirm_token"]})
    assert created["created"] is True and created["id"] == 1457433898
    assert fakes.api.calls[-1][3] == CAMPAIGN
    fakes.consent.expired.add(preview["confirm_token"])
    with pytest.raises(ConsentRequired, match="expired"):
        await run(spec, fakes, {**CAMPAIGN, "confirm_token": preview["confirm_token"]})


async def test_create_campaign_without_confirmation_mode(fakes: Fakes) -> None:
    out = await run(tool("clevertap_create_campaign"), fakes, CAMPAIGN, confirm_required=False)
    assert out["created"] is True and "estimate_only" not in fakes.api.calls[-1][3]


def test_create_campaign_input_rules() -> None:
    model = tool("clevertap_create_campaign").input_model
    for bad, match in [
        ({**CAMPAIGN, "segment": 12}, "exactly one"),
        ({k: v for k, v in CAMPAIGN.items() if k != "devices"}, "devices"),
        ({**CAMPAIGN, "when": "tomorrow"}, "YYYYMMDD HH:MM"),
        ({**CAMPAIGN, "when": "20261332 10:00"}, "YYYYMMDD HH:MM"),
        ({**CAMPAIGN, "content": {"body": "x"}}, "title"),
        ({**CAMPAIGN, "target_mode": "fax"}, "target_mode"),
    ]:
        with pytest.raises(ValidationError, match=match):
            model.model_validate(bad)
    ok = model.model_validate(
        {**CAMPAIGN, "where": {}, "when": "20261201 09:30", "target_mode": "sms", "content": {"body": "b"}}
    )
    assert ok.when == "20261201 09:30"


async def test_stop_campaign_previews_then_stops_a_running_campaign(fakes: Fakes) -> None:
    fakes.api.routes[("POST", "/1/targets/result.json")] = CampaignNotCompleted(
        "This target hasn't been completed", details={"error": "This target hasn't been completed"}
    )
    fakes.api.routes[("POST", "/1/targets/list.json")] = {"targets": [{"id": 77, "status": "running"}]}
    spec = tool("clevertap_stop_campaign")
    preview = await run(spec, fakes, {"id": 77})
    assert preview["stopped"] is False and preview["status"] == "running" and preview["confirm_token"]
    assert not any(c[1] == "/1/targets/stop.json" for c in fakes.api.calls)
    out = await run(spec, fakes, {"id": 77, "confirm_token": preview["confirm_token"]})
    assert out["stopped"] is True and fakes.api.calls[-1][1:] == ("/1/targets/stop.json", {}, {"id": 77})


@pytest.mark.parametrize("status", ["completed", "stopped"])
async def test_stop_campaign_does_not_claim_to_stop_what_is_not_running(fakes: Fakes, status: str) -> None:
    if status != "completed":
        fakes.api.routes[("POST", "/1/targets/result.json")] = CampaignNotCompleted("This target hasn't been completed")
        fakes.api.routes[("POST", "/1/targets/list.json")] = {"targets": [{"id": 77, "status": status}]}
    out = await run(tool("clevertap_stop_campaign"), fakes, {"id": 77, "confirm_token": "anything"})
    assert out["stopped"] is False and out["status"] == status and status in out["message"]
    assert "confirm_token" not in out and not any(c[1] == "/1/targets/stop.json" for c in fakes.api.calls)


# -- delete profiles -----------------------------------------------------------------------------------------------


async def test_delete_profiles_previews_then_deletes(fakes: Fakes) -> None:
    spec = tool("clevertap_delete_user_profile")
    preview = await run(spec, fakes, {"identity": ["u1", "u2"]})
    assert preview["deleted"] is False and preview["count"] == 2
    assert preview["found"] == [
        {"id": "u1", "found": True, "name": "Jack", "email": "j@x.com"},
        {"id": "u2", "found": False},
    ]
    assert not any(c[1] == "/1/delete/profiles.json" for c in fakes.api.calls)
    with pytest.raises(ConsentRequired):
        await run(spec, fakes, {"identity": ["u1"], "confirm_token": preview["confirm_token"]})
    done = await run(spec, fakes, {"identity": ["u1", "u2"], "confirm_token": preview["confirm_token"]})
    assert done["deleted"] is True
    assert fakes.api.calls[-1][:2] == ("POST", "/1/delete/profiles.json")
    assert fakes.api.calls[-1][3] == {"identity": ["u1", "u2"]}


async def test_delete_profiles_by_guid_and_lookup_errors(fakes: Fakes) -> None:
    fakes.api.routes[("GET", "/1/profile.json")] = ProfileNotFound("Profile not found")
    out = await run(tool("clevertap_delete_user_profile"), fakes, {"guid": "g1"})
    assert out["key"] == "guid" and out["found"] == [{"id": "g1", "found": False}]
    assert fakes.api.calls[-1][2] == {"objectId": "g1"}
    fakes.api.routes[("GET", "/1/profile.json")] = CleverTapCredentialsError("bad passcode", status=401)
    with pytest.raises(CleverTapCredentialsError):
        await run(tool("clevertap_delete_user_profile"), fakes, {"guid": "g1"})


def test_delete_profiles_input_rules() -> None:
    model = tool("clevertap_delete_user_profile").input_model
    for bad in [{}, {"identity": "a", "guid": "b"}, {"identity": [f"u{i}" for i in range(101)]}, {"identity": []}]:
        with pytest.raises(ValidationError):
            model.model_validate(bad)


# -- actions -------------------------------------------------------------------------------------------------------


async def test_search_and_run_actions(fakes: Fakes) -> None:
    found = await run(tool("clevertap_search_actions"), fakes, {"intent": "campaigns", "limit": 5})
    assert found["actions"][0]["key"] == "get-campaigns" and "clevertap_run_action" in found["next_step"]
    out = await run(tool("clevertap_run_action"), fakes, EXAMPLES["clevertap_run_action"])
    assert out == {"action": "get-campaigns", "ran": True, "output": {"campaigns": []}, "action_run_id": "run-1"}
    assert fakes.executor.runs[-1] == ("get-campaigns", {"from": 20261101, "to": 20261130})


def gated(fakes: Fakes, tool_name: str | None = None) -> list[str]:
    """Make the fake executor answer like the server's boundary for an unconfirmed irreversible call: nothing is
    sent, ConsentRequired says a preview is needed (and which typed tool owns the action, if any)."""
    refused: list[str] = []

    def refuse(what: str) -> None:
        refused.append(what)
        details: dict[str, Any] = {"preview": True, "why": "it cannot be undone"}
        if tool_name:
            details["tool"] = tool_name
        raise ConsentRequired(f"{what} needs the user's confirmation first", details=details)

    async def request(method: str, path: str, query: Any = None, body: Any = None) -> RawResponse:
        refuse(f"{method} {path}")
        raise AssertionError

    async def run_action(key_or_id: str, input: Any) -> Any:
        refuse(key_or_id)

    fakes.executor.request = request  # type: ignore[method-assign]
    fakes.executor.run_action = run_action  # type: ignore[method-assign]
    return refused


async def test_run_action_points_to_the_typed_tool_the_boundary_names(fakes: Fakes) -> None:
    refused = gated(fakes, "clevertap_create_campaign")
    with pytest.raises(InputError) as raised:
        await run(tool("clevertap_run_action"), fakes, {"action": "6650c0ffee0000000000a0c1", "input": {}})
    assert "clevertap_create_campaign" in raised.value.render()
    assert refused == ["6650c0ffee0000000000a0c1"] and fakes.consent.issued == []


async def test_run_action_previews_what_the_boundary_will_not_run_unconfirmed(fakes: Fakes) -> None:
    gated(fakes)
    args = {"action": "send-test-push", "input": {"objectId": "o1"}}
    preview = await run(tool("clevertap_run_action"), fakes, args)
    assert preview["ran"] is False and preview["confirm_token"] and "once" in preview["next_step"]
    with pytest.raises(ConsentRequired, match="does not match"):
        await run(tool("clevertap_run_action"), fakes, {**args, "input": {}, "confirm_token": preview["confirm_token"]})


async def test_run_action_output_is_bounded(fakes: Fakes) -> None:
    fakes.executor.action_output = {"records": [{"i": i, "pad": "y" * 200} for i in range(500)]}
    out = await run(tool("clevertap_run_action"), fakes, {"action": "get-events"}, max_result_bytes=5000)
    assert len(json.dumps(out)) < 5000 and out["note"] and out["output"]["records"][0]["i"] == 0


# -- raw request ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "https://evil.example/1/x",
        "//evil.example/1/x",
        "/1/../admin",
        "/1/%2e%2e/admin",
        "/1/%252e%252e/admin",
        "/1/a%2f..%2fb",
        "/1/a\\b",
        "/1/a\r\nHost: x",
        "/1/a b",
        "/1/a#frag",
        "/1/profile.json?email=x",
        "/3/x",
        "/1//x",
        "/1/a%0d%0a",
        "profile.json",
    ],
)
def test_request_path_refusals(path: str) -> None:
    with pytest.raises(ValidationError):
        tool("clevertap_request").input_model.model_validate({"path": path})


def test_request_path_acceptance() -> None:
    for ok in ("/1/profile.json", "/2/send/externaltrigger.json", "/1/counts/events.json", "/1/upload"):
        assert check_path(ok) == ok


async def test_request_passes_through_statuses(fakes: Fakes) -> None:
    spec = tool("clevertap_request")
    fakes.executor.responses[("POST", "/1/counts/events.json")] = RawResponse(400, {"status": "fail", "error": "bad"})
    out = await run(spec, fakes, {"method": "post", "path": "/1/counts/events.json", "body": {"event_name": "x"}})
    assert out == {"sent": True, "status": 400, "body": {"status": "fail", "error": "bad"}}
    assert fakes.executor.requests[-1] == ("POST", "/1/counts/events.json", None, {"event_name": "x"})
    # A 401 becomes a credentials error in the wire client, not here: tests/test_wire_errors.py.


async def test_request_previews_what_the_boundary_will_not_send_unconfirmed(fakes: Fakes) -> None:
    spec = tool("clevertap_request")
    refused = gated(fakes)
    args = {"method": "POST", "path": "/1/delete/profiles.json", "body": {"identity": "u1"}}
    preview = await run(spec, fakes, args)
    assert preview["sent"] is False and preview["confirm_token"] and refused == ["POST /1/delete/profiles.json"]
    with pytest.raises(ConsentRequired, match="does not match"):
        await run(spec, fakes, {**args, "body": {"identity": "u2"}, "confirm_token": preview["confirm_token"]})
    assert len(refused) == 1  # a token that does not match is refused before anything goes to the executor


async def test_request_bounds(fakes: Fakes) -> None:
    spec = tool("clevertap_request")
    with pytest.raises(InputError, match="at most 1000"):
        await run(spec, fakes, {"method": "POST", "path": "/1/upload", "body": {"d": [{}] * 1001}})
    with pytest.raises(InputError, match="limit"):
        await run(spec, fakes, {"method": "POST", "path": "/1/x.json", "body": {"a": "x" * 5_000_001}})
    fakes.executor.responses[("GET", "/1/big.json")] = RawResponse(200, {"records": [{"v": "z" * 100}] * 2000})
    out = await run(spec, fakes, {"path": "/1/big.json"}, max_result_bytes=4000)
    assert len(json.dumps(out)) < 4000 and "truncated" in out["note"] and out["body"]["records"]


@pytest.mark.parametrize(
    "value",
    [{"a": [1, 2.5, None, True]}, "Zoë 👋", {"text": "NaN"}, [], {"k": "x" * 1000}, {"n": 10**30}],
)
def test_json_size_is_the_compact_utf8_length(value: Any) -> None:
    from tools.results import json_size

    assert json_size(value) == len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def test_json_size_measures_what_the_fast_encoder_refuses() -> None:
    from tools.results import json_size

    assert json_size({"s": "a\ud800b"}) == len('{"s":"a') + 3 + len('b"}')  # a surrogate is 3 bytes
    assert json_size({"when": object()}) > len('{"when":""}')  # written as its str()


def test_take_within_stops_at_the_budget_and_always_makes_progress() -> None:
    from tools.results import take_within

    items = [{"i": i, "pad": "x" * 90} for i in range(50)]  # about 100 bytes each
    n = take_within(items, 1_000)
    assert 8 <= n <= 10
    assert len(json.dumps(items[:n], separators=(",", ":"))) <= 1_000 < len(json.dumps(items[: n + 1]))
    assert take_within(items, 10) == 1  # one record over budget is still returned
    assert take_within(items, 10, min_items=0) == 0
