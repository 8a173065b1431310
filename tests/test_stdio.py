"""A real stdio subprocess, in both protocol eras, and the command-line contract."""

from __future__ import annotations

import json
import subprocess

import pytest
from mcp import Client, StdioServerParameters

from tests.helpers import ROOT, child_env, day, err, ok, sandbox_http, server_command
from tools.names import TOOL_NAMES

pytestmark = pytest.mark.anyio

ARGS = {"event_name": "Charged", "from": day(-30), "to": day(0)}


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_stdio_session_in_each_protocol_era(mode: str) -> None:
    # Through the fork server; tests/test_fast_start.py and tests/test_forkserver.py run a fresh interpreter.
    command = server_command("--sandbox")
    params = StdioServerParameters(command=command[0], args=command[1:], cwd=str(ROOT), env=child_env())
    async with Client(params, mode=mode) as client:
        expected = "2025-11-25" if mode == "legacy" else "2026-07-28"
        assert client.protocol_version == expected
        tools = (await client.list_tools()).tools
        assert {t.name for t in tools} == set(TOOL_NAMES)
        assert all(t.output_schema and t.annotations for t in tools)
        count = ok(await client.call_tool("clevertap_get_event_count", ARGS))
        assert count["count"] > 0
        assert "calendar date" in err(await client.call_tool("clevertap_get_event_count", {**ARGS, "from": 20260230}))
        assert ok(await client.call_tool("clevertap_get_event_count", ARGS))["count"] == count["count"]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        server_command(*args),
        cwd=ROOT,
        env=env or child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_tools_and_call_and_the_direct_backend_agree() -> None:
    listed = _cli("--sandbox", "tools")
    assert listed.returncode == 0, listed.stderr
    assert {t["name"] for t in json.loads(listed.stdout)} == set(TOOL_NAMES)

    sandbox = _cli("--sandbox", "call", "clevertap_get_event_count", json.dumps(ARGS))
    assert sandbox.returncode == 0, sandbox.stdout + sandbox.stderr
    expected = json.loads(sandbox.stdout)["count"]
    assert expected > 0

    with sandbox_http() as base_url:
        env = child_env(
            CLEVERTAP_ACCOUNT_ID="DEMO-SANDBOX", CLEVERTAP_PASSCODE="sandbox", CLEVERTAP_API_BASE_URL=base_url
        )
        direct = _cli("call", "clevertap_get_event_count", json.dumps(ARGS), env=env)
        assert direct.returncode == 0, direct.stdout + direct.stderr
        assert json.loads(direct.stdout)["count"] == expected

        wrong = dict(env, CLEVERTAP_PASSCODE="wrong-passcode-123")
        refused = _cli("call", "clevertap_get_event_count", json.dumps(ARGS), env=wrong)
        assert refused.returncode == 1
        assert "CleverTap" in refused.stdout and "Passcode" in refused.stdout
        assert "wrong-passcode-123" not in refused.stdout + refused.stderr

        connect = _cli("call", "clevertap_connect", "{}", env=wrong)
        assert connect.returncode == 0
        assert json.loads(connect.stdout)["state"] != "READY"


def test_cli_call_bad_json_and_bad_input_exit_1() -> None:
    bad_json = _cli("--sandbox", "call", "clevertap_get_event_count", "{not json")
    assert bad_json.returncode == 1 and "not valid JSON" in bad_json.stdout
    bad_input = _cli("--sandbox", "call", "clevertap_get_event_count", json.dumps({**ARGS, "to": day(-60)}))
    assert bad_input.returncode == 1 and "Input error" in bad_input.stdout
