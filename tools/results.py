"""Fitting results into the per-call byte bound: JSON sizes, how many items fit, and cuts that say what they cut."""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import PydanticSerializationError, to_json


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (what the server sends). Runs once per exported record, so
    pydantic-core's encoder measures (much faster than ``json.dumps``); what it refuses, such as a lone
    surrogate an upstream escaped, is measured by the standard library."""
    try:
        return len(to_json(value, fallback=str))
    except (PydanticSerializationError, ValueError, TypeError, RecursionError):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        return len(text.encode("utf-8", "surrogatepass"))


def take_within(items: list[Any], max_bytes: int, *, min_items: int = 1) -> int:
    """How many leading ``items`` fit in ``max_bytes`` of JSON (at least ``min_items`` so that paging progresses)."""
    used = 2
    for n, item in enumerate(items):
        used += json_size(item) + 1
        if used > max_bytes:
            return max(n, min(min_items, len(items)))
    return len(items)


def bound_json(value: Any, max_bytes: int) -> tuple[Any, str | None]:
    """``value`` cut to about ``max_bytes`` of JSON, still valid JSON; the note says what was cut (None: nothing)."""
    if json_size(value) <= max_bytes:
        return value, None
    if isinstance(value, list):
        n = take_within(value, max_bytes, min_items=0)
        return value[:n], f"kept the first {n} of {len(value)} items"
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        notes: list[str] = []
        budget = max_bytes - 2
        for key, item in value.items():
            size = json_size(item) + json_size(key) + 2
            if size <= budget:
                out[key] = item
                budget -= size
            elif isinstance(item, (list, dict)) and budget > 200:
                cut, note = bound_json(item, budget - json_size(key) - 2)
                out[key] = cut
                budget -= json_size(cut) + json_size(key) + 2
                notes.append(f"'{key}': {note}")
            else:
                notes.append(f"'{key}' dropped")
        return out, "; ".join(notes)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[: max(0, max_bytes // 2)], "text cut"
