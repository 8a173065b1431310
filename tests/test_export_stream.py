"""Exports through MCP as a stream of pages: nothing lost or repeated across pages, the retry of an answer gives the
same records, a failed prefetch surfaces on the call that needs its page, and the pages held stay bounded."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from mcp import Client

from server.backends.clevertap.client import CleverTapClient
from server.backends.clevertap.executor import HttpExecutor
from server.backends.sandbox import SandboxApp, SandboxConfig, create_app
from server.runtime import Runtime
from server.state.handles import MemoryHandleStore
from tests.helpers import day, err, make_runtime, mcp_client, ok
from tools.export_pages import ExportPages

ACCOUNT, PASSCODE = "DEMO-SANDBOX", "sandbox"
AUTH = {"X-CleverTap-Account-Id": ACCOUNT, "X-CleverTap-Passcode": PASSCODE}
EVENT = "Stream Check"
N_EVENTS = 1_000
QUERY: dict[str, Any] = {"event_name": EVENT, "from": day(-1), "to": day(-1)}
PAGE_GET = ("GET", "/1/events.json")

pytestmark = pytest.mark.anyio


class PageGets:
    """The sandbox behind a counter of export page reads (``GET /1/events.json``); from read number ``fail_from``
    on, a read is refused with CleverTap's 400 body instead of reaching the sandbox."""

    def __init__(self, app: SandboxApp) -> None:
        self.app = app
        self.gets = 0
        self.cursors: list[str] = []  # the cursor of every page read, in order
        self.fail_from: int | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) == PAGE_GET:
            self.gets += 1
            self.cursors.append(scope["query_string"].decode())
            if self.fail_from is not None and self.gets >= self.fail_from:
                body = json.dumps({"status": "fail", "error": "page store unavailable (test)", "code": 1}).encode()
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 400, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


async def _load(app: SandboxApp) -> None:
    """``N_EVENTS`` events of one day, each numbered in ``evtData.n``."""
    import datetime as dt

    d = dt.datetime.strptime(str(day(-1)), "%Y%m%d").replace(tzinfo=dt.timezone.utc)
    start = int(d.timestamp()) + 3600
    events = [
        {"identity": f"stream-{i % 50}", "type": "event", "evtName": EVENT, "evtData": {"n": i}, "ts": start + i}
        for i in range(N_EVENTS)
    ]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sb", headers=AUTH) as c:
        for i in range(0, N_EVENTS, 500):
            answer = (await c.post("/1/upload", json={"d": events[i : i + 500]})).json()
            assert answer.get("status") == "success" and answer.get("processed") == 500, answer


@contextlib.asynccontextmanager
async def exporting() -> AsyncIterator[tuple[Client, Runtime, PageGets]]:
    """An MCP client on a runtime whose CleverTap is the sandbox (behind ``PageGets``), loaded with the events."""
    app = create_app(SandboxConfig(account_id=ACCOUNT, passcode=PASSCODE, seed_profiles=50, seed_events=200))
    await _load(app)
    gets = PageGets(app)
    runtime = make_runtime({"CLEVERTAP_MCP_CALL_BUDGET": "5"})
    executor = HttpExecutor.in_process(gets, account_id=ACCOUNT, passcode=PASSCODE, local_actions=runtime)
    runtime._executor = executor
    runtime._api = CleverTapClient(executor, poll_interval_s=0.01, backoff_base_s=0.01, call_budget_s=5)
    async with mcp_client(runtime) as client:
        yield client, runtime, gets


def numbers(answer: dict[str, Any]) -> list[int]:
    return [int(r["event_props"]["n"]) for r in answer["records"]]


def pages_of(runtime: Runtime) -> ExportPages:
    assert isinstance(runtime.handles, MemoryHandleStore)
    return runtime.handles.pages


