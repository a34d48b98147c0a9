"""A bounded reader for GGUF files: the header, the metadata with its value types, and the tensor layout.

It refuses absurd counts and lengths *before* allocating anything (a crafted header can claim 2^63
strings), never maps the tensor data, and applies the checks llama.cpp's own parser makes
(ggml/src/gguf.cpp, `gguf_init_from_file_impl`): magic, version, counts, non-empty unique keys,
known value types, `general.alignment` a u32 power of two, tensor names shorter than GGML_MAX_NAME,
at most 4 dimensions, known tensor types whose rows fill whole blocks, and tensor data laid out
back to back in declaration order, each at the next aligned offset, all inside the file. One more
rule comes from llama-cpp-python, which decodes every key and scalar string as strict UTF-8 at load.

It runs in the child process engine/validate.py starts, so even a bug here cannot take the app down;
`GgufProblem` carries the sentence the user sees. engine/gguf_llama.py checks the llama model on top.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

MAGIC = b"GGUF"
VERSIONS = (2, 3)
MAX_TENSORS = 1 << 16
MAX_KV = 1 << 16
MAX_STRING = 64 << 20  # a chat template or a token is far smaller; only strings in arrays repeat
MAX_ARRAY = 1 << 24
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_NAME = 64  # GGML_MAX_NAME: a tensor name must be shorter
DEFAULT_ALIGNMENT = 32  # GGUF_DEFAULT_ALIGNMENT

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
_SCALARS = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?",
            U64: "<Q", I64: "<q", F64: "<d"}
TYPE_NAMES = {U8: "u8", I8: "i8", U16: "u16", I16: "i16", U32: "u32", I32: "i32", F32: "f32", BOOL: "bool",
              STRING: "string", ARRAY: "array", U64: "u64", I64: "i64", F64: "f64"}

# ggml tensor types llama.cpp's CPU backend runs as model weights: id → (name, elements per block, bytes
# per block), from ggml/src/ggml.c `type_traits`. Integer, f64 and the dot-product-only types
# (Q8_1, Q8_K) are left out: no llama model stores its weights in them.
TENSOR_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
}


class GgufProblem(Exception):
    """Why a file is not a usable model, as one sentence for the user."""


def corrupt(what: str) -> GgufProblem:
    """The sentence for a header that contradicts itself."""
    return GgufProblem(f"The file's header is corrupt: {what}.")


@dataclass(frozen=True)
class TensorInfo:
    """One tensor: dims (ne0 first), ggml type, offset in the data section and size in bytes."""

    dims: tuple[int, ...]
    type: int
    offset: int
    nbytes: int


@dataclass
class GgufHeader:
    """What the header says. Scalars and strings are in `metadata` with their type in `types`; arrays
    are described by `arrays` (element type, count) and only the token list keeps its items (as bytes)."""

    version: int
    file_size: int
    metadata: dict[str, Any] = field(default_factory=dict)
    types: dict[str, int] = field(default_factory=dict)
    arrays: dict[str, tuple[int, int]] = field(default_factory=dict)
    tokens: list[bytes] | None = None
    tensors: dict[str, TensorInfo] = field(default_factory=dict)
    data_start: int = 0
    alignment: int = DEFAULT_ALIGNMENT


class _Reader:
    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f, self.size = f, size

    def need(self, n: int) -> None:
        """Refuse before allocating: `n` more bytes must exist, else the file was cut short."""
        if n > self.size - self.f.tell():
            raise GgufProblem("The file is truncated: it ends in the middle of its header. Download or copy it again.")

    def read(self, n: int) -> bytes:
        self.need(n)
        return self.f.read(n)

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def raw_string(self) -> bytes:
        n = self.scalar("<Q")
        if n > MAX_STRING:
            raise corrupt(f"it claims a text of {n} bytes")
        return self.read(n)

    def text(self, what: str) -> str:
        try:
            return self.raw_string().decode("utf-8")
        except UnicodeDecodeError:
            raise GgufProblem(f"The model's metadata is damaged: {what} is not valid UTF-8 text.") from None

    def skip(self, n: int) -> None:
        self.need(n)
        self.f.seek(n, os.SEEK_CUR)


def _read_value(r: _Reader, vtype: int, key: str, h: GgufHeader) -> None:
    h.types[key] = vtype
    if vtype in _SCALARS:
        h.metadata[key] = r.scalar(_SCALARS[vtype])
        return
    if vtype == STRING:
        h.metadata[key] = r.text(key)
        return
    if vtype != ARRAY:
        raise corrupt(f"metadata {key!r} has unknown type {vtype}")
    etype, count = r.scalar("<I"), r.scalar("<Q")
    if etype == ARRAY:
        raise GgufProblem(f"The file's header uses nested arrays ({key!r}), which no llama model has.")
    if etype not in _SCALARS and etype != STRING:
        raise corrupt(f"metadata {key!r} has unknown type {etype}")
    if count > MAX_ARRAY:
        raise corrupt(f"metadata {key!r} claims {count} values")
    min_size = 8 if etype == STRING else struct.calcsize(_SCALARS[etype])
    r.need(count * min_size)
    h.arrays[key] = (etype, count)
    if etype != STRING:
        r.skip(count * min_size)
    elif key == "tokenizer.ggml.tokens":
        h.tokens = [r.raw_string() for _ in range(count)]
    else:
        for _ in range(count):
            r.skip(r.scalar("<Q"))


def _tensor_info(r: _Reader, seen: set[bytes]) -> tuple[str, tuple[int, ...], int, int]:
    raw = r.raw_string()
    name = raw.decode("utf-8", "replace")
    if not raw or len(raw) >= MAX_NAME:
        raise corrupt(f"a tensor name is {len(raw)} bytes long")
    if raw in seen:
        raise corrupt(f"tensor {name!r} appears twice")
    seen.add(raw)
    n_dims = r.scalar("<I")
    if not 1 <= n_dims <= MAX_DIMS:
        raise corrupt(f"tensor {name!r} has {n_dims} dimensions")
    dims = tuple(r.scalar("<Q") for _ in range(n_dims))
    return name, dims, r.scalar("<I"), r.scalar("<Q")


def tensor_bytes(name: str, dims: tuple[int, ...], ggml_type: int) -> int:
    """Bytes of a tensor of this shape and type; GgufProblem for an unknown type or impossible shape."""
    if ggml_type not in TENSOR_TYPES:
        raise GgufProblem(f"Tensor {name!r} has a data type ({ggml_type}) this version of TinyChat cannot run.")
    _, block, type_size = TENSOR_TYPES[ggml_type]
    if any(d < 1 for d in dims) or math.prod(dims) > 1 << 40:  # gguf.cpp refuses element counts that overflow
        raise corrupt(f"tensor {name!r} has shape {list(dims)}")
    if dims[0] % block:
        raise corrupt(f"tensor {name!r} rows do not fit its quantization blocks")
    return math.prod(dims) // block * type_size


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
            raise corrupt(f"it claims {n_tensors} tensors")
        if n_kv > MAX_KV:
            raise corrupt(f"it claims {n_kv} metadata entries")
        r.need(n_tensors * 24 + n_kv * 12)  # the smallest possible size of what was announced
        h = GgufHeader(version, size)
        for _ in range(n_kv):
            key = r.text("a metadata name")
            if not key:
                raise corrupt("a metadata entry has no name")
            if key in h.types:
                raise corrupt(f"metadata {key!r} appears twice")
            _read_value(r, r.scalar("<I"), key, h)
        seen: set[bytes] = set()
        infos = [_tensor_info(r, seen) for _ in range(n_tensors)]
        if "general.alignment" in h.types:
            h.alignment = h.metadata.get("general.alignment", 0) if h.types["general.alignment"] == U32 else 0
        if h.alignment <= 0 or h.alignment & (h.alignment - 1) or h.alignment > 1 << 16:
            raise corrupt("its alignment is not a u32 power of two")
        h.data_start = -(-f.tell() // h.alignment) * h.alignment
    expected = data_end = 0
    for name, dims, ggml_type, offset in infos:
        nbytes = tensor_bytes(name, dims, ggml_type)
        if offset != expected:  # gguf.cpp: "tensor has offset X, expected Y"
            raise corrupt(f"tensor {name!r} is not where the tensors before it end")
        h.tensors[name] = TensorInfo(dims, ggml_type, offset, nbytes)
        data_end = offset + nbytes
        expected = data_end + (-nbytes % h.alignment)
    if h.data_start + data_end > size:  # llama-model-loader.h: "data is not within the file bounds"
        raise GgufProblem("The file is truncated: its tensor data ends past the end of the file. "
                          "Download or copy it again.")
    return h


def file_type_name(file_type: Any) -> str | None:
    """The level a `general.file_type` value names ("Q4_K_M", "F16", ...), None if it names none."""
    from gguf.constants import LlamaFileType

    if not isinstance(file_type, int) or isinstance(file_type, bool):
        return None
    try:
        return LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
    except ValueError:
        return None
