"""Conversations the benchmarks feed every engine, so their figures compare like with like."""

from __future__ import annotations

from engine.types import Message


def history(n_exchanges: int) -> list[Message]:
    """A system prompt and `n_exchanges` question/answer pairs of ordinary prose."""
    msgs = [Message("system", "You are a helpful assistant.")]
    for i in range(n_exchanges):
        msgs.append(Message("user", f"Question number {i}: " + "tell me about the history of code and python " * 4))
        msgs.append(Message("assistant", "Here is the answer: " + "it is a story of time and help " * 5))
    return msgs


TOPICS = ("python", "the weather", "gardening", "chess", "bread", "rivers", "music", "bicycles", "tea",
          "the moon", "printing", "maps")


def chat_turn(i: int) -> tuple[str, str]:
    """Turn `i` of a long chat: a question and an answer of a few dozen tokens, different every turn."""
    topic, other = TOPICS[i % len(TOPICS)], TOPICS[(i * 5 + 3) % len(TOPICS)]
    question = f"Question {i}: what do {topic} and {other} have in common? Keep it short."
    answer = (f"Both {topic} and {other} reward patience: start small, practise every day, and after "
              f"{i % 7 + 2} weeks the habit carries itself.")
    return question, answer
