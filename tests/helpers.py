"""Shared test helpers: an MCP client on a runtime, result accessors, dates, and the sandbox served over HTTP."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import mcp.types as types
from mcp import Client

from server.config import load_settings
from server.protocol.app import build_server
from server.runtime import Runtime
from tests import forkserver
from tools.api import Executor

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = str(ROOT / "tests" / "launch_server.py")  # what server_command runs under the fork server


def day(offset: int = 0) -> int:
    """Today (UTC) plus ``offset`` days, as YYYYMMDD."""
    d = dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=offset)
    return int(d.strftime("%Y%m%d"))


def make_runtime(
    env: dict[str, str] | None = None, *, make_executor: Callable[[Runtime], Executor] | None = None, **overrides: Any
) -> Runtime:
    """A runtime on the settings ``env`` and ``overrides`` give (sandbox by default); ``make_executor`` builds its
    backend's executor instead (behind the same boundary)."""
    overrides.setdefault("backend", "sandbox")
    return Runtime(load_settings(env or {}, **overrides), make_executor=make_executor)


@contextlib.asynccontextmanager
async def mcp_client(runtime: Runtime | None = None, mode: str = "legacy", **kwargs: Any) -> AsyncIterator[Client]:
    runtime = runtime or make_runtime()
    server, _ = build_server(runtime)
    try:
        async with Client(server, mode=mode, **kwargs) as client:
            yield client
    finally:
        await runtime.aclose()


def ok(result: types.CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    return result.structured_content


def text(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


def err(result: types.CallToolResult) -> str:
    assert result.is_error, f"expected an error, got {result.structured_content}"
    return text(result)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_command(*args: str, real: bool = False) -> list[str]:
    """The command line of a ``python -m server args...`` subprocess.

    By default it goes through the run's fork server (``tests/forkserver.py``), which has the server's imports
    loaded already. ``real=True`` (or ``CLEVERTAP_TESTS_FORKSERVER=0`` in the environment) runs a fresh
    interpreter: for tests about the process itself (imports, memory, descriptors by pid)."""
    if real or os.environ.get("CLEVERTAP_TESTS_FORKSERVER") == "0":
        return [sys.executable, "-m", "server", *args]
    return forked_command(*args)


def forked_command(*args: str) -> list[str]:
    """``python -m server args...`` through the fork server, whatever the environment says."""
    return [sys.executable, "-I", "-S", LAUNCHER, forkserver.socket_path(), *args]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEVERTAP_", "MEMBRANE_"))}
    env.update(extra)
    return env


@contextlib.contextmanager
def loopback_server(argv: list[str], port: int) -> Iterator[str]:
    """``argv`` (run by ``python`` unless it starts with the interpreter) in a subprocess that listens on
    127.0.0.1:``port``; yields its base URL once it accepts connections, and stops it on exit."""
    # stderr goes to a file, not a pipe nobody drains: a chatty server must not block on a full pipe.
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        argv if argv[0] == sys.executable else [sys.executable, *argv],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                stderr.seek(0)
                raise RuntimeError(f"{argv} exited: {stderr.read().decode(errors='replace')[-3000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{argv} did not start listening within 60 s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        stderr.close()


@contextlib.contextmanager
def sandbox_http(*args: str) -> Iterator[str]:
    """`clevertap-mcp sandbox serve` in a subprocess on a free loopback port; yields its base URL."""
    port = free_port()
    with loopback_server(server_command("sandbox", "serve", "--port", str(port), *args), port) as url:
        yield url


def peak_rss_kib(pid: int) -> int:
    """A process's peak resident memory (VmHWM), in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on a free loopback port by a threaded stdlib server, quietly; yields its base URL."""
    quiet = type(handler.__name__, (handler,), {"log_message": lambda self, *args: None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), quiet)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
