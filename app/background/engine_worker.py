"""The engine on its own thread.

`EngineWorker` is a QObject moved to a QThread; it alone creates and touches the engine (a llama.cpp
`Llama` is not thread-safe). The GUI talks to it only through queued signals, and stops a generation by
setting a `threading.Event` directly — a queued "stop" would only arrive after the answer had finished.
`EngineThread` is the GUI-side handle: start, requests, cancel, and the one correct shutdown order
(cancel → quit → wait).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.backend import Engine
from engine.context import fit_prompt
from engine.select import create_engine
from engine.types import (
    ContextOverflowError,
    EngineError,
    GenerationParams,
    GenerationStats,
    LoadOptions,
    LoadReport,
    Message,
    ModelInfo,
)

log = logging.getLogger(__name__)
SHUTDOWN_WAIT_MS = 10_000


@dataclass(frozen=True)
class GenerationRequest:
    """One answer to generate; `cancel` is set by the GUI thread to stop it."""

    request_id: int
    messages: tuple[Message, ...]
    params: GenerationParams
    cancel: threading.Event


@dataclass(frozen=True)
class GenerationResult:
    """How a generation ended. `error` is a sentence for the user when finish_reason is "error"."""

    request_id: int
    finish_reason: str
    stats: GenerationStats | None
    error: str | None = None


@dataclass(frozen=True)
class ContextUsage:
    """What the next prompt would take: tokens, of `n_ctx`, and the request indices that do not fit."""

    request_id: int
    tokens: int
    n_ctx: int
    forgotten: tuple[int, ...]
    overflow: str | None = None  # the newest message alone does not fit: this sentence says so


@dataclass(frozen=True)
class LoadedModel:
    """A model the worker loaded, and what the load reported."""

    model: ModelInfo
    engine_name: str
    report: LoadReport


class EngineWorker(QObject):
    """Lives on the engine thread. Its slots run there; its signals reach GUI-thread @Slots queued."""

    loadStarted = Signal(object)  # ModelInfo
    loaded = Signal(object)  # LoadedModel
    loadFailed = Signal(str)  # a sentence for the user
    chunk = Signal(int, str)  # request id, text delta (whole characters)
    finished = Signal(object)  # GenerationResult
    usage = Signal(object)  # ContextUsage

    # Requests, emitted from the GUI thread; the receiving slots run on the worker's thread.
    _load_requested = Signal(object, object)
    _generate_requested = Signal(object)
    _count_requested = Signal(int, object, int)
    _job_requested = Signal(object)  # a callable run with the engine (the local API server's requests)
    _shutdown_requested = Signal()

    def __init__(self, engine_factory: Callable[[], Engine]) -> None:
        super().__init__()
        self._factory = engine_factory
        self._engine: Engine | None = None
        self._n_ctx = 0
        self._load_requested.connect(self._load)
        self._generate_requested.connect(self._generate)
        self._count_requested.connect(self._count)
        self._job_requested.connect(self._run_job)
        self._shutdown_requested.connect(self._shutdown)

    @Slot(object, object)
    def _load(self, model: ModelInfo, options: LoadOptions) -> None:
        self.loadStarted.emit(model)
        try:
            if self._engine is not None and self._engine.name != model.engine:
                # A model for the other backend (the engine choice changed in Settings): switch engines.
                log.info("switching engine %s -> %s", self._engine.name, model.engine)
                self._engine.unload()
                self._engine = create_engine(model.engine)
            if self._engine is None:
                self._engine = self._factory()
                if self._engine.name != model.engine:
                    self._engine = create_engine(model.engine)
            report = self._engine.load(model, options)
        except EngineError as e:
            log.warning("model load failed: %s (%s)", e.message, e.detail)
            self._n_ctx = 0
            self.loadFailed.emit(e.message)
            return
        except Exception:  # a bug must not kill the thread; the user gets a sentence, the log the trace
            log.exception("unexpected error while loading %s", model.path)
            self._n_ctx = 0
            self.loadFailed.emit("The model could not be loaded because of an unexpected error. "
                                 "Details are in the log file.")
            return
        self._n_ctx = report.n_ctx
        self.loaded.emit(LoadedModel(model, self._engine.name, report))

    @Slot(object)
    def _generate(self, req: GenerationRequest) -> None:
        if self._engine is None or not self._n_ctx:
            self.finished.emit(GenerationResult(req.request_id, "error", None,
                                                "No model is loaded. Choose a model first."))
            return
        result = GenerationResult(req.request_id, "error", None, "The answer ended unexpectedly.")
        try:
            for c in self._engine.generate(req.messages, req.params, req.cancel):
                if c.text:
                    self.chunk.emit(req.request_id, c.text)
                if c.finish_reason is not None:
                    result = GenerationResult(req.request_id, c.finish_reason, c.stats, c.error)
        except Exception:
            log.exception("generation raised")
            result = GenerationResult(req.request_id, "error", None,
                                      "The model stopped with an unexpected error. Try again; details are in "
                                      "the log file.")
        self.finished.emit(result)

    @Slot(int, object, int)
    def _count(self, request_id: int, messages: tuple[Message, ...], max_tokens: int) -> None:
        if self._engine is None or not self._n_ctx or not messages:
            return
        try:
            fit, _ = fit_prompt(messages, self._engine.count_tokens, self._n_ctx, max_tokens)
            usage = ContextUsage(request_id, fit.tokens, self._n_ctx, fit.forgotten)
        except ContextOverflowError as e:
            usage = ContextUsage(request_id, self._engine.count_tokens(messages), self._n_ctx, (), e.message)
        except Exception:
            log.exception("token count failed")
            return
        self.usage.emit(usage)

    @Slot(object)
    def _run_job(self, job: Callable[[Engine | None], None]) -> None:
        try:
            job(self._engine if self._n_ctx else None)
        except Exception:
            log.exception("an engine job failed")

    @Slot()
    def _shutdown(self) -> None:
        if self._engine is not None:
            try:
                self._engine.unload()
            except Exception:
                log.exception("unload failed")
            self._engine = None
        thread = self.thread()
        if thread is not None:
            thread.quit()


class EngineThread:
    """GUI-side owner of the worker thread. Every method is called on the GUI thread."""

    def __init__(self, engine_factory: Callable[[], Engine]) -> None:
        self.thread = QThread()
        self.thread.setObjectName("engine")
        self.worker = EngineWorker(engine_factory)
        self.worker.moveToThread(self.thread)
        self.thread.finished.connect(self.worker.deleteLater)
        self._cancel: threading.Event | None = None
        self._next_id = 0
        self._running = False

    def start(self) -> None:
        self.thread.start()
        self._running = True

    def load(self, model: ModelInfo, options: LoadOptions) -> None:
        if self._running:
            self.worker._load_requested.emit(model, options)

    def generate(self, messages: tuple[Message, ...], params: GenerationParams) -> int:
        """Queue a generation; returns its request id (chunks and the result carry it)."""
        self._next_id += 1
        self._cancel = threading.Event()
        if not self._running:  # shut down: nothing runs any more
            return self._next_id
        self.worker._generate_requested.emit(GenerationRequest(self._next_id, messages, params, self._cancel))
        return self._next_id

    def count(self, messages: tuple[Message, ...], max_tokens: int) -> int:
        """Ask for the context usage of `messages`; the answer comes as `worker.usage`."""
        self._next_id += 1
        if self._running:
            self.worker._count_requested.emit(self._next_id, messages, max_tokens)
        return self._next_id

    def submit(self, job: Callable[[Engine | None], None]) -> None:
        """Run `job(engine)` on the engine thread after everything queued before it (None: no model is
        loaded). Callable from any thread: the local API server hands its requests in this way."""
        if self._running:
            self.worker._job_requested.emit(job)
        else:
            job(None)

    def cancel(self) -> None:
        """Stop the current generation now: the engine checks this Event between tokens and inside
        prompt processing, so no queued signal has to wait for the answer to end."""
        if self._cancel is not None:
            self._cancel.set()

    def shutdown(self) -> bool:
        """Cancel, unload on the worker thread, quit its loop and join it. True if the thread ended."""
        if not self._running:
            return True
        self._running = False
        self.cancel()
        self.worker._shutdown_requested.emit()  # runs after the (cancelled) generation returns
        ended = self.thread.wait(SHUTDOWN_WAIT_MS)
        if not ended:
            log.error("the engine thread did not stop within %d ms", SHUTDOWN_WAIT_MS)
        return ended
