"""The one fault injector: on a bare ASGI app, and as the sandbox emulator and the fake Membrane both use it.

Every fault kind is played against both fakes through the same table: what the client sees, whether the request
reached the app behind (an upload stored, through the fake Membrane's proxy into the sandbox), and the same
``times`` / path / method / ``retry_after`` / ``delay_s`` semantics.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from server.backends.sandbox import Fault, FaultInjector, SandboxApp, SandboxConfig, create_app
from server.backends.sandbox.faults import FAULT_KINDS, clevertap_error
from tests.fakes.membrane import FakeMembrane, membrane_fault_body

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Counter:
    """A tiny JSON API: every POST increments a counter and answers its value."""

    def __init__(self) -> None:
        self.value = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        self.value += 1
        body = json.dumps({"output": {"count": self.value, "padding": "x" * 40}}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


def membrane_error(status: int) -> bytes:
    return json.dumps({"type": "internal", "message": f"fault {status}"}).encode()


async def test_faults_apply_in_order_with_the_callers_error_body() -> None:
    inner = Counter()
    plan = [Fault("503", times=2, path="/act"), Fault("truncated", path="/act"), Fault("apply_then_500", method="POST")]
    app = FaultInjector(inner, plan, error_body=membrane_error, exempt=lambda path: path.startswith("/__admin"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake.test") as c:
        assert (await c.post("/__admin/x")).json()["output"]["count"] == 1  # exempt: no fault taken
        for _ in range(2):
            r = await c.post("/act/run")
            assert r.status_code == 503 and r.json() == {"type": "internal", "message": "fault 503"}
        cut = await c.post("/act/run")
        assert cut.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            cut.json()
        applied = await c.post("/other")
        assert applied.status_code == 500 and applied.json()["message"] == "fault 500"
        assert inner.value == 3  # the truncated and the applied request both reached the app
        assert plan == []
        assert (await c.post("/act/run")).json()["output"]["count"] == 4


async def test_drop_and_malformed() -> None:
    app = FaultInjector(Counter(), [Fault("drop"), Fault("malformed")])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake.test") as c:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.post("/x")
        malformed = await c.post("/x")
        assert malformed.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            malformed.json()


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault.parse({"kind": "explode"})
    with pytest.raises(ValueError, match="at least 1"):
        Fault("503", times=0)
    assert Fault.parse("429").kind == "429"


def test_paths_match_by_segment() -> None:
    assert Fault("503", path="/act").matches("POST", "/act")
    assert not Fault("503", path="/act").matches("POST", "/actions")
    assert Fault("503", path="/1/counts").matches("POST", "/1/counts/events.json")
    assert Fault("503", path="/1/counts/").matches("GET", "/1/counts/events.json")
    assert not Fault("503", path="/1/upload").matches("POST", "/1/uploads")
    assert not Fault("503", path="/1/upload", method="get").matches("POST", "/1/upload")
    assert Fault("503").matches("DELETE", "/anything")


# ---- the same table against the sandbox and the fake Membrane ------------------------------------------------------

SEED: dict[str, Any] = {"seed_profiles": 300, "seed_events": 12_000}
_unique = itertools.count()


@dataclass
class Target:
    """One fake behind the injector: how to plan a fault, send an upload, and count what was stored."""

    name: str
    plan: Callable[..., None]
    send: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]
    error_body: Callable[[int], bytes]
    sandbox: SandboxApp
    app: Any

    def stored(self) -> int:
        return int(self.sandbox.store().stats()["events"])


def upload_body() -> dict[str, Any]:
    n = next(_unique)
    return {"d": [{"identity": f"injector-{n}", "type": "event", "evtName": "Injector", "evtData": {"n": n}}]}


def make_target(name: str) -> Target:
    sandbox = create_app(SandboxConfig(**SEED), admin=True)
    if name == "sandbox":

        def plan_sandbox(kind: str, **fields: Any) -> None:
            sandbox.apply_knobs({"faults": [{"kind": kind, "path": "/1/upload", **fields}]})

        async def send_sandbox(client: httpx.AsyncClient) -> httpx.Response:
            auth = {"X-CleverTap-Account-Id": "DEMO-SANDBOX", "X-CleverTap-Passcode": "sandbox"}
            return await client.post("/1/upload", json=upload_body(), headers=auth)

        return Target(name, plan_sandbox, send_sandbox, clevertap_error, sandbox, sandbox)
    fake = FakeMembrane(clevertap_app=sandbox, tokens={"tok-injector"})
    connection = fake.add_connection("READY")

    def plan_fake(kind: str, **fields: Any) -> None:
        fake.fault(kind, f"/connections/{connection}/proxy", **fields)

    async def send_fake(client: httpx.AsyncClient) -> httpx.Response:
        path = f"/connections/{connection}/proxy/1/upload"
        return await client.post(path, json=upload_body(), headers={"Authorization": "Bearer tok-injector"})

    return Target(name, plan_fake, send_fake, membrane_fault_body, sandbox, fake.app)


# What each kind does to an upload: the answer's status (None: no answer, the connection is cut) and whether the
# upload reached the app (stored) anyway.
EXPECTED: dict[str, tuple[int | None, bool]] = {
    "429": (429, False),
    "500": (500, False),
    "503": (503, False),
    "slow": (200, True),
    "drop": (None, False),
    "malformed": (200, False),
    "truncated": (200, True),
    "cut": (None, True),
    "apply_then_500": (500, True),
    "apply_then_drop": (None, True),
}


def test_the_table_covers_every_kind() -> None:
    assert set(EXPECTED) == set(FAULT_KINDS)


@pytest.mark.parametrize("kind", FAULT_KINDS)
@pytest.mark.parametrize("target_name", ["sandbox", "membrane"])
async def test_each_kind_behaves_the_same_on_both_fakes(target_name: str, kind: str) -> None:
    target = make_target(target_name)
    status, applied = EXPECTED[kind]
    transport = httpx.ASGITransport(app=target.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake.test") as client:
        assert (await target.send(client)).status_code == 200  # no fault planned: stored
        before = target.stored()
        target.plan(kind, retry_after=0.5, delay_s=0.01)
        if status is None:
            with pytest.raises(httpx.RemoteProtocolError):
                await target.send(client)
        else:
            answer = await target.send(client)
            assert answer.status_code == status, (target.name, kind, answer.text)
            if kind in ("429", "500", "503", "apply_then_500"):
                assert answer.content == target.error_body(status)
            if kind in ("429", "500", "503"):
                assert answer.headers["retry-after"] == "0.5"
            if kind in ("malformed", "truncated"):
                with pytest.raises(json.JSONDecodeError):
                    answer.json()
            if kind == "slow":
                assert answer.json()["status"] == "success"
        assert target.stored() - before == (1 if applied else 0), (target.name, kind)
        assert (await target.send(client)).status_code == 200  # one-shot: the next request is served normally
        assert target.stored() - before == (2 if applied else 1)


@pytest.mark.parametrize("target_name", ["sandbox", "membrane"])
async def test_times_and_method_on_both_fakes(target_name: str) -> None:
    target = make_target(target_name)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=target.app), base_url="http://fake.test") as c:
        target.plan("503", times=2, method="GET")  # uploads are POSTs: not for this fault
        assert (await target.send(c)).status_code == 200
        target.plan("503", times=2, method="post")
        assert [(await target.send(c)).status_code for _ in range(3)] == [503, 503, 200]
        target.plan("500", times=None)  # until removed
        assert [(await target.send(c)).status_code for _ in range(3)] == [500, 500, 500]


async def test_the_fake_membrane_logs_faulted_requests_and_keeps_its_helpers() -> None:
    fake = FakeMembrane(tokens={"tok"})
    connection = fake.add_connection("READY")
    auth = {"Authorization": "Bearer tok"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app), base_url="http://fake.test") as c:
        fake.fault("503", "/act", retry_after=0.2)
        listed = await c.get("/actions", params={"connectionId": connection}, headers=auth)  # not under "/act"
        assert listed.status_code == 200
        faulted = await c.post("/act", json={"key": "get-event-count"}, headers=auth)
        assert faulted.status_code == 503 and faulted.json()["message"] == "Service temporarily unavailable"
        assert faulted.headers["retry-after"] == "0.2"
        assert len(fake.calls_to("POST", "/act")) == 1  # answered by the fault, logged all the same
        with pytest.raises(ValueError, match="unknown fault kind"):
            fake.fault("explode", "/act")
        fake.fault("503", "/act", times=3)
        fake.clear_faults()
        assert (await c.post("/act", json={"key": "get-event-count"}, headers=auth)).status_code != 503
        assert len(fake.calls_to("POST", "/act")) == 2
