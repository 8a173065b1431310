"""CleverTap Query Language (reference §10, developer.clevertap.com/docs/clevertap-query-language) compiled to SQLite.

One compiler serves every endpoint that takes a query (counts, trends, top, both exports, campaign ``where`` and
estimates), in process (``--sandbox``) and over HTTP (``sandbox serve``) alike.

Semantics (where the docs are silent, the choice is written here and in the README):
* Filters are AND-ed; a list ``value`` means "any of" (for ``not_equals`` / ``does_not_contain``: "none of").
* ``equals`` / ``not_equals`` compare strings case-sensitively and numbers numerically (a numeric string also matches
  the number); booleans are written ``"True"`` / ``"False"`` (any case) or as JSON booleans.
* ``contains`` / ``does_not_contain`` (alias ``not_contains``) look for a substring of a string value, ignoring case.
* ``greater_than``, ``less_than``, ``greater_than_equals``, ``less_than_equals`` and ``between`` ([low, high],
  inclusive) only match numeric values. ``exists`` / ``does_not_exist`` (alias ``not_exists``) need no value.
* A missing property never matches a positive operator and always matches a negated one.
* ``technographics`` and ``app_fields`` (device attributes) and ``demographics`` / ``geo_fields`` values compare
  without regard to case; ``Gender`` accepts ``Male``/``Female`` as well as ``M``/``F``; a profile matches a device
  filter when any of its devices does.
* ``session_properties``: ``first_time`` is true for events on the user's first day of activity (the store keeps no
  session boundaries); ``time_of_day`` ["HH:MM", "HH:MM"] is in UTC, the demo account's timezone.
* Without ``event_name``, a query with profile or advanced filters selects people who did any event in the past 365
  days (as documented); ``where: {}`` of a campaign is the whole user base. Event endpoints need ``event_name``.
* ``advanced_query``: ``did_all`` (every block), ``did_none`` (no block), ``did_any`` (``any_events``; with an
  ``operator``/``value`` on ``did_any`` itself, the occurrences of all its blocks are added up). A block counts the
  user's events named ``event_name`` between its own ``from``/``to`` that match its ``event_properties``, and compares
  that count with its ``operator``/``value`` (default: at least once).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class QueryError(ValueError):
    """The query is invalid; the message is safe to show to the API caller."""


ALIASES = {
    "does_not_contain": "not_contains",
    "does_not_exist": "not_exists",
    "not_exist": "not_exists",
    "greater_than_or_equals": "greater_than_equals",
    "less_than_or_equals": "less_than_equals",
}
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
        "exists",
        "not_exists",
    }
)
COMPARE = {"greater_than": ">", "less_than": "<", "greater_than_equals": ">=", "less_than_equals": "<="}
PROFILE_GROUPS = (
    "profile_fields",
    "demographics",
    "technographics",
    "app_fields",
    "reachability",
    "geo_fields",
    "geo_radius",
)
DEMOGRAPHICS = {
    "gender": "Gender",
    "age": "Age",
    "education": "Education",
    "married": "Married",
    "employed": "Employed",
    "city": "City",
    "state": "State",
    "region": "State",
    "country": "Country",
    "name": "Name",
    "customer type": "Customer Type",
}
GENDERS = {"m": "M", "male": "M", "f": "F", "female": "F"}
# Device attributes (technographics, app_fields): query name -> devices column.
DEVICE_FIELDS = {
    "device": "device_type",
    "device type": "device_type",
    "platform": "platform",
    "os": "os",
    "operating system": "os",
    "os version": "os_version",
    "app version": "app_version",
    "make": "make",
    "brand": "make",
    "model": "model",
    "browser": "browser",
}
DEVICE_OPERATORS = frozenset({"equals", "not_equals", "contains", "not_contains", "exists", "not_exists"})
# Reachability names -> (SQL on profiles p, its MSG-* opt-out key or None).
_TOKEN = "EXISTS (SELECT 1 FROM devices d WHERE d.pid = p.pid AND d.push_token IS NOT NULL)"
REACHABILITY: dict[str, tuple[str, str | None]] = {
    "has_token": (_TOKEN, None),
    "has_email": ("p.email IS NOT NULL", None),
    "has_phone": ("p.phone IS NOT NULL", None),
    "push": (_TOKEN, "MSG-push"),
    "email": ("p.email IS NOT NULL", "MSG-email"),
    "sms": ("p.phone IS NOT NULL", "MSG-sms"),
    "whatsapp": ("p.phone IS NOT NULL", "MSG-whatsapp"),
}
for _channel in ("push", "email", "sms", "whatsapp"):
    REACHABILITY[f"{_channel}_subscribable"] = REACHABILITY[f"reachable_by_{_channel}"] = REACHABILITY[_channel]
EARTH_KM = 6371.0088
BASE_DAYS = 365


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


def sql_literal(text: str) -> str:
    """A SQL string literal (quotes doubled), for JSON paths built from caller-supplied property names."""
    return "'" + text.replace("'", "''") + "'"


def extract(column: str, name: str) -> str:
    return f"json_extract({column}, {sql_literal(json_path(name))})"


def km_between(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> float | None:
    """Great-circle distance in km (haversine); registered in SQLite as ``ct_km``."""
    if lat1 is None or lon1 is None or lat2 is None or lon2 is None:
        return None
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(h)))


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


def parse_range(body: Mapping[str, Any], where: str = "") -> tuple[int, int]:
    if "from" not in body or "to" not in body:
        raise QueryError(f"'{where}from' and '{where}to' are mandatory")
    start, end = parse_day(body["from"], f"{where}from"), parse_day(body["to"], f"{where}to")
    if start > end:
        raise QueryError(f"'{where}from' must not be after '{where}to'")
    return start, end


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            n = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return None
        return n if math.isfinite(n) else None
    return None


def _bool_text(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _values(value: Any, what: str) -> list[Any]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise QueryError(f"{what}: 'value' must not be an empty list")
    for v in values:
        if v is None or isinstance(v, (dict, list)):
            raise QueryError(f"{what}: values must be strings, numbers or booleans (or a list of them)")
    return values


def operator_of(item: Mapping[str, Any], what: str, default: str = "equals") -> str:
    raw = item.get("operator", default)
    op = ALIASES.get(str(raw).lower(), str(raw).lower()) if isinstance(raw, str) else None
    if op not in OPERATORS:
        raise QueryError(
            f"{what}: unsupported operator {raw!r}; use equals, not_equals, contains, does_not_contain, "
            "greater_than, less_than, greater_than_equals, less_than_equals, between, exists or does_not_exist"
        )
    return op


def json_condition(column: str, name: str, op: str, value: Any, what: str) -> tuple[str, list[Any]]:
    """One ``{name, operator, value}`` filter on the JSON object in ``column``."""
    path = sql_literal(json_path(name))
    expr, kind = f"json_extract({column}, {path})", f"json_type({column}, {path})"
    if op in ("exists", "not_exists"):
        cond = f"coalesce({kind}, 'null') != 'null'"
        return (cond, []) if op == "exists" else (f"NOT ({cond})", [])
    if op in ("equals", "not_equals"):
        values = _values(value, what)
        parts: list[str] = []
        params: list[Any] = []
        texts = [v for v in values if isinstance(v, str)]
        numbers = [n for v in values if (n := _number(v)) is not None]
        for flag in {b for v in values if (b := _bool_text(v)) is not None}:
            parts.append(f"{kind} = '{'true' if flag else 'false'}'")
        if texts:
            parts.append(f"({kind} = 'text' AND {expr} IN ({','.join('?' * len(texts))}))")
            params.extend(texts)
        if numbers:
            parts.append(f"({kind} IN ('integer','real') AND {expr} IN ({','.join('?' * len(numbers))}))")
            params.extend(numbers)
        cond = "coalesce(" + (" OR ".join(parts) or "0") + ", 0)"  # a missing property is NULL: not a match
        return (cond, params) if op == "equals" else (f"NOT {cond}", params)
    if op in ("contains", "not_contains"):
        needles = [str(v).lower() for v in _values(value, what)]
        any_sql = " OR ".join(f"instr(lower({expr}), ?) > 0" for _ in needles)
        cond = f"coalesce({kind} = 'text' AND ({any_sql}), 0)"
        return (cond, needles) if op == "contains" else (f"NOT {cond}", needles)
    numeric = f"{kind} IN ('integer','real')"
    if op == "between":
        low, high = _bounds(value, what)
        return f"({numeric} AND {expr} BETWEEN ? AND ?)", [low, high]
    bound = _number(value)
    if bound is None:
        raise QueryError(f"{what}: '{op}' needs a numeric value")
    return f"({numeric} AND {expr} {COMPARE[op]} ?)", [bound]


def _bounds(value: Any, what: str) -> tuple[float | int, float | int]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise QueryError(f"{what}: 'between' needs a [low, high] value")
    low, high = _number(value[0]), _number(value[1])
    if low is None or high is None:
        raise QueryError(f"{what}: 'between' bounds must be numbers")
    return low, high


def _platform(value: str) -> str:
    """``AndroidApp`` -> ``android``, ``iOSApp`` -> ``ios``, ``WebApp`` / ``Website`` -> ``web``."""
    text = value.strip().lower()
    if text in ("website", "webapp", "web app"):
        return "web"
    return text.removesuffix("app").strip() or text


def device_condition(column: str, op: str, value: Any, what: str) -> tuple[str, list[Any]]:
    """A filter on a ``devices d`` column (case-insensitive text)."""
    if op not in DEVICE_OPERATORS:
        raise QueryError(f"{what}: '{op}' does not apply to device fields; use equals, not_equals, contains, "
                         "does_not_contain, exists or does_not_exist")  # fmt: skip
    expr = f"d.{column}"
    if op in ("exists", "not_exists"):
        return (f"{expr} IS NOT NULL" if op == "exists" else f"{expr} IS NULL"), []
    raw = [str(v) for v in _values(value, what)]
    texts = [_platform(v) if column == "platform" else v.lower() for v in raw]
    if op in ("equals", "not_equals"):
        cond = f"lower({expr}) IN ({','.join('?' * len(texts))})"
    else:
        cond = "(" + " OR ".join(f"instr(lower({expr}), ?) > 0" for _ in texts) + ")"
    return cond, texts


def _entries(items: Any, what: str) -> list[Mapping[str, Any]]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise QueryError(f"'{what}' must be a list of {{name, operator, value}} objects")
    out: list[Mapping[str, Any]] = []
    for item in items:
        name = item.get("name", item.get("Key", item.get("key"))) if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            raise QueryError(f"each entry of '{what}' needs a 'name'")
        out.append({**item, "name": name})
    return out


def _needs_value(item: Mapping[str, Any], op: str, what: str) -> None:
    if op not in ("exists", "not_exists") and "value" not in item:
        raise QueryError(f"{what}: '{op}' needs a 'value'")


def property_filters(items: Any, column: str, what: str) -> Sql:
    """``event_properties`` / ``profile_fields``-style filters on a JSON column."""
    sql = Sql()
    for item in _entries(items, what):
        label = f"{what}.{item['name']}"
        op = operator_of(item, label)
        _needs_value(item, op, label)
        cond, params = json_condition(column, item["name"], op, item.get("value"), label)
        sql.add(cond, *params)
    return sql


def _demographics(items: Any) -> Sql:
    sql = Sql()
    for item in _entries(items, "demographics"):
        key = DEMOGRAPHICS.get(item["name"].strip().lower())
        label = f"demographics.{item['name']}"
        if key is None:
            raise QueryError(
                f"{label}: unknown demographic; use one of {', '.join(sorted(set(DEMOGRAPHICS.values())))}"
            )
        op = operator_of(item, label)
        _needs_value(item, op, label)
        value = item.get("value")
        if key == "Gender" and op in ("equals", "not_equals"):
            value = [GENDERS.get(str(v).strip().lower(), v) for v in _values(value, label)]
        if key in ("Country", "State", "City", "Education", "Married", "Employed") and op in ("equals", "not_equals"):
            # Case-insensitive: compare lower-cased texts.
            texts = [str(v).lower() for v in _values(value, label)]
            cond = f"lower(CAST({extract('p.data', key)} AS TEXT)) IN ({','.join('?' * len(texts))})"
            cond = f"coalesce({cond}, 0)"
            sql.add(cond if op == "equals" else f"NOT {cond}", *texts)
            continue
        cond, params = json_condition("p.data", key, op, value, label)
        sql.add(cond, *params)
    return sql


def _devices(items: Any, what: str) -> Sql:
    sql = Sql()
    for item in _entries(items, what):
        column = DEVICE_FIELDS.get(item["name"].strip().lower().replace("_", " "))
        label = f"{what}.{item['name']}"
        if column is None:
            raise QueryError(f"{label}: unknown field; use one of Device, Platform, OS, OS Version, App Version, "
                             "Make, Model, Browser")  # fmt: skip
        op = operator_of(item, label)
        _needs_value(item, op, label)
        negated = op in ("not_equals", "not_contains")
        positive = {"not_equals": "equals", "not_contains": "contains"}.get(op, op)
        cond, params = device_condition(column, positive, item.get("value"), label)
        exists = f"EXISTS (SELECT 1 FROM devices d WHERE d.pid = p.pid AND {cond})"
        sql.add(f"NOT {exists}" if negated else exists, *params)
    return sql


def _reachability(items: Any) -> Sql:
    sql = Sql()
    if items is None:
        return sql
    if not isinstance(items, list):
        raise QueryError("'reachability' must be a list of {name, value} objects")
    for item in items:
        name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or name.strip().lower() not in REACHABILITY:
            raise QueryError(f"reachability: unknown name {name!r}; use one of {', '.join(sorted(REACHABILITY))}")
        want = _bool_text(item.get("value", "True"))
        if want is None:
            raise QueryError(f'reachability.{name}: \'value\' must be "True" or "False"')
        cond, opt_out = REACHABILITY[name.strip().lower()]
        if opt_out is not None:
            cond = f"({cond} AND coalesce(json_type(p.data, {sql_literal(json_path(opt_out))}), '') != 'false')"
        sql.add(cond if want else f"NOT ({cond})")
    return sql


def _geo_fields(geo: Any) -> Sql:
    sql = Sql()
    if geo is None:
        return sql
    if not isinstance(geo, list) or not all(isinstance(g, list) and 1 <= len(g) <= 3 for g in geo) or not geo:
        raise QueryError("'geo_fields' must be a list of [country, region, city] lists (region and city optional)")
    alternatives: list[str] = []
    for entry in geo:
        parts = Sql()
        for key, value in zip(("Country", "State", "City"), entry, strict=False):
            if value in (None, ""):
                continue
            if not isinstance(value, str):
                raise QueryError("geo_fields: country, region and city must be strings")
            parts.add(f"lower(coalesce({extract('p.data', key)}, '')) = ?", value.lower())
        if not parts.conds:
            raise QueryError("geo_fields: each entry needs at least a country")
        alternatives.append("(" + parts.where() + ")")
        sql.params.extend(parts.params)
    sql.conds.append("(" + " OR ".join(alternatives) + ")")
    return sql


def _geo_radius(geo: Any) -> Sql:
    sql = Sql()
    if geo is None:
        return sql
    ok = isinstance(geo, list) and geo and all(
        isinstance(g, list) and len(g) == 3 and all(_number(v) is not None and not isinstance(v, str) for v in g)
        for g in geo
    )  # fmt: skip
    if not ok:
        raise QueryError("'geo_radius' must be a list of [latitude, longitude, radius_km] number lists")
    alternatives = []
    for lat, lon, km in geo:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180 and km > 0):
            raise QueryError("geo_radius: latitude -90..90, longitude -180..180 and a positive radius in km")
        alternatives.append("ct_km(p.lat, p.lon, ?, ?) <= ?")
        sql.params.extend([lat, lon, km])
    sql.conds.append("(" + " OR ".join(alternatives) + ")")
    return sql


def profile_conditions(cpp: Any) -> Sql:
    """``common_profile_properties`` as conditions on ``profiles p``."""
    sql = Sql()
    if cpp is None:
        return sql
    if not isinstance(cpp, Mapping):
        raise QueryError("'common_profile_properties' must be an object")
    unknown = set(cpp) - set(PROFILE_GROUPS)
    if unknown:
        raise QueryError(f"common_profile_properties: unknown keys {sorted(unknown)}; use {', '.join(PROFILE_GROUPS)}")
    sql.extend(property_filters(cpp.get("profile_fields"), "p.data", "profile_fields"))
    sql.extend(_demographics(cpp.get("demographics")))
    sql.extend(_devices(cpp.get("technographics"), "technographics"))
    sql.extend(_devices(cpp.get("app_fields"), "app_fields"))
    sql.extend(_reachability(cpp.get("reachability")))
    sql.extend(_geo_fields(cpp.get("geo_fields")))
    sql.extend(_geo_radius(cpp.get("geo_radius")))
    return sql


def session_conditions(items: Any) -> Sql:
    """``session_properties`` as conditions on ``events e`` (session properties live in ``sessions``)."""
    sql = Sql()
    plain = []
    for item in _entries(items, "session_properties"):
        name = item["name"]
        if name == "time_of_day":
            value = item.get("value")
            if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
                raise QueryError('session_properties.time_of_day needs a ["HH:MM", "HH:MM"] value')
            sql.add("strftime('%H:%M', e.ts, 'unixepoch') BETWEEN ? AND ?", value[0], value[1])
        elif name == "first_time":
            want = _bool_text(item.get("value", "True"))
            if want is None:
                raise QueryError('session_properties.first_time: \'value\' must be "True" or "False"')
            # The user's first day of activity (one pass over the events, then a lookup per row).
            first = "(e.pid, e.day) IN (SELECT x.pid, MIN(x.day) FROM events x GROUP BY x.pid)"
            sql.add(first if want else f"NOT ({first})")
        else:
            plain.append(item)
    inner = property_filters(plain, "s.data", "session_properties")
    for cond, params in _split(inner):
        sql.add(f"e.sid IN (SELECT s.sid FROM sessions s WHERE {cond})", *params)
    return sql


def _split(sql: Sql) -> list[tuple[str, list[Any]]]:
    """Each condition with its own parameters (conditions are compiled one by one, parameters in order)."""
    out: list[tuple[str, list[Any]]] = []
    params = list(sql.params)
    for cond in sql.conds:
        n = cond.count("?")
        out.append((cond, params[:n]))
        params = params[n:]
    return out


def _count_test(item: Mapping[str, Any], what: str) -> tuple[str, list[Any]]:
    """The occurrence test of a block: `` >= 1`` by default, else its operator/value on the count."""
    if "operator" not in item and "value" not in item:
        return ">= 1", []
    op = operator_of(item, what)
    if op in ("equals", "not_equals"):
        n = _number(item.get("value"))
        if n is None:
            raise QueryError(f"{what}: 'value' must be a number of occurrences")
        return ("= ?" if op == "equals" else "!= ?"), [n]
    if op == "between":
        low, high = _bounds(item.get("value"), what)
        return "BETWEEN ? AND ?", [low, high]
    if op in COMPARE:
        n = _number(item.get("value"))
        if n is None:
            raise QueryError(f"{what}: 'value' must be a number of occurrences")
        return f"{COMPARE[op]} ?", [n]
    raise QueryError(f"{what}: occurrence operator must be equals, not_equals, greater_than, less_than, "
                     "greater_than_equals, less_than_equals or between")  # fmt: skip


def _block_count(block: Any, what: str) -> tuple[str, list[Any]]:
    """SQL counting a profile's events that match one advanced-query block."""
    if not isinstance(block, Mapping):
        raise QueryError(f"{what}: each block must be an object with event_name, from and to")
    name = block.get("event_name")
    if not isinstance(name, str) or not name:
        raise QueryError(f"{what}: 'event_name' is mandatory in each block")
    start, end = parse_range(block, f"{what}.")
    inner = Sql()
    inner.add("x.name = ?", name)
    inner.add("x.day BETWEEN ? AND ?", start, end)
    inner.extend(property_filters(block.get("event_properties"), "x.props", f"{what}.event_properties"))
    return f"(SELECT COUNT(*) FROM events x WHERE x.pid = p.pid AND {inner.where()})", inner.params


