"""The executor boundary: every request and action leaves the process through here, and here alone is decided whether
it may (read-only mode, tool selection, a consumed single-use confirmation) and written to the audit log.

``GuardedExecutor`` wraps the backend's executor (membrane, clevertap, sandbox, unconfigured); the runtime hands only
the wrapper to tools, to the wire client and to the local action runner, so no tool, action or proxy path can go
around it. What a call is comes from ``server.policies.endpoints`` and nothing else.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio

from server.policies.audit import AuditLog, body_digest
from server.policies.endpoints import Decision, action_kind, classify
from server.state.consent import CallScope, ConsentLedger, current_scope, payload_digest
from tools.api import ActionInfo, ActionRun, ConnectResult, Executor, ProgressFn, RawResponse
from tools.errors import ConfigurationError, ConsentRequired, InputError, ToolFailure, UpstreamError

log = logging.getLogger("clevertap_mcp")

# The routes that reach endpoints and actions chosen by the caller: tool selection is enforced on what they reach.
GENERIC_ROUTES = frozenset({"clevertap_request", "clevertap_run_action"})
# How long a consumed token is remembered past its expiry (a replay after that gets "expired" anyway).
_LEDGER_GRACE_S = 120
_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class Policy:
    """What the boundary enforces, read from the runtime at each call (per-user runtimes differ)."""

    read_only: bool
    confirm_required: bool
    selected: Callable[[], frozenset[str]]
    ledger: Callable[[], ConsentLedger]
    audit: AuditLog | None


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _replay(record: str) -> ConsentRequired:
    try:
        data = json.loads(record)
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    at = data.get("at") or "earlier"
    if data.get("state") == "done":
        return ConsentRequired(
            f"this confirm_token was already used at {at}: the action was already done (result: "
            f"{data.get('result') or 'no reference'}). Nothing was sent again.",
            hint="Do not repeat it. If the user wants it done once more, call again without confirm_token for a new "
            "preview and ask them again.",
            details={"replay": True, "result": data.get("result")},
        )
    return ConsentRequired(
        f"this confirm_token was already used at {at}, and that call's outcome is unknown (it may still be running, "
        "or its answer was lost). Nothing was sent again.",
        hint="Check whether it took effect (list campaigns, look the profile up...) before asking the user again.",
        details={"replay": True, "result": None},
    )


def _result_ref(value: RawResponse | ActionRun) -> str:
    if isinstance(value, ActionRun):
        return f"actionRunId {value.action_run_id}" if value.action_run_id else "the action ran"
    ref = f"HTTP {value.status}"
    if isinstance(value.body, dict):
        if value.body.get("id") is not None:
            ref += f", id {str(value.body['id'])[:40]}"
        if isinstance(value.body.get("status"), str):
            ref += f", status {value.body['status'][:20]}"
    return ref


def _failure_outcome(exc: BaseException) -> str:
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        return "outcome unknown: cancelled while waiting for the answer"
    if isinstance(exc, UpstreamError) and (exc.retryable or exc.details.get("uncertain")):
        return f"outcome unknown: no usable answer ({exc.layer}, HTTP {exc.status or '-'})"
    if isinstance(exc, ToolFailure):
        return f"error: {exc.layer}" + (f", HTTP {exc.status}" if isinstance(exc, UpstreamError) and exc.status else "")
    return f"outcome unknown: {type(exc).__name__}"


class GuardedExecutor:
    """``tools.api.Executor`` around ``inner``; other attributes (``live_action``, ``aclose``...) are the inner's."""

    def __init__(self, inner: Executor, policy: Policy) -> None:
        self.inner = inner
        self.name = inner.name
        self.policy = policy

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        """Tuning set on the executor (budgets, backoffs) is the inner executor's."""
        if name in ("inner", "name", "policy"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.inner, name, value)

    # -- requests -----------------------------------------------------------------------------------------------
    async def request(
        self, method: str, path: str, query: Mapping[str, Any] | None = None, body: Any = None
    ) -> RawResponse:
        decision = classify(method, path, body)
        scope = current_scope()
        where = f"{method.upper()} {decision.path}"
        if not decision.reads and self.policy.read_only:
            raise InputError(
                f"{where} is not a read ({decision.why}) and the server runs in read-only mode.",
                hint="Only the read endpoints can be called in read-only mode (counts, exports, profile, campaigns "
                "list and report, message report, now).",
            )
        route = scope.tool if scope is not None else None
        if route in GENERIC_ROUTES and decision.endpoint is not None:
            self._check_selected(decision.endpoint.tools, where)
        return await self._send(
            scope,
            decision,
            where,
            lambda: body_digest(body),
            lambda: self.inner.request(method, path, query, body),
            preview={"path": decision.path},
        )

    # -- actions ------------------------------------------------------------------------------------------------
    async def resolve_action(self, key_or_id: str) -> str | None:
        """The key of the action ``key_or_id`` names (an id is looked up), or None when it cannot be classified."""
        from tools.catalog import by_action

        describe = getattr(self.inner, "describe_action", None)
        info: ActionInfo | None = await describe(key_or_id) if describe is not None else None
        if info is not None and info.key:
            return info.key
        spec = by_action(key_or_id)
        return spec.action_key if spec is not None else None

    async def run_action(self, key_or_id: str, input: Mapping[str, Any]) -> ActionRun:
        from tools.catalog import by_action

        key = await self.resolve_action(key_or_id)
        kind = action_kind(key)
        spec = by_action(key) if key else None
        named = f"action {key_or_id!r}" + (f" ({key})" if key and key != key_or_id else "")
        why = "the server cannot tell what it does" if key is None or spec is None else f"it is {spec.title.lower()}"
        if kind != "read" and self.policy.read_only:
            raise InputError(
                f"{named} is not known to only read ({why}) and the server runs in read-only mode.",
                hint="Use clevertap_search_actions to find read actions (read_only: true), or the read tools.",
            )
        if key is None and not hasattr(self.inner, "describe_action") and self.name != "unconfigured":
            # A local catalog is the whole universe of actions: an unknown name is a typo, not a risk to weigh.
            raise InputError(
                f"unknown action {key_or_id!r}.",
                hint="Call clevertap_search_actions with what you want to do to find an action key.",
            )
        if spec is not None:
            self._check_selected((spec.name,), named)
        decision = Decision(kind, why, None, f"action {key or key_or_id}")
        preview: dict[str, Any] = {"action": key or key_or_id}
        scope = current_scope()
        if spec is not None and (scope is None or scope.tool != spec.name):
            preview["tool"] = spec.name
        return await self._send(
            scope,
            decision,
            named,
            lambda: payload_digest(dict(input)),
            lambda: self.inner.run_action(key_or_id, input),
            preview=preview,
        )

    async def search_actions(self, intent: str, limit: int) -> list[ActionInfo]:
        """The inner search, without actions hidden by tool selection or read-only mode, each marked read or not."""
        from tools.catalog import by_action

        found = await self.inner.search_actions(intent, limit)
        selected = self.policy.selected()
        shown: list[ActionInfo] = []
        for info in found:
            key = info.key or None
            spec = by_action(key) if key else None
            if spec is not None and spec.name not in selected:
                continue
            reads = action_kind(key) == "read"
            if self.policy.read_only and not reads:
                continue
            shown.append(dataclasses.replace(info, read_only=reads))
        return shown

    async def connect(self, wait_seconds: float, progress: ProgressFn | None = None) -> ConnectResult:
        return await self.inner.connect(wait_seconds, progress)

    # -- the gate -----------------------------------------------------------------------------------------------
    def _check_selected(self, owners: tuple[str, ...], what: str) -> None:
        from tools.names import TOOL_NAMES

        selected = self.policy.selected()
        hidden = [t for t in owners if t in TOOL_NAMES and t not in selected]
        if hidden:
            raise InputError(
                f"{what} belongs to {', '.join(hidden)}, which this server hides (--tools/--exclude-tools or "
                "read-only mode), so no other tool may reach it either.",
                hint="Use the tools that are listed; the operator decides which tools are exposed.",
            )

    async def _send(
        self,
        scope: CallScope | None,
        decision: Decision,
        where: str,
        digest: Callable[[], str],
        send: Callable[[], Awaitable[_T]],
        *,
        preview: dict[str, Any],
    ) -> _T:
        if decision.reads:
            return await send()
        token_key: str | None = None
        ttl = 0
        if decision.kind == "irreversible" and self.policy.confirm_required:
            pending = scope.take(scope.tool) if scope is not None else None
            if pending is None:
                raise ConsentRequired(
                    f"{where} cannot be undone ({decision.why}) and needs the user's confirmation first; nothing "
                    "was sent.",
                    hint="Call the tool without confirm_token to get a preview and a confirm_token, show it to the "
                    "user, and only if they agree call again with it.",
                    details={"preview": True, "why": decision.why, **preview},
                )
            token_key = pending.key
            ttl = max(1, int(pending.expires - time.time())) + _LEDGER_GRACE_S
        attempt = self._attempt(scope, where, decision, digest)
        if token_key is not None:
            try:
                found = await self.policy.ledger().claim(token_key, json.dumps({"state": "sending", "at": _now()}), ttl)
            except BaseException as exc:
                self._outcome(attempt, f"not sent: {_failure_outcome(exc)}")
                raise
            if found is not None:
                self._outcome(attempt, "not sent: confirm_token already used")
                raise _replay(found)
        if scope is not None:
            scope.writes_sent += 1
        try:
            result = await send()
        except BaseException as exc:
            outcome = _failure_outcome(exc)
            self._outcome(attempt, outcome)
            if token_key is not None:
                await self._settle(token_key, {"state": "unknown" if "unknown" in outcome else "failed"}, ttl)
            raise
        if scope is not None:
            scope.writes_answered += 1
        ref = _result_ref(result) if isinstance(result, (RawResponse, ActionRun)) else "answered"
        self._outcome(attempt, f"answered: {ref}")
        if token_key is not None:
            await self._settle(token_key, {"state": "done", "result": ref}, ttl)
        return result

    def _attempt(
        self, scope: CallScope | None, where: str, decision: Decision, digest: Callable[[], str]
    ) -> str | None:
        audit = self.policy.audit
        if audit is None:
            return None
        try:
            return audit.attempt(scope.tool if scope else None, where, decision.kind, digest())
        except OSError as exc:
            raise ConfigurationError(
                f"the audit log cannot be written ({exc.strerror or type(exc).__name__}), so {where} was not sent.",
                hint="The operator must fix the audit log (disk space, permissions) before writes can go on.",
            ) from None

    def _outcome(self, attempt: str | None, outcome: str) -> None:
        audit = self.policy.audit
        if audit is None or attempt is None:
            return
        try:
            audit.outcome(attempt, outcome)
        except OSError:
            log.error("could not write the outcome of audited request %s: %s", attempt, outcome)

    async def _settle(self, key: str, record: dict[str, Any], ttl: int) -> None:
        """Record a consumed token's outcome; shielded, so a cancelled call still records that it used its token."""
        record = {"at": _now(), **record}
        with anyio.CancelScope(shield=True):
            try:
                await self.policy.ledger().settle(key, json.dumps(record), ttl)
            except ToolFailure as exc:
                log.warning("could not record the outcome of a confirmed call: %s", exc.message)
