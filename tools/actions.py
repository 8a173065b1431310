"""Meta-tools over the action catalog: search by intent, run by key or id (Membrane's live catalog or the local one)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from tools.base import ToolContext, ToolInput, ToolOutput, ToolSpec
from tools.campaigns import CONFIRM
from tools.errors import InputError
from tools.exports import bound_json, json_size

# Actions that must go through their typed tool's preview-then-confirm flow (a Membrane run would act at once).
_CONFIRM_FIRST = {
    "create-campaign": "clevertap_create_campaign",
    "delete-user-profile": "clevertap_delete_user_profile",
}
# Other actions whose key or name says they cannot be undone: they run only with a confirm_token.
_IRREVERSIBLE = re.compile(r"(delete|demerge|unsubscribe|subscribe|disassociate|send|stop|create-campaign|remove)")


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
    confirm_token: str | None = Field(None, description=CONFIRM)


class RunActionOutput(ToolOutput):
    action: str
    ran: bool = True
    output: Any = None
    action_run_id: str | None = None
    note: str | None = None
    confirm_token: str | None = None
    expires_at: int | None = None
    next_step: str | None = None


def _known_read(ctx: ToolContext, action: str) -> bool:
    """Read-only mode runs only actions known to read: catalog reads, or live actions Membrane marks as reads."""
    from tools.catalog import by_action

    spec = by_action(action)
    if spec is not None:
        return spec.read_only
    finder = getattr(ctx.executor, "live_action", None)
    info = finder(action) if finder is not None else None
    return bool(info is not None and info.read_only)


async def run_action(ctx: ToolContext, args: RunActionInput) -> RunActionOutput:
    action = args.action.strip()
    typed = _CONFIRM_FIRST.get(action) or next((t for t in _CONFIRM_FIRST.values() if t == action), None)
    if typed is not None and ctx.confirm_required:
        raise InputError(
            f"action {action!r} is irreversible and needs the user's confirmation.",
            hint=f"Use {typed}: it previews the effect and returns a confirm_token to show the user first.",
        )
    if ctx.read_only and not _known_read(ctx, action):
        raise InputError(
            f"action {action!r} is not known to only read, and the server runs in read-only mode.",
            hint="Use clevertap_search_actions to find read actions (read_only: true), or the read tools.",
        )
    if _IRREVERSIBLE.search(action.lower()):
        preview = ctx.consent_gate(RUN_ACTION.name, {"action": action, "input": args.input}, args.confirm_token)
        if preview is not None:
            return RunActionOutput(
                action=action,
                ran=False,
                confirm_token=preview[0],
                expires_at=preview[1],
                next_step=f"Nothing was run: {action!r} looks irreversible. Show the user the action and its input; "
                "only if they agree, call again with the same arguments plus confirm_token.",
            )
    run = await ctx.executor.run_action(action, args.input)
    output, cut = bound_json(run.output, ctx.max_result_bytes - 500)
    note = f"Output truncated ({cut}): narrow the input (dates, batch size)." if cut else None
    return RunActionOutput(action=action, output=output, action_run_id=run.action_run_id, note=note)


SEARCH_ACTIONS = ToolSpec(
    name="clevertap_search_actions",
    title="Find actions",
    description=(
        "Find CleverTap actions by intent when no tool fits. Returns actions {id, key, name, description, "
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
        "Run an action from clevertap_search_actions by id or key, with input per its input_schema. Creating "
        "campaigns and deleting profiles need their own tools; other irreversible actions return a confirm_token first."
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
