"""A bounded reader for GGUF headers, and the checks that make a file a llama model TinyChat can run.

It refuses absurd counts and lengths *before* allocating anything (a crafted header can claim 2^63
strings), never maps the tensor data, and checks every tensor's type, shape and byte range against
the file's real length. It is meant to run in the child process engine/validate.py starts, so even a
bug here cannot take the app down; `GgufProblem` carries the sentence the user sees.
"""

from __future__ import annotations

import itertools
import os
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from engine.chat_template import vet_template

MAGIC = b"GGUF"
VERSIONS = (2, 3)
MAX_TENSORS = 1 << 16
MAX_KV = 1 << 16
MAX_STRING = 64 << 20  # a chat template or a token is far smaller; only strings in arrays repeat
MAX_ARRAY = 1 << 24
MAX_DIMS = 4
DEFAULT_ALIGNMENT = 32

# GGUF value types → struct format of a scalar (8 = string, 9 = array are handled separately).
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9


class GgufProblem(Exception):
    """Why a file is not a usable model, as one sentence for the user."""


@dataclass
class GgufHeader:
    version: int
    file_size: int
    metadata: dict[str, Any]  # arrays of strings are kept for tokenizer.ggml.tokens only
    array_lengths: dict[str, int]
    tensors: dict[str, tuple[tuple[int, ...], int, int]]  # name → (dims ne0.., ggml type, offset)
    data_start: int = 0
    alignment: int = DEFAULT_ALIGNMENT
    notes: list[str] = field(default_factory=list)


class _Reader:
    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f, self.size = f, size

    def remaining(self) -> int:
        return self.size - self.f.tell()

    def need(self, n: int) -> None:
        """Refuse before allocating: `n` more bytes must exist, else the file was cut short."""
        if n > self.remaining():
            raise GgufProblem("The file is truncated: it ends in the middle of its header. Download or copy it again.")

    def read(self, n: int) -> bytes:
        self.need(n)
        return self.f.read(n)

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.scalar("<Q")
        if n > MAX_STRING:
            raise GgufProblem(f"The file's header is corrupt: it claims a text of {n} bytes.")
        return self.read(n).decode("utf-8", errors="replace")

    def skip(self, n: int) -> None:
        self.need(n)
        self.f.seek(n, os.SEEK_CUR)


def _read_value(r: _Reader, vtype: int, key: str, header: GgufHeader) -> Any:
    if vtype in _SCALARS:
        return r.scalar(_SCALARS[vtype])
    if vtype == STRING:
        return r.string()
    if vtype != ARRAY:
        raise GgufProblem(f"The file's header is corrupt: metadata {key!r} has unknown type {vtype}.")
    etype, count = r.scalar("<I"), r.scalar("<Q")
    if etype == ARRAY:
        raise GgufProblem(f"The file's header uses nested arrays ({key!r}), which no llama model has.")
    if etype not in _SCALARS and etype != STRING:
        raise GgufProblem(f"The file's header is corrupt: metadata {key!r} has unknown type {etype}.")
    min_size = 8 if etype == STRING else struct.calcsize(_SCALARS[etype])
    if count > MAX_ARRAY:
        raise GgufProblem(f"The file's header is corrupt: metadata {key!r} claims {count} values.")
    r.need(count * min_size)
    header.array_lengths[key] = count
    if etype == STRING:
        if key == "tokenizer.ggml.tokens":
            return [r.string() for _ in range(count)]
        for _ in range(count):
            r.skip(r.scalar("<Q"))
        return None
    r.skip(count * min_size)
    return None


