"""The error taxonomy: what a failure is called decides what the model is told.

Every tool-level failure is one of these. The server turns it into a result with ``isError: true`` whose
text names the layer that failed and says how to recover. Messages never carry secrets: callers build them
from their own words and from upstream error strings, which the server scrubs again before sending.
"""

from __future__ import annotations

from typing import Any, Literal

Layer = Literal["input", "configuration", "membrane", "clevertap", "consent", "internal"]

_LAYER_TITLES: dict[str, str] = {
    "input": "Input error",
    "configuration": "Configuration error",
    "membrane": "Membrane error",
    "clevertap": "CleverTap error",
    "consent": "Confirmation required",
    "internal": "Internal error",
}


class ToolFailure(Exception):
    """A failure the model should read: ``layer`` says who failed, ``hint`` what to do next."""

    layer: Layer = "internal"

    def __init__(self, message: str, *, hint: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details or {}

    def render(self) -> str:
        text = f"{_LAYER_TITLES[self.layer]}: {self.message}"
        if self.hint:
            text += f"\nWhat to do: {self.hint}"
        return text


class InputError(ToolFailure):
    """The caller's arguments are wrong; nothing was sent upstream."""

    layer = "input"


class ConfigurationError(ToolFailure):
    """The server is not set up to reach CleverTap (missing or refused credentials, wrong region...)."""

    layer = "configuration"


class ConsentRequired(ToolFailure):
    """An irreversible call lacks a valid confirmation."""

    layer = "consent"


class UpstreamError(ToolFailure):
    """CleverTap or Membrane answered with an error. ``status`` is the HTTP status, ``code`` the body's code."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: Any = None,
        retryable: bool = False,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, hint=hint, details=details)
        self.status = status
        self.code = code
        self.retryable = retryable


class CleverTapError(UpstreamError):
    layer = "clevertap"


class CleverTapCredentialsError(CleverTapError):
    """HTTP 401 from CleverTap: the account id, passcode or region is wrong."""


class CursorExpired(CleverTapError):
    """CleverTap no longer knows this cursor: restart the export."""


class CampaignNotCompleted(CleverTapError):
    """The campaign has no report yet: CleverTap reports only completed campaigns."""


class ProfileNotFound(CleverTapError):
    """CleverTap knows no profile by this identity, email or CleverTap ID."""


class MembraneError(UpstreamError):
    layer = "membrane"
