"""Chat formats: how a conversation becomes the exact prompt text a model was trained on.

A registry of named formats: `llama-2` (Meta's `chat_completion`, byte for byte),
`chatml` (what TinyLlama-1.1B-Chat-v0.4 was fine-tuned on), `zephyr` (HuggingFaceH4's template) and
`gguf-jinja` (the Jinja template stored in a GGUF file, run by engine/chat_template.py).
Each format registers itself next to its renderer with `@register_chat_format(name)`.

Every rendered prompt starts with exactly one BOS written as text (`<s>`): the engine tokenizes the
text with add_bos=False and special tokens parsed, so the text is exactly what the model sees.
`render` returns `Part`s so that each message's content stays separate from template text: the
backend splices the stored token ids of earlier answers there (KV reuse) and can tokenize user text
without parsing special tokens in it.

Behaviour the references leave open, chosen here and tested:
- Roles are `system`, `user`, `assistant`; anything else is an `EngineError`.
- chatml, zephyr: every message is written where it stands, whatever its role or neighbours.
- llama-2: a system message is folded, as a `<<SYS>>` block, into the next user turn (Meta does this
  for a leading one only; later ones go to the next turn the same way). A user turn without an answer
  before the next user turn gets an empty answer, an answer without a user turn gets an empty user
  turn, so no message is ever dropped. The format has no separate generation prompt: a trailing user
  turn always ends with `[/INST]`; after a trailing answer `add_generation_prompt` opens an empty turn.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from engine.chat_template import shared_template, template_context
from engine.types import EngineError, Message

ROLES = ("system", "user", "assistant")
GGUF_JINJA = "gguf-jinja"


@dataclass(frozen=True)
class Part:
    """A piece of a rendered prompt: template text (`message_index` None) or the content of
    `messages[message_index]` as the format writes it (llama-2 strips it, as Meta does)."""

    text: str
    message_index: int | None = None


Renderer = Callable[[Sequence[Message], bool], list[Part]]


@dataclass(frozen=True, kw_only=True)
class ChatFormat:
    """One chat format: how to render a conversation and which tokens end an answer."""

    name: str  # registry key
    label: str  # for the UI
    stop_tokens: tuple[str, ...]  # control tokens that end an answer
    control_tokens: tuple[str, ...]  # must be single tokens in the model's vocab (see `format_vocab.self_test`)
    renderer: Renderer = field(repr=False, compare=False)

    def render(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> list[Part]:
        """The prompt as Parts; raises `EngineError` for a message this format cannot write."""
        _check_messages(messages)
        return self.renderer(messages, add_generation_prompt)

    def prompt_text(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        """The exact prompt text the engine tokenizes (specials written as text)."""
        return "".join(p.text for p in self.render(messages, add_generation_prompt))


class UnknownFormatError(EngineError):
    """A chat format name that is not in the registry."""


# Makes a format from its registered name, the model's BOS and EOS text and its GGUF template.
FormatFactory = Callable[[str, str, str, str | None], ChatFormat]
_REGISTRY: dict[str, FormatFactory] = {}


def register_chat_format(name: str) -> Callable[[FormatFactory], FormatFactory]:
    """Decorator: list the decorated factory under `name` (in definition order, as Settings shows
    them); the factory is called as `make(name, bos, eos, gguf_template)`."""

    def register(make: FormatFactory) -> FormatFactory:
        if name in _REGISTRY:
            raise ValueError(f"chat format {name!r} is registered twice")
        _REGISTRY[name] = make
        return make

    return register


def _nonempty(*tokens: str) -> tuple[str, ...]:
    return tuple(t for t in tokens if t)


def _check_messages(messages: Sequence[Message]) -> None:
    for i, m in enumerate(messages):
        if m.role not in ROLES:
            raise EngineError(
                f"Message {i + 1} has the role {m.role!r}, but chat formats know only "
                "system, user and assistant. Fix the conversation and try again."
            )
        if not isinstance(m.content, str):
            raise EngineError(f"Message {i + 1} has no text content. Fix the conversation and try again.")


class _Parts:
    """Collects Parts, merging adjacent template text and dropping empty template text."""

    def __init__(self) -> None:
        self.parts: list[Part] = []

    def text(self, text: str) -> None:
        if not text:
            return
        if self.parts and self.parts[-1].message_index is None:
            self.parts[-1] = Part(self.parts[-1].text + text)
        else:
            self.parts.append(Part(text))

    def add(self, part: Part) -> None:
        if part.message_index is None:
            self.text(part.text)
        else:
            self.parts.append(part)


# --- llama-2 -------------------------------------------------------------------------------------

B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"


def _strip(segments: list[Part]) -> list[Part]:
    """`str.strip()` of the segments' concatenation, keeping the segment boundaries."""
    out = list(segments)
    for k in range(len(out)):
        out[k] = replace(out[k], text=out[k].text.lstrip())
        if out[k].text:
            break
    for k in reversed(range(len(out))):
        out[k] = replace(out[k], text=out[k].text.rstrip())
        if out[k].text:
            break
    return out


