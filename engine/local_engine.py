"""What the two in-process backends (llama.cpp, MLX) share: the chat format in use bound to the loaded
vocab (stop ids, stop strings), prompt token ids built from it, and `generate`'s steps around the one
answer loop (`answer_stream.stream_answer`): fit the prompt or refuse, restore a saved state, reuse the
cached prefix, stream, read the next turn's opening ahead, save the state after.

A backend subclasses `LocalEngine` and supplies the model-specific parts: `_require`, `_tokenize`
(specials parsed, no BOS), `set_chat_format`, `unload`, and for generating `_reuse_prefix`, `_decoder`,
`_sample` (the token iterator) and `_evaluate_more` (tokens appended to the cache). It sets `_literal`,
`_n_ctx` and `_resume` when a model loads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import Any

from engine.answer_stream import refused, stream_answer
from engine.chat_format import ChatFormat
from engine.context import Fit, fit_prompt
from engine.format_vocab import bind_to_vocab
from engine.literal_tokens import LiteralTokenizer
from engine.prompt_tokens import common_prefix, control_token_ids, prompt_ids
from engine.resume import Resumer
from engine.state_cache import StateCache
from engine.stats import PromptStats
from engine.types import Chunk, EngineError, GenerationParams, Message

log = logging.getLogger(__name__)

# Two different next messages: what their prompts share beyond the answer is the next turn's opening
# (ChatML: "<|im_end|>\n<|im_start|>user\n"), the same whatever the person writes next.
NEXT_PROBES = ("A", "Z")
# The opening is a handful of tokens; a format that repeats more per turn gains little more from reading ahead.
READ_AHEAD_MAX = 32


class LocalEngine:
    """The chat format bound to one loaded vocab, the prompt ids it gives, and `generate`."""

    # Whether prompt lookup runs when GenerationParams.prompt_lookup is None: where it never lost measurably.
    lookup_by_default = True

    def __init__(self) -> None:
        self._fmt: ChatFormat | None = None
        self._stop_ids: frozenset[int] = frozenset()
        self._stop_strings: tuple[str, ...] = ()
        self._literal: LiteralTokenizer | None = None
        self._n_ctx = 0
        self._resume: Resumer | None = None

    def _tokenize(self, text: str) -> list[int]:
        raise NotImplementedError

    def set_chat_format(self, name: str) -> tuple[str, ...]:
        raise NotImplementedError

    def unload(self) -> None:
        raise NotImplementedError

    def _require(self) -> Any:
        """The loaded model's handle; raises EngineError when none is loaded."""
        raise NotImplementedError

    @property
    def chat_format(self) -> str:
        return self._fmt.name if self._fmt else ""

    @property
    def saved_states(self) -> StateCache | None:
        """The loaded model's saved conversation states (None while nothing is loaded)."""
        return self._resume.cache if self._resume is not None else None

    def _use_format(self, fmt: ChatFormat, eos_ids: Iterable[int]) -> tuple[str, ...]:
        """Render with `fmt` from now on: its stops and control tokens end an answer. Returns the
        template self-test's warnings."""
        binding = bind_to_vocab(fmt, self._tokenize, eos_ids)
        stop_ids = binding.stop_ids | control_token_ids(fmt, self._tokenize)
        self._fmt, self._stop_ids, self._stop_strings = fmt, stop_ids, binding.stop_strings
        return binding.warnings

    def _format_at_load(self, name: str) -> tuple[str, ...]:
        """`set_chat_format` as the last step of loading: a format the model cannot use unloads it again."""
        try:
            return self.set_chat_format(name)
        except EngineError:
            self.unload()
            raise

    def prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of the full prompt, with stored answer ids spliced in where they exist."""
        assert self._fmt is not None
        return prompt_ids(self._fmt, messages, self._tokenize, self._literal)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt length in tokens for `messages`, generation prompt included."""
        return len(self.prompt_ids(messages))

    def _fit(self, messages: Sequence[Message], params: GenerationParams) -> tuple[Fit, int, list[int]]:
        """The messages that fit the window, the room left for the answer and the prompt's ids; raises
        EngineError (ContextOverflowError among them) when no model is loaded or nothing fits."""
        self._require()
        fit, max_new = fit_prompt(messages, self.count_tokens, self._n_ctx, params.max_tokens, params.forget_oldest)
        return fit, max_new, self.prompt_ids([messages[i] for i in fit.kept])

    def _reuse_prefix(self, prompt: list[int]) -> int:
        """Keep what the model's cache holds of `prompt` (at least one token left to evaluate); return how much."""
        raise NotImplementedError

    def _prefill(self, prompt: list[int], reused: int, cancel: threading.Event) -> Generator[Chunk, None, int]:
        """Read the prompt ahead of sampling where the backend can report how far it got, yielding progress
        chunks; returns how much of `prompt` the cache then holds. By default sampling reads it."""
        yield from ()
        return reused

    def _decoder(self) -> Callable[[int], str]:
        """A fresh decoder for one answer: a token id in, the whole characters it completes out."""
        raise NotImplementedError

    def _sample(self, prompt: list[int], reused: int, max_new: int, params: GenerationParams,
                cancel: threading.Event) -> Generator[int, None, None]:
        """The backend's sampling loop: token ids of the answer to `prompt`, `reused` of it cached."""
        raise NotImplementedError

    def _lookup(self, params: GenerationParams) -> bool:
        """Whether this answer drafts from the conversation (prompt lookup)."""
        return self.lookup_by_default if params.prompt_lookup is None else params.prompt_lookup

    def _evaluate_more(self, ids: list[int], start: int) -> None:
        """Evaluate `ids[start:]` into the cache, which holds `ids[:start]`."""
        raise NotImplementedError

    def _read_next_opening(self, kept: list[Message], text: str, last: Chunk) -> None:
        """After an answer, evaluate the tokens every next turn begins with, while the person reads: the next
        turn then evaluates only the new message, and the saved state includes the opening. A next prompt
        that differs is still right: only the part of the cache that agrees with it is ever reused."""
        if last.finish_reason not in ("stop", "length") or last.stats is None or not last.stats.token_ids:
            return
        answer = Message("assistant", text, token_ids=tuple(last.stats.token_ids))
        assert self._resume is not None
        try:
            a, b = (self.prompt_ids([*kept, answer, Message("user", probe)]) for probe in NEXT_PROBES)
            opening = a[:common_prefix(a, b)]
            live = self._resume.live_ids()
            held = len(live)
            if (not 0 < len(opening) - held <= READ_AHEAD_MAX or len(opening) >= self._n_ctx
                    or common_prefix(live, opening) < held):
                return
            self._evaluate_more(opening, held)
        except Exception as e:  # only time is lost: the next turn evaluates these tokens itself
            log.warning("could not read the next turn's opening ahead: %r", e)

    def generate(self, messages: Sequence[Message], params: GenerationParams,
                 cancel: threading.Event) -> Iterator[Chunk]:
        """Stream an answer; see Engine.generate. Never raises for runtime problems."""
        t0 = time.perf_counter()
        try:
            fit, max_new, prompt = self._fit(messages, params)
        except EngineError as e:
            yield refused(t0, e)
            return
        assert self._resume is not None
        self._resume.before(prompt, cancel)
        reused = self._reuse_prefix(prompt)
        read = yield from self._prefill(prompt, reused, cancel)
        text: list[str] = []

        def answer() -> Iterator[Chunk]:
            for chunk in stream_answer(
                    self._sample(prompt, read, max_new, params, cancel), self._decoder(), stop_ids=self._stop_ids,
                    stop_strings=(*self._stop_strings, *params.stop), max_new=max_new, cancel=cancel,
                    prompt=PromptStats(t0, len(prompt), reused, fit.forgotten)):
                text.append(chunk.text)
                yield chunk

        kept = [messages[i] for i in fit.kept]
        yield from self._resume.saving(answer(), lambda last: self._read_next_opening(kept, "".join(text), last))
