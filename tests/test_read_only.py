"""Read-only mode beats every other setting: no tool, proxy path or action can change the account."""

from __future__ import annotations

from typing import Any

import pytest

from server.policies.endpoints import classify
from tests.examples import SPECS, TOOLS, Examples
from tests.helpers import day, err, make_runtime, mcp_client, ok

pytestmark = pytest.mark.anyio

READ_TOOLS = {name for name, s in SPECS.items() if s.read_only}
GUARDED = {name for name, s in SPECS.items() if s.guarded_in_read_only}
WRITE_TOOLS = sorted(set(SPECS) - READ_TOOLS - GUARDED)


def read_only_runtime(**overrides: Any) -> Any:
    # Every other setting that could widen access (every tool selected, confirmations off), and read-only still wins.
    env = {"CLEVERTAP_MCP_CONFIRM": "never", "CLEVERTAP_MCP_TOOLS": ",".join(sorted(SPECS))}
    return make_runtime(env, read_only=True, **overrides)


async def test_lists_reads_and_guarded_tools_only_all_marked_read_only() -> None:
    async with mcp_client(read_only_runtime()) as client:
        tools = (await client.list_tools()).tools
    assert {t.name for t in tools} == READ_TOOLS | GUARDED
    for tool in tools:
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is True, tool.name
        assert tool.annotations.destructive_hint is False, tool.name


@pytest.mark.parametrize("tool", TOOLS)
async def test_every_tool_in_read_only_mode(tool: str) -> None:
    """Writers refuse even their valid examples, saying why; readers and guarded tools run theirs."""
    async with mcp_client(read_only_runtime()) as client:
        arguments = await Examples(client).valid(tool)
        result = await client.call_tool(tool, arguments)
        if tool in WRITE_TOOLS:
            assert "read-only" in err(result)
        else:
            ok(result)


WRITE_REQUESTS = [
    ("POST", "/1/upload", {"d": [{"identity": "a", "type": "event", "evtName": "X", "evtData": {}}]}),
    ("POST", "/1/targets/create.json", {"name": "x", "estimate_only": False}),
    ("POST", "/1/targets/stop.json", {"id": 1}),
    ("POST", "/1/delete/profiles.json", {"identity": "user-00001"}),
    ("POST", "/1/demerge/profiles.json", {"identities": ["user-00001"]}),
    ("POST", "/1/subscribe", {"d": []}),
    ("POST", "/1/disassociate", {"d": []}),
    ("POST", "/1/send/push.json", {"to": {"Identity": ["user-00001"]}, "content": {"body": "hi"}}),
    ("GET", "/1/%75pload", None),  # percent-encoded 'upload'
    ("GET", "/1/PROFILE.json/../upload", None),
]


@pytest.mark.parametrize("method,path,body", WRITE_REQUESTS)
async def test_proxy_allows_only_read_paths(method: str, path: str, body: Any) -> None:
    async with mcp_client(read_only_runtime()) as client:
        message = err(await client.call_tool("clevertap_request", {"method": method, "path": path, "body": body}))
    assert "Input error" in message


async def test_proxy_read_paths_work_whatever_the_method() -> None:
    assert classify("GET", "/1/profile.json").reads
    async with mcp_client(read_only_runtime()) as client:
        count = ok(
            await client.call_tool(
                "clevertap_request",
                {
                    "method": "POST",
                    "path": "/1/counts/events.json",
                    "body": {"event_name": "Charged", "from": day(-7), "to": day(-1)},
                },
            )
        )
        profile = ok(
            await client.call_tool(
                "clevertap_request", {"method": "GET", "path": "/1/profile.json", "query": {"identity": "user-00001"}}
            )
        )
    assert count["status"] == 200 and count["body"]["status"] in ("success", "partial")
    assert profile["body"]["status"] == "success"


async def test_run_action_runs_only_known_reads() -> None:
    async with mcp_client(read_only_runtime()) as client:
        ran = ok(
            await client.call_tool(
                "clevertap_run_action",
                {"action": "get-event-count", "input": {"event_name": "Charged", "from": day(-7), "to": day(-1)}},
            )
        )
        assert ran["output"]["done"] is True
        for action in ("upload-events", "stop-campaign", "create-campaign", "delete-user-profile", "some-new-action"):
            message = err(await client.call_tool("clevertap_run_action", {"action": action, "input": {}}))
            assert "read-only" in message, action
        found = ok(await client.call_tool("clevertap_search_actions", {"intent": "upload events", "limit": 20}))
    assert found["actions"] and all(a["read_only"] for a in found["actions"])


async def test_irreversible_actions_with_a_tool_of_their_own_point_to_it_outside_read_only() -> None:
    async with mcp_client(make_runtime()) as client:
        for action, typed in [
            ("stop-campaign", "clevertap_stop_campaign"),
            ("create-campaign", "clevertap_create_campaign"),
        ]:
            message = err(await client.call_tool("clevertap_run_action", {"action": action, "input": {"id": 1}}))
            assert "Input error" in message and typed in message, message


async def test_unknown_tool_names_in_selection_are_a_startup_error() -> None:
    with pytest.raises(ValueError, match="Valid names"):
        make_runtime({"CLEVERTAP_MCP_TOOLS": "clevertap_get_events,clevertap_nope"})


async def test_exclusion_beats_inclusion() -> None:
    env = {
        "CLEVERTAP_MCP_TOOLS": "clevertap_get_events,clevertap_get_event_count",
        "CLEVERTAP_MCP_EXCLUDE_TOOLS": "clevertap_get_events",
    }
    async with mcp_client(make_runtime(env)) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        assert names == ["clevertap_get_event_count"]
        assert "unknown tool" in err(
            await client.call_tool("clevertap_get_events", {"event_name": "Charged", "from": day(-1), "to": day(0)})
        )
