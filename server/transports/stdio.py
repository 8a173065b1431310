"""The stdio transport, with a faster parse of incoming messages.

The SDK's ``stdio_server`` validates each line with pydantic's JSON mode against the JSON-RPC message union, whose
members each build a large upload's arguments again; parsing the line once with pydantic-core's parser (with the
collector paused) and validating the parsed object is far cheaper, since tool arguments are free-form there. The
SDK transport is used as it is, fd handling included; only the module it reads the adapter from is shadowed, for
this module only.
"""

from __future__ import annotations

import json
import logging
import types as pytypes
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pydantic_core import from_json

from server.codec.gcpause import gc_paused

log = logging.getLogger("clevertap_mcp")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class FastMessageAdapter:
    """``validate_json`` as a plain parse + ``validate_python``.

    pydantic-core's parser (no NaN) goes first; what it refuses (a lone surrogate escape, nesting beyond 200 levels)
    is parsed by the ``json`` module as before, so such values still reach the tools, which say what is wrong with
    them. What both refuse goes to the SDK's own parser, so its errors are unchanged."""

    def __init__(self, adapter: Any) -> None:
        self._adapter = adapter

    def validate_json(self, data: str | bytes, **kwargs: Any) -> Any:
        with gc_paused():
            try:
                parsed = from_json(data, allow_inf_nan=False)
            except ValueError:
                try:
                    parsed = json.loads(data, parse_constant=_refuse_constant)
                except (ValueError, RecursionError):
                    return self._adapter.validate_json(data, **kwargs)
            return self._adapter.validate_python(parsed, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)


def _install() -> bool:
    from mcp.server import stdio as sdk_stdio

    original = getattr(sdk_stdio, "types", None)
    adapter = getattr(original, "jsonrpc_message_adapter", None)
    if original is None or adapter is None or isinstance(adapter, FastMessageAdapter):
        return adapter is not None
    view = pytypes.ModuleType(original.__name__)
    view.__dict__.update(original.__dict__)
    view.jsonrpc_message_adapter = FastMessageAdapter(adapter)  # type: ignore[attr-defined]
    sdk_stdio.types = view
    return True


@asynccontextmanager
async def stdio_server() -> AsyncIterator[Any]:
    from mcp.server import stdio as sdk_stdio

    if not _install():
        log.debug("the SDK's stdio transport changed shape; using it unmodified")
    async with sdk_stdio.stdio_server() as streams:
        yield streams
