"""The sidebar: New chat, a filter box, conversations grouped by date (pinned first) with rename, pin
and delete, a marker on the one that is generating, and an Undo bar after a delete.

The list is a `QListView` over `ConversationModel`: a change to one conversation repaints or moves its
one row, and every row has the same height so the view lays out 5,000 rows without asking each one.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QSize,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QFont, QMouseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QPushButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from app.chat.conversation_model import HEADING_ROLE, PINNED, ConversationModel
from app.chat.rename_dialog import RenameDialog
from app.core.store_types import Conversation

UNDO_SECONDS = 8


class _ChatList(QListView):
    """The list itself: a right-click opens the row's menu without opening the chat, like a file manager
    (the row under the pointer is what the menu acts on, the open chat stays)."""

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.RightButton:
            event.accept()
            return
        super().mousePressEvent(event)


class _RowDelegate(QStyledItemDelegate):
    """Draws a heading in a small bold font; every row is sized as a conversation row, so the view can
    take one row's height for all of them."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._sizing = False

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        super().initStyleOption(option, index)
        if index.data(HEADING_ROLE) and not self._sizing:
            font = QFont(option.font)  # type: ignore[attr-defined]
            font.setPointSize(max(font.pointSize() - 2, 7))
            font.setBold(True)
            option.font = font  # type: ignore[attr-defined]

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        self._sizing = True
        try:
            return super().sizeHint(option, index)
        finally:
            self._sizing = False


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
        self.model = ConversationModel(self)
        self.list = _ChatList(self)
        self.list.setObjectName("ConversationList")
        self.list.setAccessibleName("Conversations")
        self.list.setUniformItemSizes(True)
        self.list.setItemDelegate(_RowDelegate(self.list))
        self.list.setModel(self.model)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)  # renaming is a dialog
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.selectionModel().currentChanged.connect(self._on_current)
        self.list.clicked.connect(self._on_clicked)  # the highlighted row too: it may not be on show
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        lay.addWidget(self.new_button)
        lay.addWidget(self.filter_box)
        lay.addWidget(self.list, 1)
        self._build_undo_bar(lay)
        self._current: str | None = None  # the chat on show, highlighted whenever it is listed
        self._quiet = False  # highlighting the chat on show is not a request to open it

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
        """Show a whole new list (pinned first, then by date, newest first) and highlight `current_id`,
        without asking to open it."""
        self.model.set_conversations(conversations)
        self.select(current_id)

    @Slot(object, object)
    def put(self, conv: Conversation, current_id: str | None) -> None:
        """One conversation was added or changed: only its row is repainted or moved. `current_id` is
        highlighted (a new chat's first message stores the conversation on show)."""
        self.model.put(conv)
        self.select(current_id)

    @Slot(str)
    def remove(self, conversation_id: str) -> None:
        """One conversation left the list (it went to the trash)."""
        self.model.remove(conversation_id)
        self._highlight()

    def select(self, conversation_id: str | None) -> None:
        """Highlight the chat on show (None: none is), without asking to open it."""
        self._current = conversation_id
        self._highlight()

    def _highlight(self) -> None:
        index = self.model.index_of(self._current)
        if index == self.list.currentIndex():
            return
        self._quiet = True
        try:
            selection = self.list.selectionModel()
            if index.isValid():
                selection.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            else:  # nothing highlighted, so a click on any row opens that row again
                selection.clear()
        finally:
            self._quiet = False

    @Slot(object)
    def set_generating(self, conversation_id: str | None) -> None:
        """Mark the conversation an answer is being generated for (None: no generation)."""
        self.model.set_generating(conversation_id)

    def titles(self) -> list[str]:
        """Visible conversation titles, top to bottom (without the generating marker)."""
        return [c.title for c in self.model.shown()]

    def item_text(self, conversation_id: str) -> str:
        return str(self.model.index_of(conversation_id).data())

    def index(self, conversation_id: str | None) -> QModelIndex:
        """The row of a conversation (invalid when it is not listed)."""
        return self.model.index_of(conversation_id)

    def current_id(self) -> str | None:
        """The conversation highlighted in the list, if any."""
        conv = self.model.conversation_at(self.list.currentIndex().row())
        return conv.id if conv is not None and self.list.currentIndex().isValid() else None

    # ---------------------------------------------------------------- events
    @Slot(QModelIndex, QModelIndex)
    def _on_current(self, index: QModelIndex, _previous: QModelIndex) -> None:
        conv = self.model.conversation_at(index.row()) if index.isValid() else None
        if conv is not None and not self._quiet:
            self._current = conv.id
            self.selected.emit(conv.id)

    @Slot(QModelIndex)
    def _on_clicked(self, index: QModelIndex) -> None:
        conv = self.model.conversation_at(index.row())
        if conv is not None:
            self.selected.emit(conv.id)

    def start_rename(self, conversation_id: str) -> RenameDialog | None:
        """Ask for a new name in the Rename dialog; an accepted new name is a `renameRequested`."""
        conv = self.model.conversation(conversation_id)  # the open chat may be filtered out: F2 still renames it
        if conv is None:
            return None
        dialog = RenameDialog(conversation_id, conv.title, self.window())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.renamed.connect(self.renameRequested)
        dialog.open()
        return dialog

    def _menu(self, pos: QPoint) -> None:
        conv = self.model.conversation_at(self.list.indexAt(pos).row())
        if conv is None:
            return
        cid = conv.id
        pinned = self.model.heading_of(cid) == PINNED
        menu = QMenu(self)
        menu.addAction("Rename", lambda: self.start_rename(cid))
        menu.addAction("Unpin" if pinned else "Pin to top", lambda: self.pinRequested.emit(cid, not pinned))
        menu.addSeparator()
        menu.addAction("Delete", lambda: self.deleteRequested.emit(cid))
        menu.exec(self.list.viewport().mapToGlobal(pos))

    @Slot(str)
    def _apply_filter(self, text: str) -> None:
        self.model.set_filter(text)
        self._highlight()

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
