"""What the tools need from the server, as protocols: the tools never import ``server``.

* ``CleverTapApi``: the one CleverTap wire client. It owns every wire quirk (envelope, ``status:"fail"`` in
  HTTP 200, pre-encoded cursors, ``partial`` + ``req_id`` polling, upload batching, concurrency caps).
* ``Executor``: how the server reaches CleverTap (membrane, clevertap, sandbox, or unconfigured).
* ``HandleStore``: short handles for multi-kilobyte cursors (memory now, shared stores later).
* ``ConsentSigner``: self-contained, signed confirmation tokens bound to one exact payload.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]
RecordKind = Literal["event", "profile", "token"]


@dataclass(frozen=True)
class RawResponse:
    """One upstream HTTP answer: status, parsed JSON body (or the text when it is not JSON), headers."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JsonBody:
    """A request body already encoded as strict JSON (UTF-8), sent as it is: a large upload is encoded once."""

    data: bytes


@dataclass(frozen=True)
class CountResult:
    """A count: ``count`` when done; ``req_id`` when CleverTap was still computing at the end of the budget."""

    done: bool
    count: int | None = None
    req_id: str | int | None = None
    body: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportPage:
    records: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True)
class UnprocessedRecord:
    index: int  # 0-based index in the caller's own list
    code: int | None
    error: str
    record: Any = None


@dataclass(frozen=True)
class UploadResult:
    processed: int
    unprocessed: list[UnprocessedRecord]
    batches: int
    # Batches that never got an answer (network failure, timeout): their records are neither processed nor
    # rejected. The caller's indices are listed so that only they are sent again.
    unsent: list[int] = field(default_factory=list)
    unsent_reason: str | None = None


class CleverTapApi(Protocol):
    async def call(
        self, method: str, path: str, *, query: Mapping[str, Any] | None = None, body: Any = None
    ) -> dict[str, Any]:
        """One call; returns the JSON body. Raises CleverTapError on HTTP errors and on ``status:"fail"``, typed
        where the answer means a known state (CampaignNotCompleted, ProfileNotFound)."""
        ...

    async def raw(
        self, method: str, path: str, *, query: Mapping[str, Any] | None = None, body: Any = None
    ) -> RawResponse:
        """One request sent once, its answer whatever the status; raises CleverTapCredentialsError when CleverTap
        refuses the credentials, and says when a write's answer was lost (it may or may not have been applied)."""
        ...

    async def count(self, path: str, body: Mapping[str, Any], *, budget_s: float) -> CountResult:
        """POST a count query and poll ``GET path?req_id=`` while it is ``partial``, inside ``budget_s``."""
        ...

    async def poll_count(self, path: str, req_id: str | int, *, budget_s: float) -> CountResult:
        """Continue polling a count that an earlier call left pending."""
        ...

    async def start_export(
        self, path: str, body: Mapping[str, Any], *, batch_size: int, flags: Mapping[str, bool] | None = None
    ) -> str | None:
        """POST an export query (events.json or profiles.json); returns the first cursor (None: nothing to read)."""
        ...

    async def export_page(self, path: str, cursor: str, *, budget_s: float) -> ExportPage:
        """GET one page by cursor (sent verbatim); retries ``code: 2`` on the same cursor inside ``budget_s``."""
        ...

    async def upload(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        kind: RecordKind,
        dry_run: bool = False,
        progress: ProgressFn | None = None,
    ) -> UploadResult:
        """POST /1/upload in batches (1000 events/profiles, 100 tokens), concurrently within the cap."""
        ...


@dataclass(frozen=True)
class ActionInfo:
    id: str
    key: str
    name: str
    description: str
    input_schema: Mapping[str, Any] | None = None
    read_only: bool | None = None


@dataclass(frozen=True)
class ActionRun:
    output: Any
    action_run_id: str | None = None


