"""The Membrane backend through MCP, against a fake that follows the published SDK (issue 14).

Catalog actions without ``key``; popular actions Membrane does not list; ``clientAction`` without ``uiUrl`` (a
connection request supplies the link); a connection that lost its authorization is reconnected, not replaced; a
failed action run explained by its run log; exports and polled counts through the proxy route with pre-encoded
cursors arriving byte for byte; the ``/connections/{id}/request`` fallback with string-only values.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.backends.sandbox import SandboxConfig, create_app
from tests.fakes.membrane import FakeMembrane, running_fake_membrane
from tests.helpers import day, err, make_runtime, mcp_client, ok
from tools.catalog import CATALOG

pytestmark = pytest.mark.anyio

TOKEN = "mbr-tenant-token-5e1d7c0a93b24f68"
POPULAR = {s.action_key: s.name for s in CATALOG if s.action_key is not None}
SPAN = {"fromDate": day(-30), "toDate": day(0)}
FIRST_CURSOR = "ZyZjY2Jk%2BQ%3D%3D"  # CleverTap cursors arrive %-encoded and must go back unchanged
NEXT_CURSOR = "Qm9vaw%2B%2Fx%3D%3D"


def sandbox() -> Any:
    return create_app(SandboxConfig(seed_profiles=200, seed_events=2_000))


def client_for(url: str, **env: str) -> Any:
    runtime = make_runtime({"MEMBRANE_TOKEN": TOKEN, "MEMBRANE_API_URL": url, **env}, backend=None)
    assert runtime.backend == "membrane"
    return mcp_client(runtime)


async def ready(client: Any, fake: FakeMembrane) -> dict[str, Any]:
    """clevertap_connect, the user's browser step on the fake, clevertap_connect again (READY), list the tools."""
    first = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 5}))
    assert first["state"] == "CLIENT_ACTION_REQUIRED", first
    fake.complete_client_action(first["connection_id"])
    done = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 5}))
    assert done["state"] == "READY", done
    await client.list_tools()
    return done


# -- live actions -------------------------------------------------------------------------------------------------


async def test_catalog_actions_without_key_are_matched_by_name_and_run_by_id() -> None:
    with running_fake_membrane(clevertap_app=sandbox(), tokens={TOKEN}, keyless=True) as (url, fake):
        async with client_for(url) as client:
            done = await ready(client, fake)
            tools = {t.name: t for t in (await client.list_tools()).tools}
            count = ok(await client.call_tool("clevertap_get_event_count", {"eventName": "Charged", **SPAN}))
            found = ok(await client.call_tool("clevertap_search_actions", {"intent": "message delivery reports"}))
    listed = fake.calls_to("GET", "/actions")[0]
    assert listed.query["connectionId"] == done["connection_id"]
    assert done["details"]["popular_actions_live"] == f"{len(POPULAR)} of {len(POPULAR)}"
    assert "unique" in tools["clevertap_get_event_count"].input_schema["properties"]  # Membrane's live schema
    assert count["output"]["count"] > 0 and count["action_run_id"]
    act = fake.calls_to("POST", "/act")[-1].json
    event_count = next(a for a in fake.actions if a["key"] == "get-event-count")
    assert act == {
        "id": event_count["id"],
        "connectionId": done["connection_id"],
        "input": {"eventName": "Charged", **SPAN},
    }
    assert found["actions"][0]["key"] == "" and found["actions"][0]["id"]  # an agent runs it by id


async def test_popular_actions_membrane_lacks_are_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="clevertap_mcp.membrane")
    gone = {"real-time-user-count", "get-campaign-report", "stop-campaign"}
    with running_fake_membrane(clevertap_app=sandbox(), tokens={TOKEN}) as (url, fake):
        fake.actions = [a for a in fake.actions if a["key"] not in gone]
        async with client_for(url) as client:
            done = await ready(client, fake)
            again = ok(await client.call_tool("clevertap_connect", {}))
            tools = {t.name: t for t in (await client.list_tools()).tools}
            realtime = ok(await client.call_tool("clevertap_real_time_user_count", {"user_type": True}))
    total = len(POPULAR)
    assert done["details"]["popular_actions_live"] == f"{total - 3} of {total}"
    assert f"{total - 3} of {total} actions live" in done["message"]
    assert set(done["details"]["popular_actions_missing"]) == gone
    assert again["details"]["popular_actions_missing"] == done["details"]["popular_actions_missing"]
    warnings = [r.getMessage() for r in caplog.records if "popular actions are live" in r.getMessage()]
    assert len(warnings) == 1 and all(key in warnings[0] for key in gone)
    assert "user_type" in tools["clevertap_real_time_user_count"].input_schema["properties"]  # the bundled schema
    assert isinstance(realtime["count"], int)
    assert any(f["url"].startswith("/1/now.json") for f in fake.forwarded)  # through the proxy


# -- connection UX ------------------------------------------------------------------------------------------------


