"""The sandbox's CleverTap API served on loopback behind a recorder, and runtimes of the clevertap backend on it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from server.backends.sandbox import SandboxConfig, create_app
from server.policies.endpoints import canonical_path
from server.runtime import Runtime
from tests.fakes.membrane import serve_asgi
from tests.helpers import make_runtime

ACCOUNT, PASSCODE = "DEMO-SANDBOX", "gate-test-passcode-0123456789"


@dataclass
class Upstream:
    """Records every request that reaches the emulator; ``hold_uploads_after=N`` leaves upload N+1 onwards unanswered
    (as a slow CleverTap would) until the test ends."""

    app: Any
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)
    hold_uploads_after: int | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        self.seen.append((scope["method"], raw, b"".join(chunks)))
        held = self.hold_uploads_after
        if held is not None and scope["path"] == "/1/upload" and len(self.to("/1/upload")) > held:
            await asyncio.sleep(3600)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def to(self, path: str) -> list[tuple[str, str, bytes]]:
        """The requests whose canonical path is ``path``."""
        return [s for s in self.seen if canonical_path(s[1]) == path]

    def creations(self) -> int:
        """Campaigns really created (not estimates)."""
        return sum(
            1 for s in self.to("/1/targets/create.json") if b'"estimate_only":true' not in s[2].replace(b" ", b"")
        )


@contextlib.contextmanager
def served_sandbox(**knobs: Any) -> Iterator[tuple[str, Upstream]]:
    upstream = Upstream(create_app(SandboxConfig(account_id=ACCOUNT, passcode=PASSCODE, **knobs)))
    with serve_asgi(upstream) as url:
        yield url, upstream


def direct(url: str, env: dict[str, str] | None = None, **overrides: Any) -> Runtime:
    """A runtime of the clevertap backend on the served sandbox."""
    return make_runtime(
        env,
        backend="clevertap",
        clevertap_account_id=ACCOUNT,
        clevertap_passcode=PASSCODE,
        clevertap_api_base_url=url,
        **overrides,
    )
