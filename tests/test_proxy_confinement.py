"""clevertap_request stays inside the configured CleverTap API, through MCP, on the direct backend.

The emulator is served over real HTTP behind a recorder, so each test sees exactly what reached it (raw path, raw
query string, headers, body size): refused paths must send nothing, and query or body values must never become
headers, other parameters, or other credentials.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
from mcp import Client

from server.backends.sandbox import SandboxConfig, create_app
from tests.fakes.membrane import serve_asgi
from tests.helpers import err, make_runtime, mcp_client, ok

pytestmark = pytest.mark.anyio

ACCOUNT, PASSCODE = "DEMO-SANDBOX", "proxy-test-passcode-0123456789"


@dataclass
class Seen:
    method: str
    raw_path: bytes
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""

    def header(self, name: str) -> list[str]:
        return [v.decode("latin-1") for k, v in self.headers if k.decode("latin-1").lower() == name.lower()]

    def params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query.decode("latin-1"), keep_blank_values=True)


@dataclass
class Recorder:
    app: Any
    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        entry = Seen(scope["method"], scope.get("raw_path") or b"", scope.get("query_string", b""), scope["headers"])
        self.seen.append(entry)

        async def recording_receive() -> Any:
            message = await receive()
            if message.get("type") == "http.request":
                entry.body += message.get("body", b"")
            return message

        await self.app(scope, recording_receive, send)


@pytest.fixture(scope="module")
def emulator() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder(create_app(SandboxConfig(account_id=ACCOUNT, passcode=PASSCODE)))
    with serve_asgi(recorder, wait_for_shutdown=True) as base_url:
        yield base_url, recorder


@contextlib.asynccontextmanager
async def direct(base_url: str) -> AsyncIterator[Client]:
    runtime = make_runtime(
        backend="clevertap", clevertap_account_id=ACCOUNT, clevertap_passcode=PASSCODE, clevertap_api_base_url=base_url
    )
    async with mcp_client(runtime) as client:
        yield client


async def refused(emulator: tuple[str, Recorder], arguments: dict[str, Any], *words: str) -> str:
    base_url, recorder = emulator
    before = len(recorder.seen)
    async with direct(base_url) as client:
        message = err(await client.call_tool("clevertap_request", arguments))
    assert message.startswith("Input error"), message
    for word in words:
        assert word.lower() in message.lower(), message
    assert len(recorder.seen) == before, f"a refused call reached the emulator: {recorder.seen[before:]}"
    assert PASSCODE not in message
    return message


async def sent(emulator: tuple[str, Recorder], arguments: dict[str, Any]) -> tuple[dict[str, Any], Seen]:
    base_url, recorder = emulator
    before = len(recorder.seen)
    async with direct(base_url) as client:
        result = ok(await client.call_tool("clevertap_request", arguments))
    assert len(recorder.seen) == before + 1, recorder.seen[before:]
    seen = recorder.seen[-1]
    # Credentials come from the configuration only, once each.
    assert seen.header("x-clevertap-account-id") == [ACCOUNT]
    assert seen.header("x-clevertap-passcode") == [PASSCODE]
    assert seen.header("authorization") == []
    assert PASSCODE not in json.dumps(result)
    return result, seen


ESCAPES = [
    "https://evil.example/1/profile.json",
    "http://127.0.0.1:1/1/profile.json",
    "HTTPS://EVIL.EXAMPLE/1/x",
    "//evil.example/1/profile.json",
    "///evil.example/1/x",
    "/\\evil.example/1/x",
    "\\\\evil.example\\1\\x",
    "https:/evil.example/1/x",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "/1/../../etc/passwd",
    "/1/../2/x",
    "/1/./profile.json",
    "/1/profile.json/..",
    "/1/%2e%2e/%2e%2e/admin",
    "/1/%2E%2E/x",
    "/1/.%2e/x",
    "/1/%2e./x",
    "/1/%252e%252e/x",
    "/1/%25252e%25252e/x",
    "/1/..%2fx",
    "/1/..%252fx",
    "/1/%2f%2fevil.example",
    "/1/a%5c..%5cx",
    "/1/a%255c..%255cx",
    "/1\\..\\..\\x",
    "/1/profile.json?identity=x",
    "/1/profile.json%3Fidentity=x",
    "/1/profile.json#frag",
    "/1/profile.json%23frag",
    "/1/now.json\r\nX-Injected: yes",
    "/1/now.json%0d%0aX-Injected:%20yes",
    "/1/now.json%250d%250aX-Injected:%20yes",
    "/1/now.json\nHost: evil.example",
    "/1/now.json%00",
    "/1/now.json\x00",
    "/1/now json",
    "/1/now.json\t",
    "/1/\u2025/x",
    "/1/ｎow.json",
    "/1//now.json",
    "/0/now.json",
    "/3/now.json",
    "/admin/1/now.json",
    "1/now.json",
]


@pytest.mark.parametrize("path", ESCAPES)
async def test_paths_outside_the_api_are_refused_and_nothing_is_sent(emulator: tuple[str, Recorder], path: str) -> None:
    await refused(emulator, {"method": "GET", "path": path}, "path")


async def test_a_normal_call_reaches_the_emulator_with_configured_credentials_only(
    emulator: tuple[str, Recorder],
) -> None:
    result, seen = await sent(emulator, {"method": "POST", "path": "/1/now.json", "body": {}})
    assert result["status"] == 200 and result["body"]["status"] == "success"
    assert (seen.method, seen.raw_path, seen.query) == ("POST", b"/1/now.json", b"")


@pytest.mark.parametrize("path", ["/1/@evil.example", "/1/evil.example:80/x", "/1/a;b=c/x", "/1/%40evil.example"])
async def test_odd_but_legal_paths_stay_on_the_configured_host(emulator: tuple[str, Recorder], path: str) -> None:
    """'@', ':' and ';' are legal in a path: the request goes to the emulator with exactly that path (once the user
    confirmed it: an endpoint the server does not know counts as irreversible)."""
    base_url, recorder = emulator
    before = len(recorder.seen)
    async with direct(base_url) as client:
        preview = ok(await client.call_tool("clevertap_request", {"method": "GET", "path": path}))
        assert preview["sent"] is False and len(recorder.seen) == before
        arguments = {"method": "GET", "path": path, "confirm_token": preview["confirm_token"]}
        assert ok(await client.call_tool("clevertap_request", arguments))["sent"] is True
    assert len(recorder.seen) == before + 1
    assert recorder.seen[-1].raw_path == path.encode()


async def test_query_keys_and_values_stay_query_parameters(emulator: tuple[str, Recorder]) -> None:
    query = {
        "X-CleverTap-Passcode": "smuggled-passcode",
        "X-CleverTap-Account-Id": "OTHER-ACCOUNT",
        "Authorization": "Bearer smuggled",
        "Host": "evil.example",
        "crlf": "1\r\nX-Injected: yes\r\n\r\nGET /admin HTTP/1.1",
        "lf": "a\nb",
        "amp": "a&identity=other&b",
        "hash": "x#fragment",
        "a&b=c": "key with separators",
        "nul": "a\x00b",
        "unicode": "\u202eévil💥",
        "num": 1.5,
        "flag": True,
    }
    _, seen = await sent(emulator, {"method": "GET", "path": "/1/profile.json", "query": query})
    assert seen.raw_path == b"/1/profile.json"
    assert b"\r" not in seen.query and b"\n" not in seen.query and b"#" not in seen.query
    expected = {k: ("true" if v is True else str(v)) for k, v in query.items()}
    assert dict(seen.params()) == expected
    assert len(seen.params()) == len(query), "a value or key added parameters"
    assert seen.header("x-injected") == [] and seen.header("host") != ["evil.example"]


async def test_body_fields_never_become_headers(emulator: tuple[str, Recorder]) -> None:
    body = {
        "X-CleverTap-Passcode": "smuggled-passcode",
        "X-CleverTap-Account-Id": "OTHER-ACCOUNT",
        "headers": {"Authorization": "Bearer smuggled", "X-CleverTap-Passcode": "smuggled"},
        "Authorization": "Bearer smuggled",
        "text": "line\r\nX-Injected: yes",
    }
    _, seen = await sent(emulator, {"method": "POST", "path": "/1/now.json", "body": body})
    assert json.loads(seen.body) == body
    assert seen.header("x-injected") == []
    assert seen.header("content-type") == ["application/json"]


async def test_unknown_arguments_cannot_add_headers(emulator: tuple[str, Recorder]) -> None:
    for extra in ({"headers": {"X-CleverTap-Passcode": "x"}}, {"X-CleverTap-Passcode": "x"}, {"url": "https://e"}):
        await refused(emulator, {"method": "GET", "path": "/1/now.json", **extra}, "not permitted")


async def test_query_values_must_be_scalars(emulator: tuple[str, Recorder]) -> None:
    await refused(emulator, {"path": "/1/profile.json", "query": {"identity": ["a", "b"]}}, "query")
    await refused(emulator, {"path": "/1/profile.json", "query": {"identity": {"$ne": 1}}}, "query")


async def test_oversized_bodies_are_refused_before_sending(emulator: tuple[str, Recorder]) -> None:
    await refused(emulator, {"method": "POST", "path": "/1/now.json", "body": {"x": "y" * 5_000_001}}, "limit")
    await refused(emulator, {"method": "POST", "path": "/1/now.json", "body": ["é" * 1000] * 2600}, "limit")


async def test_a_body_just_under_the_limit_is_sent_whole(emulator: tuple[str, Recorder]) -> None:
    body = {"x": "y" * 4_900_000}
    result, seen = await sent(emulator, {"method": "POST", "path": "/1/now.json", "body": body})
    assert len(seen.body) == len(json.dumps(body, separators=(",", ":")))
    assert len(json.dumps(result)) < 70_000, "the result stays bounded"


@pytest.mark.parametrize(
    "tail", ["%2B&batch_size=1&identity=other#frag", "%2B&x=1\r\nX-Injected: yes", "%2B x=1", "%2B%26x%3D1"]
)
async def test_a_raw_export_cursor_stays_one_query_value(emulator: tuple[str, Recorder], tail: str) -> None:
    """A cursor that is not a handle is sent to CleverTap as given; it must not add parameters or headers."""
    base_url, recorder = emulator
    cursor = "A" * 48 + tail
    before = len(recorder.seen)
    async with direct(base_url) as client:
        result = await client.call_tool("clevertap_get_events_by_cursor", {"cursor": cursor})
    assert len(recorder.seen) == before + 1
    for seen in recorder.seen[before:]:
        assert seen.header("x-injected") == []
        assert [k for k, _ in seen.params()] == ["cursor"], seen.query
        assert seen.query.startswith(b"cursor=" + b"A" * 48 + b"%2B"), "CleverTap's own escapes are kept verbatim"
        assert b"#" not in seen.query and b"\r" not in seen.query
    assert "Internal error" not in json.dumps(result.model_dump(mode="json"))
