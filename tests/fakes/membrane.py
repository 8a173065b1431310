"""A fake Membrane API (ASGI) that follows the published ``@membranehq/sdk`` 0.28.3, served over real HTTP for tests.

Request bodies and queries are checked with the SDK's zod schemas transcribed as pydantic models (each cites its
line in the SDK's ``dist/index.node.js``); a request the real API would reject gets a 400 ``bad_request`` ErrorData.
Routes the fake does not serve answer like the real (NestJS) API: 404 ``Cannot METHOD /path``.

What it does:
* requires ``Authorization: Bearer ...`` (a fixed token set, and/or HS256 tenant tokens signed with a workspace secret);
* connections go BUILDING -> CLIENT_ACTION_REQUIRED -> READY (the user's part: ``complete_client_action(id)`` or
  ``POST /__admin/connections/{id}/complete``); scenarios end in SETUP_FAILED, CONFIGURATION_ERROR or ``provide-input``;
* ``GET /connections/{id}?wait=true&timeout=N`` really blocks until the state changes or the timeout passes;
* ``GET /actions`` lists the 15 popular keys with input schemas that differ from the bundled tools (camelCase fields,
  extra options) plus keys the catalog lacks, paginated with ``cursor``; ``intent`` ranks by word overlap;
* ``POST /act`` and ``POST /actions/{key}/run`` run actions by forwarding to a CleverTap emulator;
  ``act_available=False`` makes ``/act`` a 404 route (old deployments); ``always-fails`` fails with an ``action_run``
  error;
* ``<METHOD> /connections/{id}/proxy/{path}`` (the SDK's ``ConnectionProxy``) forwards method, raw query string and
  body bytes unchanged to the CleverTap emulator (``clevertap_app``, through ``httpx.ASGITransport`` with the demo
  account's headers) and answers CleverTap's status and body unchanged; ``proxy_available=False`` removes the route;
* ``POST /connections/{id}/request`` (the CLI's route, the fallback) takes a ``ConnectionProxyRequest`` and forwards
  it the same way, answering raw or in an envelope (``envelope="data"|"body"``);
* ``keyless=True`` lists catalog-style actions without ``key`` (run by ``id`` only); ``ui_url=False`` sends
  ``clientAction`` without ``uiUrl``; ``POST /connection-requests`` (+ ``GET``) gives a URL for a connection, and
  ``complete_connection_request`` plays the user finishing it; ``lose_authorization(id)`` makes a READY connection
  disconnected (calls through it fail with a ``connection`` error until it is reconnected);
* a failed action run answers a terse ``action_run`` error with ``actionRunId``; ``GET /action-run-logs/{id}`` has
  the reason.

Faults (``fault(kind, path_prefix, ...)``, applied by the sandbox's ``FaultInjector``: one implementation for both
fakes), for the next N requests to a path or under it, before authentication: ``"429"``,
``"500"``, ``"503"`` (Membrane error bodies, optional Retry-After), ``"slow"`` (answer after ``delay_s``), ``"drop"``
(cut the connection, no answer), ``"malformed"`` (HTTP 200, not JSON), ``"truncated"`` (the real answer cut in half),
``"cut"`` (half the real answer, then the connection is cut), ``"apply_then_500"`` / ``"apply_then_drop"`` (the
request is handled, e.g. forwarded to CleverTap, then the answer is replaced by a 500 or a cut connection).

``running_fake_membrane(**kwargs)`` serves it with uvicorn on 127.0.0.1 in a thread and yields ``(base_url, fake)``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
import uvicorn
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError, field_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

# The emulator's fault injector: one implementation and one fault table drive the tests of both backends.
from server.backends.sandbox.faults import Fault, FaultInjector
from tools.base import ToolSpec
from tools.catalog import CATALOG

Scenario = Literal["ok", "setup_failed", "configuration_error", "provide_input"]
UI_BASE = "https://ui.getmembrane.com"
HTTP_METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")  # SDK HttpRequestMethod, index.node.js:10101


# -- the SDK's request shapes (zod objects strip unknown keys unless ``.strict()``; ``z.string()`` takes no numbers) --


class _Zod(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ConnectionProxyRequest(_Zod):
    """SDK ``ConnectionProxyRequest``, index.node.js:10614 (the body of ``POST /connections/{id}/request``)."""

    path: StrictStr
    method: Literal["GET", "POST", "PATCH", "PUT", "DELETE"]  # ``z.string().toUpperCase().pipe(z.enum(...))``
    pathParameters: dict[str, StrictStr] | None = None
    data: Any = None
    query: dict[str, StrictStr] | None = None
    headers: dict[str, StrictStr] | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class EnsureConnectionRequest(_Zod):
    """SDK ``EnsureConnectionRequest``, index.node.js:10572."""

    appUrl: StrictStr = Field(min_length=1, max_length=2000)
    name: StrictStr | None = None

    @field_validator("appUrl")
    @classmethod
    def _domain(cls, value: str) -> str:
        host = re.sub(r"^https?://", "", value, flags=re.IGNORECASE).split("/")[0].split(":")[0]
        stripped = re.sub(r"^www\.", "", host, flags=re.IGNORECASE)
        if "." not in host or re.fullmatch(r"(\d{1,3}\.){3}\d{1,3}", stripped):
            raise ValueError('Must be a valid URL or domain (e.g. "https://slack.com" or "slack.com")')
        return value


class ActRequest(BaseModel):
    """SDK ``ActRequest``, index.node.js:10347 (``.strict()``: unknown keys are refused)."""

    model_config = ConfigDict(extra="forbid")
    id: StrictStr | None = None
    key: StrictStr | None = None
    api: dict[str, Any] | None = None
    code: StrictStr | None = None
    integrationId: StrictStr | None = None
    integrationKey: StrictStr | None = None
    connectionId: StrictStr | None = None
    connectionKey: StrictStr | None = None
    input: Any = None
    meta: dict[str, Any] | None = None


class RunActionRequest(_Zod):
    """SDK ``RunActionRequest``, index.node.js:10423 (the body of the deprecated ``POST /actions/{id}/run``)."""

    input: Any = None
    meta: dict[str, Any] | None = None


class CreateConnectionRequestPayload(_Zod):
    """SDK ``CreateConnectionRequestPayload``, index.node.js:4000 (the body of ``POST /connection-requests``)."""

    integrationId: StrictStr | None = None
    integrationKey: StrictStr | None = None
    connectorId: StrictStr | None = None
    connectorKey: StrictStr | None = None
    connectorVersion: StrictStr | None = None
    connectionId: StrictStr | None = None
    connectionKey: StrictStr | None = Field(None, min_length=1, max_length=100)
    name: StrictStr | None = None
    allowMultipleConnections: StrictBool | None = None
    connectorParameters: dict[str, Any] | None = None
    redirectUri: StrictStr | None = None
    prompt: StrictStr | None = None


class GetConnectionQuery(_Zod):
    """``GET /connections/{id}`` query: ``wait`` (boolean text) and ``timeout`` 1-60 s (the API description)."""

    wait: Literal["true", "false"] | None = None
    timeout: int | None = Field(None, ge=1, le=60)
    includeSecrets: Literal["true", "false"] | None = None


class FindActionsQuery(_Zod):
    """SDK ``FindActionsQuery``, index.node.js:10390 (``intent`` at most 200 characters) + ``PaginationQuery``."""

    connectionId: StrictStr | None = None
    intent: str | None = Field(None, max_length=200)
    limit: int | None = Field(None, ge=1, le=1000)
    cursor: StrictStr | None = None


def _invalid(exc: ValidationError) -> Response:
    """The real API's answer to a request its schema refuses: 400 ``bad_request`` naming the first problem."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return _error(400, f"{where}: {message}", data={"issues": [where]})


