"""The store's SQLite file: opening it safely, read-write or read-only.

Opening sets the connection up (WAL, `synchronous=FULL`, foreign keys), checks the file's integrity and
migrates its schema. The integrity check reads every page (0.7 s for 200k messages), so it runs only when
the file is not exactly as TinyChat left it at a clean close: after a crash, a power cut, or another tool
writing to it (a `<name>.clean` record next to the file holds its size, inode and modification time).
A damaged file is moved aside with its WAL and a fresh one created, so the app still starts; every
other failure becomes a `StoreError` that says what to do next (`store_errors`). When the disk refuses
writes, the file can still be opened read-only so the user can read and export.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import NamedTuple

from app.core import store_schema
from app.core.store_errors import as_store_error, errcode, os_cause
from app.core.store_types import StoreError

log = logging.getLogger(__name__)

_CORRUPT_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _newer(path: Path, detail: str) -> StoreError:
    return StoreError(f"Your conversations at {path} were saved by a newer version of TinyChat. "
                      "Please update TinyChat to open them.", detail=detail)


class Opened(NamedTuple):
    """An opened database: the connection, a notice for the user (a damaged file was moved aside), and
    whether the whole file's integrity was checked."""

    conn: sqlite3.Connection
    notice: str | None
    checked: bool


def open_database(path: Path) -> Opened:
    """Open (or create) the database. A damaged one is moved aside and a fresh one created; the
    returned notice then tells the user where the old file is. Other failures raise StoreError."""
    check = not _closed_cleanly(path)
    try:
        return Opened(_connect(path, check), None, check)
    except store_schema.NewerSchemaError as exc:
        raise _newer(path, str(exc)) from exc
    except sqlite3.Error as exc:
        if errcode(exc) not in _CORRUPT_CODES:
            raise as_store_error(exc, path, "open your conversations") from exc
        log.error("Database %s is damaged: %r", path, exc)
    except OSError as exc:  # the folder itself cannot be created
        raise StoreError(f"TinyChat cannot create its folder {path.parent} ({exc.strerror}). "
                         "Check the disk and permissions, then start TinyChat again.",
                         detail=repr(exc), cause=os_cause(exc)) from exc
    try:
        moved = _move_aside(path)
        conn = _connect(path, check=False)
    except OSError as exc:
        raise StoreError(f"Your conversation database at {path} is damaged and could not be moved "
                         f"aside ({exc.strerror}). Move it away by hand, then start TinyChat again.",
                         detail=repr(exc)) from exc
    except sqlite3.Error as exc:
        raise as_store_error(exc, path, "create a new conversation database") from exc
    return Opened(conn, f"Your conversation database was damaged and could not be opened. It was moved to "
                  f"{moved} and TinyChat started a new one.", True)


def open_read_only_database(path: Path) -> sqlite3.Connection:
    """A connection that reads `path` and refuses every write, for a read-only or full disk; a
    missing database opens as an empty one in memory. Failures raise StoreError."""
    if not path.is_file():
        conn = sqlite3.connect(":memory:", isolation_level=None)
        _configure(conn)
        store_schema.migrate(conn, backup_to=None)
        conn.execute("PRAGMA query_only = 1")  # nothing may look saved that is not
        return conn
    error: sqlite3.Error | None = None
    # mode=ro needs SQLite's side files, which a read-only folder may lack; immutable does not.
    for query in ("mode=ro", "immutable=1"):
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?{query}", uri=True, isolation_level=None)
        except sqlite3.Error as exc:
            error = exc
            continue
        try:
            _configure(conn)
            conn.execute("PRAGMA query_only = 1")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute("SELECT count(*) FROM conversations").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            error = exc
            continue
        if version > store_schema.SCHEMA_VERSION:
            conn.close()
            raise _newer(path, f"user_version {version}")
        return conn
    assert error is not None
    raise as_store_error(error, path, "open your conversations")


def _configure(conn: sqlite3.Connection) -> None:
    conn.row_factory = sqlite3.Row
    # Text another tool stored as invalid UTF-8 is read with U+FFFD instead of failing every query.
    conn.text_factory = _lenient_text


def _lenient_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _connect(path: Path, check: bool) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)  # the store issues BEGIN/COMMIT itself
    try:
        _configure(conn)
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        problems = [row[0] for row in conn.execute("PRAGMA quick_check")] if check else ["ok"]
        if problems != ["ok"]:
            err = sqlite3.DatabaseError("quick_check failed: " + "; ".join(problems[:5]))
            err.sqlite_errorcode = sqlite3.SQLITE_CORRUPT  # type: ignore[attr-defined]
            raise err
        store_schema.migrate(conn, backup_to=path)
    except BaseException:
        conn.close()
        raise
    return conn


def _clean_record(path: Path) -> Path:
    return path.with_name(path.name + ".clean")


def _identity(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "inode": st.st_ino, "mtime_ns": st.st_mtime_ns}


def _closed_cleanly(path: Path) -> bool:
    """Whether `path` is exactly the file TinyChat closed cleanly last time. The record is used up
    either way, so a crash during this session means a full check at the next start."""
    record = _clean_record(path)
    try:
        saved = json.loads(record.read_text(encoding="utf-8"))
        record.unlink()
        wal = path.with_name(path.name + "-wal")
        return not (wal.exists() and wal.stat().st_size) and saved == _identity(path)
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            record.unlink()
        return False


def mark_closed_cleanly(path: Path) -> None:
    """Record that TinyChat closed `path` with everything written (its WAL checkpointed and gone), so the
    next start may skip the integrity check. Failing to record only costs that check."""
    if path.with_name(path.name + "-wal").exists():  # another connection still has it open
        return
    with contextlib.suppress(OSError):
        _clean_record(path).write_text(json.dumps(_identity(path)), encoding="utf-8")


def damaged_copies(path: Path) -> list[Path]:
    """Databases moved aside as damaged from `path`, newest first."""
    found = [p for p in path.parent.glob(f"{path.name}.corrupt-*") if not p.name.endswith(("-wal", "-shm"))]
    return sorted(found, key=lambda p: p.name, reverse=True)


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
