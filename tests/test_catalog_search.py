"""The action search's precomputed index ranks exactly as scoring every tool's fields would, for any intent."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tools.base import ToolSpec
from tools.catalog import CATALOG, _fields, _terms, search_catalog

VOCABULARY = sorted({word for spec in CATALOG if spec.action_key for words, _ in _fields(spec) for word in words})


def brute_force(intent: str, limit: int) -> list[str]:
    terms = set(_terms(intent))

    def score(spec: ToolSpec[Any, Any]) -> int:
        return sum(weight for term in terms for words, weight in _fields(spec) if term in words)

    scored = [(score(spec), i, spec) for i, spec in enumerate(CATALOG) if spec.action_key]
    ranked = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))
    return [str(spec.action_key) for _, _, spec in ranked[:limit]]


@settings(max_examples=300)
@given(
    words=st.lists(st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=8)), max_size=8),
    limit=st.integers(min_value=0, max_value=30),
)
def test_the_index_ranks_like_scoring_every_field(words: list[str], limit: int) -> None:
    intent = " ".join(words)
    assert [a.key for a in search_catalog(intent, limit)] == brute_force(intent, limit)
