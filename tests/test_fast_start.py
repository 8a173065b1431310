"""What ``python -m server`` imports before it answers ``initialize``: nothing it only needs to reach upstream (httpx)
or to draw (matplotlib). Read with ``-X importtime`` from a real stdio server, stopped right after its answer."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from tests.helpers import ROOT, child_env

INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "clevertap_real_time_user_count", "arguments": {}},
}
LAZY = ("httpx", "httpcore", "matplotlib", "numpy", "PIL")


def imported_until_answered(*messages: dict[str, object]) -> set[str]:
    """Top-level packages the server imported until it answered the last of ``messages`` (then it is killed)."""
    with subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "server", "--sandbox"],
        cwd=ROOT,
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            for message in messages:
                proc.stdin.write((json.dumps(message) + "\n").encode())
                proc.stdin.flush()
                answer = json.loads(proc.stdout.readline())
                assert answer["id"] == message["id"] and "result" in answer, answer
        finally:
            proc.send_signal(signal.SIGKILL)  # no shutdown imports in the log
        _, stderr = proc.communicate(timeout=30)
    lines = stderr.decode(errors="replace").splitlines()
    return {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in lines if line.startswith("import time:")}


def test_initialize_imports_nothing_only_upstream_calls_or_charts_need() -> None:
    at_start = imported_until_answered(INIT)
    assert "mcp" in at_start  # the log is read at all
    assert not at_start & set(LAZY), sorted(at_start & set(LAZY))
    # The control: a call that reaches (the sandbox's) CleverTap API does import httpx.
    after_a_call = imported_until_answered(INIT, CALL)
    assert "httpx" in after_a_call
