"""The schema cache of one account: discovered event names and properties, kept for a TTL."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any


class MemorySchemaCache:
    """In-process documents by key; an expired one reads as missing. ``ttl_s`` 0 disables caching."""

    def __init__(self, ttl_s: float, *, max_items: int = 500, clock: Callable[[], float] = time.time) -> None:
        self.ttl_s = ttl_s
        self._max = max_items
        self._clock = clock
        self._items: dict[str, tuple[float, dict[str, Any]]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        item = self._items.get(key)
        if item is None:
            return None
        stored, value = item
        if self._clock() - stored >= self.ttl_s:
            del self._items[key]
            return None
        return dict(value)

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        if self.ttl_s <= 0:
            return
        self._items.pop(key, None)
        self._items[key] = (self._clock(), dict(value))
        while len(self._items) > self._max:
            del self._items[next(iter(self._items))]