def _path_matches(path: str, pattern: str) -> bool:
    return path == pattern or (pattern.endswith("/") and path.startswith(pattern))


def _oid() -> str:
    return secrets.token_hex(12)


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def _error(status: int, message: str, *, type_: str = "bad_request", key: str | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"type": type_, "message": message, **extra}
    if key:
        body["key"] = key
    return JSONResponse(body, status_code=status)


def _schema(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


_DATE = {"type": "integer", "description": "Date as YYYYMMDD."}
_STR = {"type": "string"}
_RECORDS = {"type": "array", "items": {"type": "object"}}

# Live description and input schema of each popular action: live schemas deliberately differ from the bundled tool
# inputs. Which actions are popular, and their names, come from the catalog.
_LIVE: dict[str, tuple[str, dict[str, Any]]] = {
    "real-time-user-count": (
        "Get real-time count of users matching specific criteria.",
        _schema({"userType": {"type": "boolean", "description": "Break the count down by user type."}}),
    ),
    "get-campaign-report": (
        "Get detailed metrics for a specific campaign including delivery stats, open rates, and conversions.",
        _schema({"campaignId": {"type": "integer"}}, ["campaignId"]),
    ),
    "upload-device-tokens": (
        "Add device tokens (APNS, FCM, GCM) to user profiles for push notifications.",
        _schema({"tokens": _RECORDS}, ["tokens"]),
    ),
    "get-campaigns": (
        "Retrieve a list of campaigns from CleverTap.",
        _schema({"fromDate": _DATE, "toDate": _DATE}, ["fromDate", "toDate"]),
    ),
    "stop-campaign": (
        "Stop a scheduled campaign from being sent.",
        _schema({"campaignId": {"type": "integer"}}, ["campaignId"]),
    ),
    "create-campaign": (
        "Create a new marketing campaign in CleverTap.",
        _schema({"campaign": {"type": "object"}}, ["campaign"]),
    ),
    "get-profile-count": (
        "Get the count of user profiles that triggered a specific event within a date range.",
        _schema({"eventName": _STR, "fromDate": _DATE, "toDate": _DATE}, ["eventName", "fromDate", "toDate"]),
    ),
    "get-event-count": (
        "Get the count of a specific event within a date range.",
        _schema(
            {"eventName": _STR, "fromDate": _DATE, "toDate": _DATE, "unique": {"type": "boolean"}},
            ["eventName", "fromDate", "toDate"],
        ),
    ),
    "delete-user-profile": (
        "Delete a user profile from CleverTap using their identity or GUID.",
        _schema({"identity": _STR, "guid": _STR}),
    ),
    "get-events-by-cursor": (
        "Fetch the next batch of events using a cursor from a previous Get Events request.",
        _schema({"cursor": _STR}, ["cursor"]),
    ),
    "get-events": (
        "Download user events from CleverTap.",
        _schema(
            {"eventName": _STR, "fromDate": _DATE, "toDate": _DATE, "batchSize": {"type": "integer"}},
            ["eventName", "fromDate", "toDate"],
        ),
    ),
    "get-user-profiles-by-cursor": (
        "Fetch the next batch of user profiles using a cursor from a previous Get User Profiles request.",
        _schema({"cursor": _STR}, ["cursor"]),
    ),
    "get-user-profiles": (
        "Download user profiles from CleverTap based on event criteria.",
        _schema(
            {"eventName": _STR, "fromDate": _DATE, "toDate": _DATE, "batchSize": {"type": "integer"}},
            ["eventName", "fromDate", "toDate"],
        ),
    ),
    "upload-events": (
        "Upload user events to CleverTap.",
        _schema({"events": _RECORDS}, ["events"]),
    ),
    "upload-user-profiles": (
        "Upload or update user profiles in CleverTap.",
        _schema({"profiles": _RECORDS}, ["profiles"]),
    ),
}
# Actions Membrane has beyond the popular ones: (key, name, description, input schema).
_OTHER_ACTIONS: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "get-message-reports",
        "Get Message Reports",
        "Get delivery reports of messages sent in a date range.",
        _schema({"fromDate": _DATE, "toDate": _DATE}, ["fromDate", "toDate"]),
    ),
    (
        "list-custom-events",
        "List Custom Events",
        "List the custom event names defined in the CleverTap dashboard.",
        _schema({}),
    ),
    (
        "always-fails",
        "Send Test Push",
        "Send a test push notification to one device (fails in this fake).",
        _schema({"objectId": _STR}),
    ),
]


