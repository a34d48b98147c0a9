"""Small frozen dataclasses that cross the engine boundary, and the engine's error types."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "cancelled", "error"]
EngineName = Literal["llama.cpp", "mlx", "remote"]

DEFAULT_CONTEXT = 2048  # TinyLlama's training length; llama.cpp would default to 512
DEFAULT_MAX_TOKENS = 512
DEFAULT_STATE_MEMORY = 192 * 2**20  # saved states kept in memory: four full 2048-token TinyLlama states
DEFAULT_STATE_DISK_CAP = 2 * 2**30


@dataclass(frozen=True)
class Message:
    """One chat message. `token_ids` are the exact ids an engine generated for an assistant
    answer; prompts reuse them so the KV cache still matches on the next turn."""

    role: Role
    content: str
    token_ids: tuple[int, ...] | None = None


@dataclass(frozen=True)
class GenerationParams:
    """Sampling and length settings for one answer."""

    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    seed: int | None = None
    stop: tuple[str, ...] = ()  # extra stop strings on top of the chat format's own
    forget_oldest: bool = True  # history too long: leave out the oldest turns (False: refuse with a message)
    # Draft tokens from the conversation and verify them in one batch. None: where it was measured to pay
    # (the engine's `lookup_by_default`: llama.cpp yes, MLX no; docs/benchmarks.md).
    prompt_lookup: bool | None = None


@dataclass(frozen=True)
class GenerationStats:
    """What one generation cost and what it left out."""

    prompt_tokens: int
    reused_tokens: int  # prompt tokens found already evaluated in the KV cache
    completion_tokens: int
    ttft_s: float  # request start → first visible text (or finish, if none)
    tokens_per_s: float  # generation speed over the completion tokens
    prompt_tokens_per_s: float  # over the prompt tokens actually evaluated
    total_s: float
    forgotten: tuple[int, ...] = ()  # indices into the request's messages left out to fit the context
    token_ids: tuple[int, ...] = ()  # the generated ids, stop token excluded: store them with the answer


@dataclass(frozen=True)
class Chunk:
    """A piece of a streamed answer: whole UTF-8 characters, never part of a stop string.
    The last chunk carries `finish_reason` and `stats` (and `error`, a sentence for the user). Before
    the first text a backend that reads a long prompt slowly may send chunks without text whose
    `prompt_read` says how far it got: (tokens read, tokens to read)."""

    text: str
    finish_reason: FinishReason | None = None
    stats: GenerationStats | None = None
    error: str | None = None
    prompt_read: tuple[int, int] | None = None


@dataclass(frozen=True)
class RemoteServer:
    """An OpenAI-compatible server the user chose to answer with: its `/v1` URL and optional API key."""

    url: str
    api_key: str = field(default="", repr=False)  # kept out of logs


@dataclass(frozen=True)
class ModelInfo:
    """A model file or folder on disk and what the app knows about it (for the remote engine: the model's
    name on `server`; `path` is unused)."""

    path: Path
    engine: EngineName = "llama.cpp"
    model_id: str = "custom"
    quant: str = ""
    chat_format: str = "chatml"  # the format the model was trained on
    n_ctx: int = DEFAULT_CONTEXT
    label: str = ""
    server: RemoteServer | None = None


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model. `chat_format` overrides the model's own format."""

    n_ctx: int = DEFAULT_CONTEXT
    n_threads: int | None = None  # None: physical cores
    # Off by default: llama.cpp repacks K-quant weights into an interleaved copy for its CPU kernels,
    # and with mmap the original pages stay resident too. Measured on the TinyLlama-shaped Q4_K_M:
    # 1226 MiB resident with mmap, 781 MiB without, for ~5 % of generation speed and +0.2 s of load.
    use_mmap: bool = False
    chat_format: str | None = None
    # Saved conversation states (engine/state_cache.py): the folder for them (None: memory only),
    # the bytes kept in memory and the cap of the folder.
    state_dir: Path | None = None
    state_memory: int = DEFAULT_STATE_MEMORY
    state_disk_cap: int = DEFAULT_STATE_DISK_CAP


@dataclass(frozen=True)
class LoadReport:
    """What a load found: the format in use, the vocab size, and warnings for the user
    (for example a chat format whose control tokens the model does not have)."""

    chat_format: str
    n_ctx: int
    n_vocab: int
    n_threads: int
    load_s: float
    warnings: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)


class EngineError(Exception):
    """An engine failure with a sentence the user can act on; `detail` goes to the log."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class ModelFileError(EngineError):
    """The model file is missing, truncated, corrupt or not a model this app can run."""


class ContextOverflowError(EngineError):
    """The newest message alone does not fit the model's context window."""


class DownloadError(EngineError):
    """A model download failed (offline, refused, not found, disk full, checksum mismatch, stalled)."""


class DownloadCancelled(DownloadError):
    """The user cancelled a download; the partial file is kept so the next attempt resumes."""
