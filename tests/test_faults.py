"""Upstream faults: every tool, under every fault the emulator and the fake Membrane can play, ends with a clear
result inside its budget; the session keeps serving; writes are sent once and uploads are stored at most once.

Backends: the sandbox in memory (ASGI), the direct backend against the sandbox served over real HTTP (transport
faults: cut connections, truncated bodies, read timeouts), and the Membrane backend through the fake Membrane.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from server.backends.clevertap.client import CleverTapClient
from server.backends.clevertap.executor import HttpExecutor
from server.backends.sandbox import Fault, SandboxApp, SandboxConfig, create_app
from server.runtime import Runtime
from tests.fakes.membrane import FakeMembrane, running_fake_membrane
from tests.helpers import day, err, free_port, loopback_server, make_runtime, mcp_client, ok, text

pytestmark = pytest.mark.anyio

ACCOUNT, PASSCODE = "DEMO-SANDBOX", "sandbox"
AUTH = {"X-CleverTap-Account-Id": ACCOUNT, "X-CleverTap-Passcode": PASSCODE}
SEED: dict[str, Any] = {"seed_profiles": 300, "seed_events": 12_000, "count_partial_polls": 1}
BUDGET_S = 3.0  # the per-call budget of most tests
SLACK_S = 1.0  # what a call may take beyond its budget (scheduling, the MCP round trip)
SPAN = {"from": day(-30), "to": day(0)}
_unique = itertools.count()


# ---- plumbing ------------------------------------------------------------------------------------------------------


def wire(runtime: Runtime, executor: Any, budget_s: float) -> Runtime:
    """Point ``runtime`` at ``executor`` with a wire client on short backoffs and ``budget_s`` per call."""
    runtime._executor = executor
    runtime._api = CleverTapClient(executor, poll_interval_s=0.05, backoff_base_s=0.05, call_budget_s=budget_s)
    return runtime


def sandbox_runtime(
    budget_s: float,
    *,
    app: SandboxApp | None = None,
    base_url: str | None = None,
    read_timeout_s: float = 10.0,
) -> Runtime:
    """The sandbox in memory (``app``), or the direct backend against ``base_url``; confirmations off."""
    env = {"CLEVERTAP_MCP_CONFIRM": "never", "CLEVERTAP_MCP_CALL_BUDGET": str(budget_s)}
    runtime = make_runtime(env)
    executor = HttpExecutor(
        base_url=base_url or "http://sandbox.invalid",
        account_id=ACCOUNT,
        passcode=PASSCODE,
        transport=httpx.ASGITransport(app=app) if app is not None else None,
        name="sandbox" if app is not None else "clevertap",
        region="sandbox",
        local_actions=runtime,
        connect_timeout_s=1.0,
        read_timeout_s=read_timeout_s,
    )
    return wire(runtime, executor, budget_s)


async def timed(client: Client, tool: str, args: dict[str, Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = await client.call_tool(tool, args)
    return result, time.monotonic() - started


def events(n: int, name: str, **extra: Any) -> list[dict[str, Any]]:
    tag = next(_unique)
    return [
        {"identity": f"fault-{tag}-{i}", "evtName": name, "evtData": {"n": i}, "ts": 1_780_000_000 + i, **extra}
        for i in range(n)
    ]


# ---- the tool table ------------------------------------------------------------------------------------------------

READ, WRITE, UPLOAD, CONNECT, RAW, LOCAL = "read", "write", "upload", "connect", "raw", "local"


@dataclass
class Case:
    tool: str
    kind: str


CASES = [
    Case("clevertap_connect", CONNECT),
    Case("clevertap_real_time_user_count", READ),
    Case("clevertap_get_event_count", READ),
    Case("clevertap_get_profile_count", READ),
    Case("clevertap_get_events", READ),
    Case("clevertap_get_events_by_cursor", READ),
    Case("clevertap_get_user_profiles", READ),
    Case("clevertap_get_user_profiles_by_cursor", READ),
    Case("clevertap_upload_events", UPLOAD),
    Case("clevertap_upload_user_profiles", UPLOAD),
    Case("clevertap_upload_device_tokens", UPLOAD),
    Case("clevertap_get_campaigns", READ),
    Case("clevertap_get_campaign_report", READ),
    Case("clevertap_create_campaign", WRITE),
    Case("clevertap_stop_campaign", WRITE),
    Case("clevertap_delete_user_profile", WRITE),
    Case("clevertap_search_actions", LOCAL),
    Case("clevertap_run_action", READ),
    Case("clevertap_request", RAW),
]


class Args:
    """Good arguments for every tool; cursor handles and upload records are fresh on every call."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.campaigns: list[dict[str, Any]] = []

    async def _handle(self, tool: str) -> str:
        page = ok(await self.client.call_tool(tool, {"event_name": "Charged", **SPAN, "batch_size": 2}))
        assert not page["done"] and page["cursor"], page
        return str(page["cursor"])

    async def _campaign(self, statuses: tuple[str, ...]) -> int:
        if not self.campaigns:
            listed = ok(await self.client.call_tool("clevertap_get_campaigns", {"from": day(-90), "to": day(30)}))
            self.campaigns = listed["campaigns"]
        return int(next(c["id"] for c in self.campaigns if c["status"] in statuses))

    async def __call__(self, tool: str) -> dict[str, Any]:
        tag = next(_unique)
        count = {"event_name": "Charged", **SPAN}
        if tool == "clevertap_connect":
            return {"wait_seconds": 5}
        if tool == "clevertap_real_time_user_count":
            return {"device": True}
        if tool in ("clevertap_get_event_count", "clevertap_get_profile_count"):
            return count
        if tool in ("clevertap_get_events", "clevertap_get_user_profiles"):
            return {**count, "batch_size": 5}
        if tool == "clevertap_get_events_by_cursor":
            return {"cursor": await self._handle("clevertap_get_events")}
        if tool == "clevertap_get_user_profiles_by_cursor":
            return {"cursor": await self._handle("clevertap_get_user_profiles")}
        if tool == "clevertap_upload_events":
            return {"events": events(3, "Fault Probe")}
        if tool == "clevertap_upload_user_profiles":
            return {"profiles": [{"identity": f"fp-{tag}-{i}", "profileData": {"Name": f"P{i}"}} for i in range(3)]}
        if tool == "clevertap_upload_device_tokens":
            return {
                "tokens": [
                    {"objectId": f"obj{tag:014d}{i:016d}", "tokenData": {"id": f"t-{tag}-{i}", "type": "fcm"}}
                    for i in range(3)
                ]
            }
        if tool == "clevertap_get_campaigns":
            return {"from": day(-60), "to": day(14)}
        if tool == "clevertap_get_campaign_report":
            return {"id": await self._campaign(("completed",))}
        if tool == "clevertap_create_campaign":
            return {
                "name": f"Fault probe {tag}",
                "target_mode": "push",
                "where": {"event_name": "Charged", "from": day(-7), "to": day(0)},
                "content": {"title": "Hi", "body": "There"},
                "devices": ["android"],
                "when": "now",
            }
        if tool == "clevertap_stop_campaign":
            return {"id": await self._campaign(("running", "paused", "scheduled"))}
        if tool == "clevertap_delete_user_profile":
            return {"identity": f"user-{tag % 300:05d}"}
        if tool == "clevertap_search_actions":
            return {"intent": "count events"}
        if tool == "clevertap_run_action":
            return {"action": "get-event-count", "input": count}
        if tool == "clevertap_request":
            return {"method": "GET", "path": "/1/profile.json", "query": {"identity": "user-00001"}}
        raise AssertionError(f"no arguments for {tool}")


