"""Group-by analytics on events, computed inside the server: raw records never pass through the model.

Three ways to an answer, cheapest first: the local store (closed days an earlier scan of the same event and filters
kept), CleverTap's own counts and trends endpoints when they answer exactly (totals, distinct users, sums, series by
day/week/month), else a streamed export: the next page is fetched while the current one is stored, and SQLite groups
them, so memory does not grow with the number of records. A scan that reaches the end of the call's budget returns
what it has, marked partial, with a handle that continues where it stopped.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import anyio
from pydantic import Field, field_validator, model_validator

from tools.api import AggregateTable, Dim, ExportPage, Grouping, Metric, ScanStore
from tools.base import ToolContext, ToolOutput, ToolSpec
from tools.errors import CleverTapError, ConfigurationError, CursorExpired, InputError
from tools.querylang import QueryInput
from tools.schema import did_you_mean

EVENTS_PATH = "/1/events.json"
PAGE_SIZE = 5000  # CleverTap's maximum: the fewest round trips per record
PERIODS = ("day", "week", "month")
_TREND_TYPES = {"day": "daily", "week": "weekly", "month": "monthly"}
_PREFIXES = ("event", "profile", "session")
_OPS = ("sum", "avg", "min", "max")

GROUP_BY_DOC = "Of: day, week, month, platform, an event property, 'profile.<name>', 'session.<name>'."
METRICS_DOC = "count, users (distinct), sum|avg|min|max:<prop> (prop as in group_by)."
ORDER_BY_DOC = "Metric or group [+ ' asc'|' desc']."


def parse_dim(text: str) -> Dim:
    """'day' | 'week' | 'month' | 'platform' | 'profile.City' | 'session.utm_source' | 'event.X' | 'X' (event)."""
    name = text.strip()
    if name.lower() in (*PERIODS, "platform"):
        return Dim(name.lower())
    prefix, dot, rest = name.partition(".")
    if dot and prefix.lower() in _PREFIXES and rest.strip():
        dim = Dim(prefix.lower(), rest.strip())
    else:
        dim = Dim("event", name)
    if not dim.name or '"' in dim.name or any(ord(c) < 32 for c in dim.name):
        raise ValueError(f"{text!r} is not a property name (empty, or has a double quote or control character)")
    return dim


def parse_metric(text: str) -> Metric:
    label = text.strip()
    lowered = label.lower()
    if lowered == "count":
        return Metric("count", "count")
    if lowered in ("users", "unique users", "unique_users"):
        return Metric("users", "users")
    op, colon, rest = label.partition(":")
    if not colon or op.strip().lower() not in _OPS:
        raise ValueError(f"metric {text!r}: use count, users, or sum/avg/min/max:<property> such as 'sum:Amount'")
    target = parse_dim(rest)
    if target.source not in _PREFIXES:
        raise ValueError(f"metric {text!r}: {op} needs a property, not {target.source}")
    return Metric(op.strip().lower(), f"{op.strip().lower()}:{rest.strip()}", target)


class AggregateInput(QueryInput):
    group_by: list[str] = Field(default_factory=list, max_length=3, description=GROUP_BY_DOC)
    metrics: list[str] = Field(default_factory=lambda: ["count"], min_length=1, max_length=6, description=METRICS_DOC)
    order_by: str | None = Field(None, description=ORDER_BY_DOC)
    limit: int = Field(20, ge=1, le=500, description="Max groups.")
    use_store: bool = Field(True, description="false: bypass the local store.")
    handle: str | None = Field(None, description="From a partial result.")
    chart: bool = Field(False, description="Add a PNG chart.")

    @field_validator("group_by")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_dim(item)
        return value

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_metric(item)
        return value

    @model_validator(mode="after")
    def _spec(self) -> AggregateInput:
        self.grouping()
        return self

    def grouping(self) -> Grouping:
        groups = tuple((g.strip(), parse_dim(g)) for g in self.group_by)
        metrics = tuple(parse_metric(m) for m in self.metrics)
        labels = [label for label, _ in groups]
        if len(set(labels)) < len(labels) or len({m.label for m in metrics}) < len(metrics):
            raise ValueError("group_by and metrics must not repeat an entry")
        if self.order_by:
            key, _, direction = self.order_by.strip().rpartition(" ")
            if direction.lower() not in ("asc", "desc"):
                key, direction = self.order_by.strip(), ""
            key = key.strip()
            if key not in labels and key not in {m.label for m in metrics}:
                key = next((m.label for m in metrics if m.label.lower() == key.lower()), key)
            if key not in labels and key not in {m.label for m in metrics}:
                raise ValueError(f"order_by {self.order_by!r} must name a metric or a group_by entry")
            descending = direction.lower() != "asc" if direction else key not in labels
        elif groups and groups[0][1].source in PERIODS:
            key, descending = labels[0], False
        else:
            key, descending = metrics[0].label, True
        return Grouping(group_by=groups, metrics=metrics, order_by=key, descending=descending, limit=self.limit)


class AggregateOutput(ToolOutput):
    groups: list[dict[str, Any]] = Field(description="One row per group: group values and metrics.")
    totals: dict[str, Any] = Field(description="The metrics over everything matched.")
    groups_total: int | None = None
    source: str
    method: str
    records_scanned: int
    partial: bool = False
    handle: str | None = None
    next_step: str | None = None


# -- helpers -----------------------------------------------------------------------------------------------------------


def _today() -> int:
    return int(dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d"))


def _days(from_: int, to: int) -> list[int]:
    start = dt.date(from_ // 10000, from_ // 100 % 100, from_ % 100)
    end = dt.date(to // 10000, to // 100 % 100, to % 100)
    return [int((start + dt.timedelta(days=i)).strftime("%Y%m%d")) for i in range((end - start).days + 1)]


def dataset_key(query: dict[str, Any]) -> str:
    """The event and its filters: scans of the same dataset can answer each other's days."""
    return json.dumps({k: v for k, v in query.items() if k not in ("from", "to")}, sort_keys=True, default=str)


