"""Finding 7: with --redact-pii no personal data reaches the model on any path: previews, the proxy (counts grouped by
Email, even read-only), run_action, exports, email-like identities and custom fields, errors, live Membrane outputs,
and keys the operator adds. The leak scan below is written independently of ``server.policies.privacy``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import mcp.types as types
import pytest

from server.backends.sandbox import SandboxConfig, create_app
from tests.fakes.membrane import FakeMembrane, running_fake_membrane
from tests.helpers import day, err, make_runtime, mcp_client, ok, text

pytestmark = pytest.mark.anyio

# An address whose local part is not exactly one character followed by *** is a leak.
_ADDRESS = re.compile(r"([A-Za-z0-9._%+*-]+)@[A-Za-z0-9-]+\.[A-Za-z.]+")
_PHONE = re.compile(r"\+\d[\d \-().]{6,}\d")

PLANTED = {
    "identity": "jane.roe@corp.test",
    "ts": 1_790_000_000,
    "profileData": {
        "Name": "Jane Roe",
        "Email": "jane.roe@corp.test",
        "Phone": "+447700900123",
        "Backup Contact": "boss.person@corp.test",
        "Note": "call me on +44 20 7946 0958 after six",
        "Loyalty Code": "LC-998877",
    },
}


def leaks(result: types.CallToolResult) -> list[str]:
    """Unmasked addresses and phone numbers, and the planted name, in the text and the structured copy."""
    blobs = [text(result), json.dumps(result.structured_content or {}, ensure_ascii=False)]
    found: list[str] = []
    for blob in blobs:
        found += [m.group(0) for m in _ADDRESS.finditer(blob) if not re.fullmatch(r".\*\*\*", m.group(1))]
        found += [m.group(0) for m in _PHONE.finditer(blob) if "***" not in m.group(0)]
        found += [name for name in ("Jane Roe", "Kai Hoffmann") if name in blob]
    return found


def clean(result: types.CallToolResult) -> types.CallToolResult:
    assert not leaks(result), leaks(result)
    return result


async def test_every_path_masks_personal_data() -> None:
    span = {"event_name": "Charged", "from": day(-7), "to": day(-1)}
    async with mcp_client(make_runtime(redact_pii=True)) as client:
        upload = ok(clean(await client.call_tool("clevertap_upload_user_profiles", {"profiles": [PLANTED]})))
        assert upload["processed"] == 1
        # The planted profile through the proxy: an email-like identity, custom fields holding contact details.
        lookup = clean(
            await client.call_tool(
                "clevertap_request",
                {"method": "GET", "path": "/1/profile.json", "query": {"identity": PLANTED["identity"]}},
            )
        )
        assert "j***@corp.test" in text(lookup) and "LC-998877" in text(lookup)
        # A count grouped by Email: keyed by the addresses themselves; the counts survive.
        top = ok(
            clean(
                await client.call_tool(
                    "clevertap_request",
                    {
                        "method": "POST",
                        "path": "/1/counts/top.json",
                        "body": {**span, "groups": {"e": {"property_type": "profile_fields", "name": "Email"}}},
                    },
                )
            )
        )
        counts = top["body"]["e"]["STR"]
        assert len(counts) >= 3 and all(isinstance(n, int) for n in counts.values())
        # Exports, by tool and by run_action.
        page = ok(clean(await client.call_tool("clevertap_get_user_profiles", {**span, "batch_size": 20})))
        assert page["records"]
        ok(clean(await client.call_tool("clevertap_get_events", {**span, "batch_size": 20})))
        ran = ok(
            clean(
                await client.call_tool(
                    "clevertap_run_action", {"action": "get-user-profiles", "input": {**span, "batch_size": 20}}
                )
            )
        )
        assert ran["output"]["records"]
        # The delete preview used to show the name and the address of the profile about to go.
        identity = page["records"][0]["identity"]
        preview = ok(clean(await client.call_tool("clevertap_delete_user_profile", {"identity": identity})))
        assert preview["confirm_token"] and preview["found"][0]["found"] is True
        # Errors that quote what was sent.
        error = clean(
            await client.call_tool("clevertap_run_action", {"action": "mail ceo.person@corp.test", "input": {}})
        )
        assert error.is_error and "c***@corp.test" in err(error)


async def test_read_only_still_masks_the_proxy() -> None:
    async with mcp_client(make_runtime(redact_pii=True, read_only=True)) as client:
        clean(
            await client.call_tool(
                "clevertap_request",
                {
                    "method": "POST",
                    "path": "/1/counts/top.json",
                    "body": {
                        "event_name": "Charged",
                        "from": day(-7),
                        "to": day(-1),
                        "groups": {"e": {"property_type": "profile_fields", "name": "Email"}},
                    },
                },
            )
        )


async def test_configured_keys_are_masked_and_nothing_is_masked_without_the_flag() -> None:
    async with mcp_client(make_runtime({"CLEVERTAP_MCP_REDACT_KEYS": "loyalty_code"}, redact_pii=True)) as client:
        ok(await client.call_tool("clevertap_upload_user_profiles", {"profiles": [PLANTED]}))
        query = {"identity": PLANTED["identity"]}
        masked = ok(
            await client.call_tool("clevertap_request", {"method": "GET", "path": "/1/profile.json", "query": query})
        )
    assert "LC-998877" not in json.dumps(masked) and "L***" in json.dumps(masked)
    async with mcp_client(make_runtime()) as client:
        ok(await client.call_tool("clevertap_upload_user_profiles", {"profiles": [PLANTED]}))
        plain = await client.call_tool(
            "clevertap_request", {"method": "GET", "path": "/1/profile.json", "query": query}
        )
    # The negative control: the scan does find the planted data when nothing masks it.
    assert {"jane.roe@corp.test", "boss.person@corp.test", "Jane Roe"} <= set(leaks(plain)), leaks(plain)


@pytest.fixture
def membrane() -> Iterator[tuple[str, FakeMembrane]]:
    app = create_app(SandboxConfig(seed_profiles=100, seed_events=2_000))
    with running_fake_membrane(clevertap_app=app, tokens={"mbr-token-redaction-0123456"}, build_seconds=0.1) as pair:
        yield pair


async def test_live_membrane_outputs_are_masked(membrane: tuple[str, FakeMembrane]) -> None:
    url, fake = membrane
    env = {"MEMBRANE_TOKEN": "mbr-token-redaction-0123456", "MEMBRANE_API_URL": url}
    runtime = make_runtime(env, backend=None, redact_pii=True)
    async with mcp_client(runtime) as client:
        pending = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 5}))
        fake.complete_client_action(pending["connection_id"])
        assert ok(await client.call_tool("clevertap_connect", {"wait_seconds": 5}))["state"] == "READY"
        await client.list_tools()
        args = {"eventName": "Charged", "fromDate": day(-7), "toDate": day(0)}
        first: Any = ok(await client.call_tool("clevertap_get_user_profiles", args))
        cursor = first["output"]["cursor"]
        live: Any = ok(clean(await client.call_tool("clevertap_get_user_profiles_by_cursor", {"cursor": cursor})))
    assert live.get("action_run_id"), live
    assert "***@example.com" in json.dumps(live)
