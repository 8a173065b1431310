"""The fake Membrane API is as strict as the published SDK: each shape below cites its source in
``@membranehq/sdk`` 0.28.3 ``dist/index.node.js`` (line numbers as of that version).

A request the real API's schema refuses gets the real API's 400 ``bad_request`` ErrorData; answers come in the
SDK's shapes. Also: the token sources (``name`` claim, ``membrane token``) and the narrow route-missing rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from server.backends.membrane.auth import CliCredentials, MintedToken, token_source_from_env
from server.backends.membrane.client import route_missing
from server.backends.membrane.executor import match_action, slug
from tests.fakes.membrane import FakeMembrane, clevertap_stub_app, running_fake_membrane
from tools.api import ActionInfo
from tools.errors import ConfigurationError

pytestmark = pytest.mark.anyio

TOKEN = "mbr-shapes-token-1b2c3d4e5f60718293"
SECRET = "workspace-secret-for-shapes-0123456789abcdef"


@pytest.fixture
def served() -> Iterator[tuple[httpx.Client, FakeMembrane, str]]:
    app, _ = clevertap_stub_app()
    with running_fake_membrane(clevertap_app=app, tokens={TOKEN}) as (url, fake):
        connection_id = fake.add_connection("READY")
        headers = {"Authorization": f"Bearer {TOKEN}", "membrane-api-version": "2025-10-21"}
        with httpx.Client(base_url=url, headers=headers) as http:
            yield http, fake, connection_id


def refused(response: httpx.Response) -> str:
    """The real API's refusal: HTTP 400 with ErrorData (SDK ErrorDataSchema, index.node.js:72)."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"] == "bad_request" and isinstance(body["message"], str)
    return str(body["message"])


def test_ensure_connection_request(served: tuple[httpx.Client, FakeMembrane, str]) -> None:
    """EnsureConnectionRequest, index.node.js:10572: appUrl 1-2000 chars, a domain with a dot, no bare IPv4."""
    http, _, _ = served
    for bad in ({}, {"appUrl": ""}, {"appUrl": "localhost"}, {"appUrl": "10.0.0.1"}, {"appUrl": 42}):
        assert "appUrl" in refused(http.post("/connections/ensure", json=bad))
    answer = http.post("/connections/ensure", json={"appUrl": "https://www.clevertap.com/", "name": "CT"})
    assert answer.status_code == 200
    conn = answer.json()
    # BaseConnection, index.node.js:4061: id, name, createdAt, updatedAt required; connected, not disconnected
    assert {"id", "name", "createdAt", "updatedAt", "state"} <= set(conn) and conn["connected"] is True


def test_get_connection_query(served: tuple[httpx.Client, FakeMembrane, str]) -> None:
    """GET /connections/{id} (ConnectionAccessor.get, index.node.js:15242): wait=true|false, timeout 1-60 s."""
    http, _, connection_id = served
    for bad in ({"wait": "yes"}, {"wait": "true", "timeout": "0"}, {"wait": "true", "timeout": "61"}):
        refused(http.get(f"/connections/{connection_id}", params=bad))
    assert http.get(f"/connections/{connection_id}", params={"wait": "true", "timeout": "1"}).status_code == 200


def test_client_action_shape() -> None:
    """ConnectionClientAction, index.node.js:4055: type connect|provide-input, description; uiUrl and
    agentInstructions optional; present only in CLIENT_ACTION_REQUIRED."""
    with running_fake_membrane(tokens={TOKEN}, ui_url=False) as (url, fake):
        connection_id = fake.add_connection("CLIENT_ACTION_REQUIRED")
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            conn = http.get(f"/connections/{connection_id}").json()
            fake.complete_client_action(connection_id)
            done = http.get(f"/connections/{connection_id}").json()
    action = conn["clientAction"]
    assert action["type"] == "connect" and action["description"] and action["agentInstructions"]
    assert "uiUrl" not in action
    assert done["state"] == "READY" and "clientAction" not in done


def test_find_actions_query_and_keyless_items() -> None:
    """FindActionsQuery, index.node.js:10390: intent at most 200 characters; ActionApiResponse: key optional."""
    with running_fake_membrane(tokens={TOKEN}, keyless=True) as (url, fake):
        connection_id = fake.add_connection("READY")
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            long = http.get("/actions", params={"connectionId": connection_id, "intent": "x" * 201})
            page = http.get("/actions", params={"connectionId": connection_id, "limit": "5"}).json()
            by_key = http.post("/act", json={"key": "get-campaigns", "connectionId": connection_id, "input": {}})
    assert "intent" in refused(long)
    assert len(page["items"]) == 5 and page["cursor"]
    assert all("key" not in item and item["id"] and item["name"] for item in page["items"])
    assert by_key.status_code == 404 and by_key.json()["key"] == "not_found"  # catalog actions run by id


