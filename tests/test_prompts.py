"""The four MCP prompts through MCP: listed with typed arguments, rendered with concrete dates, naming only listed
tools in order, leaving out writes in read-only mode, refusing bad arguments, and listed in the catalog resource."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from typing import Any

import mcp.types as types
import pytest
from mcp import Client, StdioServerParameters

from tests.helpers import ROOT, child_env, make_runtime, mcp_client, server_command

pytestmark = pytest.mark.anyio

NAMES = ["weekly_kpi_report", "campaign_postmortem", "investigate_metric_drop", "launch_campaign_safely"]
ARGS: dict[str, dict[str, str]] = {
    "weekly_kpi_report": {"week": "2026-11-18", "events": "App Launched, Charged, Searched"},
    "campaign_postmortem": {"campaign_id": "1764500000", "days": "14"},
    "investigate_metric_drop": {"event": "Charged", "day": "2026-11-26", "measure": "users"},
    "launch_campaign_safely": {"goal": "win back lapsed buyers", "audience": "bought 30-60 days ago, not since"},
}


def prompt_text(result: types.GetPromptResult) -> str:
    (message,) = result.messages
    assert message.role == "user"
    assert isinstance(message.content, types.TextContent)
    return message.content.text


def tools_named(text: str) -> list[str]:
    return re.findall(r"\bclevertap_[a-z_]+\b", text)


async def test_four_prompts_with_described_typed_arguments() -> None:
    async with mcp_client() as client:
        listed = (await client.list_prompts()).prompts
    assert [p.name for p in listed] == NAMES
    for prompt in listed:
        assert prompt.title and prompt.description and len(prompt.description) > 40
        assert prompt.arguments
        for arg in prompt.arguments:
            assert arg.description and isinstance(arg.required, bool)
    required = {p.name: sorted(a.name for a in p.arguments or [] if a.required) for p in listed}
    assert required == {
        "weekly_kpi_report": [],
        "campaign_postmortem": ["campaign_id"],
        "investigate_metric_drop": ["day", "event"],
        "launch_campaign_safely": ["audience", "goal"],
    }


@pytest.mark.parametrize("read_only", [False, True])
async def test_every_prompt_renders_its_arguments_and_names_only_listed_tools(read_only: bool) -> None:
    async with mcp_client(make_runtime(read_only=read_only)) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        texts = {name: prompt_text(await client.get_prompt(name, ARGS[name])) for name in NAMES}
    for name, text in texts.items():
        named = tools_named(text)
        assert named, name
        assert set(named) <= listed, (name, set(named) - listed)
        assert "Show the user" in text or "draft" in text, name
    weekly = texts["weekly_kpi_report"]
    # 2026-11-18 is a Wednesday: the week is Monday 16 to Sunday 22, compared with the week before.
    assert "2026-11-16 to 2026-11-22" in weekly and "2026-11-09 to 2026-11-15" in weekly
    assert "'Searched'" in weekly and "week-over-week" in weekly and "chart=true" in weekly
    assert tools_named(weekly).index("clevertap_get_trends") < tools_named(weekly).index("clevertap_get_campaigns")
    assert "1764500000" in texts["campaign_postmortem"] and "14 days" in texts["campaign_postmortem"]
    drop = texts["investigate_metric_drop"]
    assert "2026-11-26" in drop and "2026-11-19" in drop and "measure=users" in drop
    assert all(word in drop for word in ("platform", "city", "campaign"))


async def test_launch_campaign_safely_confirms_before_creating_and_read_only_never_creates() -> None:
    async with mcp_client() as client:
        text = prompt_text(await client.get_prompt("launch_campaign_safely", ARGS["launch_campaign_safely"]))
    order = tools_named(text)
    first_create = order.index("clevertap_create_campaign")
    assert order.index("clevertap_get_profile_count") < first_create
    assert order.count("clevertap_create_campaign") == 2
    # The preview comes first, then the user's explicit yes, then the call with the token.
    preview, confirm, create = (
        text.index(s) for s in ("WITHOUT confirm_token", "explicit yes", "plus the confirm_token")
    )
    assert preview < confirm < create
    assert "Never skip" in text
    async with mcp_client(make_runtime(read_only=True)) as client:
        read_only = prompt_text(await client.get_prompt("launch_campaign_safely", ARGS["launch_campaign_safely"]))
    assert "clevertap_create_campaign" not in read_only and "confirm_token" not in read_only
    assert "read-only" in read_only and "clevertap_get_profile_count" in read_only
    # A server started without the campaign tool plans the same way as a read-only one.
    async with mcp_client(make_runtime(exclude_tools=("clevertap_create_campaign",))) as client:
        excluded = prompt_text(await client.get_prompt("launch_campaign_safely", ARGS["launch_campaign_safely"]))
    assert "clevertap_create_campaign" not in excluded


async def test_defaults_give_last_week_and_the_usual_events() -> None:
    today = dt.datetime.now(dt.timezone.utc).date()
    last_monday = today - dt.timedelta(days=today.weekday() + 7)
    async with mcp_client() as client:
        text = prompt_text(await client.get_prompt("weekly_kpi_report", {}))
    assert f"{last_monday.isoformat()} to {(last_monday + dt.timedelta(days=6)).isoformat()}" in text
    assert "'App Launched', 'Charged'" in text and "'Amount'" in text


@pytest.mark.parametrize(
    ("name", "args", "words"),
    [
        ("campaign_postmortem", {}, ["campaign_id"]),
        ("campaign_postmortem", {"campaign_id": "abc"}, ["campaign_id", "whole number"]),
        ("investigate_metric_drop", {"event": "Charged", "day": "2026-02-30"}, ["day", "calendar"]),
        ("investigate_metric_drop", {"event": "Charged", "day": "today", "measure": "revenue"}, ["measure"]),
        ("launch_campaign_safely", {"goal": "x"}, ["audience"]),
        ("weekly_kpi_report", {"weeks": "2"}, ["weeks", "week"]),
        ("no_such_prompt", {}, ["weekly_kpi_report"]),
    ],
)
async def test_bad_prompt_arguments_are_explained(name: str, args: dict[str, str], words: list[str]) -> None:
    async with mcp_client() as client:
        with pytest.raises(Exception) as caught:
            await client.get_prompt(name, args)
        message = str(caught.value)
        for word in words:
            assert word in message, message
        assert len((await client.list_prompts()).prompts) == 4  # the server keeps serving


async def test_catalog_resource_lists_the_prompts() -> None:
    async with mcp_client() as client:
        (content,) = (await client.read_resource("clevertap://catalog")).contents
    assert isinstance(content, types.TextResourceContents)
    catalog: dict[str, Any] = json.loads(content.text)
    assert [p["name"] for p in catalog["prompts"]] == NAMES
    assert all(p["description"] and p["arguments"] for p in catalog["prompts"])


async def test_prompts_over_real_stdio() -> None:
    params = StdioServerParameters(
        command=sys.executable, args=server_command("--sandbox")[1:], cwd=str(ROOT), env=child_env()
    )
    async with Client(params, mode="legacy") as client:
        assert [p.name for p in (await client.list_prompts()).prompts] == NAMES
        text = prompt_text(await client.get_prompt("investigate_metric_drop", {"event": "Charged", "day": "yesterday"}))
    assert "clevertap_get_trends" in text
