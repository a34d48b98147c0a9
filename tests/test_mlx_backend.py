"""MLX-specific behaviour beyond the shared contract (tests/test_engine_contract.py runs that for MLX too)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine import mlx_backend
from engine.mlx_backend import MlxEngine
from engine.select import choose_engine, create_engine
from engine.types import EngineError, GenerationParams, LoadOptions, Message, ModelFileError, ModelInfo
from tests.fixtures.gguf_model import build_cached
from tests.fixtures.hf_model import build_mlx_cached
from tests.fixtures.vocab import SCRIPT_TEXT
from tests.test_chat_format import DIALOGS, GOLDEN

ROOT = Path(__file__).resolve().parents[1]
GREEDY = GenerationParams(temperature=0.0, max_tokens=32, repeat_penalty=1.0)
HELLO = [Message("user", "Hello there")]


def load(shape: str = "tiny", scripted: bool = True, bits: int | None = None, published: bool = False,
         **options) -> MlxEngine:
    engine = MlxEngine()
    engine.load(ModelInfo(path=build_mlx_cached(shape, bits, scripted=scripted, published=published), engine="mlx"),
                LoadOptions(**options))
    return engine


def run(engine, messages, params=GREEDY, cancel=None):
    chunks = list(engine.generate(messages, params, cancel or threading.Event()))
    return "".join(c.text for c in chunks), chunks[-1]


@pytest.fixture
def scripted():
    engine = load()
    yield engine
    engine.unload()


@pytest.fixture(scope="module", params=[False, True], ids=["ours", "published"])
def either_tokenizer(request):
    """Our tokenizer files, and the original repository's layout (ChatML tokens as additional specials)."""
    engine = load(published=request.param)
    yield engine
    engine.unload()


@pytest.mark.parametrize("dialog", DIALOGS)
def test_golden_prompts_have_one_bos_and_each_control_token_as_one_id(either_tokenizer, dialog):
    messages = DIALOGS[dialog]
    ids = either_tokenizer.prompt_ids(messages)
    tok = either_tokenizer._tokenizer
    bos, start, end = tok.convert_tokens_to_ids(["<s>", "<|im_start|>", "<|im_end|>"])
    assert ids[0] == bos and ids.count(bos) == 1
    assert ids.count(start) == len(messages) + 1 and ids.count(end) == len(messages)  # + generation prompt
    assert tok.decode(ids) == GOLDEN["chatml"][dialog]


def test_regenerating_the_same_prompt_reuses_all_of_it_but_the_last_token(scripted):
    _, first = run(scripted, HELLO)
    _, again = run(scripted, HELLO)
    assert again.stats.reused_tokens == first.stats.prompt_tokens - 1


def test_an_edited_earlier_message_reuses_only_the_prefix_before_the_edit(scripted):
    convo = [Message("system", "Be kind."), Message("user", "one two three"), Message("assistant", "yes"),
             Message("user", "four")]
    _, first = run(scripted, convo)
    edited = [*convo[:1], Message("user", "one two thanks"), *convo[2:]]
    text, second = run(scripted, edited)
    assert 0 < second.stats.reused_tokens < first.stats.prompt_tokens - 3
    assert text == SCRIPT_TEXT


def test_cancel_mid_prompt_keeps_the_evaluated_part_for_the_next_try():
    engine = load("slow", scripted=False)
    try:
        prompt = [Message("user", "hello world " * 900)]
        cancel = threading.Event()
        threading.Timer(0.3, cancel.set).start()
        _, cancelled = run(engine, prompt, GenerationParams(max_tokens=4), cancel)
        assert cancelled.finish_reason == "cancelled"
        # The retry finds the chunks evaluated before the cancel still in the cache.
        _, retry = run(engine, prompt, GenerationParams(max_tokens=2))
        assert retry.finish_reason == "length"
        assert 0 < retry.stats.reused_tokens < retry.stats.prompt_tokens - 1
    finally:
        engine.unload()


def test_a_long_prompt_reports_how_far_it_was_read_before_the_first_word_and_answers_the_same(monkeypatch):
    long_chat = [Message("user", "hello world " * 300)]
    engine = load("tiny", scripted=False)
    try:
        chunks = list(engine.generate(long_chat, GREEDY, threading.Event()))
        first_text = next(i for i, c in enumerate(chunks) if c.text)
        reads = [c.prompt_read for c in chunks if c.prompt_read is not None]
        to_read = chunks[-1].stats.prompt_tokens - 1  # the last prompt token is read with the first answer token
        assert reads and all(c.prompt_read is not None and not c.text for c in chunks[:first_text])
        assert [d for d, _ in reads] == sorted({d for d, _ in reads}) and reads[-1] == (to_read, to_read)
        assert {total for _, total in reads} == {to_read}
        assert all(c.prompt_read is None for c in engine.generate(HELLO, GREEDY, threading.Event()))
    finally:
        engine.unload()
    monkeypatch.setattr(mlx_backend, "PROGRESS_AFTER", 10**9)  # read by mlx-lm alone, as short prompts are
    engine = load("tiny", scripted=False)
    try:
        text, _ = run(engine, long_chat)
    finally:
        engine.unload()
    assert text and text == "".join(c.text for c in chunks)


