"""The template corpus (tests/corpus/templates.py): every hostile chat template is either refused with
a plain sentence or rendered within the output cap — never a hang, a crash or a traceback."""

from __future__ import annotations

import pytest

from engine.chat_format import get_format
from engine.chat_template import MAX_TEMPLATE_OUTPUT
from engine.types import EngineError, Message
from tests.corpus.templates import REFUSED, RENDERED, HostileTemplate, hostile_templates
from tests.template_run import RenderChild, render_child

__all__ = ["render_child"]  # the shared fixture

CORPUS_TIME_LIMIT_S = 0.25  # the render limit in this test: the mechanism, not the figure, is under test


def render_here(case: HostileTemplate) -> dict[str, object]:
    """The same outcome as `render_in_child`, rendered from this process (only an EngineError is
    an answer; anything else escapes and fails the test, as it would reach the user)."""
    try:
        parts = get_format("gguf-jinja", gguf_template=case.source).render(
            [Message(role, content) for role, content in case.messages])  # type: ignore[arg-type]
    except EngineError as exc:
        return {"error": exc.message}
    return {"parts": len(parts), "length": sum(len(p.text) for p in parts)}


def is_plain_sentence(message: str) -> bool:
    """One short printable line that ends a sentence and says where to go next."""
    return (message.isprintable() and len(message) <= 400 and message[0].isupper() and message.endswith(".")
            and ("Settings" in message or "reinstall" in message) and "Traceback" not in message)


def test_the_corpus_has_at_least_25_hostile_templates() -> None:
    assert len(hostile_templates()) >= 25


@pytest.mark.parametrize("case", hostile_templates(), ids=lambda c: c.name)
def test_a_hostile_template_is_refused_in_plain_words_or_rendered_within_limits(
        case: HostileTemplate, render_child: RenderChild, monkeypatch: pytest.MonkeyPatch) -> None:
    if case.may_hang:
        outcome = render_child.render(case.source, case.messages, time_limit=CORPUS_TIME_LIMIT_S)
    else:
        monkeypatch.setattr("engine.chat_template.TEMPLATE_TIME_LIMIT_S", CORPUS_TIME_LIMIT_S)
        outcome = render_here(case)
    if "error" in outcome:
        assert case.expect != RENDERED, outcome
        assert is_plain_sentence(str(outcome["error"])), outcome
    else:
        assert case.expect != REFUSED, outcome
        assert int(outcome["length"]) <= MAX_TEMPLATE_OUTPUT + len("<s>")  # type: ignore[call-overload]
