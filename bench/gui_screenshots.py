"""Screenshots of the real chat window for the README and docs: `xvfb-run -a python -m bench.gui_screenshots`.

Writes docs/screenshots/{empty,conversation,generating,narrow}-{light,dark}.png. The "conversation" shots show
a stored conversation with coloured code and a quote (a random-weight test model cannot write one);
"generating" is the scripted test model streaming its answer through the real engine thread, captured
mid-answer; "narrow" is the same conversation in a 560 px window, where the sidebar folds away.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"

QUESTION = "How do I read a text file line by line in Python?"
ANSWER = """Use a `with` block, so the file is closed for you even if something fails:

```python
with open("notes.txt", encoding="utf-8") as f:
    for number, line in enumerate(f, start=1):
        print(number, line.rstrip())
```

- Iterating over the file object reads **one line at a time**, so memory stays small even for huge files.
- Each `line` keeps its trailing newline — that is what `rstrip()` removes.

To get all lines as a list instead, use `f.read().splitlines()`."""
FOLLOW_UP = "And how do I skip empty lines?"
ANSWER_2 = """Test the stripped line before using it:

```python
with open("notes.txt", encoding="utf-8") as f:
    lines = [line.rstrip() for line in f if line.strip()]
```

An empty or whitespace-only line strips to `""`, which is false, so the `if` drops it.

> A line holding only spaces or a tab counts as empty too: `strip()` removes all whitespace."""


def _seed(store) -> str:
    """A conversation with code, a regenerated answer (‹ 2/2 ›) and a few older chats in the sidebar."""
    for title in ("Trip ideas for Lisbon", "Explain the GIL", "Regex for dates"):
        c = store.create_conversation(title=title)
        store.add_message(c.id, None, "user", title)
    conv = store.create_conversation()
    user = store.add_message(conv.id, None, "user", QUESTION)
    store.auto_title(conv.id)
    meta = dict(model_id="tinyllama-1.1b-chat-v0.4", quant="Q4_K_M", chat_format="chatml")
    store.add_message(conv.id, user.id, "assistant", "Open it and call readlines().", **meta,
                      completion_tokens=9, tokens_per_s=24.8, ttft_s=0.31)
    a = store.add_message(conv.id, user.id, "assistant", ANSWER, **meta, completion_tokens=118,
                          tokens_per_s=23.9, ttft_s=0.28)
    u2 = store.add_message(conv.id, a.id, "user", FOLLOW_UP)
    store.add_message(conv.id, u2.id, "assistant", ANSWER_2, **meta, completion_tokens=64, tokens_per_s=24.2,
                      ttft_s=0.12)
    return conv.id


def _settle(app: QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def shoot(theme_name: str) -> list[Path]:
    """Take the three screenshots in one theme; returns the files written."""
    app = QApplication.instance() or QApplication([])  # first: the test helpers default to offscreen
    from app.core.settings import Settings
    from app.core.store import Store
    from app.shell.main_window import MainWindow
    from app.shell.window_actions import install
    from app.ui import theme
    from tests.gui_support import PacedEngine, scripted_model

    theme.apply(app, theme_name, 11)
    home = Path(tempfile.mkdtemp(prefix="tinychat-shots-"))
    os.environ["TINYCHAT_HOME"] = str(home)
    store, _ = Store.open(home / "data" / "tinychat.db")
    conv = _seed(store)
    model = scripted_model()
    window = MainWindow(store, Settings(theme=theme_name), engine_factory=lambda: PacedEngine(0.15), model=model)
    install(window)  # the menus and the sidebar folding of the real app
    window.resize(1180, 760)
    window.show()
    _settle(app, 1.0)
    written = []

    def save(name: str) -> None:
        path = OUT / f"{name}-{theme_name}.png"
        window.grab().save(str(path))
        written.append(path)

    window.new_chat()
    _settle(app, 0.3)
    save("empty")
    window.session.open(conv)
    _settle(app, 0.8)
    save("conversation")
    window.resize(560, 760)
    _settle(app, 0.8)
    window.chat_view.scroll_to_bottom()
    _settle(app, 0.5)
    save("narrow")
    window.resize(1180, 760)
    _settle(app, 0.5)
    window.new_chat()
    window.composer.set_text("Say hello in three languages")
    window.composer.submit()
    end = time.monotonic() + 20
    while time.monotonic() < end and len((window.session.controller.streaming() or ("", ""))[1]) <= 10:
        _settle(app, 0.02)
    window.composer.set_text("Thanks! Now in")
    _settle(app, 0.1)
    save("generating")
    window.close()
    store.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--theme", choices=("light", "dark", "both"), default="both")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for name in ("light", "dark") if args.theme == "both" else (args.theme,):
        for path in shoot(name):
            print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
