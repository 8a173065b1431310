"""The shape of a tool: one declaration (``ToolSpec``) and the context its implementation is handed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from tools.api import CleverTapApi, ConsentSigner, Executor, HandleStore, ProgressFn


class ToolInput(BaseModel):
    """Base of every input model: unknown fields are refused so that typos surface as input errors."""

    model_config = ConfigDict(extra="forbid")


class ToolOutput(BaseModel):
    """Base of every output model."""

    model_config = ConfigDict(extra="allow")


@dataclass
class ToolContext:
    """Everything an implementation may use. Built per call by the server."""

    api: CleverTapApi
    executor: Executor
    handles: HandleStore
    consent: ConsentSigner
    progress: ProgressFn | None = None
    budget_s: float = 60.0
    max_result_bytes: int = 60_000
    confirm_required: bool = True

    async def report(self, done: float, total: float | None = None, message: str | None = None) -> None:
        if self.progress is not None:
            await self.progress(done, total, message)


I = TypeVar("I", bound=ToolInput)
O = TypeVar("O", bound=ToolOutput)


@dataclass(frozen=True)
class ToolSpec(Generic[I, O]):
    """One tool as agents see it. Annotations are set explicitly on every tool, never defaulted."""

    name: str
    title: str
    description: str
    input_model: type[I]
    output_model: type[O]
    impl: Callable[[ToolContext, I], Awaitable[O]]
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool
    action_key: str | None = None

    @property
    def writes(self) -> bool:
        return not self.read_only

    def input_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    def output_schema(self) -> dict[str, Any]:
        return self.output_model.model_json_schema()

    def annotations(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "readOnlyHint": self.read_only,
            "destructiveHint": self.destructive,
            "idempotentHint": self.idempotent,
            "openWorldHint": self.open_world,
        }
