"""The catalog: every tool's spec in one sequence, the lookups derived from it, and a keyword search over actions."""

from __future__ import annotations

import functools
import re
from typing import Any

from tools.actions import RUN_ACTION, SEARCH_ACTIONS
from tools.aggregate import AGGREGATE_EVENTS
from tools.api import ActionInfo
from tools.base import ToolSpec, strip_titles
from tools.campaigns import CREATE_CAMPAIGN, GET_CAMPAIGN_REPORT, GET_CAMPAIGNS, STOP_CAMPAIGN
from tools.connect import CONNECT
from tools.counts import GET_EVENT_COUNT, GET_PROFILE_COUNT
from tools.exports import GET_EVENTS, GET_EVENTS_BY_CURSOR, GET_USER_PROFILES, GET_USER_PROFILES_BY_CURSOR
from tools.message_report import GET_MESSAGE_REPORT
from tools.profile_lookup import GET_USER_PROFILE
from tools.profiles import DELETE_USER_PROFILE
from tools.proxy import REQUEST
from tools.realtime import REAL_TIME_USER_COUNT
from tools.schema import DESCRIBE_SCHEMA
from tools.top_values import GET_TOP_VALUES
from tools.trends import GET_TRENDS
from tools.uploads import UPLOAD_DEVICE_TOKENS, UPLOAD_EVENTS, UPLOAD_USER_PROFILES

CATALOG: tuple[ToolSpec[Any, Any], ...] = (
    CONNECT,
    REAL_TIME_USER_COUNT,
    GET_EVENT_COUNT,
    GET_PROFILE_COUNT,
    GET_EVENTS,
    GET_EVENTS_BY_CURSOR,
    GET_USER_PROFILES,
    GET_USER_PROFILES_BY_CURSOR,
    UPLOAD_EVENTS,
    UPLOAD_USER_PROFILES,
    UPLOAD_DEVICE_TOKENS,
    GET_CAMPAIGNS,
    GET_CAMPAIGN_REPORT,
    CREATE_CAMPAIGN,
    STOP_CAMPAIGN,
    DELETE_USER_PROFILE,
    SEARCH_ACTIONS,
    RUN_ACTION,
    REQUEST,
    GET_TRENDS,
    GET_TOP_VALUES,
    AGGREGATE_EVENTS,
    DESCRIBE_SCHEMA,
    GET_USER_PROFILE,
    GET_MESSAGE_REPORT,
)

# Membrane's names for the popular actions (the seed's table), so every backend lists them the same way.
ACTION_NAMES: dict[str, str] = {s.action_key: s.action_name for s in CATALOG if s.action_key and s.action_name}
# Tools that ask for a confirm_token themselves; a Membrane action standing in for one asks the same way.
CONSENT_TOOLS: frozenset[str] = frozenset(
    s.name for s in CATALOG if s.needs_consent and "confirm_token" in s.input_model.model_fields
)

_BY_NAME = {spec.name: spec for spec in CATALOG}
_BY_KEY = {spec.action_key: spec for spec in CATALOG if spec.action_key}
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "the",
        "to",
        "of",
        "for",
        "in",
        "on",
        "by",
        "with",
        "from",
        "my",
        "me",
        "i",
        "all",
        "please",
        "how",
        "what",
    ]
)
# A few synonyms users reach for, mapped onto the words the catalog uses.
_SYNONYMS = {
    "user": "profile",
    "users": "profile",
    "customer": "profile",
    "customers": "profile",
    "remove": "delete",
    "erase": "delete",
    "send": "campaign",
    "message": "campaign",
    "notification": "campaign",
    "push": "campaign",
    "list": "get",
    "fetch": "get",
    "download": "get",
    "export": "get",
    "import": "upload",
    "number": "count",
    "many": "count",
    "active": "real",
    "live": "real",
    "now": "real",
    "next": "cursor",
    "page": "cursor",
    "stats": "report",
    "metrics": "report",
    "performance": "report",
    "halt": "stop",
    "cancel": "stop",
}


def by_name(name: str) -> ToolSpec[Any, Any] | None:
    return _BY_NAME.get(name)


def by_action(key_or_name: str) -> ToolSpec[Any, Any] | None:
    """The tool for a Membrane action key ("get-event-count") or a tool name ("clevertap_get_event_count")."""
    return _BY_KEY.get(key_or_name) or _BY_NAME.get(key_or_name)


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _terms(text: str) -> list[str]:
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOP]
    return [_stem(_SYNONYMS.get(w, w)) for w in words]


@functools.cache
def action_info(spec: ToolSpec[Any, Any]) -> ActionInfo:
    assert spec.action_key is not None
    return ActionInfo(
        id=spec.action_key,
        key=spec.action_key,
        name=spec.action_name or spec.title,
        description=spec.description,
        input_schema=strip_titles(spec.input_schema()),
        read_only=spec.read_only,
    )


@functools.cache
def _fields(spec: ToolSpec[Any, Any]) -> tuple[tuple[frozenset[str], int], ...]:
    """Each searchable field's terms with its weight, computed once per tool."""
    assert spec.action_key is not None
    return (
        (frozenset(_terms(spec.action_key)), 4),
        (frozenset(_terms(spec.action_name or "")), 3),
        (frozenset(_terms(spec.title)), 2),
        (frozenset(_terms(spec.description)), 1),
    )


@functools.cache
def _index() -> dict[str, tuple[tuple[int, int], ...]]:
    """Each search term's ``(catalog position, weight)`` pairs, built once: a search reads only its own terms."""
    weights: dict[str, dict[int, int]] = {}
    for i, spec in enumerate(CATALOG):
        if spec.action_key:
            for words, weight in _fields(spec):
                for word in words:
                    per_spec = weights.setdefault(word, {})
                    per_spec[i] = per_spec.get(i, 0) + weight
    return {word: tuple(per_spec.items()) for word, per_spec in weights.items()}


def search_catalog(intent: str, limit: int) -> list[ActionInfo]:
    """The popular actions that best match ``intent`` by keywords (best first; none when nothing matches)."""
    terms = _terms(intent)
    if not terms or limit < 1:
        return []
    index = _index()
    scores: dict[int, int] = {}
    for term in set(terms):
        for i, weight in index.get(term, ()):
            scores[i] = scores.get(i, 0) + weight
    ranked = sorted(scores.items(), key=lambda s: (-s[1], s[0]))
    return [action_info(CATALOG[i]) for i, _ in ranked[:limit]]
