"""Under the level table: "Measure on this computer" for each installed level and for all of them, the
measurement's progress with Cancel, the recommendation with its reason, and the speed-vs-quality chart."""

from __future__ import annotations

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from app.models.level_chart import ChartPoint, LevelChart
from app.models.level_measurer import LevelMeasurer
from app.ui.panel_style import hint


def _button(text: str, name: str, parent: QWidget) -> QPushButton:
    b = QPushButton(text, parent)
    b.setAccessibleName(name)
    b.setAutoDefault(False)
    return b


class LevelMeasurePanel(QWidget):
    """The measurement controls and what came of them; everything shown follows `measurer`."""

    def __init__(self, measurer: LevelMeasurer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.measurer = measurer
        self.advice = QLabel(self)
        self.advice.setObjectName("LevelAdvice")
        self.advice.setWordWrap(True)
        self.advice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons_row = QHBoxLayout()
        self.buttons_row.setSpacing(6)
        self.level_buttons: dict[str, QPushButton] = {}
        self.all_button = _button("Measure all installed", "Measure all installed levels on this computer", self)
        self.all_button.clicked.connect(self._measure_all)
        self.cancel_button = _button("Cancel", "Cancel measuring", self)
        self.cancel_button.clicked.connect(measurer.cancel)
        self.bar = QProgressBar(self)
        self.bar.setAccessibleName("Measurement progress")
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.doing = QLabel(self)
        self.doing.setWordWrap(True)
        self.outcome = QLabel(self)
        self.outcome.setWordWrap(True)
        self.chart = LevelChart(self)

        measure_row = QHBoxLayout()
        measure_row.addLayout(self.buttons_row)
        measure_row.addWidget(self.all_button)
        measure_row.addStretch(1)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.bar, 1)
        progress_row.addWidget(self.cancel_button)
        text = QVBoxLayout()
        text.addWidget(QLabel("<b>Measured on this computer</b>", self))
        text.addWidget(hint("Speed, memory and how often a level picks the same next word as the best "
                            "installed level, measured here: a minute or more per level. Chatting goes on: "
                            "an answer you ask for waits for at most the level being measured."))
        text.addWidget(self.advice)
        text.addStretch(1)
        top = QHBoxLayout()
        top.addLayout(text, 3)
        top.addWidget(self.chart, 2, Qt.AlignmentFlag.AlignTop)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 6, 0, 6)
        lay.addLayout(top)
        lay.addLayout(measure_row)
        lay.addLayout(progress_row)
        lay.addWidget(self.doing)
        lay.addWidget(self.outcome)

        measurer.progress.connect(self._on_progress)
        measurer.ended.connect(self._on_ended)
        measurer.busyChanged.connect(self._on_busy)
        measurer.measured.connect(self.refresh)
        self._on_busy(False)
        self.outcome.hide()
        self.refresh()

    @Slot()
    def refresh(self) -> None:
        """Buttons for the installed levels, the recommendation and the chart, from the figures kept."""
        levels = self.measurer.levels()
        for button in self.level_buttons.values():
            self.buttons_row.removeWidget(button)
            button.deleteLater()
        self.level_buttons = {}
        for m in sorted(levels, key=lambda m: m.size_bytes):  # smallest first, as in the table
            b = _button(f"Measure {m.level}", f"Measure {m.level} on this computer", self)
            b.clicked.connect(lambda _checked=False, m=m: self.measurer.measure([m]))
            b.setEnabled(not self.measurer.busy)
            self.buttons_row.addWidget(b)
            self.level_buttons[m.level] = b
        self.all_button.setVisible(len(levels) > 1)
        figures = self.measurer.figures()
        advice = self.measurer.advice()
        self.advice.setText(advice.sentence if levels else "Install a level to measure it on this computer.")
        rated = [f for f in figures.values() if f.quality is not None]
        self.chart.set_points([ChartPoint(f.level, f.speed.gen_tps, f.quality.top1,  # type: ignore[union-attr]
                                          f.level == advice.level) for f in rated],
                              rated[0].quality.reference if rated else "")  # type: ignore[union-attr]

    @Slot()
    def _measure_all(self) -> None:
        self.measurer.measure(self.measurer.levels())

    @Slot(str, float)
    def _on_progress(self, text: str, fraction: float) -> None:
        self.doing.setText(text)
        self.bar.setValue(int(1000 * min(max(fraction, 0.0), 1.0)))
        self.bar.setAccessibleDescription(f"{text}: {100 * fraction:.0f} %")

    @Slot(str)
    def _on_ended(self, sentence: str) -> None:
        self.outcome.setText(sentence)
        self.outcome.show()
        self.refresh()

    @Slot(bool)
    def _on_busy(self, busy: bool) -> None:
        for b in (*self.level_buttons.values(), self.all_button):
            b.setEnabled(not busy)
        self.bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.doing.setVisible(busy)
        if busy:
            self.bar.setValue(0)
            self.outcome.hide()
