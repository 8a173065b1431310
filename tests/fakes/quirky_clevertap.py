"""A small, scriptable CleverTap fake that reproduces the documented wire quirks on demand.

It is NOT the sandbox emulator: it exists to drive the wire client through each quirk deterministically.

* ``QuirkyCleverTap`` is a raw ASGI app. Script one-shot answers with ``fake.script(method, path, Reply(...), ...)``
  or install a persistent handler with ``fake.route(method, path, fn)``; everything it saw is in ``fake.seen``.
* ``fake.transport()`` gives an ``httpx.AsyncBaseTransport`` for ``HttpExecutor(transport=...)``; raising
  ``NetworkFailure`` from a handler (or scripting it) turns into a real httpx network error or timeout.
* Defaults: CleverTap's 401 answers for a wrong account id / passcode, ``/1/now.json``, and an upload that rejects
  records whose identity starts with ``bad`` (``Skipped record number : k``), answers 400 for a batch containing
  identity ``reject-batch``, 500 for ``boom``, and drops the connection for ``drop``.
"""

from __future__ import annotations

import inspect
import json
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import anyio
import httpx


class NetworkFailure(Exception):
    """Raised by a handler to make the transport fail like the network: ``kind`` is "connect" or "timeout"."""

    def __init__(self, kind: str = "connect") -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list: JSON; str/bytes: sent as-is (non-JSON or truncated JSON)
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    query_string: bytes  # exactly as it arrived
    headers: dict[str, str]
    body: Any

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.query_string.decode())


Handler = Callable[[Seen], "Reply | Awaitable[Reply]"]

FAIL_401_ACCOUNT = {"status": "fail", "error": "Account ID is not valid", "code": 401}
FAIL_401_PASSCODE = {"status": "fail", "error": "Passcode Invalid", "code": 401}
IN_PROGRESS = {"status": "fail", "error": "Request still in progress, please retry later", "code": 2}


class QuirkyCleverTap:
    def __init__(self, account_id: str = "TEST-ACC-123", passcode: str = "pc-secret-9", delay_s: float = 0.0) -> None:
        self.account_id = account_id
        self.passcode = passcode
        self.delay_s = delay_s
        self.seen: list[Seen] = []
        self.in_flight: dict[str, int] = {"upload": 0, "other": 0}
        self.max_in_flight: dict[str, int] = {"upload": 0, "other": 0}
        self.upload_numbers = True  # include "Skipped record number : k" in upload errors
        self._scripts: dict[tuple[str, str], deque[Any]] = {}
        self._routes: dict[tuple[str, str], Handler] = {}

    # -- scripting -------------------------------------------------------------------------------------------------

    def script(self, method: str, path: str, *steps: Any) -> None:
        """One-shot answers for ``method path`` (consumed in order before any route or default)."""
        self._scripts.setdefault((method.upper(), path), deque()).extend(steps)

    def route(self, method: str, path: str, handler: Handler) -> None:
        self._routes[(method.upper(), path)] = handler

    def transport(self) -> httpx.AsyncBaseTransport:
        return _FakeTransport(self)

    def calls(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        return [s for s in self.seen if (method is None or s.method == method) and (path is None or s.path == path)]

    # -- ASGI ------------------------------------------------------------------------------------------------------

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw_body = b"".join(chunks)
        try:
            body: Any = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = raw_body.decode(errors="replace")
        seen = Seen(
            method=scope["method"],
            path=scope["path"],
            query_string=scope.get("query_string", b""),
            headers={k.decode().lower(): v.decode() for k, v in scope.get("headers", [])},
            body=body,
        )
        self.seen.append(seen)
        kind = "upload" if seen.path == "/1/upload" else "other"
        self.in_flight[kind] += 1
        self.max_in_flight[kind] = max(self.max_in_flight[kind], self.in_flight[kind])
        try:
            reply = await self._answer(seen)
            delay = reply.delay_s or self.delay_s
            if delay:
                await anyio.sleep(delay)
        finally:
            self.in_flight[kind] -= 1
        if isinstance(reply.body, (dict, list)):
            payload = json.dumps(reply.body).encode()
            content_type = "application/json;charset=utf-8"
        else:
            payload = reply.body.encode() if isinstance(reply.body, str) else (reply.body or b"")
            content_type = "text/html"
        headers = [(b"content-type", content_type.encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _answer(self, seen: Seen) -> Reply:
        if seen.headers.get("x-clevertap-account-id") != self.account_id:
            return Reply(401, FAIL_401_ACCOUNT)
        if seen.headers.get("x-clevertap-passcode") != self.passcode:
            return Reply(401, FAIL_401_PASSCODE)
        key = (seen.method, seen.path)
        queue = self._scripts.get(key)
        step: Any
        if queue:
            step = queue.popleft()
        elif key in self._routes:
            step = self._routes[key]
        elif key == ("POST", "/1/now.json"):
            step = Reply(200, {"status": "success", "count": 214, "last_processed_ts": 1486536600})
        elif key == ("POST", "/1/upload"):
            step = self._upload
        else:
            step = Reply(404, {"status": "fail", "error": f"Unknown path {seen.path}", "code": 404})
        if isinstance(step, NetworkFailure):
            raise step
        if callable(step):
            result = step(seen)
            if inspect.isawaitable(result):
                result = await result
            return result
        return step

    def _upload(self, seen: Seen) -> Reply:
        batch = seen.body.get("d") if isinstance(seen.body, dict) else None
        if not isinstance(batch, list):
            return Reply(400, {"status": "fail", "error": "Malformed request: 'd' must be a list", "code": 400})
        identities = [str(r.get("identity", "")) for r in batch]
        if "drop" in identities:
            raise NetworkFailure("timeout")
        if "boom" in identities:
            return Reply(500, "<html>Internal Server Error</html>")
        if "reject-batch" in identities:
            return Reply(400, {"status": "fail", "error": "Bad batch: too many records", "code": 400})
        unprocessed = []
        for k, record in enumerate(batch, start=1):
            if str(record.get("identity", "")).startswith("bad"):
                error = "Profile data is incorrect. Email is not valid."
                if self.upload_numbers:
                    error += f"Skipped record number : {k}"
                unprocessed.append({"status": "fail", "code": 515, "error": error, "record": record})
        processed = len(batch) - len(unprocessed)
        status = "success" if not unprocessed else ("partial" if processed else "fail")
        return Reply(200, {"status": status, "processed": processed, "unprocessed": unprocessed})


class _FakeTransport(httpx.AsyncBaseTransport):
    def __init__(self, app: QuirkyCleverTap) -> None:
        self._asgi = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._asgi.handle_async_request(request)
        except NetworkFailure as exc:
            if exc.kind == "timeout":
                raise httpx.ReadTimeout("timed out", request=request) from None
            raise httpx.ConnectError("connection refused", request=request) from None
