"""The sidebar's rows as a Qt list model: date headings and the conversations under them, pinned first,
filtered by title.

A change to one conversation (an answer, a rename, a pin, a delete) touches that one row: it is
repainted where it is, or moved to its new place, and a heading appears or goes when its group gains
its first or loses its last conversation. Nothing is rebuilt, so the cost of an answer does not grow
with the history; only a new filter or a new list (start, import) resets the model.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Sequence
from datetime import date
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from app.core import timestamps
from app.core.store_types import Conversation

ID_ROLE = Qt.ItemDataRole.UserRole
TITLE_ROLE = Qt.ItemDataRole.UserRole + 1
HEADING_ROLE = Qt.ItemDataRole.UserRole + 2  # True on a date heading
GENERATING_MARK = "●  "
UNKNOWN_DATE = "Unknown date"
PINNED = "Pinned"

Index = QModelIndex | QPersistentModelIndex
Row = Conversation | str  # a conversation, or the text of a heading


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


def _order_key(conv: Conversation) -> tuple[bool, float]:
    """The store's listing order: pinned first, then the most recently active."""
    ts = conv.updated_at
    return (not conv.pinned, -ts if isinstance(ts, (int, float)) and not math.isnan(ts) else 0.0)


def _key(row: Row) -> str:
    return row.id if isinstance(row, Conversation) else "\0" + row  # no id starts with a NUL


