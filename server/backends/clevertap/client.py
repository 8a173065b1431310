"""The one CleverTap wire client: every quirk of the REST API is handled here, once, over any executor.

Quirks handled (see the API reference, §1, §2.5, §3, §5, §11):
* the envelope: ``status: "fail"`` inside HTTP 200; 401 with a JSON body; ``error`` holding a JSON array in a string;
* answers that mean a known state, raised as their own types (``CampaignNotCompleted``, ``ProfileNotFound``, refused
  credentials even on the raw proxy), and the campaign list's shapes, always under ``targets``;
* retries: reads only, on 429/5xx/network errors, by the shared policy of ``server.backends.retry``; writes never
  (a write that got no usable answer is reported as "may or may not have been applied");
* a total time budget per tool call (``call_deadline``, else ``call_budget_s`` per client method): every attempt, wait
  and upload batch ends inside it, and what did not finish is reported (count ``req_id``, upload ``unsent``);
* concurrency caps per account: 15 for ``/1/upload``, 3 for everything else;
* counts answering ``partial`` + ``req_id`` (int or str, sent back unchanged), polled inside a time budget;
* export cursors that come back already %-encoded (sent verbatim), ``cursor`` vs ``next_cursor``, missing ``records``,
  ``code: 2`` "still in progress", expired cursors;
* upload batching (1000 events/profiles, 100 tokens), mapping ``Skipped record number : k`` to the caller's index.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import anyio

from server.backends.retry import (
    MAX_ATTEMPTS,
    Backoff,
    bounded,
    deadline_within,
    rebuilt,
    retried,
    retry_after_s,
    uncertain_write,
)
from server.codec.wirejson import strict_json
from server.policies import endpoints as endpoint_policy
from tools.api import (
    CountResult,
    Executor,
    ExportPage,
    JsonBody,
    ProgressFn,
    RawResponse,
    RecordKind,
    UnprocessedRecord,
    UploadResult,
)
from tools.error_hints import RATE_HINT, clevertap_hint
from tools.errors import (
    CampaignNotCompleted,
    CleverTapCredentialsError,
    CleverTapError,
    CursorExpired,
    InputError,
    ProfileNotFound,
    ToolFailure,
    UpstreamError,
)
from tools.models import check_range, parse_yyyymmdd

log = logging.getLogger(__name__)

SleepFn = Callable[[float], Awaitable[None]]
ClockFn = Callable[[], float]

UPLOAD_PATH = "/1/upload"
BATCH_SIZES: dict[str, int] = {"event": 1000, "profile": 1000, "token": 100}

_CURSOR_SAFE = "%+/=:@!$'()*,;?~-._"
_SKIPPED_RE = re.compile(r"Skipped record number\s*:\s*(\d+)", re.IGNORECASE)
_SKIPPED_SUFFIX_RE = re.compile(r"\.?\s*Skipped record number\s*:\s*\d+\s*\.?\s*$", re.IGNORECASE)
_IDENTITY_KEYS = ("identity", "objectId", "FBID", "GPID")
_CREDENTIAL_WORDS = ("account", "passcode", "credential", "auth", "token", "api key")
_CURSOR_GONE_MARKERS = ("invalid cursor", "incorrect usage", "cursor_invalidated", "expired")
# Every wording seen or inferred for these states (API reference §4.2, §6.4); also HTTP 409 / 404 or code 409 / 404.
CAMPAIGN_REPORT_PATH = "/1/targets/result.json"
_NOT_COMPLETED = ("hasn't been completed", "has not been completed", "not been completed", "not completed")
NOT_COMPLETED_HINT = "The campaign has not finished: CleverTap reports only completed campaigns. Try again later."
PROFILE_PATH = "/1/profile.json"
_PROFILE_NOT_FOUND = ("not found", "no profile", "does not exist", "doesn't exist", "no such", "unknown user")
PROFILE_NOT_FOUND_HINT = (
    "No profile matches (values must match exactly): check the identity, email or CleverTap ID, or find users by "
    "what they did with clevertap_get_user_profiles."
)
PROFILE_POLL_S = 30.0  # how long a profile lookup answered "partial" is polled outside any call budget
CAMPAIGN_LIST_PATH = "/1/targets/list.json"
_CAMPAIGN_LIST_KEYS = ("targets", "campaigns", "data")
CREDENTIALS_HINT = (
    "Check CLEVERTAP_ACCOUNT_ID, CLEVERTAP_PASSCODE and CLEVERTAP_REGION (the region must be the account's), "
    "or run clevertap_connect to see which one is refused."
)
_CODE_HINTS: dict[int, str] = {
    400: "CleverTap rejected the request: check the field and event names (case-sensitive) and the dates.",
    401: "CleverTap refused a value of the request (not the credentials): fix it as the error says.",
    403: "This passcode is not allowed to call this API: ask a CleverTap admin for a passcode with API access.",
    404: "CleverTap does not know this path or object: check the path (e.g. /1/counts/events.json) and any id.",
    405: "Wrong HTTP method: CleverTap reads are POSTs with a JSON body; cursor pages and polls are GETs.",
    409: "The object is not in the right state yet (e.g. a campaign report before the campaign completed).",
    429: RATE_HINT,
}


def path_only(path: str) -> str:
    """``path`` without its ``?query``."""
    return path.split("?", 1)[0]


def cursor_param(cursor: str) -> str:
    """The cursor as one query value: CleverTap's own %-escapes are kept verbatim, while '&', '#', spaces and control
    characters (a caller may paste any text as a cursor) are escaped, so a cursor cannot add parameters or headers."""
    return quote(cursor, safe=_CURSOR_SAFE)


def is_write(method: str, path: str) -> bool:
    """Whether a call may change the account. Such calls are never retried (the first attempt may have been applied).

    CleverTap's reads are POSTs too, so only the path tells a read from a write: the endpoint policy decides.
    """
    return endpoint_policy.is_write(method, path)


def _check_date(value: Any, name: str, where: str) -> int:
    if value is None:
        raise InputError(f"{where}'{name}' is required: a YYYYMMDD integer such as 20261126")
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f"{where}'{name}' must be a YYYYMMDD integer such as 20261126, not {value!r}")
    try:
        return parse_yyyymmdd(value)
    except ValueError as exc:
        raise InputError(f"{where}'{name}': {exc}") from None


def _check_pair(item: Mapping[str, Any], where: str) -> None:
    start = _check_date(item.get("from"), "from", where)
    end = _check_date(item.get("to"), "to", where)
    try:
        check_range(start, end)
    except ValueError as exc:
        raise InputError(f"{where}{exc}") from None


def validate_date_range(body: Mapping[str, Any]) -> None:
    """``from``/``to`` must be YYYYMMDD integers of real calendar dates with from <= to (also inside advanced_query).

    Raises InputError before anything is sent.
    """
    _check_pair(body, "")
    advanced = body.get("advanced_query")
    if not isinstance(advanced, Mapping):
        return
    for clause, items in advanced.items():
        candidates = items.get("any_events") if isinstance(items, Mapping) else items
        if not isinstance(candidates, list):
            continue
        for i, item in enumerate(candidates):
            if isinstance(item, Mapping) and ("from" in item or "to" in item):
                _check_pair(item, f"advanced_query.{clause}[{i}]: ")


def error_text(body: Any) -> str:
    """A readable error message out of any CleverTap error body (unpacks ``"[\\"Invalid event : X\\"]"``)."""
    if isinstance(body, Mapping):
        raw = body.get("error")
        if raw is None:
            raw = body.get("message")
        if raw is None:
            raw = body.get("errors")
    else:
        raw = body
    if isinstance(raw, str):
        stripped = raw.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            with contextlib.suppress(ValueError):
                raw = json.loads(stripped)
    if isinstance(raw, list):
        return "; ".join(str(item) for item in raw) or "no error text"
    if raw is None or raw == "":
        return "no error text" if isinstance(body, Mapping) else "empty answer"
    return str(raw)[:500]


def _body_code(body: Any) -> Any:
    return body.get("code") if isinstance(body, Mapping) else None


def _is_in_progress(body: Any) -> bool:
    code = _body_code(body)
    return code == 2 or code == "2"


def _int_code(code: Any) -> int | None:
    try:
        return int(code)
    except (TypeError, ValueError):
        return None


def error_for(response: RawResponse, method: str, path: str) -> CleverTapError | None:
    """The error an answer stands for (a typed one where the answer means a known state), or None when it is a
    usable answer."""
    error = _error_for(response, method, path)
    return None if error is None else _typed(error, path)


def _typed(error: CleverTapError, path: str) -> CleverTapError:
    """An error that means a known state of an object, as its own type: tools catch the type, never the text."""
    if type(error) is not CleverTapError or error.retryable:
        return error
    canon = endpoint_policy.canonical_path(path)
    text = f"{error.details.get('error', '')} {error.message}".lower()
    numbers = {error.status, _int_code(error.code)}
    if canon == CAMPAIGN_REPORT_PATH and (any(m in text for m in _NOT_COMPLETED) or 409 in numbers):
        return CampaignNotCompleted(
            error.message, status=error.status, code=error.code, hint=NOT_COMPLETED_HINT, details=error.details
        )
    if canon == PROFILE_PATH and (any(m in text for m in _PROFILE_NOT_FOUND) or 404 in numbers):
        return ProfileNotFound(
            error.message, status=error.status, code=error.code, hint=PROFILE_NOT_FOUND_HINT, details=error.details
        )
    return error


def _no_record(method: str, path: str, answer: Mapping[str, Any]) -> ProfileNotFound | None:
    """A profile lookup answered "success" with a missing, null or empty ``record``: CleverTap knows no such user."""
    if endpoint_policy.canonical_path(path) != PROFILE_PATH or answer.get("status") == "partial":
        return None
    record = answer.get("record")
    if isinstance(record, list):
        record = record[0] if record else None
    if isinstance(record, Mapping) and record:
        return None
    return ProfileNotFound(
        f"CleverTap has no such profile ({method.upper()} {path_only(path)}): the answer holds no record",
        hint=PROFILE_NOT_FOUND_HINT,
        details={"error": "no record"},
    )


def _error_for(response: RawResponse, method: str, path: str) -> CleverTapError | None:
    status, body = response.status, response.body
    where = f"{method.upper()} {path_only(path)}"
    text = error_text(body)
    code = _body_code(body)
    details: dict[str, Any] = {"http_status": status, "error": text}
    if code is not None:
        details["code"] = code
    retry_after = retry_after_s(response.headers)
    if retry_after is not None:
        details["retry_after"] = retry_after
    if _refuses_credentials(status, code, body, text):
        return CleverTapCredentialsError(
            f"CleverTap refused the credentials ({where}): {text}",
            status=401,
            code=code,
            hint=clevertap_hint(text, credentials=True) or CREDENTIALS_HINT,
            details=details,
        )
    if status == 429:
        wait = retry_after
        return CleverTapError(
            f"CleverTap is rate limiting this account ({where}): {text}",
            status=429,
            code=code,
            retryable=True,
            hint=f"Wait {max(1, round(wait))} s (CleverTap's Retry-After), then call again."
            if wait
            else _CODE_HINTS[429],
            details=details,
        )
    if status >= 500:
        return CleverTapError(
            f"CleverTap failed with HTTP {status} ({where}): {text}",
            status=status,
            code=code,
            retryable=True,
            hint="CleverTap's side failed: try again in a moment.",
            details=details,
        )
    if _is_in_progress(body):
        return CleverTapError(
            f"CleverTap is still processing this request ({where}): {text}",
            status=status,
            code=code,
            retryable=True,
            hint="Call again in a few seconds.",
            details=details,
        )
    if status >= 300:
        return CleverTapError(
            f"CleverTap answered HTTP {status} ({where}): {text}",
            status=status,
            code=code,
            hint=clevertap_hint(text, code) or _CODE_HINTS.get(status) or _CODE_HINTS.get(_int_code(code) or 0),
            details=details,
        )
    if status == 204 and body == "":
        return None
    if not isinstance(body, (Mapping, list)):
        snippet = str(body)[:200]
        return CleverTapError(
            f"CleverTap sent an unreadable answer ({where}, HTTP {status}): {snippet!r}",
            status=status,
            retryable=True,
            hint="The answer was not JSON (possibly cut short): try again.",
            details=details,
        )
    if isinstance(body, Mapping) and body.get("status") == "fail":
        return CleverTapError(
            f"CleverTap reported a failure ({where}): {text}" + (f" (code {code})" if code is not None else ""),
            status=status,
            code=code,
            hint=clevertap_hint(text, code)
            or _CODE_HINTS.get(_int_code(code) or 0)
            or "Fix the request as the error says and try again.",
            details=details,
        )
    return None


def _refuses_credentials(status: int, code: Any, body: Any, text: str) -> bool:
    """HTTP 401 (or code 401 in a ``fail`` body) refuses the credentials, unless its text is about something else:
    the custom-list upload answers 401 for an email that is not an admin's, which no new passcode fixes."""
    if not (status == 401 or (code in (401, "401") and isinstance(body, Mapping) and body.get("status") == "fail")):
        return False
    lowered = text.lower()
    return text in ("no error text", "empty answer") or any(word in lowered for word in _CREDENTIAL_WORDS)


