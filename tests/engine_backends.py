"""The backends the shared contract suite runs against, each with its generated models."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.backend import Engine
from engine.types import ModelInfo
from tests.fixtures.gguf_model import build_cached


@dataclass(frozen=True)
class BackendCase:
    """How to make an engine and the test models it runs.

    scripted_model answers SCRIPT_TEXT then the end-of-turn token; random_model is gibberish with
    real speed; slow_model takes seconds for a 2000-token prompt; corrupt_model(tmp) writes a
    damaged copy of a model into tmp."""

    name: str
    make_engine: Callable[[], Engine]
    scripted_model: Callable[[], ModelInfo]
    random_model: Callable[[], ModelInfo]
    slow_model: Callable[[], ModelInfo]
    corrupt_model: Callable[[Path], ModelInfo]


def _llamacpp_engine() -> Engine:
    from engine.llamacpp_backend import LlamaCppEngine

    return LlamaCppEngine()


def _gguf(shape: str, quant: str = "F32", scripted: bool = False) -> Callable[[], ModelInfo]:
    return lambda: ModelInfo(path=build_cached(shape, quant, scripted=scripted), engine="llama.cpp")


def _truncated_gguf(tmp: Path) -> ModelInfo:
    src = build_cached("tiny", scripted=True).read_bytes()
    bad = tmp / "truncated.gguf"
    bad.write_bytes(src[: len(src) // 2])
    return ModelInfo(path=bad, engine="llama.cpp")


def _mlx_engine() -> Engine:
    from engine.mlx_backend import MlxEngine

    return MlxEngine()


def _mlx(shape: str, scripted: bool = False) -> Callable[[], ModelInfo]:
    from tests.fixtures.hf_model import build_mlx_cached

    return lambda: ModelInfo(path=build_mlx_cached(shape, None, scripted=scripted), engine="mlx")


def _truncated_mlx(tmp: Path) -> ModelInfo:
    import shutil

    from tests.fixtures.hf_model import build_mlx_cached

    bad = tmp / "truncated-mlx"
    shutil.copytree(build_mlx_cached("tiny", None, scripted=True), bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return ModelInfo(path=bad, engine="mlx")


BACKENDS: list[BackendCase] = [
    BackendCase(
        name="llama.cpp",
        make_engine=_llamacpp_engine,
        scripted_model=_gguf("tiny", scripted=True),
        random_model=_gguf("tiny"),
        slow_model=_gguf("medium", "F16"),
        corrupt_model=_truncated_gguf,
    ),
    BackendCase(
        name="mlx",
        make_engine=_mlx_engine,
        scripted_model=_mlx("tiny", scripted=True),
        random_model=_mlx("tiny"),
        slow_model=_mlx("slow"),
        corrupt_model=_truncated_mlx,
    ),
]
