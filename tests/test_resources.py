"""The catalog and regions resources, read through an in-memory MCP client."""

from __future__ import annotations

import json
import re

import mcp.types as types
import pytest
from mcp.shared.exceptions import MCPError

from server.backends.clevertap.regions import REGIONS
from tests.helpers import make_runtime, mcp_client
from tools.catalog import CATALOG

pytestmark = pytest.mark.anyio


def _json(result: types.ReadResourceResult) -> dict:
    (content,) = result.contents
    assert isinstance(content, types.TextResourceContents)
    assert content.mime_type == "application/json"
    return json.loads(content.text)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_list_and_read_both_resources(mode: str) -> None:
    async with mcp_client(mode=mode) as client:
        listed = await client.list_resources()
        assert {str(r.uri) for r in listed.resources} == {
            "clevertap://catalog",
            "clevertap://regions",
            "clevertap://schema",
        }
        assert all(r.mime_type == "application/json" and r.description for r in listed.resources)

        catalog = _json(await client.read_resource("clevertap://catalog"))
        tools = (await client.list_tools()).tools
        assert [t["name"] for t in catalog["tools"]] == [t.name for t in tools]
        by_name = {s.name: s for s in CATALOG}
        for entry in catalog["tools"]:
            spec = by_name[entry["name"]]
            assert entry == {
                "name": spec.name,
                "action_key": spec.action_key,
                "title": spec.title,
                "read_only": spec.read_only,
                "description": spec.description,
            }
        assert catalog["backend"] == "sandbox"
        assert catalog["read_only_mode"] is False

        regions = _json(await client.read_resource("clevertap://regions"))
        assert regions["regions"] == REGIONS
        assert regions["default"] == "eu1"
        assert regions["regions"]["in1"] == "https://in1.api.clevertap.com"


async def test_catalog_in_read_only_mode_lists_only_read_tools() -> None:
    async with mcp_client(make_runtime(read_only=True)) as client:
        catalog = _json(await client.read_resource("clevertap://catalog"))
    assert catalog["read_only_mode"] is True
    assert catalog["tools"] and all(t["read_only"] for t in catalog["tools"])
    assert "clevertap_delete_user_profile" not in {t["name"] for t in catalog["tools"]}


async def test_unknown_resource_is_a_protocol_error_that_names_the_known_ones() -> None:
    async with mcp_client() as client:
        with pytest.raises(MCPError) as info:
            await client.read_resource("clevertap://nope")
    assert info.value.code == types.INVALID_PARAMS
    assert "clevertap://catalog" in info.value.message


async def test_instructions_reach_the_client() -> None:
    async with mcp_client() as client:
        instructions = client.instructions
    assert instructions and "confirm_token" in instructions and "clevertap://catalog" in instructions


async def test_instructions_name_every_resource_and_only_listed_tools() -> None:
    async with mcp_client() as client:
        instructions = client.instructions or ""
        resources = [str(r.uri) for r in (await client.list_resources()).resources]
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        tools = {t.name for t in (await client.list_tools()).tools}
    for uri in [*resources, *templates]:
        assert uri in instructions, uri
    named = set(re.findall(r"\bclevertap_[a-z_]+[a-z]", instructions))
    assert named and named <= tools, named - tools
