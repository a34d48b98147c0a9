"""One message in the chat: Markdown body, role and stats, status badges and the per-message actions
(copy, regenerate, edit, delete, retry, branch switcher ‹ 2/3 ›)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.chat.markdown_body import MarkdownBody
from app.chat.message_actions import ActionRow, offered_actions
from app.core.store_types import StoredMessage
from app.ui.elided_label import ElidedLabel


@dataclass(frozen=True)
class MessageView:
    """What the chat shows for one message: the stored record plus its place among its siblings."""

    message: StoredMessage
    sibling_index: int = 0  # 0-based position among the alternatives at this point of the tree
    sibling_count: int = 1
    forgotten: bool = False  # left out of the model's context on the last turn
    streaming: bool = False




def _meta_text(m: StoredMessage) -> str:
    parts = [p for p in (m.quant, m.chat_format) if p]
    if m.tokens_per_s:
        parts.append(f"{m.tokens_per_s:.1f} tok/s")
    if m.ttft_s is not None and m.role == "assistant" and m.completion_tokens:
        parts.append(f"{m.ttft_s:.2f} s to first token")
    if m.completion_tokens:
        parts.append(f"{m.completion_tokens} tokens")
    return " · ".join(parts)


class MessageWidget(QFrame):
    """A user or assistant message. Signals carry the message id; the chat controller acts on them."""

    regenerateRequested = Signal(str)
    editSubmitted = Signal(str, str)
    deleteRequested = Signal(str)
    branchRequested = Signal(str, int)  # message id, step (-1 previous, +1 next)

    def __init__(self, view: MessageView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Message")
        self.view = view
        m = view.message
        self.is_user = m.role == "user"
        self.setAccessibleName("You" if self.is_user else "Assistant")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 6, 0, 6)
        outer.setSpacing(3)

        head = QHBoxLayout()
        self.role_label = QLabel("You" if self.is_user else "Assistant", self)
        self.role_label.setObjectName("RoleLabel")
        self.meta_label = ElidedLabel("", self)  # model · level · speed: may be cut short in a narrow window
        self.meta_label.setObjectName("MetaLabel")
        if self.is_user:
            head.addStretch(1)
            head.addWidget(self.role_label)
        else:
            head.addWidget(self.role_label)
            head.addWidget(self.meta_label)
            head.addStretch(1)
        outer.addLayout(head)

        self.body = MarkdownBody(self)
        self.bubble = QFrame(self)
        bubble_layout = QVBoxLayout(self.bubble)
        if self.is_user:
            self.bubble.setObjectName("UserBubble")
            bubble_layout.setContentsMargins(12, 8, 12, 8)
            row = QHBoxLayout()
            row.addStretch(1)
            row.addWidget(self.bubble, 0)
            outer.addLayout(row)
            self.bubble.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)
        else:
            bubble_layout.setContentsMargins(0, 0, 0, 0)
            outer.addWidget(self.bubble)
        bubble_layout.addWidget(self.body)

        self.badge = QLabel(self)
        self.badge.setWordWrap(True)
        self.badge.hide()
        outer.addWidget(self.badge)

        self.editor: QWidget | None = None
        self._build_actions(outer)
        self.set_view(view)

    def _build_actions(self, outer: QVBoxLayout) -> None:
        self.actions = ActionRow(self.is_user, self)
        self.actions.triggered.connect(self.trigger)
        outer.addWidget(self.actions)

    # ------------------------------------------------------------------ state
    def set_view(self, view: MessageView) -> None:
        """Show `view` (a new stored state of the same message, or new sibling information)."""
        self.view = view
        m = view.message
        if self.is_user and hasattr(self, "_bubble_max"):
            self.set_bubble_max_width(self._bubble_max)
        self.body.set_markdown(m.content if m.content or not view.streaming else "…")
        if not self.is_user:
            self.meta_label.setText(_meta_text(m) if not view.streaming else "generating…")
        self._set_badge(view)
        self.actions.show_actions(offered_actions(m.role, m.status, view.sibling_index, view.sibling_count,
                                                  view.streaming), view.sibling_index, view.sibling_count)
        self.actions.setVisible(not view.streaming)

    def available_actions(self) -> list[str]:
        """The actions this message offers now, by name."""
        return self.actions.names()

    def _set_badge(self, view: MessageView) -> None:
        m = view.message
        text, name = "", "StatusBadge"
        if view.streaming:
            pass
        elif m.status == "error":
            text, name = f"⚠ {m.error or 'The answer could not be generated.'}", "ErrorBadge"
        elif m.status == "partial":
            text = "■ Stopped — this answer is incomplete. Retry to generate it again."
        self.badge.setObjectName(name)
        self.badge.setText(text)
        self.badge.setVisible(bool(text))
        self.badge.style().unpolish(self.badge)
        self.badge.style().polish(self.badge)
        self.setProperty("forgotten", view.forgotten)
        self.body.setEnabled(not view.forgotten)  # greys the text out: the model no longer sees it (the
        # chat view's one divider says why)

    def set_found(self, found: bool) -> None:
        """Highlight this message as the one a search led to (until the chat is shown again)."""
        self.setProperty("found", found)
        self.setAccessibleDescription("Found by search" if found else "")
        self.style().unpolish(self)
        self.style().polish(self)

    def set_streaming_text(self, text: str) -> None:
        """Show more of an answer being generated."""
        self.body.set_markdown(text or "…")

    def set_bubble_max_width(self, width: int) -> None:
        """User bubbles hug their text up to `width`; a wrapped label alone would pick a narrow column."""
        if not self.is_user:
            return
        self._bubble_max = width
        self.bubble.setMaximumWidth(width)
        fm = self.fontMetrics()
        natural = max((fm.horizontalAdvance(line) for line in self.view.message.content.split("\n")), default=0)
        self.body.setMinimumWidth(min(natural + 8, width - 24))

    # ---------------------------------------------------------------- actions
    @Slot(str)
    def trigger(self, name: str) -> None:
        """Run one of `available_actions()` (what pressing its button does)."""
        mid = self.view.message.id
        if name == "copy":
            QGuiApplication.clipboard().setText(self.view.message.content)
        elif name in ("regenerate", "retry"):
            self.regenerateRequested.emit(mid)
        elif name == "edit":
            self.start_edit()
        elif name == "delete":
            self.deleteRequested.emit(mid)
        elif name in ("previous", "next"):
            self.branchRequested.emit(mid, -1 if name == "previous" else 1)

    @Slot()
    def start_edit(self) -> None:
        """Replace the text by an editor; saving creates a new branch from this point."""
        if self.editor is not None:
            return
        self.editor = QWidget(self)
        lay = QVBoxLayout(self.editor)
        lay.setContentsMargins(0, 0, 0, 0)
        self.edit_box = QPlainTextEdit(self.editor)
        self.edit_box.setPlainText(self.view.message.content)
        self.edit_box.setMinimumWidth(420)
        lines = self.view.message.content.count("\n") + 2
        self.edit_box.setFixedHeight(min(max(lines, 3), 14) * self.edit_box.fontMetrics().lineSpacing() + 16)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        cancel = QPushButton("Cancel", self.editor)
        cancel.clicked.connect(self.cancel_edit)
        save = QPushButton("Save && send", self.editor)
        save.setObjectName("SendButton")
        save.clicked.connect(self._submit_edit)
        buttons.addWidget(cancel)
        buttons.addWidget(save)
        lay.addWidget(self.edit_box)
        lay.addLayout(buttons)
        self.bubble.layout().addWidget(self.editor)
        self.body.hide()
        self.actions.hide()
        self.edit_box.setFocus()

    @Slot()
    def cancel_edit(self) -> None:
        if self.editor is None:
            return
        self.editor.deleteLater()
        self.editor = None
        self.body.show()
        self.actions.show()

    @Slot()
    def _submit_edit(self) -> None:
        text = self.edit_box.toPlainText().strip()
        if not text:
            return
        self.cancel_edit()
        if text != self.view.message.content:
            self.editSubmitted.emit(self.view.message.id, text)
