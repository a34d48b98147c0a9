"""While MLX reads a long conversation on the CPU (seconds before the first word), the answer being
generated says how far reading got instead of a bare "…"; the words that follow replace it, and
nothing of it is stored."""

from __future__ import annotations

import re
from pathlib import Path

from app.chat.chat_controller import reading_text
from engine.types import LoadOptions
from tests.engine_backends import BACKENDS
from tests.fakehub import FakeHub
from tests.gui_app import make_catalog, start_app

WAIT_MS = 30_000
READING = re.compile(r"\*Reading the conversation… ([\d,]+) of ([\d,]+) tokens\*")


def test_a_long_conversation_shows_reading_progress_until_the_first_word(hub_home: Path, tmp_path: Path,
                                                                         hub: FakeHub, qtbot):
    app = start_app(hub_home, make_catalog(tmp_path / "catalog.json", hub.commit))
    try:
        mlx = next(b for b in BACKENDS if b.name == "mlx").scripted_model()
        with qtbot.waitSignal(app.engine.loaded, timeout=WAIT_MS):
            app.engine.load(mlx, LoadOptions())
        qtbot.waitUntil(lambda: app.ready, timeout=WAIT_MS)
        app.session.new_chat()
        shown: list[tuple[str, str]] = []
        app.session.streamText.connect(lambda mid, text: shown.append((mid, text)))
        with qtbot.waitSignal(app.session.controller.generationFinished, timeout=WAIT_MS) as done:
            assert app.session.send("hello world " * 300)
        stored = done.args[1]
        texts = [text for mid, text in shown if mid == stored.id]
        first_word = next(i for i, t in enumerate(texts) if not READING.fullmatch(t))
        counts = [tuple(int(n.replace(",", "")) for n in READING.fullmatch(t).groups()) for t in texts[:first_word]]
        assert counts and texts[0] == reading_text(*counts[0])
        assert counts == sorted(counts) and counts[-1][0] == counts[-1][1]  # read to the end, then the words
        assert "Reading" not in stored.content and stored.content == texts[-1]
    finally:
        app.shutdown()
