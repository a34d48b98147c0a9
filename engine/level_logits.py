"""The next-token logits of every position of a token sequence, from either backend, for measuring a
level's answer quality (engine/level_quality.py).

Chat generation needs only the last position's logits; comparing levels needs all of them. llama.cpp:
a separate `Llama(logits_all=True)` with a context of one evaluation window (the chat engine's own
instance keeps only the last row), each window decoded as one batch, cancelled through llama.cpp's
abort callback. MLX: the model called on the tokens, which returns every row, in slices of `SLICE`
tokens with the cancel Event checked between them.

Why one batch on llama.cpp: ggml's threads meet at a busy-waiting barrier after every graph node, so
when other programs share the cores a thread waits, spinning, for its descheduled partner at each
node. Measured on 2 cores at load ≈ 4, a 384-token window of the TinyLlama-shaped Q4_K_M took 51–88 s
in 64-token batches (six graphs) and 22 s as one batch; alone on one thread it is 10 s of CPU either
way, so the batch size costs nothing when the machine is idle and saves the most when it is not.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from engine.types import EngineError, EngineName, ModelFileError

log = logging.getLogger(__name__)

# MLX: tokens evaluated between two cancel checks (a TinyLlama-sized slice takes well under a second).
SLICE = 64


class MeasurementCancelled(EngineError):
    """The user cancelled a measurement; nothing was recorded."""


def check_cancel(cancel: threading.Event | None) -> None:
    """Raise MeasurementCancelled once `cancel` is set."""
    if cancel is not None and cancel.is_set():
        raise MeasurementCancelled("Measurement cancelled. Nothing was recorded.")


class LogitSource(Protocol):
    """A loaded model that tokenizes text and returns the logits of every position."""

    bos: int
    n_vocab: int

    def tokenize(self, text: str) -> list[int]:
        """`text` as the chat engine tokenizes a prompt: control-token text becomes control tokens."""
        ...

    def logits(self, tokens: list[int], cancel: threading.Event | None) -> np.ndarray:
        """float32 array (len(tokens), n_vocab): row i is the distribution of the token after tokens[:i+1]."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...


class LlamaLogits:
    """llama.cpp (llama-cpp-python) with logits kept for every position."""

    def __init__(self, path: Path, n_ctx: int, n_threads: int) -> None:
        import llama_cpp

        from engine import llama_log
        from engine.validate import require_valid

        require_valid(path)  # a file llama.cpp would abort on is refused first, as for every load
        llama_log.install()
        chatter = io.StringIO()
        try:
            # verbose=True for the reason LlamaCppEngine.load gives: no process-wide fd redirection.
            with contextlib.redirect_stderr(chatter):
                self._llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx,
                                            n_threads=n_threads, n_threads_batch=n_threads, logits_all=True,
                                            use_mmap=False, n_gpu_layers=0, verbose=True)
        except (ValueError, RuntimeError, OSError) as e:
            raise ModelFileError(f"The model file {path.name} could not be loaded for measuring.",
                                 detail=f"{e!r}; {llama_log.recent_problems()}") from e
        finally:
            log.debug("llama-cpp-python load output: %s", chatter.getvalue()[-2000:])
        self._llm.verbose = False
        self._cancel: threading.Event | None = None
        # Called by llama.cpp once per graph node while a window is decoded; kept referenced here so
        # ctypes does not free it while the context holds it.
        self._abort = llama_cpp.ggml_abort_callback(self._should_abort)
        llama_cpp.llama_set_abort_callback(self._llm.ctx, self._abort, None)
        self.bos = int(self._llm.token_bos())
        self.n_vocab = int(self._llm.n_vocab())

    def tokenize(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def _should_abort(self, _data: object) -> bool:
        return self._cancel is not None and self._cancel.is_set()

    def logits(self, tokens: list[int], cancel: threading.Event | None) -> np.ndarray:
        llm = self._llm
        check_cancel(cancel)
        llm.reset()  # the next eval drops the whole KV cache: every window starts afresh
        self._cancel = cancel
        try:
            llm.eval(tokens)  # one batch (n_batch is the window): see the module docstring
        except RuntimeError as e:  # llama_decode's status: aborted when cancel was set
            check_cancel(cancel)
            raise EngineError("The model could not evaluate the measurement text; measure it again.",
                              detail=repr(e)) from e
        finally:
            self._cancel = None
        return np.array(llm.scores[:len(tokens)], dtype=np.float32)

    def close(self) -> None:
        import llama_cpp

        llama_cpp.llama_set_abort_callback(self._llm.ctx, llama_cpp.ggml_abort_callback(), None)
        self._llm.close()


class MlxLogits:
    """mlx-lm: the model's forward pass over the tokens, with a KV cache between slices."""

    def __init__(self, path: Path) -> None:
        from engine.mlx_backend import check_model_dir

        check_model_dir(path)
        try:
            from mlx_lm import load as mlx_load

            with contextlib.redirect_stdout(io.StringIO()):
                self._model, self._tokenizer = mlx_load(str(path))
        except ImportError as e:
            raise EngineError("MLX is not installed on this computer.", detail=repr(e)) from e
        except (RuntimeError, ValueError, KeyError, OSError) as e:
            raise ModelFileError(f"The model in {path.name} could not be loaded for measuring.",
                                 detail=repr(e)) from e
        self.bos = int(self._tokenizer.bos_token_id)
        self.n_vocab = int(self._model.args.vocab_size)

    def tokenize(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False))

    def logits(self, tokens: list[int], cancel: threading.Event | None) -> np.ndarray:
        import mlx.core as mx
        from mlx_lm.models.cache import make_prompt_cache

        cache = make_prompt_cache(self._model)
        rows: list[np.ndarray] = []
        for start in range(0, len(tokens), SLICE):
            check_cancel(cancel)
            out: Any = self._model(mx.array(tokens[start:start + SLICE])[None], cache=cache)
            rows.append(np.array(out[0].astype(mx.float32)))
        return np.concatenate(rows)[:, :self.n_vocab]

    def close(self) -> None:
        import mlx.core as mx

        self._model = self._tokenizer = None
        mx.clear_cache()


def open_logits(path: Path, engine: EngineName, n_ctx: int, n_threads: int) -> LogitSource:
    """A logit source for the model at `path` on `engine`."""
    if engine == "mlx":
        return MlxLogits(Path(path))
    return LlamaLogits(Path(path), n_ctx, n_threads)
