"""The CleverTap wire client and the HTTP executors, against a quirk-reproducing fake (and once over real HTTP)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from functools import partial
from http.server import BaseHTTPRequestHandler
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from server.backends.clevertap import CleverTapClient, base_url_for, error_text, is_write, validate_date_range
from server.backends.clevertap.executor import HttpExecutor, UnconfiguredExecutor, encode_query, join_path
from server.backends.clevertap.regions import REGIONS
from tests.fakes.quirky_clevertap import IN_PROGRESS, NetworkFailure, QuirkyCleverTap, Reply, Seen
from tests.helpers import serving
from tools.api import ActionInfo, ActionRun, ConnectResult, CountResult
from tools.errors import (
    CleverTapCredentialsError,
    CleverTapError,
    ConfigurationError,
    CursorExpired,
    InputError,
    ToolFailure,
)

pytestmark = pytest.mark.anyio

ACCOUNT = "TEST-ACC-123"
PASSCODE = "pc-secret-9"
CURSOR = "ZyZjfwYEAgdjYmZyKz8NegYFAwxmamF%2FZ21meU4BBQFlYmN7ZG5ifAYCTQQrai57K2ouegJMABl6%3D%3D"


class FakeTime:
    """A clock and a sleep that advance together, instantly."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await anyio.lowlevel.checkpoint()


@pytest.fixture
def fake() -> QuirkyCleverTap:
    return QuirkyCleverTap(account_id=ACCOUNT, passcode=PASSCODE)


@pytest.fixture
async def executor(fake: QuirkyCleverTap) -> AsyncIterator[HttpExecutor]:
    ex = HttpExecutor(
        base_url="https://api.test", account_id=ACCOUNT, passcode=PASSCODE, region="eu1", transport=fake.transport()
    )
    yield ex
    await ex.aclose()


@pytest.fixture
def ft() -> FakeTime:
    return FakeTime()


@pytest.fixture
def client(executor: HttpExecutor, ft: FakeTime) -> CleverTapClient:
    return CleverTapClient(executor, sleep=ft.sleep, clock=ft.clock, poll_interval_s=1.0)


def q(seen: Seen) -> str:
    return seen.query_string.decode()


# -- regions -----------------------------------------------------------------------------------------------------


def test_regions_and_overrides() -> None:
    assert base_url_for(None, None) == "https://api.clevertap.com"
    assert base_url_for("EU1 ", None) == "https://api.clevertap.com"
    for code in ("in1", "sg1", "us1", "aps3", "mec1"):
        assert base_url_for(code, None) == f"https://{code}.api.clevertap.com"
    for override in ("https://x.test/1", "https://x.test/1/", "https://x.test/", " https://x.test "):
        assert base_url_for("us1", override) == "https://x.test"
    assert base_url_for("nope", "http://127.0.0.1:8080/api/1/") == "http://127.0.0.1:8080/api"
    with pytest.raises(ValueError) as err:
        base_url_for("xx9", None)
    assert all(code in str(err.value) for code in REGIONS)
    with pytest.raises(ValueError):
        base_url_for(None, "ftp://x.test")


# -- executor ----------------------------------------------------------------------------------------------------


async def test_headers_and_content_type(executor: HttpExecutor, fake: QuirkyCleverTap) -> None:
    await executor.request("POST", "/1/now.json", body={})
    await executor.request("GET", "/1/profile.json", query={"identity": "a b"})
    post, get = fake.seen
    assert post.headers["x-clevertap-account-id"] == ACCOUNT
    assert post.headers["x-clevertap-passcode"] == PASSCODE
    assert post.headers["content-type"] == "application/json"
    assert post.body == {}
    assert "content-type" not in get.headers
    assert q(get) == "identity=a+b"


async def test_pre_encoded_query_is_sent_verbatim(executor: HttpExecutor, fake: QuirkyCleverTap) -> None:
    fake.route("GET", "/1/events.json", lambda s: Reply(200, {"status": "success", "records": []}))
    await executor.request("GET", f"/1/events.json?cursor={CURSOR}")
    await executor.request("GET", "/1/events.json?cursor=a%2Fb%3D", query={"x": "a/b c", "flag": True})
    first, second = fake.seen
    assert q(first) == f"cursor={CURSOR}"
    assert "%25" not in q(first)
    assert q(second) == "cursor=a%2Fb%3D&x=a%2Fb+c&flag=true"


