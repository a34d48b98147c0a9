"""The stop matcher: stop strings never reach the user, not even split across tokens."""

from hypothesis import given
from hypothesis import strategies as st

from engine.stop import StopMatcher


def feed(matcher: StopMatcher, pieces: list[str]) -> tuple[str, bool]:
    shown, stopped = "", False
    for p in pieces:
        out, stopped = matcher.push(p)
        shown += out
        if stopped:
            break
    if not stopped:
        shown += matcher.flush()
    return shown, stopped


def test_stop_string_split_across_tokens_is_never_shown():
    m = StopMatcher(["</answer>"])
    shown = []
    for piece in ["Hi the", "re</ans", "wer> and more"]:
        out, stopped = m.push(piece)
        shown.append(out)
    assert shown == ["Hi the", "re", ""]
    assert stopped


def test_text_that_only_looks_like_a_stop_start_is_released_once_it_cannot_match():
    m = StopMatcher(["STOP"])
    assert m.push("ST") == ("", False)
    assert m.push("AR") == ("STAR", False)


def test_held_back_text_is_flushed_when_generation_ends_without_a_stop():
    m = StopMatcher(["\nUser:"])
    out, stopped = m.push("done\nUs")
    assert (out, stopped) == ("done", False)
    assert m.flush() == "\nUs"


def test_earliest_of_several_stop_strings_wins():
    assert feed(StopMatcher(["bbb", "ab"]), ["xxabbb"]) == ("xx", True)


def test_nothing_is_returned_after_a_stop():
    m = StopMatcher(["!"])
    assert m.push("a!b") == ("a", True)
    assert m.push("more") == ("", True)
    assert m.flush() == ""


def test_empty_stop_list_passes_everything_through():
    assert feed(StopMatcher([]), ["a", "b"]) == ("ab", False)


@given(st.text(alphabet="ab<>/s", max_size=30), st.lists(st.integers(0, 30), max_size=6))
def test_any_split_gives_the_same_visible_text_as_the_whole_string(text, cuts):
    stops = ["</s>", "ab<"]
    cuts = sorted({c for c in cuts if c <= len(text)})
    pieces = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=False)]
    whole = feed(StopMatcher(stops), [text])
    assert feed(StopMatcher(stops), pieces) == whole
    expected_end = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    assert whole[0] == text[:expected_end]
