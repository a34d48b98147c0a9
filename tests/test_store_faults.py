"""Fault injection: the real app on a really full disk at every write of a chat turn, an import and
an export. After space returns, every word the user typed and every token the model produced is on
disk, and every message shown named the real cause (see tests/store_fault_child.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.store import Store
from app.core.transfer import export_json
from tests.fixtures.vocab import SCRIPT_TEXT
from tests.test_store_errors import _can_mount_tmpfs

CHILD = Path(__file__).with_name("store_fault_child.py")
UNSAVED = "so this answer is not saved yet"


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    tmp = tmp_path_factory.mktemp("faults")
    folder = tmp / "tiny"
    folder.mkdir()
    if not _can_mount_tmpfs(folder):
        pytest.skip("needs a private mount namespace (unshare -rm) to mount a small tmpfs")
    source = tmp / "three.json"
    store, _ = Store.open(tmp / "source.db")
    for i in range(3):
        conv = store.create_conversation(title=f"imported {i}")
        q = store.add_message(conv.id, None, "user", "a question " * 10)
        store.add_message(conv.id, q.id, "assistant", "a long answer " * 200)
    source.write_text(json.dumps(export_json(store)), encoding="utf-8")
    store.close()
    script = f"mount -t tmpfs -o size=3M none {folder} && exec {sys.executable} {CHILD} {folder} {source}"
    run = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=240,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr and "Logging error" not in run.stderr, run.stderr[-3000:]
    found = {r["case"]: r for r in map(json.loads, run.stdout.splitlines())}
    assert "done" in found
    return found


def _chat_cases(cases: dict[str, dict]) -> list[dict]:
    return [c for name, c in cases.items() if name.startswith("chat-write-")]


def test_a_clean_turn_has_a_write_for_the_chat_the_question_the_title_the_answer_and_its_stream(cases):
    clean = cases["clean"]
    assert clean["writes"] >= 6 and clean["notices"] == []
    assert clean["stored"] == [["user", clean["question"], "complete"], ["assistant", SCRIPT_TEXT, "complete"]]
    assert len(_chat_cases(cases)) == clean["writes"]


def test_after_a_full_disk_at_any_write_of_a_turn_the_question_and_the_whole_answer_are_on_disk(cases):
    for case in _chat_cases(cases):
        assert case["stored"] == [["user", case["question"], "complete"],
                                  ["assistant", SCRIPT_TEXT, "complete"]], case


def test_a_question_the_full_disk_refused_stays_in_the_composer_and_is_saved_once_on_retry(cases):
    refused = [c for c in _chat_cases(cases) if c["refused"]]
    assert len(refused) == 2  # creating the chat, saving the question
    for case in refused:
        assert len(case["notices"]) == 1 and case["notices"][0].startswith("The disk is full"), case
    assert "Your text is still here" in refused[1]["notices"][0]


def test_an_answer_the_disk_refused_is_held_the_user_is_told_once_and_it_is_saved_when_space_returns(cases):
    held = [c for c in _chat_cases(cases) if c["held"]]
    assert len(held) >= 4  # every streaming write and the final one
    for case in held:
        told = [n for n in case["notices"] if UNSAVED in n]
        assert len(told) == 1 and told[0].startswith("The disk is full"), case
        assert case["notices"][-1] == "The answer that could not be saved earlier is now saved.", case
        assert not any("still here" in n for n in case["notices"]), case


def test_an_answer_that_could_not_start_says_the_question_is_saved_and_how_to_get_the_answer(cases):
    for case in _chat_cases(cases):
        if any("could not start" in n for n in case["notices"]):
            assert not case["refused"] and "Ctrl+R" in case["notices"][-1]
            break
    else:
        pytest.fail("no case hit the answer's first write")


def test_closing_with_a_held_answer_asks_to_retry_and_saves_every_token_produced(cases):
    close = cases["close-while-full"]
    assert close["asked"] == [1]
    produced = close["produced"][-1]
    assert produced and SCRIPT_TEXT.startswith(produced)
    assert close["stored"] == [["user", "closing while the disk is full", "complete"],
                               ["assistant", produced, "partial"]]


def test_an_import_on_a_full_disk_writes_nothing_says_so_and_succeeds_once_there_is_room(cases):
    imp = cases["import"]
    assert "disk is full" in imp["error"] and "Nothing was imported" in imp["error"]
    assert "still here" not in imp["error"]
    assert imp["unchanged"] is True and imp["added_after"] == 3


def test_an_export_on_a_full_disk_keeps_the_previous_file_and_leaves_no_temporary_file(cases):
    exp = cases["export"]
    assert exp == {"case": "export", "error": "No space left on device", "kept": True, "leftovers": [],
                   "complete_after": True}


def test_the_command_line_on_a_full_disk_names_the_cause_in_one_line_and_still_exports_to_stdout(cases):
    imp = cases["cli-import-full"]
    assert imp["rc"] == 1 and imp["stderr"].count("\n") == 1 and "disk is full" in imp["stderr"]
    assert "still here" not in imp["stderr"]
    out = cases["cli-export-stdout-full"]
    assert out["rc"] == 0 and out["stderr"] == "" and out["exported"] and out["exported"] > 3
    to_file = cases["cli-export-file-full"]
    # Refused before a byte is written: the disk has less room than the export of everything needs.
    assert to_file["rc"] == 1 and "needs about" in to_file["stderr"] and "Free some space" in to_file["stderr"]
    assert to_file["stderr"].count("\n") == 1
    assert cases["cli-export-after"]["rc"] == 0
    for name in ("cli-import-full", "cli-export-stdout-full", "cli-export-file-full", "cli-export-after"):
        assert "Traceback" not in cases[name]["stderr"] and "Logging error" not in cases[name]["stderr"]
