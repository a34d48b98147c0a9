"""What the user sees of a streamed answer."""

from engine.answer_text import AnswerText


def test_the_word_start_space_before_the_first_word_is_not_shown():
    a = AnswerText([])
    assert a.push(" ") == ("", False)
    assert a.push(" Hello") == ("Hello", False)
    assert a.push(" world") == (" world", False)


def test_stop_strings_are_held_back_and_cut():
    a = AnswerText(["\nUser:"])
    assert a.push("Fine.\nUs") == ("Fine.", False)
    assert a.push("er: next") == ("", True)
    assert a.flush() == ""


def test_held_back_text_is_released_at_the_end():
    a = AnswerText(["\nUser:"])
    a.push("Fine.\nUs")
    assert a.flush() == "\nUs"
