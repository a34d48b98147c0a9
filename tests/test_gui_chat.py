"""The chat window driven like a user would, with the real llama.cpp engine on the scripted tiny model
(it answers SCRIPT whatever it is asked) and a real SQLite store in a temp dir."""

from __future__ import annotations

import sqlite3

import pytest
from PySide6.QtCore import Qt, QThread
from PySide6.QtWidgets import QLabel

from app.core.settings import Sampling, Settings
from app.core.store import Store
from tests.gui_support import (
    PLATFORM_NOISE,
    SCRIPT,
    PacedEngine,
    click_chat,
    close_window,
    open_window,
    scripted_model,
    send,
    shown_text,
    streamed_text,
    wait_idle,
)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYCHAT_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def window(qtbot, home):
    w = open_window(qtbot, home, scripted_model())
    yield w
    close_window(w)


def test_sent_message_streams_the_answer_into_the_chat_and_the_store(qtbot, window):
    streamed: list[str] = []
    window.session.streamText.connect(lambda _m, text: streamed.append(text))
    send(qtbot, window, "Say hello")
    branch = window.store.active_branch(window.session.open_id)
    assert [(m.role, m.status) for m in branch] == [("user", "complete"), ("assistant", "complete")]
    user, answer = branch
    assert user.content == "Say hello"
    assert answer.content == SCRIPT
    assert shown_text(window, answer.id) == SCRIPT
    assert len(streamed) > 3 and streamed[-1] == SCRIPT  # it arrived in pieces, not at once
    assert answer.token_ids and answer.completion_tokens == len(answer.token_ids)
    assert answer.tokens_per_s and answer.tokens_per_s > 0
    assert answer.quant == "F32" and answer.chat_format == "chatml"
    assert window.sidebar.titles() == ["Say hello"]
    assert "tok/s" in window.status.speed_label.text()


def test_user_message_is_committed_before_generation_starts(qtbot, window, home):
    seen: list[list[tuple[str, str]]] = []

    def look_from_another_connection(conversation_id: str | None) -> None:
        if conversation_id is None:
            return  # the answer ended
        db = sqlite3.connect(home / "data" / "tinychat.db")
        seen.append(db.execute("SELECT role, status FROM messages ORDER BY seq").fetchall())
        db.close()

    window.session.generatingChanged.connect(look_from_another_connection)
    send(qtbot, window, "Is this saved first?")
    assert seen == [[("user", "complete"), ("assistant", "partial")]]


def test_stop_mid_answer_keeps_the_partial_answer_stored_and_shown(qtbot, home):
    w = open_window(qtbot, home, scripted_model(), engine_factory=PacedEngine)
    try:
        send(qtbot, w, "Talk slowly", wait=False)
        qtbot.waitUntil(lambda: len(streamed_text(w)) >= 5)
        assert w.composer.stop_button.isVisible()
        qtbot.keyClick(w, Qt.Key.Key_Escape)
        wait_idle(qtbot, w)
        answer = w.store.active_branch(w.session.open_id)[-1]
        assert answer.status == "partial"
        assert 5 <= len(answer.content) < len(SCRIPT) and SCRIPT.startswith(answer.content)
        widget = w.chat_view.message_widget(answer.id)
        assert widget.body.text == answer.content
        assert widget.badge.isVisible() and "Stopped" in widget.badge.text()
        assert "retry" in widget.available_actions()
        # Retry makes a complete answer next to the stopped one.
        widget.actions.button("retry").click()
        wait_idle(qtbot, w)
        again = w.store.active_branch(w.session.open_id)[-1]
        assert again.content == SCRIPT and again.status == "complete"
        assert w.store.siblings(again.id)[0][0].id == answer.id
    finally:
        close_window(w)


