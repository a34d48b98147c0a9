"""Every load validates first: a model file llama.cpp would abort on is refused with the checker's own
reason by `validate`, by `chat` and by the engine's load (which the GUI, the self-test and the model
manager's "use" all go through), and the check is not repeated for a file that has not changed."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import validate
from engine.llamacpp_backend import LlamaCppEngine
from engine.types import LoadOptions, ModelFileError, ModelInfo
from tests.corpus.gguf_layout import F32, STRING, U32, Gguf, scalar, string
from tests.fixtures.gguf_model import build_cached

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = json.dumps({"messages": [{"role": "user", "content": "Hello"}]})


def edited(tmp_path: Path, name: str, key: str, vtype: int, payload: bytes) -> Path:
    """The tiny test model with one metadata value replaced."""
    g = Gguf.parse(build_cached("tiny", "F32").read_bytes())
    g.set(key, vtype, payload)
    path = tmp_path / f"{name}.gguf"
    path.write_bytes(g.to_bytes())
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], input=MESSAGES, capture_output=True, text=True,
                          cwd=ROOT, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})


def reason(stderr: str) -> str:
    """The one line a refusal prints."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_a_nan_rms_epsilon_is_refused_by_validate_and_by_chat_instead_of_aborting(tmp_path):
    path = edited(tmp_path, "eps-nan", "llama.attention.layer_norm_rms_epsilon", F32, scalar(F32, math.nan))
    checked = cli("validate", str(path))
    chat = cli("chat", "--model", str(path), "--json")
    assert checked.returncode == 1 and chat.returncode == 1  # not -6 (SIGABRT from GGML_ASSERT(eps >= 0))
    assert "layer_norm_rms_epsilon" in reason(checked.stderr)
    assert "layer_norm_rms_epsilon" in reason(chat.stderr)
    assert chat.stdout == ""  # --json output is never a native backtrace


def test_chat_refuses_a_layer_count_llama_cpp_asserts_on_with_the_checkers_reason(tmp_path):
    path = edited(tmp_path, "blocks", "llama.block_count", U32, scalar(U32, 2**31))
    checked = reason(cli("validate", str(path)).stderr)
    chat = cli("chat", "--model", str(path), "--json")
    assert chat.returncode == 1 and chat.stdout == ""
    assert checked.split(": ", 1)[1] in reason(chat.stderr)  # the same sentence, after naming the file


@pytest.mark.parametrize("architecture", ["gpt2", "mamba"])
def test_chat_names_the_architecture_instead_of_calling_the_file_damaged(tmp_path, architecture):
    path = edited(tmp_path, architecture, "general.architecture", STRING, string(architecture))
    chat = reason(cli("chat", "--model", str(path)).stderr)
    assert f"'{architecture}' model" in chat and "llama-architecture" in chat
    assert "damaged" not in chat


def test_the_engines_load_refuses_with_the_checkers_reason_and_names_the_file(tmp_path):
    path = edited(tmp_path, "rope", "llama.rope.scaling.type", STRING, string("bogus"))
    with pytest.raises(ModelFileError) as err:
        LlamaCppEngine().load(ModelInfo(path=path), LoadOptions())
    assert "rope.scaling.type" in err.value.message and path.name in err.value.message


def test_a_file_is_checked_once_until_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "model.gguf"
    path.write_bytes(build_cached("tiny", "F32").read_bytes())
    runs: list[Path] = []
    real = validate.validate_gguf
    monkeypatch.setattr(validate, "validate_gguf", lambda p, *a, **k: runs.append(p) or real(p, *a, **k))
    engine = LlamaCppEngine()
    for _ in range(2):
        engine.load(ModelInfo(path=path), LoadOptions())
    assert len(runs) == 1  # the second load trusted the first check of the same, unchanged file
    engine.unload()
    bad = edited(tmp_path, "other", "llama.attention.layer_norm_rms_epsilon", F32, scalar(F32, -1.0))
    os.replace(bad, path)  # same path, different file: checked again and refused
    with pytest.raises(ModelFileError, match="layer_norm_rms_epsilon"):
        engine.load(ModelInfo(path=path), LoadOptions())
    assert len(runs) == 2


def test_importing_a_model_with_a_nan_epsilon_is_refused_and_adds_nothing(tmp_path):
    from engine.models import ModelManager

    path = edited(tmp_path, "eps-nan", "llama.attention.layer_norm_rms_epsilon", F32, scalar(F32, math.nan))
    manager = ModelManager(tmp_path / "models", free_space=lambda _p: 1 << 40)
    with pytest.raises(ModelFileError, match="layer_norm_rms_epsilon"):
        manager.import_gguf(path)
    assert manager.installed() == () and manager.disk_usage() == ()
