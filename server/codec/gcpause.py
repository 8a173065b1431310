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
