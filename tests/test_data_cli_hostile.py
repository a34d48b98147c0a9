"""`tinychat import|export` against hostile paths, terminals, pipes and disks: one plain line, no
traceback, no hang, nothing written, and nothing printed that could drive the terminal."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_data_cli import ROOT, _db, _titles, tinychat, two_conversation_home


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return two_conversation_home(tmp_path / "home")


HOSTILE_TITLE = "Evil\x1b]0;pwned\x07\x1b[2J\u202etxt.exe\nforged line"


def _export_doc(title: str, cid: str = "c1") -> str:
    return json.dumps({"format": "tinychat-conversations", "version": 1, "conversations": [{
        "id": cid, "title": title, "created_at": "2024-05-01T10:00:00+00:00",
        "updated_at": "2024-05-01T10:00:00+00:00", "messages": []}]})


def _refused_in_one_line(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 1, run.stderr
    assert run.stdout == "" and "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinychat: "), run.stderr
    return lines[0]


@pytest.mark.parametrize(("target", "kind"), [
    ("/dev/zero", "a device"), ("/dev/urandom", "a device"), ("/dev/null", "a device"), (".", "a folder")])
def test_a_device_or_folder_is_refused_before_reading_even_through_a_symlink(home: Path, tmp_path: Path,
                                                                            target: str, kind: str) -> None:
    link = tmp_path / "backup.json"
    link.symlink_to(Path(target).resolve())
    for path in (target, link):
        line = _refused_in_one_line(tinychat(home, "import", str(path)))  # within tinychat()'s 60 s limit
        assert f"is {kind}, not a file" in line
    assert _titles(home) == ["Soup", "Trains"]


def test_a_named_pipe_is_refused_at_once_instead_of_waiting_for_a_writer(home: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    env = {**os.environ, "TINYCHAT_HOME": str(home)}
    run = subprocess.run([sys.executable, "-m", "app", "import", str(fifo)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=20)
    assert "is a named pipe, not a file" in _refused_in_one_line(run)


def test_a_large_file_of_zero_bytes_is_refused_as_not_json_without_any_size_limit(home: Path,
                                                                                  tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with open(big, "wb") as fh:
        fh.truncate(300 * 2**20)
    assert "not valid JSON" in _refused_in_one_line(tinychat(home, "import", str(big)))


def test_a_file_larger_than_the_free_disk_space_is_refused_before_anything_is_read(home: Path,
                                                                                 tmp_path: Path) -> None:
    big = tmp_path / "bigger-than-the-disk.json"
    with open(big, "wb") as fh:  # sparse: takes no room itself
        fh.truncate(shutil.disk_usage(tmp_path).total + 2**30)
    line = _refused_in_one_line(tinychat(home, "import", str(big)))
    assert "needs about" in line and "free" in line


def test_control_characters_and_bidi_overrides_from_a_file_are_printed_escaped(home: Path, tmp_path: Path) -> None:
    good = tmp_path / "evil.json"
    good.write_text(_export_doc(HOSTILE_TITLE), encoding="utf-8")
    run = tinychat(home, "import", "--verbose", str(good))
    assert run.returncode == 0, run.stderr
    assert "\x1b" not in run.stdout and "\u202e" not in run.stdout and "\x07" not in run.stdout
    assert run.stdout.splitlines()[1] == ("  added: Evil\\x1b]0;pwned\\x07\\x1b[2J\\u202etxt.exe\\x0aforged line")
    bad = tmp_path / "evil-bad.json"
    doc = json.loads(_export_doc(HOSTILE_TITLE, "c2"))
    doc["conversations"][0]["current_leaf_id"] = "missing"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    line = _refused_in_one_line(tinychat(home, "import", str(bad)))
    assert "\x1b" not in line and "\u202e" not in line and "\\u202e" in line


def test_an_undecodable_file_name_is_named_with_an_escape_instead_of_a_traceback(home: Path, tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9.json")  # not UTF-8: reaches Python as a lone surrogate
    line = _refused_in_one_line(tinychat(home, "import", str(tmp_path / name)))
    assert "\\udce9.json" in line and "No such file" in line


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_an_export_gets_the_permissions_the_users_umask_gives_any_new_file(home: Path, tmp_path: Path,
                                                                           umask: int, mode: int) -> None:
    out = tmp_path / "backup.json"
    env = {**os.environ, "TINYCHAT_HOME": str(home)}
    run = subprocess.run([sys.executable, "-m", "app", "export", "--out", str(out)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60, preexec_fn=lambda: os.umask(umask))
    assert run.returncode == 0, run.stderr
    assert stat.S_IMODE(out.stat().st_mode) == mode


def test_exporting_over_an_existing_file_keeps_its_permissions(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "backup.md"
    out.write_text("old", encoding="utf-8")
    out.chmod(0o604)
    assert tinychat(home, "export", "--format", "md", "--out", str(out)).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o604 and out.read_text(encoding="utf-8").startswith("# ")


@pytest.mark.parametrize("command", ["import", "export"])
def test_a_reader_that_closed_the_pipe_ends_the_command_quietly(home: Path, tmp_path: Path, command: str) -> None:
    source = tmp_path / "many.json"
    source.write_text(json.dumps({"format": "tinychat-conversations", "version": 1, "conversations": [
        json.loads(_export_doc(f"title {i}", f"c{i}"))["conversations"][0] for i in range(2000)]}),
        encoding="utf-8")
    args = ["import", str(source)] if command == "import" else ["export", "--out", "-"]
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` that has already exited
    try:
        run = subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, stdout=write_end,
                             stderr=subprocess.PIPE, text=True, timeout=60,
                             env={**os.environ, "TINYCHAT_HOME": str(home)})
    finally:
        os.close(write_end)
    assert run.returncode == 141 and run.stderr == ""


def test_export_to_a_full_standard_output_names_the_full_disk(home: Path) -> None:
    with open("/dev/full", "w") as full:
        run = subprocess.run([sys.executable, "-m", "app", "export", "--out", "-"], cwd=ROOT, stdout=full,
                             stderr=subprocess.PIPE, text=True, timeout=60,
                             env={**os.environ, "TINYCHAT_HOME": str(home)})
    assert run.returncode == 1
    assert run.stderr == "tinychat: Could not write the export to standard output: No space left on device.\n"


def _damage(db: Path) -> None:
    for side in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        side.unlink(missing_ok=True)
    db.write_bytes(b"SQLite format 3\x00" + b"\xde\xad" * 4096)


def test_a_log_file_that_cannot_be_written_prints_no_logging_traceback(home: Path, tmp_path: Path) -> None:
    logs = home / "logs"
    logs.mkdir(exist_ok=True)
    (logs / "tinychat.log").symlink_to("/dev/full")  # every write: "No space left on device"
    _damage(_db(home))  # opening it logs errors: the damage, and where the file was moved
    line = _refused_in_one_line(tinychat(home, "export", "--out", str(tmp_path / "x.json")))
    assert "damaged" in line


def test_a_damaged_database_found_by_export_is_named_with_where_it_went_and_nothing_is_exported(
        home: Path, tmp_path: Path) -> None:
    db = _db(home)
    _damage(db)
    out = tmp_path / "backup.json"
    line = _refused_in_one_line(tinychat(home, "export", "--out", str(out)))
    moved = sorted(db.parent.glob("tinychat.db.corrupt-*"))
    assert moved and str(moved[0]) in line and "Nothing was exported" in line
    assert not out.exists()
    again = tinychat(home, "export", "--out", str(out))
    assert again.returncode == 0 and "Exported 0 conversation(s)" in again.stdout
    assert again.stderr.strip().splitlines() == [
        f"tinychat: note: a damaged conversation database was moved to {moved[0]}; its conversations are "
        "not in this export."]