def advanced_conditions(advanced: Any) -> Sql:
    """``advanced_query`` (did_all / did_any / did_none) as conditions on ``profiles p``."""
    sql = Sql()
    if advanced is None:
        return sql
    if not isinstance(advanced, Mapping):
        raise QueryError("'advanced_query' must be an object with did_all, did_any and/or did_none")
    unknown = set(advanced) - {"did_all", "did_any", "did_none"}
    if unknown:
        raise QueryError(f"advanced_query: unknown keys {sorted(unknown)}; use did_all, did_any, did_none")
    for key in ("did_all", "did_none"):
        blocks = advanced.get(key)
        if blocks is None:
            continue
        if not isinstance(blocks, list) or not blocks:
            raise QueryError(f"advanced_query.{key} must be a non-empty list of blocks")
        for i, block in enumerate(blocks):
            what = f"advanced_query.{key}[{i}]"
            count, params = _block_count(block, what)
            test, test_params = _count_test(block, what)
            cond = f"{count} {test}"
            sql.add(cond if key == "did_all" else f"NOT ({cond})", *params, *test_params)
    any_of = advanced.get("did_any")
    if any_of is not None:
        blocks = any_of.get("any_events") if isinstance(any_of, Mapping) else None
        if not isinstance(blocks, list) or not blocks:
            raise QueryError("advanced_query.did_any must be an object with a non-empty 'any_events' list")
        counts = [_block_count(b, f"advanced_query.did_any.any_events[{i}]") for i, b in enumerate(blocks)]
        assert isinstance(any_of, Mapping)
        if "operator" in any_of or "value" in any_of:
            test, test_params = _count_test(any_of, "advanced_query.did_any")
            total = " + ".join(c for c, _ in counts)
            sql.add(f"({total}) {test}", *[p for _, ps in counts for p in ps], *test_params)
        else:
            parts, params = [], []
            for i, (block, (count, block_params)) in enumerate(zip(blocks, counts, strict=True)):
                test, test_params = _count_test(block, f"advanced_query.did_any.any_events[{i}]")
                parts.append(f"{count} {test}")
                params.extend([*block_params, *test_params])
            sql.add("(" + " OR ".join(parts) + ")", *params)
    return sql


