"""Cursor exports of events and profiles, bounded per call, with short handles instead of raw CleverTap cursors.

Records get ISO 8601 UTC times (events: ``time`` beside CleverTap's ``ts``; profiles: the event summaries' first and
last seen) and, with ``fields``, are projected to the listed keys before they are sized, buffered or returned.

Also home of the small result-bounding helpers the other tools share (``json_size``, ``take_within``, ``bound_json``).
"""

from __future__ import annotations

import secrets
import weakref
from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from tools.base import ToolContext, ToolInput, ToolOutput, ToolSpec, example_from
from tools.errors import CursorExpired, InputError
from tools.export_pages import ExportPages, Page
from tools.models import iso_compact, iso_epoch
from tools.querylang import QueryInput
from tools.results import json_size, take_within

ExportKind = Literal["events", "profiles"]

_PATHS: dict[str, str] = {"events": "/1/events.json", "profiles": "/1/profiles.json"}
_FIRST_TOOL: dict[str, str] = {"events": "clevertap_get_events", "profiles": "clevertap_get_user_profiles"}
_NEXT_TOOL: dict[str, str] = {
    "events": "clevertap_get_events_by_cursor",
    "profiles": "clevertap_get_user_profiles_by_cursor",
}
_ENVELOPE_BYTES = 600  # room for cursor, flags and next_step around the records
_HANDLE_MAX_LEN = 40
MAX_RECORDS_DOC = "Max records now."  # handles are ``ct_`` + a few characters; CleverTap cursors are far longer
BATCH_DOC = "Records per CleverTap page (a result holds ~60 KB; the rest by cursor)."
FIELDS_DOC = "Keep only these keys (dotted: event_props.Amount): more records per call."
# Where a bare or relative field name is also looked for, in this order.
_FIELD_ROOTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "events": (("event_props",), ("profile",), ("profile", "profileData"), ("session_props",)),
    "profiles": (("profileData",),),
}
_MISSING = object()


# -- models ------------------------------------------------------------------------------------------------------------


class ExportInput(QueryInput):
    batch_size: int = Field(100, ge=1, le=5000, description=BATCH_DOC)
    fields: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=300)]] | None,
        WithJsonSchema({"type": "array", "items": {"type": "string"}}),
    ] = Field(None, min_length=1, max_length=100, description=FIELDS_DOC)
    app: bool = Field(False, description="Add app/device fields.")
    events: bool = Field(True, description="Add event summaries.")
    profile: bool = Field(True, description="Add custom profile fields.")
    max_records: int | None = Field(None, ge=1, le=5000, description=MAX_RECORDS_DOC)

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
    max_records: int | None = Field(None, ge=1, le=5000, description=MAX_RECORDS_DOC)


class ExportOutput(ToolOutput):
    records: list[dict[str, Any]]
    returned: int
    total_returned: int | None = None
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


def _resolve(value: Any, parts: list[str]) -> tuple[Any, tuple[str, ...]]:
    """The value at ``parts`` (a dotted path split on dots) and the chain of keys that reached it; a key that itself
    holds dots ("a.b") matches too. (_MISSING, ()) when there is none."""
    if not parts:
        return value, ()
    if not isinstance(value, dict):
        return _MISSING, ()
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in value:
            found, chain = _resolve(value[key], parts[i:])
            if found is not _MISSING:
                return found, (key, *chain)
    return _MISSING, ()


def _walk(value: Any, chain: tuple[str, ...]) -> Any:
    for key in chain:
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


