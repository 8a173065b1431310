"""The README's tables come from the code, and every environment variable the code reads is documented."""

from __future__ import annotations

import re
from pathlib import Path

from server.docs import ENVIRONMENT, render

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
NAME = re.compile(r"[\"']((?:CLEVERTAP|MEMBRANE)_[A-Z0-9_]+)[\"']")


def test_generated_tables_are_up_to_date() -> None:
    assert render(README) == README, "README tables are stale: run `python -m server.docs`"


def test_every_environment_variable_the_code_reads_is_documented() -> None:
    read: set[str] = set()
    for folder in ("server", "tools", "bundle"):
        for path in (ROOT / folder).rglob("*.py"):
            read |= set(NAME.findall(path.read_text()))
    read.discard("MEMBRANE_WORKSPACE")  # a prefix test on the token source's kind, not a variable
    documented = {name for name, _, _ in ENVIRONMENT}
    assert read - documented == set(), "undocumented variables: add them to server/docs.py ENVIRONMENT"
    assert documented - read == set(), "documented variables the code no longer reads"


def test_quick_start_commands_are_what_ci_runs() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    test_command = next(line for block in blocks for line in block.splitlines() if "pytest" in line)
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci
    quick = next(line for block in blocks for line in block.splitlines() if "--sandbox call" in line)
    assert quick.split("&& ")[-1].replace(".venv/bin/", "") in ci.replace(".venv/bin/", "")


def test_tool_names_list_matches_the_catalog() -> None:
    from tools.catalog import CATALOG
    from tools.names import TOOL_NAMES

    assert tuple(s.name for s in CATALOG) == TOOL_NAMES
