"""The level chart names every dot where the name can be read: inside the chart, clear of the other dots
and names, even when the fastest levels crowd the top-right corner."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF

from app.models.level_chart import place_labels

PLOT = QRectF(52, 25, 246, 145)  # the frame of a 314 × 210 chart
CHART = QRectF(0, 0, 314, 210)
HEIGHT = 17.0


def test_a_name_with_no_room_right_of_its_dot_moves_inside_the_chart_instead_of_being_cut():
    # Settings ▸ Model as measured with the test models: F16, then the recommended Q8_0 at the frame's edge,
    # Q4_K_M just below it, Q2_K far below.
    dots = [(QPointF(196, 33), 26.0), (QPointF(248, 35), 48.0), (QPointF(264, 60), 52.0), (QPointF(260, 131), 34.0)]
    boxes = place_labels(dots, HEIGHT, PLOT, CHART)
    assert all(CHART.contains(b) for b in boxes)
    assert not any(a.intersects(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    dot_areas = [QRectF(c.x() - 9, c.y() - 9, 18, 18) for c, _ in dots]
    assert not any(b.intersects(d) for b in boxes for d in dot_areas)


def test_a_name_goes_right_of_its_dot_when_there_is_room():
    (box,) = place_labels([(QPointF(100, 100), 40.0)], HEIGHT, PLOT, CHART)
    assert box.left() == 111 and abs(box.center().y() - 100) <= 1


def test_a_name_that_fits_nowhere_in_the_frame_still_stays_inside_the_chart():
    # A dot at the chart's right edge, in a frame too small for any name: right of the dot is off the chart.
    frame = QRectF(280, 20, 30, 30)
    (box,) = place_labels([(QPointF(300, 35), 48.0)], HEIGHT, frame, CHART)
    assert CHART.contains(box) and box.right() < 300  # left of its dot
