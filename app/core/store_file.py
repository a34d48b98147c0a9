"""The store's SQLite file: opening it safely, and SQLite failures as sentences for the user.

Opening sets the connection up (WAL, `synchronous=FULL`, foreign keys), checks the file's integrity and
migrates its schema. A damaged file is moved aside with its WAL and a fresh one created, so the app still
starts; every other failure becomes a `StoreError` that says what to do next.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from app.core import store_schema
from app.core.store_types import StoreError

log = logging.getLogger(__name__)

_WRITE_CODES = (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR)
_CORRUPT_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _errcode(exc: sqlite3.Error) -> int:
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF  # primary code of an extended one


def as_store_error(exc: sqlite3.Error, path: Path, action: str, writing: bool = True) -> StoreError:
    """A sentence for the user saying what failed and what to do; `writing`: the caller still holds
    the text it tried to save, so the sentence can promise it is not lost."""
    code = _errcode(exc)
    kept = " Your text is still here." if writing else ""
    if code == sqlite3.SQLITE_FULL:
        message = f"The disk is full, so TinyChat could not {action}. Free some space and try again.{kept}"
    elif code in _WRITE_CODES:
        message = (f"TinyChat could not {action} because it cannot write to {path} (read-only disk, "
                   f"missing permission or a disk error). Fix that and try again.{kept}")
    elif code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        message = (f"TinyChat could not {action} because another program is using {path}. "
                   "Close other copies of TinyChat and try again.")
    else:
        message = f"TinyChat could not {action} ({exc}). Try again.{kept}"
    log.error("Store failure while trying to %s on %s: %r (code %s)", action, path, exc, code)
    return StoreError(message, detail=repr(exc))


def open_database(path: Path) -> tuple[sqlite3.Connection, str | None]:
    """Open (or create) the database. A damaged one is moved aside and a fresh one created; the
    returned notice then tells the user where the old file is. Other failures raise StoreError."""
    try:
        return _connect(path), None
    except store_schema.NewerSchemaError as exc:
        raise StoreError(
            f"Your conversations at {path} were saved by a newer version of TinyChat. "
            "Please update TinyChat to open them.", detail=str(exc)) from exc
    except sqlite3.Error as exc:
        if _errcode(exc) not in _CORRUPT_CODES:
            raise as_store_error(exc, path, "open your conversations", writing=False) from exc
        log.error("Database %s is damaged: %r", path, exc)
    except OSError as exc:  # the folder itself cannot be created
        raise StoreError(f"TinyChat cannot create its folder {path.parent} ({exc.strerror}). "
                         "Check the disk and permissions, then start TinyChat again.",
                         detail=repr(exc)) from exc
    try:
        moved = _move_aside(path)
        conn = _connect(path)
    except OSError as exc:
        raise StoreError(f"Your conversation database at {path} is damaged and could not be moved "
                         f"aside ({exc.strerror}). Move it away by hand, then start TinyChat again.",
                         detail=repr(exc)) from exc
    except sqlite3.Error as exc:
        raise as_store_error(exc, path, "create a new conversation database", writing=False) from exc
    return conn, (f"Your conversation database was damaged and could not be opened. It was moved to "
                  f"{moved} and TinyChat started a new one.")


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)  # the store issues BEGIN/COMMIT itself
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            err = sqlite3.DatabaseError("quick_check failed: " + "; ".join(problems[:5]))
            err.sqlite_errorcode = sqlite3.SQLITE_CORRUPT  # type: ignore[attr-defined]
            raise err
        store_schema.migrate(conn, backup_to=path)
    except BaseException:
        conn.close()
        raise
    return conn


def _move_aside(path: Path) -> Path:
    """Rename a damaged database (and its WAL/SHM, which belong to it) to `<name>.corrupt-<time>`."""
    target = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.replace(target.with_name(target.name + suffix))
    path.replace(target)
    log.error("Moved the damaged database %s to %s", path, target)
    return target