def _llama2(bos: str, eos: str) -> Renderer:
    def render(messages: Sequence[Message], add_generation_prompt: bool) -> list[Part]:
        out = _Parts()
        pending_system: list[int] = []

        def user_turn(index: int | None) -> list[Part]:
            # Meta: (B_SYS + system + E_SYS + user).strip(); the system text itself is not stripped.
            segments: list[Part] = []
            for s in pending_system:
                segments += [Part(B_SYS), Part(messages[s].content, s), Part(E_SYS)]
            pending_system.clear()
            segments.append(Part(messages[index].content, index) if index is not None else Part(""))
            return _strip(segments)

        def write_user(segments: list[Part], end: str) -> None:
            out.text(f"{bos}{B_INST} ")
            for seg in segments:
                out.add(seg)
            out.text(end)

        open_turn: list[Part] | None = None  # a user turn still waiting for its answer
        for i, m in enumerate(messages):
            if m.role == "system":
                pending_system.append(i)
            elif m.role == "user":
                if open_turn is not None:  # unanswered: close it with an empty answer
                    write_user(open_turn, f" {E_INST}  {eos}")
                open_turn = user_turn(i)
            else:
                write_user(open_turn if open_turn is not None else user_turn(None), f" {E_INST} ")
                out.add(Part(m.content.strip(), i))
                out.text(f" {eos}")
                open_turn = None
        if open_turn is None and (add_generation_prompt or pending_system):
            open_turn = user_turn(None)
        if open_turn is not None:
            write_user(open_turn, f" {E_INST}")
        if not out.parts:
            out.text(bos)
        return out.parts

    return render


@register_chat_format("llama-2")
def _llama2_format(name: str, bos: str, eos: str, _template: str | None) -> ChatFormat:
    return ChatFormat(name=name, label="Llama 2 Chat ([INST] … [/INST])", stop_tokens=(eos,),
                      control_tokens=_nonempty(bos, eos), renderer=_llama2(bos, eos))


# --- chatml, zephyr ------------------------------------------------------------------------------


def _tagged(bos: str, header: Callable[[str], str], footer: str, generation_prompt: str) -> Renderer:
    """Formats that wrap every message as header(role) + content + footer."""

    def render(messages: Sequence[Message], add_generation_prompt: bool) -> list[Part]:
        out = _Parts()
        out.text(bos)
        for i, m in enumerate(messages):
            out.text(header(m.role))
            out.add(Part(m.content, i))
            out.text(footer)
        if add_generation_prompt:
            out.text(generation_prompt)
        return out.parts

    return render


@register_chat_format("chatml")
def _chatml_format(name: str, bos: str, eos: str, _template: str | None) -> ChatFormat:
    return ChatFormat(
        name=name, label="ChatML (TinyLlama Chat v0.4)", stop_tokens=("<|im_end|>", *_nonempty(eos)),
        control_tokens=("<|im_start|>", "<|im_end|>", *_nonempty(bos, eos)),
        renderer=_tagged(bos, lambda role: f"<|im_start|>{role}\n", "<|im_end|>\n", "<|im_start|>assistant\n"),
    )


