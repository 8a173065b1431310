"""The runtime: one executor, one wire client, one handle store and one consent signer per process.

Everything heavy (httpx, the sandbox, the Membrane client) is built on first use, so start-up stays close to
the bare ``mcp`` import.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from server.codec.gcpause import gc_paused
from server.config import Settings
from server.policies.audit import AuditLog
from server.policies.scrub import Scrubber
from server.state.consent import ConsentLedger, HmacConsentSigner, MemoryConsentLedger
from server.state.handles import MemoryHandleStore
from server.state.schema_cache import MemorySchemaCache
from tools.api import ActionInfo, ActionRun, CleverTapApi, Executor, HandleStore, ProgressFn
from tools.base import ToolContext, ToolSpec
from tools.errors import InputError
from tools.names import TOOL_NAMES

if TYPE_CHECKING:
    from server.state.scanstore import SqliteScanStore

log = logging.getLogger("clevertap_mcp")

# One ledger of consumed confirmation tokens per process, shared by every runtime in it (the per-user runtimes of
# the HTTP transport too); replicas share theirs through Redis.
PROCESS_LEDGER = MemoryConsentLedger()
SANDBOX_ACCOUNT_ID = "DEMO-SANDBOX"
SANDBOX_PASSCODE = "sandbox"
_FIX_AND_RESTART = "Fix the setting named above, restart the MCP server, then run clevertap_connect."


def validation_message(exc: ValidationError, limit: int = 8) -> str:
    """A pydantic error as one readable paragraph: where, what, and (bounded) how many."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    more = len(exc.errors()) - limit
    if more > 0:
        parts.append(f"... and {more} more problems")
    return "; ".join(parts)


def parse_input(spec: ToolSpec[Any, Any], arguments: Mapping[str, Any]) -> Any:
    try:
        with gc_paused():  # an upload's 100,000 records are acyclic: see server/codec/gcpause.py
            return spec.input_model.model_validate(arguments)
    except ValidationError as exc:
        raise InputError(
            f"invalid arguments for {spec.name}: {validation_message(exc)}",
            hint="Fix the listed fields (see the tool's inputSchema) and call again.",
        ) from None


def consent_subject(settings: Settings) -> str:
    """Who confirms through this runtime: the CleverTap account and a digest of the Membrane token (each
    ``X-Membrane-Token`` of an HTTP deployment is its own user), so one user's confirm_token is void for another."""
    token = settings.membrane_token.get_secret_value() if settings.membrane_token else ""
    digest = hashlib.sha256(token.encode()).hexdigest()[:32] if token else ""
    return f"{settings.clevertap_account_id or ''}|{digest}"


def check_tool_names(settings: Settings) -> None:
    """--tools/--exclude-tools may only name real tools: a typo would silently hide or expose one."""
    asked = set(settings.tools or ()) | set(settings.exclude_tools)
    unknown = sorted(asked - set(TOOL_NAMES))
    if unknown:
        raise ValueError(
            f"unknown tool name(s) in --tools/--exclude-tools: {', '.join(unknown)}. "
            f"Valid names: {', '.join(sorted(TOOL_NAMES))}"
        )


def select_tools(settings: Settings) -> tuple[ToolSpec[Any, Any], ...]:
    """The tools to list: --tools trims, --exclude-tools beats it, and read-only beats both."""
    from tools.catalog import CATALOG

    check_tool_names(settings)
    return tuple(
        s
        for s in CATALOG
        if (settings.tools is None or s.name in settings.tools)
        and s.name not in settings.exclude_tools
        and not (settings.read_only and s.writes and not s.guarded_in_read_only)
    )


