"""Benchmark clevertap-mcp against its floors: cold start, tools/list size, call latency, upload, export, memory.

    python bench/run.py [--quick] [--only coldstart,toolslist,latency,bulk] [--runs N] [--calls N]
                        [--upload N] [--export N] [--aggregate N] [--latency-tool NAME --latency-args JSON]

Prints machine info and a Markdown table of every figure beside its target, writes the figures as JSON to
bench/results/last.json. A missed target prints MISSED and still exits 0; the exit code is 1 only when a measurement
could not run at all (a process died, timed out or answered nonsense). Every process it starts is its own child,
bound to 127.0.0.1, given a timeout, and stopped by pid at the end. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import re
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "last.json"
PYTHON = sys.executable
SERVER_CMD = [PYTHON, "-m", "server"]
MINIMAL_CMD = [PYTHON, "-m", "bench.floors.minimal_server"]
HTTPX_FLOOR = [PYTHON, str(ROOT / "bench" / "floors" / "httpx_upload.py")]
EXPORT_FLOOR = [PYTHON, str(ROOT / "bench" / "floors" / "httpx_export.py")]
SANDBOX_ACCOUNT = "DEMO-SANDBOX"
SANDBOX_PASSCODE = "sandbox"
PROTOCOL_VERSION = "2025-11-25"
LATENCY_TOOL = "clevertap_search_actions"
LATENCY_ARGS: dict[str, Any] = {"intent": "count events", "limit": 1}
ECHO_ARGS: dict[str, Any] = {"text": "count events"}

sys.path.insert(0, str(ROOT / "bench" / "floors"))
sys.path.insert(0, str(ROOT))
from httpx_upload import EVENT_NAME, make_events  # noqa: E402

from tools.names import TOOL_NAMES  # noqa: E402  (generated from the catalog; imports no tool)

EXPECTED_TOOLS = len(TOOL_NAMES)


class BenchError(RuntimeError):
    """The benchmark itself could not measure (as opposed to a target being missed)."""


# -- figures -------------------------------------------------------------------------------------------------------


@dataclass
class Figure:
    section: str
    name: str
    value: float | None
    unit: str
    target: str = ""
    ok: bool | None = None
    note: str = ""

    def shown(self) -> str:
        if self.value is None:
            return "-"
        v = self.value
        if self.unit == "x":
            return f"{v:.2f}x"
        if float(v).is_integer():
            return f"{v:,.0f} {self.unit}".strip()
        if abs(v) >= 1000:
            return f"{v:,.0f} {self.unit}".strip()
        if abs(v) >= 100:
            return f"{v:.0f} {self.unit}".strip()
        if abs(v) >= 10:
            return f"{v:.1f} {self.unit}".strip()
        return f"{v:.2f} {self.unit}".strip()

    def status(self) -> str:
        if self.ok is None:
            return ""
        return "ok" if self.ok else "MISSED"


@dataclass
class Report:
    machine: dict[str, Any]
    config: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def add(self, *figs: Figure) -> None:
        self.figures.extend(figs)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1), the way p50/p99 are usually quoted."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


# -- processes -----------------------------------------------------------------------------------------------------


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without credentials, backend choices or proxies, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLEVERTAP_", "MEMBRANE_")) and k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def stop(proc: subprocess.Popen[Any], grace_s: float = 5.0) -> None:
    """Stop one child by its pid: close its stdin, then SIGTERM, then SIGKILL."""
    if proc.poll() is None and proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=grace_s)


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of a process, in MiB."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0]) / 1024
    return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RpcProcess:
    """A stdio MCP server as a child process, spoken to in raw JSON-RPC lines (no SDK client in the way).

    Reads and writes go through ``select`` on the pipes with a deadline, so a hung or dead server raises BenchError
    instead of hanging the benchmark; large requests are written while the answer pipe is drained.
    """

    def __init__(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.stderr_file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_file, bufsize=0
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin.fileno()
        self._out = self.proc.stdout.fileno()
        os.set_blocking(self._in, False)
        self._buf = bytearray()
        self._scan = 0
        self._next_id = 0
        self.stderr_text = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr_tail(self, limit: int | None = 2000) -> str:
        if self.stderr_file.closed:
            text = self.stderr_text
        else:
            self.stderr_file.seek(0)
            text = self.stderr_file.read().decode(errors="replace")
        return text if limit is None else text[-limit:]

    def _fail(self, what: str) -> BenchError:
        code = self.proc.poll()
        state = f"exited with {code}" if code is not None else "still running"
        return BenchError(f"{self.name}: {what} ({state}); stderr tail:\n{self.stderr_tail()}")

    def _pump(self, deadline: float, pending: memoryview | None) -> memoryview | None:
        """Wait for the answer pipe (and the request pipe while ``pending`` bytes remain); move what is ready."""
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise self._fail("timed out")
        with selectors.DefaultSelector() as sel:
            sel.register(self._out, selectors.EVENT_READ)
            if pending is not None and len(pending):
                sel.register(self._in, selectors.EVENT_WRITE)
            ready = sel.select(remaining)
        for key, _ in ready:
            if key.fd == self._out:
                chunk = os.read(self._out, 1 << 20)
                if not chunk:
                    raise self._fail("closed stdout")
                self._buf += chunk
            elif pending is not None:
                try:
                    n = os.write(self._in, pending[: 1 << 20])
                except BrokenPipeError:
                    raise self._fail("closed stdin") from None
                pending = pending[n:]
        return pending

    def write(self, data: bytes, deadline: float) -> None:
        pending: memoryview | None = memoryview(data)
        while pending is not None and len(pending):
            pending = self._pump(deadline, pending)

    def _line(self, deadline: float) -> bytes:
        while True:
            idx = self._buf.find(b"\n", self._scan)
            if idx >= 0:
                line = bytes(self._buf[:idx])
                del self._buf[: idx + 1]
                self._scan = 0
                return line
            self._scan = len(self._buf)
            self._pump(deadline, None)

    def request_bytes(self, method: str, params: dict[str, Any] | None = None) -> tuple[int, bytes]:
        self._next_id += 1
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            msg["params"] = params
        return self._next_id, json.dumps(msg, separators=(",", ":")).encode() + b"\n"

    def roundtrip(self, req_id: int, data: bytes, timeout_s: float) -> tuple[dict[str, Any], int]:
        """Send one pre-encoded request and wait for its answer; returns (message, answer size in bytes)."""
        deadline = time.perf_counter() + timeout_s
        pending: memoryview | None = memoryview(data)
        while pending is not None and len(pending):
            pending = self._pump(deadline, pending)
        while True:
            line = self._line(deadline)
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                raise self._fail(f"printed a non-JSON line on stdout: {line[:200]!r}") from None
            if msg.get("id") == req_id and "method" not in msg:
                return msg, len(line)
            if "method" in msg and "id" in msg:  # a request from the server: decline it
                reply = {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "not supported"}}
                self.write(json.dumps(reply).encode() + b"\n", deadline)

    def call(self, method: str, params: dict[str, Any] | None = None, timeout_s: float = 60.0) -> dict[str, Any]:
        req_id, data = self.request_bytes(method, params)
        msg, _ = self.roundtrip(req_id, data, timeout_s)
        if "error" in msg:
            raise self._fail(f"{method} answered a JSON-RPC error: {msg['error']}")
        result: dict[str, Any] = msg["result"]
        return result

    def initialize(self, timeout_s: float = 60.0) -> float:
        """The handshake; returns seconds from spawn to the initialize answer."""
        params = {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "clevertap-mcp-bench", "version": "0"},
        }
        self.call("initialize", params, timeout_s)
        elapsed = time.perf_counter() - self.started
        self.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n', time.perf_counter() + timeout_s)
        return elapsed

    def tool(self, name: str, arguments: dict[str, Any], timeout_s: float = 60.0) -> dict[str, Any]:
        """tools/call; raises BenchError when the tool reports isError (the benchmark's calls are all valid)."""
        result = self.call("tools/call", {"name": name, "arguments": arguments}, timeout_s)
        if result.get("isError"):
            text = " ".join(c.get("text", "") for c in result.get("content", []))
            raise BenchError(f"{self.name}: {name} returned isError: {text[:1000]}")
        return result

    def close(self) -> None:
        with contextlib.suppress(Exception):
            os.set_blocking(self._in, True)
        stop(self.proc)
        self.stderr_text = self.stderr_tail(None)
        self.stderr_file.close()


@contextlib.contextmanager
def rpc(name: str, cmd: list[str], env: dict[str, str]) -> Iterator[RpcProcess]:
    proc = RpcProcess(name, cmd, env)
    try:
        yield proc
    finally:
        proc.close()


@contextlib.contextmanager
def sandbox_api(timeout_s: float = 180.0) -> Iterator[str]:
    """A fresh ``python -m server sandbox serve`` on a free loopback port; yields its base URL once it answers."""
    port = free_port()
    cmd = [*SERVER_CMD, "sandbox", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.perf_counter() + timeout_s
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise BenchError(f"sandbox serve exited with {proc.returncode}: {log.read().decode()[-2000:]}")
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
                if time.perf_counter() > deadline:
                    raise BenchError(f"sandbox serve did not listen on {port} within {timeout_s:.0f} s")
                time.sleep(0.05)
            warm_up(base, deadline)
            yield base
        finally:
            stop(proc)


def warm_up(base: str, deadline: float) -> None:
    """One tiny upload, so the sandbox's lazy first-request work (opening its seeded database) is not measured."""
    record = {
        "type": "event",
        "identity": "bench-warmup",
        "evtName": "Bench Warmup",
        "evtData": {},
        "ts": 1_700_000_000,
    }
    req = urllib.request.Request(
        base + "/1/upload",
        data=json.dumps({"d": [record]}).encode(),
        headers={
            "X-CleverTap-Account-Id": SANDBOX_ACCOUNT,
            "X-CleverTap-Passcode": SANDBOX_PASSCODE,
            "Content-Type": "application/json",
        },
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=max(1.0, deadline - time.perf_counter())) as resp:
        answer = json.loads(resp.read())
    if answer.get("processed") != 1:
        raise BenchError(f"the sandbox did not accept the warm-up upload: {answer}")


def _run_floor(cmd: list[str], what: str, timeout_s: float) -> dict[str, Any]:
    """Run a floor script; its last stdout line is its JSON result."""
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=child_env(), capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise BenchError(f"the {what} did not finish within {timeout_s:.0f} s") from None
    if done.returncode != 0:
        raise BenchError(f"the {what} failed ({done.returncode}): {done.stdout[-500:]!r} {done.stderr[-1500:]!r}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def run_floor_upload(base: str, n: int, start_ts: int, offset: int, timeout_s: float) -> dict[str, Any]:
    cmd = [*HTTPX_FLOOR, "--base-url", base, "--n", str(n), "--start-ts", str(start_ts), "--offset", str(offset)]
    return _run_floor(cmd, "httpx floor", timeout_s)


def run_floor_export(base: str, date_int: int, timeout_s: float) -> dict[str, Any]:
    cmd = [*EXPORT_FLOOR, "--base-url", base, "--event", EVENT_NAME, "--day", str(date_int), "--batch-size", "5000"]
    return _run_floor(cmd, "httpx export floor", timeout_s)


# -- machine -------------------------------------------------------------------------------------------------------


def load_average() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return float(Path("/proc/loadavg").read_text().split()[0])
    return None


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_total = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_total = round(int(line.split()[1]) / 1024 / 1024, 1)
    versions = {}
    for pkg in ("mcp", "pydantic", "httpx", "anyio"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[pkg] = metadata.version(pkg)
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "loadavg_start": load_average(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": affinity,
        "mem_gib": mem_total,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": platform.platform(),
        "packages": versions,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


# -- sections ------------------------------------------------------------------------------------------------------


def sandbox_env() -> dict[str, str]:
    return child_env()


def bench_coldstart(report: Report, runs: int) -> None:
    """Spawn to initialize answer, interleaved (alternating which side starts), after one unmeasured warm-up each."""
    sides = {"server": [*SERVER_CMD, "--sandbox"], "minimal": MINIMAL_CMD}
    times: dict[str, list[float]] = {k: [] for k in sides}
    for side, cmd in sides.items():  # warm the page cache and the bytecode caches
        with rpc(side, cmd, sandbox_env()) as p:
            p.initialize()
    for i in range(runs):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        for side in order:
            with rpc(side, sides[side], sandbox_env()) as p:
                times[side].append(p.initialize())
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["server"] / med["minimal"]
    best = {k: min(v) for k, v in times.items()}
    report.details["coldstart_s"] = times
    report.add(
        Figure("cold start", "server: spawn to initialize answer (median)", med["server"] * 1000, "ms"),
        Figure("cold start", "minimal mcp server (median)", med["minimal"] * 1000, "ms"),
        Figure(
            "cold start",
            "ratio server / minimal",
            ratio,
            "x",
            "<= 1.10x",
            ratio <= 1.10,
            f"{runs} runs each; best {best['server'] * 1000:.0f} / {best['minimal'] * 1000:.0f} ms",
        ),
    )


def approx_tokens(text: str) -> int:
    """A BPE-like estimate for JSON text (uncalibrated; for tracking change, bytes/4 is the headline figure).

    Counts words of up to 8 letters, groups of up to 3 digits and runs of up to 2 symbols (``":``, ``{"``) as one
    token each, which is roughly how BPE vocabularies split schema JSON.
    """
    return len(re.findall(r"[A-Za-z]{1,8}|\d{1,3}|[^\sA-Za-z\d]{1,2}", text))


def bench_toolslist(report: Report) -> None:
    with rpc("server", [*SERVER_CMD, "--sandbox"], sandbox_env()) as p:
        p.initialize()
        req_id, data = p.request_bytes("tools/list")
        msg, line_bytes = p.roundtrip(req_id, data, 60)
    tools: list[dict[str, Any]] = msg["result"]["tools"]
    per_tool = []
    for t in tools:
        text = json.dumps(t, separators=(",", ":"), ensure_ascii=False)
        parts = {
            key: len(json.dumps(t.get(key), separators=(",", ":"), ensure_ascii=False).encode()) if key in t else 0
            for key in ("description", "inputSchema", "outputSchema", "annotations")
        }
        per_tool.append(
            {"name": t["name"], "bytes": len(text.encode()), "tokens_approx": approx_tokens(text), "parts": parts}
        )
    per_tool.sort(key=lambda r: -r["bytes"])
    total_text = json.dumps(tools, separators=(",", ":"), ensure_ascii=False)
    total = len(total_text.encode())
    # The budget is what a model reads of each tool on every request; output schemas are not counted.
    facing = [{k: t[k] for k in ("name", "description", "inputSchema") if k in t} for t in tools]
    facing_bytes = len(json.dumps(facing, separators=(",", ":"), ensure_ascii=False).encode())
    report.details["tools_list"] = {"count": len(tools), "wire_line_bytes": line_bytes, "per_tool": per_tool}
    report.add(
        Figure("tools/list", "tool count", len(tools), "", f"== {EXPECTED_TOOLS}", len(tools) == EXPECTED_TOOLS),
        Figure(
            "tools/list",
            "model-facing size (name + description + inputSchema)",
            facing_bytes / 1024,
            "KB",
            "<= 24 KB",
            facing_bytes <= 24 * 1024,
        ),
        Figure("tools/list", "total size (compact JSON of the tools array)", total / 1024, "KB"),
        Figure("tools/list", "approx tokens, bytes/4", total / 4, "tok"),
        Figure("tools/list", "approx tokens, BPE-like heuristic", approx_tokens(total_text), "tok"),
        Figure("tools/list", f"largest tool: {per_tool[0]['name']}", per_tool[0]["bytes"], "B"),
    )


def bench_latency(report: Report, calls: int, tool: str, args: dict[str, Any]) -> None:
    """Sequential tools/call round trips; the two servers alternate in blocks of 50 so drift hits both alike."""
    warmup = 20
    block = 50
    with (
        rpc("server", [*SERVER_CMD, "--sandbox"], sandbox_env()) as srv,
        rpc("minimal", MINIMAL_CMD, sandbox_env()) as mini,
    ):
        srv.initialize()
        mini.initialize()
        time.sleep(0.5)
        idle = {"server": memory_mb(srv.pid), "minimal": memory_mb(mini.pid)}
        srv.call("tools/list")
        mini.call("tools/list")
        idle["server_after_tools_list"] = memory_mb(srv.pid)
        sides = {"server": (srv, tool, args), "minimal": (mini, "echo", ECHO_ARGS)}
        samples: dict[str, list[float]] = {k: [] for k in sides}
        for proc, name, args in sides.values():
            for _ in range(warmup):
                proc.tool(name, args)
        done = 0
        while done < calls:
            n = min(block, calls - done)
            for side, (proc, name, args) in sides.items():
                for _ in range(n):
                    req_id, data = proc.request_bytes("tools/call", {"name": name, "arguments": args})
                    t0 = time.perf_counter()
                    msg, _ = proc.roundtrip(req_id, data, 30)
                    samples[side].append(time.perf_counter() - t0)
                    if "error" in msg or msg["result"].get("isError"):
                        raise BenchError(f"{side}: {name} failed: {json.dumps(msg)[:500]}")
            done += n
        idle["server_after_calls"] = memory_mb(srv.pid)
    p50 = {k: percentile(v, 0.5) * 1000 for k, v in samples.items()}
    p99 = {k: percentile(v, 0.99) * 1000 for k, v in samples.items()}
    ratio = p50["server"] / p50["minimal"]
    report.details["latency_ms"] = {
        "p50": p50,
        "p99": p99,
        "mean": {k: statistics.fmean(v) * 1000 for k, v in samples.items()},
    }
    report.details["memory_mb"] = idle
    delta = idle["server"]["VmRSS"] - idle["minimal"]["VmRSS"]
    report.add(
        Figure("latency", f"server {tool} p50", p50["server"], "ms", note=f"{calls} sequential calls"),
        Figure("latency", f"server {tool} p99", p99["server"], "ms"),
        Figure("latency", "minimal echo p50", p50["minimal"], "ms"),
        Figure("latency", "minimal echo p99", p99["minimal"], "ms"),
        Figure("latency", "ratio of p50s server / minimal", ratio, "x", "<= 1.25x", ratio <= 1.25),
        Figure("memory", "server idle RSS after initialize (--sandbox)", idle["server"]["VmRSS"], "MB"),
        Figure("memory", "minimal server idle RSS", idle["minimal"]["VmRSS"], "MB"),
        Figure("memory", "idle difference server - minimal", delta, "MB", "<= +25 MB", delta <= 25),
        Figure("memory", "server RSS after tools/list", idle["server_after_tools_list"]["VmRSS"], "MB"),
        Figure("memory", f"server RSS after {calls} calls", idle["server_after_calls"]["VmRSS"], "MB"),
    )


def export_through_mcp(srv: RpcProcess, date_int: int, timeout_s: float) -> tuple[int, int]:
    """All ``Bench Upload`` records of the day through clevertap_get_events and its cursor tool: (records, calls)."""
    args = {"event_name": EVENT_NAME, "from": date_int, "to": date_int, "batch_size": 5000}
    page = srv.tool("clevertap_get_events", args, timeout_s)
    calls = 1
    records = 0
    while True:
        sc = page.get("structuredContent") or {}
        records += len(sc.get("records") or [])
        if sc.get("done") or not sc.get("cursor"):
            return records, calls
        page = srv.tool("clevertap_get_events_by_cursor", {"cursor": sc["cursor"]}, timeout_s)
        calls += 1


def _yesterday_on_the_sandbox(timeout_s: float) -> tuple[int, int, dict[str, str]]:
    """Yesterday (its first second, and YYYYMMDD), and the environment of a server on the bench's sandbox."""
    day = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    start_ts = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp())
    env = child_env(
        {
            "CLEVERTAP_ACCOUNT_ID": SANDBOX_ACCOUNT,
            "CLEVERTAP_PASSCODE": SANDBOX_PASSCODE,
            "CLEVERTAP_MCP_CALL_BUDGET": str(int(timeout_s)),
        }
    )
    return start_ts, int(day.strftime("%Y%m%d")), env


def bench_bulk(report: Report, n_upload: int, n_export: int, timeout_s: float, runs: int = 3) -> None:
    """Upload through MCP vs the httpx floor (fresh sandbox each, interleaved, ``runs`` pairs: medians, as one pair
    on a shared 2-core machine moves by a third), then export a range through MCP; peak memory."""
    start_ts, date_int, env = _yesterday_on_the_sandbox(timeout_s)
    floor_rates: list[float] = []
    mcp_rates: list[float] = []
    floor: dict[str, Any] = {}
    export_pairs: list[tuple[float, float]] = []
    for run_no in range(runs):
        with sandbox_api() as base_floor:
            floor = run_floor_upload(base_floor, n_upload, start_ts, 0, timeout_s)
        if floor["processed"] != n_upload:
            raise BenchError(f"the httpx floor uploaded {floor['processed']} of {n_upload} events")
        floor_rates.append(floor["events_per_s"])
        last = run_no == runs - 1
        events = make_events(n_upload, start_ts)
        with sandbox_api() as base:
            env["CLEVERTAP_API_BASE_URL"] = base
            with rpc("server", [*SERVER_CMD, "--backend", "clevertap"], env) as srv:
                srv.initialize()
                time.sleep(0.3)
                idle = memory_mb(srv.pid)
                # One small upload first: the lazy imports and client set-up of the first call are not throughput.
                srv.tool("clevertap_upload_events", {"events": make_events(1, start_ts, name="Bench Warmup")}, 60)
                req_id, data = srv.request_bytes(
                    "tools/call", {"name": "clevertap_upload_events", "arguments": {"events": events}}
                )
                del events
                t0 = time.perf_counter()
                msg, _ = srv.roundtrip(req_id, data, timeout_s + 30)
                up_s = time.perf_counter() - t0
                del data
                result = msg.get("result") or {}
                if "error" in msg or result.get("isError"):
                    raise BenchError(f"clevertap_upload_events failed: {json.dumps(msg)[:1000]}")
                processed = (result.get("structuredContent") or {}).get("processed")
                if processed != n_upload:
                    raise BenchError(f"clevertap_upload_events processed {processed} of {n_upload}")
                mcp_rates.append(n_upload / up_s)
                if not last:
                    continue
                after_upload = memory_mb(srv.pid)

                if n_export > n_upload:  # top the range up outside the measurement
                    top = run_floor_upload(base, n_export - n_upload, start_ts, n_upload, timeout_s)
                    if top["processed"] != n_export - n_upload:
                        raise BenchError(f"top-up uploaded {top['processed']} of {n_export - n_upload}")
                expected = max(n_export, n_upload)
                # Ours and the floor alternate on the same server and data; the median of the pairs' ratios is
                # the figure (one pair on a shared machine moves by a third).
                for _ in range(runs):
                    t0 = time.perf_counter()
                    records, calls = export_through_mcp(srv, date_int, timeout_s)
                    ex_s = time.perf_counter() - t0
                    if records != expected:
                        raise BenchError(f"export returned {records} records, expected {expected}")
                    export_floor = run_floor_export(base, date_int, timeout_s)
                    export_pairs.append(((records / ex_s), export_floor["rec_per_s"]))
                peak = memory_mb(srv.pid)
    floor_rate = statistics.median(floor_rates)
    mcp_rate = statistics.median(mcp_rates)
    ratio = statistics.median(m / f for m, f in zip(mcp_rates, floor_rates, strict=True))
    up_s = n_upload / mcp_rate
    floor = {**floor, "events_per_s": floor_rate, "seconds": n_upload / floor_rate, "runs": floor_rates}
    ex_rate = statistics.median(m for m, _ in export_pairs)
    ex_floor = statistics.median(f for _, f in export_pairs)
    ex_ratio = statistics.median(m / f for m, f in export_pairs)
    report.details["bulk"] = {
        "upload_events": n_upload,
        "mcp_upload_s": up_s,
        "mcp_rates": mcp_rates,
        "floor": floor,
        "export_records": records,
        "export_calls": calls,
        "export_s": ex_s,
        "export_pairs": export_pairs,
        "memory_mb": {"idle": idle, "after_upload": after_upload, "after_export": peak},
    }
    report.add(
        Figure(
            "bulk upload",
            f"clevertap_upload_events, {n_upload:,} events (median of {runs})",
            mcp_rate,
            "ev/s",
            note=f"{up_s:.2f} s",
        ),
        Figure(
            "bulk upload",
            "httpx floor, same batches, 15 concurrent",
            floor["events_per_s"],
            "ev/s",
            note=f"{floor['seconds']:.2f} s",
        ),
        Figure(
            "bulk upload",
            "ratio of throughputs server / floor (median of pairs)",
            ratio,
            "x",
            ">= 0.95x",
            ratio >= 0.95,
        ),
        Figure(
            "export",
            f"get_events + by_cursor, {records:,} records (median of {len(export_pairs)})",
            ex_rate,
            "rec/s",
            note=f"{records / ex_rate:.2f} s, {calls} calls, batch_size 5000",
        ),
        Figure(
            "export", "httpx cursor loop, same range (floor)", ex_floor, "rec/s", note=f"{records / ex_floor:.2f} s"
        ),
        Figure(
            "export", "ratio of throughputs server / floor (median of pairs)", ex_ratio, "x", ">= 0.9x", ex_ratio >= 0.9
        ),
        Figure("memory", "server peak RSS (VmHWM) after upload + export", peak["VmHWM"], "MB"),
        Figure("memory", "server RSS after export", peak["VmRSS"], "MB"),
    )


# -- memory slopes ------------------------------------------------------------------------------------------------


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares growth of MB per 10,000 records through ``(records, MB)`` points."""
    xs = [n / 10_000 for n, _ in points]
    ys = [mb for _, mb in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def json_loads_floor(data: bytes, timeout_s: float) -> float:
    """Peak RSS (MiB) of a process that only reads and parses ``data`` (see ``bench/floors/json_loads.py``)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        f.write(data)
        f.flush()
        done = subprocess.run(
            [PYTHON, str(ROOT / "bench" / "floors" / "json_loads.py"), f.name],
            cwd=ROOT,
            env=child_env(),
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    if done.returncode != 0:
        raise BenchError(f"the json.loads floor failed ({done.returncode}): {done.stderr[-1500:]!r}")
    return float(json.loads(done.stdout.splitlines()[-1])["VmHWM"])


def bench_memory(report: Report, sizes: list[int], timeout_s: float) -> None:
    """Peak memory growth per 10k records of an upload and of an export, over three sizes: for each size a fresh
    sandbox, a fresh server that uploads the records in one call (peak RSS after), and a fresh server that exports
    them through the cursor tools (peak RSS after); the upload's floor is a process that only parses the request."""
    start_ts, date_int, env = _yesterday_on_the_sandbox(timeout_s)
    uploads: list[tuple[int, float]] = []
    floors: list[tuple[int, float]] = []
    exports: list[tuple[int, float]] = []
    for n in sizes:
        with sandbox_api() as base:
            env["CLEVERTAP_API_BASE_URL"] = base
            with rpc("server", [*SERVER_CMD, "--backend", "clevertap"], env) as srv:
                srv.initialize()
                srv.tool("clevertap_upload_events", {"events": make_events(1, start_ts, name="Bench Warmup")}, 60)
                req_id, data = srv.request_bytes(
                    "tools/call", {"name": "clevertap_upload_events", "arguments": {"events": make_events(n, start_ts)}}
                )
                msg, _ = srv.roundtrip(req_id, data, timeout_s + 30)
                processed = ((msg.get("result") or {}).get("structuredContent") or {}).get("processed")
                if processed != n:
                    raise BenchError(f"clevertap_upload_events processed {processed} of {n}: {json.dumps(msg)[:500]}")
                uploads.append((n, memory_mb(srv.pid)["VmHWM"]))
            floors.append((n, json_loads_floor(data, timeout_s)))
            del data
            with rpc("server", [*SERVER_CMD, "--backend", "clevertap"], env) as srv:
                srv.initialize()
                records, _ = export_through_mcp(srv, date_int, timeout_s)
                if records != n:
                    raise BenchError(f"the export returned {records} of {n} records")
                exports.append((n, memory_mb(srv.pid)["VmHWM"]))
    up, fl, ex = slope(uploads), slope(floors), slope(exports)
    report.details["memory_slopes"] = {"sizes": sizes, "upload": uploads, "json_loads": floors, "export": exports}
    shown = ", ".join(f"{n // 1000}k" for n in sizes)

    def peaks(points: list[tuple[int, float]]) -> str:
        return "peaks " + " / ".join(f"{mb:.0f}" for _, mb in points) + f" MB at {shown}"

    report.add(
        Figure(
            "memory",
            "export peak growth (fresh server per size)",
            ex,
            "MB/10k",
            "<= 1 MB/10k",
            ex <= 1.0,
            peaks(exports),
        ),
        Figure("memory", "upload peak growth (fresh server per size)", up, "MB/10k", note=peaks(uploads)),
        Figure("memory", "json.loads floor growth (parse the same request)", fl, "MB/10k", note=peaks(floors)),
        Figure(
            "memory",
            "upload growth / json.loads floor growth",
            up / fl if fl > 0 else None,
            "x",
            "<= 1.05x",
            (up / fl <= 1.05) if fl > 0 else None,
        ),
    )


# -- aggregation ---------------------------------------------------------------------------------------------------


def bench_aggregate(report: Report, n_events: int, budget_s: float, timeout_s: float) -> None:
    """clevertap_aggregate_events over ``n_events`` events of one closed day on ``sandbox serve`` (direct backend):
    the scan through its handles inside ``budget_s`` per call, peak memory after each call (it must not grow with
    the records scanned), the exact totals, then a breakdown by another property from the local store."""
    day = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    start_ts = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp())
    date_int = int(day.strftime("%Y%m%d"))
    with tempfile.TemporaryDirectory(prefix="clevertap-mcp-bench-") as cache, sandbox_api() as base:
        t0 = time.perf_counter()
        loaded = run_floor_upload(base, n_events, start_ts, 0, timeout_s)
        if loaded["processed"] != n_events:
            raise BenchError(f"the loader uploaded {loaded['processed']} of {n_events} events")
        load_s = time.perf_counter() - t0
        env = child_env(
            {
                "CLEVERTAP_ACCOUNT_ID": SANDBOX_ACCOUNT,
                "CLEVERTAP_PASSCODE": SANDBOX_PASSCODE,
                "CLEVERTAP_API_BASE_URL": base,
                "CLEVERTAP_MCP_CALL_BUDGET": str(budget_s),
                "XDG_CACHE_HOME": cache,  # the local store of scans lives here, and goes with it
            }
        )
        query = {"event_name": EVENT_NAME, "from": date_int, "to": date_int}
        first = {**query, "group_by": ["Sku"], "metrics": ["count", "users", "sum:Amount"], "limit": 5}
        with rpc("server", [*SERVER_CMD, "--backend", "clevertap"], env) as srv:
            srv.initialize()
            idle = memory_mb(srv.pid)
            t0 = time.perf_counter()
            steps: list[dict[str, Any]] = []
            args: dict[str, Any] = first
            while True:
                out = srv.tool("clevertap_aggregate_events", args, budget_s + 60)["structuredContent"]
                steps.append({"records_scanned": out["records_scanned"], **memory_mb(srv.pid)})
                if not out.get("partial"):
                    break
                if len(steps) > 1000:
                    raise BenchError("the aggregation did not finish in 1000 calls")
                args = {**first, "handle": out["handle"]}
            scan_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            follow = srv.tool(
                "clevertap_aggregate_events", {**query, "group_by": ["Channel"], "metrics": ["count", "sum:Amount"]}
            )["structuredContent"]
            follow_s = time.perf_counter() - t0
    expected_sum = sum(i % 500 for i in range(n_events))
    totals = out["totals"]
    if (totals["count"], round(totals["sum:Amount"])) != (n_events, expected_sum):
        raise BenchError(f"the aggregation answered {totals}, expected count {n_events} and sum {expected_sum}")
    if follow["source"] != "local store" or follow["totals"]["count"] != n_events:
        raise BenchError(f"the follow-up did not come from the local store: {follow}")
    first_peak, last_peak = steps[0]["VmHWM"], steps[-1]["VmHWM"]
    report.details["aggregate"] = {
        "events": n_events,
        "load_s": load_s,
        "budget_s": budget_s,
        "calls": len(steps),
        "scan_s": scan_s,
        "follow_up_s": follow_s,
        "idle_mb": idle,
        "steps": steps,
        "totals": totals,
        "follow_up": follow,
    }
    growth = last_peak - first_peak
    report.add(
        Figure(
            "aggregate",
            f"scan + group by Sku, {n_events:,} events (count, users, sum)",
            n_events / scan_s,
            "rec/s",
            note=f"{scan_s:.1f} s, {len(steps)} call(s) of <= {budget_s:.0f} s via handle",
        ),
        Figure(
            "aggregate",
            f"peak RSS after {steps[0]['records_scanned']:,} vs {n_events:,} records scanned",
            growth,
            "MB",
            "< 50 MB growth",
            len(steps) == 1 or growth < 50,
            note=f"{first_peak:.0f} -> {last_peak:.0f} MB (idle {idle['VmRSS']:.0f} MB)",
        ),
        Figure(
            "aggregate",
            "follow-up by Channel from the local store (no export)",
            follow_s * 1000,
            "ms",
            note=f"source: {follow['source']}",
        ),
    )


# -- output --------------------------------------------------------------------------------------------------------


def tools_markdown(report: Report) -> str:
    listing = report.details.get("tools_list")
    if not listing:
        return ""
    lines = [
        "",
        "tools/list per tool (bytes of compact JSON; ~tok = bytes/4):",
        "",
        "| tool | bytes | ~tok | description | inputSchema | outputSchema | annotations |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in listing["per_tool"]:
        p = row["parts"]
        lines.append(
            f"| {row['name']} | {row['bytes']:,} | {row['bytes'] // 4:,} | {p['description']:,} | {p['inputSchema']:,} "
            f"| {p['outputSchema']:,} | {p['annotations']:,} |"
        )
    return "\n".join(lines)


def markdown(report: Report) -> str:
    m = report.machine
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {m['mem_gib']} GiB, "
        f"Python {m['python']}, mcp {m['packages'].get('mcp', '?')}, {m['date']}"
        + (" — quick run" if report.config.get("quick") else ""),
        *([f"WARNING: {m['warning']}"] if m.get("warning") else []),
        "",
        "| section | figure | value | target | status | note |",
        "|---|---|---|---|---|---|",
    ]
    for f in report.figures:
        lines.append(f"| {f.section} | {f.name} | {f.shown()} | {f.target} | {f.status()} | {f.note} |")
    for section, err in report.errors.items():
        first = err.strip().splitlines()[0] if err.strip() else "failed"
        lines.append(f"| {section} | BENCHMARK BROKE | - | | ERROR | {first[:150]} |")
    return "\n".join(lines)


SECTIONS = ("coldstart", "toolslist", "latency", "bulk", "memory", "http", "count", "aggregate")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark clevertap-mcp against its floors.")
    parser.add_argument("--quick", action="store_true", help="small sizes (the CI smoke run)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--runs", type=int, help="cold-start spawns per side (default 11, quick 3)")
    parser.add_argument("--calls", type=int, help="sequential tool calls per side (default 1000, quick 100)")
    parser.add_argument("--upload", type=int, help="events to upload (default 100000, quick 10000)")
    parser.add_argument("--export", type=int, help="events in the exported range (default 200000, quick 20000)")
    parser.add_argument("--bulk-runs", type=int, help="upload pairs, server and floor interleaved (default 5, quick 1)")
    parser.add_argument("--latency-tool", default=LATENCY_TOOL, help="the server tool timed against echo")
    parser.add_argument("--latency-args", default=json.dumps(LATENCY_ARGS), help="its arguments as JSON")
    parser.add_argument("--aggregate", type=int, help="events the aggregation scans (default 1000000, quick 50000)")
    parser.add_argument("--aggregate-budget", type=float, default=30.0, help="call budget (s) of the aggregation")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed for one upload or export")
    parser.add_argument(
        "--http-requests", type=int, help="HTTP calls per client count and side (default 3000, quick 300)"
    )
    parser.add_argument("--http-pairs", type=int, help="HTTP measurement pairs (default 3, quick 1)")
    parser.add_argument(
        "--memory-sizes", help="records per memory-slope step (default 50000,100000,200000; quick 10000,20000,40000)"
    )
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the results")
    ns = parser.parse_args(argv)
    only = [s.strip() for s in ns.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    config = {
        "quick": ns.quick,
        "runs": ns.runs or (3 if ns.quick else 11),
        "calls": ns.calls or (100 if ns.quick else 1000),
        "upload": ns.upload or (10_000 if ns.quick else 100_000),
        "export": ns.export or (20_000 if ns.quick else 200_000),
        "bulk_runs": ns.bulk_runs or (1 if ns.quick else 5),
        "http_requests": ns.http_requests or (300 if ns.quick else 3000),
        "http_pairs": ns.http_pairs or (1 if ns.quick else 3),
        "aggregate": ns.aggregate or (50_000 if ns.quick else 1_000_000),
        "memory_sizes": [int(x) for x in ns.memory_sizes.split(",")]
        if ns.memory_sizes
        else ([10_000, 20_000, 40_000] if ns.quick else [50_000, 100_000, 200_000]),
        "latency_tool": ns.latency_tool,
        "latency_args": json.loads(ns.latency_args),
        "sections": only,
    }
    # On SIGTERM unwind through the context managers, so every child is stopped before we exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report = Report(machine_info(), config)
    m = report.machine
    print(f"# clevertap-mcp bench: {m['cpu']} x{m['cores']}, Python {m['python']}", file=sys.stderr)
    # bench/paths.py imports this module's helpers as ``bench.run``: run as a script, this module is that one.
    sys.path.insert(0, str(ROOT))
    sys.modules.setdefault("bench.run", sys.modules[__name__])
    from bench import paths

    steps: dict[str, Callable[[], None]] = {
        "coldstart": lambda: bench_coldstart(report, config["runs"]),
        "toolslist": lambda: bench_toolslist(report),
        "latency": lambda: bench_latency(report, config["calls"], ns.latency_tool, config["latency_args"]),
        "bulk": lambda: bench_bulk(report, config["upload"], config["export"], ns.timeout, config["bulk_runs"]),
        "memory": lambda: bench_memory(report, config["memory_sizes"], ns.timeout),
        "http": lambda: paths.bench_http(report, config["http_requests"], config["http_pairs"]),
        "count": lambda: paths.bench_count(report, 5 if ns.quick else 21),
        "aggregate": lambda: bench_aggregate(report, config["aggregate"], ns.aggregate_budget, ns.timeout * 3),
    }
    for name in only:
        started = time.perf_counter()
        print(f"# {name} ...", file=sys.stderr, flush=True)
        try:
            steps[name]()
        except Exception as exc:
            detail = str(exc) if isinstance(exc, BenchError) else traceback.format_exc()
            report.errors[name] = detail
            print(f"# {name} BROKE: {detail}", file=sys.stderr)
        print(f"# {name} took {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    report.machine["loadavg_end"] = load_average()
    busy = max(report.machine["loadavg_start"] or 0, report.machine["loadavg_end"] or 0)
    if busy > 0.5 * (report.machine["usable_cores"] or 1):
        report.machine["warning"] = (
            f"load average {busy:.1f} on {report.machine['usable_cores']} cores: figures are noisy"
        )
    ns.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": report.machine,
        "config": report.config,
        "figures": [asdict(f) for f in report.figures],
        "details": report.details,
        "errors": report.errors,
    }
    ns.json.write_text(json.dumps(payload, indent=2) + "\n")
    print(markdown(report))
    print(tools_markdown(report))
    missed = [f.name for f in report.figures if f.ok is False]
    if missed:
        print(f"\nMISSED {len(missed)} target(s): {'; '.join(missed)}")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
