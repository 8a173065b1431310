"""--redact-pii: mask email, phone and name fields in exported profile data before the model sees them."""

from __future__ import annotations

from typing import Any

PII_KEYS = {"email", "phone", "name"}
# Only subtrees that hold user profiles are masked, so campaign or action names stay readable.
PROFILE_ROOTS = {"records", "record", "profile", "profiledata"}


def mask(key: str, value: Any) -> Any:
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        return value
    text = str(value)
    k = key.lower()
    if k == "email" and "@" in text:
        local, _, domain = text.partition("@")
        return f"{local[:1]}***@{domain}"
    if k == "phone":
        return text[:3] + "*" * max(len(text) - 5, 3) + text[-2:] if len(text) > 5 else "***"
    return text[:1] + "***" if text else text


def redact(value: Any, *, inside_profile: bool = False) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = str(k)
            if inside_profile and key.lower() in PII_KEYS and not isinstance(v, (dict, list)):
                out[key] = mask(key, v)
            else:
                out[key] = redact(v, inside_profile=inside_profile or key.lower() in PROFILE_ROOTS)
        return out
    if isinstance(value, list):
        return [redact(v, inside_profile=inside_profile) for v in value]
    return value