def test_query_helpers() -> None:
    assert encode_query({"a": [1, 2], "b": None, "c": False}) == "a=1&a=2&c=false"
    assert join_path("/1/x.json?c=%2F", {"d": 1}) == "/1/x.json?c=%2F&d=1"
    assert join_path("/1/x.json", None) == "/1/x.json"


async def test_bodies_parsed_whatever_the_status(executor: HttpExecutor, fake: QuirkyCleverTap) -> None:
    fake.script("POST", "/1/a", Reply(400, {"status": "fail", "error": "bad"}))
    fake.script("POST", "/1/b", Reply(502, "<html>Bad Gateway</html>"))
    fake.script("POST", "/1/c", Reply(200, '{"status": "success", "cou'))
    a = await executor.request("POST", "/1/a", body={})
    b = await executor.request("POST", "/1/b", body={})
    c = await executor.request("POST", "/1/c", body={})
    assert (a.status, a.body) == (400, {"status": "fail", "error": "bad"})
    assert (b.status, b.body) == (502, "<html>Bad Gateway</html>")
    assert c.body == '{"status": "success", "cou'
    assert a.headers["content-type"].startswith("application/json")


async def test_network_errors_are_retryable_and_name_the_host(executor: HttpExecutor, fake: QuirkyCleverTap) -> None:
    fake.script("POST", "/1/now.json", NetworkFailure("connect"), NetworkFailure("timeout"))
    for _ in range(2):
        with pytest.raises(CleverTapError) as err:
            await executor.request("POST", "/1/now.json", body={})
        assert err.value.retryable
        assert "api.test" in err.value.message
        assert PASSCODE not in err.value.render()


async def test_path_must_be_relative(executor: HttpExecutor) -> None:
    for bad in ("https://evil.test/1/x", "//evil.test/1/x", "1/x"):
        with pytest.raises(InputError):
            await executor.request("GET", bad)


async def test_connect_ready(executor: HttpExecutor, fake: QuirkyCleverTap) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append((done, total, message))

    result = await executor.connect(5, progress)
    assert result.state == "READY"
    assert (result.backend, result.account_id, result.region) == ("clevertap", ACCOUNT, "eu1")
    assert fake.seen[0].method == "POST" and fake.seen[0].path == "/1/now.json"
    assert seen and seen[-1][0] == 1
    assert PASSCODE not in repr(result) and PASSCODE not in repr(executor)


async def test_connect_refused_says_what_is_wrong(fake: QuirkyCleverTap) -> None:
    async def run(account: str, passcode: str) -> ConnectResult:
        async with HttpExecutor(
            base_url="https://api.test", account_id=account, passcode=passcode, region="in1", transport=fake.transport()
        ) as ex:
            return await ex.connect(5)

    bad_account = await run("WRONG", PASSCODE)
    assert bad_account.state == "CREDENTIALS_REFUSED"
    assert "CLEVERTAP_ACCOUNT_ID" in bad_account.next_step and "CLEVERTAP_REGION" in bad_account.next_step
    assert "Account ID is not valid" in bad_account.message
    bad_passcode = await run(ACCOUNT, "not-the-passcode")
    assert bad_passcode.state == "CREDENTIALS_REFUSED"
    assert "CLEVERTAP_PASSCODE" in bad_passcode.next_step and "CLEVERTAP_ACCOUNT_ID" not in bad_passcode.next_step
    assert "not-the-passcode" not in repr(bad_passcode)


async def test_connect_unreachable_and_upstream_error(executor: HttpExecutor, fake: QuirkyCleverTap) -> None:
    fake.script("POST", "/1/now.json", NetworkFailure("connect"), Reply(503, "down"))
    unreachable = await executor.connect(5)
    assert unreachable.state == "UNREACHABLE"
    assert "CLEVERTAP_REGION" in unreachable.next_step and "api.test" in unreachable.message
    failing = await executor.connect(5)
    assert failing.state == "UPSTREAM_ERROR"


