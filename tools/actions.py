"""Meta-tools over the action catalog: search by intent, run by key or id (Membrane's live catalog or the local one)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tools.base import ToolContext, ToolInput, ToolOutput, ToolSpec
from tools.errors import ConsentRequired, InputError
from tools.models import CONFIRM_DOC
from tools.results import bound_json, json_size


class SearchActionsInput(ToolInput):
    intent: str = Field(min_length=1, max_length=200, description="What you want to do.")
    limit: int = Field(10, ge=1, le=50, description="Max actions.")


class ActionItem(ToolOutput):
    id: str
    key: str
    name: str
    description: str
    input_schema: dict[str, Any] | None = None
    read_only: bool | None = None


class SearchActionsOutput(ToolOutput):
    actions: list[dict[str, Any]]
    note: str | None = None
    next_step: str


async def search_actions(ctx: ToolContext, args: SearchActionsInput) -> SearchActionsOutput:
    found = await ctx.executor.search_actions(args.intent, args.limit)
    items = [
        ActionItem(
            id=a.id,
            key=a.key,
            name=a.name,
            description=a.description,
            input_schema=dict(a.input_schema) if a.input_schema is not None else None,
            read_only=a.read_only,
        )
        for a in found[: args.limit]
    ]
    budget = ctx.max_result_bytes - 500
    note = None
    if json_size([i.model_dump(exclude_none=True) for i in items]) > budget:
        used = 0
        for item in items:
            used += json_size(item.model_dump(exclude_none=True))
            if used > budget and item.input_schema is not None:
                used -= json_size(item.input_schema)
                item.input_schema = None
        note = "Some input schemas were left out to bound the result: search with a narrower intent to see them."
    step = "Run one with clevertap_run_action(action=<id>, input={...} matching its input_schema)."
    if not items:
        step = "Nothing matched: rephrase the intent, or use clevertap_request for a raw API call."
    return SearchActionsOutput(actions=[i.model_dump(exclude_none=True) for i in items], note=note, next_step=step)


class RunActionInput(ToolInput):
    action: str = Field(min_length=1, max_length=200, description="Action id or key.")
    input: dict[str, Any] = Field(default_factory=dict, description="Per its input_schema.")
    confirm_token: str | None = Field(None, description=CONFIRM_DOC)


class RunActionOutput(ToolOutput):
    action: str
    ran: bool = True
    output: Any = None
    action_run_id: str | None = None
    note: str | None = None
    confirm_token: str | None = None
    expires_at: int | None = None
    next_step: str | None = None


async def run_action(ctx: ToolContext, args: RunActionInput) -> RunActionOutput:
    """The executor boundary resolves the action (an id to its key) and decides whether it may run and whether it
    needs a confirmation; this turns "needs confirmation" into a preview or a pointer to the typed tool."""
    action = args.action.strip()
    payload = {"action": action, "input": args.input}
    if args.confirm_token is not None:
        ctx.consent_gate(RUN_ACTION.name, payload, args.confirm_token)
    try:
        run = await ctx.executor.run_action(action, args.input)
    except ConsentRequired as exc:
        if not exc.details.get("preview") or args.confirm_token is not None:
            raise
        typed = exc.details.get("tool")
        if typed:
            raise InputError(
                f"action {action!r} is irreversible and needs the user's confirmation.",
                hint=f"Use {typed}: it previews the effect and returns a confirm_token to show the user first.",
            ) from None
        token, expires_at = ctx.consent.issue(RUN_ACTION.name, payload)
        return RunActionOutput(
            action=action,
            ran=False,
            confirm_token=token,
            expires_at=expires_at,
            next_step=f"Nothing was run: {action!r} may not be undone ({exc.details.get('why')}). Show the user the "
            "action and its input; only if they agree, call again with the same arguments plus confirm_token "
            "(it works once).",
        )
    output, cut = bound_json(run.output, ctx.max_result_bytes - 500)
    note = f"Output truncated ({cut}): narrow the input (dates, batch size)." if cut else None
    return RunActionOutput(action=action, output=output, action_run_id=run.action_run_id, note=note)


SEARCH_ACTIONS = ToolSpec(
    name="clevertap_search_actions",
    title="Find actions",
    description=(
        "Find CleverTap actions by intent when no tool fits: {id, key, name, description, "
        "input_schema}; run one with clevertap_run_action."
    ),
    input_model=SearchActionsInput,
    output_model=SearchActionsOutput,
    impl=search_actions,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    endpoints=(),
    fault_class="read",
    examples_valid=({"intent": "count events"},),
    examples_invalid=({"intent": ""},),
)

RUN_ACTION = ToolSpec(
    name="clevertap_run_action",
    title="Run action",
    description=(
        "Run an action from clevertap_search_actions (id or key, input per input_schema). Unknown or irreversible "
        "ones return a confirm_token first."
    ),
    input_model=RunActionInput,
    output_model=RunActionOutput,
    impl=run_action,
    read_only=False,
    destructive=True,
    idempotent=False,
    open_world=True,
    guarded_in_read_only=True,
    endpoints=(),
    fault_class="read",
    examples_valid=(
        {"action": "get-event-count", "input": {"event_name": "Charged", "from": "30 days ago", "to": "today"}},
    ),
    examples_invalid=({"action": "get-event-count", "input": {"event_name": "Charged"}},),
)
