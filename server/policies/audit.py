"""--audit-log PATH: JSON lines for every write: each request before it is sent and its outcome after, and each call.

The arguments themselves are never written: only a SHA-256 digest, so the log holds no secrets or personal data
and still lets an operator match an entry to a known payload. A log that cannot be written is a configuration
error at start-up, and a write request whose attempt line cannot be written is not sent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import threading
from typing import Any

from server.state.consent import payload_digest
from tools.api import JsonBody


def body_digest(body: Any) -> str:
    """The digest of a request body (an upload's pre-encoded bytes are hashed as they are sent)."""
    if isinstance(body, JsonBody):
        return hashlib.sha256(body.data).hexdigest()
    return payload_digest(body)


class AuditLog:
    def __init__(self, path: str) -> None:
        self.path = os.path.expanduser(path)
        self._lock = threading.Lock()
        try:
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        except OSError as exc:
            raise ValueError(
                f"the audit log {self.path!r} cannot be written ({exc.strerror or type(exc).__name__}); "
                "writes are not allowed without it: fix the path or its permissions, or start without --audit-log"
            ) from None

    def _append(self, entry: dict[str, Any]) -> None:
        entry = {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"), **entry}
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)

    def write(self, tool: str, arguments: Any, outcome: str, *, action_run_id: str | None = None, **extra: Any) -> None:
        """One tool call that can write: its outcome (``ok``, ``preview``, ``error:<layer>``, ``cancelled...``)."""
        entry: dict[str, Any] = {
            "event": "call",
            "tool": tool,
            "arguments_sha256": payload_digest(arguments),
            "outcome": outcome,
        }
        if action_run_id:
            entry["actionRunId"] = action_run_id
        entry.update(extra)
        self._append(entry)

    def attempt(self, tool: str | None, request: str, kind: str, payload_sha256: str) -> str:
        """A write request about to be sent (raises OSError when it cannot be logged); returns its attempt id."""
        attempt_id = secrets.token_hex(6)
        self._append(
            {
                "event": "attempt",
                "id": attempt_id,
                "tool": tool,
                "request": request,
                "kind": kind,
                "payload_sha256": payload_sha256,
            }
        )
        return attempt_id

    def outcome(self, attempt_id: str, outcome: str, **extra: Any) -> None:
        """What became of an attempt: ``ok ...``, ``error: ...``, or ``outcome unknown: ...``."""
        self._append({"event": "outcome", "id": attempt_id, "outcome": outcome, **extra})
