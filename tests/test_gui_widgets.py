"""The chat window's parts on their own: Markdown rendering, code blocks, the windowed chat view, the
sidebar (rename, pin, delete with Undo, filter), the composer and the keyboard."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from app.chat import chat_view
from app.chat.chat_view import ChatView
from app.chat.composer import Composer
from app.chat.markdown import Block, prose_to_html, split_blocks
from app.chat.message_widget import MessageView, MessageWidget
from app.chat.model_state import ModelStatus
from app.chat.rename_dialog import RenameDialog
from app.chat.session import Speed
from app.core.store_types import StoredMessage
from tests.gui_support import close_window, open_window, scripted_model, send


def _msg(i: int, content: str, role: str = "assistant") -> StoredMessage:
    return StoredMessage(str(i), "c", None, role, content, "complete", 0.0)


# ----------------------------------------------------------------------------------- Markdown
def test_fenced_code_is_split_from_prose_with_its_language():
    blocks = split_blocks("Try this:\n\n```python\nprint('hi')\n\nx = 1\n```\nDone.")
    assert blocks == [Block("prose", "Try this:"), Block("code", "print('hi')\n\nx = 1", "python"),
                      Block("prose", "Done.")]


def test_an_unclosed_fence_while_streaming_is_code_to_the_end():
    assert split_blocks("Here:\n~~~\nfor i in x:\n    pass") == [
        Block("prose", "Here:"), Block("code", "for i in x:\n    pass", "", closed=False)]


def test_html_in_a_message_is_shown_as_text_not_interpreted(qapp):
    html = prose_to_html("<b>bold?</b> <img src=x> and **real bold**")
    assert "&lt;b&gt;bold?&lt;/b&gt;" in html and "&lt;img" in html
    assert "font-weight:700" in html  # the Markdown bold still renders


def test_code_block_copy_button_copies_the_code_without_fences(qtbot):
    view = ChatView()
    qtbot.addWidget(view)
    w = view.append_message(MessageView(_msg(1, "See:\n```sh\nls -la\n```")))
    (block,) = w.body.code_blocks()
    assert block.lang_label.text() == "sh"
    qtbot.mouseClick(block.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == "ls -la"
    assert block.copy_button.text() == "Copied"


def test_streaming_into_a_message_updates_only_the_last_block(qtbot):
    view = ChatView()
    qtbot.addWidget(view)
    w = view.append_message(MessageView(_msg(1, "", "assistant"), streaming=True))
    w.set_streaming_text("Intro\n\n```py\na = 1")
    first_label, code = w.body.block_widgets()
    w.set_streaming_text("Intro\n\n```py\na = 1\nb = 2\n```\nafter")
    blocks = w.body.block_widgets()
    assert blocks[0] is first_label and blocks[1] is code
    assert code.code() == "a = 1\nb = 2"
    assert len(blocks) == 3


# ------------------------------------------------------------------------------ chat window
def test_a_long_conversation_builds_only_a_window_and_scrolling_up_reaches_the_first_message(qtbot):
    view = ChatView()
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    views = [MessageView(_msg(i, f"message {i}\n\n```\ncode {i}\n```", "user" if i % 2 == 0 else "assistant"))
             for i in range(300)]
    view.show_messages(views)
    qtbot.wait(50)
    assert view.built_count() <= chat_view.FIRST_WINDOW
    assert view.message_ids() == [str(i) for i in range(300)]
    assert view.message_widget("0") is None and view.message_widget("299") is not None
    bar = view.verticalScrollBar()
    most_built: list[int] = []

    def jump_to(edge: int, message_id: str) -> bool:
        """Jump to an edge, as a dragged scroll bar does; True once `message_id` has been built."""
        most_built.append(view.built_count())
        if view.message_widget(message_id) is not None:
            return True
        bar.setValue(edge)
        return False

    # Each batch built at an edge keeps the text in place, which moves the bar off the edge: jump again.
    qtbot.waitUntil(lambda: jump_to(bar.minimum(), "0"), timeout=30_000)
    assert view.message_widget("299") is None  # the far end was taken down on the way
    # Scrolling back down brings the newest messages back.
    qtbot.waitUntil(lambda: jump_to(bar.maximum(), "299"), timeout=30_000)
    assert view.message_ids() == [str(i) for i in range(300)]  # nothing lost or reordered on the way
    assert max(most_built) <= chat_view.MAX_BUILT


def test_opening_a_long_chat_builds_only_the_newest_messages_that_fill_the_view(qtbot):
    view = ChatView()
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    answer = "Here is how:\n\n```python\nfor i in range(3):\n    print(i)\n```\n\nThat prints **three** lines."
    views = [MessageView(_msg(i, answer if i % 2 else f"Question {i}?", "assistant" if i % 2 else "user"))
             for i in range(60)]
    view.show_messages(views)
    built = [mid for mid in view.message_ids() if view.message_widget(mid) is not None]
    assert built == [str(i) for i in range(60 - len(built), 60)] and len(built) < 30  # the newest, not half
    readers_see = [c.view.message.id for c in view.column.children() if isinstance(c, MessageWidget)]
    assert readers_see == built  # assistive technology lists them in reading order, though built newest first
    qtbot.wait(50)
    bar = view.verticalScrollBar()
    assert bar.value() == bar.maximum() > 0  # they fill the view, which shows the newest at the bottom
    assert view.message_widget("0") is None and view.message_ids() == [str(i) for i in range(60)]


def test_building_older_messages_keeps_the_text_being_read_in_place(qtbot):
    view = ChatView()
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    view.show_messages([MessageView(_msg(i, f"message {i} " + "words " * 40)) for i in range(200)])
    qtbot.wait(50)
    bar = view.verticalScrollBar()
    bar.setValue(chat_view.EDGE_PX + 50)
    qtbot.wait(20)
    ids = view.message_ids()
    built = [mid for mid in ids if view.message_widget(mid) is not None]
    anchor = next(w for w in map(view.message_widget, built) if w.y() + w.height() > bar.value())
    on_screen = anchor.y() - bar.value()
    just_older = ids[ids.index(built[0]) - 1]
    bar.setValue(chat_view.EDGE_PX - 50)  # into the edge zone: a batch is built above
    qtbot.waitUntil(lambda: view.message_widget(just_older) is not None)
    qtbot.wait(20)
    assert abs((anchor.y() - bar.value()) - (on_screen + 100)) <= 2


# ---------------------------------------------------------------------------- composer/keys
def test_enter_sends_and_shift_enter_adds_a_line(qtbot):
    composer = Composer()
    qtbot.addWidget(composer)
    sent: list[str] = []
    composer.sendRequested.connect(sent.append)
    composer.input.setFocus()
    qtbot.keyClicks(composer.input, "first")
    qtbot.keyClick(composer.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(composer.input, "second")
    assert sent == []
    one_line = composer.input.height()
    qtbot.keyClick(composer.input, Qt.Key.Key_Return)
    assert sent == ["first\nsecond"]
    composer.set_text("\n".join(["line"] * 6))
    assert composer.input.height() > one_line  # the box grows with its text


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYCHAT_HOME", str(tmp_path))
    w = open_window(qtbot, tmp_path, scripted_model())
    yield w
    close_window(w)


def test_ctrl_n_starts_a_new_chat_and_ctrl_l_focuses_the_message_box(qtbot, window):
    send(qtbot, window, "Hello there")
    assert window.windowTitle() == "Hello there — TinyChat"
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert window.windowTitle() == "TinyChat" and window.chat_view.message_ids() == []
    assert window.sidebar.current_id() is None
    window.sidebar.filter_box.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert window.composer.input.hasFocus() or QGuiApplication.focusObject() is window.composer.input


def test_sidebar_rename_pin_filter_and_delete_with_undo_keep_the_open_chat(qtbot, window):
    send(qtbot, window, "Alpha question")
    alpha = window.session.open_id
    window.new_chat()
    send(qtbot, window, "Beta question")
    shown = window.chat_view.message_ids()
    side = window.sidebar  # its signals are what the row's context menu sends
    assert side.titles() == ["Beta question", "Alpha question"]
    side.pinRequested.emit(alpha, True)  # what the sidebar's "Pin to top" menu item sends
    assert side.titles() == ["Alpha question", "Beta question"]
    assert side.model.index(0).data() == "Pinned"
    dialog = side.start_rename(alpha)  # the row's "Rename"
    assert dialog.name_box.text() == "Alpha question" and dialog.name_box.selectedText() == "Alpha question"
    dialog.name_box.setText("Renamed chat")
    qtbot.keyClick(dialog.name_box, Qt.Key.Key_Return)
    assert window.store.get_conversation(alpha).title == "Renamed chat"
    side.filter_box.setText("beta")
    assert side.titles() == ["Beta question"]
    side.filter_box.clear()
    side.deleteRequested.emit(alpha)
    assert side.titles() == ["Beta question"]
    assert side.undo_bar.isVisible()
    qtbot.mouseClick(side.undo_button, Qt.MouseButton.LeftButton)
    assert sorted(side.titles()) == ["Beta question", "Renamed chat"]
    # Through all of it the chat being read stayed on screen, highlighted in the sidebar.
    assert window.windowTitle() == "Beta question — TinyChat" and window.chat_view.message_ids() == shown
    assert side.list.currentIndex().data() == "Beta question"


def test_the_rename_dialog_keeps_the_name_on_escape_and_refuses_an_empty_one(qtbot, window):
    send(qtbot, window, "Keep this name")
    cid = window.session.open_id
    dialog = window.sidebar.start_rename(cid)
    dialog.name_box.setText("   ")
    assert not dialog.rename_button.isEnabled()
    qtbot.keyClick(dialog.name_box, Qt.Key.Key_Return)
    assert dialog.isVisible()  # Enter on an empty name does nothing
    dialog.name_box.setText("Another name")
    qtbot.keyClick(dialog.name_box, Qt.Key.Key_Escape)
    assert not dialog.isVisible()
    assert window.store.get_conversation(cid).title == "Keep this name"
    assert window.windowTitle() == "Keep this name — TinyChat"


def test_f2_renames_the_open_chat_even_while_the_filter_hides_it(qtbot, window):
    send(qtbot, window, "Hidden by the filter")
    cid = window.session.open_id
    window.sidebar.filter_box.setText("nothing like it")
    assert window.sidebar.titles() == []
    qtbot.keyClick(window, Qt.Key.Key_F2)  # Chat ▸ Rename chat
    dialog = window.findChild(RenameDialog)
    assert dialog is not None and dialog.isVisible() and dialog.name_box.text() == "Hidden by the filter"
    qtbot.keyClicks(dialog.name_box, "Found again")
    qtbot.keyClick(dialog.name_box, Qt.Key.Key_Return)
    assert window.store.get_conversation(cid).title == "Found again"
    assert window.windowTitle() == "Found again — TinyChat"


def test_deleting_the_open_chat_shows_a_new_chat_and_undo_reopens_it(qtbot, window):
    send(qtbot, window, "Keep me")
    shown = window.chat_view.message_ids()
    window.delete_current()  # Chat ▸ Delete chat
    assert window.windowTitle() == "TinyChat" and window.chat_view.message_ids() == []
    qtbot.mouseClick(window.sidebar.undo_button, Qt.MouseButton.LeftButton)
    assert window.windowTitle() == "Keep me — TinyChat" and window.chat_view.message_ids() == shown


def test_status_bar_names_each_part_of_the_model_once(qtbot):
    from PySide6.QtWidgets import QMainWindow

    from app.shell.status_bar import StatusBar

    window = QMainWindow()
    qtbot.addWidget(window)
    bar = StatusBar(window)
    bar.set_model(ModelStatus("ready", "", "llama.cpp", "TinyLlama 1.1B Chat v0.4 · Q4_K_M", "Q4_K_M", "chatml"))
    assert bar.model_label.text() == "llama.cpp · TinyLlama 1.1B Chat v0.4 · Q4_K_M · chatml"
    bar.set_model(ModelStatus("ready", "", "llama.cpp", "my-model.gguf", "Q8_0", "llama-2"))
    assert bar.model_label.text() == "llama.cpp · my-model.gguf · Q8_0 · llama-2"


def test_the_status_bar_shows_the_live_speed_and_forgets_it_when_the_model_changes(qtbot):
    from PySide6.QtWidgets import QMainWindow

    from app.shell.status_bar import StatusBar

    window = QMainWindow()
    qtbot.addWidget(window)
    bar = StatusBar(window)
    bar.set_speed(Speed(2.4))
    assert bar.speed_label.text() == "2.4 tok/s…"
    bar.set_speed(Speed(949.5, 0.01))
    assert bar.speed_label.text() == "949.5 tok/s · first token 0.01 s"
    bar.set_model(ModelStatus("loading", "Loading Q8_0…"))
    bar.set_speed(None)  # what the session sends when another model loads
    assert bar.speed_label.text() == "" and bar.meter.format() == "loading…"


def test_the_context_meter_is_as_wide_as_its_text(qtbot):
    from app.shell.status_bar import ContextMeter

    meter = ContextMeter()
    qtbot.addWidget(meter)
    meter.set_usage(1464, 2048, 282)
    meter.show()
    assert meter.width() >= meter.fontMetrics().horizontalAdvance(meter.format()) + 2 * 8
    assert meter.format() == "1464 / 2048 tokens · 282 older not in context" == meter.accessibleDescription()


def test_the_status_bar_notes_the_slower_build_only_while_it_runs(qtbot):
    from PySide6.QtWidgets import QMainWindow

    from app.shell.status_bar import StatusBar
    from engine.cpu_build import choose

    window = QMainWindow()
    qtbot.addWidget(window)
    bar = StatusBar(window)
    window.setStatusBar(bar)
    window.show()
    bar.set_build(choose({"sse4_2", "avx"}))
    assert bar.build_label.isVisible() and bar.build_label.text() == "Slower engine for processors without AVX2"
    assert bar.build_label.toolTip().endswith("this processor lacks AVX2, FMA, F16C, BMI2")
    bar.set_build(choose({"sse4_2", "avx", "avx2", "fma", "f16c", "bmi2"}))
    assert not bar.build_label.isVisible() and bar.build_label.text() == ""
