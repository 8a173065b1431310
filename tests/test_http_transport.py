"""Streamable HTTP: real subprocesses on free loopback ports, the SDK client, the guards, and replicas sharing Redis."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler
from types import SimpleNamespace
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from server.state.redis_store import RedisHandleStore
from server.transports.http import HostGuard, HttpOptions, RuntimePool, is_loopback
from tests.helpers import ROOT, child_env, day, err, make_runtime, ok, sandbox_http, server_command, serving
from tools.names import TOOL_NAMES

pytestmark = pytest.mark.anyio

TOKEN = "test-token-0123456789abcdef"
SECRET = "shared-consent-secret-for-tests"
ARGS = {"event_name": "Charged", "from": day(-30), "to": day(0)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            stderr = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"{what} exited with {proc.returncode}: {stderr}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start listening on {port}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def http_server(*flags: str, **env: str) -> Iterator[str]:
    """``clevertap-mcp --transport http`` in a subprocess; yields the /mcp URL."""
    port = _free_port()
    proc = subprocess.Popen(
        server_command(*flags, "--transport", "http", "--host", "127.0.0.1", "--port", str(port)),
        cwd=ROOT,
        env=child_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_port(port, proc, "clevertap-mcp --transport http")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        _stop(proc)
        if proc.stdout is not None:
            assert proc.stdout.read() == b"", "the HTTP transport must not write to stdout"


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not on PATH (apt-get install redis-server; .ci/clients.sh installs it)")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_port(port, proc, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc)


@contextlib.asynccontextmanager
async def http_client(
    url: str, *, token: str | None = TOKEN, mode: str = "legacy", headers: dict[str, str] | None = None
) -> AsyncIterator[Client]:
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    async with (
        httpx2.AsyncClient(headers=all_headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    with http_server("--sandbox", CLEVERTAP_MCP_HTTP_TOKEN=TOKEN) as url:
        yield url


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_initialize_list_and_call_over_http(sandbox_url: str, mode: str) -> None:
    async with http_client(sandbox_url, mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        tools = (await client.list_tools()).tools
        assert {t.name for t in tools} == set(TOOL_NAMES)
        count = ok(await client.call_tool("clevertap_get_event_count", ARGS))
        assert count["count"] > 0
        assert "calendar date" in err(await client.call_tool("clevertap_get_event_count", {**ARGS, "from": 20260230}))
        resources = (await client.list_resources()).resources
        assert {str(r.uri) for r in resources} == {"clevertap://catalog", "clevertap://regions", "clevertap://schema"}


async def test_missing_or_wrong_token_gets_401_json(sandbox_url: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=10) as http:
        missing = await http.post(sandbox_url, json=body, headers=headers)
        wrong = await http.post(sandbox_url, json=body, headers={**headers, "Authorization": "Bearer nope"})
        basic = await http.post(sandbox_url, json=body, headers={**headers, "Authorization": f"Basic {TOKEN}"})
    for response, error in ((missing, "missing_token"), (wrong, "invalid_token"), (basic, "missing_token")):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"] == error
        assert response.headers["www-authenticate"].startswith("Bearer ")
        assert TOKEN not in response.text


async def test_dns_rebinding_is_refused_before_auth(sandbox_url: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    auth = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=10) as http:
        bad_host = await http.post(sandbox_url, json=body, headers={**auth, "Host": "evil.example.com"})
        bad_origin = await http.post(sandbox_url, json=body, headers={**auth, "Origin": "http://evil.example.com"})
        good_origin = await http.post(sandbox_url, json=body, headers={**auth, "Origin": "http://localhost:3000"})
    assert bad_host.status_code == 421
    assert bad_origin.status_code == 403
    assert good_origin.status_code == 200, good_origin.text


def test_refuses_a_public_address_without_a_token() -> None:
    proc = subprocess.run(
        server_command("--sandbox", "--transport", "http", "--host", "0.0.0.0", "--port", "1"),
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "CLEVERTAP_MCP_HTTP_TOKEN" in proc.stderr
    assert proc.stdout == ""


@contextlib.contextmanager
def fake_membrane() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that records each request's Authorization header and answers 401."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            body = b'{"message": "invalid token"}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    with serving(Handler) as url:
        yield url, seen


async def test_membrane_token_header_selects_a_per_user_runtime() -> None:
    """No credentials on the deployment: without the header the tools say how to connect; with it they reach
    Membrane with the caller's own token, which never shows up in the answer."""
    user_token = "user-membrane-token-abcdef123456"
    with (
        fake_membrane() as (membrane_url, seen),
        http_server(CLEVERTAP_MCP_HTTP_TOKEN=TOKEN, MEMBRANE_API_URL=membrane_url) as url,
    ):
        async with http_client(url) as client:
            plain = err(await client.call_tool("clevertap_get_event_count", ARGS))
        assert seen == []
        async with http_client(url, headers={"X-Membrane-Token": user_token}) as client:
            user = err(await client.call_tool("clevertap_get_event_count", ARGS))
    assert plain.startswith("Configuration error"), plain
    assert seen and all(h == f"Bearer {user_token}" for h in seen), seen
    assert not user.startswith("Internal error"), user
    assert user_token not in user


