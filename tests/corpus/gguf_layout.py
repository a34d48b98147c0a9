"""A GGUF file taken apart into editable pieces and put back together byte for byte.

The fault corpus (tests/corpus/gguf_files.py) starts from the tiny random-weight test model and
changes one piece at a time: a header count, one metadata value or its type, one tensor's shape,
type or offset, the alignment. `Gguf.parse(blob).to_bytes() == blob` for a well-formed file, so every
difference in a hostile file is the edit itself.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

MAGIC = b"GGUF"
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
SCALAR_FORMATS = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?",
                  U64: "<Q", I64: "<q", F64: "<d"}


def string(text: str | bytes) -> bytes:
    """A GGUF string: u64 length, then the bytes."""
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def scalar(vtype: int, value: float | int | bool) -> bytes:
    """The payload of a scalar value of `vtype`."""
    return struct.pack(SCALAR_FORMATS[vtype], value)


def array(etype: int, items: list[bytes], count: int | None = None) -> bytes:
    """The payload of an array: element type, count (default: len(items)), then the encoded items."""
    return struct.pack("<IQ", etype, len(items) if count is None else count) + b"".join(items)


@dataclass
class Kv:
    """One metadata entry: `payload` is everything after the value type (for arrays: type, count, items)."""

    key: bytes
    vtype: int
    payload: bytes

    def to_bytes(self) -> bytes:
        return string(self.key) + struct.pack("<I", self.vtype) + self.payload


@dataclass
class Tensor:
    """One tensor info plus the tensor's bytes. `offset` None: placed right after the previous tensor."""

    name: bytes
    dims: list[int]
    ttype: int
    data: bytes
    offset: int | None = None
    n_dims: int | None = None  # what the header claims, when it is not len(dims)

    def info(self, offset: int) -> bytes:
        n_dims = len(self.dims) if self.n_dims is None else self.n_dims
        return (string(self.name) + struct.pack("<I", n_dims) + b"".join(struct.pack("<Q", d) for d in self.dims)
                + struct.pack("<IQ", self.ttype, offset))


def _pad(n: int, alignment: int) -> int:
    return -n % alignment


@dataclass
class Gguf:
    """A whole file. `n_tensors`/`n_kv` None: the real counts; `alignment` pads header and tensor data."""

    magic: bytes
    version: int
    kvs: list[Kv]
    tensors: list[Tensor]
    alignment: int = 32
    n_tensors: int | None = None
    n_kv: int | None = None
    trailing: bytes = b""
    notes: dict[str, int] = field(default_factory=dict)

    def kv(self, key: str) -> Kv:
        """The entry called `key` (KeyError if absent)."""
        return next(k for k in self.kvs if k.key == key.encode())

    def set(self, key: str, vtype: int, payload: bytes) -> None:
        """Replace the value (and type) of `key`, or append it."""
        for k in self.kvs:
            if k.key == key.encode():
                k.vtype, k.payload = vtype, payload
                return
        self.kvs.append(Kv(key.encode(), vtype, payload))

    def drop(self, key: str) -> None:
        """Remove the metadata entry `key`."""
        self.kvs = [k for k in self.kvs if k.key != key.encode()]

    def tensor(self, name: str) -> Tensor:
        """The tensor called `name`."""
        return next(t for t in self.tensors if t.name == name.encode())

    def layout(self) -> list[int]:
        """Where each tensor's bytes really go, relative to the data section."""
        offsets, at = [], 0
        for t in self.tensors:
            offsets.append(at)
            at += len(t.data) + _pad(len(t.data), self.alignment)
        return offsets

    def to_bytes(self) -> bytes:
        """The file: header, metadata, tensor infos, padding, tensor data, then `trailing`."""
        real = self.layout()
        head = self.magic + struct.pack("<IQQ", self.version,
                                        len(self.tensors) if self.n_tensors is None else self.n_tensors,
                                        len(self.kvs) if self.n_kv is None else self.n_kv)
        head += b"".join(k.to_bytes() for k in self.kvs)
        self.notes["tensor_infos"] = len(head)
        head += b"".join(t.info(at if t.offset is None else t.offset) for t, at in zip(self.tensors, real, strict=True))
        self.notes["padding"] = len(head)
        head += b"\0" * _pad(len(head), self.alignment)
        self.notes["data"] = len(head)
        data = b"".join(t.data + b"\0" * _pad(len(t.data), self.alignment) for t in self.tensors)
        return head + data + self.trailing

    @classmethod
    def parse(cls, blob: bytes) -> Gguf:
        """Take a well-formed little-endian GGUF v2/v3 file apart (F32/F16 tensors only)."""
        pos = 0

        def take(fmt: str) -> int:
            nonlocal pos
            (value,) = struct.unpack_from(fmt, blob, pos)
            pos += struct.calcsize(fmt)
            return value

        def take_string() -> bytes:
            nonlocal pos
            n = take("<Q")
            pos += n
            return blob[pos - n:pos]

        def skip_value(vtype: int) -> None:
            nonlocal pos
            if vtype == STRING:
                take_string()
            elif vtype == ARRAY:
                etype, count = take("<I"), take("<Q")
                for _ in range(count):
                    skip_value(etype)
            else:
                pos += struct.calcsize(SCALAR_FORMATS[vtype])

        magic = blob[:4]
        pos = 4
        version, n_tensors, n_kv = take("<I"), take("<Q"), take("<Q")
        kvs = []
        for _ in range(n_kv):
            key, vtype = take_string(), take("<I")
            start = pos
            skip_value(vtype)
            kvs.append(Kv(key, vtype, blob[start:pos]))
        infos = []
        for _ in range(n_tensors):
            name = take_string()
            dims = [take("<Q") for _ in range(take("<I"))]
            infos.append((name, dims, take("<I"), take("<Q")))
        alignment = next((struct.unpack("<I", k.payload)[0] for k in kvs if k.key == b"general.alignment"), 32)
        data_start = pos + _pad(pos, alignment)
        tensors = []
        for name, dims, ttype, offset in infos:
            n = 1
            for d in dims:
                n *= d
            size = n * {0: 4, 1: 2}[ttype]
            tensors.append(Tensor(name, dims, ttype, blob[data_start + offset:data_start + offset + size]))
        g = cls(magic, version, kvs, tensors, alignment)
        g.trailing = blob[data_start + sum(len(t.data) + _pad(len(t.data), alignment) for t in tensors):]
        return g
