"""llama.cpp's cache as bytes for `resume`: the per-sequence state API, which writes only the cells in
use (22 KB a token for TinyLlama in F16: 22 layers × K and V × 4 KV heads × 64 dims × 2 bytes), and
llama-cpp-python's record of the ids those cells hold."""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

SEQ = 0  # llama-cpp-python evaluates everything as sequence 0


def build() -> str:
    """The library build a state's byte layout depends on."""
    import llama_cpp

    return f"llama-cpp-python {llama_cpp.__version__}, sequence state"


class LlamaStateIO:
    """`resume.StateIO` over a `llama_cpp.Llama`."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm

    def live_ids(self) -> np.ndarray:
        return self._llm.input_ids[: self._llm.n_tokens]

    def snapshot(self) -> tuple[np.ndarray, bytes]:
        import llama_cpp

        llm = self._llm
        size = llama_cpp.llama_state_seq_get_size(llm.ctx, SEQ)
        buf = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(llm.ctx, buf, size, SEQ)
        if not 0 < written <= size:
            raise RuntimeError(f"llama.cpp wrote {written} of {size} state bytes")
        return llm.input_ids[: llm.n_tokens].copy(), ctypes.string_at(buf, written)

    def restore(self, ids: np.ndarray, payload: bytes) -> None:
        import llama_cpp

        llm = self._llm
        if len(ids) > llm.n_ctx():
            raise ValueError(f"a state of {len(ids)} tokens does not fit a {llm.n_ctx()}-token context")
        src = ctypes.cast(ctypes.c_char_p(payload), ctypes.POINTER(ctypes.c_uint8))  # no copy of the bytes
        read = llama_cpp.llama_state_seq_set_data(llm.ctx, src, len(payload), SEQ)
        if read != len(payload):
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            llm.n_tokens = 0
            raise RuntimeError(f"llama.cpp took {read} of {len(payload)} state bytes")
        llm.input_ids[: len(ids)] = ids
        llm.n_tokens = len(ids)
        llm._requires_eval = True  # the logits in the context are not this state's
