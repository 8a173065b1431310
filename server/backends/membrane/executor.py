"""The ``membrane`` executor: CleverTap through the Membrane API (connection, live actions, action runs, proxy).

Flow: ``connect()`` finds the connection (``MEMBRANE_CONNECTION_ID``, else the remembered id, else
``POST /connections/ensure``), long-polls it while it is BUILDING, and reports what the user must do (Membrane's
``agentInstructions`` first, then a URL: ``clientAction.uiUrl``, else one from ``POST /connection-requests``; a
connection that lost its authorization is reconnected, never replaced). Once READY, the connection's live action
list is cached; ``live_action(key_or_id)`` hands the server Membrane's own input schema for a popular tool (matched
by key, else name, else id), and the server is told (``set_tools_changed_listener``) when those schemas change.
Raw CleverTap calls go through ``<METHOD> /connections/{id}/proxy/{path}`` (the SDK's ``ConnectionProxy``); every
Membrane route used is listed with its SDK source in docs/membrane.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote, unquote, urlencode

import anyio
import httpx

from server.backends.membrane.auth import TokenSource, token_source_from_settings
from server.backends.membrane.client import (
    CONNECT_HINT,
    DEFAULT_API_URL,
    ApiResponse,
    MembraneClient,
    query_value,
    route_missing,
)
from server.backends.membrane.state import ConnectionStateStore
from server.backends.retry import MAX_ATTEMPTS, Backoff, bounded, deadline_within, retried, uncertain_write
from server.codec.wirejson import strict_json
from tools.api import ActionInfo, ActionRun, ConnectResult, JsonBody, ProgressFn, RawResponse
from tools.errors import ConfigurationError, InputError, MembraneError, UpstreamError
from tools.names import POPULAR_ACTION_KEYS

if TYPE_CHECKING:
    from server.config import Settings

log = logging.getLogger("clevertap_mcp.membrane")

CLEVERTAP_APP_URL = "https://clevertap.com/"
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
RUN_LOG_TIMEOUT_S = 10.0
RawRoute = Literal["proxy", "request"]

ToolsChangedListener = Callable[[], Awaitable[None]]
_T = TypeVar("_T")
READ_ATTEMPTS = MAX_ATTEMPTS
_MAYBE_RAN_HINT = (
    "It was sent once and not repeated: the action may or may not have run. Check its effect (or the action run log "
    "in Membrane) before running it again: running it again may apply it twice."
)


def _read_only_action(key_or_id: str) -> bool:
    """Whether the endpoint policy knows ``key_or_id`` as a read (only those are retried)."""
    from server.policies.endpoints import action_kind

    return action_kind(key_or_id) == "read"


def _maybe_ran(exc: UpstreamError) -> UpstreamError:
    """A write action's error when its answer was lost or unusable: it may or may not have run."""
    if exc.details.get("type") == "action_run":
        return exc  # Membrane ran it and reports how it failed
    return uncertain_write(
        exc, "The action changes the account, so it was not repeated; it may or may not have run.", _MAYBE_RAN_HINT
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


def lost_authorization(conn: Mapping[str, Any]) -> bool:
    """READY on paper, but Membrane marks it disconnected or defunct: the user must re-authorize this connection."""
    return conn.get("state") in (READY, None) and (conn.get("isDefunct") is True or conn.get("connected") is False)


def connection_state(conn: Mapping[str, Any]) -> str:
    """The connection's state; older answers without ``state`` are judged by ``clientAction``/``connected``; a
    READY one that lost its authorization counts as CLIENT_ACTION_REQUIRED (Membrane's skills: re-connect it)."""
    state = conn.get("state")
    if lost_authorization(conn):
        return CLIENT_ACTION_REQUIRED
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
    """An ``ActionApiResponse`` item (only ``id`` and ``name`` are required; catalog actions carry no ``key``)."""
    action_id = item.get("id")
    if not isinstance(action_id, str) or not action_id:
        return None
    key = item.get("key") if isinstance(item.get("key"), str) else ""
    name = item.get("name") if isinstance(item.get("name"), str) else ""
    schema = item.get("inputSchema")
    return ActionInfo(
        id=action_id,
        key=key or "",
        name=name or key or action_id,
        description=str(item.get("description") or ""),
        input_schema=schema if isinstance(schema, dict) else None,
        read_only=None,
    )


def slug(text: str) -> str:
    """``"Get Events by Cursor"`` -> ``"get-events-by-cursor"``: how Membrane derives a key from a name."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def match_action(actions: Iterable[ActionInfo], key_or_id: str) -> ActionInfo | None:
    """The action ``key_or_id`` names: by key, else by name (or its slug), else by id."""
    wanted = key_or_id.strip()
    listed = list(actions)
    if not wanted:
        return None
    by_key = next((a for a in listed if a.key and a.key == wanted), None)
    if by_key is not None:
        return by_key
    wanted_slug = slug(wanted)
    by_name = next((a for a in listed if a.name and (a.name == wanted or slug(a.name) == wanted_slug)), None)
    if by_name is not None:
        return by_name
    return next((a for a in listed if a.id == wanted), None)


def _encode_query(query: Mapping[str, Any] | None) -> str:
    """``query`` as a query string (values as the SDK sends them; lists repeated; None skipped)."""
    pairs: list[tuple[str, str]] = []
    for name, value in (query or {}).items():
        values = value if isinstance(value, (list, tuple)) else [value]
        pairs.extend((str(name), query_value(v)) for v in values if v is not None)
    return urlencode(pairs)


def split_path(path: str) -> tuple[str, str]:
    """``"/1/events.json?cursor=a%2B"`` -> ``("/1/events.json", "cursor=a%2B")``; the query stays as it is."""
    base, _, query = path.partition("?")
    return base, query


def _run_log_reason(body: Any) -> str | None:
    """The deepest error message of an ``ActionRunLogRecordApiResponse`` (its ``error``: ErrorData)."""
    error = body.get("error") if isinstance(body, dict) else None
    messages: list[str] = []
    depth = 0
    while isinstance(error, dict) and depth < 5:
        if isinstance(error.get("message"), str) and error["message"].strip():
            messages.append(error["message"].strip())
        error = error.get("causedByError")
        depth += 1
    if not messages:
        return None
    return messages[-1] if len(messages) == 1 or messages[-1] in messages[0] else f"{messages[0]} ({messages[-1]})"


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
        if state is None:  # the platform's default folder (``from_settings`` hands over the configured one)
            from server.config import Settings as Defaults

            state = ConnectionStateStore(Defaults().membrane_state_dir())
        self._state = state
        self._clock = clock
        self._ready_id: str | None = None
        self._live: dict[str, ActionInfo] = {}
        self._listing: list[ActionInfo] = []
        self._missing_logged: tuple[str, ...] = ()
        self._raw_route: RawRoute | None = None
        self._request_urls: dict[str, str] = {}
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
        """``from_settings`` for the settings read from ``env`` (default: the process environment)."""
        from server.config import load_settings

        return cls.from_settings(load_settings(env), http=http, state=state)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        scrubber: Callable[[str], str] | None = None,
        http: httpx.AsyncClient | None = None,
        state: ConnectionStateStore | None = None,
    ) -> MembraneExecutor:
        """Built from ``server.config.Settings``: credentials, API URL, connection id, state folder, budget and
        answer bound. Never raises: a missing credential surfaces as ConfigurationError on use. ``scrubber`` also
        cleans every error text, and learns secrets only the CLI knew."""
        auth: TokenSource
        try:
            auth = token_source_from_settings(settings)
        except ConfigurationError as exc:
            auth = _Unconfigured(exc)
        api_url = settings.membrane_api_url
        executor = cls(
            auth,
            # The settings always carry a URL; the default one lets the CLI's own apiUri win.
            api_url=None if not api_url or api_url.rstrip("/") == DEFAULT_API_URL else api_url,
            connection_id=settings.membrane_connection_id,
            state=state if state is not None else ConnectionStateStore(settings.membrane_state_dir()),
            http=http,
            call_budget_s=settings.call_budget_s,
            retry_backoff_s=settings.retry_backoff_s,
        )
        executor._client.external_scrubber = scrubber
        executor._client.max_answer_bytes = settings.max_upstream_bytes
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

    def live_action(self, key_or_id: str) -> ActionInfo | None:
        """The live action ``key_or_id`` names (with Membrane's input schema): a popular action under its catalog
        key, else any listed action by key, name or id (``match_action``); None when not listed or not READY."""
        if self._ready_id is None:
            return None
        return self._live.get(key_or_id) or match_action(self._listing, key_or_id)

    def live_actions(self) -> dict[str, ActionInfo]:
        """The popular actions Membrane lists, by catalog key."""
        return dict(self._live) if self._ready_id is not None else {}

    def missing_popular_actions(self) -> list[str]:
        """Popular action keys Membrane's list lacks (their tools run the bundled way, through the proxy)."""
        return [key for key in POPULAR_ACTION_KEYS if key not in self._live] if self._ready_id is not None else []

    async def describe_action(self, key_or_id: str) -> ActionInfo | None:
        """The action ``key_or_id`` names (an id or a key): from the live action list, else ``GET /actions/{sel}``;
        None when Membrane cannot say (the caller must then treat the action as unclassified)."""
        await self.ensure_ready()  # not ready: the same error the run itself would give
        found = self.live_action(key_or_id)  # the whole listing: by key, else name or slug, else id
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
        link: str | None = None
        if connection_state(conn) == CLIENT_ACTION_REQUIRED and not self._ui_url(conn):
            link = await self._connection_request_url(connection_id)
        return self._describe(conn, waited=self._clock() - start, link=link)

    @staticmethod
    def _ui_url(conn: Mapping[str, Any]) -> str | None:
        action = conn.get("clientAction")
        url = action.get("uiUrl") if isinstance(action, dict) else None
        return url if isinstance(url, str) and url else None

    async def _connection_request_url(self, connection_id: str) -> str | None:
        """A URL where the user (re-)authorizes this very connection: ``POST /connection-requests
        {connectionId}``, reused while that request is still pending. None when Membrane gives none."""
        cached = self._request_urls.get(connection_id)
        if cached:
            request_id, _, url = cached.partition(" ")
            try:
                response = await self._client.call(
                    "GET",
                    f"/connection-requests/{quote(request_id, safe='')}",
                    what="checking the pending connection request",
                )
                if isinstance(response.body, dict) and response.body.get("status") == "pending":
                    return url
            except MembraneError as exc:
                log.info("the connection request %s is gone (%s); creating another", request_id, exc.message)
            self._request_urls.pop(connection_id, None)
        try:
            response = await self._client.call(
                "POST",
                "/connection-requests",
                what="asking Membrane for a link to connect CleverTap (POST /connection-requests)",
                json={"connectionId": connection_id},
            )
        except MembraneError as exc:
            log.warning("could not create a Membrane connection request: %s", exc.message)
            return None
        body = response.body if isinstance(response.body, dict) else {}
        link, new_id = body.get("url"), body.get("requestId")
        if not isinstance(link, str) or not link.startswith(("https://", "http://")):
            log.warning("Membrane's connection request carried no usable url")
            return None
        if isinstance(new_id, str) and new_id and " " not in new_id:
            self._request_urls[connection_id] = f"{new_id} {link}"
        return link

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
            self._request_urls.pop(conn["id"], None)
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
        """List the connection's actions (``GET /actions``, every page up to a cap); match the popular keys."""
        listing: list[ActionInfo] = []
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
                listing.extend(info for info in map(_action_info, items) if info is not None)
                next_cursor = response.body.get("cursor") if isinstance(response.body, dict) else None
                if not items or not isinstance(next_cursor, str) or not next_cursor or next_cursor == cursor:
                    break
                cursor = next_cursor
        except MembraneError as exc:
            log.warning("could not list the live Membrane actions: %s", exc.message)
            return
        self._listing = listing
        self._live = self._popular(listing)
        missing = tuple(key for key in POPULAR_ACTION_KEYS if key not in self._live)
        if missing and missing != self._missing_logged:
            log.warning(
                "%d of %d popular actions are live in Membrane; not found (their tools run the bundled way, "
                "through the proxy): %s",
                len(self._live),
                len(POPULAR_ACTION_KEYS),
                ", ".join(missing),
            )
        self._missing_logged = missing

    @staticmethod
    def _popular(listing: Sequence[ActionInfo]) -> dict[str, ActionInfo]:
        """Each popular key's live action (by key, else name, else id), under the catalog key; the action's own
        key and id stay reachable through ``match_action``."""
        found: dict[str, ActionInfo] = {}
        for key in POPULAR_ACTION_KEYS:
            info = match_action(listing, key)
            if info is not None:
                found[key] = info
        return found

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

    def _describe(self, conn: Mapping[str, Any], *, waited: float, link: str | None = None) -> ConnectResult:
        connection_id = str(conn["id"])
        state = connection_state(conn)
        details: dict[str, Any] = {"waited_seconds": round(waited, 1)}
        if isinstance(conn.get("name"), str):
            details["name"] = conn["name"]
        if state == READY:
            live, total = len(self._live), len(POPULAR_ACTION_KEYS)
            missing = self.missing_popular_actions()
            details["live_actions"] = len(self._listing)
            details["popular_actions_live"] = f"{live} of {total}"
            if missing:
                details["popular_actions_missing"] = missing
            message = (
                f"The CleverTap connection {connection_id} in Membrane is ready to use ({live} of {total} actions live"
            )
            message += (
                f"; not found in Membrane: {', '.join(missing)}, whose tools run through the proxy)."
                if missing
                else ")."
            )
            next_step = "use the clevertap_* tools; clevertap_search_actions finds more actions"
        elif state == CLIENT_ACTION_REQUIRED:
            action = conn.get("clientAction") if isinstance(conn.get("clientAction"), dict) else {}
            assert isinstance(action, dict)
            kind = action.get("type") or "connect"
            lost = lost_authorization(conn)
            description = action.get("description") or (
                "The connection lost its authorization to CleverTap." if lost else ""
            )
            instructions = action.get("agentInstructions")
            ui_url = action.get("uiUrl") or link
            details.update(clientActionType=kind, description=description, uiUrl=ui_url, agentInstructions=instructions)
            if link and not action.get("uiUrl"):
                details["uiUrlFrom"] = "POST /connection-requests"
            if kind == "provide-input":
                message = "Membrane needs more information from the user to set up the CleverTap connection"
            elif lost:
                message = f"The user must reconnect the CleverTap connection {connection_id} in Membrane (the same one)"
            else:
                message = "The user must authenticate the CleverTap connection in Membrane (account id and passcode)"
            message += f": {description}" if description else "."
            # Membrane's agent skills: follow agentInstructions first, then show the URL.
            steps = [f"follow Membrane's agentInstructions: {instructions.rstrip('. ')}"] if instructions else []
            if ui_url:
                steps.append(f"show this URL to the user: {ui_url}")
            elif not instructions:
                steps.append("ask the user to finish the CleverTap connection in the Membrane console")
            steps.append("once they finished, call clevertap_connect again")
            next_step = "; ".join(steps)
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
        """One CleverTap call through ``<METHOD> /connections/{id}/proxy/{path}?{query}`` (the SDK's
        ``ConnectionProxy``): a pre-encoded ``?cursor=`` in ``path`` is sent byte for byte, the body as it is, and
        CleverTap's status and body come back unchanged. Only when that route itself is missing (a 404/405 naming
        it: nothing reached CleverTap) is ``POST /connections/{id}/request`` used, for the rest of the process."""
        connection_id = await self.ensure_ready()
        method = method.upper()
        if not path.startswith("/") or path.startswith("//"):
            raise InputError(f"path {path!r} must be relative to the API root and start with /1/ (or /2/)")
        if self._raw_route != "request":
            response = await self._proxy(connection_id, method, path, query, body)
            if response is not None:
                if self._raw_route is None:
                    self._raw_route = "proxy"
                    log.info("raw CleverTap calls go through Membrane's /connections/{id}/proxy route")
                return RawResponse(response.status, response.body, dict(response.headers))
            self._raw_route = "request"
            log.warning(
                "Membrane has no /connections/{id}/proxy route here; raw CleverTap calls use POST "
                "/connections/{id}/request from now on"
            )
        return await self._structured_request(connection_id, method, path, query, body)

    async def _proxy(
        self, connection_id: str, method: str, path: str, query: Mapping[str, Any] | None, body: Any
    ) -> ApiResponse | None:
        """The proxy call; None when Membrane has no proxy route."""
        base, raw_query = split_path(path)
        extra = _encode_query(query)
        joined = "&".join(part for part in (raw_query.rstrip("&"), extra) if part)
        route = f"/connections/{quote(connection_id, safe='')}/proxy{base}"
        content: bytes | None = None
        headers: dict[str, str] = {}
        if method != "GET" and body is not None:
            content = body.data if isinstance(body, JsonBody) else strict_json(body)
            headers["Content-Type"] = "application/json"
        try:
            response = await self._client.call(
                method,
                route + (f"?{joined}" if joined else ""),
                what=f"calling CleverTap {method} {base} through Membrane",
                content=content,
                headers=headers,
                timeout_s=PROXY_TIMEOUT_S,
                passthrough=True,
            )
        except MembraneError as exc:
            if exc.details.get("route_missing"):
                return None
            raise await self._failed(exc, connection_id) from None
        if route_missing(response.status, response.body, route, named_only=True):  # not CleverTap's own 405
            return None
        return response

    async def _structured_request(
        self, connection_id: str, method: str, path: str, query: Mapping[str, Any] | None, body: Any
    ) -> RawResponse:
        """``POST /connections/{id}/request`` with the SDK's ``ConnectionProxyRequest`` shape: ``query`` and
        ``headers`` values as strings, the query never inside ``path`` (a pre-encoded one is decoded once)."""
        base, raw_query = split_path(path)
        params: dict[str, str] = {}
        for pair in raw_query.split("&"):
            if pair:
                name, _, value = pair.partition("=")
                params[unquote(name)] = unquote(value)
        for name, value in (query or {}).items():
            if value is None:
                continue
            if isinstance(value, (list, tuple)):
                raise InputError(
                    f"query parameter {name!r} has several values, which Membrane's request route cannot send",
                    hint="Send one value per query parameter.",
                )
            params[str(name)] = query_value(value)
        payload: dict[str, Any] = {"path": base, "method": method}
        if params:
            payload["query"] = params
        if isinstance(body, JsonBody):
            body = json.loads(body.data)
        if body is not None and method != "GET":
            payload["data"] = body
            payload["headers"] = {"Content-Type": "application/json"}
        try:
            response = await self._client.call(
                "POST",
                f"/connections/{quote(connection_id, safe='')}/request",
                what=f"calling CleverTap {method} {base} through Membrane",
                json=payload,
                timeout_s=PROXY_TIMEOUT_S,
                passthrough=True,
            )
        except MembraneError as exc:
            raise await self._failed(exc, connection_id) from None
        return _unwrap(response)

    def _limit(self) -> float | None:
        """The ``time.monotonic()`` deadline of one action run or search: the call's, or this executor's budget."""
        return deadline_within(self.call_budget_s)

    async def _bounded(self, call: Callable[[], Awaitable[_T]], what: str, limit: float | None) -> _T:
        """``call()`` inside the budget; MembraneError (retryable, no status) when it runs out."""
        budget = None if limit is None else max(0.0, limit - time.monotonic())

        def timed_out() -> MembraneError:
            return MembraneError(
                f"Membrane did not answer within this call's time budget ({budget or 0:.0f} s) while {what}.",
                retryable=True,
                hint="Membrane or CleverTap is slow right now: try again in a moment (reads are safe to repeat).",
                details={"budget_exhausted": True},
            )

        return await bounded(call, limit, timed_out)

    async def _retrying(self, call: Callable[[], Awaitable[_T]], *, read: bool, what: str) -> _T:
        """``call()`` inside the budget; reads retried on retryable errors (``server.backends.retry``), writes sent
        once and their lost answers reported as "may or may not have run"."""
        limit = self._limit()
        return await retried(
            lambda: self._bounded(call, what, limit),
            read=read,
            backoff=Backoff(self.retry_backoff_s, READ_ATTEMPTS),
            limit=limit,
            uncertain=_maybe_ran,
            what=what,
        )

    async def run_action(self, key_or_id: str, input: Mapping[str, Any]) -> ActionRun:
        """``POST /act``; where that route is unknown, ``POST /actions/{key}/run`` (remembered for next time).

        Actions the catalog knows as reads are retried on transient failures; any other action is sent once, and a
        lost or unusable answer says it may or may not have run.
        """
        read = _read_only_action(key_or_id)
        what = f"running the Membrane action {key_or_id}"

        return await self._retrying(lambda: self._run_action_once(key_or_id, input), read=read, what=what)

    def _selector(self, key_or_id: str) -> tuple[str, str]:
        """How ``/act`` names the action: its key when Membrane lists it under that key (or nothing is listed),
        else the listed action's id (catalog actions carry no key); a 24-hex string is an id."""
        info = match_action(self._listing, key_or_id) if self._ready_id is not None else None
        if info is not None and info.key != key_or_id:
            return "id", info.id
        if info is None and _OBJECT_ID_RE.fullmatch(key_or_id):
            return "id", key_or_id
        return "key", key_or_id

    async def _run_action_once(self, key_or_id: str, input: Mapping[str, Any]) -> ActionRun:
        connection_id = await self.ensure_ready()
        what = f"running the Membrane action {key_or_id}"
        selector, value = self._selector(key_or_id)
        act_missing = False
        if not self._act_unavailable:
            try:
                response = await self._client.call(
                    "POST",
                    "/act",
                    what=what,
                    json={selector: value, "connectionId": connection_id, "input": dict(input)},
                    timeout_s=ACTION_TIMEOUT_S,
                )
                return self._action_run(response.body, what)
            except MembraneError as exc:
                # Only a 404/405 naming the route itself means "no /act here"; nothing ran then.
                if not exc.details.get("route_missing"):
                    raise await self._explained(exc, connection_id, key_or_id) from None
                act_missing = True
        try:
            response = await self._client.call(
                "POST",
                f"/actions/{quote(value, safe='')}/run",
                what=what,
                params={"connectionId": connection_id},
                json={"input": dict(input)},
                timeout_s=ACTION_TIMEOUT_S,
            )
        except MembraneError as exc:
            raise await self._explained(exc, connection_id, key_or_id) from None
        if act_missing:
            log.warning("Membrane has no POST /act route here; using POST /actions/{id}/run from now on")
            self._act_unavailable = True
        return self._action_run(response.body, what)

    async def _explained(self, exc: MembraneError, connection_id: str, key_or_id: str) -> MembraneError:
        """A failed run's error, with the reason its run log gives (``GET /action-run-logs/{id}``)."""
        run_id = exc.details.get("actionRunId")
        if isinstance(run_id, str) and run_id:
            reason = await self._run_log_reason(run_id)
            if reason and reason not in exc.message:
                return MembraneError(
                    self._client.scrub(f"{exc.message} Run log: {reason}"),
                    status=exc.status,
                    code=exc.code,
                    retryable=exc.retryable,
                    hint=exc.hint,
                    details={**exc.details, "run_log_reason": self._client.scrub(reason)},
                )
        return await self._failed(exc, connection_id, missing=f"action {key_or_id!r}")

    async def _run_log_reason(self, run_id: str) -> str | None:
        """Why the run failed, from its run log; None when the log cannot be read (best effort, bounded)."""
        try:
            with anyio.fail_after(RUN_LOG_TIMEOUT_S):
                response = await self._client.call(
                    "GET",
                    f"/action-run-logs/{quote(run_id, safe='')}",
                    what=f"reading the run log {run_id}",
                    timeout_s=RUN_LOG_TIMEOUT_S,
                )
        except (MembraneError, ConfigurationError, TimeoutError) as exc:
            log.info("could not read the action run log %s: %s", run_id, getattr(exc, "message", type(exc).__name__))
            return None
        return _run_log_reason(response.body)

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
            return await self._client.call(
                "GET",
                "/actions",
                what=what,
                params={"connectionId": connection_id, "intent": intent.strip()[:200], "limit": limit},
            )

        try:
            response = await self._retrying(once, read=True, what=what)  # a search changes nothing: safe to repeat
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
