"""A sandbox upload of many records leaves the database exactly as the same records sent one request at a time."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from server.backends.sandbox import SandboxApp, SandboxConfig, create_app

pytestmark = pytest.mark.anyio

ANCHOR = dt.date(2026, 5, 1)
AUTH = {"X-CleverTap-Account-Id": "DEMO-SANDBOX", "X-CleverTap-Passcode": "sandbox"}
TS = 1_777_000_000


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("sandbox-cache"))


def _records() -> list[dict[str, Any]]:
    """Known and new identities, objectIds and FBIDs, repeated and interleaved with profile changes and tokens."""
    out: list[dict[str, Any]] = []
    for i in range(12):
        ts = TS + i
        out += [
            {"type": "event", "identity": "user-00001", "evtName": "Batch A", "evtData": {"i": i}, "ts": ts},
            {"type": "event", "identity": f"new-{i % 4}", "evtName": "Batch B", "evtData": {"i": i}, "ts": ts},
            {"type": "profile", "identity": f"new-{i % 4}", "profileData": {"FBID": f"fb-{i % 3}"}, "ts": ts},
            {"type": "event", "FBID": f"fb-{i % 3}", "evtName": "Batch C", "evtData": {}, "ts": ts},
            {"type": "event", "objectId": f"obj-{i % 5}", "evtName": "Batch D", "evtData": {}, "ts": ts},
            {"type": "token", "objectId": f"obj-{i % 5}", "tokenData": {"id": f"t{i}", "type": "fcm"}, "ts": ts},
            {"type": "token", "objectId": f"tok-{i % 2}", "tokenData": {"id": f"u{i}", "type": "apns"}, "ts": ts},
            {"type": "event", "objectId": f"tok-{i % 2}", "evtName": "Batch E", "evtData": {}, "ts": ts},
            {"type": "event", "identity": "x", "evtName": "Web Page Viewed", "ts": ts},  # rejected: 513
        ]
    return out


async def _tables(app: SandboxApp) -> dict[str, list[tuple[Any, ...]]]:
    store = app.store()
    with store.lock:
        return {
            table: store.conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
            for table in ("profiles", "devices", "events")
        }


async def _upload(app: SandboxApp, batches: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox.test", headers=AUTH
    ) as client:
        for batch in batches:
            answers.append((await client.post("/1/upload", json={"d": batch})).json())
    return answers


async def test_one_upload_equals_the_same_records_one_by_one(cache_dir: str) -> None:
    records = _records()
    together, apart = (
        create_app(SandboxConfig(anchor=ANCHOR, cache_dir=cache_dir, seed_profiles=300, seed_events=2_000))
        for _ in range(2)
    )
    [answer] = await _upload(together, [records])
    singles = await _upload(apart, [[r] for r in records])
    assert answer["processed"] == sum(a["processed"] for a in singles) == len(records) - 12
    assert [u["code"] for u in answer["unprocessed"]] == [513] * 12
    one, other = await _tables(together), await _tables(apart)
    # Profiles made for unknown identities get random objectIds; everything else must be identical.
    assert [d[:1] + d[2:] for d in one["devices"]] == [d[:1] + d[2:] for d in other["devices"]]
    assert one["profiles"] == other["profiles"]
    assert one["events"] == other["events"]
    assert len(one["events"]) > 2_000
