"""Simple, deterministic in-memory fakes of the ``tools.api`` protocols, for unit tests of the tool implementations."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tools.api import (
    ActionInfo,
    ActionRun,
    ConnectResult,
    CountResult,
    ExportPage,
    ProgressFn,
    RawResponse,
    RecordKind,
    UnprocessedRecord,
    UploadResult,
)
from tools.base import ToolContext
from tools.errors import ConsentRequired, CursorExpired

Route = Any  # a value (returned), an Exception (raised) or a callable(method, path, query, body) -> value


@dataclass
class FakeCleverTapApi:
    """Routes ``call`` by (METHOD, path); serves exports from ``datasets[path]``; uploads reject per ``reject``."""

    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    datasets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    reject: Callable[[Mapping[str, Any]], str | None] = lambda record: None
    unsent_batches: set[int] = field(default_factory=set)
    calls: list[tuple[str, str, Any, Any]] = field(default_factory=list)
    uploads: list[dict[str, Any]] = field(default_factory=list)
    exports: list[dict[str, Any]] = field(default_factory=list)
    _cursors: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    expired: set[str] = field(default_factory=set)
    executor: FakeExecutor | None = None  # where ``raw`` sends, unchanged (the real client's quirks are not faked)

    async def call(
        self, method: str, path: str, *, query: Mapping[str, Any] | None = None, body: Any = None
    ) -> dict[str, Any]:
        self.calls.append((method, path, dict(query or {}), copy.deepcopy(body)))
        route = self.routes.get((method.upper(), path))
        if callable(route) and not isinstance(route, Exception):
            route = route(method, path, query, body)
        if isinstance(route, Exception):
            raise route
        if route is None:
            return {"status": "success"}
        return copy.deepcopy(route)

    async def raw(
        self, method: str, path: str, *, query: Mapping[str, Any] | None = None, body: Any = None
    ) -> RawResponse:
        assert self.executor is not None, "FakeCleverTapApi.raw needs an executor"
        return await self.executor.request(method, path, query, body)

    async def count(self, path: str, body: Mapping[str, Any], *, budget_s: float) -> CountResult:
        self.calls.append(("POST", path, {}, dict(body)))
        return CountResult(done=True, count=self.counts.get(path, 0))

    async def poll_count(self, path: str, req_id: str | int, *, budget_s: float) -> CountResult:
        return CountResult(done=True, count=self.counts.get(path, 0))

    def _cursor(self, path: str, offset: int, batch: int) -> str:
        # Long and percent-encoded like CleverTap's, so tools must never echo it back.
        token = hashlib.sha256(f"{path}:{offset}:{batch}".encode()).hexdigest() * 4 + "%3D%3D"
        self._cursors[token] = (path, offset, batch)
        return token

    async def start_export(
        self, path: str, body: Mapping[str, Any], *, batch_size: int, flags: Mapping[str, bool] | None = None
    ) -> str | None:
        self.exports.append({"path": path, "body": dict(body), "batch_size": batch_size, "flags": dict(flags or {})})
        if not self.datasets.get(path):
            return None
        return self._cursor(path, 0, batch_size)

    async def export_page(self, path: str, cursor: str, *, budget_s: float) -> ExportPage:
        if cursor in self.expired or cursor not in self._cursors:
            raise CursorExpired("CleverTap no longer knows this cursor (Invalid cursor)", status=400)
        cpath, offset, batch = self._cursors[cursor]
        assert cpath == path, f"cursor of {cpath} read on {path}"
        records = self.datasets[path][offset : offset + batch]
        nxt = offset + batch
        return ExportPage(
            records=copy.deepcopy(records),
            next_cursor=self._cursor(path, nxt, batch) if nxt < len(self.datasets[path]) else None,
        )

    async def upload(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        kind: RecordKind,
        dry_run: bool = False,
        progress: ProgressFn | None = None,
    ) -> UploadResult:
        size = 100 if kind == "token" else 1000
        self.uploads.append({"records": [dict(r) for r in records], "kind": kind, "dry_run": dry_run})
        processed = 0
        unprocessed: list[UnprocessedRecord] = []
        unsent: list[int] = []
        batches = 0
        for batch_no, start in enumerate(range(0, len(records), size)):
            batches += 1
            chunk = range(start, min(start + size, len(records)))
            if batch_no in self.unsent_batches:
                unsent.extend(chunk)
                continue
            for i in chunk:
                why = self.reject(records[i])
                if why is None:
                    processed += 1
                else:
                    unprocessed.append(UnprocessedRecord(index=i, code=515, error=why, record=dict(records[i])))
            if progress is not None:
                await progress(chunk.stop, len(records), None)
        return UploadResult(
            processed=processed,
            unprocessed=unprocessed,
            batches=batches,
            unsent=unsent,
            unsent_reason="timeout" if unsent else None,
        )


@dataclass
class FakeExecutor:
    name: str = "fake"
    responses: dict[tuple[str, str], RawResponse] = field(default_factory=dict)
    actions: list[ActionInfo] = field(default_factory=list)
    action_output: Any = None
    connect_result: ConnectResult = field(
        default_factory=lambda: ConnectResult(
            backend="fake", state="READY", message="Connected.", next_step="Use the tools.", account_id="ACC-1"
        )
    )
    requests: list[tuple[str, str, Any, Any]] = field(default_factory=list)
    runs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    connects: list[float] = field(default_factory=list)

    async def request(
        self, method: str, path: str, query: Mapping[str, Any] | None = None, body: Any = None
    ) -> RawResponse:
        self.requests.append((method, path, dict(query or {}) if query is not None else None, copy.deepcopy(body)))
        return self.responses.get((method, path), RawResponse(status=200, body={"status": "success"}))

    async def run_action(self, key_or_id: str, input: Mapping[str, Any]) -> ActionRun:
        self.runs.append((key_or_id, dict(input)))
        return ActionRun(output=copy.deepcopy(self.action_output), action_run_id="run-1")

    async def search_actions(self, intent: str, limit: int) -> list[ActionInfo]:
        return self.actions[:limit]

    async def connect(self, wait_seconds: float, progress: ProgressFn | None = None) -> ConnectResult:
        self.connects.append(wait_seconds)
        return self.connect_result


class FakeHandleStore:
    """Sequential handles (``ct_000001``...); values are copied on the way in and out; ``forget`` expires one."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    async def put(self, value: Mapping[str, Any]) -> str:
        handle = f"ct_{len(self.items) + 1:06d}"
        self.items[handle] = copy.deepcopy(dict(value))
        return handle

    async def get(self, handle: str) -> dict[str, Any] | None:
        value = self.items.get(handle)
        return copy.deepcopy(value) if value is not None else None

    def forget(self, handle: str) -> None:
        self.items.pop(handle, None)


