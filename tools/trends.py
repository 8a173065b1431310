"""An event's series per day, week or month (``/1/counts/trends.json``, async like counts), optionally charted."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from tools.base import ToolContext, ToolOutput, ToolSpec
from tools.charts import draw, line_chart
from tools.models import Number, ReqId, as_number, to_date
from tools.querylang import QueryInput

TRENDS_PATH = "/1/counts/trends.json"
GROUP = "series"
TREND_TYPE = {"day": "daily", "week": "weekly", "month": "monthly"}


class TrendsInput(QueryInput):
    unit: Literal["day", "week", "month"] = Field("day", description="Bucket.")
    measure: Literal["events", "users", "sum"] = Field("events", description="Per bucket.")
    property: str | None = Field(None, min_length=1, description="Numeric event property to sum.")
    chart: bool = Field(False, description="Add a PNG chart.")
    req_id: ReqId = Field(None, description="From an unfinished call.")

    @model_validator(mode="after")
    def _measure(self) -> TrendsInput:
        if self.measure == "sum" and not self.property:
            raise ValueError("measure 'sum' needs 'property': the numeric event property to add up, e.g. 'Amount'")
        if self.property and self.measure != "sum":
            raise ValueError(f"'property' is only used with measure 'sum': set measure='sum' to add up {self.property}")
        return self

    def body(self) -> dict[str, Any]:
        body = self.query()
        body["unique"] = self.measure == "users"
        if self.measure == "sum":
            body["sum_event_prop"] = self.property
        body["groups"] = {GROUP: {"trend_type": TREND_TYPE[self.unit]}}
        return body


class TrendPoint(ToolOutput):
    period: str = Field(description="First day of the bucket inside the range (ISO date).")
    value: Number


class TrendsOutput(ToolOutput):
    done: bool
    event_name: str
    from_: str = Field(alias="from")
    to: str
    unit: str
    measure: str
    property: str | None = None
    series: list[TrendPoint] = Field(default_factory=list)
    total: Number | None = Field(None, description="Sum of the series; for users, distinct users over the range.")
    req_id: ReqId = None
    next_step: str | None = None


def _bucket_start(key: str, unit: str) -> _dt.date | None:
    """The first day of a trends bucket: YYYYMMDD (daily), YYYYWW (ISO week, weekly), YYYYMM (monthly), or an ISO
    date in any unit (a variant some accounts may answer with)."""
    text = key.strip()
    try:
        if len(text) == 10 and text[4] == "-":
            return _dt.date.fromisoformat(text)
        if not text.isdigit():
            return None
        if len(text) == 8:
            return to_date(int(text))
        if len(text) == 6 and unit == "week":
            year, week = int(text[:4]), int(text[4:])
            try:
                return _dt.date.fromisocalendar(year, week, 1)
            except ValueError:
                return _dt.date(year, 1, 1) + _dt.timedelta(weeks=max(week - 1, 0))
        if len(text) == 6:
            return _dt.date(int(text[:4]), int(text[4:]), 1)
    except ValueError:
        return None
    return None


def _expected_periods(start: _dt.date, end: _dt.date, unit: str) -> list[_dt.date]:
    """Every bucket of a day or month range, so that a bucket CleverTap leaves out shows as 0 (weeks: as answered)."""
    if unit == "day":
        return [start + _dt.timedelta(days=i) for i in range((end - start).days + 1)]
    if unit == "month":
        out, day = [], start
        while day <= end:
            out.append(day)
            day = (day.replace(day=1) + _dt.timedelta(days=32)).replace(day=1)
        return out
    return []


def parse_series(group: Any, start: _dt.date, end: _dt.date, unit: str) -> list[TrendPoint]:
    """CleverTap's ``{bucket_key: value}`` as points sorted by period, each clipped to the range's first day."""
    buckets: dict[str, Number] = {}
    raw: dict[str, Number] = {}
    if isinstance(group, Mapping):
        for key, value in group.items():
            number = as_number(value)
            if number is None:
                continue
            day = _bucket_start(str(key), unit)
            if day is None:
                raw[str(key)] = number
                continue
            period = max(day, start).isoformat()
            buckets[period] = buckets.get(period, 0) + number
        for day in _expected_periods(start, end, unit):
            buckets.setdefault(day.isoformat(), 0)
    points = [TrendPoint(period=p, value=v) for p, v in sorted(buckets.items())]
    return points + [TrendPoint(period=k, value=v) for k, v in sorted(raw.items())]


def _total(points: list[TrendPoint]) -> Number:
    total = sum(p.value for p in points)
    return round(total, 2) if isinstance(total, float) else total


MEASURE_LABEL = {"events": "Events", "users": "Unique users"}


def measure_label(args: TrendsInput) -> str:
    what = f"Sum of {args.property}" if args.measure == "sum" else MEASURE_LABEL[args.measure]
    return f"{what} per {args.unit}"


async def get_trends(ctx: ToolContext, args: TrendsInput) -> TrendsOutput:
    start, end = to_date(args.from_), to_date(args.to)
    if args.req_id is not None:
        result = await ctx.api.poll_count(TRENDS_PATH, args.req_id, budget_s=ctx.budget_s)
    else:
        result = await ctx.api.count(TRENDS_PATH, args.body(), budget_s=ctx.budget_s)
    out = TrendsOutput.model_validate(
        {
            "done": result.done,
            "event_name": args.event_name,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "unit": args.unit,
            "measure": args.measure,
            "property": args.property,
        }
    )
    if not result.done:
        out.req_id = result.req_id
        out.next_step = (
            f"CleverTap is still computing. Call this tool again with the same arguments plus req_id={result.req_id!r}."
        )
        return out
    out.series = parse_series(result.body.get(GROUP), start, end, args.unit)
    if args.measure == "users":
        # Users of different buckets overlap: the range's distinct users is one more count, not the series' sum.
        users = await ctx.api.count("/1/counts/profiles.json", args.query(), budget_s=ctx.budget_s)
        out.total = users.count if users.done else None
        if not users.done:
            out.next_step = "The distinct-user total was still counting: clevertap_get_profile_count gives it."
    else:
        out.total = _total(out.series)
    if args.chart:
        title = f"{args.event_name}: {measure_label(args)}, {out.from_} to {out.to}"
        points = [(p.period, float(p.value)) for p in out.series]
        x_label = {"day": "Day (UTC)", "week": "Week starting (UTC)", "month": "Month (UTC)"}[args.unit]
        series = {args.event_name: points}
        ctx.attach_chart(await draw(line_chart, title, series, y_label=measure_label(args), x_label=x_label))
    return out


GET_TRENDS = ToolSpec(
    name="clevertap_get_trends",
    title="Event trend",
    description=(
        "An event per day, week or month in one call: events, unique users, or the sum of a numeric property "
        "(measure=sum, property=Amount). Returns series [{period, value}] and total; chart=true adds a PNG."
    ),
    input_model=TrendsInput,
    output_model=TrendsOutput,
    impl=get_trends,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    endpoints=("/1/counts/trends.json", "/1/counts/profiles.json"),
    fault_class="read",
    examples_valid=(
        {"event_name": "App Launched", "from": "30 days ago", "to": "today"},
        {
            "event_name": "Charged",
            "from": "60 days ago",
            "to": "today",
            "unit": "week",
            "measure": "sum",
            "property": "Amount",
        },
    ),
    examples_invalid=(
        {"event_name": "Charged", "from": "7 days ago", "to": "today", "unit": "hour"},
        {"event_name": "Charged", "from": "7 days ago", "to": "today", "measure": "sum"},
        {"event_name": "Charged", "from": "today", "to": "7 days ago"},
    ),
)