def _period(unit: str, key: str) -> str:
    """A trends bucket key as an ISO date: YYYYMMDD, YYYYWW (the week's Monday) or YYYYMM (YYYY-MM)."""
    if unit == "day" and len(key) == 8:
        return f"{key[:4]}-{key[4:6]}-{key[6:]}"
    if unit == "week" and len(key) == 6:
        return dt.date.fromisocalendar(int(key[:4]), int(key[4:]), 1).isoformat()
    if unit == "month" and len(key) == 6:
        return f"{key[:4]}-{key[4:]}"
    return key


def _number(value: Any) -> Any:
    if isinstance(value, float):
        return int(value) if value.is_integer() else round(value, 6)
    return value


def _sort(groups: list[dict[str, Any]], g: Grouping) -> list[dict[str, Any]]:
    present = [r for r in groups if r.get(g.order_by) is not None]
    absent = [r for r in groups if r.get(g.order_by) is None]
    present.sort(key=lambda r: r[g.order_by], reverse=g.descending)
    return (present + absent)[: g.limit]


# -- native endpoints --------------------------------------------------------------------------------------------------


def native_answers(g: Grouping) -> bool:
    """CleverTap's counts and trends answer exactly: no group or one period; count, users and sums of event
    properties."""
    if len(g.group_by) > 1 or (g.group_by and g.group_by[0][1].source not in PERIODS):
        return False
    return all(
        m.op in ("count", "users") or (m.op == "sum" and m.target is not None and m.target.source == "event")
        for m in g.metrics
    )


async def _invalid_event(ctx: ToolContext, exc: CleverTapError, event: str) -> CleverTapError:
    if "invalid event" in f"{exc.message} {exc.details.get('error', '')}".lower():
        hint = await did_you_mean(ctx, event)
        if hint:
            return CleverTapError(exc.message, status=exc.status, code=exc.code, hint=hint, details=exc.details)
    return exc


