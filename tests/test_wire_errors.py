"""Wire quirks end in the client as typed errors; retries, budgets, lost writes and network errors are written once.

Through MCP against a scriptable CleverTap served on 127.0.0.1 (``QuirkyCleverTap``) and the fake Membrane API: every
variant of "campaign not completed", "profile not found", the campaign list's shapes and refused credentials on the
raw proxy; reads retried and writes sent once on both backends; one wording for network failures. The shared module
(``server.backends.retry``) also has direct tests of its pieces.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from mcp import Client

from server.backends import network, retry
from server.backends.sandbox import SandboxConfig, create_app
from tests.fakes.membrane import FakeMembrane, running_fake_membrane, serve_asgi
from tests.fakes.quirky_clevertap import QuirkyCleverTap, Reply
from tests.helpers import err, free_port, make_runtime, mcp_client, ok
from tools.errors import CleverTapError, InputError, MembraneError, UpstreamError

pytestmark = pytest.mark.anyio

MEMBRANE_TOKEN = "mbr-tenant-token-wire-errors-0123"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, QuirkyCleverTap]]:
    fake = QuirkyCleverTap()
    with serve_asgi(fake) as url:
        yield url, fake


@pytest.fixture
def fake(served: tuple[str, QuirkyCleverTap]) -> QuirkyCleverTap:
    _, quirky = served
    quirky.seen.clear()
    quirky._scripts.clear()
    quirky._routes.clear()
    return quirky


def direct(url: str, passcode: str | None = None, **overrides: Any) -> Any:
    """A runtime of the clevertap backend on ``url`` (QuirkyCleverTap's default credentials)."""
    return make_runtime(
        backend="clevertap",
        clevertap_account_id="TEST-ACC-123",
        clevertap_passcode=passcode or "pc-secret-9",
        clevertap_api_base_url=url,
        **overrides,
    )


@pytest.fixture
async def client(served: tuple[str, QuirkyCleverTap], fake: QuirkyCleverTap) -> AsyncIterator[Client]:
    url, _ = served
    async with mcp_client(direct(url, retry_backoff_s=0.01)) as session:
        yield session


# -- campaign not completed ------------------------------------------------------------------------------------------

NOT_COMPLETED = [
    Reply(200, {"error": "This target hasn't been completed", "status": "fail"}),  # the documented answer
    Reply(409, {"error": "This target hasn't been completed", "status": "fail"}),  # with CREWM's HTTP 409
    Reply(200, {"status": "fail", "error": "Campaign has not been completed yet", "code": 409}),
    Reply(409, {"status": "fail", "error": "Conflict"}),  # a 409 whatever the words
    Reply(200, {"status": "fail", "error": "Target state conflict", "code": "409"}),
]


@pytest.mark.parametrize("reply", NOT_COMPLETED, ids=["doc", "http409", "wording", "bare409", "code409"])
async def test_every_not_completed_answer_is_a_report_not_an_error(
    client: Client, fake: QuirkyCleverTap, reply: Reply
) -> None:
    fake.script("POST", "/1/targets/result.json", reply)
    out = ok(await client.call_tool("clevertap_get_campaign_report", {"id": 1457432766}))
    assert out["completed"] is False and out["id"] == 1457432766, out
    assert "only completed campaigns" in out["next_step"] and out["message"]
    assert len(fake.calls("POST", "/1/targets/result.json")) == 1  # a state, not a failure: not retried


async def test_other_report_failures_stay_errors(client: Client, fake: QuirkyCleverTap) -> None:
    fake.script("POST", "/1/targets/result.json", Reply(200, {"status": "fail", "error": "Invalid id", "code": 400}))
    message = err(await client.call_tool("clevertap_get_campaign_report", {"id": 5}))
    assert message.startswith("CleverTap error") and "Invalid id" in message and "What to do:" in message


async def test_stop_reads_a_not_completed_campaign_as_stoppable(client: Client, fake: QuirkyCleverTap) -> None:
    fake.script("POST", "/1/targets/result.json", Reply(409, {"status": "fail", "error": "Conflict"}))
    fake.script("POST", "/1/targets/list.json", Reply(200, {"status": "success", "campaigns": [{"id": 77}]}))
    out = ok(await client.call_tool("clevertap_stop_campaign", {"id": 77}))
    assert out["stopped"] is False and out["confirm_token"], out
    assert "not completed" in out["message"] and not fake.calls("POST", "/1/targets/stop.json")


# -- the campaign list's shapes ----------------------------------------------------------------------------------------

CAMPAIGNS = [{"id": 1, "name": "A", "status": "running"}, {"id": 2, "name": "B", "status": "completed"}]


@pytest.mark.parametrize(
    "body",
    [
        {"status": "success", "targets": CAMPAIGNS},
        {"status": "success", "campaigns": CAMPAIGNS},
        {"status": "success", "data": CAMPAIGNS},
        CAMPAIGNS,
    ],
    ids=["targets", "campaigns", "data", "list"],
)
async def test_every_campaign_list_shape_is_listed(client: Client, fake: QuirkyCleverTap, body: Any) -> None:
    fake.script("POST", "/1/targets/list.json", Reply(200, body))
    out = ok(await client.call_tool("clevertap_get_campaigns", {"from": 20260101, "to": 20260131}))
    assert [c["id"] for c in out["campaigns"]] == [1, 2] and out["count"] == 2, out


# -- profile not found -----------------------------------------------------------------------------------------------

NOT_FOUND = [
    Reply(200, {"status": "fail", "error": "Profile not found", "code": 404}),
    Reply(404, {"status": "fail", "error": "Profile not found", "code": 404}),
    Reply(404, {"status": "fail", "error": "Unknown identity"}),  # a 404 whatever the words
    Reply(200, {"status": "fail", "error": "User does not exist"}),
    Reply(200, {"status": "success", "record": None}),
    Reply(200, {"status": "success", "record": {}}),
    Reply(200, {"status": "success"}),
    Reply(200, {"status": "success", "record": []}),
]
NOT_FOUND_IDS = ["fail404", "http404", "bare404", "does-not-exist", "null", "empty", "missing", "empty-list"]


@pytest.mark.parametrize("reply", NOT_FOUND, ids=NOT_FOUND_IDS)
async def test_every_not_found_answer_is_found_false(client: Client, fake: QuirkyCleverTap, reply: Reply) -> None:
    fake.script("GET", "/1/profile.json", reply)
    out = ok(await client.call_tool("clevertap_get_user_profile", {"identity": "nobody"}))
    assert out["found"] is False and "must match exactly" in out["next_step"], out


@pytest.mark.parametrize("reply", NOT_FOUND, ids=NOT_FOUND_IDS)
async def test_delete_preview_says_not_found_for_every_variant(
    client: Client, fake: QuirkyCleverTap, reply: Reply
) -> None:
    fake.script("GET", "/1/profile.json", reply)
    out = ok(await client.call_tool("clevertap_delete_user_profile", {"identity": "nobody"}))
    assert out["deleted"] is False and out["found"] == [{"id": "nobody", "found": False}], out
    assert not fake.calls("POST", "/1/delete/profiles.json")


async def test_a_failing_lookup_is_not_taken_for_a_missing_profile(client: Client, fake: QuirkyCleverTap) -> None:
    fake.script("GET", "/1/profile.json", *[Reply(503, "unavailable")] * 3)
    message = err(await client.call_tool("clevertap_get_user_profile", {"identity": "u1"}))
    assert "HTTP 503" in message and "tried 3 times" in message, message
    fake.script("GET", "/1/profile.json", Reply(200, {"status": "fail", "error": "Invalid Credentials", "code": 401}))
    message = err(await client.call_tool("clevertap_delete_user_profile", {"identity": "u1"}))
    assert "refused the credentials" in message, message


async def test_a_lookup_answered_later_is_polled_by_the_client(client: Client, fake: QuirkyCleverTap) -> None:
    record = {"identity": "u1", "profileData": {"Name": "Jack"}}
    fake.script(
        "GET", "/1/profile.json", Reply(200, {"status": "partial", "req_id": 77}), Reply(200, {"record": [record]})
    )
    out = ok(await client.call_tool("clevertap_get_user_profile", {"identity": "u1"}))
    assert out["found"] is True and out["profile"]["identity"] == "u1", out
    first, poll = fake.calls("GET", "/1/profile.json")
    assert first.query == {"identity": ["u1"]} and poll.query == {"req_id": ["77"]}
    fake.script("GET", "/1/profile.json", Reply(200, {"status": "partial", "req_id": 78}), NOT_FOUND[0])
    assert ok(await client.call_tool("clevertap_get_user_profile", {"identity": "u2"}))["found"] is False


# -- the raw proxy: credentials and lost answers ----------------------------------------------------------------------


async def test_proxy_refused_credentials_are_a_credentials_error(served: tuple[str, QuirkyCleverTap]) -> None:
    url, _ = served
    async with mcp_client(direct(url, passcode="wrong-passcode")) as session:
        args = {"method": "GET", "path": "/1/profile.json", "query": {"identity": "u1"}}
        message = err(await session.call_tool("clevertap_request", args))
    assert message.startswith("CleverTap error: CleverTap refused the credentials"), message
    assert "Passcode Invalid" in message and "CLEVERTAP_PASSCODE" in message


async def test_proxy_credentials_refused_inside_http_200(client: Client, fake: QuirkyCleverTap) -> None:
    fake.script("POST", "/1/now.json", Reply(200, {"status": "fail", "error": "Invalid Credentials", "code": 401}))
    message = err(await client.call_tool("clevertap_request", {"method": "POST", "path": "/1/now.json", "body": {}}))
    assert "refused the credentials" in message and "Invalid Credentials" in message, message


async def test_a_401_about_something_else_is_not_a_credentials_error(served: tuple[str, QuirkyCleverTap]) -> None:
    url, fake = served
    refused = {
        "status": "fail",
        "error": "Email id is either not in the right format or does not belong to a valid admin",
    }
    path = "/1/upload_custom_list_segment_completed"
    fake.script("POST", path, Reply(401, {**refused, "code": 401}))
    async with mcp_client(direct(url, confirm="never")) as session:
        out = ok(await session.call_tool("clevertap_request", {"method": "POST", "path": path, "body": {"name": "x"}}))
    assert out["sent"] is True and out["status"] == 401 and "valid admin" in out["body"]["error"], out


async def test_proxy_passes_other_statuses_through(client: Client, fake: QuirkyCleverTap) -> None:
    fake.script("GET", "/1/profile.json", Reply(404, {"status": "fail", "error": "Profile not found", "code": 404}))
    out = ok(await client.call_tool("clevertap_request", {"path": "/1/profile.json", "query": {"identity": "x"}}))
    assert out["sent"] is True and out["status"] == 404 and out["body"]["error"] == "Profile not found"


async def test_proxy_write_with_a_lost_answer_is_sent_once_and_uncertain(served: tuple[str, QuirkyCleverTap]) -> None:
    url, fake = served
    fake.seen.clear()
    fake.script("POST", "/1/upload", Reply(200, {"status": "success", "processed": 1}, delay_s=3))
    async with mcp_client(direct(url, call_budget_s=0.3)) as session:
        body = {"d": [{"identity": "u1", "type": "profile", "profileData": {"Name": "A"}}]}
        message = err(
            await session.call_tool("clevertap_request", {"method": "POST", "path": "/1/upload", "body": body})
        )
    assert "time budget" in message and "may or may not have been applied" in message, message
    assert "before calling again" in message and len(fake.calls("POST", "/1/upload")) == 1


async def test_proxy_read_with_a_lost_answer_is_not_called_uncertain(served: tuple[str, QuirkyCleverTap]) -> None:
    url, fake = served
    fake.script("POST", "/1/counts/events.json", Reply(200, {"status": "success", "count": 1}, delay_s=3))
    async with mcp_client(direct(url, call_budget_s=0.3)) as session:
        args = {"method": "POST", "path": "/1/counts/events.json", "body": {"event_name": "x"}}
        message = err(await session.call_tool("clevertap_request", args))
    assert "time budget" in message and "may or may not" not in message, message


# -- retries, shared by both backends ---------------------------------------------------------------------------------


def http_date(seconds_ahead: float) -> str:
    return email.utils.formatdate(time.time() + seconds_ahead, usegmt=True)


async def test_clevertap_reads_retry_and_honour_a_short_retry_after(client: Client, fake: QuirkyCleverTap) -> None:
    fake.script(
        "POST", "/1/now.json", Reply(503, "busy", {"Retry-After": "0"}), Reply(429, "slow", {"Retry-After": "0"})
    )
    out = ok(await client.call_tool("clevertap_real_time_user_count", {}))
    assert out and len(fake.calls("POST", "/1/now.json")) == 3


@pytest.mark.parametrize("retry_after", ["600", http_date(3600)], ids=["seconds", "http-date"])
async def test_clevertap_a_long_retry_after_is_not_waited_for(
    client: Client, fake: QuirkyCleverTap, retry_after: str
) -> None:
    fake.script("POST", "/1/now.json", Reply(503, "busy", {"Retry-After": retry_after}))
    message = err(await client.call_tool("clevertap_real_time_user_count", {}))
    assert "tried 1 time" in message and "asked to wait" in message, message
    assert len(fake.calls("POST", "/1/now.json")) == 1


@pytest.fixture
def membrane() -> Iterator[tuple[str, FakeMembrane]]:
    app = create_app(SandboxConfig(seed_profiles=20, seed_events=50))
    with running_fake_membrane(clevertap_app=app, tokens={MEMBRANE_TOKEN}, build_seconds=0.0) as pair:
        yield pair


def membrane_runtime(url: str, connection: str, **overrides: Any) -> Any:
    env = {"MEMBRANE_TOKEN": MEMBRANE_TOKEN, "MEMBRANE_API_URL": url, "MEMBRANE_CONNECTION_ID": connection}
    return make_runtime(env, backend=None, retry_backoff_s=0.01, **overrides)


async def test_membrane_reads_use_the_same_retry_policy(membrane: tuple[str, FakeMembrane]) -> None:
    url, fake = membrane
    connection = fake.add_connection("READY")
    async with mcp_client(membrane_runtime(url, connection)) as session:
        ok(await session.call_tool("clevertap_search_actions", {"intent": "campaigns"}))  # connects first
        before = len(fake.calls_to("GET", "/actions"))
        fake.fault("503", "/actions", method="GET", times=2, retry_after=0)
        ok(await session.call_tool("clevertap_search_actions", {"intent": "campaigns"}))
        assert len(fake.calls_to("GET", "/actions")) == before + 3
        fake.fault("429", "/actions", method="GET", times=3, retry_after=600)
        message = err(await session.call_tool("clevertap_search_actions", {"intent": "campaigns"}))
        assert message.startswith("Membrane error") and "rate limiting" in message, message
        assert len(fake.calls_to("GET", "/actions")) == before + 4  # 600 s is past the cap: not waited for
        fake.clear_faults()


async def test_membrane_unreachable_and_clevertap_unreachable_read_alike() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    async with mcp_client(direct(closed, retry_backoff_s=0.01)) as session:
        ct = err(await session.call_tool("clevertap_real_time_user_count", {}))
    env = {"MEMBRANE_TOKEN": MEMBRANE_TOKEN, "MEMBRANE_API_URL": closed, "MEMBRANE_CONNECTION_ID": "c" * 24}
    async with mcp_client(make_runtime(env, backend=None, retry_backoff_s=0.01)) as session:
        mb = err(await session.call_tool("clevertap_search_actions", {"intent": "campaigns"}))
    host = closed.removeprefix("http://")
    assert ct.startswith("CleverTap error: Could not reach CleverTap at " + host), ct
    assert "CLEVERTAP_REGION" in ct and "What to do: Check the network" in ct
    assert mb.startswith("Membrane error: Could not reach Membrane at " + host), mb
    assert "MEMBRANE_API_URL" in mb and "What to do: Check the network" in mb


# -- the shared module's pieces ---------------------------------------------------------------------------------------


def test_backoff_is_jittered_exponential_and_capped() -> None:
    backoff = retry.Backoff(base_s=1.0)
    for attempt, (low, high) in enumerate([(0.5, 1.0), (1.0, 2.0), (2.0, 4.0)], start=1):
        waits = {backoff.delay(attempt) for _ in range(50)}
        assert all(w is not None and low <= w <= high for w in waits) and len(waits) > 1
    assert backoff.delay(1, retry_after=7.0) == 7.0
    assert backoff.delay(1, retry_after=retry.MAX_RETRY_WAIT_S + 1) is None


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert retry.retry_after_s({"Retry-After": "12"}) == 12.0
    in_a_minute = retry.retry_after_s({"retry-after": http_date(60)})
    assert in_a_minute is not None and 55 <= in_a_minute <= 61
    assert retry.retry_after_s({"Retry-After": http_date(-60)}) == 0.0
    assert retry.retry_after_s({"Retry-After": "soon"}) is None and retry.retry_after_s({}) is None


def test_call_deadline_nests_and_only_shortens() -> None:
    assert retry.remaining_budget() is None and retry.deadline_within(None) is None
    with retry.call_deadline(100) as outer:
        with retry.call_deadline(1000) as inner:
            assert inner == outer
        with retry.call_deadline(10):
            left = retry.remaining_budget()
            assert left is not None and left <= 10
            limit = retry.deadline_within(5)
            assert limit is not None and limit <= outer
    assert retry.remaining_budget() is None


@pytest.mark.parametrize(
    "error, lost",
    [
        (CleverTapError("no answer", retryable=True), True),
        (CleverTapError("budget", retryable=True, details={"budget_exhausted": True}), True),
        (CleverTapError("http 500", status=500), True),
        (MembraneError("too large"), True),  # no status: nothing usable came back
        (CleverTapError("rate limited", status=429, retryable=True), False),
        (CleverTapError("bad request", status=400), False),
        (CleverTapError("refused", status=401), False),
    ],
)
def test_uncertain_write_marks_only_lost_answers(error: UpstreamError, lost: bool) -> None:
    marked = retry.uncertain_write(error, "It may or may not have been applied.", "Check first.")
    assert type(marked) is type(error) and marked.status == error.status
    assert bool(marked.details.get("uncertain")) is lost
    assert (marked.hint == "Check first." and "may or may not" in marked.message) if lost else marked is error


def request() -> httpx.Request:
    return httpx.Request("GET", "http://127.0.0.1:9/x")


@pytest.mark.parametrize(
    "exc, words",
    [
        (httpx.ReadTimeout("slow", request=request()), "timed out waiting for"),
        (httpx.ConnectTimeout("slow", request=request()), "timed out waiting for"),
        (httpx.RemoteProtocolError("cut", request=request()), "broke before a complete answer"),
        (httpx.ReadError("reset", request=request()), "broke before a complete answer"),
        (httpx.ConnectError("refused", request=request()), "Could not reach"),
        (httpx.UnsupportedProtocol("ftp", request=request()), "Could not reach"),
    ],
)
@pytest.mark.parametrize("layer", [CleverTapError, MembraneError])
def test_one_network_error_mapping_for_both_layers(exc: Exception, words: str, layer: type[UpstreamError]) -> None:
    name = "CleverTap" if layer is CleverTapError else "Membrane"
    error = network.network_error(exc, error_cls=layer, upstream=name, host="h:1", what="doing x", check="SETTING")
    assert isinstance(error, layer) and error.retryable and error.details == {"host": "h:1"}
    assert words in error.message and f"{name} at h:1" in error.message and "while doing x" in error.message
    assert error.hint


def test_an_invalid_url_is_the_callers_input() -> None:
    error = network.network_error(
        httpx.InvalidURL("bad"), error_cls=CleverTapError, upstream="CleverTap", host="h", check="X"
    )
    assert isinstance(error, InputError)
