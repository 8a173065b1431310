"""Pieces shared by several tools: CleverTap dates (absolute and relative), timestamps, operators, req_ids, numbers.

Dates. Every date input takes a YYYYMMDD integer, an ISO date or date-time, or a relative form in UTC. A relative form
names either one day ("today", "yesterday", "7 days ago", "1 week ago") or a range of days ("last 7 days", "last week",
"this month", "last month", "2026-11"). A range given as ``from`` stands for its first day and as ``to`` for its last
day, so ``from: "last week", to: "last week"`` is the whole previous Monday-to-Sunday week. Ranges that reach the
current period ("this month", "last 7 days") end today: CleverTap has no data for days that have not happened.
"""

from __future__ import annotations

import calendar
import datetime as _dt
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ValidationInfo, WithJsonSchema

Edge = Literal["start", "end"]

_COMPACT = re.compile(r"^\d{8}$")
_ISO_DAY = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")
_ISO_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_NUMBER = r"(\d{1,4}|an?|one)"
_UNIT = r"(day|week|month|year)s?"
_AGO = re.compile(rf"^{_NUMBER}\s+{_UNIT}\s+ago$")
_SHORT_AGO = re.compile(r"^-(\d{1,4})d$")
_LAST_N = re.compile(rf"^(?:last|past|previous)\s+{_NUMBER}\s+{_UNIT}$")
_PERIOD = re.compile(r"^(last|previous|past|this|current)\s+(day|week|month|year)$")
_HELP = (
    "use a YYYYMMDD integer (20261126), '2026-11-26', or a UTC relative form: 'today', 'yesterday', '7 days ago', "
    "'last 7 days', 'this week', 'last week', 'this month', 'last month'"
)

DATE_FORMS = (
    "Dates: YYYYMMDD integers (20261126), ISO dates ('2026-11-26') or relative UTC forms: 'today', 'yesterday', "
    "'7 days ago', '1 week ago', 'last 7 days' (7 days ending today), 'this week' (from Monday), 'last week' "
    "(Monday-Sunday), 'this month', 'last month', 'this year', '2026-11' (a month). A range given as from is its "
    "first day, as to its last day: from='last month', to='last month' is all of last month. Ranges are inclusive."
)


def today_utc() -> _dt.date:
    return _dt.datetime.now(_dt.timezone.utc).date()


def _count(text: str) -> int:
    return 1 if text in ("a", "an", "one") else int(text)


def _minus_months(day: _dt.date, months: int) -> _dt.date:
    """The same day ``months`` earlier, clamped to the end of a shorter month (31 March - 1 month = 28/29 February)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    return _dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _minus(day: _dt.date, n: int, unit: str) -> _dt.date:
    if unit == "day":
        return day - _dt.timedelta(days=n)
    if unit == "week":
        return day - _dt.timedelta(weeks=n)
    return _minus_months(day, n * (12 if unit == "year" else 1))


def _period(unit: str, current: bool, today: _dt.date) -> tuple[_dt.date, _dt.date]:
    """The current (up to today) or the previous whole calendar day, week (Monday first), month or year."""
    if unit == "day":
        day = today if current else today - _dt.timedelta(days=1)
        return day, day
    if unit == "week":
        monday = today - _dt.timedelta(days=today.weekday())
        if current:
            return monday, today
        return monday - _dt.timedelta(weeks=1), monday - _dt.timedelta(days=1)
    if unit == "month":
        first = today.replace(day=1)
        if current:
            return first, today
        last = first - _dt.timedelta(days=1)
        return last.replace(day=1), last
    first_of_year = today.replace(month=1, day=1)
    if current:
        return first_of_year, today
    return first_of_year.replace(year=today.year - 1), first_of_year - _dt.timedelta(days=1)


def resolve_day(text: str, today: _dt.date | None = None) -> tuple[_dt.date, _dt.date] | None:
    """A date text as the (first, last) day it names (equal for a single day); None when it is not a date form."""
    today = today or today_utc()
    t = " ".join(text.lower().split())
    if t in ("today", "now"):
        return today, today
    if t == "yesterday":
        day = today - _dt.timedelta(days=1)
        return day, day
    m = _AGO.match(t)
    if m:
        day = _minus(today, _count(m.group(1)), m.group(2))
        return day, day
    m = _SHORT_AGO.match(t)
    if m:
        day = today - _dt.timedelta(days=int(m.group(1)))
        return day, day
    m = _LAST_N.match(t)
    if m:
        n = _count(m.group(1))
        if n < 1:
            return None
        return _minus(today, n, m.group(2)) + _dt.timedelta(days=1), today
    m = _PERIOD.match(t)
    if m:
        return _period(m.group(2), m.group(1) in ("this", "current"), today)
    try:
        if _COMPACT.match(t):
            day = _dt.date(int(t[:4]), int(t[4:6]), int(t[6:]))
            return day, day
        m = _ISO_DAY.match(t)
        if m:
            day = _dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            return day, day
        m = _ISO_MONTH.match(t)
        if m:
            year, month = int(m.group(1)), int(m.group(2))
            return _dt.date(year, month, 1), _dt.date(year, month, calendar.monthrange(year, month)[1])
    except ValueError:
        raise ValueError(f"{text!r} is not a real calendar date: {_HELP}") from None
    if t[:4].isdigit():
        try:
            moment = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is not None:
            moment = moment.astimezone(_dt.timezone.utc)
        return moment.date(), moment.date()
    return None


def yyyymmdd(day: _dt.date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def parse_day(value: Any, edge: Edge = "start", today: _dt.date | None = None) -> int:
    """Any accepted date form as a YYYYMMDD integer; a range form gives its first (``start``) or last (``end``) day."""
    if isinstance(value, bool):
        raise ValueError(f"a date cannot be a boolean: {_HELP}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        resolved = resolve_day(value, today)
        if resolved is None:
            raise ValueError(f"{value!r} is not a date: {_HELP}")
        return yyyymmdd(resolved[0] if edge == "start" else resolved[1])
    if not isinstance(value, int):
        raise ValueError(f"{value!r} is not a date: {_HELP}")
    if not 10000101 <= value <= 99991231:
        raise ValueError(f"{value} is not a date: a YYYYMMDD integer has 8 digits, e.g. 20261126")
    try:
        _dt.date(value // 10000, value // 100 % 100, value % 100)
    except ValueError:
        raise ValueError(f"{value} is not a real calendar date (YYYYMMDD)") from None
    return value


def parse_yyyymmdd(value: Any) -> int:
    """Accept 20261126, "20261126", "2026-11-26" or a relative day; return the YYYYMMDD integer of a real date."""
    return parse_day(value, "start")


def _start(value: Any) -> int:
    return parse_day(value, "start")


def _end(value: Any) -> int:
    return parse_day(value, "end")


def _by_field(value: Any, info: ValidationInfo) -> int:
    """``to`` (and ``*_to``, ``end``, ``until``) takes a range's last day; every other date field its first day."""
    name = (info.field_name or "").strip("_")
    end = name in ("to", "end", "until") or name.endswith(("_to", "_end"))
    return parse_day(value, "end" if end else "start")


