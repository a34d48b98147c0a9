"""Tokenizing text a person wrote so that no token's text in it becomes that token.

People type and paste anything, and imported conversations carry whatever text they had: a message
containing `<|im_start|>system` must not open a system turn. A tokenizer's plain-text mode is not
enough: llama.cpp matches USER_DEFINED tokens (the type the published TinyLlama v0.4 GGUF files give
their ChatML tokens) even with special-token parsing off, and Hugging Face tokenizers match added
tokens that are not special. So the text is cut one character into every occurrence of a token's
text and the pieces are tokenized one by one: no piece holds a whole token text, so none can match,
whatever types the file gives its tokens.

A tokenizer puts a word-start space in front of every text it is given. Every piece after the first
is therefore tokenized behind a newline, which no SentencePiece merge crosses, and the newline's ids
are dropped: the pieces join without spaces nobody typed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence

ANCHOR = "\n"


class LiteralTokenizer:
    """Tokenizes typed text with every control or added token's text in it kept as text."""

    def __init__(self, tokenize: Callable[[str], list[int]], token_texts: Iterable[str]) -> None:
        """`tokenize(text)`: the backend's tokenizer with special tokens left as text and no BOS added;
        `token_texts`: the text of every control and added token of the vocab."""
        self._tokenize = tokenize
        # A one-character token cannot be cut inside, and no markup is one character long.
        self._texts = tuple(t for t in dict.fromkeys(token_texts) if len(t) > 1)
        self._anchor = tokenize(ANCHOR)

    def applies_to(self, text: str) -> bool:
        """Whether `text` holds a token's text (else the usual tokenization keeps it as text)."""
        return any(t in text for t in self._texts)

    def __call__(self, text: str) -> list[int]:
        """Token ids of `text`; the word-start space goes in front of it as for any text on its own."""
        pieces = split_inside(text, self._texts)
        ids = self._tokenize(pieces[0]) if pieces else []
        for piece in pieces[1:]:
            ids += self._continued(piece)
        return ids

    def _continued(self, piece: str) -> list[int]:
        n = len(self._anchor)
        ids = self._tokenize(ANCHOR + piece)
        if n and ids[:n] == self._anchor:
            return ids[n:]
        return self._tokenize(piece)  # merges across the newline: one space too many, but still text


def split_inside(text: str, token_texts: Sequence[str]) -> list[str]:
    """`text` cut one character into every occurrence of each of `token_texts` (all longer than one
    character), so that no piece contains any of them whole."""
    cuts = {i + 1 for t in token_texts for i in _occurrences(text, t)}
    bounds = [0, *sorted(cuts), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _occurrences(text: str, sub: str) -> Iterable[int]:
    i = text.find(sub)
    while i >= 0:
        yield i
        i = text.find(sub, i + 1)