async def test_connect_over_real_network_to_closed_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with HttpExecutor(base_url=f"http://127.0.0.1:{port}", account_id=ACCOUNT, passcode=PASSCODE) as ex:
        result = await ex.connect(5)
    assert result.state == "UNREACHABLE"
    assert f"127.0.0.1:{port}" in result.message


async def test_local_actions_are_delegated(fake: QuirkyCleverTap) -> None:
    class Catalog:
        async def run(self, key_or_id: str, input: Mapping[str, Any]) -> ActionRun:
            return ActionRun(output={"key": key_or_id, **input})

        async def search(self, intent: str, limit: int) -> list[ActionInfo]:
            return [ActionInfo(id="1", key="get-events", name="Get events", description=intent)][:limit]

    ex = HttpExecutor(
        base_url="https://api.test", account_id=ACCOUNT, passcode=PASSCODE, name="sandbox", local_actions=Catalog()
    )
    assert (await ex.run_action("get-events", {"a": 1})).output == {"key": "get-events", "a": 1}
    assert (await ex.search_actions("events", 5))[0].key == "get-events"
    bare = HttpExecutor(base_url="https://api.test", account_id=ACCOUNT, passcode=PASSCODE)
    with pytest.raises(ToolFailure):
        await bare.search_actions("x", 1)


async def test_unconfigured_executor() -> None:
    ex = UnconfiguredExecutor()
    for call in (ex.request("GET", "/1/x"), ex.run_action("k", {}), ex.search_actions("x", 3)):
        with pytest.raises(ConfigurationError) as err:
            await call
        text = err.value.render()
        assert "MEMBRANE_TOKEN" in text and "CLEVERTAP_PASSCODE" in text and "--sandbox" in text
    result = await ex.connect(1)
    assert (result.backend, result.state) == ("unconfigured", "NOT_CONFIGURED")
    assert "CLEVERTAP_ACCOUNT_ID" in result.next_step


# -- real HTTP on 127.0.0.1 --------------------------------------------------------------------------------------


