"""Connection: make the backend ready (Membrane connection ensure + wait, or a credential check)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tools.base import ToolContext, ToolInput, ToolOutput, ToolSpec


class ConnectInput(ToolInput):
    wait_seconds: float = Field(30, ge=0, le=300, description="Max seconds to wait.")


class ConnectOutput(ToolOutput):
    backend: str
    state: str
    message: str
    next_step: str
    connection_id: str | None = None
    account_id: str | None = None
    region: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


async def connect(ctx: ToolContext, args: ConnectInput) -> ConnectOutput:
    # The wait never outlasts the call's time budget (the server stops the call soon after it).
    result = await ctx.executor.connect(min(args.wait_seconds, ctx.budget_s), ctx.progress)
    return ConnectOutput(
        backend=result.backend,
        state=result.state,
        message=result.message,
        next_step=result.next_step,
        connection_id=result.connection_id,
        account_id=result.account_id,
        region=result.region,
        details=dict(result.details),
    )


CONNECT = ToolSpec(
    name="clevertap_connect",
    title="Connect",
    description=(
        "Check or set up the CleverTap connection: call it first, or when a tool reports a configuration or "
        "credentials problem. Returns state (READY = go) and next_step for the user."
    ),
    input_model=ConnectInput,
    output_model=ConnectOutput,
    impl=connect,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    endpoints=(),
    fault_class="read",
    examples_valid=({"wait_seconds": 30},),
    examples_invalid=({"wait_seconds": "soon"}, {"bogus": 1}),
)
