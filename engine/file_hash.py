"""Digests of model files: reading a file in chunks into a digest (and optionally a copy), the one loop
behind resuming a download, copying an imported model and re-verifying an installed one; and a hasher
that runs on a thread of its own, so a download's sha256 does not slow the transfer.

Hub files are identified by sha256 (LFS files) or by their git blob id, which is
sha1("blob <size>\\0" + content); `new_hasher` starts either.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

DigestKind = Literal["sha256", "git-sha1", "none"]
CHUNK = 1 << 20  # cancel is checked once per chunk


def new_hasher(kind: DigestKind, size: int) -> hashlib._Hash:
    """A fresh hasher for a file of `size` bytes whose digest is of `kind` ("none" hashes as sha256)."""
    if kind != "git-sha1":
        return hashlib.sha256()
    h = hashlib.sha1(usedforsecurity=False)
    h.update(b"blob %d\0" % size)
    return h


class Hasher(Protocol):
    """What `stream_file` feeds: a `hashlib` object or a `BackgroundHasher`."""

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


class BackgroundHasher:
    """Feeds `hasher` on a thread of its own. hashlib releases the GIL while it hashes a block, so on a
    second core the digest costs the receiving thread nothing. At most `depth` batches wait (memory stays
    flat: the receiver blocks when hashing falls behind). Data must not change once queued (bytes, or
    views of bytes). `close()` ends the thread; `hexdigest()` waits for what is queued."""

    def __init__(self, hasher: hashlib._Hash, depth: int = 8) -> None:
        self._hasher = hasher
        self._queue: queue.Queue[Sequence[bytes | memoryview] | None] = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._run, name="download-hasher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            try:
                if batch is None:
                    return
                for data in batch:
                    self._hasher.update(data)
            finally:
                self._queue.task_done()

    def update(self, data: bytes | memoryview, /) -> None:
        """Queue `data` for hashing (waits while `depth` batches are already queued)."""
        self.update_many((data,))

    def update_many(self, batch: Sequence[bytes | memoryview]) -> None:
        """Queue the pieces of `batch`, in order, as one item (one hand-over for many network reads)."""
        if not self._thread.is_alive():
            raise RuntimeError("hasher closed")
        self._queue.put(batch)

    def hexdigest(self) -> str:
        """The digest of everything queued so far (waits for it to be hashed); more may follow."""
        self._queue.join()
        return self._hasher.hexdigest()

    def close(self) -> None:
        """Stop the thread (after the queued blocks). Idempotent."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


def stream_file(
    path: Path,
    hasher: Hasher,
    *,
    check_cancel: Callable[[], None],
    on_block: Callable[[int], None] | None = None,
    copy_to: BinaryIO | None = None,
    chunk_size: int = CHUNK,
) -> str:
    """Feed `path` into `hasher` (and write it to `copy_to`), calling `check_cancel` before each chunk
    (it raises to stop) and `on_block(n)` after it; returns the hex digest of everything fed so far."""
    with Path(path).open("rb") as f:
        while True:
            check_cancel()
            block = f.read(chunk_size)
            if not block:
                break
            hasher.update(block)
            if copy_to is not None:
                copy_to.write(block)
            if on_block is not None:
                on_block(len(block))
    return hasher.hexdigest()
