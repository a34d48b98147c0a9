"""Ctrl+F's results as a list model with a painting delegate: a page of hits is appended in one step and
only the rows on screen are laid out as rich text, so filling the list costs the same for 5 or 50 hits."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QAbstractTextDocumentLayout, QPainter, QPalette, QTextDocument
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from app.core import timestamps
from app.core.store_types import MARK_END, MARK_START, SearchHit
from app.ui import theme

Index = QModelIndex | QPersistentModelIndex
HIT_ROLE = Qt.ItemDataRole.UserRole
HTML_ROLE = Qt.ItemDataRole.UserRole + 1
ROLE_WORDS = {"user": "You", "assistant": "TinyLlama", "system": "System"}
PADDING = (8, 6)
LINES = 3  # a title line and two of snippet; every row has this height, so the view sizes none of them


def _said(hit: SearchHit) -> tuple[str, str]:
    moment = timestamps.local_datetime(hit.created_at)
    return ROLE_WORDS.get(hit.role, hit.role), moment.strftime("%d %b %Y") if moment else "unknown date"


def hit_html(hit: SearchHit, highlight: str) -> str:
    """A result as rich text: conversation title, who said it and when (class `said`), then the snippet
    with every match (class `hit`) on a coloured background; the painter colours both classes' text."""
    snippet = html.escape(hit.snippet).replace(MARK_START, f"<span class='hit' style='background-color:{highlight};'>")
    snippet = snippet.replace(MARK_END, "</span>")
    who, when = _said(hit)
    return (f"<b>{html.escape(hit.conversation_title or 'Untitled')}</b> "
            f"<span class='said'>· {who} · {when}</span><br>{snippet}")


def hit_text(hit: SearchHit) -> str:
    """The same in plain words, for screen readers."""
    who, when = _said(hit)
    return f"{hit.conversation_title or 'Untitled'} · {who} · {when}: {hit.snippet_plain()}"


class SearchResults(QAbstractListModel):
    """The hits shown so far; `append` adds a page."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.hits: list[SearchHit] = []
        self.highlight = "#ffe58a"

    def rowCount(self, parent: Index | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self.hits)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.hits):
            return None
        hit = self.hits[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return hit_text(hit)
        if role == HTML_ROLE:
            return hit_html(hit, self.highlight)
        return hit if role == HIT_ROLE else None

    def clear(self) -> None:
        self.beginResetModel()
        self.hits = []
        self.highlight = theme.current().user_bubble if theme.current().name == "dark" else "#ffe58a"
        self.endResetModel()

    def append(self, hits: tuple[SearchHit, ...] | list[SearchHit]) -> None:
        if hits:
            self.beginInsertRows(QModelIndex(), len(self.hits), len(self.hits) + len(hits) - 1)
            self.hits += hits
            self.endInsertRows()


class HitDelegate(QStyledItemDelegate):
    """Paints a hit's rich text in its row (the selection drawn by the style underneath)."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""  # type: ignore[attr-defined]
        widget: QWidget | None = opt.widget  # type: ignore[attr-defined]
        style = widget.style() if widget else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        rect = opt.rect  # type: ignore[attr-defined]
        doc = QTextDocument()
        doc.setDefaultFont(opt.font)  # type: ignore[attr-defined]
        doc.setDocumentMargin(0)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)  # type: ignore[attr-defined]
        # Muted grey on the selection's accent is unreadable: a selected row's byline takes its text
        # colour; a match keeps the plain text colour on its own background, whatever the row's.
        palette: QPalette = opt.palette  # type: ignore[attr-defined]
        said = palette.color(QPalette.ColorRole.HighlightedText).name() if selected else theme.current().muted
        plain = palette.color(QPalette.ColorRole.Text).name()
        doc.setDefaultStyleSheet(f".said {{ color: {said}; }} .hit {{ color: {plain}; }}")
        doc.setHtml(str(index.data(HTML_ROLE)))
        doc.setTextWidth(rect.width() - 2 * PADDING[0])
        context = QAbstractTextDocumentLayout.PaintContext()
        group = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        context.palette.setColor(QPalette.ColorRole.Text, palette.color(group))
        painter.save()
        painter.translate(rect.left() + PADDING[0], rect.top() + PADDING[1])
        painter.setClipRect(0, 0, rect.width() - 2 * PADDING[0], rect.height() - 2 * PADDING[1])
        doc.documentLayout().draw(painter, context)
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        lines = option.fontMetrics.lineSpacing() * LINES  # type: ignore[attr-defined]
        return QSize(option.rect.width(), lines + 2 * PADDING[1])  # type: ignore[attr-defined]
