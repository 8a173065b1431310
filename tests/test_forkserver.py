"""The suite's fork server stands in for ``python -m server`` faithfully: output, exit status, signals, environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess

from tests import forkserver
from tests.helpers import ROOT, child_env, forked_command, server_command

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def _run(command: list[str], **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(command, cwd=ROOT, env=child_env(**env), capture_output=True, timeout=120)


def _stdio(**env: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        forked_command("--sandbox"),
        cwd=ROOT,
        env=child_env(**env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(INIT).encode() + b"\n")
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline())["id"] == 1  # it is up and serving this pipe
    return proc


def test_a_forked_server_prints_what_a_fresh_interpreter_prints_for_the_same_environment() -> None:
    args = ("--sandbox", "tools")
    fresh = _run(server_command(*args, real=True), CLEVERTAP_MCP_READ_ONLY="true")
    forked = _run(forked_command(*args), CLEVERTAP_MCP_READ_ONLY="true")
    assert (forked.returncode, forked.stdout) == (fresh.returncode, fresh.stdout) == (0, fresh.stdout)
    # The child's environment is the launcher's, not the fork server's: without the variable, writes are listed.
    writable = _run(forked_command(*args))
    assert writable.returncode == 0 and len(writable.stdout) > len(forked.stdout)


def test_exit_codes_and_stderr_come_back_through_the_launcher() -> None:
    bad = _run(forked_command(), CLEVERTAP_MCP_BACKEND="nonsense")
    assert bad.returncode == 2 and b"CLEVERTAP_MCP_BACKEND" in bad.stderr, bad.stderr[-500:]


def test_sigterm_reaches_the_server_and_the_launcher_dies_of_it_too() -> None:
    proc = _stdio()
    proc.terminate()
    assert proc.wait(timeout=60) == -signal.SIGTERM
    assert proc.stdout is not None and proc.stdout.read() == b""  # the server's end of the pipe is closed


def test_killing_the_launcher_kills_the_server() -> None:
    proc = _stdio()
    proc.kill()
    assert proc.wait(timeout=60) == -signal.SIGKILL
    # Only the server held the other end of stdout: end of file means it is gone.
    assert proc.stdout is not None and proc.stdout.read() == b""


def test_end_of_stdin_ends_the_server_with_status_zero() -> None:
    proc = _stdio()
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0


def test_the_recorded_pid_is_the_process_holding_the_pipes() -> None:
    proc = _stdio()
    try:
        assert proc.stdout is not None
        server = forkserver.server_pid(proc.pid)
        assert server != proc.pid
        ours = os.readlink(f"/proc/self/fd/{proc.stdout.fileno()}")  # pipe:[inode], the read end
        theirs = {os.readlink(f"/proc/{server}/fd/{fd}") for fd in os.listdir(f"/proc/{server}/fd")}
        assert ours.startswith("pipe:") and ours in theirs  # (the server moves stdout off fd 1 to keep it clean)
    finally:
        proc.kill()
        proc.wait(timeout=60)