class Projection:
    """Reduces records to ``{path: value}`` for the listed paths: from the record's root first, then from the places a
    property usually lives (``event_props``, ``profile.profileData``...); absent paths are left out. The chain of keys
    that resolved a path is remembered, so the records of a page (which share a shape) cost a few dict lookups each."""

    def __init__(self, fields: list[str], kind: str) -> None:
        self.fields = [(path, path.split(".")) for path in fields]
        self.roots = _FIELD_ROOTS.get(kind, ())
        self.chains: dict[str, tuple[str, ...]] = {}

    def _find(self, record: dict[str, Any], path: str, parts: list[str]) -> Any:
        for root in ((), *self.roots):
            value, chain = _resolve(record, [*root, *parts])
            if value is not _MISSING:
                self.chains[path] = chain
                return value
        return _MISSING

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for path, parts in self.fields:
            chain = self.chains.get(path)
            value = _walk(record, chain) if chain is not None else _MISSING
            if value is _MISSING:
                value = self._find(record, path, parts)
            if value is not _MISSING:
                out[path] = value
        return out


def project(record: dict[str, Any], fields: list[str], kind: str) -> dict[str, Any]:
    """One record reduced to the listed paths (see ``Projection``)."""
    return Projection(fields, kind)(record)


def with_times(record: dict[str, Any], kind: str) -> dict[str, Any]:
    """ISO 8601 UTC times in a record, in place: events get ``time`` beside CleverTap's ``ts`` (kept, as sent);
    profile event summaries get ISO ``first_seen``/``last_seen`` instead of epoch seconds."""
    if kind == "events":
        iso = iso_compact(record.get("ts"))
        if iso is not None:
            record["time"] = iso
        return record
    summary = record.get("events")
    if isinstance(summary, dict):
        for item in summary.values():
            if isinstance(item, dict):
                for key in ("first_seen", "last_seen"):
                    iso = iso_epoch(item.get(key))
                    if iso is not None:
                        item[key] = iso
    return record


def _prepare(records: list[dict[str, Any]], kind: ExportKind, fields: list[str] | None) -> list[dict[str, Any]]:
    timed = [with_times(r, kind) for r in records]
    if not fields:
        return timed
    projection = Projection(fields, kind)
    return [projection(r) for r in timed]


def _take(page: Page, start: int, limit: int, budget: int) -> int:
    """How many of ``page.records[start:]`` (at most ``limit``, at least one) fit in ``budget`` bytes of JSON.

    The candidate slice is encoded whole (once, twice when the page's bytes-per-record estimate was off), not record
    by record: a call to the encoder per record costs more than the records' encoding itself."""
    records = page.records
    avail = min(limit, len(records) - start)
    if avail <= 1:
        return max(avail, 0)
    if page.per_record <= 0:
        probe = records[start : start + min(avail, 16)]
        page.per_record = max(1.0, json_size(probe) / len(probe))
    n = min(avail, max(1, int(budget * 0.97 / page.per_record)))
    fit = 0
    for _ in range(4):
        size = json_size(records[start : start + n])
        page.per_record = max(1.0, size / n)
        if size <= budget:
            fit = n
            if n == avail or size >= budget * 0.9:
                break
            n = min(avail, max(n + 1, int(n * budget * 0.97 / size)))
        else:
            if n == 1:
                return 1  # one record always, so that paging progresses
            n = min(n - 1, int(n * budget * 0.97 / size))
            if n <= fit:
                break
            n = max(n, 1)
    if fit:
        return fit
    return take_within(records[start : start + n], budget)


def _pages(ctx: ToolContext) -> ExportPages:
    """The page store beside the handle store (a store that brings none, such as Redis, gets one for this process)."""
    pages = getattr(ctx.handles, "pages", None)
    if isinstance(pages, ExportPages):
        return pages
    found = _LOCAL_PAGES.get(ctx.handles)
    if found is None:
        found = _LOCAL_PAGES[ctx.handles] = ExportPages()
    return found


_LOCAL_PAGES: weakref.WeakKeyDictionary[Any, ExportPages] = weakref.WeakKeyDictionary()


