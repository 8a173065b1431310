"""Cursor exports of events and profiles, bounded per call, with short handles instead of raw CleverTap cursors.

Also home of the small result-bounding helpers the other tools share (``json_size``, ``take_within``, ``bound_json``).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field
from pydantic_core import PydanticSerializationError, to_json

from tools.base import ToolContext, ToolInput, ToolOutput, ToolSpec, example_from
from tools.counts import QueryInput
from tools.errors import CursorExpired, InputError

ExportKind = Literal["events", "profiles"]

_PATHS: dict[str, str] = {"events": "/1/events.json", "profiles": "/1/profiles.json"}
_FIRST_TOOL: dict[str, str] = {"events": "clevertap_get_events", "profiles": "clevertap_get_user_profiles"}
_NEXT_TOOL: dict[str, str] = {
    "events": "clevertap_get_events_by_cursor",
    "profiles": "clevertap_get_user_profiles_by_cursor",
}
_ENVELOPE_BYTES = 600  # room for cursor, flags and next_step around the records
_HANDLE_MAX_LEN = 40
MAX_RECORDS = "Max records now."  # handles are ``ct_`` + a few characters; CleverTap cursors are far longer


# -- bounding helpers (shared) ----------------------------------------------------------------------------------------


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (what the server sends). Runs once per exported record, so
    pydantic-core's encoder measures (much faster than ``json.dumps``); what it refuses, such as a lone
    surrogate an upstream escaped, is measured by the standard library."""
    try:
        return len(to_json(value, fallback=str))
    except (PydanticSerializationError, ValueError, TypeError, RecursionError):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        return len(text.encode("utf-8", "surrogatepass"))


def take_within(items: list[Any], max_bytes: int, *, min_items: int = 1) -> int:
    """How many leading ``items`` fit in ``max_bytes`` of JSON (at least ``min_items`` so that paging progresses)."""
    used = 2
    for n, item in enumerate(items):
        used += json_size(item) + 1
        if used > max_bytes:
            return max(n, min(min_items, len(items)))
    return len(items)


def bound_json(value: Any, max_bytes: int) -> tuple[Any, str | None]:
    """``value`` cut to about ``max_bytes`` of JSON, still valid JSON; the note says what was cut (None: nothing)."""
    if json_size(value) <= max_bytes:
        return value, None
    if isinstance(value, list):
        n = take_within(value, max_bytes, min_items=0)
        return value[:n], f"kept the first {n} of {len(value)} items"
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        notes: list[str] = []
        budget = max_bytes - 2
        for key, item in value.items():
            size = json_size(item) + json_size(key) + 2
            if size <= budget:
                out[key] = item
                budget -= size
            elif isinstance(item, (list, dict)) and budget > 200:
                cut, note = bound_json(item, budget - json_size(key) - 2)
                out[key] = cut
                budget -= json_size(cut) + json_size(key) + 2
                notes.append(f"'{key}': {note}")
            else:
                notes.append(f"'{key}' dropped")
        return out, "; ".join(notes)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[: max(0, max_bytes // 2)], "text cut"


# -- models ------------------------------------------------------------------------------------------------------------


class ExportInput(QueryInput):
    batch_size: int = Field(100, ge=1, le=5000, description="Records per page.")
    app: bool = Field(False, description="Add app/device fields.")
    events: bool = Field(True, description="Add event summaries.")
    profile: bool = Field(True, description="Add custom profile fields.")
    max_records: int | None = Field(None, ge=1, le=5000, description=MAX_RECORDS)

    def flags(self) -> dict[str, bool]:
        """Only the flags that differ from CleverTap's defaults (app=false, events=true, profile=true)."""
        flags: dict[str, bool] = {}
        if self.app:
            flags["app"] = True
        if not self.events:
            flags["events"] = False
        if not self.profile:
            flags["profile"] = False
        return flags


class CursorInput(ToolInput):
    cursor: str = Field(min_length=1, max_length=20_000, description="From the previous reply.")
    max_records: int | None = Field(None, ge=1, le=5000, description=MAX_RECORDS)


class ExportOutput(ToolOutput):
    records: list[dict[str, Any]]
    returned: int
    done: bool
    cursor: str | None = None
    next_step: str

    def structured(self) -> dict[str, Any]:
        # The records are parsed JSON (from CleverTap, Membrane or the handle store) and are passed on as they are:
        # walking and copying them costs as much as everything else the server does for an export page.
        rest = self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"records"})
        return {"records": self.records, **rest}


# -- implementation ----------------------------------------------------------------------------------------------------


def _looks_like_handle(cursor: str) -> bool:
    return cursor.startswith("ct_") or len(cursor) < _HANDLE_MAX_LEN


async def _serve(ctx: ToolContext, kind: ExportKind, state: dict[str, Any], max_records: int | None) -> ExportOutput:
    """Return records from the buffer, or else the next page; keep what does not fit in a new handle."""
    path = str(state.get("path") or _PATHS[kind])
    buffer: list[dict[str, Any]] = list(state.get("buffer") or [])
    cursor: str | None = state.get("cursor")
    if not buffer and cursor:
        try:
            page = await ctx.api.export_page(path, cursor, budget_s=ctx.budget_s)
        except CursorExpired as exc:
            raise CursorExpired(
                exc.message, status=exc.status, code=exc.code, hint=f"Restart the export with {_FIRST_TOOL[kind]}."
            ) from None
        buffer, cursor = list(page.records), page.next_cursor
    limit = len(buffer) if max_records is None else min(max_records, len(buffer))
    n = take_within(buffer[:limit], max(ctx.max_result_bytes - _ENVELOPE_BYTES, 1))
    records, rest = buffer[:n], buffer[n:]
    done = not rest and not cursor
    handle = None
    if done:
        next_step = "All records have been returned."
    else:
        handle = await ctx.handles.put({"kind": kind, "path": path, "cursor": cursor, "buffer": rest})
        next_step = f"More records remain: call {_NEXT_TOOL[kind]} with cursor={handle!r}."
    return ExportOutput(records=records, returned=len(records), done=done, cursor=handle, next_step=next_step)


