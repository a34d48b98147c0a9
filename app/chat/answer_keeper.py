"""Answers the disk refused to take: held in memory, offered to the disk again every few seconds and
once more at exit, with one sentence to the user when that starts and one when they are saved."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtWidgets import QMessageBox, QWidget

from app.core.store_types import MessageStatus, StoredMessage, StoreError
from app.core.store_writer import StreamingWriter, UnsavedAnswers
from engine.types import GenerationStats

log = logging.getLogger(__name__)

RETRY_MS = 3000
SAVED_LATE = "The answer that could not be saved earlier is now saved."


def unsaved_sentence(error: StoreError) -> str:
    """What the user is told, once, when an answer cannot be written."""
    if error.cause == "full":
        return ("The disk is full, so this answer is not saved yet. TinyChat keeps it and saves it as soon "
                "as there is room: free some space.")
    if error.cause == "readonly":
        return ("TinyChat cannot write to its data folder, so this answer is not saved yet. It is kept while "
                "TinyChat runs and saved as soon as the folder can be written.")
    return "This answer could not be saved yet (a disk error). TinyChat keeps it and tries again."


def not_started_sentence(error: StoreError) -> str:
    """What the user is told when the answer's first write fails (their message itself is saved)."""
    reason = {"full": "The disk is full", "readonly": "TinyChat cannot write to its data folder"}.get(
        error.cause, "A disk error occurred")
    return (f"{reason}, so the answer could not start. Your message is saved: fix that, then press "
            "Ctrl+R to get the answer.")


class AnswerKeeper(QObject):
    """Finishes answers for the chat controller and keeps those the disk refuses until it takes them."""

    notice = Signal(str)  # a sentence for the user
    savedLate = Signal(str)  # conversation id whose held answer is now on disk

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.unsaved = UnsavedAnswers()
        self._told = False
        self._timer = QTimer(self)
        self._timer.setInterval(RETRY_MS)
        self._timer.timeout.connect(self.retry)

    def __len__(self) -> int:
        return len(self.unsaved)

    def finish(self, writer: StreamingWriter, status: MessageStatus, stats: GenerationStats | None = None,
               error: str | None = None) -> StoredMessage | None:
        """Write the answer's final state; if the disk refuses, hold it and retry. Returns the answer as
        it is to be shown (None if even its row cannot be read)."""
        try:
            final = writer.finish(status, stats, error=error)
        except StoreError as e:
            log.error("could not finalise the answer, keeping it to retry: %s", e.detail)
            self.unsaved.add(writer)
            self._timer.start()
            self.write_failed(e)
            try:
                return writer.held(writer.store.get_message(writer.message_id))
            except StoreError:
                return None
        if self._told and not self.unsaved:
            self._told = False
            self.notice.emit(SAVED_LATE)
        return final

    def write_failed(self, error: StoreError) -> None:
        """A write of an answer failed (streaming or final): say so, once until all is saved."""
        if not self._told:
            self._told = True
            self.notice.emit(unsaved_sentence(error))

    @Slot()
    def retry(self) -> None:
        """Offer every held answer to the disk again."""
        for saved in self.unsaved.retry():
            self.savedLate.emit(saved.conversation_id)
        if not self.unsaved:
            self._timer.stop()
            if self._told:
                self._told = False
                self.notice.emit(SAVED_LATE)

    def stop(self) -> None:
        """A last attempt (at exit); whatever is still refused stays held, counted by len()."""
        self.retry()
        self._timer.stop()

    def overlay(self, message: StoredMessage) -> StoredMessage:
        """`message` as held in memory if the disk has not taken it yet."""
        return self.unsaved.overlay(message)


def ask_to_retry(parent: QWidget, count: int) -> bool:
    """At exit, with answers still unsaved: True when the user freed space and wants another try."""
    answers = "An answer" if count == 1 else f"{count} answers"
    choice = QMessageBox.question(
        parent, "TinyChat",
        f"{answers} could not be saved: the disk is full or cannot be written. Free some space, then "
        "choose Retry. Close without saving loses them.",
        QMessageBox.StandardButton.Retry | QMessageBox.StandardButton.Discard,
        QMessageBox.StandardButton.Retry)
    return choice == QMessageBox.StandardButton.Retry
