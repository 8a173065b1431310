"""Upstream text that no UTF-8 stream can carry (a JSON escape of half a UTF-16 pair) reaches the agent as U+FFFD,
over a real stdio server talking to a real HTTP upstream: the server neither crashes nor drops the answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.membrane import serve_asgi
from tests.fakes.quirky_clevertap import QuirkyCleverTap, Reply
from tests.helpers import child_env
from tests.stdio_raw import StdioServer

# Raw bytes: the escapes are what a JSON producer writes for lone surrogates.
PROFILE = b'{"status":"success","record":{"identity":"u1","name":"Zo\\ud83d end","note":"\\udfff"}}'


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, QuirkyCleverTap]]:
    fake = QuirkyCleverTap()
    with serve_asgi(fake) as base_url:
        yield base_url, fake


@pytest.fixture()
def server(upstream: tuple[str, QuirkyCleverTap]) -> Iterator[StdioServer]:
    base_url, fake = upstream
    env = child_env(
        CLEVERTAP_ACCOUNT_ID=fake.account_id, CLEVERTAP_PASSCODE=fake.passcode, CLEVERTAP_API_BASE_URL=base_url
    )
    srv = StdioServer(["--backend", "clevertap"], env=env)
    try:
        srv.initialize()
        yield srv
    finally:
        srv.close()


def test_lone_surrogates_from_upstream_become_replacement_characters(
    server: StdioServer, upstream: tuple[str, QuirkyCleverTap]
) -> None:
    _, fake = upstream
    fake.script("GET", "/1/profile.json", Reply(body=PROFILE))
    answer = server.call_tool(
        "clevertap_request", {"method": "GET", "path": "/1/profile.json", "query": {"identity": "u1"}}
    )
    result = answer["result"]
    assert result.get("isError") is not True, result
    record = result["structuredContent"]["body"]["record"]
    assert record == {"identity": "u1", "name": "Zo\ufffd end", "note": "\ufffd"}
    assert "Zo\ufffd end" in result["content"][0]["text"]
    server.tools_list_works()
    assert server.proc.poll() is None


def test_lone_surrogates_in_an_upstream_error_still_give_an_error_result(
    server: StdioServer, upstream: tuple[str, QuirkyCleverTap]
) -> None:
    _, fake = upstream
    body = b'{"status":"fail","error":"identity \\ud800 is not valid","code":400}'
    fake.script("GET", "/1/profile.json", Reply(status=400, body=body))
    answer = server.call_tool("clevertap_request", {"method": "GET", "path": "/1/profile.json", "query": {"id": "x"}})
    result = answer["result"]
    text = result["content"][0]["text"]
    assert "\ufffd" in text and "\ud800" not in text, text
    server.tools_list_works()
