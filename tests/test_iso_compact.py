"""``iso_compact``'s fast path for 14-digit integers (a cache of checked hours) agrees with its general path."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tools.models import iso_compact


@given(st.integers(min_value=10**13, max_value=10**14 - 1))
def test_integer_times_match_the_string_path(value: int) -> None:
    # The string form takes the general path, which checks every field without the cache.
    assert iso_compact(value) == iso_compact(str(value))


@given(
    st.integers(2000, 2099),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 24),
    st.integers(0, 60),
    st.integers(0, 60),
)
def test_near_valid_times_match_the_string_path(y: int, mo: int, d: int, h: int, mi: int, s: int) -> None:
    value = int(f"{y:04d}{mo:02d}{d:02d}{h:02d}{mi:02d}{s:02d}")
    expected = iso_compact(str(value))
    assert iso_compact(value) == expected
    valid = 1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59 and s <= 59
    assert (expected is not None) == valid
    if valid:
        assert expected == f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}Z"
