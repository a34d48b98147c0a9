"""Chat formats, byte for byte: hand-written golden prompts for every format, Llama 2 checked against
two independent references (Meta's `chat_completion` and the HF Jinja template for Llama-2-chat),
and every prompt tokenized by the real llama.cpp to prove BOS appears exactly once at the start.

References (looked up, not remembered):
- meta-llama/llama `llama/generation.py` (`Llama.chat_completion`, commit 689c7f2): each finished
  exchange is `tokenizer.encode(f"{B_INST} {(prompt['content']).strip()} {E_INST} "
  f"{(answer['content']).strip()} ", bos=True, eos=True)`, the last user turn
  `encode(f"{B_INST} {(dialog[-1]['content']).strip()} {E_INST}", bos=True, eos=False)`, and a leading
  system message becomes `B_SYS + system + E_SYS + first_user` (stripped as a whole, afterwards).
- meta-llama/Llama-2-7b-chat-hf `tokenizer_config.json` `chat_template` (as copied verbatim into
  EricLBuehler/mistral.rs and huggingface/huggingface.js tests).
- HuggingFaceH4/zephyr-7b-beta `chat_template` (huggingface/huggingface.js `packages/jinja/test`).
- ChatML: openai/openai-python `chatml.md`; TinyLlama chat model card: the prompt is
  `<|im_start|>user\\n{prompt}<|im_end|>\\n<|im_start|>assistant\\n`, the turn ends with `<|im_end|>`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jinja2
import jinja2.ext
import jinja2.sandbox
import llama_cpp
import pytest

from engine.chat_format import Part, get_format
from engine.types import EngineError, Message
from tests.fixtures.gguf_model import CHATML_TEMPLATE, build_cached


def M(role: str, content: str) -> Message:
    return Message(role, content)  # type: ignore[arg-type]


# --- the dialogs ---------------------------------------------------------------------------------

DIALOGS: dict[str, tuple[Message, ...]] = {
    "no_system": (M("user", "What is the capital of France?"),),
    "system": (M("system", "You are a pirate."), M("user", "Hello!")),
    "multi_turn": (
        M("system", "Be brief."),
        M("user", "Hello"),
        M("assistant", "Hi there."),
        M("user", "What is 2+2?"),
        M("assistant", "4"),
        M("user", "And 3+3?"),
    ),
    "empty": (M("system", ""), M("user", ""), M("assistant", ""), M("user", "")),
    "whitespace": (
        M("system", "  Be terse.\n"),
        M("user", "\n  Hello  \n"),
        M("assistant", "  Hi!  \n\n"),
        M("user", "\tBye\t"),
    ),
    "unicode": (
        M("system", "Réponds en français 🇫🇷"),
        M("user", "你好，世界 🎉 مرحبا"),
        M("assistant", "שלום! 👋🏽"),
        M("user", "Ça va? ☕ e\u0301"),
    ),
}

# Hand-written: what each format must produce, character for character (generation prompt on).
GOLDEN: dict[str, dict[str, str]] = {
    "llama-2": {
        "no_system": "<s>[INST] What is the capital of France? [/INST]",
        "system": "<s>[INST] <<SYS>>\nYou are a pirate.\n<</SYS>>\n\nHello! [/INST]",
        "multi_turn": "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHello [/INST] Hi there. </s>"
        "<s>[INST] What is 2+2? [/INST] 4 </s><s>[INST] And 3+3? [/INST]",
        # Meta strips system+E_SYS+user as a whole: an empty user eats E_SYS's trailing blank line.
        "empty": "<s>[INST] <<SYS>>\n\n<</SYS>> [/INST]  </s><s>[INST]  [/INST]",
        # ... and a system prompt shields the first user message's leading whitespace from strip().
        "whitespace": "<s>[INST] <<SYS>>\n  Be terse.\n\n<</SYS>>\n\n\n  Hello [/INST] Hi! </s>"
        "<s>[INST] Bye [/INST]",
        "unicode": "<s>[INST] <<SYS>>\nRéponds en français 🇫🇷\n<</SYS>>\n\n你好，世界 🎉 مرحبا [/INST] "
        "שלום! 👋🏽 </s><s>[INST] Ça va? ☕ e\u0301 [/INST]",
    },
    "chatml": {
        "no_system": "<s><|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
        "system": "<s><|im_start|>system\nYou are a pirate.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n"
        "<|im_start|>assistant\n",
        "multi_turn": "<s><|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
        "<|im_start|>assistant\nHi there.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n",
        "empty": "<s><|im_start|>system\n<|im_end|>\n<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n"
        "<|im_end|>\n<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n",
        "whitespace": "<s><|im_start|>system\n  Be terse.\n<|im_end|>\n<|im_start|>user\n\n  Hello  \n<|im_end|>\n"
        "<|im_start|>assistant\n  Hi!  \n\n<|im_end|>\n<|im_start|>user\n\tBye\t<|im_end|>\n"
        "<|im_start|>assistant\n",
        "unicode": "<s><|im_start|>system\nRéponds en français 🇫🇷<|im_end|>\n<|im_start|>user\n你好，世界 🎉 مرحبا"
        "<|im_end|>\n<|im_start|>assistant\nשלום! 👋🏽<|im_end|>\n<|im_start|>user\nÇa va? ☕ e\u0301<|im_end|>\n"
        "<|im_start|>assistant\n",
    },
    "zephyr": {
        "no_system": "<s><|user|>\nWhat is the capital of France?</s>\n<|assistant|>\n",
        "system": "<s><|system|>\nYou are a pirate.</s>\n<|user|>\nHello!</s>\n<|assistant|>\n",
        "multi_turn": "<s><|system|>\nBe brief.</s>\n<|user|>\nHello</s>\n<|assistant|>\nHi there.</s>\n"
        "<|user|>\nWhat is 2+2?</s>\n<|assistant|>\n4</s>\n<|user|>\nAnd 3+3?</s>\n<|assistant|>\n",
        "empty": "<s><|system|>\n</s>\n<|user|>\n</s>\n<|assistant|>\n</s>\n<|user|>\n</s>\n<|assistant|>\n",
        "whitespace": "<s><|system|>\n  Be terse.\n</s>\n<|user|>\n\n  Hello  \n</s>\n<|assistant|>\n  Hi!  \n\n</s>\n"
        "<|user|>\n\tBye\t</s>\n<|assistant|>\n",
        "unicode": "<s><|system|>\nRéponds en français 🇫🇷</s>\n<|user|>\n你好，世界 🎉 مرحبا</s>\n<|assistant|>\n"
        "שלום! 👋🏽</s>\n<|user|>\nÇa va? ☕ e\u0301</s>\n<|assistant|>\n",
    },
}

GOLDEN_CASES = [(fmt, dialog) for fmt in GOLDEN for dialog in DIALOGS]

# Dialogs Meta's chat_completion accepts (alternating, ending with a user turn) beyond the six above.
EXTRA_META_DIALOGS: dict[str, tuple[Message, ...]] = {
    "single_empty_user": (M("user", ""),),
    "whitespace_only_everywhere": (M("system", " \n "), M("user", " \t "), M("assistant", "\n"), M("user", " ")),
    "whitespace_no_system": (M("user", "  padded  "), M("assistant", "\n answer \n"), M("user", "\nnext\n")),
    "unicode_whitespace": (M("user", "\u3000全角\u3000"), M("assistant", "\u00a0nbsp\u00a0"), M("user", "\u2003x")),
    "newlines_inside": (M("system", "line 1\n\nline 2"), M("user", "a\nb"), M("assistant", "c\n\nd"), M("user", "e")),
    "brackets_in_text": (M("user", "What does [INST] mean?"), M("assistant", "A tag."), M("user", "<<SYS>>?")),
}
META_DIALOGS = {**DIALOGS, **EXTRA_META_DIALOGS}


# --- oracle 1: Meta's chat_completion, re-implemented from llama/generation.py -------------------

B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"


def meta_dialog_turns(dialog: Sequence[Message]) -> list[tuple[str, bool]]:
    """Meta's chat_completion up to tokenization: the strings it encodes, each with bos=True and
    with eos=True for finished exchanges (the bool). Raises AssertionError where Meta does."""
    d = [{"role": m.role, "content": m.content} for m in dialog]
    if d[0]["role"] == "system":
        d = [{"role": d[1]["role"], "content": B_SYS + d[0]["content"] + E_SYS + d[1]["content"]}, *d[2:]]
    assert all(m["role"] == "user" for m in d[::2]) and all(m["role"] == "assistant" for m in d[1::2])
    turns = [
        (f"{B_INST} {(prompt['content']).strip()} {E_INST} {(answer['content']).strip()} ", True)
        for prompt, answer in zip(d[::2], d[1::2], strict=False)
    ]
    assert d[-1]["role"] == "user"
    turns.append((f"{B_INST} {(d[-1]['content']).strip()} {E_INST}", False))
    return turns


def meta_prompt_text(dialog: Sequence[Message]) -> str:
    """Meta's prompt with BOS/EOS ids written as the text of those tokens."""
    return "".join(f"<s>{text}{'</s>' if eos else ''}" for text, eos in meta_dialog_turns(dialog))


