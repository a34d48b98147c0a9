"""The Engine protocol every inference backend implements (llama.cpp, MLX)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

from engine.types import Chunk, GenerationParams, LoadOptions, LoadReport, Message, ModelInfo


@runtime_checkable
class Engine(Protocol):
    """One loaded model. Not thread-safe: exactly one thread (the engine worker) calls it;
    only `cancel` (a plain Event) is touched from other threads."""

    name: str

    def load(self, model: ModelInfo, options: LoadOptions) -> LoadReport:
        """Load the model; raise `EngineError`/`ModelFileError` with a plain message."""
        ...

    def unload(self) -> None:
        """Free the model and its KV cache. Safe to call when nothing is loaded."""
        ...

    @property
    def chat_format(self) -> str:
        """Name of the chat format prompts are rendered with."""
        ...

    def set_chat_format(self, name: str) -> tuple[str, ...]:
        """Switch the chat format without reloading; returns self-test warnings."""
        ...

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens the rendered prompt for `messages` takes, generation prompt included."""
        ...

    def generate(
        self, messages: Sequence[Message], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[Chunk]:
        """Stream the answer to `messages`. Never raises for runtime problems: the last chunk
        has `finish_reason` (`stop`/`length`/`cancelled`/`error`) and `GenerationStats`."""
        ...
