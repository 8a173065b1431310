"""Serve the sandbox over real HTTP with uvicorn (``clevertap-mcp sandbox serve``)."""

from __future__ import annotations

import logging
import sys
from typing import Any

from .app import create_app
from .config import SandboxConfig


def serve(host: str = "127.0.0.1", port: int = 8765, config: SandboxConfig | None = None, admin: bool = False) -> None:
    """Run the sandbox API until interrupted. Logs go to stderr; one line announces the base URL when ready."""
    import uvicorn

    app = create_app(config, admin=admin)
    server = _Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            log_config=None,
        )
    )
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    server.run()


class _Server:
    """uvicorn.Server announcing the bound URL on stderr once it listens (the real port, when 0 was asked)."""

    def __new__(cls, config: Any) -> Any:
        import uvicorn

        class Announcing(uvicorn.Server):
            async def startup(self, sockets: Any = None) -> None:
                await super().startup(sockets=sockets)
                if self.started:
                    bound = [s.getsockname() for server in self.servers for s in server.sockets]
                    host, port = (bound[0][0], bound[0][1]) if bound else (config.host, config.port)
                    shown = f"[{host}]" if ":" in str(host) else host
                    print(f"CleverTap sandbox API listening on http://{shown}:{port}", file=sys.stderr, flush=True)

        return Announcing(config)