def test_act_request_is_strict(served: tuple[httpx.Client, FakeMembrane, str]) -> None:
    """ActRequest, index.node.js:10347, ``.strict()``: unknown keys refused; exactly one of id/key/api/code."""
    http, _, connection_id = served
    assert "selector" in refused(http.post("/act", json={"key": "get-campaigns", "selector": "x"}))
    refused(http.post("/act", json={"key": "get-campaigns", "id": "abc", "connectionId": connection_id}))
    refused(http.post("/act", json={"key": 12, "connectionId": connection_id}))
    ran = http.post("/act", json={"key": "list-custom-events", "connectionId": connection_id, "input": {}})
    # ActionRunResponse, index.node.js:10427: {output?, actionRunId?}
    assert ran.status_code == 200 and set(ran.json()) == {"output", "actionRunId"}


def test_failed_run_and_its_log(served: tuple[httpx.Client, FakeMembrane, str]) -> None:
    """A failed run answers ErrorData + actionRunId; ActionRunLogRecordApiResponse (index.node.js:10435, base
    10274) holds status "error" and the error (GET /action-run-logs/{id}, apiPath at index.node.js:12311)."""
    http, _, connection_id = served
    failed = http.post("/act", json={"key": "always-fails", "connectionId": connection_id, "input": {}})
    assert failed.status_code == 400 and failed.json()["type"] == "action_run"
    run_id = failed.json()["actionRunId"]
    record = http.get(f"/action-run-logs/{run_id}").json()
    assert {"id", "name", "integrationActionId", "integrationId", "connectionId", "status", "createdAt"} <= set(record)
    assert record["status"] == "error" and "not registered" in record["error"]["causedByError"]["message"]
    assert http.get("/action-run-logs/nope").status_code == 404


def test_connection_proxy_request_takes_strings_only(served: tuple[httpx.Client, FakeMembrane, str]) -> None:
    """ConnectionProxyRequest, index.node.js:10614: method upper-cased into the HttpRequestMethod enum
    (index.node.js:10101); query, headers and pathParameters map strings to strings."""
    http, fake, connection_id = served
    route = f"/connections/{connection_id}/request"
    assert "query" in refused(http.post(route, json={"path": "/1/x.json", "method": "GET", "query": {"n": 10}}))
    assert "headers" in refused(http.post(route, json={"path": "/1/x", "method": "GET", "headers": {"a": True}}))
    assert "method" in refused(http.post(route, json={"path": "/1/x.json", "method": "HEAD"}))
    assert "path" in refused(http.post(route, json={"path": "/1/events.json?cursor=abc", "method": "GET"}))
    ok = http.post(route, json={"path": "/1/counts/events.json", "method": "post", "query": {"n": "10"}, "data": {}})
    assert ok.status_code == 200 and ok.json() == {"status": "success", "count": 42}
    assert fake.forwarded[-1]["url"] == "/1/counts/events.json?n=10"


def test_connection_proxy_passes_everything_through(served: tuple[httpx.Client, FakeMembrane, str]) -> None:
    """ConnectionProxy, index.node.js:15341 (getProxyPath 15360): any method, the external answer unchanged."""
    http, fake, connection_id = served
    answer = http.get(f"/connections/{connection_id}/proxy/1/events.json?cursor=ZyZjY2Jk%2BQ%3D%3D")
    assert answer.json() == {"status": "success", "records": [{"raw_query": "cursor=ZyZjY2Jk%2BQ%3D%3D"}]}
    failed = http.post(f"/connections/{connection_id}/proxy/1/fail.json", content=b"{}")
    assert failed.status_code == 400 and failed.json()["status"] == "fail"  # CleverTap's own 400, as it was
    fake.proxy_available = False
    missing = http.get(f"/connections/{connection_id}/proxy/1/events.json")
    assert missing.status_code == 404 and route_missing(
        404, missing.json(), f"/connections/{connection_id}/proxy/1/events.json"
    )


