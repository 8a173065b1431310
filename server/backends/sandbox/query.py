"""CleverTap Query Language (reference §10) compiled to SQLite conditions over the sandbox schema.

Supported: ``event_name``, ``from``/``to``, ``event_properties`` and ``session_properties`` with the operators below,
and ``common_profile_properties`` with ``profile_fields``, ``demographics``, ``geo_fields`` and ``reachability``.
Anything else that would change the answer (``advanced_query``, ``geo_radius``, ``app_fields``, ``technographics``)
is refused with a clear error rather than silently ignored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class QueryError(ValueError):
    """The query is invalid; the message is safe to show to the API caller."""


OPERATORS = frozenset(
    {
        "equals",
        "not_equals",
        "contains",
        "not_contains",
        "greater_than",
        "less_than",
        "greater_than_equals",
        "less_than_equals",
        "between",
    }
)
_UNSUPPORTED_PROFILE_KEYS = ("geo_radius", "app_fields", "technographics")


@dataclass
class Sql:
    """A list of AND-ed SQL conditions with their positional parameters."""

    conds: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, cond: str, *params: Any) -> None:
        self.conds.append(cond)
        self.params.extend(params)

    def extend(self, other: Sql) -> None:
        self.conds.extend(other.conds)
        self.params.extend(other.params)

    def where(self) -> str:
        return " AND ".join(self.conds) if self.conds else "1"


def json_path(name: str) -> str:
    """A JSON path selecting one top-level key (SQLite's quoted labels cannot hold a double quote)."""
    if '"' in name:
        raise QueryError(f"Unsupported property name: {name}")
    return '$."' + name + '"'


def parse_day(value: Any, field_name: str) -> int:
    """Validate a YYYYMMDD date (int, or a string of 8 digits) and return it as an int."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise QueryError(f"'{field_name}' must be a date in YYYYMMDD format")
    text = str(value)
    if len(text) != 8 or not text.isdigit():
        raise QueryError(f"'{field_name}' must be a date in YYYYMMDD format")
    try:
        dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise QueryError(f"'{field_name}' is not a valid calendar date: {text}") from None
    return int(text)


def parse_range(body: Mapping[str, Any]) -> tuple[int, int]:
    if "from" not in body or "to" not in body:
        raise QueryError("'from' and 'to' are mandatory")
    start, end = parse_day(body["from"], "from"), parse_day(body["to"], "to")
    if start > end:
        raise QueryError("'from' must not be after 'to'")
    return start, end


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return None
    return None


def _scalars(value: Any) -> list[Any]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    out: list[Any] = []
    for v in values:
        if isinstance(v, (dict, list)):
            raise QueryError("property values must be strings, numbers or booleans")
        out.append(v)
        n = _number(v) if isinstance(v, str) else None
        if n is not None:
            out.append(n)
    return out


def condition(expr: str, operator: str, value: Any) -> tuple[str, list[Any]]:
    """One ``{name, operator, value}`` filter on ``expr`` (a JSON-extracted SQL expression)."""
    if operator not in OPERATORS:
        raise QueryError(f"Unsupported operator: {operator}")
    if operator in ("equals", "not_equals"):
        values = _scalars(value)
        if not values:
            raise QueryError("'value' must not be empty")
        marks = ",".join("?" * len(values))
        if operator == "equals":
            return f"{expr} IN ({marks})", values
        return f"({expr} IS NULL OR {expr} NOT IN ({marks}))", values
    if operator in ("contains", "not_contains"):
        needles = [str(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
        if not needles:
            raise QueryError("'value' must not be empty")
        any_sql = " OR ".join(f"instr(lower(CAST({expr} AS TEXT)), lower(?)) > 0" for _ in needles)
        if operator == "contains":
            return f"({any_sql})", needles
        return f"({expr} IS NULL OR NOT ({any_sql}))", needles
    numeric = f"typeof({expr}) IN ('integer','real')"
    if operator == "between":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise QueryError("'between' needs a [low, high] value")
        low, high = _number(value[0]), _number(value[1])
        if low is None or high is None:
            raise QueryError("'between' bounds must be numbers")
        return f"({numeric} AND {expr} BETWEEN ? AND ?)", [low, high]
    bound = _number(value)
    if bound is None:
        raise QueryError(f"'{operator}' needs a numeric value")
    sym = {"greater_than": ">", "less_than": "<", "greater_than_equals": ">=", "less_than_equals": "<="}[operator]
    return f"({numeric} AND {expr} {sym} ?)", [bound]


def sql_literal(text: str) -> str:
    """A SQL string literal (quotes doubled), for JSON paths built from caller-supplied property names."""
    return "'" + text.replace("'", "''") + "'"


def extract(column: str, name: str) -> str:
    return f"json_extract({column}, {sql_literal(json_path(name))})"


def _filters(items: Any, column: str, what: str) -> Sql:
    sql = Sql()
    if items is None:
        return sql
    if not isinstance(items, list):
        raise QueryError(f"'{what}' must be a list")
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or "value" not in item:
            raise QueryError(f"each entry of '{what}' needs 'name' and 'value'")
        cond, params = condition(extract(column, item["name"]), str(item.get("operator", "equals")), item["value"])
        sql.add(cond, *params)
    return sql


_DEMOGRAPHIC_KEYS = {
    "gender": "Gender",
    "age": "Age",
    "city": "City",
    "state": "State",
    "country": "Country",
    "name": "Name",
    "customer type": "Customer Type",
}
_TRUE_STRINGS = {"true", "1", "yes"}


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in _TRUE_STRINGS) or value == 1


def profile_conditions(cpp: Any) -> Sql:
    """``common_profile_properties`` as conditions on ``profiles p``."""
    sql = Sql()
    if cpp is None:
        return sql
    if not isinstance(cpp, Mapping):
        raise QueryError("'common_profile_properties' must be an object")
    for key in _UNSUPPORTED_PROFILE_KEYS:
        if cpp.get(key):
            raise QueryError(f"common_profile_properties.{key} is not supported by the sandbox")
    sql.extend(_filters(cpp.get("profile_fields"), "p.data", "profile_fields"))
    demographics = cpp.get("demographics")
    if demographics is not None:
        if not isinstance(demographics, list):
            raise QueryError("'demographics' must be a list")
        mapped = [
            {**d, "name": _DEMOGRAPHIC_KEYS.get(str(d.get("name", "")).lower(), d.get("name"))}
            for d in demographics
            if isinstance(d, Mapping)
        ]
        sql.extend(_filters(mapped, "p.data", "demographics"))
    geo = cpp.get("geo_fields")
    if geo is not None:
        if not isinstance(geo, list) or not all(isinstance(g, list) for g in geo):
            raise QueryError("'geo_fields' must be a list of [country, state, city] lists")
        alternatives: list[str] = []
        for entry in geo:
            parts = Sql()
            for key, value in zip(("Country", "State", "City"), entry[:3], strict=False):
                if value not in (None, ""):
                    parts.add(f"{extract('p.data', key)} = ?", value)
            if parts.conds:
                alternatives.append("(" + parts.where() + ")")
                sql.params.extend(parts.params)
        if alternatives:
            sql.conds.append("(" + " OR ".join(alternatives) + ")")
    reach = cpp.get("reachability")
    if reach is not None:
        if not isinstance(reach, list):
            raise QueryError("'reachability' must be a list")
        for item in reach:
            name = item.get("name") if isinstance(item, Mapping) else None
            want = _truthy(item.get("value", True)) if isinstance(item, Mapping) else True
            if name == "has_token":
                cond = "EXISTS (SELECT 1 FROM devices d WHERE d.pid = p.pid AND d.push_token IS NOT NULL)"
            elif name == "has_email":
                cond = "p.email IS NOT NULL"
            elif name == "has_phone":
                cond = "p.phone IS NOT NULL"
            else:
                raise QueryError(f"Unsupported reachability filter: {name}")
            sql.add(cond if want else f"NOT ({cond})")
    return sql


def session_conditions(items: Any) -> Sql:
    sql = Sql()
    if items is None:
        return sql
    if not isinstance(items, list):
        raise QueryError("'session_properties' must be a list")
    plain: list[Any] = []
    for item in items:
        if isinstance(item, Mapping) and item.get("name") == "time_of_day":
            value = item.get("value")
            if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
                raise QueryError('time_of_day needs a ["HH:MM", "HH:MM"] value')
            sql.add("strftime('%H:%M', e.ts, 'unixepoch') BETWEEN ? AND ?", value[0], value[1])
        elif isinstance(item, Mapping) and item.get("name") == "first_time":
            raise QueryError("session_properties.first_time is not supported by the sandbox")
        else:
            plain.append(item)
    sql.extend(_filters(plain, "e.session", "session_properties"))
    return sql


@dataclass
class Query:
    """A parsed Query Language body."""

    event_name: str | None
    start: int | None
    end: int | None
    event_sql: Sql
    profile_sql: Sql

    def events_where(self) -> Sql:
        """Conditions on ``events e`` selecting the matching events."""
        sql = Sql()
        if self.event_name is not None:
            sql.add("e.name = ?", self.event_name)
        if self.start is not None and self.end is not None:
            sql.add("e.day BETWEEN ? AND ?", self.start, self.end)
        sql.extend(self.event_sql)
        if self.profile_sql.conds:
            sql.add(
                f"e.pid IN (SELECT p.pid FROM profiles p WHERE {self.profile_sql.where()})", *self.profile_sql.params
            )
        return sql

    def profiles_where(self) -> Sql:
        """Conditions on ``profiles p`` selecting the matching profiles (who did the event, if one is named)."""
        sql = Sql()
        sql.extend(self.profile_sql)
        if self.event_name is not None:
            inner = Sql()
            inner.add("e.name = ?", self.event_name)
            if self.start is not None and self.end is not None:
                inner.add("e.day BETWEEN ? AND ?", self.start, self.end)
            inner.extend(self.event_sql)
            sql.add(f"p.pid IN (SELECT e.pid FROM events e WHERE {inner.where()})", *inner.params)
        return sql


def parse_query(body: Any, *, require_event: bool = True) -> Query:
    """Parse and validate a Query Language body; raises QueryError."""
    if not isinstance(body, Mapping):
        raise QueryError("The query must be a JSON object")
    if body.get("advanced_query"):
        raise QueryError("advanced_query is not supported by the sandbox")
    name = body.get("event_name")
    if name is not None and (not isinstance(name, str) or not name):
        raise QueryError("'event_name' must be a non-empty string")
    if name is None and require_event:
        raise QueryError("'event_name' is mandatory")
    start = end = None
    if name is not None or "from" in body or "to" in body:
        start, end = parse_range(body)
    event_sql = _filters(body.get("event_properties"), "e.props", "event_properties")
    event_sql.extend(session_conditions(body.get("session_properties")))
    if name is None and event_sql.conds:
        raise QueryError("event_properties need an 'event_name'")
    return Query(name, start, end, event_sql, profile_conditions(body.get("common_profile_properties")))


def day_keys(start: int, end: int) -> list[dt.date]:
    """Every date from ``start`` to ``end`` (YYYYMMDD ints), inclusive."""
    first = dt.date(start // 10000, start // 100 % 100, start % 100)
    last = dt.date(end // 10000, end // 100 % 100, end % 100)
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def as_list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else [value]
