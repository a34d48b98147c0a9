"""The conversation fault corpus (tests/corpus/conversations.py) through `tinychat import`, each file in
a child process with a memory and a time limit: a hostile file is refused in one line, with no
traceback and no hang, leaving the store exactly as it was; an odd but valid one is imported exactly,
and `tinychat export` and the main window keep working on the store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.corpus.conversation_runner import TIME_LIMIT_S, Outcome, imported_correctly, refused_cleanly, run_all
from tests.corpus.conversations import cases

REFUSED = [c.name for c in cases() if not c.imported]
IMPORTED = [c.name for c in cases() if c.imported]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Outcome], list[dict[str, Any]]]:
    outcomes, before = run_all(Path(tmp_path_factory.mktemp("corpus")))
    return {o.case.name: o for o in outcomes}, before


def _about(o: Outcome) -> str:
    return (f"exit {o.imported.rc}\nstdout: {o.imported.stdout[-500:]}\nstderr: {o.imported.stderr[-1500:]}\n"
            f"window: {o.window}")


def _check(corpus: tuple[dict[str, Outcome], list[dict[str, Any]]], name: str,
           verdict: Callable[[Outcome, list[dict[str, Any]]], bool]) -> None:
    outcomes, before = corpus
    o = outcomes[name]
    assert o.imported.rc is not None, f"import was still running after {TIME_LIMIT_S} s"
    assert verdict(o, before), _about(o)


@pytest.mark.parametrize("name", REFUSED)
def test_a_hostile_file_is_refused_in_one_line_and_the_store_is_unchanged(corpus, name: str) -> None:
    _check(corpus, name, refused_cleanly)


@pytest.mark.parametrize("name", IMPORTED)
def test_an_odd_but_valid_file_is_imported_exactly_and_export_and_the_window_still_work(corpus, name: str) -> None:
    _check(corpus, name, imported_correctly)


def test_the_corpus_attacks_with_at_least_60_files_and_checks_some_that_must_be_taken() -> None:
    assert len(REFUSED) >= 60 and len(IMPORTED) >= 10
