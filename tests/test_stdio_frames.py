"""Raw bytes on a real stdio server's stdin: after every bad frame the server still answers tools/list, and every
line it writes on stdout is a JSON-RPC message (strict JSON: no NaN or Infinity literals).

What the transport does with bad frames (server/transports/stdio.py): stdin is decoded as UTF-8 (``errors="replace"``),
each line is validated as one JSON-RPC message; a line that is not JSON gets -32700 and one that is no message -32600,
both with ``id: null`` (tests/test_stdio_bounds.py). Valid requests with an unknown method get -32601.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import day
from tests.stdio_raw import StdioServer, strict_json


@pytest.fixture(scope="module")
def server() -> Iterator[StdioServer]:
    srv = StdioServer(["--sandbox"])
    try:
        srv.initialize()
        yield srv
    finally:
        srv.close()


def _call(name: str, arguments: Any, request_id: Any = 7) -> bytes:
    message = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }
    return json.dumps(message).encode() + b"\n"


def _deep(levels: int) -> str:
    return "[" * levels + "1" + "]" * levels


COUNT = {"event_name": "Charged", "from": day(-7), "to": day(0)}

# name -> raw bytes written to stdin (each ends the line, so that the next frame starts clean)
FRAMES: dict[str, bytes] = {
    "malformed-json": b"{not json at all\n",
    "empty-line": b"\n",
    "whitespace": b"   \t  \n",
    "truncated-frame": b'{"jsonrpc":"2.0","id":3,"method":"tools/li\n',
    "truncated-mid-string": _call("clevertap_get_event_count", COUNT)[:40] + b"\n",
    "batch-array": b'[{"jsonrpc":"2.0","id":4,"method":"tools/list"},{"jsonrpc":"2.0","id":5,"method":"ping"}]\n',
    "empty-array": b"[]\n",
    "non-object-number": b"42\n",
    "non-object-string": b'"tools/list"\n',
    "non-object-null": b"null\n",
    "no-jsonrpc-field": b'{"id":6,"method":"tools/list"}\n',
    "wrong-jsonrpc-version": b'{"jsonrpc":"1.0","id":6,"method":"tools/list"}\n',
    "unknown-method": b'{"jsonrpc":"2.0","id":8,"method":"no/such/method"}\n',
    "unknown-notification": b'{"jsonrpc":"2.0","method":"notifications/whatever","params":{"x":1}}\n',
    "stray-response": b'{"jsonrpc":"2.0","id":999999,"result":{}}\n',
    "huge-int-id": b'{"jsonrpc":"2.0","id":' + b"9" * 400 + b',"method":"ping"}\n',
    "float-id": b'{"jsonrpc":"2.0","id":1e400,"method":"ping"}\n',
    "huge-string-id": b'{"jsonrpc":"2.0","id":"' + b"i" * 100_000 + b'","method":"ping"}\n',
    "object-id": b'{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}\n',
    "invalid-utf8": b'{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"clevertap_search_actions",'
    b'"arguments":{"intent":"\xff\xfe\xc3\x28 count"}}}\n',
    "invalid-utf8-garbage": b"\xff\xfe\xfd\x80\x81\n",
    "lone-surrogate-escape": b'{"jsonrpc":"2.0","id":10,"method":"tools/call",'
    b'"params":{"name":"clevertap_search_actions","arguments":{"intent":"\\ud800 x"}}}\n',
    "nan-literal": _call("clevertap_get_event_count", {**COUNT, "wait_seconds": "NAN"}).replace(b'"NAN"', b"NaN"),
    "infinity-literal": _call("clevertap_connect", {"wait_seconds": "INF"}).replace(b'"INF"', b"Infinity"),
    "params-string": b'{"jsonrpc":"2.0","id":11,"method":"tools/call","params":"clevertap_connect"}\n',
    "params-array": b'{"jsonrpc":"2.0","id":12,"method":"tools/call","params":["clevertap_connect",{}]}\n',
    "params-name-number": b'{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"name":5,"arguments":{}}}\n',
    "params-arguments-string": b'{"jsonrpc":"2.0","id":14,"method":"tools/call",'
    b'"params":{"name":"clevertap_connect","arguments":"wait_seconds=1"}}\n',
    "params-missing": b'{"jsonrpc":"2.0","id":15,"method":"tools/call"}\n',
    "tools-list-bad-cursor": b'{"jsonrpc":"2.0","id":16,"method":"tools/list","params":{"cursor":{"x":[1]}}}\n',
    "deep-nesting": b'{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"clevertap_request",'
    b'"arguments":{"path":"/1/now.json","body":' + _deep(1000).encode() + b"}}}\n",
    "oversized-garbage-line": b"x" * 5_000_000 + b"\n",
    "oversized-valid-call": _call("clevertap_search_actions", {"intent": "y" * 5_000_000}),
    "oversized-request-body": _call(
        "clevertap_request", {"method": "POST", "path": "/1/upload", "body": {"d": ["z" * 1000] * 5200}}
    ),
}


@pytest.mark.parametrize("frame", list(FRAMES))
def test_bad_frame_then_tools_list_still_works(server: StdioServer, frame: str) -> None:
    server.write(FRAMES[frame])
    server.tools_list_works()
    assert server.proc.poll() is None, "the server exited"


def test_answers_that_bad_frames_do_get(server: StdioServer) -> None:
    """Requests that parse get a proper answer: -32601 for an unknown method, an isError result for bad arguments."""
    server.write(FRAMES["unknown-method"])
    assert server.answer(8)["error"]["code"] == -32601

    server.write(FRAMES["nan-literal"])
    result = server.answer(7)["result"]
    assert result["isError"] is True and result["content"][0]["text"].startswith("Input error")

    server.write(FRAMES["huge-int-id"])
    assert server.answer(int("9" * 400))["result"] == {}

    server.write(FRAMES["oversized-valid-call"])
    result = server.answer(7)["result"]
    assert result["isError"] is True and "intent" in result["content"][0]["text"]
    assert len(json.dumps(result)) < 10_000, "the error must not echo the 5 MB argument"

    # pydantic-core's parser refuses a lone surrogate escape; the json module then parses the line, so the tool
    # itself says what is wrong instead of the frame being dropped unanswered.
    server.write(FRAMES["lone-surrogate-escape"])
    result = server.answer(10)["result"]
    assert result["isError"] is True and "surrogate" in result["content"][0]["text"]

    server.write(FRAMES["params-arguments-string"])
    answer = server.answer(14)
    assert "error" in answer or answer["result"]["isError"] is True


def test_every_stdout_line_was_json_rpc(server: StdioServer) -> None:
    server.tools_list_works()
    assert server.stdout, "nothing was read"
    for line in server.stdout_lines():
        assert line.endswith(b"\n")
        message = strict_json(line.decode("utf-8"))
        assert isinstance(message, dict) and message.get("jsonrpc") == "2.0"
    assert b"Traceback" not in b"".join(server.stderr), b"".join(server.stderr)[-3000:]
