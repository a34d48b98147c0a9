"""Hostile conversation files for `tinychat import`, generated (nothing large is checked in).

Each `Case` writes one file system entry and says what import must do with it: refuse it (exit 1, one
sentence, the store untouched) or import it, in which case `expected` lists what the store must then
hold for each conversation of the file. The cases attack every field of the export format (wrong
types, ranges, encodings and sizes), its structure (nesting, duplicates, loops, orphans, numbers
JSON cannot hold, byte order marks, truncation) and the path itself (pipes, devices, folders, links).
"""

from __future__ import annotations

import codecs
import copy
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Doc = dict[str, Any]
# conversation id → (title, [(message id, content)]) as the store must hold them after the import
Expected = dict[str, tuple[str, list[tuple[str, str]]]]
T0 = "2024-05-01T10:00:00+00:00"
MAX_TEXT = 2_000_000


@dataclass(frozen=True)
class Case:
    name: str
    write: Callable[[Path], None]  # creates the entry at the given path
    imported: bool = False  # False: must be refused
    expected: Expected = field(default_factory=dict)
    skipped: tuple[str, ...] = ()  # conversation ids already in the store, which import must leave alone


# --- documents -----------------------------------------------------------------------------------

def _message(mid: str, parent: str | None, role: str, content: str, **extra: Any) -> dict[str, Any]:
    return {"id": mid, "parent_id": parent, "role": role, "content": content, "status": "complete",
            "created_at": T0, **extra}


def _conversation(cid: str, title: str, messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": cid, "title": title, "created_at": T0, "updated_at": T0, "pinned": False,
            "system_prompt": "", "sampling": None, "current_leaf_id": messages[-1]["id"] if messages else None,
            "messages": messages, **extra}


def document() -> Doc:
    """A valid export of two conversations with branches, stats and token ids: what cases damage."""
    soup = _conversation("conv-a", "Soup", [
        _message("m-a1", None, "user", "How do I make soup?"),
        _message("m-a2", "m-a1", "assistant", "Boil vegetables. é世🎉", prompt_tokens=12, completion_tokens=5,
                 reused_tokens=0, ttft_s=0.12, tokens_per_s=40.5, token_ids=[1, 2, 3, 4, 5],
                 model_id="tinyllama", quant="Q4_K_M", chat_format="chatml"),
        _message("m-a3", "m-a2", "user", "And then?"),
        _message("m-a4", "m-a2", "user", "Edited: and after that?"),
    ], sampling={"temperature": 0.7, "top_p": 0.95, "top_k": 40, "repeat_penalty": 1.1,
                 "max_tokens": 512, "seed": None}, system_prompt="Be brief.")
    trains = _conversation("conv-b", "Trains", [
        _message("m-b1", None, "user", "Trains to Lyon?"),
        _message("m-b2", "m-b1", "assistant", "Every hour", status="partial"),
    ])
    return {"format": "tinychat-conversations", "version": 1, "exported_at": T0,
            "conversations": [soup, trains]}


def baseline() -> Doc:
    """What the store holds before each case (imported first): ids distinct from `document`'s."""
    doc = document()
    for conv in doc["conversations"]:
        conv["id"] = "base-" + conv["id"]
        conv["current_leaf_id"] = "base-" + conv["current_leaf_id"]
        for m in conv["messages"]:
            m["id"] = "base-" + m["id"]
            m["parent_id"] = m["parent_id"] and "base-" + m["parent_id"]
    return doc


def expected_of(doc: Doc) -> Expected:
    """What importing `doc` must store, for a document the format accepts as it is."""
    return {c["id"]: (c["title"] or "New chat", [(m["id"], m["content"]) for m in c["messages"]])
            for c in doc["conversations"]}


def _conv(doc: Doc, i: int = 0) -> dict[str, Any]:
    return doc["conversations"][i]


def _msg(doc: Doc, j: int = 0, i: int = 0) -> dict[str, Any]:
    return doc["conversations"][i]["messages"][j]


# --- writers -------------------------------------------------------------------------------------

def _bytes(raw: bytes | Callable[[], bytes]) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(raw() if callable(raw) else raw)


def _json(change: Callable[[Doc], object]) -> Callable[[Path], None]:
    """The document after `change`, written as the app writes exports."""
    def write(path: Path) -> None:
        doc = document()
        change(doc)
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return write


def _text(make: Callable[[str], str]) -> Callable[[Path], None]:
    """The document as JSON text, edited as text (for what json.dumps cannot produce)."""
    return lambda path: path.write_text(make(json.dumps(document())), encoding="utf-8")


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _link(target: str) -> Callable[[Path], None]:
    return lambda path: path.symlink_to(target)


