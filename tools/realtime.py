"""Real-time active users (``POST /1/now.json``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tools.base import ToolContext, ToolInput, ToolOutput, ToolSpec
from tools.models import iso_epoch

BREAKDOWNS = ("user_type", "session_source", "browser", "os", "device", "new")


class RealTimeInput(ToolInput):
    user_type: bool = Field(False, description="New/repeat/...")
    session_source: bool = Field(False, description="Source.")
    browser: bool = Field(False, description="Browser.")
    os: bool = Field(False, description="OS.")
    device: bool = Field(False, description="Device type.")
    new: bool = Field(False, description="New users only.")


class RealTimeOutput(ToolOutput):
    count: int | None = None
    last_processed_ts: int | None = None
    last_processed_at: str | None = None
    breakdowns: dict[str, Any] = Field(default_factory=dict)


async def real_time_user_count(ctx: ToolContext, args: RealTimeInput) -> RealTimeOutput:
    body = {name: True for name in BREAKDOWNS if getattr(args, name)}
    answer = await ctx.api.call("POST", "/1/now.json", body=body)
    count = answer.get("count")
    ts = answer.get("last_processed_ts")
    return RealTimeOutput(
        count=count if isinstance(count, int) else None,
        last_processed_ts=ts if isinstance(ts, int) else None,
        last_processed_at=iso_epoch(ts),
        breakdowns={name: answer[name] for name in BREAKDOWNS if name in body and name in answer},
    )


REAL_TIME_USER_COUNT = ToolSpec(
    name="clevertap_real_time_user_count",
    title="Active users now",
    description=("Users active now (last 5 minutes); true flags add breakdowns. Past activity: clevertap_get_trends."),
    input_model=RealTimeInput,
    output_model=RealTimeOutput,
    impl=real_time_user_count,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    action_key="real-time-user-count",
    action_name="Real-Time User Count",
    endpoints=("/1/now.json",),
    fault_class="read",
    examples_valid=({"device": True},),
    examples_invalid=({"device": "maybe"},),
)
