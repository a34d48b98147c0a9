"""The status bar: engine · model · quantization · chat format · speed, the local API's note, a note while
the slower llama.cpp build runs, and the context meter."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QWidget

from app.chat.model_state import ModelStatus
from app.chat.session import Speed
from app.ui.elided_label import ElidedLabel
from engine import cpu_build

METER_MIN_WIDTH = 230
METER_PADDING = 24  # the style's frame and a little air either side of the text


class ContextMeter(QProgressBar):
    """Tokens the conversation takes of the model's window; says so when older turns no longer fit.
    It asks for the width its text needs, and what it shows is also its accessible description."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ContextMeter")
        self.setAccessibleName("Context")
        self.setMaximumHeight(16)
        self.setTextVisible(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.forgotten = 0
        self._text = ""
        self.set_usage(0, 2048, 0)

    def set_usage(self, used: int, n_ctx: int, forgotten: int) -> None:
        """`used` tokens of `n_ctx`; `forgotten` older messages left out of the context."""
        self.setRange(0, max(n_ctx, 1))
        self.setValue(min(used, n_ctx))
        text = f"{used} / {n_ctx} tokens"
        if forgotten:
            text += f" · {forgotten} older not in context"
        self._show_text(text)
        full = bool(forgotten) or used >= n_ctx * 0.9
        if self.property("full") != full:
            self.setProperty("full", full)
            self.style().unpolish(self)
            self.style().polish(self)
        self.setToolTip(
            "How much of the model's context window this conversation uses (with room kept for the answer)."
            + (f"\n{forgotten} older message(s) no longer fit and are not seen by the model." if forgotten else ""))
        self.forgotten = forgotten

    def show_text(self, text: str) -> None:
        """A state instead of a count ("loading…", "no model"), with an empty bar."""
        self.setValue(0)
        self.forgotten = 0
        self._show_text(text)

    def _show_text(self, text: str) -> None:
        self._text = text
        self.ensurePolished()  # the style sheet's font decides the width
        self.setMinimumWidth(max(METER_MIN_WIDTH, self.fontMetrics().horizontalAdvance(text) + METER_PADDING))
        self._fit()

    def _fit(self) -> None:
        # Only a window narrower than all of the status bar leaves less room than asked: then end with "…"
        # rather than let the style cut the centred text at both ends.
        room = max(self.width() - METER_PADDING, 0)
        fm = self.fontMetrics()
        shown = self._text if fm.horizontalAdvance(self._text) <= room else fm.elidedText(
            self._text, Qt.TextElideMode.ElideRight, room)
        self.setFormat(shown)
        self.setAccessibleDescription(shown)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def clear(self) -> None:
        self.show_text("no model")


class StatusBar(QStatusBar):
    """Shows what is running, how fast answers come (live while one streams) and the context meter."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizeGripEnabled(False)
        # Elided, not full width: a narrow window must not be held wide by the status bar.
        self.model_label = ElidedLabel("No model loaded", self)
        self.speed_label = ElidedLabel("", self)
        self.server_label = QLabel(self)
        self.build_label = QLabel(self)
        self.build_label.setObjectName("Muted")
        self.build_label.hide()
        self.meter = ContextMeter(self)
        self.addWidget(self.model_label, 1)
        self.addPermanentWidget(self.build_label)
        self.addPermanentWidget(self.server_label)
        self.addPermanentWidget(self.speed_label)
        self.addPermanentWidget(self.meter)

    def set_model(self, status: ModelStatus) -> None:
        """Engine · model · level · chat format when ready; else the sentence saying why not."""
        if not status.ready:
            self.model_label.setText(status.text)
            self.meter.show_text("loading…" if status.state == "loading" else "no model")
            return
        parts: list[str] = []
        for p in (status.engine, status.label, status.quant, status.chat_format):
            if p and not any(p in shown for shown in parts):  # catalog labels already name the level
                parts.append(p)
        self.model_label.setText(" · ".join(parts))

    def set_build(self, choice: cpu_build.Choice) -> None:
        """A note while the slower llama.cpp build runs (this CPU has no AVX2); nothing for the main build."""
        note = cpu_build.status_note(choice)
        self.build_label.setText(note)
        self.build_label.setToolTip(f"llama.cpp {cpu_build.describe(choice)}" if note else "")
        self.build_label.setVisible(bool(note))

    def set_server_note(self, text: str, url: str = "") -> None:
        """Whether the local API is on and answering (empty: off); the tooltip gives its address."""
        self.server_label.setText(text)
        self.server_label.setToolTip(f"Programs on this computer can use the model at {url}" if url else "")

    def set_speed(self, speed: Speed | None) -> None:
        """The speed of the answer streaming now, or of the last one (with its first-token time)."""
        if speed is None:
            self.speed_label.setText("")
        elif speed.ttft_s is None:
            self.speed_label.setText(f"{speed.tokens_per_s:.1f} tok/s…")
        else:
            self.speed_label.setText(f"{speed.tokens_per_s:.1f} tok/s · first token {speed.ttft_s:.2f} s")
