"""One TLS context per process for every upstream client.

Each ``httpx.AsyncClient`` otherwise loads the CA bundle again, which costs memory and CPU per client, and the HTTP
transport keeps one runtime, so one client, per Membrane user. The context is httpx's own default (certifi, or
``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set), built on first use.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
