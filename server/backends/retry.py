"""How every upstream call is retried, bounded in time and reported when it failed: written once for both backends.

Used by the CleverTap wire client (``server.backends.clevertap``) and the Membrane executor:

* ``call_deadline`` / ``remaining_budget``: one total time budget per tool call, shared by every request inside it;
* ``Backoff``: jittered exponential waits honouring ``Retry-After``, capped at ``MAX_RETRY_WAIT_S``;
* ``retried``: reads retried on retryable errors inside the budget; writes sent once, their lost answers marked by
  ``uncertain_write`` ("may or may not have been applied").

The mapping of network failures to errors is ``server.backends.network``: it needs httpx, which this module (imported
at start-up by the wire client) does not.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

from tools.errors import ToolFailure, UpstreamError

log = logging.getLogger(__name__)

_T = TypeVar("_T")
SleepFn = Callable[[float], Awaitable[None]]

MAX_ATTEMPTS = 3
MAX_RETRY_WAIT_S = 30.0

_CALL_DEADLINE: ContextVar[float | None] = ContextVar("clevertap_call_deadline", default=None)


@contextlib.contextmanager
def call_deadline(budget_s: float) -> Iterator[float]:
    """Bound every upstream call made inside (by this task and the tasks it starts) by one total budget.

    The deadline is on ``time.monotonic()``; a nested budget can only shorten it. Yields the deadline.
    """
    deadline = time.monotonic() + max(0.0, budget_s)
    current = _CALL_DEADLINE.get()
    if current is not None:
        deadline = min(deadline, current)
    token = _CALL_DEADLINE.set(deadline)
    try:
        yield deadline
    finally:
        _CALL_DEADLINE.reset(token)


def remaining_budget() -> float | None:
    """Seconds left in the current ``call_deadline`` (None outside one; never negative)."""
    deadline = _CALL_DEADLINE.get()
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def deadline_within(own_budget_s: float | None) -> float | None:
    """The ``time.monotonic()`` deadline of one operation: the call's deadline, shortened by ``own_budget_s``."""
    limit = _CALL_DEADLINE.get()
    if own_budget_s is not None:
        own = time.monotonic() + own_budget_s
        limit = own if limit is None else min(limit, own)
    return limit


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class Backoff:
    """How long to wait between attempts of a read."""

    base_s: float = 0.5
    max_attempts: int = MAX_ATTEMPTS
    max_wait_s: float = MAX_RETRY_WAIT_S

    def delay(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds before the attempt after ``attempt`` (1-based): jittered exponential, at least ``retry_after``;
        None when upstream asks for a longer pause than is worth waiting inside one call."""
        base = self.base_s * (2 ** (attempt - 1))
        jittered = base / 2 + random.uniform(0, base / 2)
        if retry_after is None:
            return jittered
        if retry_after > self.max_wait_s:
            return None
        return max(retry_after, jittered)


def answer_lost(error: UpstreamError) -> bool:
    """Whether ``error`` leaves a write's outcome unknown: no usable answer came back (network, time budget,
    5xx, unreadable). A 429 is a refusal, so nothing was applied."""
    if error.details.get("budget_exhausted"):
        return True
    if error.status == 429:
        return False
    return error.retryable or error.status is None or error.status >= 500


def uncertain_write(error: UpstreamError, note: str, hint: str) -> UpstreamError:
    """A write's error: when its answer was lost, a copy saying so (``note`` appended, ``hint`` replaced,
    ``details["uncertain"]``); any other error unchanged."""
    if not answer_lost(error):
        return error
    return rebuilt(error, f"{error.message.rstrip('.')}. {note}", hint, uncertain=True)


def rebuilt(error: UpstreamError, message: str, hint: str | None, **details: Any) -> UpstreamError:
    """A copy of ``error`` (same class, status, code and retryable flag) with a new message, hint and extra details."""
    return type(error)(
        message,
        status=error.status,
        code=error.code,
        retryable=error.retryable,
        hint=hint,
        details={**error.details, **details},
    )


async def bounded(call: Callable[[], Awaitable[_T]], limit: float | None, timed_out: Callable[[], ToolFailure]) -> _T:
    """``call()`` abandoned at the ``time.monotonic()`` deadline ``limit``, raising ``timed_out()`` then."""
    if limit is None:
        return await call()
    with anyio.move_on_after(max(0.0, limit - time.monotonic())):
        return await call()
    raise timed_out()


GiveUpFn = Callable[[UpstreamError, int, "float | None", bool], UpstreamError]


def _as_is(error: UpstreamError, attempts: int, retry_after: float | None, budget: bool) -> UpstreamError:
    return error


async def retried(
    once: Callable[[], Awaitable[_T]],
    *,
    read: bool,
    backoff: Backoff,
    limit: float | None,
    uncertain: Callable[[UpstreamError], UpstreamError],
    sleep: SleepFn = anyio.sleep,
    may_retry: Callable[[UpstreamError], bool] = lambda error: True,
    fits: Callable[[float], bool] = lambda wait: True,
    give_up: GiveUpFn = _as_is,
    what: str = "a read",
) -> _T:
    """``once()`` until it returns. A write (``read=False``) is sent once: its error goes through ``uncertain``.
    A read is tried again on a retryable error (at most ``backoff.max_attempts`` times) after ``backoff.delay``,
    honouring ``details["retry_after"]``, unless ``may_retry(error)`` refuses, the wait does not ``fit`` or would
    end past ``limit`` (a ``time.monotonic()`` deadline). The final error goes through ``give_up(error, attempts,
    retry_after, budget_ended)``."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await once()
        except UpstreamError as exc:
            error = exc
        if not read:
            raise uncertain(error) from None
        if not (error.retryable and attempt < backoff.max_attempts):
            raise give_up(error, attempt, None, False) from None
        if not may_retry(error):
            raise error from None
        raw = error.details.get("retry_after")
        retry_after = float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else None
        wait = backoff.delay(attempt, retry_after)
        if wait is None or not fits(wait):
            raise give_up(error, attempt, retry_after, False) from None
        if limit is not None and time.monotonic() + wait > limit:
            raise give_up(error, attempt, retry_after, True) from None
        log.info("retrying %s in %.1f s after: %s", what, wait, error.message)
        await sleep(wait)
