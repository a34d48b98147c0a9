"""Background work for the GUI: one thread, tasks run there in order, their answers come back on the GUI thread.

`TaskThread.submit(fn)` queues `fn(task)` to run on the background thread after every task submitted
before it, so an object that only tasks create and use lives on exactly one thread (a llama.cpp `Llama`
is not thread-safe). While it runs, `task.report(value)` hands `value` to `on_progress` and, once it has
ended, `on_done(future)` receives its result or exception; both run on the GUI thread, in the order
they were sent, delivered through queued signals to this GUI-thread object.

Cancel is a `threading.Event` set straight from the GUI thread (`task.cancel()`): a running function
polls it, and a queued "stop" would only arrive after the task had ended. A task cancelled before it
started is skipped and its future comes back cancelled. `shutdown` cancels every task, runs a last
clean-up on the background thread, joins it within a bound and then delivers what is still on its way,
so every task's `on_done` has run when it returns.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

log = logging.getLogger(__name__)
SHUTDOWN_WAIT_MS = 10_000
T = TypeVar("T")


class Task(Generic[T]):
    """One submitted function: its cancel Event, its future, and its way to report progress.

    Once its result is delivered a task lets go of its function, callbacks and owner, so no reference
    cycle through it keeps Qt objects (or, through a traceback, a whole window) alive until the garbage
    collector frees them at some random later moment.
    """

    def __init__(self, owner: TaskThread | None, fn: Callable[[Task[T]], T] | None,
                 on_done: Callable[[Future[T]], None] | None = None,
                 on_progress: Callable[[Any], None] | None = None) -> None:
        self.cancel_event = threading.Event()
        self.future: Future[T] = Future()
        self._owner = owner
        self._fn = fn
        self._on_done = on_done
        self._on_progress = on_progress

    def cancel(self) -> None:
        """Stop the task (GUI thread): skipped if it has not started, else it sees `cancel_event` at once."""
        self.cancel_event.set()
        self.future.cancel()

    def report(self, value: Any) -> None:
        """Called by the task's function on the background thread: `on_progress(value)` runs on the GUI thread."""
        owner = self._owner
        if owner is not None and self._on_progress is not None:
            owner._progressed.emit(self, value)

    def _run(self) -> None:
        """On the background thread: run the function unless it was cancelled first."""
        fn, self._fn = self._fn, None
        if fn is not None and self.future.set_running_or_notify_cancel():
            try:
                self.future.set_result(fn(self))
            except Exception as e:  # a bug must not end the thread: the future carries it to on_done
                if self._on_done is None:
                    log.exception("background task failed")
                self.future.set_exception(e)

    def _sent(self) -> None:
        """On the background thread, after `_run` returned: hand the result to the GUI thread."""
        error = self.future.exception() if self.future.done() and not self.future.cancelled() else None
        _clear_frames(error)
        if self._owner is not None:
            self._owner._finished.emit(self)

    def _delivered(self) -> None:
        """On the GUI thread: call on_done, then let go of everything that could form a cycle."""
        on_done = self._on_done
        self._owner = self._on_done = self._on_progress = None
        if on_done is not None:
            on_done(self.future)


def _clear_frames(error: BaseException | None) -> None:
    """Drop the variables of every frame in `error`'s tracebacks (its causes too): they hold the task and
    its callbacks, and a traceback only needs file and line to be logged."""
    seen: set[int] = set()
    chain = [error]
    while chain:
        e = chain.pop()
        if e is not None and id(e) not in seen:
            seen.add(id(e))
            traceback.clear_frames(e.__traceback__)
            chain += [e.__cause__, e.__context__]


class _Runner(QObject):
    """Lives on the background thread; runs each queued task there, one at a time."""

    run = Signal(object)  # Task, or None to end the thread's event loop

    def __init__(self) -> None:
        super().__init__()
        self.run.connect(self._run)

    @Slot(object)
    def _run(self, task: Task[Any] | None) -> None:
        if task is None:
            QThread.currentThread().quit()
        else:
            task._run()
            task._sent()
            # A failure's traceback reaches this frame (through the frames' callers): let it not hold the task.
            del task


class TaskThread(QObject):
    """GUI-side owner of one background thread. Call every method on the GUI thread."""

    # Emitted on the background thread, received queued by this GUI-thread object.
    _progressed = Signal(object, object)  # Task, value
    _finished = Signal(object)  # Task

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.qthread = QThread()
        self.qthread.setObjectName(name)
        self._runner = _Runner()
        self._runner.moveToThread(self.qthread)
        self.qthread.finished.connect(self._runner.deleteLater)
        self._progressed.connect(self._deliver_progress, Qt.ConnectionType.QueuedConnection)
        self._finished.connect(self._deliver_done, Qt.ConnectionType.QueuedConnection)
        self._pending: list[Task[Any]] = []  # submitted, result not delivered yet
        self._started = False
        self._closed = False

    def start(self) -> None:
        """Start the background thread (`submit` does it when needed)."""
        if not self._started and not self._closed:
            self.qthread.start()
            self._started = True

    def submit(self, fn: Callable[[Task[T]], T], on_done: Callable[[Future[T]], None] | None = None,
               on_progress: Callable[[Any], None] | None = None) -> Task[T]:
        """Queue `fn(task)` behind every task submitted before it. After `shutdown` nothing runs: the task
        comes back cancelled and `on_done` is never called."""
        if self._closed:
            task: Task[T] = Task(None, None)
            task.cancel()
            return task
        task = Task(self, fn, on_done, on_progress)
        self.start()
        self._pending.append(task)
        self._runner.run.emit(task)
        return task

    def cancel_all(self) -> None:
        """Cancel every task that is queued or running."""
        for task in self._pending:
            task.cancel()

    def shutdown(self, cleanup: Callable[[], None] | None = None, wait_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Cancel every task, run `cleanup` on the background thread after them, end the thread and join it
        for at most `wait_ms`; then deliver the results still on their way. True if the thread ended."""
        if self._closed:
            return self.qthread.isFinished() or not self._started
        self._closed = True
        if not self._started:
            return True
        self.cancel_all()
        if cleanup is not None:
            self._runner.run.emit(Task(self, lambda _task: cleanup()))
        self._runner.run.emit(None)
        ended = self.qthread.wait(wait_ms)
        if not ended:
            log.error("the %s thread did not stop within %d ms", self.name, wait_ms)
        QCoreApplication.sendPostedEvents(self, 0)
        return ended

    @Slot(object, object)
    def _deliver_progress(self, task: Task[Any], value: Any) -> None:
        if task._on_progress is not None:
            task._on_progress(value)

    @Slot(object)
    def _deliver_done(self, task: Task[Any]) -> None:
        if task in self._pending:
            self._pending.remove(task)
        task._delivered()