async def _serve(
    ctx: ToolContext, kind: ExportKind, state: dict[str, Any], max_records: int | None, *, ahead: bool = True
) -> ExportOutput:
    """Answer from the page the handle points into (held, fetched ahead, or fetched now), fetch the next page ahead
    (``ahead``), and hand out a handle to what remains. Handles hold positions, never records (see
    ``tools.export_pages``)."""
    path = str(state.get("path") or _PATHS[kind])
    cursor: str | None = state.get("cursor")
    fields: list[str] | None = state.get("fields")
    before = int(state.get("returned") or 0)
    offset = max(0, int(state.get("offset") or 0))
    stream = str(state.get("stream") or secrets.token_urlsafe(9))
    pages = _pages(ctx)
    owner = ctx.api

    async def fetch(at: str) -> Page:
        try:
            got = await ctx.api.export_page(path, at, budget_s=ctx.budget_s)
        except CursorExpired as exc:
            raise CursorExpired(
                exc.message, status=exc.status, code=exc.code, hint=f"Restart the export with {_FIRST_TOOL[kind]}."
            ) from None
        return Page(at, _prepare(list(got.records), kind, fields), got.next_cursor)

    legacy = state.get("buffer")
    if legacy:  # a handle written before pages were kept apart (a shared store may still hold one)
        page, offset = Page("", list(legacy), cursor), 0
    elif cursor:
        page = await pages.page(stream, owner, cursor, fetch)
        if ahead and page.next_cursor:
            pages.prefetch(stream, owner, page.next_cursor, fetch)
    else:
        page = Page("", [], None)
    left = len(page.records) - offset
    limit = left if max_records is None else min(max_records, left)
    n = _take(page, offset, limit, max(ctx.max_result_bytes - _ENVELOPE_BYTES, 1))
    end = offset + n
    records = page.records[offset:end]
    at_end = end >= len(page.records)
    done = at_end and not page.next_cursor
    handle = None
    total = before + len(records)
    if done:
        pages.drop(stream)
        next_step = "All records have been returned."
    else:
        nxt: dict[str, Any] = {"kind": kind, "path": path, "returned": total}
        if at_end:
            nxt.update(cursor=page.next_cursor, stream=stream)
        elif not page.cursor:
            nxt.update(cursor=page.next_cursor, buffer=page.records[end:])
        else:
            nxt.update(cursor=page.cursor, offset=end, stream=stream)
        if fields:
            nxt["fields"] = fields
        handle = await ctx.handles.put(nxt)
        next_step = f"More records remain: call {_NEXT_TOOL[kind]} with cursor={handle!r}."
    if fields and records:
        absent = [f for f in fields if not any(f in r for r in records)]
        if absent:
            next_step += f" No record has {', '.join(map(repr, absent))}: names are case-sensitive."
    # model_construct: the records are parsed JSON already; validating would copy every one of them
    return ExportOutput.model_construct(
        records=records, returned=len(records), total_returned=total, done=done, cursor=handle, next_step=next_step
    )


async def _start(ctx: ToolContext, kind: ExportKind, args: ExportInput) -> ExportOutput:
    path = _PATHS[kind]
    await ctx.report(0, None, f"starting the {kind} export")
    cursor = await ctx.api.start_export(path, args.query(), batch_size=args.batch_size, flags=args.flags() or None)
    state: dict[str, Any] = {"kind": kind, "path": path, "cursor": cursor}
    if args.fields:
        state["fields"] = args.fields
    # No page ahead yet: many agents look at the first answer and stop, and a fetch nobody reads still counts
    # against the account's CleverTap rate limits. The first continuation starts the prefetching.
    out = await _serve(ctx, kind, state, args.max_records, ahead=False)
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
        state = {"kind": kind, "path": _PATHS[kind], "cursor": cursor}
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
        "An event's occurrences between two dates, with properties and user: records, done, and a cursor for "
        "clevertap_get_events_by_cursor. Totals or breakdowns: clevertap_aggregate_events."
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
        "Profiles of users who did an event between two dates (batch_size ideally a multiple of 23): records, "
        "done, and a cursor for clevertap_get_user_profiles_by_cursor."
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
