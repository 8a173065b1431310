"""Finding 11: a bad CLEVERTAP_API_BASE_URL (wrong scheme, malformed) or an unknown region is a configuration error,
said at start-up or by clevertap_connect, never an "Internal error"."""

from __future__ import annotations

import subprocess

import pytest

from server.config import Settings
from server.runtime import Runtime
from tests.helpers import ROOT, child_env, err, mcp_client, ok, server_command

pytestmark = pytest.mark.anyio

BAD_URLS = [
    "ftp://api.clevertap.com",
    "https://[bad",
    "https://exa mple.com",
    "https://host:99999",
    "https://",
    "https://a..b",
    "api.clevertap.com",
]


def _runtime(**settings: str) -> Runtime:
    base = {"backend": "clevertap", "clevertap_account_id": "ACC-1", "clevertap_passcode": "pass-abcdef"}
    return Runtime(Settings.model_validate({**base, **settings}))


@pytest.mark.parametrize("url", BAD_URLS)
async def test_connect_reports_a_bad_base_url_as_configuration(url: str) -> None:
    async with mcp_client(_runtime(clevertap_api_base_url=url)) as client:
        connect = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 1}))
        count = err(
            await client.call_tool("clevertap_get_event_count", {"event_name": "x", "from": 20260101, "to": 20260102})
        )
    assert connect["state"] == "NOT_CONFIGURED", connect
    assert "CLEVERTAP_API_BASE_URL" in connect["message"] and "restart" in connect["next_step"]
    assert count.startswith("Configuration error"), count
    assert "Internal error" not in count


async def test_connect_reports_an_unknown_region_as_configuration() -> None:
    async with mcp_client(_runtime(clevertap_region="xx9")) as client:
        connect = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 1}))
    assert connect["state"] == "NOT_CONFIGURED"
    assert "eu1" in connect["message"] and "xx9" in connect["message"]


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"CLEVERTAP_API_BASE_URL": "ftp://api.clevertap.com"}, "not an http(s) URL"),
        ({"CLEVERTAP_API_BASE_URL": "https://[bad"}, "not a valid URL"),
        ({"CLEVERTAP_API_BASE_URL": "https://user:hunter2-secret@x.test"}, "must not carry credentials"),
        ({"CLEVERTAP_REGION": "xx9"}, "not a CleverTap region"),
    ],
)
def test_the_server_refuses_to_start_with_a_bad_setting(env: dict[str, str], said: str) -> None:
    """A real stdio server: exit code 2 and one readable line on stderr, nothing on stdout."""
    full = child_env(CLEVERTAP_ACCOUNT_ID="ACC-1", CLEVERTAP_PASSCODE="pass-abcdef", **env)
    proc = subprocess.run(server_command(), cwd=ROOT, env=full, input=b"", capture_output=True, timeout=60)
    stderr = proc.stderr.decode()
    assert proc.returncode == 2, stderr
    assert said in stderr and "Traceback" not in stderr
    assert proc.stdout == b""
    assert "hunter2" not in stderr
