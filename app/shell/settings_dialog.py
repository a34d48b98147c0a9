"""Settings: model and quantization level, engine, chat format, system prompt, sampling, context,
threads, prompt lookup and saved conversation states, theme and font size. Every change applies at once
and is saved; nothing needs a restart.
Choosing the other engine loads its installed model at once, or says which level to download."""

from __future__ import annotations

import html
import logging
from dataclasses import replace

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QHideEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.model_choice import resolve_model
from app.core.settings import Sampling, Settings
from app.models.level_measure_panel import LevelMeasurePanel
from app.models.level_measurer import LevelMeasurer
from app.models.model_switcher import ModelSwitcher
from app.models.quant_list import QuantList
from app.shell.chat_page import ChatPage
from app.shell.network_dialog import AIRPLANE_HINT, AIRPLANE_TEXT
from app.shell.sampling_page import SamplingPage
from app.shell.server_page import ServerPage
from app.shell.speed_page import SpeedPage
from app.ui import panel_style, theme
from app.ui.panel_style import combo, hint
from app.ui.windows import set_up_window
from engine.chat_format import GGUF_JINJA, format_names, get_format
from engine.hardware import physical_cores
from engine.models import InstalledModel
from engine.select import choose_engine, mlx_available, mlx_runs_on_cpu
from engine.types import EngineError

log = logging.getLogger(__name__)

ENGINE_LABELS = {"auto": "Automatic", "mlx": "MLX (Apple Silicon)", "llama.cpp": "llama.cpp (GGUF, any CPU)"}
MLX_ON_CPU_LABEL = "MLX (here on the CPU only: slow)"
MLX_ON_CPU_NOTE = ("MLX is made for Apple Silicon's GPU. On this computer it runs on the CPU only, several times "
                   "slower than llama.cpp, and its levels are converted here from a large download.")
THEME_LABELS = {"system": "Follow the system", "light": "Light", "dark": "Dark"}
PAGES = ("Model", "Chat", "Sampling", "Speed", "Appearance", "Server")


def format_label(name: str) -> str:
    """The chat format's name as the settings list shows it."""
    if name == GGUF_JINJA:
        return "Model's own template (stored in the GGUF file)"
    try:
        return get_format(name).label
    except EngineError:
        return name


def engine_labels(current: str) -> dict[str, str]:
    """The engines to offer here: MLX only where it can run (unless it is the saved choice, so the box
    still shows it), and named for what it does on this computer."""
    labels = dict(ENGINE_LABELS)
    if not mlx_available() and current != "mlx":
        del labels["mlx"]
    elif mlx_runs_on_cpu():
        labels["mlx"] = MLX_ON_CPU_LABEL
    return labels


