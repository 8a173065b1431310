"""Upstream faults: every tool, under every fault the emulator and the fake Membrane can play, ends with a clear
result inside its budget; the session keeps serving; writes are sent once and uploads are stored at most once.

Every catalog tool is covered with its own valid examples and what its spec's ``fault_class`` promises; budgets
are short and faults one-shot, so nothing waits on wall-clock windows (a generous guard only catches a hang).
Waits are kept short rather than skipped: retries back off for milliseconds, a harmless ``slow`` fault holds its
answer for a moment, and only the faults meant to outlast a budget wait for one (a short budget for that call).

Backends: the sandbox in memory (ASGI), the direct backend against the sandbox served over real HTTP (transport
faults: cut connections, truncated bodies, read timeouts), and the Membrane backend through the fake Membrane.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import re
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from functools import cache
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import httpx
import pytest
from mcp import Client

from server.backends.clevertap.client import CleverTapClient
from server.backends.clevertap.executor import HttpExecutor
from server.backends.sandbox import Fault, SandboxApp, SandboxConfig, create_app
from server.policies.endpoints import classify
from server.runtime import Runtime
from tests.examples import SPECS, TOOLS, Examples
from tests.fakes.membrane import FakeMembrane, running_fake_membrane
from tests.helpers import day, err, free_port, loopback_server, make_runtime, mcp_client, ok, text
from tools.base import ToolSpec
from tools.catalog import by_name

pytestmark = pytest.mark.anyio

ACCOUNT, PASSCODE = "DEMO-SANDBOX", "sandbox"
AUTH = {"X-CleverTap-Account-Id": ACCOUNT, "X-CleverTap-Passcode": PASSCODE}
SEED: dict[str, Any] = {"seed_profiles": 300, "seed_events": 12_000, "count_partial_polls": 1}
BUDGET_S = 3.0  # the per-call budget of most tests
OVER_BUDGET_S = 0.4  # the budget of a call whose answer never comes (it waits this long, then must give up)
HANG_GUARD_S = 20.0  # far below the 60 s a slow fault holds an answer: a call that ignored its budget trips it
BACKOFF_S = 0.002  # the wire client's first retry backoff and poll interval: retries, not their pauses, are tested
SPAN = {"from": day(-30), "to": day(0)}
_unique = itertools.count()


# ---- plumbing ------------------------------------------------------------------------------------------------------


def wire(runtime: Runtime, executor: Any, budget_s: float, **client: Any) -> Runtime:
    """Point ``runtime`` at ``executor`` with a wire client on short backoffs and ``budget_s`` per call."""
    runtime._executor = executor
    options: dict[str, Any] = {"poll_interval_s": BACKOFF_S, "backoff_base_s": BACKOFF_S, **client}
    runtime._api = CleverTapClient(executor, call_budget_s=budget_s, **options)
    return runtime


def set_budget(runtime: Runtime, budget_s: float) -> None:
    """Change the per-call budget of a running session (the tool call's and the wire client's)."""
    runtime.settings = runtime.settings.model_copy(update={"call_budget_s": budget_s})
    assert isinstance(runtime._api, CleverTapClient)
    runtime._api.call_budget_s = budget_s


@cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


def http_transport() -> httpx.AsyncHTTPTransport:
    """A real HTTP transport whose TLS context is made once (each new one costs a CA-bundle load; nothing here is
    TLS: the sandbox is served over plain HTTP on loopback)."""
    return httpx.AsyncHTTPTransport(verify=_tls())


def sandbox_runtime(
    budget_s: float,
    *,
    app: SandboxApp | None = None,
    base_url: str | None = None,
    read_timeout_s: float = 10.0,
    **client: Any,
) -> Runtime:
    """The sandbox in memory (``app``), or the direct backend against ``base_url``; confirmations off."""
    env = {"CLEVERTAP_MCP_CONFIRM": "never", "CLEVERTAP_MCP_CALL_BUDGET": str(budget_s)}
    runtime = make_runtime(env)
    executor = HttpExecutor(
        base_url=base_url or "http://sandbox.invalid",
        account_id=ACCOUNT,
        passcode=PASSCODE,
        transport=httpx.ASGITransport(app=app) if app is not None else http_transport(),
        name="sandbox" if app is not None else "clevertap",
        region="sandbox",
        local_actions=runtime,
        connect_timeout_s=1.0,
        read_timeout_s=read_timeout_s,
    )
    return wire(runtime, executor, budget_s, **client)


async def guarded(client: Client, tool: str, args: dict[str, Any]) -> Any:
    with anyio.fail_after(HANG_GUARD_S):
        return await client.call_tool(tool, args)


def events(n: int, name: str, **extra: Any) -> list[dict[str, Any]]:
    tag = next(_unique)
    return [
        {"identity": f"fault-{tag}-{i}", "evtName": name, "evtData": {"n": i}, "ts": 1_780_000_000 + i, **extra}
        for i in range(n)
    ]


# ---- every tool of the catalog ---------------------------------------------------------------------------------

# What each fault does to a write's answer.
APPLIED = {"apply_then_500", "apply_then_drop"}


def records_in(args: dict[str, Any]) -> int:
    """How many records an upload's arguments carry (its one list argument)."""
    return sum(len(v) for v in args.values() if isinstance(v, list))


