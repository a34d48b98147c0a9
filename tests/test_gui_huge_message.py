"""A message of megabytes (an import may hold 2,000,000 characters) opens at once: the chat lays out its
first DISPLAY_LIMIT characters and says how much is not shown; Copy still gives all of it."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel

from app.chat.markdown import DISPLAY_LIMIT
from app.chat.message_widget import MessageView, MessageWidget
from app.core.store_types import StoredMessage


def test_a_two_million_character_message_shows_its_start_and_a_note_and_copies_whole(qtbot) -> None:
    content = "x" * 1_999_990 + "THE END"
    message = StoredMessage("m1", "c1", None, "user", content, "complete", 1_700_000_000.0)
    widget = MessageWidget(MessageView(message))
    qtbot.addWidget(widget)
    widget.resize(700, 400)
    widget.show()
    shown = _on_screen(widget)
    assert "x" * DISPLAY_LIMIT in shown and "x" * (DISPLAY_LIMIT + 1) not in shown and "THE END" not in shown
    assert f"{len(content) - DISPLAY_LIMIT:,} more characters are not shown" in shown
    widget.trigger("copy")
    assert QGuiApplication.clipboard().text() == content


def test_a_message_at_the_display_limit_is_shown_whole(qtbot) -> None:
    content = "y" * DISPLAY_LIMIT
    widget = MessageWidget(MessageView(StoredMessage("m1", "c1", None, "user", content, "complete", 0.0)))
    qtbot.addWidget(widget)
    assert content in _on_screen(widget) and "not shown" not in _on_screen(widget)


def _on_screen(widget: MessageWidget) -> str:
    """The text of every label of the message body (rich text)."""
    return "".join(label.text() for label in widget.body.findChildren(QLabel))