def test_connection_requests(served: tuple[httpx.Client, FakeMembrane, str]) -> None:
    """CreateConnectionRequestPayload (index.node.js:4000) in, ConnectionRequest (4015) out, its url as
    getConnectionRequestUrl (3997) builds it."""
    http, fake, connection_id = served
    refused(http.post("/connection-requests", json={"connectionId": 7}))
    refused(http.post("/connection-requests", json={"connectionId": connection_id, "connectionKey": ""}))
    created = http.post("/connection-requests", json={"connectionId": connection_id}).json()
    assert {"requestId", "tenantId", "status", "createdAt", "url"} <= set(created) and created["status"] == "pending"
    assert created["url"].endswith(f"/screens/connections?connectionRequestId={created['requestId']}")
    fake.complete_connection_request(created["requestId"])
    done = http.get(f"/connection-requests/{created['requestId']}").json()
    assert done["status"] == "success" and done["resultConnectionId"] == connection_id


def test_route_missing_is_narrow() -> None:
    assert route_missing(404, {"message": "Cannot POST /act", "error": "Not Found", "statusCode": 404}, "/act")
    assert route_missing(405, None, "/act")
    assert not route_missing(405, "", "/connections/c1/proxy/1/upload", named_only=True)  # CleverTap's bare 405
    assert not route_missing(
        404, {"type": "bad_request", "key": "not_found", "message": "Action 'act' not found"}, "/act"
    )
    assert not route_missing(404, {"message": "Cannot POST /actions/x/run"}, "/act")
    assert not route_missing(400, {"message": "Cannot POST /act"}, "/act")
    assert not route_missing(404, {"status": "fail", "error": "Not found"}, "/connections/c1/proxy/1/x.json")


def test_live_actions_match_by_key_then_name_then_id() -> None:
    listed = [
        ActionInfo(id="a1", key="", name="Get Events by Cursor", description=""),
        ActionInfo(id="a2", key="get-events", name="Download events", description=""),
        ActionInfo(id="6650c0ffee0000000000a0c3", key="", name="Something", description=""),
    ]
    assert slug("Get Events by Cursor") == "get-events-by-cursor"
    assert match_action(listed, "get-events-by-cursor") is listed[0]
    assert match_action(listed, "get-events") is listed[1]
    assert match_action(listed, "Download events") is listed[1]
    assert match_action(listed, "6650c0ffee0000000000a0c3") is listed[2]
    assert match_action(listed, "nothing-like-it") is None


async def test_minted_tokens_carry_a_name() -> None:
    token = await MintedToken("ws-key", SECRET, "tenant-7").token()
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["name"] == "tenant-7" and claims["id"] == claims["tenantKey"] == "tenant-7"


def _fake_cli(tmp_path: Path, body: str) -> str:
    script = tmp_path / "membrane"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize("printed", ["bare", "json"])
async def test_cli_without_workspace_credentials_uses_membrane_token(tmp_path: Path, printed: str) -> None:
    """After ``membrane login`` without a workspace secret, ``membrane token`` still gives a tenant token."""
    with running_fake_membrane(workspace_secret=SECRET) as (url, fake):
        cli_token = jwt.encode({"workspaceKey": "ws", "tenantKey": "t-cli", "exp": 4_102_444_800}, SECRET)
        out = cli_token if printed == "bare" else json.dumps({"token": cli_token})
        script = (
            f'if [ "$1" = credentials ]; then echo "Not available for tenant logins" >&2; exit 2; fi\necho \'{out}\''
        )
        source = token_source_from_env({}, which=lambda _: _fake_cli(tmp_path, script))
        assert await source.token() == cli_token
        async with httpx.AsyncClient(base_url=url) as http:
            answer = await http.post(
                "/connections/ensure",
                json={"appUrl": "clevertap.com"},
                headers={"Authorization": f"Bearer {await source.token()}"},
            )
        assert answer.status_code == 200 and fake.token_claims[-1]["tenantKey"] == "t-cli"
        assert cli_token in source.secrets()


async def test_cli_hint_does_not_send_users_back_to_the_failed_command(tmp_path: Path) -> None:
    source = CliCredentials(_fake_cli(tmp_path, "echo 'not logged in' >&2; exit 3"), timeout_s=2)
    with pytest.raises(ConfigurationError) as caught:
        await source.token()
    rendered = caught.value.render()
    assert "`membrane credentials --json` failed" in rendered and "`membrane token` failed" in rendered
    assert "membrane login`" in rendered and "--tenant" not in rendered and "MEMBRANE_TOKEN" in rendered