def test_regenerate_adds_a_sibling_and_the_switcher_walks_between_them(qtbot, window):
    send(qtbot, window, "Answer twice")
    first = window.store.active_branch(window.session.open_id)[-1]
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # Ctrl+R
    qtbot.waitUntil(lambda: len(window.store.active_branch(window.session.open_id)) == 2
                    and window.store.active_branch(window.session.open_id)[-1].id != first.id)
    wait_idle(qtbot, window)
    second = window.store.active_branch(window.session.open_id)[-1]
    widget = window.chat_view.message_widget(second.id)
    assert widget.view.sibling_index == 1 and widget.view.sibling_count == 2
    assert widget.actions.findChild(QLabel).text() == "2/2"
    widget.actions.button("previous").click()
    assert window.store.active_branch(window.session.open_id)[-1].id == first.id
    shown = window.chat_view.message_widget(first.id)
    assert shown.actions.findChild(QLabel).text() == "1/2" and shown.available_actions()[0] == "next"
    assert not shown.actions.button("previous")  # shown greyed out: there is no earlier version
    shown.actions.button("next").click()
    assert window.chat_view.message_widget(second.id) is not None


def test_editing_a_message_starts_a_new_branch_and_keeps_the_old_one(qtbot, window):
    send(qtbot, window, "Original question")
    original = window.store.active_branch(window.session.open_id)[0]
    widget = window.chat_view.message_widget(original.id)
    widget.actions.button("edit").click()
    widget.edit_box.setPlainText("Edited question")
    widget._submit_edit()
    wait_idle(qtbot, window)
    branch = window.store.active_branch(window.session.open_id)
    assert [m.content for m in branch] == ["Edited question", SCRIPT]
    edited = window.chat_view.message_widget(branch[0].id)
    assert edited.view.sibling_count == 2 and edited.view.sibling_index == 1
    edited.actions.button("previous").click()
    assert [m.content for m in window.store.active_branch(window.session.open_id)] == ["Original question", SCRIPT]
    assert [window.chat_view.message_widget(i).body.text for i in window.chat_view.message_ids()] == [
        "Original question", SCRIPT]


