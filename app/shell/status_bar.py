"""The status bar: engine · model · quantization · chat format · speed, and the context meter."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QProgressBar, QStatusBar, QWidget

from app.ui.elided_label import ElidedLabel
from engine.types import GenerationStats


class ContextMeter(QProgressBar):
    """Tokens the conversation takes of the model's window; says so when older turns no longer fit.
    What it shows is also its accessible description."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ContextMeter")
        self.setAccessibleName("Context")
        self.setFixedWidth(230)
        self.setMaximumHeight(16)
        self.setTextVisible(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.forgotten = 0
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
        """A state instead of a count ("Loading the model…", "no model"), with an empty bar."""
        self.setValue(0)
        self.forgotten = 0
        self._show_text(text)

    def _show_text(self, text: str) -> None:
        self.setFormat(text)
        self.setAccessibleDescription(text)

    def clear(self) -> None:
        self.show_text("no model")


class StatusBar(QStatusBar):
    """Shows what is running and how fast the last answer was."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizeGripEnabled(False)
        # Elided, not full width: a narrow window must not be held wide by the status bar.
        self.model_label = ElidedLabel("No model loaded", self)
        self.speed_label = ElidedLabel("", self)
        self.meter = ContextMeter(self)
        self.addWidget(self.model_label, 1)
        self.addPermanentWidget(self.speed_label)
        self.addPermanentWidget(self.meter)

    def set_model(self, engine: str, model: str, quant: str, chat_format: str) -> None:
        parts: list[str] = []
        for p in (engine, model, quant, chat_format):
            if p and not any(p in shown for shown in parts):  # catalog labels already name the level
                parts.append(p)
        self.model_label.setText(" · ".join(parts))

    def set_model_text(self, text: str) -> None:
        self.model_label.setText(text)

    def set_stats(self, stats: GenerationStats | None) -> None:
        if stats is None or not stats.completion_tokens:
            self.speed_label.setText("")
            return
        self.speed_label.setText(f"{stats.tokens_per_s:.1f} tok/s · first token {stats.ttft_s:.2f} s")
