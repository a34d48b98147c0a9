"""Shared pieces of the GUI tests: a private data dir, the real main window on a generated model, and
waiting on it without sleeping blindly."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app.core.model_choice import model_from_path
from app.core.settings import Settings
from app.core.store import Store
from app.shell.main_window import MainWindow
from engine.llamacpp_backend import LlamaCppEngine
from engine.types import Chunk, GenerationParams, Message, ModelInfo
from tests.fixtures.gguf_model import build_cached
from tests.fixtures.vocab import SCRIPT_TEXT

SCRIPT = SCRIPT_TEXT  # what the scripted model answers, whatever it is asked
# Qt messages that come from the headless platform plugin itself, not from the app.
PLATFORM_NOISE = ("propagateSizeHints",)


class PacedEngine(LlamaCppEngine):
    """The real llama.cpp engine with a pause after each streamed piece. The scripted model answers in
    a few milliseconds; pacing it gives a test time to stop, switch or quit while the answer is really
    streaming. Every token still comes from llama.cpp, and cancel is still the engine's own check."""

    def __init__(self, delay_s: float = 0.06) -> None:
        super().__init__()
        self.delay_s = delay_s

    def generate(self, messages: Sequence[Message], params: GenerationParams,
                 cancel: threading.Event) -> Iterator[Chunk]:
        for chunk in super().generate(messages, params, cancel):
            yield chunk
            if chunk.finish_reason is None:
                cancel.wait(self.delay_s)  # wakes at once when the user stops


def scripted_model(n_ctx: int = 2048) -> ModelInfo:
    path = build_cached("tiny", scripted=True)
    info = model_from_path(path)
    return ModelInfo(path=info.path, model_id="tiny-scripted", quant="F32", label="tiny-scripted", n_ctx=n_ctx)


def open_window(qtbot, home: Path, model: ModelInfo | None, settings: Settings | None = None,
                engine_factory: Callable[[], LlamaCppEngine] = LlamaCppEngine) -> MainWindow:
    """The real main window on a store in `home`, shown, with the model loaded (or failed)."""
    store, _ = Store.open(home / "data" / "tinychat.db")
    window = MainWindow(store, settings or Settings(), engine_factory=engine_factory, model=model)
    window.resize(1000, 700)
    window.show()
    if model is not None:
        qtbot.waitUntil(lambda: window.session.model.status.state in ("ready", "failed"), timeout=20_000)
    return window


def close_window(window: MainWindow) -> None:
    window.close()
    window.store.close()


def send(qtbot, window: MainWindow, text: str, wait: bool = True) -> None:
    """Type `text` and press Enter like a user; optionally wait for the answer to finish."""
    from PySide6.QtCore import Qt

    window.composer.set_text(text)
    qtbot.keyClick(window.composer.input, Qt.Key.Key_Return)
    if wait:
        wait_idle(qtbot, window)


def wait_idle(qtbot, window: MainWindow, timeout: int = 20_000) -> None:
    qtbot.waitUntil(lambda: not window.session.generating, timeout=timeout)


def click_chat(qtbot, window: MainWindow, conversation_id: str) -> None:
    """Click a conversation's row in the sidebar, as a user opens a chat."""
    from PySide6.QtCore import Qt

    lst = window.sidebar.list
    index = window.sidebar.index(conversation_id)
    lst.scrollTo(index)
    qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=lst.visualRect(index).center())


def streamed_text(window: MainWindow) -> str:
    """What the newest message on screen shows (the answer being streamed, while one is)."""
    ids = window.chat_view.message_ids()
    w = window.chat_view.message_widget(ids[-1]) if ids else None
    return w.body.text if w is not None and w.view.streaming else ""


def shown_text(window: MainWindow, message_id: str) -> str:
    w = window.chat_view.message_widget(message_id)
    assert w is not None, "message not on screen"
    return w.body.text


def wait_for(cond: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    from PySide6.QtWidgets import QApplication

    end = time.monotonic() + timeout_s
    while not cond() and time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.005)
    return cond()