# What each fault does to a write's answer: None = the answer is fine after all.
TRANSPORT = {"drop", "cut", "apply_then_drop"}
APPLIED = {"apply_then_500", "apply_then_drop"}


def check(case: Case, fault: str, result: Any, *, over_budget: bool = False) -> None:
    """The result of ``case.tool`` under ``fault``: ok where a retry or the answer itself suffices, else a clear
    error naming CleverTap and what to do, and never a silent success for a write whose answer was lost."""
    harmless = fault == "slow" and not over_budget
    if case.kind in (READ, LOCAL):
        if over_budget and case.kind == READ:
            message = err(result)
            assert message.startswith("CleverTap error") and "time budget" in message, message
            assert "What to do:" in message
        else:
            ok(result)
    elif case.kind == CONNECT:
        out = ok(result)
        if harmless:
            assert out["state"] == "READY", out
        else:
            assert out["state"] in ("UPSTREAM_ERROR", "UNREACHABLE"), out
            assert "CleverTap" in out["message"] and out["next_step"], out
    elif case.kind == RAW:
        if fault in TRANSPORT or over_budget:
            message = err(result)
            assert message.startswith("CleverTap error") and "What to do:" in message, message
        else:
            out = ok(result)
            if fault in ("429", "500", "503", "apply_then_500"):
                assert out["status"] == int(fault[-3:]), out  # the raw proxy hands the answer over as it came
    elif case.kind == WRITE:
        if harmless:
            ok(result)
            return
        message = err(result)
        assert message.startswith("CleverTap error") and "What to do:" in message, message
        if fault == "429":
            assert "rate limiting" in message, message
        else:
            assert "may or may not have been applied" in message and "before calling again" in message, message
    elif case.kind == UPLOAD:
        out = ok(result)
        if harmless:
            assert out["status"] == "success", out
            return
        assert out["status"] == "fail" and out["processed"] == 0 and out["unsent"] == ["0-2"], out
        if fault == "429":
            assert "again later" in out["next_step"], out
        else:
            assert "may or may not have been applied" in out["next_step"], out


