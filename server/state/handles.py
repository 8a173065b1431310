"""Short cursor handles: models corrupt multi-kilobyte CleverTap cursors, so tools hand out ``ct_`` handles instead.

The store is an interface so that replicas behind a load balancer can share one (Redis) later. A handle holds a
position in an export, never its records: the pages themselves are kept, bounded, in ``pages`` (see
``tools.export_pages``).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from tools.export_pages import ExportPages


class MemoryHandleStore:
    """In-process store with a TTL and an LRU bound, so an agent loop cannot grow it without limit. ``pages`` holds
    the records of running exports (each export's current page and one page ahead, in a bounded number)."""

    def __init__(
        self, *, ttl_s: float = 4 * 3600, max_items: int = 1000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl_s
        self._max = max_items
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self.pages = ExportPages()

    async def put(self, value: Mapping[str, Any]) -> str:
        handle = "ct_" + secrets.token_urlsafe(9)
        self._items[handle] = (self._clock() + self._ttl, dict(value))
        while len(self._items) > self._max:
            self._items.popitem(last=False)
        return handle

    async def get(self, handle: str) -> dict[str, Any] | None:
        item = self._items.get(handle)
        if item is None:
            return None
        expires, value = item
        if expires < self._clock():
            del self._items[handle]
            return None
        self._items.move_to_end(handle)
        return dict(value)