def _live_action(spec: ToolSpec[Any, Any]) -> tuple[str, str, str, dict[str, Any]]:
    """A popular action as the fake lists it; one the fake has no live schema for yet gets the bundled one."""
    assert spec.action_key is not None and spec.action_name is not None
    description, schema = _LIVE.get(spec.action_key) or (spec.description, spec.input_schema())
    return spec.action_key, spec.action_name, description, schema


# (key, name, description, input schema) of every action the fake lists.
LIVE_ACTIONS: list[tuple[str, str, str, dict[str, Any]]] = [
    *(_live_action(spec) for spec in CATALOG if spec.action_key),
    *_OTHER_ACTIONS,
]


def _forward_plan(key: str, data: dict[str, Any]) -> tuple[str, str, dict[str, Any] | None, Any] | None:
    """(method, path, query, body) of the CleverTap call that runs ``key``; None when the action does not forward."""

    def span(event: bool = True) -> dict[str, Any]:
        body = {"from": data.get("fromDate"), "to": data.get("toDate")}
        if event:
            body["event_name"] = data.get("eventName")
        return body

    batch = {"batch_size": data.get("batchSize", 100)}
    plans: dict[str, Callable[[], tuple[str, str, dict[str, Any] | None, Any]]] = {
        "get-event-count": lambda: ("POST", "/1/counts/events.json", None, span()),
        "get-profile-count": lambda: ("POST", "/1/counts/profiles.json", None, span()),
        "real-time-user-count": lambda: ("POST", "/1/now.json", None, {"user_type": bool(data.get("userType"))}),
        "get-campaigns": lambda: ("POST", "/1/targets/list.json", None, span(event=False)),
        "get-campaign-report": lambda: ("POST", "/1/targets/result.json", None, {"id": data.get("campaignId")}),
        "stop-campaign": lambda: ("POST", "/1/targets/stop.json", None, {"id": data.get("campaignId")}),
        "create-campaign": lambda: ("POST", "/1/targets/create.json", None, data.get("campaign") or {}),
        "delete-user-profile": lambda: (
            "POST",
            "/1/delete/profiles.json",
            None,
            {k: data[k] for k in ("identity", "guid") if k in data},
        ),
        "get-events": lambda: ("POST", "/1/events.json", batch, span()),
        "get-events-by-cursor": lambda: ("GET", f"/1/events.json?cursor={data.get('cursor', '')}", None, None),
        "get-user-profiles": lambda: ("POST", "/1/profiles.json", batch, span()),
        "get-user-profiles-by-cursor": lambda: ("GET", f"/1/profiles.json?cursor={data.get('cursor', '')}", None, None),
        "upload-events": lambda: ("POST", "/1/upload", None, {"d": data.get("events", [])}),
        "upload-user-profiles": lambda: ("POST", "/1/upload", None, {"d": data.get("profiles", [])}),
        "upload-device-tokens": lambda: ("POST", "/1/upload", None, {"d": data.get("tokens", [])}),
        "get-message-reports": lambda: ("POST", "/1/message/report.json", None, span(event=False)),
    }
    plan = plans.get(key)
    return plan() if plan else None


@dataclass
class Call:
    """One request the fake received (the bearer token itself is not kept, only whether it was accepted)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    api_version: str | None
    authorized: bool
    started: float
    finished: float = 0.0


@dataclass
class Injected:
    method: str
    path_prefix: str
    status: int
    body: Any
    times: int = 1


_FAULT_BODIES: dict[int, dict[str, Any]] = {
    429: {"type": "bad_request", "key": "rate_limit_exceeded", "message": "Too many requests"},
    500: {"type": "internal", "message": "Internal server error"},
    503: {"type": "internal", "message": "Service temporarily unavailable"},
}


def membrane_fault_body(status: int) -> bytes:
    """Membrane's ErrorData for a faulted 429/500/503 answer."""
    return json.dumps(_FAULT_BODIES[status]).encode()


@dataclass
class FakeConnection:
    id: str
    state: str
    build_done_at: float | None
    client_action: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    created_at: str = field(default_factory=_now_iso)
    updated_at: str = field(default_factory=_now_iso)
    deleted: bool = False
    lost: Literal["", "client_action", "defunct"] = ""  # how it shows that it lost its authorization

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": "CleverTap",
            "userId": "6650c0ffee00000000000001",
            "tenantId": "6650c0ffee00000000000002",
            "integrationId": "6650c0ffee00000000000003",
            "connectorId": "6650c0ffee00000000000004",
            "externalAppId": "6650c0ffee00000000000005",
            "state": self.state,
            "connected": self.state == "READY" and not self.lost,
            "disconnected": self.state != "READY" or bool(self.lost),
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }
        if self.state == "BUILDING":
            body["buildingAgentSessionId"] = "6650c0ffee0000000000a9e1"
        if self.state == "CLIENT_ACTION_REQUIRED" and self.client_action:
            body["clientAction"] = self.client_action
        if self.lost == "defunct":
            body["isDefunct"] = True
        if self.errors:
            body["errors"] = self.errors
            body["error"] = self.errors[0]
        return body


