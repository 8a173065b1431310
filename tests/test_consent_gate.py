"""Issue 10's findings 1, 2, 3, 4, 6 and 9, through MCP: the gate where requests leave, single-use tokens, tool
selection on every route, stop campaign, and an audit log that loses no write. Upstream requests are counted where
they arrive (the emulator served on loopback, or the fake Membrane)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from server.state.redis_store import RedisHandleStore
from tests.fakes.membrane import FakeMembrane, running_fake_membrane
from tests.helpers import ROOT, child_env, day, err, make_runtime, mcp_client, ok, server_command
from tests.upstream import Upstream, direct, served_sandbox

pytestmark = pytest.mark.anyio

CAMPAIGN = {
    "name": "Gate test",
    "target_mode": "push",
    "where": {"event_name": "Charged", "from": day(-7), "to": day(-1)},
    "content": {"title": "Hi", "body": "Thanks"},
    "devices": ["android"],
    "when": "now",
}
PUSH = {"to": {"Identity": ["user-00008"]}, "content": {"title": "t", "body": "b"}}


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, Upstream]]:
    with served_sandbox() as pair:
        yield pair


async def _campaign_ids(client: Client, status: str) -> list[int]:
    listed = ok(await client.call_tool("clevertap_get_campaigns", {"from": day(-60), "to": day(14)}))
    return [c["id"] for c in listed["campaigns"] if c["status"] == status]


# -- finding 2: spellings of irreversible paths, and trigger --


@pytest.mark.parametrize(
    "path",
    ["/1/targets/create.json/", "/1/targets/create.json%2F", "/1/Targets/create.json", "/1/targets/trigger.json"],
)
async def test_the_proxy_confirms_every_spelling_of_an_irreversible_path(
    upstream: tuple[str, Upstream], path: str
) -> None:
    url, seen = upstream
    before = len(seen.seen)
    async with mcp_client(direct(url)) as client:
        preview = ok(await client.call_tool("clevertap_request", {"method": "POST", "path": path, "body": CAMPAIGN}))
        assert preview["sent"] is False and preview["confirm_token"], preview
        assert len(seen.seen) == before, seen.seen[before:]
        token = preview["confirm_token"]
        args = {"method": "POST", "path": path, "body": CAMPAIGN, "confirm_token": token}
        assert ok(await client.call_tool("clevertap_request", args))["sent"] is True
    assert len(seen.seen) == before + 1


# -- finding 4: a token works once --


async def test_a_replayed_token_sends_nothing_and_says_it_was_done(upstream: tuple[str, Upstream]) -> None:
    url, seen = upstream
    created = seen.creations()
    async with mcp_client(direct(url)) as client:
        preview = ok(await client.call_tool("clevertap_create_campaign", CAMPAIGN))
        confirmed = {**CAMPAIGN, "confirm_token": preview["confirm_token"]}
        first = ok(await client.call_tool("clevertap_create_campaign", confirmed))
        replays = [err(await client.call_tool("clevertap_create_campaign", confirmed)) for _ in range(2)]
        pushed = ok(
            await client.call_tool("clevertap_request", {"method": "POST", "path": "/1/send/push.json", "body": PUSH})
        )
        send = {"method": "POST", "path": "/1/send/push.json", "body": PUSH, "confirm_token": pushed["confirm_token"]}
        assert ok(await client.call_tool("clevertap_request", send))["sent"] is True
        again = err(await client.call_tool("clevertap_request", send))
    assert first["created"] is True and seen.creations() == created + 1
    for replay in replays:
        assert "already used" in replay and "already done" in replay and f"id {first['id']}" in replay, replay
        assert replay.startswith("Confirmation required")
    assert "already done" in again and len(seen.to("/1/send/push.json")) == 1


async def test_a_token_confirms_for_the_user_it_was_issued_to_and_nobody_else(upstream: tuple[str, Upstream]) -> None:
    """Replicas share CLEVERTAP_MCP_SECRET; each X-Membrane-Token is its own user. User B cannot spend the token user A
    was shown, even on a replica that would accept A's; A can, on any replica."""
    url, seen = upstream
    created = seen.creations()

    def replica(user: str) -> Any:
        return direct(url, consent_secret="shared-replica-secret", membrane_token=f"tenant-token-of-{user}")

    async with mcp_client(replica("a")) as a1:
        preview = ok(await a1.call_tool("clevertap_create_campaign", CAMPAIGN))
    confirmed = {**CAMPAIGN, "confirm_token": preview["confirm_token"]}
    async with mcp_client(replica("b")) as b:
        refused = err(await b.call_tool("clevertap_create_campaign", confirmed))
    assert "another user" in refused and seen.creations() == created
    async with mcp_client(replica("a")) as a2:
        assert ok(await a2.call_tool("clevertap_create_campaign", confirmed))["created"] is True
    assert seen.creations() == created + 1


