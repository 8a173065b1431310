"""The sandbox's HTTP vocabulary: a parsed request, a CleverTap-shaped error, and JSON encoding."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

Answer = tuple[int, Any]
JSON_TYPE = b"application/json;charset=utf-8"


class HttpError(Exception):
    def __init__(self, status: int, error: str, code: int | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.body: dict[str, Any] = {"status": "fail", "error": error, "code": status if code is None else code}


def bad(error: str) -> HttpError:
    return HttpError(400, error)


class _NonStandardJson(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonStandardJson(f"{name} is not valid JSON")


def encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class Request:
    method: str
    path: str
    raw_query: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    scheme: str = "http"

    def base_url(self) -> str:
        """The URL this server was reached at (for links that must come back to it)."""
        return f"{self.scheme}://{self.headers.get('host', 'sandbox.invalid')}"

    def json(self) -> Any:
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            detail = f": {exc.args[0]}" if isinstance(exc, _NonStandardJson) else ""
            raise bad(f"Malformed JSON in the request body{detail}") from None

    def json_object(self) -> dict[str, Any]:
        body = self.json()
        if not isinstance(body, dict):
            raise bad("The request body must be a JSON object")
        return body

    def raw_param(self, name: str) -> str | None:
        """A query parameter exactly as sent (still percent-encoded)."""
        for part in self.raw_query.split("&"):
            key, _, value = part.partition("=")
            if key == name:
                return value
        return None
