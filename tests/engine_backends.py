"""The backends the shared contract suite runs against, each with its generated models: our own test
models, the same with the metadata and tokenizer files of the published TinyLlama v0.4 files, and the
remote engine talking to two OpenAI-compatible servers that run our models (`tinychat serve`, and
llama-cpp-python's own server as a third-party implementation).

What a backend can promise is listed in its `capabilities`; a test that needs one runs on the cases that
have it (`@pytest.mark.needs(...)`):
  token_ids          the last chunk's stats carry the generated ids
  kv_reuse           stats report the prompt tokens found in the KV cache, and a new engine starts cold
  own_format         the engine renders the chat format itself: the format can be chosen and checked,
                     and text typed by a person is tokenized by its rules
  exact_usage        every answer, streamed too, reports exact token counts
  ends_at_turn_start an answer ends where the model opens a new turn by itself
  own_cache          the engine holds its KV cache itself: it saves and restores conversation states and
                     verifies prompt-lookup drafts against it"""

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
    slow_model: Callable[[], ModelInfo] | None = None  # local backends only (the model-file tests)
    corrupt_model: Callable[[Path], ModelInfo] | None = None
    capabilities: frozenset[str] = frozenset()


IN_PROCESS = frozenset({"token_ids", "kv_reuse", "own_format", "exact_usage", "ends_at_turn_start", "own_cache"})


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
                       random_model=model("tiny"), slow_model=slow_model, corrupt_model=corrupt_model,
                       capabilities=IN_PROCESS)


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


def _remote_engine() -> Engine:
    from engine.remote_backend import RemoteEngine

    return RemoteEngine()


def _served(kind: str) -> Callable[..., Callable[[], ModelInfo]]:
    """Test models served by a server of `kind`, each started once per session on first use."""
    from engine.remote_backend import remote_model
    from tests.served import started

    return lambda shape, **kind_of_model: lambda: remote_model(started(kind, build_cached(shape, **kind_of_model)).url)


def _remote_case(name: str, kind: str, capabilities: frozenset[str]) -> BackendCase:
    model = _served(kind)
    return BackendCase(name, _remote_engine, scripted_model=model("tiny", scripted=True),
                       turn_start_model=model("tiny", scripted=True, script=TURN_START_SCRIPT),
                       random_model=model("tiny"), capabilities=capabilities)


# The remote engine against our server and a third-party one. Each server keeps its KV cache to itself
# and renders prompts in its own format, so only what a client can observe over HTTP is promised.
REMOTE_BACKENDS: list[BackendCase] = [
    _remote_case("remote tinychat-serve", "tinychat", frozenset({"exact_usage", "ends_at_turn_start"})),
    _remote_case("remote llama_cpp.server", "llama.cpp", frozenset()),
]
