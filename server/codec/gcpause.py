"""Pausing the cyclic garbage collector while a large JSON value is built.

Parsing a 100,000-record ``tools/call`` and validating its records allocate some 400,000 containers; each 700
allocations start a collection, and the older generations they promote into are walked again and again, which
doubled the time of both steps. JSON values hold no reference cycles, so those collections never find anything:
while one is built the collector can wait. Reference counting still frees everything as usual; the collector runs
again as soon as the block ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold back cyclic collection for the block (nested and already-disabled cases are left as they were)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def settle_for_serving(first_threshold: int = 10_000) -> None:
    """Once the server is built: move every object alive now (modules, schemas, the catalog) out of the collector's
    sight, and collect the young generation less often.

    A serving process allocates mostly short-lived acyclic request data, freed by reference counting; with the
    default first threshold a collection ran every few hundred allocations and walked the whole import-time heap
    each time it reached the older generations. ``gc.freeze`` costs no collection, so start-up does not pay for it.
    """
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(max(first_threshold, gc.get_threshold()[0]), second, third)
