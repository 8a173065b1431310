"""The most frequent values of a property among an event's occurrences (``/1/counts/top.json``), optionally as bars."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from tools.base import ToolContext, ToolOutput, ToolSpec
from tools.charts import bar_chart, draw
from tools.models import ReqId, as_number, to_date
from tools.querylang import QueryInput

TOP_PATH = "/1/counts/top.json"
GROUP = "top"
PROPERTY_TYPE = {"event": "event_properties", "profile": "profile_fields", "session": "session_properties"}
_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*-")


class TopValuesInput(QueryInput):
    property: str = Field(min_length=1, description="Case-sensitive, e.g. 'City'.")
    property_type: Literal["event", "profile", "session"] = Field("event", description="Where it lives.")
    top_n: int = Field(10, ge=1, le=50, description="Values to return.")
    chart: bool = Field(False, description="Add a PNG chart.")
    req_id: ReqId = Field(None, description="From an unfinished call.")

    def body(self) -> dict[str, Any]:
        body = self.query()
        group = {"property_type": PROPERTY_TYPE[self.property_type], "name": self.property, "top_n": self.top_n}
        body["groups"] = {GROUP: group}
        return body


class TopValue(ToolOutput):
    value: str
    count: int | float


class TopValuesOutput(ToolOutput):
    done: bool
    event_name: str
    from_: str = Field(alias="from")
    to: str
    property: str
    property_type: str
    kind: Literal["values", "ranges"] = Field(
        "values", description="ranges: a numeric property, counted per value range ('0-100'), in range order."
    )
    values: list[TopValue] = Field(default_factory=list)
    total: int | float = Field(0, description="Sum of the listed counts.")
    req_id: ReqId = None
    next_step: str | None = None


def _range_start(label: str) -> float:
    m = _RANGE.match(label)
    return float(m.group(1)) if m else float("inf")


def parse_top(group: Any, top_n: int) -> tuple[Literal["values", "ranges"], list[TopValue]]:
    """CleverTap's group (``{"STR": {value: n}}``, ``{"NUMBER": {"0-100": n}}``, or a flat ``{value: n}``) as
    values: most frequent first, or numeric ranges in ascending order."""
    if not isinstance(group, Mapping):
        return "values", []
    typed = bool(group) and all(isinstance(k, str) and k.isupper() and isinstance(v, Mapping) for k, v in group.items())
    sections: list[tuple[str, Mapping[str, Any]]] = list(group.items()) if typed else [("STR", group)]
    ranges: list[TopValue] = []
    values: list[TopValue] = []
    for tag, section in sections:
        for key, raw in section.items():
            number = as_number(raw)
            if number is None:
                continue
            (ranges if tag == "NUMBER" else values).append(TopValue(value=str(key), count=number))
    if ranges and not values:
        return "ranges", sorted(ranges, key=lambda v: _range_start(v.value))
    ranked = sorted(values + ranges, key=lambda v: (-v.count, v.value))
    return "values", ranked[:top_n]


async def get_top_values(ctx: ToolContext, args: TopValuesInput) -> TopValuesOutput:
    if args.req_id is not None:
        result = await ctx.api.poll_count(TOP_PATH, args.req_id, budget_s=ctx.budget_s)
    else:
        result = await ctx.api.count(TOP_PATH, args.body(), budget_s=ctx.budget_s)
    out = TopValuesOutput.model_validate(
        {
            "done": result.done,
            "event_name": args.event_name,
            "from": to_date(args.from_).isoformat(),
            "to": to_date(args.to).isoformat(),
            "property": args.property,
            "property_type": args.property_type,
        }
    )
    if not result.done:
        out.req_id = result.req_id
        out.next_step = (
            f"CleverTap is still computing. Call this tool again with the same arguments plus req_id={result.req_id!r}."
        )
        return out
    out.kind, out.values = parse_top(result.body.get(GROUP), args.top_n)
    total = sum(v.count for v in out.values)
    out.total = round(total, 2) if isinstance(total, float) else total
    if not out.values:
        out.next_step = (
            f"No {args.event_name} event between these dates has {args.property_type} property {args.property!r}: "
            "check the name (case-sensitive) and property_type."
        )
    if args.chart:
        what = "ranges" if out.kind == "ranges" else f"top {args.top_n}"
        title = f"{args.event_name} by {args.property} ({what}), {out.from_} to {out.to}"
        bars = [(v.value, float(v.count)) for v in out.values]
        ctx.attach_chart(await draw(bar_chart, title, bars, x_label=f"{args.event_name} events", y_label=args.property))
    return out


GET_TOP_VALUES = ToolSpec(
    name="clevertap_get_top_values",
    title="Top property values",
    description=(
        "Most frequent values of an event or profile property among an event's occurrences between two dates, with "
        "counts (numbers: per range). chart=true adds a PNG."
    ),
    input_model=TopValuesInput,
    output_model=TopValuesOutput,
    impl=get_top_values,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    endpoints=("/1/counts/top.json",),
    fault_class="read",
    examples_valid=(
        {"event_name": "Charged", "from": "30 days ago", "to": "today", "property": "Product"},
        {
            "event_name": "App Launched",
            "from": "30 days ago",
            "to": "today",
            "property": "City",
            "property_type": "profile",
            "top_n": 5,
        },
    ),
    examples_invalid=(
        {"event_name": "Charged", "from": "30 days ago", "to": "today"},
        {"event_name": "Charged", "from": "30 days ago", "to": "today", "property": "Product", "top_n": 0},
        {"event_name": "Charged", "from": "30 days ago", "to": "today", "property": "City", "property_type": "x"},
    ),
)
