"""Resuming conversations: the live cache's state is saved after each answer, and before a prompt is
evaluated the saved state that spares the most evaluation is brought back.

The backend supplies a `StateIO` (its cache as bytes and back); `state_cache` keeps the bytes. The
backend's own prefix reuse then trims the restored cache to the part that agrees with the prompt and
evaluates the rest, exactly as it does with the cache it already holds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from engine.state_cache import StateCache, StateKey, agreeing, model_identity
from engine.state_file import StateCancelled
from engine.types import Chunk, LoadOptions

log = logging.getLogger(__name__)

# Restoring copies the whole state (22 KB a token for TinyLlama in F16, ~1 GB/s) while evaluating a
# token costs milliseconds: a state must spare at least this many tokens to be worth it. Shorter
# states are not saved at all.
MIN_GAIN = 32


class StateIO(Protocol):
    """A backend's cache as bytes. If `restore` raises, the backend's cache is usable (as it was, or empty)."""

    def live_ids(self) -> Sequence[int]:
        """The token ids the live cache holds, in order."""
        ...

    def snapshot(self) -> tuple[Sequence[int], bytes]:
        """The live cache's ids and its state as bytes."""
        ...

    def restore(self, ids: np.ndarray, payload: bytes) -> None:
        """Replace the live cache with a snapshot's."""
        ...


class Resumer:
    """Saves and restores one loaded model's states under keys naming the model, build and format."""

    def __init__(self, io: StateIO, model_path: Path, build: str, n_ctx: int, options: LoadOptions,
                 chat_format: Callable[[], str]) -> None:
        self.cache = StateCache(options.state_dir, options.state_memory, options.state_disk_cap)
        self._io = io
        self._model = model_identity(model_path)
        self._build = build
        self._n_ctx = n_ctx
        self._chat_format = chat_format

    def _key(self) -> StateKey:
        return StateKey(self._model, self._build, self._chat_format(), self._n_ctx)

    def before(self, prompt: Sequence[int], cancel: threading.Event) -> None:
        """Restore the saved state that agrees with `prompt` over at least MIN_GAIN more tokens than
        the live cache (the last prompt token is always evaluated), if there is one."""
        want = np.asarray(prompt, dtype=np.int32)
        live = agreeing(np.asarray(self._io.live_ids(), dtype=np.int32), want)
        if cancel.is_set() or live + MIN_GAIN > len(prompt) - 1:
            return
        t0 = time.perf_counter()
        try:
            found = self.cache.best(self._key(), prompt, live + MIN_GAIN - 1, cancel)
        except StateCancelled:
            return
        if found is None or cancel.is_set():
            return
        state, agree = found
        try:
            self._io.restore(state.ids, state.payload)
        except Exception as e:  # the backend starts from an empty cache: slower, still right
            log.warning("could not restore a saved state of %d tokens: %r", len(state.ids), e)
            return
        log.info("restored a saved state of %d tokens (%d agree with the prompt, %.1f MB) in %.3f s",
                 len(state.ids), agree, len(state.payload) / 1e6, time.perf_counter() - t0)

    def live_ids(self) -> Sequence[int]:
        """The token ids the backend's live cache holds."""
        return self._io.live_ids()

    def saving(self, chunks: Iterable[Chunk], prepare: Callable[[Chunk], None] | None = None) -> Iterator[Chunk]:
        """`chunks` of an answer, then (once the caller has the last one) `prepare(last)` and the live cache's
        state is saved, unless the answer failed."""
        for chunk in chunks:
            yield chunk
            if chunk.finish_reason not in (None, "error"):
                if prepare is not None:
                    prepare(chunk)
                self.after()

    def close(self) -> None:
        """Finish writing the states saved so far (at unload)."""
        self.cache.close()

    def after(self) -> None:
        """Save the live cache's state."""
        try:
            ids, payload = self._io.snapshot()
            if len(ids) >= MIN_GAIN:
                self.cache.put(self._key(), ids, payload)
        except Exception as e:  # a state not saved costs time later, never the answer
            log.warning("could not save the conversation state: %r", e)
