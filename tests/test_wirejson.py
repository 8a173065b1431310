"""Wire JSON both ways: ``strict_json`` (pydantic-core's encoder for speed, the standard library's verdict wherever
they could differ) and ``parse_body`` (pydantic-core's parser first, the lenient path for what it refuses)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.backends.clevertap.executor import parse_body
from server.codec.wirejson import strict_json
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


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        (
            b'{"status":"success","records":[{"a":1.5}],"next_cursor":"x"}',
            {"status": "success", "records": [{"a": 1.5}], "next_cursor": "x"},
        ),
        (b'{"v":NaN}', "nan"),  # CleverTap never sends it, but a lenient parse keeps the answer readable
        (b'"\\ud800"', "\ud800"),  # a lone surrogate escape: pydantic-core refuses it, json takes it
        (b'{"bad":"\xff"}', {"bad": "\ufffd"}),  # invalid UTF-8: decoded with replacement, then parsed
        (b"\xef\xbb\xbf{}", "\ufeff{}"),  # a byte-order mark: kept as text, as before
        (b"   ", ""),
        (b"", ""),
        (b"<html>502</html>", "<html>502</html>"),
    ],
)
def test_parse_body(raw: bytes, parsed: Any) -> None:
    got = parse_body(raw)
    if parsed == "nan":
        assert got["v"] != got["v"]
    else:
        assert got == parsed
