"""Property: no spelling of any irreversible endpoint is sent without a consumed token, through the proxy, run_action
(by key and by id) and the typed tools; a token sends at most once. Upstream requests are counted where they arrive."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio.from_thread
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from server.policies.endpoints import ENDPOINTS
from tests.fakes.membrane import FakeMembrane, running_fake_membrane
from tests.helpers import day, make_runtime, mcp_client
from tests.upstream import Upstream, direct, served_sandbox

IRREVERSIBLE = sorted(e.path for e in ENDPOINTS if e.kind == "irreversible")
BODY = {
    "name": "Property",
    "target_mode": "push",
    "where": {"event_name": "Charged", "from": day(-2), "to": day(-1)},
    "content": {"title": "t", "body": "b"},
    "devices": ["android"],
    "when": "now",
    "to": {"Identity": ["user-00009"]},
    "id": 1,
    "d": [],
}


def _char(draw: Any, c: str) -> str:
    how = draw(st.sampled_from(["as is", "flip case", "encode", "encode lower", "double encode"]))
    if how == "flip case":
        return c.swapcase()
    if how == "encode":
        return f"%{ord(c):02X}"
    if how == "encode lower":
        return f"%{ord(c):02x}"
    if how == "double encode":
        return f"%25{ord(c):02X}"
    return c


@st.composite
def spellings(draw: Any) -> str:
    """One way to write one irreversible path: case, %-encodings (also of '/', and double), duplicate and trailing
    slashes, dot segments, a query string."""
    path = draw(st.sampled_from(IRREVERSIBLE))
    out = ""
    for segment in path.strip("/").split("/"):
        out += draw(st.sampled_from(["/", "/", "//", "/./", "/x/../", "%2F", "%2f"]))
        out += "".join(_char(draw, c) if draw(st.booleans()) else c for c in segment)
    out += draw(st.sampled_from(["", "", "/", "//", "%2F", "/."]))
    out += draw(st.sampled_from(["", "", "?x=1", "?estimate_only=true"]))
    return out


class Session:
    """An MCP client on a runtime, driven from synchronous hypothesis tests through a blocking portal."""

    def __init__(self, portal: Any, client: Client) -> None:
        self.portal = portal
        self.client = client

    def call(self, name: str, arguments: dict[str, Any]) -> Any:
        return self.portal.call(self.client.call_tool, name, arguments)


@pytest.fixture(scope="module")
def proxied() -> Iterator[tuple[Session, Upstream]]:
    with (
        served_sandbox() as (url, upstream),
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(mcp_client(direct(url))) as client,
    ):
        yield Session(portal, client), upstream


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=spellings(), method=st.sampled_from(["POST", "GET", "post", "PUT"]))
def test_no_spelling_of_an_irreversible_path_is_sent_without_a_consumed_token(
    proxied: tuple[Session, Upstream], path: str, method: str
) -> None:
    session, upstream = proxied
    before = len(upstream.seen)
    arguments = {"method": method, "path": path, "body": BODY}
    first = session.call("clevertap_request", arguments)
    assert len(upstream.seen) == before, (path, upstream.seen[before:])
    if first.is_error:
        return  # refused outright (a '?' in the path, '..' past the version...): nothing was sent
    preview = first.structured_content
    assert preview["sent"] is False and preview["confirm_token"], (path, preview)
    confirmed = session.call("clevertap_request", {**arguments, "confirm_token": preview["confirm_token"]})
    assert len(upstream.seen) == before + 1  # sent once, on the consumed token
    if confirmed.is_error:  # upstream's own refusal of what was sent (a 401 for a custom list's admin email)
        assert confirmed.content[0].text.startswith("CleverTap error"), confirmed.content[0].text
    else:
        assert confirmed.structured_content["sent"] is True
    replay = session.call("clevertap_request", {**arguments, "confirm_token": preview["confirm_token"]})
    assert replay.is_error and "already used" in replay.content[0].text
    assert len(upstream.seen) == before + 1


# -- run_action by key and by id (Membrane), and the typed tools (sandbox) --------------------------------------------


@pytest.fixture(scope="module")
def membrane() -> Iterator[tuple[Session, FakeMembrane]]:
    from server.backends.sandbox import create_app

    with running_fake_membrane(clevertap_app=create_app(), tokens={"tok-prop"}) as (url, fake):
        connection = fake.add_connection("READY")
        env = {"MEMBRANE_TOKEN": "tok-prop", "MEMBRANE_API_URL": url, "MEMBRANE_CONNECTION_ID": connection}
        with anyio.from_thread.start_blocking_portal() as portal:
            runtime = make_runtime(env, backend="membrane")
            with portal.wrap_async_context_manager(mcp_client(runtime)) as client:
                session = Session(portal, client)
                assert not session.call("clevertap_connect", {}).is_error
                yield session, fake


def _runs(fake: FakeMembrane) -> int:
    """Actions the fake really ran (it numbers each run; a route fallback after a 404 runs nothing)."""
    return fake._run_counter


def _attempts(fake: FakeMembrane) -> int:
    return sum(
        1 for c in fake.calls if c.path == "/act" or (c.path.startswith("/actions/") and c.path.endswith("/run"))
    )


# Every live action the server does not know as a read: the popular irreversible ones and the unclassifiable ones.
UNSAFE = ["create-campaign", "stop-campaign", "delete-user-profile", "always-fails", "list-custom-events"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(UNSAFE), by_id=st.booleans(), spelled=st.sampled_from(["as is", "upper", "padded"]))
def test_no_unsafe_action_runs_without_a_consumed_token(
    membrane: tuple[Session, FakeMembrane], key: str, by_id: bool, spelled: str
) -> None:
    session, fake = membrane
    action = next(a for a in fake.actions if a["key"] == key)["id" if by_id else "key"]
    action = {"as is": action, "upper": action.upper(), "padded": f" {action} "}[spelled]
    before, forwarded = _runs(fake), len(fake.forwarded)
    arguments = {"action": action, "input": {"campaignId": 1, "identity": "user-00001"}}
    attempts = _attempts(fake)
    first = session.call("clevertap_run_action", arguments)
    assert _attempts(fake) == attempts and _runs(fake) == before and len(fake.forwarded) == forwarded, first
    if first.is_error:
        return  # pointed to its typed tool, or unknown in this spelling: nothing ran
    token = first.structured_content["confirm_token"]
    session.call("clevertap_run_action", {**arguments, "confirm_token": token})
    assert _runs(fake) <= before + 1
    after = _runs(fake)
    attempts = _attempts(fake)
    replay = session.call("clevertap_run_action", {**arguments, "confirm_token": token})
    assert replay.is_error and _runs(fake) == after and _attempts(fake) == attempts


TYPED = [
    ("clevertap_create_campaign", {k: BODY[k] for k in ("name", "target_mode", "where", "content", "devices", "when")}),
    ("clevertap_delete_user_profile", {"identity": "user-00011"}),
    ("clevertap_stop_campaign", None),
]


@pytest.mark.parametrize("tool,arguments", TYPED)
def test_typed_tools_send_their_irreversible_request_once_per_token(
    proxied: tuple[Session, Upstream], tool: str, arguments: dict[str, Any] | None
) -> None:
    session, upstream = proxied
    if arguments is None:
        listed = session.call("clevertap_get_campaigns", {"from": day(-60), "to": day(14)}).structured_content
        arguments = {"id": next(c["id"] for c in listed["campaigns"] if c["status"] == "scheduled")}
    target = {
        "clevertap_create_campaign": "/1/targets/create.json",
        "clevertap_delete_user_profile": "/1/delete/profiles.json",
        "clevertap_stop_campaign": "/1/targets/stop.json",
    }[tool]

    def acted() -> int:
        if tool == "clevertap_create_campaign":
            return upstream.creations()
        return len(upstream.to(target))

    before = acted()
    preview = session.call(tool, arguments)
    assert not preview.is_error and preview.structured_content["confirm_token"] and acted() == before
    confirmed = {**arguments, "confirm_token": preview.structured_content["confirm_token"]}
    assert not session.call(tool, confirmed).is_error and acted() == before + 1
    session.call(tool, confirmed)  # a replay: refused, or (stop) sees the campaign stopped
    assert acted() == before + 1
