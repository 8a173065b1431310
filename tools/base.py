"""The shape of a tool: one declaration (``ToolSpec``) and the context its implementation is handed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from tools.api import CleverTapApi, ConsentSigner, Executor, HandleStore, ProgressFn, ScanStore, SchemaCache
from tools.charts import Chart


def _drop_open(schema: Any) -> None:
    """Remove ``additionalProperties: true`` (the JSON Schema default) at every level of one model's schema."""
    if isinstance(schema, dict):
        if schema.get("additionalProperties") is True:
            del schema["additionalProperties"]
        for value in schema.values():
            _drop_open(value)
    elif isinstance(schema, list):
        for value in schema:
            _drop_open(value)


def compact_schema(schema: dict[str, Any]) -> None:
    """Shrink a model's JSON schema for tools/list without changing what it accepts in practice.

    Optional fields lose their ``null`` branch and ``default: null`` (an omitted field means the same, and outputs are
    dumped with ``exclude_none``); ``additionalProperties: true`` (the JSON Schema default) is dropped.
    """
    _drop_open(schema)
    for prop in (schema.get("properties") or {}).values():
        if not isinstance(prop, dict):
            continue
        any_of = prop.get("anyOf")
        if isinstance(any_of, list):
            rest = [s for s in any_of if s != {"type": "null"}]
            if len(rest) == 1 and isinstance(rest[0], dict):
                del prop["anyOf"]
                for key, value in rest[0].items():
                    prop.setdefault(key, value)
            elif len(rest) < len(any_of):
                prop["anyOf"] = rest
        if "default" in prop and prop["default"] is None:
            del prop["default"]


class ToolInput(BaseModel):
    """Base of every input model: unknown fields are refused so that typos surface as input errors."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=compact_schema)


class ToolOutput(BaseModel):
    """Base of every output model."""

    model_config = ConfigDict(extra="allow", json_schema_extra=compact_schema)

    def structured(self) -> dict[str, Any]:
        """The ``structuredContent`` the client receives: JSON values, without nulls."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


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
    read_only: bool = False
    # Charts the tool drew for this call; the server returns each as an image block beside the result.
    charts: list[Chart] = field(default_factory=list)

    def attach_chart(self, chart: Chart) -> None:
        self.charts.append(chart)

    scans: ScanStore | None = None  # the local store of scanned events (clevertap_aggregate_events)
    schemas: SchemaCache | None = None  # discovered schema (clevertap_describe_schema, did-you-mean)

    def consent_gate(self, tool: str, payload: Any, token: str | None) -> tuple[str, int] | None:
        """The one consent step of every irreversible call. None: go ahead (confirmation is off, or ``token`` is
        valid for exactly this payload; an invalid one raises ConsentRequired). Otherwise a fresh (token, expiry)
        for a preview: the caller must do nothing and return it. The executor boundary consumes a valid token when
        the irreversible request leaves, once: a replayed token sends nothing."""
        if not self.confirm_required:
            return None
        if token is not None:
            self.consent.verify(tool, payload, token)
            return None
        return self.consent.issue(tool, payload)

    async def report(self, done: float, total: float | None = None, message: str | None = None) -> None:
        if self.progress is not None:
            await self.progress(done, total, message)


InT = TypeVar("InT", bound=ToolInput)
OutT = TypeVar("OutT", bound=ToolOutput)


FaultClass = Literal["read", "write", "upload"]
# In an example string: replaced by a fresh number where a test must not send the same record twice. Letters and
# underscores only, so the example stays valid as written (CleverTap object ids refuse braces).
UNIQUE = "_unique_"


def example_from(tool: str, pick: str) -> dict[str, str]:
    """An example argument that only exists at run time (a cursor handle, a campaign id of today's seed): the
    value at ``pick`` in the result of ``tool``'s first valid example. ``pick`` is a dotted path; a segment
    ``name[key=a|b]`` takes the first item of list ``name`` whose ``key`` is a or b."""
    return {"$example": tool, "$pick": pick}


@dataclass(frozen=True, kw_only=True, eq=False)  # one spec per tool: identity is equality
class ToolSpec(Generic[InT, OutT]):
    """One tool, and the inventory every other part derives from (name lists, Membrane action keys, consent sets,
    README tables, manifest.json, the schema snapshot and the catalog-driven test suites).

    Annotations are set explicitly on every tool, never defaulted. Examples run on the sandbox: every valid one
    succeeds or returns a clean preview; every invalid one is refused as an input error. In example strings
    ``UNIQUE`` may be replaced by a fresh number (tests that must not store the same record twice do so), and
    a value made by ``example_from`` is resolved by running another tool's example first.
    """

    name: str
    title: str
    description: str
    input_model: type[InT]
    output_model: type[OutT]
    impl: Callable[[ToolContext, InT], Awaitable[OutT]]
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool
    # The canonical CleverTap paths the tool calls ("/1/counts/events.json"); the endpoint policy classifies them.
    endpoints: tuple[str, ...]
    # What the fault suites expect of the valid examples: reads are retried and end ok or with a clear error;
    # writes are sent once and reported as possibly applied; uploads are sent once and reported per batch.
    fault_class: FaultClass
    examples_valid: tuple[dict[str, Any], ...]
    examples_invalid: tuple[dict[str, Any], ...]
    # The Membrane popular action this tool stands for: its key and Membrane's display name for it.
    action_key: str | None = None
    action_name: str | None = None
    # Irreversible: the first call previews and returns a confirm_token; only a call with that token acts.
    needs_consent: bool = False
    # Stays available in read-only mode because the implementation itself refuses anything that writes
    # (the raw proxy allows only read endpoints; run_action only actions known to read).
    guarded_in_read_only: bool = False
    # The implementation sends the arguments only through the wire client's strict encoder, all of it before the
    # first request, so the server's own argument check (one more full encode of a large upload) is skipped.
    encodes_strictly: bool = False

    def __post_init__(self) -> None:
        if (self.action_key is None) != (self.action_name is None):
            raise ValueError(f"{self.name}: action_key and action_name go together")
        if not self.examples_valid or not self.examples_invalid:
            raise ValueError(f"{self.name}: give at least one valid and one invalid example")

    @property
    def writes(self) -> bool:
        return not self.read_only

    def input_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    def output_schema(self) -> dict[str, Any]:
        return self.output_model.model_json_schema()

    def annotations(self, read_only_mode: bool = False) -> dict[str, Any]:
        """The hints as the server runs: in read-only mode a guarded tool cannot change anything, and says so."""
        confined = read_only_mode and self.guarded_in_read_only
        return {
            "title": self.title,
            "readOnlyHint": self.read_only or confined,
            "destructiveHint": self.destructive and not confined,
            "idempotentHint": self.idempotent or confined,
            "openWorldHint": self.open_world,
        }


def strip_titles(schema: Any) -> Any:
    """Drop the 'title' strings pydantic adds to every property: they repeat the name and cost tokens.

    A property that is itself called "title" maps to a dict, so it survives.
    """
    if isinstance(schema, dict):
        return {k: strip_titles(v) for k, v in schema.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(schema, list):
        return [strip_titles(v) for v in schema]
    return schema