def stored(stats: dict[str, Any], tool: str) -> int:
    table = {
        "clevertap_upload_events": "events",
        "clevertap_upload_user_profiles": "profiles",
        "clevertap_upload_device_tokens": "devices",
    }[tool]
    return int(stats[table])


@contextlib.asynccontextmanager
async def sandbox_session(budget_s: float) -> AsyncIterator[tuple[Client, SandboxApp]]:
    app = create_app(SandboxConfig(**SEED), admin=True)
    async with mcp_client(sandbox_runtime(budget_s, app=app)) as client:
        yield client, app


async def run_table(
    client: Client,
    fault: str,
    set_fault: Any,
    stats: Any,
    received: Any,
    *,
    budget_s: float,
    over_budget: bool = False,
) -> None:
    """Every tool under ``fault``, then again without it on the same session."""
    args = Args(client)
    for case in CASES:
        arguments = await args(case.tool)
        before, sent_before = await stats(), await received()
        await set_fault(path=_FAULT_PATHS.get(case.tool))
        result, elapsed = await timed(client, case.tool, arguments)
        assert elapsed < budget_s + SLACK_S, (case.tool, fault, elapsed, text(result))
        check(case, fault, result, over_budget=over_budget)
        await set_fault(clear=True)
        after, sent_after = await stats(), await received()
        writes = sent_after.get(_WRITE_PATHS.get(case.tool, ""), 0) - sent_before.get(
            _WRITE_PATHS.get(case.tool, ""), 0
        )
        if case.kind in (WRITE, UPLOAD):
            assert writes == 1, (case.tool, fault, "a write must be sent exactly once", writes)
        if case.kind == UPLOAD:
            copies = stored(after, case.tool) - stored(before, case.tool)
            # Stored when the emulator handled it (the answer may still be lost or broken), never twice.
            handled = fault in APPLIED or fault in ("truncated", "cut") or (fault == "slow" and not over_budget)
            assert copies == (3 if handled else 0), (case.tool, fault, copies)
        again = await client.call_tool(case.tool, await args(case.tool))
        if case.kind == CONNECT:
            assert ok(again)["state"] == "READY"
        else:
            ok(again)


# Stop reads the campaign's status before it writes: the fault is aimed at the write itself.
_FAULT_PATHS = {"clevertap_stop_campaign": "/1/targets/stop.json"}
_WRITE_PATHS = {
    "clevertap_upload_events": "POST /1/upload",
    "clevertap_upload_user_profiles": "POST /1/upload",
    "clevertap_upload_device_tokens": "POST /1/upload",
    "clevertap_create_campaign": "POST /1/targets/create.json",
    "clevertap_stop_campaign": "POST /1/targets/stop.json",
    "clevertap_delete_user_profile": "POST /1/delete/profiles.json",
}


# ---- the sandbox in memory -----------------------------------------------------------------------------------------

IN_MEMORY_FAULTS = ["429", "500", "503", "slow", "drop", "malformed", "truncated", "apply_then_500", "apply_then_drop"]


