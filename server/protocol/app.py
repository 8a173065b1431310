"""The MCP wiring: tools/list and tools/call on the low-level server, with every failure turned into ``isError``."""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar, cast

import anyio
import mcp.types as types
from mcp.server import Server, ServerRequestContext
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode
from pydantic_core import PydanticSerializationError, to_json

from server.codec.wirejson import strict_json
from server.policies.privacy import Redactor, mask_text
from server.policies.scrub import Scrubber
from server.runtime import Runtime, parse_input
from server.state.consent import CallScope, call_scope
from tools.base import ToolSpec, strip_titles
from tools.charts import Chart
from tools.errors import ConsentRequired, InputError, ToolFailure
from tools.models import DATE_FORMS, today_utc

log = logging.getLogger("clevertap_mcp")

VERSION = "0.1.0"

INSTRUCTIONS = """\
Today is {today} (UTC). CleverTap tools. Workflow: call clevertap_connect first if a tool reports a configuration
problem; read with the count/export tools; before anything irreversible (create or stop a campaign, delete profiles,
send) call the tool without confirm_token to get a preview and a confirm_token, show the preview to the user, and only
then call again with the token (it works once). {dates}
CleverTap quirks: event and property names are case-sensitive ('Charged', not 'charged'); exports return a short cursor
handle to pass to the *_by_cursor tool; uploads take epoch-second timestamps and report per-record errors by your own
0-based index. Timestamps in results are ISO 8601 UTC.
Questions (totals, sums, top values, trends, one user): use clevertap_aggregate_events, clevertap_get_top_values,
clevertap_get_trends or clevertap_get_user_profile, computed in the server, instead of exporting records; unsure of a
name? clevertap_describe_schema. chart=true adds a PNG when the user would rather look than read.
Resources: clevertap://catalog (every tool, its Membrane action key, read-only flag), clevertap://schema (events
and properties seen), clevertap://regions, clevertap://charts/{{id}}. Prompts package common analyst jobs."""


def instructions(today: dt.date | None = None) -> str:
    """The server's instructions, stating today's UTC date: models often do not know it."""
    day = today or today_utc()
    return INSTRUCTIONS.format(today=f"{day.isoformat()}, {day.strftime('%A')}", dates=DATE_FORMS)


class _Server(Server[Any]):
    """A server whose instructions are computed each time a session reads them, so the date in them stays current."""

    @property
    def instructions(self) -> str:
        return instructions()

    @instructions.setter
    def instructions(self, value: str | None) -> None:
        """The SDK sets the constructor's value; the computed text always wins."""


_LIVE_OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "output": {"description": "The Membrane action's output."},
        "action_run_id": {"type": "string", "description": "Membrane's id of this action run."},
        "confirm_token": {"type": "string"},
        "next_step": {"type": "string"},
    },
}