class SettingsDialog(QDialog):
    """Live settings. `settingsChanged` fires after each change was applied and saved."""

    settingsChanged = Signal(object)  # Settings

    def __init__(self, switcher: ModelSwitcher, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        set_up_window(self, "Settings", "SettingsDialog", (960, 700), panel=True)
        self.switcher = switcher
        self._loading = True
        self.error = QLabel(self)
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {theme.current().error}")
        self.error.hide()

        self.pages = QStackedWidget(self)
        self.nav = QListWidget(self)
        self.nav.setObjectName("SettingsNav")
        self.nav.setAccessibleName("Settings pages")
        self.nav.setFixedWidth(150)
        # Styled now: a screen reader asks for the rows' places as they are added, and rows laid out
        # before the style sheet's padding applies would overlap for as long as the dialog lives.
        self.nav.ensurePolished()
        for name, build in zip(PAGES, (self._model_page, self._chat_page, self._sampling_page, self._speed_page,
                                       self._appearance_page, self._server_page), strict=True):
            self.nav.addItem(name)
            self.pages.addWidget(panel_style.scrolling(build()))
        self.nav.currentRowChanged.connect(self.pages.setCurrentIndex)
        self.nav.setCurrentRow(0)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        body = QHBoxLayout()
        body.addWidget(self.nav)
        body.addWidget(self.pages, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(body, 1)
        lay.addWidget(self.error)
        lay.addWidget(buttons)
        switcher.settings.changed.connect(self._on_changed_elsewhere)
        self._loading = False

    @property
    def settings(self) -> Settings:
        return self.switcher.settings.current

    def show_page(self, name: str) -> None:
        self.nav.setCurrentRow(PAGES.index(name))

    # ------------------------------------------------------------------ pages
    def _model_page(self) -> QWidget:
        s = self.settings
        page = QWidget()
        form = QFormLayout()
        self.engine_box = combo(engine_labels(s.engine), s.engine)
        mlx_row = self.engine_box.findData("mlx")
        if mlx_row >= 0 and mlx_runs_on_cpu():  # said before the user chooses it, in the list itself
            self.engine_box.setItemData(mlx_row, MLX_ON_CPU_NOTE, Qt.ItemDataRole.ToolTipRole)
        self.engine_box.currentIndexChanged.connect(self._on_engine)
        self.engine_note = hint("")
        self._describe_engine()
        form.addRow("Engine", self.engine_box)
        form.addRow("", self.engine_note)

        self.format_box = QComboBox()
        self._fill_formats()
        self.format_box.currentIndexChanged.connect(self._on_format)
        form.addRow("Chat format", self.format_box)
        form.addRow("", hint("TinyLlama Chat v0.4 was trained on ChatML; other formats (such as Llama 2) "
                              "make it answer worse. Changing it reloads the model."))

        self.threads_box = QSpinBox()
        self.threads_box.setRange(0, 256)
        self.threads_box.setSpecialValueText(f"Automatic ({physical_cores()} physical cores)")
        self.threads_box.setValue(s.n_threads or 0)
        self.threads_box.valueChanged.connect(self._on_threads)
        form.addRow("CPU threads", self.threads_box)

        self.airplane_box = QCheckBox(AIRPLANE_TEXT)
        self.airplane_box.setChecked(s.airplane_mode)
        self.airplane_box.toggled.connect(self._on_airplane)
        form.addRow("Network", self.airplane_box)
        form.addRow("", hint(AIRPLANE_HINT))

        self.measurer = LevelMeasurer(self.switcher.model.engine, self.switcher, self)
        self.quant_list = QuantList(self.switcher, page, figures=self.measurer.figures, advice=self.measurer.advice)
        self.measure_panel = LevelMeasurePanel(self.measurer, page)
        self.measurer.measured.connect(self.quant_list.refresh)
        self.switcher.switched.connect(self.measure_panel.refresh)
        self.switcher.model.changed.connect(self.measure_panel.refresh)
        lay = QVBoxLayout(page)
        levels = self.quant_list.entries()
        name = levels[0].label.split(" · ")[0] if levels else self.settings.model_id
        title = QLabel(f"<b>Quantization level</b> of {html.escape(name)}")
        lay.addWidget(title)
        lay.addWidget(hint("Smaller levels load faster and use less memory; larger ones answer a little "
                            "better. Click a level to use it — the open chat stays, and the next answer "
                            "comes from the new level."))
        lay.addWidget(self.quant_list, 1)
        lay.addWidget(self.measure_panel)
        lay.addLayout(form)
        return page

    def _chat_page(self) -> QWidget:
        self.chat_page = ChatPage(self)
        return self.chat_page

    def _sampling_page(self) -> QWidget:
        self.sampling_page = SamplingPage(self.settings.sampling)
        self.sampling_page.presetChosen.connect(self._on_preset)
        self.sampling_page.valuesChanged.connect(self._on_sampling)
        return self.sampling_page

    def _speed_page(self) -> QWidget:
        self.speed_page = SpeedPage(self, self.switcher.model.engine)
        return self.speed_page

    def _server_page(self) -> QWidget:
        self.server_page = ServerPage(self)
        return self.server_page

    def _appearance_page(self) -> QWidget:
        s = self.settings
        page = QWidget()
        form = QFormLayout(page)
        self.theme_box = combo(THEME_LABELS, s.theme)
        self.theme_box.currentIndexChanged.connect(self._on_appearance)
        self.font_box = QSpinBox()
        self.font_box.setRange(6, 48)
        self.font_box.setSuffix(" pt")
        self.font_box.setValue(s.font_size)
        self.font_box.valueChanged.connect(self._on_appearance)
        form.addRow("Theme", self.theme_box)
        form.addRow("Font size", self.font_box)
        return page

    # ----------------------------------------------------------------- values
    def _describe_engine(self) -> None:
        pref = self.engine_box.currentData()
        choice = choose_engine(pref)
        loaded = self.switcher.model.loaded
        running = loaded.engine_name if loaded else None
        text = choice.reason
        if choice.fallback_message:
            text = choice.fallback_message
        elif choice.name == "mlx" and mlx_runs_on_cpu():
            text += " " + MLX_ON_CPU_NOTE
        if running and running != choice.name and self._model_for(pref) is None:
            text += (f" No model for {choice.name} is installed yet: choose a level above to download it. "
                     f"Until then TinyChat keeps using {running}.")
        self.engine_note.setText(text)

    def _model_for(self, engine_pref: str) -> InstalledModel | None:
        return resolve_model(self.switcher.manager, replace(self.settings, engine=engine_pref))

    def _fill_formats(self) -> None:
        current = self.switcher.current()
        trained = current.chat_format if current else "chatml"
        self.format_box.blockSignals(True)
        self.format_box.clear()
        self.format_box.addItem(f"Automatic: the trained format ({format_label(trained)})", None)
        for name in format_names():
            mark = "  ✓ trained format" if name == trained else ""
            self.format_box.addItem(format_label(name) + mark, name)
        self.format_box.setCurrentIndex(max(self.format_box.findData(self.settings.chat_format), 0))
        self.format_box.blockSignals(False)

    # ---------------------------------------------------------------- changes
    def commit(self, new: Settings) -> None:
        """Apply `new` through the settings service: the window, theme and model follow its signal."""
        if self._loading or new == self.settings:
            return
        error = self.switcher.settings.apply(new)
        self.error.setText(error)  # applied now in any case; an error only means it is not remembered
        self.error.setVisible(bool(error))
        self.settingsChanged.emit(new)

    @Slot(object, object)
    def _on_changed_elsewhere(self, _old: Settings, new: Settings) -> None:
        """Keep the boxes true when the View menu changed the text size or theme, or the Network page
        switched airplane mode."""
        self._loading, was = True, self._loading
        self.theme_box.setCurrentIndex(max(self.theme_box.findData(new.theme), 0))
        self.font_box.setValue(new.font_size)
        self.airplane_box.setChecked(new.airplane_mode)
        self._loading = was

    @Slot()
    def _on_engine(self) -> None:
        self.commit(replace(self.settings, engine=self.engine_box.currentData()))
        loaded = self.switcher.model.loaded
        target = self._model_for(self.settings.engine)
        if loaded is not None and target is not None and loaded.engine_name != target.engine:
            self.switcher.use(target)  # the open chat stays; the next answer comes from the other engine
        self.quant_list.refresh()  # the levels on offer are the new engine's
        self._describe_engine()

    @Slot(bool)
    def _on_airplane(self, on: bool) -> None:
        self.commit(replace(self.settings, airplane_mode=on))

    @Slot()
    def _on_format(self) -> None:
        self.commit(replace(self.settings, chat_format=self.format_box.currentData()))

    @Slot()
    def _on_threads(self) -> None:
        self.commit(replace(self.settings, n_threads=self.threads_box.value() or None))

    @Slot(str)
    def _on_preset(self, name: str) -> None:
        new = self.settings.with_preset(name)
        self.sampling_page.show_sampling(new.sampling)
        self.commit(new)

    @Slot(object, str)
    def _on_sampling(self, sampling: Sampling, preset: str) -> None:
        self.commit(replace(self.settings, sampling=sampling, sampling_preset=preset))

    @Slot()
    def _on_appearance(self) -> None:
        self.commit(replace(self.settings, theme=self.theme_box.currentData(), font_size=self.font_box.value()))

    def hideEvent(self, event: QHideEvent) -> None:  # Qt override: save a prompt still being typed
        self.chat_page.save_typed_prompt()
        super().hideEvent(event)
