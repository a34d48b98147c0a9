"""Reading a file in chunks into a digest (and optionally a copy): the one loop behind resuming a
download, copying an imported model and re-verifying an installed one.

Hub files are identified by sha256 (LFS files) or by their git blob id, which is
sha1("blob <size>\\0" + content); `new_hasher` starts either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Literal

DigestKind = Literal["sha256", "git-sha1", "none"]
CHUNK = 1 << 20  # cancel is checked once per chunk


def new_hasher(kind: DigestKind, size: int) -> hashlib._Hash:
    """A fresh hasher for a file of `size` bytes whose digest is of `kind` ("none" hashes as sha256)."""
    if kind != "git-sha1":
        return hashlib.sha256()
    h = hashlib.sha1(usedforsecurity=False)
    h.update(b"blob %d\0" % size)
    return h


def stream_file(
    path: Path,
    hasher: hashlib._Hash,
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
