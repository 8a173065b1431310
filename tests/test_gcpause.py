"""``gc_paused`` holds back cyclic collection for a block and leaves the collector as it found it; settling for
serving freezes the built heap."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from server.codec.gcpause import gc_paused


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_paused_inside_enabled_after_even_on_error() -> None:
    gc.enable()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # nested: the inner block must not switch it back on early
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError), gc_paused():
        1 / 0  # noqa: B018
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_settling_freezes_the_built_heap_and_raises_the_first_threshold() -> None:
    """In a fresh interpreter (the test process's own collector is left alone): the objects alive once the server is
    built are frozen, and young collections run less often; a cycle made afterwards is still collected."""
    script = (
        "import gc, json, weakref\n"
        "from server.codec.gcpause import settle_for_serving\n"
        "import server.protocol.app\n"
        "before = gc.get_freeze_count()\n"
        "settle_for_serving()\n"
        "class Node: pass\n"
        "a = Node(); a.self = a; ref = weakref.ref(a); del a\n"
        "gc.collect()\n"
        "print(json.dumps([before, gc.get_freeze_count(), gc.get_threshold()[0], ref() is None]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    before, frozen, threshold, cycle_freed = json.loads(done.stdout)
    assert before == 0 and frozen > 10_000 and threshold >= 10_000 and cycle_freed
