"""A chat format checked against one loaded model's vocab: which stop tokens are single tokens (stop
ids) and which must be caught as text, and a warning naming a better format when the control tokens a
format writes are not single tokens (its answers would be nonsense)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from engine.chat_format import GGUF_JINJA, ChatFormat, format_names, get_format

log = logging.getLogger(__name__)


def self_test(fmt: ChatFormat, is_single_token: Callable[[str], bool],
              available: Iterable[str] | None = None) -> list[str]:
    """Warnings (plain sentences) when `fmt`'s control tokens are not single tokens in the loaded
    vocab, naming a format from `available` (default: all) whose control tokens all are."""
    missing = [t for t in fmt.control_tokens if not is_single_token(t)]
    if not missing:
        return []
    names = tuple(available) if available is not None else format_names()
    fitting = [
        cand for cand in (get_format(n) for n in names if n not in (fmt.name, GGUF_JINJA) and n in format_names())
        if all(is_single_token(t) for t in cand.control_tokens)
    ]
    # The format needing the most control tokens that all exist is the most telling fit.
    fitting.sort(key=lambda cand: -len(cand.control_tokens))
    warning = (
        f"The chat format {fmt.label} needs {' and '.join(missing)} as single tokens, but this model "
        "does not have them, so its answers will likely be nonsense."
    )
    if fitting:
        warning += f" Choose {fitting[0].label} ({fitting[0].name}) in Settings."
    elif GGUF_JINJA in names and fmt.name != GGUF_JINJA:
        warning += f" Choose the model's own template ({GGUF_JINJA}) in Settings."
    else:
        warning += " Choose another chat format in Settings."
    return [warning]


@dataclass(frozen=True)
class VocabBinding:
    """A format resolved against one model's vocab: which ids end an answer, which stops must be
    caught as text (the vocab lacks them as tokens), and the self-test's warnings."""

    stop_ids: frozenset[int]
    stop_strings: tuple[str, ...]
    warnings: tuple[str, ...]


def bind_to_vocab(fmt: ChatFormat, tokenize: Callable[[str], list[int]], eos_ids: Iterable[int]) -> VocabBinding:
    """Resolve `fmt`'s stop tokens with `tokenize` (specials parsed, no BOS); the model's own end
    token(s) `eos_ids` always stop too. Warnings are logged as well as returned."""
    stop_ids = set(eos_ids)
    stop_strings: list[str] = []
    for tok in fmt.stop_tokens:
        ids = tokenize(tok)
        if len(ids) == 1:
            stop_ids.add(ids[0])
        else:
            stop_strings.append(tok)  # the vocab lacks it: catch it as text instead
    warnings = self_test(fmt, lambda t: len(tokenize(t)) == 1)
    for w in warnings:
        log.warning("template self-test: %s", w)
    return VocabBinding(frozenset(stop_ids), tuple(stop_strings), tuple(warnings))


__all__ = ["VocabBinding", "bind_to_vocab", "self_test"]
