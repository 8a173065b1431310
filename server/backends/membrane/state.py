"""The remembered Membrane connection id, so that a restart does not run ``ensure`` (and a new user action) again.

Kept in memory and in a small JSON file (mode 0600) in the configured state folder (``Settings.state_dir``), keyed
by the API URL and a non-reversible hash naming the credential (never the credential itself).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("clevertap_mcp.membrane")

STATE_FILE_NAME = "membrane-state.json"


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """``CLEVERTAP_MCP_STATE_DIR``, else ``$XDG_CONFIG_HOME/clevertap-mcp``, else ``~/.config/clevertap-mcp``: what
    ``Settings.membrane_state_dir`` resolves for the settings read from ``env`` (default: the process environment)."""
    from server.config import APP_DIR, load_settings, user_dir

    configured = load_settings(env).state_dir
    return configured.expanduser() if configured is not None else user_dir("config", env) / APP_DIR


class ConnectionStateStore:
    """Remembers one connection id per (API URL, credential hash). File errors are logged, never raised."""

    def __init__(self, directory: Path, *, persist: bool = True) -> None:
        self._directory = directory
        self._persist = persist
        self._memory: dict[str, str] = {}

    @property
    def path(self) -> Path:
        return self._directory / STATE_FILE_NAME

    @staticmethod
    def key(api_url: str, identity: str) -> str:
        return f"{api_url.rstrip('/')}#{identity}"

    def get(self, api_url: str, identity: str) -> str | None:
        key = self.key(api_url, identity)
        if key in self._memory:
            return self._memory[key]
        entry = self._read().get(key)
        if isinstance(entry, dict) and isinstance(entry.get("connection_id"), str):
            self._memory[key] = entry["connection_id"]
            return entry["connection_id"]
        return None

    def put(self, api_url: str, identity: str, connection_id: str) -> None:
        key = self.key(api_url, identity)
        if self._memory.get(key) == connection_id and self._read().get(key, {}).get("connection_id") == connection_id:
            return
        self._memory[key] = connection_id
        data = self._read()
        data[key] = {"connection_id": connection_id, "updated_at": int(time.time())}
        self._write(data)

    def forget(self, api_url: str, identity: str) -> None:
        key = self.key(api_url, identity)
        self._memory.pop(key, None)
        data = self._read()
        if key in data:
            del data[key]
            self._write(data)

    def _read(self) -> dict[str, Any]:
        if not self._persist:
            return {}
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            log.warning("cannot read %s: %s", self.path, type(exc).__name__)
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            log.warning("ignoring a corrupt state file %s", self.path)
            return {}
        connections = data.get("connections") if isinstance(data, dict) else None
        return dict(connections) if isinstance(connections, dict) else {}

    def _write(self, connections: dict[str, Any]) -> None:
        if not self._persist:
            return
        tmp: str | None = None
        try:
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".membrane-state-", dir=self._directory)
            # mkstemp creates the file readable and writable by its owner only (0600).
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"version": 1, "connections": connections}, fh, indent=2, sort_keys=True)
            os.replace(tmp, self.path)
            tmp = None
        except OSError as exc:
            log.warning("cannot write %s: %s", self.path, type(exc).__name__)
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
