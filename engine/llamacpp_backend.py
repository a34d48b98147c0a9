"""The llama.cpp backend (llama-cpp-python): GGUF models on any CPU.

Prompts are rendered by `chat_format` and tokenized with specials parsed and no extra BOS (the
rendered text carries its own `<s>`). Earlier answers are spliced in as the exact ids that were
generated, so llama-cpp-python's prefix match keeps the whole conversation in the KV cache and
only the new suffix is evaluated.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import logging
import random
import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path

from engine import cpu_build, llama_log
from engine.chat_format import get_format
from engine.hardware import cpuinfo_flags, missing_instructions, physical_cores
from engine.literal_tokens import LiteralTokenizer
from engine.llamacpp_lookup import lookup_tokens
from engine.llamacpp_state import LlamaStateIO, build
from engine.local_engine import LocalEngine
from engine.prompt_tokens import common_prefix
from engine.resume import Resumer
from engine.types import EngineError, GenerationParams, LoadOptions, LoadReport, ModelFileError, ModelInfo

log = logging.getLogger(__name__)

SUPPORTED_ARCHITECTURES = ("llama",)


def check_model_file(path: Path) -> None:
    """Raise ModelFileError unless `path` looks like a readable GGUF file."""
    if not path.exists():
        raise ModelFileError(f"The model file {path.name} was not found. Download it again or choose another file.",
                             detail=str(path))
    if not path.is_file():
        raise ModelFileError(f"{path.name} is a folder, not a GGUF model file. Choose the .gguf file inside it.",
                             detail=str(path))
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ModelFileError(f"The model file {path.name} could not be read. Check its permissions.",
                             detail=repr(e)) from e
    if magic != b"GGUF":
        raise ModelFileError(f"{path.name} is not a GGUF model file. TinyChat runs .gguf models with llama.cpp.",
                             detail=f"magic {magic!r}")


def _token_texts(llm) -> list[str]:
    """Texts of the vocab's control, user-defined and unknown tokens: the ones llama.cpp may match
    as whole tokens in text."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    markup = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED | \
        llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN
    return [llama_cpp.llama_vocab_get_text(vocab, i).decode("utf-8", errors="replace")
            for i in range(llm.n_vocab()) if llama_cpp.llama_vocab_get_attr(vocab, i) & markup]


def _unsupported(path: Path, arch: str, detail: str) -> ModelFileError:
    return ModelFileError(f"{path.name} is a model of an architecture TinyChat cannot run ({arch}): it runs "
                          "Llama-family models such as TinyLlama. Choose another model file.", detail=detail)


