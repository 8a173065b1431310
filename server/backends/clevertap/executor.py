"""Executors that talk HTTP to a CleverTap-compatible API (CleverTap itself or the sandbox), and the unconfigured one.

``HttpExecutor.request`` is deliberately thin: it sends one request and returns what came back, whatever the status.
Interpreting the answer (errors, retries, polling, cursors) is the job of
``server.backends.clevertap.client.CleverTapClient``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import anyio
import httpx
from pydantic_core import from_json

from server.backends import LocalActions
from server.backends.bounded import AnswerTooLarge, read_capped
from server.backends.network import NETWORK_ERRORS, network_error
from server.backends.tls import shared_tls_context
from server.codec.gcpause import gc_paused
from server.codec.wirejson import strict_json
from tools.api import ActionInfo, ActionRun, ConnectResult, JsonBody, ProgressFn, RawResponse
from tools.errors import CleverTapError, ConfigurationError, InputError, ToolFailure

log = logging.getLogger(__name__)

CONFIGURE_HINT = (
    "Configure a backend and restart the MCP server: set MEMBRANE_TOKEN to connect through Membrane; "
    "or set CLEVERTAP_ACCOUNT_ID, CLEVERTAP_PASSCODE and CLEVERTAP_REGION (eu1, in1, sg1, us1, aps3, mec1) "
    "to call CleverTap directly; or run the server with --sandbox to try a demo account."
)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def path_only(path: str) -> str:
    """``path`` without its query: cursors and identities stay out of error texts."""
    return path.split("?", 1)[0]


def encode_query(query: Mapping[str, Any] | None) -> str:
    """Encode a query dict the ordinary way (booleans as true/false, lists repeated, None skipped)."""
    if not query:
        return ""
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            pairs.extend((str(key), _query_value(v)) for v in value if v is not None)
        else:
            pairs.append((str(key), _query_value(value)))
    return urlencode(pairs)


def join_path(path: str, query: Mapping[str, Any] | None) -> str:
    """Append the encoded ``query`` to ``path``; a ``?query`` already in ``path`` is kept byte for byte."""
    extra = encode_query(query)
    if not extra:
        return path
    if "?" not in path:
        return f"{path}?{extra}"
    return f"{path}{'' if path.endswith(('?', '&')) else '&'}{extra}"


def parse_body(content: bytes) -> Any:
    """JSON when it parses, else the text (empty answers give ``""``).

    A 5,000-record export page is parsed by pydantic-core with the collector paused (see ``server/codec/gcpause.py``);
    what it refuses (invalid UTF-8, lone surrogate escapes, NaN) is decoded leniently and parsed by ``json``."""
    with gc_paused():
        try:
            return from_json(content)
        except ValueError:
            pass
        text = content.decode("utf-8", errors="replace")
        if not text.strip():
            return ""
        try:
            return json.loads(text)
        except ValueError:
            return text


class HttpExecutor:
    """One CleverTap account over one pooled ``httpx.AsyncClient``.

    ``name`` is ``"clevertap"`` for the real API and ``"sandbox"`` when ``transport`` points at the embedded emulator.
    """

    def __init__(
        self,
        *,
        base_url: str,
        account_id: str,
        passcode: str,
        region: str | None = None,
        name: str = "clevertap",
        transport: httpx.AsyncBaseTransport | None = None,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
        local_actions: LocalActions | None = None,
        max_answer_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.name = name
        self._max_answer_bytes = max_answer_bytes
        self.base_url = base_url.rstrip("/")
        self.account_id = account_id
        self.region = region
        self._passcode = passcode
        self._transport = transport
        self._timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        self._local_actions = local_actions
        self._client: httpx.AsyncClient | None = None
        self.host = urlsplit(self.base_url).netloc or self.base_url

    @classmethod
    def in_process(
        cls, app: Any, *, account_id: str, passcode: str, local_actions: LocalActions | None, **options: Any
    ) -> HttpExecutor:
        """The wire client reaching an ASGI app (the sandbox emulator) in this process: no socket, no network."""
        return cls(
            base_url="http://sandbox.invalid",
            account_id=account_id,
            passcode=passcode,
            transport=httpx.ASGITransport(app=app),
            name="sandbox",
            region="sandbox",
            local_actions=local_actions,
            **options,
        )

    def __repr__(self) -> str:
        return f"HttpExecutor(name={self.name!r}, base_url={self.base_url!r}, account_id={self.account_id!r})"

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport,
                # An in-process transport (the sandbox) needs no TLS: do not load the CA bundle for it.
                verify=shared_tls_context() if self._transport is None else True,
                timeout=self._timeout,
                limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
                headers={"X-CleverTap-Account-Id": self.account_id, "X-CleverTap-Passcode": self._passcode},
                follow_redirects=False,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def __aenter__(self) -> HttpExecutor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def request(
        self, method: str, path: str, query: Mapping[str, Any] | None = None, body: Any = None
    ) -> RawResponse:
        """Send one request. ``path`` (``/1/...``) may carry a pre-encoded ``?query``, which is sent verbatim."""
        if not path.startswith("/") or path.startswith("//"):
            raise InputError(f"path {path!r} must be relative to the API root and start with /1/ (or /2/)")
        method = method.upper()
        try:
            url = self.base_url + join_path(path, query)
        except UnicodeEncodeError:
            raise InputError(
                "a query value holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not valid text",
                hint="Send well-formed Unicode text.",
            ) from None
        headers: dict[str, str] = {}
        content: bytes | None = None
        if method != "GET":
            headers["Content-Type"] = "application/json"
            if isinstance(body, JsonBody):
                content = body.data
            elif body is not None:
                content = strict_json(body)
        try:
            http = self._http()
            response = await http.send(http.build_request(method, url, content=content, headers=headers), stream=True)
            try:
                raw = await read_capped(response, self._max_answer_bytes)
            except AnswerTooLarge as exc:
                raise self._too_large(method, path, exc.why) from None
            finally:
                await response.aclose()
        except NETWORK_ERRORS as exc:
            raise network_error(
                exc,
                error_cls=CleverTapError,
                upstream="CleverTap",
                host=self.host,
                check="the region (CLEVERTAP_REGION / CLEVERTAP_API_BASE_URL)",
            ) from None
        headers_out = {k.lower(): v for k, v in response.headers.items()}
        return RawResponse(status=response.status_code, body=parse_body(raw), headers=headers_out)

    def _too_large(self, method: str, path: str, what: str) -> CleverTapError:
        return CleverTapError(
            f"the answer from {self.host} to {method} {path_only(path)} is too large ({what}; the limit is "
            f"{self._max_answer_bytes:,}) and was not read",
            retryable=False,
            hint="Ask for less (a smaller batch_size, date range or property list); the operator can raise "
            "CLEVERTAP_MCP_MAX_UPSTREAM_BYTES.",
        )

    async def run_action(self, key_or_id: str, input: Mapping[str, Any]) -> ActionRun:
        return await self._actions().run(key_or_id, input)

    async def search_actions(self, intent: str, limit: int) -> list[ActionInfo]:
        return await self._actions().search(intent, limit)

    def _actions(self) -> LocalActions:
        if self._local_actions is None:
            raise ToolFailure(f"the {self.name} backend has no local action catalog wired in")
        return self._local_actions

    async def connect(self, wait_seconds: float, progress: ProgressFn | None = None) -> ConnectResult:
        """Check the credentials with ``POST /1/now.json {}``: cheap, read-only, and authenticated like every call."""
        where = f"{self.host} (region {self.region})" if self.region else self.host
        if progress is not None:
            await progress(0, 1, f"checking the CleverTap credentials against {self.host}")
        timeout = wait_seconds if wait_seconds > 0 else 15.0
        failure: str | None = None
        answer: RawResponse | None = None
        with anyio.move_on_after(timeout) as scope:
            try:
                answer = await self.request("POST", "/1/now.json", body={})
            except CleverTapError as exc:
                failure = exc.message
        if scope.cancelled_caught:
            failure = f"{self.host} did not answer within {timeout:g} s"
        if progress is not None:
            await progress(1, 1, None)
        common: dict[str, Any] = {"backend": self.name, "account_id": self.account_id, "region": self.region}
        if answer is None:
            return ConnectResult(
                state="UNREACHABLE",
                message=f"Could not reach CleverTap at {where}: {failure}.",
                next_step=(
                    "Check the network connection and CLEVERTAP_REGION (eu1, in1, sg1, us1, aps3, mec1) or "
                    "CLEVERTAP_API_BASE_URL, then run clevertap_connect again."
                ),
                details={"base_url": self.base_url},
                **common,
            )
        body = answer.body if isinstance(answer.body, dict) else {}
        error = str(body.get("error") or (answer.body if isinstance(answer.body, str) else "") or "")[:300]
        if answer.status == 401:
            return ConnectResult(
                state="CREDENTIALS_REFUSED",
                message=f"CleverTap at {where} refused the credentials for account {self.account_id}: "
                f"{error or 'HTTP 401'}.",
                next_step=_credentials_next_step(error),
                details={"base_url": self.base_url, "status": 401},
                **common,
            )
        if 200 <= answer.status < 300 and body.get("status") == "success":
            return ConnectResult(
                state="READY",
                message=f"Connected to CleverTap account {self.account_id} at {where}.",
                next_step="The clevertap_* tools are ready to use.",
                details={"base_url": self.base_url, "active_users_last_5_min": body.get("count")},
                **common,
            )
        return ConnectResult(
            state="UPSTREAM_ERROR",
            message=f"CleverTap at {where} answered HTTP {answer.status}: {error or 'unexpected answer'}.",
            next_step="The credentials were not refused; CleverTap is busy or failing: run clevertap_connect again "
            "in a minute.",
            details={"base_url": self.base_url, "status": answer.status},
            **common,
        )


def _credentials_next_step(error: str) -> str:
    text = error.lower()
    if "passcode" in text:
        return (
            "The passcode is wrong: set CLEVERTAP_PASSCODE to the passcode shown in CleverTap under Settings > "
            "Project (or your User Passcode), restart the server, then run clevertap_connect."
        )
    if "account" in text:
        return (
            "The account id is unknown in this region: check CLEVERTAP_ACCOUNT_ID (Settings > Project, e.g. "
            "W9R-486-4W5Z) and CLEVERTAP_REGION (eu1, in1, sg1, us1, aps3, mec1: the region in your dashboard URL), "
            "restart the server, then run clevertap_connect."
        )
    return (
        "Check CLEVERTAP_ACCOUNT_ID, CLEVERTAP_PASSCODE and CLEVERTAP_REGION (eu1, in1, sg1, us1, aps3, mec1), "
        "restart the server, then run clevertap_connect."
    )


class UnconfiguredExecutor:
    """The backend when nothing is configured: every call explains how to configure one."""

    name = "unconfigured"

    def __init__(self, reason: str | None = None, *, hint: str = CONFIGURE_HINT) -> None:
        self.reason = reason or "No CleverTap backend is configured."
        self.hint = hint

    def _error(self) -> ConfigurationError:
        return ConfigurationError(self.reason, hint=self.hint)

    async def request(
        self, method: str, path: str, query: Mapping[str, Any] | None = None, body: Any = None
    ) -> RawResponse:
        raise self._error()

    async def run_action(self, key_or_id: str, input: Mapping[str, Any]) -> ActionRun:
        raise self._error()

    async def search_actions(self, intent: str, limit: int) -> list[ActionInfo]:
        raise self._error()

    async def connect(self, wait_seconds: float, progress: ProgressFn | None = None) -> ConnectResult:
        return ConnectResult(backend=self.name, state="NOT_CONFIGURED", message=self.reason, next_step=self.hint)
