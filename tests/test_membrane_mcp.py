"""The Membrane backend through MCP: from nothing to a READY connection, live schemas, every tool, and the failures.

The server only gets ``MEMBRANE_TOKEN`` and ``MEMBRANE_API_URL``; the fake Membrane API (real HTTP on 127.0.0.1)
forwards action runs and proxy requests to a small sandbox emulator, so answers are real CleverTap-shaped data.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import mcp.types as types
import pytest
from mcp import Client, StdioServerParameters

from server.backends.sandbox import SandboxConfig, create_app
from tests.fakes.membrane import LIVE_ACTIONS, FakeMembrane, running_fake_membrane
from tests.helpers import ROOT, child_env, day, err, make_runtime, mcp_client, ok, server_command
from tools.catalog import CATALOG, by_action
from tools.names import TOOL_NAMES

pytestmark = pytest.mark.anyio

TOKEN = "mbr-tenant-token-7f3a9c2e51d04b86"
POPULAR = {s.action_key: s.name for s in CATALOG if s.action_key is not None}
SPAN = {"fromDate": day(-30), "toDate": day(0)}
CAMPAIGN = {
    "name": "Win back cart abandoners",
    "target_mode": "push",
    "where": {"event_name": "Added To Cart", "from": day(-7), "to": day(0)},
    "content": {"title": "Still thinking?", "body": "Your cart misses you."},
    "devices": ["android", "ios"],
    "when": "now",
}


def sandbox() -> Any:
    return create_app(SandboxConfig(seed_profiles=300, seed_events=5_000))


@pytest.fixture
def served() -> Iterator[tuple[str, FakeMembrane]]:
    with running_fake_membrane(clevertap_app=sandbox(), tokens={TOKEN}, build_seconds=0.2) as pair:
        yield pair


class Notes:
    """A message_handler that keeps the server notifications a client receives."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def __call__(self, message: Any) -> None:
        if isinstance(message, types.ServerNotification):
            self.seen.append(message)

    def tools_changed(self) -> int:
        return sum(isinstance(n, types.ToolListChangedNotification) for n in self.seen)


def env_for(url: str, **extra: str) -> dict[str, str]:
    return {"MEMBRANE_TOKEN": TOKEN, "MEMBRANE_API_URL": url, **extra}


def membrane_client(url: str, *, notes: Notes | None = None, **env: str) -> Any:
    runtime = make_runtime(env_for(url, **env), backend=None)
    assert runtime.backend == "membrane"
    return mcp_client(runtime, message_handler=notes)


async def connect_ready(client: Client, fake: FakeMembrane) -> dict[str, Any]:
    """clevertap_connect until the user's browser step, do that step on the fake, then READY; then list the tools
    again, as a client does on tools/list_changed (the SDK client checks results against the listed schemas)."""
    first = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 5}))
    assert first["state"] == "CLIENT_ACTION_REQUIRED", first
    fake.complete_client_action(first["connection_id"])
    ready = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 5}))
    assert ready["state"] == "READY", ready
    await client.list_tools()
    return ready


def tools_by_name(listed: types.ListToolsResult) -> dict[str, types.Tool]:
    return {t.name: t for t in listed.tools}


