"""A chat template from a model file cannot outrun the render deadline or the memory and output
caps, whatever construct it uses, and an oversized one is refused before it is compiled: the cases
that escaped before, from the template corpus, at the app's real limits."""

from __future__ import annotations

import pytest

from tests.corpus.templates import hostile_templates
from tests.template_run import RenderChild, render_child

__all__ = ["render_child"]  # the shared fixture

CASES = {case.name: case for case in hostile_templates()}
RUNS_AWAY = "runs away (too slow, or an endless prompt) and was stopped"
# No call and no range() inside these loops, so nothing checked a deadline from within; the rest
# asked for gigabytes, or folded a huge power while compiling.
BOMBS = ("nested_loops_over_a_multiplied_list", "loop_over_a_100_mb_string", "ten_gigabyte_string",
         "eight_gigabyte_list", "power_of_a_power")


@pytest.mark.parametrize("name", BOMBS)
def test_a_template_resource_bomb_is_stopped_with_a_plain_sentence(name: str, render_child: RenderChild) -> None:
    outcome = render_child.render(CASES[name].source, CASES[name].messages)
    assert RUNS_AWAY in str(outcome.get("error")), outcome


def test_a_45_mb_template_is_refused_by_its_size_before_it_is_compiled(render_child: RenderChild) -> None:
    outcome = render_child.render(CASES["forty_five_megabytes"].source)
    assert "far longer than a real chat template" in str(outcome.get("error")), outcome
