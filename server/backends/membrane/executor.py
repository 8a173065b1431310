"""The ``membrane`` executor: CleverTap through the Membrane API (connection, live actions, action runs, proxy).

Flow: ``connect()`` finds the connection (``MEMBRANE_CONNECTION_ID``, else the remembered id, else
``POST /connections/ensure``), long-polls it while it is BUILDING, and reports what the user must do. Once READY,
the connection's live action list is cached; ``live_action(key)`` hands the server Membrane's own input schema for
a popular tool, and the server is told (``set_tools_changed_listener``) when those schemas change.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import anyio
import httpx

from server.backends.clevertap.client import remaining_budget
from server.backends.membrane.auth import TokenSource, token_source_from_env
from server.backends.membrane.client import CONNECT_HINT, DEFAULT_API_URL, ApiResponse, MembraneClient
from server.backends.membrane.state import ConnectionStateStore, default_state_dir
from tools.api import ActionInfo, ActionRun, ConnectResult, JsonBody, ProgressFn, RawResponse
from tools.errors import ConfigurationError, MembraneError

if TYPE_CHECKING:
    from server.config import Settings

log = logging.getLogger("clevertap_mcp.membrane")

CLEVERTAP_APP_URL = "https://clevertap.com/"
POPULAR_ACTION_KEYS: tuple[str, ...] = (
    "real-time-user-count",
    "get-campaign-report",
    "upload-device-tokens",
    "get-campaigns",
    "stop-campaign",
    "create-campaign",
    "get-profile-count",
    "get-event-count",
    "delete-user-profile",
    "get-events-by-cursor",
    "get-events",
    "get-user-profiles-by-cursor",
    "get-user-profiles",
    "upload-events",
    "upload-user-profiles",
)
LIVE_ACTIONS_PAGE_SIZE = 100
LIVE_ACTIONS_MAX_PAGES = 5
MAX_LONG_POLL_S = 60
PROXY_TIMEOUT_S = 90.0
ACTION_TIMEOUT_S = 90.0

READY = "READY"
BUILDING = "BUILDING"
CLIENT_ACTION_REQUIRED = "CLIENT_ACTION_REQUIRED"
CONFIGURATION_ERROR = "CONFIGURATION_ERROR"
SETUP_FAILED = "SETUP_FAILED"
DISCONNECTING = "DISCONNECTING"

_OBJECT_ID_RE = re.compile(r"[0-9a-fA-F]{24}")
_ROUTE_UNKNOWN_RE = re.compile(
    r"cannot (?:post|get)|unknown|should not exist|not exist|unrecognized|not allowed|no route", re.IGNORECASE
)

ToolsChangedListener = Callable[[], Awaitable[None]]
_T = TypeVar("_T")
READ_ATTEMPTS = 3
MAX_RETRY_WAIT_S = 30.0
_MAYBE_RAN_HINT = (
    "It was sent once and not repeated: the action may or may not have run. Check its effect (or the action run log "
    "in Membrane) before running it again: running it again may apply it twice."
)


def _read_only_action(key_or_id: str) -> bool:
    """Whether the endpoint policy knows ``key_or_id`` as a read (only those are retried)."""
    from server.policies.endpoints import action_kind

    return action_kind(key_or_id) == "read"


def _maybe_ran(exc: MembraneError) -> MembraneError:
    """A write action's error when its answer was lost or unusable: it may or may not have run."""
    if exc.details.get("type") == "action_run" or not (exc.status is None or exc.status >= 500 or exc.retryable):
        return exc
    if exc.status == 429:
        return exc  # refused, so nothing ran
    return MembraneError(
        f"{exc.message} The action changes the account, so it was not repeated; it may or may not have run.",
        status=exc.status,
        code=exc.code,
        hint=_MAYBE_RAN_HINT,
        details={**exc.details, "uncertain": True},
    )


class _Unconfigured:
    """A token source standing in for a missing credential: every use raises the configuration error."""

    kind = "none"
    api_url: str | None = None

    def __init__(self, error: ConfigurationError) -> None:
        self._error = error

    async def token(self) -> str:
        raise ConfigurationError(self._error.message, hint=self._error.hint)

    def identity(self) -> str:
        return "unconfigured"

    def secrets(self) -> list[str]:
        return []


