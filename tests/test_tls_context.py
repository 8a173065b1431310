"""Upstream clients share one TLS context: the CA bundle is loaded once per process, not once per user or client."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import pytest

from server.backends.clevertap.executor import HttpExecutor
from server.backends.membrane.auth import StaticToken
from server.backends.membrane.client import MembraneClient
from server.backends.tls import shared_tls_context


def test_the_ca_bundle_is_loaded_once_for_many_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[Any] = []
    real = ssl.create_default_context

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        loads.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counted)
    shared_tls_context.cache_clear()
    try:
        clients = [MembraneClient(StaticToken(f"tok-{i}"))._client() for i in range(5)]
        clients += [
            HttpExecutor(base_url="https://api.clevertap.invalid", account_id="A", passcode="p")._http()
            for _ in range(5)
        ]
        assert len(loads) == 1, loads
        # An in-process transport (the sandbox) loads nothing at all.
        HttpExecutor(
            base_url="http://sandbox.invalid",
            account_id="A",
            passcode="p",
            transport=httpx.MockTransport(lambda request: httpx.Response(200)),
        )._http()
        assert len(loads) == 1, loads
    finally:
        shared_tls_context.cache_clear()
    assert all(isinstance(c, httpx.AsyncClient) for c in clients)
