"""stdio over every kind of descriptor a client can hand the server: pipes and sockets (watched by the event loop),
and regular files (which no event loop can watch: the server falls back to a worker thread)."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

from tests.helpers import ROOT, child_env, server_command

INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
CALLS = [
    INIT,
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    *(
        {
            "jsonrpc": "2.0",
            "id": i,
            "method": "tools/call",
            "params": {"name": "clevertap_search_actions", "arguments": {"intent": "count events", "limit": 1}},
        }
        for i in range(1, 21)
    ),
    {"jsonrpc": "2.0", "id": 21, "method": "tools/list"},  # an answer far larger than one pipe write
]
REQUEST = "".join(json.dumps(m) + "\n" for m in CALLS).encode()


def _answers(raw: bytes) -> dict[int, Any]:
    lines = [json.loads(line) for line in raw.splitlines() if line.strip()]
    return {m["id"]: m for m in lines if "id" in m}


def _check(answers: dict[int, Any]) -> None:
    assert sorted(answers) == list(range(22))
    for i in range(1, 21):
        result = answers[i]["result"]
        assert result["isError"] is False and "get-event-count" in result["content"][0]["text"]
    assert len(answers[21]["result"]["tools"]) > 10


def test_regular_files_for_stdin_and_stdout(tmp_path: Path) -> None:
    requests, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    requests.write_bytes(REQUEST)
    with requests.open("rb") as stdin, out.open("wb") as stdout:
        done = subprocess.run(
            server_command("--sandbox"),
            cwd=ROOT,
            env=child_env(),
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    _check(_answers(out.read_bytes()))


def test_a_socket_for_stdin_and_stdout() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        proc = subprocess.Popen(
            server_command("--sandbox"),
            cwd=ROOT,
            env=child_env(),
            stdin=theirs.fileno(),
            stdout=theirs.fileno(),
            stderr=subprocess.DEVNULL,
        )
        theirs.close()
        try:
            ours.sendall(REQUEST)
            ours.shutdown(socket.SHUT_WR)
            ours.settimeout(120)
            raw = b""
            while True:
                chunk = ours.recv(1 << 16)
                if not chunk:
                    break
                raw += chunk
        finally:
            proc.wait(timeout=120)
    _check(_answers(raw))


def test_pipes_answer_every_call_in_order_of_ids() -> None:
    done = subprocess.run(
        server_command("--sandbox"),
        cwd=ROOT,
        env=child_env(),
        input=REQUEST,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    _check(_answers(done.stdout))
