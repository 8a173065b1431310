"""CleverTap regions and their API base URLs.

The base URL returned here never ends with ``/`` or ``/1``: callers append paths such as ``/1/counts/events.json``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from server.config import DEFAULT_REGION, REGION_URLS

# The table is declared once, with the settings (CLEVERTAP_REGION); here it resolves base URLs.
REGIONS: dict[str, str] = dict(REGION_URLS)


def normalise_region(region: str | None) -> str:
    """``None`` or blank means eu1; otherwise a known region code (case-insensitive), else ValueError."""
    code = (region or "").strip().lower() or DEFAULT_REGION
    if code not in REGIONS:
        raise ValueError(f"unknown CleverTap region {region!r}: CLEVERTAP_REGION must be one of {', '.join(REGIONS)}")
    return code


# DNS labels (underscores tolerated: container service names use them) joined by single dots.
_HOST = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*$")


def _normalise_override(override: str) -> str:
    url = override.strip()
    example = "use e.g. https://in1.api.clevertap.com"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port out of range or not a number
    except ValueError as exc:
        raise ValueError(f"CLEVERTAP_API_BASE_URL {override!r} is not a valid URL ({exc}): {example}") from None
    if "@" in parts.netloc:
        # Not echoed: the URL carries a credential.
        raise ValueError("CLEVERTAP_API_BASE_URL must not carry credentials (user:password@): set CLEVERTAP_PASSCODE")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError(f"CLEVERTAP_API_BASE_URL {override!r} holds whitespace or control characters: {example}")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"CLEVERTAP_API_BASE_URL {override!r} is not an http(s) URL: {example}")
    host = parts.hostname or ""
    if not (_HOST.match(host) or (":" in host and parts.netloc.startswith("["))) or port == 0:
        raise ValueError(f"CLEVERTAP_API_BASE_URL {override!r} does not name a valid host: {example}")
    if parts.query or parts.fragment:
        raise ValueError(f"CLEVERTAP_API_BASE_URL {override!r} must not carry a query or a fragment")
    url = url.rstrip("/")
    if url.endswith("/1"):
        url = url[: -len("/1")].rstrip("/")
    return url


def base_url_for(region: str | None, override: str | None) -> str:
    """The API root for ``region``; a non-empty ``override`` (CLEVERTAP_API_BASE_URL) wins.

    A trailing ``/`` or ``/1`` on the override is dropped so that ``/1/...`` paths can be appended.
    """
    if override and override.strip():
        return _normalise_override(override)
    return REGIONS[normalise_region(region)]
