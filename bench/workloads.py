"""Conversations the benchmarks feed every engine, so their figures compare like with like."""

from __future__ import annotations

from engine.types import Message


def history(n_exchanges: int, topic: str = "") -> list[Message]:
    """A system prompt and `n_exchanges` question/answer pairs of ordinary prose; a `topic` opens the
    system prompt, so conversations on different topics differ from their first words."""
    msgs = [Message("system", f"{topic} You are a helpful assistant.".lstrip())]
    for i in range(n_exchanges):
        msgs.append(Message("user", f"Question number {i}: " + "tell me about the history of code and python " * 4))
        msgs.append(Message("assistant", "Here is the answer: " + "it is a story of time and help " * 5))
    return msgs


# What the scripted benchmark model answers: 54 distinct tokens of the test vocab (a scripted model maps
# each token to the next, so none may repeat). Asked in a conversation that already holds this answer,
# every token can be drafted from it: the quoting workload of prompt lookup.
QUOTE_SCRIPT = (" user! assistant? system. Hello, hello: world; the( a) and= you+ I* is& it% to# of@ in~ that what "
                "how can help with code python answer question yes no thanks please END story once upon time INST SYS")
