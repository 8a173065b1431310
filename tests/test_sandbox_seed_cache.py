"""The sandbox's seed cache: processes that start together generate a seed database once, and all of them use it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, child_env

# Each child records whether it generated the file (by wrapping ``generate``) and prints the path it got.
_CHILD = """
import datetime as dt, sys, time
from server.backends.sandbox import seed
real = seed.generate
def counted(*args):
    print("generated", flush=True)
    time.sleep(0.5)  # widen the window in which the others would generate too
    real(*args)
seed.generate = counted
print(seed.ensure_seed(dt.date(2026, 5, 1), 40, 400, sys.argv[1]))
"""


def test_processes_starting_together_generate_the_seed_once(tmp_path: Path) -> None:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(tmp_path)], cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outputs = [child.communicate(timeout=120)[0].split() for child in children]
    assert all(child.returncode == 0 for child in children)
    assert sum(out.count("generated") for out in outputs) == 1, outputs
    paths = {out[-1] for out in outputs}
    assert len(paths) == 1
    (path,) = paths
    assert Path(path).is_file() and Path(path).stat().st_size > 0
    assert not list(tmp_path.glob("clevertap-mcp/*.tmp"))  # no half-written file left behind
    assert dt.date(2026, 5, 1).strftime("%Y%m%d") in path