async def test_client_action_without_ui_url_gets_a_connection_request_link() -> None:
    with running_fake_membrane(clevertap_app=sandbox(), tokens={TOKEN}, ui_url=False) as (url, fake):
        async with client_for(url) as client:
            first = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 5}))
            second = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 1}))
            (request_id,) = fake.connection_requests
            fake.complete_connection_request(request_id)
            done = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 1}))
    assert first["state"] == "CLIENT_ACTION_REQUIRED"
    link = first["details"]["uiUrl"]
    assert link == f"https://ui.getmembrane.com/screens/connections?connectionRequestId={request_id}"
    assert first["details"]["uiUrlFrom"] == "POST /connection-requests"
    step = first["next_step"]
    assert step.index("agentInstructions") < step.index(link) < step.index("clevertap_connect again")
    assert second["details"]["uiUrl"] == link  # the pending request is reused, not a new one per call
    assert [c.json for c in fake.calls_to("POST", "/connection-requests")] == [{"connectionId": first["connection_id"]}]
    assert done["state"] == "READY" and done["connection_id"] == first["connection_id"]


@pytest.mark.parametrize("style", ["client_action", "defunct"])
async def test_a_connection_that_lost_its_authorization_is_reconnected(style: Any) -> None:
    with running_fake_membrane(clevertap_app=sandbox(), tokens={TOKEN}) as (url, fake):
        async with client_for(url) as client:
            before = await ready(client, fake)
            connection_id = before["connection_id"]
            fake.lose_authorization(connection_id, style)
            broken = err(await client.call_tool("clevertap_get_event_count", {"eventName": "Charged", **SPAN}))
            asked = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 1}))
            (request_id,) = fake.connection_requests
            fake.complete_connection_request(request_id)
            back = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 1}))
            await client.list_tools()
            count = ok(await client.call_tool("clevertap_get_event_count", {"eventName": "Charged", **SPAN}))
    assert "connection_is_defunct" in broken and "clevertap_connect" in broken
    assert asked["state"] == "CLIENT_ACTION_REQUIRED" and asked["connection_id"] == connection_id
    assert "reconnect" in asked["message"].lower() and asked["details"]["uiUrl"].endswith(request_id)
    assert fake.connection_requests[request_id]["connectionId"] == connection_id
    assert back["state"] == "READY" and back["connection_id"] == connection_id
    assert len(fake.calls_to("POST", "/connections/ensure")) == 1 and len(fake.connections) == 1  # nothing new
    assert count["output"]["count"] > 0


# -- action runs --------------------------------------------------------------------------------------------------


async def test_a_failed_run_says_why_from_its_run_log() -> None:
    with running_fake_membrane(clevertap_app=sandbox(), tokens={TOKEN}) as (url, fake):
        async with client_for(url) as client:
            await ready(client, fake)
            # An action the server cannot classify runs only once confirmed: preview, then the token.
            arguments: dict[str, Any] = {"action": "always-fails", "input": {}}
            preview = ok(await client.call_tool("clevertap_run_action", arguments))
            assert preview["ran"] is False and not fake.calls_to("POST", "/act")
            confirmed = {**arguments, "confirm_token": preview["confirm_token"]}
            failed = err(await client.call_tool("clevertap_run_action", confirmed))
    assert [c.json["key"] for c in fake.calls_to("POST", "/act")] == ["always-fails"]
    (run_id,) = fake.run_logs
    assert fake.calls_to("GET", f"/action-run-logs/{run_id}")
    assert "The device token is not registered" in failed  # only the run log says so; /act said "Action run failed"
    assert "Action run failed" in failed and run_id in failed


# -- raw calls through the proxy route ----------------------------------------------------------------------------


def cursor_stub() -> tuple[Starlette, list[dict[str, Any]]]:
    """A CleverTap stand-in: an export whose cursors carry %2B and %3D, and a count that is 'partial' once."""
    seen: list[dict[str, Any]] = []
    polls: list[int] = []

    async def handle(request: Request) -> Response:
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        seen.append({"method": request.method, "path": request.url.path, "raw_query": raw_query})
        path = request.url.path
        if path == "/1/events.json" and request.method == "POST":
            return JSONResponse({"status": "success", "cursor": FIRST_CURSOR})
        if path == "/1/events.json" and raw_query == f"cursor={FIRST_CURSOR}":
            return JSONResponse({"status": "success", "records": [{"n": 1}, {"n": 2}], "next_cursor": NEXT_CURSOR})
        if path == "/1/events.json" and raw_query == f"cursor={NEXT_CURSOR}":
            return JSONResponse({"status": "success", "records": [{"n": 3}]})
        if path == "/1/counts/events.json" and request.method == "POST":
            return JSONResponse({"status": "partial", "req_id": 87_654_321})
        if path == "/1/counts/events.json" and raw_query == "req_id=87654321":
            polls.append(1)
            return JSONResponse({"status": "success", "count": 1234})
        return JSONResponse({"status": "fail", "error": f"unexpected {request.method} {path}?{raw_query}"}, 400)

    return Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST"])]), seen


