"""Store failures turned into sentences for the user, naming the real cause: a full disk, a read-only
disk or missing permission, another program holding the database, or a disk error."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from app.core.store_types import StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")

TEXT_KEPT = "Your text is still here."
_WRITE_CODES = (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR)
_NEARLY_FULL = 1024 * 1024  # bytes free below which a failed write is blamed on a full disk


def errcode(exc: sqlite3.Error) -> int:
    """The primary SQLite result code of an error (0 when it carries none)."""
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF  # primary code of an extended one


def _disk_cause(exc: sqlite3.Error, path: Path) -> str:
    """What really stopped a write: "full", "readonly", "busy" or "" — SQLite reports a full disk
    while it extends its WAL or shared-memory file as a generic I/O error, so the folder is asked too."""
    code = errcode(exc)
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return "busy"
    if code == sqlite3.SQLITE_FULL:
        return "full"
    if code not in _WRITE_CODES:
        return ""
    folder = path.parent
    with contextlib.suppress(OSError):
        if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            return "readonly"
        if shutil.disk_usage(folder).free < _NEARLY_FULL:
            return "full"
    return "readonly" if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM) else ""


def as_store_error(exc: sqlite3.Error, path: Path, action: str, kept: str = "") -> StoreError:
    """A sentence for the user saying what failed, why, and what to do; `kept` is appended where a
    retry can help (e.g. TEXT_KEPT when the caller still holds the text it tried to save)."""
    cause = _disk_cause(exc, path)
    kept = f" {kept}" if kept else ""
    if cause == "full":
        message = f"The disk is full, so TinyChat could not {action}. Free some space and try again.{kept}"
    elif cause == "readonly":
        message = (f"TinyChat could not {action} because it cannot write to {path} (read-only disk or "
                   f"missing permission). Fix that and try again.{kept}")
    elif cause == "busy":
        message = (f"TinyChat could not {action} because another program is using {path}. "
                   "Close other copies of TinyChat and try again.")
    elif errcode(exc) in _WRITE_CODES:
        message = f"TinyChat could not {action} because of a disk error on {path}. Check the disk and try again.{kept}"
    else:
        message = f"TinyChat could not {action} ({exc}). Try again.{kept}"
    log.error("Store failure while trying to %s on %s: %r (code %s)", action, path, exc, errcode(exc))
    return StoreError(message, detail=repr(exc), cause=cause)


def os_cause(exc: OSError) -> str:
    """The cause of a failed file operation, in StoreError.cause terms."""
    if exc.errno == errno.ENOSPC:
        return "full"
    return "readonly" if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else ""


def read_or_tell(read: Callable[[], T], tell: Callable[[str], object]) -> T | None:
    """`read()`'s result, or None after handing a failing store's sentence to `tell` (a notice)."""
    try:
        return read()
    except StoreError as e:
        tell(e.message)
        return None


def write_or_tell(write: Callable[[], object], tell: Callable[[str], object]) -> bool:
    """Run `write()`; False after handing a failing store's sentence to `tell` (a notice)."""
    try:
        write()
    except StoreError as e:
        tell(e.message)
        return False
    return True
