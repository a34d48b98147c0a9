"""The model manager's table: one row per level or imported model with its size, its status (or a
download's progress) and the buttons that act on it. Rows are found by key (catalog entry id or
installed id).

Every cell is a real widget in a grid, not a widget laid over an item view: buttons inside an item
view's cells are invisible to assistive technology, and these are the only way to use, verify, delete
or download a level. There are only a handful of rows, so building them all is cheap.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.background.download_worker import JobProgress
from app.models.download_panel import describe
from engine.progress import human

HEADERS = ("Level", "On disk", "Status", "")


class ModelTable(QScrollArea):
    """A grid of model rows, each known by a key (a catalog entry id, an installed model id, …)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ModelTable")
        self.setAccessibleName("Models")
        self.setWidgetResizable(True)
        self._rows: dict[str, dict[str, QWidget]] = {}
        self._next_row = 0
        self._body: QWidget | None = None
        self._grid: QGridLayout | None = None
        self.clear()

    def clear(self) -> None:
        """Remove every row (the header stays)."""
        old = self.takeWidget()
        if old is not None:  # later: a button of the old rows may be the one whose click led here
            old.hide()
            old.deleteLater()
        self._body = QWidget()
        self._grid = QGridLayout(self._body)
        self._grid.setHorizontalSpacing(16)
        self._grid.setColumnStretch(2, 1)
        for col, text in enumerate(HEADERS):
            if text:
                self._grid.addWidget(self._label(f"<b>{text}</b>"), 0, col)
        self._grid.setRowStretch(99, 1)  # rows stay at the top
        self._rows.clear()
        self._next_row = 1
        self.setWidget(self._body)

    def heading(self, text: str) -> None:
        """A group title spanning the row ("Tiny Test Chat", "Imported models")."""
        label = self._label(f"<b>{text}</b>")
        self._grid.addWidget(label, self._next_row, 0, 1, len(HEADERS))
        self._next_row += 1

    def add_row(self, key: str, level: str, size: int | None, status: str,
                buttons: list[tuple[str, Callable[[str], None]]], tooltip: str = "") -> None:
        """One model and the bytes it takes on disk (None: nothing there yet); each button is named for
        the level too ("Use Q8_0"), since every row has a Use."""
        row = self._next_row
        self._next_row += 1
        cells: dict[str, QWidget] = {"level": self._label(level), "size": self._label("—" if size is None else
                                                                                     human(size)),
                                     "status": self._label(status)}
        cells["level"].setToolTip(tooltip)
        if size is not None:  # the exact figure, for anyone adding the rows up
            cells["size"].setToolTip(f"{size:,} bytes on disk")
        for col, name in enumerate(("level", "size", "status")):
            self._grid.addWidget(cells[name], row, col)
        box = QWidget(self._body)
        lay = QHBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addStretch(1)
        for text, handler in buttons:
            b = QPushButton(text, box)
            b.setObjectName(f"{text}Button")
            b.setAccessibleName(f"{text} {level}")
            b.setAutoDefault(False)
            b.clicked.connect(lambda _checked=False, act=handler: act(key))
            lay.addWidget(b)
            cells[f"button:{text}"] = b
        self._grid.addWidget(box, row, 3)
        self._rows[key] = cells

    def show_progress(self, key: str, p: JobProgress) -> None:
        """Replace the row's status by a bar and its one-line description of the job's progress."""
        cells = self._rows.get(key)
        if cells is None:
            return
        total = p.progress.total
        fraction = min(p.progress.done, total) / total if total else None
        text = describe(p.progress)
        bar = cells.get("bar")
        if bar is None:
            cell = QWidget(self._body)
            lay = QVBoxLayout(cell)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.setSpacing(1)
            bar = QProgressBar(cell)
            bar.setTextVisible(False)
            bar.setMaximumHeight(8)
            lay.addWidget(bar)
            status = cells["status"]
            self._grid.replaceWidget(status, cell)
            lay.addWidget(status)
            cells["bar"] = bar
        assert isinstance(bar, QProgressBar)
        if fraction is None:
            bar.setRange(0, 0)
        else:
            bar.setRange(0, 1000)
            bar.setValue(int(1000 * min(max(fraction, 0.0), 1.0)))
        status = cells["status"]
        assert isinstance(status, QLabel)
        status.setText(text)
        bar.setAccessibleName(text)

    def has_row(self, key: str) -> bool:
        return key in self._rows

    def status_of(self, key: str) -> str:
        """The status row `key` shows (the progress line while it downloads)."""
        return self.text(key, "status")

    def text(self, key: str, column: str) -> str:
        """What row `key` shows in "level", "size" or "status" ("" without such a row)."""
        cell = self._rows.get(key, {}).get(column)
        return cell.text() if isinstance(cell, QLabel) else ""

    def button(self, key: str, text: str) -> QPushButton | None:
        """Row `key`'s button labelled `text`, if it has one."""
        b = self._rows.get(key, {}).get(f"button:{text}")
        return b if isinstance(b, QPushButton) else None

    def _label(self, text: str) -> QLabel:
        label = QLabel(text, self._body)
        label.setTextFormat(Qt.TextFormat.AutoText)
        return label
