"""manifest.json (the MCP Bundle) stays true to the server: same tools, same version, config that the server reads.

Its tool list is derived from the catalog: ``python scripts/regen.py`` rewrites it.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from scripts.regen import manifest_tools

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "manifest.json"
LAUNCHER = ROOT / "bundle" / "launch.py"


def load_manifest() -> dict[str, Any]:
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def load_launcher() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bundle_launch", LAUNCHER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_manifest_tools_equal_the_catalog() -> None:
    assert load_manifest()["tools"] == manifest_tools(), (
        "manifest.json's tools differ from the catalog: run python scripts/regen.py"
    )


def test_manifest_tools_equal_what_tools_list_returns() -> None:
    from tests.helpers import make_runtime
    from tools.catalog import CATALOG

    runtime = make_runtime()
    listed = [{"name": s.name, "description": s.description} for s in runtime.specs]
    assert len(runtime.specs) == len(CATALOG)
    assert load_manifest()["tools"] == listed


def test_versions_agree() -> None:
    from server.protocol.app import VERSION

    pyproject = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'^version = "([^"]+)"', pyproject, re.M)
    assert match is not None
    assert load_manifest()["version"] == VERSION == match.group(1)


def test_user_config_reaches_the_server_as_the_variables_it_reads() -> None:
    manifest = load_manifest()
    assert manifest["manifest_version"] == "0.3"
    server = manifest["server"]
    assert server["type"] == "python"
    assert server["entry_point"] == "bundle/launch.py"
    assert (ROOT / server["entry_point"]).is_file()
    config = server["mcp_config"]
    assert config["args"][0] == "${__dirname}/bundle/launch.py"
    env = config["env"]
    assert env == {
        "CLEVERTAP_MCP_BACKEND": "${user_config.backend}",
        "MEMBRANE_TOKEN": "${user_config.membrane_token}",
        "CLEVERTAP_ACCOUNT_ID": "${user_config.clevertap_account_id}",
        "CLEVERTAP_PASSCODE": "${user_config.clevertap_passcode}",
        "CLEVERTAP_REGION": "${user_config.clevertap_region}",
        "CLEVERTAP_MCP_READ_ONLY": "${user_config.read_only}",
    }
    user_config = manifest["user_config"]
    assert set(user_config) == {v[len("${user_config.") : -1] for v in env.values()}
    assert user_config["membrane_token"]["sensitive"] is True
    assert user_config["clevertap_passcode"]["sensitive"] is True
    assert user_config["read_only"]["type"] == "boolean"
    # Nothing is required (a required field that only has a default counts as missing), and every field has a
    # default, so that no "${user_config.x}" is left unsubstituted when the user leaves it empty.
    assert all(not opt.get("required", False) and "default" in opt for opt in user_config.values())
    assert manifest["compatibility"]["runtimes"]["python"] == ">=3.10"


def test_manifest_defaults_start_a_working_server() -> None:
    """The environment the host builds from the defaults: blank values must read as unset."""
    from server.config import load_settings

    manifest = load_manifest()
    defaults = {k: v["default"] for k, v in manifest["user_config"].items()}
    env: dict[str, str] = {}
    for name, template in manifest["server"]["mcp_config"]["env"].items():
        value = defaults[template[len("${user_config.") : -1]]
        env[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    settings = load_settings(env)
    assert settings.resolved_backend() == "unconfigured"
    assert settings.read_only is False
    assert load_settings({**env, "CLEVERTAP_MCP_READ_ONLY": "true"}).read_only is True


def test_launcher_drops_unset_and_unsubstituted_values() -> None:
    launcher = load_launcher()
    env = launcher.clean_environment(
        {
            "CLEVERTAP_MCP_BACKEND": "${user_config.backend}",
            "CLEVERTAP_REGION": "  ",
            "MEMBRANE_TOKEN": "tok-123",
            "CLEVERTAP_MCP_READ_ONLY": "false",
            "PATH": "/usr/bin",
            "OTHER": "",
        }
    )
    assert env == {"MEMBRANE_TOKEN": "tok-123", "CLEVERTAP_MCP_READ_ONLY": "false", "PATH": "/usr/bin", "OTHER": ""}


def test_launcher_reuses_an_installed_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    launcher = load_launcher()
    monkeypatch.setenv("CLEVERTAP_MCP_VENV", str(tmp_path / "venv"))
    directory = launcher.venv_dir()
    assert directory == str(tmp_path / "venv")
    python = Path(launcher.venv_python(directory))
    python.parent.mkdir(parents=True)
    python.write_text("")
    (Path(directory) / launcher.STAMP_NAME).write_text(launcher.install_stamp())
    assert launcher.prepare(directory) == str(python)


def test_bundle_ignore_file_keeps_local_state_out() -> None:
    ignored = (ROOT / ".mcpbignore").read_text().split()
    for entry in (".venv/", ".runtime/", "tests/", ".git/", "__pycache__/", "*.mcpb"):
        assert entry in ignored
