"""Planned faults for any ASGI app: error statuses, slow, dropped, malformed, truncated or cut answers.

``FaultInjector`` wraps an ASGI app (the sandbox, or a test fake such as the fake Membrane API) and applies the first
planned ``Fault`` that matches a request instead of, or on top of, the app's own answer. Only the error bodies differ
between the APIs it stands in for; they are a parameter.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import anyio

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# What a planned fault does to a request it matches:
#   "429", "500", "503": answer that status (the API's error body; Retry-After when ``retry_after`` is set);
#   "slow": wait ``delay_s``, then answer normally;
#   "drop": close the connection without an answer (a transport error for the client);
#   "malformed": answer HTTP 200 with a body that is not JSON;
#   "truncated": answer the real body cut in half (Content-Length matches the half: the JSON is cut);
#   "cut": announce the real body's length, send half of it, then close the connection;
#   "apply_then_500" / "apply_then_drop": handle the request (an upload is stored), then answer 500 / drop.
FAULT_KINDS = (
    "429",
    "500",
    "503",
    "slow",
    "drop",
    "malformed",
    "truncated",
    "cut",
    "apply_then_500",
    "apply_then_drop",
)
# The kinds that answer (or drop) a request without handing it to the app.
ANSWERED_HERE = frozenset({"429", "500", "503", "drop", "malformed"})
ERROR_TEXT = {429: "Too many requests", 500: "Internal server error", 503: "Service Unavailable"}
MALFORMED = b'{"status": "success", "count": 12,, <html>oops'


@dataclass
class Fault:
    """One planned fault for the requests whose path is ``path`` or lies under it (every path when None) and, when
    given, whose method is ``method``; it applies to the next ``times`` matching requests (None: until removed).

    "Under" goes by path segments: ``/1/counts`` and ``/1/counts/`` both cover ``/1/counts/events.json``, and
    ``/act`` covers ``/act`` but not ``/actions``.
    """

    kind: str
    times: int | None = 1
    path: str | None = None
    method: str | None = None
    retry_after: float | None = None
    delay_s: float = 5.0

    def __post_init__(self) -> None:
        self.kind = str(self.kind)
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}: use one of {', '.join(FAULT_KINDS)}")
        if self.times is not None:
            self.times = int(self.times)
            if self.times < 1:
                raise ValueError("fault 'times' must be at least 1 (or null: until removed)")
        if self.method is not None:
            self.method = str(self.method).upper()
        if self.retry_after is not None:
            self.retry_after = float(self.retry_after)
        self.delay_s = float(self.delay_s)

    @classmethod
    def parse(cls, value: Any) -> Fault:
        """A Fault from itself, a JSON object with the same fields, or a bare kind string."""
        if isinstance(value, Fault):
            return value
        if isinstance(value, str | int):
            return cls(kind=str(value))
        if not isinstance(value, Mapping):
            raise ValueError(f"a fault must be an object with a 'kind', not {value!r}")
        unknown = set(value) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        return cls(**dict(value))

    @property
    def reaches_app(self) -> bool:
        """Whether the request this fault takes is handed to the app (slow, cut, truncated, applied) or not."""
        return self.kind not in ANSWERED_HERE

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.path is None or path == self.path:
            return True
        return path.startswith(self.path if self.path.endswith("/") else self.path + "/")


def clevertap_error(status: int) -> bytes:
    """CleverTap's error envelope for a faulted status."""
    return b'{"status":"fail","error":"%s","code":%d}' % (ERROR_TEXT[status].encode(), status)


class ConnectionDropped(Exception):
    """Raised where no socket can be cut (in-process ASGI without httpx)."""


