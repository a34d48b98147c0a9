"""The engine on its own thread.

`EngineWorker` holds the engine; its methods run only as tasks of one `TaskThread`, so the engine is
created and touched on that one thread (a llama.cpp `Llama` is not thread-safe) and requests run in the
order they were made. `EngineThread` is the GUI-side handle: it queues loads, answers, token counts and the
local API server's jobs (handed in from the server's thread, queued on to the GUI thread first),
stops an answer by setting its task's `threading.Event` directly (a queued "stop" would only arrive after
the answer had finished), emits everything the engine produced on the GUI thread, and shuts down in the
one correct order (cancel → unload on the engine thread → join → deliver the last results).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

from PySide6.QtCore import QObject, Signal, Slot

from app.background.tasks import Task, TaskThread
from engine.backend import Engine
from engine.context import fit_prompt
from engine.select import create_engine
from engine.state_cache import StateCache
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
T = TypeVar("T")
UNEXPECTED_LOAD_ERROR = ("The model could not be loaded because of an unexpected error. "
                         "Details are in the log file.")
UNEXPECTED_GENERATION_ERROR = ("The model stopped with an unexpected error. Try again; details are in "
                               "the log file.")


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
class SavedStates:
    """The saved-conversation-state folder: bytes it holds, and its cap."""

    size: int
    cap: int
    error: str = ""  # a sentence for the user when some files could not be removed


@dataclass(frozen=True)
class LoadedModel:
    """A model the worker loaded, and what the load reported."""

    model: ModelInfo
    engine_name: str
    report: LoadReport


class EngineWorker:
    """The engine and the context size it was loaded with. Every method runs on the engine thread."""

    def __init__(self, engine_factory: Callable[[], Engine]) -> None:
        self._factory = engine_factory
        self._engine: Engine | None = None
        self._n_ctx = 0
        self._idle_states: StateCache | None = None  # the folder's cache while no loaded engine holds it

    def load(self, model: ModelInfo, options: LoadOptions) -> LoadedModel:
        """Load `model`, switching backends when it needs the other one. Raises EngineError."""
        self._n_ctx = 0
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
        self._n_ctx = report.n_ctx
        return LoadedModel(model, self._engine.name, report)

    def generate(self, request_id: int, messages: tuple[Message, ...], params: GenerationParams,
                 cancel: threading.Event, on_text: Callable[[str | tuple[int, int]], None]) -> GenerationResult:
        """Stream an answer, handing each text delta to `on_text` (and, before the first, how far a slow
        prompt has been read, as (tokens read, tokens to read)); returns how it ended."""
        if self._engine is None or not self._n_ctx:
            return GenerationResult(request_id, "error", None, "No model is loaded. Choose a model first.")
        result = GenerationResult(request_id, "error", None, "The answer ended unexpectedly.")
        for c in self._engine.generate(messages, params, cancel):
            if c.text:
                on_text(c.text)
            elif c.prompt_read is not None:
                on_text(c.prompt_read)
            if c.finish_reason is not None:
                result = GenerationResult(request_id, c.finish_reason, c.stats, c.error)
        return result

    def count(self, request_id: int, messages: tuple[Message, ...], max_tokens: int) -> ContextUsage | None:
        """What `messages` take of the context with `max_tokens` kept for the answer; None without a model."""
        if self._engine is None or not self._n_ctx or not messages:
            return None
        try:
            fit, _ = fit_prompt(messages, self._engine.count_tokens, self._n_ctx, max_tokens)
            return ContextUsage(request_id, fit.tokens, self._n_ctx, fit.forgotten)
        except ContextOverflowError as e:
            return ContextUsage(request_id, self._engine.count_tokens(messages), self._n_ctx, (), e.message)

    def saved_states(self, folder: Path, cap: int, clear: bool) -> SavedStates:
        """Apply `cap` to the saved states in `folder` (and `clear` them), through the loaded engine's
        cache when it keeps its states there, so its memory and writes follow too."""
        cache = getattr(self.loaded_engine(), "saved_states", None)
        if cache is None or cache.folder != folder:
            if self._idle_states is None or self._idle_states.folder != folder:
                self._idle_states = StateCache(folder, disk_cap=cap)
            cache = self._idle_states
        try:
            if clear:
                cache.clear()
            cache.set_disk_cap(cap)
        except OSError as e:
            log.warning("could not remove saved conversation states in %s: %r", folder, e)
            return SavedStates(cache.size(), cap, "Some saved conversation states could not be removed. "
                               f"Check that you may change the folder {folder}, then try again.")
        return SavedStates(cache.size(), cap)

    def loaded_engine(self) -> Engine | None:
        """The engine when a model is loaded, else None."""
        return self._engine if self._n_ctx else None

    def unload(self) -> None:
        """Free the model (at shutdown)."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.unload()


