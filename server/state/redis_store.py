"""Cursor handles in Redis, so that a handle issued by one replica can be continued on another.

Used when ``CLEVERTAP_MCP_REDIS_URL`` is set. Each handle is one key written with SETEX, so Redis expires it;
nothing else is kept. Needs the optional ``redis`` extra (``pip install 'clevertap-mcp[redis]'``).
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
DEFAULT_TTL_S = 4 * 3600


def _unreachable(exc: Exception) -> ConfigurationError:
    return ConfigurationError(
        f"the shared handle store (Redis) is unreachable: {type(exc).__name__}.",
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

    async def ping(self) -> None:
        """Raise when Redis cannot be reached (used at start-up to fail fast)."""
        await self._client.ping()

    async def aclose(self) -> None:
        close = getattr(self._client, "aclose", None)
        if close is not None:
            await close()