def check(spec: ToolSpec[Any, Any], fault: str, result: Any, *, over_budget: bool = False) -> None:
    """The result of ``spec``'s example under ``fault``: ok where a retry or the answer itself suffices, else a clear
    error naming the layer and what to do, and never a silent success for a write whose answer was lost."""
    harmless = fault == "slow" and not over_budget
    if spec.fault_class == "read":
        if spec.endpoints:  # a typed read: retried past one-shot faults, stopped by the budget
            if over_budget:
                message = err(result)
                assert message.startswith("CleverTap error") and "time budget" in message, message
                assert "What to do:" in message
            else:
                ok(result)
        elif result.is_error:  # connect, search and the pass-throughs report what upstream did
            message = text(result)
            assert not harmless, message
            assert message.startswith("CleverTap error") and "What to do:" in message, message
    elif spec.fault_class == "write":
        if harmless:
            ok(result)
            return
        message = err(result)
        assert message.startswith("CleverTap error") and "What to do:" in message, message
        if fault == "429":
            assert "rate limiting" in message, message
        else:
            assert "may or may not have been applied" in message and "before calling again" in message, message
    else:
        out = ok(result)
        if harmless:
            assert out["status"] == "success", out
            return
        assert out["status"] == "fail" and out["processed"] == 0 and out["unsent"], out
        if fault == "429":
            assert "again later" in out["next_step"], out
        else:
            assert "may or may not have been applied" in out["next_step"], out


def writes_sent(spec: ToolSpec[Any, Any], before: dict[str, int], after: dict[str, int]) -> int:
    """Requests that could change something, sent to the spec's endpoints between two request tallies."""
    keys = [
        k
        for k in after
        if k.split(" ", 1)[-1] in spec.endpoints and classify(k.split(" ", 1)[0], k.split(" ", 1)[-1]).kind != "read"
    ]
    return sum(after.get(k, 0) - before.get(k, 0) for k in keys)


def stored(before: dict[str, Any], after: dict[str, Any]) -> int:
    """Records stored between two stats: the largest growth of any table (a token upload may add profiles too)."""
    return max(int(after[table]) - int(before[table]) for table in ("events", "profiles", "devices"))


@contextlib.asynccontextmanager
async def sandbox_session(budget_s: float, **client_options: Any) -> AsyncIterator[tuple[Client, SandboxApp, Runtime]]:
    app = create_app(SandboxConfig(**SEED), admin=True)
    runtime = sandbox_runtime(budget_s, app=app, **client_options)
    async with mcp_client(runtime) as client:
        yield client, app, runtime


STOCK = 24  # stoppable campaigns added to a sandbox, more than one tool's faults and follow-up calls stop


