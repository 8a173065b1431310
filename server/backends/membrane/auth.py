"""Where the Membrane bearer token comes from.

In order: ``MEMBRANE_TOKEN``; a tenant token minted locally from ``MEMBRANE_WORKSPACE_KEY`` +
``MEMBRANE_WORKSPACE_SECRET`` + ``MEMBRANE_TENANT_KEY``; the ``membrane`` CLI (after a plain ``membrane login``):
``membrane credentials --json`` (then minted the same way), else the tenant token ``membrane token`` prints. Every
source can list the secret strings it holds so that error texts can be scrubbed of them. The credentials come from
``server.config.Settings`` (``token_source_from_settings``); this module reads no environment.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import re
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from tools.errors import ConfigurationError

if TYPE_CHECKING:
    from server.config import Settings

log = logging.getLogger("clevertap_mcp.membrane")

TOKEN_LIFETIME_S = 3600
REMINT_MARGIN_S = 60
CLI_TIMEOUT_S = 20.0

_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_LONG_SECRET_RE = re.compile(r"\b(?:pat-)?[A-Za-z0-9_\-]{40,}")

Clock = Callable[[], float]


class TokenSource(Protocol):
    """A bearer token provider. ``api_url`` is the base URL the source itself names (the CLI does), else None."""

    kind: str
    api_url: str | None

    async def token(self) -> str: ...

    def identity(self) -> str:
        """A non-reversible hash naming the tenant/credential, for the remembered-connection key."""
        ...

    def secrets(self) -> list[str]:
        """Every secret string this source holds or has produced (for scrubbing)."""
        ...


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_tenant_token(
    workspace_key: str, workspace_secret: str, tenant_key: str, *, now: float, name: str | None = None
) -> str:
    """An HS256 tenant token with both documented claim forms (``workspaceKey``/``tenantKey`` and ``iss``/``id``)
    and a ``name`` (the tenant's display name in Membrane; the tenant key unless given)."""
    header = {"alg": "HS256", "typ": "JWT"}
    # No ``iat``: like the SDK's own minting, so a local clock running ahead is not refused as "not yet valid".
    payload = {
        "workspaceKey": workspace_key,
        "tenantKey": tenant_key,
        "id": tenant_key,
        "iss": workspace_key,
        "name": name or tenant_key,
        "exp": int(now) + TOKEN_LIFETIME_S,
    }
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(payload, separators=(",", ":")).encode())
    )
    signature = hmac.new(workspace_secret.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + _b64url(signature)


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The unverified payload of a JWT, or None when the token is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None


def _tenant_identity(workspace_key: str, tenant_key: str) -> str:
    digest = hashlib.sha256(f"tenant\x00{workspace_key}\x00{tenant_key}".encode()).hexdigest()
    return digest[:32]


class StaticToken:
    """``MEMBRANE_TOKEN`` as given."""

    kind = "MEMBRANE_TOKEN"

    def __init__(self, token: str, api_url: str | None = None) -> None:
        self._token = token.strip()
        self.api_url = api_url

    async def token(self) -> str:
        return self._token

    def identity(self) -> str:
        # A tenant JWT is keyed by its tenant, so a refreshed token keeps the remembered connection.
        claims = jwt_claims(self._token) or {}
        workspace = claims.get("workspaceKey") or claims.get("iss")
        tenant = claims.get("tenantKey") or claims.get("id")
        if isinstance(workspace, str) and isinstance(tenant, str):
            return _tenant_identity(workspace, tenant)
        return hashlib.sha256(f"token\x00{self._token}".encode()).hexdigest()[:32]

    def secrets(self) -> list[str]:
        return [self._token]


class MintedToken:
    """A tenant token minted from the workspace key and secret; re-minted when less than a minute is left."""

    kind = "MEMBRANE_WORKSPACE_KEY/MEMBRANE_WORKSPACE_SECRET/MEMBRANE_TENANT_KEY"

    def __init__(
        self,
        workspace_key: str,
        workspace_secret: str,
        tenant_key: str,
        *,
        api_url: str | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._workspace_key = workspace_key
        self._secret = workspace_secret
        self._tenant_key = tenant_key
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._issued: list[str] = []
        self.api_url = api_url
        self.mint_count = 0

    async def token(self) -> str:
        now = self._clock()
        if self._token is None or self._expires_at - now < REMINT_MARGIN_S:
            self._token = mint_tenant_token(self._workspace_key, self._secret, self._tenant_key, now=now)
            self._expires_at = int(now) + TOKEN_LIFETIME_S
            self._issued = [*self._issued[-4:], self._token]
            self.mint_count += 1
        return self._token

    def identity(self) -> str:
        return _tenant_identity(self._workspace_key, self._tenant_key)

    def secrets(self) -> list[str]:
        return [self._secret, *self._issued]


CLI_LOGIN_HINT = (
    "sign in with `membrane login` (a browser sign-in; `npx @membranehq/cli login` without a global install), then "
    "restart the server; or set MEMBRANE_TOKEN to a tenant token, or MEMBRANE_WORKSPACE_KEY + "
    "MEMBRANE_WORKSPACE_SECRET + MEMBRANE_TENANT_KEY"
)


class CliToken:
    """The tenant token ``membrane token`` printed; the command runs again when less than a minute is left."""

    kind = "membrane CLI"
    api_url: str | None = None

    def __init__(self, run: Callable[[], Awaitable[str]], first: str, *, clock: Clock = time.time) -> None:
        self._run = run
        self._token = first
        self._clock = clock
        self._issued = [first]

    def _expires_at(self) -> float | None:
        exp = (jwt_claims(self._token) or {}).get("exp")
        return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None

    async def token(self) -> str:
        expires = self._expires_at()
        if expires is not None and expires - self._clock() < REMINT_MARGIN_S:
            self._token = await self._run()
            self._issued = [*self._issued[-4:], self._token]
        return self._token

    def identity(self) -> str:
        return StaticToken(self._token).identity()

    def secrets(self) -> list[str]:
        return list(self._issued)


def _printed_token(stdout: bytes) -> str | None:
    """The token in ``membrane token``'s output: the bare JWT, or a JSON object holding it."""
    text = stdout.decode("utf-8", "replace").strip()
    with contextlib.suppress(ValueError):
        data = json.loads(text)
        if isinstance(data, dict):
            for field in ("token", "accessToken", "access_token"):
                if isinstance(data.get(field), str):
                    text = data[field].strip()
                    break
    return text if jwt_claims(text) is not None else None


class CliCredentials:
    """The ``membrane`` CLI after a plain ``membrane login``.

    ``membrane credentials --json`` prints ``{apiUri, workspaceKey, workspaceSecret, tenantKey}`` (Membrane's
    integration-developer skill): tokens are then minted like ``MintedToken``. When it fails, ``membrane token``
    (a tenant-scoped JWT) is used instead. Each command runs with a timeout.
    """

    kind = "membrane CLI"

    def __init__(
        self,
        executable: str,
        *,
        timeout_s: float = CLI_TIMEOUT_S,
        clock: Clock = time.time,
    ) -> None:
        self._executable = executable
        self._timeout_s = timeout_s
        self._clock = clock
        self._source: TokenSource | None = None
        self._lock: anyio.Lock | None = None
        self.api_url: str | None = None

    async def _run(self, *args: str) -> tuple[bytes | None, str]:
        """(stdout, "") on success; (None, why it failed) otherwise."""
        command = f"`membrane {' '.join(args)}`"
        try:
            with anyio.fail_after(self._timeout_s):
                done = await anyio.run_process([self._executable, *args], check=False)
        except TimeoutError:
            return None, f"{command} did not answer within {self._timeout_s:g} s"
        except OSError as exc:
            return None, f"could not run {command}: {type(exc).__name__}"
        if done.returncode != 0:
            stderr = done.stderr.decode("utf-8", "replace").strip().splitlines()
            last = scrub_words(stderr[-1][:200]) if stderr else ""
            return None, f"{command} failed (exit code {done.returncode}){': ' + last if last else ''}"
        return done.stdout, ""

    async def _credentials(self) -> tuple[TokenSource | None, str]:
        stdout, why = await self._run("credentials", "--json")
        if stdout is None:
            return None, why
        try:
            data = json.loads(stdout)
            workspace_key, secret, tenant_key = (data["workspaceKey"], data["workspaceSecret"], data["tenantKey"])
            if not all(isinstance(v, str) and v for v in (workspace_key, secret, tenant_key)):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return None, "`membrane credentials --json` did not print workspaceKey, workspaceSecret and tenantKey"
        api_uri = data.get("apiUri")
        self.api_url = api_uri.rstrip("/") if isinstance(api_uri, str) and api_uri.startswith("http") else None
        return MintedToken(workspace_key, secret, tenant_key, api_url=self.api_url, clock=self._clock), ""

    async def _fresh_token(self) -> str:
        stdout, why = await self._run("token")
        token = _printed_token(stdout) if stdout is not None else None
        if token is None:
            raise ConfigurationError(
                f"The membrane CLI gave no token: {why or '`membrane token` did not print a JWT'}.",
                hint=CLI_LOGIN_HINT,
            )
        return token

    async def _load(self) -> TokenSource:
        source, why = await self._credentials()
        if source is not None:
            return source
        log.info("membrane credentials gave nothing usable (%s); trying `membrane token`", why)
        try:
            first = await self._fresh_token()
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"{why[:1].upper()}{why[1:]}; {exc.message[:1].lower()}{exc.message[1:]}", hint=CLI_LOGIN_HINT
            ) from None
        return CliToken(self._fresh_token, first, clock=self._clock)

    async def token(self) -> str:
        if self._source is None:
            if self._lock is None:
                self._lock = anyio.Lock()
            async with self._lock:
                if self._source is None:
                    self._source = await self._load()
        return await self._source.token()

    def identity(self) -> str:
        if self._source is None:
            return hashlib.sha256(f"cli\x00{self._executable}".encode()).hexdigest()[:32]
        return self._source.identity()

    def secrets(self) -> list[str]:
        return self._source.secrets() if self._source else []


def has_membrane_credentials(env: Mapping[str, str], *, include_cli: bool = False) -> bool:
    """True when the settings read from ``env`` carry a Membrane credential (``include_cli``: a ``membrane`` CLI on
    PATH counts too)."""
    from server.config import load_settings

    return load_settings(env).has_membrane_credentials or (include_cli and shutil.which("membrane") is not None)


_WORKSPACE_VARIABLES = ("MEMBRANE_WORKSPACE_KEY", "MEMBRANE_WORKSPACE_SECRET", "MEMBRANE_TENANT_KEY")


def token_source_from_settings(
    settings: Settings,
    *,
    which: Callable[[str], str | None] | None = None,
    clock: Clock = time.time,
) -> TokenSource:
    """The first configured source, in the documented order; ConfigurationError when there is none."""
    if settings.membrane_token is not None:
        return StaticToken(settings.membrane_token.get_secret_value())
    secret = settings.membrane_workspace_secret
    keys = [
        settings.membrane_workspace_key or "",
        secret.get_secret_value() if secret is not None else "",
        settings.membrane_tenant_key or "",
    ]
    if all(keys):
        return MintedToken(keys[0], keys[1], keys[2], clock=clock)
    if any(keys):
        missing = [name for name, value in zip(_WORKSPACE_VARIABLES, keys, strict=True) if not value]
        raise ConfigurationError(
            f"Minting a Membrane token needs all three workspace variables; missing: {', '.join(missing)}.",
            hint="set the missing variables, or set MEMBRANE_TOKEN instead",
        )
    executable = (which or shutil.which)("membrane")
    if executable:
        return CliCredentials(executable, clock=clock)
    raise ConfigurationError(
        "No Membrane credential: MEMBRANE_TOKEN is not set, the MEMBRANE_WORKSPACE_* variables are not set, and the "
        "`membrane` CLI is not on PATH.",
        hint="set MEMBRANE_TOKEN to a tenant token (or MEMBRANE_WORKSPACE_KEY + MEMBRANE_WORKSPACE_SECRET + "
        "MEMBRANE_TENANT_KEY), or install the Membrane CLI (npm i -g @membranehq/cli) and run `membrane login`",
    )


def token_source_from_env(
    env: Mapping[str, str],
    *,
    which: Callable[[str], str | None] | None = None,
    clock: Clock = time.time,
) -> TokenSource:
    """``token_source_from_settings`` for the settings read from ``env``."""
    from server.config import load_settings

    return token_source_from_settings(load_settings(env), which=which, clock=clock)


def scrub_words(text: str) -> str:
    """For text that may hold secrets nobody told us about (the CLI's stderr): hide every long word with digits."""
    words = (
        "***" if len(word) >= 16 and re.search(r"\d", word) and re.search(r"[A-Za-z]", word) else word
        for word in text.split()
    )
    return scrub(" ".join(words), [])


def scrub(text: str, secrets: list[str], *, patterns: bool = True) -> str:
    """Remove known secrets from ``text``; with ``patterns`` also JWT-shaped strings and long opaque tokens."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    if not patterns:
        return text
    text = _JWT_RE.sub("***", text)
    return _LONG_SECRET_RE.sub("***", text)
