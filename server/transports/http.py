"""Streamable HTTP transport: MCP at ``/mcp``, stateless, so any replica behind a load balancer can answer any request.

Guards, outermost first:
* DNS-rebinding protection: the Host header (and Origin, when sent) must name localhost, 127.0.0.1, [::1] or a host
  listed in ``CLEVERTAP_MCP_ALLOWED_HOSTS`` (421 / 403 otherwise);
* a bearer token from ``CLEVERTAP_MCP_HTTP_TOKEN`` (401 JSON otherwise), required on any non-loopback address.

State that must survive a request landing on another replica: cursor handles (``CLEVERTAP_MCP_REDIS_URL`` puts them
in Redis) and confirmation tokens (HMAC-signed, so every replica needs the same ``CLEVERTAP_MCP_SECRET``; each is
spent once, in Redis when it is configured, and is void for any other user).
A request header ``X-Membrane-Token`` selects a runtime of that user's own (cached by a SHA-256 of the token), so
one deployment serves many users, each with their own Membrane connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import sys
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.abc
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from server.config import Settings, declared, load_settings
from server.policies.scrub import Scrubber
from server.runtime import Runtime
from tools.api import HandleStore

log = logging.getLogger("clevertap_mcp.http")

# The variables named in start-up messages, as the settings declare them.
TOKEN_ENV = declared("http_token").env
ALLOWED_HOSTS_ENV = declared("allowed_hosts").env
REDIS_URL_ENV = declared("redis_url").env
SECRET_ENV = declared("consent_secret").env
MEMBRANE_TOKEN_HEADER = "x-membrane-token"
_HELD_RUNTIME = "clevertap_mcp.runtime"  # ASGI scope key: the per-user runtime a request holds
MCP_PATH = "/mcp"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def is_loopback(host: str) -> bool:
    """True for a bind address only this machine can reach (``localhost``, 127.0.0.0/8, ``::1``)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _default(name: str) -> Any:
    """A setting's declared default: HttpOptions built by hand (tests) match what the settings give."""
    return Settings.model_fields[name].default


@dataclass(frozen=True)
class HttpOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    # Extra Host names ("mcp.example.com" any port, "mcp.example.com:443" exactly); "*" turns the check off.
    allowed_hosts: tuple[str, ...] = ()
    redis_url: str | None = None
    # Per-user runtimes (X-Membrane-Token): at most this many, and idle ones are dropped while the process is over
    # the memory budget.
    max_user_runtimes: int = _default("max_user_runtimes")
    user_runtimes_memory_mb: int = _default("user_runtimes_memory_mb")
    # Seconds: an idle keep-alive connection, a request's headers, and each wait for more of its body.
    idle_timeout_s: float = _default("http_idle_timeout_s")
    header_timeout_s: float = _default("http_header_timeout_s")
    body_timeout_s: float = _default("http_body_timeout_s")
    max_body_bytes: int = _default("max_frame_bytes")

    @classmethod
    def from_settings(cls, settings: Settings, host: str, port: int) -> HttpOptions:
        """The transport's options: the bind address from the command line, everything else from the settings."""
        token, redis_url = settings.http_token, settings.redis_url
        return cls(
            host=host,
            port=port,
            token=token.get_secret_value() if token is not None else None,
            allowed_hosts=tuple(h.lower() for h in settings.allowed_hosts),
            redis_url=redis_url.get_secret_value() if redis_url is not None else None,
            max_user_runtimes=settings.max_user_runtimes,
            user_runtimes_memory_mb=settings.user_runtimes_memory_mb,
            idle_timeout_s=settings.http_idle_timeout_s,
            header_timeout_s=settings.http_header_timeout_s,
            body_timeout_s=settings.http_body_timeout_s,
            max_body_bytes=settings.max_frame_bytes,
        )

    @classmethod
    def from_env(cls, host: str, port: int, env: Mapping[str, str] | None = None) -> HttpOptions:
        """``from_settings`` for the settings read from ``env`` (default: the process environment)."""
        return cls.from_settings(load_settings(env), host, port)

    def problems(self) -> list[str]:
        """Reasons to refuse to start."""
        if self.token is None and not is_loopback(self.host):
            return [
                f"refusing to serve on {self.host} without a bearer token: set {TOKEN_ENV} "
                "(clients send 'Authorization: Bearer <token>'), or bind to 127.0.0.1"
            ]
        if self.token is not None and len(self.token) < 16:
            return [f"{TOKEN_ENV} is too short: use at least 16 random characters (e.g. `openssl rand -hex 32`)"]
        return []