class EngineThread(QObject):
    """GUI-side handle of the engine thread. Call every method on the GUI thread; every signal is
    emitted on it."""

    loadStarted = Signal(object)  # ModelInfo
    loaded = Signal(object)  # LoadedModel
    loadFailed = Signal(str)  # a sentence for the user
    chunk = Signal(int, str)  # request id, text delta (whole characters)
    promptRead = Signal(int, int, int)  # request id, prompt tokens read, tokens to read (before the first text)
    finished = Signal(object)  # GenerationResult
    usage = Signal(object)  # ContextUsage
    savedStates = Signal(object)  # SavedStates
    # A job from any thread (the API server's); a connection to this GUI-thread object queues it here.
    _job = Signal(object)

    def __init__(self, engine_factory: Callable[[], Engine]) -> None:
        super().__init__()
        self.tasks = TaskThread("engine", self)
        self._worker = EngineWorker(engine_factory)
        self._generation: Task[GenerationResult] | None = None
        self._next_id = 0
        self._job.connect(self._queue_job)

    def start(self) -> None:
        self.tasks.start()

    def load(self, model: ModelInfo, options: LoadOptions) -> None:
        """Queue loading `model`: `loadStarted` when it begins, then `loaded` or `loadFailed`."""
        def run(task: Task[LoadedModel]) -> LoadedModel:
            task.report(model)
            return self._worker.load(model, options)

        self.tasks.submit(run, partial(self._on_loaded, model), self.loadStarted.emit)

    def generate(self, messages: tuple[Message, ...], params: GenerationParams) -> int:
        """Queue a generation; returns its request id (`chunk`s and the `finished` result carry it)."""
        self._next_id += 1
        rid = self._next_id
        self._generation = self.tasks.submit(
            lambda task: self._worker.generate(rid, messages, params, task.cancel_event, task.report),
            partial(self._on_generated, rid), partial(self._on_piece, rid))
        return rid

    def count(self, messages: tuple[Message, ...], max_tokens: int) -> int:
        """Ask for the context usage of `messages`; the answer comes as `usage`."""
        self._next_id += 1
        rid = self._next_id
        self.tasks.submit(lambda _task: self._worker.count(rid, messages, max_tokens), self._on_counted)
        return rid

    def saved_states(self, folder: Path, cap: int, clear: bool = False) -> None:
        """Apply the saved-state folder's cap (and clear it) after the work queued before; the
        folder's size then comes as `savedStates`."""
        self.tasks.submit(lambda _task: self._worker.saved_states(folder, cap, clear), self._on_saved_states)

    def submit(self, job: Callable[[Engine | None], None]) -> None:
        """Run `job(engine)` on the engine thread after everything queued before it (None: no model is
        loaded, or the thread has shut down). Callable from any thread: the local API server hands its
        requests in this way."""
        self._job.emit(job)

    def queue_work(self, work: Callable[[threading.Event, Callable[[object], None]], T],
                   on_done: Callable[[Future[T]], None], on_progress: Callable[[object], None]) -> Task[T]:
        """Run `work(cancel, report)` on the engine thread in turn with answers and loads: long work of the
        engine's own (measuring a level) waits for a running answer instead of competing with it for the
        cores. `report(value)` reaches `on_progress` on the GUI thread; cancel the returned task to stop it."""
        return self.tasks.submit(lambda task: work(task.cancel_event, task.report), on_done, on_progress)

    @Slot(object)
    def _queue_job(self, job: Callable[[Engine | None], None]) -> None:
        task = self.tasks.submit(lambda _task: job(self._worker.loaded_engine()), partial(self._on_job_done, job))
        if task.future.cancelled():  # already shut down: nothing runs, and on_done will not be called
            job(None)

    def cancel(self) -> None:
        """Stop the current generation now: the engine checks this Event between tokens and inside
        prompt processing, so no queued signal has to wait for the answer to end."""
        if self._generation is not None:
            self._generation.cancel()

    def shutdown(self) -> bool:
        """Cancel, unload on the engine thread, join it, and emit what it sent last (the stopped answer's
        final chunks and result). True if the thread ended."""
        return self.tasks.shutdown(cleanup=self._worker.unload)

    # The handlers read a failure with future.exception() rather than re-raising it: a re-raised
    # exception would add this frame to its traceback, and the future and the frame would hold each other.
    def _on_loaded(self, model: ModelInfo, future: Future[LoadedModel]) -> None:
        if future.cancelled():  # shut down before it began
            return
        error = future.exception()
        if isinstance(error, EngineError):
            log.warning("model load failed: %s (%s)", error.message, error.detail)
            self.loadFailed.emit(error.message)
        elif error is not None:  # the user gets a sentence, the log the trace
            log.error("unexpected error while loading %s", model.path, exc_info=error)
            self.loadFailed.emit(UNEXPECTED_LOAD_ERROR)
        else:
            self.loaded.emit(future.result())

    def _on_piece(self, request_id: int, piece: str | tuple[int, int]) -> None:
        if isinstance(piece, str):
            self.chunk.emit(request_id, piece)
        else:
            self.promptRead.emit(request_id, *piece)

    def _on_generated(self, request_id: int, future: Future[GenerationResult]) -> None:
        if future.cancelled():  # stopped before it began
            self.finished.emit(GenerationResult(request_id, "cancelled", None))
        elif (error := future.exception()) is not None:
            log.error("generation raised", exc_info=error)
            self.finished.emit(GenerationResult(request_id, "error", None, UNEXPECTED_GENERATION_ERROR))
        else:
            self.finished.emit(future.result())

    def _on_job_done(self, job: Callable[[Engine | None], None], future: Future[None]) -> None:
        if future.cancelled():  # shut down before it began: the job still answers (with no engine)
            job(None)
        elif (error := future.exception()) is not None:
            log.error("an engine job failed", exc_info=error)

    def _on_saved_states(self, future: Future[SavedStates]) -> None:
        if future.cancelled():
            return
        if (error := future.exception()) is not None:
            log.error("the saved conversation states could not be measured or removed", exc_info=error)
        else:
            self.savedStates.emit(future.result())

    def _on_counted(self, future: Future[ContextUsage | None]) -> None:
        if future.cancelled():
            return
        if (error := future.exception()) is not None:
            log.error("token count failed", exc_info=error)
        elif (usage := future.result()) is not None:
            self.usage.emit(usage)