def meta_prompt_ids(dialog: Sequence[Message], encode: Callable[[str], list[int]], bos: int, eos: int) -> list[int]:
    """Meta's prompt token ids: each turn encoded on its own (SentencePiece adds its dummy prefix)."""
    ids: list[int] = []
    for text, with_eos in meta_dialog_turns(dialog):
        ids += [bos, *encode(text), *([eos] if with_eos else [])]
    return ids


# --- oracle 2: the HF Jinja templates, rendered as transformers does -----------------------------

# meta-llama/Llama-2-7b-chat-hf tokenizer_config.json "chat_template" (JSON "\\n" is "\n" for Jinja).
HF_LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)
# HuggingFaceH4/zephyr-7b-beta tokenizer_config.json "chat_template".
HF_ZEPHYR_TEMPLATE = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n"
    "{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
)
# transformers' default ChatML template; the TinyLlama card's prompt is the same text.
HF_CHATML_TEMPLATE = CHATML_TEMPLATE


class HFTemplateError(Exception):
    pass


def hf_render(template: str, dialog: Sequence[Message], add_generation_prompt: bool = True) -> str:
    """apply_chat_template(tokenize=False) as transformers does it: sandbox, trim/lstrip blocks."""

    def raise_exception(message: str) -> None:
        raise HFTemplateError(message)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    messages = [{"role": m.role, "content": m.content} for m in dialog]
    return env.from_string(template).render(
        messages=messages, add_generation_prompt=add_generation_prompt, bos_token="<s>", eos_token="</s>",
        raise_exception=raise_exception,
    )