@pytest.fixture
def real_server() -> Iterator[tuple[str, list[str]]]:
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(self.path)  # the raw request-target, as it arrived on the socket
            payload = json.dumps({"status": "success", "records": [{"n": 1}], "next_cursor": "Nx%2F%3D"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    with serving(Handler) as url:
        yield url, received


async def test_cursor_bytes_arrive_verbatim_over_real_http(real_server: tuple[str, list[str]]) -> None:
    base, received = real_server
    async with HttpExecutor(base_url=base + "/", account_id=ACCOUNT, passcode=PASSCODE) as ex:
        page = await CleverTapClient(ex).export_page("/1/events.json", CURSOR, budget_s=5)
    assert received == [f"/1/events.json?cursor={CURSOR}"]
    assert "%25" not in received[0]
    assert page == type(page)(records=[{"n": 1}], next_cursor="Nx%2F%3D")


# -- errors and retries ------------------------------------------------------------------------------------------


async def test_401_is_a_credentials_error(client: CleverTapClient, fake: QuirkyCleverTap) -> None:
    fake.script("POST", "/1/now.json", Reply(401, {"status": "fail", "error": "Passcode Invalid", "code": 401}))
    with pytest.raises(CleverTapCredentialsError) as err:
        await client.call("POST", "/1/now.json", body={})
    assert "Passcode Invalid" in err.value.message
    # the hint names what this message says is wrong: the passcode, not the account id
    assert "CLEVERTAP_PASSCODE" in (err.value.hint or "") and "clevertap_connect" in (err.value.hint or "")
    assert err.value.status == 401 and not err.value.retryable
    assert len(fake.seen) == 1


async def test_status_fail_in_http_200(client: CleverTapClient, fake: QuirkyCleverTap) -> None:
    body = {"status": "fail", "error": "This target hasn't been completed", "code": 409}
    fake.script("POST", "/1/targets/result.json", Reply(200, body))
    with pytest.raises(CleverTapError) as err:
        await client.call("POST", "/1/targets/result.json", body={"id": 1})
    assert "hasn't been completed" in err.value.message and "409" in err.value.message
    assert err.value.code == 409 and err.value.status == 200 and not err.value.retryable
    assert err.value.hint and "campaign" in err.value.hint
    assert len(fake.seen) == 1


async def test_json_array_error_is_unpacked(client: CleverTapClient, fake: QuirkyCleverTap) -> None:
    fake.script(
        "POST", "/1/counts/trends.json", Reply(400, {"status": "fail", "error": '["Invalid event : Uninstalled"]'})
    )
    with pytest.raises(CleverTapError) as err:
        await client.call("POST", "/1/counts/trends.json", body={})
    assert "Invalid event : Uninstalled" in err.value.message
    assert '["' not in err.value.message
    assert not err.value.retryable and err.value.status == 400
    assert error_text({"error": '["a", "b"]'}) == "a; b"


async def test_reads_retry_on_429_5xx_and_network(client: CleverTapClient, fake: QuirkyCleverTap, ft: FakeTime) -> None:
    fake.script(
        "POST",
        "/1/targets/list.json",
        Reply(429, {"status": "fail", "error": "Too many concurrent requests", "code": 429}, {"Retry-After": "4"}),
        NetworkFailure("timeout"),
        Reply(200, {"status": "success", "targets": []}),
    )
    assert await client.call("POST", "/1/targets/list.json", body={}) == {"status": "success", "targets": []}
    assert len(fake.seen) == 3
    assert ft.sleeps[0] >= 4 and 0 < ft.sleeps[1] <= 1.0


async def test_reads_give_up_after_three_attempts(client: CleverTapClient, fake: QuirkyCleverTap) -> None:
    fake.script("POST", "/1/counts/top.json", *[Reply(503, "unavailable")] * 5)
    with pytest.raises(CleverTapError) as err:
        await client.call("POST", "/1/counts/top.json", body={})
    assert err.value.retryable and err.value.status == 503
    assert len(fake.seen) == 3


async def test_long_retry_after_is_not_waited_for(client: CleverTapClient, fake: QuirkyCleverTap) -> None:
    fake.script("POST", "/1/now.json", Reply(429, {"status": "fail", "error": "Too many"}, {"Retry-After": "600"}))
    with pytest.raises(CleverTapError) as err:
        await client.call("POST", "/1/now.json", body={})
    assert err.value.retryable and len(fake.seen) == 1


@pytest.mark.parametrize(
    "path",
    ["/1/targets/create.json", "/1/targets/stop.json", "/1/delete/profiles.json", "/1/send/push.json", "/1/subscribe"],
)
async def test_writes_are_never_retried(client: CleverTapClient, fake: QuirkyCleverTap, path: str) -> None:
    fake.script("POST", path, Reply(503, "unavailable"))
    with pytest.raises(CleverTapError) as err:
        await client.call("POST", path, body={})
    assert err.value.retryable and len(fake.seen) == 1
    fake.script("POST", path, NetworkFailure("timeout"), Reply(200, {"status": "success"}))
    with pytest.raises(CleverTapError):
        await client.call("POST", path, body={})
    assert len(fake.seen) == 2


def test_is_write() -> None:
    assert is_write("POST", "/1/upload?dryRun=1") and is_write("POST", "/1/demerge/profiles.json")
    assert is_write("POST", "/1/disassociate") and is_write("DELETE", "/1/anything")
    assert not is_write("POST", "/1/counts/events.json") and not is_write("GET", "/1/events.json?cursor=x")
    assert not is_write("POST", "/1/targets/list.json")


async def test_other_4xx_and_unreadable_answers(client: CleverTapClient, fake: QuirkyCleverTap) -> None:
    fake.script("POST", "/1/profile.json", Reply(404, {"status": "fail", "error": "Profile not found", "code": 404}))
    with pytest.raises(CleverTapError) as err:
        await client.call("POST", "/1/profile.json", body={})
    assert "Profile not found" in err.value.message and not err.value.retryable and len(fake.seen) == 1
    fake.script("POST", "/1/now.json", *[Reply(200, '{"status": "succ')] * 3)
    with pytest.raises(CleverTapError) as err:
        await client.call("POST", "/1/now.json", body={})
    assert err.value.retryable and "not JSON" in (err.value.hint or "")


async def test_top_level_list_is_wrapped(client: CleverTapClient, fake: QuirkyCleverTap) -> None:
    fake.script("POST", "/1/segments/list.json", Reply(200, [{"id": 1}]))
    assert await client.call("POST", "/1/segments/list.json", body={}) == {"status": "success", "data": [{"id": 1}]}
    # The campaign list is also under "targets", whichever shape CleverTap used (test_wire_errors.py has them all).
    fake.script("POST", "/1/targets/list.json", Reply(200, [{"id": 1}]))
    answer = await client.call("POST", "/1/targets/list.json", body={})
    assert answer["targets"] == [{"id": 1}]


# -- concurrency caps --------------------------------------------------------------------------------------------


async def test_concurrency_caps(fake: QuirkyCleverTap, executor: HttpExecutor) -> None:
    fake.delay_s = 0.02
    client = CleverTapClient(executor)
    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(partial(client.call, "POST", "/1/now.json", body={}))
    assert fake.max_in_flight["other"] == 3
    tokens = [{"objectId": f"o{i}", "tokenData": {"id": f"t{i}", "type": "fcm"}} for i in range(2000)]
    result = await client.upload(tokens, kind="token")
    assert result.batches == 20 and result.processed == 2000
    assert fake.max_in_flight["upload"] == 15


# -- counts ------------------------------------------------------------------------------------------------------

COUNT_BODY = {"event_name": "Charged", "from": 20260101, "to": 20260131}


async def test_count_polls_partial_with_req_id(client: CleverTapClient, fake: QuirkyCleverTap, ft: FakeTime) -> None:
    fake.script("POST", "/1/counts/events.json", Reply(200, {"status": "partial", "req_id": 384649162721759}))
    fake.script(
        "GET",
        "/1/counts/events.json",
        Reply(200, {"status": "partial", "req_id": 384649162721759}),
        Reply(200, {"status": "success", "count": 7138}),
    )
    result = await client.count("/1/counts/events.json", COUNT_BODY, budget_s=30)
    assert result.done and result.count == 7138
    post, *polls = fake.seen
    assert post.body == COUNT_BODY
    assert [q(p) for p in polls] == ["req_id=384649162721759"] * 2
    assert all(p.body is None and "content-type" not in p.headers for p in polls)
    # The first poll comes soon (most counts are ready by then), the next ones back off towards the interval.
    assert ft.sleeps == [0.05, 0.1]


async def test_string_req_id_is_sent_back_unchanged(client: CleverTapClient, fake: QuirkyCleverTap) -> None:
    fake.script("POST", "/1/counts/profiles.json", Reply(200, {"status": "partial", "req_id": "Ab-12_x"}))
    fake.script("GET", "/1/counts/profiles.json", Reply(200, {"status": "success", "count": "12"}))
    result = await client.count("/1/counts/profiles.json", COUNT_BODY, budget_s=30)
    assert result.done and result.count == 12
    assert q(fake.seen[1]) == "req_id=Ab-12_x"


async def test_count_budget_expiry_returns_pending(
    client: CleverTapClient, fake: QuirkyCleverTap, ft: FakeTime
) -> None:
    fake.route("POST", "/1/counts/events.json", lambda s: Reply(200, {"status": "partial", "req_id": 77}))
    fake.route("GET", "/1/counts/events.json", lambda s: Reply(200, {"status": "partial", "req_id": 77}))
    start = ft.now
    with anyio.fail_after(2):
        result = await client.count("/1/counts/events.json", COUNT_BODY, budget_s=2.5)
    assert not result.done and result.req_id == 77 and result.count is None
    assert ft.sleeps == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 0.95])
    assert ft.now - start == pytest.approx(2.5)
    assert len(fake.calls("GET")) == 6


