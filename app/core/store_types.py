"""The frozen records the conversation store hands out, and its error types."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Literal

from app.core.settings import Sampling

MessageStatus = Literal["complete", "partial", "error"]
StoredRole = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")
STATUSES: tuple[str, ...] = ("complete", "partial", "error")
DEFAULT_TITLE = "New chat"

# Search snippets wrap each match in these control characters, which never occur in typed text;
# `SearchHit.snippet_html()` turns them into markup.
MARK_START = "\x02"
MARK_END = "\x03"


class StoreError(Exception):
    """A storage failure. `message` is a sentence for the user, `detail` is for the log.

    Contract: when a write raises StoreError nothing of that write is stored, and the caller still
    holds the text it passed in — it must keep it (in the composer, or the StreamingWriter) so the
    user can retry once the disk has room or is writable again.
    """

    def __init__(self, message: str, detail: str = "", cause: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.cause = cause  # "full", "readonly", "busy" or "" (anything else)

    @property
    def cannot_write(self) -> bool:
        """The disk refused a write (full, read-only, no permission): reading may still work."""
        return self.cause in ("full", "readonly")


class ImportRejected(StoreError):
    """An import file was malformed, oversized or hostile; nothing was written."""


@dataclass(frozen=True)
class Conversation:
    """One conversation's metadata. `current_leaf_id` is the last message of the branch on show."""

    id: str
    title: str
    created_at: float  # Unix time, seconds
    updated_at: float
    pinned: bool = False
    model_id: str | None = None
    quant: str | None = None
    chat_format: str | None = None
    system_prompt: str = ""
    sampling: Sampling | None = None  # None: use the app's settings
    current_leaf_id: str | None = None
    trashed_at: float | None = None


@dataclass(frozen=True)
class StoredMessage:
    """One message in a conversation's tree. `token_ids` are the exact ids the engine generated,
    so the next prompt can reuse the KV cache."""

    id: str
    conversation_id: str
    parent_id: str | None
    role: StoredRole
    content: str
    status: MessageStatus
    created_at: float
    model_id: str | None = None
    quant: str | None = None
    chat_format: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reused_tokens: int | None = None
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    error: str | None = None
    token_ids: tuple[int, ...] | None = None


@dataclass(frozen=True)
class SearchHit:
    """A message matching a search, best first. `snippet` marks matches with MARK_START/MARK_END."""

    message_id: str
    conversation_id: str
    conversation_title: str
    role: StoredRole
    snippet: str
    created_at: float

    def snippet_html(self, tag: str = "b") -> str:
        """The snippet as HTML-escaped text with each match wrapped in `<tag>`."""
        escaped = html.escape(self.snippet)
        return escaped.replace(MARK_START, f"<{tag}>").replace(MARK_END, f"</{tag}>")

    def snippet_plain(self) -> str:
        """The snippet without match markers."""
        return self.snippet.replace(MARK_START, "").replace(MARK_END, "")


@dataclass(frozen=True)
class SearchPage:
    """One page of search results, and where the next one starts (None: every match was given).
    Pages come newest matches first: each ranks a batch of them."""

    hits: tuple[SearchHit, ...]
    more: tuple[int, int] | None = None  # (the batch's top message seq, hits already given from it)


@dataclass(frozen=True)
class ImportSummary:
    """What an import added and what it skipped because the conversation was already there."""

    added_titles: tuple[str, ...]
    messages_added: int
    skipped_titles: tuple[str, ...]

    @property
    def conversations_added(self) -> int:
        return len(self.added_titles)

    def describe(self) -> str:
        """One line for the user."""
        added = f"Added {self.conversations_added} conversation(s) with {self.messages_added} message(s)"
        if self.skipped_titles:
            return f"{added}; skipped {len(self.skipped_titles)} already present."
        return added + "."
