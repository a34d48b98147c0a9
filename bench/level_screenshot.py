"""Screenshot of Settings ▸ Model after "Measure all installed": the level table with figures measured
here, the recommendation and the speed-vs-quality chart, for the user guide.

    xvfb-run -a -s "-screen 0 1280x900x24" python -m bench.level_screenshot

Runs the real window against a local fake Hub that serves the catalog's TinyLlama file names. No
TinyLlama weights are reachable here, so the files behind Q2_K, Q4_K_M, Q8_0 and F16 are the small
random-weight test model quantized from one set of weights, and the figures in the picture are that
model's, measured for real by clicking the button (about a second a level on an idle machine).
"""

from __future__ import annotations

import time
from dataclasses import replace

from PySide6.QtWidgets import QApplication

from bench.settings_screenshots import OUT as SHOTS
from bench.settings_screenshots import ROOT, _catalog, _settle, fresh_home

OUT = SHOTS / "settings-levels.png"
LEVELS = {"Q2_K": "q2_k", "Q4_K_M": "q4_k_m", "Q8_0": "q8_0", "F16": "fp16"}
MODEL = "tinyllama-1.1b-chat-v0.4"


def _wait(app: QApplication, cond, seconds: float) -> None:
    end = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError(f"gave up after {seconds:.0f} s")
        app.processEvents()
        time.sleep(0.02)


def main() -> None:
    app = QApplication.instance() or QApplication([])
    from app.core.settings import Settings
    from app.core.store import Store
    from app.shell.main_window import MainWindow
    from app.shell.window_actions import install
    from engine.models import ModelManager
    from tests.fakehub import FakeHub
    from tests.fixtures.gguf_model import build_cached

    home = fresh_home(app, "tinychat-levels-shot-")
    with FakeHub() as hub:
        files = {f"{MODEL}.{name}.gguf": build_cached("small", level) for level, name in LEVELS.items()}
        commit = hub.add_repo("afrideva/TinyLlama-1.1B-Chat-v0.4-GGUF", files)
        catalog = _catalog(hub, commit)  # stand-in files: the real files' pinned sizes and hashes unpinned

        def manager() -> ModelManager:
            return ModelManager(home / "data" / "models", catalog, endpoint=hub.endpoint)

        for level in LEVELS:
            manager().ensure_available(MODEL, level)
        store, _ = Store.open(home / "data" / "tinychat.db")
        window = MainWindow(store, replace(Settings(), engine="llama.cpp", quant="Q4_K_M"))
        extras = install(window, manager)
        window.resize(1100, 720)
        window.show()
        _wait(app, lambda: window.session.model.status.ready, 120)
        dialog = extras.open_settings("Model")
        dialog.resize(1000, 900)
        dialog.move(40, 0)
        dialog.measure_panel.all_button.click()
        _wait(app, lambda: not dialog.measurer.busy, 1800)
        _settle(app, 0.3)  # the last repaint after the figures came in
        OUT.parent.mkdir(parents=True, exist_ok=True)
        dialog.grab().save(str(OUT))
        print(dialog.measure_panel.outcome.text())
        print(dialog.measure_panel.advice.text())
        dialog.close()
        window.close()
        store.close()
    print(OUT.relative_to(ROOT))


if __name__ == "__main__":
    main()
