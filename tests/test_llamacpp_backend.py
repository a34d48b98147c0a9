"""llama.cpp-specific behaviour: exact tokens, template self-test, logs, bad files."""

from __future__ import annotations

import logging
import threading

import pytest

from engine.llamacpp_backend import LlamaCppEngine
from engine.types import EngineError, GenerationParams, LoadOptions, Message, ModelFileError, ModelInfo
from tests.fixtures.gguf_model import CHATML_TEMPLATE, SHAPES, build_cached, write_gguf
from tests.fixtures.vocab import SCRIPT_TEXT

BOS, EOS = 1, 2
CONVO = [Message("system", "Be brief."), Message("user", "Hi"), Message("assistant", "Hello!"),
         Message("user", "How are you?")]


@pytest.fixture(scope="module")
def engine():
    e = LlamaCppEngine()
    e.load(ModelInfo(path=build_cached("tiny", scripted=True, chat_template=CHATML_TEMPLATE)), LoadOptions())
    yield e
    e.unload()


@pytest.mark.parametrize("fmt", ["chatml", "zephyr", "llama-2", "gguf-jinja"])
def test_prompt_starts_with_exactly_one_bos(engine, fmt):
    engine.set_chat_format(fmt)
    ids = engine.prompt_ids(CONVO[:2])
    assert ids[0] == BOS and ids[1] != BOS
    assert ids.count(BOS) == 1


def test_llama2_multi_turn_has_one_bos_and_eos_per_exchange_like_meta_reference(engine):
    engine.set_chat_format("llama-2")
    ids = engine.prompt_ids(CONVO)
    assert ids.count(BOS) == 2 and ids.count(EOS) == 1
    assert ids[ids.index(EOS) + 1] == BOS  # "</s><s>" joins the turns


def test_chatml_control_tokens_are_single_tokens_in_the_prompt(engine):
    engine.set_chat_format("chatml")
    ids = engine.prompt_ids(CONVO)
    im_start, im_end = (engine._tokenize(t)[0] for t in ("<|im_start|>", "<|im_end|>"))
    assert ids.count(im_start) == 5 and ids.count(im_end) == 4  # 4 messages + generation prompt


def test_models_own_jinja_template_renders_the_same_prompt_as_chatml(engine):
    engine.set_chat_format("chatml")
    chatml = engine.prompt_ids(CONVO)
    engine.set_chat_format("gguf-jinja")
    assert engine.prompt_ids(CONVO) == chatml
    engine.set_chat_format("chatml")


def test_stored_answer_ids_are_spliced_into_the_prompt_verbatim(engine):
    engine.set_chat_format("chatml")
    odd_ids = (459, 474, 384)  # any ids: the prompt must carry these, not a re-tokenisation
    convo = [*CONVO[:2], Message("assistant", "Hello!", token_ids=odd_ids), CONVO[3]]
    ids = engine.prompt_ids(convo)
    n = len(odd_ids)
    assert any(tuple(ids[i:i + n]) == odd_ids for i in range(len(ids)))
    plain = engine.prompt_ids(CONVO)
    assert ids != plain


def test_on_the_published_shape_llama_cpp_matches_typed_im_start_even_with_special_parsing_off():
    # Why turning special parsing off is not enough (engine/literal_tokens.py): llama.cpp re-types
    # [PAD] and <|im_end|> as control tokens when it loads such a file, but not <|im_start|>.
    import llama_cpp

    llm = llama_cpp.Llama(str(build_cached("tiny", published=True)), n_ctx=256, verbose=False)
    im_start = llm.tokenize(b"<|im_start|>", add_bos=False, special=True)
    assert len(im_start) == 1
    assert llm.tokenize(b"<|im_start|>", add_bos=False, special=False) == im_start
    assert len(llm.tokenize(b"<|im_end|>", add_bos=False, special=False)) > 1
    llm.close()


