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


def _copy_tree(tmp_path: Path) -> Path:
    for name in ("app", "engine"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_engine_importing_qt_breaks_the_build(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    with (root / "engine" / "types.py").open("a") as f:
        f.write("\nfrom PySide6 import QtCore  # noqa\n")
    result = _lint(root)
    assert result.returncode != 0
    assert "imports neither Qt nor the app BROKEN" in result.stdout


def test_core_reaching_up_into_the_gui_breaks_the_build(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    with (root / "app" / "core" / "settings.py").open("a") as f:
        f.write("\nimport app.chat.composer  # noqa\n")
    result = _lint(root)
    assert result.returncode != 0
    assert "depend downward only BROKEN" in result.stdout
    assert "app.core.settings -> app.chat.composer" in result.stdout


def test_the_server_importing_qt_breaks_the_build(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    with (root / "app" / "server" / "api.py").open("a") as f:
        f.write("\nfrom PySide6 import QtCore  # noqa\n")
    result = _lint(root)
    assert result.returncode != 0
    assert "app.server (the HTTP API) has no Qt" in result.stdout and "BROKEN" in result.stdout