@register_chat_format("zephyr")
def _zephyr_format(name: str, bos: str, eos: str, _template: str | None) -> ChatFormat:
    return ChatFormat(
        name=name, label="Zephyr (<|user|> … </s>)", stop_tokens=_nonempty(eos), control_tokens=_nonempty(bos, eos),
        renderer=_tagged(bos, lambda role: f"<|{role}|>\n", f"{eos}\n", "<|assistant|>\n"),
    )


# --- gguf-jinja ----------------------------------------------------------------------------------

# Control tokens a GGUF template may use; zephyr-style `<|user|>` markers are plain text and not listed.
_TEMPLATE_CONTROL_TOKENS = ("<|im_start|>", "<|im_end|>", "<|start_header_id|>", "<|end_header_id|>",
                            "<|eot_id|>")
_TEMPLATE_END_OF_TURN = ("<|im_end|>", "<|eot_id|>")
_MARK = re.compile("\ue000(\\d{1,9})\ue001")  # private-use characters: never in a template's own text


def _gguf_jinja(source: str, bos: str, eos: str) -> Renderer:
    template = shared_template(source)  # compiled in its child now: a broken one fails at load

    def with_bos(text: str) -> str:
        if bos and text.lstrip().startswith(bos):
            return text.lstrip()  # whitespace before BOS means nothing, and would hide it
        return bos + text

    def render(messages: Sequence[Message], add_generation_prompt: bool) -> list[Part]:
        # Track contents when the template writes them verbatim: render once more with markers in
        # their place and keep the split only if putting the contents back gives the same text.
        markers = [f"\ue000{i}\ue001" for i in range(len(messages))]
        text, marked = (with_bos(t) for t in template.render([
            template_context([(m.role, c) for m, c in zip(messages, contents, strict=True)],
                             add_generation_prompt, bos, eos)
            for contents in ([m.content for m in messages], markers)]))
        out = _Parts()
        for k, piece in enumerate(_MARK.split(marked)):
            if k % 2 == 0:
                out.text(piece)
            elif int(piece) < len(messages):
                out.add(Part(messages[int(piece)].content, int(piece)))
            else:  # the template wrote a marker of its own: no split
                return [Part(text)]
        if "".join(p.text for p in out.parts) == text:
            return out.parts
        return [Part(text)]

    return render


@register_chat_format(GGUF_JINJA)
def _gguf_jinja_format(name: str, bos: str, eos: str, template: str | None) -> ChatFormat:
    if not template:
        raise EngineError("This model file has no chat template of its own. "
                          "Choose chatml, llama-2 or zephyr as its chat format in Settings.")
    controls = tuple(t for t in _TEMPLATE_CONTROL_TOKENS if t in template)
    stops = tuple(t for t in _TEMPLATE_END_OF_TURN if t in template)
    return ChatFormat(name=name, label="Model's own template (stored in the GGUF file)",
                      stop_tokens=tuple(dict.fromkeys((*stops, *_nonempty(eos)))),
                      control_tokens=(*controls, *_nonempty(bos, eos)), renderer=_gguf_jinja(template, bos, eos))


# --- lookup ------------------------------------------------------------------------------------


def format_names() -> tuple[str, ...]:
    """Registry keys in the order the settings UI lists them."""
    return tuple(_REGISTRY)


def get_format(name: str, *, gguf_template: str | None = None, bos_token: str = "<s>",
               eos_token: str = "</s>") -> ChatFormat:
    """The chat format called `name`. `gguf_template` is the model's `tokenizer.chat_template`
    (needed for `gguf-jinja`, compiled here so a broken one fails at load, not mid-chat)."""
    try:
        make = _REGISTRY[name]
    except KeyError:
        raise UnknownFormatError(
            f"Unknown chat format {name!r}. Known formats: {', '.join(format_names())}."
        ) from None
    return make(name, bos_token, eos_token, gguf_template)


__all__ = ["ChatFormat", "Part", "UnknownFormatError", "format_names", "get_format", "register_chat_format"]