async def test_two_replicas_share_cursor_handles_and_confirmations_through_redis() -> None:
    """Both replicas use the clevertap backend against one shared sandbox API, as they would share CleverTap."""
    with redis_server() as redis_url, sandbox_http() as base_url:
        env = {
            "CLEVERTAP_MCP_HTTP_TOKEN": TOKEN,
            "CLEVERTAP_MCP_REDIS_URL": redis_url,
            "CLEVERTAP_MCP_SECRET": SECRET,
            "CLEVERTAP_ACCOUNT_ID": "DEMO-SANDBOX",
            "CLEVERTAP_PASSCODE": "sandbox",
            "CLEVERTAP_API_BASE_URL": base_url,
        }
        with http_server(**env) as url_a, http_server(**env) as url_b:
            async with http_client(url_a) as a, http_client(url_b) as b:
                first = ok(await a.call_tool("clevertap_get_events", {**ARGS, "batch_size": 5}))
                assert first["records"] and first["cursor"] and not first["done"]
                assert len(first["cursor"]) < 40  # a short handle, not CleverTap's cursor
                second = ok(await b.call_tool("clevertap_get_events_by_cursor", {"cursor": first["cursor"]}))
                assert second["records"]
                assert second["records"] != first["records"]

                preview = ok(await a.call_tool("clevertap_delete_user_profile", {"identity": "no-such-user@x"}))
                assert preview.get("confirm_token")
                confirmed = ok(
                    await b.call_tool(
                        "clevertap_delete_user_profile",
                        {"identity": "no-such-user@x", "confirm_token": preview["confirm_token"]},
                    )
                )
                assert confirmed["deleted"] is True


async def test_redis_store_round_trip_and_expiry() -> None:
    import redis.asyncio as aioredis

    with redis_server() as redis_url:
        store = RedisHandleStore.from_url(redis_url, ttl_s=60)
        other = RedisHandleStore(aioredis.Redis.from_url(redis_url))
        try:
            await store.ping()
            handle = await store.put({"cursor": "x" * 3000, "path": "/1/events.json"})
            assert handle.startswith("ct_") and len(handle) < 20
            assert await other.get(handle) == {"cursor": "x" * 3000, "path": "/1/events.json"}
            assert await other.get("ct_unknownhandle") is None
            assert await other.get("not a handle *") is None
            raw = aioredis.Redis.from_url(redis_url)
            ttl = await raw.ttl("clevertap-mcp:handle:" + handle)
            assert 0 < ttl <= 60
            await raw.aclose()
        finally:
            await store.aclose()
            await other.aclose()


async def test_redis_store_reports_an_unreachable_server_as_a_tool_failure() -> None:
    from tools.errors import ConfigurationError

    store = RedisHandleStore.from_url(f"redis://127.0.0.1:{_free_port()}/0")
    try:
        with pytest.raises(ConfigurationError, match="unreachable"):
            await store.put({"a": 1})
        with pytest.raises(ConfigurationError):
            await store.get("ct_abcdefghijkl")
    finally:
        await store.aclose()


# -- in-process units -------------------------------------------------------------------------------------------------
def _ctx(headers: dict[str, str] | None) -> Any:
    return SimpleNamespace(request=None if headers is None else SimpleNamespace(headers=headers))


async def test_runtime_pool_caches_by_token_and_stays_bounded() -> None:
    base = make_runtime(backend="auto")
    pool = RuntimePool(base, max_items=2)
    assert pool.resolve(_ctx(None)) is base
    assert pool.resolve(_ctx({})) is base
    assert pool.resolve(_ctx({"x-membrane-token": "  "})) is base
    alice = pool.resolve(_ctx({"x-membrane-token": "alice-token-123456"}))
    assert alice is not base and alice.backend == "membrane"
    assert alice.settings.membrane_token is not None
    assert alice.settings.membrane_token.get_secret_value() == "alice-token-123456"
    assert pool.resolve(_ctx({"x-membrane-token": "alice-token-123456"})) is alice
    pool.resolve(_ctx({"x-membrane-token": "bob-token-1234567"}))
    pool.resolve(_ctx({"x-membrane-token": "carol-token-123456"}))
    assert len(pool) == 2
    assert pool.resolve(_ctx({"x-membrane-token": "alice-token-123456"})) is not alice


async def test_runtime_pool_ignores_the_header_on_a_non_membrane_deployment() -> None:
    base = make_runtime(backend="sandbox")
    pool = RuntimePool(base)
    assert pool.resolve(_ctx({"x-membrane-token": "alice-token-123456"})) is base


def test_host_guard_allow_list() -> None:
    guard = HostGuard(app=None, allowed_hosts=("mcp.example.com", "api.example.org:8443"))  # type: ignore[arg-type]
    for host in ("localhost", "localhost:8000", "127.0.0.1:1", "[::1]:8000", "[::1]", "MCP.example.com:443"):
        assert guard.allows(host), host
    for host in ("evil.com", "127.0.0.2", "localhost.evil.com", "api.example.org", "api.example.org:443", ""):
        assert not guard.allows(host), host
    assert HostGuard(app=None, allowed_hosts=("*",)).disabled  # type: ignore[arg-type]


def test_options_from_env_and_start_checks() -> None:
    opts = HttpOptions.from_env(
        "0.0.0.0",
        9000,
        {"CLEVERTAP_MCP_ALLOWED_HOSTS": " a.example , B.example:443 ,", "CLEVERTAP_MCP_HTTP_TOKEN": " "},
    )
    assert opts.allowed_hosts == ("a.example", "b.example:443")
    assert opts.token is None
    assert opts.problems()
    assert not HttpOptions(host="0.0.0.0", token="x" * 32).problems()
    assert HttpOptions(host="127.0.0.1", token="short").problems()
    assert not HttpOptions(host="127.0.0.1").problems()
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")
