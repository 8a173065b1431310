"""``strict_json``: pydantic-core's encoder for speed, the standard library's verdict wherever they could differ."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.wirejson import strict_json
from tools.errors import InputError


def _nested(levels: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(levels):
        child: list[Any] = []
        node.append(child)
        node = child
    return root


@pytest.mark.parametrize(
    "value",
    [
        {"d": [{"identity": "u1", "evtData": {"Amount": 1.5, "Name": "Zoë 👋", "ok": True, "none": None}}]},
        {"text": "NaN", "also": "-Infinity and Infinity", "NaN": [1, 2]},  # the words, in strings: fine
        {"big": 10**30, "neg": -0.0, "tiny": 1e-7, "huge": 1e300},
        _nested(600),  # deeper than pydantic-core writes: the standard library takes over
        [],
        "",
    ],
)
def test_valid_json_values_round_trip(value: Any) -> None:
    data = strict_json(value)
    assert isinstance(data, bytes) and b"\n" not in data and b", " not in data
    assert json.loads(data) == value


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"v": float("nan")}, "NaN"),
        ([1, float("-inf")], "infinite"),
        ({"name": "x\ud800y"}, "surrogate"),
        ({"\udfff": 1}, "surrogate"),
        (_nested(5_000), "nested too deeply"),
        ({"x": object()}, "not JSON values"),
    ],
)
def test_what_is_not_json_is_an_input_error(value: Any, words: str) -> None:
    with pytest.raises(InputError) as caught:
        strict_json(value)
    assert words in caught.value.message


def test_a_cycle_is_an_input_error_not_a_crash() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(InputError):
        strict_json(loop)
