"""Which model file the chat window loads at start, or a sentence saying why there is none."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from app.core import paths
from app.core.settings import Settings
from engine.catalog import CatalogError
from engine.remote_backend import remote_model
from engine.select import choose_engine
from engine.types import ModelInfo

if TYPE_CHECKING:
    from engine.models import InstalledModel, ModelManager

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
    """The model to load at start: `$TINYCHAT_MODEL`, else the server chosen in Settings, else what
    `resolve_model` picks among the installed ones. Returns (None, reason) when there is none."""
    env = os.environ.get(MODEL_ENV, "").strip()
    if env:
        return model_from_path(Path(env).expanduser()), ""
    if settings.remote.enabled and settings.remote.url:  # the user chose a server in Settings → Server
        r = settings.remote
        return remote_model(r.url, r.model, r.api_key), ""
    try:
        from engine.models import ModelManager

        found = resolve_model(ModelManager(paths.models_dir()), settings)
        if found is not None:
            return found.model_info(), ""
    except Exception:  # the model list must never stop the window from opening
        log.exception("could not list installed models")
    return None, NO_MODEL


def resolve_model(manager: ModelManager, settings: Settings) -> InstalledModel | None:
    """The installed model to load at start: the one in the settings, else the engine's default level,
    else any installed model of that engine. None means first run (nothing usable is installed)."""
    engine = choose_engine(settings.engine).name
    installed = [m for m in manager.installed() if m.engine == engine]
    for m in installed:
        if m.model == settings.model_id and m.level.lower() == settings.quant.lower():
            return m
    try:
        default = manager.catalog.default(settings.model_id, engine)
        for m in installed:
            if m.id == default.id:
                return m
    except CatalogError:
        pass
    return installed[0] if installed else None
