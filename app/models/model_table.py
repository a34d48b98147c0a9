"""The model manager's table: one row per level or imported model, with its size, status or download
progress, and the buttons that act on it. Rows are found by key (catalog entry id or installed id)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.background.download_worker import JobProgress
from app.models.download_panel import describe

COLUMNS = ("Level", "Size", "Status", "")
ROW_HEIGHT_LINES = 2.4
ROLE_KEY = Qt.ItemDataRole.UserRole


class ModelTable(QTreeWidget):
    """Rows of models; the owner fills them and connects each button to its action."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(len(COLUMNS))
        self.setHeaderLabels(COLUMNS)
        self.setRootIsDecorated(False)
        self.setSelectionMode(QTreeWidget.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        for col in (0, 1, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)

    def heading(self, text: str) -> None:
        """A bold line spanning the table, above a group of rows."""
        item = QTreeWidgetItem([text])
        font = item.font(0)
        font.setBold(True)
        item.setFont(0, font)
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        self.addTopLevelItem(item)
        item.setFirstColumnSpanned(True)

    def add_row(self, key: str, level: str, size: str, status: str,
                buttons: list[tuple[str, Callable[[], None]]]) -> QTreeWidgetItem:
        """A row with `buttons` (text, slot); each button carries `key` as its "rowKey" property."""
        item = QTreeWidgetItem([level, size, status, ""])
        item.setData(0, ROLE_KEY, key)
        # Column 2 stretches, so this hint sets the row height without narrowing any column.
        item.setSizeHint(2, QSize(0, int(ROW_HEIGHT_LINES * self.fontMetrics().lineSpacing())))
        self.addTopLevelItem(item)
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(2, 1, 2, 1)
        row.addStretch(1)
        for text, handler in buttons:
            b = QPushButton(text, box)
            b.setObjectName(f"{text}Button")
            b.setAutoDefault(False)
            b.setProperty("rowKey", key)
            b.clicked.connect(handler)
            row.addWidget(b)
        self.setItemWidget(item, 3, box)
        return item

    def show_progress(self, item: QTreeWidgetItem, p: JobProgress) -> None:
        """Replace the row's status by a progress bar and its one-line description."""
        cell = QWidget()
        lay = QVBoxLayout(cell)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(1)
        bar = QProgressBar(cell)
        bar.setTextVisible(False)
        bar.setMaximumHeight(8)
        if p.progress.total:
            bar.setRange(0, 1000)
            bar.setValue(int(1000 * min(p.progress.done, p.progress.total) / p.progress.total))
        else:
            bar.setRange(0, 0)
        text = QLabel(describe(p.progress), cell)
        text.setObjectName("Muted")
        lay.addWidget(bar)
        lay.addWidget(text)
        item.setText(2, "")
        self.setItemWidget(item, 2, cell)

    def item(self, key: str) -> QTreeWidgetItem | None:
        """The row of `key`, if it is shown."""
        for i in range(self.topLevelItemCount()):
            it = self.topLevelItem(i)
            if it.data(0, ROLE_KEY) == key:
                return it
        return None

    def status_of(self, key: str) -> str:
        """The status a row shows (the progress line while it downloads)."""
        it = self.item(key)
        if it is None:
            return ""
        cell = self.itemWidget(it, 2)
        label = cell.findChild(QLabel) if cell is not None else None
        return label.text() if label is not None else it.text(2)

    def button(self, key: str, text: str) -> QPushButton | None:
        """The row's button labelled `text`, if it has one."""
        it = self.item(key)
        box = self.itemWidget(it, 3) if it is not None else None
        return box.findChild(QPushButton, f"{text}Button") if box is not None else None