class ConversationModel(QAbstractListModel):
    """Headings and conversations, top to bottom; a conversation's new title (a rename, an answer)
    arrives from the store through `put`."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._all: list[Conversation] = []  # every conversation, in listing order
        self._rows: list[Row] = []  # what is shown: the filtered conversations under their headings
        self._where: dict[str, int] = {}  # row key → row number
        self._groups: dict[str, str] = {}  # conversation id → its heading
        self._needle = ""
        self._folded: dict[str, str] = {}  # conversation id → its title casefolded, for the filter
        self._generating: str | None = None
        self._today = date.today()

    # ------------------------------------------------------------ Qt's model
    def rowCount(self, parent: Index | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self._rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row = self._rows[index.row()]
        if isinstance(row, str):
            return row if role == Qt.ItemDataRole.DisplayRole else True if role == HEADING_ROLE else None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            busy = row.id == self._generating
            if role == Qt.ItemDataRole.DisplayRole:
                return (GENERATING_MARK if busy else "") + row.title
            return ("Generating an answer… " if busy else "") + row.title
        if role == TITLE_ROLE:
            return row.title
        if role == ID_ROLE:
            return row.id
        return False if role == HEADING_ROLE else None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid() or isinstance(self._rows[index.row()], str):
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    # ------------------------------------------------------------- queries
    def index_of(self, conversation_id: str | None) -> QModelIndex:
        """The row of a conversation, invalid when it is not shown."""
        row = self._where.get(conversation_id or "\0")
        return self.index(row) if row is not None else QModelIndex()

    def conversation_at(self, row: int) -> Conversation | None:
        found = self._rows[row] if 0 <= row < len(self._rows) else None
        return found if isinstance(found, Conversation) else None

    def conversation(self, conversation_id: str) -> Conversation | None:
        """A listed conversation by id, whether or not the filter shows it."""
        return next((c for c in self._all if c.id == conversation_id), None)

    def heading_of(self, conversation_id: str) -> str:
        return self._groups.get(conversation_id, "")

    def shown(self) -> list[Conversation]:
        """The conversations shown, top to bottom."""
        return [r for r in self._rows if isinstance(r, Conversation)]

    # ------------------------------------------------------------- changes
    def set_conversations(self, conversations: Sequence[Conversation]) -> None:
        """A whole new list (at start, after an import), in the store's listing order."""
        self._all = list(conversations)
        self._today = date.today()
        self._groups = {c.id: self._group(c) for c in self._all}
        self._folded = {c.id: c.title.casefold() for c in self._all}
        self._reset()

    def set_filter(self, text: str) -> None:
        """Show only conversations whose title contains `text` (case-insensitive)."""
        needle = text.strip().casefold()
        if needle != self._needle:
            self._needle = needle
            self._reset()

    def put(self, conv: Conversation) -> None:
        """A conversation was added or changed: repaint its row, or move it to its new place."""
        self._all = [c for c in self._all if c.id != conv.id]
        self._all.insert(bisect.bisect_left(self._all, _order_key(conv), key=_order_key), conv)
        if date.today() != self._today:  # past midnight every row's group moved on
            self.set_conversations(self._all)
            return
        self._groups[conv.id] = self._group(conv)
        self._folded[conv.id] = conv.title.casefold()
        self._sync()
        at = self._where.get(conv.id)
        if at is not None:
            self.dataChanged.emit(self.index(at), self.index(at))

    def remove(self, conversation_id: str) -> None:
        """A conversation left the list (it went to the trash)."""
        self._all = [c for c in self._all if c.id != conversation_id]
        self._groups.pop(conversation_id, None)
        self._folded.pop(conversation_id, None)
        self._sync()

    def set_generating(self, conversation_id: str | None) -> None:
        """Mark the conversation an answer is being generated for (None: no generation)."""
        old, self._generating = self._generating, conversation_id
        for cid in {old, conversation_id} - {None}:
            index = self.index_of(cid)
            if index.isValid():
                self.dataChanged.emit(index, index)

    # ------------------------------------------------------------ internals
    def _group(self, conv: Conversation) -> str:
        return PINNED if conv.pinned else date_group(conv.updated_at or time.time(), self._today)

    def _layout(self) -> list[Row]:
        rows: list[Row] = []
        heading = None
        for conv in self._all:
            if self._needle and self._needle not in self._folded[conv.id]:
                continue
            group = self._groups[conv.id]
            if group != heading:
                rows.append(group)
                heading = group
            rows.append(conv)
        return rows

    def _reset(self) -> None:
        self.beginResetModel()
        self._set_rows(self._layout())
        self.endResetModel()

    def _set_rows(self, rows: list[Row]) -> None:
        self._rows = rows
        self._where = {_key(r): i for i, r in enumerate(rows)}

    def _sync(self) -> None:
        """Bring the rows to the new layout with the fewest row signals: removals, at most one move,
        then insertions. A change of one conversation needs nothing more; anything else resets."""
        target = self._layout()
        keys = {_key(r) for r in target}
        for row in range(len(self._rows) - 1, -1, -1):
            if _key(self._rows[row]) not in keys:
                self.beginRemoveRows(QModelIndex(), row, row)
                self._set_rows(self._rows[:row] + self._rows[row + 1:])
                self.endRemoveRows()
        kept = [r for r in target if _key(r) in self._where]
        if not self._move_one(kept):
            self._reset()
            return
        for row, item in enumerate(target):
            if _key(item) not in self._where:
                self.beginInsertRows(QModelIndex(), row, row)
                self._set_rows([*self._rows[:row], item, *self._rows[row:]])
                self.endInsertRows()
        self._set_rows(target)  # same keys in the same order; the changed conversation's new record

    def _move_one(self, kept: list[Row]) -> bool:
        """Reorder the rows into `kept` (the same rows) by moving at most one; False if that is not enough."""
        now = [_key(r) for r in self._rows]
        want = [_key(r) for r in kept]
        if now == want:
            return True
        first = next(i for i, (a, b) in enumerate(zip(now, want, strict=True)) if a != b)
        last = max(i for i, (a, b) in enumerate(zip(now, want, strict=True)) if a != b)
        if now[first:last] == want[first + 1:last + 1]:  # the row at `last` came up to `first` (an answer)
            src, dest = last, first
        elif now[first + 1:last + 1] == want[first:last]:  # the row at `first` went down to `last`
            src, dest = first, last + 1
        else:
            return False
        self.beginMoveRows(QModelIndex(), src, src, QModelIndex(), dest)
        self._set_rows(list(kept))
        self.endMoveRows()
        return True
