"""Settings → Speed: prompt-lookup decoding on or off, and the saved conversation states on disk (their
size, the cap on it, "Remove saved states"). The folder is measured, capped and cleared on the engine
thread, through the worker, so the loaded engine's own cache follows (its memory and its next writes)."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Slot
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.background.engine_worker import EngineThread, SavedStates
from app.core import paths
from app.core.settings import MAX_STATES_CAP_MB, MIB
from app.ui.panel_style import hint

LOOKUP_TEXT = "Prompt lookup: draft answers from text already in the conversation"
REMOVE_TEXT = "Remove saved states"
CAP_NAME = "Disk space for saved states"


def disk_size(n: int) -> str:
    """Bytes in the spin box's units (KB and MB of 2^10 and 2^20 bytes): "0 bytes", "12 KB", "34 MB"."""
    if n < 2**10:
        return f"{n} bytes"
    if n < MIB:
        return f"{n / 2**10:,.0f} KB"
    return f"{n / MIB:,.1f} MB" if n < 10 * MIB else f"{n / MIB:,.0f} MB"


class SpeedPage(QWidget):
    """The page's controls; setting changes go through the settings dialog's `commit`."""

    def __init__(self, dialog, engine: EngineThread) -> None:  # SettingsDialog (it imports this module)
        super().__init__()
        self.dialog = dialog
        self.engine = engine
        s = dialog.settings
        lay = QVBoxLayout(self)

        self.lookup_box = QCheckBox(LOOKUP_TEXT)
        self.lookup_box.setChecked(s.prompt_lookup)
        self.lookup_box.toggled.connect(self._on_lookup)
        lay.addWidget(self.lookup_box)
        lay.addWidget(hint("Answers that repeat the conversation (a text being corrected, code being edited, a "
                           "name or list said before) come faster. The answer is the same either way. It is used "
                           "with the llama.cpp engine; the MLX engine answers without it, because measured here it "
                           "did not make MLX faster."))

        box = QGroupBox("Saved conversation states")
        form = QFormLayout(box)
        form.addRow(hint("After each answer TinyChat keeps what the model read of that conversation, so going "
                         "back to it, even after a restart, answers at once instead of reading it all again. "
                         "They are rebuilt as you chat; the least recently used go first when space runs out."))
        self.size_label = QLabel("Measuring…")
        self.size_label.setObjectName("SavedStatesSize")
        form.addRow("On disk now", self.size_label)
        self.cap_box = QSpinBox()
        self.cap_box.setAccessibleName(CAP_NAME)
        self.cap_box.setRange(0, MAX_STATES_CAP_MB)
        self.cap_box.setSingleStep(256)
        self.cap_box.setSuffix(" MB")
        self.cap_box.setSpecialValueText("Keep none on disk")
        self.cap_box.setKeyboardTracking(False)  # typing 500 must not apply a cap of 5 MB on the way
        self.cap_box.setValue(s.saved_states_cap_mb)
        self.cap_box.valueChanged.connect(self._on_cap)
        form.addRow("Keep at most", self.cap_box)
        self.remove_button = QPushButton(REMOVE_TEXT)
        self.remove_button.clicked.connect(self._on_remove)
        form.addRow(self.remove_button)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.hide()
        form.addRow(self.error)
        lay.addWidget(box)
        lay.addStretch(1)
        engine.savedStates.connect(self._show)

    def refresh(self) -> None:
        """Ask the engine thread for the folder's size (after the work queued before it)."""
        self.engine.saved_states(paths.states_dir(), self.dialog.settings.saved_states_cap)

    def showEvent(self, event: QShowEvent) -> None:  # Qt override: the size is measured when it is looked at
        self.refresh()
        super().showEvent(event)

    @Slot(object)
    def _show(self, states: SavedStates) -> None:
        self.size_label.setText(disk_size(states.size))
        self.remove_button.setEnabled(True)
        self.error.setText(states.error)
        self.error.setVisible(bool(states.error))

    @Slot(bool)
    def _on_lookup(self, on: bool) -> None:
        self.dialog.commit(replace(self.dialog.settings, prompt_lookup=on))

    @Slot(int)
    def _on_cap(self, mb: int) -> None:
        self.dialog.commit(replace(self.dialog.settings, saved_states_cap_mb=mb))  # the model state applies it

    @Slot()
    def _on_remove(self) -> None:
        self.remove_button.setEnabled(False)
        self.size_label.setText("Removing…")
        self.engine.saved_states(paths.states_dir(), self.dialog.settings.saved_states_cap, clear=True)