class FakeMembrane:
    """The fake's state and its ASGI app (``.app``). Test helpers are thread-safe (the app runs in uvicorn's thread)."""

    def __init__(
        self,
        *,
        clevertap_app: ASGIApp | None = None,
        tokens: Iterable[str] | None = None,
        workspace_secret: str | None = None,
        build_seconds: float | None = 0.2,
        scenario: Scenario = "ok",
        envelope: Literal["data", "body"] | None = None,
        act_available: bool = True,
        proxy_available: bool = True,
        keyless: bool = False,
        ui_url: bool = True,
        page_size_cap: int = 10,
        clevertap_account_id: str = "DEMO-SANDBOX",
        clevertap_passcode: str = "sandbox",
    ) -> None:
        self.clevertap_app = clevertap_app
        self.tokens = set(tokens) if tokens is not None else None
        self.workspace_secret = workspace_secret
        self.build_seconds = build_seconds
        self.scenario: Scenario = scenario
        self.envelope = envelope
        self.act_available = act_available
        self.proxy_available = proxy_available
        self.keyless = keyless
        self.ui_url = ui_url
        self.connection_requests: dict[str, dict[str, Any]] = {}
        self.run_logs: dict[str, dict[str, Any]] = {}
        self.page_size_cap = page_size_cap
        self.clevertap_account_id = clevertap_account_id
        self.clevertap_passcode = clevertap_passcode
        self.calls: list[Call] = []
        self.forwarded: list[dict[str, Any]] = []
        self.token_claims: list[dict[str, Any]] = []
        self.connections: dict[str, FakeConnection] = {}
        self.actions: list[dict[str, Any]] = [
            {
                "id": hashlib.sha256(key.encode()).hexdigest()[:24],
                "key": key,
                "name": name,
                "description": description,
                "type": "connector-operation",
                "state": "READY",
                "inputSchema": schema,
                "outputSchema": {"type": "object"},
            }
            for key, name, description, schema in LIVE_ACTIONS
        ]
        self.base_url = ""
        self._lock = threading.Lock()
        self._injected: list[Injected] = []
        self._faults: list[Fault] = []
        self._run_counter = 0
        self.routes = Starlette(
            routes=[
                Route("/connections/ensure", self._ensure, methods=["POST"]),
                Route("/connections/{id}", self._get_connection, methods=["GET"]),
                Route("/connections/{id}/request", self._proxy_request, methods=["POST"]),
                Route("/connections/{id}/proxy/{path:path}", self._proxy, methods=list(HTTP_METHODS)),
                Route("/connection-requests", self._create_connection_request, methods=["POST"]),
                Route("/connection-requests/{id}", self._get_connection_request, methods=["GET"]),
                Route("/action-run-logs/{id}", self._get_run_log, methods=["GET"]),
                Route("/actions", self._list_actions, methods=["GET"]),
                Route("/actions/{selector}/run", self._run_route, methods=["POST"]),
                Route("/act", self._act, methods=["POST"]),
                Route("/__admin/connections/{id}/complete", self._admin_complete, methods=["POST"]),
            ]
        )
        self.routes.add_exception_handler(404, self._not_found)
        # The routes behind the planned faults (before authentication), applied by the sandbox's own injector.
        self.app: ASGIApp = FaultInjector(
            self.routes, self._faults, error_body=membrane_fault_body, lock=self._lock, on_fault=self._faulted
        )

    # -- test helpers ---------------------------------------------------------------------------------------------

    def add_connection(self, state: str = "READY", **kwargs: Any) -> str:
        """A connection that already exists (e.g. one the user set up earlier)."""
        with self._lock:
            conn = FakeConnection(id=_oid(), state=state, build_done_at=None, **kwargs)
            if state == "CLIENT_ACTION_REQUIRED" and conn.client_action is None:
                conn.client_action = self._connect_action(conn.id)
            self.connections[conn.id] = conn
            return conn.id

    def complete_client_action(self, connection_id: str) -> None:
        """The user finished the browser step: CLIENT_ACTION_REQUIRED -> READY."""
        with self._lock:
            conn = self.connections[connection_id]
            self._advance(conn)
            if conn.state != "CLIENT_ACTION_REQUIRED":
                raise AssertionError(f"connection {connection_id} is {conn.state}, not CLIENT_ACTION_REQUIRED")
            conn.state, conn.client_action, conn.updated_at = "READY", None, _now_iso()

    def finish_build(self, connection_id: str) -> None:
        """End BUILDING now (for connections created with ``build_seconds=None``)."""
        with self._lock:
            conn = self.connections[connection_id]
            conn.build_done_at = time.monotonic()
            self._advance(conn)

    def set_state(self, connection_id: str, state: str, client_action: dict[str, Any] | None = None) -> None:
        with self._lock:
            conn = self.connections[connection_id]
            conn.state, conn.client_action, conn.updated_at = state, client_action, _now_iso()

    def lose_authorization(
        self, connection_id: str, style: Literal["client_action", "defunct"] = "client_action"
    ) -> None:
        """A READY connection loses its CleverTap authorization: shown as CLIENT_ACTION_REQUIRED (``connect``, no
        ``uiUrl``) or, with ``style="defunct"``, as READY with ``isDefunct`` and ``connected: false``."""
        with self._lock:
            conn = self.connections[connection_id]
            conn.lost, conn.updated_at = style, _now_iso()
            if style == "client_action":
                conn.state = "CLIENT_ACTION_REQUIRED"
                conn.client_action = {
                    "type": "connect",
                    "description": "The CleverTap credentials stopped working; reconnect this connection.",
                    "agentInstructions": "Ask the user to reconnect CleverTap; create a connection request for this "
                    "connectionId to get a link.",
                }

    def complete_connection_request(self, request_id: str) -> None:
        """The user opened the connection request's URL and (re-)authorized: its connection becomes READY."""
        with self._lock:
            request = self.connection_requests[request_id]
            conn = self.connections[request["connectionId"]]
            self._advance(conn)
            conn.state, conn.client_action, conn.lost, conn.updated_at = "READY", None, "", _now_iso()
            request.update(status="success", resultConnectionId=conn.id)

    def delete_connection(self, connection_id: str) -> None:
        with self._lock:
            self.connections[connection_id].deleted = True

    def inject(self, method: str, path_prefix: str, status: int, body: Any, *, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``path_prefix`` (exact, or under it when it ends with ``/``), after
        authentication, with ``status`` + ``body``."""
        with self._lock:
            self._injected.append(Injected(method.upper(), path_prefix, status, body, times))

    def fault(
        self,
        kind: str,
        path_prefix: str,
        *,
        method: str | None = None,
        times: int = 1,
        retry_after: float | None = None,
        delay_s: float = 5.0,
    ) -> None:
        """Apply fault ``kind`` (see ``server.backends.sandbox.faults``) to the next ``times`` requests to
        ``path_prefix`` or under it (by path segments: ``/act`` is not ``/actions``), of ``method`` when given."""
        planned = Fault(kind, times=times, path=path_prefix, method=method, retry_after=retry_after, delay_s=delay_s)
        with self._lock:
            self._faults.append(planned)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def calls_to(self, method: str, path: str) -> list[Call]:
        """Calls to exactly ``path``, or under it when ``path`` ends with ``/``."""
        return [c for c in self.calls if c.method == method.upper() and _path_matches(c.path, path)]

    def state_of(self, connection_id: str) -> str:
        with self._lock:
            conn = self.connections[connection_id]
            self._advance(conn)
            return conn.state

    # -- machinery -------------------------------------------------------------------------------------------------

    def _faulted(self, scope: Any, fault: Fault) -> None:
        """Log the requests a fault answers before the routes see them (the routes log the others)."""
        if not fault.reaches_app:
            now = time.monotonic()
            self.calls.append(Call(scope["method"], scope["path"], {}, None, None, True, now, now))

    def _connect_action(self, connection_id: str) -> dict[str, Any]:
        """SDK ``ConnectionClientAction``, index.node.js:4055: ``uiUrl`` and ``agentInstructions`` are optional."""
        action = {
            "type": "connect",
            "description": "Authenticate with CleverTap to finish setting up this connection.",
            "agentInstructions": "Ask the user to sign in to CleverTap with the account id and passcode.",
        }
        if self.ui_url:
            action["uiUrl"] = f"{UI_BASE}/screens/connections?connectionRequestId={connection_id[-8:]}cr"
        return action

    def _advance(self, conn: FakeConnection) -> None:
        """Time-driven BUILDING exit (caller holds the lock)."""
        if conn.state != "BUILDING" or conn.build_done_at is None or time.monotonic() < conn.build_done_at:
            return
        conn.updated_at = _now_iso()
        if self.scenario == "setup_failed":
            conn.state = "SETUP_FAILED"
            conn.errors = [{"type": "internal", "message": "Could not build a connector for clevertap.com."}]
        elif self.scenario == "configuration_error":
            conn.state = "CONFIGURATION_ERROR"
            conn.errors = [{"type": "configuration", "message": "The region parameter is missing."}]
        elif self.scenario == "provide_input":
            conn.state = "CLIENT_ACTION_REQUIRED"
            conn.client_action = {
                "type": "provide-input",
                "description": "Which CleverTap region does the account use?",
                "agentInstructions": "Ask the user for the region, then PATCH the connection input.",
            }
        else:
            conn.state = "CLIENT_ACTION_REQUIRED"
            conn.client_action = self._connect_action(conn.id)

    def _connection(self, connection_id: str) -> FakeConnection | None:
        with self._lock:
            conn = self.connections.get(connection_id)
            if conn is None or conn.deleted:
                return None
            self._advance(conn)
            return conn

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            return False
        token = header[7:].strip()
        if self.tokens is not None and token in self.tokens:
            return True
        if self.workspace_secret is not None:
            claims = _verify_hs256(token, self.workspace_secret)
            if claims is not None:
                self.token_claims.append(claims)
                return True
            return False
        return self.tokens is None

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        return JSONResponse(
            {"message": f"Cannot {request.method} {request.url.path}", "error": "Not Found", "statusCode": 404},
            status_code=404,
        )

    async def _begin(self, request: Request) -> tuple[Call, Response | None]:
        try:
            body = await request.json() if await request.body() else None
        except ValueError:
            body = None
        call = Call(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            json=body,
            api_version=request.headers.get("membrane-api-version"),
            authorized=self._authorized(request),
            started=time.monotonic(),
        )
        self.calls.append(call)
        if not call.authorized:
            return call, _error(401, "Not authenticated: a valid bearer token is required.", key="not_authenticated")
        with self._lock:
            for inj in self._injected:
                if inj.times > 0 and inj.method == call.method and _path_matches(call.path, inj.path_prefix):
                    inj.times -= 1
                    return call, JSONResponse(inj.body, status_code=inj.status)
        return call, None

    def _next_run_id(self) -> str:
        with self._lock:
            self._run_counter += 1
            return f"6650c0ffee00000000{self._run_counter:06d}"

    # -- routes ------------------------------------------------------------------------------------------------------

    async def _admin_complete(self, request: Request) -> Response:
        try:
            self.complete_client_action(request.path_params["id"])
        except (KeyError, AssertionError) as exc:
            return _error(400, str(exc))
        return JSONResponse({"ok": True})

    async def _ensure(self, request: Request) -> Response:
        call, early = await self._begin(request)
        if early:
            return early
        try:
            EnsureConnectionRequest.model_validate(call.json if isinstance(call.json, dict) else {})
        except ValidationError as exc:
            return _invalid(exc)
        with self._lock:
            existing = [c for c in self.connections.values() if not c.deleted]
            if existing:
                conn = existing[0]
                self._advance(conn)
            else:
                done = None if self.build_seconds is None else time.monotonic() + self.build_seconds
                conn = FakeConnection(id=_oid(), state="BUILDING", build_done_at=done)
                self.connections[conn.id] = conn
            return JSONResponse(conn.to_json())

    async def _get_connection(self, request: Request) -> Response:
        call, early = await self._begin(request)
        if early:
            return early
        connection_id = request.path_params["id"]
        conn = self._connection(connection_id)
        if conn is None:
            return _error(404, f"Connection with id '{connection_id}' not found", key="not_found")
        try:
            query = GetConnectionQuery.model_validate(call.query)
        except ValidationError as exc:
            return _invalid(exc)
        if query.wait == "true":
            timeout = query.timeout or 30
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                conn = self._connection(connection_id)
                if conn is None or conn.state != "BUILDING":
                    break
                await asyncio.sleep(0.02)
            conn = self._connection(connection_id)
            if conn is None:
                return _error(404, f"Connection with id '{connection_id}' not found", key="not_found")
        call.finished = time.monotonic()
        return JSONResponse(conn.to_json())

    def _ready_connection(self, connection_id: str | None) -> tuple[FakeConnection | None, Response | None]:
        conn = self._connection(connection_id or "")
        if conn is None:
            return None, _error(404, f"Connection with id '{connection_id}' not found", key="not_found")
        if conn.lost:
            return None, _error(
                400,
                "The connection lost its authorization to the external app; reconnect it.",
                type_="connection",
                key="connection_is_defunct",
            )
        if conn.state != "READY":
            return None, _error(400, f"Connection '{connection_id}' is not ready (state {conn.state}).")
        return conn, None

    async def _list_actions(self, request: Request) -> Response:
        call, early = await self._begin(request)
        if early:
            return early
        try:
            query = FindActionsQuery.model_validate(call.query)
        except ValidationError as exc:
            return _invalid(exc)
        _, refused = self._ready_connection(query.connectionId)
        if refused:
            return refused
        limit = min(query.limit or 10, self.page_size_cap)
        try:
            offset = int(query.cursor or "0")
        except ValueError:
            return _error(400, "cursor: not a cursor this API gave")
        items = self.actions
        intent = call.query.get("intent", "")
        if intent:
            words = set(re.findall(r"[a-z]+", intent.lower()))

            def score(action: dict[str, Any]) -> int:
                text = f"{action['name']} {action['description']}".lower()
                in_key = len(words & set(action.get("key", "").split("-")))
                return 2 * in_key + len(words & set(re.findall(r"[a-z]+", text)))

            items = sorted((a for a in items if score(a) > 0), key=score, reverse=True)
        page = items[offset : offset + limit]
        # SDK ActionApiResponse (dts/workspace-elements/api/actions-api.d.ts): ``key`` is optional; catalog actions
        # come without one (Membrane's integration-developer skill).
        body: dict[str, Any] = {
            "items": [
                {
                    k: v
                    for k, v in {**a, "connectionId": query.connectionId}.items()
                    if not (self.keyless and k == "key")
                }
                for a in page
            ]
        }
        if offset + limit < len(items):
            body["cursor"] = str(offset + limit)
        return JSONResponse(body)

    def _find_action(self, selector: str) -> dict[str, Any] | None:
        """By id, or by key unless the actions are keyless (catalog actions run by id only)."""
        return next(
            (a for a in self.actions if selector == a["id"] or (not self.keyless and selector == a["key"])), None
        )

    async def _act(self, request: Request) -> Response:
        call, early = await self._begin(request)
        if not self.act_available:
            return await self._not_found(request, Exception())
        if early:
            return early
        try:
            act = ActRequest.model_validate(call.json if isinstance(call.json, dict) else {})
        except ValidationError as exc:
            return _invalid(exc)
        dispatch = [v for v in (act.id, act.key, act.api, act.code) if v is not None]
        if len(dispatch) != 1:
            return _error(400, "Exactly one of id, key, api or code must be given.")
        if act.id is None and act.key is None:
            return _error(400, "This fake runs actions by id or key only.")
        selector = act.id if act.id is not None else act.key
        assert selector is not None
        return await self._run(selector, act.connectionId, act.input or {})

    async def _run_route(self, request: Request) -> Response:
        call, early = await self._begin(request)
        if early:
            return early
        try:
            run = RunActionRequest.model_validate(call.json if isinstance(call.json, dict) else {})
        except ValidationError as exc:
            return _invalid(exc)
        return await self._run(request.path_params["selector"], call.query.get("connectionId"), run.input or {})

    async def _run(self, selector: str, connection_id: Any, data: dict[str, Any]) -> Response:
        _, refused = self._ready_connection(connection_id if isinstance(connection_id, str) else None)
        if refused:
            return refused
        action = self._find_action(selector)
        if action is None:
            return _error(404, f"Action '{selector}' not found", key="not_found")
        run_id = self._next_run_id()
        key = action["key"]
        if key == "always-fails":
            return self._failed_run(
                run_id, action, data, "CleverTap answered HTTP 400: The device token is not registered."
            )
        if key == "list-custom-events":
            return self._ran(run_id, action, data, {"events": ["Charged", "App Launched"]})
        plan = _forward_plan(key, data)
        assert plan is not None
        method, path, query, payload = plan
        status, body = await self._forward(method, path, query, payload)
        for _ in range(20):  # like a real action, wait for CleverTap's async counts ("partial" + req_id)
            if not (
                status == 200 and isinstance(body, dict) and body.get("status") == "partial" and body.get("req_id")
            ):
                break
            await asyncio.sleep(0.05)
            status, body = await self._forward("GET", path, {"req_id": body["req_id"]}, None)
        if status >= 400 or (isinstance(body, dict) and body.get("status") == "fail"):
            reason = body.get("error") if isinstance(body, dict) else body
            return self._failed_run(run_id, action, data, f"CleverTap answered HTTP {status}: {reason}")
        return self._ran(run_id, action, data, body)

    def _log_run(self, run_id: str, action: dict[str, Any], data: Any, **result: Any) -> None:
        """SDK ``ActionRunLogRecordApiResponse`` (BaseActionRunLogRecord, index.node.js:10274)."""
        conn = next(iter(self.connections.values()), None)
        self.run_logs[run_id] = {
            "id": run_id,
            "name": action["name"],
            "integrationActionId": action["id"],
            "integrationId": "6650c0ffee00000000000003",
            "connectionId": conn.id if conn else "",
            "input": data,
            "createdAt": _now_iso(),
            "completedAt": _now_iso(),
            **result,
        }

    def _ran(self, run_id: str, action: dict[str, Any], data: Any, output: Any) -> Response:
        self._log_run(run_id, action, data, status="success", output=output)
        return JSONResponse({"output": output, "actionRunId": run_id})  # SDK ActionRunResponse, index.node.js:10427

    def _failed_run(self, run_id: str, action: dict[str, Any], data: Any, reason: str) -> Response:
        """Like the real API, the answer is terse (ErrorData + ``actionRunId``); the run log holds the reason."""
        error = {
            "type": "action_run",
            "message": "Action run failed",
            "causedByError": {"type": "dependency_error", "message": reason},
        }
        self._log_run(run_id, action, data, status="error", error=error)
        return _error(400, "Action run failed", type_="action_run", actionRunId=run_id)

    async def _forward(
        self, method: str, path: str, query: dict[str, Any] | None, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """Call the CleverTap emulator; ``path`` (with any pre-encoded query) is used verbatim."""
        url = path
        if query:
            url += ("&" if "?" in url else "?") + urlencode({k: str(v) for k, v in query.items()})
        self.forwarded.append({"method": method, "url": url, "body": body, "headers": dict(headers or {})})
        if self.clevertap_app is None:
            return 502, {"status": "fail", "error": "no CleverTap emulator behind this fake", "code": 502}
        send_headers = {
            **(headers or {}),
            "X-CleverTap-Account-Id": self.clevertap_account_id,
            "X-CleverTap-Passcode": self.clevertap_passcode,
        }
        transport = httpx.ASGITransport(app=self.clevertap_app)
        async with httpx.AsyncClient(transport=transport, base_url="https://api.clevertap.test") as client:
            response = await client.request(method, url, json=body if body is not None else None, headers=send_headers)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    async def _proxy_request(self, request: Request) -> Response:
        call, early = await self._begin(request)
        if early:
            return early
        _, refused = self._ready_connection(request.path_params["id"])
        if refused:
            return refused
        try:
            sent = ConnectionProxyRequest.model_validate(call.json if isinstance(call.json, dict) else {})
        except ValidationError as exc:
            return _invalid(exc)
        if not sent.path.startswith("/") or "?" in sent.path:
            # Nothing documents that a query survives inside ``path``: this fake refuses it (``query`` exists).
            return _error(400, "path: must start with '/' and carry no '?query' (use query)")
        status, body = await self._forward(sent.method, sent.path, sent.query, sent.data, sent.headers)
        if self.envelope:
            return JSONResponse(
                {"status": status, "headers": {"content-type": "application/json"}, self.envelope: body}
            )
        if isinstance(body, str):
            return Response(body, status_code=status, media_type="text/plain")
        return JSONResponse(body, status_code=status)

    async def _proxy(self, request: Request) -> Response:
        """SDK ``ConnectionProxy`` (index.node.js:15341, ``getProxyPath`` 15360): the external app's answer as is."""
        call, early = await self._begin(request)
        if not self.proxy_available:
            return await self._not_found(request, Exception())
        if early:
            return early
        _, refused = self._ready_connection(request.path_params["id"])
        if refused:
            return refused
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        content = await request.body()
        path = "/" + request.path_params["path"]
        url = path + (f"?{raw_query}" if raw_query else "")
        parsed: Any = None
        with contextlib.suppress(ValueError):
            parsed = json.loads(content) if content else None
        headers = {"Content-Type": request.headers["content-type"]} if "content-type" in request.headers else {}
        self.forwarded.append(
            {"method": request.method, "url": url, "body": parsed, "headers": headers, "raw_query": raw_query}
        )
        if self.clevertap_app is None:
            return JSONResponse({"status": "fail", "error": "no CleverTap emulator behind this fake"}, status_code=502)
        send_headers = {
            **headers,
            "X-CleverTap-Account-Id": self.clevertap_account_id,
            "X-CleverTap-Passcode": self.clevertap_passcode,
        }
        transport = httpx.ASGITransport(app=self.clevertap_app)
        async with httpx.AsyncClient(transport=transport, base_url="https://api.clevertap.test") as client:
            answer = await client.request(request.method, url, content=content or None, headers=send_headers)
        call.finished = time.monotonic()
        media = answer.headers.get("content-type", "application/octet-stream")
        return Response(answer.content, status_code=answer.status_code, media_type=media)

    async def _create_connection_request(self, request: Request) -> Response:
        """``POST /connection-requests``: SDK ``CreateConnectionRequestPayload`` in, ``ConnectionRequest`` out
        (index.node.js:4015; its URL is ``getConnectionRequestUrl``, 3997)."""
        call, early = await self._begin(request)
        if early:
            return early
        try:
            payload = CreateConnectionRequestPayload.model_validate(call.json if isinstance(call.json, dict) else {})
        except ValidationError as exc:
            return _invalid(exc)
        if payload.connectionId is None or self._connection(payload.connectionId) is None:
            return _error(404, f"Connection with id '{payload.connectionId}' not found", key="not_found")
        request_id = _oid()
        body = {
            "requestId": request_id,
            "tenantId": "6650c0ffee00000000000002",
            "connectionId": payload.connectionId,
            "status": "pending",
            "createdAt": _now_iso(),
            "url": f"{UI_BASE}/screens/connections?connectionRequestId={request_id}",
        }
        with self._lock:
            self.connection_requests[request_id] = body
        return JSONResponse(body)

    async def _get_connection_request(self, request: Request) -> Response:
        _, early = await self._begin(request)
        if early:
            return early
        found = self.connection_requests.get(request.path_params["id"])
        if found is None:
            return _error(404, f"Connection request '{request.path_params['id']}' not found", key="not_found")
        return JSONResponse(found)

    async def _get_run_log(self, request: Request) -> Response:
        _, early = await self._begin(request)
        if early:
            return early
        found = self.run_logs.get(request.path_params["id"])
        if found is None:
            return _error(404, f"Action run log '{request.path_params['id']}' not found", key="not_found")
        return JSONResponse(found)


def _verify_hs256(token: str, secret: str) -> dict[str, Any] | None:
    """The claims of a valid, unexpired HS256 token signed with ``secret``; None otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        return None

    def decode(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    try:
        header = json.loads(decode(parts[0]))
        claims = json.loads(decode(parts[1]))
        signature = decode(parts[2])
    except ValueError:
        return None
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if header.get("alg") != "HS256" or not hmac.compare_digest(signature, expected):
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
        return None
    return claims


def clevertap_stub_app() -> tuple[Starlette, list[dict[str, Any]]]:
    """A tiny CleverTap stand-in (when the real emulator is not at hand) and the list of requests it saw.

    Answers: counts -> ``{"status":"success","count":42}``; ``/1/events.json`` POST -> a cursor, GET -> records
    echoing the raw query string; ``/1/upload`` -> processed count; ``/1/fail.json`` or a body ``{"id": "fail"}``
    -> HTTP 400 ``status:"fail"``; ``/1/text`` -> a non-JSON body; other paths -> ``{"status":"success","echo": body}``.
    Wrong credentials -> 401.
    """
    seen: list[dict[str, Any]] = []

    async def handle(request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw) if raw else None
        seen.append(
            {
                "method": request.method,
                "path": request.url.path,
                "raw_query": request.scope.get("query_string", b"").decode(),
                "body": body,
                "account": request.headers.get("x-clevertap-account-id"),
                "content_type": request.headers.get("content-type"),
            }
        )
        if request.headers.get("x-clevertap-passcode") != "sandbox":
            return JSONResponse({"status": "fail", "error": "Invalid Credentials", "code": 401}, status_code=401)
        path = request.url.path
        if path.startswith("/1/counts/"):
            return JSONResponse({"status": "success", "count": 42})
        if path == "/1/events.json" and request.method == "POST":
            return JSONResponse({"status": "success", "cursor": "ZyZjY2Jk%2BQ%3D%3D"})
        if path == "/1/events.json":
            return JSONResponse({"status": "success", "records": [{"raw_query": seen[-1]["raw_query"]}]})
        if path == "/1/upload":
            return JSONResponse({"status": "success", "processed": len((body or {}).get("d", [])), "unprocessed": []})
        if path == "/1/fail.json" or (isinstance(body, dict) and body.get("id") == "fail"):
            return JSONResponse({"status": "fail", "error": "Invalid event name", "code": 400}, status_code=400)
        if path == "/1/text":
            return Response("plain words", media_type="text/plain")
        return JSONResponse({"status": "success", "echo": body})

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(routes=[Route("/{path:path}", handle, methods=methods)]), seen


class _QuickServer(uvicorn.Server):
    """A uvicorn server that stops as soon as ``stop()`` is called.

    uvicorn polls ``should_exit`` every 100 ms; tests start and stop many servers, and polling faster costs CPU
    for as long as each one lives. Here the loop ticks at uvicorn's pace and ``stop()`` also wakes it at once."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    def stop(self) -> None:
        """Ask the server to stop (from any thread); a loop not yet ticking sees ``should_exit`` on its first tick."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed: it has stopped
                loop.call_soon_threadsafe(wake.set)


@contextlib.contextmanager
def serve_asgi(app: ASGIApp, *, wait_for_shutdown: bool = False) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port) in a daemon thread; yields the base URL.

    On exit the server is told to stop; ``wait_for_shutdown`` also waits until it has.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it every keep-alive request waits ~40 ms for a delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1)
    server = _QuickServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        if wait_for_shutdown:
            thread.join(timeout=5)
        # else: uvicorn closes the listening socket itself ~0.1 s later, in its daemon thread.


@contextlib.contextmanager
def running_fake_membrane(fake: FakeMembrane | None = None, **kwargs: Any) -> Iterator[tuple[str, FakeMembrane]]:
    """A FakeMembrane (given, or built from ``kwargs``) served over real HTTP; yields ``(base_url, fake)``."""
    fake = fake if fake is not None else FakeMembrane(**kwargs)
    with serve_asgi(fake.app) as base_url:
        fake.base_url = base_url
        yield base_url, fake