async def test_count_polls_back_off_to_the_documented_interval(
    client: CleverTapClient, fake: QuirkyCleverTap, ft: FakeTime
) -> None:
    fake.route("POST", "/1/counts/events.json", lambda s: Reply(200, {"status": "partial", "req_id": 9}))
    fake.route("GET", "/1/counts/events.json", lambda s: Reply(200, {"status": "partial", "req_id": 9}))
    result = await client.count("/1/counts/events.json", COUNT_BODY, budget_s=6)
    assert not result.done and result.req_id == 9
    assert ft.sleeps[:7] == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert max(ft.sleeps) == 1.0 and sum(ft.sleeps) == pytest.approx(6)


async def test_poll_count_continues(client: CleverTapClient, fake: QuirkyCleverTap) -> None:
    fake.script(
        "GET",
        "/1/counts/trends.json",
        Reply(200, {"status": "partial"}),
        Reply(200, {"status": "success", "foo": {"20261224": 10}}),
    )
    result = await client.poll_count("/1/counts/trends.json", 55, budget_s=10)
    assert result.done and result.count is None and result.body["foo"] == {"20261224": 10}
    assert [q(s) for s in fake.seen] == ["req_id=55", "req_id=55"]


async def test_invalid_request_id(client: CleverTapClient, fake: QuirkyCleverTap) -> None:
    fake.script("GET", "/1/counts/events.json", Reply(200, {"status": "fail", "error": "Invalid request id"}))
    with pytest.raises(CleverTapError) as err:
        await client.poll_count("/1/counts/events.json", 9, budget_s=10)
    assert err.value.hint == "the req_id expired: run the count again"


