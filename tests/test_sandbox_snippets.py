"""CleverTap's official example payloads replayed against the sandbox: each gets the documented status and shape."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from server.backends.sandbox import SandboxConfig, create_app
from tests.data import clevertap_snippets as snip

pytestmark = pytest.mark.anyio

AUTH = {"X-CleverTap-Account-Id": "DEMO-SANDBOX", "X-CleverTap-Passcode": "sandbox"}
QUERIES = {
    "common_properties": snip.COMMON_PROPERTIES,
    "event_session": snip.EVENT_SESSION,
    "hybrid": snip.HYBRID,
    "event_property": snip.EVENT_PROPERTY,
    "session_property": snip.SESSION_PROPERTY,
}
PEOPLE_QUERIES = {
    "did_all": snip.DID_ALL,
    "did_any": snip.DID_ANY,
    "did_none": snip.DID_NONE,
    **{f"cpp_{k}": v for k, v in snip.CPP_FRAGMENTS.items()},
    **QUERIES,
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("sandbox-cache"))


@pytest.fixture
async def client(cache_dir: str) -> AsyncIterator[httpx.AsyncClient]:
    config = SandboxConfig(
        anchor=dt.date(2026, 5, 1), cache_dir=cache_dir, seed_profiles=300, seed_events=12_000, count_partial_polls=0
    )
    app = create_app(config)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s.test", headers=AUTH) as c:
        yield c


def _count(body: Any) -> None:
    assert body["status"] == "success" and isinstance(body["count"], int) and body["count"] >= 0, body


async def _export(client: httpx.AsyncClient, path: str, query: dict[str, Any]) -> list[dict[str, Any]]:
    created = await client.post(f"{path}?batch_size=23", json=query)
    assert created.status_code == 200, created.text
    assert set(created.json()) == {"status", "cursor"} and created.json()["status"] == "success"
    cursor = created.json()["cursor"]
    records: list[dict[str, Any]] = []
    while cursor:
        page = (await client.get(f"{path}?cursor={cursor}")).json()
        assert page["status"] == "success", page
        assert page["previous_cursor"] == urllib.parse.unquote(cursor)
        records.extend(page.get("records", []))
        cursor = page.get("next_cursor")
    return records


@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_event_queries_count_and_export(client: httpx.AsyncClient, name: str) -> None:
    query = QUERIES[name]
    r = await client.post("/1/counts/events.json", json=query)
    assert r.status_code == 200, r.text
    _count(r.json())
    records = await _export(client, "/1/events.json", query)
    assert len(records) == r.json()["count"]


@pytest.mark.parametrize("name", sorted(PEOPLE_QUERIES))
async def test_people_queries_count_export_and_target(client: httpx.AsyncClient, name: str) -> None:
    query = PEOPLE_QUERIES[name]
    r = await client.post("/1/counts/profiles.json", json=query)
    assert r.status_code == 200, r.text
    _count(r.json())
    records = await _export(client, "/1/profiles.json", query)
    assert len(records) == r.json()["count"]
    assert all({"identity", "platformInfo"} <= set(rec) for rec in records)
    campaign = {
        "name": "n",
        "target_mode": "webhook",
        "where": query,
        "content": {},
        "when": "now",
        "estimate_only": True,
    }
    estimate = (await client.post("/1/targets/create.json", json=campaign)).json()
    assert estimate == {"status": "success", "estimates": {"web": r.json()["count"]}}


async def test_cpp_fragments_select_someone_in_the_demo_account(client: httpx.AsyncClient) -> None:
    """The demo data makes the documented filters meaningful: each selects some people, not all of them."""
    everyone = (await client.post("/1/counts/profiles.json", json={"advanced_query": {"did_all": [{
        "event_name": "App Launched", "from": 20250101, "to": 20260501}]}})).json()["count"]  # fmt: skip
    for name in ("app_fields", "demographics", "geo_fields", "reachability", "technographics"):
        n = (await client.post("/1/counts/profiles.json", json=snip.CPP_FRAGMENTS[name])).json()["count"]
        assert 0 < n < everyone, name
    near_mumbai = {"common_profile_properties": {"geo_radius": [[19.076, 72.8777, 50]]}}
    in_mumbai = {"common_profile_properties": {"geo_fields": [["India", "Maharashtra", "Mumbai"]]}}
    a = (await client.post("/1/counts/profiles.json", json=near_mumbai)).json()["count"]
    b = (await client.post("/1/counts/profiles.json", json=in_mumbai)).json()["count"]
    assert a == b > 0


async def test_legacy_props_export(client: httpx.AsyncClient) -> None:
    assert await _export(client, "/1/events.json", snip.DOWNLOAD_EVENTS) == []


async def test_uploads(client: httpx.AsyncClient) -> None:
    for payload, n in ((snip.UPLOAD_EVENTS, 2), (snip.UPLOAD_PROFILES, 1), (snip.UPLOAD_TOKENS, 6)):
        body = (await client.post("/1/upload", json=payload)).json()
        assert body == {"status": "success", "processed": n, "unprocessed": []}
    record = (await client.get("/1/profile.json?identity=1189549")).json()["record"]
    assert record["profileData"]["Customer Type"] == "Platinum"
    count = {"event_name": "Charged", "from": 20141224, "to": 20141224}
    assert (await client.post("/1/counts/events.json", json=count)).json()["count"] == 1


async def test_now_trends_top(client: httpx.AsyncClient) -> None:
    now = (await client.post("/1/now.json", json=snip.NOW)).json()
    assert {"status", "count", "user_type", "session_source", "browser", "os", "device", "new"} <= set(now)
    # The demo account has no "UTM Visited" event: CleverTap's own answer for an unknown event.
    trends = await client.post("/1/counts/trends.json", json=snip.TRENDS)
    assert trends.status_code == 400
    assert trends.json() == {"status": "fail", "error": '["Invalid event : UTM Visited"]', "code": 400}
    top = (await client.post("/1/counts/top.json", json=snip.TOP)).json()
    assert top["status"] == "success" and set(top) == {"status", "foo", "bar"}
    # 2016-2017 is before the demo data: empty groups (a type is only known from values).
    assert top["foo"] in ({"NUMBER": {}}, {"STR": {}}) and top["bar"] == {"STR": {}}


@pytest.mark.parametrize("payload", [snip.CAMPAIGN_PUSH, snip.CAMPAIGN_EMAIL, snip.CAMPAIGN_SMS, snip.CAMPAIGN_WEBPUSH])
async def test_campaign_estimates(client: httpx.AsyncClient, payload: dict[str, Any]) -> None:
    r = await client.post("/1/targets/create.json", json=payload)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"status", "estimates"} and body["status"] == "success"
    assert all(isinstance(v, int) for v in body["estimates"].values())
    if payload is snip.CAMPAIGN_PUSH:
        assert set(body["estimates"]) == {"android", "ios", "windows"}


async def test_campaign_result_of_an_unknown_id(client: httpx.AsyncClient) -> None:
    r = await client.post("/1/targets/result.json", json=snip.CAMPAIGN_RESULT)
    assert r.status_code == 400 and r.json()["status"] == "fail" and r.json()["code"] == 400


@pytest.mark.parametrize("name", sorted(snip.SEND))
async def test_send_by_identity(client: httpx.AsyncClient, name: str) -> None:
    channel, payload = snip.SEND[name]
    r = await client.post(f"/1/send/{channel}.json", json=payload)
    assert r.json() == {"status": "success", "message": "Added to queue for processing"}, r.text
