"""Counts: real-time active users, event counts and profile counts (async ``partial`` + ``req_id`` on CleverTap)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, WithJsonSchema

from tools.base import ToolContext, ToolOutput, ToolSpec
from tools.querylang import QueryInput


class CountInput(QueryInput):
    req_id: Annotated[str | int | None, WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "integer"}]})] = Field(
        None, description="req_id of an unfinished count, to continue it."
    )
    wait_seconds: float = Field(20, ge=0, le=120, description="Max seconds to wait.")


class CountOutput(ToolOutput):
    done: bool
    count: int | None = None
    # The days counted, as resolved from relative forms ("last week"), so the model can say which ones they were.
    from_: int | None = Field(None, alias="from")
    to: int | None = None
    req_id: Annotated[str | int | None, WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "integer"}]})] = None
    next_step: str | None = None


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
    elif result.count == 0:
        from tools.schema import did_you_mean  # tools.schema is loaded only when an answer is empty

        next_step = await did_you_mean(ctx, args.event_name)
    return CountOutput.model_validate(
        {
            "done": result.done,
            "count": result.count,
            "from": args.from_,
            "to": args.to,
            "req_id": result.req_id,
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
        "Count an event's occurrences between two dates. If CleverTap is still counting: done=false; repeat with "
        "req_id. Distinct users: clevertap_get_profile_count; series: clevertap_get_trends."
    ),
    input_model=CountInput,
    output_model=CountOutput,
    impl=get_event_count,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    action_key="get-event-count",
    action_name="Get Event Count",
    endpoints=("/1/counts/events.json",),
    fault_class="read",
    examples_valid=({"event_name": "Charged", "from": "30 days ago", "to": "today"},),
    examples_invalid=(
        {"event_name": "Charged", "from": 20261301, "to": 20261302},
        {"event_name": "Charged", "from": "today", "to": "7 days ago"},
        {"event_name": "Charged", "from": "next blue moon", "to": "today"},
        {"from": "yesterday", "to": "today"},
        {"event_name": 42, "from": "7 days ago", "to": "today"},
    ),
)

GET_PROFILE_COUNT = ToolSpec(
    name="clevertap_get_profile_count",
    title="Count users",
    description=(
        "Count distinct users who did an event between two dates (inputs and req_id as clevertap_get_event_count). "
        "To list them: clevertap_get_user_profiles."
    ),
    input_model=CountInput,
    output_model=CountOutput,
    impl=get_profile_count,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    action_key="get-profile-count",
    action_name="Get Profile Count",
    endpoints=("/1/counts/profiles.json",),
    fault_class="read",
    examples_valid=({"event_name": "Charged", "from": "30 days ago", "to": "today"},),
    examples_invalid=({"event_name": "Charged", "from": 2026, "to": "today"},),
)
