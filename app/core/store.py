"""The SQLite conversation store: conversations holding a tree of messages, search, and import.

One `Store` belongs to one thread (the GUI thread or a script). Every write is its own transaction
with `synchronous=FULL` in WAL mode, so whatever a call returned is on disk before the next line
runs, and a crash at any moment leaves the database as of the last finished call.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
import uuid
from collections.abc import Iterable
from typing import Any

from app.core.search_rank import rank
from app.core.store_connection import StoreConnection
from app.core.store_errors import TEXT_KEPT
from app.core.store_rows import (
    MESSAGE_META,
    STATS_FIELDS,
    conversation_from_row,
    conversation_row,
    conversation_values,
    encode_fields,
    insert,
    message_from_row,
    message_row,
)
from app.core.store_types import (
    DEFAULT_TITLE,
    MARK_END,
    MARK_START,
    Conversation,
    ImportRejected,
    ImportSummary,
    SearchHit,
    SearchPage,
    StoredMessage,
    StoreError,
)

__all__ = ["Conversation", "ImportSummary", "SearchHit", "SearchPage", "Store", "StoreError", "StoredMessage"]

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w+", re.UNICODE)
_TITLE_LEN = 48
# Matches ranked together, newest first: pages come from the newest batch, the next batch when the
# list has shown it all (ranking every match of a common word in 200k messages took 0.5 s).
SEARCH_BATCH = 200


def new_id() -> str:
    return uuid.uuid4().hex


class Store(StoreConnection):
    """Conversations and messages in one SQLite file. Use `Store.open(path)`."""

    # --- conversations -------------------------------------------------------------------------

    def create_conversation(self, **fields: Any) -> Conversation:
        """A new, empty conversation (title defaults to "New chat")."""
        values = conversation_values(fields)
        values.setdefault("title", DEFAULT_TITLE)
        now = time.time()
        cid = new_id()
        with self._write("create the conversation") as db:
            insert(db, "conversations", {"id": cid, "created_at": now, "updated_at": now, **values})
        return self.get_conversation(cid)

    def get_conversation(self, conversation_id: str) -> Conversation:
        rows = self._read("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        if not rows:
            raise StoreError("That conversation no longer exists.", detail=conversation_id)
        return conversation_from_row(rows[0])

    def list_conversations(self, include_trashed: bool = False) -> list[Conversation]:
        """Pinned first, then most recently active first. Trashed ones only on request."""
        where = "" if include_trashed else "WHERE trashed_at IS NULL"
        rows = self._read(f"SELECT * FROM conversations {where} "
                          "ORDER BY pinned DESC, updated_at DESC, rowid DESC")
        return [conversation_from_row(r) for r in rows]

    def update_conversation(self, conversation_id: str, **fields: Any) -> Conversation:
        """Change title, pinned, model_id, quant, chat_format, system_prompt or sampling."""
        values = conversation_values(fields)
        if values:
            sets = ", ".join(f"{k} = ?" for k in values)
            with self._write("save the conversation", TEXT_KEPT) as db:
                db.execute(f"UPDATE conversations SET {sets} WHERE id = ?",
                           (*values.values(), conversation_id))
        return self.get_conversation(conversation_id)

    def rename(self, conversation_id: str, title: str) -> Conversation:
        return self.update_conversation(conversation_id, title=" ".join(title.split()) or DEFAULT_TITLE)

    def set_pinned(self, conversation_id: str, pinned: bool) -> Conversation:
        return self.update_conversation(conversation_id, pinned=pinned)

    def trash_conversation(self, conversation_id: str) -> None:
        """Hide a conversation (kept until `purge_trash`, so the GUI can offer Undo)."""
        with self._write("move the conversation to the trash") as db:
            db.execute("UPDATE conversations SET trashed_at = ? WHERE id = ?", (time.time(), conversation_id))

    def restore_conversation(self, conversation_id: str) -> None:
        with self._write("restore the conversation") as db:
            db.execute("UPDATE conversations SET trashed_at = NULL WHERE id = ?", (conversation_id,))

    def purge_trash(self) -> int:
        """Delete every trashed conversation for good; returns how many."""
        with self._write("empty the trash") as db:
            return db.execute("DELETE FROM conversations WHERE trashed_at IS NOT NULL").rowcount

    def delete_conversation(self, conversation_id: str) -> None:
        """Delete a conversation and all its messages for good."""
        with self._write("delete the conversation") as db:
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def auto_title(self, conversation_id: str, force: bool = False) -> str:
        """Title the conversation after its first user message, unless the user already named it."""
        conv = self.get_conversation(conversation_id)
        if conv.title not in ("", DEFAULT_TITLE) and not force:
            return conv.title
        rows = self._read("SELECT content FROM messages WHERE conversation_id = ? AND role = 'user' "
                          "ORDER BY created_at, seq LIMIT 1", (conversation_id,))
        if not rows:
            return conv.title
        title = _title_from(rows[0]["content"])
        return self.rename(conversation_id, title).title

    # --- messages ------------------------------------------------------------------------------

    def add_message(self, conversation_id: str, parent_id: str | None, role: str, content: str,
                    status: str = "complete", **meta: Any) -> StoredMessage:
        """Append a message under `parent_id` (None: a new root) and make it the current leaf.
        Committed to disk before this returns."""
        unknown = set(meta) - set(MESSAGE_META)
        if unknown:
            raise TypeError(f"unknown message fields: {sorted(unknown)}")
        meta = encode_fields(meta)
        mid, now = new_id(), time.time()
        with self._write("save the message", TEXT_KEPT) as db:
            if parent_id is not None:
                owner = db.execute("SELECT conversation_id FROM messages WHERE id = ?",
                                   (parent_id,)).fetchone()
                if owner is None or owner[0] != conversation_id:
                    raise StoreError("The message this one answers no longer exists.", detail=str(parent_id))
            insert(db, "messages", {"id": mid, "conversation_id": conversation_id, "parent_id": parent_id,
                                    "role": role, "content": content, "status": status, "created_at": now,
                                    **meta})
            db.execute("UPDATE conversations SET current_leaf_id = ?, updated_at = ? WHERE id = ?",
                       (mid, now, conversation_id))
        return self.get_message(mid)

    def update_message(self, message_id: str, content: str | None = None, status: str | None = None,
                       **stats: Any) -> None:
        """Rewrite a message in place — the streaming update. `stats` may hold prompt_tokens,
        completion_tokens, reused_tokens, ttft_s, tokens_per_s, error and token_ids."""
        unknown = set(stats) - set(STATS_FIELDS)
        if unknown:
            raise TypeError(f"unknown message fields: {sorted(unknown)}")
        values = encode_fields(stats)
        if content is not None:
            values["content"] = content
        if status is not None:
            values["status"] = status
        if not values:
            return
        sets = ", ".join(f"{k} = ?" for k in values)
        with self._write("save the answer", TEXT_KEPT) as db:
            db.execute(f"UPDATE messages SET {sets} WHERE id = ?", (*values.values(), message_id))

    def get_message(self, message_id: str) -> StoredMessage:
        rows = self._read("SELECT * FROM messages WHERE id = ?", (message_id,))
        if not rows:
            raise StoreError("That message no longer exists.", detail=message_id)
        return message_from_row(rows[0])

    def messages(self, conversation_id: str) -> list[StoredMessage]:
        """Every message of a conversation, all branches, oldest first (parents before children)."""
        rows = self._read("SELECT * FROM messages WHERE conversation_id = ? ORDER BY seq", (conversation_id,))
        return [message_from_row(r) for r in rows]

    def active_branch(self, conversation_id: str) -> list[StoredMessage]:
        """The messages on show: root → current leaf."""
        leaf = self.get_conversation(conversation_id).current_leaf_id
        if leaf is None:
            # A conversation written by an older or foreign tool may lack a leaf: show its newest branch.
            root = self._newest_root(conversation_id)
            if root is None:
                return []
            leaf = self._newest_leaf_under(root)
        rows = self._read(
            "WITH RECURSIVE branch (id, depth) AS ("
            "  SELECT id, 0 FROM messages WHERE id = ? AND conversation_id = ?"
            "  UNION ALL SELECT m.parent_id, b.depth + 1 FROM messages m JOIN branch b ON m.id = b.id"
            "  WHERE m.parent_id IS NOT NULL)"
            " SELECT m.* FROM branch b JOIN messages m ON m.id = b.id ORDER BY b.depth DESC",
            (leaf, conversation_id))
        return [message_from_row(r) for r in rows]

    def siblings(self, message_id: str) -> tuple[list[StoredMessage], int]:
        """The alternatives at this point of the tree (edits, regenerations), oldest first,
        and this message's index among them — the GUI shows `index + 1 / len`."""
        msg = self.get_message(message_id)
        rows = self._read("SELECT * FROM messages WHERE conversation_id = ? AND parent_id IS ? "
                          "ORDER BY created_at, seq", (msg.conversation_id, msg.parent_id))
        found = [message_from_row(r) for r in rows]
        return found, next(i for i, m in enumerate(found) if m.id == message_id)

    def switch_branch(self, message_id: str) -> list[StoredMessage]:
        """Show the branch through `message_id`: the current leaf becomes its newest deepest
        descendant (following the most recent child at each step). Returns the new active branch."""
        msg = self.get_message(message_id)
        leaf = self._newest_leaf_under(msg.id)
        with self._write("switch branch") as db:
            db.execute("UPDATE conversations SET current_leaf_id = ? WHERE id = ?",
                       (leaf, msg.conversation_id))
        return self.active_branch(msg.conversation_id)

    def _newest_leaf_under(self, message_id: str) -> str:
        leaf = message_id
        while True:
            rows = self._read("SELECT id FROM messages WHERE parent_id = ? "
                              "ORDER BY created_at DESC, seq DESC LIMIT 1", (leaf,))
            if not rows:
                return leaf
            leaf = rows[0]["id"]

    def delete_message(self, message_id: str) -> None:
        """Delete a message and everything under it. If the branch on show went with it, the
        conversation shows the newest remaining branch at that point instead."""
        msg = self.get_message(message_id)
        subtree = ("WITH RECURSIVE sub (id) AS (SELECT ? UNION ALL "
                   "SELECT m.id FROM messages m JOIN sub ON m.parent_id = sub.id) SELECT id FROM sub")
        with self._write("delete the message") as db:
            doomed = {row[0] for row in db.execute(subtree, (message_id,))}
            db.execute(f"DELETE FROM messages WHERE id IN ({subtree})", (message_id,))
            leaf = db.execute("SELECT current_leaf_id FROM conversations WHERE id = ?",
                              (msg.conversation_id,)).fetchone()[0]
            if leaf in doomed or leaf is None:
                start = msg.parent_id or self._newest_root(msg.conversation_id)
                db.execute("UPDATE conversations SET current_leaf_id = ? WHERE id = ?",
                           (self._newest_leaf_under(start) if start else None, msg.conversation_id))

    def _newest_root(self, conversation_id: str) -> str | None:
        rows = self._read("SELECT id FROM messages WHERE conversation_id = ? AND parent_id IS NULL "
                          "ORDER BY created_at DESC, seq DESC LIMIT 1", (conversation_id,))
        return rows[0]["id"] if rows else None

    # --- search --------------------------------------------------------------------------------

    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        """The first page of `search_page`: the best matches among the newest ones."""
        return list(self.search_page(query, limit).hits)

    def search_page(self, query: str, limit: int = 50, after: tuple[int, int] | None = None) -> SearchPage:
        """Messages matching every word of `query` (each word also as a prefix): the newest SEARCH_BATCH
        matches ranked best first (`search_rank`), then the next older batch; `after` (a page's `more`)
        continues. Anything a user types is safe: FTS syntax characters are treated as plain text."""
        words = _WORD.findall(query)
        if not words:
            return SearchPage(())
        top, offset = after or (2**62, 0)
        rows = self._read(
            "SELECT f.rowid AS seq, m.id, m.conversation_id, c.title, m.role, m.created_at, m.content,"
            "       snippet(messages_fts, 0, ?, ?, '…', 12) AS snip"
            " FROM messages_fts f JOIN messages m ON m.seq = f.rowid"
            " JOIN conversations c ON c.id = m.conversation_id"
            " WHERE messages_fts MATCH ? AND f.rowid < ? AND c.trashed_at IS NULL"
            " ORDER BY f.rowid DESC LIMIT ?",
            (MARK_START, MARK_END, " ".join(f'"{w}"*' for w in words), top, SEARCH_BATCH))
        order = rank([r["content"] for r in rows], words)[offset:offset + limit]
        hits = tuple(SearchHit(r["id"], r["conversation_id"], r["title"], r["role"], r["snip"], r["created_at"])
                     for r in (rows[i] for i in order))
        if offset + limit < len(rows):
            return SearchPage(hits, (rows[0]["seq"] + 1, offset + limit))
        return SearchPage(hits, (rows[-1]["seq"], 0) if len(rows) == SEARCH_BATCH else None)

    # --- import (the export format and its validation live in app.core.transfer) -------------------

    def insert_conversations(self, records: Iterable[tuple[Conversation, list[StoredMessage]]]) -> ImportSummary:
        """Write whole conversations as they are (ids included) in one transaction; ones whose id is
        already stored are skipped. Messages must come parents first. `records` may be a generator that
        checks a file as it is read: anything it raises rolls every row back. Used by import."""
        added: list[str] = []
        skipped: list[str] = []
        count = 0
        with self._write("import the conversations", "Nothing was imported.") as db:
            for conv, msgs in records:
                if db.execute("SELECT 1 FROM conversations WHERE id = ?", (conv.id,)).fetchone():
                    skipped.append(conv.title)
                    continue
                try:
                    insert(db, "conversations", conversation_row(conv))
                    for m in msgs:
                        insert(db, "messages", message_row(m))
                except sqlite3.IntegrityError as exc:  # a message id that another conversation already has
                    raise ImportRejected(f"“{conv.title}” holds a message whose id another conversation "
                                         "already has; nothing was imported.", detail=repr(exc)) from exc
                count += len(msgs)
                added.append(conv.title)
        return ImportSummary(tuple(added), count, tuple(skipped))


def _title_from(text: str) -> str:
    words = " ".join(text.split())
    if len(words) <= _TITLE_LEN:
        return words or DEFAULT_TITLE
    cut = words[:_TITLE_LEN].rsplit(" ", 1)[0] if " " in words[:_TITLE_LEN] else words[:_TITLE_LEN]
    return cut.rstrip(" ,.;:") + "…"

