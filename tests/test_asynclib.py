"""``server.backends.asynclib``: a module that is not installed is looked for once, then refused at once."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from typing import Any

import httpx
import pytest

import server.backends  # noqa: F401  # what every backend imports: it records sniffio's absence
from server.backends.asynclib import remember_missing

pytestmark = pytest.mark.anyio


class Recorder(importlib.abc.MetaPathFinder):
    """A finder that only notes the names the import system asks it about."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        self.asked.append(fullname)
        return None


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    finder = Recorder()
    sys.meta_path.insert(0, finder)
    try:
        yield finder
    finally:
        sys.meta_path.remove(finder)


def test_a_missing_module_is_refused_without_searching_again(recorder: Recorder) -> None:
    name = "clevertap_mcp_no_such_module"
    remember_missing(name)
    try:
        assert recorder.asked == [name]  # looked for once
        for _ in range(3):
            with pytest.raises(ImportError):
                importlib.import_module(name)
        assert recorder.asked == [name]  # and never again
    finally:
        sys.modules.pop(name, None)


def test_an_installed_module_is_left_alone() -> None:
    remember_missing("json")
    assert sys.modules["json"] is not None and importlib.import_module("json").dumps([1]) == "[1]"


async def test_httpx_requests_still_work_and_do_not_search_for_sniffio(recorder: Recorder) -> None:
    async def app(
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/")).text == "ok"
    assert "sniffio" not in recorder.asked