class LlamaCppEngine(LocalEngine):
    """Engine protocol implementation on llama-cpp-python."""

    name = "llama.cpp"

    def __init__(self) -> None:
        super().__init__()
        self._llm = None
        self._model: ModelInfo | None = None
        self._cancel: threading.Event | None = None
        self._abort_cb = None

    # ----------------------------------------------------------------- loading
    def load(self, model: ModelInfo, options: LoadOptions) -> LoadReport:
        """Load a GGUF file; raises ModelFileError/EngineError with a plain message."""
        cpu_build.apply()  # a no-op after the entry points' call; picks the build for library use
        import llama_cpp

        llama_log.install()
        self.unload()
        path = Path(model.path)
        check_model_file(path)
        from engine.validate import require_valid

        require_valid(path)  # llama.cpp aborts the process on some bad values: refuse them first, in a child
        system_info = llama_cpp.llama_print_system_info().decode()
        missing = missing_instructions(system_info, cpuinfo_flags())
        if missing:  # loading would die with SIGILL (illegal instruction) instead
            raise EngineError(
                f"This computer's processor lacks {', '.join(missing)}, which this build of TinyChat needs. "
                "To run on this computer, build TinyChat from source here: see docs/install.md.",
                detail=system_info)
        n_threads = options.n_threads or physical_cores()
        t0 = time.perf_counter()
        llama_log.clear_recent()
        chatter = io.StringIO()
        try:
            # verbose=True avoids llama-cpp-python's fd-level stdout/stderr redirection (which would
            # silence every thread); llama.cpp's own logs go through llama_log, its prints to our log.
            with contextlib.redirect_stderr(chatter):
                llm = llama_cpp.Llama(
                    model_path=str(path), n_ctx=options.n_ctx, n_threads=n_threads, n_threads_batch=n_threads,
                    use_mmap=options.use_mmap, n_gpu_layers=0, verbose=True,
                )
        except (ValueError, RuntimeError, OSError) as e:
            problems = llama_log.recent_problems()
            detail = f"{e!r}; llama.cpp said: {' | '.join(problems)}"
            if any("unknown model architecture" in p for p in problems):
                raise _unsupported(path, "unknown to llama.cpp", detail) from e
            raise ModelFileError(
                f"The model file {path.name} could not be loaded: it may be incomplete or damaged. "
                "Download it again, or choose another model file.", detail=detail) from e
        finally:
            log.debug("llama-cpp-python load output: %s", chatter.getvalue()[-4000:])
        llm.verbose = False  # no per-call prints from here on
        arch = llm.metadata.get("general.architecture", "unknown")
        if arch not in SUPPORTED_ARCHITECTURES:
            llm.close()
            raise _unsupported(path, arch, str(path))
        self._llm, self._model, self._n_ctx = llm, model, options.n_ctx
        self._literal = LiteralTokenizer(self._tokenize_plain, _token_texts(llm))
        self._abort_cb = llama_cpp.ggml_abort_callback(self._should_abort)
        self._resume = Resumer(LlamaStateIO(llm), path, build(), options.n_ctx, options, lambda: self.chat_format)
        warnings = self._format_at_load(options.chat_format or model.chat_format)
        load_s = time.perf_counter() - t0
        log.info("loaded %s (%s) in %.2f s, %d threads, format %s", path.name, arch, load_s, n_threads,
                 self.chat_format)
        return LoadReport(chat_format=self.chat_format, n_ctx=options.n_ctx, n_vocab=llm.n_vocab(),
                          n_threads=n_threads, load_s=load_s, warnings=tuple(warnings),
                          metadata=dict(llm.metadata))

    def unload(self) -> None:
        """Free the model and its context."""
        if self._llm is not None:
            self._llm.close()
        self._llm = None
        self._fmt = None
        if self._resume is not None:
            self._resume.close()  # the states saved so far reach the disk
        self._resume = None

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def set_chat_format(self, name: str) -> tuple[str, ...]:
        """Switch format; returns the template self-test's warnings."""
        llm = self._require()
        fmt = get_format(name, gguf_template=llm.metadata.get("tokenizer.chat_template"))
        return self._use_format(fmt, [llm.token_eos()])

    # --------------------------------------------------------------- prompting
    def _require(self):
        if self._llm is None:
            raise EngineError("No model is loaded. Choose a model in Settings first.")
        return self._llm

    def _tokenize(self, text: str, special: bool = True) -> list[int]:
        return self._require().tokenize(text.encode("utf-8"), add_bos=False, special=special) if text else []

    def _tokenize_plain(self, text: str) -> list[int]:
        return self._tokenize(text, special=False)

    # -------------------------------------------------------------- generating
    def _should_abort(self, _data: object) -> bool:
        return self._cancel is not None and self._cancel.is_set()

    def _set_abort(self, on: bool) -> None:
        import llama_cpp

        # The callback runs for every graph node; install it only while a prompt is evaluated
        # (generation checks `cancel` between tokens) so decoding pays no Python call per node.
        cb = self._abort_cb if on else llama_cpp.ggml_abort_callback()
        llama_cpp.llama_set_abort_callback(self._require().ctx, cb, None)

    def _reuse_prefix(self, prompt: list[int]) -> int:
        """How much of `prompt` llama-cpp-python's cache already holds (`generate(reset=True)` keeps that)."""
        llm = self._require()
        cached = llm._input_ids[: llm.n_tokens].tolist()
        return min(common_prefix(cached, prompt), len(prompt) - 1)  # it always re-evaluates the last one

    def _evaluate_more(self, ids: list[int], start: int) -> None:
        llm = self._require()
        try:
            llm.eval(ids[start:])
        except Exception:
            llm.reset()  # a failed batch may have left part of itself in the cache: start afresh
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            raise

    def _decoder(self) -> Callable[[int], str]:
        llm = self._require()
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return lambda token: utf8.decode(llm.detokenize([token]))

    def _sample(self, prompt: list[int], reused: int, max_new: int, params: GenerationParams,
                cancel: threading.Event) -> Generator[int, None, None]:
        """llama-cpp-python's sampling loop; `cancel` aborts the prompt's evaluation too (it raises
        RuntimeError then)."""
        llm = self._require()
        llm.set_seed(params.seed if params.seed is not None else random.randrange(2**31))
        tokens = llm.generate(prompt, top_k=params.top_k, top_p=params.top_p, min_p=params.min_p,
                              temp=params.temperature, repeat_penalty=params.repeat_penalty, reset=True)
        self._cancel = cancel
        self._set_abort(True)
        try:
            first = next(tokens, None)  # evaluates the prompt
            self._set_abort(False)  # generation checks `cancel` between tokens instead
            if first is not None:
                yield first
                yield from lookup_tokens(llm, first) if self._lookup(params) else tokens
        finally:
            tokens.close()
            self._set_abort(False)
            self._cancel = None