@pytest.mark.parametrize("fault", IN_MEMORY_FAULTS)
async def test_every_tool_under_each_fault_in_memory(fault: str) -> None:
    async with sandbox_session(BUDGET_S) as (client, app):

        async def set_fault(clear: bool = False, path: str | None = None) -> None:
            plan = [] if clear else [{"kind": fault, "retry_after": 0.1, "delay_s": 0.2, "path": path}]
            app.apply_knobs({"faults": plan})

        async def stats() -> dict[str, Any]:
            return app.store().stats()

        async def received() -> dict[str, int]:
            return dict(app.requests)

        await run_table(client, fault, set_fault, stats, received, budget_s=BUDGET_S)


async def test_every_tool_ends_inside_its_budget_when_the_answer_never_comes() -> None:
    budget = 0.5
    async with sandbox_session(budget) as (client, app):

        async def set_fault(clear: bool = False, path: str | None = None) -> None:
            app.apply_knobs({"faults": [] if clear else [{"kind": "slow", "delay_s": 30, "path": path}]})

        async def stats() -> dict[str, Any]:
            return app.store().stats()

        async def received() -> dict[str, int]:
            return dict(app.requests)

        await run_table(client, "slow", set_fault, stats, received, budget_s=budget, over_budget=True)


async def test_reads_wait_as_long_as_retry_after_asks_then_succeed() -> None:
    async with sandbox_session(BUDGET_S) as (client, app):
        app.apply_knobs({"faults": [{"kind": "429", "retry_after": 1, "path": "/1/counts/"}]})
        result, elapsed = await timed(client, "clevertap_get_event_count", {"event_name": "Charged", **SPAN})
        assert ok(result)["done"] is True and elapsed >= 1.0
        assert app.received("POST", "/1/counts/events.json") == 2

        app.apply_knobs({"faults": [{"kind": "429", "retry_after": 60, "path": "/1/counts/"}]})
        result, elapsed = await timed(client, "clevertap_get_event_count", {"event_name": "Charged", **SPAN})
        message = err(result)
        assert "rate limiting" in message and "asked to wait 60 s" in message and "Wait 60 s" in message
        assert elapsed < 1.0  # a wait longer than the budget is not attempted


async def test_reads_give_up_after_three_attempts_with_a_clear_error() -> None:
    async with sandbox_session(BUDGET_S) as (client, app):
        app.apply_knobs({"faults": [{"kind": "503", "times": None, "path": "/1/targets/list.json"}]})
        message = err(await client.call_tool("clevertap_get_campaigns", {"from": day(-60), "to": day(14)}))
        assert message.startswith("CleverTap error") and "HTTP 503" in message and "tried 3 times" in message
        assert app.received("POST", "/1/targets/list.json") == 3
        app.apply_knobs({"faults": []})
        ok(await client.call_tool("clevertap_get_campaigns", {"from": day(-60), "to": day(14)}))


async def test_a_count_poll_lost_at_the_end_of_the_budget_leaves_the_req_id() -> None:
    async with sandbox_session(1.0) as (client, app):
        app.apply_knobs({"faults": [{"kind": "slow", "delay_s": 30, "method": "GET", "path": "/1/counts/"}]})
        out = ok(await client.call_tool("clevertap_get_event_count", {"event_name": "Charged", **SPAN}))
        assert out["done"] is False and out["req_id"] and "req_id" in out["next_step"]
        app.apply_knobs({"faults": []})
        done = ok(
            await client.call_tool(
                "clevertap_get_event_count", {"event_name": "Charged", **SPAN, "req_id": out["req_id"]}
            )
        )
        assert done["done"] is True and done["count"] > 0


async def test_a_big_upload_reports_the_batches_the_budget_cut_off() -> None:
    async with sandbox_session(1.0) as (client, app):
        before = app.store().stats()["events"]
        app.apply_knobs({"faults": [{"kind": "slow", "delay_s": 30, "path": "/1/upload", "times": 1}]})
        records = events(2_500, "Fault Bulk")
        out = ok(await client.call_tool("clevertap_upload_events", {"events": records}))
        assert out["status"] == "partial" and out["processed"] in (1_500, 2_000) and len(out["unsent"]) == 1, out
        low, high = (int(x) for x in out["unsent"][0].split("-"))
        assert out["processed"] + high - low + 1 == 2_500
        assert "not sent" in out["next_step"] or "may or may not have been applied" in out["next_step"]
        assert app.store().stats()["events"] - before == out["processed"]  # the slow batch never reached the store


