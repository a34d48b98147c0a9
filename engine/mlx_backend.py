"""The MLX backend (mlx-lm): converted MLX model folders, on Apple Silicon's GPU (or any CPU with mlx[cpu]).

Prompts come from `chat_format` like every backend's — the tokenizer's own chat template is not
used — tokenized with special tokens parsed and no extra BOS. Earlier answers are spliced in as the
ids that were generated, and one prompt cache (`make_prompt_cache`) is kept across turns: before each
answer it is trimmed to the longest common prefix with the new prompt (`trim_prompt_cache`) and only
the rest is evaluated. Tokens come from `mlx_lm.generate_step` and text from the tokenizer's streaming
detokenizer; `answer_stream` turns them into the answer. Cancel is checked between tokens and, through
the prompt-progress callback, between prompt chunks of PREFILL_STEP tokens. A long prompt rest is read
first, with a text-less `Chunk(prompt_read=…)` per chunk: on a CPU it takes seconds.

mlx and mlx_lm are imported inside methods: `import mlx_lm` takes 1.5–2 s (it pulls in
transformers), which must not delay the GUI's start.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

from engine.chat_format import get_format
from engine.literal_tokens import LiteralTokenizer
from engine.local_engine import LocalEngine
from engine.mlx_lookup import lookup_steps
from engine.mlx_state import MlxStateIO, build
from engine.prompt_tokens import common_prefix
from engine.resume import Resumer
from engine.types import Chunk, EngineError, GenerationParams, LoadOptions, LoadReport, ModelFileError, ModelInfo

log = logging.getLogger(__name__)

SUPPORTED_ARCHITECTURES = ("llama",)
# Prompt tokens evaluated between cancel checks: small enough that cancel lands within ~0.2 s on a
# CPU, large enough that the per-chunk overhead stays negligible.
PREFILL_STEP = 128
PROGRESS_AFTER = 2 * PREFILL_STEP  # a prompt rest longer than this is read with progress reports
REPEAT_LAST_N = 64  # tokens the repeat penalty looks back over, as llama-cpp-python's default


class _Cancelled(Exception):
    """Raised from the prompt-progress callback to abandon prompt evaluation."""


def check_model_dir(path: Path) -> dict[str, Any]:
    """Raise ModelFileError unless `path` looks like an MLX model folder; return its config."""
    if not path.exists():
        raise ModelFileError(f"The model folder {path.name} was not found. Download the model again or choose "
                             "another one.", detail=str(path))
    if not path.is_dir():
        raise ModelFileError(f"{path.name} is a file, not an MLX model folder. MLX models are folders made by "
                             "the model manager; for a .gguf file choose the llama.cpp engine.", detail=str(path))
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ModelFileError(f"The model folder {path.name} has no config.json: it is not an MLX model, or it "
                             "is incomplete. Convert or download the model again.", detail=str(path)) from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"The model folder {path.name} has a damaged config.json. Convert or download the "
                             "model again.", detail=repr(e)) from e
    if not isinstance(config, dict):
        raise ModelFileError(f"The model folder {path.name} has a damaged config.json. Convert or download the "
                             "model again.", detail=f"config.json holds a {type(config).__name__}")
    if not any(path.glob("model*.safetensors")):
        raise ModelFileError(f"The model folder {path.name} has no weights. Convert or download the model "
                             "again.", detail=str(path))
    return config


class MlxEngine(LocalEngine):
    """Engine protocol implementation on mlx-lm."""

    name = "mlx"
    # Measured on a CPU, drafting did not pay on MLX (1.15x quoting, 0.90x with nothing to quote): its step
    # syncs on every sampled token where mlx-lm's own loop overlaps them. On request only.
    lookup_by_default = False

    def __init__(self) -> None:
        super().__init__()
        self._model: Any = None
        self._tokenizer: Any = None  # mlx_lm's TokenizerWrapper
        self._cache: list[Any] = []  # the prompt cache: one KV cache per layer
        self._cached_ids: list[int] = []  # the exact tokens the cache holds

    # ----------------------------------------------------------------- loading
    def load(self, model: ModelInfo, options: LoadOptions) -> LoadReport:
        """Load an MLX model folder; raises ModelFileError/EngineError with a plain message."""
        self.unload()
        path = Path(model.path)
        config = check_model_dir(path)
        arch = config.get("model_type", "unknown")
        if arch not in SUPPORTED_ARCHITECTURES:
            raise ModelFileError(
                f"This model's architecture ({arch}) is not supported: TinyChat runs Llama-family models "
                "such as TinyLlama. Choose another model.", detail=str(path))
        t0 = time.perf_counter()
        chatter = io.StringIO()
        try:
            import mlx.core as mx
            from mlx_lm import load as mlx_load

            with contextlib.redirect_stdout(chatter):
                self._model, self._tokenizer = mlx_load(str(path))
        except ImportError as e:
            raise EngineError("MLX is not installed on this computer. Choose the llama.cpp engine in Settings.",
                              detail=repr(e)) from e
        except (RuntimeError, ValueError, KeyError, OSError) as e:
            self.unload()
            if "metallib" in str(e):  # MLX's GPU kernels are missing: a broken install, not a broken model
                raise EngineError("MLX could not start on this Mac's GPU (its Metal kernels are missing). "
                                  "Reinstall TinyChat, or choose the llama.cpp engine in Settings.",
                                  detail=repr(e)) from e
            raise ModelFileError(
                f"The model in {path.name} could not be loaded: it may be incomplete or damaged. Convert or "
                "download it again, or choose another model.", detail=repr(e)) from e
        finally:
            if chatter.getvalue():
                log.debug("mlx-lm load output: %s", chatter.getvalue()[-4000:])
        self._n_ctx = options.n_ctx
        self._literal = LiteralTokenizer(self._tokenize_plain, self._tokenizer._tokenizer.get_added_vocab())
        self._reset_cache()
        self._resume = Resumer(MlxStateIO(lambda: (self._cache, self._cached_ids), self._use_cache), path, build(),
                               options.n_ctx, options, lambda: self.chat_format)
        warnings = self._format_at_load(options.chat_format or model.chat_format)
        load_s = time.perf_counter() - t0
        device = str(mx.default_device())
        log.info("loaded %s (%s) on %s in %.2f s, format %s", path.name, arch, device, load_s, self.chat_format)
        quant = config.get("quantization") or {}
        return LoadReport(chat_format=self.chat_format, n_ctx=options.n_ctx, n_vocab=len(self._tokenizer),
                          n_threads=0, load_s=load_s, warnings=tuple(warnings),
                          metadata={"general.architecture": arch, "mlx.device": device,
                                    "mlx.bits": str(quant.get("bits", 16))})

    def unload(self) -> None:
        """Free the model and its prompt cache."""
        loaded = self._model is not None
        self._model = self._tokenizer = self._fmt = None
        self._cache, self._cached_ids = [], []
        if self._resume is not None:
            self._resume.close()  # the states saved so far reach the disk
        self._resume = None
        if loaded:
            import mlx.core as mx

            mx.clear_cache()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def set_chat_format(self, name: str) -> tuple[str, ...]:
        """Switch format; returns the template self-test's warnings."""
        tokenizer = self._require()
        fmt = get_format(name)  # an MLX folder has no GGUF template: gguf-jinja is refused with a message
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        return self._use_format(fmt, eos)

    # --------------------------------------------------------------- prompting
    def _require(self) -> Any:
        if self._tokenizer is None:
            raise EngineError("No model is loaded. Choose a model in Settings first.")
        return self._tokenizer

    def _tokenize(self, text: str) -> list[int]:
        return list(self._require().encode(text, add_special_tokens=False)) if text else []

    def _tokenize_plain(self, text: str) -> list[int]:
        # split_special_tokens: special tokens' text stays text (LiteralTokenizer also cuts it up).
        hf = self._require()._tokenizer
        return list(hf.encode(text, add_special_tokens=False, split_special_tokens=True)) if text else []

    # ----------------------------------------------------------------- caching
    def _reset_cache(self) -> None:
        from mlx_lm.models.cache import make_prompt_cache

        self._cache, self._cached_ids = make_prompt_cache(self._model), []

    def _use_cache(self, cache: list[Any], ids: list[int]) -> None:
        self._cache, self._cached_ids = cache, ids

    def _reuse_prefix(self, prompt: list[int]) -> int:
        """Trim the cache to its longest common prefix with `prompt` (leaving at least one prompt
        token to evaluate, which yields the first answer token); return the tokens kept."""
        from mlx_lm.models.cache import can_trim_prompt_cache, trim_prompt_cache

        keep = min(common_prefix(self._cached_ids, prompt), len(prompt) - 1)
        size = self._cache[0].offset if self._cache else 0
        if size != len(self._cached_ids) or not can_trim_prompt_cache(self._cache):
            log.warning("prompt cache out of step (%d tokens, %d ids): starting afresh", size,
                        len(self._cached_ids))
            self._reset_cache()
            return 0
        trim_prompt_cache(self._cache, size - keep)
        self._cached_ids = self._cached_ids[:keep]
        return keep

    def _remember(self, sequence: list[int]) -> None:
        """Record which tokens the cache holds after a generation: the first `offset` of `sequence`
        (prompt + every token fed back, a stop token included), however the generation ended."""
        size = self._cache[0].offset if self._cache else 0
        if size > len(sequence):
            self._reset_cache()
        else:
            self._cached_ids = sequence[:size]

    # -------------------------------------------------------------- generating
    def _logits_processors(self, penalty: float, history: list[int]) -> list[Any] | None:
        """The repeat penalty over the last REPEAT_LAST_N tokens of the whole context. mlx-lm sees
        only the tokens of this call, so the reused prefix's tail is put in front of them: a warm
        turn then samples exactly as a cold one would."""
        if penalty == 1.0:
            return None
        import mlx.core as mx
        from mlx_lm.sample_utils import make_logits_processors

        processors = make_logits_processors(repetition_penalty=penalty, repetition_context_size=REPEAT_LAST_N)
        if not history:
            return processors
        tail = mx.array(history[-REPEAT_LAST_N:])
        return [lambda tokens, logits, p=p: p(mx.concatenate([tail, tokens]), logits) for p in processors]

    def _sampler(self, params: GenerationParams) -> Any:
        import mlx.core as mx
        from mlx_lm.sample_utils import make_sampler

        mx.random.seed(params.seed if params.seed is not None else random.randrange(2**31))
        top_k = params.top_k if 0 < params.top_k < len(self._tokenizer) else 0
        return make_sampler(temp=params.temperature, top_p=params.top_p, min_p=params.min_p, top_k=top_k)

    def _prefill(self, prompt: list[int], reused: int, cancel: threading.Event) -> Generator[Chunk, None, int]:
        # On a CPU a long prompt takes many seconds: read it here, saying how far reading got.
        read = reused
        if len(prompt) - reused > PROGRESS_AFTER:
            for read in self._read_prompt(prompt, reused, cancel):
                yield Chunk("", prompt_read=(read - reused, len(prompt) - 1 - reused))
        return read

    def _evaluate_more(self, ids: list[int], start: int) -> None:
        try:
            for _ in self._read_prompt([*ids, 0], start, threading.Event()):  # the 0 is left unread
                pass
        except Exception:
            self._reset_cache()  # the cache may hold part of a failed step
            raise

    def _decoder(self) -> Callable[[int], str]:
        # A fresh copy of mlx-lm's streaming detokenizer: it holds a character's bytes until whole.
        detokenizer = self._require().detokenizer

        def decode(token: int) -> str:
            detokenizer.add_token(token)
            return detokenizer.last_segment

        return decode

    def _read_prompt(self, prompt: list[int], start: int, cancel: threading.Event) -> Iterator[int]:
        """Evaluate `prompt[start:-1]` into the cache PREFILL_STEP tokens at a time, as mlx-lm's own
        prefill does, yielding the tokens the cache holds after each step (so the caller can say how far
        reading got; on a CPU a long prompt takes many seconds). The last token is left for sampling."""
        import mlx.core as mx

        done, end = start, len(prompt) - 1
        while done < end and not cancel.is_set():
            n = min(PREFILL_STEP, end - done)
            self._model(mx.array(prompt[done:done + n])[None], cache=self._cache)
            mx.eval([c.state for c in self._cache])
            done += n
            self._cached_ids = prompt[:done]
            yield done

    def _sample(self, prompt: list[int], reused: int, max_new: int, params: GenerationParams,
                cancel: threading.Event) -> Generator[int, None, None]:
        """mlx-lm's sampling loop (`generate_step`) over the uncached rest of `prompt`. `cancel`
        aborts the prompt's evaluation too (raising _Cancelled); the cache's record stays true
        however the answer ends."""
        import mlx.core as mx
        from mlx_lm.generate import generate_step, generation_stream, wired_limit

        def on_prompt_progress(_done: int, _total: int) -> None:
            if cancel.is_set():
                raise _Cancelled

        steps = lookup_steps(
            self._model, prompt, reused, self._cache, max_tokens=max_new, sampler=self._sampler(params),
            logits_processors=self._logits_processors(params.repeat_penalty, []), prefill_step=PREFILL_STEP,
            on_prompt_progress=on_prompt_progress) if self._lookup(params) else generate_step(
            mx.array(prompt[reused:]), self._model, max_tokens=max_new, sampler=self._sampler(params),
            logits_processors=self._logits_processors(params.repeat_penalty, prompt[:reused]),
            prompt_cache=self._cache, prefill_step_size=PREFILL_STEP, prompt_progress_callback=on_prompt_progress)
        fed: list[int] = []  # every token fed back into the model, a stop token included
        failed = False
        try:
            with wired_limit(self._model, [generation_stream]):
                for token, _logprobs in steps:
                    fed.append(token)
                    yield token
        except _Cancelled:
            raise
        except Exception:
            failed = True  # the cache may hold part of a failed step
            raise
        finally:
            steps.close()
            if failed:
                self._reset_cache()
            else:
                self._remember(prompt + fed)
