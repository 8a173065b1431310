"""Where the server spends CPU on a workload: runs it under cProfile and prints the hottest functions.

    python bench/callprofile.py latency [--calls 1000]      # sequential clevertap_search_actions on --sandbox
    python bench/callprofile.py upload [--events 100000]    # one clevertap_upload_events to a sandbox serve
    python bench/callprofile.py export [--events 100000]    # upload with the httpx floor, export through the tools

The server exits on stdin EOF, which is when cProfile writes its file; the table shows self time (tottime) and
cumulative time grouped by function, and a summary of self time per top-level package. Timings under cProfile are
inflated, so read the shares, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from floors.httpx_upload import EVENT_NAME, make_events
from run import (
    LATENCY_ARGS,
    LATENCY_TOOL,
    PYTHON,
    SANDBOX_ACCOUNT,
    SANDBOX_PASSCODE,
    BenchError,
    RpcProcess,
    child_env,
    run_floor_upload,
    sandbox_api,
)


def _package(filename: str) -> str:
    path = filename.replace("\\", "/")
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1].split("/", 1)[0]
    for ours in ("/server/", "/tools/"):
        if ours in path and "/lib/python" not in path:
            return ours.strip("/")
    if path.startswith("~") or path.startswith("<"):
        return "builtins"
    return "stdlib"


def report(prof_path: str, top: int) -> None:
    stats = pstats.Stats(prof_path)
    by_pkg: dict[str, float] = defaultdict(float)
    raw = stats.stats  # type: ignore[attr-defined]
    for (filename, _, _), (_, _, tottime, _, _) in raw.items():
        by_pkg[_package(filename)] += tottime
    total = sum(by_pkg.values())
    print(f"self time by package (total {total:.2f} s):")
    for pkg, t in sorted(by_pkg.items(), key=lambda kv: -kv[1])[:15]:
        print(f"  {t:7.2f} s  {100 * t / total:5.1f}%  {pkg}")
    print()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("workload", choices=["latency", "upload", "export"])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--top", type=int, default=30)
    ns = parser.parse_args(argv)
    fd, prof = tempfile.mkstemp(suffix=".prof")
    os.close(fd)
    profiled = [PYTHON, "-m", "cProfile", "-o", prof, "-m", "server"]
    day = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    start_ts = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp())

    if ns.workload == "latency":
        p = RpcProcess("server", [*profiled, "--sandbox"], child_env())
        try:
            p.initialize()
            t0 = time.perf_counter()
            for _ in range(ns.calls):
                p.tool(LATENCY_TOOL, LATENCY_ARGS)
            print(f"{ns.calls} calls in {time.perf_counter() - t0:.2f} s (profiled)")
        finally:
            p.close()
    else:
        with sandbox_api() as base:
            env = child_env(
                {
                    "CLEVERTAP_ACCOUNT_ID": SANDBOX_ACCOUNT,
                    "CLEVERTAP_PASSCODE": SANDBOX_PASSCODE,
                    "CLEVERTAP_API_BASE_URL": base,
                    "CLEVERTAP_MCP_CALL_BUDGET": "900",
                }
            )
            if ns.workload == "export":
                run_floor_upload(base, ns.events, start_ts, 0, 600)
            p = RpcProcess("server", [*profiled, "--backend", "clevertap"], env)
            try:
                p.initialize()
                t0 = time.perf_counter()
                if ns.workload == "upload":
                    p.tool("clevertap_upload_events", {"events": make_events(ns.events, start_ts)}, 900)
                else:
                    date_int = int(day.strftime("%Y%m%d"))
                    args = {"event_name": EVENT_NAME, "from": date_int, "to": date_int, "batch_size": 5000}
                    page = p.tool("clevertap_get_events", args, 600)
                    while not page["structuredContent"].get("done"):
                        page = p.tool("clevertap_get_events_by_cursor", {"cursor": page["structuredContent"]["cursor"]})
                print(f"{ns.workload} in {time.perf_counter() - t0:.2f} s (profiled)")
            finally:
                p.close()
    if not Path(prof).stat().st_size:
        raise BenchError("the server wrote no profile (did it exit cleanly on stdin EOF?)")
    report(prof, ns.top)
    if os.environ.get("CALLPROFILE_KEEP"):
        print(f"profile kept in {prof}", file=sys.stderr)
    else:
        Path(prof).unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