@dataclass(frozen=True)
class ConnectResult:
    """What ``clevertap_connect`` reports. ``state`` is READY when tools can be used."""

    backend: str
    state: str
    message: str
    next_step: str
    connection_id: str | None = None
    account_id: str | None = None
    region: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


class Executor(Protocol):
    """How the server reaches CleverTap. One implementation per backend."""

    name: str

    async def request(
        self, method: str, path: str, query: Mapping[str, Any] | None = None, body: Any = None
    ) -> RawResponse:
        """One raw CleverTap API call (``path`` like ``/1/counts/events.json``; query values sent as given)."""
        ...

    async def run_action(self, key_or_id: str, input: Mapping[str, Any]) -> ActionRun:
        """Run a catalog action by key or id."""
        ...

    async def search_actions(self, intent: str, limit: int) -> list[ActionInfo]:
        """Find actions by natural-language intent."""
        ...

    async def connect(self, wait_seconds: float, progress: ProgressFn | None = None) -> ConnectResult:
        """Make the backend ready, or say what the user must do."""
        ...


class HandleStore(Protocol):
    async def put(self, value: Mapping[str, Any]) -> str:
        """Store ``value`` and return a short handle (``ct_...``)."""
        ...

    async def get(self, handle: str) -> dict[str, Any] | None:
        """The stored value, or None when unknown or expired."""
        ...


class ConsentSigner(Protocol):
    def issue(self, tool: str, payload: Any) -> tuple[str, int]:
        """A token bound to ``tool`` + the exact ``payload``; returns (token, expires_at epoch seconds)."""
        ...

    def verify(self, tool: str, payload: Any, token: str) -> None:
        """Raise ConsentRequired unless ``token`` was issued for this tool and this exact payload and is unexpired."""
        ...


# -- analytics: the local store of scanned events and the schema cache ------------------------------------------------


@dataclass(frozen=True)
class Dim:
    """What a group or a metric reads: ``source`` is day, week, month, platform, event, profile or session; ``name``
    the property for the last three."""

    source: str
    name: str = ""


@dataclass(frozen=True)
class Metric:
    """``op`` (count, users, sum, avg, min, max) of ``target``; ``label`` is how the caller wrote it."""

    op: str
    label: str
    target: Dim | None = None


@dataclass(frozen=True)
class Grouping:
    """One aggregation over stored rows: groups (label, dim), metrics, ordering and a row limit."""

    group_by: tuple[tuple[str, Dim], ...]
    metrics: tuple[Metric, ...]
    order_by: str
    descending: bool
    limit: int


@dataclass(frozen=True)
class AggregateTable:
    groups: list[dict[str, Any]]
    totals: dict[str, Any]
    groups_total: int


class ScanStore(Protocol):
    """Scanned event records of one account, kept per dataset (an event and its filters) and day."""

    async def covered_days(self, dataset: str, days: Sequence[int]) -> set[int]:
        """The ``days`` for which a finished scan of ``dataset`` is kept."""
        ...

    async def open_scan(self, dataset: str, from_: int, to: int) -> int:
        """A new, empty scan; returns its id."""
        ...

    async def has_scan(self, scan: int) -> bool: ...

    async def add(self, scan: int, records: Sequence[Mapping[str, Any]]) -> int:
        """Store one export page's records (CleverTap's event export shape); returns the scan's record total."""
        ...

    async def finish(self, scan: int, keep_before: int | None) -> None:
        """The scan is complete: keep its days before ``keep_before`` (YYYYMMDD) for later queries (None: keep none)."""
        ...

    async def aggregate(
        self, dataset: str, from_: int, to: int, scan: int | None, grouping: Grouping
    ) -> AggregateTable:
        """Aggregate the kept days of ``dataset`` in [from_, to], with ``scan``'s rows for the days not kept."""
        ...

    async def drop(self, scan: int) -> None: ...


class SchemaCache(Protocol):
    """Discovered schema documents of one account, expiring after ``ttl_s``."""

    ttl_s: float

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, value: Mapping[str, Any]) -> None: ...
