"""Keep secrets out of everything the server writes: results, errors and log lines."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

# Bearer tokens and JWT-looking strings are masked even when they are not a configured secret (e.g. minted ones).
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")
_PASSCODE_HEADER = re.compile(r"(?i)(x-clevertap-passcode[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}]+")


_HEX_ESCAPE = re.compile(r"%[0-9A-F]{2}")
_B64_URLSAFE = str.maketrans("+/", "-_")
_MIN_B64_CORE = 6


def _b64_cores(secret: bytes) -> set[str]:
    """The base64 characters that depend on ``secret`` alone, at each of the three byte alignments it can have
    inside a longer encoded value (e.g. ``Basic base64(account:passcode)``)."""
    cores: set[str] = set()
    for k in range(3):
        encoded = base64.b64encode(b"\0" * k + secret + b"\0" * 3).decode()
        first, last = -(-8 * k // 6), 8 * (k + len(secret)) // 6
        core = encoded[first:last]
        if len(core) >= _MIN_B64_CORE:
            cores.update((core, core.translate(_B64_URLSAFE)))
    return cores


def encodings(secret: str) -> set[str]:
    """``secret`` as a result can carry it: raw, JSON-escaped (once and twice, ASCII or not), URL-encoded (path and
    form style, upper- and lower-case hex) and base64 (standard and URL-safe, whole or inside a longer value)."""
    once = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    twice = {json.dumps(v)[1:-1] for v in once}
    quoted = {quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)}
    quoted |= {_HEX_ESCAPE.sub(lambda m: m.group(0).lower(), q) for q in quoted}
    raw = secret.encode()
    whole = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    whole |= {w.rstrip("=") for w in whole}
    return {v for v in {secret, *once, *twice, *quoted, *whole, *_b64_cores(raw)} if len(v) >= 4}


class Scrubber:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self._variants: list[str] = []
        self._pattern: re.Pattern[str] | None = None
        for s in secrets:
            self.add(s)

    def add(self, secret: str | None) -> None:
        # Very short values would mask ordinary words; real passcodes and tokens are longer.
        if secret and len(secret) >= 4 and secret not in self._secrets:
            self._secrets.append(secret)
            self._remember(encodings(secret))

    def add_basic(self, user: str | None, password: str | None) -> None:
        """Also mask ``base64(user:password)``, the credential of a basic ``Authorization`` header."""
        if user and password and len(password) >= 4:
            pair = f"{user}:{password}".encode()
            self._remember({base64.b64encode(pair).decode(), base64.urlsafe_b64encode(pair).decode()})

    def _remember(self, variants: set[str]) -> None:
        self._variants = sorted(set(self._variants) | variants, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, self._variants)))

    def holds_secret(self, text: str) -> bool:
        return any(v in text for v in self._variants)

    def secrets_only(self, text: str) -> str:
        """Mask the configured secrets only: the JWT and bearer patterns could mangle legitimate data."""
        if self._pattern is None or not self.holds_secret(text):
            return text
        return self._pattern.sub("***", text)

    def value(self, value: Any) -> Any:
        """``secrets_only`` on every string (keys too) of a JSON value, at any depth."""
        if isinstance(value, str):
            return self.secrets_only(value)
        if isinstance(value, dict):
            return {self.secrets_only(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value

    def __call__(self, text: str) -> str:
        text = self.secrets_only(text)
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