def test_gguf_jinja_without_a_template_is_refused_plainly():
    e = LlamaCppEngine()
    with pytest.raises(EngineError) as err:
        e.load(ModelInfo(path=build_cached("tiny", scripted=True)), LoadOptions(chat_format="gguf-jinja"))
    assert "no chat template" in err.value.message
    assert not e.loaded


def test_chatml_on_a_model_without_chatml_tokens_warns_and_names_a_format_that_fits():
    e = LlamaCppEngine()
    report = e.load(ModelInfo(path=build_cached("tiny", scripted=True, chatml=False)), LoadOptions())
    assert len(report.warnings) == 1
    assert "<|im_start|>" in report.warnings[0] and "llama-2" in report.warnings[0].lower()
    e.unload()


def test_unknown_architecture_is_named_in_the_error(tmp_path):
    path = write_gguf(tmp_path / "other.gguf", SHAPES["tiny"], architecture="gpt-unknown")
    with pytest.raises(ModelFileError) as err:
        LlamaCppEngine().load(ModelInfo(path=path), LoadOptions())
    assert "architecture" in err.value.message


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, b"GGUF" + b"\xff" * 60])
def test_files_that_are_not_models_raise_model_file_error(tmp_path, content):
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(ModelFileError):
        LlamaCppEngine().load(ModelInfo(path=path), LoadOptions())


def test_a_folder_is_not_a_model_file(tmp_path):
    with pytest.raises(ModelFileError) as err:
        LlamaCppEngine().load(ModelInfo(path=tmp_path), LoadOptions())
    assert "folder" in err.value.message


def test_llama_cpp_logs_go_to_python_logging_not_the_terminal(caplog, capfd):
    caplog.set_level(logging.DEBUG, logger="llama.cpp")
    e = LlamaCppEngine()
    e.load(ModelInfo(path=build_cached("tiny", scripted=True)), LoadOptions())
    list(e.generate([Message("user", "hi")], GenerationParams(max_tokens=2), threading.Event()))
    e.unload()
    assert any(r.name == "llama.cpp" for r in caplog.records)
    out, err = capfd.readouterr()
    assert "llama_model_loader" not in out + err and "llama_context" not in out + err


def test_threads_default_to_physical_cores_and_context_to_2048():
    from engine.hardware import physical_cores

    e = LlamaCppEngine()
    report = e.load(ModelInfo(path=build_cached("tiny", scripted=True)), LoadOptions())
    assert report.n_threads == physical_cores() and report.n_ctx == 2048
    assert e._llm.n_ctx() == 2048
    e.unload()


def test_k_quant_levels_load_and_answer(tmp_path):
    for level in ("Q4_K_M", "Q8_0"):
        e = LlamaCppEngine()
        e.load(ModelInfo(path=build_cached("small", level, scripted=True)), LoadOptions())
        chunks = list(e.generate([Message("user", "hi")], GenerationParams(temperature=0.0), threading.Event()))
        e.unload()
        assert chunks[-1].finish_reason in ("stop", "length")
        # Quantization perturbs logits but the scripted margin survives 4-bit weights.
        assert "".join(c.text for c in chunks) == SCRIPT_TEXT



BUILT = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | OPENMP = 1 | REPACK = 1 | "


def test_a_cpu_without_the_builds_instruction_sets_is_named_before_loading():
    from engine.hardware import missing_instructions

    haswell = {"pni", "ssse3", "avx", "avx2", "f16c", "fma", "bmi2"}
    sandy_bridge = {"pni", "ssse3", "avx"}
    assert missing_instructions(BUILT, haswell) == []
    assert missing_instructions(BUILT, sandy_bridge) == ["AVX2", "F16C", "FMA", "BMI2"]
    assert missing_instructions(BUILT, None) == []  # unknown CPU (not Linux): let llama.cpp try


def test_this_machine_runs_the_installed_build():
    import llama_cpp

    from engine.hardware import cpuinfo_flags, missing_instructions

    assert missing_instructions(llama_cpp.llama_print_system_info().decode(), cpuinfo_flags()) == []
