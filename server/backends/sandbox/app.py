"""The sandbox as an ASGI app (reference §12): request parsing, routing, auth, concurrency and planned faults.

Requests arrive at the API root (``/1/upload``, ``/1/events.json``, ...) and are answered by ``handlers.Handlers``.
Constructing the app does no work: the database is opened (and the seed generated, if not cached) on the first
request, in a worker thread. With ``admin=True``, ``/__sandbox/config`` and ``/__sandbox/stats`` are served too.
"""

from __future__ import annotations

import copy
import hmac
import logging
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from .admin import apply_knobs
from .config import SandboxConfig
from .custom_lists import UPLOAD_PREFIX, CustomLists, Upload
from .faults import FaultInjector, send_body
from .handlers import Cursor, Handler, Handlers, PendingCount
from .messages import JSON_TYPE, Answer, HttpError, Request, encode
from .query import QueryError
from .store import Store

log = logging.getLogger("clevertap_mcp.sandbox")

T = TypeVar("T")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ADMIN_PREFIX = "/__sandbox/"


class SandboxApp(Handlers, CustomLists):
    """The ASGI callable. Knobs live on ``self.config`` (a private copy of the one passed in)."""

    def __init__(self, config: SandboxConfig | None = None, *, admin: bool = False) -> None:
        self.config = copy.deepcopy(config) if config is not None else SandboxConfig()
        self.admin = admin
        self._store: Store | None = None
        self._open_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._cursors: dict[str, Cursor] = {}
        self._counts: dict[str, PendingCount] = {}
        self._uploads: dict[str, Upload] = {}
        self._inflight = 0
        # API requests received, by "METHOD /path" (faulted ones included).
        self.requests: dict[str, int] = {}
        self._routes: dict[str, dict[str, Handler]] = {**self.routes(), **self.custom_list_routes()}
        self._faults = FaultInjector(
            self._serve,
            lambda: self.config.faults,
            exempt=lambda path: path.startswith(ADMIN_PREFIX),
            lock=self._state_lock,
        )

    def store(self) -> Store:
        """The store, opened on first use (thread-safe; call it from a worker thread: it may generate the seed)."""
        if self._store is None:
            with self._open_lock:
                if self._store is None:
                    started = time.perf_counter()
                    self._store = Store.open(self.config)
                    log.info("sandbox database ready in %.2fs", time.perf_counter() - started)
        return self._store

    def close(self) -> None:
        """Close the database (an in-memory copy is discarded); a later request opens a fresh one."""
        with self._open_lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()

    async def _db(self, fn: Callable[[Store], T]) -> T:
        return await anyio.to_thread.run_sync(lambda: fn(self.store()))

    def received(self, method: str, path: str) -> int:
        """How many API requests ``method path`` this app received (faulted ones included)."""
        with self._state_lock:
            return self.requests.get(f"{method.upper()} {path}", 0)

    def apply_knobs(self, values: Mapping[str, Any]) -> None:
        """Change runtime knobs (admin endpoint and tests); unknown names raise HttpError 400."""
        apply_knobs(self.config, self._state_lock, values)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if not scope["path"].startswith(ADMIN_PREFIX):
            key = f"{scope['method'].upper()} {scope['path']}"
            with self._state_lock:
                self.requests[key] = self.requests.get(key, 0) + 1
        await self._faults(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read one request, answer it."""
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        raw_query = scope.get("query_string", b"").decode("latin-1")
        req = Request(
            method=scope["method"].upper(),
            path=scope["path"],
            raw_query=raw_query,
            query=dict(reversed(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))),
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])},
            body=body,
            scheme=str(scope.get("scheme", "http")),
        )
        status, payload = await self._handle(req)
        if isinstance(payload, str):
            await send_body(send, status, payload.encode("utf-8"), content_type=b"text/plain;charset=utf-8")
        else:
            await send_body(send, status, encode(payload), content_type=JSON_TYPE)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _handle(self, req: Request) -> Answer:
        if self.admin and req.path.startswith(ADMIN_PREFIX):
            try:
                return await self._admin(req)
            except HttpError as exc:
                return exc.status, exc.body
            except (TypeError, ValueError) as exc:
                return 400, {"status": "fail", "error": f"Invalid knob value: {exc}", "code": 400}
        if req.path.startswith(UPLOAD_PREFIX):  # a presigned upload URL: no CleverTap headers
            return await self.put_upload(req)
        route = self._routes.get(req.path.rstrip("/") or "/")
        if route is None:
            return 404, {"status": "fail", "error": f"Not found: {req.path}", "code": 404}
        handler = route.get(req.method)
        if handler is None:
            return 405, {"status": "fail", "error": "Method not allowed", "code": 405}
        limit = self.config.max_concurrency
        if limit is not None and self._inflight >= limit:
            return 429, {"status": "fail", "error": "Too many concurrent requests", "code": 429}
        self._inflight += 1
        try:
            if self.config.slow_s > 0:
                await anyio.sleep(self.config.slow_s)
            with self._state_lock:
                canned = self.config.fail_next.pop(0) if self.config.fail_next else None
            if canned is not None:
                return int(canned[0]), canned[1]
            denied = self._auth(req)
            if denied is not None:
                return denied
            try:
                return await handler(req)
            except HttpError as exc:
                return exc.status, exc.body
            except QueryError as exc:
                return 400, {"status": "fail", "error": str(exc), "code": 400}
            except Exception:
                log.exception("sandbox handler failed: %s %s", req.method, req.path)
                return 500, {"status": "fail", "error": "Internal server error", "code": 500}
        finally:
            self._inflight -= 1

    def _auth(self, req: Request) -> Answer | None:
        account = req.headers.get("x-clevertap-account-id", "")
        if not account or not hmac.compare_digest(account.encode(), self.config.account_id.encode()):
            return 401, {"status": "fail", "error": "Account ID is not valid", "code": 401}
        passcode = req.headers.get("x-clevertap-passcode", "")
        if not hmac.compare_digest(passcode.encode(), self.config.passcode.encode()):
            return 401, {"status": "fail", "error": "Passcode Invalid", "code": 401}
        return None

    async def _admin(self, req: Request) -> Answer:
        """The test-only admin endpoints."""
        if req.path == "/__sandbox/stats" and req.method == "GET":
            stats = await self._db(lambda s: s.stats())
            return 200, {
                "status": "success",
                **stats,
                "cursors": len(self._cursors),
                "pending_counts": len(self._counts),
                "requests": dict(self.requests),
            }
        if req.path == "/__sandbox/config" and req.method in ("GET", "POST"):
            if req.method == "POST":
                self.apply_knobs(req.json_object())
            return 200, {"status": "success", "config": self.config.knobs()}
        return 404, {"status": "fail", "error": f"Not found: {req.path}", "code": 404}


def create_app(config: SandboxConfig | None = None, *, admin: bool = False) -> SandboxApp:
    """A new sandbox ASGI app. Cheap: the database is opened on the first request."""
    return SandboxApp(config, admin=admin)
