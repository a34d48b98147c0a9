"""Which model the chat runs on and how it is doing: none, loading, ready or failed.

`ModelState.load(model)` hands a model to the engine thread; the worker's answers come back here, and
`changed(ModelStatus)` tells the window what to show (status bar, meter, composer). A change of chat
format or thread count in the settings reloads the model in use, and a new cap on the saved conversation
states applies to the folder at once; nothing else has to remember that.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal, Slot

from app.background.engine_worker import EngineThread, LoadedModel
from app.chat.settings_service import SettingsService
from app.core import paths
from app.core.settings import Settings
from engine.types import LoadOptions, ModelInfo

log = logging.getLogger(__name__)

NO_MODEL = "No model loaded — choose or download a model first."


@dataclass(frozen=True)
class ModelStatus:
    """What the window shows about the model: `state` is none | loading | ready | failed; `text` a sentence
    for the user when it is not ready; the rest describes the loaded model."""

    state: str
    text: str = ""
    engine: str = ""
    label: str = ""
    quant: str = ""
    chat_format: str = ""
    n_ctx: int = 0

    @property
    def ready(self) -> bool:
        return self.state == "ready"


class ModelState(QObject):
    """The one model in use, loaded on the engine thread."""

    changed = Signal(object)  # ModelStatus
    notice = Signal(str)  # a load warning for the user

    def __init__(self, engine: EngineThread, settings: SettingsService) -> None:
        super().__init__()
        self.engine = engine
        self.settings = settings
        self.status = ModelStatus("none", NO_MODEL)
        self.loaded: LoadedModel | None = None
        self.requested: ModelInfo | None = None  # the model last handed to the engine
        engine.loadStarted.connect(self._on_load_started)
        engine.loaded.connect(self._on_loaded)
        engine.loadFailed.connect(self._on_load_failed)
        settings.changed.connect(self._on_settings)

    def load(self, model: ModelInfo | None, missing_reason: str = "") -> None:
        """Load `model` on the worker thread (queued after any answer in progress), or say why there is none."""
        self.requested = model
        if model is None:
            self.loaded = None
            self._set(ModelStatus("none", missing_reason or NO_MODEL))
            return
        self._set(ModelStatus("loading", f"Loading {model.label or model.path.name}…", n_ctx=self.n_ctx))
        s = self.settings.current
        self.engine.load(model, LoadOptions(n_ctx=model.n_ctx, n_threads=s.n_threads, chat_format=s.chat_format,
                                            state_dir=paths.states_dir(), state_disk_cap=s.saved_states_cap))

    @property
    def n_ctx(self) -> int:
        """The context size of the loaded model (0 while none is)."""
        return self.loaded.report.n_ctx if self.loaded else 0

    def _set(self, status: ModelStatus) -> None:
        self.status = status
        self.changed.emit(status)

    @Slot(object)
    def _on_load_started(self, model: ModelInfo) -> None:
        self._set(ModelStatus("loading", f"Loading {model.label or model.path.name}…", n_ctx=self.n_ctx))

    @Slot(object)
    def _on_loaded(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        for warning in loaded.report.warnings:
            self.notice.emit(warning)
        m = loaded.model
        self._set(ModelStatus("ready", "", loaded.engine_name, m.label or m.path.name, m.quant,
                              loaded.report.chat_format, loaded.report.n_ctx))

    @Slot(str)
    def _on_load_failed(self, message: str) -> None:
        self.loaded = None
        self._set(ModelStatus("failed", message))

    @Slot(object, object)
    def _on_settings(self, old: Settings, new: Settings) -> None:
        if (old.chat_format, old.n_threads) != (new.chat_format, new.n_threads) and self.requested is not None:
            log.info("reloading %s for the new chat format or thread count", self.requested.path.name)
            self.load(self.requested)
        if old.saved_states_cap != new.saved_states_cap:
            self.engine.saved_states(paths.states_dir(), new.saved_states_cap)
