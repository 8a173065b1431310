"""Property-based hostile input: every tool, arguments built from its published inputSchema, plus hostile values.

Every call must get an answer within a bound (a result, possibly ``isError``, or a JSON-RPC error for arguments that
are not an object), never an "Internal error", and the session must still serve a normal call afterwards.

Two clients, both in memory on the sandbox backend: ``mcp.Client`` for schema-following arguments (what a normal
client sends), and ``tests.rawmcp`` for hostile values (``mcp.Client`` turns NaN into null and refuses deep nesting,
so it cannot deliver them). Set ``CI=1`` for a derandomized run (the default profile is random but small);
``CLEVERTAP_FUZZ_EXAMPLES=500`` for a deeper local run.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from server.protocol.app import build_server
from tests.helpers import day, make_runtime, mcp_client, text
from tests.rawmcp import RawError, RawMcp, raw_client, result_text
from tests.strategies import DATE_HINTS, DEEP, HOSTILE, LONE_SURROGATES, arguments_for, hostile_arguments

CALL_BOUND_S = 20.0
LAYERS = ("Input error", "Configuration error", "Membrane error", "CleverTap error", "Confirmation required")
NORMAL = {"event_name": "Charged", "from": day(-7), "to": day(0)}
# The follow-up "normal call": one cheap read (a count would poll the emulator on every example).
CHECK_TOOL, CHECK_ARGS = "clevertap_real_time_user_count", {"device": True}

settings.register_profile(
    "clevertap-fuzz",
    max_examples=int(os.environ.get("CLEVERTAP_FUZZ_EXAMPLES", "12")),
    deadline=None,
    database=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
FUZZ = settings(settings.get_profile("clevertap-fuzz"))

TOOLS = {t.name: t.input_schema for t in build_server(make_runtime())[1].tools()}


@functools.cache
def schema_arguments(tool: str) -> st.SearchStrategy[dict[str, Any]]:
    """``tool``'s schema-following arguments, built once: both fuzz tests of a tool draw from the same strategy."""
    return arguments_for(TOOLS[tool], DATE_HINTS)


VALUES = HOSTILE


@dataclass
class Session:
    portal: BlockingPortal
    client: Any

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.portal.call(fn, *args)


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal("asyncio") as p:
        yield p


@pytest.fixture(scope="module")
def raw(portal: BlockingPortal) -> Iterator[Session]:
    with portal.wrap_async_context_manager(raw_client(make_runtime())) as client:
        yield Session(portal, client)


@pytest.fixture(scope="module")
def sdk(portal: BlockingPortal) -> Iterator[Session]:
    with portal.wrap_async_context_manager(mcp_client(make_runtime())) as client:
        yield Session(portal, client)


def check_text(body: str) -> None:
    assert "Internal error" not in body, body[:500]
    assert "Traceback" not in body, body[:500]
    # The emulator answers bad input with 4xx like CleverTap; a 500 is a crash in it (and costs retries).
    assert "HTTP 500" not in body, body[:500]


def check_raw_answer(result: dict[str, Any]) -> None:
    """A tool result: structured content when it succeeded, a layer-named error text when it did not."""
    body = result_text(result)
    if result.get("isError"):
        assert body.startswith(LAYERS), body[:500]
    else:
        assert isinstance(result.get("structuredContent"), dict), body[:500]
    check_text(body)


async def _raw_call(client: RawMcp, name: str, arguments: Any) -> dict[str, Any] | RawError:
    try:
        return await client.call_tool(name, arguments, timeout=CALL_BOUND_S)
    except RawError as exc:
        return exc


async def _raw_normal(client: RawMcp) -> None:
    result = await client.call_tool(CHECK_TOOL, CHECK_ARGS, timeout=CALL_BOUND_S)
    assert not result.get("isError"), result_text(result)
    assert isinstance(result["structuredContent"]["count"], int)


def raw_call_then_normal(session: Session, name: str, arguments: Any) -> dict[str, Any] | RawError:
    answer = session.run(_raw_call, session.client, name, arguments)
    session.run(_raw_normal, session.client)
    return answer


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_schema_following_arguments_get_an_answer(sdk: Session, tool: str) -> None:
    strategy = schema_arguments(tool)

    async def call(client: Client, arguments: dict[str, Any]) -> None:
        with anyio.fail_after(CALL_BOUND_S):
            result = await client.call_tool(tool, arguments)
            body = text(result)
            if result.is_error:
                assert body.startswith(LAYERS), body[:500]
            else:
                assert isinstance(result.structured_content, dict), body[:500]
            check_text(body)
            after = await client.call_tool(CHECK_TOOL, CHECK_ARGS)
            assert not after.is_error, text(after)

    @FUZZ
    @given(arguments=strategy)
    def run(arguments: dict[str, Any]) -> None:
        sdk.run(call, sdk.client, arguments)

    run()


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_hostile_values_get_an_answer(raw: Session, tool: str) -> None:
    @FUZZ
    @given(arguments=hostile_arguments(TOOLS[tool], VALUES, base=schema_arguments(tool)))
    def run(arguments: dict[str, Any]) -> None:
        answer = raw_call_then_normal(raw, tool, arguments)
        assert isinstance(answer, dict), answer
        check_raw_answer(answer)

    run()


@FUZZ
@given(tool=st.sampled_from([*sorted(TOOLS), "clevertap_nope", "", "\u202e" * 3]), arguments=st.sampled_from(VALUES))
def test_arguments_that_are_not_an_object_get_an_answer(raw: Session, tool: str, arguments: Any) -> None:
    answer = raw_call_then_normal(raw, tool, arguments)
    if isinstance(answer, RawError):
        assert answer.code == -32602, answer  # the SDK refuses non-object arguments as invalid params
    else:
        check_raw_answer(answer)


CAMPAIGN = {"name": "n", "target_mode": "sms", "content": {"body": "b"}, "when": "now", "where": {}}


@pytest.mark.parametrize("value", [DEEP, *LONE_SURROGATES], ids=["deep-1000", "surrogate-1", "surrogate-2", "surr-3"])
def test_deep_nesting_and_lone_surrogates_are_input_errors(raw: Session, value: Any) -> None:
    """1,000 levels of nesting and lone surrogates (which JSON escapes allow) are input errors, not crashes."""
    for tool, arguments in [
        ("clevertap_get_event_count", {**NORMAL, "req_id": value}),
        ("clevertap_create_campaign", {**CAMPAIGN, "provider_nick_name": value}),
        ("clevertap_delete_user_profile", {"identity": value}),
        ("clevertap_request", {"method": "POST", "path": "/1/counts/events.json", "body": {"x": value}}),
    ]:
        answer = raw_call_then_normal(raw, tool, arguments)
        assert isinstance(answer, dict), answer
        check_raw_answer(answer)
        assert result_text(answer).startswith("Input error"), result_text(answer)[:300]
