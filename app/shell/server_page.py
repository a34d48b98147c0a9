"""Settings → Server: "Serve on this computer" (the local OpenAI-compatible API) and "Answer with a model
on another server" (the remote engine). Both are off until the user turns them on; the second is the
only way the chat itself ever uses the network, and the page says so."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.model_choice import choose_model
from app.core.settings import RemoteSettings, ServeSettings


def _hint(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("Muted")
    label.setWordWrap(True)
    return label


def _secret(text: str) -> QLineEdit:
    edit = QLineEdit(text)
    edit.setEchoMode(QLineEdit.EchoMode.PasswordEchoOnEdit)
    return edit


class ServerPage(QWidget):
    """The page's controls; changes go through the settings dialog's `commit` like every other page."""

    def __init__(self, dialog) -> None:  # SettingsDialog (typed loosely: it imports this module)
        super().__init__()
        self.dialog = dialog
        serve, remote = dialog.settings.serve, dialog.settings.remote
        lay = QVBoxLayout(self)

        box = QGroupBox("Serve on this computer")
        form = QFormLayout(box)
        self.serve_box = QCheckBox("Let other programs use the model through an OpenAI-compatible API")
        self.serve_box.setChecked(serve.enabled)
        self.port_box = QSpinBox()
        self.port_box.setRange(1, 65535)
        self.port_box.setValue(serve.port or 8080)
        self.lan_box = QCheckBox("Let other computers on the network connect (needs an API key)")
        self.lan_box.setChecked(serve.lan)
        self.serve_key = _secret(serve.api_key)
        self.serve_key.setPlaceholderText("optional on this computer; required for other computers")
        self.serve_state = QLabel()
        self.serve_state.setWordWrap(True)
        form.addRow(self.serve_box)
        form.addRow("Port", self.port_box)
        form.addRow(self.lan_box)
        form.addRow("API key", self.serve_key)
        form.addRow(self.serve_state)
        form.addRow(_hint("Requests wait for the answer you are reading, use the same model and settings, and "
                          "are not saved in your conversations."))
        for signal in (self.serve_box.toggled, self.lan_box.toggled, self.port_box.valueChanged):
            signal.connect(self._on_serve)
        self.serve_key.editingFinished.connect(self._on_serve)
        lay.addWidget(box)

        box = QGroupBox("Answer with a model on another server")
        form = QFormLayout(box)
        self.remote_box = QCheckBox("Use an OpenAI-compatible server (vLLM, llama.cpp, Ollama, another TinyChat)")
        self.remote_box.setChecked(remote.enabled)
        self.url_edit = QLineEdit(remote.url)
        self.url_edit.setPlaceholderText("http://192.168.1.20:8000/v1")
        self.remote_key = _secret(remote.api_key)
        self.remote_key.setPlaceholderText("if the server needs one")
        self.model_edit = QLineEdit(remote.model)
        self.model_edit.setPlaceholderText("the server's first model")
        self.connect_button = QPushButton("Connect")
        self.connect_button.clicked.connect(self._on_remote)
        self.remote_box.toggled.connect(self._on_remote)
        form.addRow(self.remote_box)
        form.addRow("Address", self.url_edit)
        form.addRow("API key", self.remote_key)
        form.addRow("Model", self.model_edit)
        form.addRow("", self.connect_button)
        form.addRow(_hint("While this is on, your messages are sent to that server and its answers come back "
                          "from it. Nothing else in TinyChat uses the network; turn it off to chat on this "
                          "computer again."))
        lay.addWidget(box)
        lay.addStretch(1)

        switch = getattr(dialog.parentWidget(), "server_switch", None)
        if switch is not None:
            switch.stateChanged.connect(self.serve_state.setText)
            self.serve_state.setText(switch.state)

    @Slot()
    def _on_serve(self) -> None:
        serve = ServeSettings(enabled=self.serve_box.isChecked(), port=self.port_box.value(),
                              lan=self.lan_box.isChecked(), api_key=self.serve_key.text().strip())
        self.dialog.commit(replace(self.dialog.settings, serve=serve))

    @Slot()
    def _on_remote(self) -> None:
        remote = RemoteSettings(enabled=self.remote_box.isChecked(), url=self.url_edit.text().strip(),
                                api_key=self.remote_key.text().strip(), model=self.model_edit.text().strip())
        old = self.dialog.settings.remote
        self.dialog.commit(replace(self.dialog.settings, remote=remote))
        if remote.enabled or old.enabled:  # connect, reconnect, or back to the model on this computer
            model, reason = choose_model(self.dialog.settings)
            self.dialog.switcher.model.load(model, reason)
