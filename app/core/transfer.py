"""Export conversations as Markdown or JSON, and import JSON exports — both streamed, one conversation at
a time, so a history of any size is backed up and restored in flat memory.

The JSON format is documented in docs/storage.md. An import checks each conversation as it is read and
writes it inside one transaction that is committed only once the whole file has been read and found
good: a bad, cut-short or cancelled file writes nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core import timestamps
from app.core.atomic_write import atomic_text_file
from app.core.disk_space import require_room
from app.core.import_records import FORMAT_NAME, FORMAT_VERSION, Record, records
from app.core.import_source import ImportFile, import_bytes, open_import_file
from app.core.import_stream import ExportStream
from app.core.store_types import Conversation, ImportSummary, StoredMessage, StoreError

if TYPE_CHECKING:
    from app.core.store import Store

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "Cancelled", "export_json", "export_markdown", "export_to_file",
           "import_file", "import_json", "write_json", "write_markdown"]

# (fraction done 0..1, conversations so far): called after each conversation, from the working thread.
ProgressFn = Callable[[float, int], None]
Write = Callable[[str], object]
# Room a job needs, per byte of what it reads: an import writes its rows to the write-ahead log and
# then to the database (both stay until the next checkpoint), the search index beside them; an export
# of everything is about the size of the database's text. Measured in docs/benchmarks.md; kept low,
# so that only what cannot fit is refused up front (a disk that fills later still fails cleanly).
IMPORT_ROOM_PER_BYTE = 1.0
EXPORT_ROOM_PER_DB_BYTE = 0.5


class Cancelled(StoreError):
    """The user stopped the job; nothing was written."""


# --- export -------------------------------------------------------------------------------------

def _selected(store: Store, ids: Iterable[str] | None) -> Iterator[Conversation]:
    if ids is None:
        yield from store.list_conversations()
        return
    for cid in ids:
        try:
            yield store.get_conversation(cid)
        except StoreError as exc:
            raise StoreError(f"There is no conversation with id {cid}.", detail=exc.detail) from exc


def _iso(ts: float | None) -> str | None:
    return None if ts is None else timestamps.iso_utc(ts)


def conversation_json(store: Store, conv: Conversation) -> dict[str, Any]:
    """One conversation with every branch, as a JSON-ready dict in the export format."""
    return {
        "id": conv.id, "title": conv.title,
        "created_at": _iso(conv.created_at), "updated_at": _iso(conv.updated_at),
        "pinned": conv.pinned, "model_id": conv.model_id, "quant": conv.quant,
        "chat_format": conv.chat_format, "system_prompt": conv.system_prompt,
        "sampling": conv.sampling.to_json() if conv.sampling else None,
        "current_leaf_id": conv.current_leaf_id,
        "messages": [_message_json(m) for m in store.messages(conv.id)],
    }


def _message_json(m: StoredMessage) -> dict[str, Any]:
    return {
        "id": m.id, "parent_id": m.parent_id, "role": m.role, "content": m.content, "status": m.status,
        "created_at": _iso(m.created_at), "model_id": m.model_id, "quant": m.quant,
        "chat_format": m.chat_format, "prompt_tokens": m.prompt_tokens,
        "completion_tokens": m.completion_tokens, "reused_tokens": m.reused_tokens, "ttft_s": m.ttft_s,
        "tokens_per_s": m.tokens_per_s, "error": m.error,
        "token_ids": list(m.token_ids) if m.token_ids is not None else None,
    }


def export_json(store: Store, ids: Iterable[str] | None = None) -> dict[str, Any]:
    """All (or the given) conversations as one JSON-ready dict, for small exports held in memory."""
    with store.read_snapshot():
        return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "exported_at": datetime.now(UTC).isoformat(),
                "conversations": [conversation_json(store, c) for c in _selected(store, ids)]}


def write_json(store: Store, write: Write, ids: Iterable[str] | None = None, progress: ProgressFn | None = None,
               cancel: threading.Event | None = None, listed: Callable[[str], None] | None = None) -> int:
    """Write the JSON export through `write`, one conversation per line as each is read; returns how many.
    `listed` gets each title written."""
    head = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "exported_at": datetime.now(UTC).isoformat()}
    write(json.dumps(head, ensure_ascii=False)[:-1] + ', "conversations": [')
    count = _each(store, ids, progress, cancel, listed, lambda conv, n: write(
        ("\n" if n == 0 else ",\n") + json.dumps(conversation_json(store, conv), ensure_ascii=False)))
    write("\n]}\n")
    return count


_SPEAKER = {"user": "You", "assistant": "Assistant", "system": "System"}
_STATUS_NOTE = {"partial": "*(This answer was stopped before it finished.)*",
                "error": "*(This answer failed: {error})*"}


def _markdown(store: Store, conv: Conversation) -> str:
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
    return "\n".join(lines).rstrip() + "\n"


def write_markdown(store: Store, write: Write, ids: Iterable[str] | None = None,
                   progress: ProgressFn | None = None, cancel: threading.Event | None = None,
                   listed: Callable[[str], None] | None = None) -> int:
    """Write the branch on show of each conversation as Markdown through `write`; returns how many."""
    return _each(store, ids, progress, cancel, listed,
                 lambda conv, n: write(("\n---\n\n" if n else "") + _markdown(store, conv)))


def export_markdown(store: Store, ids: Iterable[str] | None = None) -> str:
    """All (or the given) conversations as Markdown text, for small exports held in memory."""
    out = io.StringIO()
    write_markdown(store, out.write, ids)
    return out.getvalue()


def _each(store: Store, ids: Iterable[str] | None, progress: ProgressFn | None, cancel: threading.Event | None,
          listed: Callable[[str], None] | None, emit: Callable[[Conversation, int], object]) -> int:
    """Call `emit` for each selected conversation, inside one read snapshot so that what the app saves
    meanwhile cannot leave the export pointing at a message it lacks."""
    with store.read_snapshot():
        chosen = list(_selected(store, ids))
        for n, conv in enumerate(chosen):
            if cancel is not None and cancel.is_set():
                raise Cancelled("The export was stopped; no file was written.")
            emit(conv, n)
            if listed is not None:
                listed(conv.title)
            if progress is not None:
                progress((n + 1) / len(chosen), n + 1)
    return len(chosen)


def export_to_file(store: Store, path: Path, markdown: bool = False, ids: Iterable[str] | None = None,
                   progress: ProgressFn | None = None, cancel: threading.Event | None = None,
                   listed: Callable[[str], None] | None = None) -> int:
    """Write the export to `path` whole or not at all (an existing file stays until the new one is
    complete); returns how many conversations. Raises StoreError (a disk that cannot hold it: cause
    "full"), Cancelled or OSError."""
    path = Path(path)
    if ids is None:  # everything: refuse at once what cannot fit, before minutes of work
        require_room(path.parent, int(_database_bytes(store) * EXPORT_ROOM_PER_DB_BYTE), "The export")
    writer = write_markdown if markdown else write_json
    with atomic_text_file(path) as fh:
        return writer(store, fh.write, ids, progress, cancel, listed)


def _database_bytes(store: Store) -> int:
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(OSError):
            total += store.path.with_name(store.path.name + suffix).stat().st_size
    return total


# --- import -------------------------------------------------------------------------------------

def import_file(store: Store, path: Path, progress: ProgressFn | None = None,
                cancel: threading.Event | None = None) -> ImportSummary:
    """Add the conversations of the export at `path` that the store lacks (same id: skipped), reading it
    as a stream. Raises ImportRejected (a malformed, hostile or unreadable file), StoreError (a disk
    without room: cause "full") or Cancelled; in every case nothing is written."""
    source = open_import_file(path)
    try:
        require_room(store.path.parent, int(source.size * IMPORT_ROOM_PER_BYTE), "This import")
        return _insert(store, source, progress, cancel)
    finally:
        source.close()


def import_json(store: Store, data: str | bytes | dict[str, Any]) -> ImportSummary:
    """`import_file` for an export held in memory (text, bytes or the parsed document)."""
    if isinstance(data, dict):
        data = json.dumps(data, ensure_ascii=False)
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    return _insert(store, import_bytes(raw), None, None)


def _insert(store: Store, source: ImportFile, progress: ProgressFn | None,
            cancel: threading.Event | None) -> ImportSummary:
    def checked() -> Iterator[Record]:
        for n, record in enumerate(records(ExportStream(source)), 1):
            if cancel is not None and cancel.is_set():
                raise Cancelled("The import was stopped; nothing was imported.")
            yield record
            if progress is not None and source.size:
                progress(min(source.done / source.size, 1.0), n)

    return store.insert_conversations(checked())
