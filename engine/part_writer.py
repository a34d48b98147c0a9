"""Appending a download's body to its `.part` file.

Every piece is written the moment it arrives (what one socket read brought, ≤ 1 MiB, one call each:
the copy into the page cache is the cost, not the call), so a stall, a dropped line or a killed process
loses nothing received.
The written pieces are handed to the hasher in batches (engine/file_hash.py `BackgroundHasher`), so
the sha256 runs on another core instead of between two network reads.
"""

from __future__ import annotations

import errno
from typing import BinaryIO

from engine.file_hash import BackgroundHasher
from engine.progress import human
from engine.types import DownloadError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class PartWriter:
    """Writes pieces to `f` (opened for appending, holding `have` bytes) up to `size` bytes in all.
    `take()` queues what was written since its last call for hashing."""

    def __init__(self, f: BinaryIO, hasher: BackgroundHasher, have: int, size: int, name: str) -> None:
        self.f, self.hasher, self.have, self.size, self.name = f, hasher, have, size, name
        self.pending = 0  # bytes written and not yet queued for hashing
        self._written: list[memoryview] = []
        self._received = 0

    def append(self, piece: bytes) -> None:
        """Write `piece`, cut at `size` (a server sending more is ignored). A full disk raises
        `DownloadError` with what to do; whatever was written stays accounted for."""
        self._received += len(piece)
        view = memoryview(piece)[: self.size - self.have]
        while view:
            try:
                n = self.f.write(view) or 0
            except OSError as exc:
                if exc.errno in DISK_FULL:
                    raise DownloadError(
                        f"The disk filled up while downloading {self.name}. Free some space and try again: the "
                        f"{human(self.have)} already downloaded are kept and the download will continue from "
                        "there.", repr(exc)) from exc
                raise
            self._written.append(view[:n])
            self.pending += n
            self.have += n
            view = view[n:]

    def take(self) -> tuple[int, int]:
        """Queue the pieces written since the last call for hashing; (bytes received, bytes written)."""
        received, written = self._received, self.pending
        if self._written:
            self.hasher.update_many(self._written)
        self._written, self.pending, self._received = [], 0, 0
        return received, written
