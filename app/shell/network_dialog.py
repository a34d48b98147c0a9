"""Help ▸ Network…: every network attempt of this session (time, what, host, port, purpose, bytes, result),
the one-line summary the status bar shows, and the airplane-mode switch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core import network_report
from app.ui.windows import set_up_window
from engine import network_log

COLUMNS = ("Time", "What", "Host", "Port", "Purpose", "Received", "Result")
AIRPLANE_TEXT = "Airplane mode: refuse every network connection"
AIRPLANE_HINT = ("While it is on, TinyChat refuses every connection and name lookup before anything leaves this "
                 "computer. A download then asks whether to go online for that one download.")


class NetworkDialog(QDialog):
    """The Network page. `set_airplane(on)` is called when the user flips the switch here."""

    def __init__(self, set_airplane: Callable[[bool], None], log_file: Path | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        set_up_window(self, "Network", "NetworkDialog", (900, 480))
        self.summary = QLabel(self)
        self.summary.setObjectName("NetworkSummary")
        font = self.summary.font()
        font.setBold(True)
        self.summary.setFont(font)
        self.airplane_box = QCheckBox(AIRPLANE_TEXT, self)
        self.airplane_box.toggled.connect(set_airplane)
        hint = QLabel(AIRPLANE_HINT, self)
        hint.setObjectName("Muted")
        hint.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("NetworkTable")
        self.table.setAccessibleName("Network attempts")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.empty = QLabel("No network connection was attempted since TinyChat started.", self)
        where = f" Every attempt is also kept in {log_file}." if log_file else ""
        note = QLabel(network_report.NOT_COUNTED + where, self)
        note.setObjectName("Muted")
        note.setWordWrap(True)
        note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.summary)
        lay.addWidget(self.airplane_box)
        lay.addWidget(hint)
        lay.addWidget(self.empty)
        lay.addWidget(self.table, 1)
        lay.addWidget(note)
        lay.addWidget(buttons)
        self.refresh()

    @Slot()
    def refresh(self) -> None:
        """Show the log as it is now, newest first."""
        attempts = network_log.LOG.attempts()
        airplane = network_log.airplane()
        self.summary.setText(network_report.summary(attempts, airplane))
        self.airplane_box.blockSignals(True)
        self.airplane_box.setChecked(airplane)
        self.airplane_box.blockSignals(False)
        self.empty.setVisible(not attempts)
        self.table.setRowCount(len(attempts))
        for r, attempt in enumerate(reversed(attempts)):
            for c, text in enumerate(network_report.row(attempt)):
                item = QTableWidgetItem(text)
                if COLUMNS[c] in ("Port", "Received"):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)

    def rows(self) -> list[list[str]]:
        """The table's text, row by row (what a person reads)."""
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]