def _strip_skipped(message: str) -> str:
    return _SKIPPED_SUFFIX_RE.sub("", message).strip() or message


def _identity_of(record: Any) -> tuple[Any, ...] | None:
    if not isinstance(record, Mapping):
        return None
    ids = tuple(str(record[k]) if record.get(k) is not None else None for k in _IDENTITY_KEYS)
    if not any(ids):
        return None
    return (*ids, record.get("evtName"), record.get("type"))


@dataclass
class _BatchOutcome:
    start: int
    size: int
    sent: bool = False
    processed: int = 0
    unprocessed: list[UnprocessedRecord] = field(default_factory=list)
    unsent_reason: str | None = None
    fatal: ToolFailure | None = None


class CleverTapClient:
    """``tools.api.CleverTapApi`` over any executor. One instance per account: the concurrency caps live here."""

    def __init__(
        self,
        executor: Executor,
        *,
        upload_concurrency: int = 15,
        other_concurrency: int = 3,
        sleep: SleepFn = anyio.sleep,
        poll_interval_s: float = 1.0,
        first_poll_s: float = 0.05,
        clock: ClockFn = time.monotonic,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_base_s: float = 0.5,
        poll_grace_s: float = 2.0,
        call_budget_s: float | None = None,
    ) -> None:
        self.executor = executor
        self._upload_sem = anyio.Semaphore(upload_concurrency)
        self._other_sem = anyio.Semaphore(other_concurrency)
        self._sleep = sleep
        self._clock = clock
        self.poll_interval_s = poll_interval_s
        # Most counts finish moments after the first 'partial': poll soon, then back off to the documented interval.
        self.first_poll_s = min(first_poll_s, poll_interval_s)
        self.max_attempts = max(1, max_attempts)
        self.backoff_base_s = backoff_base_s
        self.poll_grace_s = poll_grace_s
        # The total budget of one client method when no ``call_deadline`` is set around it (None: unbounded).
        self.call_budget_s = call_budget_s

    # -- transport -------------------------------------------------------------------------------------------------

    def _limit(self) -> float | None:
        """The ``time.monotonic()`` deadline of one client method: the call's deadline, or this client's budget."""
        return deadline_within(self.call_budget_s)

    async def _raw(self, method: str, path: str, query: Mapping[str, Any] | None, body: Any) -> RawResponse:
        sem = self._upload_sem if path_only(path) == UPLOAD_PATH else self._other_sem
        async with sem:
            return await self.executor.request(method, path, query, body)

    async def _attempt(
        self, method: str, path: str, query: Mapping[str, Any] | None, body: Any, limit: float | None
    ) -> RawResponse:
        """One request, abandoned when the budget ends (CleverTapError, retryable, ``budget_exhausted``)."""
        return await bounded(lambda: self._raw(method, path, query, body), limit, lambda: _budget_error(method, path))

    async def _checked(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        deadline: float | None = None,
        retry_in_progress: bool = True,
        limit: float | None = None,
    ) -> Any:
        """Send, raise the error the answer stands for, retry reads; returns the parsed body.

        ``deadline`` is on this client's clock (count/export budgets); ``limit`` on ``time.monotonic()`` (the call's
        total budget, taken from ``_limit()`` when not given). A write is sent once: when its answer is missing or
        unusable, the error says it may or may not have been applied.
        """
        if limit is None:
            limit = self._limit()

        async def once() -> Any:
            response = await self._attempt(method, path, query, body, limit)
            error = error_for(response, method, path)
            if error is not None:
                raise error
            return response.body

        return await retried(
            once,
            read=not is_write(method, path),
            backoff=Backoff(self.backoff_base_s, self.max_attempts),
            limit=limit,
            uncertain=_uncertain_write,
            sleep=self._sleep,
            may_retry=lambda error: retry_in_progress or not _is_in_progress(error.details),
            fits=lambda wait: deadline is None or self._clock() + wait <= deadline,
            give_up=_after_attempts,
            what=f"{method.upper()} {path_only(path)}",
        )

    async def call(
        self, method: str, path: str, *, query: Mapping[str, Any] | None = None, body: Any = None
    ) -> dict[str, Any]:
        """One call; returns the JSON body (a top-level list comes back as ``{"status": "success", "data": [...]}``).

        Raises CleverTapError on HTTP errors and on ``status: "fail"`` (typed where the answer means a known state:
        CampaignNotCompleted, ProfileNotFound); reads are retried, writes never. The campaign list is always under
        ``targets``, whichever key (or a top-level list) CleverTap used.
        """
        result = await self._checked(method, path, query=query, body=body)
        if result == "":
            return {}
        answer: dict[str, Any] = {"status": "success", "data": result} if isinstance(result, list) else dict(result)
        canon = endpoint_policy.canonical_path(path)
        if canon == PROFILE_PATH and answer.get("status") == "partial" and answer.get("req_id") is not None:
            answer = await self._profile_later(path, answer)
        missing = _no_record(method, path, answer)
        if missing is not None:
            raise missing
        if canon == PROFILE_PATH and isinstance(answer.get("record"), list):
            answer["record"] = answer["record"][0]  # one record in a list: seen only in third-party code
        if canon == CAMPAIGN_LIST_PATH and not isinstance(answer.get("targets"), list):
            found = (answer.get(key) for key in _CAMPAIGN_LIST_KEYS)
            answer["targets"] = next((v for v in found if isinstance(v, list)), [])
        return answer

    async def _profile_later(self, path: str, answer: dict[str, Any]) -> dict[str, Any]:
        """A profile lookup answered later ("partial" + ``req_id``, seen only in third-party code): polled like a
        count, inside the call's budget."""
        limit = self._limit()
        budget = PROFILE_POLL_S if limit is None else max(0.0, limit - time.monotonic())
        result = await self._poll(path_only(path), answer, self._clock() + budget)
        if not result.done:
            raise CleverTapError(
                f"CleverTap is still looking this profile up (GET {path_only(path)})",
                retryable=True,
                hint="Call again in a few seconds.",
            )
        return dict(result.body)

    async def raw(
        self, method: str, path: str, *, query: Mapping[str, Any] | None = None, body: Any = None
    ) -> RawResponse:
        """One request for the raw proxy, sent once inside the call's budget; CleverTap's answer comes back whatever
        its status, except refused credentials (CleverTapCredentialsError). A write whose answer was lost says it
        may or may not have been applied."""
        try:
            response = await self._attempt(method, path, query, body, self._limit())
        except UpstreamError as exc:
            raise (_uncertain_write(exc) if is_write(method, path) else exc) from None
        error = error_for(response, method, path)
        if isinstance(error, CleverTapCredentialsError):
            raise error
        return response

    # -- counts ----------------------------------------------------------------------------------------------------

    async def count(self, path: str, body: Mapping[str, Any], *, budget_s: float) -> CountResult:
        validate_date_range(body)
        deadline = self._clock() + budget_s
        first = await self._count_call("POST", path, body, deadline)
        return await self._poll(path, first, deadline)

    async def poll_count(self, path: str, req_id: str | int, *, budget_s: float) -> CountResult:
        deadline = self._clock() + budget_s
        first = await self._count_call("GET", self._req_id_path(path, req_id), None, deadline)
        if first.get("status") == "partial" and first.get("req_id") is None:
            first = {**first, "req_id": req_id}
        return await self._poll(path, first, deadline)

    @staticmethod
    def _req_id_path(path: str, req_id: str | int) -> str:
        return f"{path}{'&' if '?' in path else '?'}req_id={req_id}"

    async def _count_call(self, method: str, path: str, body: Any, deadline: float) -> dict[str, Any]:
        try:
            result = await self._checked(method, path, body=body, deadline=deadline)
        except CleverTapError as exc:
            text = str(exc.details.get("error", exc.message)).lower()
            if not exc.retryable and ("invalid request id" in text or "invalid req_id" in text):
                raise CleverTapError(
                    exc.message,
                    status=exc.status,
                    code=exc.code,
                    hint="the req_id expired: run the count again",
                    details=exc.details,
                ) from None
            raise
        if not isinstance(result, Mapping):
            raise CleverTapError(f"CleverTap answered a count with a JSON list ({path_only(path)})", retryable=True)
        return dict(result)

    async def _poll(self, path: str, answer: dict[str, Any], deadline: float) -> CountResult:
        delay = self.first_poll_s
        while answer.get("status") == "partial":
            req_id = answer.get("req_id")
            if req_id is None or isinstance(req_id, bool) or not isinstance(req_id, (int, str)):
                raise CleverTapError(
                    f"CleverTap answered 'partial' without a usable req_id ({path_only(path)})",
                    retryable=True,
                    hint="Run the count again.",
                )
            remaining = deadline - self._clock()
            if remaining <= 0:
                return CountResult(done=False, req_id=req_id, body=answer)
            await self._sleep(min(delay, remaining))
            delay = min(max(delay * 2, 0.001), self.poll_interval_s)
            # A poll is a harmless GET: one still in flight well past the budget is abandoned, not waited for.
            previous = answer
            try:
                with anyio.move_on_after(max(0.0, deadline - self._clock()) + self.poll_grace_s) as scope:
                    answer = await self._count_call("GET", self._req_id_path(path, req_id), None, deadline)
            except UpstreamError as exc:
                # The count goes on at CleverTap: a poll lost at the end of the budget leaves the req_id usable.
                if exc.retryable and (exc.details.get("budget_exhausted") or self._clock() >= deadline):
                    return CountResult(done=False, req_id=req_id, body=previous)
                raise
            if scope.cancelled_caught:
                return CountResult(done=False, req_id=req_id, body=previous)
            if answer.get("status") == "partial" and answer.get("req_id") is None:
                answer = {**answer, "req_id": req_id}
        count = answer.get("count")
        if isinstance(count, str) and count.strip().isdigit():
            count = int(count)
        return CountResult(done=True, count=count if isinstance(count, int) else None, body=answer)

    # -- exports ---------------------------------------------------------------------------------------------------

    async def start_export(
        self, path: str, body: Mapping[str, Any], *, batch_size: int, flags: Mapping[str, bool] | None = None
    ) -> str | None:
        validate_date_range(body)
        query = f"batch_size={int(batch_size)}"
        for key, value in (flags or {}).items():
            query += f"&{key}={'true' if value else 'false'}"
        result = await self._checked("POST", f"{path}?{query}", body=dict(body))
        if not isinstance(result, Mapping):
            raise CleverTapError(f"CleverTap answered an export with a JSON list ({path_only(path)})")
        cursor = result.get("cursor") or result.get("next_cursor")
        return str(cursor) if cursor else None

    async def export_page(self, path: str, cursor: str, *, budget_s: float) -> ExportPage:
        deadline = self._clock() + budget_s
        url = f"{path}?cursor={cursor_param(cursor)}"
        while True:
            try:
                result = await self._checked("GET", url, deadline=deadline, retry_in_progress=False)
            except CleverTapError as exc:
                if _cursor_gone(exc):
                    raise CursorExpired(
                        f"CleverTap no longer accepts this export cursor: {exc.details.get('error', exc.message)}",
                        status=exc.status,
                        code=exc.code,
                        hint="The cursor expired or is invalid (event cursors last 4 h, 1 h idle; profile cursors "
                        "4 days): restart the export with the original query.",
                        details=exc.details,
                    ) from None
                if not _is_in_progress(exc.details):
                    raise
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise CleverTapError(
                        "CleverTap is still preparing this page of the export",
                        status=exc.status,
                        code=exc.code,
                        retryable=True,
                        hint="Call again with the same cursor in a few seconds.",
                        details=exc.details,
                    ) from None
                await self._sleep(min(self.poll_interval_s, remaining))
                continue
            if not isinstance(result, Mapping):
                raise CleverTapError(f"CleverTap answered an export page with a JSON list ({path_only(path)})")
            records = result.get("records")
            if not isinstance(records, list):
                records = []
            nxt = result.get("next_cursor") or result.get("cursor")
            if not nxt or (not records and nxt == cursor):
                nxt = None
            return ExportPage(
                records=[r for r in records if isinstance(r, dict)], next_cursor=str(nxt) if nxt else None
            )

    # -- upload ----------------------------------------------------------------------------------------------------

    async def upload(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        kind: RecordKind,
        dry_run: bool = False,
        progress: ProgressFn | None = None,
    ) -> UploadResult:
        if kind not in BATCH_SIZES:
            raise InputError(f"unknown record kind {kind!r}: use event, profile or token")
        for i, record in enumerate(records):
            # type() first: an isinstance check against the Mapping ABC costs a third of a second per 100,000.
            if type(record) is not dict and not isinstance(record, Mapping):
                raise InputError(f"record {i} is not a JSON object")
        size = BATCH_SIZES[kind]
        path = UPLOAD_PATH + ("?dryRun=1" if dry_run else "")
        total = len(records)
        outcomes = [_BatchOutcome(start=s, size=min(size, total - s)) for s in range(0, total, size)]
        # Every batch is encoded before the first is sent: a record that is not valid JSON (NaN, a lone surrogate,
        # runaway nesting) stops the whole upload with nothing sent, and each batch is encoded exactly once.
        # A record is copied (to add its "type") only when it lacks it.
        batches: list[list[Mapping[str, Any]]] = []
        bodies: list[JsonBody] = []
        for outcome in outcomes:
            batch = [
                r if r.get("type") == kind else {**r, "type": kind}
                for r in records[outcome.start : outcome.start + outcome.size]
            ]
            batches.append(batch)
            bodies.append(JsonBody(_encode_batch(batch, outcome.start)))
        done = 0
        limit = self._limit()

        async def run(n: int) -> None:
            nonlocal done
            outcome, batch, body = outcomes[n], batches[n], bodies[n]
            if limit is None:
                await self._upload_batch(path, batch, body, outcome)
            else:
                with anyio.move_on_after(max(0.0, limit - time.monotonic())) as scope:
                    await self._upload_batch(path, batch, body, outcome)
                if scope.cancelled_caught:
                    outcome.unsent_reason = (
                        "no answer from CleverTap within the call's time budget; these records may or may not have "
                        "been applied"
                        if outcome.sent
                        else "not sent: the call's time budget ran out first"
                    )
            done += outcome.size
            if progress is not None:
                try:
                    await progress(done, total, f"{done}/{total} records sent")
                except Exception:  # a failing progress callback must not lose the upload's results
                    log.warning("upload progress callback failed", exc_info=True)

        async with anyio.create_task_group() as tg:
            for n in range(len(outcomes)):
                tg.start_soon(run, n)

        fatal = next((o.fatal for o in outcomes if o.fatal is not None), None)
        if fatal is not None and all(o.fatal is not None for o in outcomes):
            raise fatal
        processed = sum(o.processed for o in outcomes)
        unprocessed = sorted((u for o in outcomes for u in o.unprocessed), key=lambda u: u.index)
        unsent: list[int] = []
        reasons: list[str] = []
        for o in outcomes:
            reason = o.unsent_reason or (o.fatal.message if o.fatal is not None else None)
            if reason is None:
                continue
            unsent.extend(range(o.start, o.start + o.size))
            if reason not in reasons:
                reasons.append(reason)
        return UploadResult(
            processed=processed,
            unprocessed=unprocessed,
            batches=len(outcomes),
            unsent=unsent,
            unsent_reason="; ".join(reasons) if reasons else None,
        )

    async def _upload_batch(
        self, path: str, batch: list[Mapping[str, Any]], body: JsonBody, outcome: _BatchOutcome
    ) -> None:
        try:
            async with self._upload_sem:
                outcome.sent = True
                response = await self.executor.request("POST", path, None, body)
        except UpstreamError as exc:
            if exc.retryable:
                outcome.unsent_reason = (
                    f"no answer from CleverTap ({exc.message}); these records may or may not have been applied"
                )
            else:
                outcome.fatal = exc
            return
        except ToolFailure as exc:
            outcome.fatal = exc
            return
        status, body = response.status, response.body
        if status == 401 or status == 403:
            outcome.fatal = error_for(response, "POST", path)
            return
        if status == 429 or status >= 500:
            outcome.unsent_reason = (
                f"CleverTap answered HTTP {status} ({error_text(body)}); these records may or may not have been applied"
                if status >= 500
                else f"CleverTap refused the batch with HTTP 429 ({error_text(body)}): send it again later"
            )
            return
        if not isinstance(body, Mapping):
            outcome.unsent_reason = (
                f"CleverTap's answer was unreadable (HTTP {status}, not JSON); these records may or may not have "
                "been applied"
            )
            return
        entries = body.get("unprocessed")
        entries = entries if isinstance(entries, list) else []
        processed = body.get("processed")
        if status >= 300 or (body.get("status") == "fail" and not entries and not processed):
            code = _int_code(_body_code(body))
            if code is None and status >= 300:
                code = status
            text = error_text(body)
            outcome.unprocessed = [
                UnprocessedRecord(index=outcome.start + i, code=code, error=text) for i in range(outcome.size)
            ]
            return
        outcome.processed = (
            int(processed) if isinstance(processed, (int, float)) and not isinstance(processed, bool) else 0
        )
        outcome.unprocessed = _map_unprocessed(entries, batch, outcome.start)


