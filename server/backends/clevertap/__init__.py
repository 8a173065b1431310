"""The CleverTap wire client and region table."""

from server.backends.clevertap.client import CleverTapClient, error_text, is_write, validate_date_range
from server.backends.clevertap.regions import DEFAULT_REGION, REGIONS, base_url_for, normalise_region

__all__ = [
    "DEFAULT_REGION",
    "REGIONS",
    "CleverTapClient",
    "base_url_for",
    "error_text",
    "is_write",
    "normalise_region",
    "validate_date_range",
]
