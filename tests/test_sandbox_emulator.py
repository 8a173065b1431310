"""The sandbox CleverTap emulator, over ASGI and over real HTTP: the documented bodies, quirks and knobs."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from server.backends.sandbox import SandboxApp, SandboxConfig, create_app
from server.backends.sandbox.config import DEFAULT_SEED_EVENTS, DEFAULT_SEED_PROFILES
from server.backends.sandbox.seed import cache_path

pytestmark = pytest.mark.anyio

ANCHOR = dt.date(2026, 5, 1)
ROOT = Path(__file__).resolve().parents[1]
AUTH = {"X-CleverTap-Account-Id": "DEMO-SANDBOX", "X-CleverTap-Passcode": "sandbox"}
MONTH = {"from": 20260401, "to": 20260430}
SMALL: dict[str, Any] = {"seed_profiles": 300, "seed_events": 12_000}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("sandbox-cache"))


def small_config(cache_dir: str, **knobs: Any) -> SandboxConfig:
    return SandboxConfig(anchor=ANCHOR, cache_dir=cache_dir, **{**SMALL, **knobs})


def client_for(app: SandboxApp, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://sandbox.test",
        headers=AUTH if headers is None else headers,
    )


@pytest.fixture
async def client(cache_dir: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_app(small_config(cache_dir, count_partial_polls=0), admin=True)) as c:
        yield c


async def knobs(client: httpx.AsyncClient, **values: Any) -> None:
    r = await client.post("/__sandbox/config", json=values)
    assert r.status_code == 200, r.text


async def export_all(client: httpx.AsyncClient, path: str, body: dict[str, Any], batch: int) -> list[dict[str, Any]]:
    r = await client.post(f"{path}?batch_size={batch}", json=body)
    assert r.json()["status"] == "success", r.text
    cursor = r.json()["cursor"]
    records: list[dict[str, Any]] = []
    while cursor:
        page = (await client.get(f"{path}?cursor={cursor}")).json()
        assert page["status"] == "success", page
        records.extend(page.get("records", []))
        cursor = page.get("next_cursor")
    return records


# ---- construction, auth, envelope ------------------------------------------------------------------------------


async def test_create_app_opens_lazily(tmp_path: Path) -> None:
    app = create_app(SandboxConfig(cache_dir=str(tmp_path / "c"), anchor=ANCHOR, **SMALL))
    assert not (tmp_path / "c").exists()  # nothing generated or opened before the first request
    async with client_for(app) as c:
        assert (await c.get("/1/profile.json?identity=user-00001")).json()["status"] == "success"
    assert list((tmp_path / "c" / "clevertap-mcp").glob("sandbox-seed-v*-20260501-300p-12000e.sqlite"))


async def test_auth_failures_use_clevertap_bodies(cache_dir: str) -> None:
    app = create_app(small_config(cache_dir))
    async with client_for(app, headers={}) as c:
        missing = await c.get("/1/profile.json?identity=1")
        unknown = await c.get("/1/profile.json?identity=1", headers={**AUTH, "X-CleverTap-Account-Id": "W9R-486-4W5Z"})
        wrong = await c.get("/1/profile.json?identity=1", headers={**AUTH, "X-CleverTap-Passcode": "nope"})
        lower = await c.get(
            "/1/profile.json?identity=user-00001",
            headers={"x-clevertap-account-id": "DEMO-SANDBOX", "X-CLEVERTAP-PASSCODE": "sandbox"},
        )
    for r in (missing, unknown):
        assert r.status_code == 401
        assert r.json() == {"status": "fail", "error": "Account ID is not valid", "code": 401}
    assert wrong.status_code == 401
    assert wrong.json() == {"status": "fail", "error": "Passcode Invalid", "code": 401}
    assert "sandbox" not in wrong.text
    assert lower.status_code == 200 and lower.json()["status"] == "success"
    assert lower.headers["content-type"] == "application/json;charset=utf-8"
    assert ": " not in lower.text and ", " not in lower.text.split('"name"')[0]


async def test_unknown_path_wrong_method_and_malformed_json(client: httpx.AsyncClient) -> None:
    r = await client.get("/1/nope.json")
    assert r.status_code == 404 and r.json()["status"] == "fail"
    r = await client.get("/1/upload")
    assert r.status_code == 405 and r.json()["status"] == "fail"
    r = await client.post("/1/counts/events.json", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["status"] == "fail" and r.json()["code"] == 400
    nan = b'{"d":[{"identity":"a","type":"event","evtName":"X","evtData":{"v":NaN}}]}'
    r = await client.post("/1/upload", content=nan, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "NaN" in r.json()["error"]


async def test_admin_endpoints_only_when_enabled(cache_dir: str) -> None:
    async with client_for(create_app(small_config(cache_dir))) as c:
        assert (await c.get("/__sandbox/stats")).status_code == 404
    async with client_for(create_app(small_config(cache_dir), admin=True)) as c:
        stats = (await c.get("/__sandbox/stats")).json()
        assert stats["profiles"] == 300 and stats["events"] == 12_000 and stats["campaigns"] > 20
        bad = await c.post("/__sandbox/config", json={"account_id": "x"})
        assert bad.status_code == 400
        ok = await c.post("/__sandbox/config", json={"slow_s": 0, "count_partial_polls": 2})
        assert ok.json()["config"]["count_partial_polls"] == 2


# ---- upload ----------------------------------------------------------------------------------------------------


def _event(name: str = "Product Viewed", **extra: Any) -> dict[str, Any]:
    return {"identity": "user-00001", "type": "event", "evtName": name, "evtData": {"Price": 5}, **extra}


def _profile(**data: Any) -> dict[str, Any]:
    return {"identity": "user-00002", "type": "profile", "profileData": data}


async def _android_object_id(client: httpx.AsyncClient) -> str:
    for n in range(1, 300):
        record = (await client.get(f"/1/profile.json?identity=user-{n:05d}")).json()["record"]
        for info in record["platformInfo"]:
            if info.get("platform") == "Android":
                return str(info["objectId"])
    raise AssertionError("no Android device in the seed")


async def test_upload_error_codes_and_messages(client: httpx.AsyncClient) -> None:
    await knobs(client, discarded_events=["Old Event"])
    android = await _android_object_id(client)
    cases: list[tuple[int, Any, str]] = [
        (509, {"identity": "1", "type": "event", "evtData": {}}, "Event name is mandatory."),
        (512, _event(evtData=["not", "an", "object"]), "Invalid event structure."),
        (
            513,
            _event("Web Page Viewed"),
            "Event Name is incorrect. ErrorCode: 513 - Trying to raise a restricted system event. ",
        ),
        (514, _profile(Gender="X"), "Profile data is incorrect. Gender needs to be M/F."),
        (515, _profile(Email="$$$$$"), "Profile data is incorrect. Email is not valid."),
        (516, _profile(Phone="223"), "Profile data is incorrect. Phone number is not valid."),
        (517, _profile(Employed="maybe"), "Profile data is incorrect. Employed needs to be Y/N."),
        (518, _profile(Education="None"), "Profile data is incorrect. Education needs to be School/College/Graduate.."),
        (519, _profile(Married="?"), "Profile data is incorrect. Married needs to be Y/N."),
        (520, _profile(Age="aa"), "Profile data is incorrect. Age is invalid."),
        (522, _event(evtData={f"k{i}": i for i in range(257)}), "Event properties limit exceeded."),
        (523, {"type": "event", "evtName": "X", "evtData": {}}, "Identity is mandatory."),
        (524, {"identity": "1", "type": "banana"}, "Data is neither event nor profile."),
        (525, _event(ts=0), "Timestamp should be present in the Unix Epoch format. "),
        (526, {"objectId": "has spaces!", "type": "event", "evtName": "X", "evtData": {}}, "objectId is invalid."),
        (528, _event("Old Event"), "Event is discarded."),
        (
            530,
            {"type": "token", "objectId": "not valid!", "tokenData": {"id": "t", "type": "fcm"}},
            "Invalid objectId.",
        ),
        (531, {"type": "token", "objectId": android, "tokenData": "x"}, "Invalid token data."),
        (532, {"type": "token", "objectId": android, "tokenData": {"type": "fcm"}}, 'Token "id" is not present.'),
        (533, {"type": "token", "objectId": android, "tokenData": {"id": "t"}}, 'Token "type" is not present.'),
        (
            534,
            {"type": "token", "objectId": android, "tokenData": {"id": "t", "type": "apns"}},
            'Token "type" is not valid for "objectId".',
        ),
        (
            535,
            {"type": "token", "objectId": android, "tokenData": {"id": "t", "type": "chrome"}},
            "Invalid token data.",
        ),
    ]
    good = _event("Searched")
    body = {"d": [good] + [record for _, record, _ in cases]}
    r = await client.post("/1/upload", json=body)
    assert r.status_code == 200
    result = r.json()
    assert result["status"] == "partial" and result["processed"] == 1
    by_index = {int(u["error"].rsplit(": ", 1)[1]): u for u in result["unprocessed"]}
    assert len(by_index) == len(cases)
    for k, (code, record, reason) in enumerate(cases, start=2):
        entry = by_index[k]
        assert entry["status"] == "fail" and entry["code"] == code, (code, entry)
        assert entry["error"].startswith(reason), (code, entry["error"])
        assert entry["error"].endswith(f"Skipped record number : {k}")
        assert entry["record"] == record
    # Exact real texts from captured responses.
    assert by_index[6]["error"] == "Profile data is incorrect. Email is not valid.Skipped record number : 6"
    assert by_index[15]["error"] == "Timestamp should be present in the Unix Epoch format. Skipped record number : 15"


async def test_upload_status_limits_and_bad_payloads(client: httpx.AsyncClient) -> None:
    ok = (await client.post("/1/upload", json={"d": [_event(), _profile(Name="Jo")]})).json()
    assert ok == {"status": "success", "processed": 2, "unprocessed": []}
    fail = (await client.post("/1/upload", json={"d": [_event("App Installed")]})).json()
    assert fail["status"] == "fail" and fail["processed"] == 0 and fail["unprocessed"][0]["code"] == 513
    too_many = await client.post("/1/upload", json={"d": [_event()] * 1001})
    assert too_many.status_code == 400 and too_many.json()["status"] == "fail"
    tokens = [{"type": "token", "objectId": "x", "tokenData": {"id": "t", "type": "fcm"}}] * 101
    assert (await client.post("/1/upload", json={"d": tokens})).status_code == 400
    for bad in ({}, {"d": "x"}, [1, 2]):
        r = await client.post("/1/upload", json=bad)
        assert r.status_code == 400 and r.json()["code"] == 400


async def test_upload_creates_profiles_merges_keys_and_dry_run_stores_nothing(client: httpx.AsyncClient) -> None:
    new = {"identity": "new-user-1", "type": "profile", "profileData": {"Name": "New User", "Tier": "A"}}
    dry = (await client.post("/1/upload?dryRun=1", json={"d": [new]})).json()
    assert dry == {"status": "success", "processed": 1, "unprocessed": []}
    missing = (await client.get("/1/profile.json?identity=new-user-1")).json()
    assert missing == {"status": "fail", "error": "Profile not found", "code": 404}

    assert (await client.post("/1/upload", json={"d": [new]})).json()["status"] == "success"
    merge = {"identity": "new-user-1", "type": "profile", "profileData": {"Email": "new@example.com", "Tier": "B"}}
    assert (await client.post("/1/upload", json={"d": [merge]})).json()["status"] == "success"
    record = (await client.get("/1/profile.json?email=new@example.com")).json()["record"]
    assert record["identity"] == "new-user-1" and record["name"] == "New User"
    assert record["profileData"]["Tier"] == "B"
    object_id = record["platformInfo"][0]["objectId"]
    assert re.fullmatch(r"[0-9a-f]{32}", object_id)

    now = int(time.time())
    today = int(time.strftime("%Y%m%d", time.gmtime(now)))
    event = {"identity": "new-user-1", "type": "event", "evtName": "Signed Up", "evtData": {"Plan": "pro"}, "ts": now}
    assert (await client.post("/1/upload", json={"d": [event]})).json()["status"] == "success"
    count = (
        await client.post("/1/counts/events.json", json={"event_name": "Signed Up", "from": today, "to": today})
    ).json()
    assert count == {"status": "success", "count": 1}
    by_object = (await client.get(f"/1/profile.json?objectId={object_id}")).json()["record"]
    assert by_object["events"]["Signed Up"] == {"count": 1, "first_seen": now, "last_seen": now}

    token = {"type": "token", "objectId": "fresh-device-1", "tokenData": {"id": "tok-1", "type": "fcm"}}
    assert (await client.post("/1/upload", json={"d": [token]})).json()["status"] == "success"
    device = (await client.get("/1/profile.json?objectId=fresh-device-1")).json()["record"]["platformInfo"]
    assert device == [{"platform": "Android", "push_token": "tok-1", "objectId": "fresh-device-1"}]


# ---- counts ----------------------------------------------------------------------------------------------------


async def test_counts_partial_then_success_flow(cache_dir: str) -> None:
    async with client_for(create_app(small_config(cache_dir, count_partial_polls=3))) as c:
        first = (await c.post("/1/counts/events.json", json={"event_name": "Charged", **MONTH})).json()
        assert first["status"] == "partial" and isinstance(first["req_id"], int)
        path = f"/1/counts/events.json?req_id={first['req_id']}"
        assert (await c.get(path)).json() == {"status": "partial", "req_id": first["req_id"]}
        assert (await c.get(path)).json() == {"status": "partial", "req_id": first["req_id"]}
        done = (await c.get(path)).json()
        assert done["status"] == "success" and done["count"] > 0
        wrong_path = await c.get(f"/1/counts/profiles.json?req_id={first['req_id']}")
        assert wrong_path.json() == {"status": "fail", "error": "Invalid request id"}
        unknown = await c.get("/1/counts/events.json?req_id=123")
        assert unknown.json() == {"status": "fail", "error": "Invalid request id"}

        profiles = (await c.post("/1/counts/profiles.json", json={"event_name": "Charged", **MONTH})).json()
        polled = (await c.get(f"/1/counts/profiles.json?req_id={profiles['req_id']}")).json()
        assert polled["status"] == "partial"


async def test_counts_validate_dates(client: httpx.AsyncClient) -> None:
    for dates in (
        {"from": 2026041, "to": 20260430},
        {"from": 20260231, "to": 20260301},
        {"from": 20260430, "to": 20260401},
        {"from": "2026-04-01", "to": 20260430},
        {"to": 20260430},
    ):
        r = await client.post("/1/counts/events.json", json={"event_name": "Charged", **dates})
        assert r.status_code == 400, dates
        assert r.json()["status"] == "fail" and r.json()["error"]


async def test_query_language_errors_and_odd_property_names(client: httpx.AsyncClient) -> None:
    base = {"event_name": "Charged", **MONTH}
    for extra in (
        {"advanced_query": {"did_all": [{"event_name": "Searched"}]}},
        {"event_properties": [{"name": "Amount", "operator": "resembles", "value": 1}]},
        {"event_properties": [{"name": 'a"b', "value": 1}]},
        {"event_properties": [{"name": "Amount", "operator": "greater_than", "value": "lots"}]},
        {"event_properties": "Amount"},
    ):
        r = await client.post("/1/counts/events.json", json={**base, **extra})
        assert r.status_code == 400 and r.json()["status"] == "fail", extra
    quoted = {**base, "event_properties": [{"name": "it's", "operator": "equals", "value": "x"}]}
    assert (await client.post("/1/counts/events.json", json=quoted)).json() == {"status": "success", "count": 0}
    between = {**base, "event_properties": [{"name": "Amount", "operator": "between", "value": [10, 20]}]}
    records = await export_all(client, "/1/events.json", between, batch=500)
    assert all(10 <= r["event_props"]["Amount"] <= 20 for r in records)


async def test_count_filters_agree_with_exports(client: httpx.AsyncClient) -> None:
    props = [{"name": "Amount", "operator": "greater_than", "value": 100}]
    query = {"event_name": "Charged", **MONTH, "event_properties": props}
    count = (await client.post("/1/counts/events.json", json=query)).json()["count"]
    records = await export_all(client, "/1/events.json", query, batch=37)
    assert count == len(records) > 0
    assert all(r["event_props"]["Amount"] > 100 for r in records)
    in_list = {
        **query,
        "event_properties": [{"name": "Payment mode", "operator": "equals", "value": ["UPI", "PayPal"]}],
    }
    modes = {r["event_props"]["Payment mode"] for r in await export_all(client, "/1/events.json", in_list, batch=500)}
    assert modes == {"UPI", "PayPal"}
    contains = {**query, "event_properties": [{"name": "Payment mode", "operator": "contains", "value": "card"}]}
    modes = {r["event_props"]["Payment mode"] for r in await export_all(client, "/1/events.json", contains, batch=500)}
    assert modes == {"Credit Card", "Debit Card"}
    gold = {
        "event_name": "Charged",
        **MONTH,
        "common_profile_properties": {
            "profile_fields": [{"name": "Customer Type", "operator": "equals", "value": "Gold"}]
        },
    }
    profiles = await export_all(client, "/1/profiles.json", gold, batch=23)
    assert profiles and all(p["profileData"]["Customer Type"] == "Gold" for p in profiles)
    n = (await client.post("/1/counts/profiles.json", json=gold)).json()["count"]
    assert n == len(profiles)


async def test_trends_and_top(client: httpx.AsyncClient) -> None:
    groups = {"d": {"trend_type": "daily"}, "w": {"trend_type": "weekly"}, "m": {"trend_type": "monthly"}}
    trends = (
        await client.post("/1/counts/trends.json", json={"event_name": "Charged", **MONTH, "groups": groups})
    ).json()
    assert trends["status"] == "success"
    assert len(trends["d"]) == 30 and "20260401" in trends["d"]
    assert sum(trends["d"].values()) == sum(trends["w"].values()) == trends["m"]["202604"]
    total = (await client.post("/1/counts/events.json", json={"event_name": "Charged", **MONTH})).json()["count"]
    assert trends["m"]["202604"] == total
    bad = await client.post("/1/counts/trends.json", json={"event_name": "Uninstalled", **MONTH, "groups": groups})
    assert bad.status_code == 400
    assert bad.json() == {"status": "fail", "error": '["Invalid event : Uninstalled"]', "code": 400}

    top_groups = {
        "foo": {"property_type": "event_properties", "name": "Amount"},
        "bar": {"property_type": "profile_fields", "name": "Customer Type", "top_n": 2, "order": "asc"},
    }
    top = (
        await client.post("/1/counts/top.json", json={"event_name": "Charged", **MONTH, "groups": top_groups})
    ).json()
    assert top["status"] == "success"
    assert sum(top["foo"]["NUMBER"].values()) == total
    assert all(re.fullmatch(r"\d+-\d+", k) for k in top["foo"]["NUMBER"])
    assert len(top["bar"]["STR"]) == 2 and set(top["bar"]["STR"]) <= {"Gold", "Silver", "Platinum"}


async def test_now_json(client: httpx.AsyncClient) -> None:
    basic = (await client.post("/1/now.json", json={})).json()
    assert basic["status"] == "success" and basic["count"] > 0
    assert set(basic) == {"status", "count", "last_processed_ts"}
    flags = {k: True for k in ("user_type", "session_source", "browser", "os", "device", "new")}
    full = (await client.post("/1/now.json", json=flags)).json()
    assert full["count"] == basic["count"]
    assert set(full["user_type"]) == {"new", "repeat", "addressable", "customer"}
    assert full["user_type"]["new"] + full["user_type"]["repeat"] == full["count"]
    for key in ("session_source", "browser", "os", "device"):
        assert sum(full[key].values()) == full["count"], key
    assert set(full["new"]) == {"session_source", "browser", "os", "device"}


# ---- cursor exports --------------------------------------------------------------------------------------------


async def test_event_export_cursors_end_to_end(client: httpx.AsyncClient) -> None:
    query = {"event_name": "Charged", **MONTH}
    created = (await client.post("/1/events.json?batch_size=50", json=query)).json()
    assert set(created) == {"status", "cursor"}
    cursor = created["cursor"]
    assert "%2F" in cursor and cursor.endswith("%3D%3D") and "/" not in cursor and "=" not in cursor

    pages: list[dict[str, Any]] = []
    current = cursor
    while current:
        pages.append((await client.get(f"/1/events.json?cursor={current}")).json())
        current = pages[-1].get("next_cursor")
    assert len(pages) >= 3
    assert pages[0]["previous_cursor"] == urllib.parse.unquote(cursor)
    assert [p["previous_cursor"] for p in pages[1:]] == [urllib.parse.unquote(p["next_cursor"]) for p in pages[:-1]]
    assert all("next_cursor" in p for p in pages[:-1]) and "next_cursor" not in pages[-1]
    assert all(len(p["records"]) == 50 for p in pages[:-1])
    records = [r for p in pages for r in p["records"]]
    count = (await client.post("/1/counts/events.json", json=query)).json()["count"]
    assert len(records) == count
    first = records[0]
    assert set(first) == {"profile", "ts", "event_props", "session_props"}
    assert {"objectId", "identity", "email", "platform", "profileData", "id"} <= set(first["profile"])
    assert 20260401000000 <= first["ts"] <= 20260430235959
    assert [r["ts"] for r in records] == sorted(r["ts"] for r in records)
    assert "session_source" in first["session_props"]

    # The same page can be fetched again (a retry), and a re-encoded cursor is "Incorrect Usage".
    again = (await client.get(f"/1/events.json?cursor={cursor}")).json()
    assert again["records"] == pages[0]["records"]
    double = await client.get("/1/events.json?cursor=" + urllib.parse.quote(cursor, safe=""))
    assert double.status_code == 400
    assert double.json() == {"status": "fail", "error": "Incorrect Usage", "code": 1}
    # httpx's own params= encoding also doubles the %: the documented client pitfall.
    via_params = await client.get("/1/events.json", params={"cursor": cursor})
    assert via_params.json()["error"] == "Incorrect Usage"
    unknown = await client.get("/1/events.json?cursor=Zi%2FjAAAA%3D%3D")
    assert unknown.status_code == 400 and unknown.json()["error"] == "Invalid cursor"
    # A profiles cursor is not valid on events.json.
    prof = (await client.post("/1/profiles.json?batch_size=10", json=query)).json()["cursor"]
    assert (await client.get(f"/1/events.json?cursor={prof}")).json()["error"] == "Invalid cursor"


async def test_cursor_still_in_progress_knob_and_expiry(client: httpx.AsyncClient) -> None:
    await knobs(client, cursor_in_progress=2)
    cursor = (await client.post("/1/events.json?batch_size=10", json={"event_name": "Searched", **MONTH})).json()[
        "cursor"
    ]
    busy = {"status": "fail", "error": "Request still in progress, please retry later", "code": 2}
    assert (await client.get(f"/1/events.json?cursor={cursor}")).json() == busy
    assert (await client.get(f"/1/events.json?cursor={cursor}")).json() == busy
    page = (await client.get(f"/1/events.json?cursor={cursor}")).json()
    assert page["status"] == "success" and len(page["records"]) == 10
    await knobs(client, event_cursor_idle_s=0.0)
    await anyio.sleep(0.01)
    expired = (await client.get(f"/1/events.json?cursor={page['next_cursor']}")).json()
    assert expired["error"] == "Invalid cursor"


async def test_empty_range_legacy_get_and_batch_size(client: httpx.AsyncClient) -> None:
    empty = {"event_name": "Charged", "from": 20200101, "to": 20200102}
    cursor = (await client.post("/1/events.json?batch_size=10", json=empty)).json()["cursor"]
    page = (await client.get(f"/1/events.json?cursor={cursor}")).json()
    assert page == {"status": "success", "previous_cursor": urllib.parse.unquote(cursor)}

    query = urllib.parse.quote('{"event_name":"Cart Abandoned","from":20260401,"to":20260430}')
    legacy = (await client.get(f"/1/events.json?batch_size=5000&query={query}")).json()
    assert legacy["status"] == "success"
    records = (await client.get(f"/1/events.json?cursor={legacy['cursor']}")).json()["records"]
    count = (await client.post("/1/counts/events.json", json={"event_name": "Cart Abandoned", **MONTH})).json()
    assert len(records) == count["count"]
    for size in ("0", "5001", "x"):
        r = await client.post(f"/1/events.json?batch_size={size}", json=empty)
        assert r.status_code == 400
    assert (await client.post("/1/events.json?batch_size=10", json={**MONTH})).status_code == 400


async def test_profile_export_records(client: httpx.AsyncClient) -> None:
    query = {"event_name": "App Launched", **MONTH}
    records = await export_all(client, "/1/profiles.json", query, batch=46)
    count = (await client.post("/1/counts/profiles.json", json=query)).json()["count"]
    assert len(records) == count > 46
    assert len({r["identity"] for r in records}) == len(records)
    record = records[0]
    assert {"identity", "profileData", "platformInfo", "events"} <= set(record)
    assert record["events"]["App Launched"]["count"] >= 1
    assert {"count", "first_seen", "last_seen"} == set(record["events"]["App Launched"])
    assert all("objectId" in p and "platform" in p for p in record["platformInfo"])
    lean = (await client.post("/1/profiles.json?batch_size=5&events=false&profile=false", json=query)).json()
    page = (await client.get(f"/1/profiles.json?cursor={lean['cursor']}")).json()
    assert "events" not in page["records"][0] and "profileData" not in page["records"][0]


async def test_profile_lookup(client: httpx.AsyncClient) -> None:
    by_identity = (await client.get("/1/profile.json?identity=user-00003")).json()
    assert by_identity["status"] == "success"
    record = by_identity["record"]
    by_object = (await client.get(f"/1/profile.json?objectId={record['platformInfo'][0]['objectId']}")).json()
    assert by_object["record"]["identity"] == "user-00003"
    if "email" in record:
        quoted = urllib.parse.quote(record["email"])
        assert (await client.get(f"/1/profile.json?email={quoted}")).json()["record"]["identity"] == "user-00003"
    none = (await client.get("/1/profile.json?identity=nobody")).json()
    assert none == {"status": "fail", "error": "Profile not found", "code": 404}
    assert (await client.get("/1/profile.json")).status_code == 400
    assert (await client.get("/1/profile.json?identity=1&email=a@b.co")).status_code == 400


# ---- campaigns -------------------------------------------------------------------------------------------------


def _campaign(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Test push",
        "target_mode": "push",
        "where": {
            "event_name": "App Launched",
            **MONTH,
            "common_profile_properties": {
                "profile_fields": [{"name": "Customer Type", "operator": "equals", "value": "Platinum"}]
            },
        },
        "content": {"title": "Hi!", "body": "How are you doing today?"},
        "devices": ["android", "ios", "windows"],
        "when": "now",
    }
    body.update(overrides)
    return body


async def test_campaign_estimate_create_result_list_stop(client: httpx.AsyncClient) -> None:
    estimate = (await client.post("/1/targets/create.json", json=_campaign(estimate_only=True))).json()
    assert set(estimate) == {"status", "estimates"}
    assert set(estimate["estimates"]) == {"android", "ios", "windows"}
    assert estimate["estimates"]["android"] + estimate["estimates"]["ios"] > 0
    everyone = (await client.post("/1/targets/create.json", json=_campaign(estimate_only=True, where={}))).json()
    assert everyone["estimates"]["android"] >= estimate["estimates"]["android"]
    email = (
        await client.post(
            "/1/targets/create.json",
            json=_campaign(
                target_mode="email",
                estimate_only=True,
                content={"subject": "s", "body": "<p>b</p>", "sender_name": "CT"},
            ),
        )
    ).json()
    assert set(email["estimates"]) == {"web"}

    now = (await client.post("/1/targets/create.json", json=_campaign())).json()
    assert now["status"] == "success" and re.fullmatch(r"\d{10}", str(now["id"]))
    result = (await client.post("/1/targets/result.json", json={"id": now["id"]})).json()
    assert result["status"] == "success"
    assert result["result"]["sent"] == sum(now["estimates"].values())
    assert 0 <= result["result"]["clicked"] <= result["result"]["sent"]

    later_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    later = (await client.post("/1/targets/create.json", json=_campaign(when=later_at.strftime("%Y%m%d %H:%M")))).json()
    assert later["status"] == "success" and later["id"] != now["id"]
    pending = (await client.post("/1/targets/result.json", json={"id": later["id"]})).json()
    assert pending == {"error": "This target hasn't been completed", "status": "fail"}

    day = int(later_at.strftime("%Y%m%d"))
    listed = (await client.post("/1/targets/list.json", json={"from": day, "to": day})).json()
    mine = [t for t in listed["targets"] if t["id"] == later["id"]]
    assert mine == [
        {
            "id": later["id"],
            "name": "Test push",
            "scheduled_on": int(later_at.strftime("%Y%m%d%H%M")),
            "status": "scheduled",
        }
    ]
    assert (await client.post("/1/targets/stop.json", json={"id": later["id"]})).json() == {"status": "success"}
    assert (await client.post("/1/targets/stop.json", json={"id": later["id"]})).json() == {"status": "success"}
    listed = (await client.post("/1/targets/list.json", json={"from": day, "to": day})).json()
    assert [t["status"] for t in listed["targets"] if t["id"] == later["id"]] == ["stopped"]
    unknown = await client.post("/1/targets/stop.json", json={"id": 1234567890})
    assert unknown.json()["status"] == "fail"
    negative = await client.post("/1/targets/stop.json", json={"id": -5})
    assert negative.status_code == 400 and negative.json()["status"] == "fail"


async def test_campaign_validation(client: httpx.AsyncClient) -> None:
    bad_bodies = [
        _campaign(name=""),
        _campaign(target_mode="pigeon"),
        _campaign(segment="all"),
        {k: v for k, v in _campaign().items() if k != "where"},
        _campaign(content=None),
        _campaign(content={"title": "only title"}),
        _campaign(devices=[]),
        _campaign(devices=["fridge"]),
        _campaign(when="tomorrow"),
        _campaign(when="20200101 10:00"),
        _campaign(where={"event_name": "X", "from": 20260231, "to": 20260301}),
    ]
    for body in bad_bodies:
        r = await client.post("/1/targets/create.json", json=body)
        assert r.status_code == 400 and r.json()["status"] == "fail", body
    seg = {k: v for k, v in _campaign(estimate_only=True).items() if k != "where"}
    assert (await client.post("/1/targets/create.json", json={**seg, "segment": "all"})).json()["status"] == "success"


async def test_seeded_campaigns_cover_every_state(client: httpx.AsyncClient) -> None:
    start = int((ANCHOR - dt.timedelta(days=60)).strftime("%Y%m%d"))
    end = int((ANCHOR + dt.timedelta(days=14)).strftime("%Y%m%d"))
    targets = (await client.post("/1/targets/list.json", json={"from": start, "to": end})).json()["targets"]
    assert {t["status"] for t in targets} >= {"scheduled", "running", "paused", "stopped", "completed", "pending"}
    assert all(re.fullmatch(r"\d{12}", str(t["scheduled_on"])) for t in targets)
    completed = next(t for t in targets if t["status"] == "completed")
    result = (await client.post("/1/targets/result.json", json={"id": completed["id"]})).json()
    assert result["status"] == "success" and result["result"]["sent"] > 0
    report = (
        await client.post("/1/message/report.json", json={"from": str(start), "to": str(end), "channel": "email"})
    ).json()
    assert report["status"] == "success" and report["messages"]
    assert {m["channel"] for m in report["messages"]} == {"email"}
    assert (await client.post("/1/targets/list.json", json={"from": 20260101})).status_code == 400


# ---- profile management, messaging -----------------------------------------------------------------------------


async def test_delete_profiles_rules(client: httpx.AsyncClient) -> None:
    both = await client.post("/1/delete/profiles.json", json={"identity": "user-00010", "guid": "abc"})
    assert both.status_code == 400 and both.json()["status"] == "fail"
    too_many = await client.post("/1/delete/profiles.json", json={"identity": [str(i) for i in range(101)]})
    assert too_many.status_code == 400
    assert (await client.post("/1/delete/profiles.json", json={})).status_code == 400

    record = (await client.get("/1/profile.json?identity=user-00011")).json()["record"]
    ok = await client.post("/1/delete/profiles.json", json={"identity": ["user-00010"]})
    assert ok.json() == {"status": "success"}
    guid = record["platformInfo"][0]["objectId"]
    assert (await client.post("/1/delete/profiles.json", json={"guid": guid})).json() == {"status": "success"}
    for identity in ("user-00010", "user-00011"):
        gone = (await client.get(f"/1/profile.json?identity={identity}")).json()
        assert gone["error"] == "Profile not found"
    stats = (await client.get("/__sandbox/stats")).json()
    assert stats["profiles"] == 298


async def test_demerge_subscribe_disassociate_send(client: httpx.AsyncClient) -> None:
    assert (await client.post("/1/demerge/profiles.json", json={"identities": ["a", "b"]})).json() == {
        "status": "success"
    }
    assert (await client.post("/1/demerge/profiles.json", json={"identities": ["x"] * 101})).status_code == 400

    record = (await client.get("/1/profile.json?identity=user-00004")).json()["record"]
    entries = [{"type": "email", "value": record.get("email", "none@example.com"), "status": "Unsubscribe"}]
    entries.append({"type": "fax", "value": "1", "status": "Unsubscribe"})
    sub = (await client.post("/1/subscribe", json={"d": entries})).json()
    assert sub["status"] == "partial" and sub["processed"] == 1
    assert sub["unprocessed"][0]["error"].endswith("Skipped record number : 2")
    if "email" in record:
        after = (await client.get("/1/profile.json?identity=user-00004")).json()["record"]
        assert after["profileData"]["MSG-email"] is False
    assert (await client.post("/1/subscribe", json={"d": [{}] * 1001})).status_code == 400
    dis = (await client.post("/1/disassociate", json={"d": [{"type": "phone", "value": "+14155551234"}]})).json()
    assert dis == {"status": "success", "processed": 1, "unprocessed": []}

    to = {"Identity": ["user-00005"], "Email": ["a@example.com"]}
    push = await client.post("/1/send/push.json", json={"to": to, "content": {"title": "t", "body": "b"}})
    assert push.json() == {"status": "success", "message": "Added to queue for processing"}
    # The legacy shape has no provider_nick_name (the account's default provider sends); an empty one is an error.
    no_provider = await client.post("/1/send/email.json", json={"to": to, "content": {"subject": "s", "body": "b"}})
    assert no_provider.json()["status"] == "success"
    blank = await client.post("/1/send/sms.json", json={"to": to, "content": {"body": "b"}, "provider_nick_name": ""})
    assert blank.status_code == 400
    sms = await client.post("/1/send/sms.json", json={"to": to, "content": {"body": "b"}, "provider_nick_name": "P1"})
    assert sms.json()["status"] == "success"
    assert (await client.post("/1/send/email.json", json={"to": {}, "content": {}})).status_code == 400


# ---- fault knobs -----------------------------------------------------------------------------------------------


async def test_fail_next_and_concurrency_limit(client: httpx.AsyncClient) -> None:
    await knobs(
        client, fail_next=[[503, {"status": "fail", "error": "Service Unavailable", "code": 503}], [502, "oops"]]
    )
    first = await client.get("/1/profile.json?identity=user-00001")
    assert first.status_code == 503 and first.json()["code"] == 503
    second = await client.get("/1/profile.json?identity=user-00001")
    assert second.status_code == 502 and second.text == "oops"
    assert (await client.get("/1/profile.json?identity=user-00001")).status_code == 200

    await knobs(client, max_concurrency=1, slow_s=0.2)
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await client.get("/1/profile.json?identity=user-00001")).status_code)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)
    assert sorted(statuses) == [200, 429, 429]
    busy = await client.get("/__sandbox/stats")
    assert busy.status_code == 200


# ---- seed: determinism and scale -------------------------------------------------------------------------------


async def _fingerprint(app: SandboxApp) -> dict[str, Any]:
    async with client_for(app) as c:
        counts = {}
        for name in ("App Launched", "Product Viewed", "Added To Cart", "Checkout Started", "Charged", "Searched"):
            body = {"event_name": name, "from": 20260201, "to": 20260430}
            counts[name] = (await c.post("/1/counts/events.json", json=body)).json()["count"]
        first = (await c.post("/1/events.json?batch_size=5", json={"event_name": "Charged", **MONTH})).json()
        page = (await c.get(f"/1/events.json?cursor={first['cursor']}")).json()
        now = (await c.post("/1/now.json", json={})).json()
        return {"counts": counts, "page": page["records"], "now": now}


async def test_seed_is_deterministic_for_an_anchor(tmp_path: Path) -> None:
    cfg: dict[str, Any] = {"anchor": ANCHOR, **SMALL, "count_partial_polls": 0}
    one = await _fingerprint(create_app(SandboxConfig(cache_dir=str(tmp_path / "a"), **cfg)))
    two = await _fingerprint(create_app(SandboxConfig(cache_dir=str(tmp_path / "b"), **cfg)))
    assert one == two
    assert one["now"]["last_processed_ts"] < int(dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc).timestamp())
    other = await _fingerprint(
        create_app(SandboxConfig(cache_dir=str(tmp_path / "a"), **{**cfg, "anchor": dt.date(2026, 4, 20)}))
    )
    assert other["counts"] != one["counts"]


async def test_private_copies_and_persistent_db_path(cache_dir: str, tmp_path: Path) -> None:
    upload = {"d": [{"identity": "copy-test", "type": "profile", "profileData": {"Name": "C"}}]}
    async with client_for(create_app(small_config(cache_dir))) as c:
        assert (await c.post("/1/upload", json=upload)).json()["status"] == "success"
    async with client_for(create_app(small_config(cache_dir))) as c:
        assert (await c.get("/1/profile.json?identity=copy-test")).json()["status"] == "fail"

    db = str(tmp_path / "state.sqlite")
    async with client_for(create_app(small_config(cache_dir, db_path=db))) as c:
        assert (await c.post("/1/upload", json=upload)).json()["status"] == "success"
    async with client_for(create_app(small_config(cache_dir, db_path=db))) as c:
        assert (await c.get("/1/profile.json?identity=copy-test")).json()["status"] == "success"


async def test_default_seed_scale() -> None:
    # Today's default seed in the run's shared cache: the one every default sandbox of the run opens (generated once
    # per run, whichever test or server needs it first), not a private copy generated again for this test.
    today = dt.datetime.now(dt.timezone.utc).date()
    seed_file = cache_path(today, DEFAULT_SEED_PROFILES, DEFAULT_SEED_EVENTS)
    app = create_app(SandboxConfig(anchor=today), admin=True)
    async with client_for(app) as c:
        stats = (await c.get("/__sandbox/stats")).json()
        assert stats["profiles"] == 5_000 and stats["events"] == 200_000
        assert stats["campaigns"] >= 30
        span_days = (stats["last_event_ts"] - stats["first_event_ts"]) / 86400
        assert 88 < span_days <= 90
        assert (await c.post("/1/now.json", json={})).json()["count"] >= 50
    # A second app opens the cached file instead of generating it again.
    cached = seed_file.stat()
    async with client_for(create_app(SandboxConfig(anchor=today), admin=True)) as c:
        assert (await c.get("/__sandbox/stats")).json()["events"] == 200_000
    again = seed_file.stat()
    assert (again.st_ino, again.st_mtime_ns) == (cached.st_ino, cached.st_mtime_ns)


# ---- real HTTP -------------------------------------------------------------------------------------------------


def test_serve_over_real_http(cache_dir: str) -> None:
    code = (
        "import datetime as dt; from server.backends.sandbox import SandboxConfig, serve; "
        f"serve(port=0, config=SandboxConfig(anchor=dt.date(2026, 5, 1), cache_dir={cache_dir!r}, "
        "seed_profiles=300, seed_events=12000, count_partial_polls=0))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 30
        url = None
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
            url = match.group(1) if match else None
        assert url, "serve() did not announce its URL"
        with httpx.Client(base_url=url, headers=AUTH, timeout=10) as http:
            r = http.get("/1/profile.json?identity=user-00001")
            assert r.status_code == 200 and r.json()["status"] == "success"
            assert r.headers["content-type"] == "application/json;charset=utf-8"
            assert http.get("/1/upload", headers={"X-CleverTap-Passcode": "x"}).status_code == 405
            denied = http.post("/1/upload", json={"d": []}, headers={"X-CleverTap-Passcode": "x"})
            assert denied.status_code == 401 and denied.json()["error"] == "Passcode Invalid"
            cursor = http.post("/1/events.json?batch_size=100", json={"event_name": "Charged", **MONTH}).json()[
                "cursor"
            ]
            page = http.get(f"/1/events.json?cursor={cursor}").json()
            assert page["status"] == "success" and len(page["records"]) == 100
        assert proc.stdout is not None
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.stdout.read() == ""