class Runtime:
    """``make_executor`` (tests, scripts) builds the backend's executor instead of the settings, given this runtime
    for its local actions; it still sits behind the boundary like any other."""

    def __init__(
        self,
        settings: Settings,
        *,
        scrubber: Scrubber | None = None,
        make_executor: Callable[[Runtime], Executor] | None = None,
    ) -> None:
        self.settings = settings
        self._make_executor = make_executor
        self.backend = settings.resolved_backend()
        self.scrub = scrubber or Scrubber()
        for secret in (settings.clevertap_passcode, settings.membrane_token, settings.membrane_workspace_secret):
            if secret is not None:
                self.scrub.add(secret.get_secret_value())
        if settings.clevertap_passcode is not None:
            self.scrub.add_basic(settings.clevertap_account_id, settings.clevertap_passcode.get_secret_value())
        key = settings.consent_secret.get_secret_value().encode() if settings.consent_secret else None
        self.consent = HmacConsentSigner(key, subject=consent_subject(settings))
        self.handles: HandleStore = MemoryHandleStore()
        self.audit = AuditLog(settings.audit_log) if settings.audit_log else None  # ValueError: not writable
        self._ledger: ConsentLedger = PROCESS_LEDGER
        check_tool_names(settings)
        self._specs: tuple[ToolSpec[Any, Any], ...] | None = None
        self._names: dict[str, ToolSpec[Any, Any]] = {}
        self._names_for: tuple[ToolSpec[Any, Any], ...] | None = None
        self._selected: frozenset[str] = frozenset()
        self._executor: Executor | None = None
        self._api: CleverTapApi | None = None
        self.tools_changed_listener: Callable[[], Awaitable[None]] | None = None
        self._scans: SqliteScanStore | None = None
        self.schemas = MemorySchemaCache(settings.schema_ttl_s)

    # -- construction -------------------------------------------------------------------------------------------
    @property
    def executor(self) -> Executor:
        """The backend's executor behind the boundary (``server.policies.boundary``): the only one anything gets."""
        if self._executor is None:
            from server.policies.boundary import GuardedExecutor, Policy

            policy = Policy(
                read_only=self.settings.read_only,
                confirm_required=self.settings.confirm != "never",
                selected=self._selected_names,
                ledger=self.consent_ledger,
                audit=self.audit,
            )
            inner = self._make_executor(self) if self._make_executor is not None else self._build_executor()
            self._executor = GuardedExecutor(inner, policy)
        return self._executor

    def consent_ledger(self) -> ConsentLedger:
        """Consumed confirmation tokens: in the shared store when it keeps them (Redis), else in this process."""
        shared = getattr(self.handles, "consent_ledger", None)
        return shared() if callable(shared) else self._ledger

    @property
    def api(self) -> CleverTapApi:
        if self._api is None:
            from server.backends.clevertap.client import CleverTapClient

            # The embedded emulator answers polls at once; real CleverTap needs time between polls.
            sandbox = self.backend == "sandbox"
            self._api = CleverTapClient(
                self.executor,
                poll_interval_s=0.05 if sandbox else 1.0,
                first_poll_s=0.001 if sandbox else 0.05,
                backoff_base_s=self.settings.retry_backoff_s,
                call_budget_s=self.settings.call_budget_s,
            )
        return self._api

    def _build_executor(self) -> Executor:
        s = self.settings
        if self.backend == "sandbox":
            from server.backends.clevertap.executor import HttpExecutor
            from server.backends.sandbox import SandboxConfig, create_app

            app = create_app(SandboxConfig(account_id=SANDBOX_ACCOUNT_ID, passcode=SANDBOX_PASSCODE))
            return HttpExecutor.in_process(
                app,
                account_id=SANDBOX_ACCOUNT_ID,
                passcode=SANDBOX_PASSCODE,
                local_actions=self,
                max_answer_bytes=s.max_upstream_bytes,
            )
        if self.backend == "clevertap":
            from server.backends.clevertap.executor import HttpExecutor
            from server.backends.clevertap.regions import base_url_for

            assert s.clevertap_account_id is not None and s.clevertap_passcode is not None
            try:
                base_url = base_url_for(s.clevertap_region, s.clevertap_api_base_url)
            except ValueError as exc:
                # Settings built without load_settings (tests, embedders): still a configuration error, not a crash.
                from server.backends.clevertap.executor import UnconfiguredExecutor

                return UnconfiguredExecutor(f"Invalid configuration: {exc}.", hint=_FIX_AND_RESTART)
            return HttpExecutor(
                base_url=base_url,
                account_id=s.clevertap_account_id,
                passcode=s.clevertap_passcode.get_secret_value(),
                name="clevertap",
                region=s.clevertap_region or ("custom" if s.clevertap_api_base_url else "eu1"),
                local_actions=self,
                connect_timeout_s=s.connect_timeout_s,
                read_timeout_s=s.http_timeout_s,
                max_answer_bytes=s.max_upstream_bytes,
            )
        if self.backend == "membrane":
            from server.backends.membrane.executor import MembraneExecutor

            executor = MembraneExecutor.from_settings(s, scrubber=self.scrub)
            executor.set_tools_changed_listener(self._on_tools_changed)
            return executor
        from server.backends.clevertap.executor import UnconfiguredExecutor

        return UnconfiguredExecutor()

    async def _on_tools_changed(self) -> None:
        if self.tools_changed_listener is not None:
            await self.tools_changed_listener()

    @property
    def scans(self) -> SqliteScanStore:
        """The local store of scanned events, per account. The embedded sandbox's data lives and dies with this
        process, so its store is a private temporary file."""
        if self._scans is None:
            from server.state.scanstore import SqliteScanStore, account_file, default_dir

            s = self.settings
            max_bytes = int(s.scan_store_mb * 1024 * 1024)
            account = {
                "clevertap": f"clevertap|{s.clevertap_api_base_url or s.clevertap_region}|{s.clevertap_account_id}",
                "membrane": f"membrane|{s.membrane_api_url}|{s.membrane_connection_id or s.membrane_tenant_key}|"
                + (s.membrane_token.get_secret_value() if s.membrane_token else ""),
            }.get(self.backend)
            path = None if account is None or max_bytes == 0 else account_file(default_dir(), account)
            self._scans = SqliteScanStore(path, max_bytes=max_bytes)
        return self._scans

    async def aclose(self) -> None:
        if self._scans is not None:
            self._scans.close()
            self._scans = None
        close = getattr(self._executor, "aclose", None)
        if close is not None:
            await close()

    # -- per call -----------------------------------------------------------------------------------------------
    def context(self, progress: ProgressFn | None = None) -> ToolContext:
        return ToolContext(
            api=self.api,
            executor=self.executor,
            handles=self.handles,
            consent=self.consent,
            progress=progress,
            budget_s=self.settings.call_budget_s,
            max_result_bytes=self.settings.max_result_bytes,
            confirm_required=self.settings.confirm != "never",
            read_only=self.settings.read_only,
            scans=self.scans,
            schemas=self.schemas,
        )

    @property
    def specs(self) -> tuple[ToolSpec[Any, Any], ...]:
        """The listed tools, built on first use so that answering ``initialize`` does not wait for them."""
        if self._specs is None:
            self._specs = select_tools(self.settings)
        return self._specs

    def spec(self, name: str) -> ToolSpec[Any, Any] | None:
        return self._by_name().get(name)

    def _by_name(self) -> dict[str, ToolSpec[Any, Any]]:
        """The listed tools by name, rebuilt only when the selection changes."""
        specs = self.specs
        if self._names_for is not specs:
            self._names = {s.name: s for s in specs}
            self._selected = frozenset(self._names)
            self._names_for = specs
        return self._names

    def _selected_names(self) -> frozenset[str]:
        self._by_name()
        return self._selected

    def live_action(self, spec: ToolSpec[Any, Any]) -> ActionInfo | None:
        """The Membrane action that replaces a popular tool's local implementation, when Membrane lists one."""
        if spec.action_key is None or self.backend != "membrane":
            return None
        finder = getattr(self.executor, "live_action", None)
        info = finder(spec.action_key) if finder is not None else None
        return info if info is not None and info.input_schema else None

    # -- local actions (the clevertap and sandbox backends' run_action/search_actions) ---------------------------
    async def run(self, key_or_id: str, input: Mapping[str, Any]) -> ActionRun:
        from tools.catalog import by_action

        spec = by_action(key_or_id)
        if spec is None or spec.action_key is None:
            raise InputError(
                f"unknown action {key_or_id!r}.",
                hint="Call clevertap_search_actions with what you want to do to find an action key.",
            )
        # Read-only mode and tool selection were enforced by the boundary before this action got here.
        args = parse_input(spec, input)
        output = await spec.impl(self.context(), args)
        return ActionRun(output=output.structured())

    async def search(self, intent: str, limit: int) -> list[ActionInfo]:
        from tools.catalog import search_catalog

        return search_catalog(intent, limit)  # the boundary drops what read-only mode or tool selection hides
