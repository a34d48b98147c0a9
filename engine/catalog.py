"""The models and quantization levels TinyChat offers, read from `catalog.json` (package data).

An entry says where a model comes from (Hub repo, pinned revision, files or allow-patterns), what it
should hash to when that is known, and what the user needs to choose it (size, memory, a one-line
note). Unknown sizes and hashes are `None` with `verified=False`: the downloader then takes them from
the Hub's metadata at download time and verifies the file against those (never an invented hash).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from engine.gguf_inspect import file_type_name
from engine.types import EngineError, EngineName

CATALOG_FILE = "catalog.json"
SUPPORTED_SCHEMA = 1

# How a GGUF file's header shows which catalog model it is (docs/models.md, "The published files'
# shape"): metadata values, and the tokens the vocab ends with (TinyLlama's 32000 plus the three added
# for chat fine-tuning). Not general.name: the converter wrote the name of the folder it ran in.
_GGUF_SIGNATURES: dict[str, tuple[dict[str, Any], tuple[str, ...], int]] = {
    "tinyllama-1.1b-chat-v0.4": (
        {"general.architecture": "llama", "llama.block_count": 22, "llama.embedding_length": 2048,
         "llama.feed_forward_length": 5632, "llama.attention.head_count": 32,
         "llama.attention.head_count_kv": 4},
        ("[PAD]", "<|im_start|>", "<|im_end|>"), 32003,
    ),
}


class CatalogError(EngineError):
    """The catalog file is missing or malformed, or names no such model."""


@dataclass(frozen=True)
class FileSpec:
    """One file of a catalog entry; `size`/`sha256` are None when not confirmed ahead of time."""

    name: str
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class CatalogEntry:
    """One model at one quantization level, as the app offers it.

    For llama.cpp entries `files` names the GGUF file. For MLX entries `allow_patterns` selects the
    original snapshot's files (downloaded once into `source_id`, shared by every bit width) and
    `bits` is the width the converter produces.
    """

    id: str
    model: str
    level: str
    label: str
    engine: EngineName
    repo: str
    revision: str
    files: tuple[FileSpec, ...]
    size_mb: int
    memory_mb: int
    note: str
    default: bool = False
    verified: bool = False
    chat_format: str = "chatml"
    context: int = 2048
    allow_patterns: tuple[str, ...] = ()
    source_id: str | None = None
    bits: int | None = None
    download_mb: int | None = None
    provenance: str = ""

    @property
    def needs_conversion(self) -> bool:
        """True for entries built locally from a downloaded original (MLX)."""
        return self.source_id is not None


def _entry(raw: dict[str, Any]) -> CatalogEntry:
    files = tuple(FileSpec(f["name"], f.get("size"), f.get("sha256")) for f in raw.get("files", ()))
    return CatalogEntry(
        id=raw["id"],
        model=raw["model"],
        level=raw["level"],
        label=raw["label"],
        engine=raw["engine"],
        repo=raw["repo"],
        revision=raw.get("revision") or "main",
        files=files,
        size_mb=int(raw["size_mb"]),
        memory_mb=int(raw["memory_mb"]),
        note=raw["note"],
        default=bool(raw.get("default", False)),
        verified=bool(raw.get("verified", False)),
        chat_format=raw.get("chat_format", "chatml"),
        context=int(raw.get("context", 2048)),
        allow_patterns=tuple(raw.get("allow_patterns", ())),
        source_id=raw.get("source_id"),
        bits=raw.get("bits"),
        download_mb=raw.get("download_mb"),
        provenance=raw.get("provenance", ""),
    )


class Catalog:
    """All catalog entries, looked up by (model, level) or by entry id."""

    def __init__(self, entries: tuple[CatalogEntry, ...]) -> None:
        ids = [e.id for e in entries]
        if len(set(ids)) != len(ids):
            raise CatalogError("The model catalog lists the same model twice.", detail=str(ids))
        for e in entries:
            if not e.files and not e.allow_patterns:
                raise CatalogError("The model catalog has an entry without files.", detail=e.id)
        self.entries = entries

    @classmethod
    def load(cls, path: Path | None = None) -> Catalog:
        """Read the catalog: the packaged `engine/catalog.json`, or `path` (tests, custom catalogs)."""
        try:
            if path is None:
                text = resources.files("engine").joinpath(CATALOG_FILE).read_text(encoding="utf-8")
            else:
                text = Path(path).read_text(encoding="utf-8")
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("schema") != SUPPORTED_SCHEMA:
                raise ValueError("not a catalog of a supported schema")
            return cls(tuple(_entry(raw) for raw in doc["entries"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CatalogError(
                "The model catalog could not be read; reinstall TinyChat.", detail=f"{path}: {exc!r}"
            ) from exc

    def get(self, model: str, level: str) -> CatalogEntry:
        """The entry for `model` at `level` (case-insensitive level, e.g. "q4_k_m" or "4bit")."""
        for e in self.entries:
            if e.model == model and e.level.lower() == level.lower():
                return e
        raise CatalogError(f"TinyChat does not offer {model} at level {level}.")

    def by_id(self, entry_id: str) -> CatalogEntry:
        """The entry with this id."""
        for e in self.entries:
            if e.id == entry_id:
                return e
        raise CatalogError(f"TinyChat does not offer a model called {entry_id}.")

    def levels(self, model: str, engine: EngineName) -> tuple[CatalogEntry, ...]:
        """Every level of `model` for `engine`, smallest first (catalog order)."""
        return tuple(e for e in self.entries if e.model == model and e.engine == engine)

    def default(self, model: str, engine: EngineName) -> CatalogEntry:
        """The recommended level of `model` for `engine`."""
        for e in self.levels(model, engine):
            if e.default:
                return e
        raise CatalogError(f"TinyChat has no default level of {model} for {engine}.")

    def match_gguf(self, metadata: dict[str, Any], tokens: Sequence[bytes | str] | None) -> CatalogEntry | None:
        """The llama.cpp entry a GGUF file is, from its header as `gguf_inspect.read_header` reads it
        (`metadata`, and the token list `tokens`): the model by its architecture, shapes and vocab, the
        level by `general.file_type`. None for another model, or a level the catalog does not offer."""
        level = file_type_name(metadata.get("general.file_type"))
        if tokens is None or level is None:
            return None
        for model, (keys, tail, n_vocab) in _GGUF_SIGNATURES.items():
            ends = [t.decode("utf-8", "replace") if isinstance(t, bytes) else t for t in tokens[-len(tail):]]
            if (len(tokens) == n_vocab and tuple(ends) == tail
                    and all(metadata.get(k) == v for k, v in keys.items())):
                return next((e for e in self.levels(model, "llama.cpp") if e.level == level), None)
        return None

    def models(self) -> tuple[str, ...]:
        """Distinct model ids, in catalog order."""
        return tuple(dict.fromkeys(e.model for e in self.entries))