TOP_PROPERTY_TYPES = (
    "event_properties",
    "profile_fields",
    "session_properties",
    "demographics",
    "technographics",
    "app_fields",
    "geo_fields",
    "reachability",
)
_PROFILE_JOIN = " JOIN profiles p ON p.pid = e.pid"
_GEO = {"country": "Country", "region": "State", "state": "State", "city": "City"}


def top_expression(property_type: str, name: str) -> tuple[str, str]:
    """For ``counts/top.json``: the SQL value of property ``name`` of ``property_type`` for an event ``e``, and the
    joins it needs."""
    key = name.strip().lower()
    if property_type == "event_properties":
        return extract("e.props", name), ""
    if property_type == "session_properties":
        return extract("s.data", name), " JOIN sessions s ON s.sid = e.sid"
    if property_type == "profile_fields":
        return extract("p.data", name), _PROFILE_JOIN
    if property_type in ("demographics", "geo_fields"):
        mapped = (DEMOGRAPHICS if property_type == "demographics" else _GEO).get(key)
        if mapped is None:
            raise QueryError(f"groups: unknown {property_type} name {name!r}")
        return extract("p.data", mapped), _PROFILE_JOIN
    if property_type in ("technographics", "app_fields"):
        column = DEVICE_FIELDS.get(key.replace("_", " "))
        if column is None:
            raise QueryError(f"groups: unknown {property_type} name {name!r}")
        return f"d.{column}", " JOIN devices d ON d.did = e.did"
    if property_type == "reachability":
        if key not in REACHABILITY:
            raise QueryError(f"groups: unknown reachability name {name!r}")
        cond, opt_out = REACHABILITY[key]
        if opt_out is not None:
            cond = f"({cond} AND coalesce(json_type(p.data, {sql_literal(json_path(opt_out))}), '') != 'false')"
        return f"CASE WHEN {cond} THEN 'True' ELSE 'False' END", _PROFILE_JOIN
    raise QueryError(f"groups: property_type must be one of {', '.join(TOP_PROPERTY_TYPES)}")


