"""An inline progress row for a download or import: bar, "120 MB of 668 MB · 4.1 MB/s · 2 min left",
and Cancel. Used by the welcome view, the quantization switch and the model manager."""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from engine.catalog import CatalogEntry
from engine.download import Progress, human
from engine.models import ModelManager

PHASE_WORDS = {
    "metadata": "Contacting the model hub…",
    "downloading": "Downloading",
    "verifying": "Checking",
    "converting": "Converting",
    "copying": "Copying",
    "done": "Finished",
}


def kept_bytes(manager: ModelManager, entry: CatalogEntry) -> int:
    """Bytes of a paused download of `entry` already on disk (0 if none): what resuming starts from."""
    return sum(u.bytes for u in manager.disk_usage() if u.state == "partial" and u.id in (entry.id, entry.source_id))


def duration(seconds: float) -> str:
    """A rough, friendly time: "12 s", "3 min", "1 h 20 min"."""
    s = int(seconds + 0.5)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{(s + 30) // 60} min"
    return f"{s // 3600} h {(s % 3600) // 60} min"


def describe(p: Progress) -> str:
    """One line a person reads at a glance."""
    if p.phase == "metadata":
        return PHASE_WORDS["metadata"]
    if p.phase == "converting" and p.total:  # what is converted is the original, whatever the level's size
        return f"Converting the original ({human(p.total)}) · {100 * min(p.done, p.total) // p.total} %"
    parts = [PHASE_WORDS.get(p.phase, p.phase.capitalize())]
    if p.total:
        parts[0] += f" {human(p.done)} of {human(p.total)}"
    elif p.done:
        parts[0] += f" {human(p.done)}"
    if p.phase == "downloading" and p.speed > 0:
        parts.append(f"{human(p.speed)}/s")
    if p.phase == "downloading" and p.eta_s is not None:
        parts.append(f"{duration(p.eta_s)} left")
    return " · ".join(parts)


class DownloadPanel(QWidget):
    """Shows one job's progress; `cancelRequested` when the user presses Cancel."""

    cancelRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("DownloadPanel")
        self.title = QLabel(self)
        self.title.setWordWrap(True)
        self.bar = QProgressBar(self)
        self.bar.setAccessibleName("Download progress")
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(10)
        self.detail = QLabel(self)
        self.detail.setObjectName("Muted")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop now. What was downloaded is kept, and the next attempt continues "
                                      "from there.")
        self.cancel_button.clicked.connect(self.cancelRequested)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.detail, 1)
        row.addWidget(self.cancel_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 4)
        lay.addWidget(self.title)
        lay.addWidget(self.bar)
        lay.addLayout(row)

    def begin(self, title: str) -> None:
        """Show the panel for a new job, busy until the first byte count arrives."""
        self.title.setText(title)
        self.bar.setRange(0, 0)
        self.detail.setText(PHASE_WORDS["metadata"])
        self.cancel_button.setEnabled(True)
        self.show()

    @Slot(object)
    def set_progress(self, p: Progress) -> None:
        if p.total:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(1000 * min(p.done, p.total) / p.total))
        else:
            self.bar.setRange(0, 0)
        self.detail.setText(describe(p))
