"""Keeps API conversations in the user's history when asked to (`tinychat serve --store`): each
answered request becomes a conversation of its own, marked as coming from the API."""

from __future__ import annotations

import logging
from pathlib import Path

from app.core.store import Store
from engine.types import Chunk, Message

log = logging.getLogger(__name__)

TITLE_PREFIX = "API: "


class ApiArchive:
    """Writes finished API answers to the store. The store is opened on first use, on the thread that
    calls (the server's event loop), because an SQLite connection belongs to one thread."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._store: Store | None = None

    def __call__(self, messages: tuple[Message, ...], answer: str, final: Chunk) -> None:
        if self._store is None:
            self._store, _ = Store.open(self.db_path)
        store = self._store
        conv = store.create_conversation()
        parent: str | None = None
        for m in messages:
            parent = store.add_message(conv.id, parent, m.role, m.content).id
        stats = final.stats
        store.add_message(conv.id, parent, "assistant", answer, **({
            "prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.completion_tokens} if stats else {}))
        title = store.auto_title(conv.id)
        store.rename(conv.id, TITLE_PREFIX + title)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
