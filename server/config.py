"""Settings: every setting declared once (variable, flag, default, help), read once; flags beat the environment.

``Settings`` is the one declaration: each field names its environment variable and command-line flag next to its
help text. ``load_settings`` is the only reader of the environment; the command line (``server.cli``), the README's
environment table (``scripts/regen.py``) and every component (the Membrane backend, the HTTP transport, the scan
store, logging) take their values from it. Read-only beats everything.
"""

from __future__ import annotations

import os
import shutil
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo

Backend = Literal["auto", "membrane", "clevertap", "sandbox"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
# CleverTap's regions and their API roots: the one list (``server.backends.clevertap.regions`` resolves URLs with it;
# it lives here so that reading the settings does not import the wire client).
DEFAULT_REGION = "eu1"
REGION_URLS: Mapping[str, str] = {
    "eu1": "https://api.clevertap.com",
    "in1": "https://in1.api.clevertap.com",
    "sg1": "https://sg1.api.clevertap.com",
    "us1": "https://us1.api.clevertap.com",
    "aps3": "https://aps3.api.clevertap.com",
    "mec1": "https://mec1.api.clevertap.com",
}
REGIONS = tuple(REGION_URLS)
APP_DIR = "clevertap-mcp"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_MIB = 1024 * 1024


@dataclass(frozen=True)
class Declared:
    """How a setting is given and documented: its variable, its flag, and the default as the README shows it."""

    env: str | None = None
    flag: str | None = None
    shown: str | None = None
    metavar: str | None = None  # what a flag's value is called in --help


def setting(
    default: Any,
    help: str,
    *,
    env: str | None = None,
    flag: str | None = None,
    shown: str | None = None,
    metavar: str | None = None,
    **constraints: Any,
) -> Any:
    """A Settings field with its declaration (``Declared``) in the field's metadata."""
    field: FieldInfo = Field(default, description=help, **constraints)
    field.metadata.append(Declared(env=env, flag=flag, shown=shown, metavar=metavar))
    return field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    # -- backends -----------------------------------------------------------------------------------------------
    membrane_token: SecretStr | None = setting(
        None, "Membrane token; selects the `membrane` backend under `auto`.", env="MEMBRANE_TOKEN"
    )
    membrane_api_url: str = setting("https://api.getmembrane.com", "Membrane API base URL.", env="MEMBRANE_API_URL")
    membrane_workspace_key: str | None = setting(
        None,
        "With the two below: mint tenant tokens locally (HS256) instead of MEMBRANE_TOKEN.",
        env="MEMBRANE_WORKSPACE_KEY",
    )
    membrane_workspace_secret: SecretStr | None = setting(
        None, "Workspace secret used to sign minted tenant tokens.", env="MEMBRANE_WORKSPACE_SECRET"
    )
    membrane_tenant_key: str | None = setting(
        None, "Tenant (customer) key of minted tokens.", env="MEMBRANE_TENANT_KEY"
    )
    membrane_connection_id: str | None = setting(
        None,
        "Use this Membrane connection instead of ensuring one for clevertap.com.",
        env="MEMBRANE_CONNECTION_ID",
    )
    clevertap_account_id: str | None = setting(
        None, "CleverTap account (project) id for the direct `clevertap` backend.", env="CLEVERTAP_ACCOUNT_ID"
    )
    clevertap_passcode: SecretStr | None = setting(
        None, "CleverTap passcode for the direct backend. Never echoed.", env="CLEVERTAP_PASSCODE"
    )
    # Not a Literal: Settings built directly (tests, embedders) with a bad region still start, and say so on use.
    clevertap_region: str | None = setting(
        None,
        f"{', '.join(REGIONS[:-1])} or {REGIONS[-1]}: must match the account's region.",
        env="CLEVERTAP_REGION",
        shown="`eu1`",
    )
    clevertap_api_base_url: str | None = setting(
        None,
        "Overrides the regional URL (e.g. `http://127.0.0.1:8765` for `sandbox serve`).",
        env="CLEVERTAP_API_BASE_URL",
    )

    # -- what the server offers -----------------------------------------------------------------------------------
    backend: Backend = setting(
        "auto", "auto, membrane, clevertap or sandbox.", env="CLEVERTAP_MCP_BACKEND", flag="--backend"
    )
    read_only: bool = setting(
        False,
        "List and allow only what cannot change the account.",
        env="CLEVERTAP_MCP_READ_ONLY",
        flag="--read-only",
    )
    confirm: Literal["always", "never"] = setting(
        "always",
        "`never` turns the preview-and-confirm step off for unattended harnesses (dangerous: see below).",
        env="CLEVERTAP_MCP_CONFIRM",
    )
    tools: tuple[str, ...] | None = setting(
        None, "Comma-separated tools to list.", env="CLEVERTAP_MCP_TOOLS", flag="--tools", metavar="NAMES"
    )
    exclude_tools: tuple[str, ...] = setting(
        (),
        "Comma-separated tools to hide; beats the above.",
        env="CLEVERTAP_MCP_EXCLUDE_TOOLS",
        flag="--exclude-tools",
        metavar="NAMES",
    )
    redact_pii: bool = setting(
        False,
        "Mask personal data in every result: email, phone and name keys at any depth, email addresses and phone "
        "numbers anywhere (scope under Safety).",
        env="CLEVERTAP_MCP_REDACT_PII",
        flag="--redact-pii",
    )
    redact_keys: tuple[str, ...] = setting(
        (),
        "Comma-separated extra keys whose values `--redact-pii` masks, besides email, phone and name (case, `_`, "
        "`-` and spaces are ignored).",
        env="CLEVERTAP_MCP_REDACT_KEYS",
        flag="--redact-keys",
        metavar="KEYS",
    )
    audit_log: str | None = setting(
        None,
        "Append one JSON line per write attempt to this file.",
        env="CLEVERTAP_MCP_AUDIT_LOG",
        flag="--audit-log",
        metavar="PATH",
    )

    # -- limits -----------------------------------------------------------------------------------------------------
    call_budget_s: float = setting(
        120.0,
        "Seconds a tool call may take before it stops and says how to continue.",
        env="CLEVERTAP_MCP_CALL_BUDGET",
        gt=0,
    )
    http_timeout_s: float = setting(
        60.0, "Seconds to wait for one HTTP answer from CleverTap.", env="CLEVERTAP_MCP_TIMEOUT", gt=0
    )
    connect_timeout_s: float = setting(
        10.0, "Seconds to wait for a connection to CleverTap.", env="CLEVERTAP_MCP_CONNECT_TIMEOUT", gt=0
    )
    retry_backoff_s: float = setting(
        0.5,
        "First retry delay of reads (doubles, with jitter; Retry-After wins).",
        env="CLEVERTAP_MCP_RETRY_BACKOFF",
        ge=0,
    )
    max_result_bytes: int = Field(default=60_000, ge=4_000)  # not configurable: what a model can take in one result
    scan_store_mb: float = setting(
        256.0,
        "Disk kept per account for scanned closed days, so follow-up aggregations skip the export (`0`: none).",
        env="CLEVERTAP_MCP_SCAN_STORE_MB",
        ge=0,
    )
    schema_ttl_s: float = setting(
        3600.0, "Seconds a discovered schema (event names, properties) is reused.", env="CLEVERTAP_MCP_SCHEMA_TTL", ge=0
    )
    max_frame_bytes: int = setting(
        64 * _MIB,
        "Largest stdio message or HTTP body (64 MiB); longer ones are refused while they stream.",
        env="CLEVERTAP_MCP_MAX_FRAME_BYTES",
        ge=4_096,
    )
    max_upstream_bytes: int = setting(
        64 * _MIB,
        "Largest CleverTap answer read (64 MiB); a longer one is refused while it streams.",
        env="CLEVERTAP_MCP_MAX_UPSTREAM_BYTES",
        ge=4_096,
    )

    # -- the HTTP transport -------------------------------------------------------------------------------------------
    http_idle_timeout_s: float = setting(
        15.0, "Seconds an idle keep-alive HTTP connection stays open.", env="CLEVERTAP_MCP_HTTP_IDLE_TIMEOUT", gt=0
    )
    http_header_timeout_s: float = setting(
        10.0,
        "Seconds a connection may take to send a request's headers before it is closed.",
        env="CLEVERTAP_MCP_HTTP_HEADER_TIMEOUT",
        gt=0,
    )
    http_body_timeout_s: float = setting(
        30.0, "Seconds without body data before a request gets 408.", env="CLEVERTAP_MCP_HTTP_BODY_TIMEOUT", gt=0
    )
    max_user_runtimes: int = setting(
        64,
        "Per-user runtimes (`X-Membrane-Token`) kept; the least recently used is closed.",
        env="CLEVERTAP_MCP_MAX_USER_RUNTIMES",
        gt=0,
    )
    user_runtimes_memory_mb: int = setting(
        1024,
        "Above this process RSS, idle per-user runtimes are dropped before a new one is made.",
        env="CLEVERTAP_MCP_USER_RUNTIMES_MEMORY_MB",
        gt=0,
    )
    # HMAC key for confirmation tokens; replicas that share it accept each other's tokens.
    consent_secret: SecretStr | None = setting(
        None,
        "HMAC key of confirm tokens; share it between HTTP replicas.",
        env="CLEVERTAP_MCP_SECRET",
        shown="random per process",
    )
    http_token: SecretStr | None = setting(
        None,
        "Bearer token required by `--transport http` (mandatory off loopback).",
        env="CLEVERTAP_MCP_HTTP_TOKEN",
    )
    allowed_hosts: tuple[str, ...] = setting(
        (),
        "Extra Host names accepted by the HTTP transport (`name` any port, `name:port` exactly; `*`: no check).",
        env="CLEVERTAP_MCP_ALLOWED_HOSTS",
        shown="loopback names",
    )
    redis_url: SecretStr | None = setting(
        None,
        "Keep cursor handles in Redis so any HTTP replica can continue an export.",
        env="CLEVERTAP_MCP_REDIS_URL",
    )

    # -- local state and logs -----------------------------------------------------------------------------------------
    state_dir: Path | None = setting(
        None,
        "Where the Membrane connection id is remembered.",
        env="CLEVERTAP_MCP_STATE_DIR",
        shown="`~/.config/clevertap-mcp`",
    )
    log_level: LogLevel = setting(
        "WARNING", "Log level of the stderr log (secrets are always masked).", env="CLEVERTAP_MCP_LOG_LEVEL"
    )

    @property
    def has_membrane_credentials(self) -> bool:
        return self.membrane_token is not None or (
            self.membrane_workspace_key is not None
            and self.membrane_workspace_secret is not None
            and self.membrane_tenant_key is not None
        )

    @property
    def has_clevertap_credentials(self) -> bool:
        return self.clevertap_account_id is not None and self.clevertap_passcode is not None

    def resolved_backend(self) -> str:
        """The backend to use: 'auto' picks membrane, then clevertap, else 'unconfigured'."""
        if self.backend != "auto":
            return self.backend
        if self.has_membrane_credentials:
            return "membrane"
        if self.has_clevertap_credentials:
            return "clevertap"
        if shutil.which("membrane") is not None:
            # A logged-in Membrane CLI is a credential too: the executor asks it for one.
            return "membrane"
        return "unconfigured"

    def membrane_state_dir(self) -> Path:
        """``state_dir``, else the platform's config folder (``$XDG_CONFIG_HOME``, else ``~/.config``)."""
        return self.state_dir.expanduser() if self.state_dir is not None else user_dir("config") / APP_DIR


# Read by bundle/launch.py, which runs before any dependency (pydantic included) is installed, so it cannot import
# this module; declared here so that the README's table stays generated from one place.
LAUNCHER_VARIABLES: tuple[tuple[str, str], ...] = (
    ("CLEVERTAP_MCP_PYTHON", "Bundle launcher: the Python 3.10+ interpreter to use."),
    ("CLEVERTAP_MCP_VENV", "Bundle launcher: where to create its virtual environment."),
)


def declared(name: str) -> Declared:
    """The declaration of the Settings field ``name`` (a field without one has no variable and no flag)."""
    return next((m for m in Settings.model_fields[name].metadata if isinstance(m, Declared)), Declared())


def declarations() -> Iterator[tuple[str, FieldInfo, Declared]]:
    """Every Settings field with a variable or a flag, in declaration order."""
    for name, field in Settings.model_fields.items():
        spec = declared(name)
        if spec.env is not None or spec.flag is not None:
            yield name, field, spec


def shown_default(name: str) -> str:
    """A setting's default as the README shows it ("" when there is none)."""
    spec, default = declared(name), Settings.model_fields[name].default
    if spec.shown is not None:
        return spec.shown
    if default is None or default == ():
        return ""
    if isinstance(default, bool):
        return "`1`" if default else "`0`"
    if isinstance(default, float):
        return f"`{default:g}`"
    return f"`{default}`"


def environment_rows() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) of every variable anything in this project reads: the README's table."""
    rows = []
    for name, field, spec in declarations():
        if spec.env is None:
            continue
        meaning = field.description or ""
        if field.annotation is bool:
            meaning = f"`1`: {meaning[:1].lower()}{meaning[1:]}"
        if spec.flag is not None:
            meaning = meaning.rstrip(".") + f" (flag `{spec.flag}`)."
        rows.append((spec.env, shown_default(name), meaning))
    rows += [(name, "", meaning) for name, meaning in LAUNCHER_VARIABLES]
    return rows