@dataclass
class Query:
    """A parsed Query Language body."""

    event_name: str | None
    start: int | None
    end: int | None
    event_sql: Sql
    profile_sql: Sql
    # Without an event: profiles must have done any event on or after this day (None: every profile).
    base_day: int | None = None

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
        elif self.base_day is not None:
            sql.add("EXISTS (SELECT 1 FROM events e WHERE e.pid = p.pid AND e.day >= ?)", self.base_day)
        return sql


def parse_query(
    body: Any,
    *,
    require_event: bool = True,
    empty_is_everyone: bool = False,
    today: Callable[[], dt.date] | None = None,
) -> Query:
    """Parse and validate a Query Language body; raises QueryError.

    ``require_event=False`` is for the people endpoints (profile export and count, campaign ``where``), where the base
    query may be left out when profile or advanced filters are given; ``empty_is_everyone`` lets ``{}`` select every
    profile (a campaign's ``where``).
    """
    if not isinstance(body, Mapping):
        raise QueryError("The query must be a JSON object")
    name = body.get("event_name")
    if name is not None and (not isinstance(name, str) or not name):
        raise QueryError("'event_name' must be a non-empty string")
    cpp, advanced = body.get("common_profile_properties"), body.get("advanced_query")
    if name is None and (require_event or (not cpp and not advanced and (body or not empty_is_everyone))):
        raise QueryError("'event_name' is mandatory")
    start = end = None
    if name is not None or "from" in body or "to" in body:
        start, end = parse_range(body)
    # "props" is the older name of event_properties (CleverTap's own export example still sends it).
    props = body.get("event_properties", body.get("props"))
    event_sql = property_filters(props, "e.props", "event_properties")
    event_sql.extend(session_conditions(body.get("session_properties")))
    if name is None and event_sql.conds:
        raise QueryError("event_properties and session_properties need an 'event_name'")
    profile_sql = profile_conditions(cpp)
    profile_sql.extend(advanced_conditions(advanced))
    base_day = None
    if name is None and body:
        first = (today or _utc_today)() - dt.timedelta(days=BASE_DAYS)
        base_day = int(first.strftime("%Y%m%d"))
    return Query(name, start, end, event_sql, profile_sql, base_day)


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def day_keys(start: int, end: int) -> list[dt.date]:
    """Every date from ``start`` to ``end`` (YYYYMMDD ints), inclusive."""
    first = dt.date(start // 10000, start // 100 % 100, start % 100)
    last = dt.date(end // 10000, end // 100 % 100, end % 100)
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def as_list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else [value]
