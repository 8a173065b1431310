"""The pages of running exports this process holds: each export's current page and at most one page fetched ahead.

A cursor handle names an export (``stream``), the CleverTap cursor of the page its next record is on, and an offset in
that page; the records themselves live here, not in the handle, so a long export holds two pages however many handles
it has handed out. The current page stays until a handle on a later page is served, so the retry of the last answer
(same handle, same records) is answered from memory; an older handle, or one whose export was evicted or served by
another replica, fetches its page again by cursor (CleverTap cursors are re-readable until they expire).

The page after the current one is fetched ahead once the caller continues an export (the tools decide when).
The bound is a count of exports (least recently used first out) and of retained records, never a time: an evicted
export's prefetch is cancelled and its pages released. Prefetching needs asyncio; under another event loop pages are
fetched when asked for.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any


@dataclass(eq=False)
class Page:
    """One CleverTap page, its records already prepared (ISO times, projection) for answering."""

    cursor: str
    records: list[dict[str, Any]]
    next_cursor: str | None
    # Encoded bytes per record, learned from the answers cut from this page (0: not yet known).
    per_record: float = 0.0


Fetch = Callable[[str], Coroutine[Any, Any, Page]]


@dataclass(eq=False)
class _Export:
    owner: object  # the CleverTap client that fetched these pages: nobody else's call is answered from them
    current: Page | None = None
    ahead: tuple[str, asyncio.Task[Page]] | None = None

    def retained(self) -> int:
        """Records held, a prefetch still running counted as a page the size of the current one (what it will
        hold), so the bound holds before the page arrives."""
        held = len(self.current.records) if self.current is not None else 0
        if self.ahead is not None:
            task = self.ahead[1]
            if not task.done():
                held *= 2
            elif not task.cancelled() and task.exception() is None:
                held += len(task.result().records)
        return held

    def cancel(self) -> None:
        if self.ahead is not None:
            self.ahead[1].cancel()
            self.ahead = None
        self.current = None


def _observe(task: asyncio.Task[Page]) -> None:
    """Mark a prefetch's failure as seen by asyncio: it is raised again to the call that asks for the page."""
    if not task.cancelled():
        task.exception()


class ExportPages:
    """Pages of up to ``max_exports`` exports and, beyond the one being answered, no more than ``max_records``
    records in all (least recently used exports go first)."""

    def __init__(self, *, max_exports: int = 16, max_records: int = 50_000) -> None:
        self.max_exports = max_exports
        self.max_records = max_records
        self._exports: OrderedDict[str, _Export] = OrderedDict()

    def __len__(self) -> int:
        return len(self._exports)

    def retained(self) -> int:
        """Records held in pages: current pages and pages fetched ahead (or being fetched)."""
        return sum(e.retained() for e in self._exports.values())

    def prefetching(self) -> int:
        """Prefetches not finished yet."""
        return sum(1 for e in self._exports.values() if e.ahead is not None and not e.ahead[1].done())

    def drop(self, stream: str) -> None:
        """Forget an export: cancel its prefetch and release its pages."""
        export = self._exports.pop(stream, None)
        if export is not None:
            export.cancel()

    def _own(self, stream: str, owner: object) -> _Export | None:
        export = self._exports.get(stream)
        if export is None or export.owner is not owner:
            return None
        self._exports.move_to_end(stream)
        return export

    async def page(self, stream: str, owner: object, cursor: str, fetch: Fetch) -> Page:
        """The page at ``cursor``: held, fetched ahead (its failure is raised here), or fetched now. It becomes the
        export's current page and the one before it is released."""
        export = self._own(stream, owner)
        if export is not None:
            if export.current is not None and export.current.cursor == cursor:
                return export.current
            if export.ahead is not None and export.ahead[0] == cursor:
                task = export.ahead[1]
                try:
                    # shield: a caller cancelled while waiting leaves the prefetch for its retry
                    page = await asyncio.shield(task)
                except asyncio.CancelledError:
                    if not task.cancelled():
                        raise
                    export.ahead = None
                    page = await fetch(cursor)
                except BaseException:
                    if export.ahead is not None and export.ahead[1] is task:
                        export.ahead = None  # a retry asks CleverTap again
                    raise
                if export.ahead is not None and export.ahead[1] is task:
                    export.ahead = None
                return self._hold(stream, owner, page)
        page = await fetch(cursor)
        return self._hold(stream, owner, page)

    def _hold(self, stream: str, owner: object, page: Page) -> Page:
        export = self._own(stream, owner)
        if export is None:
            self.drop(stream)
            export = self._exports[stream] = _Export(owner)
        export.current = page
        if export.ahead is not None and export.ahead[0] != page.next_cursor:
            export.ahead[1].cancel()
            export.ahead = None
        self._evict(keep=stream)
        return page

    def prefetch(self, stream: str, owner: object, cursor: str, fetch: Fetch) -> None:
        """Start fetching the page after the current one (one page ahead at most; nothing when already started)."""
        export = self._own(stream, owner)
        if export is None or (export.ahead is not None and export.ahead[0] == cursor):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): the page is fetched when asked for
            return
        if export.ahead is not None:
            export.ahead[1].cancel()
        task = loop.create_task(fetch(cursor))
        task.add_done_callback(_observe)
        export.ahead = (cursor, task)
        self._evict(keep=stream)

    def _evict(self, keep: str) -> None:
        while len(self._exports) > self.max_exports:
            oldest = next(iter(self._exports))
            if oldest == keep:
                break
            self.drop(oldest)
        if len(self._exports) > 1 and self.retained() > self.max_records:
            for stream in [s for s in self._exports if s != keep]:
                self.drop(stream)
                if self.retained() <= self.max_records:
                    break
