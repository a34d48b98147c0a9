"""The model manager with MLX levels and the kept original, for the user guide:
`xvfb-run -a -s "-screen 0 1280x860x24" python -m bench.mlx_screenshots`.

The real catalog's MLX levels, with a local fake Hub serving a small generated model under the real
repository's name: the sizes on disk are that test model's real ones (kilobytes), not TinyLlama's.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import QApplication

from bench.settings_screenshots import OUT, ROOT, _settle, _wait, fresh_home

MODEL = "tinyllama-1.1b-chat-v0.4"
REPO = "TinyLlama/TinyLlama-1.1B-Chat-v0.4"


def main() -> None:
    app = QApplication.instance() or QApplication([])
    from app.core.settings import Settings
    from app.core.store import Store
    from app.shell.main_window import MainWindow
    from app.shell.window_actions import install
    from engine.models import ModelManager
    from tests.fakehub import FakeHub
    from tests.fixtures.hf_model import build_hf_cached

    home = fresh_home(app, "tinychat-mlx-shots-")
    with FakeHub() as hub:
        snapshot = build_hf_cached("tiny", scripted=True)
        hub.add_repo(REPO, {p.name: p for p in sorted(snapshot.iterdir()) if p.is_file()})

        def manager() -> ModelManager:
            return ModelManager(home / "data" / "models", endpoint=hub.endpoint)

        manager().ensure_available(MODEL, "4bit")  # downloads the original once and keeps it
        store, _ = Store.open(home / "data" / "tinychat.db")
        window = MainWindow(store, replace(Settings(), engine="mlx", model_id=MODEL, quant="4bit"))
        extras = install(window, manager)
        window.resize(1100, 720)
        window.show()
        _wait(app, lambda: window.session.model.status.ready)
        models = extras.open_models()
        models.resize(980, 520)
        models.move(80, 80)
        _settle(app, 0.8)
        models.grab().save(str(OUT / "model-manager-mlx.png"))
        models.close()
        window.close()
        store.close()
    print((OUT / "model-manager-mlx.png").relative_to(ROOT))


if __name__ == "__main__":
    main()