async def test_pages_are_crossed_without_loss_or_repeat_and_retries_answer_the_same() -> None:
    async with exporting() as (client, runtime, gets):
        first = ok(await client.call_tool("clevertap_get_events", {**QUERY, "batch_size": 100, "max_records": 40}))
        seen = numbers(first)
        answers: list[tuple[str, list[int]]] = []
        cursor = first["cursor"]
        while cursor:
            answer = ok(await client.call_tool("clevertap_get_events_by_cursor", {"cursor": cursor, "max_records": 40}))
            # The retry of the last answer (its reply was lost, say): the same records, from memory.
            again = ok(await client.call_tool("clevertap_get_events_by_cursor", {"cursor": cursor, "max_records": 40}))
            assert numbers(again) == numbers(answer) and again["done"] == answer["done"]
            assert again["total_returned"] == answer["total_returned"]
            answers.append((cursor, numbers(answer)))
            seen += numbers(answer)
            assert answer["total_returned"] == len(seen)
            cursor = answer.get("cursor")
        assert sorted(seen) == list(range(N_EVENTS)) and len(seen) == N_EVENTS
        # 40 + 40 + 20 per page of 100: answers end where pages end, and every page was read once
        assert [len(n) for _, n in answers[:3]] == [40, 20, 40]
        # Every page was read once, retries included (answered from memory); CleverTap may end with an empty page.
        # Only the retry of the final answer reads its page again: a finished export holds nothing.
        distinct = list(dict.fromkeys(gets.cursors))
        assert len(distinct) in (10, 11) and gets.cursors in (distinct, [*distinct, distinct[-1]])
        assert len(pages_of(runtime)) == 0 and pages_of(runtime).retained() == 0  # done: released
        # An older handle, whose page was released, reads that page again by its cursor: still the same records.
        old_cursor, old_numbers = answers[4]
        replay = ok(await client.call_tool("clevertap_get_events_by_cursor", {"cursor": old_cursor, "max_records": 40}))
        assert numbers(replay) == old_numbers


async def test_a_failed_prefetch_surfaces_on_the_call_that_needs_its_page() -> None:
    async with exporting() as (client, _runtime, gets):
        half = {"max_records": 50}
        first = ok(await client.call_tool("clevertap_get_events", {**QUERY, "batch_size": 100, **half}))
        assert numbers(first) == list(range(50)) and gets.gets == 1  # the first answer fetches nothing ahead
        gets.fail_from = 2  # the read of page 2, which the first continuation starts ahead of time
        rest = ok(await client.call_tool("clevertap_get_events_by_cursor", {"cursor": first["cursor"], **half}))
        assert numbers(rest) == list(range(50, 100)) and rest["cursor"]
        failed = err(await client.call_tool("clevertap_get_events_by_cursor", {"cursor": rest["cursor"]}))
        assert "CleverTap" in failed and "page store unavailable (test)" in failed
        assert gets.gets == 2, "the error must be the prefetch's, not a second read"
        gets.fail_from = None
        # The same handle again: page 2 is read afresh; nothing lost, nothing repeated.
        second = ok(await client.call_tool("clevertap_get_events_by_cursor", {"cursor": rest["cursor"]}))
        assert numbers(second) == list(range(100, 200))
        seen = numbers(first) + numbers(rest) + numbers(second)
        cursor = second.get("cursor")
        while cursor:
            answer = ok(await client.call_tool("clevertap_get_events_by_cursor", {"cursor": cursor}))
            seen += numbers(answer)
            cursor = answer.get("cursor")
        assert seen == list(range(N_EVENTS))


async def test_the_first_answer_reads_no_page_ahead() -> None:
    """An agent that looks at the first answer and stops costs CleverTap one page, not two."""
    async with exporting() as (client, runtime, gets):
        first = ok(await client.call_tool("clevertap_get_events", {**QUERY, "batch_size": 100}))
        assert numbers(first) == list(range(100)) and first["cursor"]
        assert pages_of(runtime).prefetching() == 0 and pages_of(runtime).retained() == 100
        ok(await client.call_tool("clevertap_get_user_profiles", {**QUERY, "batch_size": 10}))
        assert gets.gets == 1 and pages_of(runtime).prefetching() == 0