async def _native(ctx: ToolContext, args: AggregateInput, g: Grouping) -> AggregateOutput:
    query = args.query()
    unit = g.group_by[0][1].source if g.group_by else None
    calls: list[str] = []
    pending = False
    series: dict[str, dict[str, Any]] = {}
    totals: dict[str, Any] = {}

    async def count(path: str) -> int | None:
        nonlocal pending
        calls.append(path)
        result = await ctx.api.count(path, query, budget_s=ctx.budget_s)
        pending = pending or not result.done
        return result.count

    async def trend(trend_type: str, metric: Metric) -> dict[str, Any]:
        nonlocal pending
        body: dict[str, Any] = {**query, "groups": {"g": {"trend_type": trend_type}}, "unique": metric.op == "users"}
        if metric.op == "sum" and metric.target is not None:
            body["sum_event_prop"] = metric.target.name
        calls.append("/1/counts/trends.json" + (" (sum_event_prop)" if metric.op == "sum" else ""))
        result = await ctx.api.count("/1/counts/trends.json", body, budget_s=ctx.budget_s)
        pending = pending or not result.done
        buckets = result.body.get("g")
        return dict(buckets) if isinstance(buckets, dict) else {}

    try:
        for metric in g.metrics:
            buckets: dict[str, Any] = {}
            if metric.op == "users" and unit is None:
                totals[metric.label] = await count("/1/counts/profiles.json")
            elif metric.op == "users" and unit is not None:
                buckets = await trend(_TREND_TYPES[unit], metric)
                totals[metric.label] = await count("/1/counts/profiles.json")
            elif metric.op == "count" and unit is None:
                totals[metric.label] = await count("/1/counts/events.json")
            else:
                buckets = await trend(_TREND_TYPES[unit or "month"], metric)
                totals[metric.label] = _number(sum(v for v in buckets.values() if isinstance(v, (int, float))))
            if unit is not None:
                for key, value in buckets.items():
                    period = _period(unit, str(key))
                    series.setdefault(period, {g.group_by[0][0]: period})[metric.label] = _number(value)
    except CleverTapError as exc:
        raise await _invalid_event(ctx, exc, args.event_name) from None
    groups = _sort(list(series.values()), g) if unit else []
    next_step = None
    if pending:
        next_step = "CleverTap is still computing part of this: call again with the same arguments in a few seconds."
    return AggregateOutput(
        groups=groups,
        totals=totals,
        groups_total=len(series) if unit else None,
        source="CleverTap counts API",
        method="native: " + ", ".join(dict.fromkeys(calls)),
        records_scanned=0,
        partial=pending,
        next_step=next_step,
    )


# -- streamed export ---------------------------------------------------------------------------------------------------


def _store(ctx: ToolContext) -> ScanStore:
    if ctx.scans is None:
        raise ConfigurationError(
            "this server has no local store for scanned events.",
            hint="Use clevertap_get_trends or the count tools, which CleverTap answers itself.",
        )
    return ctx.scans


async def _stream(
    ctx: ToolContext, store: ScanStore, scan: int, cursor: str | None, soft_at: float, hard_at: float
) -> tuple[str | None, int | None]:
    """Fetch pages (one ahead) and store them until the export ends or ``soft_at`` (``anyio.current_time()``) has
    passed; ``hard_at`` while not even one page has arrived, so that every call makes progress.

    Returns the cursor to resume from (None: the export is complete) and the scan's record total (None: no page).
    """
    if cursor is None:
        return None, None
    send, receive = anyio.create_memory_object_stream[tuple[ExportPage | None, Exception | None]](1)

    async def fetch() -> None:
        nxt: str | None = cursor
        try:
            async with send:
                while nxt:
                    try:
                        left = max(1.0, hard_at - anyio.current_time())
                        page = await ctx.api.export_page(EVENTS_PATH, nxt, budget_s=left)
                    except Exception as exc:  # handed to the consumer, which raises it outside the task group
                        await send.send((None, exc))
                        return
                    await send.send((page, None))
                    nxt = page.next_cursor
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return  # the consumer stopped reading: its budget is spent

    resume: str | None = cursor
    scanned: int | None = None
    failure: Exception | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(fetch)
        with anyio.CancelScope(deadline=hard_at) as scope:
            async for page, error in receive:
                if error is not None:
                    failure = error
                    break
                assert page is not None
                with anyio.CancelScope(shield=True):
                    total = await store.add(scan, page.records)
                scanned, resume = total, page.next_cursor
                await ctx.report(total, None, f"scanned {scanned} records")
                scope.deadline = min(scope.deadline, soft_at)
                if resume is None or anyio.current_time() >= soft_at:
                    break
        tg.cancel_scope.cancel()
    receive.close()
    if failure is not None:
        if isinstance(failure, CursorExpired):
            raise CursorExpired(
                failure.message, status=failure.status, code=failure.code, hint="Call again without handle."
            )
        raise failure
    return resume, scanned


