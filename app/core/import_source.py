"""Reading the file a user asked to import: a regular file only, never more than the size limit, and
never waiting — a device, a named pipe or a folder is refused before a byte is read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from app.core.store_types import ImportRejected

_CHUNK = 1024 * 1024
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a disk device"), (stat.S_ISSOCK, "a socket"))


class UnreadableFile(ImportRejected):
    """The file could not be opened or read (missing, no permission, disk error)."""


def read_import_file(path: Path, limit: int) -> bytes:
    """The bytes of `path` (symlinks followed) if it is a regular file of at most `limit` bytes.
    Raises ImportRejected for anything else, UnreadableFile when the system refuses to read it."""
    try:
        _check(os.stat(path), path, limit)  # before opening: opening a device or pipe can itself block
        # O_NONBLOCK: if the path was swapped for a pipe since the check, open returns at once.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
                     | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise UnreadableFile(f"Could not read {path}: {exc.strerror or exc}.", detail=repr(exc)) from exc
    try:
        _check(os.fstat(fd), path, limit)  # the file actually opened
        chunks: list[bytes] = []
        total = 0
        while total <= limit:  # a file that grows while read is still cut at the limit
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise UnreadableFile(f"Could not read {path}: {exc.strerror or exc}.", detail=repr(exc)) from exc
    finally:
        os.close(fd)
    if total > limit:
        raise _too_big(path, limit)
    return b"".join(chunks)


def _check(st: os.stat_result, path: Path, limit: int) -> None:
    for test, kind in _KINDS:
        if test(st.st_mode):
            raise ImportRejected(f"{path} is {kind}, not a file; choose a JSON file written by "
                                 "TinyChat's export.")
    if not stat.S_ISREG(st.st_mode):
        raise ImportRejected(f"{path} is not a regular file; choose a JSON file written by TinyChat's export.")
    if st.st_size > limit:
        raise _too_big(path, limit)


def _too_big(path: Path, limit: int) -> ImportRejected:
    return ImportRejected(f"{path} is larger than {limit // 2**20} MB; TinyChat does not import files that big.")
