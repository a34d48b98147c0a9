"""Export conversations as Markdown or JSON, and import JSON exports.

The JSON format is documented in docs/storage.md. An import is parsed and validated completely
before anything is written, then written in one transaction: a bad file writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.core import timestamps
from app.core.import_checks import INT32, Fields, decode
from app.core.settings import Sampling
from app.core.store_types import (
    DEFAULT_TITLE,
    ROLES,
    STATUSES,
    Conversation,
    ImportRejected,
    ImportSummary,
    StoredMessage,
    StoreError,
)

if TYPE_CHECKING:
    from app.core.store import Store

FORMAT_NAME = "tinychat-conversations"
FORMAT_VERSION = 1
MAX_IMPORT_BYTES = 200 * 1024 * 1024
MAX_CONVERSATIONS = 100_000
MAX_MESSAGES = 1_000_000
MAX_TEXT = 2_000_000  # characters in one message or system prompt
MAX_TOKEN_IDS = 65_536


# --- export -------------------------------------------------------------------------------------

def _selected(store: Store, ids: Iterable[str] | None) -> list[Conversation]:
    if ids is None:
        return store.list_conversations()
    found = []
    for cid in ids:
        try:
            found.append(store.get_conversation(cid))
        except StoreError as exc:
            raise StoreError(f"There is no conversation with id {cid}.", detail=exc.detail) from exc
    return found


def _iso(ts: float | None) -> str | None:
    return None if ts is None else timestamps.iso_utc(ts)


def export_json(store: Store, ids: Iterable[str] | None = None) -> dict[str, Any]:
    """All (or the given) conversations with every branch, as a JSON-ready dict."""
    conversations = []
    for conv in _selected(store, ids):
        conversations.append({
            "id": conv.id, "title": conv.title,
            "created_at": _iso(conv.created_at), "updated_at": _iso(conv.updated_at),
            "pinned": conv.pinned, "model_id": conv.model_id, "quant": conv.quant,
            "chat_format": conv.chat_format, "system_prompt": conv.system_prompt,
            "sampling": conv.sampling.to_json() if conv.sampling else None,
            "current_leaf_id": conv.current_leaf_id,
            "messages": [_message_json(m) for m in store.messages(conv.id)],
        })
    return {"format": FORMAT_NAME, "version": FORMAT_VERSION,
            "exported_at": datetime.now(UTC).isoformat(), "conversations": conversations}


def _message_json(m: StoredMessage) -> dict[str, Any]:
    return {
        "id": m.id, "parent_id": m.parent_id, "role": m.role, "content": m.content, "status": m.status,
        "created_at": _iso(m.created_at), "model_id": m.model_id, "quant": m.quant,
        "chat_format": m.chat_format, "prompt_tokens": m.prompt_tokens,
        "completion_tokens": m.completion_tokens, "reused_tokens": m.reused_tokens, "ttft_s": m.ttft_s,
        "tokens_per_s": m.tokens_per_s, "error": m.error,
        "token_ids": list(m.token_ids) if m.token_ids is not None else None,
    }


_SPEAKER = {"user": "You", "assistant": "Assistant", "system": "System"}
_STATUS_NOTE = {"partial": "*(This answer was stopped before it finished.)*",
                "error": "*(This answer failed: {error})*"}


def export_markdown(store: Store, ids: Iterable[str] | None = None) -> str:
    """All (or the given) conversations as Markdown: the branch on show, one section each."""
    sections = []
    for conv in _selected(store, ids):
        lines = [f"# {conv.title}", ""]
        made = (datetime.fromtimestamp(conv.created_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
                if timestamps.showable(conv.created_at) else "at an unknown date")
        about = [f"Created {made}"]
        if conv.model_id:
            about.append("Model " + " ".join(x for x in (conv.model_id, conv.quant) if x))
        if conv.chat_format:
            about.append(f"format {conv.chat_format}")
        lines += [" · ".join(about), ""]
        if conv.system_prompt:
            quoted = [f"> {line}" for line in conv.system_prompt.splitlines()]
            lines += ["**System prompt:**", "", *quoted, ""]
        for m in store.active_branch(conv.id):
            lines += [f"## {_SPEAKER[m.role]}", "", m.content, ""]
            if m.status in _STATUS_NOTE:
                lines += [_STATUS_NOTE[m.status].format(error=m.error or "unknown error"), ""]
        sections.append("\n".join(lines).rstrip() + "\n")
    return "\n---\n\n".join(sections)


# --- import -------------------------------------------------------------------------------------

def import_json(store: Store, data: str | bytes | dict[str, Any]) -> ImportSummary:
    """Validate a whole export, then add the conversations the store lacks (same id = duplicate,
    skipped). Raises ImportRejected, writing nothing, for any malformed, oversized or hostile file."""
    return store.insert_conversations(parse_export(data))


def parse_export(data: str | bytes | dict[str, Any]) -> list[tuple[Conversation, list[StoredMessage]]]:
    """Decode and check an export completely; messages come back parents first."""
    if isinstance(data, str | bytes):
        if len(data) > MAX_IMPORT_BYTES:
            raise ImportRejected(f"This file is larger than {MAX_IMPORT_BYTES // 2**20} MB; "
                                 "TinyChat does not import files that big.")
        data = decode(data)
    if not isinstance(data, dict):
        raise ImportRejected("This is not a TinyChat conversation export.")
    doc = Fields(data, "the top level")
    if doc.get("format", str, optional=True) != FORMAT_NAME:  # some other JSON file
        raise ImportRejected("This is not a TinyChat conversation export.")
    version = doc.get("version", int)
    if version < 1:
        raise ImportRejected(f"This file names format version {version}, which no TinyChat writes.")
    if version > FORMAT_VERSION:
        raise ImportRejected(f"This export has format version {version}, which this TinyChat cannot read; "
                             "please update TinyChat.")
    items = doc.get("conversations", list)
    if len(items) > MAX_CONVERSATIONS:
        raise ImportRejected(f"This file holds more than {MAX_CONVERSATIONS} conversations.")
    seen_conversations: set[str] = set()
    seen_messages: set[str] = set()
    records = []
    for i, item in enumerate(items):
        conv, msgs = _conversation(Fields(item, f"conversation {i + 1}"), seen_messages)
        if conv.id in seen_conversations:
            raise ImportRejected(f"Conversation {conv.id} appears twice in this file.")
        seen_conversations.add(conv.id)
        records.append((conv, msgs))
        if len(seen_messages) > MAX_MESSAGES:
            raise ImportRejected(f"This file holds more than {MAX_MESSAGES} messages.")
    return records


def _conversation(obj: Fields, seen_messages: set[str]) -> tuple[Conversation, list[StoredMessage]]:
    cid = obj.ident("id")
    sampling_data = obj.get("sampling", dict, optional=True)
    conv = Conversation(
        id=cid, title=obj.get("title", str) or DEFAULT_TITLE, created_at=obj.time("created_at"),
        updated_at=obj.time("updated_at"), pinned=bool(obj.get("pinned", bool, optional=True)),
        model_id=obj.get("model_id", str, optional=True), quant=obj.get("quant", str, optional=True),
        chat_format=obj.get("chat_format", str, optional=True),
        system_prompt=obj.get("system_prompt", str, optional=True, limit=MAX_TEXT) or "",
        sampling=Sampling.from_json(sampling_data) if sampling_data is not None else None,
        current_leaf_id=obj.ident("current_leaf_id", optional=True),
    )
    items = obj.get("messages", list)
    if len(items) > MAX_MESSAGES:
        raise ImportRejected(f"This file holds more than {MAX_MESSAGES} messages.")
    label = _short(conv.title)
    msgs: dict[str, StoredMessage] = {}
    for j, item in enumerate(items):
        m = _message(Fields(item, f"message {j + 1} of conversation “{label}”"), cid)
        if m.id in msgs or m.id in seen_messages:
            raise ImportRejected(f"Message {m.id} appears twice in this file.")
        msgs[m.id] = m
        seen_messages.add(m.id)
    if conv.current_leaf_id is not None and conv.current_leaf_id not in msgs:
        raise ImportRejected(f"Conversation “{label}” points at a message it does not contain.")
    return conv, _parents_first(msgs, label)


def _message(obj: Fields, conversation_id: str) -> StoredMessage:
    token_ids = obj.get("token_ids", list, optional=True)
    if token_ids is not None and (
        len(token_ids) > MAX_TOKEN_IDS
        or not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < INT32 for t in token_ids)
    ):
        raise ImportRejected(f"In this file, “token_ids” of {obj.where} are not valid token ids.")
    return StoredMessage(
        id=obj.ident("id"), conversation_id=conversation_id, parent_id=obj.ident("parent_id", optional=True),
        role=obj.choice("role", ROLES),  # type: ignore[arg-type]
        content=obj.get("content", str, limit=MAX_TEXT),
        status=obj.choice("status", STATUSES),  # type: ignore[arg-type]
        created_at=obj.time("created_at"),  # type: ignore[arg-type]
        model_id=obj.get("model_id", str, optional=True), quant=obj.get("quant", str, optional=True),
        chat_format=obj.get("chat_format", str, optional=True),
        prompt_tokens=obj.get("prompt_tokens", int, optional=True),
        completion_tokens=obj.get("completion_tokens", int, optional=True),
        reused_tokens=obj.get("reused_tokens", int, optional=True),
        ttft_s=obj.get("ttft_s", float, optional=True),
        tokens_per_s=obj.get("tokens_per_s", float, optional=True),
        error=obj.get("error", str, optional=True),
        token_ids=tuple(token_ids) if token_ids is not None else None,
    )


def _short(title: str, limit: int = 40) -> str:
    """A title fit to quote in a one-line sentence."""
    words = " ".join(title.split())
    return words if len(words) <= limit else words[: limit - 1] + "…"


def _parents_first(msgs: dict[str, StoredMessage], title: str) -> list[StoredMessage]:
    """Order messages so each parent precedes its children; reject unknown parents and cycles."""
    children: dict[str | None, list[StoredMessage]] = {}
    for m in msgs.values():
        if m.parent_id is not None and m.parent_id not in msgs:
            raise ImportRejected(f"A message in “{title}” answers a message that is not in the file.")
        children.setdefault(m.parent_id, []).append(m)
    ordered: list[StoredMessage] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        m = stack.pop()
        ordered.append(m)
        stack.extend(reversed(children.get(m.id, [])))
    if len(ordered) != len(msgs):  # the rest can only be reached through a loop
        raise ImportRejected(f"The messages of “{title}” refer to each other in a loop.")
    return ordered