@pytest.fixture
def proxied() -> Iterator[tuple[str, FakeMembrane, list[dict[str, Any]]]]:
    app, seen = cursor_stub()
    with running_fake_membrane(clevertap_app=app, tokens={TOKEN}) as (url, fake):
        fake.actions = []  # no live actions: the bundled tools run, through the proxy route
        yield url, fake, seen


async def test_an_export_and_a_polled_count_through_the_proxy_keep_cursors_byte_for_byte(
    proxied: tuple[str, FakeMembrane, list[dict[str, Any]]],
) -> None:
    url, fake, seen = proxied
    async with client_for(url) as client:
        await ready(client, fake)
        first = ok(
            await client.call_tool(
                "clevertap_get_events",
                {"event_name": "Charged", "from": day(-7), "to": day(0), "batch_size": 2, "max_records": 2},
            )
        )
        rest = ok(await client.call_tool("clevertap_get_events_by_cursor", {"cursor": first["cursor"]}))
        count = ok(
            await client.call_tool(
                "clevertap_get_event_count", {"event_name": "Charged", "from": day(-7), "to": day(0)}
            )
        )
    assert [r["n"] for r in first["records"] + rest["records"]] == [1, 2, 3] and rest["done"] is True
    assert count["done"] is True and count["count"] == 1234
    got = [(s["method"], s["path"], s["raw_query"]) for s in seen]
    assert ("GET", "/1/events.json", f"cursor={FIRST_CURSOR}") in got
    assert ("GET", "/1/events.json", f"cursor={NEXT_CURSOR}") in got
    assert ("GET", "/1/counts/events.json", "req_id=87654321") in got
    assert ("POST", "/1/events.json", "batch_size=2") in got
    connection_id = fake.calls_to("GET", "/actions")[0].query["connectionId"]
    proxy = f"/connections/{connection_id}/proxy/"
    assert fake.calls_to("GET", proxy) and fake.calls_to("POST", proxy)
    assert not fake.calls_to("POST", f"/connections/{connection_id}/request")


async def test_without_the_proxy_route_the_request_route_gets_string_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="clevertap_mcp.membrane")
    app, seen = cursor_stub()
    with running_fake_membrane(clevertap_app=app, tokens={TOKEN}, proxy_available=False) as (url, fake):
        fake.actions = []
        async with client_for(url) as client:
            ready_result = await ready(client, fake)
            first = ok(
                await client.call_tool(
                    "clevertap_get_events",
                    {"event_name": "Charged", "from": day(-7), "to": day(0), "batch_size": 2, "max_records": 5},
                )
            )
            raw = ok(
                await client.call_tool(
                    "clevertap_request",
                    {"method": "GET", "path": "/1/counts/events.json", "query": {"req_id": 87654321}},
                )
            )
    connection_id = ready_result["connection_id"]
    sent = [c.json for c in fake.calls_to("POST", f"/connections/{connection_id}/request")]
    assert {"path": "/1/events.json", "method": "GET", "query": {"cursor": "ZyZjY2Jk+Q=="}} in sent
    assert {"path": "/1/counts/events.json", "method": "GET", "query": {"req_id": "87654321"}} in sent
    assert all("?" not in s["path"] for s in sent)
    assert [r["n"] for r in first["records"]] == [1, 2] and raw["body"]["count"] == 1234
    assert ("GET", "/1/events.json", f"cursor={FIRST_CURSOR}") in [
        (s["method"], s["path"], s["raw_query"]) for s in seen
    ]
    notes = [r.getMessage() for r in caplog.records if "/connections/{id}/request from now on" in r.getMessage()]
    assert len(notes) == 1
    proxy = f"/connections/{connection_id}/proxy/"
    assert [c.method for c in fake.calls if c.path.startswith(proxy)] == ["POST"]  # tried once, then remembered


# -- bounds -------------------------------------------------------------------------------------------------------


def huge_profile_app(size: int) -> Any:
    """A CleverTap stand-in whose /1/profile.json answer is ``size`` bytes of JSON; everything else is small."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"].endswith("/1/profile.json"):
            body = b'{"status":"success","record":"' + b"x" * size + b'"}'
        else:
            body = b'{"status":"success","count":3}'
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    return app


async def test_an_oversized_answer_through_membrane_is_refused_not_held() -> None:
    limit = 64 * 1024
    with running_fake_membrane(clevertap_app=huge_profile_app(4 * limit), tokens={TOKEN}) as (url, fake):
        async with client_for(url, CLEVERTAP_MCP_MAX_UPSTREAM_BYTES=str(limit)) as client:
            await ready(client, fake)
            small = ok(await client.call_tool("clevertap_request", {"method": "POST", "path": "/1/now.json"}))
            refused = err(
                await client.call_tool(
                    "clevertap_request", {"method": "GET", "path": "/1/profile.json", "query": {"identity": "u1"}}
                )
            )
    assert small["body"] == {"status": "success", "count": 3}
    assert "too large" in refused and f"{limit:,}" in refused and "CLEVERTAP_MCP_MAX_UPSTREAM_BYTES" in refused