# --- the real tokenizer ----------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[False, True], ids=["ours", "published"])
def llm(request: pytest.FixtureRequest) -> llama_cpp.Llama:
    """Our test vocab, and the same typed as the published v0.4 GGUF (USER_DEFINED ChatML tokens)."""
    return llama_cpp.Llama(str(build_cached("tiny", published=request.param)), n_ctx=2048, verbose=False)


def special_ids(llm: llama_cpp.Llama, text: str) -> list[int]:
    """How the engine tokenizes a prompt: no BOS added, special tokens parsed from the text."""
    return llm.tokenize(text.encode(), add_bos=False, special=True)


def plain_ids(llm: llama_cpp.Llama, text: str) -> list[int]:
    """SentencePiece-style encode of plain text (dummy prefix space, no specials): Meta's encode."""
    return llm.tokenize(text.encode(), add_bos=False, special=False)


def single_token(llm: llama_cpp.Llama) -> Callable[[str], bool]:
    return lambda piece: len(special_ids(llm, piece)) == 1


# =================================================================================================
# Golden strings
# =================================================================================================


@pytest.mark.parametrize(("fmt", "dialog"), GOLDEN_CASES)
def test_prompt_matches_the_hand_written_golden_string(fmt: str, dialog: str) -> None:
    assert get_format(fmt).prompt_text(DIALOGS[dialog]) == GOLDEN[fmt][dialog]