class FakeConsentSigner:
    """Token = tool + digest of the canonical payload; ``expired`` tokens fail verification."""

    EXPIRES_AT = 2_000_000_000

    def __init__(self) -> None:
        self.issued: list[tuple[str, Any]] = []
        self.expired: set[str] = set()

    @staticmethod
    def _digest(payload: Any) -> str:
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def issue(self, tool: str, payload: Any) -> tuple[str, int]:
        self.issued.append((tool, copy.deepcopy(payload)))
        return f"tok.{tool}.{self._digest(payload)}", self.EXPIRES_AT

    def verify(self, tool: str, payload: Any, token: str) -> None:
        if token in self.expired:
            raise ConsentRequired("confirm_token has expired.")
        if token != f"tok.{tool}.{self._digest(payload)}":
            raise ConsentRequired("confirm_token does not match these arguments.")


@dataclass
class Fakes:
    api: FakeCleverTapApi
    executor: FakeExecutor
    handles: FakeHandleStore
    consent: FakeConsentSigner
    progress: list[tuple[float, float | None, str | None]]

    def ctx(self, **overrides: Any) -> ToolContext:
        async def progress(done: float, total: float | None, message: str | None) -> None:
            self.progress.append((done, total, message))

        values: dict[str, Any] = {
            "api": self.api,
            "executor": self.executor,
            "handles": self.handles,
            "consent": self.consent,
            "progress": progress,
        }
        values.update(overrides)
        return ToolContext(**values)


def make_fakes() -> Fakes:
    executor = FakeExecutor()
    return Fakes(FakeCleverTapApi(executor=executor), executor, FakeHandleStore(), FakeConsentSigner(), [])
