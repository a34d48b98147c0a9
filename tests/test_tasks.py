"""The background-task helper: order, one thread, answers on the GUI thread, cancel, bounded shutdown."""

from __future__ import annotations

import gc
import threading
import weakref
from concurrent.futures import Future

import pytest
from PySide6.QtCore import QCoreApplication, QThread

from app.background.tasks import Task, TaskThread

WAIT_MS = 10_000


def on_gui_thread() -> bool:
    app = QCoreApplication.instance()
    return app is not None and QThread.currentThread() is app.thread()


@pytest.fixture
def tasks(qtbot):
    t = TaskThread("test")
    yield t
    t.shutdown()


def test_tasks_run_one_at_a_time_in_the_order_submitted_on_one_background_thread(qtbot, tasks):
    ran: list[tuple[int, int]] = []
    done: list[int] = []
    for i in range(6):
        tasks.submit(lambda _t, i=i: ran.append((i, threading.get_ident())), lambda _f, i=i: done.append(i))
    qtbot.waitUntil(lambda: len(done) == 6, timeout=WAIT_MS)
    assert [i for i, _ in ran] == list(range(6))
    threads = {ident for _, ident in ran}
    assert len(threads) == 1 and threads != {threading.get_ident()}
    assert done == list(range(6))


def test_progress_and_the_result_reach_the_gui_thread_in_the_order_sent(qtbot, tasks):
    seen: list[tuple[object, bool]] = []

    def work(task: Task[str]) -> str:
        for step in (1, 2, 3):
            task.report(step)
        return "finished"

    tasks.submit(work, lambda f: seen.append((f.result(), on_gui_thread())),
                 lambda v: seen.append((v, on_gui_thread())))
    qtbot.waitUntil(lambda: len(seen) == 4, timeout=WAIT_MS)
    assert seen == [(1, True), (2, True), (3, True), ("finished", True)]


def test_cancel_reaches_a_running_task_at_once_and_skips_a_queued_one(qtbot, tasks):
    started = threading.Event()
    results: dict[str, Future[str]] = {}
    second_ran = threading.Event()

    def first(task: Task[str]) -> str:
        started.set()
        return "stopped" if task.cancel_event.wait(WAIT_MS / 1000) else "ran to the end"

    running = tasks.submit(first, lambda f: results.setdefault("first", f))
    queued = tasks.submit(lambda _t: second_ran.set(), lambda f: results.setdefault("second", f))
    assert started.wait(WAIT_MS / 1000)
    queued.cancel()
    running.cancel()
    qtbot.waitUntil(lambda: len(results) == 2, timeout=WAIT_MS)
    assert results["first"].result() == "stopped"
    assert results["second"].cancelled() and not second_ran.is_set()


def test_a_failing_task_hands_its_exception_to_on_done_and_the_thread_keeps_working(qtbot, tasks):
    outcomes: list[Future[str]] = []

    def broken(_task: Task[str]) -> str:
        raise ValueError("a bug")

    tasks.submit(broken, outcomes.append)
    tasks.submit(lambda _t: "still here", outcomes.append)
    qtbot.waitUntil(lambda: len(outcomes) == 2, timeout=WAIT_MS)
    with pytest.raises(ValueError, match="a bug"):
        outcomes[0].result()
    assert outcomes[1].result() == "still here"


class Engine:
    """Stands for what a real task's frames and callbacks hold (an engine, a window)."""


def test_a_failed_task_leaves_no_reference_cycle_behind(qtbot, tasks):
    # With the collector off, only plain reference counting can free the engine: any cycle through the
    # future, its traceback or the task's callbacks would keep it (and in the app, whole windows) alive.
    gc.disable()
    try:
        engine = Engine()
        seen: list[type[BaseException] | None] = []

        def broken(_task: Task[None], held: Engine = engine) -> None:
            raise ValueError("a bug")

        task = tasks.submit(broken, lambda f, held=engine: seen.append(type(f.exception())))
        alive = weakref.ref(engine)
        del engine, broken, task
        qtbot.waitUntil(lambda: bool(seen), timeout=WAIT_MS)
        assert seen == [ValueError]
        assert alive() is None
    finally:
        gc.enable()


def test_a_delivered_task_lets_go_of_its_function_and_callbacks(qtbot, tasks):
    # A handle kept after the result (as EngineThread keeps the running answer's, for Stop) must not
    # keep what the callbacks reach alive through a cycle back to its keeper.
    engine = Engine()
    done: list[str] = []
    task = tasks.submit(lambda _t, held=engine: "ok", lambda f, held=engine: done.append(f.result()),
                        lambda _v, held=engine: None)
    alive = weakref.ref(engine)
    del engine
    qtbot.waitUntil(lambda: bool(done), timeout=WAIT_MS)
    assert done == ["ok"] and task.future.result() == "ok"
    assert alive() is None


def test_shutdown_cancels_cleans_up_on_the_thread_and_delivers_every_result_before_it_returns(qtbot):
    tasks = TaskThread("test")
    started = threading.Event()
    worker_thread: list[int] = []
    cleanup_thread: list[int] = []
    delivered: list[object] = []

    def long_job(task: Task[str]) -> str:
        worker_thread.append(threading.get_ident())
        started.set()
        task.cancel_event.wait(WAIT_MS / 1000)
        task.report("last words")
        return "stopped"

    tasks.submit(long_job, lambda f: delivered.append(f.result()), delivered.append)
    never = tasks.submit(lambda _t: "never", lambda f: delivered.append("cancelled" if f.cancelled() else f))
    assert started.wait(WAIT_MS / 1000)

    assert tasks.shutdown(cleanup=lambda: cleanup_thread.append(threading.get_ident()))

    # No event loop ran since: shutdown itself delivered these on the GUI thread, in order.
    assert delivered == ["last words", "stopped", "cancelled"]
    assert never.future.cancelled()
    assert cleanup_thread == worker_thread
    assert tasks.qthread.isFinished()


def test_shutdown_gives_up_after_its_bound_when_a_task_ignores_cancel(qtbot):
    tasks = TaskThread("test")
    release = threading.Event()
    started = threading.Event()

    def stubborn(_task: Task[None]) -> None:
        started.set()
        release.wait(WAIT_MS / 1000)

    tasks.submit(stubborn)
    assert started.wait(WAIT_MS / 1000)
    try:
        assert tasks.shutdown(wait_ms=50) is False
        assert not tasks.qthread.isFinished()
    finally:
        release.set()
        assert tasks.qthread.wait(WAIT_MS)


def test_nothing_runs_after_shutdown(qtbot):
    tasks = TaskThread("test")
    ran = threading.Event()
    tasks.submit(lambda _t: None)
    assert tasks.shutdown()
    late = tasks.submit(lambda _t: ran.set(), lambda _f: ran.set())
    QCoreApplication.processEvents()
    assert late.future.cancelled() and not ran.is_set()
