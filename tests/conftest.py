"""Test session set-up: a private config, cache and state folder for the whole run, no credentials, one fork server."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

import pytest

from tests import forkserver

# Tests never touch the developer's real config or cache, and never reach the network. One folder per run, made by
# the controller and handed to the xdist workers, so the sandbox's seed databases are generated once per run; the
# controller removes it at the end.
_TMP_KEY = "clevertap_mcp_tmp"
# One fork server for the run's server subprocesses (tests/forkserver.py), started by the controller so that it loads
# while the workers collect, and shared with them.
_FORK_KEY = "clevertap_mcp_forkserver"

# The suite starts many Python processes (xdist workers, stdio and HTTP servers, fakes). Where the machine sets
# PYTHONDONTWRITEBYTECODE, every one of them compiles the project from source again, and pytest rewrites every test
# module again: keep bytecode in the usual (git-ignored) __pycache__ folders for this run and its children.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
_tmp: dict[str, str] = {}
_handles: list[forkserver.Handle] = []


def _use(folder: str) -> None:
    _tmp["path"] = folder
    os.environ["XDG_CACHE_HOME"] = os.path.join(folder, "cache")
    os.environ["XDG_CONFIG_HOME"] = os.path.join(folder, "config")
    os.environ["CLEVERTAP_MCP_STATE_DIR"] = os.path.join(folder, "state")


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    _use(workerinput[_TMP_KEY] if workerinput else tempfile.mkdtemp(prefix="clevertap-mcp-tests-"))

    if workerinput and workerinput.get(_FORK_KEY):
        os.environ[forkserver.SOCKET_ENV] = workerinput[_FORK_KEY]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: half again as many workers as cores. Much of the suite waits (on server subprocesses, sockets,
    retry budgets) rather than computes, and a third worker fills those waits; more adds collection for little."""
    return max(2, len(os.sched_getaffinity(0)) * 3 // 2)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    node.workerinput[_TMP_KEY] = _tmp["path"]
    if os.environ.get("CLEVERTAP_TESTS_FORKSERVER") != "0":
        if _FORK_KEY not in _tmp:
            _handles.append(forkserver.Handle(_tmp["path"]))
            _tmp[_FORK_KEY] = _handles[0].path
        node.workerinput[_FORK_KEY] = _tmp[_FORK_KEY]


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and "path" in _tmp:
        for handle in _handles:
            handle.stop()
        shutil.rmtree(_tmp["path"], ignore_errors=True)


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