def test_reopening_restores_conversations_branches_and_the_last_open_chat(qtbot, home):
    w = open_window(qtbot, home, scripted_model())
    send(qtbot, w, "First chat")
    first_conv = w.session.open_id
    w.new_chat()
    send(qtbot, w, "Second chat")
    qtbot.keyClick(w, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # Ctrl+R: regenerate
    wait_idle(qtbot, w)
    click_chat(qtbot, w, first_conv)
    w.splitter.setSizes([320, 680])
    sizes = w.splitter.sizes()
    close_window(w)

    again = open_window(qtbot, home, scripted_model())
    try:
        assert again.session.open_id == first_conv and again.windowTitle() == "First chat — TinyChat"
        assert sorted(again.sidebar.titles()) == ["First chat", "Second chat"]
        # The newest screenful is built first and the messages above it a moment later.
        qtbot.waitUntil(lambda: all(again.chat_view.message_widget(i) for i in again.chat_view.message_ids()))
        assert [again.chat_view.message_widget(i).body.text for i in again.chat_view.message_ids()] == [
            "First chat", SCRIPT]
        assert again.splitter.sizes() == sizes
        second = next(c for c in again.store.list_conversations() if c.title == "Second chat")
        click_chat(qtbot, again, second.id)
        last = again.chat_view.message_widget(again.chat_view.message_ids()[-1])
        assert last.view.sibling_count == 2
    finally:
        close_window(again)


def test_quitting_during_generation_saves_the_partial_answer_and_exits_cleanly(qtbot, home, qtlog):
    w = open_window(qtbot, home, scripted_model(), engine_factory=PacedEngine)
    send(qtbot, w, "Keep talking", wait=False)
    qtbot.waitUntil(lambda: len(streamed_text(w)) >= 3)
    thread: QThread = w.engine.tasks.qthread
    qtbot.keyClick(w, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)  # Ctrl+Q
    assert not w.isVisible()
    assert thread.isFinished()
    w.store.close()
    store, _ = Store.open(home / "data" / "tinychat.db")
    try:
        answer = store.active_branch(store.list_conversations()[0].id)[-1]
        assert answer.status == "partial"
        assert len(answer.content) >= 3 and SCRIPT.startswith(answer.content)
    finally:
        store.close()
    problems = [r.message for r in qtlog.records
                if r.type.name in ("QtWarningMsg", "QtCriticalMsg", "QtFatalMsg")
                and not any(n in r.message for n in PLATFORM_NOISE)]
    assert problems == []


def test_a_history_too_long_for_the_context_marks_old_messages_not_in_context(qtbot, home):
    # A 320-token window with 64 kept for the answer: a few long turns no longer fit.
    settings = Settings(sampling=Sampling(max_tokens=64))
    w = open_window(qtbot, home, scripted_model(n_ctx=320), settings=settings)
    try:
        long_text = " ".join(["hello world"] * 40)
        for i in range(3):
            send(qtbot, w, f"{i} {long_text}")
        first_user, first_answer = w.chat_view.message_ids()[:2]
        qtbot.waitUntil(lambda: w.status.meter.forgotten > 0)
        assert "not in context" in w.status.meter.format()
        # One line says where the model's memory ends, right after the newest message it lost.
        divider = w.chat_view.divider
        assert divider.isVisible() and "not in context" in divider.text()
        forgotten = [i for i in w.chat_view.message_ids() if w.chat_view.message_widget(i).view.forgotten]
        assert forgotten[:2] == [first_user, first_answer]
        last_forgotten = w.chat_view.message_widget(forgotten[-1])
        assert divider.y() > last_forgotten.y() and not last_forgotten.badge.isVisible()
        newest = w.chat_view.message_widget(w.chat_view.message_ids()[-1])
        assert not newest.view.forgotten and newest.y() > divider.y()
    finally:
        close_window(w)


def test_a_corrupt_model_file_shows_a_message_and_the_window_keeps_working(qtbot, home):
    bad = home / "broken-q4_k_m.gguf"
    bad.write_bytes(b"GGUF" + b"\x00\xff" * 5000)
    from app.core.model_choice import model_from_path

    w = open_window(qtbot, home, model_from_path(bad))
    try:
        assert w.session.model.status.state == "failed"
        assert not w.composer.input.isEnabled()
        notice = w.composer.notice.text()
        assert "could not be loaded" in notice and "broken-q4_k_m.gguf" in notice
        assert "format version" in notice  # the model checker's own reason, not a generic sentence
        assert w.status.model_label.text() == notice
        w.new_chat()  # the rest of the window still works
        assert w.chat_view.empty_hint.text() == notice
    finally:
        close_window(w)


def test_without_a_model_the_composer_is_disabled_and_says_why(qtbot, home):
    w = open_window(qtbot, home, None)
    try:
        assert not w.composer.input.isEnabled()
        assert not w.composer.send_button.isEnabled()
        assert w.composer.notice.text().startswith("No model loaded")
    finally:
        close_window(w)


def test_switching_chats_while_generating_keeps_the_answer_in_its_own_chat(qtbot, home):
    w = open_window(qtbot, home, scripted_model(), engine_factory=PacedEngine)
    try:
        send(qtbot, w, "Long answer please", wait=False)
        busy_conv = w.session.open_id
        qtbot.waitUntil(lambda: bool(streamed_text(w)))
        assert w.sidebar.item_text(busy_conv).startswith("●")
        w.new_chat()
        assert w.chat_view.message_ids() == []
        # A second send while the first answer runs is refused, and the text stays in the box.
        send(qtbot, w, "Me too", wait=False)
        assert w.composer.text() == "Me too"
        assert "still being generated" in w.notice_label.text()
        wait_idle(qtbot, w)
        assert w.chat_view.message_ids() == []
        assert not w.sidebar.item_text(busy_conv).startswith("●")
        assert [m.content for m in w.store.active_branch(busy_conv)] == ["Long answer please", SCRIPT]
        click_chat(qtbot, w, busy_conv)
        assert shown_text(w, w.chat_view.message_ids()[-1]) == SCRIPT
    finally:
        close_window(w)


def test_the_status_bar_shows_the_speed_while_an_answer_streams_then_its_final_figures(qtbot, home):
    # Slow enough that the answer is still streaming when the live figure (at most twice a second) is
    # shown, however busy the machine.
    w = open_window(qtbot, home, scripted_model(), engine_factory=lambda: PacedEngine(delay_s=0.4))
    try:
        send(qtbot, w, "Talk slowly", wait=False)
        qtbot.waitUntil(lambda: w.status.speed_label.text().endswith("tok/s…"), timeout=30_000)
        assert w.session.generating  # live, before the answer ended
        wait_idle(qtbot, w)
        assert "tok/s · first token" in w.status.speed_label.text()
    finally:
        close_window(w)
