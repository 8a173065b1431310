"""Keep secrets out of everything the server writes: results, errors and log lines."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

# Bearer tokens and JWT-looking strings are masked even when they are not a configured secret (e.g. minted ones).
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")
_PASSCODE_HEADER = re.compile(r"(?i)(x-clevertap-passcode[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}]+")


class Scrubber:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        for s in secrets:
            self.add(s)

    def add(self, secret: str | None) -> None:
        # Very short values would mask ordinary words; real passcodes and tokens are longer.
        if secret and len(secret) >= 4 and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def holds_secret(self, text: str) -> bool:
        return any(s in text for s in self._secrets)

    def secrets_only(self, text: str) -> str:
        """Mask the configured secrets only: the JWT and bearer patterns could mangle legitimate data."""
        for s in self._secrets:
            text = text.replace(s, "***")
        return text

    def __call__(self, text: str) -> str:
        for s in self._secrets:
            if s in text:
                text = text.replace(s, "***")
        text = _JWT.sub("***", text)
        text = _BEARER.sub(r"\1***", text)
        return _PASSCODE_HEADER.sub(r"\1***", text)


class ScrubbingFilter(logging.Filter):
    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self._scrub = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        record.msg = self._scrub(message)
        record.args = None
        return True


def configure_logging(scrubber: Scrubber, level: int = logging.WARNING) -> None:
    """Logs go to stderr (stdout is JSON-RPC), through the scrubber."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ScrubbingFilter(scrubber))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
