"""Configuration of the sandbox emulator: the demo account, the seed size and the runtime test knobs."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

DEFAULT_SEED_PROFILES = 5_000
DEFAULT_SEED_EVENTS = 200_000

# Knobs that POST /__sandbox/config may change at runtime (everything else is fixed at construction).
RUNTIME_KNOBS = frozenset(
    {
        "count_partial_polls",
        "trends_partial_polls",
        "cursor_in_progress",
        "fail_next",
        "slow_s",
        "max_concurrency",
        "event_cursor_ttl_s",
        "event_cursor_idle_s",
        "profile_cursor_ttl_s",
        "discarded_events",
        "faults",
    }
)

# What a planned fault does to a request it matches:
#   "429", "500", "503": answer that status (JSON error body; Retry-After when ``retry_after`` is set), before auth;
#   "slow": wait ``delay_s``, then answer normally;
#   "drop": close the connection without an answer (a transport error for the client);
#   "malformed": answer HTTP 200 with a body that is not JSON;
#   "truncated": answer the real body cut in half (Content-Length matches the half: the JSON is cut);
#   "cut": announce the real body's length, send half of it, then close the connection;
#   "apply_then_500" / "apply_then_drop": handle the request (an upload is stored), then answer 500 / drop.
FAULT_KINDS = (
    "429",
    "500",
    "503",
    "slow",
    "drop",
    "malformed",
    "truncated",
    "cut",
    "apply_then_500",
    "apply_then_drop",
)


@dataclass
class Fault:
    """One planned fault for the API requests whose path starts with ``path`` (every API path when None) and, when
    given, whose method is ``method``; it applies to the next ``times`` matching requests (None: until removed)."""

    kind: str
    times: int | None = 1
    path: str | None = None
    method: str | None = None
    retry_after: float | None = None
    delay_s: float = 5.0

    def __post_init__(self) -> None:
        self.kind = str(self.kind)
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}: use one of {', '.join(FAULT_KINDS)}")
        if self.times is not None:
            self.times = int(self.times)
            if self.times < 1:
                raise ValueError("fault 'times' must be at least 1 (or null: until removed)")
        if self.method is not None:
            self.method = str(self.method).upper()
        if self.retry_after is not None:
            self.retry_after = float(self.retry_after)
        self.delay_s = float(self.delay_s)

    @classmethod
    def parse(cls, value: Any) -> Fault:
        """A Fault from itself, a JSON object with the same fields, or a bare kind string."""
        if isinstance(value, Fault):
            return value
        if isinstance(value, str | int):
            return cls(kind=str(value))
        if not isinstance(value, Mapping):
            raise ValueError(f"a fault must be an object with a 'kind', not {value!r}")
        unknown = set(value) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        return cls(**dict(value))

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return self.path is None or path.startswith(self.path)


@dataclass
class SandboxConfig:
    """How a sandbox app behaves.

    ``db_path=None`` works on a private in-memory copy of the cached seed database; a path makes the state persistent
    (the file is seeded when it does not exist yet). ``anchor`` is the UTC day the demo data ends at (default: today);
    the same anchor and sizes always give the same data.
    """

    account_id: str = "DEMO-SANDBOX"
    passcode: str = "sandbox"
    db_path: str | None = None
    seed_profiles: int = DEFAULT_SEED_PROFILES
    seed_events: int = DEFAULT_SEED_EVENTS
    anchor: dt.date | None = None
    cache_dir: str | None = None
    # Counts: the first answer is partial + req_id, then K-1 more partial polls before success (0 = answer at once).
    count_partial_polls: int = 1
    # The same for counts/trends.json and counts/top.json.
    trends_partial_polls: int = 0
    # The first N cursor GETs answer code 2 "Request still in progress".
    cursor_in_progress: int = 0
    # Canned answers for the next /1/ requests (before auth), as (http_status, body) pairs, one per request:
    # a str body is sent as text/plain, anything else as JSON.
    fail_next: list[tuple[int, Any]] = field(default_factory=list)
    slow_s: float = 0.0
    max_concurrency: int | None = None
    event_cursor_ttl_s: float = 4 * 3600.0
    event_cursor_idle_s: float = 3600.0
    profile_cursor_ttl_s: float = 4 * 86400.0
    # Event names that upload rejects with code 528 ("discarded event").
    discarded_events: list[str] = field(default_factory=list)
    # Planned faults (see ``Fault``), tried in order; the first that matches a request applies to it.
    faults: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.faults = [Fault.parse(f) for f in self.faults]

    def knobs(self) -> dict[str, Any]:
        """The runtime knobs as JSON-able values."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name in RUNTIME_KNOBS}
        out["faults"] = [dataclasses.asdict(f) for f in self.faults]
        return out