def check_range(from_: int, to: int) -> None:
    if from_ > to:
        raise ValueError(f"'from' ({from_}) is after 'to' ({to}): swap them; both days are inclusive")


def to_date(value: int) -> _dt.date:
    return _dt.date(value // 10000, value // 100 % 100, value % 100)


# The input schema says "integer or string"; the field's description says which forms (kept short: it is paid on
# every request). The full list of forms is in the server's instructions (DATE_FORMS).
_DATE_SCHEMA = WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "string"}]})
FromDay = Annotated[int, BeforeValidator(_start), _DATE_SCHEMA]
ToDay = Annotated[int, BeforeValidator(_end), _DATE_SCHEMA]
# Picks the edge from the field's name (``from_`` first day, ``to`` last day): what shared inputs use.
Day = Annotated[int, BeforeValidator(_by_field), _DATE_SCHEMA]
FROM_DOC = "First day, inclusive: YYYYMMDD or relative ('30 days ago', 'last week')."
TO_DOC = "Last day, inclusive ('today')."


# -- timestamps in results ---------------------------------------------------------------------------------------------


def iso_epoch(value: Any) -> str | None:
    """Epoch seconds (or milliseconds) as ISO 8601 UTC ('2026-11-26T14:04:16Z'); None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        else:
            return None
    seconds = float(value)
    if seconds > 1e11:  # milliseconds
        seconds /= 1000
    if not 0 < seconds < 253402300800:
        return None
    return _dt.datetime.fromtimestamp(int(seconds), _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_HOURS: dict[str, str | None] = {}  # "yyyyMMddHH" -> "yyyy-MM-ddTHH:" (None: not a valid hour), bounded below


def iso_compact(value: Any) -> str | None:
    """CleverTap's compact times (yyyyMMddHHmmss, yyyyMMddHHmm or YYYYMMDD, int or string) as ISO 8601 UTC.

    Runs once per exported event, so fields are range-checked as fixed-width digit strings instead of building a
    datetime, and the checked date and hour of the common 14-digit form are remembered: a page's events share them."""
    if type(value) is int:
        s = str(value)
        if len(s) == 14:
            head = _HOURS.get(s[:10], "")
            if head == "":
                head = _hour(s)
            if head is not None and s[10:12] <= "59" and s[12:14] <= "59" and s[10:].isdigit():
                return f"{head}{s[10:12]}:{s[12:14]}Z"
            return None
    elif isinstance(value, str):
        s = value.strip()
    else:
        return None
    n = len(s)
    if n not in (8, 12, 14) or not s.isdigit():
        return None
    if not ("01" <= s[4:6] <= "12" and "01" <= s[6:8] <= "31"):
        return None
    day = f"{s[0:4]}-{s[4:6]}-{s[6:8]}"
    if n == 8:
        return day
    second = s[12:14] if n == 14 else "00"
    if not (s[8:10] <= "23" and s[10:12] <= "59" and second <= "59"):
        return None
    return f"{day}T{s[8:10]}:{s[10:12]}:{second}Z"


def _hour(s: str) -> str | None:
    head = s[:10]
    ok = head.isdigit() and "01" <= s[4:6] <= "12" and "01" <= s[6:8] <= "31" and s[8:10] <= "23"
    if len(_HOURS) >= 4096:
        _HOURS.clear()
    found = _HOURS[head] = f"{s[0:4]}-{s[4:6]}-{s[6:8]}T{s[8:10]}:" if ok else None
    return found


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

CONFIRM_DOC = "From the preview call."

ReqId = Annotated[str | int | None, WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "integer"}]})]
Number = int | float


def as_number(value: Any) -> Number | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return int(number) if number.is_integer() else number
    return None
