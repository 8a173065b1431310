"""Configuration of the sandbox emulator: the demo account, the seed size and the runtime test knobs."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field, fields
from typing import Any

from .faults import FAULT_KINDS, Fault

__all__ = ["DEFAULT_SEED_EVENTS", "DEFAULT_SEED_PROFILES", "FAULT_KINDS", "RUNTIME_KNOBS", "Fault", "SandboxConfig"]

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
