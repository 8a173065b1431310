"""Confirmation tokens: signed, bound to one tool and one exact payload, short-lived, and single-use.

A token is ``v1.<expiry>.<nonce>.<mac>`` where the MAC is HMAC-SHA256 over the tool name, the canonical JSON digest of
the payload, the expiry and the nonce: any replica holding the same key verifies it. Verifying a token only marks it
pending in the current call's ``CallScope``; the executor boundary (``server.policies.boundary``) consumes it in a
``ConsentLedger`` (this process's memory, or Redis shared by replicas) at the moment the irreversible request
leaves, atomically, so one token sends at most one irreversible request, ever.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from tools.errors import ConsentRequired


def payload_digest(payload: Any) -> str:
    """SHA-256 of canonical JSON. ASCII escapes keep any text encodable; a payload too deep to encode hashes as
    its type name (such arguments are refused before any upstream call anyway)."""
    try:
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    except RecursionError:
        canonical = type(payload).__name__
    return hashlib.sha256(canonical.encode()).hexdigest()


def token_key(token: str) -> str:
    """The ledger key of a token: a digest, so the ledger never holds a usable token."""
    return hashlib.sha256(token.encode()).hexdigest()[:40]


@dataclass
class Pending:
    """A token verified for ``tool`` in this call, not consumed yet."""

    tool: str
    key: str
    expires: int


@dataclass
class CallScope:
    """One tool call as the executor boundary sees it: which tool (route) it is, the tokens it verified, and how many
    write requests it sent and got answers to (for the audit log of a call that was cancelled or timed out)."""

    tool: str | None
    pending: list[Pending] = field(default_factory=list)
    writes_sent: int = 0
    writes_answered: int = 0

    def take(self, tool: str | None) -> Pending | None:
        """The first pending token verified for ``tool`` (removed from the scope), or None."""
        for i, item in enumerate(self.pending):
            if item.tool == tool:
                return self.pending.pop(i)
        return None


_SCOPE: ContextVar[CallScope | None] = ContextVar("clevertap_mcp_call_scope", default=None)


@contextmanager
def call_scope(tool: str | None) -> Iterator[CallScope]:
    """Everything inside belongs to one call of ``tool`` (tasks it starts share the scope)."""
    scope = CallScope(tool)
    reset = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(reset)


def current_scope() -> CallScope | None:
    return _SCOPE.get()


class ConsentLedger(Protocol):
    """Where consumed tokens are recorded. ``claim`` must be atomic across everything that shares the ledger."""

    async def claim(self, key: str, record: str, ttl_s: int) -> str | None:
        """Record ``key`` as used; None when this call is the first, else the record of the call that used it."""
        ...

    async def settle(self, key: str, record: str, ttl_s: int) -> None:
        """Replace the record of a used ``key`` (its outcome, once known)."""
        ...


class MemoryConsentLedger:
    """The ledger of one process (stdio, or a single HTTP replica)."""

    def __init__(self, clock: Callable[[], float] = time.time, max_items: int = 100_000) -> None:
        self._items: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._max = max_items

    def _purge(self, now: float) -> None:
        for key in [k for k, (until, _) in self._items.items() if until < now]:
            del self._items[key]

    async def claim(self, key: str, record: str, ttl_s: int) -> str | None:
        now = self._clock()
        with self._lock:
            found = self._items.get(key)
            if found is not None and found[0] >= now:
                return found[1]
            if len(self._items) >= self._max:
                self._purge(now)
            self._items[key] = (now + ttl_s, record)
            return None

    async def settle(self, key: str, record: str, ttl_s: int) -> None:
        with self._lock:
            self._items[key] = (self._clock() + ttl_s, record)


class HmacConsentSigner:
    def __init__(
        self,
        key: bytes | None = None,
        *,
        ttl_s: int = 600,
        clock: Callable[[], float] = time.time,
        subject: str = "",
    ) -> None:
        self._key = key or secrets.token_bytes(32)
        # Whose confirmation it is (one user of a shared HTTP deployment): replicas sharing the key accept each
        # other's tokens for the same subject, never another subject's.
        self._subject = subject
        self._ttl = ttl_s
        self._clock = clock

    def _mac(self, tool: str, digest: str, expires: int, nonce: str) -> str:
        msg = f"{tool}\n{digest}\n{expires}\n{nonce}\n{self._subject}".encode()
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
                "(or the token belongs to another tool or another user).",
                hint="Call again without confirm_token to preview exactly what will be sent, then confirm that.",
            )
        if expires < self._clock():
            raise ConsentRequired(
                "confirm_token has expired.",
                hint="Call again without confirm_token to get a fresh preview, and confirm within 10 minutes.",
            )
        scope = _SCOPE.get()
        if scope is not None:
            scope.pending.append(Pending(tool, token_key(token), expires))
