"""Paces a streaming answer: holds the newest text and hands it on at most ~30 times a second, so the
GUI thread lays out one frame per tick however fast tokens arrive."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Slot

FRAME_MS = 33  # ~30 repaints a second while streaming


class StreamPainter(QObject):
    """`push(message_id, text)` as text arrives; `paint(message_id, text)` is called on the next tick."""

    def __init__(self, paint: Callable[[str, str], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._paint = paint
        self._target = ""
        self._text: str | None = None
        self._frame = QTimer(self)
        self._frame.setInterval(FRAME_MS)
        self._frame.timeout.connect(self._tick)

    def push(self, message_id: str, text: str) -> None:
        """Record the latest text of a streaming answer."""
        self._target, self._text = message_id, text
        if not self._frame.isActive():
            self._frame.start()

    def flush(self) -> None:
        """Paint any held text now (the answer finished)."""
        self._tick()
        self._frame.stop()

    def drop(self) -> None:
        """Forget held text (another chat is shown)."""
        self._frame.stop()
        self._text = None

    @Slot()
    def _tick(self) -> None:
        if self._text is None:
            self._frame.stop()
            return
        text, self._text = self._text, None
        self._paint(self._target, text)
