"""The one mapping of httpx exceptions to errors that name the layer, the host and what to do (both backends)."""

from __future__ import annotations

import httpx

from tools.errors import InputError, ToolFailure, UpstreamError

NETWORK_ERRORS = (httpx.HTTPError, httpx.InvalidURL)


def network_error(
    exc: Exception,
    *,
    error_cls: type[UpstreamError],
    upstream: str,
    host: str,
    what: str | None = None,
    check: str,
) -> ToolFailure:
    """The error for an httpx exception raised while talking to ``upstream`` (CleverTap, Membrane) at ``host``.

    Every network failure is retryable (nothing usable came back); ``check`` names the settings to look at when
    the host cannot be reached. An invalid URL is the caller's input.
    """
    during = f" while {what}" if what else ""
    kind = type(exc).__name__
    if isinstance(exc, httpx.InvalidURL):
        return InputError(f"invalid request URL{during}: {exc}")
    if isinstance(exc, httpx.TimeoutException):
        return error_cls(
            f"timed out waiting for {upstream} at {host}{during}: no answer in time ({kind}).",
            retryable=True,
            hint=f"{upstream} did not answer in time: try again in a moment; if it keeps happening, check the "
            f"network or {check}.",
            details={"host": host},
        )
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return error_cls(
            f"the connection to {upstream} at {host} broke before a complete answer{during} ({kind}: {exc}).",
            retryable=True,
            hint=f"{upstream} or the network dropped the connection: try again in a moment.",
            details={"host": host},
        )
    return error_cls(
        f"Could not reach {upstream} at {host}{during} ({kind}: {exc}).",
        retryable=True,
        hint=f"Check the network and {check}, then try again.",
        details={"host": host},
    )
