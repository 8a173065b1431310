"""Custom list segments through the presigned-URL flow served by the sandbox, and the features it does not have."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import httpx
import pytest

from server.backends.sandbox import SandboxApp, SandboxConfig, create_app

pytestmark = pytest.mark.anyio

AUTH = {"X-CleverTap-Account-Id": "DEMO-SANDBOX", "X-CleverTap-Passcode": "sandbox"}
PUSH = {"name": "n", "target_mode": "webhook", "content": {}, "when": "now", "estimate_only": True}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app(tmp_path_factory: pytest.TempPathFactory) -> SandboxApp:
    config = SandboxConfig(
        anchor=dt.date(2026, 5, 1), cache_dir=str(tmp_path_factory.mktemp("c")), seed_profiles=300, seed_events=12_000
    )
    return create_app(config)


def bare(app: SandboxApp) -> httpx.AsyncClient:
    """A client without CleverTap headers (a presigned URL needs none)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox.test")


@pytest.fixture
async def client(app: SandboxApp) -> AsyncIterator[httpx.AsyncClient]:
    async with bare(app) as c:
        c.headers.update(AUTH)
        yield c


async def test_presigned_flow_creates_a_segment_campaigns_can_target(
    app: SandboxApp, client: httpx.AsyncClient
) -> None:
    step1 = (await client.post("/get_custom_list_segment_url")).json()
    assert step1["status"] == "success" and step1["code"] == 200 and step1["expiry"].endswith("Z")
    url = step1["presignedS3URL"]
    assert url.startswith("http://sandbox.test/__uploads/")
    csv = "Identity,Note\nuser-00001,a\nuser-00002,b\nnobody,c\n"
    async with bare(app) as anonymous:
        put = await anonymous.put(url, content=csv.encode())
    assert put.status_code == 200
    done = {"name": "VIPs", "email": "admin@example.com", "filename": "vips.csv", "creator": "me", "url": url}
    step3 = (await client.post("/upload_custom_list_segment_completed", json=done)).json()
    assert step3["status"] == "success" and isinstance(step3["Segment ID"], int)

    estimate = (await client.post("/1/targets/create.json", json={**PUSH, "segment": step3["Segment ID"]})).json()
    assert estimate == {"status": "success", "estimates": {"web": 2}}
    unknown = await client.post("/1/targets/create.json", json={**PUSH, "segment": 999999})
    assert unknown.status_code == 400 and "segment" in unknown.json()["error"]

    # The URL is spent; a new one with the same name needs replace=true.
    again = (await client.post("/1/get_custom_list_segment_url")).json()["presignedS3URL"]
    await client.put(again, content=b"Email\nnot-there@example.com\n")
    dup = await client.post("/upload_custom_list_segment_completed", json={**done, "url": again})
    assert dup.status_code == 400 and "duplicate_name" in dup.json()["error"]
    replaced = await client.post("/upload_custom_list_segment_completed", json={**done, "url": again, "replace": True})
    assert replaced.json()["Segment ID"] == step3["Segment ID"]
    estimate = (await client.post("/1/targets/create.json", json={**PUSH, "segment": step3["Segment ID"]})).json()
    assert estimate["estimates"] == {"web": 0}


async def test_flow_errors(app: SandboxApp, client: httpx.AsyncClient) -> None:
    url = (await client.post("/get_custom_list_segment_url")).json()["presignedS3URL"]
    done = {"name": "L", "email": "admin@example.com", "filename": "l.csv", "creator": "me", "url": url}
    not_uploaded = await client.post("/upload_custom_list_segment_completed", json=done)
    assert not_uploaded.status_code == 400 and "PUT" in not_uploaded.json()["error"]
    bad_email = await client.post("/upload_custom_list_segment_completed", json={**done, "email": "nope"})
    assert bad_email.status_code == 401 and bad_email.json()["status"] == "fail"
    await client.put(url, content=b"Phone\n+14155550000\n")
    no_header = await client.post("/upload_custom_list_segment_completed", json=done)
    assert no_header.status_code == 400 and "header" in no_header.json()["error"]
    forged = await client.put("/__uploads/forged", content=b"Identity\nx\n")
    assert forged.status_code == 403
    async with bare(app) as anonymous:
        assert (await anonymous.post("/get_custom_list_segment_url")).status_code == 401


@pytest.mark.parametrize("path", ["/get_catalog_url", "/v2/catalogs", "/api/createSegment"])
async def test_features_the_demo_account_does_not_have(client: httpx.AsyncClient, path: str) -> None:
    r = await client.post(path, json={})
    assert r.status_code == 403
    assert r.json() == {"status": "fail", "error": "This feature is not enabled for your account", "code": 403}