def connection_state(conn: Mapping[str, Any]) -> str:
    """The connection's state; older answers without ``state`` are judged by ``clientAction``/``connected``."""
    state = conn.get("state")
    if isinstance(state, str) and state:
        return state
    if conn.get("clientAction"):
        return CLIENT_ACTION_REQUIRED
    if conn.get("connected") is True or conn.get("disconnected") is False:
        return READY
    return "UNKNOWN"


def _items(body: Any) -> list[dict[str, Any]]:
    items = body.get("items") if isinstance(body, dict) else body
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _action_info(item: Mapping[str, Any]) -> ActionInfo | None:
    action_id = item.get("id")
    if not isinstance(action_id, str) or not action_id:
        return None
    key = item.get("key") if isinstance(item.get("key"), str) else ""
    schema = item.get("inputSchema")
    return ActionInfo(
        id=action_id,
        key=key or "",
        name=str(item.get("name") or key or action_id),
        description=str(item.get("description") or ""),
        input_schema=schema if isinstance(schema, dict) else None,
        read_only=None,
    )


def _envelope(body: Any) -> bool:
    """``{"status": int, "data"|"body": ...}``: Membrane wrapped the external answer.

    CleverTap's own bodies carry a string ``status`` ("success"/"fail"), so an int one is the envelope's.
    """
    if not isinstance(body, dict):
        return False
    status = body.get("status")
    return isinstance(status, int) and not isinstance(status, bool) and ("data" in body or "body" in body)


