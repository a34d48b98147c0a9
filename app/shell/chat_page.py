"""Settings → Chat: the system prompt, saved once typing pauses (or when the dialog closes) and cut at
its limit, and what happens when a chat outgrows the model's context."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QTimer, Slot
from PySide6.QtWidgets import QFormLayout, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from app.core.settings import MAX_SYSTEM_PROMPT
from app.ui.panel_style import combo, hint

POLICY_LABELS = {"drop-oldest": "Leave out the oldest messages (the chat goes on)",
                 "refuse": "Stop and tell me, so I can start a new chat"}


class ChatPage(QWidget):
    """The page's controls; setting changes go through the settings dialog's `commit`."""

    def __init__(self, dialog) -> None:  # SettingsDialog (it imports this module)
        super().__init__()
        self.dialog = dialog
        s = dialog.settings
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("<b>System prompt</b>"))
        lay.addWidget(hint("Sent before every conversation to tell the model how to behave. Leave it empty "
                            "for the model's default behaviour."))
        self.prompt_edit = QPlainTextEdit(s.system_prompt)
        self.prompt_edit.setAccessibleName("System prompt")
        self.prompt_edit.setPlaceholderText("For example: You are a concise assistant. Answer in English.")
        self.prompt_edit.textChanged.connect(self._prompt_timer_start)
        lay.addWidget(self.prompt_edit, 1)
        form = QFormLayout()
        self.policy_box = combo(POLICY_LABELS, s.context_policy)
        self.policy_box.currentIndexChanged.connect(self._on_policy)
        form.addRow("When a chat outgrows the context", self.policy_box)
        lay.addLayout(form)
        lay.addWidget(hint("The model sees at most 2048 tokens (about 1500 words) at a time, the answer "
                            "included."))
        self._prompt_timer = QTimer(self)
        self._prompt_timer.setSingleShot(True)
        self._prompt_timer.setInterval(400)
        self._prompt_timer.timeout.connect(self._commit_prompt)

    def save_typed_prompt(self) -> None:
        """Save a prompt still being typed now, instead of when typing pauses (the dialog is closing)."""
        if self._prompt_timer.isActive():
            self._prompt_timer.stop()
            self._commit_prompt()

    @Slot()
    def _prompt_timer_start(self) -> None:
        self._prompt_timer.start()

    @Slot()
    def _commit_prompt(self) -> None:
        text = self.prompt_edit.toPlainText()
        if len(text) > MAX_SYSTEM_PROMPT:
            self.dialog.error.setText(f"The system prompt is limited to {MAX_SYSTEM_PROMPT} characters; the "
                                      "rest is not saved.")
            self.dialog.error.show()
            text = text[:MAX_SYSTEM_PROMPT]
        self.dialog.commit(replace(self.dialog.settings, system_prompt=text))

    @Slot()
    def _on_policy(self) -> None:
        self.dialog.commit(replace(self.dialog.settings, context_policy=self.policy_box.currentData()))
