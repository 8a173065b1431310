"""Streamable HTTP transport: MCP at ``/mcp``, stateless, so any replica behind a load balancer can answer any request.

Guards, outermost first:
* DNS-rebinding protection: the Host header (and Origin, when sent) must name localhost, 127.0.0.1, [::1] or a host
  listed in ``CLEVERTAP_MCP_ALLOWED_HOSTS`` (421 / 403 otherwise);
* a bearer token from ``CLEVERTAP_MCP_HTTP_TOKEN`` (401 JSON otherwise), required on any non-loopback address.

State that must survive a request landing on another replica: cursor handles (``CLEVERTAP_MCP_REDIS_URL`` puts them
in Redis) and confirmation tokens (self-contained HMAC values: every replica needs the same ``CLEVERTAP_MCP_SECRET``).
A request header ``X-Membrane-Token`` selects a runtime of that user's own (cached by a SHA-256 of the token), so
one deployment serves many users, each with their own Membrane connection.
"""

from __future__ import annotations

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

from server.policies.scrub import Scrubber
from server.runtime import Runtime
from tools.api import HandleStore

log = logging.getLogger("clevertap_mcp.http")

TOKEN_ENV = "CLEVERTAP_MCP_HTTP_TOKEN"
ALLOWED_HOSTS_ENV = "CLEVERTAP_MCP_ALLOWED_HOSTS"
REDIS_URL_ENV = "CLEVERTAP_MCP_REDIS_URL"
SECRET_ENV = "CLEVERTAP_MCP_SECRET"
MEMBRANE_TOKEN_HEADER = "x-membrane-token"
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


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


@dataclass(frozen=True)
class HttpOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    # Extra Host names ("mcp.example.com" any port, "mcp.example.com:443" exactly); "*" turns the check off.
    allowed_hosts: tuple[str, ...] = ()
    redis_url: str | None = None
    max_user_runtimes: int = 64

    @classmethod
    def from_env(cls, host: str, port: int, env: Mapping[str, str] | None = None) -> HttpOptions:
        env = os.environ if env is None else env
        hosts = tuple(h.strip().lower() for h in (_env(env, ALLOWED_HOSTS_ENV) or "").split(",") if h.strip())
        return cls(
            host=host,
            port=port,
            token=_env(env, TOKEN_ENV),
            allowed_hosts=hosts,
            redis_url=_env(env, REDIS_URL_ENV),
        )

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


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


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


class RuntimePool:
    """The runtime for each request: the deployment's own, or one per ``X-Membrane-Token`` (bounded LRU).

    Per-user runtimes reuse the deployment's settings with the caller's Membrane token (and none of the deployment's
    own Membrane credentials), and share its handle store. An evicted runtime is closed after a grace period so
    that a call still running on it can finish.
    """

    def __init__(
        self, base: Runtime, *, handles: HandleStore | None = None, max_items: int = 64, close_grace_s: float = 300.0
    ) -> None:
        self.base = base
        self.handles = handles
        self._max = max_items
        self._grace = close_grace_s
        self._items: OrderedDict[str, Runtime] = OrderedDict()
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

    def for_token(self, token: str) -> Runtime:
        key = hashlib.sha256(token.encode()).hexdigest()
        runtime = self._items.get(key)
        if runtime is not None:
            self._items.move_to_end(key)
            return runtime
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
        self._items[key] = runtime
        while len(self._items) > self._max:
            _, evicted = self._items.popitem(last=False)
            self._retire(evicted)
        return runtime

    def resolve(self, ctx: Any) -> Runtime:
        """``App``'s ``runtime_for``: reads ``X-Membrane-Token`` from the HTTP request behind ``ctx``."""
        headers = getattr(getattr(ctx, "request", None), "headers", None)
        token = headers.get(MEMBRANE_TOKEN_HEADER) if headers is not None else None
        if not token or not token.strip():
            return self.base
        if not self.honours_user_tokens:
            log.debug("ignoring X-Membrane-Token: this deployment uses the %s backend", self.base.backend)
            return self.base
        return self.for_token(token.strip())

    def _retire(self, runtime: Runtime) -> None:
        if self._task_group is None:
            return
        self._closing.add(runtime)

        async def close_later() -> None:
            await anyio.sleep(self._grace)
            await self._close(runtime)

        self._task_group.start_soon(close_later)

    async def _close(self, runtime: Runtime) -> None:
        self._closing.discard(runtime)
        try:
            await runtime.aclose()
        except Exception:
            log.debug("closing a runtime failed", exc_info=True)

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
                    for runtime in [*self._items.values(), *self._closing, self.base]:
                        await self._close(runtime)
                    self._items.clear()
                    close = getattr(self.handles, "aclose", None)
                    if close is not None:
                        await close()


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

    pool = RuntimePool(runtime, handles=handles, max_items=options.max_user_runtimes)
    server, _ = build_server(runtime, runtime_for=pool.resolve)
    manager = StreamableHTTPSessionManager(server, json_response=True, stateless=True)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await _check_store(handles)
        async with pool.running(), manager.run():
            yield

    starlette = Starlette(routes=[Route(MCP_PATH, endpoint=_AsgiEndpoint(manager.handle_request))], lifespan=lifespan)
    app: ASGIApp = starlette
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
        app, host=options.host, port=options.port, log_level="warning", lifespan="on", server_header=False
    )
    print(f"clevertap-mcp: serving MCP at http://{_url_host(options.host)}:{options.port}{MCP_PATH}", file=sys.stderr)
    uvicorn.Server(config).run()
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
