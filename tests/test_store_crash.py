"""kill -9 in the middle of an answer, 100 times: the database stays sound and keeps every word
that was committed."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.store_crash_child import ANSWER

CHILD = Path(__file__).with_name("store_crash_child.py")
KILLS = 100


class Child:
    """A child process whose stdout lines are collected by a thread as they arrive."""

    def __init__(self, db: Path, run: int) -> None:
        self.proc = subprocess.Popen([sys.executable, str(CHILD), str(db), str(run)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.opened = threading.Event()
        self.answered = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("OPEN"):
                self.opened.set()
            elif line.startswith("DONE"):
                self.answered.set()

    def kill(self) -> list[str]:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        assert self.proc.returncode == -signal.SIGKILL, self.proc.stderr.read() if self.proc.stderr else ""
        return self.lines


@pytest.mark.slow
def test_kill_9_while_streaming_never_loses_committed_words(tmp_path: Path, capsys) -> None:
    db = tmp_path / "chats.db"
    rng = random.Random(20240501)
    users: set[str] = set()
    flushed: dict[str, int] = {}  # answer id → longest prefix the child saw committed
    done: set[str] = set()
    partial: set[str] = set()
    counts = dict(kills=0, during_startup=0, mid_answer=0, flushes_seen=0)
    started = time.monotonic()
    for run in range(KILLS):
        child = Child(db, run)
        if rng.random() < 0.15:
            time.sleep(rng.uniform(0.0, 0.12))  # often lands while Python starts or the store opens
        elif run % 10 == 9:
            # Some kills come after a finished answer, however slow the machine, so finalised
            # answers are checked too (a loaded machine may otherwise never finish one in time).
            assert child.answered.wait(timeout=30), "child never finished an answer"
            time.sleep(rng.uniform(0.0, 0.05))
        else:
            assert child.opened.wait(timeout=30), "child never opened the store"
            time.sleep(rng.uniform(0.0, 0.15))
        lines = child.kill()
        counts["kills"] += 1
        assert not any(line.startswith("NOTICE") for line in lines), lines  # never judged corrupt
        if "OPEN" not in lines:
            counts["during_startup"] += 1
        for line in lines:
            kind, *rest = line.split(" ")
            if kind == "USER":
                users.add(rest[0])
            elif kind == "FLUSH":
                flushed[rest[0]] = max(flushed.get(rest[0], 0), int(rest[1]))
                counts["flushes_seen"] += 1
            elif kind == "DONE":
                done.add(rest[0])
        if lines and lines[-1].startswith(("FLUSH", "USER")):
            counts["mid_answer"] += 1

        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
            stored = {row[0]: (row[1], row[2], row[3]) for row in
                      conn.execute("SELECT id, role, content, status FROM messages")}
        finally:
            conn.close()
        missing = users - stored.keys()
        assert not missing, f"committed user messages lost after kill {run}: {missing}"
        for mid, length in flushed.items():
            role, content, status = stored[mid]
            assert role == "assistant" and len(content) >= length and ANSWER.startswith(content)
            if mid in done:
                assert (content, status) == (ANSWER, "complete")
        for mid, (role, content, status) in stored.items():
            if role == "assistant" and status == "partial":
                assert ANSWER.startswith(content)  # what was shown, cut where the kill landed
                partial.add(mid)
    elapsed = time.monotonic() - started
    counts["user_messages"] = len(users)
    counts["complete_answers"] = len(done)
    counts["partial_answers"] = len(partial)
    with capsys.disabled():
        print(f"\ncrash test: {elapsed:.1f} s, " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    assert counts["kills"] == KILLS
    assert counts["mid_answer"] > KILLS // 4  # the kills really did land while answers streamed
    assert len(partial) > KILLS // 4 and len(done) > 0 and len(users) > KILLS // 2
