"""The layer contracts in pyproject.toml hold, and import-linter really fails when one is broken."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)})


def test_every_layer_contract_is_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _lint_with(tmp_path: Path, module: str, line: str) -> str:
    """import-linter's report on a copy of the tree where `module` (a path under the root) gained `line`;
    asserts that it failed."""
    for name in ("app", "engine"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with (tmp_path / module).open("a") as f:
        f.write(f"\n{line}  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    return result.stdout


def test_engine_importing_qt_breaks_the_build(tmp_path: Path) -> None:
    assert "imports neither Qt nor the app BROKEN" in _lint_with(tmp_path, "engine/types.py",
                                                                 "from PySide6 import QtCore")


def test_core_reaching_up_into_the_gui_breaks_the_build(tmp_path: Path) -> None:
    report = _lint_with(tmp_path, "app/core/settings.py", "import app.chat.composer")
    assert "depend downward only BROKEN" in report
    assert "app.core.settings -> app.chat.composer" in report


def test_the_server_importing_qt_breaks_the_build(tmp_path: Path) -> None:
    report = _lint_with(tmp_path, "app/server/api.py", "from PySide6 import QtCore")
    assert "app.server (the HTTP API) has no Qt" in report and "BROKEN" in report