@pytest.mark.parametrize("dialog", DIALOGS)
def test_gguf_chatml_template_renders_exactly_like_the_builtin_chatml(dialog: str) -> None:
    fmt = get_format("gguf-jinja", gguf_template=CHATML_TEMPLATE)
    assert fmt.prompt_text(DIALOGS[dialog]) == GOLDEN["chatml"][dialog]


# =================================================================================================
# Llama 2 against Meta's reference and the HF template
# =================================================================================================


@pytest.mark.parametrize("dialog", META_DIALOGS)
def test_llama2_prompt_equals_meta_chat_completion(dialog: str) -> None:
    assert get_format("llama-2").prompt_text(META_DIALOGS[dialog]) == meta_prompt_text(META_DIALOGS[dialog])


@pytest.mark.parametrize("dialog", META_DIALOGS)
def test_llama2_prompt_equals_hf_llama2_chat_template(dialog: str) -> None:
    assert get_format("llama-2").prompt_text(META_DIALOGS[dialog]) == hf_render(HF_LLAMA2_TEMPLATE,
                                                                                META_DIALOGS[dialog])


@pytest.mark.parametrize("dialog", META_DIALOGS)
def test_llama2_token_ids_equal_meta_per_turn_encoding(llm: llama_cpp.Llama, dialog: str) -> None:
    # Meta encodes each turn separately (each gets SentencePiece's dummy prefix space) and joins
    # the ids with BOS/EOS ids; one llama.cpp tokenization of our text must give the same ids.
    text = get_format("llama-2").prompt_text(META_DIALOGS[dialog])
    expected = meta_prompt_ids(META_DIALOGS[dialog], lambda s: plain_ids(llm, s), llm.token_bos(), llm.token_eos())
    assert special_ids(llm, text) == expected


def test_llama2_where_meta_and_hf_disagree_we_follow_meta() -> None:
    # On every dialog both accept they agree to the byte (tests above); they part where a dialog
    # is outside Meta's rules. A system prompt alone: Meta's code fails (IndexError), the HF template
    # writes nothing at all, not even BOS. We apply Meta's rule (system folded into the user turn
    # it precedes; here an empty one), so the model still sees its instructions.
    only_system = (M("system", "Be kind."),)
    with pytest.raises(IndexError):
        meta_prompt_text(only_system)
    assert hf_render(HF_LLAMA2_TEMPLATE, only_system) == ""
    assert get_format("llama-2").prompt_text(only_system) == "<s>[INST] <<SYS>>\nBe kind.\n<</SYS>> [/INST]"
    assert get_format("llama-2").prompt_text(only_system) == meta_prompt_text((*only_system, M("user", "")))


def test_llama2_trailing_answer_is_closed_like_the_hf_template_when_no_generation_prompt() -> None:
    dialog = (M("user", "Hi"), M("assistant", " Hello! "))
    expected = "<s>[INST] Hi [/INST] Hello! </s>"
    assert get_format("llama-2").prompt_text(dialog, add_generation_prompt=False) == expected
    assert hf_render(HF_LLAMA2_TEMPLATE, dialog) == expected


def test_llama2_after_a_trailing_answer_the_generation_prompt_is_an_empty_user_turn() -> None:
    dialog = (M("user", "Hi"), M("assistant", "Hello!"))
    assert get_format("llama-2").prompt_text(dialog) == "<s>[INST] Hi [/INST] Hello! </s><s>[INST]  [/INST]"


