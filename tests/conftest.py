from __future__ import annotations

import os
import tempfile

import pytest

# Tests never touch the developer's real config or cache, and never reach the network.
_TMP = tempfile.mkdtemp(prefix="clevertap-mcp-tests-")
os.environ.setdefault("XDG_CACHE_HOME", os.path.join(_TMP, "cache"))
os.environ.setdefault("XDG_CONFIG_HOME", os.path.join(_TMP, "config"))
os.environ.setdefault("CLEVERTAP_MCP_STATE_DIR", os.path.join(_TMP, "state"))
for _name in (
    "MEMBRANE_TOKEN",
    "MEMBRANE_WORKSPACE_KEY",
    "MEMBRANE_WORKSPACE_SECRET",
    "MEMBRANE_TENANT_KEY",
    "MEMBRANE_CONNECTION_ID",
    "CLEVERTAP_ACCOUNT_ID",
    "CLEVERTAP_PASSCODE",
    "CLEVERTAP_REGION",
    "CLEVERTAP_API_BASE_URL",
    "CLEVERTAP_MCP_BACKEND",
    "CLEVERTAP_MCP_READ_ONLY",
    "CLEVERTAP_MCP_CONFIRM",
):
    os.environ.pop(_name, None)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
