"""HTTP to the Membrane API: one pooled client, the bearer token, and errors that name the layer.

Membrane error bodies look like ``{"type", "key", "message", ...}``; they become ``MembraneError`` with a message
saying what failed and a hint saying what to do. Every error text is scrubbed of the token source's secrets.
"""

from __future__ import annotations

import json as json_module
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from server.backends.bounded import AnswerTooLarge, read_capped
from server.backends.membrane.auth import TokenSource, scrub
from server.backends.network import NETWORK_ERRORS, network_error
from server.backends.retry import retry_after_s
from server.backends.tls import shared_tls_context
from tools.errors import InputError, MembraneError

log = logging.getLogger("clevertap_mcp.membrane")

DEFAULT_API_URL = "https://api.getmembrane.com"
API_VERSION = "2025-10-21"
DEFAULT_TIMEOUT_S = 30.0

MEMBRANE_ERROR_TYPES = frozenset(
    {
        "bad_request",
        "connection",
        "configuration",
        "dependency_error",
        "flow_run",
        "flow_instance_setup",
        "concurrency",
        "internal",
        "action_run",
        "action_instance_setup",
        "unit_run",
        "custom_code",
        "insufficient_credit",
        "openrouter_not_configured",
    }
)
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
CONNECT_HINT = "call clevertap_connect"


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


def is_membrane_error(body: Any) -> bool:
    """A Membrane ErrorData body: a known string ``type`` and a string ``message``."""
    return isinstance(body, dict) and body.get("type") in MEMBRANE_ERROR_TYPES and isinstance(body.get("message"), str)


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else url