def test_llama2_ends_a_user_turn_with_inst_close_even_without_generation_prompt() -> None:
    # Llama 2 has no separate "assistant:" header: the user turn is the prompt for the answer.
    dialog = DIALOGS["no_system"]
    fmt = get_format("llama-2")
    assert fmt.prompt_text(dialog, add_generation_prompt=False) == fmt.prompt_text(dialog) == GOLDEN["llama-2"][
        "no_system"]


# =================================================================================================
# The other formats against their published templates
# =================================================================================================


@pytest.mark.parametrize("dialog", DIALOGS)
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_zephyr_equals_huggingfaceh4_template_after_bos(dialog: str, add_generation_prompt: bool) -> None:
    # The HF tokenizer adds BOS itself (add_bos_token); our prompt carries it as text.
    ours = get_format("zephyr").prompt_text(DIALOGS[dialog], add_generation_prompt)
    assert ours == "<s>" + hf_render(HF_ZEPHYR_TEMPLATE, DIALOGS[dialog], add_generation_prompt)


@pytest.mark.parametrize("dialog", DIALOGS)
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_chatml_equals_the_published_chatml_template_after_bos(dialog: str, add_generation_prompt: bool) -> None:
    ours = get_format("chatml").prompt_text(DIALOGS[dialog], add_generation_prompt)
    assert ours == "<s>" + hf_render(HF_CHATML_TEMPLATE, DIALOGS[dialog], add_generation_prompt)


def test_chatml_prompt_is_the_tinyllama_model_card_prompt_after_bos() -> None:
    question = "How to get in a good university?"
    card = f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
    assert get_format("chatml").prompt_text([M("user", question)]) == "<s>" + card


def test_trailing_answer_without_generation_prompt_ends_with_its_turn_end() -> None:
    dialog = (M("user", "Hi"), M("assistant", "Hello"))
    assert get_format("chatml").prompt_text(dialog, add_generation_prompt=False) == (
        "<s><|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n")
    assert get_format("zephyr").prompt_text(dialog, add_generation_prompt=False) == (
        "<s><|user|>\nHi</s>\n<|assistant|>\nHello</s>\n")


# =================================================================================================
# Edge cases: defined behaviour
# =================================================================================================


def test_an_empty_conversation_is_bos_plus_the_generation_prompt() -> None:
    assert get_format("chatml").prompt_text([]) == "<s><|im_start|>assistant\n"
    assert get_format("zephyr").prompt_text([]) == "<s><|assistant|>\n"
    assert get_format("llama-2").prompt_text([]) == "<s>[INST]  [/INST]"
    for name in ("chatml", "zephyr", "llama-2"):
        assert get_format(name).prompt_text([], add_generation_prompt=False) == "<s>"


def test_llama2_consecutive_user_messages_get_an_empty_answer_between_them() -> None:
    dialog = (M("user", "First"), M("user", "Second"))
    assert get_format("llama-2").prompt_text(dialog) == "<s>[INST] First [/INST]  </s><s>[INST] Second [/INST]"
    assert get_format("llama-2").prompt_text(dialog) == meta_prompt_text(
        (M("user", "First"), M("assistant", ""), M("user", "Second")))


def test_llama2_consecutive_answers_get_an_empty_user_turn_between_them() -> None:
    dialog = (M("user", "Q"), M("assistant", "A1"), M("assistant", "A2"), M("user", "Q2"))
    assert get_format("llama-2").prompt_text(dialog) == (
        "<s>[INST] Q [/INST] A1 </s><s>[INST]  [/INST] A2 </s><s>[INST] Q2 [/INST]")


def test_llama2_a_conversation_starting_with_an_answer_gets_an_empty_first_user_turn() -> None:
    dialog = (M("system", "S"), M("assistant", "Welcome!"), M("user", "Thanks"))
    assert get_format("llama-2").prompt_text(dialog) == (
        "<s>[INST] <<SYS>>\nS\n<</SYS>> [/INST] Welcome! </s><s>[INST] Thanks [/INST]")


