"""Counts: real-time active users, event counts and profile counts (async ``partial`` + ``req_id`` on CleverTap)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from tools.base import ToolContext, ToolInput, ToolOutput, ToolSpec
from tools.models import DateInt, Operator, check_range


class PropertyFilter(ToolInput):
    name: str = Field(min_length=1, max_length=120, description="Event property name, case-sensitive, e.g. 'Amount'.")
    operator: Operator = Field("equals", description="Comparison; 'equals' with a list value means 'is one of'.")
    value: str | float | int | bool | list[str | float | int] = Field(description="Value to compare with.")


class CountInput(ToolInput):
    event_name: str = Field(
        min_length=1,
        max_length=120,
        description="Exact event name, case-sensitive, e.g. 'Charged', 'App Launched', 'Added To Cart'.",
    )
    from_: DateInt = Field(alias="from")
    to: DateInt
    event_properties: list[PropertyFilter] | None = Field(
        None, max_length=20, description="Optional filters on event properties, all must match."
    )
    req_id: str | int | None = Field(
        None,
        description="Continue a count that an earlier call returned unfinished (its 'req_id'); pass the same "
        "event_name/from/to again.",
    )
    wait_seconds: float = Field(
        20, ge=0, le=120, description="How long to wait for CleverTap to finish counting before returning 'req_id'."
    )

    @model_validator(mode="after")
    def _range(self) -> CountInput:
        check_range(self.from_, self.to)
        return self

    def query(self) -> dict[str, Any]:
        body: dict[str, Any] = {"event_name": self.event_name, "from": self.from_, "to": self.to}
        if self.event_properties:
            body["event_properties"] = [f.model_dump() for f in self.event_properties]
        return body


class CountOutput(ToolOutput):
    done: bool = Field(description="True when 'count' is final; false when CleverTap is still counting.")
    count: int | None = Field(None, description="The count, when done.")
    req_id: str | int | None = Field(None, description="When not done: pass it back as 'req_id' to continue.")
    event_name: str
    from_: int = Field(alias="from")
    to: int
    next_step: str | None = Field(None, description="What to call next, when there is something to do.")


async def _count(ctx: ToolContext, args: CountInput, path: str) -> CountOutput:
    budget = min(args.wait_seconds, ctx.budget_s)
    if args.req_id is not None:
        result = await ctx.api.poll_count(path, args.req_id, budget_s=budget)
    else:
        result = await ctx.api.count(path, args.query(), budget_s=budget)
    next_step = None
    if not result.done:
        next_step = (
            f"CleverTap is still counting. Call this tool again with the same arguments plus req_id={result.req_id!r} "
            "(and a larger wait_seconds if you can wait)."
        )
    return CountOutput.model_validate(
        {
            "done": result.done,
            "count": result.count,
            "req_id": result.req_id,
            "event_name": args.event_name,
            "from": args.from_,
            "to": args.to,
            "next_step": next_step,
        }
    )


async def get_event_count(ctx: ToolContext, args: CountInput) -> CountOutput:
    return await _count(ctx, args, "/1/counts/events.json")


async def get_profile_count(ctx: ToolContext, args: CountInput) -> CountOutput:
    return await _count(ctx, args, "/1/counts/profiles.json")


GET_EVENT_COUNT = ToolSpec(
    name="clevertap_get_event_count",
    title="Count events",
    description=(
        "Count how many times an event happened between two dates (inclusive), e.g. 'how many Charged events last week'. "
        "Dates are YYYYMMDD integers (20261101); event names are case-sensitive. Optional event_properties filter "
        "(e.g. Amount greater_than 100). CleverTap may need time: the tool waits up to wait_seconds; if the count is not "
        "ready it returns done=false and a req_id — call again with the same arguments plus req_id. "
        "For distinct users use clevertap_get_profile_count."
    ),
    input_model=CountInput,
    output_model=CountOutput,
    impl=get_event_count,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    action_key="get-event-count",
)

GET_PROFILE_COUNT = ToolSpec(
    name="clevertap_get_profile_count",
    title="Count users who did an event",
    description=(
        "Count distinct user profiles that did an event between two dates (inclusive), e.g. 'how many users charged "
        "last week'. Same inputs and follow-up (req_id) as clevertap_get_event_count. To list those users, use "
        "clevertap_get_user_profiles."
    ),
    input_model=CountInput,
    output_model=CountOutput,
    impl=get_profile_count,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    action_key="get-profile-count",
)