async def _scan(
    ctx: ToolContext, args: AggregateInput, g: Grouping, state: dict[str, Any], started: float
) -> AggregateOutput:
    """Scan on from ``state`` until the export ends or the call's budget (counted from ``started``) runs low."""
    store = _store(ctx)
    reserve = min(15.0, ctx.budget_s * 0.3)  # time left for grouping and the answer
    scan = int(state["scan"])
    soft_at, hard_at = started + ctx.budget_s - reserve, started + ctx.budget_s * 0.85
    resume, total = await _stream(ctx, store, scan, state.get("cursor"), soft_at, hard_at)
    scanned = int(state.get("scanned") or 0) if total is None else total
    dataset = str(state["dataset"]) if state.get("use_store", True) else ""
    from_, to = args.from_, args.to
    covered = state.get("covered_days") or 0
    if resume is None:
        await store.finish(scan, _today() if state.get("use_store", True) else None)
    table: AggregateTable = await store.aggregate(dataset, from_, to, scan, g)
    handle = None
    if resume is None:
        if not state.get("use_store", True):
            await store.drop(scan)
        next_step = None
    else:
        handle = await ctx.handles.put({**state, "cursor": resume, "scanned": scanned})
        next_step = (
            f"Partial: {scanned} records scanned so far, the export goes on. Call again with the same arguments plus "
            f"handle={handle!r} to continue; the totals so far are not the answer."
        )
    source = "export" + (f" + local store ({covered} days)" if covered else "")
    return AggregateOutput(
        groups=table.groups,
        totals=table.totals,
        groups_total=table.groups_total if g.group_by else None,
        source=source,
        method=f"streamed export of {state['from']}..{state['to']} grouped in the server",
        records_scanned=scanned,
        partial=resume is not None,
        handle=handle,
        next_step=next_step or _missing_property_note(table, g),
    )


def _missing_property_note(table: AggregateTable, g: Grouping) -> str | None:
    for label, dim in g.group_by:
        if dim.source == "event" and table.groups and all(row.get(label) is None for row in table.groups):
            return (
                f"No record has the event property {dim.name!r}. For a profile property use 'profile.{dim.name}'; "
                "clevertap_describe_schema lists both."
            )
    return None


async def aggregate_events(ctx: ToolContext, args: AggregateInput) -> AggregateOutput:
    out = await _aggregate(ctx, args)
    if not out.partial and out.next_step is None and all(v in (0, None) for v in out.totals.values()):
        out.next_step = await did_you_mean(ctx, args.event_name)
    if args.chart:
        if out.partial:
            note = "No chart yet: the scan is partial; the call that completes it draws one."
            out.next_step = f"{out.next_step} {note}" if out.next_step else note
        else:
            await _chart(ctx, args, out)
    return out


_TIME = frozenset({"day", "week", "month"})


async def _chart(ctx: ToolContext, args: AggregateInput, out: AggregateOutput) -> None:
    """The first metric as a picture: lines over time when the first group is a period (one line per value of a
    second group), else one bar per group (bars of the totals when nothing is grouped)."""
    from tools.charts import bar_chart, draw, line_chart

    g = args.grouping()
    metric = g.metrics[0].label
    title = f"{args.event_name}: {metric}, {args.from_} to {args.to}"
    labels = [label for label, _ in g.group_by]

    def number(row: dict[str, Any]) -> float:
        value = row.get(metric)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0

    if not labels:
        bars = [(m.label, number(out.totals)) for m in g.metrics[:1]]
        ctx.attach_chart(await draw(bar_chart, title, bars, x_label=metric, y_label="all matching events"))
    elif g.group_by[0][1].source in _TIME:
        series: dict[str, list[tuple[str, float]]] = {}
        for row in sorted(out.groups, key=lambda r: str(r.get(labels[0]))):
            name = " / ".join(str(row.get(label)) for label in labels[1:]) or args.event_name
            series.setdefault(name, []).append((str(row.get(labels[0])), number(row)))
        x_label = {"day": "Day (UTC)", "week": "Week starting (UTC)", "month": "Month (UTC)"}[g.group_by[0][1].source]
        ctx.attach_chart(await draw(line_chart, title, series, y_label=metric, x_label=x_label))
    else:
        bars = [(" / ".join(str(row.get(label)) for label in labels), number(row)) for row in out.groups]
        ctx.attach_chart(await draw(bar_chart, title, bars, x_label=metric, y_label=" / ".join(labels)))


