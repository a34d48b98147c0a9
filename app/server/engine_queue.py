"""One engine thread for a headless server: requests run on it one at a time, in the order they came.

The engine is not thread-safe (a `llama_cpp.Llama` must be used from one thread), so every job — a
callable that receives the engine — runs on this thread. The window has its own engine thread
(app.background.engine_worker) and gives the server a `submit` of the same shape instead.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from engine.backend import Engine

log = logging.getLogger(__name__)

Job = Callable[[Engine | None], None]  # None: no model is loaded
Submit = Callable[[Job], None]


class EngineQueue:
    """Owns a loaded engine and runs submitted jobs on its own thread, first come, first served."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="engine", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue `job`; it runs after every job submitted before it."""
        self._jobs.put(job)

    def close(self, timeout: float = 10.0) -> None:
        """Finish the queued jobs, unload the engine and join the thread."""
        self._jobs.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job(self.engine)
            except Exception:  # one failed request must not stop the server
                log.exception("a server job failed")
        try:
            self.engine.unload()
        except Exception:
            log.exception("unload failed")
