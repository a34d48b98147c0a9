"""Picks the inference backend: MLX on Apple Silicon when mlx is importable, llama.cpp elsewhere."""

from __future__ import annotations

import importlib.util
import logging
import platform
import sys
from dataclasses import dataclass

from engine.backend import Engine
from engine.types import EngineName

log = logging.getLogger(__name__)

PREFERENCES = ("auto", "mlx", "llama.cpp")


@dataclass(frozen=True)
class EngineChoice:
    """The backend to use, why, and a message for the user when their choice could not be honoured."""

    name: EngineName
    reason: str
    fallback_message: str | None = None


def mlx_available() -> bool:
    """True when the MLX backend can run here (mlx and mlx_lm importable)."""
    return importlib.util.find_spec("mlx") is not None and importlib.util.find_spec("mlx_lm") is not None


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
