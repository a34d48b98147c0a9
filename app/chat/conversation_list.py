"""The sidebar: New chat, a filter box, conversations grouped by date (pinned first) with rename, pin
and delete, a marker on the one that is generating, and an Undo bar after a delete."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import date

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QFont, QMouseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.chat.rename_dialog import RenameDialog
from app.core import timestamps
from app.core.store_types import Conversation

ID_ROLE = Qt.ItemDataRole.UserRole
TITLE_ROLE = Qt.ItemDataRole.UserRole + 1
UNDO_SECONDS = 8
GENERATING_MARK = "●  "
UNKNOWN_DATE = "Unknown date"


def date_group(ts: float, today: date | None = None) -> str:
    """The sidebar heading for a conversation last updated at `ts` ("Unknown date" when the stored
    time cannot be shown)."""
    when = timestamps.local_datetime(ts)
    if when is None:
        return UNKNOWN_DATE
    today = today or date.today()
    days = (today - when.date()).days
    if days <= 0:
        return "Today"
    if days == 1:
        return "Yesterday"
    if days < 7:
        return "Previous 7 days"
    if days < 30:
        return "Previous 30 days"
    return "Older"


class _ChatList(QListWidget):
    """The list itself: a right-click opens the row's menu without opening the chat, like a file manager
    (the row under the pointer is what the menu acts on, the open chat stays)."""

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.RightButton:
            event.accept()
            return
        super().mousePressEvent(event)


class ConversationList(QWidget):
    """Lists conversations; every change is a signal to the main window, which asks the store."""

    selected = Signal(str)
    newChatRequested = Signal()
    renameRequested = Signal(str, str)
    pinRequested = Signal(str, bool)
    deleteRequested = Signal(str)
    undoRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Sidebar")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 10, 8, 8)
        lay.setSpacing(8)
        self.new_button = QPushButton("+  New chat", self)  # a plain "+": the fullwidth one is missing from many fonts
        self.new_button.setObjectName("NewChatButton")
        self.new_button.setAccessibleName("New chat")  # not "plus New chat"
        self.new_button.setToolTip("New chat (Ctrl+N)")
        self.new_button.clicked.connect(self.newChatRequested)
        self.filter_box = QLineEdit(self)
        self.filter_box.setObjectName("FilterBox")
        self.filter_box.setAccessibleName("Filter conversations")
        self.filter_box.setPlaceholderText("Filter conversations")
        self.filter_box.setClearButtonEnabled(True)
        self.filter_box.textChanged.connect(self._apply_filter)
        self.list = _ChatList(self)
        self.list.setObjectName("ConversationList")
        self.list.setAccessibleName("Conversations")
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)  # renaming is a dialog
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.itemClicked.connect(self._on_clicked)  # the highlighted row too: it may not be on show
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        lay.addWidget(self.new_button)
        lay.addWidget(self.filter_box)
        lay.addWidget(self.list, 1)
        self._build_undo_bar(lay)
        self._items: dict[str, QListWidgetItem] = {}
        self._generating: str | None = None

    def _build_undo_bar(self, lay: QVBoxLayout) -> None:
        self.undo_bar = QFrame(self)
        self.undo_bar.setObjectName("UndoBar")
        row = QHBoxLayout(self.undo_bar)
        row.setContentsMargins(10, 6, 6, 6)
        self.undo_label = QLabel(self.undo_bar)
        self.undo_label.setWordWrap(True)  # a long title takes a second line instead of being cut off
        self.undo_button = QPushButton("Undo", self.undo_bar)
        self.undo_button.clicked.connect(self._undo)
        row.addWidget(self.undo_label, 1)
        row.addWidget(self.undo_button)
        self.undo_bar.hide()
        lay.addWidget(self.undo_bar)
        self._undo_id: str | None = None
        self._undo_timer = QTimer(self)
        self._undo_timer.setSingleShot(True)
        self._undo_timer.timeout.connect(self.undo_bar.hide)

    # --------------------------------------------------------------- content
    @Slot(object, object)
    def set_conversations(self, conversations: Sequence[Conversation], current_id: str | None) -> None:
        """Rebuild the list (pinned first, then by date, newest first) and select `current_id`. Rebuilding
        selects nothing by itself: the rows come and go without asking to open another chat."""
        self.list.blockSignals(True)
        self.list.clear()
        self._items.clear()
        heading = None
        now = time.time()
        for conv in conversations:
            group = "Pinned" if conv.pinned else date_group(conv.updated_at or now)
            if group != heading:
                self._add_heading(group)
                heading = group
            item = QListWidgetItem()
            item.setData(ID_ROLE, conv.id)
            item.setData(TITLE_ROLE, conv.title)
            item.setToolTip(conv.title)
            self.list.addItem(item)
            self._items[conv.id] = item
            self._show_title(item)
        self.list.blockSignals(False)
        self.select(current_id)
        self._apply_filter(self.filter_box.text())

    def _add_heading(self, text: str) -> None:
        item = QListWidgetItem(text)
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        font = QFont(self.font())
        font.setPointSize(max(font.pointSize() - 2, 7))
        font.setBold(True)
        item.setFont(font)
        self.list.addItem(item)

    def _show_title(self, item: QListWidgetItem) -> None:
        cid = item.data(ID_ROLE)
        mark = GENERATING_MARK if cid == self._generating else ""
        item.setText(mark + item.data(TITLE_ROLE))
        item.setToolTip(("Generating an answer… " if mark else "") + item.data(TITLE_ROLE))

    def select(self, conversation_id: str | None) -> None:
        """Highlight the chat on show (None: none is), without asking to open it."""
        item = self._items.get(conversation_id or "")
        self.list.blockSignals(True)
        self.list.setCurrentItem(item)  # None clears it, so a click on any row opens that row again
        self.list.blockSignals(False)

    @Slot(object)
    def set_generating(self, conversation_id: str | None) -> None:
        """Mark the conversation an answer is being generated for (None: no generation)."""
        old, self._generating = self._generating, conversation_id
        for cid in (old, conversation_id):
            if cid in self._items:
                self._show_title(self._items[cid])

    def titles(self) -> list[str]:
        """Visible conversation titles, top to bottom (without the generating marker)."""
        return [self.list.item(i).data(TITLE_ROLE) for i in range(self.list.count())
                if self.list.item(i).data(ID_ROLE) and not self.list.item(i).isHidden()]

    def item_text(self, conversation_id: str) -> str:
        return self._items[conversation_id].text()

    def item(self, conversation_id: str) -> QListWidgetItem | None:
        """The row of a conversation, if it is listed."""
        return self._items.get(conversation_id)

    # ---------------------------------------------------------------- events
    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_current(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if item is not None and item.data(ID_ROLE):
            self.selected.emit(item.data(ID_ROLE))

    @Slot(QListWidgetItem)
    def _on_clicked(self, item: QListWidgetItem) -> None:
        if item.data(ID_ROLE):
            self.selected.emit(item.data(ID_ROLE))

    def start_rename(self, conversation_id: str) -> RenameDialog | None:
        """Ask for a new name in the Rename dialog; an accepted new name is a `renameRequested`."""
        item = self._items.get(conversation_id)
        if item is None:
            return None
        dialog = RenameDialog(conversation_id, item.data(TITLE_ROLE), self.window())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.renamed.connect(self.renameRequested)
        dialog.open()
        return dialog

    def _menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None or not item.data(ID_ROLE):
            return
        cid = item.data(ID_ROLE)
        pinned = self.list.row(item) > 0 and self._heading_of(item) == "Pinned"
        menu = QMenu(self)
        menu.addAction("Rename", lambda: self.start_rename(cid))
        menu.addAction("Unpin" if pinned else "Pin to top", lambda: self.pinRequested.emit(cid, not pinned))
        menu.addSeparator()
        menu.addAction("Delete", lambda: self.deleteRequested.emit(cid))
        menu.exec(self.list.viewport().mapToGlobal(pos))

    def _heading_of(self, item: QListWidgetItem) -> str:
        for row in range(self.list.row(item), -1, -1):
            it = self.list.item(row)
            if not it.data(ID_ROLE):
                return it.text()
        return ""

    @Slot(str)
    def _apply_filter(self, text: str) -> None:
        needle = text.strip().casefold()
        heading: QListWidgetItem | None = None
        heading_used = False
        for row in range(self.list.count()):
            it = self.list.item(row)
            if not it.data(ID_ROLE):
                if heading is not None:
                    heading.setHidden(not heading_used)
                heading, heading_used = it, False
                continue
            hide = bool(needle) and needle not in str(it.data(TITLE_ROLE)).casefold()
            it.setHidden(hide)
            heading_used |= not hide
        if heading is not None:
            heading.setHidden(not heading_used)

    # ------------------------------------------------------------------- undo
    @Slot(str, str)
    def offer_undo(self, conversation_id: str, title: str) -> None:
        """Show "Deleted … Undo" for a few seconds after a conversation went to the trash."""
        self._undo_id = conversation_id
        self.undo_label.setText(f"Deleted “{title[:40]}”")
        self.undo_bar.show()
        self._undo_timer.start(UNDO_SECONDS * 1000)

    @Slot()
    def _undo(self) -> None:
        self.undo_bar.hide()
        if self._undo_id:
            self.undoRequested.emit(self._undo_id)
            self._undo_id = None
