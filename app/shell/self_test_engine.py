"""The self-test's model check: load a model and generate a few tokens through the GUI's engine worker.

Uses `EngineThread` exactly as the chat window does (the engine on its own thread, its output delivered
on the GUI thread), so a frozen build that packs the engine libraries wrongly, or a CPU that cannot run
them, fails here rather than in the user's first chat.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QThread, QTimer, Slot

from app.background.engine_worker import EngineThread, GenerationResult, LoadedModel
from engine.select import create_engine
from engine.types import EngineName, GenerationParams, LoadOptions, Message, ModelInfo


class SelfTestFailed(Exception):
    """The model could not be loaded or did not answer; the message says how."""


class _Receiver(QObject):
    """GUI-thread end of the worker's signals: collects what arrives and ends the wait."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = QEventLoop()
        self.loaded: LoadedModel | None = None
        self.load_error: str | None = None
        self.result: GenerationResult | None = None
        self.text: list[str] = []
        self.off_gui_thread = False
        self.timed_out = False

    @Slot(object)
    def on_loaded(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.loop.quit()

    @Slot(str)
    def on_load_failed(self, message: str) -> None:
        self.load_error = message
        self.loop.quit()

    @Slot(int, str)
    def on_chunk(self, _request_id: int, text: str) -> None:
        app = QCoreApplication.instance()
        self.off_gui_thread |= app is None or QThread.currentThread() is not app.thread()
        self.text.append(text)

    @Slot(object)
    def on_finished(self, result: GenerationResult) -> None:
        self.result = result
        self.loop.quit()

    def wait(self, timeout_s: float) -> bool:
        """Run a local event loop until a slot ends it (True) or the time runs out (False)."""
        self.timed_out = False
        timer = QTimer(singleShot=True, interval=int(timeout_s * 1000))
        timer.timeout.connect(self._time_out)
        timer.start()
        self.loop.exec()
        timer.stop()
        return not self.timed_out

    @Slot()
    def _time_out(self) -> None:
        self.timed_out = True
        self.loop.quit()


def engine_for(model: Path) -> EngineName:
    """MLX models are folders (safetensors + config); llama.cpp models are single GGUF files."""
    return "mlx" if model.is_dir() else "llama.cpp"


def generate_through_worker(model: Path, prompt: str, max_tokens: int, timeout_s: float) -> str:
    """Load `model` on the engine thread, generate up to `max_tokens` greedily, describe what happened."""
    name = engine_for(model)
    info = ModelInfo(path=model, engine=name, model_id="self-test", label=model.name)
    thread = EngineThread(lambda: create_engine(name))
    rx = _Receiver()
    thread.loaded.connect(rx.on_loaded)
    thread.loadFailed.connect(rx.on_load_failed)
    thread.chunk.connect(rx.on_chunk)
    thread.finished.connect(rx.on_finished)
    thread.start()
    try:
        thread.load(info, LoadOptions(n_ctx=info.n_ctx))
        if not rx.wait(timeout_s):
            raise SelfTestFailed(f"loading {model.name} did not finish within {timeout_s:.0f} s")
        if rx.load_error is not None or rx.loaded is None:
            raise SelfTestFailed(f"{model.name} did not load: {rx.load_error}")
        thread.generate((Message("user", prompt),), GenerationParams(max_tokens=max_tokens, temperature=0.0, seed=0))
        if not rx.wait(timeout_s):
            raise SelfTestFailed(f"no answer within {timeout_s:.0f} s")
    finally:
        if not thread.shutdown():
            raise SelfTestFailed("the engine thread did not stop")
    result = rx.result
    assert result is not None
    if result.finish_reason not in ("stop", "length"):
        raise SelfTestFailed(f"generation ended with '{result.finish_reason}': {result.error}")
    if rx.off_gui_thread:
        raise SelfTestFailed("tokens reached the window off the GUI thread")
    text = "".join(rx.text)
    stats = result.stats
    if stats is None or stats.completion_tokens == 0 or not text:
        raise SelfTestFailed("the model loaded but generated no tokens")
    return (f"{model.name} via {rx.loaded.engine_name}: {stats.completion_tokens} tokens at "
            f"{stats.tokens_per_s:.1f} tokens/s, answer {text!r}")
