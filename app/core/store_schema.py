"""The conversation database's schema, as ordered migrations keyed by `PRAGMA user_version`.

Each migration moves the schema from version N-1 to N inside one transaction, so a crash mid-upgrade
leaves the previous version intact. Never edit a released migration: add a new one, and a test that
upgrades a database built by the previous version's real schema with data in it.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)

# Version 1: conversations and the message tree.
_V1 = """
CREATE TABLE conversations (
    id              TEXT PRIMARY KEY,
    title           TEXT NOT NULL DEFAULT '',
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    pinned          INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1)),
    model_id        TEXT,
    quant           TEXT,
    chat_format     TEXT,
    system_prompt   TEXT NOT NULL DEFAULT '',
    sampling        TEXT,             -- JSON object of app.core.settings.Sampling, or NULL
    current_leaf_id TEXT,             -- the message the conversation shows last
    trashed_at      REAL              -- set while in the trash (soft delete, for Undo)
);
CREATE INDEX conversations_listing ON conversations (trashed_at, pinned, updated_at);

-- seq is the rowid alias: stable across VACUUM, so the search index can point at it.
CREATE TABLE messages (
    seq               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    conversation_id   TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    parent_id         TEXT REFERENCES messages (id),
    role              TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content           TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL DEFAULT 'complete' CHECK (status IN ('complete', 'partial', 'error')),
    created_at        REAL NOT NULL,
    model_id          TEXT,
    quant             TEXT,
    chat_format       TEXT,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    reused_tokens     INTEGER,
    ttft_s            REAL,
    tokens_per_s      REAL,
    error             TEXT,
    token_ids         BLOB             -- little-endian int32 array of the ids the engine generated
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, created_at);
CREATE INDEX messages_by_parent ON messages (parent_id);
"""

# Version 2: full-text search over message content, kept in step by triggers, filled from existing rows.
_V2 = """
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    content, content = 'messages', content_rowid = 'seq', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (new.seq, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.seq, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.seq, old.content);
    INSERT INTO messages_fts (rowid, content) VALUES (new.seq, new.content);
END;
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2)
SCHEMA_VERSION = len(MIGRATIONS)


class NewerSchemaError(Exception):
    """The database was written by a newer TinyChat than this one."""

    def __init__(self, found: int) -> None:
        super().__init__(f"database schema version {found} is newer than {SCHEMA_VERSION}")
        self.found = found


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION, backup_to: Path | None = None) -> int:
    """Apply the migrations the database lacks, up to `target`; returns the version it started from.

    `conn` must be in autocommit mode (isolation_level=None). If the database already holds data and
    `backup_to` is given, a copy of the old version is written there first, so an upgrade can never
    cost the user a conversation.
    """
    current = user_version(conn)
    if current > SCHEMA_VERSION:
        raise NewerSchemaError(current)
    if current >= target:
        return current
    if current > 0 and backup_to is not None:
        backup = backup_to.with_name(f"{backup_to.name}.before-v{target}.bak")
        dest = sqlite3.connect(backup)
        try:
            conn.backup(dest)
        finally:
            dest.close()
        log.info("Backed up schema version %d database to %s before upgrading", current, backup)
    for version in range(current + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[version - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("Database schema upgraded to version %d", version)
    return current


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in migration: {pending.strip()[:60]}")
    return statements
