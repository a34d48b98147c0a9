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
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

log = logging.getLogger(__name__)
SHUTDOWN_WAIT_MS = 10_000
T = TypeVar("T")


class Task(Generic[T]):
    """One submitted function: its cancel Event, its future, and its way to report progress."""

    def __init__(self, owner: TaskThread, fn: Callable[[Task[T]], T],
                 on_done: Callable[[Future[T]], None] | None,
                 on_progress: Callable[[Any], None] | None) -> None:
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
        if self._on_progress is not None:
            self._owner._progressed.emit(self, value)

    def _run(self) -> None:
        """On the background thread: run the function unless it was cancelled first, then send the result."""
        if self.future.set_running_or_notify_cancel():
            try:
                self.future.set_result(self._fn(self))
            except Exception as e:  # a bug must not end the thread: the future carries it to on_done
                if self._on_done is None:
                    log.exception("background task failed")
                self.future.set_exception(e)
        self._owner._finished.emit(self)


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
        task = Task(self, fn, on_done, on_progress)
        if self._closed:
            task.cancel()
            return task
        self.start()
        self._pending.append(task)
        self._runner.run.emit(task)
        return task

    def pending(self) -> int:
        """How many submitted tasks have not delivered their result yet."""
        return len(self._pending)

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
            self._runner.run.emit(Task(self, lambda _task: cleanup(), None, None))
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
        if task._on_done is not None:
            task._on_done(task.future)
