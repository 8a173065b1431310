"""The fault-injection middleware on an ASGI app that is not the sandbox (as a test fake would use it)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from server.backends.sandbox import Fault, FaultInjector

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
