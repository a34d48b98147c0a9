"""Speed against quality of the measured levels, as a small scatter chart drawn with QPainter.

Across: generation tokens/s (what a user waits on); up: how often the level picks the same next word
as the reference. The best place is the top right; the recommended level is ringed. The same points
are the widget's accessible description, so a screen reader hears what the picture shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPalette, QPen, QPixmap, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from app.ui import theme

MARGIN_RIGHT = 16


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


def place_labels(labels: Sequence[tuple[QPointF, float]], height: float, plot: QRectF, chart: QRectF) -> list[QRectF]:
    """A box for each label (its dot's centre, its text's width): right of the dot, left, then the same up to
    three lines lower or higher; the first place inside the frame and clear of every dot and earlier label,
    else clear inside the chart, else inside the chart at all (a name cut at the edge says nothing)."""
    taken = [QRectF(c.x() - 9, c.y() - 9, 18, 18) for c, _ in labels]
    boxes: list[QRectF] = []
    for c, w in labels:
        places = [QRectF(round(c.x() + dx), round(c.y() - height / 2 + dy), w, height)
                  for dy in (0, height, -height, 2 * height, -2 * height, 3 * height, -3 * height)
                  for dx in (11, -11 - w)]
        clear = [r for r in places if not any(r.intersects(t) for t in taken)]
        box = next((r for r in clear if plot.contains(r)), None) or next(
            (r for r in clear if chart.contains(r)), None) or next((r for r in places if chart.contains(r)), places[0])
        taken.append(box)
        boxes.append(box)
    return boxes


class LevelChart(QLabel):
    """The chart; `set_points` replaces what it shows. Drawn into a pixmap the label shows: painting on the
    widget from Python inside Qt's paint pass crashed in fillRect once accessibility and a style sheet
    had been applied in the same process (PySide6 6.11); a pixmap has a painter of its own."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("LevelChart")
        self.setAccessibleName("Speed and quality of the measured levels")
        self.setMinimumSize(260, 190)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.points: tuple[ChartPoint, ...] = ()
        self.reference = "the reference"
        self.set_points((), "")

    def sizeHint(self) -> QSize:  # Qt override
        return QSize(340, 210)

    def minimumSizeHint(self) -> QSize:  # Qt override: a label's would be its pixmap's, so it could never shrink
        return QSize(260, 190)

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
        self._redraw()

    def _plot(self, fm: QFontMetrics) -> QRectF:
        """The plotting area: room for the percent labels on the left, the axis titles above and below."""
        left = fm.horizontalAdvance("100 %") + 8
        top, bottom = fm.height() + 8, 2 * fm.height() + fm.height() // 2 + 6
        return QRectF(left, top, self.width() - left - MARGIN_RIGHT, self.height() - top - bottom)

    def resizeEvent(self, event: QResizeEvent) -> None:  # Qt override
        super().resizeEvent(event)
        self._redraw()

    def changeEvent(self, event: QEvent) -> None:  # Qt override: a theme or font change redraws
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._redraw()

    def _redraw(self) -> None:
        pix = QPixmap(self.size().expandedTo(QSize(1, 1)))
        pix.fill(self.palette().color(QPalette.ColorRole.Base))
        p = QPainter(pix)
        try:
            self._draw(p)
        finally:
            p.end()
        self.setPixmap(pix)

    def _draw(self, p: QPainter) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        fm = QFontMetrics(self.font())
        plot = self._plot(fm)
        if not self.points:
            p.setPen(pal.color(QPalette.ColorRole.Text))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Measured levels appear here.")
            return
        x_max = max(pt.tokens_per_s for pt in self.points) * 1.15 or 1.0
        lowest = min(pt.agreement for pt in self.points)
        y_step = _nice_step(1.0 - max(0.0, min(lowest - 0.05, 0.9)))
        y_min = max(0.0, min(lowest - 0.05, 0.9)) // y_step * y_step
        y_top = 1.0 + 0.08 * (1.0 - y_min)  # headroom: a level at 100 % sits inside the frame

        def at(tps: float, agreement: float) -> QPointF:
            return QPointF(plot.left() + plot.width() * tps / x_max,
                           plot.bottom() - plot.height() * (agreement - y_min) / (y_top - y_min))

        self._axes(p, fm, plot, at, (_nice_step(x_max), x_max), (y_step, y_min))
        self._levels(p, fm, plot, at)

    def _axes(self, p: QPainter, fm: QFontMetrics, plot: QRectF, at: Callable[[float, float], QPointF],
              x_ticks: tuple[float, float], y_ticks: tuple[float, float]) -> None:
        """Grid, frame, tick labels and the two axis titles."""
        pal = self.palette()
        text, faint = pal.color(QPalette.ColorRole.Text), pal.color(QPalette.ColorRole.Mid)
        (x_step, x_max), (y_step, y_min) = x_ticks, y_ticks
        xs = [i * x_step for i in range(int(x_max / x_step) + 1) if i * x_step < x_max]
        ys = [y_min + i * y_step for i in range(round((1.0 - y_min) / y_step) + 1)]
        p.setPen(QPen(faint, 1, Qt.PenStyle.DotLine))
        for x in xs[1:]:
            p.drawLine(QPointF(at(x, 0).x(), plot.top()), QPointF(at(x, 0).x(), plot.bottom()))
        for y in ys[1:]:
            p.drawLine(QPointF(plot.left(), at(0, y).y()), QPointF(plot.right(), at(0, y).y()))
        p.setPen(text)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(plot)
        for x in xs:
            label = f"{x:g}"
            # half a line lower than the frame: clear of the lowest percent label at the corner; a tick near
            # the right edge keeps its label inside the chart
            width = fm.horizontalAdvance(label)
            p.drawText(QPointF(min(at(x, 0).x() - width / 2, self.width() - width - 2),
                               plot.bottom() + fm.height() / 2 + fm.ascent() + 2),
                       label)
        for y in ys:
            label = f"{100 * y:.0f} %"
            p.drawText(QPointF(plot.left() - fm.horizontalAdvance(label) - 4, at(0, y).y() + fm.ascent() / 2 - 1),
                       label)
        p.drawText(QRectF(plot.left(), self.height() - fm.height(), plot.width(), fm.height()),
                   Qt.AlignmentFlag.AlignCenter, "tokens per second →")
        p.drawText(QPointF(4, fm.ascent() + 2), f"↑ same next word as {self.reference}")

    def _levels(self, p: QPainter, fm: QFontMetrics, plot: QRectF, at: Callable[[float, float], QPointF]) -> None:
        """A dot per level (the recommended one ringed), each named where its name overlaps no other."""
        pal = self.palette()
        text, accent = pal.color(QPalette.ColorRole.Text), QColor(theme.current().accent)
        centres = [at(pt.tokens_per_s, pt.agreement) for pt in self.points]
        for pt, c in zip(self.points, centres, strict=True):
            p.setPen(QPen(text, 1))
            p.setBrush(pal.color(QPalette.ColorRole.Highlight))
            p.drawEllipse(c, 4.5, 4.5)
            if pt.recommended:
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.setPen(QPen(accent, 2))
                p.drawEllipse(c, 9, 9)
        p.setPen(text)
        labels = [pt.level + (" ★" if pt.recommended else "") for pt in self.points]
        h = fm.height() + 2
        boxes = place_labels([(c, fm.horizontalAdvance(label)) for c, label in zip(centres, labels, strict=True)],
                             h, plot, QRectF(self.rect()))
        for label, c, box in zip(labels, centres, boxes, strict=True):
            p.drawText(box, Qt.AlignmentFlag.AlignVCenter, label)
            if abs(box.center().y() - c.y()) > h / 2:  # moved off its dot's line: a thin leader to the dot
                p.setPen(QPen(pal.color(QPalette.ColorRole.Mid), 1))
                p.drawLine(c, QPointF(box.left() - 2 if box.left() > c.x() else box.right() + 2, box.center().y()))
                p.setPen(text)
