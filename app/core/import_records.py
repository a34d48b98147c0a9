"""Checking an export's content: its header, then each conversation as the stream hands it over, into
the records the store writes. Every fault raises ImportRejected with a sentence naming its place;
messages come out parents first."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from app.core.import_checks import INT32, Fields
from app.core.import_stream import NOT_AN_EXPORT, ExportStream
from app.core.settings import Sampling
from app.core.store_types import DEFAULT_TITLE, ROLES, STATUSES, Conversation, ImportRejected, StoredMessage

FORMAT_NAME = "tinychat-conversations"
FORMAT_VERSION = 1
MAX_TEXT = 2_000_000  # characters in one message or system prompt
MAX_TOKEN_IDS = 65_536

Record = tuple[Conversation, list[StoredMessage]]


def records(stream: ExportStream) -> Iterator[Record]:
    """The checked conversations of `stream`, in file order. The header is checked as soon as it has
    been read (before the first conversation when the file starts with it, as TinyChat writes it) and
    again, complete, at the end; the caller must not keep anything before this generator is exhausted."""
    seen: set[str] = set()
    for i, item in enumerate(stream.conversations()):
        if i == 0:
            check_header(stream.header, complete=False)
        conv, msgs = conversation(Fields(item, f"conversation {i + 1}"))
        if conv.id in seen:
            raise ImportRejected(f"Conversation {conv.id} appears twice in this file.")
        seen.add(conv.id)
        yield conv, msgs
    check_header(stream.header, complete=True, listed=stream.listed)


def check_header(header: dict[str, Any], complete: bool, listed: bool = False) -> None:
    """Refuse a file that is not a TinyChat export of a version this one reads. Before the file has
    been read to its end (`complete` False) only the keys already met are checked."""
    doc = Fields(header, "the top level")
    if (complete or "format" in header) and doc.get("format", str, optional=True) != FORMAT_NAME:
        raise ImportRejected(NOT_AN_EXPORT)
    if complete or "version" in header:
        version = doc.get("version", int)
        if version < 1:
            raise ImportRejected(f"This file names format version {version}, which no TinyChat writes.")
        if version > FORMAT_VERSION:
            raise ImportRejected(f"This export has format version {version}, which this TinyChat cannot read; "
                                 "please update TinyChat.")
    if complete and not listed:
        doc.get("conversations", list)  # says what is wrong with it: missing, null or not a list
        raise ImportRejected(NOT_AN_EXPORT)


def conversation(obj: Fields) -> Record:
    """One conversation object checked, with its messages parents first."""
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
    label = short(conv.title)
    msgs: dict[str, StoredMessage] = {}
    for j, item in enumerate(items):
        m = _message(Fields(item, f"message {j + 1} of conversation “{label}”"), cid)
        if m.id in msgs:
            raise ImportRejected(f"Message {m.id} appears twice in this file.")
        msgs[m.id] = m
    if conv.current_leaf_id is not None and conv.current_leaf_id not in msgs:
        raise ImportRejected(f"Conversation “{label}” points at a message it does not contain.")
    return conv, _parents_first(msgs, label)


def _message(obj: Fields, conversation_id: str) -> StoredMessage:
    token_ids = obj.get("token_ids", list, optional=True)
    if token_ids is not None and token_ids and (  # whole-list checks: a long answer has thousands
        len(token_ids) > MAX_TOKEN_IDS or set(map(type, token_ids)) != {int}  # bool, float, str: not ids
        or min(token_ids) < 0 or max(token_ids) >= INT32
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


def short(title: str, limit: int = 40) -> str:
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
