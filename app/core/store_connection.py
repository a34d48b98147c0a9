"""The store's connection: opening the SQLite file (or falling back to reading it), and running each
write as one transaction whose failure rolls back and becomes a `StoreError` sentence.

A call that returned has its write on disk: the file is opened with `synchronous=FULL` in WAL mode
(`store_file.py`), and every write is its own `BEGIN IMMEDIATE` … `COMMIT`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Self

from app.core.store_errors import as_store_error
from app.core.store_file import mark_closed_cleanly, open_database, open_read_only_database
from app.core.store_types import StoreError


class StoreConnection:
    """One SQLite connection used by one thread, with the write and read helpers the store's
    queries go through. `Store` builds its queries on this."""

    def __init__(self, conn: sqlite3.Connection, path: Path, read_only: bool = False) -> None:
        self._conn = conn
        self.path = path
        self.read_only = read_only  # opened by `open_read_only`: every write raises StoreError
        self.integrity_checked = False  # the whole file was checked on opening (it was not closed cleanly)

    # --- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path) -> tuple[Self, str | None]:
        """Open (or create) the store. A damaged database is moved aside and a fresh one created;
        the returned notice then tells the user where the old file is. Other failures raise StoreError."""
        path = Path(path)
        opened = open_database(path)
        store = cls(opened.conn, path)
        store.integrity_checked = opened.checked
        return store, opened.notice

    @classmethod
    def open_or_read_only(cls, path: Path) -> tuple[Self, str | None]:
        """`open`, or when the disk refuses writes (full, read-only, no permission) `open_read_only`
        with a notice saying that nothing new will be saved. Other failures raise StoreError."""
        try:
            return cls.open(path)
        except StoreError as exc:
            if not exc.cannot_write:
                raise
            store = cls.open_read_only(path)
            reason = "the disk is full" if exc.cause == "full" else "it is read-only or you lack permission"
            return store, (f"TinyChat cannot save to {Path(path).parent}: {reason}. You can read and export "
                           "your conversations, but nothing new is saved until that is fixed and TinyChat "
                           "is started again.")

    @classmethod
    def open_read_only(cls, path: Path) -> Self:
        """Open the store without writing anything, for a read-only or full disk: every read works,
        every write raises StoreError. A missing database opens as an empty store."""
        return cls(open_read_only_database(Path(path)), Path(path), read_only=True)

    def close(self) -> None:
        """Close the database (checkpointing the WAL) and record the clean close, so the next opening
        skips the integrity check. Safe to call twice."""
        try:
            self._conn.close()
        except sqlite3.Error:
            return
        if not self.read_only:
            mark_closed_cleanly(self.path)

    @contextlib.contextmanager
    def _write(self, action: str, kept: str = "") -> Iterator[sqlite3.Connection]:
        """One write transaction; any SQLite failure rolls it back and becomes a StoreError whose
        sentence ends with `kept` when it fails for lack of room, permission or a disk error."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            raise as_store_error(exc, self.path, action, kept) from exc

    def _read(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._conn.execute(sql, tuple(args)).fetchall()
        except sqlite3.Error as exc:
            raise as_store_error(exc, self.path, "read your conversations") from exc

    @contextlib.contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """Every read inside sees the database as it was at the first one, whatever other connections
        write meanwhile: a long export stays consistent while the app keeps saving."""
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