_UNCERTAIN_HINT = (
    "It was sent once and not repeated. Check whether it took effect (e.g. list the campaigns, look the profile up) "
    "before calling again: calling again may apply it twice."
)


def _budget_error(method: str, path: str) -> CleverTapError:
    return CleverTapError(
        f"CleverTap did not answer within this call's time budget ({method.upper()} {path_only(path)})",
        retryable=True,
        hint="CleverTap is slow right now: try again in a moment (reads are safe to repeat).",
        details={"budget_exhausted": True},
    )


def _uncertain_write(error: UpstreamError) -> UpstreamError:
    """A write's error: when the answer was missing or unusable, say it may or may not have been applied."""
    return uncertain_write(
        error,
        "This call changes the account, so it was not repeated; it may or may not have been applied",
        _UNCERTAIN_HINT,
    )


def _after_attempts(
    error: UpstreamError, attempts: int, retry_after: float | None = None, budget: bool = False
) -> UpstreamError:
    """A read's final error, saying how often it was tried and how long CleverTap asked to wait."""
    if not error.retryable:
        return error
    notes = [f"tried {attempts} time{'s' if attempts > 1 else ''}"]
    hint = error.hint
    if retry_after is not None:
        notes.append(f"CleverTap asked to wait {retry_after:g} s")
        hint = f"Wait {max(1, round(retry_after))} s, then call again."
    if budget:
        notes.append("the call's time budget ended before the next try")
    return rebuilt(error, f"{error.message} ({'; '.join(notes)})", hint, attempts=attempts)


