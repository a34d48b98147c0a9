"""gguf-jinja (a chat template read from a model file is untrusted data: sandboxed, bounded, and
every failure a plain sentence) and the format registry with its load-time self-test."""

from __future__ import annotations

from pathlib import Path

import llama_cpp
import pytest

from engine import chat_template
from engine.chat_format import ChatFormat, UnknownFormatError, format_names, get_format
from engine.format_vocab import bind_to_vocab, self_test
from engine.types import EngineError
from tests.fixtures.gguf_model import CHATML_TEMPLATE
from tests.test_chat_format import HF_LLAMA2_TEMPLATE, HF_ZEPHYR_TEMPLATE, M, llm, single_token

__all__ = ["llm"]  # the shared module-scoped tokenizer fixture


# =================================================================================================
# gguf-jinja: a template is untrusted data
# =================================================================================================

ESCAPES = {
    "class_mro": "{{ ''.__class__.__mro__ }}",
    "class_alone": "{{ ''.__class__ }}",
    "cycler_globals": "{{ cycler.__init__.__globals__ }}",
    "cycler_os_system": "{{ cycler.__init__.__globals__.os.system('touch {canary}') }}",
    "subclasses": "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{{ c }}{% endfor %}",
    "lipsum_globals": "{{ lipsum.__globals__['os'].system('touch {canary}') }}",
    "joiner_globals": "{{ joiner.__init__.__globals__ }}",
    "range_globals": "{{ range.__globals__ }}",
    "raise_exception_globals": "{{ raise_exception.__globals__ }}",
    "format_string_attribute": "{{ '{0.__class__.__mro__}'.format(messages) }}",
    "message_dict_internals": "{{ messages[0].__class__ }}",
    "mutate_messages": "{{ messages.append({'role': 'user', 'content': 'x'}) }}",
    "mutate_message": "{{ messages[0].update({'content': 'x'}) }}",
    "getitem_dunder": "{{ messages['__class__'] }}",
    "attr_filter": "{{ messages | attr('__class__') }}",
}


@pytest.mark.parametrize("name", ESCAPES)
def test_a_template_that_tries_to_leave_the_sandbox_is_an_error_not_code(name: str, tmp_path: Path) -> None:
    canary = tmp_path / "pwned"
    template = ESCAPES[name].replace("{canary}", str(canary))
    with pytest.raises(EngineError) as err:
        get_format("gguf-jinja", gguf_template=template).prompt_text([M("user", "hi")])
    assert "tried to do something unsafe and was stopped" in err.value.message
    assert "Choose another chat format" in err.value.message
    assert not canary.exists()


def test_raise_exception_in_a_template_becomes_a_plain_error_with_its_message() -> None:
    fmt = get_format("gguf-jinja", gguf_template=HF_LLAMA2_TEMPLATE)
    with pytest.raises(EngineError, match="Conversation roles must alternate") as err:
        fmt.prompt_text([M("user", "a"), M("user", "b")])
    assert err.value.message.endswith("Choose another chat format in Settings.")


@pytest.mark.parametrize("template", [
    "{% for m in messages %}{{ m['content'] }",  # unclosed tag
    "{% if %}",
    "{% endfor %}",
])
def test_a_template_that_does_not_compile_fails_when_the_format_is_made(template: str) -> None:
    with pytest.raises(EngineError, match="chat template stored in this model file is broken"):
        get_format("gguf-jinja", gguf_template=template)


@pytest.mark.parametrize("template", [
    "{{ messages[0]['content'] + 1 }}",  # TypeError
    "{{ 1 / 0 }}",
    "{{ undefined_thing.attr.other }}",
    "{% include 'other.jinja' %}",
])
def test_a_template_that_fails_at_render_time_is_a_plain_error(template: str) -> None:
    with pytest.raises(EngineError, match="failed on this conversation"):
        get_format("gguf-jinja", gguf_template=template).prompt_text([M("user", "hi")])


def test_a_template_that_would_loop_for_ages_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chat_template, "TEMPLATE_TIME_LIMIT_S", 0.2)
    spin = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    with pytest.raises(EngineError, match="runs away"):
        get_format("gguf-jinja", gguf_template=spin).prompt_text([M("user", "hi")])


def test_a_template_that_writes_an_endless_prompt_is_stopped() -> None:
    flood = "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}"
    with pytest.raises(EngineError, match="runs away"):
        get_format("gguf-jinja", gguf_template=flood).prompt_text([M("user", "hi")])


def test_tojson_keeps_characters_as_transformers_does() -> None:
    fmt = get_format("gguf-jinja", gguf_template="{{ messages[0]['content'] | tojson }}")
    assert fmt.prompt_text([M("user", "<b> & 'é'")]) == '<s>"<b> & \'é\'"'