@pytest.mark.parametrize(
    "body",
    [
        {"from": 20260230, "to": 20260301},
        {"from": 20260301, "to": 20260201},
        {"from": "20260101", "to": 20260102},
        {"to": 20260102},
        {"from": 2026011, "to": 20260102},
        {"from": True, "to": 20260102},
        {"from": 20260101, "to": 20260102, "advanced_query": {"did_all": [{"from": 20260105, "to": 20260101}]}},
    ],
)
async def test_dates_are_checked_before_sending(client: CleverTapClient, fake: QuirkyCleverTap, body: Any) -> None:
    with pytest.raises(InputError):
        await client.count("/1/counts/events.json", {"event_name": "x", **body}, budget_s=5)
    with pytest.raises(InputError):
        await client.start_export("/1/events.json", {"event_name": "x", **body}, batch_size=10)
    assert fake.seen == []
    validate_date_range({"from": 20240229, "to": 20240229})


# -- exports -----------------------------------------------------------------------------------------------------

EXPORT_BODY = {"event_name": "App Launched", "from": 20260101, "to": 20260102}


async def test_start_export(client: CleverTapClient, fake: QuirkyCleverTap) -> None:
    fake.script(
        "POST",
        "/1/events.json",
        Reply(200, {"status": "success", "cursor": CURSOR}),
        Reply(200, {"status": "success", "next_cursor": "abc"}),
        Reply(200, {"status": "success"}),
    )
    flags = {"app": True, "events": False, "profile": True}
    assert await client.start_export("/1/events.json", EXPORT_BODY, batch_size=100, flags=flags) == CURSOR
    assert await client.start_export("/1/events.json", EXPORT_BODY, batch_size=5) == "abc"
    assert await client.start_export("/1/events.json", EXPORT_BODY, batch_size=5) is None
    assert q(fake.seen[0]) == "batch_size=100&app=true&events=false&profile=true"
    assert fake.seen[0].body == EXPORT_BODY and q(fake.seen[1]) == "batch_size=5"


async def test_export_pages(client: CleverTapClient, fake: QuirkyCleverTap) -> None:
    fake.script(
        "GET",
        "/1/profiles.json",
        Reply(200, {"status": "success", "previous_cursor": "p/q", "next_cursor": "n%2F1", "records": [{"a": 1}]}),
        Reply(200, {"status": "partial", "cursor": "c2", "records": [{"a": 2}]}),
        Reply(200, {"status": "success", "records": [{"a": 3}]}),
        Reply(200, {"status": "success"}),
        Reply(200, {"status": "partial", "cursor": "same"}),
    )
    p1 = await client.export_page("/1/profiles.json", CURSOR, budget_s=5)
    assert (p1.records, p1.next_cursor) == ([{"a": 1}], "n%2F1")
    p2 = await client.export_page("/1/profiles.json", "n%2F1", budget_s=5)
    assert (p2.records, p2.next_cursor) == ([{"a": 2}], "c2")
    p3 = await client.export_page("/1/profiles.json", "c2", budget_s=5)
    assert (p3.records, p3.next_cursor) == ([{"a": 3}], None)
    p4 = await client.export_page("/1/profiles.json", "x", budget_s=5)
    assert (p4.records, p4.next_cursor) == ([], None)
    p5 = await client.export_page("/1/profiles.json", "same", budget_s=5)
    assert (p5.records, p5.next_cursor) == ([], None)
    assert [q(s) for s in fake.seen[:2]] == [f"cursor={CURSOR}", "cursor=n%2F1"]


