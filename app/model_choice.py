"""Which model file the chat window loads at start, or a sentence saying why there is none."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from app import paths
from app.settings import Settings
from engine.select import choose_engine
from engine.types import EngineError, ModelInfo

log = logging.getLogger(__name__)

MODEL_ENV = "TINYCHAT_MODEL"  # a GGUF path that overrides everything (development, tests, benchmarks)
NO_MODEL = ("No model loaded — TinyLlama is not installed yet. Download it, or open a GGUF model file "
            "you already have, from the Model menu.")


def model_from_path(path: Path) -> ModelInfo:
    """A ModelInfo for a GGUF file given by path; the level is guessed from names like `…q4_k_m.gguf`."""
    stem = path.stem.lower()
    quant = next((q for q in ("q2_k", "q3_k_m", "q4_k_m", "q5_k_m", "q6_k", "q8_0", "f16", "fp16", "f32")
                  if stem.endswith(q)), "")
    return ModelInfo(path=path, model_id=path.stem, quant=quant.upper(), label=path.name)


def choose_model(settings: Settings) -> tuple[ModelInfo | None, str]:
    """The model to load: `$TINYCHAT_MODEL`, else the installed copy of the level chosen in settings,
    else any installed model for this engine. Returns (None, reason) when there is none."""
    env = os.environ.get(MODEL_ENV, "").strip()
    if env:
        return model_from_path(Path(env).expanduser()), ""
    try:
        from engine.models import ModelManager

        manager = ModelManager(paths.models_dir())
        engine = choose_engine(settings.engine).name
        try:
            found = manager.find(settings.model_id, settings.quant)
        except EngineError:
            found = None  # the chosen level is not one this engine offers: fall back below
        if found is not None and found.engine == engine:
            return found.model_info(), ""
        for m in manager.installed():
            if m.engine == engine:
                return m.model_info(), ""
    except Exception:  # the model list must never stop the window from opening
        log.exception("could not list installed models")
    return None, NO_MODEL
