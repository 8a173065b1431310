"""Finding 10, upstream side: an answer larger than CLEVERTAP_MCP_MAX_UPSTREAM_BYTES is refused while it streams (or
at once when its Content-Length says so) with an error that says what to do, and the server never holds it: the peak
RSS of a real stdio server subprocess fed a 300 MB answer is read from /proc."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from server.config import load_settings
from server.runtime import Runtime
from tests.helpers import child_env, err, mcp_client, ok, peak_rss_kib, serving
from tests.stdio_raw import StdioServer

MIB = 1024 * 1024


@contextlib.contextmanager
def huge_upstream(total: int, *, declare: bool) -> Iterator[tuple[str, list[int]]]:
    """Answers every request with ``total`` bytes made on the fly (never held by the fake); ``sent`` records how many
    bytes each answer got out before the reader hung up."""
    sent: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if self.path.startswith("/1/now"):
                body = b'{"status":"success","ok":true}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if declare:
                self.send_header("Content-Length", str(total))
            self.end_headers()
            block = b"[" + b'"padding",' * (MIB // 10)
            done = 0
            try:
                while done < total:
                    piece = block[: total - done]
                    self.wfile.write(piece)
                    done += len(piece)
            except OSError:
                pass
            sent.append(done)

        do_GET = do_POST = _answer

    with serving(Handler) as url:
        yield url, sent


def test_a_300_mb_answer_is_refused_as_it_streams_and_never_held() -> None:
    with huge_upstream(300 * MIB, declare=False) as (url, sent):
        env = child_env(
            CLEVERTAP_ACCOUNT_ID="ACC-1",
            CLEVERTAP_PASSCODE="pass-abcdef",
            CLEVERTAP_API_BASE_URL=url,
            CLEVERTAP_MCP_MAX_UPSTREAM_BYTES=str(4 * MIB),
        )
        server = StdioServer(["--backend", "clevertap"], env)
        try:
            server.initialize()
            small = server.call_tool("clevertap_request", {"method": "GET", "path": "/1/now.json"})
            assert small["result"]["structuredContent"]["body"] == {"status": "success", "ok": True}, small
            before = peak_rss_kib(server.pid)
            answer = server.call_tool("clevertap_request", {"method": "GET", "path": "/1/profile.json"}, timeout=120)
            grown_mib = (peak_rss_kib(server.pid) - before) / 1024
            result = answer["result"]
            assert result["isError"] is True, result
            message = result["content"][0]["text"]
            assert "too large" in message and "CLEVERTAP_MCP_MAX_UPSTREAM_BYTES" in message, message
            server.tools_list_works()
        finally:
            server.close()
    assert grown_mib < 60, f"peak RSS grew by {grown_mib:.0f} MiB: the answer was held"
    assert sent and sent[0] < 300 * MIB, "the server read the whole answer before refusing it"


@pytest.mark.anyio
async def test_a_declared_length_past_the_limit_is_refused_before_reading() -> None:
    env = {
        "CLEVERTAP_ACCOUNT_ID": "ACC-1",
        "CLEVERTAP_PASSCODE": "pass-abcdef",
        "CLEVERTAP_MCP_MAX_UPSTREAM_BYTES": str(MIB),
    }
    settings = load_settings(env, backend="clevertap")
    with huge_upstream(2 * MIB, declare=True) as (url, _):
        runtime = Runtime(settings.model_copy(update={"clevertap_api_base_url": url}))
        async with mcp_client(runtime) as client:
            refused = err(
                await client.call_tool(
                    "clevertap_request", {"method": "GET", "path": "/1/profile.json", "query": {"x": "secretive"}}
                )
            )
            fine = ok(await client.call_tool("clevertap_request", {"method": "GET", "path": "/1/now.json"}))
    assert "declares 2,097,152 bytes" in refused and "secretive" not in refused, refused
    assert fine["body"]["ok"] is True
