"""Hypothesis strategies: arguments built from a tool's published JSON Schema, and hostile JSON values.

``from_schema`` understands the subset of JSON Schema the tools publish (objects, arrays, strings with formats,
integers and numbers with bounds, enums, const, ``anyOf``/``oneOf``, type lists, local ``$ref``s). Sizes are capped
so that examples stay small; the hostile values (``HOSTILE``) bring the big ones.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

MAX_ITEMS = 4
MAX_TEXT = 40

# Odd unicode: RTL override and mark, zero-width joiner, BOM, emoji (with a skin tone and a flag), combining marks,
# a non-character, a character outside the BMP.
ODD_TEXT = [
    "\u202eevil\u202c",
    "\u200fCharged\u200e",
    "a\u200db",
    "\ufeffCharged",
    "💥🧨👩🏽‍💻🇫🇷",
    "e\u0301\u0301\u0301\u0327",
    "Z\u0351\u0352\u0353\u0354\u0355\u0356\u0357\u0358\u0359",
    "\uffff\ufffe",
    "\U0010fffd",
    "",
    " ",
    "null",
    "../../etc/passwd",
    "%00",
    "a\x00b",
    "line\r\nX-Injected: 1",
]
# Lone surrogates: a JSON text may carry them as \ud800 escapes; in memory they are ordinary str characters.
LONE_SURROGATES = ["\ud800", "x\udfffy", "\udbff"]


def _deep(levels: int, leaf: Any) -> Any:
    value = leaf
    for i in range(levels):
        value = {"a": value} if i % 2 else [value]
    return value


DEEP = _deep(1000, 1)

# Hostile values, built once: hypothesis draws from this list and never builds (or shrinks) them itself.
HOSTILE: list[Any] = [
    "x" * 1_000_000,
    "é" * 300_000,
    DEEP,
    _deep(150, "leaf"),
    float("nan"),
    float("inf"),
    float("-inf"),
    -0.0,
    1e308,
    2**64,
    -(2**63) - 1,
    10**100,
    True,
    None,
    {},
    [],
    [None] * 200_000,
    list(range(200_000)),
    {"$ref": "#/$defs/EventRecord"},
    {"__proto__": {"admin": True}},
    {f"k{i}": i for i in range(20_000)},
    *ODD_TEXT,
    *LONE_SURROGATES,
]


@functools.cache
def json_values(max_leaves: int = 6) -> st.SearchStrategy[Any]:
    """Small arbitrary JSON (finite numbers), for ``{}`` schemas and free-form objects.

    Built once per size: strategies are immutable, and hypothesis validates each new one (a recursive one walks
    its whole definition) before its first draw."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**53), max_value=2**53),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=MAX_TEXT),
        st.sampled_from(ODD_TEXT),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=MAX_ITEMS),
            st.dictionaries(st.text(max_size=12), children, max_size=MAX_ITEMS),
        ),
        max_leaves=max_leaves,
    )


def _dates() -> st.SearchStrategy[int]:
    today = dt.datetime.now(dt.timezone.utc).date()
    days = st.integers(min_value=-400, max_value=2)
    return days.map(lambda d: int((today + dt.timedelta(days=d)).strftime("%Y%m%d")))


def _string(schema: Mapping[str, Any]) -> st.SearchStrategy[str]:
    fmt = schema.get("format")
    if fmt == "date":
        return st.dates().map(lambda d: d.isoformat())
    if fmt == "date-time":
        return st.datetimes(timezones=st.just(dt.timezone.utc)).map(lambda d: d.isoformat())
    if fmt == "email":
        return st.emails()
    if fmt in ("uri", "url"):
        return st.sampled_from(["https://example.com/", "http://127.0.0.1:1/x", "mailto:a@b.c"])
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True)
    low = int(schema.get("minLength", 0))
    high = min(int(schema.get("maxLength", low + MAX_TEXT)), low + MAX_TEXT)
    return st.one_of(st.text(min_size=low, max_size=high), st.sampled_from([t for t in ODD_TEXT if len(t) >= low]))