async def test_the_pages_held_stay_bounded_by_records_not_time() -> None:
    async with exporting() as (client, runtime, gets):
        pages = ExportPages(max_exports=2, max_records=300)
        assert isinstance(runtime.handles, MemoryHandleStore)
        runtime.handles.pages = pages
        # One export walked to the end: never more than its current page and one page ahead.
        first = ok(await client.call_tool("clevertap_get_events", {**QUERY, "batch_size": 100, "max_records": 30}))
        seen = numbers(first)
        cursor = first.get("cursor")
        while cursor:
            assert pages.retained() <= 200 and pages.prefetching() <= 1
            answer = ok(await client.call_tool("clevertap_get_events_by_cursor", {"cursor": cursor, "max_records": 30}))
            seen += numbers(answer)
            cursor = answer.get("cursor")
        assert seen == list(range(N_EVENTS))
        assert len(pages) == 0 and pages.retained() == 0
        # Four exports started and left: only the two most recent keep pages, within the record bound.
        left: list[dict[str, Any]] = []
        for _ in range(4):
            left.append(ok(await client.call_tool("clevertap_get_events", {**QUERY, "batch_size": 100})))
            assert len(pages) <= 2 and pages.retained() <= 300
        assert pages.prefetching() <= 2
        # The first one was evicted (its prefetch cancelled): its handle still continues, reading by cursor.
        state = await runtime.handles.get(left[0]["cursor"])
        assert state is not None
        page_two = "cursor=" + state["cursor"]
        reads = gets.cursors.count(page_two)
        resumed = ok(await client.call_tool("clevertap_get_events_by_cursor", {"cursor": left[0]["cursor"]}))
        assert numbers(resumed) == list(range(100, 200)) and gets.cursors.count(page_two) == reads + 1
        assert len(pages) <= 2 and pages.retained() <= 300


async def test_profiles_export_pages_the_same_way() -> None:
    args = {"event_name": "Charged", "from": day(-2), "to": day(0)}
    async with mcp_client() as client:
        count = ok(await client.call_tool("clevertap_get_profile_count", args))["count"]
        first = {**args, "batch_size": 23, "max_records": 10}
        answer = ok(await client.call_tool("clevertap_get_user_profiles", first))
        ids = [json.dumps(r, sort_keys=True) for r in answer["records"]]
        while answer.get("cursor"):
            cursor = answer["cursor"]
            answer = ok(await client.call_tool("clevertap_get_user_profiles_by_cursor", {"cursor": cursor}))
            again = ok(await client.call_tool("clevertap_get_user_profiles_by_cursor", {"cursor": cursor}))
            assert again["records"] == answer["records"]
            ids += [json.dumps(r, sort_keys=True) for r in answer["records"]]
    assert len(ids) == count and len(set(ids)) == count


async def test_a_handle_that_still_holds_records_is_served_from_them() -> None:
    """Handles written before pages were kept apart carried the rest of their page: a shared store may hold one."""
    async with exporting() as (client, runtime, _gets):
        first = ok(await client.call_tool("clevertap_get_events", {**QUERY, "batch_size": 100, "max_records": 10}))
        state = await runtime.handles.get(first["cursor"])
        assert state is not None and state["offset"] == 10
        resumed = ok(await client.call_tool("clevertap_get_events_by_cursor", {"cursor": first["cursor"]}))
        # The same position as the old form: the rest of the page in the handle, the next page's cursor beside it.
        rest = list(resumed["records"])
        legacy = {"kind": "events", "path": "/1/events.json", "returned": 10, "buffer": rest[:50]}
        legacy["cursor"] = (await runtime.handles.get(resumed["cursor"]) or {})["cursor"]
        handle = await runtime.handles.put(legacy)
        part = ok(await client.call_tool("clevertap_get_events_by_cursor", {"cursor": handle, "max_records": 30}))
        assert numbers(part) == list(range(10, 40)) and part["total_returned"] == 40
        tail = ok(await client.call_tool("clevertap_get_events_by_cursor", {"cursor": part["cursor"]}))
        assert numbers(tail) == list(range(40, 60))
        after = ok(await client.call_tool("clevertap_get_events_by_cursor", {"cursor": tail["cursor"]}))
        assert numbers(after) == list(range(100, 200))