async def test_export_still_in_progress_retries_same_cursor(
    client: CleverTapClient, fake: QuirkyCleverTap, ft: FakeTime
) -> None:
    fake.script(
        "GET",
        "/1/events.json",
        Reply(200, IN_PROGRESS),
        Reply(200, IN_PROGRESS),
        Reply(200, {"status": "success", "records": [{"x": 1}]}),
    )
    page = await client.export_page("/1/events.json", CURSOR, budget_s=10)
    assert page.records == [{"x": 1}] and page.next_cursor is None
    assert [q(s) for s in fake.seen] == [f"cursor={CURSOR}"] * 3
    assert ft.sleeps == [1.0, 1.0]


async def test_export_still_in_progress_past_budget(
    client: CleverTapClient, fake: QuirkyCleverTap, ft: FakeTime
) -> None:
    fake.route("GET", "/1/events.json", lambda s: Reply(200, IN_PROGRESS))
    with pytest.raises(CleverTapError) as err:
        await client.export_page("/1/events.json", CURSOR, budget_s=2.5)
    assert err.value.retryable and "same cursor" in (err.value.hint or "")
    assert not isinstance(err.value, CursorExpired)
    assert sum(ft.sleeps) == pytest.approx(2.5)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(400, {"status": "fail", "error": "Invalid cursor"}),
        Reply(200, {"status": "fail", "error": "Incorrect Usage", "code": 400}),
        Reply(410, {"status": "fail", "error": "cursor gone", "code": "CURSOR_INVALIDATED"}),
        Reply(200, {"status": "fail", "error": "The cursor has expired"}),
    ],
)
async def test_expired_cursor(client: CleverTapClient, fake: QuirkyCleverTap, reply: Reply) -> None:
    fake.script("GET", "/1/events.json", reply)
    with pytest.raises(CursorExpired) as err:
        await client.export_page("/1/events.json", CURSOR, budget_s=5)
    assert "restart the export" in (err.value.hint or "")
    assert len(fake.seen) == 1


# -- uploads -----------------------------------------------------------------------------------------------------


def events(n: int, bad: frozenset[int] = frozenset()) -> list[dict[str, Any]]:
    return [
        {"identity": f"bad{i}" if i in bad else f"u{i}", "evtName": "Charged", "evtData": {"n": i}, "ts": 1700000000}
        for i in range(n)
    ]


async def test_upload_maps_indices_across_batches(client: CleverTapClient, fake: QuirkyCleverTap) -> None:
    records = events(2500, bad=frozenset({0, 999, 1000, 2499}))
    progress: list[tuple[float, float | None]] = []

    async def report(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total))

    result = await client.upload(records, kind="event", progress=report)
    assert result.batches == 3 and result.processed == 2496
    assert [u.index for u in result.unprocessed] == [0, 999, 1000, 2499]
    assert all(u.code == 515 and u.error == "Profile data is incorrect. Email is not valid" for u in result.unprocessed)
    assert result.unprocessed[2].record["identity"] == "bad1000"
    assert result.unsent == [] and result.unsent_reason is None
    assert "type" not in records[0]
    sizes = sorted(len(s.body["d"]) for s in fake.seen)
    assert sizes == [500, 1000, 1000]
    assert all(r["type"] == "event" for s in fake.seen for r in s.body["d"])
    assert len(progress) == 3 and progress[-1] == (2500, 2500)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)


