"""Speed against quality of the measured levels, as a small scatter chart drawn with QPainter.

Across: generation tokens/s (what a user waits on); up: how often the level picks the same next word
as the reference. The best place is the top right; the recommended level is ringed. The same points
are the widget's accessible description, so a screen reader hears what the picture shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.ui import theme

MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP, MARGIN_RIGHT = 46, 34, 12, 16


@dataclass(frozen=True)
class ChartPoint:
    """One measured level: its name, generation tokens/s and top-1 agreement (0–1)."""

    level: str
    tokens_per_s: float
    agreement: float
    recommended: bool = False


def _nice_step(span: float) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about four ticks over `span`."""
    raw = max(span, 1e-9) / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if raw <= m * magnitude)


class LevelChart(QWidget):
    """The chart; `set_points` replaces what it shows."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("LevelChart")
        self.setAccessibleName("Speed and quality of the measured levels")
        self.setMinimumSize(300, 190)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.points: tuple[ChartPoint, ...] = ()
        self.reference = "the reference"
        self.set_points((), "")

    def sizeHint(self) -> QSize:  # Qt override
        return QSize(380, 210)

    def set_points(self, points: Sequence[ChartPoint], reference: str) -> None:
        """Show `points`; `reference` names the level agreement is measured against."""
        self.points = tuple(points)
        self.reference = reference or "the reference"
        if self.points:
            described = "; ".join(f"{p.level}: {p.tokens_per_s:.1f} tokens/s, {100 * p.agreement:.1f} % same next "
                                  f"word{' (recommended)' if p.recommended else ''}" for p in self.points)
        else:
            described = "No level measured yet."
        self.setAccessibleDescription(described)
        self.setToolTip(described.replace("; ", "\n"))
        self.update()

    def _plot(self) -> QRectF:
        return QRectF(MARGIN_LEFT, MARGIN_TOP, self.width() - MARGIN_LEFT - MARGIN_RIGHT,
                      self.height() - MARGIN_TOP - MARGIN_BOTTOM)

    def paintEvent(self, _event: QPaintEvent) -> None:  # Qt override
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text, faint = pal.color(QPalette.ColorRole.Text), pal.color(QPalette.ColorRole.Mid)
        p.fillRect(self.rect(), pal.color(QPalette.ColorRole.Base))
        plot = self._plot()
        fm = QFontMetrics(self.font())
        if not self.points:
            p.setPen(text)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Measured levels appear here.")
            return
        x_max = max(pt.tokens_per_s for pt in self.points) * 1.15 or 1.0
        lowest = min(pt.agreement for pt in self.points)
        y_min = max(0.0, min(lowest - 0.05, 0.9))
        y_step = _nice_step(1.0 - y_min)
        y_min = (y_min // y_step) * y_step
        x_step = _nice_step(x_max)

        def at(tps: float, agreement: float) -> QPointF:
            return QPointF(plot.left() + plot.width() * tps / x_max,
                           plot.bottom() - plot.height() * (agreement - y_min) / (1.0 - y_min))

        # grid and ticks
        p.setPen(QPen(faint, 1, Qt.PenStyle.DotLine))
        tick = x_step
        while tick < x_max:
            x = at(tick, y_min).x()
            p.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
            tick += x_step
        tick = y_min
        while tick <= 1.0 + 1e-9:
            y = at(0, tick).y()
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            tick += y_step
        p.setPen(text)
        p.drawRect(plot)
        tick = 0.0
        while tick < x_max:
            label = f"{tick:g}"
            x = at(tick, y_min).x()
            p.drawText(QPointF(x - fm.horizontalAdvance(label) / 2, plot.bottom() + fm.ascent() + 2), label)
            tick += x_step
        tick = y_min
        while tick <= 1.0 + 1e-9:
            label = f"{100 * tick:.0f} %"
            y = at(0, tick).y()
            p.drawText(QPointF(plot.left() - fm.horizontalAdvance(label) - 4, y + fm.ascent() / 2 - 1), label)
            tick += y_step
        p.drawText(QRectF(plot.left(), self.height() - fm.height(), plot.width(), fm.height()),
                   Qt.AlignmentFlag.AlignCenter, "tokens per second →")
        p.drawText(QPointF(plot.left() + 4, plot.top() + fm.ascent() + 2), f"↑ same next word as {self.reference}")

        # the levels
        accent = QColor(theme.current().accent)
        for pt in self.points:
            c = at(pt.tokens_per_s, pt.agreement)
            p.setPen(QPen(text, 1))
            p.setBrush(pal.color(QPalette.ColorRole.Highlight))
            p.drawEllipse(c, 4.5, 4.5)
            if pt.recommended:
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.setPen(QPen(accent, 2))
                p.drawEllipse(c, 9, 9)
            p.setPen(text)
            label = pt.level + (" ★" if pt.recommended else "")
            width = fm.horizontalAdvance(label)
            x = c.x() + 11 if c.x() + 11 + width < plot.right() else c.x() - 11 - width
            p.drawText(QPointF(x, c.y() + fm.ascent() / 2 - 1), label)