def valid_for(tool: types.Tool, arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments, after checking them against the schema the tool publishes (what a careful agent does)."""
    jsonschema.Draft202012Validator(tool.input_schema).validate(arguments)
    return arguments


# -- from nothing to READY ----------------------------------------------------------------------------------------


async def test_connect_from_nothing_to_ready_then_live_schemas(served: tuple[str, FakeMembrane]) -> None:
    url, fake = served
    notes = Notes()
    async with membrane_client(url, notes=notes) as client:
        before = tools_by_name(await client.list_tools())
        assert set(before) == set(TOOL_NAMES)
        assert "event_name" in before["clevertap_get_event_count"].input_schema["properties"]

        early = err(await client.call_tool("clevertap_get_campaigns", {"from": day(-7), "to": day(0)}))
        assert "not ready" in early and "clevertap_connect" in early

        building = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 0}))
        assert building["state"] == "BUILDING" and building["backend"] == "membrane"
        assert "clevertap_connect again" in building["next_step"]

        pending = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 5}))
        assert pending["state"] == "CLIENT_ACTION_REQUIRED"
        assert pending["connection_id"] == building["connection_id"]  # the same connection, not a second one
        ui_url = pending["details"]["uiUrl"]
        assert ui_url.startswith("https://ui.getmembrane.com/") and ui_url in pending["next_step"]
        assert "clevertap_connect again" in pending["next_step"]
        assert pending["details"]["clientActionType"] == "connect"
        assert notes.tools_changed() == 0

        fake.complete_client_action(pending["connection_id"])  # the user opened uiUrl and signed in
        ready = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 5}))
        assert ready["state"] == "READY" and ready["details"]["live_actions"] == len(LIVE_ACTIONS)
        assert notes.tools_changed() == 1

        after = tools_by_name(await client.list_tools())
        again = ok(await client.call_tool("clevertap_connect", {}))
        assert again["state"] == "READY" and notes.tools_changed() == 1  # unchanged schemas: no new notice

    live = {key: schema for key, _, _, schema in LIVE_ACTIONS}
    for key, name in POPULAR.items():
        schema = after[name].input_schema
        assert schema.get("required") == live[key].get("required"), name
        assert set(live[key]["properties"]) <= set(schema["properties"]), name
        assert after[name].annotations == before[name].annotations, name
    count_props = after["clevertap_get_event_count"].input_schema["properties"]
    assert "unique" in count_props and "event_name" not in count_props  # only Membrane's schema has these
    assert "confirm_token" in after["clevertap_create_campaign"].input_schema["properties"]
    assert "confirm_token" in after["clevertap_delete_user_profile"].input_schema["properties"]
    assert "confirm_token" in after["clevertap_stop_campaign"].input_schema["properties"]
    live_result = {"output": {"status": "success", "cursor": "abc"}, "action_run_id": "6650c0ffee0000000000r001"}
    jsonschema.Draft202012Validator(after["clevertap_get_events"].output_schema or {}).validate(live_result)
    for name in ("clevertap_connect", "clevertap_search_actions", "clevertap_run_action", "clevertap_request"):
        assert after[name].input_schema == before[name].input_schema, name
    assert len(fake.calls_to("POST", "/connections/ensure")) == 1


async def test_connection_id_is_remembered_across_restarts(served: tuple[str, FakeMembrane], tmp_path: Path) -> None:
    url, fake = served
    # Read with the other settings and handed to the executor.
    async with membrane_client(url, CLEVERTAP_MCP_STATE_DIR=str(tmp_path)) as client:
        first = (await connect_ready(client, fake))["connection_id"]
    assert list(tmp_path.iterdir())
    async with membrane_client(url, CLEVERTAP_MCP_STATE_DIR=str(tmp_path)) as client:
        again = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 1}))
    assert again["state"] == "READY" and again["connection_id"] == first
    assert len(fake.calls_to("POST", "/connections/ensure")) == 1


@pytest.mark.parametrize(
    ("scenario", "state", "words"),
    [
        ("setup_failed", "SETUP_FAILED", "Could not build a connector for clevertap.com"),
        ("configuration_error", "CONFIGURATION_ERROR", "The region parameter is missing"),
        ("provide_input", "CLIENT_ACTION_REQUIRED", "Which CleverTap region"),
    ],
)
async def test_connect_reports_terminal_and_input_states(scenario: str, state: str, words: str) -> None:
    with running_fake_membrane(tokens={TOKEN}, build_seconds=0.1, scenario=scenario) as (url, _):
        async with membrane_client(url) as client:
            out = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 5}))
            blocked = err(await client.call_tool("clevertap_search_actions", {"intent": "count events"}))
    assert out["state"] == state
    assert words in out["message"]
    assert out["next_step"]
    if state == "CLIENT_ACTION_REQUIRED":
        assert out["details"]["clientActionType"] == "provide-input"
        assert "agentInstructions" in out["next_step"] and out["details"]["agentInstructions"]
    else:
        assert out["details"]["errors"][0]["message"].startswith(words)
    assert f"state {state}" in blocked and "clevertap_connect" in blocked


async def test_a_client_that_does_not_list_again_still_accepts_live_results(served: tuple[str, FakeMembrane]) -> None:
    url, fake = served
    async with membrane_client(url) as client:
        pending = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 5}))
        fake.complete_client_action(pending["connection_id"])
        assert ok(await client.call_tool("clevertap_connect", {"wait_seconds": 5}))["state"] == "READY"
        out = ok(await client.call_tool("clevertap_get_event_count", {"eventName": "Charged", **SPAN}))
    assert out["output"]["count"] > 0


# -- actions and the raw proxy --------------------------------------------------------------------------------------


async def confirmed(client: Any, arguments: dict[str, Any]) -> Any:
    """Run an action through its preview and then its confirm_token."""
    preview = ok(await client.call_tool("clevertap_run_action", arguments))
    assert preview["ran"] is False and preview["confirm_token"], preview
    return await client.call_tool("clevertap_run_action", {**arguments, "confirm_token": preview["confirm_token"]})


async def test_search_and_run_actions_the_catalog_lacks(served: tuple[str, FakeMembrane]) -> None:
    url, fake = served
    async with membrane_client(url) as client:
        await connect_ready(client, fake)
        found = ok(
            await client.call_tool("clevertap_search_actions", {"intent": "message delivery reports", "limit": 5})
        )
        keys = [a["key"] for a in found["actions"]]
        assert keys[0] == "get-message-reports" and by_action("get-message-reports") is None
        assert found["actions"][0]["input_schema"]["required"] == ["fromDate", "toDate"]
        custom = ok(await client.call_tool("clevertap_search_actions", {"intent": "list custom events"}))
        listed = next(a for a in custom["actions"] if a["key"] == "list-custom-events")

        report = ok(await client.call_tool("clevertap_run_action", {"action": "get-message-reports", "input": SPAN}))
        # Actions the server cannot classify run only once the user confirmed them.
        unconfirmed = len(fake.calls)
        preview = ok(await client.call_tool("clevertap_run_action", {"action": listed["id"], "input": {}}))
        assert preview["ran"] is False and not any(c.path in ("/act", "/actions/") for c in fake.calls[unconfirmed:])
        by_id = ok(await confirmed(client, {"action": listed["id"], "input": {}}))
        failed = err(await confirmed(client, {"action": "always-fails", "input": {}}))
        unknown = err(await confirmed(client, {"action": "launch-rocket", "input": {}}))
        guarded = err(await client.call_tool("clevertap_run_action", {"action": "delete-user-profile", "input": {}}))

    assert report["output"]["status"] == "success" and report["action_run_id"]
    assert any(f["url"] == "/1/message/report.json" for f in fake.forwarded)
    assert by_id["output"] == {"events": ["Charged", "App Launched"]}
    assert "The device token is not registered" in failed and "actionRunId" in failed
    assert "launch-rocket" in unknown and "clevertap_search_actions" in unknown
    assert "clevertap_delete_user_profile" in guarded  # irreversible actions go through their confirming tool


@pytest.mark.parametrize("envelope", [None, "data"])
async def test_raw_requests_go_through_the_proxy(envelope: str | None) -> None:
    with running_fake_membrane(clevertap_app=sandbox(), tokens={TOKEN}, build_seconds=0.1, envelope=envelope) as (
        url,
        fake,
    ):
        async with membrane_client(url) as client:
            await connect_ready(client, fake)
            profile = ok(
                await client.call_tool(
                    "clevertap_request",
                    {"method": "GET", "path": "/1/profile.json", "query": {"identity": "user-00042"}},
                )
            )
            counted = ok(
                await client.call_tool(
                    "clevertap_request",
                    {
                        "method": "POST",
                        "path": "/1/counts/events.json",
                        "body": {"event_name": "Charged", "from": day(-30), "to": day(0)},
                    },
                )
            )
            missing = ok(
                await client.call_tool(
                    "clevertap_request",
                    {"method": "GET", "path": "/1/profile.json", "query": {"identity": "nobody-at-all"}},
                )
            )
    assert profile["sent"] is True and profile["status"] == 200
    assert profile["body"]["status"] == "success" and profile["body"]["record"]["identity"] == "user-00042"
    assert counted["status"] == 200 and counted["body"]["status"] in ("success", "partial")
    assert missing["body"]["status"] == "fail"  # CleverTap's own answer, passed through
    urls = [(f["method"], f["url"].split("?")[0]) for f in fake.forwarded]
    assert ("GET", "/1/profile.json") in urls and ("POST", "/1/counts/events.json") in urls
    assert all(f["headers"].get("X-CleverTap-Passcode") is None for f in fake.forwarded)  # Membrane adds the auth


# -- every popular tool ---------------------------------------------------------------------------------------------


async def test_every_popular_tool_with_the_schema_it_publishes(served: tuple[str, FakeMembrane]) -> None:
    url, fake = served
    local_keys = {"real-time-user-count", "get-campaign-report", "get-user-profiles-by-cursor"}
    fake.actions = [a for a in fake.actions if a["key"] not in local_keys]  # Membrane does not list these three
    results: dict[str, dict[str, Any]] = {}
    async with membrane_client(url) as client:
        await connect_ready(client, fake)
        tools = tools_by_name(await client.list_tools())

        async def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
            out = ok(await client.call_tool(name, valid_for(tools[name], arguments)))
            results[name] = out
            return out

        # Published local schemas (no live action): the bundled tool runs, through Membrane's proxy.
        assert "userType" not in tools["clevertap_real_time_user_count"].input_schema["properties"]
        rt = await call("clevertap_real_time_user_count", {"user_type": True})
        assert isinstance(rt["count"], int)

        # Live schemas: the tool runs as the Membrane action.
        await call("clevertap_get_event_count", {"eventName": "Charged", **SPAN, "unique": False})
        await call("clevertap_get_profile_count", {"eventName": "Charged", **SPAN})
        events = await call("clevertap_get_events", {"eventName": "Charged", **SPAN, "batchSize": 50})
        await call("clevertap_get_events_by_cursor", {"cursor": events["output"]["cursor"]})
        profiles = await call("clevertap_get_user_profiles", {"eventName": "Charged", **SPAN, "batchSize": 50})
        page = await call("clevertap_get_user_profiles_by_cursor", {"cursor": profiles["output"]["cursor"]})
        assert page["returned"] == len(page["records"]) > 0  # the local tool read the live action's raw cursor

        ts = 1_700_000_000
        await call(
            "clevertap_upload_events",
            {"events": [{"type": "event", "identity": "mcp-1", "evtName": "QA Checked", "evtData": {}, "ts": ts}]},
        )
        await call(
            "clevertap_upload_user_profiles",
            {"profiles": [{"type": "profile", "identity": "mcp-1", "profileData": {"Name": "Q A"}, "ts": ts}]},
        )
        await call(
            "clevertap_upload_device_tokens",
            {"tokens": [{"type": "token", "objectId": "obj-mcp-1", "tokenData": {"id": "tok-1", "type": "fcm"}}]},
        )

        campaigns = (await call("clevertap_get_campaigns", {"fromDate": day(-60), "toDate": day(14)}))["output"]
        targets = campaigns["targets"]
        done = next(c for c in targets if c["status"] == "completed")
        report = await call("clevertap_get_campaign_report", {"id": done["id"]})
        assert report["completed"] is True
        scheduled = next(c for c in targets if c["status"] == "scheduled")
        halt = await call("clevertap_stop_campaign", {"campaignId": scheduled["id"]})
        assert not any(f["url"] == "/1/targets/stop.json" for f in fake.forwarded)  # confirms like the others
        await call("clevertap_stop_campaign", {"campaignId": scheduled["id"], "confirm_token": halt["confirm_token"]})

        preview = await call("clevertap_create_campaign", {"campaign": CAMPAIGN})
        assert preview["confirm_token"] and preview["output"]["preview"] == {"campaign": CAMPAIGN}
        assert not any(f["url"] == "/1/targets/create.json" for f in fake.forwarded)  # nothing was sent yet
        created = await call(
            "clevertap_create_campaign", {"campaign": CAMPAIGN, "confirm_token": preview["confirm_token"]}
        )

        doomed = {"identity": "user-00042"}
        asked = await call("clevertap_delete_user_profile", doomed)
        assert not any(f["url"] == "/1/delete/profiles.json" for f in fake.forwarded)
        await call("clevertap_delete_user_profile", {**doomed, "confirm_token": asked["confirm_token"]})
        gone = ok(
            await client.call_tool("clevertap_request", {"method": "GET", "path": "/1/profile.json", "query": doomed})
        )

    assert set(results) == set(POPULAR.values())
    for name, out in results.items():
        if name in {
            "clevertap_real_time_user_count",
            "clevertap_get_campaign_report",
            "clevertap_get_user_profiles_by_cursor",
        }:
            assert "action_run_id" not in out, name
        elif "confirm_token" not in out:
            assert out["action_run_id"] and out["output"]["status"] == "success", (name, out)
    assert results["clevertap_get_event_count"]["output"]["count"] > 0
    assert results["clevertap_upload_events"]["output"]["processed"] == 1
    assert results["clevertap_stop_campaign"]["output"] == {"status": "success"}
    assert created["output"]["status"] == "success"
    assert gone["body"]["status"] == "fail"
    ran = {c.json["key"] for c in fake.calls_to("POST", "/act")}
    assert ran == set(POPULAR) - local_keys


async def test_irreversible_tools_keep_the_confirmation_under_live_schemas(served: tuple[str, FakeMembrane]) -> None:
    url, fake = served
    async with membrane_client(url) as client:
        await connect_ready(client, fake)
        preview = ok(await client.call_tool("clevertap_create_campaign", {"campaign": CAMPAIGN}))
        token = preview["confirm_token"]
        changed = {"campaign": {**CAMPAIGN, "name": "Something else"}, "confirm_token": token}
        assert "payload changed" in err(await client.call_tool("clevertap_create_campaign", changed))
        forged = err(await client.call_tool("clevertap_create_campaign", {"campaign": CAMPAIGN, "confirm_token": "x"}))
        assert "not a token" in forged
        other = err(await client.call_tool("clevertap_delete_user_profile", {"identity": "u1", "confirm_token": token}))
        assert "confirm" in other.lower()
        bad = err(await client.call_tool("clevertap_create_campaign", {"name": "no wrapper"}))
        assert "campaign" in bad and "inputSchema" in bad
    assert not fake.calls_to("POST", "/act")  # nothing irreversible ran


async def test_confirm_never_runs_the_live_action_at_once(served: tuple[str, FakeMembrane]) -> None:
    url, fake = served
    async with membrane_client(url, CLEVERTAP_MCP_CONFIRM="never") as client:
        await connect_ready(client, fake)
        out = ok(await client.call_tool("clevertap_delete_user_profile", {"identity": "user-00007"}))
    assert out["output"]["status"] == "success" and "confirm_token" not in out


# -- failures -------------------------------------------------------------------------------------------------------


async def test_a_refused_token_is_named_and_never_echoed(served: tuple[str, FakeMembrane]) -> None:
    url, _ = served
    wrong = "mbr-WRONG-token-0badc0ffee1234"
    runtime = make_runtime({"MEMBRANE_TOKEN": wrong, "MEMBRANE_API_URL": url}, backend=None)
    async with mcp_client(runtime) as client:
        texts = [
            err(await client.call_tool("clevertap_connect", {})),
            err(await client.call_tool("clevertap_search_actions", {"intent": "count events"})),
            err(await client.call_tool("clevertap_request", {"method": "GET", "path": "/1/profile.json"})),
        ]
    for text in texts:
        assert "Membrane token was refused" in text and "MEMBRANE_TOKEN" in text
        assert wrong not in text and TOKEN not in text


async def test_unknown_pinned_connection_says_to_fix_it_and_connect(served: tuple[str, FakeMembrane]) -> None:
    url, _ = served
    async with membrane_client(url, MEMBRANE_CONNECTION_ID="6650c0ffee000000deadbeef") as client:
        connect = err(await client.call_tool("clevertap_connect", {}))
        call = err(await client.call_tool("clevertap_get_campaigns", {"from": day(-7), "to": day(0)}))
    for text in (connect, call):
        assert "6650c0ffee000000deadbeef" in text and "MEMBRANE_CONNECTION_ID" in text
        assert "clevertap_connect" in text


async def test_a_deleted_connection_asks_for_clevertap_connect(served: tuple[str, FakeMembrane]) -> None:
    url, fake = served
    notes = Notes()
    async with membrane_client(url, notes=notes) as client:
        ready = await connect_ready(client, fake)
        fake.delete_connection(ready["connection_id"])
        gone = err(await client.call_tool("clevertap_get_event_count", {"eventName": "Charged", **SPAN}))
        assert "no longer knows" in gone and "call clevertap_connect" in gone
        listed = tools_by_name(await client.list_tools())
        # The list and the calls agree again: back to the bundled schemas until the new connection is READY.
        assert "event_name" in listed["clevertap_get_event_count"].input_schema["properties"]
        assert notes.tools_changed() == 2
        fresh = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 5}))
    assert fresh["state"] == "CLIENT_ACTION_REQUIRED" and fresh["connection_id"] != ready["connection_id"]


async def test_without_act_the_old_run_route_is_used(served: tuple[str, FakeMembrane]) -> None:
    url, fake = served
    fake.act_available = False
    async with membrane_client(url) as client:
        await connect_ready(client, fake)
        first = ok(await client.call_tool("clevertap_get_event_count", {"eventName": "Charged", **SPAN}))
        second = ok(await client.call_tool("clevertap_run_action", {"action": "get-message-reports", "input": SPAN}))
    assert first["output"]["count"] > 0 and second["output"]["status"] == "success"
    assert len(fake.calls_to("POST", "/act")) == 1  # tried once, then remembered
    assert len(fake.calls_to("POST", "/actions/")) == 2


# -- a real stdio subprocess ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_stdio_from_nothing_to_every_kind_of_call(mode: str, tmp_path: Path) -> None:
    notes = Notes()
    with running_fake_membrane(clevertap_app=sandbox(), tokens={TOKEN}, build_seconds=0.2) as (url, fake):
        env = child_env(MEMBRANE_TOKEN=TOKEN, MEMBRANE_API_URL=url, CLEVERTAP_MCP_STATE_DIR=str(tmp_path))
        params = StdioServerParameters(command=sys.executable, args=server_command()[1:], cwd=str(ROOT), env=env)
        async with Client(params, mode=mode, message_handler=notes) as client:
            assert {t.name for t in (await client.list_tools()).tools} == set(TOOL_NAMES)
            pending = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 5}))
            assert pending["state"] == "CLIENT_ACTION_REQUIRED" and pending["details"]["uiUrl"] in pending["next_step"]
            fake.complete_client_action(pending["connection_id"])
            assert ok(await client.call_tool("clevertap_connect", {"wait_seconds": 5}))["state"] == "READY"
            tools = tools_by_name(await client.list_tools())
            assert "unique" in tools["clevertap_get_event_count"].input_schema["properties"]

            count = ok(await client.call_tool("clevertap_get_event_count", {"eventName": "Charged", **SPAN}))
            assert count["output"]["count"] > 0 and count["action_run_id"]
            stale = err(await client.call_tool("clevertap_get_event_count", {"event_name": "Charged"}))
            assert "eventName" in stale
            found = ok(await client.call_tool("clevertap_search_actions", {"intent": "message reports"}))
            assert found["actions"][0]["key"] == "get-message-reports"
            custom = ok(await confirmed(client, {"action": "list-custom-events"}))
            assert custom["output"]["events"]
            raw = ok(await client.call_tool("clevertap_request", {"method": "POST", "path": "/1/now.json", "body": {}}))
            assert raw["status"] == 200 and raw["body"]["status"] == "success"
            preview = ok(await client.call_tool("clevertap_delete_user_profile", {"identity": "user-00001"}))
            assert preview["confirm_token"]
    if mode == "legacy":
        assert notes.tools_changed() == 1


async def test_a_large_live_output_is_bounded(
    served: tuple[str, FakeMembrane], monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.backends.membrane.executor import MembraneExecutor
    from tools.api import ActionRun

    async def huge(self: MembraneExecutor, key_or_id: str, input: Any) -> ActionRun:
        return ActionRun(output={"rows": [{"n": i, "pad": "x" * 200} for i in range(5_000)]}, action_run_id="run-big")

    url, fake = served
    async with membrane_client(url) as client:
        pending = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 5}))
        fake.complete_client_action(pending["connection_id"])
        assert ok(await client.call_tool("clevertap_connect", {"wait_seconds": 5}))["state"] == "READY"
        monkeypatch.setattr(MembraneExecutor, "run_action", huge)
        out = ok(await client.call_tool("clevertap_get_campaigns", {**SPAN}))
    assert out["action_run_id"] == "run-big" and "cut" in out["next_step"]
    assert 0 < len(out["output"]["rows"]) < 5_000
    assert len(json.dumps(out)) < 70_000
