"""Make httpx's per-request question "which async library is running?" cheap when sniffio is not installed.

httpcore (on every connection-pool request) and httpx's ASGI transport (on every request) ``import sniffio`` to
tell trio from asyncio. anyio no longer brings sniffio, and a failed import is not remembered: each one searches
every ``sys.path`` folder again. Recording the absence once (``None`` in ``sys.modules``, Python's own marker for
"this module is not there") makes the same ``ImportError`` come at once, so httpx behaves exactly as before.
"""

from __future__ import annotations

import importlib.util
import sys


def remember_missing(name: str) -> None:
    """Mark ``name`` as absent in ``sys.modules`` when no finder can find it, so later imports fail at once."""
    if name not in sys.modules and importlib.util.find_spec(name) is None:
        sys.modules[name] = None  # type: ignore[assignment]  # the import system's documented "not there" marker


remember_missing("sniffio")
