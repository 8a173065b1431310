"""--redact-pii: mask personal data in everything a tool returns, by key and by value pattern, at any depth.

One ``Redactor`` runs at the result boundary (``server/protocol/app.py``) on every result and error, whichever tool,
action or proxy path produced it, so no path can walk around it:

* by key: the value of any key named like email, phone or name (case, ``_``, ``-`` and spaces ignored, so ``Email``,
  ``first_name`` and ``Phone Number`` count) or like a configured extra key is masked, whole subtrees included;
* by value: email addresses and phone numbers are masked wherever they appear, in values, inside longer text, and in
  object keys (a count grouped by ``Email`` is keyed by the addresses).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# Normalised key names (lower case, letters and digits only) whose values are personal data.
PII_KEYS = frozenset(
    {
        "email",
        "emailaddress",
        "emailid",
        "phone",
        "phonenumber",
        "mobile",
        "mobilenumber",
        "mobilephone",
        "name",
        "firstname",
        "lastname",
        "fullname",
    }
)

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# International numbers ('+' then 7-15 digits, CleverTap's required form) and the common (555) 123-4567 shape.
_PHONE = re.compile(r"(?<![\w+])(?:\+\d[\d\s().-]{5,22}\d|\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4})(?![\w])")
_NOT_KEY_CHARS = re.compile(r"[^a-z0-9]")


def normalise_key(key: str) -> str:
    return _NOT_KEY_CHARS.sub("", key.lower())


def _mask_email(text: str) -> str:
    local, _, domain = text.partition("@")
    return f"{local[:1]}***@{domain}"


def _mask_phone(text: str) -> str:
    digits = sum(c.isdigit() for c in text)
    if not 7 <= digits <= 15:
        return text
    return text[:3] + "***" + text[-2:]


def mask_text(text: str) -> str:
    """Email addresses and phone numbers inside ``text`` masked; the rest kept."""
    if "@" in text:
        text = _EMAIL.sub(lambda m: _mask_email(m.group(0)), text)
    return _PHONE.sub(lambda m: _mask_phone(m.group(0)), text)


def _mask_keyed(key: str, value: Any) -> Any:
    """A scalar under a personal-data key: its shape hints kept (first letter, email domain), the rest masked."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    text = str(value)
    if "@" in text:
        return _EMAIL.sub(lambda m: _mask_email(m.group(0)), text) if _EMAIL.search(text) else text[:1] + "***"
    if "phone" in key or "mobile" in key:
        return text[:3] + "***" + text[-2:] if len(text) > 7 else "***"
    return text[:1] + "***" if text else text


class Redactor:
    def __init__(self, extra_keys: Iterable[str] = (), *, by_key: bool = True) -> None:
        self.keys = PII_KEYS | {normalise_key(k) for k in extra_keys if normalise_key(k)}
        self.by_key = by_key

    def __call__(self, value: Any) -> Any:
        return self._walk(value, None)

    def _walk(self, value: Any, pii_key: str | None) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for k, v in value.items():
                key = str(k)
                norm = normalise_key(key)
                inner = pii_key or (norm if self.by_key and norm in self.keys else None)
                shown = mask_text(key)
                while shown in out:  # two addresses masked alike must not overwrite each other's values
                    shown += "'"
                out[shown] = self._walk(v, inner)
            return out
        if isinstance(value, list):
            return [self._walk(v, pii_key) for v in value]
        if pii_key is not None:
            return _mask_keyed(pii_key, value)
        if isinstance(value, str):
            return mask_text(value)
        return value
