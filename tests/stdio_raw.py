"""A real ``python -m server`` subprocess driven with raw JSON-RPC lines, keeping every byte it writes."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

from tests import forkserver
from tests.helpers import LAUNCHER, ROOT, child_env, server_command
from tools.names import TOOL_NAMES

READ_TIMEOUT_S = 120.0  # a hang guard: a loaded machine running several servers at once is slow to start them


def strict_json(text: str) -> Any:
    """``json.loads`` that refuses the NaN, Infinity and -Infinity literals (they are not JSON)."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"non-JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


class StdioServer:
    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None, *, real: bool = False) -> None:
        """``real``: a fresh interpreter instead of a child of the fork server (see ``server_command``)."""
        command = server_command(*args, real=real)
        self.forked = LAUNCHER in command
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env if env is not None else child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.stdout: list[bytes] = []
        self.stderr: list[bytes] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, True), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, False), daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self._next_id = 1000

    def _pump(self, stream: IO[bytes], is_stdout: bool) -> None:
        for line in iter(stream.readline, b""):
            if is_stdout:
                self.stdout.append(line)
                self.lines.put(line)
            else:
                self.stderr.append(line)

    @property
    def pid(self) -> int:
        """The server's own pid (under the fork server, ``proc`` is its launcher)."""
        return forkserver.server_pid(self.proc.pid) if self.forked else self.proc.pid

    def stdout_lines(self) -> list[bytes]:
        return list(self.stdout)

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.write(json.dumps(message).encode() + b"\n")

    def answer(self, request_id: Any, timeout: float = READ_TIMEOUT_S) -> dict[str, Any]:
        """Read stdout lines until the answer to ``request_id``; every line must be strict JSON-RPC."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no answer to id {request_id!r}; stderr: {b''.join(self.stderr)[-2000:]!r}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            message = strict_json(line.decode("utf-8"))
            assert isinstance(message, dict) and message.get("jsonrpc") == "2.0", line[:300]
            if message.get("id") == request_id and ("result" in message or "error" in message):
                return message

    def request(self, method: str, params: dict[str, Any] | None = None, timeout: float = READ_TIMEOUT_S) -> Any:
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self.answer(self._next_id, timeout)

    def initialize(self, protocol_version: str = "2025-11-25") -> dict[str, Any]:
        init = self.request(
            "initialize",
            {"protocolVersion": protocol_version, "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
        )
        assert init["result"]["protocolVersion"] == protocol_version, init
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return init

    def call_tool(self, name: str, arguments: Any, timeout: float = READ_TIMEOUT_S) -> dict[str, Any]:
        """``tools/call``: the JSON-RPC answer (``result`` or ``error``)."""
        return self.request("tools/call", {"name": name, "arguments": arguments}, timeout)

    def tools_list_works(self) -> None:
        answer = self.request("tools/list")
        assert "result" in answer, answer
        assert {t["name"] for t in answer["result"]["tools"]} == set(TOOL_NAMES)

    def close(self) -> None:
        """Close stdin (EOF ends the session), wait for the exit, and collect the rest of the output."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for thread in self._threads:
            thread.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def output(self) -> bytes:
        """Every byte written to stdout and stderr so far."""
        return b"".join(self.stdout) + b"".join(self.stderr)