async def test_two_replicas_sharing_redis_accept_a_token_once(upstream: tuple[str, Upstream]) -> None:
    from tests.test_http_transport import redis_server

    url, seen = upstream
    with redis_server() as redis_url:
        runtimes = [direct(url, consent_secret="shared-replica-secret") for _ in range(2)]
        for runtime in runtimes:
            runtime.handles = RedisHandleStore.from_url(redis_url)
        created = seen.creations()
        async with mcp_client(runtimes[0]) as a, mcp_client(runtimes[1]) as b:
            preview = ok(await a.call_tool("clevertap_create_campaign", CAMPAIGN))
            confirmed = {**CAMPAIGN, "confirm_token": preview["confirm_token"]}
            results: list[Any] = []

            async def confirm(client: Client) -> None:
                results.append(await client.call_tool("clevertap_create_campaign", confirmed))

            async with anyio.create_task_group() as tg:
                tg.start_soon(confirm, a)
                tg.start_soon(confirm, b)
    assert sorted(r.is_error for r in results) == [False, True]
    assert "already used" in next(r for r in results if r.is_error).content[0].text
    assert seen.creations() == created + 1


# -- finding 3: tool selection holds on every route --


async def test_hidden_tools_cannot_be_reached_through_run_action_or_the_proxy(upstream: tuple[str, Upstream]) -> None:
    url, seen = upstream
    env = {"CLEVERTAP_MCP_CONFIRM": "never", "CLEVERTAP_MCP_EXCLUDE_TOOLS": "clevertap_create_campaign"}
    before = len(seen.seen)
    async with mcp_client(direct(url, env)) as client:
        by_action = err(
            await client.call_tool("clevertap_run_action", {"action": "create-campaign", "input": CAMPAIGN})
        )
        by_name = err(
            await client.call_tool("clevertap_run_action", {"action": "clevertap_create_campaign", "input": CAMPAIGN})
        )
        raw = err(
            await client.call_tool(
                "clevertap_request", {"method": "POST", "path": "/1/TARGETS/create.json/", "body": CAMPAIGN}
            )
        )
        found = ok(await client.call_tool("clevertap_search_actions", {"intent": "create a campaign", "limit": 20}))
        reads = ok(
            await client.call_tool(
                "clevertap_run_action", {"action": "get-campaigns", "input": {"from": day(-1), "to": day(0)}}
            )
        )
    for message in (by_action, by_name, raw):
        assert "clevertap_create_campaign" in message and "hides" in message, message
    assert "create-campaign" not in [a["key"] for a in found["actions"]]
    assert reads["ran"] is True
    assert not seen.to("/1/targets/create.json") or all(
        s in seen.seen[:before] for s in seen.to("/1/targets/create.json")
    )


# -- finding 6: stop campaign --


