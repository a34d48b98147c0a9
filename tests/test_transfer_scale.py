"""Backups of a large history: a generated heavy user's history round-trips exactly; import and export
hold one conversation at a time (peak memory measured in child processes does not grow with the
history); a big file cut short or broken near its end is refused and leaves nothing half-imported."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import ijson
import pytest

from app.core import transfer
from app.core.store import Store
from app.core.store_types import ImportRejected
from bench.history_data import conversation, write_history

ROOT = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).with_name("transfer_memory_child.py")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s, _ = Store.open(tmp_path / "home" / "tinychat.db")
    yield s
    s.close()


def _digests(path: Path) -> dict[str, str]:
    with open(path, "rb") as fh:
        return {c["id"]: hashlib.sha256(json.dumps(c, sort_keys=True).encode()).hexdigest()
                for c in ijson.items(fh, "conversations.item", use_float=True)}


def test_a_generated_history_of_300_conversations_round_trips_exactly(store: Store, tmp_path: Path) -> None:
    source, back = tmp_path / "history.json", tmp_path / "back.json"
    messages = write_history(source, 300)
    summary = transfer.import_file(store, source)
    assert summary.conversations_added == 300 and summary.messages_added == messages
    assert transfer.export_to_file(store, back) == 300
    assert _digests(back) == _digests(source)  # every value of every conversation, branches included


def _peak_kb(*args: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, str(CHILD), *args], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)["peak_kb"]


def test_import_and_export_peak_memory_does_not_grow_with_the_history(tmp_path: Path) -> None:
    peaks: dict[str, list[int]] = {"import": [], "export": []}
    sizes = []
    for count in (40, 160):
        source, db = tmp_path / f"h{count}.json", tmp_path / f"h{count}" / "tinychat.db"
        write_history(source, count)
        sizes.append(source.stat().st_size)
        peaks["import"].append(_peak_kb("import", str(source), str(db)))
        peaks["export"].append(_peak_kb("export", str(db), str(tmp_path / f"back{count}.json")))
    grown_kb = (sizes[1] - sizes[0]) / 1024
    # Holding the history (its text, or its parsed objects: several times the text) would grow the peak by
    # at least the extra 4x of data; one conversation at a time grows it by a small part of that.
    for what, (small, large) in peaks.items():
        assert large - small < 0.2 * grown_kb, f"{what}: peak {small} KB → {large} KB for {grown_kb:.0f} KB more data"


def _write_doc(path: Path, convs: list[dict], cut: float = 1.0) -> None:
    head = {"format": transfer.FORMAT_NAME, "version": transfer.FORMAT_VERSION, "exported_at": None}
    text = json.dumps(head)[:-1] + ', "conversations": [' + ",\n".join(map(json.dumps, convs)) + "]}"
    path.write_text(text[: int(len(text) * cut)], encoding="utf-8")


@pytest.mark.parametrize("cut", [0.3, 0.97, 0.9999])
def test_a_big_file_cut_short_is_refused_and_nothing_is_imported(store: Store, tmp_path: Path, cut: float) -> None:
    path = tmp_path / "cut.json"
    _write_doc(path, [conversation(i) for i in range(120)], cut)
    with pytest.raises(ImportRejected, match="cut short"):
        transfer.import_file(store, path)
    assert store.list_conversations() == []


def test_a_fault_in_the_last_conversation_of_a_big_file_leaves_nothing_imported(store: Store,
                                                                              tmp_path: Path) -> None:
    convs = [conversation(i) for i in range(120)]
    convs[-1]["messages"][-1]["parent_id"] = "nowhere"
    path = tmp_path / "broken.json"
    _write_doc(path, convs)
    with pytest.raises(ImportRejected, match="not in the file"):
        transfer.import_file(store, path)
    assert store.list_conversations() == []  # not the 119 good ones before it either


def test_a_format_named_after_the_conversations_is_still_checked(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "sorted-keys.json"  # `jq -S` puts "conversations" before "format"
    path.write_text(json.dumps({"conversations": [conversation(1)], "format": "some-other-app", "version": 1}),
                    encoding="utf-8")
    with pytest.raises(ImportRejected, match="not a TinyChat conversation export"):
        transfer.import_file(store, path)
    assert store.list_conversations() == []
    path.write_text(json.dumps({"conversations": [conversation(1)], "format": transfer.FORMAT_NAME,
                                "version": 1}), encoding="utf-8")
    assert transfer.import_file(store, path).conversations_added == 1


def test_a_cancelled_import_reports_progress_then_writes_nothing(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    write_history(path, 60)
    cancel = threading.Event()
    seen: list[tuple[float, int]] = []

    def progress(fraction: float, count: int) -> None:
        seen.append((fraction, count))
        if count == 30:
            cancel.set()

    with pytest.raises(transfer.Cancelled):
        transfer.import_file(store, path, progress, cancel)
    assert [c for _, c in seen] == list(range(1, 31)) and 0 < seen[-1][0] < 1
    assert store.list_conversations() == []
    assert transfer.import_file(store, path).conversations_added == 60  # the same file, not cancelled


def test_a_cancelled_export_leaves_the_previous_file_untouched(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "history.json"
    write_history(source, 30)
    transfer.import_file(store, source)
    target = tmp_path / "backup.json"
    target.write_text("the previous backup", encoding="utf-8")
    cancel = threading.Event()
    with pytest.raises(transfer.Cancelled):
        transfer.export_to_file(store, target, progress=lambda _f, n: n == 10 and cancel.set(), cancel=cancel)
    assert target.read_text(encoding="utf-8") == "the previous backup"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("backup.json.")] == []
