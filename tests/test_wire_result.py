"""Results leave the handler in wire form: the same JSON the SDK would make of the model, for any result."""

from __future__ import annotations

from typing import Any

import mcp.types as types
from hypothesis import given, settings
from hypothesis import strategies as st

from server.protocol.app import error_result, ok_result, wire_result
from tests.strategies import json_values


@settings(max_examples=200)
@given(
    structured=st.dictionaries(st.text(max_size=8), json_values(), max_size=5),
    image=st.booleans(),
    failed=st.booleans(),
)
def test_wire_form_equals_the_models_dump(structured: dict[str, Any], image: bool, failed: bool) -> None:
    result = error_result("something failed") if failed else ok_result(structured)
    if image:
        result.content.append(types.ImageContent(type="image", data="aGk=", mime_type="image/png"))
    assert wire_result(result) == result.model_dump(by_alias=True, mode="json", exclude_none=True)
