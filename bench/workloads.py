"""Conversations and options the benchmarks share, so their figures compare like with like."""

from __future__ import annotations

import argparse

from engine.hardware import physical_cores
from engine.types import Message


def speed_arguments(doc: str | None) -> argparse.Namespace:
    """The command line of a speed benchmark: model shape and level, rounds, tokens per answer."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="tinyllama")
    ap.add_argument("--quant", default="Q4_K_M")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--threads", type=int, default=physical_cores(),
                    help="CPU threads per engine (default: physical cores; 1 is steadier on a busy machine)")
    return ap.parse_args()


def history(n_exchanges: int, topic: str = "") -> list[Message]:
    """A system prompt and `n_exchanges` question/answer pairs of ordinary prose; a `topic` opens the
    system prompt, so conversations on different topics differ from their first words."""
    msgs = [Message("system", f"{topic} You are a helpful assistant.".lstrip())]
    for i in range(n_exchanges):
        msgs.append(Message("user", f"Question number {i}: " + "tell me about the history of code and python " * 4))
        msgs.append(Message("assistant", "Here is the answer: " + "it is a story of time and help " * 5))
    return msgs


# Phrases of the generated test models' vocab (tests/fixtures/vocab.py), whose words are single tokens
# there: text made of them tokenizes at about the rate real English does with TinyLlama's tokenizer
# (4 to 5 characters a token), where other words would fall apart into characters.
PHRASES = ("hello world", "the code", "python", "the story", "once upon a time", "the answer", "help",
           "the question", "thanks", "yes and no", "what you can do", "how it is")


def chat_turn(i: int) -> tuple[str, str]:
    """Turn `i` of a long chat: a question and an answer of a few dozen tokens, different every turn."""
    n = len(PHRASES)
    a, b, c = PHRASES[i % n], PHRASES[(i * 5 + 3) % n], PHRASES[(i * 7 + 1) % n]
    question = f"question {i}: how can you help with {a} and {b}? please answer with {c}."
    answer = f"yes: {a} is in {b}, and {c} is what I can help you with. thanks, and hello to the world!"
    return question, answer


# What the scripted benchmark model answers: 54 distinct tokens of the test vocab (a scripted model maps
# each token to the next, so none may repeat). Asked in a conversation that already holds this answer,
# every token can be drafted from it: the quoting workload of prompt lookup.
QUOTE_SCRIPT = (" user! assistant? system. Hello, hello: world; the( a) and= you+ I* is& it% to# of@ in~ that what "
                "how can help with code python answer question yes no thanks please END story once upon time INST SYS")