# -- guards -----------------------------------------------------------------------------------------------------------
def _split_host(value: str) -> tuple[str, str | None]:
    """``host[:port]`` (IPv6 in brackets) -> (lowercased host, port or None)."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return value, None
        rest = value[end + 1 :]
        return value[: end + 1], rest[1:] if rest.startswith(":") else None
    name, sep, port = value.rpartition(":")
    return (name, port) if sep and port.isdigit() else (value, None)


class HostGuard:
    """DNS-rebinding protection: refuse requests whose Host or Origin names a host this server was not told about."""

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...] = ()) -> None:
        self.app = app
        self.disabled = "*" in allowed_hosts
        self.names = set(LOOPBACK_NAMES)
        self.exact: set[str] = set()
        for entry in allowed_hosts:
            host, port = _split_host(entry)
            if port is None:
                self.names.add(host)
            else:
                self.exact.add(f"{host}:{port}")

    def allows(self, host_header: str) -> bool:
        host, port = _split_host(host_header)
        return host in self.names or (port is not None and f"{host}:{port}" in self.exact)

    def _origin_allowed(self, origin: str) -> bool:
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and bool(parts.netloc) and self.allows(parts.netloc)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.disabled:
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = headers.get("host", "")
        if not host or not self.allows(host):
            log.warning("refused a request for Host %r (DNS-rebinding protection)", host[:100])
            await _json_response(send, 421, {"error": "misdirected_request", "message": "Invalid Host header."})
            return
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin):
            log.warning("refused a request from Origin %r (DNS-rebinding protection)", origin[:100])
            await _json_response(send, 403, {"error": "forbidden", "message": "Invalid Origin header."})
            return
        await self.app(scope, receive, send)


class BearerAuth:
    """Require ``Authorization: Bearer <token>``, compared in constant time."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        value = _headers(scope).get("authorization", "")
        scheme, _, given = value.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            await _unauthorized(send, "missing_token", "Send 'Authorization: Bearer <token>'.")
            return
        if not hmac.compare_digest(given.strip().encode(), self._token):
            await _unauthorized(send, "invalid_token", "The bearer token is not valid for this server.")
            return
        await self.app(scope, receive, send)


_HEADERS_KEY = "clevertap_mcp.headers"


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name, decoded once per request for all the guards."""
    cached: dict[str, str] | None = scope.get(_HEADERS_KEY)
    if cached is None:
        cached = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        scope[_HEADERS_KEY] = cached
    return cached


async def _json_response(
    send: Send, status: int, body: dict[str, Any], extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra_headers or [])})
    await send({"type": "http.response.body", "body": payload})


async def _unauthorized(send: Send, error: str, message: str) -> None:
    challenge = f'Bearer realm="clevertap-mcp", error="{error}"'.encode()
    await _json_response(send, 401, {"error": error, "message": message}, [(b"www-authenticate", challenge)])


# -- per-user runtimes ------------------------------------------------------------------------------------------------
def _attach(runtime: Runtime, handles: HandleStore) -> None:
    """Give ``runtime`` the shared handle store (``Runtime.handles`` is typed as its in-memory default)."""
    runtime.handles = handles


def _rss_mb() -> float | None:
    """This process's resident memory now (Linux ``/proc``), or None where that cannot be read."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        return None


class _Entry:
    __slots__ = ("runtime", "users")

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.users = 0


