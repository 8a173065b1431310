"""Schema discovery: the account's events and properties, learned from what the API returns, cached per account.

CleverTap has no schema endpoint. Event names come from the per-event summaries of a page of recently active profiles
(``/1/profiles.json``), profile properties from their ``profileData``, and one event's properties from a small page of
its records (``/1/events.json``). The same knowledge powers "did you mean 'Charged'?" on empty results.
"""

from __future__ import annotations

import datetime as dt
import difflib
import time
from collections.abc import Iterable, Mapping
from typing import Any

import anyio
from pydantic import Field

from tools.base import ToolContext, ToolInput, ToolOutput, ToolSpec
from tools.errors import CleverTapCredentialsError, ConfigurationError, ToolFailure

# System events every CleverTap account records, tried in turn to find recently active profiles.
PROBES = ("App Launched", "Charged", "App Installed", "UTM Visited", "Notification Viewed")
WINDOW_DAYS = 30
PROFILE_SAMPLE = 92  # profiles.json wants multiples of 23
EVENT_SAMPLE = 50
EXAMPLES = 3
_ACCOUNT_KEY = "account"


def _day(offset: int) -> int:
    return int((dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=offset)).strftime("%Y%m%d"))


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "date" if value.startswith("$D_") else "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "null"


def _example(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 40:
        return value[:40] + "…"
    if isinstance(value, (list, dict)):
        return None  # nested values cost many tokens and tell little
    return value


def describe_values(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per key: its type(s) and up to three distinct example values, keys in first-seen order."""
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        for key, value in record.items():
            info = out.setdefault(str(key), {"types": [], "examples": []})
            kind = _type(value)
            if kind not in info["types"]:
                info["types"].append(kind)
            example = _example(value)
            if example is not None and example not in info["examples"] and len(info["examples"]) < EXAMPLES:
                info["examples"].append(example)
    return {
        k: {"type": "|".join(v["types"]), **({"examples": v["examples"]} if v["examples"] else {})}
        for k, v in out.items()
    }


def _stamp(doc: dict[str, Any]) -> dict[str, Any]:
    doc["fetched_at_epoch"] = time.time()
    return doc


def _fresh(doc: Mapping[str, Any], ttl_s: float) -> dict[str, Any]:
    """The cached document with how fresh it is, as the model reads it."""
    out = {k: v for k, v in doc.items() if k != "fetched_at_epoch"}
    at = float(doc.get("fetched_at_epoch") or time.time())
    out["fetched_at"] = dt.datetime.fromtimestamp(at, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    out["age_s"] = max(0, int(time.time() - at))
    out["ttl_s"] = int(ttl_s)
    return out


async def _first_page(ctx: ToolContext, path: str, event: str, batch_size: int) -> list[dict[str, Any]]:
    body = {"event_name": event, "from": _day(-WINDOW_DAYS), "to": _day(0)}
    cursor = await ctx.api.start_export(path, body, batch_size=batch_size)
    if not cursor:
        return []
    page = await ctx.api.export_page(path, cursor, budget_s=ctx.budget_s)
    return [r for r in page.records if isinstance(r, dict)][:batch_size]


async def account_schema(ctx: ToolContext, *, refresh: bool = False) -> dict[str, Any]:
    """Event names and profile properties, from the cache unless stale or ``refresh``."""
    cache = ctx.schemas
    if cache is not None and not refresh:
        cached = cache.get(_ACCOUNT_KEY)
        if cached is not None:
            return cached
    profiles: list[dict[str, Any]] = []
    probe_used = None
    answered = False
    failure: ToolFailure | None = None
    for probe in PROBES:
        try:
            profiles = await _first_page(ctx, "/1/profiles.json", probe, PROFILE_SAMPLE)
        except (CleverTapCredentialsError, ConfigurationError):
            raise
        except ToolFailure as exc:
            failure = exc  # an account without this system event, or CleverTap failing
            continue
        answered = True
        if profiles:
            probe_used = probe
            break
    if not answered and failure is not None:
        # Not one probe got an answer: that is CleverTap failing, not an account with nothing to learn from.
        raise failure
    events: dict[str, int] = {}
    for record in profiles:
        summary = record.get("events")
        if isinstance(summary, dict):
            for name in summary:
                events[str(name)] = events.get(str(name), 0) + 1
    data = [r.get("profileData") for r in profiles]
    doc = {
        "events": dict(sorted(events.items(), key=lambda kv: (-kv[1], kv[0]))),
        "profile_properties": describe_values(d for d in data if isinstance(d, dict)),
        "obtained": (
            f"from the per-event summaries and profileData of {len(profiles)} profiles who did {probe_used!r} in "
            f"the last {WINDOW_DAYS} days (events: how many of them did it)"
            if probe_used
            else f"no profile did any of {', '.join(PROBES)} in the last {WINDOW_DAYS} days: nothing to learn from"
        ),
    }
    _stamp(doc)
    if cache is not None:
        cache.put(_ACCOUNT_KEY, doc)
    return doc


async def event_schema(ctx: ToolContext, event_name: str, *, refresh: bool = False) -> dict[str, Any]:
    """One event's properties and session properties, from a small page of its recent records."""
    key = "event:" + event_name
    cache = ctx.schemas
    if cache is not None and not refresh:
        cached = cache.get(key)
        if cached is not None:
            return cached
    records = await _first_page(ctx, "/1/events.json", event_name, EVENT_SAMPLE)
    props = [r.get("event_props") for r in records]
    sessions = [r.get("session_props") for r in records]
    doc = {
        "name": event_name,
        "properties": describe_values(p for p in props if isinstance(p, dict)),
        "session_properties": sorted({str(k) for s in sessions if isinstance(s, dict) for k in s}),
        "records_sampled": len(records),
        "obtained": f"from the first export page ({len(records)} records) of the last {WINDOW_DAYS} days",
    }
    _stamp(doc)
    if cache is not None:
        cache.put(key, doc)
    return doc


def suggestions(name: str, known: Iterable[str]) -> list[str]:
    """Known names ``name`` probably meant: the same name in another case, else near misses (best first)."""
    names = list(known)
    if name in names:
        return []
    lower: dict[str, str] = {}
    for n in names:
        lower.setdefault(n.lower(), n)
    word = name.lower()
    if word in lower:
        return [lower[word]]
    # difflib's own first test (``real_quick_ratio``), made before it indexes ``word``: a name that cannot reach
    # the cutoff on length alone is dropped here, so a megabyte of input is not indexed character by character.
    near = [n for n in lower if _length_ratio(len(word), len(n)) >= _CUTOFF]
    if not near:
        return []
    return [lower[m] for m in difflib.get_close_matches(word, near, n=3, cutoff=_CUTOFF)]


_CUTOFF = 0.6


def _length_ratio(a: int, b: int) -> float:
    """``SequenceMatcher.real_quick_ratio`` for strings of lengths ``a`` and ``b``: the best ratio they could have."""
    return 2.0 * min(a, b) / (a + b) if a + b else 1.0


async def did_you_mean(ctx: ToolContext, event_name: str, *, wait_s: float = 15.0) -> str | None:
    """For an empty answer: "no event 'charged' is known; did you mean 'Charged'?", or None (known name, no close
    match, or the schema could not be learned in ``wait_s``)."""
    with anyio.move_on_after(min(wait_s, ctx.budget_s / 3)):
        try:
            schema = await account_schema(ctx)
        except ToolFailure:
            return None
        found = suggestions(event_name, schema.get("events") or {})
        if not found:
            return None
        options = " or ".join(repr(f) for f in found)
        return (
            f"No event named {event_name!r} is known in this account (names are case-sensitive): did you mean "
            f"{options}? clevertap_describe_schema lists the events."
        )
    return None


async def schema_document(ctx: ToolContext, event_name: str | None = None, *, refresh: bool = False) -> dict[str, Any]:
    """What clevertap_describe_schema and the clevertap://schema resource return."""
    ttl = ctx.schemas.ttl_s if ctx.schemas is not None else 0.0
    out = _fresh(await account_schema(ctx, refresh=refresh), ttl)
    if event_name:
        event = _fresh(await event_schema(ctx, event_name, refresh=refresh), ttl)
        if not event["records_sampled"]:
            hint = await did_you_mean(ctx, event_name)
            event["note"] = hint or f"no {event_name!r} records in the last {WINDOW_DAYS} days"
        out["event"] = event
    return out


# -- the tool ----------------------------------------------------------------------------------------------------------


class SchemaInput(ToolInput):
    event_name: str | None = Field(None, min_length=1, description="Also list this event's properties.")
    refresh: bool = Field(False, description="Rediscover now instead of using the cache.")


class SchemaOutput(ToolOutput):
    events: dict[str, int]
    profile_properties: dict[str, dict[str, Any]]
    event: dict[str, Any] | None = None
    obtained: str
    fetched_at: str
    age_s: int
    ttl_s: int


async def describe_schema(ctx: ToolContext, args: SchemaInput) -> SchemaOutput:
    return SchemaOutput.model_validate(await schema_document(ctx, args.event_name, refresh=args.refresh))


DESCRIBE_SCHEMA = ToolSpec(
    name="clevertap_describe_schema",
    title="Describe schema",
    description=(
        "The account's event names and profile properties; with event_name, its properties with types and "
        "examples. Learned from recent data and cached (says how, how fresh). Gives exact, case-sensitive names."
    ),
    input_model=SchemaInput,
    output_model=SchemaOutput,
    impl=describe_schema,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    endpoints=("/1/profiles.json", "/1/events.json"),
    fault_class="read",
    examples_valid=({}, {"event_name": "Charged"}),
    examples_invalid=({"event_name": ""}, {"refresh": "sometimes"}),
)
