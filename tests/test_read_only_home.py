"""A TinyChat home on a read-only disk: the app opens, says it cannot save, shows and exports every
conversation; the command line exports to stdout and refuses imports in one plain line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.store import Store

ROOT = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).with_name("read_only_home_child.py")


def _read_only(home: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """Run `command` with `home` bind-mounted read-only over itself, in a private mount namespace."""
    script = (f"mount --bind {home} {home} && mount -o remount,bind,ro {home} && exec \"$@\"")
    return subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *command], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "TINYCHAT_HOME": str(home),
                                                       "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"})


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home with one conversation and nothing else: no logs, config or models folder yet."""
    home = tmp_path / "home"
    store, _ = Store.open(home / "data" / "tinychat.db")
    conv = store.create_conversation(title="Kept safe")
    q = store.add_message(conv.id, None, "user", "Can you read me?")
    store.add_message(conv.id, q.id, "assistant", "Every word.")
    store.close()
    if not shutil.which("unshare") or _read_only(home, "true").returncode != 0:
        pytest.skip("needs a private mount namespace (unshare -rm) for a read-only bind mount")
    return home


def test_the_app_opens_says_it_cannot_save_and_still_shows_and_exports(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "export.md"
    run = _read_only(home, sys.executable, str(CHILD), str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["rc"] == 0 and seen["windows"] == 1 and seen["read_only"] is True
    assert "cannot save" in seen["notice"] and "read and export" in seen["notice"]
    assert seen["titles"] == ["Kept safe"]
    assert seen["messages"] == ["Can you read me?", "Every word."]
    assert "cannot write to" in seen["rename_notice"]
    assert seen["export"] == f"Exported 1 conversation to {out}."
    assert "Every word." in out.read_text(encoding="utf-8")


def test_the_command_line_exports_to_stdout_and_refuses_an_import_in_one_line(home: Path, tmp_path: Path) -> None:
    run = _read_only(home, sys.executable, "-m", "app", "export", "--out", "-")
    assert run.returncode == 0 and run.stderr == ""
    assert [c["title"] for c in json.loads(run.stdout)["conversations"]] == ["Kept safe"]
    source = tmp_path / "in.json"
    source.write_text(run.stdout, encoding="utf-8")
    imp = _read_only(home, sys.executable, "-m", "app", "import", str(source))
    assert imp.returncode == 1 and len(imp.stderr.strip().splitlines()) == 1
    assert "cannot write to" in imp.stderr and "read-only" in imp.stderr and "Traceback" not in imp.stderr
