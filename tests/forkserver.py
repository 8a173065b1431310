"""A fork server for the suite's ``python -m server`` subprocesses: the server's imports are paid once per test process.

Most of a server subprocess's start-up is importing the ``mcp`` SDK and pydantic models. Tests that only need *a* real
server process (real pipes, sockets or files for stdio, a real HTTP port, real exit codes and signals) run
``tests/launch_server.py`` instead of ``python -m server``. That launcher is a few milliseconds of standard library:
it hands its stdin, stdout and stderr, its arguments, environment and folder to this process, which forks a child from
its already-imported image. The child takes those descriptors as 0, 1 and 2, replaces its environment, and runs
``server`` as ``__main__`` exactly as ``python -m server`` would, then exits through the interpreter's own shutdown.
The launcher waits for the child's exit status and ends the same way (same code, or killed by the same signal); it
forwards SIGTERM, SIGINT and SIGHUP, and if the launcher is killed, the child is killed too.

One fork server serves the whole run: the xdist controller starts it (``tests/conftest.py``) and hands its socket to
the workers, so it preloads while they collect. A process without one (``-n 0``) starts its own on first use. Tests
that measure a process itself (its imports, its memory, its open descriptors by pid) keep a real ``python -m server``:
see ``tests.helpers.server_command(real=True)``.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
import runpy
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

# What ``python -m server`` imports on its way to answering (stdio and HTTP, every backend), but nothing a test
# checks is imported lazily: ``tests/test_fast_start.py`` and the chart tests run a real interpreter for that.
PRELOAD = (
    "server.cli",
    "server.protocol.app",
    "server.runtime",
    "server.transports.stdio",
    "server.transports.http",
    "tools.catalog",
)
MAX_REQUEST_BYTES = 1 << 20
SOCKET_ENV = "CLEVERTAP_TESTS_FORKSERVER_SOCKET"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_lock = threading.Lock()
_own: dict[int, str] = {}  # pid of a test process -> the socket of the fork server it started for itself


class Handle:
    """A running fork server. It also ends when the process that started it exits (its stdin closes)."""

    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, "forkserver.sock")
        # Its own environment is never read: each child replaces it with its launcher's.
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.forkserver", self.path], cwd=ROOT, stdin=subprocess.PIPE
        )

    def stop(self) -> None:
        """Close its stdin: it kills whatever it still runs, and exits."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            self._proc.stdin.close()
        self._proc.wait(timeout=60)


def socket_path(timeout_s: float = 120.0) -> str:
    """The run's fork server socket (started by this process if the run has none), once it accepts connections."""
    with _lock:
        path = os.environ.get(SOCKET_ENV) or _own.get(os.getpid())
        if path is None:
            folder = tempfile.mkdtemp(prefix="clevertap-mcp-fork-")
            handle = Handle(folder)
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            atexit.register(handle.stop)  # runs first
            path = _own[os.getpid()] = handle.path
    deadline = time.monotonic() + timeout_s  # a hang guard for a loaded machine, not a timing
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the fork server did not start within {timeout_s:.0f} s (socket {path})")
        time.sleep(0.02)
    return path


def server_pid(launcher_pid: int, timeout_s: float = 120.0) -> int:
    """The pid of the server a launcher (by its own pid) stands for: for tests that read the process by pid."""
    record = os.path.join(socket_path() + ".pids", str(launcher_pid))
    deadline = time.monotonic() + timeout_s  # a hang guard, not a timing
    while not os.path.exists(record):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no server recorded for launcher {launcher_pid}")
        time.sleep(0.02)
    with open(record) as f:
        return int(f.read())


@dataclass
class Job:
    """One server to start: what the launcher handed over."""

    args: list[str]
    env: dict[str, str]
    cwd: str
    fds: list[int]


def _read_request(conn: socket.socket) -> Job:
    data, fds, _flags, _addr = socket.recv_fds(conn, 65536, 3)
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
        if len(data) > MAX_REQUEST_BYTES:
            raise ValueError("request too large")
        more = conn.recv(65536)
        if not more:
            raise ValueError("launcher closed before its request was complete")
        data += more
    body = json.loads(data[4 : 4 + int.from_bytes(data[:4], "big")])
    if len(fds) != 3:
        raise ValueError(f"expected 3 descriptors, got {len(fds)}")
    return Job(args=list(body["args"]), env=dict(body["env"]), cwd=str(body["cwd"]), fds=fds)


def serve(path: str) -> Job:
    """Accept launchers until stdin closes; returns only in a forked child, with the job that child must run."""
    for name in PRELOAD:
        __import__(name)
    _warm_schemas()
    gc.freeze()  # the children's collections skip the preloaded heap, and do not copy its pages by touching it
    if threading.active_count() != 1:  # forking a process with threads copies their locks, not the threads
        raise RuntimeError(f"preloading started threads: {threading.enumerate()}")

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)

    pids = path + ".pids"  # launcher pid -> server pid, one file each
    os.makedirs(pids, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    listener.listen(64)
    os.rename(path + ".tmp", path)  # the socket appears only once it accepts connections
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(wake_r, selectors.EVENT_READ, "reap")
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "parent")
    children: dict[int, socket.socket] = {}

    while True:
        for key, _ in sel.select():
            if key.data == "parent":
                if not os.read(sys.stdin.fileno(), 4096):  # the test process is gone or done: so are we
                    for pid in children:
                        _kill(pid)
                    os._exit(0)
            elif key.data == "reap":
                try:
                    while os.read(wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
                _reap(children, sel)
            elif key.data == "accept":
                conn, _ = listener.accept()
                try:
                    launcher = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
                    job = _read_request(conn)
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    print(f"forkserver: bad request: {exc}", file=sys.stderr, flush=True)
                    conn.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    for fd in (wake_r, wake_w):
                        os.close(fd)
                    for sock in (listener, conn, *children.values()):
                        sock.close()
                    sel.close()
                    return job
                for fd in job.fds:
                    os.close(fd)
                record = os.path.join(pids, str(launcher))
                with open(record + ".tmp", "w") as f:
                    f.write(str(pid))
                os.rename(record + ".tmp", record)
                conn.sendall(f"{pid}\n".encode())
                children[pid] = conn
                sel.register(conn, selectors.EVENT_READ, pid)
            else:  # a launcher's connection: it only ever closes, when the launcher ends or is killed
                pid = key.data
                if not key.fileobj.recv(1):  # type: ignore[union-attr]
                    sel.unregister(key.fileobj)
                    if children.pop(pid, None) is not None:
                        _kill(pid)
                    key.fileobj.close()  # type: ignore[union-attr]


def _warm_schemas() -> None:
    """Make the catalog's JSON schemas once here, not in every child (each process caches its own)."""
    from server.protocol import app
    from tools.catalog import CATALOG

    for spec in CATALOG:
        app._schema(spec.input_model, "validation")
        app._schema(spec.output_model, "serialization")


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _reap(children: dict[int, socket.socket], sel: selectors.BaseSelector) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.sendall(f"exit {status}\n".encode())
            sel.unregister(conn)
            conn.close()


def run(job: Job) -> None:
    """Become ``python -m server`` with the launcher's descriptors, environment, folder and arguments."""
    for target, fd in enumerate(job.fds):
        os.dup2(fd, target)
    for fd in job.fds:
        if fd > 2:
            os.close(fd)
    os.chdir(job.cwd)
    os.environ.clear()
    os.environ.update(job.env)
    sys.argv = ["-m", *job.args]
    runpy.run_module("server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    # Outside any try/finally of the serving loop, so a child's exit runs none of the fork server's clean-up.
    run(serve(sys.argv[1]))
