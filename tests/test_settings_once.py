"""Configuration is declared once (``server.config.Settings``) and read once (``load_settings``): no other module
reads the environment, every variable the code names is declared, and a setting given as a variable or as a flag
reaches the component that uses it (Membrane state, HTTP transport, tool selection, scan store), through MCP."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from server.backends.clevertap.executor import HttpExecutor
from server.backends.membrane.auth import MintedToken
from server.backends.membrane.executor import MembraneExecutor
from server.backends.membrane.state import STATE_FILE_NAME
from server.backends.sandbox import SandboxConfig, create_app
from server.cli import build_parser
from server.config import LAUNCHER_VARIABLES, Settings, declarations, environment_rows, load_settings
from server.runtime import Runtime
from server.transports.http import HttpOptions
from tests.fakes.membrane import running_fake_membrane
from tests.helpers import ROOT, child_env, day, make_runtime, mcp_client, ok, server_command, text
from tests.test_http_transport import http_client, http_server
from tools.catalog import CATALOG

pytestmark = pytest.mark.anyio

TOKEN = "membrane-test-token"
HTTP_TOKEN = "settings-once-http-token-0123456789"
NAME = re.compile(r"[\"']((?:CLEVERTAP|MEMBRANE)_[A-Z0-9_]+)[\"']")
SPAN = {"from": day(-30), "to": day(0)}
DECLARED = {name for name, _, _ in environment_rows()}


# -- declared once, read once ---------------------------------------------------------------------------------------
def environment_reads(source: str) -> list[int]:
    """Lines of ``source`` that read the process environment (``os.environ``, ``os.getenv``, ``from os import
    environ``)."""
    readers = ("environ", "environb", "getenv", "getenvb")
    lines = []
    for node in ast.walk(ast.parse(source)):
        attribute = isinstance(node, ast.Attribute) and node.attr in readers
        imported = (
            isinstance(node, ast.ImportFrom) and node.module == "os" and any(a.name in readers for a in node.names)
        )
        if attribute or imported:
            lines.append(getattr(node, "lineno", 0))
    return sorted(lines)


def test_the_scanner_finds_environment_reads() -> None:
    """The scan below would pass vacuously if it missed the usual forms."""
    source = "import os\nfrom os import getenv\na = os.environ['X']\nb = os.getenv('Y')\nc = os.environ.get('Z')\n"
    assert environment_reads(source) == [2, 3, 4, 5]
    assert environment_reads("env = {}\nenv.get('CLEVERTAP_MCP_X')\n") == []


def test_only_the_settings_loader_reads_the_environment() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for folder in ("server", "tools")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != ROOT / "server" / "config.py"
        for line in environment_reads(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "read the setting through server.config.load_settings instead"
    assert environment_reads((ROOT / "server" / "config.py").read_text(encoding="utf-8"))


def test_every_variable_the_code_names_is_declared() -> None:
    named: set[str] = set()
    for folder in ("server", "tools"):
        for path in (ROOT / folder).rglob("*.py"):
            named |= set(NAME.findall(path.read_text(encoding="utf-8")))
    named.discard("MEMBRANE_WORKSPACE")  # a prefix test on the token source's kind, not a variable
    assert named - DECLARED == set()
    # The bundle launcher runs before pydantic exists, so it reads its own two; they are declared all the same.
    launcher = set(NAME.findall((ROOT / "bundle" / "launch.py").read_text(encoding="utf-8")))
    assert launcher == {name for name, _ in LAUNCHER_VARIABLES}


def test_each_declaration_is_unique_and_documented_where_it_is_used() -> None:
    found = list(declarations())
    envs = [spec.env for _, _, spec in found if spec.env]
    flags = [spec.flag for _, _, spec in found if spec.flag]
    assert len(envs) == len(set(envs)) and len(flags) == len(set(flags))
    assert all(field.description for _, field, _ in found)
    helps = build_parser().format_help()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, field, spec in found:
        if spec.env is not None:
            assert f"| `{spec.env}` |" in readme, spec.env
        if spec.flag is not None:
            # The flag's help is the declared text, naming its variable.
            assert spec.flag in helps and f"env {spec.env}" in " ".join(helps.split()), name
            assert (field.description or "").split()[0].strip("`") in helps, name


def test_a_bad_variable_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="CLEVERTAP_MCP_HTTP_BODY_TIMEOUT"):
        load_settings({"CLEVERTAP_MCP_HTTP_BODY_TIMEOUT": "soon"})
    with pytest.raises(ValueError, match="CLEVERTAP_MCP_MAX_USER_RUNTIMES"):
        load_settings({"CLEVERTAP_MCP_MAX_USER_RUNTIMES": "0"})
    with pytest.raises(ValueError, match="CLEVERTAP_MCP_READ_ONLY='maybe'"):
        load_settings({"CLEVERTAP_MCP_READ_ONLY": "maybe"})
    with pytest.raises(ValueError, match=r"--redact-keys"):
        load_settings({}, redact_keys=42)
    assert load_settings({"CLEVERTAP_MCP_LOG_LEVEL": "debug", "CLEVERTAP_MCP_BACKEND": "Sandbox"}).log_level == "DEBUG"


# -- handed down: each component takes its values from the settings --------------------------------------------------
def test_http_options_come_from_the_settings() -> None:
    settings = load_settings(
        {
            "CLEVERTAP_MCP_HTTP_TOKEN": HTTP_TOKEN,
            "CLEVERTAP_MCP_ALLOWED_HOSTS": "MCP.example.com, other.example:443",
            "CLEVERTAP_MCP_REDIS_URL": "redis://127.0.0.1:1/0",
            "CLEVERTAP_MCP_HTTP_IDLE_TIMEOUT": "3",
            "CLEVERTAP_MCP_HTTP_HEADER_TIMEOUT": "4",
            "CLEVERTAP_MCP_HTTP_BODY_TIMEOUT": "5",
            "CLEVERTAP_MCP_MAX_USER_RUNTIMES": "6",
            "CLEVERTAP_MCP_USER_RUNTIMES_MEMORY_MB": "700",
            "CLEVERTAP_MCP_MAX_FRAME_BYTES": "8192",
        }
    )
    options = HttpOptions.from_settings(settings, "127.0.0.1", 9)
    assert options == HttpOptions(
        host="127.0.0.1",
        port=9,
        token=HTTP_TOKEN,
        allowed_hosts=("mcp.example.com", "other.example:443"),
        redis_url="redis://127.0.0.1:1/0",
        idle_timeout_s=3,
        header_timeout_s=4,
        body_timeout_s=5,
        max_user_runtimes=6,
        user_runtimes_memory_mb=700,
        max_body_bytes=8192,
    )
    assert "redis://" not in repr(settings) and HTTP_TOKEN not in repr(settings)  # secrets stay out of reprs
    assert HttpOptions.from_settings(Settings(), "h", 1) == HttpOptions(host="h", port=1)  # one set of defaults


def test_membrane_executor_takes_its_values_from_the_settings(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "MEMBRANE_WORKSPACE_KEY": "wk",
            "MEMBRANE_WORKSPACE_SECRET": "workspace-secret-value",
            "MEMBRANE_TENANT_KEY": "tenant-1",
            "MEMBRANE_API_URL": "http://127.0.0.1:9/",
            "MEMBRANE_CONNECTION_ID": "6650c0ffee0000000000c001",
            "CLEVERTAP_MCP_STATE_DIR": str(tmp_path / "state"),
            "CLEVERTAP_MCP_CALL_BUDGET": "7",
            "CLEVERTAP_MCP_RETRY_BACKOFF": "0.25",
        }
    )
    executor = MembraneExecutor.from_settings(settings)
    assert executor.api_url == "http://127.0.0.1:9"
    assert executor.call_budget_s == 7 and executor.retry_backoff_s == 0.25
    assert executor._pinned_id == "6650c0ffee0000000000c001"
    assert executor._state.path == tmp_path / "state" / STATE_FILE_NAME
    assert isinstance(executor._client.auth, MintedToken)  # minted from the three workspace settings


def test_scan_store_size_and_state_folder_reach_the_runtime(tmp_path: Path) -> None:
    runtime = make_runtime({"CLEVERTAP_MCP_SCAN_STORE_MB": "2", "CLEVERTAP_MCP_STATE_DIR": str(tmp_path)})
    try:
        assert runtime.scans.max_bytes == 2 * 1024 * 1024
        assert runtime.settings.membrane_state_dir() == tmp_path
    finally:
        runtime.scans.close()


# -- through MCP ------------------------------------------------------------------------------------------------------
def listed(*flags: str, **env: str) -> list[str]:
    """``clevertap-mcp --sandbox [flags] tools`` in a subprocess (an MCP client session inside): the listed names."""
    proc = subprocess.run(
        server_command("--sandbox", *flags, "tools"),
        cwd=ROOT,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return [tool["name"] for tool in json.loads(proc.stdout)]


WRITERS = sorted(s.name for s in CATALOG if s.writes and not s.guarded_in_read_only)


@pytest.mark.parametrize(
    ("flags", "env"),
    [
        (("--tools", "clevertap_connect,clevertap_request"), {}),
        ((), {"CLEVERTAP_MCP_TOOLS": "clevertap_connect, clevertap_request"}),
        # A flag beats its variable.
        (("--tools", "clevertap_connect,clevertap_request"), {"CLEVERTAP_MCP_TOOLS": "clevertap_get_events"}),
    ],
    ids=["flag", "env", "flag-beats-env"],
)
def test_tool_selection_as_flag_or_variable(flags: tuple[str, ...], env: dict[str, str]) -> None:
    assert sorted(listed(*flags, **env)) == ["clevertap_connect", "clevertap_request"]


@pytest.mark.parametrize(("flags", "env"), [(("--read-only",), {}), ((), {"CLEVERTAP_MCP_READ_ONLY": "yes"})])
def test_read_only_as_flag_or_variable(flags: tuple[str, ...], env: dict[str, str]) -> None:
    names = listed(*flags, **env)
    assert WRITERS and not set(WRITERS) & set(names)
    assert "clevertap_get_event_count" in names


async def test_state_folder_from_the_environment_reaches_membrane_over_stdio(tmp_path: Path) -> None:
    """A real stdio server: the remembered connection lands in CLEVERTAP_MCP_STATE_DIR, nowhere else."""
    state = tmp_path / "remembered"
    with running_fake_membrane(tokens={TOKEN}, build_seconds=0.0) as (url, fake):
        env = child_env(MEMBRANE_TOKEN=TOKEN, MEMBRANE_API_URL=url, CLEVERTAP_MCP_STATE_DIR=str(state))
        params = StdioServerParameters(command=sys.executable, args=server_command()[1:], cwd=str(ROOT), env=env)
        async with Client(params, mode="legacy") as client:
            first = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 5}))
            if first["state"] == "CLIENT_ACTION_REQUIRED":
                fake.complete_client_action(first["connection_id"])
                first = ok(await client.call_tool("clevertap_connect", {"wait_seconds": 5}))
    assert first["state"] == "READY", first
    saved = json.loads((state / STATE_FILE_NAME).read_text())
    assert [entry["connection_id"] for entry in saved["connections"].values()] == [first["connection_id"]]


async def test_http_limits_from_the_environment_reach_the_transport() -> None:
    """A real HTTP server configured only through variables: bearer token, allowed host, body limit."""
    env = {
        "CLEVERTAP_MCP_HTTP_TOKEN": HTTP_TOKEN,
        "CLEVERTAP_MCP_ALLOWED_HOSTS": "mcp.example.com",
        "CLEVERTAP_MCP_MAX_FRAME_BYTES": "4096",
    }
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    accept = {"Accept": "application/json, text/event-stream"}
    auth = {**accept, "Authorization": f"Bearer {HTTP_TOKEN}"}
    with http_server("--sandbox", **env) as url:
        async with httpx.AsyncClient(timeout=30) as http:
            anonymous = await http.post(url, json=ping, headers=accept)
            named_host = await http.post(url, json=ping, headers={**auth, "Host": "mcp.example.com"})
            other_host = await http.post(url, json=ping, headers={**auth, "Host": "other.example.com"})
            too_big = await http.post(url, content=b" " * 5000, headers={**auth, "Content-Type": "application/json"})
        async with http_client(url, token=HTTP_TOKEN) as client:
            names = {t.name for t in (await client.list_tools()).tools}
    assert anonymous.status_code == 401
    assert named_host.status_code == 200, named_host.text
    assert other_host.status_code == 421
    assert too_big.status_code == 413 and "CLEVERTAP_MCP_MAX_FRAME_BYTES" in too_big.text
    assert names == {s.name for s in CATALOG}


async def test_a_given_executor_sits_behind_the_boundary() -> None:
    """``make_executor`` replaces the backend's executor without bypassing the boundary (here: read-only mode)."""
    app = create_app(SandboxConfig(account_id="ACC-GIVEN", passcode="given-passcode"))
    built: list[Runtime] = []

    def given(runtime: Runtime) -> HttpExecutor:
        built.append(runtime)
        return HttpExecutor(
            base_url="http://given.invalid",
            account_id="ACC-GIVEN",
            passcode="given-passcode",
            transport=httpx.ASGITransport(app=app),
            name="sandbox",
            region="sandbox",
            local_actions=runtime,
        )

    runtime = make_runtime(read_only=True, make_executor=given)
    upload = {"method": "POST", "path": "/1/upload", "body": {"d": []}}
    async with mcp_client(runtime) as client:
        counted = ok(await client.call_tool("clevertap_get_event_count", {"event_name": "Charged", **SPAN}))
        refused = await client.call_tool("clevertap_request", upload)
    assert built == [runtime]
    assert counted["count"] > 0
    assert refused.is_error and "read-only" in text(refused).lower()


def test_the_readme_table_is_regenerated_from_the_declaration() -> None:
    """A row edited or removed by hand is stale for ``scripts/regen.py --check`` and restored by a rewrite."""
    from scripts.regen import render_readme

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert render_readme(readme) == readme
    without = re.sub(r"\n\| `CLEVERTAP_MCP_HTTP_BODY_TIMEOUT` \|[^\n]*", "", readme, count=1)
    edited = readme.replace("| `CLEVERTAP_MCP_SCHEMA_TTL` | `3600` |", "| `CLEVERTAP_MCP_SCHEMA_TTL` | `60` |")
    for tampered in (without, edited):
        assert tampered != readme
        assert render_readme(tampered) == readme
