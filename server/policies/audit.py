"""--audit-log PATH: one JSON line per write attempt (time, tool, digest of the arguments, outcome, actionRunId).

The arguments themselves are never written: only a SHA-256 digest, so the log holds no secrets or personal data
and still lets an operator match an entry to a known payload.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from typing import Any

from server.state.consent import payload_digest


class AuditLog:
    def __init__(self, path: str) -> None:
        self.path = os.path.expanduser(path)
        self._lock = threading.Lock()
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)

    def write(self, tool: str, arguments: Any, outcome: str, *, action_run_id: str | None = None, **extra: Any) -> None:
        entry = {
            "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
            "tool": tool,
            "arguments_sha256": payload_digest(arguments),
            "outcome": outcome,
        }
        if action_run_id:
            entry["actionRunId"] = action_run_id
        entry.update(extra)
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
