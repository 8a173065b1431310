"""Input pieces shared by several tools: CleverTap dates and query-language filters."""

from __future__ import annotations

import datetime as _dt
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_COMPACT = re.compile(r"^\d{8}$")
_AGO = re.compile(r"^(?:(\d{1,4})\s*days?\s+ago|-(\d{1,4})d)$")


def _relative(text: str) -> str | None:
    """'today', 'yesterday', '30 days ago' or '-30d' (UTC) as YYYYMMDD: models often do not know today's date."""
    lowered = text.lower()
    today = _dt.datetime.now(_dt.timezone.utc).date()
    if lowered == "today":
        return today.strftime("%Y%m%d")
    if lowered == "yesterday":
        return (today - _dt.timedelta(days=1)).strftime("%Y%m%d")
    m = _AGO.match(lowered)
    if m:
        return (today - _dt.timedelta(days=int(m.group(1) or m.group(2)))).strftime("%Y%m%d")
    return None


def parse_yyyymmdd(value: Any) -> int:
    """Accept 20261126, "20261126", "2026-11-26" or a relative day; return the YYYYMMDD integer of a real date."""
    if isinstance(value, bool):
        raise ValueError("a date must be a YYYYMMDD integer such as 20261126, not a boolean")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        text = _relative(text) or text
        m = _ISO.match(text)
        if m:
            text = "".join(m.groups())
        if not _COMPACT.match(text):
            raise ValueError(f"{value!r} is not a date: use a YYYYMMDD integer such as 20261126")
        value = int(text)
    if not isinstance(value, int):
        raise ValueError(f"{value!r} is not a date: use a YYYYMMDD integer such as 20261126")
    if not 10000101 <= value <= 99991231:
        raise ValueError(f"{value} is not a date: use a YYYYMMDD integer such as 20261126 (8 digits)")
    try:
        _dt.date(value // 10000, value // 100 % 100, value % 100)
    except ValueError:
        raise ValueError(f"{value} is not a real calendar date (YYYYMMDD)") from None
    return value


def check_range(from_: int, to: int) -> None:
    if from_ > to:
        raise ValueError(f"'from' ({from_}) is after 'to' ({to}): swap them; both are inclusive YYYYMMDD dates")


def to_date(value: int) -> _dt.date:
    return _dt.date(value // 10000, value // 100 % 100, value % 100)


DateInt = Annotated[
    int,
    BeforeValidator(parse_yyyymmdd),
    Field(
        description="Date as a YYYYMMDD integer, e.g. 20261126 (inclusive). Also accepted: '2026-11-26', 'today', "
        "'yesterday', '30 days ago' (UTC).",
        json_schema_extra={"minimum": 10000101, "maximum": 99991231},
    ),
]

Operator = Literal[
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "greater_than",
    "greater_than_equals",
    "less_than",
    "less_than_equals",
    "between",
    "exists",
    "not_exists",
]