async def _aggregate(ctx: ToolContext, args: AggregateInput) -> AggregateOutput:
    started = anyio.current_time()
    g = args.grouping()
    query = args.query()
    dataset = dataset_key(query)
    if args.handle:
        state = await ctx.handles.get(args.handle.strip())
        if state is None or state.get("kind") != "aggregate":
            raise InputError(
                f"handle {args.handle!r} is unknown or has expired.",
                hint="Call again without handle to start the aggregation over.",
            )
        if state.get("dataset") != dataset or (state.get("req_from"), state.get("req_to")) != (args.from_, args.to):
            raise InputError(
                "this handle belongs to an aggregation of another event, filters or dates.",
                hint="Repeat the exact event_name, from, to and filters of the call that returned the handle.",
            )
        if not await _store(ctx).has_scan(int(state["scan"])):
            raise InputError("the scan behind this handle is gone.", hint="Call again without handle to start over.")
        return await _scan(ctx, args, g, state, started)
    store = ctx.scans
    days = _days(args.from_, args.to)
    covered = await store.covered_days(dataset, days) if store is not None and args.use_store else set()
    missing = [d for d in days if d not in covered]
    if store is not None and not missing:
        table = await store.aggregate(dataset, args.from_, args.to, None, g)
        return AggregateOutput(
            groups=table.groups,
            totals=table.totals,
            groups_total=table.groups_total if g.group_by else None,
            source="local store",
            method=f"grouped in the server from earlier exports of these {len(days)} closed days",
            records_scanned=0,
            next_step=_missing_property_note(table, g),
        )
    if native_answers(g):
        return await _native(ctx, args, g)
    store = _store(ctx)
    scan_from, scan_to = min(missing), max(missing)
    scan = await store.open_scan(dataset, scan_from, scan_to)
    await ctx.report(0, None, f"exporting {args.event_name!r} {scan_from}..{scan_to}")
    try:
        body = {**query, "from": scan_from, "to": scan_to}
        cursor = await ctx.api.start_export(EVENTS_PATH, body, batch_size=PAGE_SIZE)
    except CleverTapError as exc:
        await store.drop(scan)
        raise await _invalid_event(ctx, exc, args.event_name) from None
    state = {
        "kind": "aggregate",
        "dataset": dataset,
        "scan": scan,
        "cursor": cursor,
        "from": scan_from,
        "to": scan_to,
        "req_from": args.from_,
        "req_to": args.to,
        "use_store": args.use_store,
        "covered_days": len([d for d in days if d in covered]),
    }
    return await _scan(ctx, args, g, state, started)


AGGREGATE_EVENTS = ToolSpec(
    name="clevertap_aggregate_events",
    title="Aggregate events",
    description=(
        "Group-by analytics of an event between two dates, computed in the server. E.g. revenue by city: metrics "
        "['sum:Amount'], group_by ['profile.City']. Returns groups, totals, source; if partial, repeat with handle. "
        "chart=true adds a PNG."
    ),
    input_model=AggregateInput,
    output_model=AggregateOutput,
    impl=aggregate_events,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    endpoints=(
        "/1/counts/events.json",
        "/1/counts/profiles.json",
        "/1/counts/trends.json",
        "/1/events.json",
    ),
    fault_class="read",
    examples_valid=(
        {"event_name": "Charged", "from": "7 days ago", "to": "yesterday", "metrics": ["sum:Amount"]},
        {"event_name": "Charged", "from": "3 days ago", "to": "yesterday", "group_by": ["platform"], "limit": 5},
    ),
    examples_invalid=(
        {"event_name": "Charged", "from": "7 days ago", "to": "yesterday", "metrics": ["median:Amount"]},
        {"event_name": "Charged", "from": "7 days ago", "to": "yesterday", "limit": 0},
        {"event_name": "Charged", "from": "yesterday", "to": "7 days ago"},
    ),
)