def _finite(value: Any) -> Any:
    """Refuse what no tool can take before it fails deep inside (see ``strict_json``)."""
    strict_json(value)
    return value


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _utf8_safe(text: str) -> str:
    """``text`` with lone UTF-16 surrogates (which JSON escapes let upstream data carry) as U+FFFD: the stdio and
    HTTP writers encode UTF-8 and would fail on them, losing the answer."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def error_result(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=_utf8_safe(text))], is_error=True)


_WITHHELD = (
    "the result was withheld: it carried a credential in a form the scrubber could not cut out. What to do: "
    "narrow the request (the upstream answer echoes a secret); nothing else was affected."
)


def ok_result(
    structured: dict[str, Any], scrub: Scrubber | None = None, redact: Redactor | None = None
) -> types.CallToolResult:
    """The result as compact JSON text plus the same value as structured content: the one place every result leaves.

    ``redact`` (``--redact-pii``) masks personal data and ``scrub`` masks credentials in every encoding the value can
    carry them; both work on the value, so the text and the structured copy agree. pydantic-core's encoder writes a
    export page much faster than ``json``; what it refuses (a lone surrogate from upstream) goes through
    ``json`` and ``_utf8_safe``, and the structured copy is read back from that.
    """
    if redact is not None:
        structured = redact(structured)
    text, lenient = _encode(structured)
    if lenient:
        structured = json.loads(text)
    if scrub is not None and scrub.holds_secret(text):
        # An upstream that echoes a credential (raw proxy bodies, action outputs) must not put it in a result.
        structured = scrub.value(structured)
        text, _ = _encode(structured)
        if scrub.holds_secret(text):
            return error_result(_WITHHELD)
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=structured)


def wire_result(result: types.CallToolResult) -> dict[str, Any]:
    """``result`` in wire form, its structured content as it is (already JSON, see ``ok_result``).

    Returned as a model, the SDK dumps the whole result, structured copy included, and then validates and dumps that
    dict again; returned as a dict, the first walk over a page of records is skipped."""
    out: dict[str, Any] = {
        "content": [block.model_dump(by_alias=True, mode="json", exclude_none=True) for block in result.content],
        "isError": result.is_error,
    }
    if result.structured_content is not None:
        out["structuredContent"] = result.structured_content
    if result.meta:
        out["_meta"] = result.meta
    if result.result_type is not None:
        out["resultType"] = result.result_type
    return out


def _encode(structured: dict[str, Any]) -> tuple[str, bool]:
    """Compact JSON text, and whether it came from the lenient path (the structured copy must be read back)."""
    try:
        return to_json(structured).decode(), False
    except (PydanticSerializationError, ValueError, TypeError, RecursionError):
        return _utf8_safe(json.dumps(structured, ensure_ascii=False, separators=(",", ":"), default=str)), True


_CHART_WITHHELD = (
    "No chart is attached: --redact-pii masked values in this result that the picture would show. The numbers above "
    "are complete; ask without personal properties (or without --redact-pii) for a chart."
)
# Results that describe the server and its catalog, never account data: --redact-pii masks patterns there, not keys.
_METADATA_TOOLS = {"clevertap_connect", "clevertap_search_actions"}


def _writes(scope: CallScope, *, unknown: bool) -> str:
    """The write requests of a call, for its audit line."""
    sent, answered = scope.writes_sent, scope.writes_answered
    if unknown:
        return f"outcome unknown: {sent} write requests were sent, {answered} answered"
    return f"{sent} write requests were sent and answered"


RuntimeResolver = Callable[[ServerRequestContext[Any]], Runtime]
_P = TypeVar("_P")
_R = TypeVar("_R")
_REQUEST_RUNTIME: ContextVar[Runtime | None] = ContextVar("clevertap_mcp_request_runtime", default=None)


@functools.lru_cache(maxsize=512)
def _cached_schema(model: Any, mode: JsonSchemaMode) -> str:  # Any: mypy does not see classes as Hashable
    return json.dumps(strip_titles(model.model_json_schema(by_alias=True, mode=mode)))


def _schema(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
    """A model's JSON schema without titles, the caller's own copy.

    Generating the catalog's schemas is the bulk of a tools/list; every session and every per-user runtime asks
    for the same ones, so each is made once per process (kept as JSON text, so no caller can change another's).
    """
    schema: dict[str, Any] = json.loads(_cached_schema(model, mode))
    return schema


class App:
    """Holds the runtime and answers the two tool requests.

    ``runtime_for`` picks the runtime that serves one request (the HTTP transport gives each ``X-Membrane-Token``
    its own); handlers wrapped by ``scoped`` see it as ``self.runtime``. Without it every request uses ``runtime``.
    """

    def __init__(self, runtime: Runtime, *, runtime_for: RuntimeResolver | None = None) -> None:
        self.default_runtime = runtime
        self._resolver = runtime_for
        self._tools: list[types.Tool] | None = None
        self._tools_changed = False
        runtime.tools_changed_listener = self._mark_tools_changed
        from server.protocol.charts import ChartStore

        self.charts = ChartStore()

    async def _mark_tools_changed(self) -> None:
        self._tools = None
        self._tools_changed = True

    @property
    def runtime(self) -> Runtime:
        return _REQUEST_RUNTIME.get() or self.default_runtime

    def runtime_for(self, ctx: ServerRequestContext[Any]) -> Runtime:
        return self.default_runtime if self._resolver is None else self._resolver(ctx)

    def scoped(
        self, handler: Callable[[ServerRequestContext[Any], _P], Awaitable[_R]]
    ) -> Callable[[ServerRequestContext[Any], _P], Awaitable[_R]]:
        """Run ``handler`` with ``self.runtime`` set to the request's runtime."""

        async def run(ctx: ServerRequestContext[Any], params: _P) -> _R:
            token = _REQUEST_RUNTIME.set(self.runtime_for(ctx))
            try:
                return await handler(ctx, params)
            finally:
                _REQUEST_RUNTIME.reset(token)

        return run

    # -- tools/list ---------------------------------------------------------------------------------------------
    def tool(self, spec: ToolSpec[Any, Any]) -> types.Tool:
        live = self.runtime.live_action(spec)
        if live is not None and live.input_schema is not None:
            input_schema = dict(live.input_schema)
            if spec.needs_consent:
                props = dict(input_schema.get("properties") or {})
                props["confirm_token"] = {
                    "type": "string",
                    "description": "Token from the preview call; omit it to get a preview first.",
                }
                input_schema = {**input_schema, "properties": props}
        else:
            input_schema = _schema(spec.input_model, "validation")
        output_schema = _schema(spec.output_model, "serialization")
        if spec.action_key is not None and self.runtime.backend == "membrane":
            # Clients keep the outputSchema of the first tools/list they made; once the connection is READY the
            # Membrane action's result replaces the bundled one, so both shapes are published in every state.
            defs = output_schema.pop("$defs", None)
            output_schema = {
                "type": "object",
                "anyOf": [output_schema, _LIVE_OUTPUT_SCHEMA],
                **({"$defs": defs} if defs else {}),
            }
        return types.Tool.model_validate(
            {
                "name": spec.name,
                "title": spec.title,
                "description": spec.description,
                "inputSchema": input_schema,
                "outputSchema": output_schema,
                "annotations": spec.annotations(self.runtime.settings.read_only),
            }
        )

    def tools(self) -> list[types.Tool]:
        if self.runtime is not self.default_runtime:
            return [self.tool(s) for s in self.runtime.specs]
        if self._tools is None:
            self._tools = [self.tool(s) for s in self.runtime.specs]
        return self._tools

    async def list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self.tools())

    # -- tools/call ---------------------------------------------------------------------------------------------
    async def call_tool(self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> dict[str, Any]:
        with call_scope(params.name) as scope:
            try:
                result, outcome, structured = await self._answer(ctx, params)
            except BaseException:
                # Cancelled (the client gave up, or the server is stopping): the writes already sent stay sent.
                self._audit(params.name, params.arguments, f"cancelled; {_writes(scope, unknown=True)}", None)
                raise
        self._audit(params.name, params.arguments, outcome, structured, scope)
        if self._tools_changed:
            self._tools_changed = False
            try:
                await ctx.session.send_tool_list_changed()
            except Exception:
                log.debug("could not send tools/list_changed", exc_info=True)
        return wire_result(result)

    async def _answer(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> tuple[types.CallToolResult, str, dict[str, Any] | None]:
        runtime = self.runtime
        outcome = "ok"
        structured: dict[str, Any] | None = None
        charts: list[Chart] = []
        redact = self._redactor(params.name)
        try:
            structured = await self._call(ctx, params.name, params.arguments, charts)
            if structured.get("confirm_token"):
                outcome = "preview"
            withheld = False
            if redact is not None and charts:
                # A chart is drawn from the unmasked values: when masking changed any, the picture would show them.
                masked = redact(structured)
                withheld = masked != structured
                structured, redact = masked, None
            result = ok_result(structured, runtime.scrub, redact)
            if withheld:
                result.content.append(types.TextContent(type="text", text=_CHART_WITHHELD))
            else:
                for chart in charts:
                    result.content.extend(self.charts.blocks(chart, owner=runtime))
        except ToolFailure as failure:
            outcome = f"error:{failure.layer}"
            if failure.layer != "input":
                log.info("tool %s failed: %s", params.name, failure.message)
            text = runtime.scrub(failure.render())
            result = error_result(mask_text(text) if redact is not None else text)
        except Exception as exc:
            outcome = "error:internal"
            log.exception("tool %s crashed", params.name)
            text = runtime.scrub(
                f"Internal error: {type(exc).__name__}: {exc}\nWhat to do: this is a bug in clevertap-mcp; "
                "the server keeps serving, so you may retry or use another tool."
            )
            result = error_result(mask_text(text) if redact is not None else text)
        return result, outcome, structured

    def _redactor(self, name: str) -> Redactor | None:
        """With --redact-pii, the masking for ``name``'s result; metadata tools keep their key names readable."""
        settings = self.runtime.settings
        if not settings.redact_pii:
            return None
        return Redactor(settings.redact_keys, by_key=name not in _METADATA_TOOLS)

    def _audit(
        self,
        name: str,
        arguments: Any,
        outcome: str,
        structured: dict[str, Any] | None,
        scope: CallScope | None = None,
    ) -> None:
        audit = self.runtime.audit
        spec = self.runtime.spec(name)
        if audit is None or spec is None or not spec.writes:
            return
        if scope is not None and outcome.startswith("error") and scope.writes_sent:
            outcome = f"{outcome}; {_writes(scope, unknown=scope.writes_sent > scope.writes_answered)}"
        run_id = structured.get("action_run_id") if structured else None
        try:
            audit.write(name, arguments or {}, outcome, action_run_id=run_id if isinstance(run_id, str) else None)
        except OSError:
            log.error("could not write the audit log for %s (%s)", name, outcome)

    async def _call(
        self,
        ctx: ServerRequestContext[Any],
        name: str,
        arguments: Mapping[str, Any] | None,
        charts: list[Chart] | None = None,
    ) -> dict[str, Any]:
        spec = self.runtime.spec(name)
        if spec is None:
            from tools.catalog import by_name

            known = by_name(name)
            if known is not None and self.runtime.settings.read_only and known.writes:
                raise InputError(
                    f"tool {name!r} changes the account and is disabled: the server runs in read-only mode.",
                    hint="Use the read tools, or ask the operator to start the server without --read-only.",
                )
            if known is not None:
                names = ", ".join(s.name for s in self.runtime.specs)
                raise InputError(
                    f"unknown tool {name!r} here: this server was started with --tools/--exclude-tools that leave "
                    "it out.",
                    hint=f"Call one of: {names}.",
                )
            names = ", ".join(s.name for s in self.runtime.specs)
            raise InputError(f"unknown tool {name!r}.", hint=f"Call one of: {names}.")
        args = dict(arguments or {})
        live = self.runtime.live_action(spec)
        if live is not None or not spec.encodes_strictly:
            _finite(args)

        async def progress(done: float, total: float | None, message: str | None) -> None:
            try:
                await ctx.session.report_progress(done, total, message)
            except Exception:
                log.debug("progress notification failed", exc_info=True)

        limit = self.runtime.settings.call_budget_s + 15
        from server.backends.retry import call_deadline

        # One budget covers the whole call, however many requests the tool makes.
        with anyio.move_on_after(limit) as scope, call_deadline(self.runtime.settings.call_budget_s):
            if live is not None:
                structured = await self._run_live(spec, live.input_schema or {}, args)
            else:
                context = self.runtime.context(progress)
                if charts is not None:
                    context.charts = charts  # what the tool attaches comes back as image blocks
                output = await spec.impl(context, parse_input(spec, args))
                structured = output.structured()
                token = structured.get("confirm_token")
                if isinstance(token, str) and "confirm_token" in spec.input_model.model_fields:
                    decision = await self._ask_user(ctx, spec, args, structured)
                    if decision is True:
                        output = await spec.impl(context, parse_input(spec, {**args, "confirm_token": token}))
                        structured = output.structured()
                        structured["confirmed_by"] = "the user, asked directly by the client"
                    elif decision is False:
                        for key in ("confirm_token", "expires_at"):
                            structured.pop(key, None)
                        structured["next_step"] = (
                            "The user declined when asked: nothing was done. Do not try again unless the user asks."
                        )
        if scope.cancelled_caught:
            raise ToolFailure(
                f"{name} did not finish within {limit:.0f} seconds and was stopped.",
                hint="Narrow the request (smaller date range or batch) and call again; reads are safe to repeat.",
            )
        return structured

    async def _ask_user(
        self, ctx: ServerRequestContext[Any], spec: ToolSpec[Any, Any], args: Mapping[str, Any], preview: dict[str, Any]
    ) -> bool | None:
        """Ask the user to confirm an irreversible call through elicitation: True (go), False (declined), or None when
        the client cannot be asked, in which case the confirm_token flow stands."""
        capabilities = getattr(ctx.session, "client_capabilities", None)
        if capabilities is None or capabilities.elicitation is None:
            return None
        shown_args = {k: v for k, v in args.items() if k != "confirm_token"}
        shown_preview = {k: v for k, v in preview.items() if k not in ("confirm_token", "expires_at", "next_step")}
        message = (
            f"{spec.title}: this cannot be undone.\n"
            f"Request: {json.dumps(shown_args, ensure_ascii=False, default=str)[:800]}\n"
            f"Preview: {json.dumps(shown_preview, ensure_ascii=False, default=str)[:800]}\n"
            "Go ahead?"
        )
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {"confirm": {"type": "boolean", "title": "Go ahead", "description": "Yes to do it now."}},
            "required": ["confirm"],
        }
        try:
            answer = await ctx.session.elicit_form(self.runtime.scrub(message), schema)
        except Exception:
            log.debug("elicitation unavailable; the confirm_token flow stands", exc_info=True)
            return None
        # Consent fails closed: only an explicit yes goes ahead; decline, cancel and "no" all stop here.
        return answer.action == "accept" and (answer.content or {}).get("confirm") is True

    async def _run_live(
        self, spec: ToolSpec[Any, Any], schema: Mapping[str, Any], args: dict[str, Any]
    ) -> dict[str, Any]:
        """Run a popular tool as its Membrane action, checked against Membrane's own input schema."""
        import jsonschema

        token = args.pop("confirm_token", None) if spec.needs_consent else None
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(args), key=lambda e: list(e.path))
        if errors:
            detail = "; ".join(f"{'.'.join(map(str, e.path)) or 'arguments'}: {e.message}" for e in errors[:8])
            raise InputError(
                f"invalid arguments for {spec.name}: {detail}",
                hint=(
                    f"Since the connection became READY this tool takes Membrane's input schema for {spec.action_key} "
                    f"(properties: {', '.join(sorted(schema.get('properties') or {})) or 'none'}; required: "
                    f"{', '.join(schema.get('required') or []) or 'none'}); "
                    "list the tools again to see its inputSchema."
                ),
            )
        if spec.needs_consent and self.runtime.settings.confirm != "never":
            if token is None:
                confirm, expires = self.runtime.consent.issue(spec.name, args)
                return {
                    "output": {"preview": args, "expires_at": expires},
                    "confirm_token": confirm,
                    "next_step": "Nothing was done yet. Show the user exactly what will happen and ask; if they agree, "
                    "call again with the same arguments plus this confirm_token.",
                }
            if not isinstance(token, str):
                raise ConsentRequired("confirm_token must be a string.", hint="Pass the token from the preview call.")
            self.runtime.consent.verify(spec.name, args, token)
        assert spec.action_key is not None
        run = await self.runtime.executor.run_action(spec.action_key, args)
        from tools.results import bound_json

        output, cut = bound_json(run.output, self.runtime.settings.max_result_bytes - 500)
        out: dict[str, Any] = {"output": output}
        if run.action_run_id:
            out["action_run_id"] = run.action_run_id
        if cut:
            out["next_step"] = f"The action's output was cut to fit the result ({cut}): narrow the input."
        return out


def build_server(runtime: Runtime, *, runtime_for: RuntimeResolver | None = None) -> tuple[Server[Any], App]:
    from server.protocol.prompts import Prompts
    from server.protocol.resources import Resources

    app = App(runtime, runtime_for=runtime_for)
    resources = Resources(app.runtime_for, charts=app.charts)
    prompts = Prompts(app.runtime_for)
    server: Server[Any] = _Server(
        "clevertap-mcp",
        version=VERSION,
        title="CleverTap",
        on_list_tools=app.scoped(app.list_tools),
        # The runner takes a handler's result as a model or as a wire-form dict (``mcp.server.context.HandlerResult``);
        # the low-level signature only names the model.
        on_call_tool=cast(Any, app.scoped(app.call_tool)),
        on_list_resources=resources.list_resources,
        on_read_resource=resources.read_resource,
        on_list_resource_templates=resources.list_resource_templates,
        on_list_prompts=prompts.list_prompts,
        on_get_prompt=prompts.get_prompt,
    )
    return server, app
