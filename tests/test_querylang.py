"""The query language is typed: audiences and filters are checked before anything is sent, never widened silently."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.helpers import day, err, mcp_client, ok
from tools.querylang import WHERE_KEYS, Audience

pytestmark = pytest.mark.anyio

PUSH = {
    "name": "London launch",
    "target_mode": "push",
    "content": {"title": "Hello London", "body": "Something new near you."},
    "devices": ["android", "ios"],
    "when": "now",
}
LONDON = {"common_profile_properties": {"profile_fields": [{"name": "City", "operator": "equals", "value": "London"}]}}


async def _campaign_ids(client: Any) -> set[Any]:
    listed = ok(await client.call_tool("clevertap_get_campaigns", {"from": day(-1), "to": day(1)}))
    return {c["id"] for c in listed["campaigns"]}


async def test_an_unknown_where_key_is_refused_with_the_accepted_shapes_and_nothing_is_sent() -> None:
    async with mcp_client() as client:
        before = await _campaign_ids(client)
        text = err(await client.call_tool("clevertap_create_campaign", {**PUSH, "where": {"City": "London"}}))
        assert "'City'" in text and "common_profile_properties" in text and "profile_fields" in text
        assert "confirm_token" not in text
        # A group CleverTap does not know, one level down, is refused the same way.
        nested = {"common_profile_properties": {"profile_field": [{"name": "City", "value": "London"}]}}
        assert "'profile_field'" in err(await client.call_tool("clevertap_create_campaign", {**PUSH, "where": nested}))
        assert await _campaign_ids(client) == before


async def test_a_profile_filter_narrows_the_reach_and_is_sent_as_typed() -> None:
    async with mcp_client() as client:
        everyone = ok(await client.call_tool("clevertap_create_campaign", {**PUSH, "where": {}}))
        london = ok(await client.call_tool("clevertap_create_campaign", {**PUSH, "where": LONDON}))
        assert 0 < london["total_estimated_reach"] < everyone["total_estimated_reach"]
        assert "warning" not in london and "warning" not in everyone
        # The operator defaults to equals: the short form reaches exactly the same users.
        short = {"common_profile_properties": {"profile_fields": [{"name": "City", "value": "London"}]}}
        same = ok(await client.call_tool("clevertap_create_campaign", {**PUSH, "where": short}))
        assert same["total_estimated_reach"] == london["total_estimated_reach"]


async def test_counts_send_profile_filters_and_refuse_malformed_ones() -> None:
    base = {"event_name": "Charged", "from": day(-30), "to": day(0)}
    async with mcp_client() as client:
        total = ok(await client.call_tool("clevertap_get_event_count", base))["count"]
        london = ok(await client.call_tool("clevertap_get_event_count", {**base, **LONDON}))["count"]
        assert 0 < london < total
        cases: list[tuple[dict[str, Any], str]] = [
            ({"common_profile_properties": {"cities": ["London"]}}, "'cities'"),
            ({"common_profile_properties": {"geo_radius": [[51.5, -0.1]]}}, "geo_radius"),
            ({"event_properties": [{"name": "Amount", "operator": "between", "value": [10]}]}, "between"),
            ({"event_properties": [{"name": "Amount", "operator": "equals", "value": []}]}, "empty list"),
            ({"advanced_query": {}}, "at least one of did_all"),
            ({"advanced_query": {"did_all": [{"event_name": "X", "from": day(-2), "to": day(0), "value": 3}]}}, "both"),
        ]
        for bad, needle in cases:
            assert needle in err(await client.call_tool("clevertap_get_event_count", {**base, **bad})), bad


def test_the_official_example_queries_validate_and_round_trip() -> None:
    """The shapes of CleverTap's query-language examples (clevertap-support-snippets,
    clevertap_query_language/examples/*.json) pass unchanged, but for the operator the model makes explicit."""
    hybrid = {
        "event_name": "Charged",
        "from": 20151010,
        "to": 20151011,
        "event_properties": [{"name": "Amount", "operator": "equals", "value": 100}],
        "common_profile_properties": {
            "profile_fields": [{"name": "language", "operator": "equals", "value": "fr"}],
            "demographics": [{"name": "Education", "operator": "equals", "value": ["College", "Graduate"]}],
            "technographics": [{"name": "Platform", "operator": "equals", "value": "AndroidApp"}],
            "reachability": [{"name": "has_token", "operator": "equals", "value": "True"}],
            "geo_fields": [["India", "Maharashtra", "Mumbai"], ["United States", "New York", "New York City"]],
            "geo_radius": [[35, 42.5, 5.2], [77.6, 76.2, 11]],
        },
        "advanced_query": {
            "did_none": [{"event_name": "App Uninstalled", "from": 20151010, "to": 20151011}],
            "did_any": {
                "any_events": [{"event_name": "App Launched", "from": 20151010, "to": 20151011}],
                "operator": "equals",
                "value": 10,
            },
            "did_all": [
                {"event_name": "App Launched", "from": 20151011, "to": 20151012, "operator": "equals", "value": 10}
            ],
        },
        "session_properties": [{"name": "first_time", "operator": "equals", "value": "True"}],
    }
    assert Audience.model_validate(hybrid).body() == hybrid


_KEY = st.text(min_size=1, max_size=12).filter(lambda k: k not in WHERE_KEYS)
_VALUE = st.one_of(st.text(max_size=8), st.integers(), st.lists(st.text(max_size=4), max_size=3))


@settings(max_examples=200, deadline=None)
@given(extra=st.dictionaries(_KEY, _VALUE, min_size=1, max_size=3), keep_event=st.booleans())
def test_no_unknown_top_level_key_is_ever_dropped(extra: dict[str, Any], keep_event: bool) -> None:
    """Whatever else an audience says, a key CleverTap does not read is refused, never dropped."""
    where: dict[str, Any] = {"event_name": "Charged", "from": 20261101, "to": 20261130} if keep_event else {}
    with pytest.raises(ValidationError) as caught:
        Audience.model_validate({**where, **extra})
    assert "unknown keys" in str(caught.value)
