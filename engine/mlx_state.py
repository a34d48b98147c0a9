"""mlx-lm's prompt cache as bytes for `resume`: `save_prompt_cache`/`load_prompt_cache` in memory, with
each layer's keys and values cut to the tokens in use (mlx-lm allocates them in steps of 256, and a
trimmed cache keeps its old tail)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np


def build() -> str:
    """The library build a state's byte layout depends on."""
    import mlx.core as mx
    import mlx_lm

    return f"mlx {mx.__version__}, mlx-lm {mlx_lm.__version__}, prompt cache"


class MlxStateIO:
    """`resume.StateIO` over an MLX engine's prompt cache, through its getter and setter: the engine
    replaces its cache object when it starts afresh."""

    def __init__(self, get: Callable[[], tuple[list[Any], list[int]]],
                 put: Callable[[list[Any], list[int]], None]) -> None:
        self._get = get
        self._put = put

    def live_ids(self) -> list[int]:
        return self._get()[1]

    def snapshot(self) -> tuple[list[int], bytes]:
        from mlx_lm.models.cache import KVCache, save_prompt_cache

        cache, ids = self._get()
        if not cache or any(type(c) is not KVCache or c.offset != len(ids) for c in cache):
            raise ValueError(f"the prompt cache does not hold the {len(ids)} tokens on record")
        used = [KVCache.from_state((c.keys[..., : c.offset, :], c.values[..., : c.offset, :], c.offset))
                for c in cache]
        out = io.BytesIO()
        save_prompt_cache(out, used)  # type: ignore[arg-type]  # mx.save_safetensors takes a file object
        return list(ids), out.getvalue()

    def restore(self, ids: np.ndarray, payload: bytes) -> None:
        from mlx_lm.models.cache import KVCache, load_prompt_cache

        src = io.BytesIO(payload)
        src.name = "state.safetensors"  # mx.load picks the format by the file's name
        cache = load_prompt_cache(src)
        if any(type(c) is not KVCache or c.offset != len(ids) for c in cache):
            raise ValueError(f"the saved prompt cache does not hold its {len(ids)} tokens")
        current, _ = self._get()
        if len(cache) != len(current):
            raise ValueError(f"the saved prompt cache has {len(cache)} layers, the model {len(current)}")
        self._put(cache, [int(i) for i in ids])
