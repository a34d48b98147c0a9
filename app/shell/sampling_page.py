"""The Sampling page of Settings: a preset (Precise, Balanced, Creative) or each value by hand, which
makes it Custom. It shows values and says what changed; the dialog applies them."""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QSpinBox, QWidget

from app.core.settings import CUSTOM_PRESET, PRESETS, Sampling, preset_name_for
from app.ui.panel_style import hint


class SamplingPage(QWidget):
    """`presetChosen(name)` when a preset is picked; `valuesChanged(sampling, preset)` after a value is."""

    presetChosen = Signal(str)
    valuesChanged = Signal(object, str)  # Sampling, the preset those values match ("Custom" if none)

    def __init__(self, sampling: Sampling, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._loading = True
        form = QFormLayout(self)
        self.preset_box = QComboBox()
        self.preset_box.addItems([*PRESETS, CUSTOM_PRESET])
        self.preset_box.setCurrentText(preset_name_for(sampling))
        self.preset_box.currentTextChanged.connect(self._on_preset)
        form.addRow("Preset", self.preset_box)
        form.addRow("", hint("Precise: focused, repeatable answers. Balanced: the default. Creative: more "
                             "varied wording. Changing a value below makes it Custom."))
        self.temperature = self._spin(0.0, 2.0, 0.05)
        self.top_p = self._spin(0.01, 1.0, 0.01)
        self.repeat_penalty = self._spin(0.5, 2.0, 0.01)
        self.top_k = QSpinBox()
        self.top_k.setRange(0, 1000)
        self.top_k.setSpecialValueText("off")
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(1, 2048)
        self.seed_fixed = QCheckBox("Same seed every time")
        self.seed = QSpinBox()
        self.seed.setAccessibleName("Seed")
        self.seed.setRange(0, 2**31 - 1)
        for box in (self.top_k, self.max_tokens, self.seed):
            box.valueChanged.connect(self._on_value)
        self.seed_fixed.toggled.connect(self._on_value)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed_fixed)
        seed_row.addWidget(self.seed, 1)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-p", self.top_p)
        form.addRow("Top-k", self.top_k)
        form.addRow("Repeat penalty", self.repeat_penalty)
        form.addRow("Max new tokens", self.max_tokens)
        form.addRow("Seed", seed_row)
        form.addRow("", hint("With a fixed seed and the same settings, the same question gets the same answer."))
        self.show_sampling(sampling)
        self._loading = False

    def _spin(self, lo: float, hi: float, step: float) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(lo, hi)
        box.setSingleStep(step)
        box.setDecimals(2)
        box.valueChanged.connect(self._on_value)
        return box

    def show_sampling(self, s: Sampling) -> None:
        """Show `s` without reporting it as a change."""
        self._loading, was = True, self._loading
        self.temperature.setValue(s.temperature)
        self.top_p.setValue(s.top_p)
        self.top_k.setValue(s.top_k)
        self.repeat_penalty.setValue(s.repeat_penalty)
        self.max_tokens.setValue(s.max_tokens)
        self.seed_fixed.setChecked(s.seed is not None)
        self.seed.setValue(s.seed or 0)
        self.seed.setEnabled(s.seed is not None)
        self._loading = was

    def values(self) -> Sampling:
        """The values the boxes show."""
        return Sampling(
            temperature=round(self.temperature.value(), 2), top_p=round(self.top_p.value(), 2),
            top_k=self.top_k.value(), repeat_penalty=round(self.repeat_penalty.value(), 2),
            max_tokens=self.max_tokens.value(), seed=self.seed.value() if self.seed_fixed.isChecked() else None)

    @Slot(str)
    def _on_preset(self, name: str) -> None:
        if not self._loading and name != CUSTOM_PRESET:
            self.presetChosen.emit(name)

    @Slot()
    def _on_value(self) -> None:
        if self._loading:
            return
        self.seed.setEnabled(self.seed_fixed.isChecked())
        sampling = self.values()
        preset = preset_name_for(sampling)
        self._loading = True
        self.preset_box.setCurrentText(preset)
        self._loading = False
        self.valuesChanged.emit(sampling, preset)
