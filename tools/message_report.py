"""Per-message delivery metrics between two dates (``POST /1/message/report.json``), with totals.

The response body was never seen documented (third-party notes list ``message_name, channel, delivery, start_date,
status, sent, viewed, clicked, ...`` per message), so the list is looked for under the usual keys, or as a top-level
list, or as an object keyed by message id; every field CleverTap sends is kept.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from tools.base import ToolContext, ToolInput, ToolOutput, ToolSpec
from tools.models import FROM_DOC, TO_DOC, Day, check_range, iso_compact, iso_epoch
from tools.results import take_within

PATH = "/1/message/report.json"
METRICS = (
    "sent",
    "delivered",
    "viewed",
    "opened",
    "clicked",
    "converted",
    "conversions",
    "bounced",
    "failed",
    "errors",
)
_LIST_KEYS = ("messages", "data", "result", "report", "reports", "targets")
_TIME_KEYS = ("start_date", "end_date", "scheduled_on", "created_on")


def _csv(value: Any) -> Any:
    """A list is sent the way the docs say every filter takes several values: comma-separated."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(v.strip() for v in value)
    return value


Csv = Annotated[str, BeforeValidator(_csv)]


class MessageReportInput(ToolInput):
    from_: Day = Field(alias="from", description=FROM_DOC)
    to: Day = Field(description=TO_DOC)
    channel: Csv | None = Field(None, description="push, email, sms, browser, inapp... (comma-separated)")
    status: Csv | None = Field(None, description="scheduled, running, stopped, completed")
    label: Csv | None = Field(None, description="Labels.")

    @model_validator(mode="after")
    def _range(self) -> MessageReportInput:
        check_range(self.from_, self.to)
        return self

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"from": self.from_, "to": self.to}
        for key in ("channel", "status", "label"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        return body


class MessageReportOutput(ToolOutput):
    messages: list[dict[str, Any]]
    count: int
    totals: dict[str, int | float]
    from_: int = Field(alias="from")
    to: int
    truncated: bool | None = None
    next_step: str | None = None


def _messages(answer: Any) -> list[dict[str, Any]]:
    if isinstance(answer, dict):
        found = next((answer[k] for k in _LIST_KEYS if isinstance(answer.get(k), (list, dict))), None)
        if found is None:
            # An object keyed by message id: {"1457433898": {"sent": 10, ...}, "status": "success"}
            found = {k: v for k, v in answer.items() if isinstance(v, dict)}
        answer = found
    if isinstance(answer, dict):
        answer = [{"message_id": k, **v} for k, v in answer.items() if isinstance(v, dict)]
    return [m for m in answer if isinstance(m, dict)] if isinstance(answer, list) else []


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _with_times(message: dict[str, Any]) -> dict[str, Any]:
    """The message as sent, plus ISO 8601 UTC beside each compact or epoch time (``start_date`` -> ``start``)."""
    out = dict(message)
    for key in _TIME_KEYS:
        raw = message.get(key)
        iso = iso_compact(raw) or (iso_epoch(raw) if isinstance(raw, int) and len(str(raw)) in (10, 13) else None)
        if iso:
            out[key.removesuffix("_date").removesuffix("_on") + "_at"] = iso
    sent, clicked = _number(message.get("sent")), _number(message.get("clicked"))
    if sent and clicked is not None:
        out["click_rate"] = round(clicked / sent, 4)
    return out


async def get_message_report(ctx: ToolContext, args: MessageReportInput) -> MessageReportOutput:
    answer = await ctx.api.call("POST", PATH, body=args.body())
    rows = [_with_times(m) for m in _messages(answer)]
    totals: dict[str, int | float] = {}
    for row in rows:
        for key in METRICS:
            value = _number(row.get(key))
            if value is not None:
                totals[key] = totals.get(key, 0) + value
    n = take_within(rows, ctx.max_result_bytes - 600, min_items=0)
    truncated = n < len(rows)
    return MessageReportOutput.model_validate(
        {
            "messages": rows[:n],
            "count": len(rows),
            "totals": totals,
            "from": args.from_,
            "to": args.to,
            "truncated": truncated or None,
            "next_step": (
                f"Only the first {n} of {len(rows)} messages are listed (totals count all): narrow the dates, "
                "channel or status."
                if truncated
                else None
            ),
        }
    )


GET_MESSAGE_REPORT = ToolSpec(
    name="clevertap_get_message_report",
    title="Message report",
    description=(
        "Delivery metrics (sent, viewed, clicked, click_rate...) of messages started between two dates, with totals."
    ),
    input_model=MessageReportInput,
    output_model=MessageReportOutput,
    impl=get_message_report,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    endpoints=("/1/message/report.json",),
    fault_class="read",
    examples_valid=({"from": "last month", "to": "today"}, {"from": "30 days ago", "to": "today", "channel": "push"}),
    examples_invalid=({"from": "today", "to": "30 days ago"}, {"from": "last month"}, {"to": "today"}),
)