class RuntimePool:
    """The runtime for each request: the deployment's own, or one per ``X-Membrane-Token`` (bounded LRU).

    Per-user runtimes reuse the deployment's settings with the caller's Membrane token (and none of the deployment's
    own Membrane credentials), and share its handle store. Bounds: at most ``max_items``, and while the process is
    over ``memory_mb`` a new one first drops every idle one. An evicted runtime is closed and forgotten at once, or,
    when requests are still using it (``checkout``/``checkin`` around each HTTP request), as the last one ends.
    """

    def __init__(
        self,
        base: Runtime,
        *,
        handles: HandleStore | None = None,
        max_items: int = 64,
        memory_mb: int | None = None,
    ) -> None:
        self.base = base
        self.handles = handles
        self._max = max_items
        self._memory_mb = memory_mb
        self._items: OrderedDict[str, _Entry] = OrderedDict()
        self._pending: set[_Entry] = set()  # evicted, still used by a request: closed when the last one ends
        self._closing: set[Runtime] = set()
        self._task_group: anyio.abc.TaskGroup | None = None
        if handles is not None:
            _attach(base, handles)

    @property
    def honours_user_tokens(self) -> bool:
        """Only a deployment that (may) use Membrane lets a caller bring their own Membrane token."""
        return self.base.settings.backend in ("auto", "membrane")

    def __len__(self) -> int:
        return len(self._items)

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def _entry(self, token: str) -> _Entry:
        key = self._key(token)
        entry = self._items.get(key)
        if entry is not None:
            self._items.move_to_end(key)
            return entry
        self._relieve_memory()
        settings = self.base.settings.model_copy(
            update={
                "backend": "membrane",
                "membrane_token": SecretStr(token),
                "membrane_workspace_key": None,
                "membrane_workspace_secret": None,
                "membrane_tenant_key": None,
                "membrane_connection_id": None,
            }
        )
        runtime = Runtime(settings, scrubber=Scrubber())
        if self.handles is not None:
            _attach(runtime, self.handles)
        entry = self._items[key] = _Entry(runtime)
        while len(self._items) > self._max:
            _, oldest = self._items.popitem(last=False)
            self._evict(oldest)
        return entry

    def for_token(self, token: str) -> Runtime:
        return self._entry(token).runtime

    def checkout(self, token: str) -> str:
        """Mark the token's runtime in use by one more request; returns the key to ``checkin`` with."""
        self._entry(token).users += 1
        return self._key(token)

    def checkin(self, key: str, runtime: Runtime) -> None:
        entry = self._items.get(key)
        if entry is not None and entry.runtime is runtime:
            entry.users -= 1
            return
        # Evicted while the request ran: this entry is no longer in the table.
        for pending in list(self._pending):
            if pending.runtime is runtime:
                pending.users -= 1
                if pending.users <= 0:
                    self._pending.discard(pending)
                    self._start_close(runtime)

    def _evict(self, entry: _Entry) -> None:
        if entry.users > 0:
            self._pending.add(entry)
        else:
            self._start_close(entry.runtime)

    def _relieve_memory(self) -> None:
        if self._memory_mb is None:
            return
        rss = _rss_mb()
        if rss is None or rss <= self._memory_mb:
            return
        idle = [key for key, entry in self._items.items() if entry.users == 0]
        log.warning(
            "process memory %.0f MiB is over the per-user runtime budget of %d MiB: dropping %d idle runtimes",
            rss,
            self._memory_mb,
            len(idle),
        )
        for key in idle:
            self._evict(self._items.pop(key))

    def resolve(self, ctx: Any) -> Runtime:
        """``App``'s ``runtime_for``: reads ``X-Membrane-Token`` from the HTTP request behind ``ctx``."""
        request = getattr(ctx, "request", None)
        held = getattr(request, "scope", {}).get(_HELD_RUNTIME) if request is not None else None
        if isinstance(held, Runtime):
            return held  # the one PoolScope holds for this request, even if evicted since
        headers = getattr(request, "headers", None)
        token = headers.get(MEMBRANE_TOKEN_HEADER) if headers is not None else None
        if not token or not token.strip():
            return self.base
        if not self.honours_user_tokens:
            log.debug("ignoring X-Membrane-Token: this deployment uses the %s backend", self.base.backend)
            return self.base
        return self.for_token(token.strip())

    def _start_close(self, runtime: Runtime) -> None:
        if self._task_group is None:
            return
        self._closing.add(runtime)
        self._task_group.start_soon(self._close, runtime)

    async def _close(self, runtime: Runtime) -> None:
        try:
            await runtime.aclose()
        except Exception:
            log.debug("closing a runtime failed", exc_info=True)
        finally:
            self._closing.discard(runtime)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            self._task_group = tg
            try:
                yield
            finally:
                self._task_group = None
                tg.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    entries = [e.runtime for e in [*self._items.values(), *self._pending]]
                    for runtime in [*entries, *self._closing, self.base]:
                        await self._close(runtime)
                    self._items.clear()
                    self._pending.clear()
                    close = getattr(self.handles, "aclose", None)
                    if close is not None:
                        await close()


class PoolScope:
    """Holds the caller's per-user runtime for the whole HTTP request, so that eviction never closes it mid-call."""

    def __init__(self, app: ASGIApp, pool: RuntimePool) -> None:
        self.app = app
        self.pool = pool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _headers(scope).get(MEMBRANE_TOKEN_HEADER, "").strip() if scope["type"] == "http" else ""
        if not token or not self.pool.honours_user_tokens:
            await self.app(scope, receive, send)
            return
        key = self.pool.checkout(token)
        runtime = self.pool.for_token(token)
        try:
            await self.app({**scope, _HELD_RUNTIME: runtime}, receive, send)
        finally:
            self.pool.checkin(key, runtime)


