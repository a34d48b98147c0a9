"""MLX end to end: the model manager downloads the original snapshot from a (fake) Hub, converts it
locally, and the MLX engine chats with the result — the path a Mac user takes, on a generated model."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine.mlx_backend import MlxEngine
from engine.models import ModelManager
from engine.types import GenerationParams, LoadOptions, Message
from tests.fakehub import FakeHub
from tests.fixtures.hf_model import build_hf_cached
from tests.fixtures.vocab import SCRIPT_TEXT

MODEL = "tinyllama-1.1b-chat-v0.4"
REPO = "TinyLlama/TinyLlama-1.1B-Chat-v0.4"  # as the shipped catalog names it


@pytest.fixture
def hub(monkeypatch):
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    snapshot = build_hf_cached("tiny", scripted=True)
    with FakeHub() as hub:
        hub.add_repo(REPO, {p.name: p for p in sorted(snapshot.iterdir()) if p.is_file()})
        yield hub


def chat(manager: ModelManager, model_dir: Path) -> str:
    """Load the installed model at `model_dir` as the app would (its manifest's ModelInfo) and chat."""
    installed = next(m for m in manager.installed() if m.path == model_dir)
    engine = MlxEngine()
    engine.load(installed.model_info(), LoadOptions())
    try:
        params = GenerationParams(temperature=0.0, max_tokens=32)
        return "".join(c.text for c in engine.generate([Message("user", "Hi!")], params, threading.Event()))
    finally:
        engine.unload()


def test_download_convert_load_chat_and_switch_levels_without_downloading_again(hub, tmp_path):
    manager = ModelManager(tmp_path / "models", endpoint=hub.endpoint, free_space=lambda _p: 1 << 40)
    phases: list[str] = []
    path4 = manager.ensure_available(MODEL, "4bit", progress=lambda p: phases.append(p.phase))
    assert "converting" in phases and phases[-1] == "done"
    original = build_hf_cached("tiny", scripted=True) / "model.safetensors"
    assert hub.served("model.safetensors") == original.stat().st_size
    assert chat(manager, path4) == SCRIPT_TEXT

    hub.reset_counters()
    path8 = manager.ensure_available(MODEL, "8bit")
    path16 = manager.ensure_available(MODEL, "16bit")
    assert hub.served("model.safetensors") == 0  # the kept original was converted again
    assert len({path4, path8, path16}) == 3
    assert chat(manager, path8) == SCRIPT_TEXT and chat(manager, path16) == SCRIPT_TEXT

    # The original can be deleted to reclaim disk; the converted levels keep working.
    source = next(u for u in manager.disk_usage() if u.state == "source")
    assert manager.delete(source.id) > 0
    assert chat(manager, path4) == SCRIPT_TEXT
