"""The backends the shared contract suite runs against, each with its generated models: our own test
models, and the same with the metadata and tokenizer files of the published TinyLlama v0.4 files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.backend import Engine
from engine.types import ModelInfo
from tests.fixtures.gguf_model import build_cached
from tests.fixtures.vocab import TURN_START_SCRIPT


@dataclass(frozen=True)
class BackendCase:
    """How to make an engine and the test models it runs.

    scripted_model answers SCRIPT_TEXT then the end-of-turn token; turn_start_model answers
    TURN_START_SCRIPT (it opens a new turn by itself); random_model is gibberish with real speed;
    slow_model takes seconds for a 2000-token prompt; corrupt_model(tmp) writes a damaged copy of a
    model into tmp."""

    name: str
    make_engine: Callable[[], Engine]
    scripted_model: Callable[[], ModelInfo]
    turn_start_model: Callable[[], ModelInfo]
    random_model: Callable[[], ModelInfo]
    slow_model: Callable[[], ModelInfo]
    corrupt_model: Callable[[Path], ModelInfo]


def _llamacpp_engine() -> Engine:
    from engine.llamacpp_backend import LlamaCppEngine

    return LlamaCppEngine()


def _gguf(shape: str, quant: str = "F32", **kind: object) -> Callable[[], ModelInfo]:
    return lambda: ModelInfo(path=build_cached(shape, quant, **kind), engine="llama.cpp")


def _truncated_gguf(tmp: Path) -> ModelInfo:
    src = build_cached("tiny", scripted=True).read_bytes()
    bad = tmp / "truncated.gguf"
    bad.write_bytes(src[: len(src) // 2])
    return ModelInfo(path=bad, engine="llama.cpp")


def _mlx_engine() -> Engine:
    from engine.mlx_backend import MlxEngine

    return MlxEngine()


def _mlx(shape: str, **kind: object) -> Callable[[], ModelInfo]:
    from tests.fixtures.hf_model import build_mlx_cached

    return lambda: ModelInfo(path=build_mlx_cached(shape, None, **kind), engine="mlx")


def _truncated_mlx(tmp: Path) -> ModelInfo:
    import shutil

    from tests.fixtures.hf_model import build_mlx_cached

    bad = tmp / "truncated-mlx"
    shutil.copytree(build_mlx_cached("tiny", None, scripted=True), bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return ModelInfo(path=bad, engine="mlx")


def _case(name: str, make_engine: Callable[[], Engine], model: Callable[..., Callable[[], ModelInfo]],
          slow_model: Callable[[], ModelInfo], corrupt_model: Callable[[Path], ModelInfo]) -> BackendCase:
    """A case whose test models all come from `model(shape, **kind)`."""
    return BackendCase(name, make_engine, scripted_model=model("tiny", scripted=True),
                       turn_start_model=model("tiny", scripted=True, script=TURN_START_SCRIPT),
                       random_model=model("tiny"), slow_model=slow_model, corrupt_model=corrupt_model)


def _cases(published: bool) -> list[BackendCase]:
    suffix = " published" if published else ""
    return [
        _case("llama.cpp" + suffix, _llamacpp_engine, lambda shape, **kind: _gguf(shape, published=published, **kind),
              _gguf("medium", "F16"), _truncated_gguf),
        _case("mlx" + suffix, _mlx_engine, lambda shape, **kind: _mlx(shape, published=published, **kind),
              _mlx("slow"), _truncated_mlx),
    ]


# Every guarantee must hold on files shaped like the ones users download, not only on ours.
BACKENDS: list[BackendCase] = _cases(published=False)
PUBLISHED_BACKENDS: list[BackendCase] = _cases(published=True)
