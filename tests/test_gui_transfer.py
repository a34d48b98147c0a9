"""File ▸ Export / Import in the real main window with real SQLite stores: a conversation with branches
survives export → import into another TinyChat whole; Markdown shows the branch on show; a bad file
is refused in plain words and writes nothing. The file dialogs are the only thing stood in for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox, QPushButton

from app.core.store import Store
from app.shell.transfer_actions import JSON_FILTER, MARKDOWN_FILTER, TransferError, read_import, write_export
from app.shell.window_actions import install
from bench.history_data import write_history
from tests.gui_support import close_window, open_window


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYCHAT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def window(qtbot, home):
    w = open_window(qtbot, home, None)
    w.actions_ = install(w)
    yield w
    close_window(w)


@pytest.fixture
def dialogs(monkeypatch):
    """Answers the file dialogs would get from the user, and what the message boxes said."""
    said: dict[str, list[str]] = {"info": [], "warning": []}
    answers: dict[str, tuple[str, str]] = {}
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: answers["save"]))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: answers["open"]))
    monkeypatch.setattr(QMessageBox, "information", staticmethod(lambda _p, _t, text: said["info"].append(text)))
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(lambda _p, _t, text: said["warning"].append(text)))
    return answers, said


def branched(store: Store):
    """A conversation where the first answer was regenerated and the question then edited."""
    conv = store.create_conversation(title="Branches")
    q = store.add_message(conv.id, None, "user", "Name a colour")
    store.add_message(conv.id, q.id, "assistant", "Blue", quant="Q4_K_M", token_ids=(5, 6))
    store.add_message(conv.id, q.id, "assistant", "Green", quant="Q8_0")
    q2 = store.add_message(conv.id, None, "user", "Name a fruit")
    store.add_message(conv.id, q2.id, "assistant", "Mango")
    store.switch_branch(q.id)  # show the colour branch (its newest answer, Green)
    return store.get_conversation(conv.id)


def tree(store: Store, cid: str) -> set[tuple]:
    return {(m.id, m.parent_id, m.role, m.content, m.quant, m.token_ids) for m in store.messages(cid)}


def test_export_then_import_round_trips_a_conversation_with_all_its_branches(qtbot, window, dialogs, tmp_path):
    answers, said = dialogs
    conv = branched(window.store)
    window.session.refresh_conversations()
    window.session.open(conv.id)
    target = tmp_path / "backup"
    answers["save"] = (str(target), JSON_FILTER)  # no extension typed: the chosen type adds it
    window.actions_.export_current_action.trigger()
    exported = tmp_path / "backup.json"
    qtbot.waitUntil(lambda: window.notice_label.text() == f"Exported 1 conversation to {exported}.")
    assert exported.is_file()
    assert json.loads(exported.read_text(encoding="utf-8"))["conversations"][0]["title"] == "Branches"

    other, _ = Store.open(tmp_path / "other" / "tinychat.db")  # another TinyChat installation
    try:
        summary = read_import(other, exported)
        assert summary.conversations_added == 1 and summary.messages_added == 5
        assert tree(other, conv.id) == tree(window.store, conv.id)
        assert [m.content for m in other.active_branch(conv.id)] == ["Name a colour", "Green"]
        siblings, _ = other.siblings(other.active_branch(conv.id)[1].id)
        assert [m.content for m in siblings] == ["Blue", "Green"]
    finally:
        other.close()

    # Importing the same file again adds nothing and says so.
    answers["open"] = (str(exported), "")
    window.actions_.import_conversations_action.trigger()
    qtbot.waitUntil(lambda: bool(said["info"]))
    assert said["info"][-1].startswith("Added 0 conversation(s)") and "skipped 1 already present" in said["info"][-1]


def test_import_adds_conversations_with_a_summary_naming_them(qtbot, window, dialogs, tmp_path):
    answers, said = dialogs
    source, _ = Store.open(tmp_path / "src" / "tinychat.db")
    try:
        conv = branched(source)
        write_export(source, tmp_path / "from-laptop.json")
    finally:
        source.close()
    answers["open"] = (str(tmp_path / "from-laptop.json"), "")
    window.actions_.import_conversations_action.trigger()
    qtbot.waitUntil(lambda: bool(said["info"] or said["warning"]))
    assert said["warning"] == []
    summary = said["info"][-1]
    assert summary.startswith("Added 1 conversation(s) with 5 message(s).") and "• Branches" in summary
    assert "Branches" in window.sidebar.titles() and window.store.get_conversation(conv.id).title == "Branches"


def test_markdown_export_of_all_chats_shows_the_branch_on_show(qtbot, window, dialogs, tmp_path):
    answers, _ = dialogs
    branched(window.store)
    answers["save"] = (str(tmp_path / "all.md"), MARKDOWN_FILTER)
    window.actions_.transfer.export_all()
    qtbot.waitUntil(lambda: window.actions_.transfer.running is None)
    text = (tmp_path / "all.md").read_text(encoding="utf-8")
    assert "# Branches" in text and "Green" in text and "Blue" not in text


def test_a_file_that_is_not_an_export_is_refused_in_plain_words_and_nothing_is_added(qtbot, window, dialogs,
                                                                                     tmp_path):
    answers, said = dialogs
    bad = tmp_path / "photo.json"
    bad.write_text('{"format": "photo-album", "version": 1}', encoding="utf-8")
    answers["open"] = (str(bad), "")
    window.actions_.import_conversations_action.trigger()
    qtbot.waitUntil(lambda: bool(said["warning"]))
    assert said["warning"] == ["photo.json was not imported: This is not a TinyChat conversation export."]
    assert window.store.list_conversations() == []
    with pytest.raises(TransferError, match="Could not read"):
        read_import(window.store, tmp_path / "missing.json")


def test_export_to_a_folder_that_cannot_be_written_says_what_to_do(qtbot, window, dialogs, tmp_path):
    answers, said = dialogs
    conv = branched(window.store)
    window.session.open(conv.id)
    answers["save"] = (str(tmp_path / "no-such-folder" / "x.md"), MARKDOWN_FILTER)
    window.actions_.transfer.export_current()
    qtbot.waitUntil(lambda: bool(said["warning"]))
    assert len(said["warning"]) == 1 and "could not be written" in said["warning"][0]
    assert "Choose another folder" in said["warning"][0]
    assert not Path(tmp_path / "no-such-folder").exists()


def test_a_long_import_runs_off_the_gui_thread_with_progress_and_the_sidebar_lists_it_after(qtbot, window, dialogs,
                                                                                          tmp_path, monkeypatch):
    answers, said = dialogs
    source = tmp_path / "history.json"
    write_history(source, 120)
    transfer = window.actions_.transfer
    seen: list[tuple[tuple[int, int], bool]] = []  # (percent, conversations), job still running
    shown = transfer._progressed
    monkeypatch.setattr(transfer, "_progressed", lambda value: (seen.append((value, transfer.running is not None)),
                                                                shown(value)))
    answers["open"] = (str(source), "")
    window.actions_.import_conversations_action.trigger()
    assert transfer.running is not None  # the trigger returned while the import goes on
    qtbot.waitUntil(lambda: bool(said["info"] or said["warning"]), timeout=120_000)
    assert said["warning"] == [] and said["info"][-1].startswith("Added 120 conversation(s)")
    # Progress reached the GUI thread while the job ran, in order, up to the whole file (counted in bytes
    # read, which run ahead of the conversations checked).
    assert all(running for _, running in seen) and len(seen) > 2
    assert [v for v, _ in seen] == sorted(v for v, _ in seen) and seen[-1][0][0] == 100 and seen[-1][0][1] <= 120
    assert len(window.sidebar.titles()) == 120


def test_cancel_in_the_progress_window_imports_nothing(qtbot, window, dialogs, tmp_path):
    answers, said = dialogs
    source = tmp_path / "history.json"
    write_history(source, 120)
    transfer = window.actions_.transfer
    answers["open"] = (str(source), "")
    window.actions_.import_conversations_action.trigger()
    transfer.progress.findChild(QPushButton).click()  # Cancel
    qtbot.waitUntil(lambda: transfer.running is None, timeout=120_000)
    assert said["warning"] == ["history.json was not imported: The import was stopped; nothing was imported."]
    assert window.store.list_conversations() == []
