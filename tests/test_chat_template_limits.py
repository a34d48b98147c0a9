"""A chat template from a model file cannot outrun the render deadline or the memory and output
caps, whatever construct it uses, and an oversized one is refused before it is compiled."""

from __future__ import annotations

import pytest

from tests.template_run import RenderChild, render_child

__all__ = ["render_child"]  # the shared fixture

RUNS_AWAY = "runs away (too slow, or an endless prompt) and was stopped"

BOMBS = {
    # No call and no range() inside the loops: nothing that checks a deadline from within.
    "nested_loops_over_a_multiplied_list":
        "{% for a in messages * 100000 %}{% for b in messages * 100000 %}{% endfor %}{% endfor %}",
    "loop_over_a_100_mb_string": "{% for c in 'a' * 100000000 %}{% endfor %}",
    "ten_gigabyte_string": "{{ 'a' * 10**10 }}",
    "eight_gigabyte_list": "{% set x = [0] * 10**9 %}{{ x|length }}",
    "power_of_a_power": "{{ 9 ** (9 ** 9) }}",
}


@pytest.mark.parametrize("name", BOMBS)
def test_a_template_resource_bomb_is_stopped_with_a_plain_sentence(name: str, render_child: RenderChild) -> None:
    outcome = render_child.render(BOMBS[name])
    assert RUNS_AWAY in str(outcome.get("error")), outcome


def test_a_45_mb_template_is_refused_by_its_size_before_it_is_compiled(render_child: RenderChild) -> None:
    template = "{{ messages[0]['content'] }}" + "{% if true %}x{% endif %}" * 1_800_000
    outcome = render_child.render(template)
    assert "far longer than a real chat template" in str(outcome.get("error")), outcome
