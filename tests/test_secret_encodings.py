"""Finding 8: a passcode holding ``"`` or ``\\`` that an upstream body repeats reaches no result, in any encoding the
body can carry it: raw, JSON-escaped (once or inside a string that holds JSON), URL-encoded, base64 of a basic header
or of a longer value. The leak scan decodes what it finds; it shares no code with ``server.policies.scrub``."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import pytest

from server.config import load_settings
from server.runtime import Runtime
from tests.helpers import err, mcp_client, ok, serving, text

pytestmark = pytest.mark.anyio

ACCOUNT = "ACC-ECHO-1"
PASSCODE = 'Pa55"w\\ord/+%x 7'


def _echo(passcode: str, account: str) -> dict[str, Any]:
    return {
        "status": "success",
        "header": passcode,
        "url": f"https://x.test/?p={quote(passcode, safe='')}",
        "url_lower": re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(passcode, safe="")),
        "form": f"p={quote_plus(passcode)}&q=1",
        "basic": "Basic " + base64.b64encode(f"{account}:{passcode}".encode()).decode(),
        "embedded": base64.b64encode(f"prefix-{passcode}-suffix".encode()).decode(),
        "urlsafe": base64.urlsafe_b64encode(f"xy{passcode}".encode()).decode(),
        "nested_json": json.dumps({"echo": {"passcode": passcode}}),
        "in_a_key": {f"key {passcode}": 1},
    }


@contextlib.contextmanager
def echo_upstream() -> Iterator[str]:
    """A CleverTap-shaped upstream that repeats the passcode header it was sent, in many encodings."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            passcode = self.headers.get("X-CleverTap-Passcode", "")
            account = self.headers.get("X-CleverTap-Account-Id", "")
            if self.path.startswith("/1/counts/"):
                status, body = 400, {"status": "fail", "error": f"Passcode {passcode!s} not valid here", "code": 400}
            else:
                status, body = 200, _echo(passcode, account)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

    with serving(Handler) as url:
        yield url


_B64ISH = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")


def _decoded(blob: str) -> list[str]:
    """``blob`` and what it may hide: URL-decoded, JSON strings at any nesting, and every base64-looking run decoded
    at every offset."""
    views = [blob, unquote(blob), unquote_plus(blob)]
    stack: list[Any] = []
    with contextlib.suppress(ValueError):
        stack.append(json.loads(blob))
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
            views.extend(str(k) for k in item)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            views += [item, unquote(item), unquote_plus(item)]
            with contextlib.suppress(ValueError):
                stack.append(json.loads(item))
    for run in _B64ISH.findall(blob):
        for start in range(4):
            chunk = run[start:].rstrip("=")
            chunk = chunk[: len(chunk) - len(chunk) % 4]
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                with contextlib.suppress(binascii.Error, ValueError):
                    views.append(decode(chunk).decode("latin-1"))
    return views


def leaked(blob: str) -> bool:
    # A recognisable piece is enough: the passcode minus its first and last two characters.
    piece = PASSCODE[2:-2]
    return any(piece in view for view in _decoded(blob))


def _runtime(url: str) -> Runtime:
    env = {"CLEVERTAP_ACCOUNT_ID": ACCOUNT, "CLEVERTAP_PASSCODE": PASSCODE, "CLEVERTAP_API_BASE_URL": url}
    return Runtime(load_settings(env, backend="clevertap"))


async def test_an_echoed_passcode_is_masked_in_every_encoding() -> None:
    with echo_upstream() as url:
        async with mcp_client(_runtime(url)) as client:
            echoed = await client.call_tool("clevertap_request", {"method": "GET", "path": "/1/profile.json"})
            failed = await client.call_tool(
                "clevertap_get_event_count", {"event_name": "Charged", "from": 20260101, "to": 20260102}
            )
    body = ok(echoed)["body"]
    # The echo really came back (every field present), masked.
    assert set(body) >= {"header", "url", "form", "basic", "embedded", "urlsafe", "nested_json", "in_a_key"}
    assert "***" in body["header"] and body["basic"].startswith("Basic ")
    for blob in (text(echoed), json.dumps(echoed.structured_content)):
        assert not leaked(blob), blob
    assert "Passcode *** not valid" in err(failed)
    assert not leaked(err(failed)), err(failed)


def test_the_scan_finds_every_encoding() -> None:
    """The negative control: each field of the unmasked echo is reported on its own."""
    for key, value in _echo(PASSCODE, ACCOUNT).items():
        if key == "status":
            continue
        assert leaked(json.dumps({key: value})), key
    assert not leaked(json.dumps({"header": "***", "basic": "Basic QUNDLUVDSE8tMToqKio="}))
