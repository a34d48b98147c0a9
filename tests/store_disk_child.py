"""Child process for test_store_errors: runs inside a private mount namespace on a tiny tmpfs,
fills the disk for real, then remounts it read-only. Prints one JSON object per step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.store import Store, StoreError
from app.core.store_writer import StreamingWriter


def report(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def fill(path: Path) -> None:
    with open(path, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass


def main(folder: Path) -> None:
    store, _ = Store.open(folder / "chats.db")
    conv = store.create_conversation()
    question = store.add_message(conv.id, None, "user", "before the disk filled up")
    writer = StreamingWriter.start(store, conv.id, question.id, interval=0.0)
    fill(folder / "filler")
    big = "a long question that needs room on disk " * 500
    try:
        store.add_message(conv.id, question.id, "user", big)
        report(step="full-add", error=None)
    except StoreError as exc:
        report(step="full-add", error=exc.message)
    writer.append("streamed while the disk was full " * 300)
    report(step="full-stream", writer_error=writer.error.message if writer.error else None)
    try:
        writer.finish("complete")
        report(step="full-finish", error=None)
    except StoreError as exc:
        report(step="full-finish", error=exc.message)
    os.unlink(folder / "filler")
    retried = store.add_message(conv.id, question.id, "user", big)
    answer = writer.finish("complete")  # the retry of the failed finish, same writer, same text
    report(step="retry", added=retried.content == big, answer_len=len(answer.content),
           answer_ok=answer.content == writer.text and answer.status == "complete")
    store.close()
    remount = subprocess.run(["mount", "-o", "remount,ro", str(folder)], capture_output=True, text=True)
    report(step="remount", rc=remount.returncode, stderr=remount.stderr.strip())
    before = (folder / "chats.db").read_bytes()
    try:
        Store.open(folder / "chats.db")
        report(step="readonly-open", error=None)
    except StoreError as exc:
        report(step="readonly-open", error=exc.message)
    report(step="readonly-after", unchanged=(folder / "chats.db").read_bytes() == before,
           files=sorted(os.listdir(folder)))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