def _loop(path: Path) -> None:
    path.symlink_to(path.with_name(path.name + ".other"))
    path.with_name(path.name + ".other").symlink_to(path)


def _socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()  # the socket file stays


def _sparse(size: int) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with open(path, "wb") as fh:
            fh.truncate(size)
    return write


def _ring(n: int) -> Callable[[Doc], None]:
    """Conversation 1's messages replaced by `n` messages each answering the next, the last the first."""
    def change(doc: Doc) -> None:
        ids = [f"ring-{k}" for k in range(n)]
        _conv(doc)["messages"] = [_message(ids[k], ids[(k + 1) % n], "user", f"link {k}") for k in range(n)]
        _conv(doc)["current_leaf_id"] = ids[0]
    return change


def _many_conversations(n: int) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        doc["conversations"] = [{"id": f"c{k}", "title": "t", "created_at": T0, "updated_at": T0,
                                 "messages": []} for k in range(n)]
    return change


def _set(target: Callable[[Doc], dict[str, Any]], key: str, value: Any) -> Callable[[Doc], None]:
    return lambda doc: target(doc).__setitem__(key, value)


def _drop(target: Callable[[Doc], dict[str, Any]], key: str) -> Callable[[Doc], None]:
    return lambda doc: target(doc).pop(key)


TOP: Callable[[Doc], dict[str, Any]] = lambda d: d  # noqa: E731
CONV: Callable[[Doc], dict[str, Any]] = _conv  # the first conversation
MSG: Callable[[Doc], dict[str, Any]] = _msg  # its first message
ANSWER: Callable[[Doc], dict[str, Any]] = lambda d: _msg(d, 1)  # noqa: E731  its first answer