def test_llama2_a_later_system_message_is_folded_into_the_next_user_turn() -> None:
    dialog = (M("user", "Hi"), M("assistant", "Hello"), M("system", "Now answer in French."), M("user", "Bye"))
    assert get_format("llama-2").prompt_text(dialog) == (
        "<s>[INST] Hi [/INST] Hello </s><s>[INST] <<SYS>>\nNow answer in French.\n<</SYS>>\n\nBye [/INST]")


def test_llama2_two_system_messages_become_two_sys_blocks_in_order() -> None:
    dialog = (M("system", "One."), M("system", "Two."), M("user", "Go"))
    assert get_format("llama-2").prompt_text(dialog) == (
        "<s>[INST] <<SYS>>\nOne.\n<</SYS>>\n\n<<SYS>>\nTwo.\n<</SYS>>\n\nGo [/INST]")


def test_chatml_and_zephyr_write_every_message_where_it_stands() -> None:
    dialog = (M("user", "a"), M("user", "b"), M("system", "c"), M("assistant", "d"), M("assistant", "e"))
    assert get_format("chatml").prompt_text(dialog, add_generation_prompt=False) == (
        "<s><|im_start|>user\na<|im_end|>\n<|im_start|>user\nb<|im_end|>\n<|im_start|>system\nc<|im_end|>\n"
        "<|im_start|>assistant\nd<|im_end|>\n<|im_start|>assistant\ne<|im_end|>\n")
    assert get_format("zephyr").prompt_text(dialog, add_generation_prompt=False) == (
        "<s><|user|>\na</s>\n<|user|>\nb</s>\n<|system|>\nc</s>\n<|assistant|>\nd</s>\n<|assistant|>\ne</s>\n")


@pytest.mark.parametrize("name", ["llama-2", "chatml", "zephyr"])
def test_an_unknown_role_is_a_plain_error(name: str) -> None:
    with pytest.raises(EngineError, match="role 'tool'"):
        get_format(name).prompt_text([M("user", "hi"), M("tool", "42")])


def test_the_models_own_bos_and_eos_tokens_are_used() -> None:
    fmt = get_format("llama-2", bos_token="<BOS>", eos_token="<EOS>")
    assert fmt.prompt_text(DIALOGS["multi_turn"][1:4]) == "<BOS>[INST] Hello [/INST] Hi there. <EOS><BOS>[INST] " \
        "What is 2+2? [/INST]"
    assert fmt.stop_tokens == ("<EOS>",)
    assert get_format("chatml", bos_token="<BOS>", eos_token="<EOS>").stop_tokens == ("<|im_end|>", "<EOS>")


def test_stop_tokens_per_format() -> None:
    assert get_format("chatml").stop_tokens == ("<|im_end|>", "</s>")
    assert get_format("llama-2").stop_tokens == ("</s>",)
    assert get_format("zephyr").stop_tokens == ("</s>",)
    assert get_format("gguf-jinja", gguf_template=CHATML_TEMPLATE).stop_tokens == ("<|im_end|>", "</s>")


# =================================================================================================
# Parts: message contents kept apart from template text
# =================================================================================================

ALL_DIALOGS = {**META_DIALOGS, "odd_order": (M("user", " a "), M("user", "b"), M("system", " c "),
                                             M("assistant", " d "), M("assistant", "e"))}


@pytest.mark.parametrize("name", ["llama-2", "chatml", "zephyr", "gguf-jinja"])
@pytest.mark.parametrize("dialog", ALL_DIALOGS)
def test_every_message_content_is_exactly_one_part_of_the_prompt(name: str, dialog: str) -> None:
    messages = ALL_DIALOGS[dialog]
    fmt = get_format(name, gguf_template=CHATML_TEMPLATE)
    parts = fmt.render(messages)
    assert "".join(p.text for p in parts) == fmt.prompt_text(messages)
    assert sorted(p.message_index for p in parts if p.message_index is not None) == list(range(len(messages)))
    for p in parts:
        if p.message_index is None:
            assert p.text, "template parts are never empty"
        elif name == "llama-2" and messages[p.message_index].role != "system":
            # Meta strips each turn; the part is the content as written (a system prompt in front
            # shields the user's leading whitespace, so it is a stripped suffix of the content).
            assert p.text in (messages[p.message_index].content.strip(), messages[p.message_index].content.rstrip())
        else:
            assert p.text == messages[p.message_index].content