async def _start(ctx: ToolContext, kind: ExportKind, args: ExportInput) -> ExportOutput:
    path = _PATHS[kind]
    await ctx.report(0, None, f"starting the {kind} export")
    cursor = await ctx.api.start_export(path, args.query(), batch_size=args.batch_size, flags=args.flags() or None)
    out = await _serve(ctx, kind, {"kind": kind, "path": path, "cursor": cursor, "buffer": []}, args.max_records)
    if out.done and not out.records:
        from tools.schema import did_you_mean  # tools.schema is loaded only when an export is empty

        hint = await did_you_mean(ctx, args.event_name)
        if hint:
            out.next_step = f"{out.next_step} {hint}"
    return out


async def _continue(ctx: ToolContext, kind: ExportKind, args: CursorInput) -> ExportOutput:
    cursor = args.cursor.strip()
    state = await ctx.handles.get(cursor)
    if state is None:
        if _looks_like_handle(cursor):
            raise InputError(
                f"cursor {cursor!r} is unknown or has expired.",
                hint=f"Restart the export with {_FIRST_TOOL[kind]}, then pass the 'cursor' it returns.",
            )
        state = {"kind": kind, "path": _PATHS[kind], "cursor": cursor, "buffer": []}
    if state.get("kind") != kind:
        other = "profiles" if kind == "events" else "events"
        raise InputError(
            f"cursor {cursor!r} belongs to a {other} export, not a {kind} export.",
            hint=f"Pass it to {_NEXT_TOOL[other]} instead.",
        )
    return await _serve(ctx, kind, state, args.max_records)


async def get_events(ctx: ToolContext, args: ExportInput) -> ExportOutput:
    return await _start(ctx, "events", args)


async def get_events_by_cursor(ctx: ToolContext, args: CursorInput) -> ExportOutput:
    return await _continue(ctx, "events", args)


async def get_user_profiles(ctx: ToolContext, args: ExportInput) -> ExportOutput:
    return await _start(ctx, "profiles", args)


async def get_user_profiles_by_cursor(ctx: ToolContext, args: CursorInput) -> ExportOutput:
    return await _continue(ctx, "profiles", args)


GET_EVENTS = ToolSpec(
    name="clevertap_get_events",
    title="Export events",
    description=(
        "Download an event's occurrences between two dates, with properties and user. Returns records, done and, "
        "while more remain, a cursor for clevertap_get_events_by_cursor."
    ),
    input_model=ExportInput,
    output_model=ExportOutput,
    impl=get_events,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    action_key="get-events",
    action_name="Get Events",
    endpoints=("/1/events.json",),
    fault_class="read",
    examples_valid=({"event_name": "Charged", "from": "30 days ago", "to": "today", "batch_size": 5},),
    examples_invalid=(
        {"event_name": "Charged", "from": "7 days ago", "to": "today", "batch_size": 0},
        {"event_name": "Charged", "from": "today", "to": "yesterday"},
    ),
)

GET_EVENTS_BY_CURSOR = ToolSpec(
    name="clevertap_get_events_by_cursor",
    title="More events",
    description=("Next page: pass the cursor from clevertap_get_events or this tool. Returns records, done, cursor."),
    input_model=CursorInput,
    output_model=ExportOutput,
    impl=get_events_by_cursor,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    action_key="get-events-by-cursor",
    action_name="Get Events by Cursor",
    endpoints=("/1/events.json",),
    fault_class="read",
    examples_valid=({"cursor": example_from("clevertap_get_events", "cursor")},),
    examples_invalid=({"cursor": "ct_doesnotexist"}, {}),
)

GET_USER_PROFILES = ToolSpec(
    name="clevertap_get_user_profiles",
    title="Export users",
    description=(
        "Download the profiles of users who did an event between two dates (batch_size ideally a multiple of 23). "
        "Returns records, done and a cursor for clevertap_get_user_profiles_by_cursor."
    ),
    input_model=ExportInput,
    output_model=ExportOutput,
    impl=get_user_profiles,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    action_key="get-user-profiles",
    action_name="Get User Profiles",
    endpoints=("/1/profiles.json",),
    fault_class="read",
    examples_valid=({"event_name": "Charged", "from": "30 days ago", "to": "today", "batch_size": 5},),
    examples_invalid=({"event_name": "", "from": "7 days ago", "to": "today"},),
)

GET_USER_PROFILES_BY_CURSOR = ToolSpec(
    name="clevertap_get_user_profiles_by_cursor",
    title="More users",
    description=(
        "Next page: pass the cursor from clevertap_get_user_profiles or this tool. Returns records, done, cursor."
    ),
    input_model=CursorInput,
    output_model=ExportOutput,
    impl=get_user_profiles_by_cursor,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    action_key="get-user-profiles-by-cursor",
    action_name="Get User Profiles by Cursor",
    endpoints=("/1/profiles.json",),
    fault_class="read",
    examples_valid=({"cursor": example_from("clevertap_get_user_profiles", "cursor")},),
    examples_invalid=({"cursor": "ct_nope"},),
)