def stock_campaigns(app: SandboxApp) -> None:
    """Running campaigns scheduled today, so every fault of an irreversible tool finds one it has not used up
    (the seed's own stoppable campaigns depend on the day of the year)."""
    now = dt.datetime.now(dt.timezone.utc)
    scheduled_on = int(now.strftime("%Y%m%d0000"))
    for i in range(STOCK):
        row = {"name": f"Fault target {i}", "target_mode": "push", "status": "running", "scheduled_on": scheduled_on}
        app.store().create_campaign({**row, "created_ts": int(now.timestamp()) + i})


SEEDED_IDENTITY = re.compile(r"^user-\d{5}$")


def fresh_targets(tool: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """For an irreversible tool, its example with each seeded identity replaced by one no earlier call used (a
    deleted profile cannot be deleted again); other tools keep their examples as they are."""
    spec = by_name(tool)
    assert spec is not None
    if not spec.needs_consent:
        return lambda args: args
    numbers = itertools.count(1)

    def fresh(value: Any) -> Any:
        if isinstance(value, str) and SEEDED_IDENTITY.match(value):
            return f"user-{next(numbers):05d}"
        if isinstance(value, list):
            return [fresh(v) for v in value]
        if isinstance(value, dict):
            return {k: fresh(v) for k, v in value.items()}
        return value

    return fresh


async def run_faults(
    client: Client,
    tool: str,
    faults: list[str],
    set_fault: Any,
    stats: Any,
    *,
    over_budget: bool = False,
    budget: Callable[[float], None] | None = None,
) -> None:
    """``tool`` under each fault in turn, then again without it on the same session.

    Irreversible tools get fresh targets (see ``fresh_targets``); ``budget`` gives the faulted call alone the
    short ``OVER_BUDGET_S`` budget (the others keep ``BUDGET_S``).
    """
    spec = by_name(tool)
    assert spec is not None
    examples = Examples(client)
    target = fresh_targets(tool)

    async def arguments_for() -> dict[str, Any]:
        return target(await examples.valid(tool))

    for fault in faults:
        arguments = await arguments_for()
        before, sent_before = await stats()
        await set_fault(fault)
        if budget is not None:
            budget(OVER_BUDGET_S)
        result = await guarded(client, tool, arguments)
        if budget is not None:
            budget(BUDGET_S)
        check(spec, fault, result, over_budget=over_budget)
        await set_fault(None)
        after, sent_after = await stats()
        if spec.fault_class in ("write", "upload"):
            sent = writes_sent(spec, sent_before, sent_after)
            assert sent == 1, (tool, fault, "a write must be sent exactly once", sent)
        if spec.fault_class == "upload":
            copies = stored(before, after)
            # Stored when the emulator handled it (the answer may still be lost or broken), never twice.
            handled = fault in APPLIED or fault in ("truncated", "cut") or (fault == "slow" and not over_budget)
            assert copies == (records_in(arguments) if handled else 0), (tool, fault, copies)
        ok(await client.call_tool(tool, await arguments_for()))


# ---- the sandbox in memory -----------------------------------------------------------------------------------------

IN_MEMORY_FAULTS = ["429", "500", "503", "slow", "drop", "malformed", "truncated", "apply_then_500", "apply_then_drop"]


def aimed(tool: str, plan: dict[str, Any]) -> dict[str, Any]:
    """A write tool's fault goes to the request that changes something: a tool may read first (stop reads the
    campaign's status), and a fault spent on that read would only be retried."""
    spec = by_name(tool)
    assert spec is not None
    if spec.fault_class != "write":
        return plan
    path = next((p for p in spec.endpoints if classify("POST", p).kind != "read"), None)
    return {**plan, "path": path} if path else plan


def in_memory_switches(app: SandboxApp, plan: dict[str, Any]) -> tuple[Any, Any]:
    """How to plan a fault, and how to read (store stats, requests received by "METHOD /path")."""

    async def set_fault(fault: str | None) -> None:
        app.apply_knobs({"faults": [] if fault is None else [{"kind": fault, **plan}]})

    async def stats() -> tuple[dict[str, Any], dict[str, int]]:
        return app.store().stats(), dict(app.requests)

    return set_fault, stats


@pytest.mark.parametrize("tool", TOOLS)
async def test_each_fault_in_memory(tool: str) -> None:
    # An irreversible action uses up what it acts on (a stopped campaign cannot be stopped again): one sandbox
    # stocked with campaigns, and fresh identities, so every fault meets something it can really act on.
    async with sandbox_session(BUDGET_S) as (client, app, _):
        if SPECS[tool].needs_consent:
            await anyio.to_thread.run_sync(stock_campaigns, app)
        switches = in_memory_switches(app, aimed(tool, {"retry_after": 0.01, "delay_s": 0.02}))
        await run_faults(client, tool, IN_MEMORY_FAULTS, *switches)


@pytest.mark.parametrize("tool", TOOLS)
async def test_ends_inside_its_budget_when_the_answer_never_comes(tool: str) -> None:
    async with sandbox_session(BUDGET_S) as (client, app, runtime):
        if SPECS[tool].needs_consent:
            await anyio.to_thread.run_sync(stock_campaigns, app)
        switches = in_memory_switches(app, aimed(tool, {"delay_s": 60}))
        await run_faults(client, tool, ["slow"], *switches, over_budget=True, budget=lambda s: set_budget(runtime, s))


async def test_reads_wait_as_long_as_retry_after_asks_then_succeed() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        """The wire client's pauses, recorded instead of waited out: what is tested is how long it asks for."""
        waits.append(seconds)
        await anyio.lowlevel.checkpoint()

    async with sandbox_session(BUDGET_S, sleep=sleep) as (client, app, _):
        app.apply_knobs({"faults": [{"kind": "429", "retry_after": 1, "path": "/1/counts/"}]})
        result = await guarded(client, "clevertap_get_event_count", {"event_name": "Charged", **SPAN})
        assert ok(result)["done"] is True and max(waits) >= 1.0, waits  # it paused as long as asked, then retried
        assert app.received("POST", "/1/counts/events.json") == 2

        app.apply_knobs({"faults": [{"kind": "429", "retry_after": 60, "path": "/1/counts/"}]})
        result = await guarded(client, "clevertap_get_event_count", {"event_name": "Charged", **SPAN})
        message = err(result)
        assert "rate limiting" in message and "asked to wait 60 s" in message and "Wait 60 s" in message
        assert app.received("POST", "/1/counts/events.json") == 3  # a wait longer than the budget is not attempted


async def test_reads_give_up_after_three_attempts_with_a_clear_error() -> None:
    async with sandbox_session(BUDGET_S) as (client, app, _):
        app.apply_knobs({"faults": [{"kind": "503", "times": None, "path": "/1/targets/list.json"}]})
        message = err(await client.call_tool("clevertap_get_campaigns", {"from": day(-60), "to": day(14)}))
        assert message.startswith("CleverTap error") and "HTTP 503" in message and "tried 3 times" in message
        assert app.received("POST", "/1/targets/list.json") == 3
        app.apply_knobs({"faults": []})
        ok(await client.call_tool("clevertap_get_campaigns", {"from": day(-60), "to": day(14)}))


async def test_a_count_poll_lost_at_the_end_of_the_budget_leaves_the_req_id() -> None:
    async with sandbox_session(1.0) as (client, app, _):
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
    async with sandbox_session(1.0) as (client, app, _):
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


@pytest.mark.parametrize("tool", TOOLS)
async def test_transport_faults_over_real_http(sandbox_url: str, tool: str) -> None:
    async with httpx.AsyncClient(transport=http_transport(), base_url=sandbox_url, headers=AUTH, timeout=5) as admin:

        async def set_fault(fault: str | None) -> None:
            plan = [] if fault is None else [aimed(tool, {"kind": fault})]
            assert (await admin.post("/__sandbox/config", json={"faults": plan})).status_code == 200

        async def stats() -> tuple[dict[str, Any], dict[str, int]]:
            answer = dict((await admin.get("/__sandbox/stats")).json())
            return answer, dict(answer["requests"])

        if SPECS[tool].needs_consent:  # the served sandbox is shared: stock what this tool's faults use up
            soon = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=10)).strftime("%Y%m%d %H:%M")
            campaign = {"target_mode": "push", "where": {}, "content": {"title": "t", "body": "b"}, "when": soon}
            for i in range(8):
                created = await admin.post(
                    "/1/targets/create.json", json={**campaign, "name": f"Fault target {i}", "devices": ["android"]}
                )
                assert created.status_code == 200, created.text
        async with mcp_client(sandbox_runtime(BUDGET_S, base_url=sandbox_url)) as client:
            await run_faults(client, tool, ["drop", "cut", "truncated", "apply_then_drop"], set_fault, stats)


