"""Screenshots of settings, the model manager mid-download, first run and search, for the README and the
user guide: `xvfb-run -a -s "-screen 0 1280x860x24" python -m bench.settings_screenshots`.

Runs the real app pieces against a local fake Hub that serves the real catalog's file names. No
TinyLlama weights are reachable here, so the files behind it are small generated test models: the
"On disk" size of an installed level is that test file's real size, while levels that are not
installed show the catalog's figures for the real model.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QRect
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
LEVELS = ("Q4_K_M", "Q5_K_M", "Q8_0")


def _settle(app: QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def _wait(app: QApplication, cond, seconds: float = 30) -> None:
    end = time.monotonic() + seconds
    while not cond() and time.monotonic() < end:
        _settle(app, 0.02)


def fresh_home(app: QApplication, prefix: str) -> Path:
    """The light theme at the documented size and an empty TinyChat home, as every screenshot starts."""
    from app.ui import theme

    theme.apply(app, "light", 11)
    home = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(TINYCHAT_HOME=str(home), HF_HUB_DISABLE_XET="1")
    os.environ.pop("TINYCHAT_MODEL", None)
    return home


def _catalog(hub, commit: str):
    from engine.catalog import Catalog

    real = Catalog.load()
    # The hub serves test files under the real names: unpin the sizes and hashes they cannot match.
    return Catalog(tuple(replace(e, revision=commit, files=tuple(replace(f, size=None, sha256=None) for f in e.files))
                         if e.engine == "llama.cpp" else e for e in real.entries))


def _seed(store) -> None:
    trip = store.create_conversation(title="Trip ideas for Lisbon")
    q = store.add_message(trip.id, None, "user", "What should I see in Lisbon in two days?")
    store.add_message(trip.id, q.id, "assistant", "Day one: the Alfama quarter, then ride the yellow tram 28 "
                      "up to the castle. Day two: Belém, its tower and the famous custard tarts.")
    q2 = store.add_message(trip.id, None, "user", "Is the tram busy in the morning?")
    store.add_message(trip.id, q2.id, "assistant", "Tram 28 is busiest from 10 to 16 h; board at Martim "
                      "Moniz before nine for a seat.")
    code = store.create_conversation(title="Regex for dates")
    q3 = store.add_message(code.id, None, "user", "A regex for ISO dates?")
    store.add_message(code.id, q3.id, "assistant", r"Try `\d{4}-\d{2}-\d{2}`; a tram timetable uses the "
                      "same format.")


def _screen(path: Path, area: QRect) -> None:
    """The screen inside `area`: for a popup window over the main one, which a widget grab misses."""
    QGuiApplication.primaryScreen().grabWindow(0, area.x(), area.y(), area.width(), area.height()).save(str(path))


def main() -> None:
    app = QApplication.instance() or QApplication([])
    from app.core.settings import Settings
    from app.core.store import Store
    from app.shell.main_window import MainWindow
    from app.shell.window_actions import install
    from engine.download import TransferSettings
    from engine.models import ModelManager
    from tests.fakehub import FakeHub
    from tests.fixtures.gguf_model import build_cached

    OUT.mkdir(parents=True, exist_ok=True)
    home = fresh_home(app, "tinychat-shots8-")
    with FakeHub() as hub:
        files = {f"tinyllama-1.1b-chat-v0.4.{lv.lower()}.gguf": build_cached("small", lv, scripted=True)
                 for lv in LEVELS}
        commit = hub.add_repo("afrideva/TinyLlama-1.1B-Chat-v0.4-GGUF", files)
        catalog = _catalog(hub, commit)
        store, _ = Store.open(home / "data" / "tinychat.db")
        settings = Settings()  # engine "auto": llama.cpp here

        def manager() -> ModelManager:
            return ModelManager(home / "data" / "models", catalog, endpoint="http://127.0.0.1:9",
                                settings=TransferSettings(chunk_size=16 * 1024, margin_bytes=0,
                                                          report_interval_s=0.05, retries=1,
                                                          backoff_base_s=0.01), stall_timeout=5)

        window = MainWindow(store, settings)
        extras = install(window, manager)
        window.resize(1100, 720)
        window.move(20, 20)
        window.show()
        _settle(app, 0.8)
        window.grab().save(str(OUT / "first-run.png"))
        extras.welcome.download_button.click()  # the endpoint above is a closed port: "offline"
        _wait(app, lambda: extras.welcome.download_button.text() == "Retry download", 20)
        _settle(app, 0.8)  # the status bar reads the network log every 0.5 s
        window.grab().save(str(OUT / "first-run-offline.png"))
        window.close()

        os.environ["HF_ENDPOINT"] = hub.endpoint
        store2, _ = Store.open(home / "data" / "tinychat.db")
        _seed(store2)

        def online() -> ModelManager:
            m = manager()
            m.installer.endpoint = hub.endpoint
            return m

        window = MainWindow(store2, settings)
        extras = install(window, online)
        window.resize(1100, 720)
        window.move(20, 20)
        window.show()
        extras.welcome.download_button.click()
        _wait(app, lambda: window.session.model.status.ready)
        extras.switcher.downloads.download("tinyllama-1.1b-chat-v0.4", "Q8_0")
        _wait(app, lambda: extras.switcher.manager.find("tinyllama-1.1b-chat-v0.4", "Q8_0") is not None)
        _settle(app, 0.5)

        dialog = extras.open_settings("Model")
        dialog.resize(1000, 720)
        dialog.move(120, 60)
        dialog.quant_list.pick("Q6_K")  # not installed: the inline download offer
        _settle(app, 0.5)
        dialog.grab().save(str(OUT / "settings.png"))
        dialog.show_page("Sampling")
        _settle(app, 0.3)
        dialog.grab().save(str(OUT / "settings-sampling.png"))
        dialog.show_page("Speed")
        _settle(app, 0.3)
        dialog.grab().save(str(OUT / "settings-speed.png"))
        dialog.close()

        hub.faults.trickle_bps = 120_000
        models = extras.open_models()
        models.resize(980, 520)
        models.move(80, 80)
        models.download("tinyllama-1.1b-chat-v0.4-q5_k_m")
        _wait(app, lambda: "Downloading" in models.status_of("tinyllama-1.1b-chat-v0.4-q5_k_m")
              and "left" in models.status_of("tinyllama-1.1b-chat-v0.4-q5_k_m"), 20)
        _settle(app, 2.5)
        models.grab().save(str(OUT / "model-manager-downloading.png"))
        hub.faults.trickle_bps = None
        models.close()

        window.session.refresh_conversations()
        search = extras.search()
        search.resize(620, 380)
        search.move(300, 180)
        search.query.setText("tram")
        search.run_search()
        _settle(app, 0.6)
        _screen(OUT / "search.png", window.frameGeometry())
        search.close()
        window.close()
        store2.close()
    for name in ("first-run", "first-run-offline", "settings", "settings-sampling", "settings-speed",
                 "model-manager-downloading", "search"):
        print((OUT / f"{name}.png").relative_to(ROOT))


if __name__ == "__main__":
    main()