class BodyGuard:
    """Reads a request body before the application does: larger than ``max_bytes`` gets 413, a client that stops
    sending for ``timeout_s`` gets 408; the body is then replayed to the application as it came."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _headers(scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message: Any = None
            with anyio.move_on_after(self.timeout_s):
                message = await receive()
            if message is None:
                await _json_response(
                    send,
                    408,
                    {"error": "request_timeout", "message": f"No body data for {self.timeout_s:g} s."},
                    [(b"connection", b"close")],
                )
                return
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(body)
            more = bool(message.get("more_body", False))
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        await _json_response(
            send,
            413,
            {
                "error": "payload_too_large",
                "message": f"The request body is larger than {self.max_bytes} bytes (CLEVERTAP_MCP_MAX_FRAME_BYTES).",
            },
            [(b"connection", b"close")],
        )


def bounded_h11_protocol(header_timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request headers do not arrive in ``header_timeout_s``
    (uvicorn itself waits forever for a request that was opened and never finished, or never started)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class BoundedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self.conn.their_state is h11.IDLE:
                self._arm()
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(header_timeout_s, self._expired)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expired(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    return BoundedH11Protocol


# -- the application --------------------------------------------------------------------------------------------------
def build_handle_store(options: HttpOptions) -> HandleStore | None:
    if options.redis_url is None:
        return None
    from server.state.redis_store import RedisHandleStore

    return RedisHandleStore.from_url(options.redis_url)


def build_http_app(runtime: Runtime, options: HttpOptions, *, handles: HandleStore | None = None) -> ASGIApp:
    """The ASGI application: guards around the SDK's stateless Streamable HTTP session manager at ``/mcp``."""
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from starlette.applications import Starlette
    from starlette.routing import Route

    from server.protocol.app import build_server

    pool = RuntimePool(
        runtime, handles=handles, max_items=options.max_user_runtimes, memory_mb=options.user_runtimes_memory_mb
    )
    server, _ = build_server(runtime, runtime_for=pool.resolve)
    manager = StreamableHTTPSessionManager(server, json_response=True, stateless=True)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await _check_store(handles)
        async with pool.running(), manager.run():
            yield

    endpoint = _AsgiEndpoint(PoolScope(manager.handle_request, pool))
    starlette = Starlette(routes=[Route(MCP_PATH, endpoint=endpoint)], lifespan=lifespan)
    app: ASGIApp = BodyGuard(starlette, options.max_body_bytes, options.body_timeout_s)
    if options.token is not None:
        app = BearerAuth(app, options.token)
    return HostGuard(app, options.allowed_hosts)


async def _check_store(handles: HandleStore | None) -> None:
    ping = getattr(handles, "ping", None)
    if ping is None:
        return
    try:
        await ping()
    except Exception as exc:
        print(
            f"clevertap-mcp: warning: the Redis handle store does not answer ({type(exc).__name__}); cursor tools "
            "will fail until it does.",
            file=sys.stderr,
        )


class _AsgiEndpoint:
    """Marks a plain ASGI callable as an app for starlette's ``Route`` (it calls non-functions as ASGI apps)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def serve_http(runtime: Runtime, options: HttpOptions) -> int:
    """Run uvicorn until interrupted. Returns the process exit code."""
    problems = options.problems()
    if problems:
        for problem in problems:
            print(f"clevertap-mcp: {problem}", file=sys.stderr)
        return 2
    if options.token is None:
        print(
            f"clevertap-mcp: serving without a bearer token on {options.host} (loopback only); set {TOKEN_ENV} "
            "to require one.",
            file=sys.stderr,
        )
    if runtime.settings.consent_secret is None:
        print(
            f"clevertap-mcp: warning: {SECRET_ENV} is not set, so confirmation tokens are signed with a random key "
            "that only this process knows; replicas behind a load balancer must share one secret.",
            file=sys.stderr,
        )
    try:
        handles = build_handle_store(options)
    except RuntimeError as exc:
        print(f"clevertap-mcp: {exc}", file=sys.stderr)
        return 2
    if handles is None:
        print(
            f"clevertap-mcp: cursor handles are kept in this process; set {REDIS_URL_ENV} when running several "
            "replicas.",
            file=sys.stderr,
        )
    import uvicorn

    from server.codec.gcpause import settle_for_serving

    app = build_http_app(runtime, options, handles=handles)
    settle_for_serving()
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        log_level="warning",
        lifespan="on",
        server_header=False,
        http=bounded_h11_protocol(options.header_timeout_s),
        timeout_keep_alive=max(1, round(options.idle_timeout_s)),
    )
    print(f"clevertap-mcp: serving MCP at http://{_url_host(options.host)}:{options.port}{MCP_PATH}", file=sys.stderr)
    uvicorn.Server(config).run()
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
