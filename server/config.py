"""Settings: flags beat environment variables; read-only beats everything."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

Backend = Literal["auto", "membrane", "clevertap", "sandbox"]
REGIONS = ("eu1", "in1", "sg1", "us1", "aps3", "mec1")
_TRUE = {"1", "true", "yes", "on"}


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    backend: Backend = "auto"
    read_only: bool = False
    confirm: Literal["always", "never"] = "always"

    membrane_token: SecretStr | None = None
    membrane_api_url: str = "https://api.getmembrane.com"
    membrane_workspace_key: str | None = None
    membrane_workspace_secret: SecretStr | None = None
    membrane_tenant_key: str | None = None
    membrane_connection_id: str | None = None

    clevertap_account_id: str | None = None
    clevertap_passcode: SecretStr | None = None
    clevertap_region: str | None = None
    clevertap_api_base_url: str | None = None

    tools: tuple[str, ...] | None = None
    exclude_tools: tuple[str, ...] = ()
    redact_pii: bool = False
    redact_keys: tuple[str, ...] = Field(
        (),
        description="Extra keys whose values --redact-pii masks, besides email, phone and name "
        "(env CLEVERTAP_MCP_REDACT_KEYS, comma-separated; case, '_', '-' and spaces are ignored).",
    )
    audit_log: str | None = None

    # HMAC key for confirmation tokens; replicas that share it accept each other's tokens.
    consent_secret: SecretStr | None = None
    call_budget_s: float = Field(120.0, gt=0)
    http_timeout_s: float = Field(60.0, gt=0)
    connect_timeout_s: float = Field(10.0, gt=0)
    retry_backoff_s: float = Field(0.5, ge=0)
    max_result_bytes: int = Field(60_000, ge=4_000)
    # clevertap_aggregate_events keeps scanned closed days on disk, per account, up to this size (0: keep nothing).
    scan_store_mb: float = Field(256.0, ge=0)
    schema_ttl_s: float = Field(3600.0, ge=0)
    max_frame_bytes: int = Field(
        64 * 1024 * 1024,
        ge=4_096,
        description="Largest stdio message accepted, in bytes (env CLEVERTAP_MCP_MAX_FRAME_BYTES); a longer line is "
        "refused as it streams, without being held.",
    )
    max_upstream_bytes: int = Field(
        64 * 1024 * 1024,
        ge=4_096,
        description="Largest CleverTap answer read, in bytes (env CLEVERTAP_MCP_MAX_UPSTREAM_BYTES); a longer one is "
        "refused while it streams.",
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


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from the environment, then explicit overrides (flags). Raises ValueError with a readable text."""
    env = os.environ if env is None else env
    data: dict[str, object] = {
        "backend": _env(env, "CLEVERTAP_MCP_BACKEND") or "auto",
        "read_only": (_env(env, "CLEVERTAP_MCP_READ_ONLY") or "").lower() in _TRUE,
        "confirm": (_env(env, "CLEVERTAP_MCP_CONFIRM") or "always").lower(),
        "membrane_token": _env(env, "MEMBRANE_TOKEN"),
        "membrane_api_url": _env(env, "MEMBRANE_API_URL") or "https://api.getmembrane.com",
        "membrane_workspace_key": _env(env, "MEMBRANE_WORKSPACE_KEY"),
        "membrane_workspace_secret": _env(env, "MEMBRANE_WORKSPACE_SECRET"),
        "membrane_tenant_key": _env(env, "MEMBRANE_TENANT_KEY"),
        "membrane_connection_id": _env(env, "MEMBRANE_CONNECTION_ID"),
        "clevertap_account_id": _env(env, "CLEVERTAP_ACCOUNT_ID"),
        "clevertap_passcode": _env(env, "CLEVERTAP_PASSCODE"),
        "clevertap_region": (_env(env, "CLEVERTAP_REGION") or "").lower() or None,
        "clevertap_api_base_url": _env(env, "CLEVERTAP_API_BASE_URL"),
        "consent_secret": _env(env, "CLEVERTAP_MCP_SECRET"),
    }
    data["tools"] = _names(_env(env, "CLEVERTAP_MCP_TOOLS"))
    data["exclude_tools"] = _names(_env(env, "CLEVERTAP_MCP_EXCLUDE_TOOLS")) or ()
    data["redact_pii"] = (_env(env, "CLEVERTAP_MCP_REDACT_PII") or "").lower() in _TRUE
    data["redact_keys"] = _names(_env(env, "CLEVERTAP_MCP_REDACT_KEYS")) or ()
    data["audit_log"] = _env(env, "CLEVERTAP_MCP_AUDIT_LOG")
    for field, name in (
        ("call_budget_s", "CLEVERTAP_MCP_CALL_BUDGET"),
        ("http_timeout_s", "CLEVERTAP_MCP_TIMEOUT"),
        ("connect_timeout_s", "CLEVERTAP_MCP_CONNECT_TIMEOUT"),
        ("retry_backoff_s", "CLEVERTAP_MCP_RETRY_BACKOFF"),
        ("scan_store_mb", "CLEVERTAP_MCP_SCAN_STORE_MB"),
        ("schema_ttl_s", "CLEVERTAP_MCP_SCHEMA_TTL"),
        ("max_frame_bytes", "CLEVERTAP_MCP_MAX_FRAME_BYTES"),
        ("max_upstream_bytes", "CLEVERTAP_MCP_MAX_UPSTREAM_BYTES"),
    ):
        number = _env(env, name)
        if number is not None:
            data[field] = number
    for key, override in overrides.items():
        if override is not None:
            data[key] = override
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
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"invalid configuration: {problems}") from None
