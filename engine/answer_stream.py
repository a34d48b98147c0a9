"""One answer's stream, the same for every backend: sampled token ids in, the `Chunk`s the user sees out.

As in mlx-lm's split of `generate_step` (sampling) from `stream_generate` (text and stopping), a
backend supplies only its sampling loop, as an iterator of token ids, and a decoder for them; this
loop decides what is shown and when the answer ends, so both backends end answers, hide stop
strings and report stats alike.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Container, Generator, Iterator, Sequence

from engine.stats import PromptStats, generation_stats
from engine.stop import StopMatcher
from engine.types import Chunk, EngineError, FinishReason

log = logging.getLogger(__name__)

FAILED = ("The model stopped with an internal error. Try again; if it keeps happening, reload the model or "
          "lower the context in Settings.")


def refused(started: float, e: EngineError) -> Chunk:
    """The only chunk of a request refused before generating (no model, a prompt that cannot fit)."""
    log.warning("generate refused: %s (%s)", e.message, e.detail)
    return Chunk("", "error", generation_stats(PromptStats(started), [], None), error=e.message)


def stream_answer(tokens: Generator[int, None, None], decode: Callable[[int], str], *, stop_ids: Container[int],
                  stop_strings: Sequence[str], max_new: int, cancel: threading.Event,
                  prompt: PromptStats) -> Iterator[Chunk]:
    """Stream the answer that `tokens` samples; the last chunk has the finish reason and the stats.

    `decode(token)` returns the text of the whole characters the token completes and keeps the bytes
    of an unfinished one, so an answer cut off inside a character never shows half of it. The answer
    ends on a stop id (not part of the answer), a stop string (never shown, not even in part),
    `max_new` tokens, or `cancel`. An exception from `tokens` or `decode` ends it as "error" with a
    plain sentence, or as "cancelled" when `cancel` is set: backends abort a running step by raising.
    Nothing is raised. `tokens` is closed before the last chunk, so a backend's clean-up in its
    `finally` (abort callback, cache bookkeeping) has run by the time the caller sees the stats.
    """
    matcher = StopMatcher(stop_strings)
    out: list[int] = []  # the answer's ids: stored with it so the next prompt reuses the KV cache
    finish: FinishReason = "length"
    error: str | None = None
    t_first: float | None = None
    started = False
    try:
        for token in tokens:
            if t_first is None:
                t_first = time.perf_counter()
            if cancel.is_set():
                finish = "cancelled"
                break
            if token in stop_ids:
                finish = "stop"
                break
            out.append(token)
            text = decode(token)
            if not started:
                text = text.lstrip(" ")  # SentencePiece's word-start space before the first word
                started = bool(text)
            visible, stopped = matcher.push(text)
            if visible:
                yield Chunk(visible)
            if stopped:
                finish = "stop"
                break
            if len(out) >= max_new:
                break
    except Exception as e:
        if cancel.is_set():
            finish = "cancelled"
        else:
            finish, error = "error", FAILED
            log.exception("generation failed: %r", e)
    finally:
        tokens.close()
    # Text held back as a possible stop string's start is shown unless a stop string matched.
    yield Chunk(matcher.flush(), finish, generation_stats(prompt, out, t_first), error=error)