async def test_fault_plan_via_the_admin_endpoint_and_config() -> None:
    app = create_app(SandboxConfig(**SEED, faults=[Fault("503", path="/1/now.json", retry_after=2)]), admin=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sb", headers=AUTH) as c:
        first = await c.post("/1/now.json", json={})
        assert first.status_code == 503 and first.headers["retry-after"] == "2"
        assert (await c.post("/1/now.json", json={})).status_code == 200
        bad = await c.post("/__sandbox/config", json={"faults": [{"kind": "explode"}]})
        assert bad.status_code == 400 and "unknown fault kind" in bad.json()["error"]
        set_ = await c.post("/__sandbox/config", json={"faults": [{"kind": "apply_then_500", "path": "/1/upload"}]})
        assert set_.json()["config"]["faults"][0]["kind"] == "apply_then_500"
        upload = {"d": [{"identity": "admin-x", "type": "event", "evtName": "X", "evtData": {}}]}
        assert (await c.post("/1/upload", json=upload)).status_code == 500
        stats = (await c.get("/__sandbox/stats")).json()
        assert stats["requests"]["POST /1/upload"] == 1 and stats["events"] == 12_001


# ---- the direct backend against the sandbox over real HTTP ---------------------------------------------------------


@contextlib.contextmanager
def served_sandbox() -> Iterator[str]:
    """``server.backends.sandbox.serve`` (what `clevertap-mcp sandbox serve` runs) with the admin endpoint and the
    small seed above, in a subprocess: the CLI does not take seed sizes."""
    port = free_port()
    code = (
        "from server.backends.sandbox import SandboxConfig, serve; "
        f"serve(port={port}, admin=True, config=SandboxConfig(**{SEED!r}))"
    )
    with loopback_server(["-c", code], port) as url:
        yield url


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    with served_sandbox() as url:
        yield url


@pytest.mark.parametrize("fault", ["drop", "cut", "truncated", "apply_then_drop"])
async def test_every_tool_under_transport_faults_over_real_http(sandbox_url: str, fault: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url, headers=AUTH, timeout=5) as admin:

        async def set_fault(clear: bool = False, path: str | None = None) -> None:
            plan = [] if clear else [{"kind": fault, "path": path}]
            assert (await admin.post("/__sandbox/config", json={"faults": plan})).status_code == 200

        async def stats() -> dict[str, Any]:
            return dict((await admin.get("/__sandbox/stats")).json())

        async def received() -> dict[str, int]:
            return dict((await stats())["requests"])

        async with mcp_client(sandbox_runtime(BUDGET_S, base_url=sandbox_url)) as client:
            await run_table(client, fault, set_fault, stats, received, budget_s=BUDGET_S)


async def test_read_timeouts_over_real_http_retry_reads_and_never_writes(sandbox_url: str) -> None:
    runtime = sandbox_runtime(BUDGET_S, base_url=sandbox_url, read_timeout_s=0.4)
    async with (
        httpx.AsyncClient(base_url=sandbox_url, headers=AUTH, timeout=5) as admin,
        mcp_client(runtime) as client,
    ):
        slow = [{"kind": "slow", "delay_s": 1.0}]
        await admin.post("/__sandbox/config", json={"faults": slow})
        result, elapsed = await timed(client, "clevertap_get_campaigns", {"from": day(-60), "to": day(14)})
        assert ok(result)["count"] > 0 and elapsed < 1.0  # the timed-out attempt was retried at once

        before = (await admin.get("/__sandbox/stats")).json()
        await admin.post("/__sandbox/config", json={"faults": slow})
        records = events(3, "Fault Timeout")
        out = ok(await client.call_tool("clevertap_upload_events", {"events": records}))
        assert out["status"] == "fail" and out["unsent"] == ["0-2"], out
        assert "timed out" in out["next_step"] and "may or may not have been applied" in out["next_step"]
        await anyio.sleep(1.0)  # the server applies the slow upload after the client gave up
        after = (await admin.get("/__sandbox/stats")).json()
        assert after["requests"]["POST /1/upload"] - before["requests"].get("POST /1/upload", 0) == 1
        assert after["events"] - before["events"] == 3  # stored once: the client did not send it again
        ok(await client.call_tool("clevertap_get_event_count", {"event_name": "Charged", **SPAN}))


# ---- the Membrane backend through the fake's switches --------------------------------------------------------------


@contextlib.asynccontextmanager
async def membrane_session(budget_s: float) -> AsyncIterator[tuple[Client, FakeMembrane, SandboxApp]]:
    app = create_app(SandboxConfig(**{**SEED, "count_partial_polls": 0}), admin=True)
    with running_fake_membrane(clevertap_app=app, tokens={"tok-faults"}) as (url, fake):
        connection_id = fake.add_connection("READY")
        env = {
            "MEMBRANE_TOKEN": "tok-faults",
            "MEMBRANE_API_URL": url,
            "MEMBRANE_CONNECTION_ID": connection_id,
            "CLEVERTAP_MCP_CONFIRM": "never",
            "CLEVERTAP_MCP_CALL_BUDGET": str(budget_s),
        }
        runtime = make_runtime(env, backend="membrane")
        executor: Any = runtime.executor
        executor.call_budget_s = budget_s
        executor.retry_backoff_s = 0.05
        wire(runtime, executor, budget_s)
        async with mcp_client(runtime) as client:
            assert ok(await client.call_tool("clevertap_connect", {"wait_seconds": 2}))["state"] == "READY"
            yield client, fake, app


LIVE_COUNT = {"eventName": "Charged", "fromDate": day(-30), "toDate": day(0)}


@pytest.mark.parametrize("fault", ["429", "503", "drop", "malformed", "truncated", "cut"])
async def test_membrane_reads_recover_from_faults(fault: str) -> None:
    async with membrane_session(BUDGET_S) as (client, fake, _):
        fake.fault(fault, "/act", retry_after=0.2)
        result, elapsed = await timed(client, "clevertap_get_event_count", LIVE_COUNT)
        assert ok(result)["output"]["count"] > 0 and elapsed < BUDGET_S
        assert len(fake.calls_to("POST", "/act")) == 2
        ok(await client.call_tool("clevertap_real_time_user_count", {"userType": True}))


@pytest.mark.parametrize("fault", ["503", "apply_then_500", "apply_then_drop", "drop"])
async def test_membrane_writes_are_sent_once_and_reported_uncertain(fault: str) -> None:
    async with membrane_session(BUDGET_S) as (client, fake, app):
        before = app.store().stats()["events"]
        fake.fault(fault, "/act")
        # The fake's action forwards the records as they are, so they carry their type themselves.
        records = events(3, "Fault Membrane", type="event")
        message = err(await client.call_tool("clevertap_upload_events", {"events": records}))
        assert message.startswith("Membrane error") and "may or may not have run" in message, message
        assert "before running it again" in message
        assert len(fake.calls_to("POST", "/act")) == 1
        assert app.store().stats()["events"] - before == (3 if fault in APPLIED else 0)
        ok(await client.call_tool("clevertap_upload_events", {"events": events(3, "Fault Membrane", type="event")}))
        assert app.store().stats()["events"] - before == (6 if fault in APPLIED else 3)


async def test_membrane_slow_answers_end_inside_the_budget() -> None:
    budget = 1.0
    async with membrane_session(budget) as (client, fake, _):
        fake.fault("slow", "/act", delay_s=1.5)  # ends before the fake server stops
        result, elapsed = await timed(client, "clevertap_get_campaigns", {"fromDate": day(-60), "toDate": day(14)})
        message = err(result)
        assert message.startswith("Membrane error") and "time budget" in message and elapsed < budget + SLACK_S
        fake.fault("503", "/connections/", method="POST")  # the proxy route: POST /connections/{id}/request
        profile = {"method": "GET", "path": "/1/profile.json", "query": {"identity": "user-00001"}}
        raw = err(await client.call_tool("clevertap_request", profile))
        assert raw.startswith("Membrane error") and "HTTP 503" in raw
        assert ok(await client.call_tool("clevertap_request", profile))["status"] == 200
        ok(await client.call_tool("clevertap_get_campaigns", {"fromDate": day(-60), "toDate": day(14)}))
