"""Benchmark sections for the paths an agent waits on, each against its floor in the same run: Streamable HTTP
throughput at several client counts, counts that CleverTap answers 'partial' once, and the embedded sandbox's count.

Imported by ``bench/run.py`` (sections ``http`` and ``count``); the figures and targets are those of issue 16.
"""

from __future__ import annotations

import contextlib
import json
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx

from bench.run import (
    PYTHON,
    ROOT,
    SANDBOX_ACCOUNT,
    SANDBOX_PASSCODE,
    SERVER_CMD,
    BenchError,
    Figure,
    Report,
    child_env,
    free_port,
    rpc,
    sandbox_api,
    stop,
)

HTTP_FLOOR = [PYTHON, str(ROOT / "bench" / "floors" / "minimal_http.py")]
HTTP_LOAD = [PYTHON, str(ROOT / "bench" / "floors" / "http_load.py")]
HTTP_TOOL = "clevertap_search_actions"
HTTP_ARGS: dict[str, Any] = {"intent": "count events", "limit": 1}
COUNT_ARGS: dict[str, Any] = {"event_name": "Charged", "from": "30 days ago", "to": "today"}


@contextlib.contextmanager
def listening(cmd: list[str], port: int, env: dict[str, str], timeout_s: float = 120.0) -> Iterator[str]:
    """``cmd`` in a child process; yields its URL once 127.0.0.1:``port`` accepts connections."""
    with open("/dev/null", "wb") as devnull:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=devnull, stderr=devnull)
    try:
        deadline = time.perf_counter() + timeout_s
        while True:
            if proc.poll() is not None:
                raise BenchError(f"{cmd[1:3]} exited with {proc.returncode} before listening")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.perf_counter() > deadline:
                raise BenchError(f"{cmd[1:3]} did not listen on {port} within {timeout_s:.0f} s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop(proc)


def _load(url: str, clients: int, requests: int, tool: str, args: dict[str, Any]) -> float:
    cmd = [*HTTP_LOAD, "--url", url, "--clients", str(clients), "--requests", str(requests), "--tool", tool]
    done = subprocess.run(
        [*cmd, "--args", json.dumps(args)], cwd=ROOT, env=child_env(), capture_output=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"http load failed: {done.stderr[-1500:]!r}")
    result = json.loads(done.stdout.splitlines()[-1])
    if result["errors"]:
        raise BenchError(f"{result['errors']} of {requests} HTTP calls to {tool} failed")
    return float(result["req_per_s"])


def bench_http(report: Report, requests: int, pairs: int, clients: tuple[int, ...] = (1, 8, 32)) -> None:
    """Our server over Streamable HTTP (sandbox backend, stateless) against the minimal stateless SDK server, the two
    measured alternately at each client count, ``pairs`` times: the ratio is the median of the pairs' ratios."""
    floor_port, ours_port = free_port(), free_port()
    ours_cmd = [*SERVER_CMD, "--sandbox", "--transport", "http", "--host", "127.0.0.1", "--port", str(ours_port)]
    with (
        listening([*HTTP_FLOOR, "--port", str(floor_port)], floor_port, child_env()) as floor_url,
        listening(ours_cmd, ours_port, child_env()) as ours_url,
    ):
        for n in clients:
            floors, ours = [], []
            for _ in range(pairs):
                floors.append(_load(floor_url, n, requests, "echo", {"text": "count events"}))
                ours.append(_load(ours_url, n, requests, HTTP_TOOL, HTTP_ARGS))
            ratio = statistics.median(o / f for o, f in zip(ours, floors, strict=True))
            report.details.setdefault("http", {})[str(n)] = {"floor": floors, "ours": ours}
            report.add(
                Figure("http", f"{n} client(s): {HTTP_TOOL} req/s", statistics.median(ours), "req/s"),
                Figure("http", f"{n} client(s): minimal stateless server, echo", statistics.median(floors), "req/s"),
                Figure("http", f"{n} client(s): ratio (median of {pairs} pairs)", ratio, "x", ">= 0.9x", ratio >= 0.9),
            )


def _floor_count(base: str, runs: int) -> list[float]:
    """A count the plain way: POST the query, then poll at once until CleverTap stops answering 'partial'."""
    headers = {"X-CleverTap-Account-Id": SANDBOX_ACCOUNT, "X-CleverTap-Passcode": SANDBOX_PASSCODE}
    today = time.strftime("%Y%m%d", time.gmtime())
    month_ago = time.strftime("%Y%m%d", time.gmtime(time.time() - 30 * 86400))
    body = {"event_name": COUNT_ARGS["event_name"], "from": int(month_ago), "to": int(today)}
    times = []
    with httpx.Client(base_url=base, headers=headers, timeout=60, trust_env=False) as client:
        for _ in range(runs + 1):  # the first one warms the connection and the store
            t0 = time.perf_counter()
            answer = client.post("/1/counts/events.json", json=body).json()
            while answer.get("status") == "partial":
                answer = client.get(f"/1/counts/events.json?req_id={answer['req_id']}").json()
            if answer.get("status") != "success":
                raise BenchError(f"floor count failed: {answer}")
            times.append(time.perf_counter() - t0)
    return times[1:]


def _tool_times(srv: Any, runs: int) -> list[float]:
    times = []
    for _ in range(runs + 1):
        t0 = time.perf_counter()
        result = srv.tool("clevertap_get_event_count", COUNT_ARGS, 60)
        times.append(time.perf_counter() - t0)
        sc = result.get("structuredContent") or {}
        if result.get("isError") or not sc.get("done"):
            raise BenchError(f"clevertap_get_event_count did not finish: {json.dumps(result)[:500]}")
    return times[1:]


def bench_count(report: Report, runs: int) -> None:
    """A count CleverTap answers 'partial' once (the sandbox's default) through the direct backend, against the
    same count polled at once with httpx; and the same count on the embedded ``--sandbox`` backend."""
    with sandbox_api() as base:
        floor = statistics.median(_floor_count(base, runs))
        env = child_env({"CLEVERTAP_ACCOUNT_ID": SANDBOX_ACCOUNT, "CLEVERTAP_PASSCODE": SANDBOX_PASSCODE})
        env["CLEVERTAP_API_BASE_URL"] = base
        with rpc("server", [*SERVER_CMD, "--backend", "clevertap"], env) as srv:
            srv.initialize()
            direct = statistics.median(_tool_times(srv, runs))
    with rpc("server", [*SERVER_CMD, "--sandbox"], child_env()) as srv:
        srv.initialize()
        embedded = statistics.median(_tool_times(srv, runs))
    report.details["count"] = {"floor_s": floor, "direct_s": direct, "embedded_s": embedded}
    report.add(
        Figure(
            "count",
            "count answered 'partial' once, direct backend (median)",
            direct * 1000,
            "ms",
            "<= 300 ms",
            direct <= 0.3,
            note=f"floor polled at once {floor * 1000:.1f} ms",
        ),
        Figure(
            "count",
            "embedded --sandbox count / served count polled at once",
            embedded / floor,
            "x",
            "<= 2x",
            embedded / floor <= 2.0,
            note=f"{embedded * 1000:.1f} ms vs {floor * 1000:.1f} ms",
        ),
    )