def _number(schema: Mapping[str, Any], integer: bool) -> st.SearchStrategy[Any]:
    low = schema.get("minimum")
    high = schema.get("maximum")
    if "exclusiveMinimum" in schema:
        low = schema["exclusiveMinimum"] + (1 if integer else 1e-9)
    if "exclusiveMaximum" in schema:
        high = schema["exclusiveMaximum"] - (1 if integer else 1e-9)
    if integer:
        ints = st.integers(min_value=low, max_value=high)
        return ints if low is not None or high is not None else st.one_of(ints, _dates())
    return st.one_of(
        st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False),
        st.integers(
            min_value=None if low is None else int(-(-low // 1)),
            max_value=None if high is None else int(high // 1),
        ),
    )


class SchemaStrategies:
    """Builds strategies for one tool's input schema (``root`` holds its ``$defs``).

    ``hints`` maps a property name to a strategy used instead of its schema (e.g. real dates for ``from``/``to``,
    which the schema only types as integers), so that generated calls reach past input validation.
    """

    def __init__(self, root: Mapping[str, Any], hints: Mapping[str, st.SearchStrategy[Any]] | None = None) -> None:
        self.root = root
        self.hints = dict(hints or {})

    def _resolve(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported, not {ref!r}")
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node[part]
        return node

    def build(self, schema: Mapping[str, Any] | bool) -> st.SearchStrategy[Any]:
        if schema is True or schema == {}:
            return json_values()
        if schema is False:
            return st.nothing()
        assert isinstance(schema, Mapping)
        if "$ref" in schema:
            merged = {**self._resolve(schema["$ref"]), **{k: v for k, v in schema.items() if k != "$ref"}}
            return self.build(merged)
        if "const" in schema:
            return st.just(schema["const"])
        if "enum" in schema:
            return st.sampled_from(list(schema["enum"]))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                rest = {k: v for k, v in schema.items() if k != key}
                return st.one_of([self.build({**rest, **branch}) for branch in schema[key]])
        kind = schema.get("type")
        if isinstance(kind, list):
            return st.one_of([self.build({**schema, "type": k}) for k in kind])
        if kind == "object" or (kind is None and "properties" in schema):
            return self._object(schema)
        if kind == "array":
            items = self.build(schema.get("items", {}))
            low = int(schema.get("minItems", 0))
            high = min(int(schema.get("maxItems", low + MAX_ITEMS)), low + MAX_ITEMS)
            return st.lists(items, min_size=low, max_size=high)
        if kind == "string":
            return _string(schema)
        if kind == "integer":
            return _number(schema, integer=True)
        if kind == "number":
            return _number(schema, integer=False)
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        return json_values()

    def _object(self, schema: Mapping[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        props: Mapping[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required") or ())
        fields = {name: self.hints[name] if name in self.hints else self.build(sub) for name, sub in props.items()}
        fixed = st.fixed_dictionaries(
            {k: v for k, v in fields.items() if k in required},
            optional={k: v for k, v in fields.items() if k not in required},
        )
        extra = schema.get("additionalProperties", True)
        if extra is False or (props and extra is True):
            return fixed  # unknown keys are the hostile strategy's business
        values = self.build(extra if isinstance(extra, Mapping) else {})
        more = st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=MAX_ITEMS)
        return st.tuples(more, fixed).map(lambda pair: {**pair[0], **pair[1]})


def arguments_for(
    input_schema: Mapping[str, Any], hints: Mapping[str, st.SearchStrategy[Any]] | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """Arguments that follow a tool's ``inputSchema``."""
    return SchemaStrategies(input_schema, hints).build(input_schema)


def hostile_arguments(
    input_schema: Mapping[str, Any],
    values: list[Any] | None = None,
    base: st.SearchStrategy[dict[str, Any]] | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    """Arguments where one or two fields (known or made up) hold a hostile value, the rest following the schema
    (``base``: that schema's ``arguments_for(input_schema, DATE_HINTS)`` when the caller already built it)."""
    props = list((input_schema.get("properties") or {}).keys())
    names = st.sampled_from([*props, "bogus", "X-CleverTap-Passcode"]) if props else st.just("bogus")
    base = base if base is not None else arguments_for(input_schema, DATE_HINTS)
    swaps = st.lists(st.tuples(names, st.sampled_from(values or HOSTILE)), min_size=1, max_size=2)
    return st.tuples(base, swaps).map(lambda pair: {**pair[0], **dict(pair[1])})


DATE_HINTS: dict[str, st.SearchStrategy[Any]] = {"from": _dates(), "to": _dates()}
