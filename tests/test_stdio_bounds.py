"""Finding 10 on stdio, through a real ``python -m server`` subprocess: a frame that is not JSON gets -32700 and one
that is JSON but no JSON-RPC message gets -32600 (both ``id: null``) and serving goes on; a line longer than
CLEVERTAP_MCP_MAX_FRAME_BYTES is refused while it still streams and is never held (peak RSS, read from /proc)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import child_env, peak_rss_kib
from tests.stdio_raw import StdioServer

LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[StdioServer]:
    srv = StdioServer([], env=child_env(CLEVERTAP_MCP_MAX_FRAME_BYTES=str(LIMIT)))
    try:
        srv.initialize()
        yield srv
    finally:
        srv.close()


@pytest.mark.parametrize(
    "frame",
    [b"{not json at all\n", b'{"jsonrpc":"2.0","id":3,"method":"tools/li\n', b"\xff\xfe\xfd\x80\x81\n", b"}{\n"],
)
def test_a_frame_that_is_not_json_gets_parse_error(server: StdioServer, frame: bytes) -> None:
    server.write(frame)
    answer = server.answer(None)
    assert answer["id"] is None and answer["error"]["code"] == -32700, answer
    server.tools_list_works()


@pytest.mark.parametrize(
    "frame", [b"42\n", b"[]\n", b"null\n", b'{"id":6,"method":"tools/list"}\n', b'{"jsonrpc":"1.0","id":6}\n']
)
def test_json_that_is_no_message_gets_invalid_request(server: StdioServer, frame: bytes) -> None:
    server.write(frame)
    answer = server.answer(None)
    assert answer["id"] is None and answer["error"]["code"] == -32600, answer
    assert "JSON-RPC" in answer["error"]["message"]
    server.tools_list_works()


def test_blank_lines_are_ignored(server: StdioServer) -> None:
    server.write(b"\n   \n\r\n")
    server.tools_list_works()
    assert all(b'"id":null' not in line for line in server.stdout_lines()[-1:])


def test_an_oversized_line_is_refused_while_it_streams_and_never_held(server: StdioServer) -> None:
    server.tools_list_works()
    before = peak_rss_kib(server.pid)
    # Twice the limit, and no newline yet: the refusal must come before the line ends.
    chunk = b'{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"name":"x","arguments":{"v":"' + b"a" * LIMIT
    server.write(chunk + b"b" * LIMIT)
    refused = server.answer(None)
    assert refused["error"]["code"] == -32600 and str(LIMIT) in refused["error"]["message"], refused
    assert "CLEVERTAP_MCP_MAX_FRAME_BYTES" in refused["error"]["message"]
    block = b"c" * (4 * 1024 * 1024)
    for _ in range(25):  # 100 MB more of the same line
        server.write(block)
    server.write(b'"}}}\n')
    server.tools_list_works()
    grown_mib = (peak_rss_kib(server.pid) - before) / 1024
    assert grown_mib < 40, f"peak RSS grew by {grown_mib:.0f} MiB for a 100 MB line: it was held"
    assert server.proc.poll() is None
    # The skipped line got exactly one answer, and the call inside it never ran.
    assert sum(b'"id":77' in line for line in server.stdout_lines()) == 0


def test_a_frame_just_under_the_limit_still_works(server: StdioServer) -> None:
    intent = "x" * (LIMIT - 200)
    answer = server.call_tool("clevertap_search_actions", {"intent": intent})
    assert "result" in answer, answer
