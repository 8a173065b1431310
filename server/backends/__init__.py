"""The executors: how the server reaches CleverTap (see ``tools.api.Executor``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from server.backends import asynclib  # noqa: F401  # imported for its effect: httpx requests stop searching for sniffio
from tools.api import ActionInfo, ActionRun


class LocalActions(Protocol):
    """The local action catalog that non-Membrane executors delegate ``run_action``/``search_actions`` to."""

    async def run(self, key_or_id: str, input: Mapping[str, Any]) -> ActionRun:
        """Run a catalog action by key or id."""
        ...

    async def search(self, intent: str, limit: int) -> list[ActionInfo]:
        """Find catalog actions by natural-language intent."""
        ...


__all__ = ["LocalActions"]