async def drop_connection(send: Send) -> None:
    """Close the connection without (the rest of) an answer.

    Under uvicorn the socket is aborted (the client sees a reset or an incomplete answer). In process (httpx's
    ASGITransport re-raises what the app raises) httpx's RemoteProtocolError stands for the cut connection.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    if callable(abort):
        abort()
        await anyio.sleep(0.05)  # let the server see the connection is gone before the app returns
        return
    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx is a dependency of the server
        raise ConnectionDropped("the connection was dropped") from None
    raise httpx.RemoteProtocolError("Server disconnected without sending a complete response.")


async def send_body(
    send: Send,
    status: int,
    data: bytes,
    *,
    content_type: bytes = b"application/json;charset=utf-8",
    extra: Sequence[tuple[bytes, bytes]] = (),
    length: int | None = None,
    more_body: bool = False,
) -> None:
    """One complete HTTP answer (or its first part, with ``more_body``)."""
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(data) if length is None else length).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *extra]})
    await send({"type": "http.response.body", "body": data, "more_body": more_body})


class FaultInjector:
    """ASGI middleware applying planned faults (see ``FAULT_KINDS``) to the HTTP requests they match.

    ``faults`` is the plan (a list, or a callable returning the current list when the owner may replace it); a fault
    with ``times`` is removed once used up. ``error_body(status)`` gives the bytes of a faulted 429/500/503 answer;
    ``exempt(path)`` keeps paths (admin endpoints) out of the plan; ``on_fault(scope, fault)`` is told of every fault
    taken (a fake that logs its requests logs the ones its app never sees, see ``Fault.reaches_app``).
    """

    def __init__(
        self,
        app: ASGIApp,
        faults: list[Fault] | Callable[[], list[Fault]],
        *,
        error_body: Callable[[int], bytes] = clevertap_error,
        exempt: Callable[[str], bool] = lambda path: False,
        lock: threading.Lock | None = None,
        on_fault: Callable[[Scope, Fault], None] | None = None,
    ) -> None:
        self.app = app
        self._faults = faults
        self.error_body = error_body
        self.exempt = exempt
        self.lock = lock or threading.Lock()
        self.on_fault = on_fault

    def plan(self) -> list[Fault]:
        return self._faults() if callable(self._faults) else self._faults

    def take(self, method: str, path: str) -> Fault | None:
        """Consume the first planned fault that matches (None: answer normally)."""
        if self.exempt(path):
            return None
        with self.lock:
            plan = self.plan()
            for i, fault in enumerate(plan):
                if fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            del plan[i]
                    return fault
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fault = self.take(scope["method"].upper(), scope["path"]) if scope["type"] == "http" else None
        if fault is None:
            await self.app(scope, receive, send)
            return
        if self.on_fault is not None:
            self.on_fault(scope, fault)
        kind = fault.kind
        if kind in ANSWERED_HERE or kind == "slow":
            body = await _read_body(receive)  # read the request first, as a server does before it answers
            if kind == "drop":
                await drop_connection(send)
            elif kind == "malformed":
                await send_body(send, 200, MALFORMED)
            elif kind == "slow":
                await anyio.sleep(fault.delay_s)
                await self.app(scope, _replay(body), send)
            else:
                status = int(kind)
                extra = [] if fault.retry_after is None else [(b"retry-after", f"{fault.retry_after:g}".encode())]
                await send_body(send, status, self.error_body(status), extra=extra)
            return
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)
        if kind == "apply_then_drop":
            await drop_connection(send)
            return
        if kind == "apply_then_500":
            await send_body(send, 500, self.error_body(500))
            return
        start = next(m for m in captured if m["type"] == "http.response.start")
        content_type = dict(start.get("headers", [])).get(b"content-type", b"application/json")
        data = b"".join(m.get("body", b"") for m in captured if m["type"] == "http.response.body")
        half = data[: len(data) // 2]
        if kind == "truncated":
            await send_body(send, start["status"], half, content_type=content_type)
            return
        await send_body(send, start["status"], half, content_type=content_type, length=len(data), more_body=True)
        await drop_connection(send)


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def _replay(body: bytes) -> Receive:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