async def test_read_timeouts_over_real_http_retry_reads_and_never_writes(sandbox_url: str) -> None:
    runtime = sandbox_runtime(BUDGET_S, base_url=sandbox_url, read_timeout_s=0.4)
    async with (
        httpx.AsyncClient(transport=http_transport(), base_url=sandbox_url, headers=AUTH, timeout=5) as admin,
        mcp_client(runtime) as client,
    ):
        slow = [{"kind": "slow", "delay_s": 0.6}]  # longer than the read timeout, no longer than it needs to be
        await admin.post("/__sandbox/config", json={"faults": slow})
        sent = (await admin.get("/__sandbox/stats")).json()["requests"].get("POST /1/targets/list.json", 0)
        result = await guarded(client, "clevertap_get_campaigns", {"from": day(-60), "to": day(14)})
        assert ok(result)["count"] > 0  # the timed-out attempt was retried, and the retry's answer came
        after = (await admin.get("/__sandbox/stats")).json()["requests"]["POST /1/targets/list.json"]
        assert after - sent == 2

        before = (await admin.get("/__sandbox/stats")).json()
        await admin.post("/__sandbox/config", json={"faults": slow})
        records = events(3, "Fault Timeout")
        out = ok(await client.call_tool("clevertap_upload_events", {"events": records}))
        assert out["status"] == "fail" and out["unsent"] == ["0-2"], out
        assert "timed out" in out["next_step"] and "may or may not have been applied" in out["next_step"]
        with anyio.fail_after(HANG_GUARD_S):  # the server applies the slow upload after the client gave up
            while (after := (await admin.get("/__sandbox/stats")).json())["events"] == before["events"]:
                await anyio.sleep(0.05)
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
        executor.retry_backoff_s = BACKOFF_S
        wire(runtime, executor, budget_s)
        async with mcp_client(runtime) as client:
            assert ok(await client.call_tool("clevertap_connect", {"wait_seconds": 2}))["state"] == "READY"
            yield client, fake, app


