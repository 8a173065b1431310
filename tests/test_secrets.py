"""Secrets never leave the server: full stdio sessions with known secret values, failures included, DEBUG logs on,
and every byte written to stdout, stderr, the audit log and the state directory scanned for the secrets (whole or in
part) and for anything JWT-shaped.

Sessions: the direct backend against ``sandbox serve --passcode <secret>`` with the right and a wrong passcode and
against a closed port; Membrane with ``MEMBRANE_TOKEN`` against a closed port, against the fake Membrane (accepted and
refused); Membrane with ``MEMBRANE_WORKSPACE_SECRET`` minting tenant tokens against the fake. They run concurrently.
Every session calls every catalog tool with its valid and invalid examples, and each tool's answers are scanned under
its own test id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.backends.sandbox import create_app
from tests.examples import SPECS, TOOLS, fresh, is_reference, pick
from tests.fakes.membrane import FakeMembrane, running_fake_membrane
from tests.helpers import child_env, free_port, sandbox_http
from tests.stdio_raw import StdioServer

RIGHT_PASSCODE = "RightPasscode-7f3a9c1e5b2d4f6a8c0e"
WRONG_PASSCODE = "WrongPasscode-0b1d3f5a7c9e2b4d6f8a"
MEMBRANE_TOKEN = "mbrToken-5e8f1a2b3c4d5e6f7a8b9c0d1e2f"
WRONG_TOKEN = "mbrWrong-1a2b3c4d5e6f7a8b9c0d1e2f3a4b"
WORKSPACE_SECRET = "wsSecret-9a8b7c6d5e4f3a2b1c0d9e8f7a6b"
SECRETS = [RIGHT_PASSCODE, WRONG_PASSCODE, MEMBRANE_TOKEN, WRONG_TOKEN, WORKSPACE_SECRET]
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.?[A-Za-z0-9_-]*")
BEARER = re.compile(rb"(?i)bearer\s+(?!\*\*\*)[A-Za-z0-9._~+/=-]{8,}")

# Beyond every tool's own examples (the steps below them): refused paths, previews with bad tokens, unknown things.
EXTRA_STEPS: list[tuple[str, dict[str, Any]]] = [
    ("clevertap_get_user_profiles_by_cursor", {"cursor": "Z" * 60}),
    ("clevertap_request", {"method": "POST", "path": "/1/now.json", "body": {}}),
    ("clevertap_request", {"method": "POST", "path": "/1/no/such/endpoint.json", "body": {"a": 1}}),
    ("clevertap_request", {"method": "GET", "path": "https://evil.example/1/now.json"}),
    ("clevertap_delete_user_profile", {"identity": "u1", "confirm_token": "v1.1.bad.bad"}),
    ("clevertap_run_action", {"action": "no-such-action", "input": {}}),
    ("clevertap_launch_rocket", {}),
]
STEPS: list[tuple[str, Any]] = [
    *((tool, example) for tool in TOOLS for example in (*SPECS[tool].examples_valid, *SPECS[tool].examples_invalid)),
    *EXTRA_STEPS,
]
# Against a closed port every read is retried (on short backoffs here): each tool's first valid example.
UNREACHABLE_STEPS: list[tuple[str, Any]] = [(tool, SPECS[tool].examples_valid[0]) for tool in TOOLS]
UNRESOLVED = "unresolved-example"


@dataclass
class Session:
    name: str
    output: bytes
    answers: list[tuple[str, dict[str, Any]]]
    files: dict[str, bytes]
    steps: int

    def texts(self, tool: str | None = None) -> str:
        return "\n".join(
            c.get("text", "")
            for name, a in self.answers
            if tool is None or name == tool
            for c in (a.get("result") or {}).get("content") or []
        )


def resolve(server: StdioServer, value: Any) -> Any:
    """An example's run-time values, taken from the tools they name in this session (a placeholder when the
    session cannot give them, as a failing one cannot: the step still runs and is still scanned)."""
    if is_reference(value):
        source = value["$example"]
        answer = server.call_tool(source, resolve(server, fresh(SPECS[source].examples_valid[0])), timeout=60)
        structured = (answer.get("result") or {}).get("structuredContent")
        try:
            return pick(structured, value["$pick"])
        except (AssertionError, KeyError, TypeError):
            return UNRESOLVED
    if isinstance(value, dict):
        return {k: resolve(server, v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(server, v) for v in value]
    return value


def run_session(
    name: str, args: list[str], env: dict[str, str], tmp: Path, steps: list[tuple[str, Any]] = STEPS
) -> Session:
    """One full stdio session: handshake, tools/list, every step; then EOF, and everything it wrote."""
    audit = tmp / f"{name}-audit.jsonl"
    state = tmp / f"{name}-state"
    env = child_env(
        CLEVERTAP_MCP_LOG_LEVEL="DEBUG",
        CLEVERTAP_MCP_AUDIT_LOG=str(audit),
        CLEVERTAP_MCP_STATE_DIR=str(state),
        CLEVERTAP_MCP_RETRY_BACKOFF="0.01",
        **env,
    )
    server = StdioServer(args, env)
    answers: list[tuple[str, dict[str, Any]]] = []
    try:
        server.initialize()
        server.tools_list_works()
        for tool, arguments in steps:
            answers.append((tool, server.call_tool(tool, resolve(server, fresh(arguments)), timeout=60)))
    finally:
        server.close()
    files = {str(p): p.read_bytes() for p in [audit, *state.rglob("*")] if p.is_file()}
    return Session(name, server.output(), answers, files, len(steps))


def _leaks(blob: bytes) -> list[str]:
    found = []
    for secret in SECRETS:
        raw = secret.encode()
        # the whole secret, or a recognisable piece of it (each half is still 16+ characters)
        for piece in (raw, raw[:16], raw[-16:]):
            if piece in blob:
                found.append(f"{secret[:6]}... ({'whole' if piece == raw else 'part'})")
    found += [f"JWT-shaped {m.group()[:12]!r}..." for m in JWT.finditer(blob)]
    found += [f"bearer token {m.group()[:14]!r}..." for m in BEARER.finditer(blob)]
    return found


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Session]]:
    tmp = tmp_path_factory.mktemp("secrets")
    closed = f"http://127.0.0.1:{free_port()}"
    accepted = FakeMembrane(tokens=[MEMBRANE_TOKEN], clevertap_app=create_app())
    minting = FakeMembrane(workspace_secret=WORKSPACE_SECRET, clevertap_app=create_app())
    with (
        sandbox_http("--passcode", RIGHT_PASSCODE) as sandbox,
        running_fake_membrane(accepted) as (accepted_url, _),
        running_fake_membrane(minting) as (minting_url, _),
    ):
        ready = accepted.add_connection("READY")
        # The emulator seeds its database on the first request: do it now, not under seven starting sessions.
        seeded = httpx.post(
            f"{sandbox}/1/now.json",
            json={},
            headers={"X-CleverTap-Account-Id": "DEMO-SANDBOX", "X-CleverTap-Passcode": RIGHT_PASSCODE},
            timeout=300,  # a hang guard: generating the seed is slow on a loaded machine
        )
        assert seeded.status_code == 200, seeded.text  # only an authenticated request opens (and seeds) the database
        direct = {"CLEVERTAP_ACCOUNT_ID": "DEMO-SANDBOX", "CLEVERTAP_API_BASE_URL": sandbox}
        plans: dict[str, Callable[[], Session]] = {
            "direct-right": lambda: run_session(
                "direct-right", ["--backend", "clevertap"], {**direct, "CLEVERTAP_PASSCODE": RIGHT_PASSCODE}, tmp
            ),
            "direct-wrong": lambda: run_session(
                "direct-wrong", [], {**direct, "CLEVERTAP_PASSCODE": WRONG_PASSCODE}, tmp
            ),
            "direct-unreachable": lambda: run_session(
                "direct-unreachable",
                [],
                {**direct, "CLEVERTAP_PASSCODE": RIGHT_PASSCODE, "CLEVERTAP_API_BASE_URL": closed},
                tmp,
                UNREACHABLE_STEPS,
            ),
            "membrane-unreachable": lambda: run_session(
                "membrane-unreachable",
                [],
                {"MEMBRANE_TOKEN": MEMBRANE_TOKEN, "MEMBRANE_API_URL": closed},
                tmp,
                UNREACHABLE_STEPS,
            ),
            "membrane-token": lambda: run_session(
                "membrane-token",
                ["--backend", "membrane"],
                {"MEMBRANE_TOKEN": MEMBRANE_TOKEN, "MEMBRANE_API_URL": accepted_url, "MEMBRANE_CONNECTION_ID": ready},
                tmp,
            ),
            "membrane-refused": lambda: run_session(
                "membrane-refused", [], {"MEMBRANE_TOKEN": WRONG_TOKEN, "MEMBRANE_API_URL": accepted_url}, tmp
            ),
            "membrane-minted": lambda: run_session(
                "membrane-minted",
                [],
                {
                    "MEMBRANE_WORKSPACE_KEY": "ws-key-1",
                    "MEMBRANE_WORKSPACE_SECRET": WORKSPACE_SECRET,
                    "MEMBRANE_TENANT_KEY": "tenant-1",
                    "MEMBRANE_API_URL": minting_url,
                },
                tmp,
            ),
        }
        with ThreadPoolExecutor(max_workers=len(plans)) as pool:
            futures = {name: pool.submit(plan) for name, plan in plans.items()}
            done = {name: future.result() for name, future in futures.items()}
        assert minting.token_claims, "the minting session never presented a minted token"
        assert any(c.authorized for c in accepted.calls), "the token session was never accepted"
        assert any(not c.authorized for c in accepted.calls), "the refused session was never refused"
        yield done


SESSIONS = [
    "direct-right",
    "direct-wrong",
    "direct-unreachable",
    "membrane-unreachable",
    "membrane-token",
    "membrane-refused",
    "membrane-minted",
]


@pytest.mark.parametrize("tool", TOOLS)
def test_no_secret_in_any_answer_about(sessions: dict[str, Session], tool: str) -> None:
    for name, session in sessions.items():
        answers = [json.dumps(a).encode() for t, a in session.answers if t == tool]
        assert answers, f"{name}: {tool} was never called"
        for answer in answers:
            assert not _leaks(answer), f"{name}: an answer of {tool} leaks {_leaks(answer)}"


@pytest.mark.parametrize("name", SESSIONS)
def test_no_secret_in_anything_the_server_wrote(sessions: dict[str, Session], name: str) -> None:
    session = sessions[name]
    assert len(session.answers) == session.steps
    assert b"DEBUG" in session.output, "DEBUG logging was not on: the scan would prove little"
    leaks = _leaks(session.output)
    assert not leaks, f"{name}: stdout/stderr leak {leaks}"
    for path, content in session.files.items():
        assert not _leaks(content), f"{name}: {path} leaks {_leaks(content)}"


def test_the_sessions_really_failed_and_succeeded(sessions: dict[str, Session]) -> None:
    """The scans above mean something only if the failures they cover really happened."""
    assert "READY" in sessions["direct-right"].texts("clevertap_connect"), sessions["direct-right"].texts(
        "clevertap_connect"
    )
    assert "refused the credentials" in sessions["direct-wrong"].texts()
    assert "could not reach" in sessions["direct-unreachable"].texts().lower()
    assert "Could not reach Membrane" in sessions["membrane-unreachable"].texts()
    assert "refused" in sessions["membrane-refused"].texts()
    assert "Input error" in sessions["membrane-token"].texts()
    for name in ("direct-right", "membrane-token", "membrane-minted"):
        audit = [v for k, v in sessions[name].files.items() if k.endswith("audit.jsonl")]
        assert audit and audit[0].count(b"\n") >= 3, f"{name}: the audit log got no write attempts"


def test_secrets_are_scrubbed_from_what_upstream_echoes() -> None:
    """An upstream error text that quotes the passcode or a token (some proxies do) reaches the model scrubbed."""
    from server.policies.scrub import Scrubber

    scrub = Scrubber([RIGHT_PASSCODE, MEMBRANE_TOKEN])
    minted = "eyJhbGciOiJIUzI1NiJ9.eyJ0ZW5hbnRLZXkiOiJ0In0.c2lnbmF0dXJl"
    text = scrub(
        f"bad header X-CleverTap-Passcode: {RIGHT_PASSCODE}; Authorization: Bearer {MEMBRANE_TOKEN}; jwt {minted}"
    )
    assert not _leaks(text.encode()), text


def test_the_scan_finds_what_it_looks_for() -> None:
    """A negative control: planted secrets, pieces of them, JWTs and bearer tokens are all reported."""
    assert _leaks(RIGHT_PASSCODE.encode())
    assert _leaks(b"x" + MEMBRANE_TOKEN[:16].encode() + b"x")
    assert _leaks(b"token eyJhbGciOiJIUzI1NiJ9.eyJpZCI6InQifQ.sig")
    assert _leaks(b"Authorization: Bearer abcdefgh12345678")
    assert not _leaks(b"Authorization: Bearer *** and a plain sentence")
