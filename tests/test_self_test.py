"""`tinychat --self-test`: the check every installer and CI job runs against a built TinyChat.

Run as a real subprocess (`python -m app --self-test`), exactly as a user or a package test would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import PySide6

from tests.fixtures.gguf_model import build_cached
from tests.fixtures.vocab import SCRIPT_TEXT

ROOT = Path(__file__).resolve().parents[1]


def self_test(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("TINYCHAT_HOME", None)
    # Point every platform folder into tmp_path, so the test can see that the self-test writes none of them.
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        env[var] = str(tmp_path / "user" / var)
    env["TMPDIR"] = str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env["QT_QPA_PLATFORM"] = "offscreen"
    return subprocess.run([sys.executable, "-m", "app", "--self-test", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_self_test_loads_a_model_and_generates_through_the_worker_thread(tmp_path: Path) -> None:
    model = build_cached("tiny", scripted=True)
    proc = self_test(tmp_path, "--model", str(model))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "self-test passed"
    for name in ("Qt platform plugin", "main window", "conversation database", "engine libraries", "code colours",
                 "model"):
        assert any(line.startswith(f"ok    {name}: ") for line in lines), proc.stdout
    model_line = next(line for line in lines if line.startswith("ok    model: "))
    # The scripted model's answer starts with SCRIPT_TEXT; 8 tokens cover its first words.
    assert "via llama.cpp: 8 tokens" in model_line
    assert SCRIPT_TEXT[:12] in model_line


def test_self_test_without_a_model_checks_window_database_and_engine_libraries(tmp_path: Path) -> None:
    proc = self_test(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok    conversation database: SQLite" in proc.stdout
    assert "with FTS5 search" in proc.stdout
    assert "ok    engine libraries: llama.cpp 0.3.36" in proc.stdout
    assert f"ok    library versions: PySide6 {PySide6.__version__}, llama-cpp-python 0.3.36" in proc.stdout
    assert "model:" not in proc.stdout


def test_self_test_prints_its_report_and_nothing_on_stderr(tmp_path: Path) -> None:
    proc = self_test(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""


def test_only_the_harmless_size_hint_warning_is_kept_from_stderr() -> None:
    code = ("from PySide6.QtCore import qWarning\n"
            "from app.shell.qt_messages import install_filter\n"
            "install_filter(); install_filter()\n"
            "qWarning('This plugin does not support propagateSizeHints()')\n"
            "qWarning('QPainter::begin: Paint device returned engine == 0')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "QPainter::begin: Paint device returned engine == 0\n"


def test_self_test_uses_a_private_folder_and_leaves_nothing_behind(tmp_path: Path) -> None:
    proc = self_test(tmp_path, "--model", str(build_cached("tiny", scripted=True)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (tmp_path / "user").exists()  # no settings, database or log in the user's folders
    assert list((tmp_path / "tmp").iterdir()) == []  # its temporary home is removed


def test_self_test_names_the_reason_when_the_model_is_damaged(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.gguf"
    good = build_cached("tiny", scripted=True).read_bytes()
    damaged.write_bytes(good[: len(good) // 3])
    proc = self_test(tmp_path, "--model", str(damaged))
    assert proc.returncode == 1
    fail = [line for line in proc.stdout.splitlines() if line.startswith("FAIL  model: ")]
    assert fail and "damaged.gguf did not load: " in fail[0], proc.stdout
    assert proc.stdout.splitlines()[-1].startswith("self-test FAILED: model: ")
    # The other checks still ran and passed: the report tells what works and what does not.
    assert "ok    engine libraries:" in proc.stdout


def test_self_test_refuses_a_model_path_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here.gguf"
    proc = self_test(tmp_path, "--model", str(missing))
    assert proc.returncode == 2
    assert f"the model {missing} does not exist" in proc.stderr