async def test_upload_matches_by_record_without_numbers(client: CleverTapClient, fake: QuirkyCleverTap) -> None:
    fake.upload_numbers = False
    result = await client.upload(events(1500, bad=frozenset({3, 1200})), kind="event")
    assert [u.index for u in result.unprocessed] == [3, 1200]
    assert result.processed == 1498


async def test_upload_tokens_and_profiles_batch_sizes(client: CleverTapClient, fake: QuirkyCleverTap) -> None:
    tokens = [{"objectId": f"o{i}", "tokenData": {"id": "t", "type": "fcm"}} for i in range(250)]
    result = await client.upload(tokens, kind="token", dry_run=True)
    assert result.batches == 3 and result.processed == 250
    assert sorted(len(s.body["d"]) for s in fake.seen) == [50, 100, 100]
    assert all(q(s) == "dryRun=1" for s in fake.seen)
    fake.seen.clear()
    profiles = [{"identity": f"p{i}", "profileData": {"Name": "x"}} for i in range(1001)]
    result = await client.upload(profiles, kind="profile")
    assert result.batches == 2 and all(q(s) == "" for s in fake.seen)
    assert {r["type"] for s in fake.seen for r in s.body["d"]} == {"profile"}
    assert await client.upload([], kind="event") == type(result)(processed=0, unprocessed=[], batches=0)


async def test_upload_whole_batch_rejected(client: CleverTapClient, fake: QuirkyCleverTap) -> None:
    records = events(1200)
    records[1100]["identity"] = "reject-batch"
    result = await client.upload(records, kind="event")
    assert result.processed == 1000
    assert [u.index for u in result.unprocessed] == list(range(1000, 1200))
    assert {(u.code, u.error) for u in result.unprocessed} == {(400, "Bad batch: too many records")}
    assert result.unsent == []


@pytest.mark.parametrize("marker", ["boom", "drop"])
async def test_upload_unanswered_batch_is_unsent_not_retried(
    client: CleverTapClient, fake: QuirkyCleverTap, marker: str
) -> None:
    records = events(2100, bad=frozenset({5}))
    records[1500]["identity"] = marker
    result = await client.upload(records, kind="event")
    assert len(fake.seen) == 3
    assert result.unsent == list(range(1000, 2000))
    assert result.unsent_reason and ("500" in result.unsent_reason or "api.test" in result.unsent_reason)
    assert result.processed == 1099 and [u.index for u in result.unprocessed] == [5]


async def test_upload_refused_credentials_raise(fake: QuirkyCleverTap) -> None:
    async with HttpExecutor(
        base_url="https://api.test", account_id=ACCOUNT, passcode="wrong", transport=fake.transport()
    ) as ex:
        with pytest.raises(CleverTapCredentialsError):
            await CleverTapClient(ex).upload(events(1500), kind="event")
    assert len(fake.seen) == 2


async def test_count_immediate_success_and_failure(client: CleverTapClient, fake: QuirkyCleverTap) -> None:
    fake.script(
        "POST",
        "/1/counts/events.json",
        Reply(200, {"status": "success", "count": 3}),
        Reply(200, {"status": "fail", "error": '["Invalid event : Nope"]', "code": 400}),
    )
    assert await client.count("/1/counts/events.json", COUNT_BODY, budget_s=5) == CountResult(
        done=True, count=3, body={"status": "success", "count": 3}
    )
    with pytest.raises(CleverTapError) as err:
        await client.count("/1/counts/events.json", COUNT_BODY, budget_s=5)
    assert "Invalid event : Nope" in err.value.message and len(fake.seen) == 2


async def test_stuck_poll_is_abandoned_at_the_budget(executor: HttpExecutor, fake: QuirkyCleverTap) -> None:
    fake.script("POST", "/1/counts/events.json", Reply(200, {"status": "partial", "req_id": 5}))
    fake.script("GET", "/1/counts/events.json", Reply(200, {"status": "success", "count": 1}, delay_s=30))
    client = CleverTapClient(executor, poll_interval_s=0.01, poll_grace_s=0.05)
    with anyio.fail_after(5):
        result = await client.count("/1/counts/events.json", COUNT_BODY, budget_s=0.05)
    assert not result.done and result.req_id == 5