def _map_unprocessed(entries: list[Any], batch: Sequence[Mapping[str, Any]], start: int) -> list[UnprocessedRecord]:
    """Map ``unprocessed`` entries to caller indices: by "Skipped record number : k", else by the echoed record."""
    claimed: set[int] = set()
    pending: list[tuple[Any, str, Any]] = []
    result: list[UnprocessedRecord] = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            entry = {"error": str(entry)}
        message = str(entry.get("error") or "record rejected")
        code = _int_code(entry.get("code"))
        echoed = entry.get("record")
        match = _SKIPPED_RE.search(message)
        k = int(match.group(1)) if match else 0
        if 1 <= k <= len(batch):
            claimed.add(k - 1)
            result.append(
                UnprocessedRecord(index=start + k - 1, code=code, error=_strip_skipped(message), record=echoed)
            )
        else:
            pending.append((code, message, echoed))
    for code, message, echoed in pending:
        position = _find_record(echoed, batch, claimed)
        if position is not None:
            claimed.add(position)
        index = start + position if position is not None else -1
        result.append(UnprocessedRecord(index=index, code=code, error=_strip_skipped(message), record=echoed))
    return result


def _find_record(echoed: Any, batch: Sequence[Mapping[str, Any]], claimed: set[int]) -> int | None:
    if echoed is None:
        return None
    for i, record in enumerate(batch):
        if i not in claimed and record == echoed:
            return i
    identity = _identity_of(echoed)
    if identity is None:
        return None
    for i, record in enumerate(batch):
        if i not in claimed and _identity_of(record) == identity:
            return i
    return None


def _cursor_gone(exc: CleverTapError) -> bool:
    if isinstance(exc, CleverTapCredentialsError) or exc.retryable:
        return False
    text = str(exc.details.get("error", exc.message)).lower()
    code = str(exc.code or "").lower()
    return any(marker in text for marker in _CURSOR_GONE_MARKERS) or code == "cursor_invalidated"


def _encode_batch(batch: list[Mapping[str, Any]], start: int) -> bytes:
    """One upload body as strict JSON; on failure, name the caller's first record (0-based) that is not JSON."""
    try:
        return strict_json({"d": batch})
    except InputError as exc:
        for offset, record in enumerate(batch):
            try:
                strict_json(record)
            except InputError:
                raise InputError(
                    f"record {start + offset} cannot be sent: {exc.message} Nothing was sent.", hint=exc.hint
                ) from None
        raise
