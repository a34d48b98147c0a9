"""Full-text search across every conversation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.store import Store
from app.core.store_types import MARK_END, MARK_START


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s, _ = Store.open(tmp_path / "chats.db")
    yield s
    s.close()


def _say(store: Store, title: str, *texts: str) -> list[str]:
    conv = store.create_conversation(title=title)
    ids, parent = [], None
    for text in texts:
        parent = store.add_message(conv.id, parent, "user", text).id
        ids.append(parent)
    return ids


def test_search_finds_messages_in_every_conversation_with_the_match_highlighted(store: Store) -> None:
    (pasta,) = _say(store, "Cooking", "How long should I boil pasta for a good bite?")
    (sauce,) = _say(store, "Dinner", "A tomato sauce goes well with pasta.")
    _say(store, "Travel", "Trains from Paris to Lyon")
    hits = store.search("pasta")
    assert {h.message_id for h in hits} == {pasta, sauce}
    assert {h.conversation_title for h in hits} == {"Cooking", "Dinner"}
    hit = next(h for h in hits if h.message_id == pasta)
    assert f"{MARK_START}pasta{MARK_END}" in hit.snippet
    assert hit.snippet_plain() == "How long should I boil pasta for a good bite?"
    assert "<b>pasta</b>" in hit.snippet_html()


def test_snippet_html_escapes_message_markup(store: Store) -> None:
    _say(store, "Code", "use <script>alert(1)</script> carefully")
    (hit,) = store.search("alert")
    assert "<script>" not in hit.snippet_html()
    assert "&lt;script&gt;" in hit.snippet_html()


def test_better_matches_rank_first(store: Store) -> None:
    (weak,) = _say(store, "A", "A garden with plants, flowers, trees and one tomato somewhere.")
    (strong,) = _say(store, "B", "tomato tomato tomato")
    assert [h.message_id for h in store.search("tomato")] == [strong, weak]


def test_every_word_must_match_and_words_match_as_prefixes(store: Store) -> None:
    (both,) = _say(store, "A", "Photosynthesis needs sunlight")
    _say(store, "B", "Sunlight on the beach")
    assert [h.message_id for h in store.search("sunlight photo")] == [both]
    assert [h.message_id for h in store.search("photosynth")] == [both]


def test_accents_and_case_do_not_matter_and_unicode_text_is_found(store: Store) -> None:
    (cafe,) = _say(store, "A", "Un Café à Paris")
    (cjk,) = _say(store, "B", "你好 世界 é世🎉")
    assert [h.message_id for h in store.search("CAFE")] == [cafe]
    assert [h.message_id for h in store.search("世界")] == [cjk]


@pytest.mark.parametrize("query", ['"', "pasta\"", "(", "AND", "OR NOT", "NEAR(", "*", "col:pasta", "^pasta",
                                   "pasta -sauce", "a'b", "\\", "{}", "x" * 5000, "", "   ", "\x00", "🎉"])
def test_queries_with_search_syntax_characters_never_raise(store: Store, query: str) -> None:
    _say(store, "A", "pasta with sauce, col and a'b and x")
    hits = store.search(query)
    assert isinstance(hits, list)


def test_search_syntax_is_treated_as_plain_words(store: Store) -> None:
    (m,) = _say(store, "A", "Should I use AND or OR here?")
    assert [h.message_id for h in store.search("AND OR")] == [m]
    assert [h.message_id for h in store.search("pasta:OR")] == []


def test_edits_deletes_and_trash_are_reflected_in_search(store: Store) -> None:
    (mid,) = _say(store, "A", "old words")
    store.update_message(mid, content="new words")
    assert store.search("old") == []
    assert [h.message_id for h in store.search("new")] == [mid]
    conv_id = store.get_message(mid).conversation_id
    store.trash_conversation(conv_id)
    assert store.search("new") == []
    store.restore_conversation(conv_id)
    store.delete_message(mid)
    assert store.search("new") == []


def test_limit_caps_the_number_of_hits(store: Store) -> None:
    _say(store, "A", *(f"repeated word number {i}" for i in range(30)))
    assert len(store.search("repeated", limit=7)) == 7
    assert len(store.search("repeated")) == 30


def test_search_pages_rank_the_newest_matches_first_then_older_ones_each_match_once(store: Store, monkeypatch) -> None:
    import app.core.store as store_module

    monkeypatch.setattr(store_module, "SEARCH_BATCH", 10)
    ids = _say(store, "Lanterns", *[f"lantern number {i}" + " lantern" * (i % 3) for i in range(60)])
    trashed = _say(store, "Trashed", "a lantern in the bin")
    store.trash_conversation(store.get_message(trashed[0]).conversation_id)
    first = store.search_page("lantern", limit=7)
    assert len(first.hits) == 7 and first.more is not None
    assert {h.message_id for h in first.hits} <= set(ids[-10:])  # from the batch of the newest ten matches
    counts = [h.snippet_plain().count("lantern") for h in first.hits]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]  # best first within it
    seen = [h.message_id for h in first.hits]
    page = first
    while page.more is not None:
        page = store.search_page("lantern", limit=7, after=page.more)
        seen += [h.message_id for h in page.hits]
    assert sorted(seen) == sorted(ids)  # every match exactly once, the trashed one never
    assert store.search("lantern", limit=7) == list(first.hits)
