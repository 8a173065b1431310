"""State replicas share through Redis: cursor handles, and the ledger of consumed confirmation tokens.

Used when ``CLEVERTAP_MCP_REDIS_URL`` is set. Each handle is one key written with SETEX, so Redis expires it. A
confirmation token is consumed with one ``SET key NX EX`` (atomic in Redis), so two replicas cannot both accept it.
Needs the optional ``redis`` extra (``pip install 'clevertap-mcp[redis]'``).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

from tools.errors import ConfigurationError

_HANDLE = re.compile(r"^ct_[A-Za-z0-9_-]{8,64}$")
DEFAULT_PREFIX = "clevertap-mcp:handle:"
CONSENT_PREFIX = "clevertap-mcp:consent:"
DEFAULT_TTL_S = 4 * 3600


def _unreachable(exc: Exception, what: str = "handle store") -> ConfigurationError:
    return ConfigurationError(
        f"the shared {what} (Redis) is unreachable: {type(exc).__name__}.",
        hint="Retry in a moment; if it persists, the operator must check CLEVERTAP_MCP_REDIS_URL and the Redis server.",
    )


class RedisHandleStore:
    """``tools.api.HandleStore`` on Redis. ``client`` is a ``redis.asyncio.Redis`` (or anything with get/setex)."""

    def __init__(self, client: Any, *, ttl_s: int = DEFAULT_TTL_S, prefix: str = DEFAULT_PREFIX) -> None:
        self._client = client
        self._ttl = int(ttl_s)
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str, *, ttl_s: int = DEFAULT_TTL_S, prefix: str = DEFAULT_PREFIX) -> RedisHandleStore:
        """Connect lazily to ``url`` (``redis://host:6379/0``, ``rediss://...``, ``unix://...``)."""
        try:
            import redis.asyncio as aioredis
        except ImportError:
            raise RuntimeError(
                "CLEVERTAP_MCP_REDIS_URL is set but the 'redis' package is not installed: "
                "pip install 'clevertap-mcp[redis]'"
            ) from None
        client = aioredis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        return cls(client, ttl_s=ttl_s, prefix=prefix)

    async def put(self, value: Mapping[str, Any]) -> str:
        handle = "ct_" + secrets.token_urlsafe(9)
        data = json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False)
        try:
            await self._client.setex(self._prefix + handle, self._ttl, data)
        except Exception as exc:
            raise _unreachable(exc) from None
        return handle

    async def get(self, handle: str) -> dict[str, Any] | None:
        if not isinstance(handle, str) or not _HANDLE.match(handle):
            return None
        try:
            raw = await self._client.get(self._prefix + handle)
        except Exception as exc:
            raise _unreachable(exc) from None
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def consent_ledger(self) -> RedisConsentLedger:
        """The ledger of consumed confirmation tokens on the same Redis."""
        return RedisConsentLedger(self._client)

    async def ping(self) -> None:
        """Raise when Redis cannot be reached (used at start-up to fail fast)."""
        await self._client.ping()

    async def aclose(self) -> None:
        close = getattr(self._client, "aclose", None)
        if close is not None:
            await close()


def _text(raw: Any) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


class RedisConsentLedger:
    """``server.state.consent.ConsentLedger`` on Redis. Any failure fails closed: the request is not sent."""

    def __init__(self, client: Any, *, prefix: str = CONSENT_PREFIX) -> None:
        self._client = client
        self._prefix = prefix

    async def claim(self, key: str, record: str, ttl_s: int) -> str | None:
        try:
            if await self._client.set(self._prefix + key, record, nx=True, ex=max(1, int(ttl_s))):
                return None
            found = await self._client.get(self._prefix + key)
        except Exception as exc:
            raise _unreachable(exc, "confirmation ledger") from None
        return _text(found) if found is not None else "{}"

    async def settle(self, key: str, record: str, ttl_s: int) -> None:
        try:
            await self._client.set(self._prefix + key, record, ex=max(1, int(ttl_s)))
        except Exception as exc:
            raise _unreachable(exc, "confirmation ledger") from None
