"""The window's side of "Serve on this computer": starts and stops the local API as the settings say.

The API's requests run on the window's own engine thread (`EngineThread.submit`), after whatever is
queued there, so they wait behind the answer the user is reading and never load a second model. The
status bar says when a request is being answered.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QEvent, QObject, Signal, Slot

from app.core.settings import ServeSettings, Settings
from app.server.api import ServedModel, ServerHooks, create_app
from app.server.listener import LOOPBACK, ListenError, ListenerThread

log = logging.getLogger(__name__)
EVERY_INTERFACE = "0.0.0.0"
OFF = "Off."


class ServerSwitch(QObject):
    """Owns the API listener of one main window. `stateChanged` carries a sentence for Settings."""

    busyChanged = Signal(int)  # requests in progress; emitted on the server's thread, delivered queued
    stateChanged = Signal(str)

    def __init__(self, window) -> None:  # MainWindow (typed loosely: the shell imports this module)
        super().__init__(window)
        self.window = window
        self.session = window.session
        self.listener: ListenerThread | None = None
        self.state = OFF
        self._applied: ServeSettings | None = None
        self._served: ServedModel | None = None
        window.server_switch = self
        self.busyChanged.connect(self._on_busy)
        self.session.model.changed.connect(self._on_model_state)
        self.session.settings.changed.connect(self._on_settings)
        window.installEventFilter(self)
        self._on_model_state()
        self.apply(self.session.settings.current)

    @Slot(object)
    def apply(self, settings: Settings) -> None:
        """Start, restart or stop the listener to match `settings.serve`."""
        want = settings.serve
        if want == self._applied:
            return
        self.stop()
        self._applied = want
        if not want.enabled:
            self._set_state(OFF)
        elif want.lan and not want.api_key:
            self._set_state("Set an API key first: other computers may connect only with one.")
        else:
            hooks = ServerHooks(submit=self.window.engine.submit, model=lambda: self._served,
                                defaults=lambda: self.session.settings.current.generation_params(),
                                on_busy=self.busyChanged.emit, api_key=want.api_key)
            try:
                self.listener = ListenerThread(create_app(hooks), EVERY_INTERFACE if want.lan else LOOPBACK,
                                               want.port)
            except ListenError as e:
                self._set_state(e.message)
                self.window.show_notice(f"The API could not start: {e.message}")
            else:
                log.info("API listening at %s", self.listener.url)
                self._set_state(f"Serving at {self.listener.url}")
        self._on_busy(0)

    def stop(self) -> None:
        """Stop listening (open answers get a moment to finish)."""
        if self.listener is not None:
            self.listener.stop()
            self.listener = None
            log.info("API stopped")

    def _set_state(self, text: str) -> None:
        self.state = text
        self.stateChanged.emit(text)

    @Slot(object, object)
    def _on_settings(self, _old: Settings, new: Settings) -> None:
        self.apply(new)

    @Slot(object)
    def _on_model_state(self, _status: object = None) -> None:
        model = self.session.model
        loaded = model.loaded if model.status.ready else None
        self._served = None if loaded is None else ServedModel(
            loaded.model.model_id or loaded.model.path.stem, loaded.report.n_ctx, loaded.report.chat_format)

    @Slot(int)
    def _on_busy(self, requests: int) -> None:
        if self.listener is None:
            text = ""
        elif requests:
            text = f"API: answering {requests} request{'s' if requests > 1 else ''}…"
        else:
            text = "API on"
        self.window.status.set_server_note(text, self.listener.url if self.listener else "")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # getattr: Qt may still filter an event while Python tears this object down at exit.
        if watched is getattr(self, "window", None) and event.type() == QEvent.Type.Close:
            self.stop()  # before the window joins the engine thread
        return super().eventFilter(watched, event)