def read_header(path: Path) -> GgufHeader:
    """Parse the header of `path` within fixed bounds; raises GgufProblem for anything malformed."""
    size = path.stat().st_size
    if size == 0:
        raise GgufProblem("The file is empty.")
    with path.open("rb") as f:
        r = _Reader(f, size)
        if size < 4 or r.read(4) != MAGIC:
            raise GgufProblem("This is not a GGUF model file (it does not start with the GGUF signature).")
        version = r.scalar("<I")
        if version not in VERSIONS:
            if version & 0xFFFF == 0 and (version >> 24) in VERSIONS:
                raise GgufProblem("This GGUF file is big-endian; TinyChat reads little-endian files only.")
            raise GgufProblem(f"This GGUF file has format version {version}; TinyChat reads versions 2 and 3.")
        n_tensors, n_kv = r.scalar("<Q"), r.scalar("<Q")
        if n_tensors > MAX_TENSORS:
            raise GgufProblem(f"The file's header is corrupt: it claims {n_tensors} tensors.")
        if n_kv > MAX_KV:
            raise GgufProblem(f"The file's header is corrupt: it claims {n_kv} metadata entries.")
        r.need(n_tensors * 24 + n_kv * 12)  # the smallest possible size of what was announced
        header = GgufHeader(version, size, {}, {}, {})
        for _ in range(n_kv):
            key = r.string()
            if key in header.metadata:
                raise GgufProblem(f"The file's header is corrupt: metadata {key!r} appears twice.")
            header.metadata[key] = _read_value(r, r.scalar("<I"), key, header)
        for _ in range(n_tensors):
            name = r.string()
            n_dims = r.scalar("<I")
            if not 1 <= n_dims <= MAX_DIMS:
                raise GgufProblem(f"The file's header is corrupt: tensor {name!r} has {n_dims} dimensions.")
            dims = tuple(r.scalar("<Q") for _ in range(n_dims))
            ggml_type, offset = r.scalar("<I"), r.scalar("<Q")
            if name in header.tensors:
                raise GgufProblem(f"The file's header is corrupt: tensor {name!r} appears twice.")
            header.tensors[name] = (dims, ggml_type, offset)
        alignment = header.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1) or alignment > 1 << 16:
            raise GgufProblem(f"The file's header is corrupt: alignment {alignment!r} is not a power of two.")
        header.alignment = alignment
        header.data_start = -(-f.tell() // alignment) * alignment
    return header


def _tensor_bytes(name: str, dims: tuple[int, ...], ggml_type: int) -> int:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
    except (ValueError, KeyError):
        raise GgufProblem(
            f"Tensor {name!r} has a data type ({ggml_type}) this version of TinyChat does not know."
        ) from None
    if any(d < 1 or d > 1 << 40 for d in dims):
        raise GgufProblem(f"The file's header is corrupt: tensor {name!r} has shape {list(dims)}.")
    if dims[0] % block:
        raise GgufProblem(f"The file's header is corrupt: tensor {name!r} rows do not fit its quantization blocks.")
    n = 1
    for d in dims:
        n *= d
    return n // block * type_size


def _int(meta: dict[str, Any], key: str, lo: int, hi: int) -> int:
    value = meta.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        if value is None:
            raise GgufProblem(f"The model is missing required metadata ({key}).")
        raise GgufProblem(f"The model's metadata is implausible ({key} = {value!r}).")
    return value


def _expected_shapes(meta: dict[str, Any], n_vocab: int) -> tuple[dict[str, tuple[int, ...]], dict[str, int]]:
    n_layer = _int(meta, "llama.block_count", 1, 1024)
    n_embd = _int(meta, "llama.embedding_length", 1, 1 << 16)
    n_ff = _int(meta, "llama.feed_forward_length", 1, 1 << 18)
    n_head = _int(meta, "llama.attention.head_count", 1, 1024)
    kv_key = "llama.attention.head_count_kv"
    n_head_kv = _int(meta, kv_key, 1, 1024) if kv_key in meta else n_head
    n_ctx = _int(meta, "llama.context_length", 1, 1 << 24)
    if n_embd % n_head or n_head % n_head_kv:
        raise GgufProblem("The model's metadata is implausible (attention heads do not divide the model width).")
    n_embd_kv = n_embd // n_head * n_head_kv
    shapes: dict[str, tuple[int, ...]] = {"token_embd.weight": (n_embd, n_vocab), "output_norm.weight": (n_embd,)}
    for i in range(n_layer):
        b = f"blk.{i}."
        shapes |= {
            b + "attn_norm.weight": (n_embd,), b + "ffn_norm.weight": (n_embd,),
            b + "attn_q.weight": (n_embd, n_embd), b + "attn_k.weight": (n_embd, n_embd_kv),
            b + "attn_v.weight": (n_embd, n_embd_kv), b + "attn_output.weight": (n_embd, n_embd),
            b + "ffn_gate.weight": (n_embd, n_ff), b + "ffn_up.weight": (n_embd, n_ff),
            b + "ffn_down.weight": (n_ff, n_embd),
        }
    return shapes, {"n_layer": n_layer, "n_embd": n_embd, "n_ctx": n_ctx}


def _quantization(meta: dict[str, Any], tensors: dict[str, tuple[tuple[int, ...], int, int]]) -> str:
    from gguf.constants import GGMLQuantizationType, LlamaFileType

    file_type = meta.get("general.file_type")
    if isinstance(file_type, int):
        try:
            return LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    common = Counter(t for dims, t, _ in tensors.values() if len(dims) >= 2).most_common(1)
    try:
        return GGMLQuantizationType(common[0][0]).name if common else "unknown"
    except ValueError:
        return "unknown"


def inspect(path: Path) -> dict[str, Any]:
    """Check that `path` is a complete llama GGUF model; return its summary or raise GgufProblem."""
    path = Path(path)
    if not path.is_file():
        raise GgufProblem(f"{path} is not a file.")
    h = read_header(path)
    meta = h.metadata
    arch = meta.get("general.architecture")
    if not isinstance(arch, str):
        raise GgufProblem("The model does not say which architecture it is (general.architecture is missing).")
    if arch != "llama":
        raise GgufProblem(f"This is a {arch!r} model; TinyChat runs llama-architecture models (like TinyLlama) only.")
    tokens = meta.get("tokenizer.ggml.tokens")
    if not isinstance(meta.get("tokenizer.ggml.model"), str) or not tokens:
        raise GgufProblem("The model has no tokenizer (its token list is missing).")
    shapes, dims = _expected_shapes(meta, len(tokens))
    for name, shape in shapes.items():
        if name not in h.tensors:
            raise GgufProblem(f"The model is incomplete: tensor {name} is missing.")
        if h.tensors[name][0] != shape:
            raise GgufProblem(f"The model is damaged: tensor {name} has shape {list(h.tensors[name][0])}, "
                              f"expected {list(shape)}.")
    if "output.weight" in h.tensors and h.tensors["output.weight"][0] != (dims["n_embd"], len(tokens)):
        raise GgufProblem("The model is damaged: tensor output.weight does not match the vocabulary.")
    spans, parameters = [], 0
    for name, (tdims, ggml_type, offset) in h.tensors.items():
        nbytes = _tensor_bytes(name, tdims, ggml_type)
        if offset % h.alignment:
            raise GgufProblem(f"The file's header is corrupt: tensor {name!r} is not aligned.")
        if h.data_start + offset + nbytes > h.file_size:
            raise GgufProblem("The file is truncated: its tensor data ends past the end of the file. "
                              "Download or copy it again.")
        spans.append((offset, offset + nbytes, name))
        n = 1
        for d in tdims:
            n *= d
        parameters += n
    spans.sort()
    for (_, end, a), (start, _, b) in itertools.pairwise(spans):
        if start < end:
            raise GgufProblem(f"The file's header is corrupt: tensors {a!r} and {b!r} overlap.")
    template = meta.get("tokenizer.chat_template")
    verdict = vet_template(template) if isinstance(template, str) and template.strip() else None
    if verdict is not None and verdict.hostile:
        raise GgufProblem(verdict.problem)
    return {
        "architecture": arch,
        "name": meta.get("general.name") if isinstance(meta.get("general.name"), str) else None,
        "parameters": parameters,
        "quantization": _quantization(meta, h.tensors),
        "context_length": dims["n_ctx"],
        "chat_template": verdict is not None and verdict.usable,  # usable as the model's default format
        "size": h.file_size,
        "n_vocab": len(tokens),
        "n_layer": dims["n_layer"],
        "gguf_version": h.version,
    }
