"""Writes an assistant answer into the store while it streams, so a crash keeps what was shown."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from app.core.store import Store
from app.core.store_types import MessageStatus, StoredMessage, StoreError
from engine.types import GenerationStats

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 0.5


class StreamingWriter:
    """An assistant message written in place: inserted as `partial` when the answer starts,
    rewritten at most every `interval` seconds while text arrives, finalised by `finish`.

    Not thread-safe and starts no threads: call it from the one thread that owns the store.
    The full text always stays in memory (`text`), so a failed write loses nothing:
    `append` never raises (it retries on the next interval and records `error`), and a failed
    `finish` raises StoreError and is repeated by `retry` (see UnsavedAnswers).
    """

    def __init__(self, store: Store, message_id: str, interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.message_id = message_id
        # None: the module's DEFAULT_INTERVAL_S as it is now (the fault-injection harness shortens it)
        self.interval = DEFAULT_INTERVAL_S if interval is None else interval
        self.error: StoreError | None = None  # the last failed write, None once one succeeds
        self._clock = clock
        self._parts: list[str] = []
        self._flushed_len = 0
        self._last_flush = clock()
        self._final: tuple[MessageStatus, dict[str, Any]] | None = None  # what finish asked to write

    @classmethod
    def start(cls, store: Store, conversation_id: str, parent_id: str, interval: float | None = None,
              **meta: Any) -> StreamingWriter:
        """Insert an empty `partial` assistant answer under `parent_id` (committed) and write into it.
        `meta` takes model_id, quant and chat_format. Raises StoreError if the insert fails."""
        msg = store.add_message(conversation_id, parent_id, "assistant", "", status="partial", **meta)
        return cls(store, msg.id, interval)

    @property
    def text(self) -> str:
        """Everything appended so far, written or not."""
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    @property
    def flushed_text(self) -> str:
        """The part of the text known to be on disk."""
        return self.text[: self._flushed_len]

    def append(self, delta: str) -> bool:
        """Add streamed text; writes it if `interval` has passed since the last write.
        Returns True when this call wrote to disk."""
        if delta:
            self._parts.append(delta)
        if self._clock() - self._last_flush < self.interval:
            return False
        return self.flush()

    def flush(self) -> bool:
        """Write the text now if anything is new. Never raises; returns True if it wrote."""
        text = self.text
        if len(text) == self._flushed_len:
            return False
        self._last_flush = self._clock()
        try:
            self.store.update_message(self.message_id, content=text)
        except StoreError as exc:
            self.error = exc
            log.warning("Streaming write failed, will retry: %s", exc.detail)
            return False
        self._flushed_len, self.error = len(text), None
        return True

    def finish(self, status: MessageStatus, stats: GenerationStats | None = None,
               error: str | None = None) -> StoredMessage:
        """Write the whole text with its final status (`complete`, `partial` when stopped, `error`)
        and the generation stats. Raises StoreError on failure; `retry` writes the same again."""
        fields: dict[str, Any] = {"error": error}
        if stats is not None:
            fields.update(prompt_tokens=stats.prompt_tokens, completion_tokens=stats.completion_tokens,
                          reused_tokens=stats.reused_tokens, ttft_s=stats.ttft_s,
                          tokens_per_s=stats.tokens_per_s, token_ids=stats.token_ids or None)
        self._final = (status, fields)
        return self.retry()

    def retry(self) -> StoredMessage:
        """Write the answer as `finish` last asked (or the text so far, if it was not called).
        Raises StoreError while the disk still refuses."""
        status, fields = self._final if self._final is not None else (None, {})
        text = self.text
        try:
            self.store.update_message(self.message_id, content=text, status=status, **fields)
        except StoreError as exc:
            self.error = exc
            raise
        self._flushed_len, self.error = len(text), None
        return self.store.get_message(self.message_id)

    def held(self, stored: StoredMessage) -> StoredMessage:
        """`stored` (this answer's row, possibly behind) with the text and final status in memory."""
        status = self._final[0] if self._final is not None else stored.status
        return replace(stored, content=self.text, status=status)


class UnsavedAnswers:
    """Answers whose last write failed (full or read-only disk), kept in memory and written as soon as
    the disk takes them: the owner calls `retry` on a timer and once more before exit."""

    def __init__(self) -> None:
        self._writers: dict[str, StreamingWriter] = {}

    def __len__(self) -> int:
        return len(self._writers)

    def add(self, writer: StreamingWriter) -> None:
        self._writers[writer.message_id] = writer

    def retry(self) -> list[StoredMessage]:
        """Write every held answer the disk now takes; returns those written."""
        saved = []
        for mid, writer in list(self._writers.items()):
            try:
                saved.append(writer.retry())
            except StoreError as exc:
                log.info("An answer is still not saved: %s", exc.detail)
                continue
            del self._writers[mid]
        return saved

    def overlay(self, message: StoredMessage) -> StoredMessage:
        """`message` with the text and status held in memory, if it is one of the unsaved answers."""
        writer = self._writers.get(message.id)
        return message if writer is None else writer.held(message)