def user_dir(kind: Literal["config", "cache"], env: Mapping[str, str] | None = None) -> Path:
    """The platform's per-user folder of that kind (XDG base directories: ``$XDG_CONFIG_HOME`` / ``$XDG_CACHE_HOME``,
    else ``~/.config`` / ``~/.cache``).

    A platform convention shared with every program, not a setting of this one: read from the process environment
    when used, so that a test session (or a sandboxed desktop app) that moves it moves it for every component.
    """
    env = os.environ if env is None else env
    value = env.get(f"XDG_{kind.upper()}_HOME", "").strip()
    return Path(value).expanduser() if value else Path.home() / f".{kind}"


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _names(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(n.strip() for n in value.split(",") if n.strip())


def parse_tool_names(value: str | None) -> tuple[str, ...] | None:
    """A comma-separated flag value as a tuple of names."""
    return _names(value)


def _choices(annotation: Any) -> tuple[Any, ...]:
    """The values of a ``Literal`` annotation (also inside ``X | None``), else ()."""
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    return tuple(c for arg in typing.get_args(annotation) for c in _choices(arg))


def _parse(name: str, raw: str) -> object:
    """One variable's text as the value its field takes (pydantic then checks it)."""
    annotation = Settings.model_fields[name].annotation
    if annotation is bool:
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ValueError(f"{declared(name).env}={raw!r} is not a yes/no value: use 1 or 0")
    if annotation in (tuple[str, ...], tuple[str, ...] | None):
        return _names(raw) or ()
    choices = _choices(annotation)
    if choices:  # Literal values are matched whatever their case: CLEVERTAP_MCP_LOG_LEVEL=debug, BACKEND=Sandbox
        return next((c for c in choices if isinstance(c, str) and c.lower() == raw.lower()), raw)
    return raw


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from the environment, then explicit overrides (flags; None means not given). The one reader of the
    environment. Raises ValueError with a readable text naming the variable or flag at fault."""
    env = os.environ if env is None else env
    data: dict[str, object] = {}
    source: dict[str, str] = {}
    for name, _, spec in declarations():
        raw = _env(env, spec.env) if spec.env is not None else None
        if raw is not None:
            data[name] = _parse(name, raw)
            source[name] = spec.env or name
    if isinstance(data.get("clevertap_region"), str):
        data["clevertap_region"] = str(data["clevertap_region"]).lower()
    for key, override in overrides.items():
        if override is not None:
            data[key] = override
            flag = declared(key).flag if key in Settings.model_fields else None
            source[key] = flag or key
    region = data.get("clevertap_region")
    if region is not None and region not in REGIONS:
        raise ValueError(f"CLEVERTAP_REGION={region!r} is not a CleverTap region; use one of {', '.join(REGIONS)}")
    base_url = data.get("clevertap_api_base_url")
    if isinstance(base_url, str):
        from server.backends.clevertap.regions import base_url_for

        base_url_for(None, base_url)  # a bad scheme or a malformed URL stops the server here, said plainly
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(source.get(str(p), str(p)) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"invalid configuration: {problems}") from None