def query_value(value: Any) -> str:
    """A query value as the SDK sends it (``URLSearchParams``): booleans as true/false, everything else as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def route_missing(status: int, body: Any, route: str, *, named_only: bool = False) -> bool:
    """Whether a 404/405 answer says the API has no such route (``Cannot POST /act``), not that a thing is missing.

    Only an answer naming the requested route counts (or, unless ``named_only``, a bare 405): CleverTap's own
    404s and 405s (through the proxy) and Membrane's ``not_found`` errors for an unknown action or connection never
    name it.
    """
    if status not in (404, 405):
        return False
    if status == 405 and (body is None or body == "") and not named_only:
        return True
    text = body.get("message") if isinstance(body, dict) else body
    if not isinstance(text, str):
        return False
    return re.search(r"(?<![\w/])" + re.escape(route.split("?", 1)[0]) + r"(?![\w/])", text) is not None


def refused_token_hint(kind: str) -> str:
    """What to do when Membrane refuses the token, per credential source; never "run the same thing again"."""
    if kind.startswith("MEMBRANE_WORKSPACE"):
        return (
            "check MEMBRANE_WORKSPACE_KEY, MEMBRANE_WORKSPACE_SECRET and MEMBRANE_TENANT_KEY (`membrane credentials "
            "--json` prints them), or set MEMBRANE_TOKEN to a tenant token instead"
        )
    if kind.startswith("membrane CLI"):
        return (
            "sign in again with `membrane login` (a browser sign-in), then restart the server; or set MEMBRANE_TOKEN "
            "to a tenant token"
        )
    return (
        "MEMBRANE_TOKEN must be a Membrane tenant token (a JWT for one workspace and tenant) that has not expired: "
        "set a fresh one (`membrane token` prints one) and restart the server, or set MEMBRANE_WORKSPACE_KEY, "
        "MEMBRANE_WORKSPACE_SECRET and MEMBRANE_TENANT_KEY so that the server mints its own"
    )


class MembraneClient:
    """Calls the Membrane API. ``api_url``: explicit base URL; else the token source's own, else the default."""

    def __init__(
        self,
        auth: TokenSource,
        *,
        api_url: str | None = None,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_answer_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.auth = auth
        self.max_answer_bytes = max_answer_bytes
        self._api_url = api_url.rstrip("/") if api_url else None
        self._http = http
        self._owns_http = http is None
        self._timeout_s = timeout_s
        # Another scrubber (the server's) that cleans every error text too; when it can ``add`` secrets, it is
        # told the ones only the token source knows (the CLI's workspace secret), so its log filter hides them.
        self.external_scrubber: Callable[[str], str] | None = None
        self._shared: set[str] = set()

    @property
    def api_url(self) -> str:
        """The base URL; with the CLI source it is only known after the first token was fetched."""
        return self._api_url or self.auth.api_url or DEFAULT_API_URL

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                verify=shared_tls_context(),
                timeout=httpx.Timeout(self._timeout_s, connect=10.0),
                limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
                headers={"User-Agent": "clevertap-mcp"},
            )
        return self._http

    def scrub(self, text: str) -> str:
        text = scrub(text, self.auth.secrets())
        return self.external_scrubber(text) if self.external_scrubber is not None else text

    def scrub_known(self, text: str) -> str:
        """Only the token source's own secrets: for texts carrying URLs the user must open intact."""
        return scrub(text, self.auth.secrets(), patterns=False)

    def _share_secrets(self) -> None:
        add = getattr(self.external_scrubber, "add", None)
        if add is None:
            return
        for secret in self.auth.secrets():
            if secret not in self._shared and not secret.startswith("eyJ"):
                self._shared.add(secret)
                add(secret)

    async def call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        passthrough: bool = False,
    ) -> ApiResponse:
        """One API call. Non-2xx raises MembraneError (``details["route_missing"]`` when the API has no such
        route); with ``passthrough`` only Membrane-shaped error bodies do. A ``?query`` inside ``path`` is sent
        byte for byte; ``content`` is a body sent as it is (instead of ``json``)."""
        token = await self.auth.token()
        self._share_secrets()
        url = f"{self.api_url}/{path.lstrip('/')}"
        query = {k: query_value(v) for k, v in (params or {}).items() if v is not None and v != ""}
        sent_headers = {**(headers or {}), "Authorization": f"Bearer {token}", "membrane-api-version": API_VERSION}
        timeout = httpx.Timeout(timeout_s, connect=10.0) if timeout_s is not None else httpx.USE_CLIENT_DEFAULT
        log.debug("membrane %s %s", method, path)
        try:
            request = self._client().build_request(
                method,
                url,
                params=query or None,
                json=json if content is None else None,
                content=content,
                headers=sent_headers,
                timeout=timeout,
            )
            response = await self._client().send(request, stream=True)
            try:
                raw = await read_capped(response, self.max_answer_bytes)
            except AnswerTooLarge as exc:
                raise self._too_large(method, path, what, exc.why) from None
            finally:
                await response.aclose()
        except UnicodeEncodeError:
            raise InputError(
                f"could not send the request ({what}): it holds a lone UTF-16 surrogate (\\ud800-\\udfff), "
                "which is not valid text",
                hint="Send well-formed Unicode text.",
            ) from None
        except NETWORK_ERRORS as exc:
            failure = network_error(
                exc,
                error_cls=MembraneError,
                upstream="Membrane",
                host=_host(self.api_url),
                what=what,
                check="MEMBRANE_API_URL",
            )
            failure.message = self.scrub(failure.message)  # httpx's own text may quote the URL
            raise failure from None
        body = _parse_raw(raw)
        headers_out = dict(response.headers)
        if response.status_code < 400 or (passthrough and not is_membrane_error(body)):
            return ApiResponse(response.status_code, body, headers_out)
        error = self.error(response.status_code, body, what=what)
        if route_missing(response.status_code, body, "/" + path.lstrip("/")):
            error.details["route_missing"] = True
        retry_after = retry_after_s(response.headers)
        if retry_after is not None:
            error.details["retry_after"] = retry_after
        raise error

    def _too_large(self, method: str, path: str, what: str, why: str) -> MembraneError:
        return MembraneError(
            f"Membrane's answer to {method} {path.split('?', 1)[0]} while {what} is too large ({why}; the limit is "
            f"{self.max_answer_bytes:,} bytes) and was not read.",
            retryable=False,
            hint="ask for less (a smaller batch_size, date range or property list); the operator can raise "
            "CLEVERTAP_MCP_MAX_UPSTREAM_BYTES",
        )

    def error(self, status: int, body: Any, *, what: str) -> MembraneError:
        """The MembraneError for an error answer, with a message naming what failed and a hint."""
        data = body if isinstance(body, dict) else {}
        err_type = data.get("type") if isinstance(data.get("type"), str) else None
        err_key = data.get("key") if isinstance(data.get("key"), str) else None
        upstream = data.get("message") if isinstance(data.get("message"), str) else None
        if upstream is None and isinstance(body, str) and body.strip():
            upstream = body.strip()[:300]
        upstream = self.scrub(upstream) if upstream else None
        suffix = f": {upstream}" if upstream else ""
        details: dict[str, Any] = {"status": status}
        if err_type:
            details["type"] = err_type
        if err_key:
            details["key"] = err_key
        run_id = data.get("actionRunId")
        if isinstance(run_id, str):
            details["actionRunId"] = run_id
        retryable = status in RETRYABLE_STATUSES or err_key in {"rate_limit_exceeded", "lock_timeout"}

        if status == 401 or err_key == "not_authenticated":
            message = f"the Membrane token was refused while {what}{suffix}"
            hint = refused_token_hint(self.auth.kind)
        elif status == 403 or err_key == "access_denied":
            message = f"Membrane denied access while {what}{suffix}"
            hint = "use a tenant token of the workspace that holds the CleverTap connection"
        elif status == 429 or err_key == "rate_limit_exceeded":
            message = f"Membrane is rate limiting requests ({what}){suffix}"
            hint = "wait a few seconds, then retry"
            retryable = True
        elif err_type == "connection":
            message = f"the CleverTap connection in Membrane cannot be used ({err_key or 'connection error'}){suffix}"
            hint = f"{CONNECT_HINT} to re-authenticate the connection"
        elif err_type == "action_run":
            message = f"{what} failed{suffix}" + (f" (actionRunId {run_id})" if isinstance(run_id, str) else "")
            hint = "check the action input; the action run log in Membrane has the details"
        elif status == 404:
            message = f"Membrane found nothing while {what}{suffix}"
            hint = "check the id or key"
        elif status >= 500:
            message = f"Membrane failed while {what} (HTTP {status}){suffix}"
            hint = "retry later; if it persists, check Membrane's status"
        else:
            message = f"Membrane rejected {what} (HTTP {status}{', ' + err_key if err_key else ''}){suffix}"
            hint = "check the request"
        return MembraneError(
            self.scrub(message), status=status, code=err_key, retryable=retryable, hint=hint, details=details
        )

    async def aclose(self) -> None:
        if self._http is not None and self._owns_http:
            await self._http.aclose()
            self._http = None


def _parse_raw(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json_module.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")
