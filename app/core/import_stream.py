"""Reading a JSON export as a stream: each conversation is handed over as soon as its closing brace is
read, so memory holds one conversation at a time whatever the file's size.

The parser (`ijson` over yajl) refuses what `json.loads` would, plus NaN/Infinity and numbers beyond 64
bits; this module adds what a streaming parser lets through: a key twice in one object, and nesting
deeper than any export has. Values of top-level keys TinyChat does not read are skipped, not built.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import ijson

from app.core.store_types import ImportRejected

# yajl scans a string that spans reads again from its start at every read: reads of 64 KB made a 15 MB
# string cost 1.8 s of CPU, reads of 1 MB 0.13 s. Larger reads cost peak memory (several copies of each
# read are alive at once: 4 MB reads added 45 MB) for no gain on ordinary files.
READ_SIZE = 1024 * 1024
MAX_DEPTH = 64  # an export nests 5 deep; the rest of the margin is for unknown fields another tool adds
HEADER_KEYS = ("format", "version", "conversations")
_OPEN = ("start_map", "start_array")
_CLOSE = ("end_map", "end_array")
_SCALARS = frozenset(("string", "number", "boolean", "null"))
NOT_AN_EXPORT = "This is not a TinyChat conversation export."


class Readable(Protocol):
    def read(self, n: int) -> bytes: ...


class ExportStream:
    """The conversations of one export file, in order; `header` holds its top-level `format`, `version`
    and (when it is not a list) `conversations` once they have been read; `listed` says whether a
    `conversations` list was met. Raises ImportRejected for text that is not JSON an export can be."""

    def __init__(self, source: Readable) -> None:
        self.source = source
        self.header: dict[str, Any] = {}
        self.listed = False

    def conversations(self) -> Iterator[Any]:
        """Each item of the top-level `conversations` list, built once it is complete."""
        events = ijson.basic_parse(self.source, buf_size=READ_SIZE, use_float=True)
        try:
            event, value = next(events)
            if event != "start_map":
                raise ImportRejected(NOT_AN_EXPORT)
            seen: set[str] = set()
            for event, key in events:
                if event == "end_map":
                    break
                if key in seen:
                    raise _duplicate_key()
                seen.add(key)
                event, value = next(events)
                if key == "conversations" and event == "start_array":
                    self.listed = True
                    for event, value in events:
                        if event == "end_array":
                            break
                        yield _build(events, event, value, 2)
                elif key in HEADER_KEYS:
                    self.header[key] = _build(events, event, value, 1)
                else:
                    _skip(events, event, 1)
            for _ in events:  # the parser refuses anything after the top-level object
                pass
        except ijson.JSONError as exc:
            raise _not_json(exc) from exc
        except StopIteration as exc:  # the text ended inside a value
            raise ImportRejected(_CUT_SHORT) from exc
        except UnicodeError as exc:
            raise ImportRejected("This file is not UTF-8 text, so it is not a TinyChat export.",
                                 detail=repr(exc)) from exc


_CUT_SHORT = "This file ends in the middle of its data; it may have been cut short while it was copied."


def _not_json(exc: Exception) -> ImportRejected:
    reason = str(exc).strip().split("\n")[0].strip()
    if "premature EOF" in reason:
        return ImportRejected(_CUT_SHORT, detail=reason)
    if "overflow" in reason:  # beyond 64 bits, or a float beyond its range: nothing TinyChat writes
        return ImportRejected("This file holds a number too large to be anything TinyChat writes.", detail=reason)
    return ImportRejected(f"This file is not valid JSON ({reason[:120]}).", detail=repr(exc))


def _duplicate_key() -> ImportRejected:
    return ImportRejected("This file is not valid JSON (a key appears twice in one object).")


def _too_deep() -> ImportRejected:
    return ImportRejected("This file is nested too deeply to be a TinyChat export.")


def _build(events: Iterator[tuple[str, Any]], event: str, value: Any, depth: int) -> Any:
    """The value that starts with (`event`, `value`), `depth` levels down, read to its end."""
    if event not in _OPEN:
        return value
    root: Any = {} if event == "start_map" else []
    stack = [root]
    top, in_list = root, event == "start_array"
    key = ""
    limit = MAX_DEPTH - depth
    # Scalars come first in this loop: they are most events by far (token ids), and `top` changes only
    # when a container opens or closes.
    for event, value in events:
        if event in _SCALARS:
            if in_list:
                top.append(value)
            else:
                top[key] = value
        elif event == "map_key":
            if value in top:
                raise _duplicate_key()
            key = value
        elif event in _OPEN:
            child: Any = {} if event == "start_map" else []
            if in_list:
                top.append(child)
            else:
                top[key] = child
            stack.append(child)
            if len(stack) > limit:
                raise _too_deep()
            top, in_list = child, event == "start_array"
        else:  # a close
            stack.pop()
            if not stack:
                return root
            top = stack[-1]
            in_list = type(top) is list
    raise ImportRejected(_CUT_SHORT)  # the events ended inside the value


def _skip(events: Iterator[tuple[str, Any]], event: str, depth: int) -> None:
    """Read past the value that starts with `event` without keeping it."""
    if event not in _OPEN:
        return
    level = 1
    for event, _ in events:
        if event in _OPEN:
            level += 1
            if level + depth > MAX_DEPTH:
                raise _too_deep()
        elif event in _CLOSE:
            level -= 1
            if not level:
                return
    raise ImportRejected(_CUT_SHORT)
