"""The sandbox backend: an embedded CleverTap-compatible API emulator with a deterministic demo account.

Written from the API reference only; it shares no code with ``server.backends.clevertap`` (tests of one against
the other would prove nothing otherwise).
"""

from __future__ import annotations

from .app import SandboxApp, create_app
from .config import SandboxConfig
from .faults import Fault, FaultInjector
from .serve import serve

__all__ = ["Fault", "FaultInjector", "SandboxApp", "SandboxConfig", "create_app", "serve"]
