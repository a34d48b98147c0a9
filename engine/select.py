"""Picks the inference backend: MLX on Apple Silicon when mlx is importable, llama.cpp elsewhere; for a model
given by path, the backend that runs what the path holds."""

from __future__ import annotations

import functools
import importlib.util
import logging
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.backend import Engine
from engine.types import EngineName, ModelFileError

log = logging.getLogger(__name__)

PREFERENCES = ("auto", "mlx", "llama.cpp")


@dataclass(frozen=True)
class EngineChoice:
    """The backend to use, why, and a message for the user when their choice could not be honoured."""

    name: EngineName
    reason: str
    fallback_message: str | None = None


@functools.cache
def mlx_available() -> bool:
    """True when the MLX backend can run here: mlx's native core loads (a package that is found but
    cannot load its library, as in a frozen build without it, does not count) and mlx_lm is there.
    mlx_lm itself is only looked up: importing it pulls in transformers (1.5–2 s)."""
    if importlib.util.find_spec("mlx") is None or importlib.util.find_spec("mlx_lm") is None:
        return False
    try:
        import mlx.core  # noqa: F401
    except Exception as exc:  # ImportError, OSError from a missing library, RuntimeError without a device
        log.info("MLX is installed but cannot run here: %r", exc)
        return False
    return True


def mlx_runs_on_cpu() -> bool:
    """True where MLX has no GPU to use (any computer but an Apple Silicon Mac): it then runs slowly."""
    return not is_apple_silicon()


def is_apple_silicon() -> bool:
    """macOS on arm64: where MLX uses the GPU and unified memory."""
    return sys.platform == "darwin" and platform.machine() == "arm64"


def choose_engine(preference: str = "auto") -> EngineChoice:
    """Resolve a settings preference ('auto', 'mlx', 'llama.cpp') to a backend."""
    if preference == "llama.cpp":
        return EngineChoice("llama.cpp", "llama.cpp was chosen in Settings.")
    if preference == "mlx":
        if mlx_available():
            return EngineChoice("mlx", "MLX was chosen in Settings.")
        return EngineChoice(
            "llama.cpp", "MLX is not installed on this computer, so llama.cpp is used.",
            fallback_message="MLX is not available on this computer (it needs the mlx and mlx-lm packages, "
                             "and runs best on Apple Silicon Macs). TinyChat is using llama.cpp instead.")
    if is_apple_silicon() and mlx_available():
        return EngineChoice("mlx", "Automatic: this Mac has Apple Silicon, where MLX is fastest.")
    if is_apple_silicon():
        return EngineChoice("llama.cpp", "Automatic: MLX is not installed, so llama.cpp is used.")
    return EngineChoice("llama.cpp", "Automatic: llama.cpp runs GGUF models on this computer's CPU.")


def create_engine(preference: str = "auto") -> Engine:
    """A new, unloaded engine for the chosen backend ("remote": a server the user chose in Settings)."""
    if preference == "remote":
        from engine.remote_backend import RemoteEngine

        return RemoteEngine()
    choice = choose_engine(preference)
    if choice.fallback_message:
        log.warning("%s", choice.fallback_message)
    if choice.name == "mlx":
        from engine.mlx_backend import MlxEngine

        return MlxEngine()
    from engine.llamacpp_backend import LlamaCppEngine

    return LlamaCppEngine()


def is_mlx_folder(path: Path) -> bool:
    """True for an MLX model snapshot: a folder with config.json and safetensors weights."""
    return path.is_dir() and (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def engine_for_model(path: Path, preference: str = "auto") -> tuple[EngineName, Path]:
    """The backend for the model at `path` and the path to give it. 'auto' follows the model: an MLX folder
    runs on MLX, a .gguf file (or a folder holding exactly one) on llama.cpp. Raises ModelFileError with a
    plain sentence when the path cannot be run as asked."""
    if is_mlx_folder(path):
        if preference == "llama.cpp":
            raise ModelFileError(f"{path.name} is an MLX model folder, which llama.cpp cannot run. Choose the "
                                 "MLX engine, or a .gguf model file.", detail=str(path))
        if not mlx_available():
            raise ModelFileError(f"{path.name} is an MLX model folder, but MLX is not installed with this "
                                 "TinyChat. Choose a .gguf model file instead.", detail=str(path))
        return "mlx", path
    if preference == "mlx":
        return "mlx", path  # create_engine says so and falls back when MLX is missing
    if path.is_dir():
        path = _only_gguf_in(path)
    return "llama.cpp", path


def _only_gguf_in(folder: Path) -> Path:
    ggufs = sorted(p for p in folder.glob("*.gguf") if p.is_file())
    if len(ggufs) == 1:
        return ggufs[0]
    if ggufs:
        names = ", ".join(p.name for p in ggufs)
        raise ModelFileError(f"The folder {folder.name} holds {len(ggufs)} .gguf model files ({names}). Choose "
                             "one of them.", detail=str(folder))
    raise ModelFileError(f"The folder {folder.name} holds neither a .gguf model file nor an MLX model "
                         "(config.json and .safetensors weights). Choose a model file or an MLX model folder.",
                         detail=str(folder))
