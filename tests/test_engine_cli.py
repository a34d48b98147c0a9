"""`tinychat-engine`: render, chat and its one-line errors, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.level_quality import DEFAULT_WINDOWS
from tests.fixtures.gguf_model import build_cached
from tests.fixtures.hf_model import build_mlx_cached
from tests.fixtures.vocab import SCRIPT_TEXT

CONVO = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]}


def cli(*args: str, stdin: str = "", without_mlx: bool = False) -> subprocess.CompletedProcess:
    # Without MLX as in the Linux installers: `import mlx_lm` finds nothing, as when it is not installed.
    start = ["-c", "import sys; sys.modules['mlx'] = sys.modules['mlx_lm'] = None; "
                   "from engine.cli import main; sys.exit(main())"] if without_mlx else ["-m", "engine"]
    return subprocess.run([sys.executable, *start, *args], input=stdin, capture_output=True,
                          text=True, timeout=60)


def one_line_error(r: subprocess.CompletedProcess) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and r.stdout == "" and len(lines) == 1, r.stdout + r.stderr
    return lines[0]


def test_render_prints_exactly_the_prompt_text_and_nothing_else():
    r = cli("render", "--format", "chatml", stdin=json.dumps(CONVO))
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("<s><|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n"
                        "<|im_start|>assistant\n")


def test_render_llama2_folds_the_system_prompt_into_the_first_instruction():
    r = cli("render", "--format", "llama-2", stdin=json.dumps(CONVO))
    assert r.stdout == "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi there [/INST]"


def test_chat_streams_the_answer_to_stdout():
    r = cli("chat", "--model", str(build_cached("tiny", scripted=True)), "--temperature", "0",
            stdin=json.dumps(CONVO))
    assert r.returncode == 0, r.stderr
    assert r.stdout == SCRIPT_TEXT + "\n"


def test_chat_json_reports_the_answer_and_its_stats():
    r = cli("chat", "--model", str(build_cached("tiny", scripted=True)), "--json", "--max-tokens", "4",
            "--seed", "1", stdin=json.dumps(CONVO))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["finish_reason"] == "length" and out["completion_tokens"] == 4
    assert SCRIPT_TEXT.startswith(out["text"])
    assert out["prompt_tokens"] > 10 and out["reused_tokens"] == 0
    assert out["ttft_s"] > 0 and out["tokens_per_s"] > 0


@pytest.mark.parametrize(("args", "stdin", "says"), [
    (("render", "--format", "alpaca"), json.dumps(CONVO), "Unknown chat format"),
    (("render", "--format", "chatml"), "{not json", "not valid JSON"),
    (("render", "--format", "chatml"), '{"messages": [{"role": "robot", "content": "x"}]}', "role"),
    (("render", "--format", "chatml"), "[]", '"messages" list'),
    (("chat", "--model", "/nonexistent/model.gguf"), json.dumps(CONVO), "was not found"),
    (("chat", "--model", "/etc/hostname"), json.dumps(CONVO), "is not a GGUF model file"),
])
def test_bad_input_exits_nonzero_with_one_line_on_stderr(args, stdin, says):
    assert says in one_line_error(cli(*args, stdin=stdin))


def test_chat_given_an_mlx_folder_answers_through_mlx_without_being_told_the_engine():
    r = cli("chat", "--model", str(build_mlx_cached("tiny", None, scripted=True)), "--temperature", "0",
            stdin=json.dumps(CONVO))
    assert r.returncode == 0, r.stderr
    assert r.stdout == SCRIPT_TEXT + "\n"


def test_chat_given_a_folder_with_one_gguf_file_runs_that_file(tmp_path: Path):
    (tmp_path / "model.gguf").symlink_to(build_cached("tiny", scripted=True))
    (tmp_path / "README.md").write_text("notes next to the model")
    r = cli("chat", "--model", str(tmp_path), "--temperature", "0", stdin=json.dumps(CONVO))
    assert r.returncode == 0, r.stderr
    assert r.stdout == SCRIPT_TEXT + "\n"


def test_chat_given_a_folder_with_two_gguf_files_names_them_and_asks_for_one(tmp_path: Path):
    for name in ("a-q4.gguf", "b-q8.gguf"):
        (tmp_path / name).symlink_to(build_cached("tiny", scripted=True))
    line = one_line_error(cli("chat", "--model", str(tmp_path), stdin=json.dumps(CONVO)))
    assert "a-q4.gguf, b-q8.gguf" in line and "Choose one of them" in line


def test_chat_given_a_folder_without_a_model_says_what_it_looks_for(tmp_path: Path):
    (tmp_path / "config.json").write_text("{}")  # config alone, no weights: not an MLX model
    line = one_line_error(cli("chat", "--model", str(tmp_path), stdin=json.dumps(CONVO)))
    assert "neither a .gguf model file nor an MLX model" in line


def test_chat_given_an_mlx_folder_where_mlx_is_missing_says_so():
    model = build_mlx_cached("tiny", None, scripted=True)
    line = one_line_error(cli("chat", "--model", str(model), stdin=json.dumps(CONVO), without_mlx=True))
    assert line == (f"tinychat-engine: {model.name} is an MLX model folder, but MLX is not installed with this "
                    "TinyChat. Choose a .gguf model file instead.")


def test_chat_with_llama_cpp_forced_on_an_mlx_folder_says_which_engine_runs_it():
    model = build_mlx_cached("tiny", None, scripted=True)
    line = one_line_error(cli("chat", "--engine", "llama.cpp", "--model", str(model), stdin=json.dumps(CONVO)))
    assert "is an MLX model folder, which llama.cpp cannot run" in line


@pytest.mark.parametrize("entry", ["app", "engine"])
def test_both_entry_points_can_act_as_the_validation_child_as_frozen_builds_need(entry):
    # A frozen app's sys.executable is the app itself; validation re-runs it with this flag.
    good = subprocess.run([sys.executable, "-m", entry, "--tinychat-validate-child",
                           str(build_cached("tiny", scripted=True))], capture_output=True, text=True, timeout=30)
    assert good.returncode == 0 and json.loads(good.stdout)["summary"]["architecture"] == "llama"
    bad = subprocess.run([sys.executable, "-m", entry, "--tinychat-validate-child", "/etc/hostname"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "GGUF" in json.loads(bad.stdout)["error"]


def test_bench_measures_a_level_against_its_reference_as_one_json_document():
    r = subprocess.run([sys.executable, "-m", "engine", "bench", "--model", str(build_cached("small", "Q4_K_M")),
                        "--reference", str(build_cached("small", "F16")), "--threads", "2", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["level"] == "Q4_K_M" and out["threads"] == 2 and out["engine"] == "llama.cpp"
    assert out["speed"]["gen_tps"] > 0 and out["speed"]["peak_rss_bytes"] > 0
    q = out["quality"]
    assert q["reference"] == "small-random-f16.gguf · F16" and 0 < q["top1"] < 1 and q["kl_mean"] > 0
    assert q["tokens"] == DEFAULT_WINDOWS.scored and len(q["chunk_kl"]) == DEFAULT_WINDOWS.chunks == 3


def test_bench_of_a_missing_file_is_one_line_saying_so():
    r = cli("bench", "--model", "/nonexistent/model.gguf")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and "was not found" in r.stderr