LIVE_COUNT = {"eventName": "Charged", "fromDate": day(-30), "toDate": day(0)}


@pytest.mark.parametrize("fault", ["429", "503", "drop", "malformed", "truncated", "cut"])
async def test_membrane_reads_recover_from_faults(fault: str) -> None:
    async with membrane_session(BUDGET_S) as (client, fake, _):
        fake.fault(fault, "/act", retry_after=0.02)
        result = await guarded(client, "clevertap_get_event_count", LIVE_COUNT)
        assert ok(result)["output"]["count"] > 0
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
        fake.fault("slow", "/act", delay_s=1.5)  # outlasts the budget, ends before the fake server stops
        result = await guarded(client, "clevertap_get_campaigns", {"fromDate": day(-60), "toDate": day(14)})
        message = err(result)
        assert message.startswith("Membrane error") and "time budget" in message
        fake.fault("503", "/connections/", method="GET")  # the proxy route: GET /connections/{id}/proxy/...
        profile = {"method": "GET", "path": "/1/profile.json", "query": {"identity": "user-00001"}}
        raw = err(await client.call_tool("clevertap_request", profile))
        assert raw.startswith("Membrane error") and "HTTP 503" in raw
        assert ok(await client.call_tool("clevertap_request", profile))["status"] == 200
        ok(await client.call_tool("clevertap_get_campaigns", {"fromDate": day(-60), "toDate": day(14)}))