def test_a_stop_string_in_the_params_ends_the_answer_before_it(scripted):
    text, last = run(scripted, HELLO, GenerationParams(temperature=0.0, stop=("world",)))
    assert text == "Hello " and last.finish_reason == "stop"


def test_switching_the_chat_format_needs_no_reload(scripted):
    chatml_tokens = scripted.count_tokens(HELLO)
    assert scripted.set_chat_format("llama-2") == ()
    assert scripted.chat_format == "llama-2"
    assert scripted.count_tokens(HELLO) != chatml_tokens
    scripted.set_chat_format("chatml")
    assert run(scripted, HELLO)[0] == SCRIPT_TEXT


def test_the_gguf_template_format_is_refused_with_a_plain_message(scripted):
    with pytest.raises(EngineError) as e:
        scripted.set_chat_format("gguf-jinja")
    assert "chatml" in e.value.message
    assert scripted.chat_format == "chatml"


def test_a_gguf_file_given_to_mlx_is_refused_with_a_plain_message():
    with pytest.raises(ModelFileError) as e:
        MlxEngine().load(ModelInfo(path=build_cached("tiny"), engine="mlx"), LoadOptions())
    assert "not an MLX model folder" in e.value.message


def test_quantized_models_answer_the_script_too():
    for bits in (4, 8):
        engine = load(bits=bits)
        try:
            assert run(engine, HELLO)[0] == SCRIPT_TEXT
        finally:
            engine.unload()


def test_settings_can_force_mlx_where_it_is_installed():
    choice = choose_engine("mlx")
    assert choice.name == "mlx" and choice.fallback_message is None
    assert create_engine("mlx").name == "mlx"


def test_importing_the_engine_does_not_import_mlx_or_transformers():
    code = ("import sys, engine.mlx_backend, engine.mlx_convert, engine.select; "
            "print([m for m in ('mlx', 'mlx_lm', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_engine_cli_chats_through_mlx():
    model = build_mlx_cached("tiny", None, scripted=True)
    out = subprocess.run(
        [sys.executable, "-m", "engine", "chat", "--engine", "mlx", "--model", str(model), "--json",
         "--temperature", "0"],
        cwd=ROOT, input=json.dumps({"messages": [{"role": "user", "content": "Hi"}]}),
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["text"] == SCRIPT_TEXT and result["finish_reason"] == "stop"


def test_the_repeat_penalty_sees_the_reused_history_so_warm_and_cold_answers_match():
    params = GenerationParams(temperature=0.0, max_tokens=24, repeat_penalty=1.5)
    warm = load(scripted=False)
    cold = load(scripted=False)
    try:
        first_text, first = run(warm, HELLO, params)
        convo = [*HELLO, Message("assistant", first_text, token_ids=first.stats.token_ids), Message("user", "more")]
        warm_text, warm_last = run(warm, convo, params)
        cold_text, cold_last = run(cold, convo, params)
        assert warm_last.stats.reused_tokens > 0 and cold_last.stats.reused_tokens == 0
        assert warm_last.stats.token_ids == cold_last.stats.token_ids
        assert warm_text == cold_text
    finally:
        warm.unload()
        cold.unload()


def test_a_folder_with_a_damaged_config_is_a_plain_model_file_error(tmp_path):
    import shutil

    bad = tmp_path / "m"
    shutil.copytree(build_mlx_cached("tiny", None, scripted=True), bad)
    for content in ("{not json", "[1, 2]"):
        (bad / "config.json").write_text(content)
        with pytest.raises(ModelFileError) as e:
            MlxEngine().load(ModelInfo(path=bad, engine="mlx"), LoadOptions())
        assert "damaged config.json" in e.value.message


def test_loading_where_mlx_is_not_installed_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlx_lm", None)  # what `import mlx_lm` finds when it is not installed
    engine = MlxEngine()
    with pytest.raises(EngineError) as e:
        engine.load(ModelInfo(path=build_mlx_cached("tiny", None, scripted=True), engine="mlx"), LoadOptions())
    assert "not installed" in e.value.message and "llama.cpp" in e.value.message
    assert not engine.loaded
