"""The catalog as the inventory: every spec is complete and consistent, every valid example works on the sandbox
through MCP and returns what its output schema promises, and tools/list shows exactly the catalog with each spec's
own annotations. Parametrized over the catalog: a new tool is covered here without editing this file."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from tests.examples import SPECS, TOOLS, Examples, references, spec
from tests.helpers import make_runtime, mcp_client, ok
from tools.catalog import ACTION_NAMES, CONSENT_TOOLS, by_action
from tools.names import POPULAR_ACTION_KEYS, TOOL_NAMES

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("tool", TOOLS)
def test_spec_is_complete_and_consistent(tool: str) -> None:
    s = spec(tool)
    assert s.name.startswith("clevertap_") and s.title and s.description
    assert all(path.startswith("/1/") for path in s.endpoints), s.endpoints
    assert s.fault_class in ("read", "write", "upload")
    if s.read_only:
        assert not s.destructive and s.fault_class == "read" and not s.needs_consent
    if s.fault_class in ("write", "upload"):
        assert not s.read_only and s.endpoints, "a tool that writes names the endpoints it writes to"
    if s.needs_consent:
        assert s.destructive, "an irreversible tool is destructive"
    if s.action_key:
        assert by_action(s.action_key) is s and ACTION_NAMES[s.action_key] == s.action_name
    for example in (*s.examples_valid, *s.examples_invalid):
        assert references(example) <= set(SPECS) - {tool}, "examples may only borrow from other tools"


def test_derived_lists_follow_the_catalog() -> None:
    assert set(TOOL_NAMES) == set(SPECS)
    assert set(POPULAR_ACTION_KEYS) == {s.action_key for s in SPECS.values() if s.action_key}
    assert {name for name, s in SPECS.items() if s.needs_consent} >= CONSENT_TOOLS


@pytest.mark.parametrize("tool", TOOLS)
async def test_valid_examples_work_on_the_sandbox(tool: str) -> None:
    s = spec(tool)
    async with mcp_client() as client:
        examples = Examples(client)
        for index in range(len(s.examples_valid)):
            result = ok(await client.call_tool(tool, await examples.valid(tool, index)))
            if s.needs_consent and "confirm_token" in s.input_model.model_fields:
                assert result.get("confirm_token"), "confirmation is on by default: the first call is a preview"
            listed = {t.name: t for t in (await client.list_tools()).tools}[tool]
            assert listed.output_schema is not None
            jsonschema.validate(result, listed.output_schema)


@pytest.mark.parametrize("read_only", [False, True], ids=["normal", "read-only"])
async def test_tools_list_is_the_catalog_with_each_specs_annotations(read_only: bool) -> None:
    async with mcp_client(make_runtime(read_only=read_only)) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
    expected = {n for n, s in SPECS.items() if not read_only or s.read_only or s.guarded_in_read_only}
    assert set(listed) == expected
    for name, tool in listed.items():
        s = spec(name)
        assert tool.annotations is not None
        hints: dict[str, Any] = tool.annotations.model_dump(by_alias=True, exclude_none=True)
        assert hints == s.annotations(read_only_mode=read_only), name
        assert tool.title == s.title and tool.description == s.description
        assert tool.input_schema.get("type") == "object" and tool.output_schema, name
