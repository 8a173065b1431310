"""Confirmation tokens: signed, self-contained, bound to one tool and one exact payload, short-lived.

A token is ``v1.<expiry>.<nonce>.<mac>`` where the MAC is HMAC-SHA256 over the tool name, the canonical JSON digest of
the payload, the expiry and the nonce. Nothing is stored server-side, so any replica holding the same key verifies it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from tools.errors import ConsentRequired


def payload_digest(payload: Any) -> str:
    """SHA-256 of canonical JSON. ASCII escapes keep any text encodable; a payload too deep to encode hashes as
    its type name (such arguments are refused before any upstream call anyway)."""
    try:
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    except RecursionError:
        canonical = type(payload).__name__
    return hashlib.sha256(canonical.encode()).hexdigest()


class HmacConsentSigner:
    def __init__(self, key: bytes | None = None, *, ttl_s: int = 600, clock: Callable[[], float] = time.time) -> None:
        self._key = key or secrets.token_bytes(32)
        self._ttl = ttl_s
        self._clock = clock

    def _mac(self, tool: str, digest: str, expires: int, nonce: str) -> str:
        msg = f"{tool}\n{digest}\n{expires}\n{nonce}".encode()
        raw = hmac.new(self._key, msg, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def issue(self, tool: str, payload: Any) -> tuple[str, int]:
        expires = int(self._clock()) + self._ttl
        nonce = secrets.token_hex(4)
        mac = self._mac(tool, payload_digest(payload), expires, nonce)
        return f"v1.{expires}.{nonce}.{mac}", expires

    def verify(self, tool: str, payload: Any, token: str) -> None:
        parts = token.split(".") if isinstance(token, str) else []
        if len(parts) != 4 or parts[0] != "v1" or not parts[1].isdigit():
            raise ConsentRequired(
                "confirm_token is not a token this server issued.",
                hint="Call the tool again without confirm_token to get a fresh preview and token.",
            )
        expires, nonce, mac = int(parts[1]), parts[2], parts[3]
        expected = self._mac(tool, payload_digest(payload), expires, nonce)
        if not hmac.compare_digest(expected, mac):
            raise ConsentRequired(
                "confirm_token does not match these arguments: the payload changed since the preview "
                "(or the token belongs to another tool).",
                hint="Call again without confirm_token to preview exactly what will be sent, then confirm that.",
            )
        if expires < self._clock():
            raise ConsentRequired(
                "confirm_token has expired.",
                hint="Call again without confirm_token to get a fresh preview, and confirm within 10 minutes.",
            )