def test_assistant_answers_are_their_own_parts_so_stored_ids_can_be_spliced() -> None:
    parts = get_format("chatml").render(DIALOGS["multi_turn"])
    assert Part("Hi there.", 2) in parts and Part("4", 4) in parts
    assert parts[0] == Part("<s><|im_start|>system\n")


def test_gguf_template_that_rewrites_contents_is_returned_as_one_part() -> None:
    stripping = "{% for m in messages %}[{{ m['content'] | trim }}]{% endfor %}"
    fmt = get_format("gguf-jinja", gguf_template=stripping)
    dialog = (M("user", "  x  "), M("assistant", "y"))
    assert fmt.render(dialog) == [Part("<s>[x][y]")]


# =================================================================================================
# BOS exactly once, with the real llama.cpp tokenizer
# =================================================================================================

TOKENIZED_FORMATS = ["llama-2", "chatml", "zephyr", "gguf-jinja"]


@pytest.mark.parametrize("name", TOKENIZED_FORMATS)
@pytest.mark.parametrize("dialog", DIALOGS)
def test_tokenized_prompt_starts_with_exactly_one_bos(llm: llama_cpp.Llama, name: str, dialog: str) -> None:
    text = get_format(name, gguf_template=CHATML_TEMPLATE).prompt_text(DIALOGS[dialog])
    ids = special_ids(llm, text)
    assert ids[0] == llm.token_bos() == 1
    assert ids[1] != llm.token_bos()


@pytest.mark.parametrize("dialog", DIALOGS)
def test_chatml_control_tokens_are_single_tokens_in_the_prompt(llm: llama_cpp.Llama, dialog: str) -> None:
    im_start, im_end = special_ids(llm, "<|im_start|>"), special_ids(llm, "<|im_end|>")
    assert len(im_start) == 1 and len(im_end) == 1
    ids = special_ids(llm, get_format("chatml").prompt_text(DIALOGS[dialog]))
    assert ids.count(im_end[0]) == len(DIALOGS[dialog])
    assert ids.count(im_start[0]) == len(DIALOGS[dialog]) + 1
    assert ids.count(llm.token_bos()) == 1


def test_a_gguf_template_read_back_from_a_model_file_renders_with_one_bos(llm: llama_cpp.Llama) -> None:
    path = build_cached("tiny", chat_template=HF_LLAMA2_TEMPLATE)
    model = llama_cpp.Llama(str(path), n_ctx=2048, verbose=False)
    fmt = get_format("gguf-jinja", gguf_template=model.metadata["tokenizer.chat_template"])
    text = fmt.prompt_text(DIALOGS["multi_turn"])
    # The template writes BOS itself on every turn: nothing is added in front of it.
    assert text == GOLDEN["llama-2"]["multi_turn"]
    ids = special_ids(model, text)
    assert ids[0] == 1 and ids[1] != 1


def test_gguf_template_that_writes_bos_after_whitespace_still_gives_one_bos() -> None:
    template = "\n  {{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
    fmt = get_format("gguf-jinja", gguf_template=template)
    assert fmt.prompt_text([M("user", "hi")]) == "<s>hi"


def test_gguf_template_without_bos_gets_one_in_front() -> None:
    fmt = get_format("gguf-jinja", gguf_template="{% for m in messages %}{{ m['content'] }}{% endfor %}")
    assert fmt.prompt_text([M("user", "hi")]) == "<s>hi"