async def test_stop_campaign_confirms_and_tells_a_stopped_or_completed_campaign_apart(
    upstream: tuple[str, Upstream],
) -> None:
    url, seen = upstream
    async with mcp_client(direct(url)) as client:
        scheduled = (await _campaign_ids(client, "scheduled"))[0]
        completed = (await _campaign_ids(client, "completed"))[0]
        stops = len(seen.to("/1/targets/stop.json"))
        preview = ok(await client.call_tool("clevertap_stop_campaign", {"id": scheduled}))
        assert preview["stopped"] is False and preview["status"] == "scheduled" and preview["confirm_token"]
        raw = ok(
            await client.call_tool(
                "clevertap_request", {"method": "POST", "path": "/1/targets/stop.json", "body": {"id": scheduled}}
            )
        )
        action = err(
            await client.call_tool("clevertap_run_action", {"action": "stop-campaign", "input": {"id": scheduled}})
        )
        assert raw["sent"] is False and "clevertap_stop_campaign" in action
        assert len(seen.to("/1/targets/stop.json")) == stops  # nothing stopped without the user's yes
        done = ok(
            await client.call_tool(
                "clevertap_stop_campaign", {"id": scheduled, "confirm_token": preview["confirm_token"]}
            )
        )
        replay = ok(
            await client.call_tool(
                "clevertap_stop_campaign", {"id": scheduled, "confirm_token": preview["confirm_token"]}
            )
        )
        again = ok(await client.call_tool("clevertap_stop_campaign", {"id": scheduled}))
        finished = ok(await client.call_tool("clevertap_stop_campaign", {"id": completed}))
    assert done["stopped"] is True and len(seen.to("/1/targets/stop.json")) == stops + 1
    assert replay["stopped"] is False and replay["status"] == "stopped"  # the replay sees it stopped, sends nothing
    assert again["stopped"] is False and again["status"] == "stopped" and "confirm_token" not in again
    assert finished["stopped"] is False and "completed" in finished["message"] and "confirm_token" not in finished
    assert len(seen.to("/1/targets/stop.json")) == stops + 1


async def test_confirm_never_still_acts_at_once_as_documented(upstream: tuple[str, Upstream]) -> None:
    url, seen = upstream
    created = seen.creations()
    async with mcp_client(direct(url, {"CLEVERTAP_MCP_CONFIRM": "never"})) as client:
        out = ok(await client.call_tool("clevertap_create_campaign", CAMPAIGN))
        sent = ok(
            await client.call_tool("clevertap_request", {"method": "POST", "path": "/1/send/push.json", "body": PUSH})
        )
    assert out["created"] is True and sent["sent"] is True and seen.creations() == created + 1


# -- finding 1: Membrane actions given by id --


@pytest.fixture
def membrane() -> Iterator[tuple[str, FakeMembrane, str]]:
    from server.backends.sandbox import create_app

    with running_fake_membrane(clevertap_app=create_app(), tokens={"tok-gate"}) as (url, fake):
        yield url, fake, fake.add_connection("READY")


def _membrane_runtime(url: str, connection: str, **env: str) -> Any:
    settings = {"MEMBRANE_TOKEN": "tok-gate", "MEMBRANE_API_URL": url, "MEMBRANE_CONNECTION_ID": connection, **env}
    return make_runtime(settings, backend="membrane")


def _runs(fake: FakeMembrane) -> int:
    return sum(
        1 for c in fake.calls if c.path == "/act" or (c.path.startswith("/actions/") and c.path.endswith("/run"))
    )


async def test_irreversible_membrane_actions_by_id_are_never_run_unconfirmed(
    membrane: tuple[str, FakeMembrane, str],
) -> None:
    url, fake, connection = membrane
    ids = {a["key"]: a["id"] for a in fake.actions}
    async with mcp_client(_membrane_runtime(url, connection)) as client:
        ok(await client.call_tool("clevertap_connect", {}))
        for key, typed in [
            ("create-campaign", "clevertap_create_campaign"),
            ("delete-user-profile", "clevertap_delete_user_profile"),
            ("stop-campaign", "clevertap_stop_campaign"),
        ]:
            message = err(await client.call_tool("clevertap_run_action", {"action": ids[key], "input": {}}))
            assert typed in message, message
        assert _runs(fake) == 0 and not fake.forwarded
        unknown = {"action": ids["always-fails"], "input": {"objectId": "o-1"}}
        preview = ok(await client.call_tool("clevertap_run_action", unknown))
        assert preview["ran"] is False and _runs(fake) == 0
        failed = err(
            await client.call_tool("clevertap_run_action", {**unknown, "confirm_token": preview["confirm_token"]})
        )
        replay = err(
            await client.call_tool("clevertap_run_action", {**unknown, "confirm_token": preview["confirm_token"]})
        )
        read = ok(
            await client.call_tool(
                "clevertap_run_action",
                {"action": ids["get-campaigns"], "input": {"fromDate": day(-1), "toDate": day(0)}},
            )
        )
    assert "not registered" in failed and "already used" in replay and _runs(fake) == 2
    assert read["ran"] is True  # a read given by id runs at once, classified by what it is


