"""The membrane executor against the fake Membrane API over real HTTP (127.0.0.1)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import jwt
import pytest

from server.backends.membrane.auth import (
    CliCredentials,
    MintedToken,
    StaticToken,
    TokenSource,
    has_membrane_credentials,
    token_source_from_env,
)
from server.backends.membrane.client import ApiResponse
from server.backends.membrane.executor import POPULAR_ACTION_KEYS, READ_ATTEMPTS, MembraneExecutor, _unwrap
from server.backends.membrane.state import STATE_FILE_NAME, ConnectionStateStore, default_state_dir
from tests.fakes.membrane import FakeMembrane, clevertap_stub_app, running_fake_membrane
from tools.errors import ConfigurationError, MembraneError, ToolFailure

pytestmark = pytest.mark.anyio

TOKEN = "tok-GOOD-0123456789-secret-value"
SECRET = "ws-secret-9f8e7d6c5b4a-topsecret"


@pytest.fixture
def stub() -> tuple[Any, list[dict[str, Any]]]:
    return clevertap_stub_app()


@pytest.fixture
def fake_server(stub: tuple[Any, list[dict[str, Any]]]) -> Iterator[tuple[str, FakeMembrane]]:
    with running_fake_membrane(clevertap_app=stub[0], tokens={TOKEN}, build_seconds=0.05) as served:
        yield served


def make_executor(
    url: str, state_dir: Path, *, auth: TokenSource | None = None, connection_id: str | None = None
) -> MembraneExecutor:
    return MembraneExecutor(
        auth or StaticToken(TOKEN),
        api_url=url,
        connection_id=connection_id,
        state=ConnectionStateStore(state_dir),
    )


async def ready_executor(url: str, fake: FakeMembrane, state_dir: Path) -> MembraneExecutor:
    executor = make_executor(url, state_dir)
    first = await executor.connect(5)
    assert first.state == "CLIENT_ACTION_REQUIRED"
    assert first.connection_id is not None
    fake.complete_client_action(first.connection_id)
    assert (await executor.connect(5)).state == "READY"
    return executor


# -- token sources ---------------------------------------------------------------------------------------------------


def test_token_source_order() -> None:
    keys = {"MEMBRANE_WORKSPACE_KEY": "wk", "MEMBRANE_WORKSPACE_SECRET": SECRET, "MEMBRANE_TENANT_KEY": "tk"}
    assert isinstance(token_source_from_env({"MEMBRANE_TOKEN": TOKEN, **keys}), StaticToken)
    assert isinstance(token_source_from_env(keys), MintedToken)
    assert isinstance(token_source_from_env({}, which=lambda _: "/usr/bin/membrane"), CliCredentials)
    with pytest.raises(ConfigurationError, match="MEMBRANE_TENANT_KEY"):
        token_source_from_env({"MEMBRANE_WORKSPACE_KEY": "wk", "MEMBRANE_WORKSPACE_SECRET": SECRET})
    with pytest.raises(ConfigurationError, match="MEMBRANE_TOKEN"):
        token_source_from_env({}, which=lambda _: None)
    assert has_membrane_credentials({"MEMBRANE_TOKEN": "x"})
    assert has_membrane_credentials(keys)
    assert not has_membrane_credentials({"MEMBRANE_WORKSPACE_KEY": "wk"})


async def test_minted_token_claims_and_reminting() -> None:
    now = [1_800_000_000.0]
    source = MintedToken("ws-key", SECRET, "tenant-1", clock=lambda: now[0])
    first = await source.token()
    claims = jwt.decode(first, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["workspaceKey"] == claims["iss"] == "ws-key"
    assert claims["tenantKey"] == claims["id"] == "tenant-1"
    assert claims["exp"] == int(now[0]) + 3600
    assert jwt.get_unverified_header(first) == {"alg": "HS256", "typ": "JWT"}
    now[0] += 3600 - 61
    assert await source.token() == first
    now[0] += 2  # 59 s left: re-minted
    second = await source.token()
    assert second != first and source.mint_count == 2
    assert jwt.decode(second, SECRET, algorithms=["HS256"], options={"verify_exp": False})["exp"] == int(now[0]) + 3600
    assert SECRET in source.secrets() and second in source.secrets()


async def test_minted_token_accepted_over_http(tmp_path: Path, stub: Any) -> None:
    with running_fake_membrane(clevertap_app=stub[0], workspace_secret=SECRET) as (url, fake):
        executor = make_executor(url, tmp_path, auth=MintedToken("ws-key", SECRET, "tenant-1"))
        result = await executor.connect(2)
        assert result.state == "CLIENT_ACTION_REQUIRED"
        assert fake.token_claims and fake.token_claims[-1]["tenantKey"] == "tenant-1"
        bad = make_executor(url, tmp_path, auth=MintedToken("ws-key", "wrong-secret-value", "tenant-1"))
        with pytest.raises(MembraneError, match="token was refused"):
            await bad.connect(0)
        await executor.aclose()
        await bad.aclose()


def _fake_cli(tmp_path: Path, body: str) -> str:
    script = tmp_path / "membrane"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


async def test_cli_credentials_mint_and_name_the_api(tmp_path: Path, stub: Any) -> None:
    with running_fake_membrane(clevertap_app=stub[0], workspace_secret=SECRET) as (url, fake):
        creds = {"apiUri": url, "workspaceKey": "ws-cli", "workspaceSecret": SECRET, "tenantKey": "tenant-cli"}
        cli = _fake_cli(tmp_path, f"echo '{json.dumps(creds)}'")
        source = token_source_from_env({}, which=lambda _: cli)
        executor = MembraneExecutor(source, state=ConnectionStateStore(tmp_path / "state"))
        assert (await executor.connect(0)).state == "BUILDING"
        assert executor.api_url == url
        assert fake.token_claims[-1]["tenantKey"] == "tenant-cli"
        await executor.aclose()


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("echo 'not logged in' >&2; exit 3", "exit code 3"),
        ('echo \'{"apiUri": "https://x"}\'', "workspaceSecret"),
        ("sleep 5", "did not answer"),
    ],
)
async def test_cli_credentials_failures(tmp_path: Path, body: str, match: str) -> None:
    source = CliCredentials(_fake_cli(tmp_path, body), timeout_s=0.5)
    with pytest.raises(ConfigurationError, match=match):
        await source.token()


async def test_from_env_without_credentials_fails_on_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda _: None)
    executor = MembraneExecutor.from_env({"CLEVERTAP_MCP_STATE_DIR": str(tmp_path)})
    assert executor.name == "membrane"
    with pytest.raises(ConfigurationError, match="No Membrane credential"):
        await executor.connect(0)
    with pytest.raises(ConfigurationError):
        await executor.ensure_ready()


async def test_long_ui_url_survives(fake_server: tuple[str, FakeMembrane], tmp_path: Path) -> None:
    url, fake = fake_server
    ui_url = "https://ui.getmembrane.com/screens/connections?connectionRequestId=" + "a1B2" * 16
    connection_id = fake.add_connection("CLIENT_ACTION_REQUIRED", client_action={"type": "connect", "uiUrl": ui_url})
    executor = make_executor(url, tmp_path, connection_id=connection_id)
    result = await executor.connect(0)
    assert ui_url in result.next_step and result.details["uiUrl"] == ui_url
    await executor.aclose()


def test_state_dir_resolution(tmp_path: Path) -> None:
    assert default_state_dir({"CLEVERTAP_MCP_STATE_DIR": str(tmp_path)}) == tmp_path
    assert default_state_dir({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "clevertap-mcp"
    assert default_state_dir({}) == Path.home() / ".config" / "clevertap-mcp"


# -- connect ---------------------------------------------------------------------------------------------------------


async def test_connect_full_flow(fake_server: tuple[str, FakeMembrane], tmp_path: Path) -> None:
    url, fake = fake_server
    executor = make_executor(url, tmp_path)
    changed: list[int] = []

    async def on_changed() -> None:
        changed.append(1)

    executor.set_tools_changed_listener(on_changed)
    progress: list[tuple[float, float | None, str | None]] = []

    async def report(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    first = await executor.connect(5, report)
    assert first.backend == "membrane" and first.state == "CLIENT_ACTION_REQUIRED"
    ui_url = first.details["uiUrl"]
    assert ui_url.startswith("https://ui.getmembrane.com/")
    assert first.next_step == (
        "follow Membrane's agentInstructions: Ask the user to sign in to CleverTap with the account id and passcode; "
        f"show this URL to the user: {ui_url}; once they finished, call clevertap_connect again"
    )
    assert first.details["clientActionType"] == "connect" and first.details["agentInstructions"]
    assert progress and progress[0][1] == 5 and progress[0][2] == "still building..."
    assert executor.live_action("get-event-count") is None
    with pytest.raises(MembraneError, match="not ready") as not_ready:
        await executor.ensure_ready()
    assert "call clevertap_connect" in not_ready.value.render()

    fake.complete_client_action(first.connection_id or "")
    ready = await executor.connect(5)
    assert ready.state == "READY" and ready.connection_id == first.connection_id
    assert "ready" in ready.message and ready.details["live_actions"] == len(fake.actions)
    assert await executor.ensure_ready() == first.connection_id
    assert changed == [1]
    live = executor.live_action("get-event-count")
    assert live is not None and "eventName" in (live.input_schema or {}).get("properties", {})
    assert executor.live_action("list-custom-events") is not None  # a key the catalog lacks
    assert executor.live_action("no-such-key") is None
    assert len(fake.calls_to("GET", "/actions")) >= 2  # the fake pages by 10: the cursor was followed
    assert len(fake.calls_to("POST", "/connections/ensure")) == 1
    assert all(call.api_version == "2025-10-21" for call in fake.calls)

    await executor.connect(5)
    assert changed == [1]  # same schemas: no notification
    fake.actions[0]["inputSchema"] = {"type": "object", "properties": {"renamed": {"type": "string"}}}
    assert fake.actions[0]["key"] in POPULAR_ACTION_KEYS
    await executor.connect(5)
    assert changed == [1, 1]
    await executor.aclose()


async def test_connect_budget_ends_while_building(tmp_path: Path, stub: Any) -> None:
    with running_fake_membrane(clevertap_app=stub[0], build_seconds=None) as (url, fake):
        executor = make_executor(url, tmp_path)
        result = await executor.connect(2)
        assert result.state == "BUILDING"
        assert "call clevertap_connect again" in result.next_step
        polls = fake.calls_to("GET", "/connections/")
        # One long poll for what is left of the two seconds (whole seconds, rounded down), never longer.
        assert len(polls) == 1 and polls[0].query["wait"] == "true" and polls[0].query["timeout"] in ("1", "2")

        assert (await executor.connect(0)).state == "BUILDING"
        assert len(fake.calls_to("GET", "/connections/")) == 2  # no wait: a plain GET of the remembered id
        await executor.aclose()


async def test_long_poll_returns_when_the_state_changes(tmp_path: Path, stub: Any) -> None:
    with running_fake_membrane(clevertap_app=stub[0], build_seconds=None) as (url, fake):
        executor = make_executor(url, tmp_path)
        results = []

        async def run() -> None:
            results.append(await executor.connect(30))

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            while not fake.calls_to("GET", "/connections/"):
                await anyio.sleep(0.02)
            await anyio.sleep(0.3)
            fake.finish_build(next(iter(fake.connections)))
        assert results[0].state == "CLIENT_ACTION_REQUIRED"
        poll = fake.calls_to("GET", "/connections/")[0]
        # A long poll for what is left of the 30 s (whole seconds), answered as soon as the state changed.
        assert poll.query["timeout"] in ("29", "30") and poll.finished - poll.started < 29
        await executor.aclose()


@pytest.mark.parametrize(
    ("scenario", "state", "text"),
    [
        ("setup_failed", "SETUP_FAILED", "Could not build a connector"),
        ("configuration_error", "CONFIGURATION_ERROR", "region parameter is missing"),
    ],
)
async def test_connect_terminal_failures(tmp_path: Path, stub: Any, scenario: Any, state: str, text: str) -> None:
    with running_fake_membrane(clevertap_app=stub[0], scenario=scenario) as (url, _):
        executor = make_executor(url, tmp_path)
        result = await executor.connect(5)
        assert result.state == state
        assert text in result.message
        assert text in json.dumps(result.details["errors"])
        assert "tell the user" in result.next_step
        with pytest.raises(MembraneError, match="not ready"):
            await executor.ensure_ready()
        await executor.aclose()


async def test_connect_provide_input(tmp_path: Path, stub: Any) -> None:
    with running_fake_membrane(clevertap_app=stub[0], scenario="provide_input") as (url, _):
        executor = make_executor(url, tmp_path)
        result = await executor.connect(5)
        assert result.state == "CLIENT_ACTION_REQUIRED"
        assert result.details["clientActionType"] == "provide-input"
        assert "more information" in result.message and "region" in result.message
        assert "agentInstructions" in result.next_step and "call clevertap_connect again" in result.next_step
        await executor.aclose()


async def test_connect_disconnecting_and_unknown_states(fake_server: tuple[str, FakeMembrane], tmp_path: Path) -> None:
    url, fake = fake_server
    connection_id = fake.add_connection("DISCONNECTING")
    executor = make_executor(url, tmp_path, connection_id=connection_id)
    result = await executor.connect(1)
    assert result.state == "DISCONNECTING" and "being disconnected" in result.message
    fake.set_state(connection_id, "SOMETHING_NEW")
    result = await executor.connect(1)
    assert result.state == "SOMETHING_NEW" and "does not know" in result.message
    assert "clevertap_connect" in result.next_step
    assert not fake.calls_to("POST", "/connections/ensure")  # pinned: never ensured
    await executor.aclose()


async def test_state_file_reused_across_executors(fake_server: tuple[str, FakeMembrane], tmp_path: Path) -> None:
    url, fake = fake_server
    executor = await ready_executor(url, fake, tmp_path)
    connection_id = await executor.ensure_ready()
    await executor.aclose()

    path = tmp_path / STATE_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert connection_id in text and TOKEN not in text and url in text

    second = make_executor(url, tmp_path)
    assert await second.ensure_ready() == connection_id
    assert (await second.connect(1)).state == "READY"
    assert len(fake.calls_to("POST", "/connections/ensure")) == 1
    assert second.live_action("get-events") is not None

    other = make_executor(url, tmp_path, auth=StaticToken("another-token-value"))
    assert other.api_url == url
    fake.tokens = {TOKEN, "another-token-value"}
    await other.connect(0)  # another credential: its own key, so ensure runs again
    assert len(fake.calls_to("POST", "/connections/ensure")) == 2
    await second.aclose()
    await other.aclose()


async def test_forgotten_connection_is_ensured_again(fake_server: tuple[str, FakeMembrane], tmp_path: Path) -> None:
    url, fake = fake_server
    executor = make_executor(url, tmp_path)
    first = await executor.connect(1)
    fake.delete_connection(first.connection_id or "")
    fresh = make_executor(url, tmp_path)
    second = await fresh.connect(1)
    assert second.connection_id != first.connection_id
    assert len(fake.calls_to("POST", "/connections/ensure")) == 2
    assert str(second.connection_id) in (tmp_path / STATE_FILE_NAME).read_text()
    assert str(first.connection_id) not in (tmp_path / STATE_FILE_NAME).read_text()
    await executor.aclose()
    await fresh.aclose()


async def test_pinned_connection(fake_server: tuple[str, FakeMembrane], tmp_path: Path) -> None:
    url, fake = fake_server
    connection_id = fake.add_connection("READY")
    executor = make_executor(url, tmp_path, connection_id=connection_id)
    assert await executor.ensure_ready() == connection_id
    assert executor.live_action("upload-events") is not None
    missing = make_executor(url, tmp_path, connection_id="0123456789abcdef01234567")
    with pytest.raises(MembraneError, match="MEMBRANE_CONNECTION_ID"):
        await missing.connect(0)
    assert not fake.calls_to("POST", "/connections/ensure")
    assert not (tmp_path / STATE_FILE_NAME).exists()
    await executor.aclose()
    await missing.aclose()


async def test_ensure_ready_ensures_when_nothing_is_remembered(
    fake_server: tuple[str, FakeMembrane], tmp_path: Path
) -> None:
    url, fake = fake_server
    connection_id = fake.add_connection("READY")
    executor = make_executor(url, tmp_path)
    assert await executor.ensure_ready() == connection_id  # an existing READY connection works without connect
    await executor.aclose()


async def test_admin_endpoint_completes_the_client_action(
    fake_server: tuple[str, FakeMembrane], tmp_path: Path
) -> None:
    url, fake = fake_server
    executor = make_executor(url, tmp_path)
    result = await executor.connect(2)
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{url}/__admin/connections/{result.connection_id}/complete")
    assert answer.status_code == 200
    assert fake.state_of(result.connection_id or "") == "READY"
    await executor.aclose()


# -- search, run, proxy ------------------------------------------------------------------------------------------------


async def test_search_actions(fake_server: tuple[str, FakeMembrane], tmp_path: Path) -> None:
    url, fake = fake_server
    executor = await ready_executor(url, fake, tmp_path)
    found = await executor.search_actions("upload user profiles", 3)
    assert 1 <= len(found) <= 3
    assert found[0].key == "upload-user-profiles" and found[0].read_only is None
    assert found[0].input_schema and "profiles" in found[0].input_schema["properties"]
    assert len(found[0].id) == 24
    query = fake.calls_to("GET", "/actions")[-1].query
    assert query["intent"] == "upload user profiles" and query["limit"] == "3"
    await executor.search_actions("x" * 500, 1000)
    query = fake.calls_to("GET", "/actions")[-1].query
    assert len(query["intent"]) == 200 and query["limit"] == "100"
    await executor.aclose()


async def test_run_action_via_act(
    fake_server: tuple[str, FakeMembrane], tmp_path: Path, stub: tuple[Any, list[dict[str, Any]]]
) -> None:
    url, fake = fake_server
    executor = await ready_executor(url, fake, tmp_path)
    run = await executor.run_action(
        "get-event-count", {"eventName": "Charged", "fromDate": 20260101, "toDate": 20260102}
    )
    assert run.output == {"status": "success", "count": 42} and run.action_run_id
    act = fake.calls_to("POST", "/act")[-1].json
    assert act["key"] == "get-event-count" and act["connectionId"] == await executor.ensure_ready()
    assert stub[1][-1]["path"] == "/1/counts/events.json" and stub[1][-1]["account"] == "DEMO-SANDBOX"
    assert stub[1][-1]["body"] == {"event_name": "Charged", "from": 20260101, "to": 20260102}

    action_id = next(a["id"] for a in fake.actions if a["key"] == "upload-events")
    run = await executor.run_action(action_id, {"events": [{"identity": "u1", "evtName": "X", "evtData": {}}]})
    assert run.output["processed"] == 1
    assert fake.calls_to("POST", "/act")[-1].json["id"] == action_id
    assert executor.act_available
    await executor.aclose()


async def test_run_action_falls_back_when_act_is_unknown(tmp_path: Path, stub: Any) -> None:
    with running_fake_membrane(clevertap_app=stub[0], tokens={TOKEN}, act_available=False) as (url, fake):
        executor = await ready_executor(url, fake, tmp_path)
        run = await executor.run_action("list-custom-events", {})
        assert run.output == {"events": ["Charged", "App Launched"]}
        runs = fake.calls_to("POST", "/actions/list-custom-events/run")
        assert runs[-1].query == {"connectionId": await executor.ensure_ready()} and runs[-1].json == {"input": {}}
        assert not executor.act_available
        await executor.run_action("get-campaigns", {"fromDate": 20260101, "toDate": 20260102})
        assert len(fake.calls_to("POST", "/act")) == 1  # remembered: /act is not tried again
        await executor.aclose()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"type": "bad_request", "message": "property key should not exist"}),
        (404, {"type": "bad_request", "key": "not_found", "message": "Action 'list-custom-events' not found"}),
        (405, {"type": "bad_request", "message": "Method not allowed for this action"}),
    ],
)
async def test_act_errors_that_do_not_name_the_route_are_not_a_missing_route(
    fake_server: tuple[str, FakeMembrane], tmp_path: Path, status: int, body: dict[str, Any]
) -> None:
    url, fake = fake_server
    executor = await ready_executor(url, fake, tmp_path)
    fake.inject("POST", "/act", status, body)
    with pytest.raises(MembraneError):
        await executor.run_action("list-custom-events", {})
    assert executor.act_available and not fake.calls_to("POST", "/actions/")  # no fallback to the old route
    assert (await executor.run_action("list-custom-events", {})).action_run_id
    await executor.aclose()


async def test_act_405_naming_the_route_falls_back(fake_server: tuple[str, FakeMembrane], tmp_path: Path) -> None:
    url, fake = fake_server
    executor = await ready_executor(url, fake, tmp_path)
    fake.inject("POST", "/act", 405, {"message": "Cannot POST /act", "error": "Method Not Allowed", "statusCode": 405})
    run = await executor.run_action("list-custom-events", {})
    assert run.action_run_id and not executor.act_available
    assert len(fake.calls_to("POST", "/actions/")) == 1
    await executor.aclose()


async def test_run_unknown_action(fake_server: tuple[str, FakeMembrane], tmp_path: Path) -> None:
    url, fake = fake_server
    executor = await ready_executor(url, fake, tmp_path)
    with pytest.raises(MembraneError, match="no action 'no-such-action'") as caught:
        await executor.run_action("no-such-action", {})
    assert caught.value.status == 404 and "clevertap_search_actions" in caught.value.render()
    assert executor.act_available  # the route exists; only the action was missing
    await executor.aclose()


async def test_failed_action_names_its_run(fake_server: tuple[str, FakeMembrane], tmp_path: Path) -> None:
    url, fake = fake_server
    executor = await ready_executor(url, fake, tmp_path)
    with pytest.raises(MembraneError) as caught:
        await executor.run_action("always-fails", {"objectId": "x"})
    run_id = caught.value.details["actionRunId"]
    assert run_id in caught.value.message and "device token is not registered" in caught.value.message
    with pytest.raises(MembraneError, match="CleverTap answered HTTP 400"):
        await executor.run_action("get-campaign-report", {"campaignId": "fail"})
    await executor.aclose()


async def test_request_raw_passthrough(
    fake_server: tuple[str, FakeMembrane], tmp_path: Path, stub: tuple[Any, list[dict[str, Any]]]
) -> None:
    url, fake = fake_server
    executor = await ready_executor(url, fake, tmp_path)
    connection_id = await executor.ensure_ready()
    cursor = "ZyZjY2Jk%2BQ%3D%3D"
    answer = await executor.request("GET", f"/1/events.json?cursor={cursor}")
    assert answer.status == 200 and answer.body["records"] == [{"raw_query": f"cursor={cursor}"}]
    proxied = fake.calls_to("GET", f"/connections/{connection_id}/proxy/1/events.json")[-1]
    assert proxied.query == {"cursor": "ZyZjY2Jk+Q=="}  # decoded by the fake: it was one value, byte for byte
    assert fake.forwarded[-1]["raw_query"] == f"cursor={cursor}"

    answer = await executor.request("POST", "/1/counts/events.json", {"batch_size": 10}, {"event_name": "Charged"})
    assert answer.body == {"status": "success", "count": 42}
    assert fake.forwarded[-1]["body"] == {"event_name": "Charged"}
    assert stub[1][-1]["raw_query"] == "batch_size=10" and stub[1][-1]["content_type"] == "application/json"
    assert not fake.calls_to("POST", f"/connections/{connection_id}/request")

    failed = await executor.request("POST", "/1/fail.json", None, {})
    assert failed.status == 400 and failed.body["status"] == "fail"  # CleverTap's answer, not a Membrane error
    text = await executor.request("GET", "/1/text")
    assert text.status == 200 and text.body == "plain words"
    await executor.aclose()


@pytest.mark.parametrize("envelope", ["data", "body"])
async def test_request_envelope(tmp_path: Path, stub: Any, envelope: Any) -> None:
    kwargs: dict[str, Any] = {"envelope": envelope, "proxy_available": False}  # the /request fallback may wrap
    with running_fake_membrane(clevertap_app=stub[0], tokens={TOKEN}, **kwargs) as (url, fake):
        executor = await ready_executor(url, fake, tmp_path)
        answer = await executor.request("POST", "/1/fail.json", None, {})
        assert answer.status == 400 and answer.body == {"status": "fail", "error": "Invalid event name", "code": 400}
        assert answer.headers == {"content-type": "application/json"}
        ok = await executor.request("POST", "/1/counts/profiles.json", None, {"event_name": "x"})
        assert ok.status == 200 and ok.body["count"] == 42
        await executor.aclose()


def test_envelope_detection_is_defensive() -> None:
    clevertap_body = {"status": "success", "data": [1, 2]}
    assert _unwrap(ApiResponse(200, clevertap_body)).body == clevertap_body
    assert _unwrap(ApiResponse(200, {"status": True, "data": 1})).body == {"status": True, "data": 1}
    assert _unwrap(ApiResponse(200, {"status": 201})).body == {"status": 201}
    wrapped = _unwrap(ApiResponse(200, {"status": 404, "body": '{"status": "fail"}'}))
    assert wrapped.status == 404 and wrapped.body == {"status": "fail"}


# -- errors ------------------------------------------------------------------------------------------------------------


async def test_refused_token(fake_server: tuple[str, FakeMembrane], tmp_path: Path) -> None:
    url, _ = fake_server
    executor = make_executor(url, tmp_path, auth=StaticToken("wrong-token-value-123456"))
    with pytest.raises(MembraneError) as caught:
        await executor.connect(0)
    assert caught.value.status == 401
    rendered = caught.value.render()
    assert "the Membrane token was refused" in rendered
    assert "MEMBRANE_TOKEN must be a Membrane tenant token" in rendered and "`membrane token`" in rendered
    assert "login --tenant" not in rendered
    await executor.aclose()


SLOW_DOWN = {"type": "bad_request", "key": "rate_limit_exceeded", "message": "Slow down"}


async def test_rate_limit_is_retryable(fake_server: tuple[str, FakeMembrane], tmp_path: Path) -> None:
    url, fake = fake_server
    executor = await ready_executor(url, fake, tmp_path)
    executor.retry_backoff_s = 0.01
    fake.inject("GET", "/actions", 429, SLOW_DOWN, times=READ_ATTEMPTS)
    with pytest.raises(MembraneError, match="rate limiting") as caught:
        await executor.search_actions("events", 5)
    assert caught.value.retryable and caught.value.status == 429
    await executor.aclose()


async def test_action_search_is_retried_like_every_read(fake_server: tuple[str, FakeMembrane], tmp_path: Path) -> None:
    url, fake = fake_server
    executor = await ready_executor(url, fake, tmp_path)
    executor.retry_backoff_s = 0.01
    fake.inject("GET", "/actions", 429, SLOW_DOWN, times=READ_ATTEMPTS - 1)
    found = await executor.search_actions("events", 5)
    assert found, "the search succeeds once Membrane stops refusing"
    searches = [c for c in fake.calls_to("GET", "/actions") if c.query.get("intent") == "events"]
    assert len(searches) == READ_ATTEMPTS
    await executor.aclose()


async def test_network_error_names_the_host(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    executor = make_executor(f"http://127.0.0.1:{port}", tmp_path)
    with pytest.raises(MembraneError) as caught:
        await executor.connect(0)
    assert caught.value.retryable and f"127.0.0.1:{port}" in caught.value.message
    await executor.aclose()


async def test_connection_gone_or_not_ready_after_ready(fake_server: tuple[str, FakeMembrane], tmp_path: Path) -> None:
    url, fake = fake_server
    executor = await ready_executor(url, fake, tmp_path)
    connection_id = await executor.ensure_ready()

    fake.set_state(connection_id, "CLIENT_ACTION_REQUIRED", fake._connect_action(connection_id))
    with pytest.raises(MembraneError, match="not ready") as caught:
        await executor.request("GET", "/1/events.json?cursor=abc")
    assert "call clevertap_connect" in caught.value.render()
    assert executor.live_action("get-events") is None

    fake.set_state(connection_id, "READY")
    assert await executor.ensure_ready() == connection_id
    fake.inject(
        "GET",
        f"/connections/{connection_id}/proxy/",
        400,
        {"type": "connection", "key": "access_token_expired", "message": "The CleverTap credentials expired."},
    )
    with pytest.raises(MembraneError, match="access_token_expired") as caught:
        await executor.request("GET", "/1/events.json?cursor=abc")
    assert "clevertap_connect" in caught.value.render()

    assert await executor.ensure_ready() == connection_id
    fake.delete_connection(connection_id)
    with pytest.raises(MembraneError, match="no longer knows") as caught:
        await executor.run_action("get-campaigns", {})
    assert caught.value.hint == "call clevertap_connect"
    assert connection_id not in (tmp_path / STATE_FILE_NAME).read_text()
    await executor.aclose()


async def test_no_secret_in_any_error_or_log(
    tmp_path: Path, stub: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []

    def collect(exc: BaseException) -> None:
        assert isinstance(exc, ToolFailure)
        texts.extend([exc.render(), str(exc), json.dumps(exc.details, default=str)])

    minted = MintedToken("ws-key", SECRET, "tenant-1")
    with running_fake_membrane(clevertap_app=stub[0], workspace_secret=SECRET) as (url, fake):
        executor = make_executor(url, tmp_path, auth=minted)
        jwt_value = await minted.token()
        echo = f"bad token {jwt_value} secret {SECRET}"
        for status, body in [
            (401, {"type": "bad_request", "key": "not_authenticated", "message": echo}),
            (403, {"type": "bad_request", "key": "access_denied", "message": echo}),
            (404, {"type": "bad_request", "key": "not_found", "message": echo}),
            (429, {"type": "bad_request", "key": "rate_limit_exceeded", "message": echo}),
            (500, {"type": "internal", "message": echo}),
            (502, f"<html>{echo}</html>"),
            (400, {"type": "connection", "key": "access_token_expired", "message": echo}),
        ]:
            fake.inject("POST", "/connections/ensure", status, body)
            with pytest.raises(MembraneError) as caught:
                await executor.connect(0)
            collect(caught.value)
        connection_id = fake.add_connection("READY")
        pinned = make_executor(url, tmp_path, auth=minted, connection_id=connection_id)
        fake.inject("POST", "/act", 400, {"type": "action_run", "message": echo, "actionRunId": "r1"})
        with pytest.raises(MembraneError) as caught:
            await pinned.run_action("get-campaigns", {})
        collect(caught.value)
        fake.set_state(connection_id, "BUILDING")
        with pytest.raises(MembraneError) as caught:
            await pinned.request("GET", "/1/text")
        collect(caught.value)
        await executor.aclose()
        await pinned.aclose()

    offline = make_executor("http://127.0.0.1:9", tmp_path, auth=StaticToken(TOKEN))
    with pytest.raises(MembraneError) as caught:
        await offline.connect(0)
    collect(caught.value)
    await offline.aclose()

    cli = CliCredentials(_fake_cli(tmp_path, f"echo 'failed for {SECRET} {TOKEN}' >&2; exit 1"))
    with pytest.raises(ConfigurationError) as cli_error:
        await cli.token()
    collect(cli_error.value)

    logs = "\n".join(record.getMessage() for record in caplog.records)
    secrets = [TOKEN, SECRET, jwt_value, *minted.secrets()]
    assert len(texts) > 20
    for text in [*texts, logs]:
        for secret in secrets:
            assert secret not in text


async def test_requests_carry_bearer_and_version(tmp_path: Path, stub: Any) -> None:
    with running_fake_membrane(clevertap_app=stub[0]) as (url, _):
        async with httpx.AsyncClient() as client:
            answer = await client.post(f"{url}/connections/ensure", json={"appUrl": "https://clevertap.com/"})
            assert answer.status_code == 401
            assert answer.json()["key"] == "not_authenticated"
            bad = await client.post(
                f"{url}/connections/ensure", json={"appUrl": "nodot"}, headers={"Authorization": "Bearer x"}
            )
            assert bad.status_code == 400 and "valid URL" in bad.json()["message"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_state_store_survives_a_corrupt_file(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE_NAME).write_text("{not json")
    store = ConnectionStateStore(tmp_path)
    assert store.get("https://api", "id") is None
    store.put("https://api", "id", "c1")
    assert ConnectionStateStore(tmp_path).get("https://api/", "id") == "c1"
    assert stat.S_IMODE(os.stat(tmp_path / STATE_FILE_NAME).st_mode) == 0o600
    store.forget("https://api", "id")
    assert ConnectionStateStore(tmp_path).get("https://api", "id") is None


async def test_against_the_sandbox_emulator(tmp_path: Path) -> None:
    sandbox = pytest.importorskip("server.backends.sandbox")
    app = sandbox.create_app(sandbox.SandboxConfig(seed_profiles=40, seed_events=400))
    with running_fake_membrane(clevertap_app=app) as (url, fake):
        executor = make_executor(url, tmp_path, connection_id=fake.add_connection("READY"))
        now = dt.datetime.now(dt.timezone.utc).date()
        today, month_ago = (int(d.strftime("%Y%m%d")) for d in (now, now - dt.timedelta(days=30)))
        span = {"fromDate": month_ago, "toDate": today}
        counted = await executor.run_action("get-event-count", {"eventName": "Charged", **span})
        assert counted.output["status"] == "success" and isinstance(counted.output["count"], int)
        body = {"event_name": "App Launched", "from": span["fromDate"], "to": today}
        started = await executor.request("POST", "/1/events.json", {"batch_size": 5}, body)
        assert started.status == 200 and started.body["cursor"]
        page = await executor.request("GET", f"/1/events.json?cursor={started.body['cursor']}")
        assert page.status == 200 and page.body["status"] == "success"
        assert fake.forwarded[-1]["url"] == f"/1/events.json?cursor={started.body['cursor']}"
        refused = await executor.request("POST", "/1/counts/events.json", None, {"event_name": "x"})
        assert refused.status >= 400 or refused.body.get("status") == "fail"
        await executor.aclose()


async def test_from_settings(tmp_path: Path, fake_server: tuple[str, FakeMembrane]) -> None:
    from server.config import load_settings
    from server.policies.scrub import Scrubber

    url, _ = fake_server
    settings = load_settings({"MEMBRANE_TOKEN": TOKEN, "MEMBRANE_API_URL": url})
    scrubber = Scrubber()
    executor = MembraneExecutor.from_settings(settings, scrubber=scrubber, state=ConnectionStateStore(tmp_path))
    assert executor.api_url == url
    assert (await executor.connect(2)).state == "CLIENT_ACTION_REQUIRED"
    assert scrubber(f"x {TOKEN} y") == "x *** y"  # the token source's secrets were shared with the server's scrubber
    await executor.aclose()
    fallback = MembraneExecutor.from_settings(load_settings({"MEMBRANE_TOKEN": TOKEN}))
    assert fallback.api_url == "https://api.getmembrane.com"


async def test_clevertap_405_through_the_proxy_is_its_answer_not_a_missing_route(
    fake_server: tuple[str, FakeMembrane], tmp_path: Path
) -> None:
    url, fake = fake_server
    executor = await ready_executor(url, fake, tmp_path)
    connection_id = await executor.ensure_ready()
    fake.inject("GET", f"/connections/{connection_id}/proxy/", 405, "")
    answer = await executor.request("GET", "/1/upload")
    assert answer.status == 405  # CleverTap's own answer, passed through
    again = await executor.request("GET", "/1/events.json?cursor=abc")
    assert again.status == 200 and not fake.calls_to("POST", f"/connections/{connection_id}/request")
    await executor.aclose()
