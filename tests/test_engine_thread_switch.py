"""The engine thread runs whichever backend the loaded model needs."""

from __future__ import annotations

from engine.select import create_engine
from engine.types import LoadOptions
from tests.engine_backends import BACKENDS

WAIT_MS = 30_000


def test_a_model_for_the_other_backend_switches_the_engine_without_a_restart(qtbot):
    from app.background.engine_worker import EngineThread

    gguf, mlx = (next(b for b in BACKENDS if b.name == n).scripted_model() for n in ("llama.cpp", "mlx"))
    thread = EngineThread(lambda: create_engine("llama.cpp"))
    thread.start()
    try:
        names = []
        for model in (gguf, mlx, gguf):
            with qtbot.waitSignal(thread.loaded, timeout=WAIT_MS) as loaded:
                thread.load(model, LoadOptions())
            names.append(loaded.args[0].engine_name)
        assert names == ["llama.cpp", "mlx", "llama.cpp"]
    finally:
        thread.shutdown()