def test_gguf_jinja_without_a_template_says_what_to_choose() -> None:
    with pytest.raises(EngineError, match="no chat template of its own"):
        get_format("gguf-jinja")


def test_gguf_jinja_control_tokens_come_from_the_template() -> None:
    assert get_format("gguf-jinja", gguf_template=CHATML_TEMPLATE).control_tokens == (
        "<|im_start|>", "<|im_end|>", "<s>", "</s>")
    assert get_format("gguf-jinja", gguf_template=HF_ZEPHYR_TEMPLATE).control_tokens == ("<s>", "</s>")


# =================================================================================================
# Registry and load-time self-test
# =================================================================================================


def test_format_names_lists_every_format_for_the_settings_ui() -> None:
    assert format_names() == ("llama-2", "chatml", "zephyr", "gguf-jinja")
    for name in format_names():
        fmt = get_format(name, gguf_template=CHATML_TEMPLATE)
        assert isinstance(fmt, ChatFormat) and fmt.name == name and fmt.label


def test_an_unknown_format_name_is_an_engine_error_listing_the_known_ones() -> None:
    with pytest.raises(UnknownFormatError) as err:
        get_format("alpaca")
    assert isinstance(err.value, EngineError)
    assert err.value.message == "Unknown chat format 'alpaca'. Known formats: llama-2, chatml, zephyr, gguf-jinja."


@pytest.mark.parametrize("name", ["llama-2", "chatml", "zephyr"])
def test_self_test_passes_on_a_vocab_that_has_the_formats_tokens(llm: llama_cpp.Llama, name: str) -> None:
    assert self_test(get_format(name), single_token(llm)) == []


def test_self_test_sees_that_zephyr_markers_are_plain_text_not_tokens(llm: llama_cpp.Llama) -> None:
    assert not single_token(llm)("<|user|>")
    assert self_test(get_format("zephyr"), single_token(llm)) == []


# A Llama 2 vocab: <s> and </s> are tokens, the ChatML markers are not.
LLAMA2_VOCAB = {"<unk>", "<s>", "</s>"}


def test_self_test_warns_when_chatml_tokens_are_missing_and_names_llama2() -> None:
    warnings = self_test(get_format("chatml"), LLAMA2_VOCAB.__contains__)
    assert warnings == [
        "The chat format ChatML (TinyLlama Chat v0.4) needs <|im_start|> and <|im_end|> as single tokens, "
        "but this model does not have them, so its answers will likely be nonsense. "
        "Choose Llama 2 Chat ([INST] … [/INST]) (llama-2) in Settings."
    ]


def test_self_test_names_chatml_when_the_vocab_has_it_and_bos_is_missing_elsewhere() -> None:
    # A vocab whose BOS is not <s>: no built-in format fits, the model's own template does.
    vocab = {"<|im_start|>", "<|im_end|>", "<|endoftext|>"}
    warnings = self_test(get_format("chatml"), vocab.__contains__)
    assert len(warnings) == 1
    assert "needs <s> and </s>" in warnings[0] and "(gguf-jinja)" in warnings[0]


def test_self_test_prefers_the_format_with_the_most_control_tokens_that_fit() -> None:
    vocab = {"<s>", "</s>", "<|im_start|>", "<|im_end|>"}
    gguf = get_format("gguf-jinja", gguf_template="<|eot_id|>{{ messages[0]['content'] }}")
    [warning] = self_test(gguf, vocab.__contains__)
    assert "needs <|eot_id|> as single tokens" in warning and "(chatml)" in warning


def test_self_test_only_suggests_formats_it_is_allowed_to() -> None:
    [warning] = self_test(get_format("chatml"), LLAMA2_VOCAB.__contains__, available=["chatml", "zephyr"])
    assert "(zephyr)" in warning
    [warning] = self_test(get_format("chatml"), LLAMA2_VOCAB.__contains__, available=["chatml"])
    assert warning.endswith("Choose another chat format in Settings.")


def test_bind_to_vocab_turns_single_token_stops_into_ids_and_the_rest_into_stop_strings(llm) -> None:
    def tokenize(text: str) -> list[int]:
        return llm.tokenize(text.encode(), add_bos=False, special=True)

    chatml = bind_to_vocab(get_format("chatml"), tokenize, [llm.token_eos()])
    assert chatml.stop_ids == {llm.token_eos(), tokenize("<|im_end|>")[0]}
    assert chatml.stop_strings == () and chatml.warnings == ()
    # On a vocab without the ChatML markers, <|im_end|> can only be caught as text, and the user is warned.
    def no_chatml(text: str) -> list[int]:
        return tokenize(text) if text in {"<s>", "</s>"} else [7, 7]

    bound = bind_to_vocab(get_format("chatml"), no_chatml, [2])
    assert bound.stop_ids == {2} and bound.stop_strings == ("<|im_end|>",)
    assert len(bound.warnings) == 1
