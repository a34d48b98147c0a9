"""Prompt-lookup drafts on their own: what is looked up, where, and how the draft length adapts."""

from __future__ import annotations

from engine.prompt_lookup import FIRST_DRAFT, MAX_DRAFT, MAX_PAUSE, Drafter


def test_the_draft_is_what_followed_the_latest_earlier_occurrence_of_the_last_tokens():
    history = [1, 2, 3, 4, 5, 9, 2, 3, 7, 8, 6, 2, 3]
    assert Drafter().draft(history) == [7, 8, 6, 2]  # after the later "2 3", not the first


def test_the_longest_matching_run_of_last_tokens_wins():
    history = [5, 6, 7, 40, 41, 9, 6, 7, 50, 51, 5, 6, 7]
    assert Drafter().draft(history)[:2] == [40, 41]  # "5 6 7" occurred once; "6 7" later


def test_no_draft_when_the_last_tokens_never_occurred_before_or_only_one_does():
    assert Drafter().draft([1, 2, 3, 4, 5, 6]) == []
    assert Drafter().draft([1, 2, 3, 9, 8, 3]) == []  # one token is too weak a cue
    assert Drafter().draft([4]) == []


def test_a_draft_never_exceeds_the_limit_or_runs_past_the_history():
    history = [*range(100), 0, 1, 2]
    assert Drafter().draft(history, limit=2) == [3, 4]
    assert Drafter().draft(history, limit=0) == []
    assert Drafter().draft([7, 8, 9, 7, 8]) == [9, 7, 8]


def step(drafter: Drafter, draft: list[int], taken: int) -> None:
    """The model's verdicts on one step that took `taken` tokens of `draft`."""
    for i in range(taken):
        assert drafter.verdict(draft[i], draft, i)
    assert not drafter.verdict(-1, draft, taken)


def test_the_draft_length_grows_while_drafts_are_taken_whole_and_shrinks_to_what_was_taken():
    drafter = Drafter()
    assert drafter.length == FIRST_DRAFT
    step(drafter, list(range(FIRST_DRAFT)), FIRST_DRAFT)
    assert drafter.length == 2 * FIRST_DRAFT
    for _ in range(10):
        step(drafter, list(range(drafter.length)), drafter.length)
    assert drafter.length == MAX_DRAFT
    step(drafter, list(range(MAX_DRAFT)), 3)
    assert drafter.length == 3
    step(drafter, [1, 2, 3], 0)
    assert drafter.length == 1  # a one-token draft still notices when quoting starts
    step(drafter, [], 0)
    assert drafter.length == 1  # a step without a draft says nothing about drafts


def test_tokens_taken_are_counted_as_they_are_taken():
    drafter = Drafter()
    draft = drafter.draft([5, 6, 7, 8, 9, 5, 6])
    assert draft == [7, 8, 9, 5] and drafter.drafted == 4
    assert drafter.verdict(7, draft, 0) and drafter.verdict(8, draft, 1)
    assert drafter.taken == 2  # an answer that stops here has its count right



def next_draft(drafter: Drafter, history: list[int]) -> tuple[int, list[int]]:
    """The steps without a draft before the next draft, and that draft."""
    skipped = 0
    while not (draft := drafter.draft(history)):
        skipped += 1
    return skipped, draft


def test_drafts_refused_outright_pause_drafting_longer_each_time_and_a_taken_draft_ends_the_pause():
    history = [5, 6, 7, 8, 9, 5, 6]  # the last tokens occurred before: there is always a draft
    drafter = Drafter()
    pauses = []
    draft = drafter.draft(history)
    for _ in range(8):
        step(drafter, draft, 0)
        skipped, draft = next_draft(drafter, history)
        pauses.append(skipped)
    assert pauses == [1, 2, 4, 8, 16, MAX_PAUSE, MAX_PAUSE, MAX_PAUSE]
    step(drafter, draft, 1)  # quoting starts: drafting goes on at once
    assert next_draft(drafter, history)[0] == 0
    step(drafter, [7], 0)
    assert next_draft(drafter, history)[0] == 1