def _refused() -> list[Case]:
    good = json.dumps(document())
    return [
        # structure and encoding
        Case("empty-file", _bytes(b"")),
        Case("only-whitespace", _bytes(b" \n\t\r\n ")),
        Case("json-null", _bytes(b"null")),
        Case("top-level-array", _bytes(json.dumps(document()["conversations"]).encode())),
        Case("top-level-number", _bytes(b"42")),
        Case("top-level-string", _bytes(b'"tinychat-conversations"')),
        Case("truncated-in-half", _bytes(good[: len(good) // 2].encode())),
        Case("truncated-last-byte", _bytes(good[:-1].encode())),
        Case("trailing-garbage", _bytes((good + " garbage").encode())),
        Case("two-documents", _bytes((good + good).encode())),
        Case("raw-nul-byte", _bytes(good.replace('"Soup"', '"So\x00up"').encode())),
        Case("latin-1-text", _bytes(json.dumps(document(), ensure_ascii=False).replace("Soup", "Café")
                                    .encode("latin-1", "replace"))),
        Case("utf-16-without-bom", _bytes(good.encode("utf-16-le"))),
        Case("utf-32-with-bom", _bytes(codecs.BOM_UTF32_LE + good.encode("utf-32-le"))),
        Case("cesu-8-surrogate-pair", _bytes(good.replace("Soup", "@@").encode().replace(
            b"@@", b"\xed\xa0\xbd\xed\xb8\x80"))),
        Case("overlong-utf-8", _bytes(good.replace("Soup", "@@").encode().replace(b"@@", b"\xc0\xaf"))),
        Case("bom-before-garbage", _bytes(codecs.BOM_UTF8 + b"not json")),
        Case("deep-arrays-in-unknown-field", _text(lambda t: t[:-1] + ', "x": ' + "[" * 100_000
                                                   + "]" * 100_000 + "}")),
        Case("deep-objects", _bytes(('{"a":' * 60_000 + "1" + "}" * 60_000).encode())),
        Case("nan-literal", _text(lambda t: t.replace('"ttft_s": 0.12', '"ttft_s": NaN'))),
        Case("infinity-literal", _text(lambda t: t.replace('"tokens_per_s": 40.5', '"tokens_per_s": Infinity'))),
        Case("minus-infinity-literal", _text(lambda t: t.replace('"ttft_s": 0.12', '"ttft_s": -Infinity'))),
        Case("float-overflowing-to-infinity", _text(lambda t: t.replace('"ttft_s": 0.12', '"ttft_s": 1e400'))),
        Case("integer-of-5000-digits", _text(lambda t: t.replace('"prompt_tokens": 12',
                                                                 '"prompt_tokens": ' + "9" * 5000))),
        Case("duplicate-top-level-key", _text(lambda t: '{"format": "x", ' + t[1:])),
        Case("duplicate-key-in-message", _text(lambda t: t.replace('"role": "user"', '"role": "user", "role": '
                                                                   '"assistant"', 1))),
        # format and version
        Case("format-missing", _json(_drop(TOP, "format"))),
        Case("format-number", _json(_set(TOP, "format", 1))),
        Case("format-other-app", _json(_set(TOP, "format", "chatgpt-export"))),
        Case("version-missing", _json(_drop(TOP, "version"))),
        Case("version-zero", _json(_set(TOP, "version", 0))),
        Case("version-negative", _json(_set(TOP, "version", -1))),
        Case("version-float", _json(_set(TOP, "version", 1.0))),
        Case("version-string", _json(_set(TOP, "version", "1"))),
        Case("version-bool", _json(_set(TOP, "version", True))),
        Case("version-2-to-the-40", _json(_set(TOP, "version", 2**40))),
        Case("version-from-the-future", _json(_set(TOP, "version", 2))),
        # the conversation list
        Case("conversations-missing", _json(_drop(TOP, "conversations"))),
        Case("conversations-object", _json(_set(TOP, "conversations", {"conv-a": {}}))),
        Case("conversations-null", _json(_set(TOP, "conversations", None))),
        Case("conversation-is-string", _json(lambda d: d["conversations"].append("conv-c"))),
        Case("conversation-is-array", _json(lambda d: d["conversations"].append([]))),
        # conversation fields
        Case("conversation-id-missing", _json(_drop(CONV, "id"))),
        Case("conversation-id-empty", _json(_set(CONV, "id", ""))),
        Case("conversation-id-65-chars", _json(_set(CONV, "id", "a" * 65))),
        Case("conversation-id-path", _json(_set(CONV, "id", "../../etc/passwd"))),
        Case("conversation-id-fullwidth", _json(_set(CONV, "id", "ｃｏｎｖ"))),
        Case("conversation-id-number", _json(_set(CONV, "id", 123))),
        Case("conversation-id-newline", _json(_set(CONV, "id", "conv\n"))),
        Case("conversation-id-twice", _json(_set(lambda d: _conv(d, 1), "id", "conv-a"))),
        Case("title-missing", _json(_drop(CONV, "title"))),
        Case("title-number", _json(_set(CONV, "title", 7))),
        Case("title-1001-chars", _json(_set(CONV, "title", "t" * 1001))),
        Case("title-of-5-mb", _json(_set(CONV, "title", "🎉" * 1_300_000))),
        Case("created-at-words", _json(_set(CONV, "created_at", "yesterday"))),
        Case("created-at-unix-number", _json(_set(CONV, "created_at", 1_700_000_000))),
        Case("created-at-1969", _json(_set(CONV, "created_at", "1969-07-20T20:17:00+00:00"))),
        Case("created-at-year-3000", _json(_set(CONV, "created_at", "3000-01-01T00:00:00+00:00"))),
        Case("updated-at-year-9999-minus-12", _json(_set(CONV, "updated_at", "9999-12-31T23:59:59-12:00"))),
        Case("updated-at-year-1-plus-14", _json(_set(CONV, "updated_at", "0001-01-01T00:00:00+14:00"))),
        Case("date-offset-25-hours", _json(_set(CONV, "created_at", "2024-01-01T00:00:00+25:00"))),
        Case("date-of-100-chars", _json(_set(CONV, "created_at", "2024-01-01T00:00:00" + "0" * 81))),
        Case("date-with-nul", _json(_set(CONV, "created_at", "2024-01-01\x00"))),
        Case("pinned-string", _json(_set(CONV, "pinned", "yes"))),
        Case("pinned-number", _json(_set(CONV, "pinned", 1))),
        Case("sampling-string", _json(_set(CONV, "sampling", "hot"))),
        Case("system-prompt-over-limit", _json(_set(CONV, "system_prompt", "s" * (MAX_TEXT + 1)))),
        Case("system-prompt-object", _json(_set(CONV, "system_prompt", {"text": "x"}))),
        Case("current-leaf-unknown", _json(_set(CONV, "current_leaf_id", "m-zz"))),
        Case("current-leaf-of-other-conversation", _json(_set(CONV, "current_leaf_id", "m-b1"))),
        Case("current-leaf-bad-id", _json(_set(CONV, "current_leaf_id", "m a1"))),
        Case("messages-missing", _json(_drop(CONV, "messages"))),
        Case("messages-object", _json(_set(CONV, "messages", {"m-a1": {}}))),
        # message fields
        Case("message-null", _json(lambda d: _conv(d)["messages"].append(None))),
        Case("role-root", _json(_set(MSG, "role", "root"))),
        Case("role-number", _json(_set(MSG, "role", 0))),
        Case("role-upper-case", _json(_set(MSG, "role", "USER"))),
        Case("status-done", _json(_set(MSG, "status", "done"))),
        Case("content-missing", _json(_drop(MSG, "content"))),
        Case("content-null", _json(_set(MSG, "content", None))),
        Case("content-array", _json(_set(MSG, "content", ["How", "do"]))),
        Case("content-over-limit", _json(_set(MSG, "content", "c" * (MAX_TEXT + 1)))),
        Case("message-created-at-missing", _json(_drop(MSG, "created_at"))),
        Case("message-date-9999-minus-14", _json(_set(MSG, "created_at", "9999-12-31T23:00:00-14:00"))),
        Case("message-id-twice-in-conversation", _json(_set(ANSWER, "id", "m-a1"))),
        Case("message-id-in-two-conversations", _json(_set(lambda d: _msg(d, 0, 1), "id", "m-a1"))),
        Case("message-id-already-stored-elsewhere", _json(_set(lambda d: _msg(d, 0, 1), "id", "base-m-a1"))),
        Case("parent-is-itself", _json(_set(MSG, "parent_id", "m-a1"))),
        Case("parents-in-a-ring-of-2", _json(_set(MSG, "parent_id", "m-a2"))),
        Case("parents-in-a-ring-of-500", _json(_ring(500))),
        Case("parent-unknown", _json(_set(ANSWER, "parent_id", "m-zz"))),
        Case("parent-in-other-conversation", _json(_set(ANSWER, "parent_id", "m-b1"))),
        Case("parent-number", _json(_set(ANSWER, "parent_id", 1))),
        Case("token-ids-negative", _json(_set(ANSWER, "token_ids", [1, -1]))),
        Case("token-ids-float", _json(_set(ANSWER, "token_ids", [1.5]))),
        Case("token-ids-bool", _json(_set(ANSWER, "token_ids", [True]))),
        Case("token-ids-string", _json(_set(ANSWER, "token_ids", "1 2 3"))),
        Case("token-ids-65537", _json(_set(ANSWER, "token_ids", [7] * 65_537))),
        Case("token-id-2-to-the-31", _json(_set(ANSWER, "token_ids", [2**31]))),
        Case("prompt-tokens-below-int32", _json(_set(ANSWER, "prompt_tokens", -(2**31) - 1))),
        Case("prompt-tokens-2-to-the-63", _json(_set(ANSWER, "prompt_tokens", 2**63))),
        Case("prompt-tokens-string", _json(_set(ANSWER, "prompt_tokens", "12"))),
        Case("ttft-string", _json(_set(ANSWER, "ttft_s", "fast"))),
        Case("tokens-per-s-bool", _json(_set(ANSWER, "tokens_per_s", False))),
        Case("error-1001-chars", _json(_set(ANSWER, "error", "e" * 1001))),
        Case("model-id-object", _json(_set(ANSWER, "model_id", {}))),
        Case("quant-list", _json(_set(ANSWER, "quant", ["Q4_K_M"]))),
        # the path itself
        Case("named-pipe", _fifo),
        Case("link-to-dev-zero", _link("/dev/zero")),
        Case("link-to-dev-urandom", _link("/dev/urandom")),
        Case("link-to-dev-null", _link("/dev/null")),
        Case("folder", lambda p: p.mkdir()),
        Case("unix-socket", _socket),
        Case("dangling-link", _link("/nonexistent/tinychat/export.json")),
        Case("link-loop", _loop),
        Case("sparse-300-mb", _sparse(300 * 2**20)),
    ]


# --- accepted ------------------------------------------------------------------------------------

def _accepted(name: str, change: Callable[[Doc], object], fix: Callable[[Expected], object] | None = None,
              encode: Callable[[str], bytes] = str.encode) -> Case:
    """A case whose file import must take; `fix` adjusts what the store must hold (repairs, defaults)."""
    doc = document()
    change(doc)
    expected = expected_of(doc)
    if fix is not None:
        fix(expected)
    # ensure_ascii: the file spells lone surrogates as escapes, the only way JSON can carry them
    return Case(name, lambda path: path.write_bytes(encode(json.dumps(doc, ensure_ascii=encode is str.encode))),
                imported=True, expected=expected)


def _title(value: str) -> Callable[[Expected], None]:
    return lambda e: e.__setitem__("conv-a", (value, e["conv-a"][1]))


def _content(j: int, value: str) -> Callable[[Expected], None]:
    def fix(e: Expected) -> None:
        msgs = list(e["conv-a"][1])
        msgs[j] = (msgs[j][0], value)
        e["conv-a"] = (e["conv-a"][0], msgs)
    return fix


def _chain(n: int) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        msgs = [_message(f"deep-{k}", f"deep-{k - 1}" if k else None, ("user", "assistant")[k % 2], f"step {k}")
                for k in range(n)]
        _conv(doc).update(messages=msgs, current_leaf_id=msgs[-1]["id"])
    return change


def _siblings(n: int) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        msgs = [_message("root", None, "user", "pick one")]
        msgs += [_message(f"alt-{k}", "root", "assistant", f"answer {k}") for k in range(n)]
        _conv(doc).update(messages=msgs, current_leaf_id="alt-0")
    return change


def _all_null(doc: Doc) -> None:
    for conv in doc["conversations"]:
        conv.update(pinned=None, model_id=None, quant=None, chat_format=None, system_prompt=None,
                    sampling=None, current_leaf_id=None)
        for m in conv["messages"]:
            for key in ("parent_id", "model_id", "quant", "chat_format", "prompt_tokens", "completion_tokens",
                        "reused_tokens", "ttft_s", "tokens_per_s", "error", "token_ids"):
                m[key] = None
            m["parent_id"] = None


def _unknown_fields(doc: Doc) -> None:
    doc["future"] = {"nested": [1, 2, {"deep": True}]}
    _conv(doc)["colour"] = "blue"
    _msg(doc)["reactions"] = ["👍"]


def _nothing(_doc: Doc) -> None:
    pass


def _already_stored() -> Case:
    """A file holding a conversation the store already has (same id, other content): skipped."""
    doc = document()
    stored = baseline()["conversations"][0]
    intruder = copy.deepcopy(stored)
    intruder["title"] = "An impostor"
    for m in intruder["messages"]:
        m["content"] = "replaced"
    doc["conversations"].append(intruder)
    return Case("conversation-already-stored", lambda p: p.write_text(json.dumps(doc), encoding="utf-8"),
                imported=True, expected=expected_of(document()), skipped=(stored["id"],))


def _accepted_cases() -> list[Case]:
    big = "x" * (MAX_TEXT - 10) + "é世🎉"
    return [
        _accepted("as-exported", _nothing),
        _accepted("no-conversations", lambda d: d.update(conversations=[])),
        _accepted("a-conversation-without-messages", lambda d: _conv(d).update(messages=[], current_leaf_id=None)),
        _accepted("unknown-fields-everywhere", _unknown_fields),
        _accepted("every-optional-field-null", _all_null),
        _accepted("utf-8-with-bom", _nothing, encode=lambda t: t.encode("utf-8-sig")),
        _accepted("utf-16-le-with-bom", _nothing, encode=lambda t: codecs.BOM_UTF16_LE + t.encode("utf-16-le")),
        _accepted("utf-16-be-with-bom", _nothing, encode=lambda t: codecs.BOM_UTF16_BE + t.encode("utf-16-be")),
        _accepted("lone-high-surrogate-in-title", _set(CONV, "title", "half \ud83c"), _title("half \ufffd")),
        _accepted("lone-low-surrogate-in-content", _set(MSG, "content", "x\udc00y"), _content(0, "x\ufffdy")),
        _accepted("escapes-and-bidi-in-title", _set(CONV, "title", "\x1b[2J\x1b]0;owned\x07\u202eexe.txt")),
        _accepted("title-empty", _set(CONV, "title", ""), _title("New chat")),
        _accepted("title-1000-chars", _set(CONV, "title", "t" * 1000)),
        _accepted("dates-without-offset", _set(CONV, "created_at", "2024-05-01T10:00:00")),
        _accepted("dates-at-the-range-edges", lambda d: _conv(d).update(
            created_at="1970-01-01T00:00:00+00:00", updated_at="2999-12-31T23:59:59+00:00")),
        _accepted("nul-and-controls-in-content", _set(MSG, "content", "a\x00b\x01c\u2028d\ufeffe")),
        _accepted("content-at-the-limit", _set(MSG, "content", big)),
        _accepted("token-ids-at-the-edges", _set(ANSWER, "token_ids", [0, 2**31 - 1])),
        _accepted("20000-conversations-as-no-count-is-a-limit", _many_conversations(20_000)),
        _accepted("a-chain-of-400-messages", _chain(400)),
        _accepted("300-alternative-answers", _siblings(300)),
        _already_stored(),
    ]


def cases() -> list[Case]:
    """Every case, refused ones first; names are unique."""
    found = _refused() + _accepted_cases()
    assert len({c.name for c in found}) == len(found)
    return found


def write_baseline(path: Path) -> None:
    path.write_text(json.dumps(baseline()), encoding="utf-8")