def _unwrap(response: ApiResponse) -> RawResponse:
    body = response.body
    if not _envelope(body):
        return RawResponse(response.status, body, dict(response.headers))
    inner = body["data"] if "data" in body else body["body"]
    if isinstance(inner, str):
        with contextlib.suppress(ValueError):
            inner = json.loads(inner)
    headers = body.get("headers")
    return RawResponse(
        int(body["status"]),
        inner,
        {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
    )


def _error_text(conn: Mapping[str, Any]) -> str | None:
    for field in ("requestError", "error"):
        value = conn.get(field)
        if isinstance(value, dict) and isinstance(value.get("message"), str):
            return value["message"]
        if isinstance(value, str) and value:
            return value
    errors = conn.get("errors")
    if isinstance(errors, list):
        messages = [e["message"] for e in errors if isinstance(e, dict) and isinstance(e.get("message"), str)]
        if messages:
            return "; ".join(messages[:3])
    return None


class MembraneExecutor:
    """Reaches CleverTap through the Membrane API. One instance per process; it owns one pooled HTTP client."""

    name = "membrane"

    def __init__(
        self,
        auth: TokenSource,
        *,
        api_url: str | None = None,
        connection_id: str | None = None,
        state: ConnectionStateStore | None = None,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        call_budget_s: float | None = None,
        retry_backoff_s: float = 0.5,
    ) -> None:
        self._client = MembraneClient(auth, api_url=api_url, http=http, timeout_s=timeout_s)
        # Action runs and searches end inside the call's budget (``call_deadline``, else this one).
        self.call_budget_s = call_budget_s
        self.retry_backoff_s = retry_backoff_s
        self._pinned_id = connection_id.strip() if connection_id and connection_id.strip() else None
        self._state = state if state is not None else ConnectionStateStore()
        self._clock = clock
        self._ready_id: str | None = None
        self._live: dict[str, ActionInfo] = {}
        self._notified_fingerprint = self._popular_fingerprint()
        self._listener: ToolsChangedListener | None = None
        self._act_unavailable = False
        self._lock: anyio.Lock | None = None

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        http: httpx.AsyncClient | None = None,
        state: ConnectionStateStore | None = None,
    ) -> MembraneExecutor:
        """Built from the environment. Never raises: a missing credential surfaces as ConfigurationError on use."""
        env = os.environ if env is None else env
        auth: TokenSource
        try:
            auth = token_source_from_env(env)
        except ConfigurationError as exc:
            auth = _Unconfigured(exc)
        return cls(
            auth,
            api_url=env.get("MEMBRANE_API_URL", "").strip() or None,
            connection_id=env.get("MEMBRANE_CONNECTION_ID"),
            state=state if state is not None else ConnectionStateStore(default_state_dir(env)),
            http=http,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        scrubber: Callable[[str], str] | None = None,
        http: httpx.AsyncClient | None = None,
        state: ConnectionStateStore | None = None,
    ) -> MembraneExecutor:
        """Built from ``server.config.Settings`` (its ``membrane_*`` fields); the state directory comes from the
        environment. ``scrubber`` also cleans every error text, and learns secrets only the CLI knew."""

        token, secret = settings.membrane_token, settings.membrane_workspace_secret
        env = {
            "MEMBRANE_TOKEN": token.get_secret_value() if token else "",
            "MEMBRANE_WORKSPACE_KEY": settings.membrane_workspace_key or "",
            "MEMBRANE_WORKSPACE_SECRET": secret.get_secret_value() if secret else "",
            "MEMBRANE_TENANT_KEY": settings.membrane_tenant_key or "",
        }
        auth: TokenSource
        try:
            auth = token_source_from_env(env)
        except ConfigurationError as exc:
            auth = _Unconfigured(exc)
        api_url = settings.membrane_api_url
        executor = cls(
            auth,
            # The settings always carry a URL; the default one lets the CLI's own apiUri win.
            api_url=None if not api_url or api_url.rstrip("/") == DEFAULT_API_URL else api_url,
            connection_id=settings.membrane_connection_id,
            state=state if state is not None else ConnectionStateStore(default_state_dir()),
            http=http,
        )
        executor._client.external_scrubber = scrubber
        return executor

    @property
    def api_url(self) -> str:
        return self._client.api_url

    @property
    def act_available(self) -> bool:
        return not self._act_unavailable

    def set_tools_changed_listener(self, listener: ToolsChangedListener | None) -> None:
        """``listener()`` is awaited when the live input schemas of the popular actions change."""
        self._listener = listener

    def live_action(self, key: str) -> ActionInfo | None:
        """The live action for ``key`` (with Membrane's input schema); None when not listed or not READY yet."""
        if self._ready_id is None:
            return None
        return self._live.get(key)

    def live_actions(self) -> dict[str, ActionInfo]:
        return dict(self._live) if self._ready_id is not None else {}

    async def describe_action(self, key_or_id: str) -> ActionInfo | None:
        """The action ``key_or_id`` names (an id or a key): from the live action list, else ``GET /actions/{sel}``;
        None when Membrane cannot say (the caller must then treat the action as unclassified)."""
        await self.ensure_ready()  # not ready: the same error the run itself would give
        found = next((a for a in self._live.values() if key_or_id in (a.id, a.key)), None)
        if found is not None:
            return found
        try:
            response = await self._client.call(
                "GET", f"/actions/{quote(key_or_id, safe='')}", what=f"looking up the Membrane action {key_or_id}"
            )
        except MembraneError:
            return None
        return _action_info(response.body) if isinstance(response.body, dict) else None

    # -- connection ---------------------------------------------------------------------------------------------

    async def _key(self) -> tuple[str, str]:
        await self._client.auth.token()  # the CLI source only knows its API URL after it ran
        return self._client.api_url, self._client.auth.identity()

    async def _get_connection(self, connection_id: str, *, wait_s: int | None = None) -> dict[str, Any]:
        params: dict[str, Any] | None = {"wait": True, "timeout": wait_s} if wait_s else None
        response = await self._client.call(
            "GET",
            f"/connections/{quote(connection_id, safe='')}",
            what=f"getting the CleverTap connection {connection_id}",
            params=params,
            timeout_s=(wait_s + 20.0) if wait_s else None,
        )
        return self._connection_body(response.body, "GET /connections/{id}")

    @staticmethod
    def _connection_body(body: Any, route: str) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise MembraneError(
                f"Membrane answered {route} with something that is not a connection.",
                hint="retry; if it persists, check MEMBRANE_API_URL",
            )
        return body

    async def _ensure(self) -> dict[str, Any]:
        response = await self._client.call(
            "POST",
            "/connections/ensure",
            what="finding or creating the CleverTap connection (POST /connections/ensure)",
            json={"appUrl": CLEVERTAP_APP_URL},
        )
        return self._connection_body(response.body, "POST /connections/ensure")

    def _pinned_missing(self, exc: MembraneError) -> MembraneError:
        return MembraneError(
            f"MEMBRANE_CONNECTION_ID names connection {self._pinned_id}, which Membrane does not know.",
            status=exc.status,
            code=exc.code,
            hint="set MEMBRANE_CONNECTION_ID to an existing connection id, or unset it and call clevertap_connect",
        )

    async def _find_connection(self) -> dict[str, Any]:
        """The pinned connection, else the remembered one (forgotten when Membrane no longer knows it), else ensure."""
        if self._pinned_id:
            try:
                return await self._get_connection(self._pinned_id)
            except MembraneError as exc:
                raise self._pinned_missing(exc) if exc.status == 404 else exc from None
        api_url, identity = await self._key()
        remembered = self._state.get(api_url, identity)
        if remembered:
            try:
                return await self._get_connection(remembered)
            except MembraneError as exc:
                if exc.status != 404:
                    raise
                log.info("the remembered Membrane connection %s is gone; forgetting it", remembered)
                self._state.forget(api_url, identity)
        return await self._ensure()

    async def _remember(self, connection_id: str) -> None:
        if self._pinned_id:
            return
        api_url, identity = await self._key()
        self._state.put(api_url, identity, connection_id)

    async def connect(self, wait_seconds: float, progress: ProgressFn | None = None) -> ConnectResult:
        """Find or create the connection, wait (long poll) while it is BUILDING, and say what to do next."""
        start = self._clock()
        budget = max(0.0, float(wait_seconds))
        conn = await self._find_connection()
        connection_id = conn["id"]
        await self._remember(connection_id)
        while connection_state(conn) == BUILDING:
            remaining = budget - (self._clock() - start)
            if remaining < 1:
                break
            await self._report(progress, self._clock() - start, budget, "still building...")
            wait_s = max(1, min(MAX_LONG_POLL_S, round(remaining)))
            conn = await self._get_connection(connection_id, wait_s=wait_s)
        await self._settle(conn)
        return self._describe(conn, waited=self._clock() - start)

    async def ensure_ready(self) -> str:
        """The READY connection's id; MembraneError (or ConfigurationError) saying to call clevertap_connect."""
        if self._ready_id is not None:
            return self._ready_id
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self._ready_id is not None:
                return self._ready_id
            conn = await self._find_connection()
            connection_id = conn["id"]
            await self._remember(connection_id)
            await self._settle(conn)
            if self._ready_id is not None:
                return self._ready_id
            state = connection_state(conn)
            raise MembraneError(
                f"The CleverTap connection {connection_id} in Membrane is not ready (state {state}).",
                hint=f"{CONNECT_HINT}: it says what the user must do",
                details={"state": state, "connection_id": connection_id},
            )

    async def _settle(self, conn: Mapping[str, Any]) -> None:
        """Record the connection's readiness, refresh the live actions when READY, and notify on schema changes."""
        if connection_state(conn) == READY:
            self._ready_id = conn["id"]
            await self._refresh_live_actions(conn["id"])
        else:
            self._ready_id = None
        await self._notify_if_changed()

    async def _not_ready(self) -> None:
        """The connection can no longer be used: the popular tools fall back to their bundled schemas until the
        next READY, so the server must hear that its tool list changed (else list and calls disagree)."""
        self._ready_id = None
        await self._notify_if_changed()

    async def _refresh_live_actions(self, connection_id: str) -> None:
        actions: dict[str, ActionInfo] = {}
        cursor: str | None = None
        try:
            for _ in range(LIVE_ACTIONS_MAX_PAGES):
                response = await self._client.call(
                    "GET",
                    "/actions",
                    what="listing the CleverTap connection's actions",
                    params={"connectionId": connection_id, "limit": LIVE_ACTIONS_PAGE_SIZE, "cursor": cursor},
                )
                items = _items(response.body)
                for item in items:
                    info = _action_info(item)
                    if info is not None and info.key:
                        actions.setdefault(info.key, info)
                next_cursor = response.body.get("cursor") if isinstance(response.body, dict) else None
                if not items or not isinstance(next_cursor, str) or not next_cursor or next_cursor == cursor:
                    break
                cursor = next_cursor
        except MembraneError as exc:
            log.warning("could not list the live Membrane actions: %s", exc.message)
            return
        self._live = actions

    def _popular_fingerprint(self) -> str:
        live = self.live_actions()
        schemas = {key: live[key].input_schema for key in POPULAR_ACTION_KEYS if key in live}
        return json.dumps(schemas, sort_keys=True, default=str)

    async def _notify_if_changed(self) -> None:
        fingerprint = self._popular_fingerprint()
        if fingerprint == self._notified_fingerprint:
            return
        self._notified_fingerprint = fingerprint
        if self._listener is None:
            return
        try:
            await self._listener()
        except Exception as exc:  # a listener failure must not fail the connect
            log.warning("the tools-changed listener failed: %s", type(exc).__name__)

    @staticmethod
    async def _report(progress: ProgressFn | None, done: float, total: float, message: str) -> None:
        if progress is None:
            return
        try:
            await progress(done, total, message)
        except Exception as exc:  # progress is best effort
            log.debug("progress callback failed: %s", type(exc).__name__)

    def _describe(self, conn: Mapping[str, Any], *, waited: float) -> ConnectResult:
        connection_id = str(conn["id"])
        state = connection_state(conn)
        details: dict[str, Any] = {"waited_seconds": round(waited, 1)}
        if isinstance(conn.get("name"), str):
            details["name"] = conn["name"]
        if state == READY:
            details["live_actions"] = len(self._live)
            message = f"The CleverTap connection {connection_id} in Membrane is ready to use."
            next_step = "use the clevertap_* tools; clevertap_search_actions finds more actions"
        elif state == CLIENT_ACTION_REQUIRED:
            action = conn.get("clientAction") if isinstance(conn.get("clientAction"), dict) else {}
            assert isinstance(action, dict)
            kind = action.get("type") or "connect"
            description = action.get("description") or ""
            ui_url = action.get("uiUrl")
            details.update(
                clientActionType=kind,
                description=description,
                uiUrl=ui_url,
                agentInstructions=action.get("agentInstructions"),
            )
            if kind == "provide-input":
                message = "Membrane needs more information from the user to set up the CleverTap connection"
            else:
                message = "The user must authenticate the CleverTap connection in Membrane (account id and passcode)"
            message += f": {description}" if description else "."
            if ui_url:
                next_step = f"show this URL to the user: {ui_url}; once they finished, call clevertap_connect again"
            else:
                next_step = (
                    "follow agentInstructions in details (ask the user for what is needed); once they finished, "
                    "call clevertap_connect again"
                )
        elif state in (CONFIGURATION_ERROR, SETUP_FAILED):
            for field in ("error", "errors", "requestError"):
                if conn.get(field):
                    details[field] = conn[field]
            reason = _error_text(conn) or "no details given"
            if state == CONFIGURATION_ERROR:
                message = f"The CleverTap connection {connection_id} has a configuration error: {reason}"
                next_step = (
                    "tell the user; they can fix the connection in the Membrane console, then call clevertap_connect "
                    "again"
                )
            else:
                message = f"Setting up the CleverTap connection {connection_id} in Membrane failed: {reason}"
                next_step = (
                    "tell the user; call clevertap_connect again later to retry, or set MEMBRANE_CONNECTION_ID to a "
                    "working connection"
                )
        elif state == BUILDING:
            message = f"Membrane is still building the CleverTap connection {connection_id} (waited {waited:.0f} s)."
            next_step = "call clevertap_connect again (a larger wait_seconds waits longer)"
        elif state == DISCONNECTING:
            message = f"The CleverTap connection {connection_id} is being disconnected."
            next_step = "wait a few seconds and call clevertap_connect again; the user may have to authenticate again"
        else:
            message = (
                f"The CleverTap connection {connection_id} is in state {state!r}, which this server does not know."
            )
            next_step = "call clevertap_connect again; if it persists, check the connection in the Membrane console"
        return ConnectResult(
            backend=self.name,
            state=state,
            message=self._client.scrub_known(message),
            next_step=self._client.scrub_known(next_step),
            connection_id=connection_id,
            details=details,
        )

    # -- calls --------------------------------------------------------------------------------------------------

    async def _failed(self, exc: MembraneError, connection_id: str, *, missing: str | None = None) -> MembraneError:
        """Explain a refused call: was it the connection (gone, not READY, broken) or the thing asked for?

        Membrane's 4xx answers do not say which; one GET of the connection does (only on this error path).
        """
        err_type = exc.details.get("type")
        if err_type == "connection":
            await self._not_ready()
            return exc
        if exc.status not in (400, 404, 409, 422) or err_type not in (None, "bad_request"):
            return exc
        try:
            conn = await self._get_connection(connection_id)
        except MembraneError as lookup:
            if lookup.status != 404:
                return exc
            await self._not_ready()
            if not self._pinned_id:
                self._state.forget(self._client.api_url, self._client.auth.identity())
            return MembraneError(
                f"Membrane no longer knows the CleverTap connection {connection_id}.",
                status=404,
                code=lookup.code,
                hint=CONNECT_HINT if not self._pinned_id else "fix MEMBRANE_CONNECTION_ID, then call clevertap_connect",
                details={"connection_id": connection_id},
            )
        state = connection_state(conn)
        if state != READY:
            await self._not_ready()
            return MembraneError(
                f"The CleverTap connection {connection_id} in Membrane is not ready (state {state}).",
                status=exc.status,
                code=exc.code,
                hint=f"{CONNECT_HINT}: it says what the user must do",
                details={"state": state, "connection_id": connection_id},
            )
        if exc.status == 404 and missing:
            return MembraneError(
                f"Membrane has no {missing} on the CleverTap connection.",
                status=404,
                code=exc.code,
                hint="use clevertap_search_actions to find the action's key or id",
                details=exc.details,
            )
        return exc

    async def request(
        self, method: str, path: str, query: Mapping[str, Any] | None = None, body: Any = None
    ) -> RawResponse:
        """One CleverTap call through ``POST /connections/{id}/request``; ``path`` (with any pre-encoded
        ``?cursor=``) is sent verbatim."""
        connection_id = await self.ensure_ready()
        payload: dict[str, Any] = {"path": path, "method": method.upper()}
        if query:
            payload["query"] = {k: v for k, v in query.items() if v is not None}
        if isinstance(body, JsonBody):
            body = json.loads(body.data)
        if body is not None:
            payload["data"] = body
            payload["headers"] = {"Content-Type": "application/json"}
        try:
            response = await self._client.call(
                "POST",
                f"/connections/{quote(connection_id, safe='')}/request",
                what=f"calling CleverTap {method.upper()} {path.split('?', 1)[0]} through Membrane",
                json=payload,
                timeout_s=PROXY_TIMEOUT_S,
                passthrough=True,
            )
        except MembraneError as exc:
            raise await self._failed(exc, connection_id) from None
        return _unwrap(response)

    def _budget(self) -> float | None:
        left = remaining_budget()
        if self.call_budget_s is not None:
            left = self.call_budget_s if left is None else min(left, self.call_budget_s)
        return left

    async def _bounded(self, call: Callable[[], Awaitable[_T]], what: str) -> _T:
        """``call()`` inside the remaining budget; MembraneError (retryable, no status) when it runs out."""
        budget = self._budget()
        if budget is None:
            return await call()
        with anyio.move_on_after(budget):
            return await call()
        raise MembraneError(
            f"Membrane did not answer within this call's time budget ({budget:.0f} s) while {what}.",
            retryable=True,
            hint="Membrane or CleverTap is slow right now: try again in a moment (reads are safe to repeat).",
            details={"budget_exhausted": True},
        )

    async def _retrying(self, call: Callable[[], Awaitable[_T]], *, read: bool) -> _T:
        """Reads are retried on retryable errors (jittered backoff honouring Retry-After, inside the budget)."""
        attempt = 0
        started = time.monotonic()
        budget = self._budget()
        while True:
            attempt += 1
            try:
                return await call()
            except MembraneError as exc:
                if not read or not exc.retryable or attempt >= READ_ATTEMPTS or exc.details.get("budget_exhausted"):
                    raise
                base = self.retry_backoff_s * (2 ** (attempt - 1))
                wait = base / 2 + random.uniform(0, base / 2)
                retry_after = exc.details.get("retry_after")
                if isinstance(retry_after, (int, float)):
                    if retry_after > MAX_RETRY_WAIT_S:
                        raise
                    wait = max(wait, float(retry_after))
                if budget is not None and time.monotonic() - started + wait >= budget:
                    raise
                log.info("retrying a Membrane read in %.1f s after: %s", wait, exc.message)
                await anyio.sleep(wait)

    async def run_action(self, key_or_id: str, input: Mapping[str, Any]) -> ActionRun:
        """``POST /act``; where that route is unknown, ``POST /actions/{key}/run`` (remembered for next time).

        Actions the catalog knows as reads are retried on transient failures; any other action is sent once, and a
        lost or unusable answer says it may or may not have run.
        """
        read = _read_only_action(key_or_id)
        what = f"running the Membrane action {key_or_id}"

        async def once() -> ActionRun:
            return await self._bounded(lambda: self._run_action_once(key_or_id, input), what)

        try:
            return await self._retrying(once, read=read)
        except MembraneError as exc:
            raise exc if read else _maybe_ran(exc) from None

    async def _run_action_once(self, key_or_id: str, input: Mapping[str, Any]) -> ActionRun:
        connection_id = await self.ensure_ready()
        what = f"running the Membrane action {key_or_id}"
        selector = "id" if _OBJECT_ID_RE.fullmatch(key_or_id) else "key"
        act_refused = False
        if not self._act_unavailable:
            try:
                response = await self._client.call(
                    "POST",
                    "/act",
                    what=what,
                    json={selector: key_or_id, "connectionId": connection_id, "input": dict(input)},
                    timeout_s=ACTION_TIMEOUT_S,
                )
                return self._action_run(response.body, what)
            except MembraneError as exc:
                if not self._act_refused(exc):
                    raise await self._failed(exc, connection_id, missing=f"action {key_or_id!r}") from None
                act_refused = True
        try:
            response = await self._client.call(
                "POST",
                f"/actions/{quote(key_or_id, safe='')}/run",
                what=what,
                params={"connectionId": connection_id},
                json={"input": dict(input)},
                timeout_s=ACTION_TIMEOUT_S,
            )
        except MembraneError as exc:
            raise await self._failed(exc, connection_id, missing=f"action {key_or_id!r}") from None
        if act_refused:
            log.info("Membrane has no POST /act here; using POST /actions/{key}/run from now on")
            self._act_unavailable = True
        return self._action_run(response.body, what)

    @staticmethod
    def _act_refused(exc: MembraneError) -> bool:
        if exc.details.get("type") in ("action_run", "connection"):
            return False
        if exc.status == 404:
            return True
        return exc.status == 400 and bool(_ROUTE_UNKNOWN_RE.search(exc.message))

    @staticmethod
    def _action_run(body: Any, what: str) -> ActionRun:
        if isinstance(body, str):
            raise MembraneError(
                f"Membrane sent an unreadable answer (not JSON, possibly cut short) while {what}: {body[:120]!r}",
                retryable=True,
                hint="try again in a moment",
            )
        if not isinstance(body, dict):
            return ActionRun(output=body)
        run_id = body.get("actionRunId")
        return ActionRun(output=body.get("output"), action_run_id=run_id if isinstance(run_id, str) else None)

    async def search_actions(self, intent: str, limit: int) -> list[ActionInfo]:
        """``GET /actions?connectionId=&intent=&limit=`` (intent capped at 200 characters, limit at 1..100)."""
        connection_id = await self.ensure_ready()
        limit = max(1, min(int(limit), 100))
        what = "searching the CleverTap connection's actions"

        async def once() -> ApiResponse:
            return await self._bounded(
                lambda: self._client.call(
                    "GET",
                    "/actions",
                    what=what,
                    params={"connectionId": connection_id, "intent": intent.strip()[:200], "limit": limit},
                ),
                what,
            )

        try:
            response = await self._retrying(once, read=True)  # a search changes nothing: safe to repeat
        except MembraneError as exc:
            raise await self._failed(exc, connection_id) from None
        if not isinstance(response.body, (dict, list)):
            raise MembraneError(
                f"Membrane sent an unreadable answer (not JSON, possibly cut short) while {what}.",
                retryable=True,
                hint="try again in a moment",
            )
        found = (_action_info(item) for item in _items(response.body))
        return [info for info in found if info is not None][:limit]

    async def aclose(self) -> None:
        await self._client.aclose()