async def test_membrane_read_only_and_selection_apply_to_actions_by_id(membrane: tuple[str, FakeMembrane, str]) -> None:
    url, fake, connection = membrane
    ids = {a["key"]: a["id"] for a in fake.actions}
    async with mcp_client(_membrane_runtime(url, connection, CLEVERTAP_MCP_READ_ONLY="1")) as client:
        ok(await client.call_tool("clevertap_connect", {}))
        for key in ("upload-events", "list-custom-events", "stop-campaign"):
            assert "read-only" in err(await client.call_tool("clevertap_run_action", {"action": ids[key], "input": {}}))
    env = {"CLEVERTAP_MCP_CONFIRM": "never", "CLEVERTAP_MCP_EXCLUDE_TOOLS": "clevertap_stop_campaign"}
    async with mcp_client(_membrane_runtime(url, connection, **env)) as client:
        ok(await client.call_tool("clevertap_connect", {}))
        hidden = err(await client.call_tool("clevertap_run_action", {"action": ids["stop-campaign"], "input": {}}))
    assert "hides" in hidden and _runs(fake) == 0


# -- finding 9: the audit log --


async def test_a_cancelled_upload_leaves_every_sent_batch_in_the_audit_log(tmp_path: Path) -> None:
    log_path = tmp_path / "audit.jsonl"
    events = [
        {"identity": f"u{i}", "evtName": "Audited", "evtData": {"i": i}, "ts": 1_700_000_000} for i in range(4000)
    ]
    with served_sandbox() as (url, seen):
        seen.hold_uploads_after = 2  # two batches are stored, the others never get an answer
        progressed = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            progressed.set()

        async with mcp_client(direct(url, audit_log=str(log_path))) as client:
            async with anyio.create_task_group() as tg:

                async def upload() -> None:
                    await client.call_tool("clevertap_upload_events", {"events": events}, progress_callback=on_progress)

                tg.start_soon(upload)
                await progressed.wait()
                # The user gives up once every batch has left and the first two are answered.
                while len(seen.to("/1/upload")) < 4 or log_path.read_text().count('"outcome":"answered') < 2:
                    await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
            with anyio.fail_after(30):
                while '"event":"call"' not in log_path.read_text():
                    await anyio.sleep(0.02)
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    attempts = [e for e in lines if e["event"] == "attempt"]
    outcomes = {e["id"]: e["outcome"] for e in lines if e["event"] == "outcome"}
    assert len(attempts) == 4 and all(a["request"] == "POST /1/upload" and a["kind"] == "write" for a in attempts)
    answered = [o for o in outcomes.values() if o.startswith("answered")]
    assert len(answered) == 2 and all("HTTP 200" in o for o in answered)
    unknown = [o for o in outcomes.values() if o.startswith("outcome unknown")]
    assert len(unknown) == 2, outcomes
    call = next(e for e in lines if e["event"] == "call")
    assert call["tool"] == "clevertap_upload_events"
    assert call["outcome"] == "cancelled; outcome unknown: 4 write requests were sent, 2 answered"
    assert "Audited" not in log_path.read_text()


def test_an_audit_log_that_cannot_be_written_stops_the_server_at_start_up(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = subprocess.run(
        server_command("--sandbox", "--audit-log", str(blocker / "audit.jsonl"), "tools"),
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "audit log" in proc.stderr and "cannot be written" in proc.stderr and proc.stdout == ""
