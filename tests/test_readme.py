"""Every file derived from the catalog is up to date (``scripts/regen.py``), and every environment variable the code
reads is documented."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.regen import ENVIRONMENT, TARGETS, main, stale

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
NAME = re.compile(r"[\"']((?:CLEVERTAP|MEMBRANE)_[A-Z0-9_]+)[\"']")


def regen(*args: str) -> subprocess.CompletedProcess[str]:
    """``python scripts/regen.py ARGS`` from the repository root, as a developer runs it."""
    return subprocess.run(
        [sys.executable, "scripts/regen.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_every_derived_file_is_up_to_date() -> None:
    assert [str(p.relative_to(ROOT)) for p, _ in stale()] == [], "derived files are stale: run python scripts/regen.py"


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The derived files in a throwaway tree, to tamper with."""
    for name, _ in TARGETS:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_check_runs_as_a_script_and_fails_on_a_row_removed_by_hand(copy: Path) -> None:
    assert main(["--check", "--root", str(copy)]) == 0
    readme = (copy / "README.md").read_text()
    (copy / "README.md").write_text(re.sub(r"\n\| `clevertap_get_events` \|[^\n]*", "", readme, count=1))
    manifest = (copy / "manifest.json").read_text()
    start = manifest.index('    {\n      "name": "clevertap_request"')
    end = manifest.index("}", start) + 1
    (copy / "manifest.json").write_text(manifest[:start].rstrip().rstrip(",") + manifest[end:])
    checked = regen("--check", "--root", str(copy))
    assert checked.returncode == 1
    assert "stale: README.md" in checked.stderr and "stale: manifest.json" in checked.stderr, checked.stderr
    assert "names.py" not in checked.stderr and "tools.json" not in checked.stderr
    assert main(["--root", str(copy)]) == 0  # and the rewrite restores exactly what was removed
    assert [(copy / name).read_text() for name, _ in TARGETS] == [(ROOT / name).read_text() for name, _ in TARGETS]


def test_every_environment_variable_the_code_reads_is_documented() -> None:
    read: set[str] = set()
    for folder in ("server", "tools", "bundle"):
        for path in (ROOT / folder).rglob("*.py"):
            read |= set(NAME.findall(path.read_text()))
    read.discard("MEMBRANE_WORKSPACE")  # a prefix test on the token source's kind, not a variable
    documented = {name for name, _, _ in ENVIRONMENT}
    assert read - documented == set(), "undeclared variables: declare them in server/config.py Settings"
    assert documented - read == set(), "documented variables the code no longer reads"


def test_quick_start_commands_are_what_ci_runs() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    test_command = next(line for block in blocks for line in block.splitlines() if "pytest" in line)
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci
    quick = next(line for block in blocks for line in block.splitlines() if "--sandbox call" in line)
    assert quick.split("&& ")[-1].replace(".venv/bin/", "") in ci.replace(".venv/bin/", "")
