"""`tinychat export` / `tinychat import` as a user runs them, in a private TINYCHAT_HOME."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.store import Store

ROOT = Path(__file__).resolve().parents[1]


def tinychat(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TINYCHAT_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


def _db(home: Path) -> Path:
    return home / "data" / "tinychat.db"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return two_conversation_home(tmp_path / "home")


def two_conversation_home(home: Path) -> Path:
    """A TinyChat home holding two conversations."""
    store, _ = Store.open(_db(home))
    for title, question, answer in (("Soup", "How do I make soup?", "Boil vegetables."),
                                    ("Trains", "Trains to Lyon?", "Every hour.")):
        conv = store.create_conversation(title=title)
        q = store.add_message(conv.id, None, "user", question)
        store.add_message(conv.id, q.id, "assistant", answer)
    store.close()
    return home


def _titles(home: Path) -> list[str]:
    store, _ = Store.open(_db(home))
    try:
        return sorted(c.title for c in store.list_conversations())
    finally:
        store.close()


def test_export_json_then_import_into_another_home_copies_every_conversation(home: Path,
                                                                             tmp_path: Path) -> None:
    out = tmp_path / "backup.json"
    run = tinychat(home, "export", "--format", "json", "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert "Exported 2 conversation(s)" in run.stdout
    assert json.loads(out.read_text(encoding="utf-8"))["version"] == 1
    other = tmp_path / "other"
    run = tinychat(other, "import", str(out))
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["Added 2 conversation(s) with 4 message(s)."]  # one summary line
    assert _titles(other) == ["Soup", "Trains"]
    again = tinychat(other, "import", "--verbose", str(out))
    assert again.returncode == 0 and "skipped 2 already present" in again.stdout
    assert "already present: Soup" in again.stdout and "already present: Trains" in again.stdout
    assert _titles(other) == ["Soup", "Trains"]


def test_export_markdown_of_one_conversation(home: Path, tmp_path: Path) -> None:
    store, _ = Store.open(_db(home))
    soup = next(c.id for c in store.list_conversations() if c.title == "Soup")
    store.close()
    out = tmp_path / "soup.md"
    run = tinychat(home, "export", "--format", "md", "--conversation", soup, "--out", str(out))
    assert run.returncode == 0, run.stderr
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Soup") and "Boil vegetables." in text and "Trains" not in text


def test_export_to_stdout(home: Path) -> None:
    run = tinychat(home, "export", "--format", "md", "--out", "-")
    assert run.returncode == 0 and "# Soup" in run.stdout and "# Trains" in run.stdout


@pytest.mark.parametrize("content", [
    b"{broken", b'{"format": "tinychat-conversations", "version": 99}', b"\x00" * 10])
def test_importing_a_bad_file_exits_non_zero_with_one_line_and_writes_nothing(home: Path, tmp_path: Path,
                                                                              content: bytes) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    run = tinychat(home, "import", str(bad))
    assert run.returncode != 0
    assert len(run.stderr.strip().splitlines()) == 1 and run.stderr.startswith("tinychat: ")
    assert run.stdout == ""
    assert _titles(home) == ["Soup", "Trains"]


def test_importing_a_missing_file_says_so_in_one_line(home: Path, tmp_path: Path) -> None:
    run = tinychat(home, "import", str(tmp_path / "nope.json"))
    assert run.returncode != 0
    assert run.stderr.strip().splitlines() == [f"tinychat: Could not read {tmp_path / 'nope.json'}: "
                                               "No such file or directory."]


def test_exporting_an_unknown_conversation_fails_and_creates_no_file(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    run = tinychat(home, "export", "--conversation", "f" * 32, "--out", str(out))
    assert run.returncode != 0
    assert run.stderr.strip().splitlines() == [f"tinychat: There is no conversation with id {'f' * 32}."]
    assert not out.exists()


def test_export_into_a_missing_folder_fails_cleanly(home: Path, tmp_path: Path) -> None:
    run = tinychat(home, "export", "--out", str(tmp_path / "no" / "such" / "dir" / "x.json"))
    assert run.returncode != 0 and len(run.stderr.strip().splitlines()) == 1
    assert "Could not write" in run.stderr


def test_a_mistyped_command_names_the_real_ones_instead_of_opening_the_window(home: Path) -> None:
    run = tinychat(home, "exprot", "--out", "x.json")
    assert run.returncode == 2 and run.stdout == ""
    assert "invalid choice: 'exprot'" in run.stderr
    assert "export" in run.stderr.split("choose from")[1] and "import" in run.stderr.split("choose from")[1]


def test_help_lists_the_commands_with_the_window_options(home: Path) -> None:
    run = tinychat(home, "--help")
    assert run.returncode == 0
    for words in ("--self-test", "export", "import", "Without a command, opens the window."):
        assert words in run.stdout


def test_on_a_terminal_export_and_import_draw_a_progress_bar_on_stderr_and_print_one_summary(home: Path,
                                                                                         tmp_path: Path) -> None:
    out = tmp_path / "backup.json"
    drawn = []
    for args, where in ((("export", "--out", str(out)), home), (("import", str(out)), tmp_path / "other")):
        leader, follower = pty.openpty()  # stderr is a terminal, as when a user runs the command
        env = {**os.environ, "TINYCHAT_HOME": str(where)}
        run = subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=follower, text=True, timeout=60)
        os.close(follower)
        drawn.append(os.read(leader, 65536).decode())
        os.close(leader)
        assert run.returncode == 0 and len(run.stdout.splitlines()) == 1
    assert "Exporting" in drawn[0] and "100 %" in drawn[0] and "2 conversation(s)" in drawn[0]
    assert "Importing" in drawn[1] and "100 %" in drawn[1]
    assert _titles(tmp_path / "other") == ["Soup", "Trains"]
